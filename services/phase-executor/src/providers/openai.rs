//! OpenAI's Chat Completions API (`POST {base}/chat/completions`, `stream:
//! true`), which DeepSeek and the OpenAI-compatible servers (Ollama, vLLM,
//! llama.cpp's server, LM Studio) speak too; [`OpenAiFlavour`] holds where
//! they differ.
//!
//! Request: `Authorization: Bearer` (omitted when a local server has no
//! key); body `model`, `messages` (`system` then `user`), `stream`,
//! `stream_options: {include_usage: true}` (a last chunk with empty
//! `choices` carries the usage), `seed` (not DeepSeek, whose reference has
//! none), `temperature`, and the token
//! limit: `max_completion_tokens` for OpenAI (`max_tokens` is deprecated and
//! refused by its reasoning models), `max_tokens` for the others.
//! Structured output: `response_format: {type: "json_schema", json_schema:
//! {name, schema, strict}}`, strict only when the schema meets strict
//! mode's rules (every object closed, every property required), since
//! strict mode refuses other schemas; DeepSeek has only `{type:
//! "json_object"}`, so the schema also goes into the system prompt, which
//! its JSON mode requires to mention JSON.
//!
//! Stream: `data:` chunks `{model, choices: [{delta: {content, refusal},
//! finish_reason}], usage}`, then `data: [DONE]`; an `{error: {message}}`
//! chunk reports a failure mid-stream. Usage: `prompt_tokens`,
//! `completion_tokens`, cached input in `prompt_tokens_details.cached_tokens`
//! (DeepSeek: `prompt_cache_hit_tokens`). Shapes follow openai-python
//! (`types/chat/chat_completion_chunk.py`, `types/completion_usage.py`) and
//! DeepSeek's API reference.

use eventsource_stream::Event;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{WireFormat, WireRequest, error_message, schema_to_send, secret_header};
use super::settings::ApiKey;
use super::sse::{self, Answer, StreamDecoder};
use super::{CompletionRequest, ProviderError, Usage};

/// The name the structured output's schema is sent under.
pub const SCHEMA_NAME: &str = "output";

/// Who is behind a Chat Completions endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiFlavour {
    /// api.openai.com.
    OpenAi,
    /// api.deepseek.com: JSON mode only, its own cache counts.
    DeepSeek,
    /// Any OpenAI-compatible server.
    Compatible,
}

/// The Chat Completions wire format.
#[derive(Debug, Clone, Copy)]
pub struct OpenAi {
    flavour: OpenAiFlavour,
}

impl OpenAi {
    /// The wire format as `flavour` speaks it.
    pub fn new(flavour: OpenAiFlavour) -> OpenAi {
        OpenAi { flavour }
    }
}

impl WireFormat for OpenAi {
    fn label(&self) -> &'static str {
        match self.flavour {
            OpenAiFlavour::OpenAi => "OpenAI",
            OpenAiFlavour::DeepSeek => "DeepSeek",
            OpenAiFlavour::Compatible => "OpenAI-compatible server",
        }
    }

    fn request(
        &self,
        req: &CompletionRequest,
        key: Option<&ApiKey>,
    ) -> Result<WireRequest, ProviderError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            headers.insert(
                "authorization",
                secret_header(&format!("Bearer {}", key.expose()))?,
            );
        }
        let mut system = req.system.clone();
        let mut body = json!({
            "model": req.model,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        // DeepSeek's reference has no seed. The others take a 64-bit
        // integer; the top bit is dropped so no server reads it negative.
        if self.flavour != OpenAiFlavour::DeepSeek {
            body["seed"] = json!(req.seed >> 1);
        }
        let limit = match self.flavour {
            OpenAiFlavour::OpenAi => "max_completion_tokens",
            _ => "max_tokens",
        };
        body[limit] = json!(req.max_tokens);
        if let Some(temperature) = req.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(schema) = &req.output_schema {
            let schema = schema_to_send(schema);
            if self.flavour == OpenAiFlavour::DeepSeek {
                let instruction = format!(
                    "Answer with JSON only: one JSON value that satisfies this JSON Schema.\n{schema}"
                );
                system = Some(match system {
                    Some(system) => format!("{system}\n\n{instruction}"),
                    None => instruction,
                });
                body["response_format"] = json!({"type": "json_object"});
            } else {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {
                        "name": SCHEMA_NAME,
                        "schema": schema,
                        "strict": strict_accepts(&schema),
                    },
                });
            }
        }
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": req.prompt}));
        body["messages"] = Value::Array(messages);
        Ok(WireRequest {
            path: "/chat/completions".to_owned(),
            headers,
            body,
        })
    }

    fn decoder(&self, _req: &CompletionRequest) -> Box<dyn StreamDecoder> {
        Box::new(Decoder::default())
    }
}

/// Whether strict structured outputs accept `schema`: an object at the
/// root, and [`meets_strict_rules`] throughout.
pub fn strict_accepts(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object") && meets_strict_rules(schema)
}

/// Whether every object in `schema` lists all its properties as required
/// and allows no others, as strict mode demands. Checked through
/// `properties`, `items`, `anyOf` and `$defs`.
pub fn meets_strict_rules(schema: &Value) -> bool {
    let Some(object) = schema.as_object() else {
        return true;
    };
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let closed = object.get("additionalProperties") == Some(&Value::Bool(false));
        if !closed
            || properties
                .keys()
                .any(|name| !required.contains(&name.as_str()))
        {
            return false;
        }
        if !properties.values().all(meets_strict_rules) {
            return false;
        }
    } else if object.get("type").and_then(Value::as_str) == Some("object") {
        return false;
    }
    let nested = |key: &str| match object.get(key) {
        Some(Value::Array(schemas)) => schemas.iter().all(meets_strict_rules),
        Some(Value::Object(map)) if key == "$defs" => map.values().all(meets_strict_rules),
        Some(other) => meets_strict_rules(other),
        None => true,
    };
    nested("items") && nested("anyOf") && nested("$defs")
}

#[derive(Debug, Deserialize)]
struct Chunk {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    prompt_tokens_details: Option<PromptDetails>,
    /// DeepSeek's count of prompt tokens served from its cache.
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default)]
struct Decoder {
    text: String,
    refusal: String,
    model: Option<String>,
    usage: Usage,
    finish_reason: Option<String>,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, event: &Event) -> Result<Option<String>, ProviderError> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let chunk: Chunk = sse::parse(event)?;
        if let Some(error) = chunk.error {
            let status = error
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|code| u16::try_from(code).ok())
                .filter(|code| (400..600).contains(code))
                .unwrap_or(500);
            let message = error_message(&json!({ "error": error }))
                .unwrap_or_else(|| "an error in the stream".into());
            return Err(ProviderError::from_http_status(
                status,
                None,
                format!("error mid-stream: {message}"),
            ));
        }
        if chunk.model.is_some() {
            self.model = chunk.model;
        }
        if let Some(usage) = chunk.usage {
            let cached = usage
                .prompt_cache_hit_tokens
                .or(usage.prompt_tokens_details.and_then(|d| d.cached_tokens));
            self.usage = Usage {
                input_tokens: usage.prompt_tokens,
                output_tokens: usage.completion_tokens,
                cached_input_tokens: cached.unwrap_or(0),
            };
        }
        let mut added = String::new();
        for choice in chunk.choices {
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
            let delta = choice.delta.unwrap_or_default();
            if let Some(refusal) = delta.refusal {
                self.refusal.push_str(&refusal);
            }
            if let Some(content) = delta.content {
                added.push_str(&content);
            }
        }
        self.text.push_str(&added);
        Ok(Some(added))
    }

    fn finish(self: Box<Self>) -> Result<Answer, ProviderError> {
        // Some compatible servers end without `[DONE]`; a finish reason
        // says the answer is whole all the same.
        if !self.done && self.finish_reason.is_none() {
            return Err(sse::unfinished("[DONE]"));
        }
        if self.text.is_empty() && !self.refusal.is_empty() {
            return Err(ProviderError::BadRequest(format!(
                "the model refused to answer: {}",
                self.refusal
            )));
        }
        Ok(Answer {
            truncated: self.finish_reason.as_deref() == Some("length"),
            text: self.text,
            usage: self.usage,
            model: self.model,
            first_text_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_is_asked_only_for_schemas_it_accepts() {
        let closed = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {
                "type": "object", "properties": {"c": {"type": "integer"}},
                "required": ["c"], "additionalProperties": false}}},
            "required": ["a", "b"],
            "additionalProperties": false,
        });
        assert!(meets_strict_rules(&closed));
        let mut optional = closed.clone();
        optional["required"] = json!(["a"]);
        assert!(!meets_strict_rules(&optional));
        let mut open_inside = closed.clone();
        open_inside["properties"]["b"]["items"]["additionalProperties"] = json!(true);
        assert!(!meets_strict_rules(&open_inside));
        assert!(!meets_strict_rules(&json!({"type": "object"})));
        assert!(meets_strict_rules(&json!({"type": "string"})));
        assert!(strict_accepts(&closed));
        assert!(!strict_accepts(
            &json!({"type": "array", "items": {"type": "string"}})
        ));
    }

    #[test]
    fn an_error_chunk_mid_stream_fails_the_call() {
        let mut decoder = OpenAi::new(OpenAiFlavour::OpenAi).decoder(&request());
        let chunk = |data: Value| Event {
            data: data.to_string(),
            ..Event::default()
        };
        let added = decoder
            .event(&chunk(
                json!({"model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
            ))
            .expect("reads");
        assert_eq!(added.as_deref(), Some("Hi"));
        let error = decoder
            .event(&chunk(
                json!({"error": {"message": "The server had an error", "type": "server_error"}}),
            ))
            .expect_err("fails");
        assert!(error.is_retryable(), "{error}");
        assert!(
            error.to_string().contains("The server had an error"),
            "{error}"
        );
    }

    #[test]
    fn a_refusal_is_a_permanent_failure() {
        let mut decoder = OpenAi::new(OpenAiFlavour::OpenAi).decoder(&request());
        for data in [
            json!({"choices": [{"index": 0, "delta": {"refusal": "I can't help with that."}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ] {
            decoder
                .event(&Event {
                    data: data.to_string(),
                    ..Event::default()
                })
                .expect("reads");
        }
        let error = decoder.finish().expect_err("refused");
        assert!(
            !error.is_retryable() && error.to_string().contains("can't help"),
            "{error}"
        );
    }

    fn request() -> CompletionRequest {
        CompletionRequest {
            model: "gpt-4o".into(),
            system: None,
            prompt: "hi".into(),
            temperature: None,
            max_tokens: 64,
            seed: 0,
            output_schema: None,
            deadline: None,
        }
    }

    #[test]
    fn deepseek_gets_json_mode_and_the_schema_in_its_system_prompt() {
        let req = CompletionRequest {
            model: "deepseek-chat".into(),
            system: Some("Be brief.".into()),
            prompt: "hi".into(),
            temperature: Some(0.5),
            max_tokens: 64,
            seed: u64::MAX,
            output_schema: Some(
                json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}),
            ),
            deadline: None,
        };
        let body = OpenAi::new(OpenAiFlavour::DeepSeek)
            .request(&req, None)
            .expect("writes")
            .body;
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        assert_eq!(body["max_tokens"], 64);
        assert!(body.get("seed").is_none());
        let system = body["messages"][0]["content"].as_str().expect("system");
        assert!(
            system.starts_with("Be brief.") && system.contains("JSON Schema"),
            "{system}"
        );
        assert!(!system.contains("$schema"), "{system}");
    }
}
