//! The Backtrack example's domain functions: a UI document of slots and
//! nodes, constrained patches to one slot, a rubric that scores them, HTML
//! previews for the reviewer, and the merge of what a review approved into
//! the next parent version. The executor registers [`FUNCTIONS`] beside the
//! generic ones of `orchestra-functions`; nothing here knows about runs.
//!
//! - [`patch`]: `patch.diff`, `patch.apply`, `patch.merge` (RFC 6902 on UI documents)
//! - [`rubric`]: `rubric.evaluate`, scoring candidate patches against a rubric
//! - [`preview`]: `ui.preview`, HTML renderings of patched slots for review
//! - [`ui`]: the UI document helpers the functions above share

use orchestra_functions::FunctionSpec;

pub mod patch;
pub mod preview;
pub mod rubric;
pub mod ui;

/// The Backtrack functions, for the executor's registry.
pub static FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: "patch.apply",
        summary: "applies the ui patch `patch` to the ui document `base`",
        run: patch::apply,
    },
    FunctionSpec {
        name: "patch.diff",
        summary: "RFC 6902 operations, a unified text diff and changed paths from `left` to `right`",
        run: patch::diff,
    },
    FunctionSpec {
        name: "patch.merge",
        summary: "applies the candidates a review approved to `base`, making the next parent version",
        run: patch::merge,
    },
    FunctionSpec {
        name: "rubric.evaluate",
        summary: "scores every candidate patch against the rubric in `rubric`",
        run: rubric::evaluate,
    },
    FunctionSpec {
        name: "ui.preview",
        summary: "renders every candidate patch applied to `base` as self-contained HTML",
        run: preview::preview,
    },
];

#[cfg(test)]
pub(crate) mod testdata {
    //! The Backtrack example files, shared by the function tests.

    use serde_json::{Map, Value, json};

    pub const CONTEXT: &str = include_str!("../../inputs/context.json");
    pub const UI_SCHEMA: &str = include_str!("../../schemas/ui.json");
    pub const PATCH_SCHEMA: &str = include_str!("../../schemas/ui-patch.json");
    pub const CONTEXT_SCHEMA: &str = include_str!("../../schemas/context.json");

    pub fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("example file is JSON")
    }

    pub fn context() -> Value {
        parse(CONTEXT)
    }

    pub fn baseline() -> Value {
        context()["baseline"].clone()
    }

    /// A good variant: makes the first CTA primary with clearer copy.
    pub fn variant_a() -> Value {
        json!({
            "slot": "hero",
            "summary": "Make the first button the primary free-trial CTA",
            "ops": [
                { "op": "replace", "path": "/slots/hero/children/2/children/0/props/label", "value": "Start your free trial" },
                { "op": "replace", "path": "/slots/hero/children/2/children/0/props/variant", "value": "primary" }
            ]
        })
    }

    /// A worse variant: literal colour, long copy, removes the buttons.
    pub fn variant_b() -> Value {
        json!({
            "slot": "hero",
            "summary": "Replace the buttons with a loud subheading",
            "ops": [
                { "op": "replace", "path": "/slots/hero/children/1/props/text", "value": "Start a free trial today and keep every version of your interface, forever" },
                { "op": "add", "path": "/slots/hero/children/1/props/color", "value": "#ff0000" },
                { "op": "remove", "path": "/slots/hero/children/2" },
                { "op": "replace", "path": "/slots/footer/props/text", "value": "© 2025 Backtrack" }
            ]
        })
    }

    pub fn inputs(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_and_distinct_from_the_generic_ones() {
        let names: Vec<&str> = FUNCTIONS.iter().map(|spec| spec.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for generic in orchestra_functions::JSON_FUNCTIONS {
            assert!(!names.contains(&generic.name), "{} twice", generic.name);
        }
    }

    #[test]
    fn example_files_validate_against_their_schemas() {
        let cases = [
            (testdata::CONTEXT_SCHEMA, testdata::context()),
            (testdata::UI_SCHEMA, testdata::baseline()),
            (testdata::PATCH_SCHEMA, testdata::variant_a()),
            (testdata::PATCH_SCHEMA, testdata::variant_b()),
        ];
        for (schema, instance) in cases {
            let validator =
                jsonschema::validator_for(&testdata::parse(schema)).expect("schema compiles");
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?}");
        }
    }

    #[test]
    fn context_schema_copies_ui_definitions_verbatim() {
        let ui = testdata::parse(testdata::UI_SCHEMA);
        let context = testdata::parse(testdata::CONTEXT_SCHEMA);
        assert_eq!(context["$defs"]["node"], ui["$defs"]["node"]);
        assert_eq!(context["$defs"]["tokens"], ui["$defs"]["tokens"]);
        assert_eq!(context["$defs"]["ui"]["properties"], ui["properties"]);
        assert_eq!(context["$defs"]["ui"]["required"], ui["required"]);
    }
}
