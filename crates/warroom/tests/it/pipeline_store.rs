//! The pipeline's job store, the same stories on SQLite and PostgreSQL.

use std::sync::Arc;
use time::Duration;
use warroom_store::{ItemClaim, ItemState, RunStatus, Store};
use warroom_testkit::{T0, backends, fresh_database, open_store};

const LEASE: Duration = Duration::seconds(60);

#[tokio::test]
async fn duplicate_requests_coalesce_into_one_run_even_when_concurrent() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.enqueue_run("/srv/infra", "webhook", Some("github:abc"), T0)
                    .await
                    .unwrap()
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut created = 0;
        for t in tasks {
            let (run, new) = t.await.unwrap();
            ids.insert(run.id);
            created += usize::from(new);
        }
        assert_eq!((ids.len(), created), (1, 1), "{b:?}");
        // A different delivery while one is queued joins it too: the queued run scans everything.
        let (again, new) = store
            .enqueue_run("/srv/infra", "sweep", None, T0)
            .await
            .unwrap();
        assert!(!new && ids.contains(&again.id), "{b:?}");
        // The same delivery after the run finished is still the same run, never a second one.
        let run = store
            .claim_run("/srv/infra", "w1", T0, LEASE)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .finish_run(run.id, "w1", RunStatus::Succeeded, Some("ok"), None, T0)
                .await
                .unwrap()
        );
        let (dup, new) = store
            .enqueue_run("/srv/infra", "webhook", Some("github:abc"), T0)
            .await
            .unwrap();
        assert!(
            !new && dup.id == run.id && dup.status == RunStatus::Succeeded,
            "{b:?}"
        );
    }
}

#[tokio::test]
async fn one_live_run_per_repository_and_abandoned_runs_resume_first() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let (a, _) = store.enqueue_run("/r/a", "manual", None, T0).await.unwrap();
        let (other, _) = store.enqueue_run("/r/b", "manual", None, T0).await.unwrap();
        // Many runners race for the claims: each repository goes to exactly one of them.
        let mut tasks = Vec::new();
        for i in 0..6 {
            let s: Arc<dyn Store> = store.clone();
            let repo = if i % 2 == 0 { "/r/a" } else { "/r/b" };
            tasks.push(tokio::spawn(async move {
                s.claim_run(repo, &format!("w{i}"), T0, LEASE)
                    .await
                    .unwrap()
            }));
        }
        let mut claimed: Vec<i64> = Vec::new();
        for t in tasks {
            if let Some(r) = t.await.unwrap() {
                claimed.push(r.id);
            }
        }
        claimed.sort_unstable();
        assert_eq!(claimed, vec![a.id, other.id], "{b:?}");
        // A queued run waits behind the live one of its repository.
        let (queued, created) = store.enqueue_run("/r/a", "manual", None, T0).await.unwrap();
        assert!(created, "{b:?}");
        assert!(
            store
                .claim_run("/r/a", "w9", T0 + Duration::seconds(10), LEASE)
                .await
                .unwrap()
                .is_none(),
            "{b:?}"
        );
        // The runner of `a` dies; after its lease the run is claimed again before the queued one.
        let later = T0 + Duration::seconds(61);
        let resumed = store
            .claim_run("/r/a", "w9", later, LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((resumed.id, resumed.attempts), (a.id, 2), "{b:?}");
        assert_eq!(resumed.status, RunStatus::Running);
        // The old owner lost it: it can neither renew nor finish.
        let old_owner = store.pipeline_run(a.id).await.unwrap();
        assert_eq!(old_owner.attempts, 2);
        for owner in ["w0", "w1", "w2", "w3", "w4", "w5"] {
            assert!(!store.renew_run(a.id, owner, later, LEASE).await.unwrap());
        }
        assert!(store.renew_run(a.id, "w9", later, LEASE).await.unwrap());
        assert!(
            store
                .finish_run(
                    a.id,
                    "w9",
                    RunStatus::Failed,
                    None,
                    Some("step push: x"),
                    later
                )
                .await
                .unwrap()
        );
        let next = store
            .claim_run("/r/a", "w9", later, LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.id, queued.id, "{b:?}");
        let list = store.list_runs(10).await.unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].id, queued.id, "newest first");
        let failed = store.pipeline_run(a.id).await.unwrap();
        assert_eq!(failed.error.as_deref(), Some("step push: x"));
        assert!(store.pipeline_run(9999).await.is_err());
    }
}

#[tokio::test]
async fn items_are_done_once_logs_and_progress_are_kept() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        store.enqueue_run("/r", "manual", None, T0).await.unwrap();
        let run = store
            .claim_run("/r", "w", T0, LEASE)
            .await
            .unwrap()
            .unwrap();
        let begin = |r: i64| {
            let s = store.clone();
            async move { s.begin_item("/r", "pm.md", "abc123", r, T0).await.unwrap() }
        };
        assert_eq!(begin(run.id).await, ItemClaim::Fresh);
        // A crash before the commit: the same run starts it over.
        assert_eq!(begin(run.id).await, ItemClaim::Fresh);
        store
            .record_item(
                "/r",
                "pm.md",
                "abc123",
                run.id,
                ItemState::Committed,
                Some("f00"),
                None,
                0.5,
                T0,
            )
            .await
            .unwrap();
        match begin(run.id).await {
            ItemClaim::Handled(rec) => {
                assert_eq!(rec.state, ItemState::Committed);
                assert_eq!(rec.commit_sha.as_deref(), Some("f00"));
            }
            o => panic!("{b:?}: {o:?}"),
        }
        store.publish_items(run.id, T0).await.unwrap();
        assert!(
            matches!(begin(run.id + 100).await, ItemClaim::Handled(r) if r.state == ItemState::Done)
        );
        // A failed run forgets what it did not publish.
        assert_eq!(
            store
                .begin_item("/r", "pm.md", "zzz", run.id, T0)
                .await
                .unwrap(),
            ItemClaim::Fresh
        );
        store
            .record_item(
                "/r",
                "pm.md",
                "zzz",
                run.id,
                ItemState::Refused,
                None,
                Some("plan deletes"),
                0.1,
                T0,
            )
            .await
            .unwrap();
        assert_eq!(store.release_items(run.id).await.unwrap(), 1);
        assert_eq!(
            store
                .begin_item("/r", "pm.md", "zzz", run.id + 1, T0)
                .await
                .unwrap(),
            ItemClaim::Fresh
        );
        let recs = store.item_records("/r").await.unwrap();
        assert_eq!(recs.len(), 2, "{b:?}: {recs:?}");

        store.append_run_log(run.id, T0, "first").await.unwrap();
        store.append_run_log(run.id, T0, "second").await.unwrap();
        let lines = store.run_log(run.id, 0).await.unwrap();
        assert_eq!(
            lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
            ["first", "second"]
        );
        assert_eq!(store.run_log(run.id, lines[0].id).await.unwrap().len(), 1);
        store.set_run_progress(run.id, 2, 5, 1.25).await.unwrap();
        let r = store.pipeline_run(run.id).await.unwrap();
        assert_eq!((r.items_done, r.items_total, r.cost_usd), (2, 5, 1.25));

        let a = store.approve_item("/r", "arch1", "ana", T0).await.unwrap();
        let again = store.approve_item("/r", "arch1", "bo", T0).await.unwrap();
        assert_eq!(a, again, "the first approval stands");
        assert_eq!(store.approvals("/r").await.unwrap().len(), 1);
        assert!(store.approvals("/other").await.unwrap().is_empty());
    }
}
