//! Test harness: the real app on `127.0.0.1:0`, a real database, a real HTTP client.
//!
//! SQLite always runs; PostgreSQL runs when `WARROOM_TEST_DATABASE_URL` is set, each test in a
//! fresh schema so tests never see each other's rows.
#![deny(missing_docs)]

pub mod git;
pub mod slack;
pub mod smtp;

use reqwest::StatusCode;
use serde_json::Value;
use std::sync::{Arc, Once};
use time::macros::datetime;
use tokio::{net::TcpListener, sync::oneshot};
use warroom_server::{AppState, Settings};
use warroom_store::{ManualClock, Store, TokenRole};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in a temp dir.
    Sqlite,
    /// The server named by `WARROOM_TEST_DATABASE_URL`.
    Postgres,
}

/// The backends available here. Without `WARROOM_TEST_DATABASE_URL` PostgreSQL is skipped,
/// loudly, once per test binary.
pub fn backends() -> Vec<Backend> {
    static WARN: Once = Once::new();
    if std::env::var("WARROOM_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        WARN.call_once(|| {
            eprintln!(
                "\n!!!!!!!! WARROOM_TEST_DATABASE_URL is not set: PostgreSQL tests are SKIPPED on this machine. \
                 CI sets it (see .ci/run). !!!!!!!!\n"
            )
        });
        vec![Backend::Sqlite]
    }
}

/// A database for one test; dropped with it (the SQLite file) or left for inspection (the
/// PostgreSQL schema, named in the URL).
pub struct TestDb {
    /// Connection URL.
    pub url: String,
    /// Keeps the SQLite temp dir alive.
    pub dir: Option<tempfile::TempDir>,
}

/// Creates an empty database on `backend`.
pub async fn fresh_database(backend: Backend) -> anyhow::Result<TestDb> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("warroom.db").display());
            Ok(TestDb {
                url,
                dir: Some(dir),
            })
        }
        Backend::Postgres => {
            let base = std::env::var("WARROOM_TEST_DATABASE_URL")?;
            let schema = format!("wr_test_{}", uuid::Uuid::new_v4().simple());
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&base).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut conn)
                .await?;
            let sep = if base.contains('?') { '&' } else { '?' };
            Ok(TestDb {
                url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                dir: None,
            })
        }
    }
}

/// Runs a `SELECT count(*) ...` on a SQLite database's file alone, ignoring its WAL
/// (`immutable=1`): what a backup that copies the one file would hold.
pub async fn count_in_sqlite_file(url: &str, count_sql: &str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(url.trim_start_matches("sqlite://"))
        .immutable(true)
        .read_only(true);
    let mut file = sqlx::SqliteConnection::connect_with(&opts).await?;
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.to_owned()))
        .fetch_one(&mut file)
        .await?;
    file.close().await?;
    Ok(n)
}

/// Opens the store for a test database.
pub async fn open_store(backend: Backend, db: &TestDb) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match backend {
        Backend::Sqlite => Arc::new(warroom_store_sqlite::connect(&db.url).await?),
        Backend::Postgres => Arc::new(warroom_store_postgres::connect(&db.url).await?),
    })
}

/// A running app.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// An admin token's secret.
    pub admin: String,
    /// A responder token's secret.
    pub responder: String,
    /// A viewer token's secret.
    pub viewer: String,
    /// The app's clock.
    pub clock: Arc<ManualClock>,
    /// The app's store, for assertions behind the API's back.
    pub store: Arc<dyn Store>,
    /// Which backend.
    pub backend: Backend,
    /// HTTP client.
    pub http: reqwest::Client,
    _db: TestDb,
    shutdown: Option<oneshot::Sender<()>>,
    processor: Option<oneshot::Sender<()>>,
    state: AppState,
}

/// The instant every test clock starts at.
pub const T0: time::OffsetDateTime = datetime!(2026-01-12 14:30 UTC);

impl TestApp {
    /// Spawns with default settings.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, Settings::default()).await
    }

    /// Spawns with custom settings.
    pub async fn spawn_with(backend: Backend, settings: Settings) -> TestApp {
        Self::try_spawn(backend, settings, true)
            .await
            .unwrap_or_else(|e| panic!("cannot start the test app on {backend:?}: {e:#}"))
    }

    /// Spawns without the alert processor: alerts are committed and stay pending, as after a
    /// crash between the commit and acting on them. [`TestApp::settle`] still acts on them.
    pub async fn spawn_without_processor(backend: Backend) -> TestApp {
        Self::try_spawn(backend, Settings::default(), false)
            .await
            .unwrap_or_else(|e| panic!("cannot start the test app on {backend:?}: {e:#}"))
    }

    /// Acts on every pending alert now (waiting for a pass the background processor is
    /// running), so a test can check the effects of the alerts it just posted. Alert intake is
    /// asynchronous: a 2xx means committed, not yet acted on.
    pub async fn settle(&self) {
        warroom_server::api::alerts::drain(&self.state)
            .await
            .unwrap_or_else(|e| panic!("acting on pending alerts failed: {e:?}"));
    }

    /// Resolves the firing alerts whose end has passed, as the processor's look does; how many.
    pub async fn expire_due(&self) -> usize {
        warroom_server::api::alerts::expire_due(&self.state)
            .await
            .unwrap_or_else(|e| panic!("resolving expired alerts failed: {e:?}"))
    }

    /// Starts the alert processor of an app spawned without one, as a restart would.
    pub fn start_processor(&mut self) {
        if self.processor.is_none() {
            let (tx, rx) = oneshot::channel::<()>();
            tokio::spawn(warroom_server::api::alerts::run_processor(
                self.state.clone(),
                async {
                    let _ = rx.await;
                },
            ));
            self.processor = Some(tx);
        }
    }

    async fn try_spawn(
        backend: Backend,
        settings: Settings,
        with_processor: bool,
    ) -> anyhow::Result<TestApp> {
        let db = fresh_database(backend).await?;
        let store = open_store(backend, &db).await?;
        let clock = Arc::new(ManualClock::new(T0));
        let admin = store
            .create_token("admin", TokenRole::Admin, T0)
            .await?
            .secret;
        let responder = store
            .create_token("rita", TokenRole::Responder, T0)
            .await?
            .secret;
        let viewer = store
            .create_token("vic", TokenRole::Viewer, T0)
            .await?
            .secret;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = AppState::new(store.clone(), clock.clone(), settings);
        let (tx, rx) = oneshot::channel::<()>();
        let (processor_tx, processor_rx) = oneshot::channel::<()>();
        let server_state = state.clone();
        tokio::spawn(async move {
            let _ = warroom_server::serve(listener, server_state, async {
                let _ = rx.await;
            })
            .await;
        });
        let processor = if with_processor {
            tokio::spawn(warroom_server::api::alerts::run_processor(
                state.clone(),
                async {
                    let _ = processor_rx.await;
                },
            ));
            Some(processor_tx)
        } else {
            None
        };
        // reqwest is built without a default TLS provider (no C crypto); install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let app = TestApp {
            url,
            admin,
            responder,
            viewer,
            clock,
            store,
            backend,
            http,
            _db: db,
            shutdown: Some(tx),
            processor,
            state,
        };
        app.wait_ready().await?;
        Ok(app)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(format!("{}/healthz", self.url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        anyhow::bail!("app did not become healthy")
    }

    /// Sends a request with a token (or none) and returns status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {path} failed: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    /// The app's clock reading.
    pub fn clock_now(&self) -> time::OffsetDateTime {
        use warroom_store::Clock;
        self.clock.now()
    }

    /// GET as the responder.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(&self.responder), None)
            .await
    }

    /// POST as the responder.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::POST,
            path,
            Some(&self.responder),
            Some(body),
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(tx) = self.processor.take() {
            let _ = tx.send(());
        }
    }
}
