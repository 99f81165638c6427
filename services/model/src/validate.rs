//! Validation of a template: every fault at once, each with its field path.
//!
//! A template is stored only once [`validate`] accepts it, and everything
//! downstream (the scheduler, the executors) relies on what a
//! [`ValidTemplate`] guarantees: known kinds and references, an acyclic
//! graph, compiled schemas and prompts, bundled files.

use std::collections::HashMap;

use serde_json::Value;

use crate::graph::Graph;
use crate::template::{Format, OnReject, Phase, PhaseKind, PromptRef, SchemaRef, Template};
use crate::violation::Violation;

/// What the deployment offers, given by the caller because only the
/// scheduler knows which providers and functions its executors serve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Names of the LLM providers an `llm` phase may use.
    pub providers: Vec<String>,
    /// Names of the built-in functions a `function` phase may call.
    pub functions: Vec<String>,
}

impl Catalog {
    /// What every deployment has: the built-in functions of the phase
    /// executor and its offline provider. The executor's tests check that
    /// its registries list exactly these.
    pub fn builtin() -> Catalog {
        Catalog {
            providers: BUILTIN_PROVIDERS.iter().map(|s| (*s).to_owned()).collect(),
            functions: BUILTIN_FUNCTIONS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The functions every phase executor has built in.
pub const BUILTIN_FUNCTIONS: &[&str] = &[
    "json.merge",
    "json.pick",
    "patch.apply",
    "patch.diff",
    "patch.merge",
    "rubric.evaluate",
    "ui.preview",
];

/// The providers every phase executor has without configuration.
pub const BUILTIN_PROVIDERS: &[&str] = &["offline"];

/// A template that passed [`validate`], with its dependency graph.
///
/// The only way to get one is through validation, so holding one proves
/// the template can be stored and run.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidTemplate {
    template: Template,
    graph: Graph,
}

impl ValidTemplate {
    /// Returns the template.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// Gives the template back, dropping the graph.
    pub fn into_template(self) -> Template {
        self.template
    }

    /// Returns the dependency graph (loop bodies flattened; see [`Graph`]).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Returns the phase with this id, wherever it is declared.
    pub fn phase(&self, id: &str) -> Option<&Phase> {
        let index = self.graph.index_of(id)?;
        self.template
            .walk_phases()
            .into_iter()
            .nth(index)
            .map(|(_, phase)| phase)
    }

    /// Returns every phase with its field path, in index order.
    pub fn phases(&self) -> Vec<(String, &Phase)> {
        self.template.walk_phases()
    }

    /// Returns the stable index of a phase (declaration order, bodies after their loop).
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.graph.index_of(id)
    }

    /// Returns every phase id in an order where each follows all it needs.
    pub fn topological_order(&self) -> Vec<&str> {
        self.graph.topological_order()
    }

    /// Returns the phases this one waits for directly.
    pub fn needs(&self, id: &str) -> Vec<&str> {
        self.graph.needs(id)
    }

    /// Returns the phases that wait directly for this one.
    pub fn children(&self, id: &str) -> Vec<&str> {
        self.graph.children(id)
    }

    /// Returns every phase that must finish before this one may start.
    pub fn ancestors(&self, id: &str) -> Vec<&str> {
        self.graph.ancestors(id)
    }

    /// Returns every phase downstream of this one: what a rewind to it resets.
    pub fn descendants(&self, id: &str) -> Vec<&str> {
        self.graph.descendants(id)
    }

    /// Returns the canonical JSON that is stored and frozen into runs.
    pub fn to_json(&self) -> String {
        self.template.to_json()
    }
}

/// Parses and validates in one step: a parse failure is the single
/// violation on `source`.
pub fn validate_source(
    source: &str,
    format: Format,
    catalog: &Catalog,
) -> Result<ValidTemplate, Vec<Violation>> {
    let template = Template::parse(source, format).map_err(|violation| vec![violation])?;
    validate(&template, catalog)
}

/// Checks a bundled template against the catalog, returning every fault.
pub fn validate(template: &Template, catalog: &Catalog) -> Result<ValidTemplate, Vec<Violation>> {
    let graph = Graph::new(template);
    let mut check = Checker {
        template,
        catalog,
        graph: &graph,
        outputs: HashMap::new(),
        violations: Vec::new(),
    };
    check.template_fields();
    let phases = template.walk_phases();
    for (path, phase) in &phases {
        if let Some(output) = &phase.output {
            check
                .outputs
                .entry(phase.id.as_str())
                .or_insert(output.name.as_str());
        }
        check.identity(path, phase, &phases);
    }
    for (path, phase) in &phases {
        check.phase(path, phase);
    }
    check.cycles();

    if check.violations.is_empty() {
        Ok(ValidTemplate {
            template: template.clone(),
            graph,
        })
    } else {
        Err(check.violations)
    }
}

const REVIEW_VIEWS: [&str; 3] = ["diff", "rubric", "preview"];
const MAX_NAME_LEN: usize = 64;
const MAX_ITERATIONS: u32 = 100;
const MAX_ATTEMPTS: u32 = 20;

struct Checker<'a> {
    template: &'a Template,
    catalog: &'a Catalog,
    graph: &'a Graph,
    /// Phase id → the name of its output (first declaration wins).
    outputs: HashMap<&'a str, &'a str>,
    violations: Vec<Violation>,
}

impl<'a> Checker<'a> {
    fn fault(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(Violation::new(field, description));
    }

    fn template_fields(&mut self) {
        let name = &self.template.name;
        if name.is_empty() {
            self.fault(
                "name",
                "the template needs a name: a slug such as backtrack-ui-patch",
            );
        } else if !is_slug(name, true) || name.len() > MAX_NAME_LEN {
            self.fault(
                "name",
                format!(
                    "{name:?} is not a slug: use at most {MAX_NAME_LEN} characters, a lowercase letter first, then lowercase letters, digits, '-' or '_'"
                ),
            );
        }
        if self.template.phases.is_empty() {
            self.fault("phases", "a template needs at least one phase");
        }
        for (input_name, input) in &self.template.inputs {
            let field = format!("inputs.{input_name}");
            if !is_slug(input_name, false) {
                self.fault(
                    &field,
                    format!("{input_name:?} is not a valid input name: use a lowercase letter first, then lowercase letters, digits or '_'"),
                );
            }
            if let Some(schema) = &input.schema {
                self.schema(&format!("{field}.schema"), schema);
            }
        }
    }

    /// Checks the id and the kind, which later checks rely on.
    fn identity(&mut self, path: &str, phase: &Phase, phases: &[(String, &Phase)]) {
        let id = &phase.id;
        if id.is_empty() {
            self.fault(
                format!("{path}.id"),
                "every phase needs an id, e.g. id: draft",
            );
        } else if !is_slug(id, false) {
            self.fault(
                format!("{path}.id"),
                format!("{id:?} is not a valid phase id: use a lowercase letter first, then lowercase letters, digits or '_'"),
            );
        } else if let Some((first_path, _)) = phases
            .iter()
            .find(|(_, other)| other.id == *id)
            .filter(|(first_path, _)| first_path != path)
        {
            self.fault(
                format!("{path}.id"),
                format!("the id {id:?} is already used by {first_path}; ids must be unique across the template, loop bodies included"),
            );
        }
        let known = PhaseKind::KNOWN.join(", ");
        match &phase.kind {
            PhaseKind::Unknown(kind) if kind.is_empty() => {
                self.fault(
                    format!("{path}.kind"),
                    format!("every phase needs a kind: one of {known}"),
                );
            }
            PhaseKind::Unknown(kind) => {
                self.fault(
                    format!("{path}.kind"),
                    format!("unknown kind {kind:?}; use one of {known}"),
                );
            }
            _ => {}
        }
    }

    fn phase(&mut self, path: &str, phase: &'a Phase) {
        self.foreign_fields(path, phase);
        self.needs(path, phase);
        self.inputs(path, phase);
        if let Some(output) = &phase.output {
            if !is_slug(&output.name, false) {
                self.fault(
                    format!("{path}.output.name"),
                    "the output needs a name (a lowercase letter first, then lowercase letters, digits or '_'); children reference it as <phase>.<name>",
                );
            }
            if let Some(schema) = &output.schema {
                self.schema(&format!("{path}.output.schema"), schema);
            }
        }
        if phase.kind.is_machine() {
            self.retry_and_timeout(path, phase);
        }
        match &phase.kind {
            PhaseKind::Llm => self.llm(path, phase),
            PhaseKind::Function => self.function(path, phase),
            PhaseKind::HumanInput => self.human_input(path, phase),
            PhaseKind::HumanReview => self.human_review(path, phase),
            PhaseKind::Loop => self.loop_block(path, phase),
            PhaseKind::Unknown(_) => {}
        }
    }

    /// Reports fields that belong to another kind, so a typo in the kind or
    /// a field pasted from another phase does not pass silently.
    fn foreign_fields(&mut self, path: &str, phase: &Phase) {
        use PhaseKind::*;
        if matches!(phase.kind, Unknown(_)) {
            return;
        }
        let given: [(&str, bool, &[PhaseKind]); 14] = [
            ("model", phase.model.is_some(), &[Llm]),
            ("prompt", phase.prompt.is_some(), &[Llm]),
            ("system", phase.system.is_some(), &[Llm]),
            ("function", phase.function.is_some(), &[Function]),
            ("params", phase.params.is_some(), &[Function]),
            ("show", phase.show.is_some(), &[HumanReview]),
            ("on_reject", phase.on_reject.is_some(), &[HumanReview]),
            ("candidates", phase.candidates.is_some(), &[HumanReview]),
            ("select", phase.select.is_some(), &[HumanReview]),
            ("max_iterations", phase.max_iterations.is_some(), &[Loop]),
            ("body", phase.body.is_some(), &[Loop]),
            ("retry", phase.retry.is_some(), &[Llm, Function]),
            ("timeout", phase.timeout.is_some(), &[Llm, Function]),
            (
                "output",
                phase.output.is_some(),
                &[Llm, Function, HumanInput, HumanReview],
            ),
        ];
        for (field, present, kinds) in given {
            if present && !kinds.contains(&phase.kind) {
                let owners: Vec<&str> = kinds.iter().map(PhaseKind::as_str).collect();
                self.fault(
                    format!("{path}.{field}"),
                    format!(
                        "{field} applies to {} phases, not {}; remove it or change the kind",
                        owners.join(" and "),
                        phase.kind
                    ),
                );
            }
        }
        if !phase.inputs.is_empty() && phase.kind == Loop {
            self.fault(
                format!("{path}.inputs"),
                "a loop takes no inputs; give them to the phases of its body",
            );
        }
    }

    fn needs(&mut self, path: &str, phase: &Phase) {
        let own_loop = self.graph.enclosing_loop(&phase.id);
        for (j, need) in phase.needs.iter().enumerate() {
            let field = format!("{path}.needs[{j}]");
            if *need == phase.id {
                self.fault(field, "a phase cannot need itself");
            } else if self.graph.index_of(need).is_none() {
                self.fault(
                    field,
                    format!("names no phase: there is no phase with id {need:?}"),
                );
            } else if let Some(loop_id) = self.graph.enclosing_loop(need) {
                // Only phases of the same body (or of a body enclosing this
                // phase) may be needed directly: the body repeats as a unit.
                let mut enclosing = own_loop;
                let mut visible = false;
                while let Some(l) = enclosing {
                    visible |= l == loop_id;
                    enclosing = self.graph.enclosing_loop(l);
                }
                if !visible {
                    self.fault(
                        field,
                        format!("{need:?} is inside the body of the loop {loop_id:?}; need the loop instead, which finishes after its last attempt"),
                    );
                }
            }
        }
    }

    fn inputs(&mut self, path: &str, phase: &Phase) {
        for (local, reference) in &phase.inputs {
            let field = format!("{path}.inputs.{local}");
            let Some((source, name)) = reference.split_once('.') else {
                self.fault(
                    field,
                    format!("{reference:?} is not a reference: write <phase_id>.<output_name> or input.<run_input_name>"),
                );
                continue;
            };
            if source == "input" {
                if !self.template.inputs.contains_key(name) {
                    self.fault(
                        field,
                        format!("{reference:?} names no run input: declare {name:?} under the template's inputs"),
                    );
                }
            } else if !self.graph.is_ancestor(source, &phase.id) {
                self.fault(
                    field,
                    format!("{reference:?} names no ancestor's output: {source:?} is not a phase this one needs, directly or through others; add it to needs"),
                );
            } else {
                match self.outputs.get(source) {
                    Some(declared) if *declared == name => {}
                    Some(declared) => self.fault(
                        field,
                        format!("{reference:?} names no output of {source:?}: its output is {declared:?}"),
                    ),
                    None => self.fault(
                        field,
                        format!("{reference:?} names no output of {source:?}: that phase declares no output"),
                    ),
                }
            }
        }
    }

    fn schema(&mut self, field: &str, schema: &SchemaRef) {
        match schema {
            SchemaRef::File(file) if file.ends_with(".json") => self.fault(
                field,
                format!("{file:?} is a file reference; the server accepts bundled templates only: apply the template with the orchestra CLI, which inlines the file"),
            ),
            SchemaRef::File(text) => self.fault(
                field,
                format!("{text:?} is neither a JSON Schema object nor a path ending .json"),
            ),
            SchemaRef::Inline(value @ (Value::Object(_) | Value::Bool(_))) => {
                if let Err(err) = jsonschema::validator_for(value) {
                    self.fault(field, format!("the schema does not compile as JSON Schema: {err}"));
                }
            }
            SchemaRef::Inline(_) => self.fault(field, "a schema must be a JSON Schema object"),
        }
    }

    fn retry_and_timeout(&mut self, path: &str, phase: &Phase) {
        if let Some(retry) = &phase.retry {
            if !(1..=MAX_ATTEMPTS).contains(&retry.max_attempts) {
                self.fault(
                    format!("{path}.retry.max_attempts"),
                    format!("max_attempts counts the first attempt too: use 1 to {MAX_ATTEMPTS}"),
                );
            }
            for (name, spec) in [
                ("initial_delay", &retry.initial_delay),
                ("max_delay", &retry.max_delay),
            ] {
                if let Some(Err(err)) = spec.as_ref().map(|spec| spec.to_duration()) {
                    self.fault(format!("{path}.retry.{name}"), err.to_string());
                }
            }
        }
        if let Some(Err(err)) = phase.timeout.as_ref().map(|spec| spec.to_duration()) {
            self.fault(format!("{path}.timeout"), err.to_string());
        }
    }

    fn llm(&mut self, path: &str, phase: &Phase) {
        match &phase.model {
            None => self.fault(
                format!("{path}.model"),
                "an llm phase needs a model: { provider, name }",
            ),
            Some(model) => {
                if !self.catalog.providers.contains(&model.provider) {
                    self.fault(
                        format!("{path}.model.provider"),
                        format!(
                            "unknown provider {:?}; configured providers: {}",
                            model.provider,
                            list_or_none(&self.catalog.providers)
                        ),
                    );
                }
                if model.name.trim().is_empty() {
                    self.fault(
                        format!("{path}.model.name"),
                        "give the provider's model name, e.g. offline-1",
                    );
                }
                if model
                    .temperature
                    .is_some_and(|temperature| !(0.0..=2.0).contains(&temperature))
                {
                    self.fault(
                        format!("{path}.model.temperature"),
                        "temperature must be between 0 and 2",
                    );
                }
                if model.max_tokens == Some(0) {
                    self.fault(
                        format!("{path}.model.max_tokens"),
                        "max_tokens must be at least 1",
                    );
                }
            }
        }
        let field = format!("{path}.prompt");
        match &phase.prompt {
            None => self.fault(field, "an llm phase needs a prompt: minijinja text or a .j2 file"),
            Some(PromptRef::File(file)) => self.fault(
                field,
                format!("{file:?} is a file reference; the server accepts bundled templates only: apply the template with the orchestra CLI, which inlines the file"),
            ),
            Some(PromptRef::Text(text)) => {
                let env = minijinja::Environment::new();
                if let Err(err) = env.template_from_str(text) {
                    self.fault(field, format!("the prompt does not compile as a minijinja template: {err}"));
                }
            }
        }
    }

    fn function(&mut self, path: &str, phase: &Phase) {
        let field = format!("{path}.function");
        match &phase.function {
            None => self.fault(
                field,
                "a function phase needs a function, e.g. function: patch.merge",
            ),
            Some(name) if !self.catalog.functions.contains(name) => self.fault(
                field,
                format!(
                    "unknown function {name:?}; available functions: {}",
                    list_or_none(&self.catalog.functions)
                ),
            ),
            Some(_) => {}
        }
    }

    fn human_input(&mut self, path: &str, phase: &Phase) {
        match &phase.output {
            None => self.fault(
                format!("{path}.output"),
                "a human_input phase needs an output with a schema: the schema is the form people fill in",
            ),
            Some(output) if output.schema.is_none() => self.fault(
                format!("{path}.output.schema"),
                "a human_input phase needs an output schema: it is the form people fill in",
            ),
            Some(_) => {}
        }
    }

    fn human_review(&mut self, path: &str, phase: &Phase) {
        if phase.needs.is_empty() {
            self.fault(
                format!("{path}.needs"),
                "a review needs the phases whose work it reviews",
            );
        }
        for (j, view) in phase.show.iter().flatten().enumerate() {
            if !REVIEW_VIEWS.contains(&view.as_str()) {
                self.fault(
                    format!("{path}.show[{j}]"),
                    format!(
                        "unknown view {view:?}; use any of {}",
                        REVIEW_VIEWS.join(", ")
                    ),
                );
            }
        }
        self.review_candidates(path, phase);
        if let Some(OnReject::Retry { phases }) = &phase.on_reject {
            if phases.is_empty() {
                self.fault(
                    format!("{path}.on_reject.phases"),
                    "name the upstream phases to send back, or use { action: fail }",
                );
            }
            for (j, target) in phases.iter().enumerate() {
                if !self.graph.is_ancestor(target, &phase.id) {
                    self.fault(
                        format!("{path}.on_reject.phases[{j}]"),
                        format!("{target:?} is not upstream of this review; a rejection can only send back phases the review depends on"),
                    );
                }
            }
        }
    }

    /// A review's candidates must be distinct inputs of the review, and a
    /// selection needs candidates to select from.
    fn review_candidates(&mut self, path: &str, phase: &Phase) {
        match &phase.candidates {
            None if phase.select.is_some() => self.fault(
                format!("{path}.select"),
                "select needs candidates: list the inputs an approval chooses between",
            ),
            None => {}
            Some(candidates) if candidates.is_empty() => self.fault(
                format!("{path}.candidates"),
                "name at least one input, or remove candidates to approve the work as a whole",
            ),
            Some(candidates) => {
                let inputs: Vec<&str> = phase.inputs.keys().map(String::as_str).collect();
                for (j, name) in candidates.iter().enumerate() {
                    if !phase.inputs.contains_key(name) {
                        self.fault(
                            format!("{path}.candidates[{j}]"),
                            format!(
                                "{name:?} is not an input of this review; candidates are input names ({})",
                                if inputs.is_empty() { "it has none".to_owned() } else { inputs.join(", ") }
                            ),
                        );
                    } else if candidates[..j].contains(name) {
                        self.fault(
                            format!("{path}.candidates[{j}]"),
                            format!("{name:?} is listed twice"),
                        );
                    }
                }
            }
        }
    }

    fn loop_block(&mut self, path: &str, phase: &Phase) {
        match phase.max_iterations {
            None => self.fault(
                format!("{path}.max_iterations"),
                format!("a loop needs a bound: max_iterations from 1 to {MAX_ITERATIONS}"),
            ),
            Some(n) if !(1..=MAX_ITERATIONS).contains(&n) => self.fault(
                format!("{path}.max_iterations"),
                format!("max_iterations must be from 1 to {MAX_ITERATIONS}"),
            ),
            Some(_) => {}
        }
        if phase.body.as_ref().is_none_or(Vec::is_empty) {
            self.fault(
                format!("{path}.body"),
                "a loop needs a body of at least one phase",
            );
        }
    }

    fn cycles(&mut self) {
        for cycle in self.graph.find_cycles() {
            let first = cycle.first().copied().unwrap_or_default();
            let path = self.graph.path_of(first).unwrap_or("phases").to_owned();
            self.fault(
                format!("{path}.needs"),
                format!(
                    "the phases depend on each other in a cycle: {} (each needs the one before it); remove one of these needs",
                    cycle.join(" -> ")
                ),
            );
        }
    }
}

/// Says whether `text` is a lowercase slug; `dashes` also allows '-'.
fn is_slug(text: &str, dashes: bool) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (dashes && c == '-')
        })
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            providers: vec!["offline".to_owned()],
            functions: vec!["patch.check".to_owned(), "patch.fix".to_owned()],
        }
    }

    const LOOP: &str = r#"
name: fix-until-clean
inputs:
  page: { schema: { type: string } }
phases:
  - id: draft
    kind: llm
    inputs: { page: input.page }
    model: { provider: offline, name: offline-1 }
    prompt: "Rewrite {{ page }}"
    output: { name: draft }
  - id: repair
    kind: loop
    needs: [draft]
    max_iterations: 3
    body:
      - id: check
        kind: function
        function: patch.check
        inputs: { patch: draft.draft }
        output: { name: report }
      - id: fix
        kind: function
        function: patch.fix
        needs: [check]
        inputs: { patch: draft.draft, report: check.report }
        output: { name: fixed }
  - id: review
    kind: human_review
    needs: [repair]
    inputs: { fixed: fix.fixed }
"#;

    #[test]
    fn loop_bodies_see_the_loops_ancestors_and_are_seen_after_it() {
        let valid = validate_source(LOOP, Format::Yaml, &catalog()).unwrap();
        assert_eq!(
            valid.topological_order(),
            ["draft", "check", "fix", "repair", "review"]
        );
        assert_eq!(valid.ancestors("fix"), ["draft", "check"]);
        assert_eq!(valid.descendants("check"), ["repair", "fix", "review"]);
        assert_eq!(valid.phase("fix").map(|p| p.id.as_str()), Some("fix"));
        assert_eq!(valid.graph().enclosing_loop("fix"), Some("repair"));
    }

    #[test]
    fn an_empty_catalog_refuses_every_provider_and_function() {
        let violations = validate_source(LOOP, Format::Yaml, &Catalog::default()).unwrap_err();
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "phases[0].model.provider",
                "phases[1].body[0].function",
                "phases[1].body[1].function",
            ]
        );
        assert!(
            violations[0]
                .description
                .ends_with("configured providers: none")
        );
    }

    #[test]
    fn a_body_phase_needing_its_own_loop_is_a_cycle() {
        let source = LOOP.replace("needs: [check]", "needs: [check, repair]");
        let violations = validate_source(&source, Format::Yaml, &catalog()).unwrap_err();
        assert_eq!(violations.len(), 1, "{violations:#?}");
        assert_eq!(violations[0].field, "phases[1].needs");
        assert!(violations[0].description.contains("cycle"));
    }

    #[test]
    fn slugs() {
        assert!(is_slug("backtrack-ui-patch", true));
        assert!(!is_slug("backtrack-ui-patch", false));
        assert!(is_slug("variant_a", false));
        assert!(!is_slug("Variant", false));
        assert!(!is_slug("1st", false));
        assert!(!is_slug("", true));
    }
}
