//! The tables, written once for both backends with portable types only:
//! text ids, BIGINT epoch microseconds, booleans and binary content.

diesel::table! {
    /// Content by sha256; small content inline, larger in the blob store.
    contents (sha256) {
        sha256 -> Text,
        size_bytes -> BigInt,
        inline_content -> Nullable<Binary>,
        in_blob_store -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// One phase's output name within one run.
    artifacts (id) {
        id -> Text,
        run_id -> Text,
        phase_id -> Text,
        name -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// One version of an artifact: one attempt's output.
    artifact_versions (artifact_id, version) {
        artifact_id -> Text,
        version -> Integer,
        phase_id -> Text,
        attempt -> Integer,
        media_type -> Text,
        sha256 -> Text,
        size_bytes -> BigInt,
        valid -> Bool,
        is_latest -> Bool,
        violations_json -> Text,
        schema_sha256 -> Text,
        created_by_kind -> Integer,
        created_by_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// A phase attempt's output that the scheduler has not accepted: not a
    /// version until it is published.
    staged_outputs (artifact_id, attempt) {
        artifact_id -> Text,
        attempt -> Integer,
        media_type -> Text,
        sha256 -> Text,
        size_bytes -> BigInt,
        valid -> Bool,
        violations_json -> Text,
        schema_sha256 -> Text,
        created_by_kind -> Integer,
        created_by_id -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(artifact_versions -> artifacts (artifact_id));
diesel::joinable!(staged_outputs -> artifacts (artifact_id));
diesel::allow_tables_to_appear_in_same_query!(
    artifacts,
    artifact_versions,
    contents,
    staged_outputs
);
