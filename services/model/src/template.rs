//! The serde model of a workflow template, read from YAML or JSON.
//!
//! The model is deliberately permissive where a fault deserves a field path
//! (a missing id, an unknown kind, an out-of-range number): those parse and
//! are reported by [`crate::validate()`]. Only what cannot be read at all (bad
//! syntax, an unknown field, a wrong type) fails here, as one violation on
//! the field `source`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::parse_duration;
use crate::violation::Violation;

/// The syntax a template source is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2 (a superset of JSON in practice).
    Yaml,
    /// JSON.
    Json,
    /// JSON when the first non-blank character is `{`, YAML otherwise.
    Auto,
}

/// A workflow template: a named DAG of phases.
///
/// Stored as canonical JSON ([`Template::to_json`]) once it is bundled and
/// valid, and frozen into every run started from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// A slug naming the template (`[a-z][a-z0-9_-]*`, at most 64 characters).
    #[serde(default)]
    pub name: String,
    /// Free text for people choosing a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Run-level inputs, given when a run starts, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, RunInput>,
    /// The phases, in declaration order (which fixes each phase's index).
    #[serde(default)]
    pub phases: Vec<Phase>,
}

/// An input given to a run when it starts, referenced as `input.<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// The JSON Schema the value must satisfy; any JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaRef>,
    /// Whether StartRun must supply it; true unless the template says otherwise.
    #[serde(default = "default_true")]
    pub required: bool,
    /// Shown to whoever starts the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_true() -> bool {
    true
}

/// One phase of a template.
///
/// Every kind's fields live in this one struct so that a field given to the
/// wrong kind (a `function` on an `llm` phase) parses and can be reported
/// with its path instead of as an opaque "unknown field".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Unique across the template, including loop bodies (`[a-z][a-z0-9_]*`).
    #[serde(default)]
    pub id: String,
    /// A display name; the id is shown when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What runs the phase.
    #[serde(default)]
    pub kind: PhaseKind,
    /// Ids of the phases that must finish before this one may start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Local name → `<phase_id>.<output_name>` or `input.<run_input_name>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// The one artifact the phase produces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// llm: the provider and model to call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// llm: the minijinja prompt, or a file holding it before bundling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptRef>,
    /// llm: an optional system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// function: the name of a built-in function, e.g. `patch.merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// function: parameters passed to the function as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// human_review: which views the reviewer gets (`diff`, `rubric`, `preview`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show: Option<Vec<String>>,
    /// human_review: what a rejection does; fails the run when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reject: Option<OnReject>,
    /// human_review: the inputs an approval chooses between (the others are
    /// evidence: scores, previews). None: the work is approved as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<String>>,
    /// human_review: how many candidates an approval picks; `one` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Selection>,
    /// loop: the most attempts of the body (1..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
    /// loop: the phases repeated on each attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Vec<Phase>>,
    /// llm and function: how failed attempts are retried; one attempt when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// llm and function: how long one attempt may take (`500ms`, `30s`, `2m`, `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
}

impl Phase {
    /// Returns the attempt timeout: the template's, or the kind's default
    /// (llm 300s, function 60s). `None` for phases without one (people, loops)
    /// or when the text does not parse (validation reports that).
    pub fn timeout(&self) -> Option<Duration> {
        match &self.timeout {
            Some(spec) => spec.to_duration().ok(),
            None => self.kind.default_timeout(),
        }
    }

    /// Returns the retry policy, with one attempt when the template gives none.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry.clone().unwrap_or_default()
    }

    /// Returns the title people see: the title if given, else the id.
    pub fn display_name(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }
}

/// The kind of a phase. Unknown names parse (as [`PhaseKind::Unknown`]) so
/// that validation can report them with their path and the known kinds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum PhaseKind {
    /// A person fills in a form described by the output schema.
    HumanInput,
    /// A person approves or rejects what upstream phases produced.
    HumanReview,
    /// A call to a language model.
    Llm,
    /// A built-in deterministic function.
    Function,
    /// Bounded repetition of a body of phases.
    Loop,
    /// A name that is none of the above (empty when `kind` is missing).
    Unknown(String),
}

impl PhaseKind {
    /// The names of every known kind, for messages.
    pub const KNOWN: [&'static str; 5] = ["human_input", "human_review", "llm", "function", "loop"];

    /// Returns the name as written in templates.
    pub fn as_str(&self) -> &str {
        match self {
            PhaseKind::HumanInput => "human_input",
            PhaseKind::HumanReview => "human_review",
            PhaseKind::Llm => "llm",
            PhaseKind::Function => "function",
            PhaseKind::Loop => "loop",
            PhaseKind::Unknown(name) => name,
        }
    }

    /// Returns the state-machine class of the kind; `None` for loops (their
    /// body phases move, not the loop) and unknown kinds.
    pub fn class(&self) -> Option<crate::PhaseClass> {
        match self {
            PhaseKind::Llm | PhaseKind::Function => Some(crate::PhaseClass::Machine),
            PhaseKind::HumanInput => Some(crate::PhaseClass::HumanInput),
            PhaseKind::HumanReview => Some(crate::PhaseClass::HumanReview),
            PhaseKind::Loop | PhaseKind::Unknown(_) => None,
        }
    }

    /// Says whether an executor runs the phase (so retry and timeout apply).
    pub fn is_machine(&self) -> bool {
        matches!(self, PhaseKind::Llm | PhaseKind::Function)
    }

    /// Returns the attempt timeout used when a phase gives none.
    pub fn default_timeout(&self) -> Option<Duration> {
        match self {
            PhaseKind::Llm => Some(Duration::from_secs(300)),
            PhaseKind::Function => Some(Duration::from_secs(60)),
            _ => None,
        }
    }
}

impl Default for PhaseKind {
    fn default() -> Self {
        PhaseKind::Unknown(String::new())
    }
}

impl From<String> for PhaseKind {
    fn from(name: String) -> Self {
        match name.as_str() {
            "human_input" => PhaseKind::HumanInput,
            "human_review" => PhaseKind::HumanReview,
            "llm" => PhaseKind::Llm,
            "function" => PhaseKind::Function,
            "loop" => PhaseKind::Loop,
            _ => PhaseKind::Unknown(name),
        }
    }
}

impl From<PhaseKind> for String {
    fn from(kind: PhaseKind) -> Self {
        kind.as_str().to_owned()
    }
}

impl fmt::Display for PhaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The artifact a phase produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The artifact's name; children reference it as `<phase_id>.<name>`.
    #[serde(default)]
    pub name: String,
    /// The JSON Schema the artifact is validated against; free-form when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaRef>,
}

/// A JSON Schema, inline or (before bundling) a path to a `.json` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SchemaRef {
    /// A path relative to the template file; [`Template::bundle_with`] inlines it.
    File(String),
    /// The schema itself.
    Inline(Value),
}

impl SchemaRef {
    /// The schema itself, once bundled; `None` for a file not yet read
    /// (templates are stored bundled, so a stored one always has it).
    pub fn inline(&self) -> Option<&Value> {
        match self {
            SchemaRef::Inline(value) => Some(value),
            SchemaRef::File(_) => None,
        }
    }
}

/// A prompt: minijinja text, or (before bundling) a path to a prompt file.
///
/// A string is a file reference when it is a single word ending in `.j2`,
/// `.jinja`, `.txt` or `.md`; anything else (spaces, line breaks) is text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum PromptRef {
    /// A path relative to the template file; [`Template::bundle_with`] inlines it.
    File(String),
    /// The template text.
    Text(String),
}

impl PromptRef {
    const FILE_EXTENSIONS: [&'static str; 4] = [".j2", ".jinja", ".txt", ".md"];

    /// Returns the prompt text or the path, whichever this holds.
    pub fn as_str(&self) -> &str {
        match self {
            PromptRef::File(path) | PromptRef::Text(path) => path,
        }
    }
}

impl From<String> for PromptRef {
    fn from(value: String) -> Self {
        let single_word = !value.is_empty() && !value.chars().any(char::is_whitespace);
        let has_extension = PromptRef::FILE_EXTENSIONS
            .iter()
            .any(|ext| value.ends_with(ext));
        if single_word && has_extension && !value.contains("{{") {
            PromptRef::File(value)
        } else {
            PromptRef::Text(value)
        }
    }
}

impl From<PromptRef> for String {
    fn from(prompt: PromptRef) -> Self {
        match prompt {
            PromptRef::File(text) | PromptRef::Text(text) => text,
        }
    }
}

/// The model an llm phase calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A provider the executors know (`offline`, `anthropic`, …).
    #[serde(default)]
    pub provider: String,
    /// The provider's model name.
    #[serde(default)]
    pub name: String,
    /// Sampling temperature, 0..=2; the provider's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The most tokens to generate; the provider's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

/// How many of a review's candidates an approval picks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Exactly one: the reviewer chooses between the candidates.
    #[default]
    One,
    /// One or more: the reviewer keeps the candidates worth keeping.
    AtLeastOne,
    /// Any number, none included.
    Any,
}

impl Selection {
    /// The name as written in templates.
    pub fn as_str(self) -> &'static str {
        match self {
            Selection::One => "one",
            Selection::AtLeastOne => "at_least_one",
            Selection::Any => "any",
        }
    }
}

/// What a rejected review does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum OnReject {
    /// The run fails. (A struct variant, so that stray fields are refused.)
    Fail {},
    /// The named upstream phases get a new attempt, with the reviewer's comment as an input.
    Retry {
        /// Ancestors of the review to send back.
        phases: Vec<String>,
    },
}

/// How a machine phase's failed attempts are retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts including the first (1..=20).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How the delay grows between attempts.
    #[serde(default)]
    pub backoff: Backoff,
    /// The delay before the second attempt; 1s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<DurationSpec>,
    /// The longest delay between attempts; 60s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<DurationSpec>,
}

fn default_max_attempts() -> u32 {
    1
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::default(),
            initial_delay: None,
            max_delay: None,
        }
    }
}

impl RetryPolicy {
    /// Returns the delay before attempt `attempt` (1-based; attempt 1 has none),
    /// following the backoff and capped at the maximum delay.
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let initial = duration_or(&self.initial_delay, Duration::from_secs(1));
        let max = duration_or(&self.max_delay, Duration::from_secs(60));
        let delay = match (attempt, self.backoff) {
            (0 | 1, _) => Duration::ZERO,
            (_, Backoff::Fixed) => initial,
            (n, Backoff::Exponential) => {
                let factor = 2u32.saturating_pow(n.saturating_sub(2));
                initial.saturating_mul(factor)
            }
        };
        delay.min(max)
    }
}

fn duration_or(spec: &Option<DurationSpec>, default: Duration) -> Duration {
    spec.as_ref()
        .and_then(|spec| spec.to_duration().ok())
        .unwrap_or(default)
}

/// How the delay between retries grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// Doubles after each attempt.
    #[default]
    Exponential,
    /// Stays at the initial delay.
    Fixed,
}

/// A duration as written in a template (`500ms`, `30s`, `2m`, `1h`).
///
/// Kept as text so the stored template reads as it was written; validation
/// checks that it parses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DurationSpec(pub String);

impl DurationSpec {
    /// Parses the text into a [`Duration`].
    pub fn to_duration(&self) -> Result<Duration, crate::duration::DurationError> {
        parse_duration(&self.0)
    }
}

impl Template {
    /// Parses a template from YAML or JSON.
    ///
    /// Syntax errors, unknown fields and wrong types are one violation on the
    /// field `source`, with the line and column the parser reports.
    pub fn parse(source: &str, format: Format) -> Result<Template, Violation> {
        let format = match format {
            Format::Auto if source.trim_start().starts_with('{') => Format::Json,
            Format::Auto => Format::Yaml,
            given => given,
        };
        let parsed = match format {
            Format::Json => serde_json::from_str(source).map_err(|err| err.to_string()),
            _ => serde_norway::from_str(source).map_err(|err| err.to_string()),
        };
        parsed.map_err(|message| {
            let syntax = if format == Format::Json {
                "JSON"
            } else {
                "YAML"
            };
            Violation::new(
                "source",
                format!("the template is not a readable {syntax} template: {message}"),
            )
        })
    }

    /// Returns the canonical JSON of the template: object keys sorted, no
    /// whitespace. This is what is stored and frozen into runs, so two
    /// equal templates always give the same bytes.
    pub fn to_json(&self) -> String {
        let value = serde_json::to_value(self).map_or(Value::Null, sort_keys);
        value.to_string()
    }

    /// Puts the contents of every schema and prompt file the template
    /// references in place, reading each through `read` (given the path as
    /// written in the template). The model does no IO itself: the server
    /// reads from the files a client sent along with the source, the CLI and
    /// tests from the template file's folder.
    pub fn bundle_with(&mut self, read: &FileReader<'_>) -> Result<(), Vec<Violation>> {
        let mut violations = Vec::new();
        for (name, input) in &mut self.inputs {
            if let Some(schema) = &mut input.schema {
                bundle_schema(
                    schema,
                    read,
                    &format!("inputs.{name}.schema"),
                    &mut violations,
                );
            }
        }
        bundle_phases(&mut self.phases, read, "phases", &mut violations);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// Visits every phase, loop bodies included, depth first in declaration
    /// order, with its field path (`phases[4].body[0]`).
    pub fn walk_phases(&self) -> Vec<(String, &Phase)> {
        let mut out = Vec::new();
        walk(&self.phases, "phases", &mut out);
        out
    }
}

fn walk<'a>(phases: &'a [Phase], prefix: &str, out: &mut Vec<(String, &'a Phase)>) {
    for (index, phase) in phases.iter().enumerate() {
        let path = format!("{prefix}[{index}]");
        out.push((path.clone(), phase));
        if let Some(body) = &phase.body {
            walk(body, &format!("{path}.body"), out);
        }
    }
}

/// Reads a file a template refers to, by its path as written.
pub type FileReader<'a> = dyn Fn(&str) -> std::io::Result<String> + 'a;

fn bundle_phases(
    phases: &mut [Phase],
    read: &FileReader<'_>,
    prefix: &str,
    violations: &mut Vec<Violation>,
) {
    for (index, phase) in phases.iter_mut().enumerate() {
        let path = format!("{prefix}[{index}]");
        if let Some(schema) = phase
            .output
            .as_mut()
            .and_then(|output| output.schema.as_mut())
        {
            bundle_schema(schema, read, &format!("{path}.output.schema"), violations);
        }
        if let Some(PromptRef::File(file)) = &phase.prompt {
            let field = format!("{path}.prompt");
            match read(file) {
                Ok(text) => phase.prompt = Some(PromptRef::Text(text)),
                Err(err) => violations.push(Violation::new(
                    field,
                    format!("cannot read the prompt file {file}: {err}; the path is relative to the template file"),
                )),
            }
        }
        if let Some(body) = &mut phase.body {
            bundle_phases(body, read, &format!("{path}.body"), violations);
        }
    }
}

fn bundle_schema(
    schema: &mut SchemaRef,
    read: &FileReader<'_>,
    field: &str,
    violations: &mut Vec<Violation>,
) {
    let SchemaRef::File(file) = schema else {
        return;
    };
    let text = match read(file) {
        Ok(text) => text,
        Err(err) => {
            violations.push(Violation::new(
                field,
                format!("cannot read the schema file {file}: {err}; the path is relative to the template file"),
            ));
            return;
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => *schema = SchemaRef::Inline(value),
        Err(err) => violations.push(Violation::new(
            field,
            format!("the schema file {file} is not valid JSON: {err}"),
        )),
    }
}

/// Rebuilds every object with its keys in order, whatever map the
/// `serde_json` build uses (`preserve_order` keeps insertion order).
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
name: demo
inputs:
  baseline: { schema: { type: object }, description: the page }
phases:
  - id: context
    kind: human_input
    output: { name: context, schema: schemas/context.json }
  - id: draft
    kind: llm
    needs: [context]
    inputs: { brief: context.context, base: input.baseline }
    model: { provider: offline, name: offline-1, temperature: 0.2 }
    prompt: prompts/draft.j2
    output: { name: draft }
    retry: { max_attempts: 3 }
    timeout: 2m
  - id: review
    kind: human_review
    needs: [draft]
    show: [diff]
    on_reject: { action: retry, phases: [draft] }
"#;

    #[test]
    fn parses_yaml_with_file_references() {
        let template = Template::parse(YAML, Format::Auto).unwrap();
        assert_eq!(template.name, "demo");
        assert_eq!(template.phases.len(), 3);
        let draft = &template.phases[1];
        assert_eq!(draft.kind, PhaseKind::Llm);
        assert_eq!(
            draft.prompt,
            Some(PromptRef::File("prompts/draft.j2".into()))
        );
        assert_eq!(draft.timeout(), Some(Duration::from_secs(120)));
        assert_eq!(draft.retry_policy().max_attempts, 3);
        let schema = template.phases[0]
            .output
            .as_ref()
            .and_then(|o| o.schema.clone());
        assert_eq!(schema, Some(SchemaRef::File("schemas/context.json".into())));
        assert!(template.inputs["baseline"].required);
        assert_eq!(
            template.phases[2].on_reject,
            Some(OnReject::Retry {
                phases: vec!["draft".into()]
            })
        );
    }

    #[test]
    fn unknown_fields_are_a_source_violation() {
        let err = Template::parse("name: x\nphases: []\ncolour: red\n", Format::Yaml).unwrap_err();
        assert_eq!(err.field, "source");
        assert!(err.description.contains("colour"), "{}", err.description);
        assert!(err.description.contains("line"), "{}", err.description);
    }

    #[test]
    fn unknown_on_reject_action_fields_are_refused() {
        let source = "name: x\nphases:\n  - id: r\n    on_reject: { action: fail, phases: [a] }\n";
        assert!(Template::parse(source, Format::Yaml).is_err());
    }

    #[test]
    fn json_is_detected_and_round_trips() {
        let template = Template::parse(YAML, Format::Yaml).unwrap();
        let json = template.to_json();
        let again = Template::parse(&json, Format::Auto).unwrap();
        assert_eq!(again, template);
        assert_eq!(again.to_json(), json);
    }

    #[test]
    fn prompt_text_is_not_mistaken_for_a_file() {
        assert!(matches!(
            PromptRef::from("Summarise README.md".to_owned()),
            PromptRef::Text(_)
        ));
        assert!(matches!(
            PromptRef::from("prompts/a.md".to_owned()),
            PromptRef::File(_)
        ));
        assert!(matches!(
            PromptRef::from("{{ x }}.txt".to_owned()),
            PromptRef::Text(_)
        ));
    }

    #[test]
    fn bundle_inlines_files_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("schemas")).unwrap();
        std::fs::create_dir_all(dir.path().join("prompts")).unwrap();
        std::fs::write(
            dir.path().join("schemas/context.json"),
            r#"{"type":"object"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("prompts/draft.j2"), "Write {{ brief }}").unwrap();

        let mut template = Template::parse(YAML, Format::Yaml).unwrap();
        let base = dir.path().to_owned();
        let from_dir = move |file: &str| std::fs::read_to_string(base.join(file));
        template.bundle_with(&from_dir).unwrap();
        assert_eq!(
            template.phases[0]
                .output
                .as_ref()
                .and_then(|o| o.schema.clone()),
            Some(SchemaRef::Inline(serde_json::json!({"type": "object"})))
        );
        assert_eq!(
            template.phases[1].prompt,
            Some(PromptRef::Text("Write {{ brief }}".into()))
        );

        let mut template = Template::parse(YAML, Format::Yaml).unwrap();
        std::fs::write(dir.path().join("schemas/context.json"), "{ not json").unwrap();
        std::fs::remove_file(dir.path().join("prompts/draft.j2")).unwrap();
        let violations = template.bundle_with(&from_dir).unwrap_err();
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["phases[0].output.schema", "phases[1].prompt"]);
    }

    #[test]
    fn retry_delays_grow_and_are_capped() {
        let policy = RetryPolicy {
            max_attempts: 5,
            backoff: Backoff::Exponential,
            initial_delay: Some(DurationSpec("1s".into())),
            max_delay: Some(DurationSpec("3s".into())),
        };
        let delays: Vec<_> = (1..=4).map(|n| policy.delay_before(n).as_secs()).collect();
        assert_eq!(delays, [0, 1, 2, 3]);
    }
}
