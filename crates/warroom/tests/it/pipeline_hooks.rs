//! `POST /hooks/git` over real HTTP: signatures, filtering, duplicate deliveries; and the
//! pipeline's runs and approvals API.

use hmac::{KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warroom_server::{Settings, pipeline::PipelineSettings};
use warroom_testkit::{TestApp, backends};

const SECRET: &[u8] = b"a-webhook-secret-of-some-length";
const REPO: &str = "/srv/infra";

fn settings() -> Settings {
    Settings {
        pipeline: Some(PipelineSettings {
            repo_key: REPO.into(),
            branch: "master".into(),
            postmortems_dir: "docs/post-mortems".into(),
            repository: Some("ViktorBarzin/infra".into()),
            webhook_secret: Some(SECRET.to_vec()),
            items: None,
        }),
        ..Settings::default()
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn push(after: &str, files: &[&str]) -> Value {
    json!({
        "ref": "refs/heads/master",
        "before": "0000000000000000000000000000000000000001",
        "after": after,
        "repository": { "full_name": "ViktorBarzin/infra" },
        "commits": [{ "id": after, "added": files, "modified": [], "removed": [] }],
    })
}

enum Sig<'a> {
    GitHub(&'a str),
    Gitea(&'a str),
    None,
}

async fn deliver(app: &TestApp, event: &str, sig: Sig<'_>, body: &[u8]) -> (StatusCode, Value) {
    let mut req = app
        .http
        .post(format!("{}/hooks/git", app.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    req = match sig {
        Sig::GitHub(s) => req
            .header("x-github-event", event)
            .header("x-github-delivery", "d-1")
            .header("x-hub-signature-256", s),
        Sig::Gitea(s) => req
            .header("x-gitea-event", event)
            .header("x-gitea-delivery", "d-2")
            .header("x-gitea-signature", s),
        Sig::None => req.header("x-github-event", event),
    };
    let resp = req.send().await.unwrap();
    let st = resp.status();
    let text = resp.text().await.unwrap();
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn signatures_are_verified_for_github_and_gitea() {
    for b in backends() {
        let app = TestApp::spawn_with(b, settings()).await;
        let body = serde_json::to_vec(&push("aaaa1111", &["docs/post-mortems/2026-04-14-nfs.md"]))
            .unwrap();
        let good = format!("sha256={}", sign(&body));
        let (st, v) = deliver(&app, "push", Sig::GitHub(&good), &body).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{b:?}: {v}");
        assert_eq!(v["status"], "queued");
        let run = v["run"].as_i64().unwrap();
        assert_eq!(v["duplicate"], false);
        // Gitea's header: bare hex. The same push from another forge is the same run.
        let (st, v) = deliver(&app, "push", Sig::Gitea(&sign(&body)), &body).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        assert_eq!(
            (v["run"].as_i64(), &v["duplicate"]),
            (Some(run), &json!(true))
        );

        for (sig, expect) in [
            (Sig::None, "missing signature"),
            (Sig::GitHub("sha256=00ff"), "does not match"),
            (Sig::GitHub(&sign(&body)), "sha256="),
            (Sig::GitHub("sha256=zz"), "not hexadecimal"),
            (Sig::Gitea(&sign(b"another body")), "does not match"),
        ] {
            let (st, v) = deliver(&app, "push", sig, &body).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
            assert!(
                v["message"].as_str().unwrap().contains(expect),
                "{expect}: {v}"
            );
        }
        // Right signature, tampered body.
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let (st, _) = deliver(&app, "push", Sig::GitHub(&good), &tampered).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert_eq!(app.store.list_runs(10).await.unwrap().len(), 1, "{b:?}");
    }
}

#[tokio::test]
async fn two_identical_deliveries_at_once_make_one_run() {
    for b in backends() {
        let app = TestApp::spawn_with(b, settings()).await;
        let body = serde_json::to_vec(&push("bbbb2222", &["docs/post-mortems/x.md"])).unwrap();
        let sig = format!("sha256={}", sign(&body));
        let mut calls = Vec::new();
        for _ in 0..4 {
            calls.push(deliver(&app, "push", Sig::GitHub(&sig), &body));
        }
        let results = futures_join_all(calls).await;
        let runs: std::collections::BTreeSet<i64> = results
            .iter()
            .map(|(st, v)| {
                assert_eq!(*st, StatusCode::ACCEPTED, "{v}");
                v["run"].as_i64().unwrap()
            })
            .collect();
        assert_eq!(runs.len(), 1, "{b:?}: {results:?}");
        assert_eq!(
            results
                .iter()
                .filter(|(_, v)| v["duplicate"] == false)
                .count(),
            1
        );
        assert_eq!(app.store.list_runs(10).await.unwrap().len(), 1);
    }
}

/// Runs the futures concurrently on this task (no extra dependency for `join_all`).
async fn futures_join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in pinned.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[tokio::test]
async fn pushes_elsewhere_are_ignored_with_the_reason_and_bad_payloads_name_the_field() {
    let app = TestApp::spawn_with(backends()[0], settings()).await;
    let send = |v: Value, event: &'static str| {
        let body = serde_json::to_vec(&v).unwrap();
        let app = &app;
        async move {
            let sig = format!("sha256={}", sign(&body));
            deliver(app, event, Sig::GitHub(&sig), &body).await
        }
    };
    let mut other_branch = push("c1", &["docs/post-mortems/a.md"]);
    other_branch["ref"] = json!("refs/heads/feature");
    let (st, v) = send(other_branch, "push").await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(v["status"], "ignored");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("refs/heads/feature, not to the configured branch refs/heads/master"),
        "{v}"
    );
    let (_, v) = send(push("c2", &["stacks/app/main.tf"]), "push").await;
    assert_eq!(v["reason"], "the push does not touch docs/post-mortems/");
    let (st, v) = send(push("c3", &[]), "ping").await;
    assert_eq!((st, &v["status"]), (StatusCode::OK, &json!("pong")));
    let (_, v) = send(push("c4", &[]), "issues").await;
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("`issues` is not a push"),
        "{v}"
    );

    let body = b"{not json".to_vec();
    let sig = format!("sha256={}", sign(&body));
    let (st, v) = deliver(&app, "push", Sig::GitHub(&sig), &body).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "malformed_json");
    let (st, v) = send(json!({ "after": "abc" }), "push").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["details"]["field"], "ref", "{v}");
    let mut bad_after = push("c5", &["docs/post-mortems/a.md"]);
    bad_after["after"] = json!(42);
    let (st, v) = send(bad_after, "push").await;
    assert_eq!(
        (st, &v["details"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("after")),
        "{v}"
    );
    let (st, v) = send(json!([1, 2]), "push").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let mut bad_commits = push("c5", &[]);
    bad_commits["commits"] = json!("nope");
    let (st, v) = send(bad_commits, "push").await;
    assert_eq!(
        (st, &v["details"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("commits"))
    );
    let mut stranger = push("c6", &["docs/post-mortems/a.md"]);
    stranger["repository"]["full_name"] = json!("someone/else");
    let (st, v) = send(stranger, "push").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unknown repository `someone/else`"),
        "{v}"
    );
    assert!(
        app.store.list_runs(10).await.unwrap().is_empty(),
        "nothing was queued"
    );
}

#[tokio::test]
async fn runs_logs_and_approvals_through_the_api() {
    let app = TestApp::spawn_with(backends()[0], settings()).await;
    let (run, _) = app
        .store
        .enqueue_run(REPO, "manual", None, warroom_testkit::T0)
        .await
        .unwrap();
    app.store
        .append_run_log(run.id, warroom_testkit::T0, "scanned 3 post-mortems")
        .await
        .unwrap();
    let viewer_get = async |path: &str| app.call(Method::GET, path, Some(&app.viewer), None).await;
    let (st, v) = viewer_get("/api/v1/pipeline/runs").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["runs"][0]["status"], "queued");
    let (st, v) = viewer_get(&format!("/api/v1/pipeline/runs/{}", run.id)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["log"][0]["line"], "scanned 3 post-mortems");
    assert_eq!(v["run"]["items_total"], 0);
    let (st, _) = viewer_get("/api/v1/pipeline/runs/99").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = viewer_get("/api/v1/pipeline/runs/x").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = app
        .call(Method::GET, "/api/v1/pipeline/runs", None, None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let (st, v) = app
        .post("/api/v1/pipeline/approvals", json!({ "item": "nope" }))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["details"]["field"], "item");
    let (st, _) = app
        .call(
            Method::POST,
            "/api/v1/pipeline/approvals",
            Some(&app.viewer),
            Some(json!({ "item": "0123456789ab" })),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = app
        .post(
            "/api/v1/pipeline/approvals",
            json!({ "item": "0123456789ab" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["approval"]["approved_by"], "rita");
    assert_eq!(v["run"].as_i64(), Some(run.id), "joins the queued run");
    assert_eq!(app.store.approvals(REPO).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_hook_says_so_when_the_pipeline_is_not_configured() {
    let app = TestApp::spawn(backends()[0]).await;
    let (st, v) = deliver(&app, "push", Sig::None, b"{}").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(v["message"].as_str().unwrap().contains("[pipeline]"), "{v}");
}

#[tokio::test]
async fn approving_an_id_no_post_mortem_has_is_refused_with_404() {
    let mut s = settings();
    let lookup: warroom_server::pipeline::ItemLookup = std::sync::Arc::new(|id: String| {
        Box::pin(async move {
            let target = |open| warroom_server::pipeline::ApprovalTarget {
                postmortem: "docs/post-mortems/2026-04-14-nfs.md".into(),
                action: "Migrate Immich library".into(),
                item_type: "Architecture".into(),
                priority: "P1".into(),
                open,
            };
            match id.as_str() {
                "aaaaaaaaaaaa" => Ok(Some(target(true))),
                "dddddddddddd" => Ok(Some(target(false))),
                "eeeeeeeeeeee" => Err("git fetch failed".into()),
                _ => Ok(None),
            }
        }) as warroom_server::pipeline::ItemLookupFuture
    });
    s.pipeline.as_mut().unwrap().items = Some(lookup);
    let app = TestApp::spawn_with(backends()[0], s).await;
    let (st, v) = app
        .post(
            "/api/v1/pipeline/approvals",
            json!({ "item": "0123456789ab" }),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["details"]["field"], "item");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("no follow-up with id 0123456789ab in docs/post-mortems on master"),
        "{v}"
    );
    let (st, v) = app
        .post(
            "/api/v1/pipeline/approvals",
            json!({ "item": "dddddddddddd" }),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, v) = app
        .post(
            "/api/v1/pipeline/approvals",
            json!({ "item": "eeeeeeeeeeee" }),
        )
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(app.store.approvals(REPO).await.unwrap().is_empty());
    let (st, v) = app
        .post(
            "/api/v1/pipeline/approvals",
            json!({ "item": "aaaaaaaaaaaa" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["item"]["action"], "Migrate Immich library");
    assert_eq!(v["item"]["type"], "Architecture");
    // Malformed bodies name the field, never a 500.
    let (st, v) = app
        .post("/api/v1/pipeline/approvals", json!({ "item": 12 }))
        .await;
    assert!(st.is_client_error(), "{st} {v}");
    let (st, v) = app
        .post(
            "/api/v1/pipeline/approvals",
            json!({ "itme": "aaaaaaaaaaaa" }),
        )
        .await;
    assert!(st.is_client_error(), "{st} {v}");
    assert!(v["message"].as_str().unwrap().contains("itme"), "{v}");
}
