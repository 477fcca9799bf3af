//! Targets for the probes: an HTTP server with healthy, failing, slow and wrong answers, a closed
//! port, a listener that never answers, and an HTTPS server with a test certificate.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use warroom_domain::monitor::{Monitor, MonitorSpec};
use warroom_worker::Prober;

pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub fn prober() -> Prober {
    install_crypto();
    Prober::new().unwrap()
}

/// What the target saw.
#[derive(Default)]
pub struct Seen {
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub requests: AtomicUsize,
    pub peers: Mutex<HashSet<SocketAddr>>,
}

pub struct Target {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

impl Target {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn busy(State(seen): State<Arc<Seen>>) -> &'static str {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    "ok"
}

pub async fn http_target() -> Target {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route(
            "/ok",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no") }))
        .route(
            "/degraded",
            get(|| async { Json(serde_json::json!({"status": "degraded"})) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/busy", get(busy))
        .layer(axum::middleware::from_fn_with_state(
            seen.clone(),
            |State(seen): State<Arc<Seen>>,
             ConnectInfo(peer): ConnectInfo<SocketAddr>,
             req: axum::extract::Request,
             next: axum::middleware::Next| async move {
                seen.requests.fetch_add(1, Ordering::SeqCst);
                seen.peers.lock().unwrap().insert(peer);
                next.run(req).await
            },
        ))
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Target { addr, seen }
}

/// A port nothing listens on: bound, then released.
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Accepts connections and never says a word.
pub async fn silent_listener() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// HTTPS on `localhost` with the fixture certificate; answers 200 to anything.
pub async fn https_target() -> SocketAddr {
    install_crypto();
    let cert = rustls::pki_types::CertificateDer::from(
        include_bytes!("../fixtures/localhost.der").to_vec(),
    );
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
        include_bytes!("../fixtures/localhost.key.der")
            .to_vec()
            .into(),
    );
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// A validated monitor from the check's JSON (the TOML shape).
pub fn monitor(id: &str, interval_secs: u64, timeout_ms: u64, check: serde_json::Value) -> Monitor {
    let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
        "id": id,
        "service": "api",
        "interval_secs": interval_secs,
        "timeout_ms": timeout_ms,
        "check": check,
    }))
    .unwrap();
    spec.validate("monitors[0]").unwrap()
}

pub fn http(url: &str) -> serde_json::Value {
    serde_json::json!({"kind": "http", "url": url})
}
