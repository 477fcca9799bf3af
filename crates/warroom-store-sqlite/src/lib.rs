//! The embedded SQLite backend: the default, one file next to the binary.
//!
//! WAL mode lets readers proceed while one writer commits; `synchronous=FULL` makes a commit
//! survive power loss, which is what a 2xx from the API promises.
#![deny(missing_docs)]

use sqlx::{Executor, any::AnyPoolOptions};
use std::time::Duration;
use warroom_store::{
    Result, StoreError,
    sql::{Migration, SqlStore, migrate},
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
    Migration {
        version: 14,
        name: "alert_intake_merged",
        sql: include_str!("../migrations/0014_alert_intake_merged.sql"),
    },
    Migration {
        version: 15,
        name: "alerts_expiring",
        sql: include_str!("../migrations/0015_alerts_expiring.sql"),
    },
    Migration {
        version: 16,
        name: "check_results_by_monitor",
        sql: include_str!("../migrations/0016_check_results_by_monitor.sql"),
    },
    Migration {
        version: 17,
        name: "silences",
        sql: include_str!("../migrations/0017_silences.sql"),
    },
    Migration {
        version: 18,
        name: "alert_keys",
        sql: include_str!("../migrations/0018_alert_keys.sql"),
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

/// The alert intake's file for a database URL: the database's path with `.intake` appended
/// (`warroom.db` → `warroom.db.intake`), with the same query options. An in-memory database
/// has no file to put beside, and is refused.
pub fn intake_url(url: &str) -> Result<String> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(StoreError::Migration(format!(
            "cannot use the in-memory SQLite database {url}: warroom keeps a second file beside the database; give a file path, e.g. sqlite://warroom.db"
        )));
    }
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    Ok(match query {
        Some(q) => format!("{path}.intake?{q}"),
        None => format!("{path}.intake"),
    })
}

/// The intake file's schema: one row per group commit (see `warroom_store::sql::ingest`). Its
/// ids are never handed out twice (AUTOINCREMENT), since the main file's mark of the newest
/// merged row is compared with them.
const INTAKE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS alert_intake (id INTEGER PRIMARY KEY AUTOINCREMENT, alerts BIGINT NOT NULL, body TEXT NOT NULL)";

async fn open(url: &str, connections: u32) -> Result<sqlx::AnyPool> {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        // One writer at a time (SQLite's rule) and a few readers: each connection is a thread
        // with its own malloc arena, and more of them only fragment memory (8 cost 60 MB of
        // peak RSS on a stream of new alerts).
        .max_connections(connections)
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
        .map_err(|e| StoreError::Migration(format!("cannot open SQLite database {url}: {e}; check the path exists and is writable")))
}

/// Opens (creating if needed) and migrates a SQLite database and its alert intake file.
pub async fn connect(url: &str) -> Result<SqlStore> {
    let intake_url = intake_url(url)?;
    let pool = open(url, 4).await?;
    migrate(&pool, MIGRATIONS).await?;
    let intake_path = intake_url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let had_intake = std::path::Path::new(&intake_path).exists();
    // Two: the writer's append and a reader (the processor's, the checkpoint's); each connection is a
    // thread with a malloc arena of its own, which is what peak RSS is made of under a flood.
    let intake = open(&intake_url, 2).await?;
    sqlx::raw_sql(INTAKE_SCHEMA)
        .execute(&intake)
        .await
        .map_err(|e| StoreError::Migration(format!("alert intake {intake_url}: {e}")))?;
    let merged = take_over_intake(&pool, &intake).await?;
    if !had_intake && merged > 0 {
        tracing::warn!(
            file = %intake_path,
            merged_up_to = merged,
            "the alert intake file was missing and is started anew: alerts accepted but not yet merged when it went, if any, are lost; keep it with the database when copying or restoring"
        );
    }
    tracing::debug!(database.backend = "sqlite", "store ready");
    Ok(SqlStore::sqlite(pool, intake))
}

/// Moves what an earlier version left in the main file's `alert_intake` into the intake file
/// (ids kept, so a crash between the two steps only copies again), and makes sure the intake
/// file never hands out an id at or below the newest merged row, which would look merged
/// already. Returns that row's id.
async fn take_over_intake(pool: &sqlx::AnyPool, intake: &sqlx::AnyPool) -> Result<i64> {
    use sqlx::Row;
    let left = sqlx::query("SELECT id, alerts, body FROM alert_intake ORDER BY id")
        .fetch_all(pool)
        .await?;
    if !left.is_empty() {
        let mut tx = intake.begin().await?;
        for row in &left {
            sqlx::query(
                "INSERT OR IGNORE INTO alert_intake (id, alerts, body) VALUES ($1, $2, $3)",
            )
            .bind(row.try_get::<i64, _>("id")?)
            .bind(row.try_get::<i64, _>("alerts")?)
            .bind(row.try_get::<String, _>("body")?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        sqlx::query("DELETE FROM alert_intake")
            .execute(pool)
            .await?;
        tracing::info!(
            rows = left.len(),
            "moved the alert intake into its own file"
        );
    }
    let merged: i64 = sqlx::query_scalar("SELECT id FROM alert_intake_merged")
        .fetch_one(pool)
        .await?;
    let next: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'alert_intake'")
            .fetch_optional(intake)
            .await?;
    match next {
        Some(seq) if seq >= merged => {}
        Some(_) => {
            sqlx::query("UPDATE sqlite_sequence SET seq = $1 WHERE name = 'alert_intake'")
                .bind(merged)
                .execute(intake)
                .await?;
        }
        None if merged > 0 => {
            sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ('alert_intake', $1)")
                .bind(merged)
                .execute(intake)
                .await?;
        }
        None => {}
    }
    Ok(merged)
}
