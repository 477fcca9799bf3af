//! Per-incident chat rooms that adapters create (a Slack channel today), and the posts they have
//! started, so that a retry after a crash neither creates a second room nor posts twice.
//!
//! The protocol an adapter follows, each step one committed statement:
//! 1. [`ChatRoomStore::reserve_chat_room`] writes the name it is about to create;
//! 2. it asks the provider to create the room, and on success
//!    [`ChatRoomStore::bind_chat_room`] records the provider's id.
//!
//! A crash between 1 and 2 leaves a reservation without an id: the retry sees the reserved name,
//! and when the provider answers "name taken" it looks the room up and adopts it if nothing else
//! is bound to it. A collision with somebody else's room moves the reservation to the next name
//! ([`ChatRoomStore::rename_chat_room`]) before trying again.

use async_trait::async_trait;
use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;
use warroom_domain::{IncidentNumber, timefmt::rfc3339};

use crate::{Result, StoreError, row::is_unique_violation, sql::SqlStore};

/// One incident's room on one warroom channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRoom {
    /// The warroom channel (config name) that owns the room.
    pub channel: String,
    /// The incident.
    pub incident: IncidentNumber,
    /// The room's name, reserved before it is created.
    pub name: String,
    /// The provider's id once the room exists; `None` while only reserved.
    pub room_id: Option<String>,
    /// The topic last set, so it is changed only when it differs.
    pub topic: Option<String>,
    /// Provider user ids already invited.
    pub members: Vec<String>,
}

/// Rooms and post markers, for adapters of chat providers.
#[async_trait]
pub trait ChatRoomStore: Send + Sync {
    /// The incident's room on `channel`, reserved or bound.
    async fn chat_room(&self, channel: &str, incident: IncidentNumber) -> Result<Option<ChatRoom>>;
    /// Reserves `name` for the incident's room, unless a reservation exists; returns what is
    /// stored (the earlier reservation wins, so a retry keeps the name it tried first).
    async fn reserve_chat_room(
        &self,
        channel: &str,
        incident: IncidentNumber,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<ChatRoom>;
    /// Moves an unbound reservation to another name (the first was somebody else's room).
    async fn rename_chat_room(
        &self,
        channel: &str,
        incident: IncidentNumber,
        name: &str,
    ) -> Result<()>;
    /// Records the provider's id for the reserved room. Fails with [`StoreError::Conflict`] when
    /// that id is already bound to another incident.
    async fn bind_chat_room(
        &self,
        channel: &str,
        incident: IncidentNumber,
        room_id: &str,
    ) -> Result<()>;
    /// Which incident, if any, a provider room is bound to.
    async fn chat_room_owner(&self, channel: &str, room_id: &str)
    -> Result<Option<IncidentNumber>>;
    /// Records the topic set and the members invited.
    async fn record_chat_room_state(
        &self,
        channel: &str,
        incident: IncidentNumber,
        topic: Option<&str>,
        members: &[String],
    ) -> Result<()>;
    /// Marks that a post of the outbox message with this key is starting. True the first time;
    /// false when an earlier attempt started (and may have posted before a crash or an error).
    async fn begin_chat_post(
        &self,
        channel: &str,
        idempotency_key: &str,
        now: OffsetDateTime,
    ) -> Result<bool>;
}

const COLUMNS: &str = "channel, incident, name, room_id, topic, members";

fn room_from_row(row: &AnyRow) -> Result<ChatRoom> {
    let members: String = row.try_get("members")?;
    Ok(ChatRoom {
        channel: row.try_get("channel")?,
        incident: row.try_get("incident")?,
        name: row.try_get("name")?,
        room_id: row.try_get("room_id")?,
        topic: row.try_get("topic")?,
        members: serde_json::from_str(&members)
            .map_err(|e| StoreError::Corrupt(format!("chat_rooms.members: {e}")))?,
    })
}

#[async_trait]
impl ChatRoomStore for SqlStore {
    async fn chat_room(&self, channel: &str, incident: IncidentNumber) -> Result<Option<ChatRoom>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM chat_rooms WHERE channel = $1 AND incident = $2"
        )))
        .bind(channel)
        .bind(incident)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    async fn reserve_chat_room(
        &self,
        channel: &str,
        incident: IncidentNumber,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<ChatRoom> {
        {
            let _gate = self.write_gate().await;
            sqlx::query(
                "INSERT INTO chat_rooms (channel, incident, name, members, created_at) VALUES ($1, $2, $3, '[]', $4) \
                 ON CONFLICT (channel, incident) DO NOTHING",
            )
            .bind(channel)
            .bind(incident)
            .bind(name)
            .bind(rfc3339(now))
            .execute(self.pool())
            .await?;
        }
        self.chat_room(channel, incident)
            .await?
            .ok_or_else(|| StoreError::Corrupt("chat room reservation vanished".into()))
    }

    async fn rename_chat_room(
        &self,
        channel: &str,
        incident: IncidentNumber,
        name: &str,
    ) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "UPDATE chat_rooms SET name = $1 WHERE channel = $2 AND incident = $3 AND room_id IS NULL",
        )
        .bind(name)
        .bind(channel)
        .bind(incident)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn bind_chat_room(
        &self,
        channel: &str,
        incident: IncidentNumber,
        room_id: &str,
    ) -> Result<()> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE chat_rooms SET room_id = $1 WHERE channel = $2 AND incident = $3 AND (room_id IS NULL OR room_id = $1)",
        )
        .bind(room_id)
        .bind(channel)
        .bind(incident)
        .execute(self.pool())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!(
                    "room {room_id} on channel `{channel}` already belongs to another incident"
                ))
            } else {
                e.into()
            }
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "incident {incident} on channel `{channel}` has no reservation, or is bound to another room"
            )));
        }
        Ok(())
    }

    async fn chat_room_owner(
        &self,
        channel: &str,
        room_id: &str,
    ) -> Result<Option<IncidentNumber>> {
        Ok(sqlx::query_scalar(
            "SELECT incident FROM chat_rooms WHERE channel = $1 AND room_id = $2",
        )
        .bind(channel)
        .bind(room_id)
        .fetch_optional(self.pool())
        .await?)
    }

    async fn record_chat_room_state(
        &self,
        channel: &str,
        incident: IncidentNumber,
        topic: Option<&str>,
        members: &[String],
    ) -> Result<()> {
        let members = serde_json::to_string(members)
            .map_err(|e| StoreError::Corrupt(format!("chat_rooms.members: {e}")))?;
        let _gate = self.write_gate().await;
        sqlx::query(
            "UPDATE chat_rooms SET topic = $1, members = $2 WHERE channel = $3 AND incident = $4",
        )
        .bind(topic)
        .bind(members)
        .bind(channel)
        .bind(incident)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn begin_chat_post(
        &self,
        channel: &str,
        idempotency_key: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "INSERT INTO chat_posts (channel, idempotency_key, started_at) VALUES ($1, $2, $3) \
             ON CONFLICT (channel, idempotency_key) DO NOTHING",
        )
        .bind(channel)
        .bind(idempotency_key)
        .bind(rfc3339(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
