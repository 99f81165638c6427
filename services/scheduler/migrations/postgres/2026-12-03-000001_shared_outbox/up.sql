-- The outbox takes the shape every service shares (orchestra_db::outbox):
-- what a message is about, and when it was refused for good.
ALTER TABLE outbox ADD COLUMN key TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN gave_up_at BIGINT;
DROP INDEX outbox_due;
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
