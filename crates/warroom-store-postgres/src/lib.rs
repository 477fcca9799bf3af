//! The PostgreSQL backend, for installations that outgrow one file or run several workers.
#![deny(missing_docs)]

use sqlx::any::AnyPoolOptions;
use std::time::Duration;
use warroom_store::{
    Result, StoreError,
    sql::{Dialect, Migration, SqlStore, migrate},
};

/// Embedded migrations, in order; numbered like SQLite's.
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

/// Connects to and migrates a PostgreSQL database.
pub async fn connect(url: &str) -> Result<SqlStore> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| StoreError::Migration(format!("cannot connect to PostgreSQL: {e}; check the URL, that the server runs and accepts this user")))?;
    migrate(&pool, MIGRATIONS).await?;
    tracing::debug!(database.backend = "postgres", "store ready");
    Ok(SqlStore::new(pool, Dialect::Postgres))
}
