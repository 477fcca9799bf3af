-- Per-incident chat rooms (a Slack channel today) that adapters create, keyed by the warroom
-- channel that owns them. The row is written with the room's name BEFORE the provider is asked
-- to create it, and `room_id` is filled in after: a crash in between leaves a reservation that
-- the retry recognises, so it adopts the room it made instead of creating a second one.
CREATE TABLE chat_rooms (
    channel TEXT NOT NULL,
    incident BIGINT NOT NULL,
    name TEXT NOT NULL,
    room_id TEXT,
    topic TEXT,
    members TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (channel, incident)
);
CREATE UNIQUE INDEX chat_rooms_by_room ON chat_rooms (channel, room_id);
-- One row per outbox message an adapter has started to post, so a retry (after a crash or an
-- ambiguous error) knows to look for the earlier post before posting again.
CREATE TABLE chat_posts (
    channel TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (channel, idempotency_key)
);
