-- Templates: immutable versions; an edit is a new row.
CREATE TABLE templates (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    description TEXT NOT NULL,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (name, version)
);

-- Runs: each freezes the spec of one template version.
CREATE TABLE runs (
    id TEXT PRIMARY KEY NOT NULL,
    template_id TEXT NOT NULL REFERENCES templates (id),
    template_name TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL,
    seed BIGINT NOT NULL,
    auto_advance BOOLEAN NOT NULL,
    cancelled BOOLEAN NOT NULL,
    inputs_json TEXT NOT NULL,
    request_id TEXT UNIQUE,
    last_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX runs_newest ON runs (created_at DESC, id);
CREATE INDEX runs_by_template ON runs (template_name, created_at DESC);

-- The state of each phase of each run.
CREATE TABLE phases (
    run_id TEXT NOT NULL REFERENCES runs (id),
    phase_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    error TEXT NOT NULL,
    output_json TEXT,
    human_task_id TEXT,
    executor_id TEXT,
    feedback_json TEXT NOT NULL,
    PRIMARY KEY (run_id, phase_id)
);

-- Each run's event log: a gapless sequence from 1; body is an encoded orchestra.v1.RunEvent.
CREATE TABLE events (
    run_id TEXT NOT NULL REFERENCES runs (id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- The task queue and its leases: one row per attempt of a machine phase.
CREATE TABLE tasks (
    run_id TEXT NOT NULL REFERENCES runs (id),
    phase_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    available_at BIGINT NOT NULL,
    lease_id TEXT,
    executor_id TEXT,
    lease_deadline BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, phase_id, attempt)
);
CREATE INDEX tasks_queued ON tasks (state, available_at);

-- Hand-offs to other services that must not be lost (open a human task).
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_error TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);
