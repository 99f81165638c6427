-- Outputs of phase attempts the scheduler has not accepted (yet): stored,
-- but not versions. PublishArtifact turns one into the artifact's next
-- version when the scheduler accepts its attempt; the output of an attempt
-- that is never accepted stays here, never numbered, listed or latest.
CREATE TABLE staged_outputs (
    artifact_id TEXT NOT NULL REFERENCES artifacts (id),
    attempt INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES contents (sha256),
    size_bytes BIGINT NOT NULL,
    valid BOOLEAN NOT NULL,
    violations_json TEXT NOT NULL,
    schema_sha256 TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    created_by_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (artifact_id, attempt)
);
