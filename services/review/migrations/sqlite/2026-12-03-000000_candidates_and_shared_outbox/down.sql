DROP TABLE outbox;
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    gave_up_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
ALTER TABLE tasks DROP COLUMN closed_reason;
ALTER TABLE tasks DROP COLUMN selection;
ALTER TABLE tasks DROP COLUMN candidates_json;
