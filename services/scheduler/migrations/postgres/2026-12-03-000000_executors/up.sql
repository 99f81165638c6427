-- Executors that lease tasks. A replica holding an executor's Lease stream
-- refreshes seen_at while the stream is open, so any replica (or a restarted
-- process) can tell an executor that is gone from one that is connected, and
-- release its leases without waiting out their deadline. session_id names
-- the stream, so a stale stream's close does not disturb a newer one.
-- suspended is set when one of its leases expires for missed heartbeats: it
-- gets no new lease until it heartbeats or reconnects.
CREATE TABLE executors (
    executor_id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    suspended BOOLEAN NOT NULL
);
CREATE INDEX executors_seen ON executors (seen_at);
CREATE INDEX tasks_by_executor ON tasks (executor_id, state);
