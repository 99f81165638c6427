//! Structured output: a model's answer checked against the phase's output
//! schema, and repaired by asking again with the violations when it breaks
//! it. The providers already use their native mechanism for the schema
//! (a forced tool, a JSON-schema response format); this is the check that
//! holds whatever the provider did.

use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::AttemptFailure;
use crate::providers::{Completion, CompletionRequest, Provider, ProviderEvent, Usage};

/// The most violations quoted back to a model asked for a repair.
const REPAIR_VIOLATIONS: usize = 20;

/// Calls the model, and while its answer breaks the schema and repairs are
/// left, calls it again with the violations; returns the last completion
/// (valid or not: storing it reports the violations and keeps the raw
/// output) and the usage of every call.
pub async fn complete_valid(
    provider: &dyn Provider,
    request: CompletionRequest,
    validator: Option<&jsonschema::Validator>,
    repairs: u32,
    events: &mpsc::Sender<ProviderEvent>,
) -> Result<(Completion, Usage), AttemptFailure> {
    let call = |request: CompletionRequest| async move {
        provider
            .complete(request, events.clone())
            .await
            .map_err(|e| {
                if e.is_retryable() {
                    AttemptFailure::transient(e.to_string())
                } else {
                    AttemptFailure::permanent(e.to_string())
                }
            })
    };
    let mut completion = call(request.clone()).await?;
    let mut usage = completion.usage;
    let Some(validator) = validator else {
        return Ok((completion, usage));
    };
    for _ in 0..repairs {
        let problems = violations(validator, &completion.text);
        if problems.is_empty() {
            break;
        }
        tracing::info!(
            violations = problems.len(),
            "the answer breaks its output schema; asking the model to repair it"
        );
        let _ = events
            .send(ProviderEvent::Retrying {
                until: std::time::SystemTime::now(),
                reason: format!(
                    "the answer breaks its output schema ({} violation(s)); asking for a repair",
                    problems.len()
                ),
                discarded: true,
            })
            .await;
        let repair = CompletionRequest {
            prompt: repair_prompt(&request.prompt, &completion.text, &problems),
            ..request.clone()
        };
        completion = call(repair).await?;
        usage = usage.plus(completion.usage);
    }
    Ok((completion, usage))
}

/// Where `text` breaks the schema, one line per fault (`/path: message`);
/// empty when it is valid JSON that satisfies it.
pub fn violations(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    let Some(value) = extract_json(text) else {
        return vec!["the answer is not JSON".to_owned()];
    };
    validator
        .iter_errors(&value)
        .take(REPAIR_VIOLATIONS)
        .map(|error| {
            let path = error.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            format!("{path}: {error}")
        })
        .collect()
}

/// The prompt asking a model to repair `answer`: the original prompt, the
/// answer, and what is wrong with it.
pub fn repair_prompt(prompt: &str, answer: &str, problems: &[String]) -> String {
    let mut repaired = format!(
        "{prompt}\n\nYour previous answer was:\n```json\n{}\n```\n\
         It does not satisfy the required JSON Schema:\n",
        answer.trim()
    );
    for problem in problems {
        repaired.push_str("- ");
        repaired.push_str(problem);
        repaired.push('\n');
    }
    repaired.push_str("Answer again with the whole corrected JSON and nothing else.\n");
    repaired
}

/// The JSON inside a model's answer: the whole text, or the part between
/// a ```json fence, or from the first `{` to the last `}`.
pub fn extract_json(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(text.trim()) {
        return Some(value);
    }
    if let Some(start) = text.find("```json") {
        let rest = &text[start + 7..];
        if let Some(end) = rest.find("```")
            && let Ok(value) = serde_json::from_str(rest[..end].trim())
        {
            return Some(value);
        }
    }
    let (start, end) = (text.find('{')?, text.rfind('}')?);
    serde_json::from_str(text.get(start..=end)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_name_the_path_and_a_repair_prompt_quotes_them() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
        });
        let validator = jsonschema::validator_for(&schema).expect("compiles");
        assert!(violations(&validator, r#"{"n": 1}"#).is_empty());
        assert_eq!(
            violations(&validator, "no json"),
            vec!["the answer is not JSON"]
        );
        let problems = violations(&validator, r#"{"n": "one"}"#);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("/n: "), "{problems:?}");
        let prompt = repair_prompt("Count.", r#"{"n": "one"}"#, &problems);
        assert!(prompt.starts_with("Count.\n\nYour previous answer was:"));
        assert!(prompt.contains(&problems[0]));
    }

    #[test]
    fn json_is_found_in_model_answers() {
        assert_eq!(extract_json(r#"{"a":1}"#), Some(serde_json::json!({"a":1})));
        assert_eq!(
            extract_json("Here it is:\n```json\n{\"a\": 2}\n```\nDone."),
            Some(serde_json::json!({"a":2}))
        );
        assert_eq!(
            extract_json("so {\"a\": 3} it is"),
            Some(serde_json::json!({"a":3}))
        );
        assert_eq!(extract_json("no json here"), None);
    }
}
