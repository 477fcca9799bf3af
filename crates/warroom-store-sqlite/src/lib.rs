//! The embedded SQLite backend: the default, one file next to the binary.
//!
//! WAL mode lets readers proceed while one writer commits; `synchronous=FULL` makes a commit
//! survive power loss, which is what a 2xx from the API promises.
#![deny(missing_docs)]

use sqlx::{Executor, any::AnyPoolOptions};
use std::time::Duration;
use warroom_store::{
    Result, StoreError,
    sql::{Dialect, Migration, SqlStore, migrate},
};

/// Embedded migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "incident_core",
        sql: include_str!("../migrations/0001_incident_core.sql"),
    },
    Migration {
        version: 2,
        name: "outbox",
        sql: include_str!("../migrations/0002_outbox.sql"),
    },
    Migration {
        version: 3,
        name: "alerts",
        sql: include_str!("../migrations/0003_alerts.sql"),
    },
    Migration {
        version: 4,
        name: "outbox_recipient",
        sql: include_str!("../migrations/0004_outbox_recipient.sql"),
    },
    Migration {
        version: 5,
        name: "service_health",
        sql: include_str!("../migrations/0005_service_health.sql"),
    },
    Migration {
        version: 6,
        name: "checks",
        sql: include_str!("../migrations/0006_checks.sql"),
    },
    Migration {
        version: 7,
        name: "chat_rooms",
        sql: include_str!("../migrations/0007_chat_rooms.sql"),
    },
    Migration {
        version: 8,
        name: "pipeline",
        sql: include_str!("../migrations/0008_pipeline.sql"),
    },
    Migration {
        version: 9,
        name: "api_monitors",
        sql: include_str!("../migrations/0009_api_monitors.sql"),
    },
    Migration {
        version: 10,
        name: "alerts_pending_order",
        sql: include_str!("../migrations/0010_alerts_pending_order.sql"),
    },
    Migration {
        version: 11,
        name: "alert_intake",
        sql: include_str!("../migrations/0011_alert_intake.sql"),
    },
    Migration {
        version: 12,
        name: "check_failure",
        sql: include_str!("../migrations/0012_check_failure.sql"),
    },
    Migration {
        version: 13,
        name: "intake_ids_never_reused",
        sql: include_str!("../migrations/0013_intake_ids_never_reused.sql"),
    },
];

/// Normalises `sqlite://file.db` and `sqlite:file.db` so that a missing file is created.
pub fn normalise_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Opens (creating if needed) and migrates a SQLite database.
pub async fn connect(url: &str) -> Result<SqlStore> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        // One writer at a time (SQLite's rule) and a few readers: each connection is a thread
        // with its own malloc arena, and more of them only fragment memory (8 cost 60 MB of
        // peak RSS on a stream of new alerts).
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        // An embedded database cannot drop a connection, and the ping sqlx sends before every
        // acquire is a round trip to the connection's thread: a third of a small query.
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // No automatic checkpoint: it runs inside the commit that crosses its
                // threshold, holding up every writer; the store checkpoints on a connection
                // of its own instead (`SqlStore::checkpoint_forever`). A WAL that grew in a
                // flood is cut back to 64 MB when it starts over.
                conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;")
                    .await?;
                Ok(())
            })
        })
        .connect(&normalise_url(url))
        .await
        .map_err(|e| StoreError::Migration(format!("cannot open SQLite database {url}: {e}; check the path exists and is writable")))?;
    migrate(&pool, MIGRATIONS).await?;
    tracing::debug!(database.backend = "sqlite", "store ready");
    Ok(SqlStore::new(pool, Dialect::Sqlite))
}
