DROP TABLE outbox;
DROP TABLE tasks;
DROP TABLE events;
DROP TABLE phases;
DROP TABLE runs;
DROP TABLE templates;
