-- Review tasks name their candidates and how many an approval picks; a task
-- closed by the run says why.
ALTER TABLE tasks ADD COLUMN candidates_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN selection INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN closed_reason TEXT NOT NULL DEFAULT '';

-- The outbox takes the shape every service shares (orchestra_db::outbox).
-- Pending messages keep their order: old ids, zero-padded, sort before the
-- UUIDv7 ids of new ones.
ALTER TABLE outbox RENAME TO outbox_v1;
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload BYTEA NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    gave_up_at BIGINT,
    last_error TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO outbox (id, kind, key, payload, attempts, next_attempt_at, delivered_at, gave_up_at, last_error, created_at)
SELECT lpad(id::text, 20, '0'), 'resolve_human_phase', task_id, payload, attempts, next_attempt_at, delivered_at, gave_up_at, COALESCE(last_error, ''), created_at
FROM outbox_v1;
DROP TABLE outbox_v1;
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
