-- Human tasks: one per human phase attempt, keyed by the id the scheduler chose.
CREATE TABLE tasks (
    id TEXT PRIMARY KEY NOT NULL,
    kind INTEGER NOT NULL,
    state INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    phase_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    title TEXT NOT NULL,
    template_name TEXT NOT NULL,
    form_schema_json TEXT NOT NULL,
    output_name TEXT NOT NULL,
    -- JSON object: input name -> artifact ref.
    inputs_json TEXT NOT NULL,
    -- JSON array of view names.
    show_json TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    -- JSON decision record, once decided or submitted.
    decision_json TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_state_created ON tasks (state, created_at);
CREATE INDEX tasks_run ON tasks (run_id);

-- Hand-offs to the scheduler that must not be lost: encoded ResolveHumanPhaseRequests.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    task_id TEXT NOT NULL,
    payload BYTEA NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    gave_up_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
