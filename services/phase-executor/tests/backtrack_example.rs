//! The Backtrack example end to end without services: the template's files
//! exist and compile, the prompt renders from the example context, and
//! offline variants flow through scoring, preview and merge.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use orchestra_phase_executor::functions::{FunctionCall, registry};
use orchestra_phase_executor::prompt::render_prompt;
use orchestra_phase_executor::providers::{CompletionRequest, ProviderRegistry};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/backtrack")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(example_dir().join(relative))
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

fn read_json(relative: &str) -> Value {
    serde_json::from_str(&read(relative)).unwrap_or_else(|error| panic!("{relative}: {error}"))
}

fn template() -> Value {
    serde_norway::from_str(&read("template.yaml")).expect("template.yaml is YAML")
}

fn phases() -> Vec<Value> {
    template()["phases"].as_array().cloned().expect("phases")
}

fn context_inputs() -> Map<String, Value> {
    [("context".to_owned(), read_json("inputs/context.json"))]
        .into_iter()
        .collect()
}

fn call(function: &str, inputs: &Map<String, Value>, params: &Value) -> Value {
    registry()
        .call(function, FunctionCall { inputs, params })
        .unwrap_or_else(|error| panic!("{function}: {error}"))
}

#[test]
fn template_names_existing_files_functions_and_providers() {
    let ids: Vec<String> = phases()
        .iter()
        .filter_map(|phase| phase["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        ids,
        [
            "context",
            "variant_a",
            "variant_b",
            "score",
            "preview",
            "review",
            "merge"
        ]
    );
    for phase in phases() {
        if let Some(schema) = phase["output"]["schema"].as_str() {
            jsonschema::validator_for(&read_json(schema))
                .unwrap_or_else(|error| panic!("{schema}: {error}"));
        }
        if let Some(prompt) = phase["prompt"].as_str() {
            assert!(example_dir().join(prompt).is_file(), "{prompt}");
        }
        if let Some(function) = phase["function"].as_str() {
            assert!(registry().get(function).is_some(), "{function}");
        }
        if let Some(provider) = phase["model"]["provider"].as_str() {
            assert!(
                ProviderRegistry::with_offline().get(provider).is_some(),
                "{provider}"
            );
        }
    }
}

#[test]
fn example_input_validates_against_the_context_schema() {
    let validator =
        jsonschema::validator_for(&read_json("schemas/context.json")).expect("compiles");
    let context = read_json("inputs/context.json");
    let errors: Vec<String> = validator
        .iter_errors(&context)
        .map(|error| error.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let ui = jsonschema::validator_for(&read_json("schemas/ui.json")).expect("compiles");
    assert!(ui.is_valid(&context["baseline"]));
}

#[test]
fn variant_prompt_renders_the_context() {
    let prompt = render_prompt(&read("prompts/variant.j2"), &context_inputs()).expect("renders");
    for expected in [
        "Make the hero's call to action clearer.",
        "Change only the `hero` slot (UI version 3)",
        "- `/slots/hero/children/2/children/0/props/label` = \"Learn more\" (button)",
        "`$color.primary` (#2f6feb)",
        "- has_cta (weight 3): The hero still has a button.",
        "- Do not add new images.",
    ] {
        assert!(
            prompt.contains(expected),
            "missing {expected:?} in\n{prompt}"
        );
    }
    assert!(
        !prompt.contains("Sign in"),
        "other slots stay out of the prompt"
    );
    if std::env::var_os("SHOW_PROMPT").is_some() {
        println!("{prompt}");
    }
    assert!(
        !prompt.contains("\n\n\n"),
        "no runs of blank lines:\n{prompt}"
    );

    // The example answer is a valid patch that applies to the baseline.
    let start = prompt.find("```json").expect("example block") + "```json".len();
    let end = start + prompt[start..].find("```").expect("closing fence");
    let example: Value = serde_json::from_str(&prompt[start..end]).expect("example is JSON");
    assert_eq!(
        example["ops"][0]["path"],
        "/slots/hero/children/2/children/0/props/label"
    );
    assert!(
        jsonschema::validator_for(&read_json("schemas/ui-patch.json"))
            .expect("compiles")
            .is_valid(&example)
    );
}

#[tokio::test]
async fn offline_variants_flow_through_score_preview_and_merge() {
    let context = read_json("inputs/context.json");
    let prompt = render_prompt(&read("prompts/variant.j2"), &context_inputs()).expect("renders");
    let patch_schema = read_json("schemas/ui-patch.json");
    let ui_validator = jsonschema::validator_for(&read_json("schemas/ui.json")).expect("compiles");
    let provider = ProviderRegistry::with_offline()
        .get("offline")
        .expect("offline provider");

    for run_seed in 0..10u64 {
        let mut variants = Vec::new();
        for phase_index in [1u64, 2] {
            let (sender, _receiver) = mpsc::channel(4096);
            let request = CompletionRequest {
                model: "offline-1".into(),
                system: None,
                prompt: prompt.clone(),
                temperature: Some(0.2),
                max_tokens: 2048,
                seed: run_seed * 31 + phase_index,
                output_schema: Some(patch_schema.clone()),
                deadline: None,
            };
            let completion = provider.complete(request, sender).await.expect("completes");
            variants
                .push(serde_json::from_str::<Value>(&completion.text).expect("variant is JSON"));
        }
        let [a, b] = [variants[0].clone(), variants[1].clone()];

        let scores = call(
            "rubric.evaluate",
            &[
                ("rubric", context.clone()),
                ("a", a.clone()),
                ("b", b.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            &Value::Null,
        );
        for key in ["a", "b"] {
            let score = scores[key]["score"].as_f64().expect("score");
            assert!((0.0..=1.0).contains(&score), "{scores}");
        }

        let previews = call(
            "ui.preview",
            &[
                ("base", context.clone()),
                ("a", a.clone()),
                ("b", b.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            &Value::Null,
        );
        assert!(
            previews["a"]
                .as_str()
                .is_some_and(|html| html.contains("data-slot=\"hero\"")),
            "seed {run_seed}: {previews}"
        );

        let parent = call(
            "patch.merge",
            &[
                ("base", context.clone()),
                (
                    "decision",
                    json!({"decision": "approve", "selected": ["a"], "comment": "clearer"}),
                ),
                ("variant_a", a),
                ("variant_b", b),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            &json!({"candidates": {"a": "variant_a", "b": "variant_b"}}),
        );
        assert_eq!(parent["version"], 4);
        assert!(ui_validator.is_valid(&parent), "seed {run_seed}: {parent}");
    }
}
