//! Monitors created through the API, and the version the scheduler polls to pick them up.
//!
//! Config monitors are not stored: the TOML file is their source of truth, and storing a copy
//! would let the two drift. The API refuses their ids (see the server), so the two sets never
//! overlap by construction; the scheduler still lets the config win if a later config adds an
//! id an API monitor already uses.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;
use warroom_domain::{monitor::MonitorSpec, timefmt::rfc3339};

use crate::{Result, StoreError, row::parse_ts, sql::SqlStore};

/// A monitor stored through the API, with who wrote it and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMonitor {
    /// The spec as accepted (it passed the same validation as `[[monitors]]`).
    pub spec: MonitorSpec,
    /// The token name that created it.
    pub created_by: String,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last replaced.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Monitors managed through the API.
#[async_trait]
pub trait MonitorStore: Send + Sync {
    /// Stores a new monitor; [`StoreError::Conflict`] when the id is taken.
    async fn create_monitor(
        &self,
        spec: &MonitorSpec,
        author: &str,
        now: OffsetDateTime,
    ) -> Result<StoredMonitor>;
    /// Replaces a monitor's spec; [`StoreError::NotFound`] when there is none with its id.
    async fn replace_monitor(
        &self,
        spec: &MonitorSpec,
        now: OffsetDateTime,
    ) -> Result<StoredMonitor>;
    /// Deletes a monitor; false when there was none. Its check history stays until retention
    /// removes it, so uptime reports do not lose a deleted monitor's past at once.
    async fn delete_monitor(&self, id: &str) -> Result<bool>;
    /// One API monitor.
    async fn api_monitor(&self, id: &str) -> Result<Option<StoredMonitor>>;
    /// Every API monitor, by id.
    async fn api_monitors(&self) -> Result<Vec<StoredMonitor>>;
    /// Grows with every create, replace and delete: equal values mean an unchanged set.
    async fn monitor_set_version(&self) -> Result<i64>;
}

fn monitor_from_row(row: &AnyRow) -> Result<StoredMonitor> {
    let spec: String = row.try_get("spec")?;
    Ok(StoredMonitor {
        spec: serde_json::from_str(&spec)
            .map_err(|e| StoreError::Corrupt(format!("monitor spec: {e}")))?,
        created_by: row.try_get("created_by")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
    })
}

fn spec_json(spec: &MonitorSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn bump_version(tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
    sqlx::query("UPDATE monitor_set SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl MonitorStore for SqlStore {
    async fn create_monitor(
        &self,
        spec: &MonitorSpec,
        author: &str,
        now: OffsetDateTime,
    ) -> Result<StoredMonitor> {
        let (_gate, mut tx) = self.begin_write_tx().await?;
        let taken = || {
            StoreError::Conflict(format!(
                "a monitor with id `{}` exists; replace it with PUT /api/v1/monitors/{} or pick another id",
                spec.id, spec.id
            ))
        };
        let inserted = sqlx::query(
            "INSERT INTO api_monitors (id, spec, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&spec.id)
        .bind(spec_json(spec)?)
        .bind(author)
        .bind(rfc3339(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // ON CONFLICT rather than a SELECT first: two concurrent creates on PostgreSQL would
        // both see no row, and the loser would get a unique violation instead of a 409.
        if inserted == 0 {
            return Err(taken());
        }
        bump_version(&mut tx).await?;
        tx.commit().await?;
        Ok(StoredMonitor {
            spec: spec.clone(),
            created_by: author.to_owned(),
            created_at: now,
            updated_at: now,
        })
    }

    async fn replace_monitor(
        &self,
        spec: &MonitorSpec,
        now: OffsetDateTime,
    ) -> Result<StoredMonitor> {
        let (_gate, mut tx) = self.begin_write_tx().await?;
        let updated =
            sqlx::query("UPDATE api_monitors SET spec = $2, updated_at = $3 WHERE id = $1")
                .bind(&spec.id)
                .bind(spec_json(spec)?)
                .bind(rfc3339(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound {
                what: "monitor",
                key: spec.id.clone(),
            });
        }
        bump_version(&mut tx).await?;
        let row = sqlx::query(
            "SELECT spec, created_by, created_at, updated_at FROM api_monitors WHERE id = $1",
        )
        .bind(&spec.id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        monitor_from_row(&row)
    }

    async fn delete_monitor(&self, id: &str) -> Result<bool> {
        let (_gate, mut tx) = self.begin_write_tx().await?;
        let deleted = sqlx::query("DELETE FROM api_monitors WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted > 0 {
            bump_version(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn api_monitor(&self, id: &str) -> Result<Option<StoredMonitor>> {
        let row = sqlx::query(
            "SELECT spec, created_by, created_at, updated_at FROM api_monitors WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(monitor_from_row).transpose()
    }

    async fn api_monitors(&self) -> Result<Vec<StoredMonitor>> {
        let rows = sqlx::query(
            "SELECT spec, created_by, created_at, updated_at FROM api_monitors ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(monitor_from_row).collect()
    }

    async fn monitor_set_version(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT version FROM monitor_set WHERE id = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }
}
