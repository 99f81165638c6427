CREATE INDEX tasks_queued ON tasks (state, available_at);
DROP INDEX tasks_due;
