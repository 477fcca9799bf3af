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
    /// Changes a silence in place (same id): its matchers, times, author and comment become
    /// `silence`'s. [`StoreError::Conflict`] when it has ended meanwhile, [`StoreError::NotFound`]
    /// when there is no such silence.
    async fn update_silence(&self, silence: &StoredSilence, now: OffsetDateTime) -> Result<()>;
    /// Replaces silence `old` by `new` (a new id) in one transaction, as Alertmanager does with
    /// a change it cannot make in place: `old` is expired at `now` (if it had not ended) and
    /// `new` stored. [`StoreError::NotFound`] when there is no silence `old`.
    async fn replace_silence(
        &self,
        old: &str,
        new: &StoredSilence,
        now: OffsetDateTime,
    ) -> Result<()>;
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
        insert_silence(&mut tx, s).await?;
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
        end_silence(&mut tx, id, now).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM silences WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some(r) => silence_from_row(&r),
            None => Err(not_found(id)),
        }
    }

    async fn update_silence(&self, s: &StoredSilence, now: OffsetDateTime) -> Result<()> {
        let (_gate, mut tx) = self.begin_write_tx().await?;
        let changed = bind_columns(
            sqlx::query(
                "UPDATE silences SET matchers = $2, starts_at = $3, ends_at = $4, created_by = $5, comment = $6, updated_at = $7 \
                 WHERE id = $1 AND ends_at > $8",
            ),
            s,
        )?
        .bind(rfc3339(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            let exists = sqlx::query("SELECT id FROM silences WHERE id = $1")
                .bind(&s.id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Err(if exists {
                StoreError::Conflict(format!(
                    "silence `{}` has ended meanwhile; make a new one (leave the id out)",
                    s.id
                ))
            } else {
                not_found(&s.id)
            });
        }
        tx.commit().await?;
        Ok(())
    }

    async fn replace_silence(
        &self,
        old: &str,
        new: &StoredSilence,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (_gate, mut tx) = self.begin_write_tx().await?;
        let exists = sqlx::query("SELECT id FROM silences WHERE id = $1")
            .bind(old)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Err(not_found(old));
        }
        end_silence(&mut tx, old, now).await?;
        insert_silence(&mut tx, new).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "silence",
        key: id.to_owned(),
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a silence's columns as `$1`-`$7`, in the order of [`COLUMNS`].
fn bind_columns<'q>(q: Query<'q>, s: &'q StoredSilence) -> Result<Query<'q>> {
    let matchers =
        serde_json::to_string(&s.matchers).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(q.bind(&s.id)
        .bind(matchers)
        .bind(rfc3339(s.starts_at))
        .bind(rfc3339(s.ends_at))
        .bind(&s.created_by)
        .bind(&s.comment)
        .bind(rfc3339(s.updated_at)))
}

/// Ends a silence at `now` unless it has ended; one that has not started ends at its start (it
/// never muted anything).
async fn end_silence(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let ts = rfc3339(now);
    sqlx::query(
        "UPDATE silences SET ends_at = CASE WHEN starts_at > $2 THEN starts_at ELSE $2 END, updated_at = $2 \
         WHERE id = $1 AND ends_at > $2",
    )
    .bind(id)
    .bind(&ts)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a new silence; [`StoreError::Conflict`] when its id is taken.
async fn insert_silence(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    s: &StoredSilence,
) -> Result<()> {
    let inserted = bind_columns(
        sqlx::query(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        ),
        s,
    )?
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "a silence with id `{}` exists; leave the id out to make a new one",
            s.id
        )));
    }
    Ok(())
}
