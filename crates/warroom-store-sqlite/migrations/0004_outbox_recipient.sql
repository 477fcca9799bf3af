-- Pages name their recipient, so that a person's throttle can count what reached them and an
-- acknowledgement can cancel their later notification rules.
ALTER TABLE outbox ADD COLUMN recipient TEXT;
CREATE INDEX outbox_by_recipient ON outbox (recipient, kind, delivered_at);
