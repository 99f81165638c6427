//! The review service's tables, one portable declaration for both backends.

diesel::table! {
    /// Human tasks, one per human phase attempt.
    tasks (id) {
        id -> Text,
        kind -> Integer,
        state -> Integer,
        run_id -> Text,
        phase_id -> Text,
        attempt -> Integer,
        title -> Text,
        template_name -> Text,
        form_schema_json -> Text,
        output_name -> Text,
        inputs_json -> Text,
        show_json -> Text,
        claimed_by -> Text,
        decision_json -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        candidates_json -> Text,
        selection -> Integer,
        closed_reason -> Text,
    }
}
