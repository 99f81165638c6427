DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN gave_up_at;
ALTER TABLE outbox DROP COLUMN key;
CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);
