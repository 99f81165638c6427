DROP TABLE outbox;
DROP TABLE tasks;
