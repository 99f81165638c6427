//! The scheduler's tables, as diesel sees them (one definition for both backends).

diesel::table! {
    templates (id) {
        id -> Text,
        name -> Text,
        version -> Integer,
        description -> Text,
        source -> Text,
        format -> Text,
        spec_json -> Text,
        content_sha256 -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    runs (id) {
        id -> Text,
        template_id -> Text,
        template_name -> Text,
        template_version -> Integer,
        spec_json -> Text,
        status -> Text,
        seed -> BigInt,
        auto_advance -> Bool,
        cancelled -> Bool,
        inputs_json -> Text,
        request_id -> Nullable<Text>,
        last_seq -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        phase_tally -> Text,
    }
}

diesel::table! {
    phases (run_id, phase_id) {
        run_id -> Text,
        phase_id -> Text,
        idx -> Integer,
        kind -> Text,
        state -> Text,
        attempt -> Integer,
        started_at -> BigInt,
        finished_at -> BigInt,
        error -> Text,
        output_json -> Nullable<Text>,
        human_task_id -> Nullable<Text>,
        executor_id -> Nullable<Text>,
        feedback_json -> Text,
        unmet_needs -> Integer,
    }
}

diesel::table! {
    events (run_id, seq) {
        run_id -> Text,
        seq -> BigInt,
        at -> BigInt,
        body -> Binary,
    }
}

diesel::table! {
    tasks (run_id, phase_id, attempt) {
        run_id -> Text,
        phase_id -> Text,
        attempt -> Integer,
        kind -> Text,
        state -> Text,
        available_at -> BigInt,
        lease_id -> Nullable<Text>,
        executor_id -> Nullable<Text>,
        lease_deadline -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    executors (executor_id) {
        executor_id -> Text,
        session_id -> Text,
        seen_at -> BigInt,
        suspended -> Bool,
    }
}

diesel::allow_tables_to_appear_in_same_query!(templates, runs, phases, events, tasks, executors);
