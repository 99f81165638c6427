-- Content by sha256, stored once however many versions share it. Small
-- content lives here; larger content is a file in the blob store.
CREATE TABLE contents (
    sha256 TEXT PRIMARY KEY,
    size_bytes BIGINT NOT NULL,
    inline_content BLOB,
    in_blob_store BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

-- One phase's output name within one run; each attempt of the phase adds a
-- version, counting up from 1.
CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    phase_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (run_id, phase_id, name)
);

-- One attempt's output: the primary key keeps version numbers unique, the
-- attempt index makes a repeated Put idempotent, and the partial index
-- allows at most one latest version per artifact.
CREATE TABLE artifact_versions (
    artifact_id TEXT NOT NULL REFERENCES artifacts (id),
    version INTEGER NOT NULL,
    phase_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES contents (sha256),
    size_bytes BIGINT NOT NULL,
    valid BOOLEAN NOT NULL,
    is_latest BOOLEAN NOT NULL,
    violations_json TEXT NOT NULL,
    schema_sha256 TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_by_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (artifact_id, version)
);

CREATE UNIQUE INDEX artifact_versions_attempt ON artifact_versions (artifact_id, phase_id, attempt);
CREATE UNIQUE INDEX artifact_versions_latest ON artifact_versions (artifact_id) WHERE is_latest;
