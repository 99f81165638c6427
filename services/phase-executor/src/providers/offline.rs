//! The offline provider: answers without a network or a key, deterministically
//! for a given (seed, model, system prompt, prompt), so examples run end to
//! end and tests and replays are byte-stable. Its output is labelled offline.
//!
//! With an output schema it returns JSON generated to validate against it
//! (see [`super::generate`]); a fenced ```json block in the prompt that
//! already validates is used as the shape of the answer. Without a schema it
//! returns prose made of the prompt's own words.

use serde_json::Value;
use tokio::sync::mpsc;

use super::generate::{Generator, Rng, fingerprint};
use super::{
    Completion, CompletionRequest, Provider, ProviderError, ProviderEvent, ProviderInfo, Usage,
    count_tokens,
};

/// Characters per streamed delta: small enough that watchers see text flow.
const CHUNK_CHARS: usize = 12;
/// Fresh draws tried before giving up on a schema the generator cannot meet.
const ATTEMPTS: u64 = 8;

/// The deterministic, network-free provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineProvider;

impl OfflineProvider {
    /// The registry name templates use: `model: { provider: offline }`.
    pub const NAME: &'static str = "offline";
    /// The only model it serves.
    pub const MODEL: &'static str = "offline-1";

    /// Makes the provider; it holds no state.
    pub fn new() -> Self {
        Self
    }

    /// Computes the completion text without streaming: the whole answer is a
    /// pure function of the request.
    pub fn respond(&self, req: &CompletionRequest) -> Result<String, ProviderError> {
        if req.model != Self::MODEL {
            return Err(ProviderError::UnknownModel {
                provider: Self::NAME.to_owned(),
                model: req.model.clone(),
            });
        }
        let stream =
            fingerprint(&[&req.model, req.system.as_deref().unwrap_or(""), &req.prompt]) ^ req.seed;
        match &req.output_schema {
            Some(schema) => structured(schema, &req.prompt, stream),
            None => Ok(prose(&req.prompt, stream, req.max_tokens)),
        }
    }
}

#[async_trait::async_trait]
impl Provider for OfflineProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: Self::NAME.to_owned(),
            label: "Offline (deterministic, no network)".to_owned(),
            offline: true,
            models: vec![Self::MODEL.to_owned()],
        }
    }

    async fn complete(
        &self,
        req: CompletionRequest,
        events: mpsc::Sender<ProviderEvent>,
    ) -> Result<Completion, ProviderError> {
        let text = self.respond(&req)?;
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(CHUNK_CHARS) {
            let delta = ProviderEvent::Delta(chunk.iter().collect());
            if events.send(delta).await.is_err() {
                // Nobody is listening any more; the caller still gets the text.
                break;
            }
        }
        let input = format!("{} {}", req.system.as_deref().unwrap_or(""), req.prompt);
        Ok(Completion {
            usage: Usage {
                input_tokens: count_tokens(&input),
                output_tokens: count_tokens(&text),
                cached_input_tokens: 0,
            },
            text,
            model: Self::MODEL.to_owned(),
            provider: Self::NAME.to_owned(),
            offline: true,
            truncated: false,
            latency: std::time::Duration::ZERO,
            time_to_first_token: None,
        })
    }
}

fn structured(schema: &Value, prompt: &str, stream: u64) -> Result<String, ProviderError> {
    let validator = jsonschema::validator_for(schema).map_err(|error| {
        ProviderError::BadRequest(format!("output schema does not compile: {error}"))
    })?;
    let guide = example_answers(prompt)
        .into_iter()
        .find(|candidate| validator.is_valid(candidate));
    let mut last_problem = String::new();
    for attempt in 0..ATTEMPTS {
        let rng = Rng::new(stream.wrapping_add(attempt.wrapping_mul(0x9E37_79B9)));
        let instance = match Generator::new(schema, rng, prompt).generate(guide.as_ref()) {
            Ok(instance) => instance,
            Err(error) => {
                return Err(ProviderError::BadRequest(format!(
                    "offline provider: {error}"
                )));
            }
        };
        match validator.validate(&instance) {
            Ok(()) => {
                return serde_json::to_string_pretty(&instance)
                    .map_err(|error| ProviderError::InvalidResponse(error.to_string()));
            }
            Err(error) => last_problem = error.to_string(),
        }
    }
    Err(ProviderError::BadRequest(format!(
        "offline provider could not satisfy the output schema: {last_problem}"
    )))
}

/// Every fenced ```json block in the prompt that parses.
fn example_answers(prompt: &str) -> Vec<Value> {
    let mut answers = Vec::new();
    let mut rest = prompt;
    while let Some(start) = rest.find("```json") {
        let body = &rest[start + "```json".len()..];
        let Some(end) = body.find("```") else { break };
        if let Ok(value) = serde_json::from_str(&body[..end]) {
            answers.push(value);
        }
        rest = &body[end + 3..];
    }
    answers
}

fn prose(prompt: &str, stream: u64, max_tokens: u32) -> String {
    let schema = Value::Bool(true);
    let mut generator = Generator::new(&schema, Rng::new(stream), prompt);
    let budget = usize::try_from(max_tokens)
        .unwrap_or(usize::MAX)
        .clamp(1, 120);
    let mut sentences: Vec<String> = Vec::new();
    let mut used = 0;
    let wanted = 2 + generator.rng().below(3) as usize;
    while sentences.len() < wanted && used < budget {
        let length = (6 + generator.rng().below(7) as usize).min(budget - used);
        used += length;
        sentences.push(format!("{}.", generator.prose(length)));
    }
    sentences.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH_SCHEMA: &str = include_str!("../../../../examples/backtrack/schemas/ui-patch.json");

    fn request(seed: u64, prompt: &str, schema: Option<Value>) -> CompletionRequest {
        CompletionRequest {
            model: OfflineProvider::MODEL.to_owned(),
            system: None,
            prompt: prompt.to_owned(),
            temperature: Some(0.2),
            max_tokens: 256,
            seed,
            output_schema: schema,
            deadline: None,
        }
    }

    fn patch_schema() -> Value {
        serde_json::from_str(PATCH_SCHEMA).expect("schema is JSON")
    }

    async fn complete(req: CompletionRequest) -> (Completion, Vec<String>) {
        let (sender, mut receiver) = mpsc::channel(1024);
        let completion = OfflineProvider::new()
            .complete(req, sender)
            .await
            .expect("completes");
        let mut deltas = Vec::new();
        while let Some(event) = receiver.recv().await {
            if let ProviderEvent::Delta(delta) = event {
                deltas.push(delta);
            }
        }
        (completion, deltas)
    }

    #[tokio::test]
    async fn same_seed_same_text_and_different_seed_different_text() {
        for schema in [None, Some(patch_schema())] {
            let (first, _) = complete(request(
                1,
                "make the hero call to action clearer",
                schema.clone(),
            ))
            .await;
            let (again, _) = complete(request(
                1,
                "make the hero call to action clearer",
                schema.clone(),
            ))
            .await;
            let (other, _) =
                complete(request(2, "make the hero call to action clearer", schema)).await;
            assert_eq!(first, again);
            assert_ne!(first.text, other.text);
        }
    }

    #[tokio::test]
    async fn deltas_concatenate_to_the_text_and_tokens_are_counted() {
        let (completion, deltas) = complete(request(
            9,
            "say something about buttons",
            Some(patch_schema()),
        ))
        .await;
        assert!(deltas.len() > 1, "streams in several chunks");
        assert!(
            deltas
                .iter()
                .all(|delta| delta.chars().count() <= CHUNK_CHARS)
        );
        assert_eq!(deltas.concat(), completion.text);
        assert_eq!(completion.usage.input_tokens, 4);
        assert_eq!(
            completion.usage.output_tokens,
            count_tokens(&completion.text)
        );
        assert!(completion.offline);
        assert_eq!(completion.provider, "offline");
    }

    #[tokio::test]
    async fn a_closed_receiver_does_not_fail_the_completion() {
        let (sender, receiver) = mpsc::channel(1);
        drop(receiver);
        let completion = OfflineProvider::new()
            .complete(request(1, "hello there", None), sender)
            .await;
        assert!(completion.is_ok());
    }

    #[test]
    fn generated_patches_validate_for_fifty_seeds() {
        let schema = patch_schema();
        let validator = jsonschema::validator_for(&schema).expect("compiles");
        let provider = OfflineProvider::new();
        for prompt in ["make the hero's call to action clearer", ""] {
            for seed in 0..50 {
                let text = provider
                    .respond(&request(seed, prompt, Some(schema.clone())))
                    .expect("responds");
                let value: Value = serde_json::from_str(&text).expect("json");
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "seed {seed}: {errors:?}\n{text}");
                assert!(
                    value["ops"][0]["path"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("/slots/"))
                );
            }
        }
    }

    #[test]
    fn a_valid_example_in_the_prompt_shapes_the_answer() {
        let prompt = "Change the hero.\n```json\n{\"slot\": \"hero\", \"summary\": \"Make the CTA primary\", \"ops\": [{\"op\": \"replace\", \"path\": \"/slots/hero/children/2/children/0/props/label\", \"value\": \"Start your free trial\"}]}\n```\n";
        for seed in 0..20 {
            let text = OfflineProvider::new()
                .respond(&request(seed, prompt, Some(patch_schema())))
                .expect("responds");
            let value: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(value["slot"], "hero");
            assert_eq!(value["ops"].as_array().map(Vec::len), Some(1));
            assert_eq!(
                value["ops"][0]["path"],
                "/slots/hero/children/2/children/0/props/label"
            );
        }
    }

    #[test]
    fn prose_without_a_schema_uses_prompt_words() {
        let text = OfflineProvider::new()
            .respond(&request(5, "buttons labels heroes", None))
            .expect("responds");
        assert!(text.ends_with('.'));
        let words: Vec<String> = text
            .split_whitespace()
            .map(|w| w.trim_end_matches('.').to_lowercase())
            .collect();
        assert!(
            words
                .iter()
                .all(|w| ["buttons", "labels", "heroes"].contains(&w.as_str())),
            "{text}"
        );
    }

    #[test]
    fn rejects_unknown_models_and_broken_schemas_permanently() {
        let mut req = request(1, "x", None);
        req.model = "gpt-9".into();
        let error = OfflineProvider::new().respond(&req).expect_err("fails");
        assert!(!error.is_retryable());
        let broken = request(
            1,
            "x",
            Some(
                serde_json::json!({"type": "object", "required": ["a"], "additionalProperties": false}),
            ),
        );
        let error = OfflineProvider::new().respond(&broken).expect_err("fails");
        assert!(matches!(error, ProviderError::BadRequest(_)), "{error}");
    }
}
