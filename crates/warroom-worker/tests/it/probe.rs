use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;
use warroom_domain::monitor::FailureKind;
use warroom_worker::{Checker, Outcome, Prober};

use crate::support::{
    closed_port, http, http_target, https_target, install_crypto, monitor, prober, silent_listener,
};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[tokio::test]
async fn healthy_endpoint_is_up_with_status_and_latency() {
    let t = http_target().await;
    let r = prober()
        .check(&monitor("ok", 5, 2000, http(&t.url("/ok"))), now())
        .await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert_eq!((r.status_code, r.failure, r.error), (Some(200), None, None));
    assert!(r.latency > Duration::ZERO && r.latency < Duration::from_secs(2));
    assert_eq!(r.cert_not_after, None);
}

#[tokio::test]
async fn http_500_means_crashed() {
    let t = http_target().await;
    let r = prober()
        .check(&monitor("m", 5, 2000, http(&t.url("/fail"))), now())
        .await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.failure, Some(FailureKind::Crashed));
    assert_eq!(r.status_code, Some(500));
}

#[tokio::test]
async fn http_404_is_an_unexpected_status() {
    let t = http_target().await;
    let r = prober()
        .check(&monitor("m", 5, 2000, http(&t.url("/missing"))), now())
        .await;
    assert_eq!(r.failure, Some(FailureKind::UnexpectedStatus));
}

#[tokio::test]
async fn connection_refused_means_down() {
    let port = closed_port().await;
    let r = prober()
        .check(
            &monitor(
                "m",
                5,
                2000,
                http(&format!("http://127.0.0.1:{port}/health")),
            ),
            now(),
        )
        .await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.failure, Some(FailureKind::Down), "{r:?}");
    assert!(r.error.unwrap().to_lowercase().contains("refused"));
}

#[tokio::test]
async fn a_listener_that_never_answers_means_hung_after_the_timeout() {
    let addr = silent_listener().await;
    let started = std::time::Instant::now();
    let r = prober()
        .check(
            &monitor("m", 5, 300, http(&format!("http://{addr}/"))),
            now(),
        )
        .await;
    assert_eq!(r.failure, Some(FailureKind::Hung), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(r.latency >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_slow_response_means_hung() {
    let t = http_target().await;
    let r = prober()
        .check(&monitor("m", 5, 300, http(&t.url("/slow"))), now())
        .await;
    assert_eq!(r.failure, Some(FailureKind::Hung), "{r:?}");
}

#[tokio::test]
async fn body_checks_name_what_is_missing() {
    let t = http_target().await;
    let p = prober();
    let json_check = |path: &str| json!({"kind": "http", "url": t.url(path), "json_path": "$.status", "json_value": "ok"});
    let r = p
        .check(&monitor("m", 5, 2000, json_check("/ok")), now())
        .await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let r = p
        .check(&monitor("m", 5, 2000, json_check("/degraded")), now())
        .await;
    assert_eq!(r.failure, Some(FailureKind::KeywordMissing));
    assert!(r.error.unwrap().contains("\"degraded\""));
    let r = p
        .check(
            &monitor(
                "m",
                5,
                2000,
                json!({"kind": "http", "url": t.url("/ok"), "keyword": "healthy"}),
            ),
            now(),
        )
        .await;
    assert_eq!(r.failure, Some(FailureKind::KeywordMissing));
}

#[tokio::test]
async fn http_checks_reuse_one_connection() {
    let t = http_target().await;
    let p = prober();
    let m = monitor("m", 5, 2000, http(&t.url("/ok")));
    for _ in 0..5 {
        assert_eq!(p.check(&m, now()).await.outcome, Outcome::Up);
    }
    assert_eq!(t.seen.requests.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert_eq!(
        t.seen.peers.lock().unwrap().len(),
        1,
        "one keep-alive connection"
    );
}

#[tokio::test]
async fn tcp_connect_up_and_down() {
    let t = http_target().await;
    let p = prober();
    let up = json!({"kind": "tcp", "host": "127.0.0.1", "port": t.addr.port()});
    assert_eq!(
        p.check(&monitor("m", 5, 1000, up), now()).await.outcome,
        Outcome::Up
    );
    let down = json!({"kind": "tcp", "host": "localhost", "port": closed_port().await});
    let r = p.check(&monitor("m", 5, 1000, down), now()).await;
    assert_eq!(r.failure, Some(FailureKind::Down), "{r:?}");
    let nowhere = json!({"kind": "tcp", "host": "nowhere.invalid", "port": 80});
    let r = p.check(&monitor("m", 5, 2000, nowhere), now()).await;
    assert_eq!(r.failure, Some(FailureKind::DnsFailure), "{r:?}");
}

#[tokio::test]
async fn dns_resolution_of_localhost() {
    let p = prober();
    let r = p
        .check(
            &monitor(
                "m",
                5,
                2000,
                json!({"kind": "dns", "name": "localhost", "expected": ["127.0.0.1"]}),
            ),
            now(),
        )
        .await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let r = p
        .check(
            &monitor(
                "m",
                5,
                2000,
                json!({"kind": "dns", "name": "localhost", "expected": ["192.0.2.1"]}),
            ),
            now(),
        )
        .await;
    assert_eq!(r.failure, Some(FailureKind::DnsFailure));
    assert!(r.error.unwrap().contains("192.0.2.1"));
    let r = p
        .check(
            &monitor(
                "m",
                5,
                2000,
                json!({"kind": "dns", "name": "nowhere.invalid"}),
            ),
            now(),
        )
        .await;
    assert_eq!(r.failure, Some(FailureKind::DnsFailure));
}

fn trusting_prober() -> Prober {
    install_crypto();
    let root = reqwest::Certificate::from_der(include_bytes!("../fixtures/localhost.der")).unwrap();
    Prober::with_client(Prober::builder().tls_certs_only([root]).build().unwrap())
}

#[tokio::test]
async fn https_reports_certificate_expiry_and_warns_inside_the_window() {
    let addr = https_target().await;
    let url = format!("https://localhost:{}/", addr.port());
    let check = json!({"kind": "http", "url": url, "cert_expiry_warn_days": 14});
    let m = monitor("tls", 5, 3000, check);
    let p = trusting_prober();
    let r = p.check(&m, now()).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    let expiry = datetime!(2126-10-30 02:55:53 UTC);
    assert_eq!(r.cert_not_after, Some(expiry));
    // Ten days before expiry (the server closes each connection, so the handshake repeats).
    let r = p.check(&m, expiry - time::Duration::days(10)).await;
    assert_eq!(r.outcome, Outcome::Warning);
    assert_eq!(r.failure, Some(FailureKind::CertExpiring));
    assert!(r.outcome.is_success());
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let addr = https_target().await;
    let url = format!("https://localhost:{}/", addr.port());
    let r = prober()
        .check(&monitor("tls", 5, 3000, http(&url)), now())
        .await;
    assert_eq!(r.failure, Some(FailureKind::TlsError), "{r:?}");
}
