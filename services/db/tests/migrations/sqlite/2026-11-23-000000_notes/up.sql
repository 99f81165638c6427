CREATE TABLE notes (
    id TEXT PRIMARY KEY NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
