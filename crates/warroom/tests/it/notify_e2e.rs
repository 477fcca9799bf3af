//! Notifications end to end: the real binary, a real receiver, signatures checked.

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use std::sync::{Arc, Mutex};
use warroom_testkit::{backends, fresh_database};

use super::cli::{Server, create_token, ok, run};

const SECRET: &str = "e2e-webhook-secret";

#[derive(Default)]
struct Inbox {
    got: Vec<(String, serde_json::Value, bool)>,
    down: bool,
}

async fn hook(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inbox = inbox.lock().unwrap();
    if inbox.down {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let signed = headers
        .get("x-warroom-signature")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("sha256={want}"));
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    inbox
        .got
        .push((key, serde_json::from_slice(&body).unwrap(), signed));
    StatusCode::OK
}

async fn receiver() -> (String, Arc<Mutex<Inbox>>) {
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(inbox.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, inbox)
}

fn config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let p = dir.join("warroom.toml");
    std::fs::write(
        &p,
        format!(
            "[[channels]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"E2E_HOOK_SECRET\"\n\n\
             [routing]\npage = [\"pager\"]\nupdates = [\"pager\"]\n"
        ),
    )
    .unwrap();
    p
}

async fn wait_for(inbox: &Arc<Mutex<Inbox>>, n: usize) -> Vec<(String, serde_json::Value, bool)> {
    for _ in 0..500 {
        if inbox.lock().unwrap().got.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    inbox.lock().unwrap().got.clone()
}

#[tokio::test]
async fn a_sev1_declaration_pages_through_a_signed_webhook_and_survives_a_restart() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (url, inbox) = receiver().await;
        let cfg = config(dir, &url);
        let cfg = cfg.to_str().unwrap();
        let token = create_token(dir, &db.url, "responder", "ana");
        let senv = [("E2E_HOOK_SECRET", SECRET)];

        let server = Server::start_with(&db.url, dir, &["--config", cfg], &senv);
        let env = server.client_env(&token);
        ok(&run(
            dir,
            &env,
            &[
                "declare",
                "--service",
                "api",
                "--summary",
                "API down",
                "--users-can-access",
                "no",
            ],
        ));
        let got = wait_for(&inbox, 1).await;
        assert_eq!(got.len(), 1, "{b:?}: one page");
        let (_, page, signed) = &got[0];
        assert!(signed, "{b:?}: signature must verify");
        assert_eq!(page["kind"], "page");
        assert_eq!(page["severity"], 1);
        assert!(
            page["text"]
                .as_str()
                .unwrap()
                .starts_with("🔴 INCIDENT DECLARED\nService: API\nSeverity: 1 (Critical)"),
            "{page}"
        );

        // The receiver goes down; an update is accepted and stays pending; warroom is killed.
        inbox.lock().unwrap().down = true;
        ok(&run(
            dir,
            &env,
            &[
                "update",
                "1",
                "--action",
                "Failing over",
                "--findings",
                "DB unreachable",
                "--next",
                "Restore",
            ],
        ));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(server);
        inbox.lock().unwrap().down = false;

        let _server = Server::start_with(&db.url, dir, &["--config", cfg], &senv);
        // The first retry is at most a second or so after the failure.
        let got = wait_for(&inbox, 2).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let got_after = inbox.lock().unwrap().got.clone();
        assert_eq!(
            got.len(),
            2,
            "{b:?}: the pending update was delivered after the restart"
        );
        assert_eq!(got_after.len(), 2, "{b:?}: and exactly once");
        assert_eq!(got[1].1["kind"], "update_posted");
        assert_ne!(got[0].0, got[1].0);
        let tl = ok(&run(
            dir,
            &[
                ("WARROOM_URL", _server.url.as_str()),
                ("WARROOM_TOKEN", token.as_str()),
            ],
            &["timeline", "1"],
        ));
        assert!(tl.contains("notification_delivered"), "{b:?}: {tl}");
    }
}

#[tokio::test]
async fn a_separate_worker_process_shares_the_outbox_without_duplicates() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (url, inbox) = receiver().await;
        let cfg = config(dir, &url);
        let cfg = cfg.to_str().unwrap();
        let token = create_token(dir, &db.url, "responder", "ana");
        let senv = [("E2E_HOOK_SECRET", SECRET)];
        let server = Server::start_with(&db.url, dir, &["--config", cfg], &senv);
        struct Reap(std::process::Child);
        impl Drop for Reap {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let worker = std::process::Command::new(env!("CARGO_BIN_EXE_warroom"))
            .args(["worker", "--config", cfg, "--database", &db.url])
            .envs(senv.iter().copied())
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut worker = Reap(worker);
        let env = server.client_env(&token);
        for k in 0..6 {
            ok(&run(
                dir,
                &env,
                &[
                    "declare",
                    "--service",
                    "api",
                    "--summary",
                    &format!("outage {k}"),
                    "--severity",
                    "1",
                ],
            ));
        }
        let got = wait_for(&inbox, 6).await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let got_after = inbox.lock().unwrap().got.clone();
        assert!(
            worker.0.try_wait().unwrap().is_none(),
            "{b:?}: the worker process must still be running"
        );
        drop(worker);
        assert_eq!(got.len(), 6, "{b:?}");
        let mut keys: Vec<String> = got_after.iter().map(|g| g.0.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(
            (got_after.len(), keys.len()),
            (6, 6),
            "{b:?}: every page exactly once with two dispatchers"
        );
    }
}
