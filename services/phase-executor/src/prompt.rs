//! Prompt rendering for `llm` phases: a minijinja template over the phase's
//! inputs.
//!
//! Each input of the phase (the keys of the template's `inputs:` map) is a
//! top-level variable holding the artifact's JSON, so `inputs: { context:
//! context.context }` lets the prompt say `{{ context.intent }}`. Undefined
//! variables are errors (strict mode), so a misspelt field fails the attempt
//! instead of sending the model an empty section. Blocks are trimmed
//! (`trim_blocks`, `lstrip_blocks`) so `{% %}` lines leave no blank lines,
//! and the `json` filters (`tojson`) are available.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

/// Why a prompt could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromptError {
    /// The template does not parse; the message names the line.
    #[error("prompt template is invalid: {0}")]
    Syntax(String),
    /// The template parsed but failed on these inputs, e.g. an undefined field.
    #[error("prompt failed to render: {0}")]
    Render(String),
}

/// Renders the prompt template `source` with each input as a variable.
pub fn render_prompt(source: &str, inputs: &Map<String, Value>) -> Result<String, PromptError> {
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|error| PromptError::Syntax(describe(&error)))?;
    let mut environment = Environment::new();
    environment.set_syntax(syntax);
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    let template = environment
        .template_from_str(source)
        .map_err(|error| PromptError::Syntax(describe(&error)))?;
    template
        .render(minijinja::Value::from(Serde(inputs)))
        .map_err(|error| PromptError::Render(describe(&error)))
}

/// The error's message with the template line it happened on.
fn describe(error: &minijinja::Error) -> String {
    let mut text = error.to_string();
    if let Some(line) = error.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inputs_are_top_level_variables() {
        let inputs: Map<String, Value> = [("context".to_owned(), json!({"intent": "be clear"}))]
            .into_iter()
            .collect();
        assert_eq!(
            render_prompt("Do: {{ context.intent }}", &inputs),
            Ok("Do: be clear".to_owned())
        );
    }

    #[test]
    fn undefined_fields_and_bad_syntax_are_errors() {
        let inputs: Map<String, Value> = [("context".to_owned(), json!({}))].into_iter().collect();
        let error = render_prompt("{{ context.nope.deeper }}", &inputs).expect_err("fails");
        assert!(matches!(error, PromptError::Render(_)), "{error}");
        let error = render_prompt("{% if %}", &inputs).expect_err("fails");
        assert!(matches!(error, PromptError::Syntax(_)), "{error}");
    }
}
