//! Every fixture under `tests/fixtures/`: one invalid template per kind of
//! fault, each giving exactly its own violation, and the valid Backtrack
//! template with its graph.

use std::path::{Path, PathBuf};

use orchestra_model::{
    Catalog, Format, PhaseKind, SchemaRef, Template, ValidTemplate, Violation, validate,
    validate_source,
};

/// Each invalid fixture, the one field it must be faulted on, and a piece
/// of the description that shows the message explains the fault.
const INVALID: &[(&str, &str, &str)] = &[
    ("bad_yaml", "source", "line"),
    ("unknown_field", "source", "colour"),
    ("wrong_type", "source", "needs"),
    ("missing_name", "name", "needs a name"),
    ("bad_name", "name", "not a slug"),
    ("no_phases", "phases", "at least one phase"),
    ("missing_id", "phases[1].id", "needs an id"),
    ("bad_id", "phases[1].id", "not a valid phase id"),
    ("duplicate_id", "phases[2].id", "already used by phases[1]"),
    (
        "missing_kind",
        "phases[1].kind",
        "human_input, human_review, llm, function, loop",
    ),
    (
        "unknown_kind",
        "phases[1].kind",
        "unknown kind \"agent\"; use one of human_input, human_review, llm, function, loop",
    ),
    (
        "foreign_field",
        "phases[1].function",
        "applies to function phases, not llm",
    ),
    (
        "unknown_need",
        "phases[1].needs[0]",
        "no phase with id \"contxt\"",
    ),
    ("self_need", "phases[1].needs[1]", "cannot need itself"),
    ("cycle", "phases[0].needs", "a -> b -> c -> a"),
    (
        "input_not_a_reference",
        "phases[1].inputs.brief",
        "<phase_id>.<output_name>",
    ),
    (
        "input_not_ancestor",
        "phases[1].inputs.brief",
        "names no ancestor's output",
    ),
    (
        "input_unknown_output",
        "phases[1].inputs.brief",
        "its output is \"context\"",
    ),
    (
        "input_unknown_run_input",
        "phases[1].inputs.page",
        "names no run input",
    ),
    (
        "unknown_provider",
        "phases[1].model.provider",
        "unknown provider \"acme\"; configured providers: offline",
    ),
    ("empty_model_name", "phases[1].model.name", "model name"),
    ("missing_model", "phases[1].model", "needs a model"),
    (
        "temperature_out_of_range",
        "phases[1].model.temperature",
        "between 0 and 2",
    ),
    ("missing_prompt", "phases[1].prompt", "needs a prompt"),
    (
        "prompt_does_not_compile",
        "phases[1].prompt",
        "does not compile as a minijinja template",
    ),
    (
        "prompt_file_not_bundled",
        "phases[1].prompt",
        "orchestra CLI",
    ),
    (
        "unknown_function",
        "phases[2].function",
        "unknown function \"patch.mangle\"",
    ),
    ("missing_function", "phases[2].function", "needs a function"),
    (
        "schema_does_not_compile",
        "phases[1].output.schema",
        "does not compile as JSON Schema",
    ),
    (
        "schema_file_not_bundled",
        "phases[1].output.schema",
        "orchestra CLI",
    ),
    (
        "schema_not_an_object",
        "phases[1].output.schema",
        "must be a JSON Schema object",
    ),
    (
        "run_input_schema_does_not_compile",
        "inputs.baseline.schema",
        "does not compile as JSON Schema",
    ),
    (
        "human_input_without_schema",
        "phases[0].output.schema",
        "the form",
    ),
    ("review_without_needs", "phases[2].needs", "reviews"),
    (
        "review_unknown_view",
        "phases[2].show[1]",
        "unknown view \"screenshot\"",
    ),
    (
        "review_candidate_not_input",
        "phases[2].candidates[0]",
        "\"drafts\" is not an input of this review; candidates are input names (draft)",
    ),
    (
        "review_select_without_candidates",
        "phases[2].select",
        "select needs candidates",
    ),
    (
        "on_reject_not_ancestor",
        "phases[2].on_reject.phases[0]",
        "not upstream of this review",
    ),
    (
        "loop_without_bound",
        "phases[2].max_iterations",
        "needs a bound",
    ),
    (
        "loop_bound_too_large",
        "phases[2].max_iterations",
        "from 1 to 100",
    ),
    ("loop_empty_body", "phases[2].body", "at least one phase"),
    (
        "loop_body_fault",
        "phases[2].body[1].needs[0]",
        "no phase with id \"chek\"",
    ),
    (
        "duplicate_id_in_body",
        "phases[2].body[0].id",
        "already used by phases[1]",
    ),
    (
        "need_into_loop_body",
        "phases[3].needs[0]",
        "need the loop instead",
    ),
    (
        "retry_attempts_out_of_range",
        "phases[1].retry.max_attempts",
        "1 to 20",
    ),
    ("bad_timeout", "phases[1].timeout", "is not a duration"),
    (
        "bad_retry_delay",
        "phases[1].retry.initial_delay",
        "is not a duration",
    ),
    (
        "retry_on_human_phase",
        "phases[0].retry",
        "applies to llm and function phases, not human_input",
    ),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn catalog() -> Catalog {
    Catalog {
        providers: vec!["offline".to_owned()],
        functions: vec!["patch.merge".to_owned(), "rubric.evaluate".to_owned()],
    }
}

fn read(name: &str) -> String {
    let path = fixtures().join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn backtrack() -> ValidTemplate {
    let mut template =
        Template::parse(&read("valid_backtrack"), Format::Auto).expect("the fixture parses");
    let dir = fixtures();
    template
        .bundle_with(&|file| std::fs::read_to_string(dir.join(file)))
        .expect("the fixture's files bundle");
    validate(&template, &catalog()).expect("the bundled fixture is valid")
}

#[test]
fn each_invalid_fixture_gives_exactly_its_own_violation() {
    let mut failures = Vec::new();
    for (name, field, fragment) in INVALID {
        let violations = match validate_source(&read(name), Format::Auto, &catalog()) {
            Ok(_) => vec![],
            Err(violations) => violations,
        };
        let matches = violations.len() == 1
            && violations[0].field == *field
            && violations[0].description.contains(fragment);
        if !matches {
            failures.push(format!(
                "{name}: wanted one violation on {field} containing {fragment:?}, got {violations:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_file_is_checked() {
    let mut unchecked = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_yaml = path.extension().is_some_and(|ext| ext == "yaml");
        if is_yaml && !stem.starts_with("valid_") && !INVALID.iter().any(|(n, _, _)| *n == stem) {
            unchecked.push(stem.to_owned());
        }
    }
    assert!(
        unchecked.is_empty(),
        "fixtures missing from INVALID: {unchecked:?}"
    );
}

#[test]
fn backtrack_validates_after_bundling() {
    let valid = backtrack();
    let template = valid.template();
    assert_eq!(template.name, "backtrack-ui-patch");
    assert!(matches!(
        template.inputs["baseline"].schema,
        Some(SchemaRef::Inline(_))
    ));
    assert_eq!(
        valid.phase("score").map(|p| &p.kind),
        Some(&PhaseKind::Function)
    );
    assert_eq!(valid.index_of("merge"), Some(5));
}

#[test]
fn backtrack_unbundled_is_refused_with_a_pointer_to_the_cli() {
    let violations =
        validate_source(&read("valid_backtrack"), Format::Auto, &catalog()).unwrap_err();
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "inputs.baseline.schema",
            "phases[0].output.schema",
            "phases[1].output.schema",
            "phases[1].prompt",
            "phases[2].output.schema",
            "phases[2].prompt",
            "phases[5].output.schema",
        ]
    );
    assert!(
        violations
            .iter()
            .all(|v| v.description.contains("orchestra CLI"))
    );
}

#[test]
fn backtrack_graph() {
    let valid = backtrack();
    assert_eq!(
        valid.topological_order(),
        [
            "context",
            "variant_a",
            "variant_b",
            "score",
            "review",
            "merge"
        ]
    );
    assert_eq!(valid.children("context"), ["variant_a", "variant_b"]);
    assert_eq!(valid.children("score"), ["review"]);
    assert_eq!(valid.needs("score"), ["variant_a", "variant_b"]);
    assert_eq!(
        valid.ancestors("review"),
        ["context", "variant_a", "variant_b", "score"]
    );
    assert_eq!(valid.ancestors("context"), Vec::<&str>::new());
    assert_eq!(valid.descendants("variant_a"), ["score", "review", "merge"]);
    assert_eq!(valid.graph().roots(), ["context"]);
}

#[test]
fn backtrack_canonical_json_round_trips() {
    let valid = backtrack();
    let json = valid.to_json();
    let again = validate_source(&json, Format::Auto, &catalog()).unwrap();
    assert_eq!(again.template(), valid.template());
    assert_eq!(again.to_json(), json);
}

#[test]
fn all_faults_are_reported_together() {
    let source = "name: Bad Name\nphases:\n  - id: a\n    kind: llm\n  - id: a\n    kind: loop\n";
    let violations = validate_source(source, Format::Yaml, &catalog()).unwrap_err();
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "phases[1].id",
            "phases[0].model",
            "phases[0].prompt",
            "phases[1].max_iterations",
            "phases[1].body",
        ]
    );
    let shown = violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>();
    assert!(shown[0].starts_with("name: "), "{shown:?}");
}
