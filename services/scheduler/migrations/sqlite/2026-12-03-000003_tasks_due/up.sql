-- The queue's order for one kind: a Lease stream's claim and a
-- completion's hand-on read the oldest due task of a kind, and a fan-out
-- queues thousands with one available_at; with (state, available_at) alone
-- each read sorted them all, so a 10,000-wide fan-out cost grew with its size.
CREATE INDEX tasks_due ON tasks (state, kind, available_at, created_at);
DROP INDEX tasks_queued;
