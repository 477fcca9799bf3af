//! Silences and maintenance windows made through the API (Alertmanager's `/api/v2/silences`),
//! beside the config file's.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;
use warroom_domain::alert::MatcherSpec;
use warroom_domain::timefmt::rfc3339;

use crate::{Result, StoreError, row::parse_ts, sql::SqlStore};

/// A silence as stored: the matchers as they were accepted (validated like `[[silences]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredSilence {
    /// Its id (Alertmanager's `silenceID`).
    pub id: String,
    /// Which alerts.
    pub matchers: Vec<MatcherSpec>,
    /// From.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// Until (exclusive); an expired silence ends when it was expired.
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// The token name that made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last changed (made or expired).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Silences made through the API.
#[async_trait]
pub trait SilenceStore: Send + Sync {
    /// Stores a new silence.
    async fn create_silence(&self, silence: &StoredSilence) -> Result<()>;
    /// Silences that end after `after`, soonest ending first: the active, the pending and those
    /// that ended since.
    async fn silences_ending_after(&self, after: OffsetDateTime) -> Result<Vec<StoredSilence>>;
    /// One silence.
    async fn silence(&self, id: &str) -> Result<Option<StoredSilence>>;
    /// Ends a silence at `now` if it had not ended yet; [`StoreError::NotFound`] when there is no
    /// such silence. Returns it as it is afterwards.
    async fn expire_silence(&self, id: &str, now: OffsetDateTime) -> Result<StoredSilence>;
}

fn silence_from_row(row: &AnyRow) -> Result<StoredSilence> {
    let matchers: String = row.try_get("matchers")?;
    Ok(StoredSilence {
        id: row.try_get("id")?,
        matchers: serde_json::from_str(&matchers)
            .map_err(|e| StoreError::Corrupt(format!("silence matchers: {e}")))?,
        starts_at: parse_ts(&row.try_get::<String, _>("starts_at")?)?,
        ends_at: parse_ts(&row.try_get::<String, _>("ends_at")?)?,
        created_by: row.try_get("created_by")?,
        comment: row.try_get("comment")?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
    })
}

const COLUMNS: &str = "id, matchers, starts_at, ends_at, created_by, comment, updated_at";

#[async_trait]
impl SilenceStore for SqlStore {
    async fn create_silence(&self, s: &StoredSilence) -> Result<()> {
        let (_gate, mut tx) = self.begin_write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(
            serde_json::to_string(&s.matchers)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        )
        .bind(rfc3339(s.starts_at))
        .bind(rfc3339(s.ends_at))
        .bind(&s.created_by)
        .bind(&s.comment)
        .bind(rfc3339(s.updated_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "a silence with id `{}` exists; leave the id out to make a new one",
                s.id
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn silences_ending_after(&self, after: OffsetDateTime) -> Result<Vec<StoredSilence>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM silences WHERE ends_at > $1 ORDER BY ends_at, id"
        )))
        .bind(rfc3339(after))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(silence_from_row).collect()
    }

    async fn silence(&self, id: &str) -> Result<Option<StoredSilence>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM silences WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(silence_from_row).transpose()
    }

    async fn expire_silence(&self, id: &str, now: OffsetDateTime) -> Result<StoredSilence> {
        let (_gate, mut tx) = self.begin_write_tx().await?;
        let ts = rfc3339(now);
        // A silence that has not started ends at its start: it never muted anything.
        sqlx::query(
            "UPDATE silences SET ends_at = CASE WHEN starts_at > $2 THEN starts_at ELSE $2 END, updated_at = $2 \
             WHERE id = $1 AND ends_at > $2",
        )
        .bind(id)
        .bind(&ts)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM silences WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some(r) => silence_from_row(&r),
            None => Err(StoreError::NotFound {
                what: "silence",
                key: id.to_owned(),
            }),
        }
    }
}
