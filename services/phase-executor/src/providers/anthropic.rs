//! Anthropic's Messages API (`POST /v1/messages`, `stream: true`).
//!
//! Request: `x-api-key` and `anthropic-version: 2023-06-01` headers; body
//! `model`, `max_tokens`, `system`, `messages`, `temperature`, `stream`.
//! Anthropic takes no seed. Structured output is a forced tool: one tool
//! whose `input_schema` is the phase's schema and `tool_choice: {type:
//! "tool"}`, so the answer is the tool's input, streamed as
//! `input_json_delta`. A tool's input must be an object, so any other
//! schema is wrapped as the property `value` and unwrapped on the way out.
//!
//! Stream (named events, each also carrying its `type`): `message_start`
//! (the model, input usage), `content_block_start`, `content_block_delta`
//! (`text_delta` or `input_json_delta`), `content_block_stop`,
//! `message_delta` (stop reason, cumulative usage), `message_stop`, any
//! number of `ping`s, and `error` (`overloaded_error`, …). Input tokens are
//! `input_tokens` + `cache_creation_input_tokens` + `cache_read_input_tokens`;
//! the last is the cached part. Shapes follow anthropic-sdk-python
//! (`types/raw_message_stream_event.py`, `types/usage.py`).

use eventsource_stream::Event;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{WireFormat, WireRequest, schema_to_send, secret_header};
use super::settings::ApiKey;
use super::sse::{self, Answer, StreamDecoder};
use super::{CompletionRequest, ProviderError, Usage};

/// The API version every request names.
pub const API_VERSION: &str = "2023-06-01";
/// The forced tool's name: its input is the answer.
pub const ANSWER_TOOL: &str = "answer";

/// The Messages wire format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anthropic;

impl WireFormat for Anthropic {
    fn label(&self) -> &'static str {
        "Anthropic"
    }

    fn request(
        &self,
        req: &CompletionRequest,
        key: Option<&ApiKey>,
    ) -> Result<WireRequest, ProviderError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            headers.insert("x-api-key", secret_header(key.expose())?);
        }
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        let mut body = json!({
            "model": req.model,
            "max_tokens": req.max_tokens,
            "messages": [{"role": "user", "content": req.prompt}],
            "stream": true,
        });
        if let Some(system) = &req.system {
            body["system"] = json!(system);
        }
        if let Some(temperature) = req.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(schema) = &req.output_schema {
            let (input_schema, _) = tool_schema(schema);
            body["tools"] = json!([{
                "name": ANSWER_TOOL,
                "description": "Records your answer. Its input is the answer itself and must satisfy the schema.",
                "input_schema": input_schema,
            }]);
            body["tool_choice"] = json!({"type": "tool", "name": ANSWER_TOOL});
        }
        Ok(WireRequest {
            path: "/v1/messages".to_owned(),
            headers,
            body,
        })
    }

    fn decoder(&self, req: &CompletionRequest) -> Box<dyn StreamDecoder> {
        let wrapped = req
            .output_schema
            .as_ref()
            .is_some_and(|schema| tool_schema(schema).1);
        Box::new(Decoder {
            wrapped,
            ..Decoder::default()
        })
    }
}

/// The tool input schema for `schema`, and whether it had to be wrapped
/// because its root is not an object.
fn tool_schema(schema: &Value) -> (Value, bool) {
    let schema = schema_to_send(schema);
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        (schema, false)
    } else {
        (
            json!({
                "type": "object",
                "properties": {"value": schema},
                "required": ["value"],
            }),
            true,
        )
    }
}

/// The ProviderError for an Anthropic error `type`, through the HTTP status
/// it stands for (the Messages API documents the pairs).
fn error_for(kind: &str, message: String) -> ProviderError {
    let status = match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    };
    ProviderError::from_http_status(status, None, format!("anthropic: {kind}: {message}"))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: MessageStart,
    },
    ContentBlockStart {
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: ErrorBody,
    },
    /// `ping`, `content_block_stop` and events added later.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageStart {
    model: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// Thinking, signatures, citations.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
}

/// Usage as `message_start` and `message_delta` report it; the latter's
/// counts are cumulative and replace the former's.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Default)]
struct Decoder {
    wrapped: bool,
    text: String,
    tool_json: String,
    tool_input: Option<Value>,
    model: Option<String>,
    usage: WireUsage,
    stop_reason: Option<String>,
    stopped: bool,
}

impl Decoder {
    fn take_usage(&mut self, usage: WireUsage) {
        let merge = |into: &mut Option<u64>, from: Option<u64>| {
            if from.is_some() {
                *into = from;
            }
        };
        merge(&mut self.usage.input_tokens, usage.input_tokens);
        merge(&mut self.usage.output_tokens, usage.output_tokens);
        merge(
            &mut self.usage.cache_creation_input_tokens,
            usage.cache_creation_input_tokens,
        );
        merge(
            &mut self.usage.cache_read_input_tokens,
            usage.cache_read_input_tokens,
        );
    }
}

impl StreamDecoder for Decoder {
    fn event(&mut self, event: &Event) -> Result<Option<String>, ProviderError> {
        match sse::parse::<StreamEvent>(event)? {
            StreamEvent::MessageStart { message } => {
                self.model = message.model;
                if let Some(usage) = message.usage {
                    self.take_usage(usage);
                }
            }
            StreamEvent::ContentBlockStart { content_block } => match content_block {
                ContentBlock::Text { text } if !text.is_empty() => {
                    self.text.push_str(&text);
                    return Ok(Some(text));
                }
                ContentBlock::ToolUse { input } => self.tool_input = Some(input),
                _ => {}
            },
            StreamEvent::ContentBlockDelta { delta } => match delta {
                BlockDelta::TextDelta { text } => {
                    self.text.push_str(&text);
                    return Ok(Some(text));
                }
                BlockDelta::InputJsonDelta { partial_json } => {
                    self.tool_json.push_str(&partial_json);
                    return Ok(Some(partial_json));
                }
                BlockDelta::Other => {}
            },
            StreamEvent::MessageDelta { delta, usage } => {
                self.stop_reason = delta.stop_reason.or(self.stop_reason.take());
                if let Some(usage) = usage {
                    self.take_usage(usage);
                }
            }
            StreamEvent::MessageStop => self.stopped = true,
            StreamEvent::Error { error } => return Err(error_for(&error.kind, error.message)),
            StreamEvent::Other => {}
        }
        Ok(None)
    }

    fn finish(self: Box<Self>) -> Result<Answer, ProviderError> {
        if !self.stopped {
            return Err(sse::unfinished("message_stop"));
        }
        if self.stop_reason.as_deref() == Some("refusal") {
            return Err(ProviderError::BadRequest(format!(
                "anthropic: the model refused to answer: {}",
                self.text
            )));
        }
        let cache_read = self.usage.cache_read_input_tokens.unwrap_or(0);
        let usage = Usage {
            input_tokens: self.usage.input_tokens.unwrap_or(0)
                + self.usage.cache_creation_input_tokens.unwrap_or(0)
                + cache_read,
            output_tokens: self.usage.output_tokens.unwrap_or(0),
            cached_input_tokens: cache_read,
        };
        let text = match self.tool_input {
            Some(input) => {
                // A tool input arrives whole in the start block when it is
                // short, else as deltas after an empty `{}`.
                let json = if self.tool_json.trim().is_empty() {
                    input.to_string()
                } else {
                    self.tool_json
                };
                if self.wrapped {
                    unwrap_value(json)
                } else {
                    json
                }
            }
            None => self.text,
        };
        Ok(Answer {
            text,
            usage,
            model: self.model,
            truncated: self.stop_reason.as_deref() == Some("max_tokens"),
            first_text_at: None,
        })
    }
}

/// The `value` property of a wrapped answer; the raw text when it is not
/// one, so validation reports what the model sent.
fn unwrap_value(json: String) -> String {
    match serde_json::from_str::<Value>(&json) {
        Ok(Value::Object(mut object)) if object.contains_key("value") => object
            .remove("value")
            .map(|value| value.to_string())
            .unwrap_or(json),
        _ => json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: Value) -> Event {
        Event {
            event: data["type"].as_str().unwrap_or("message").to_owned(),
            data: data.to_string(),
            ..Event::default()
        }
    }

    fn decode(req: &CompletionRequest, events: &[Value]) -> Result<Answer, ProviderError> {
        let mut decoder = Anthropic.decoder(req);
        for data in events {
            decoder.event(&event(data.clone()))?;
        }
        decoder.finish()
    }

    fn request(schema: Option<Value>) -> CompletionRequest {
        CompletionRequest {
            model: "claude-sonnet-4-5".into(),
            system: None,
            prompt: "hi".into(),
            temperature: None,
            max_tokens: 100,
            seed: 1,
            output_schema: schema,
            deadline: None,
        }
    }

    #[test]
    fn a_non_object_schema_is_wrapped_and_the_answer_unwrapped() {
        let schema = json!({"type": "array", "items": {"type": "integer"}});
        let req = request(Some(schema.clone()));
        let written = Anthropic.request(&req, None).expect("writes");
        assert_eq!(
            written.body["tools"][0]["input_schema"]["properties"]["value"],
            schema
        );
        let answer = decode(
            &req,
            &[
                json!({"type": "message_start", "message": {"model": "claude-x", "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 3}}}),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "answer", "input": {}}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"value\": [1,"}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": " 2]}"}}),
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
                json!({"type": "message_stop"}),
            ],
        )
        .expect("decodes");
        assert_eq!(answer.text, "[1,2]");
        assert_eq!(
            answer.usage,
            Usage {
                input_tokens: 10,
                output_tokens: 9,
                cached_input_tokens: 2
            }
        );
        assert_eq!(answer.model.as_deref(), Some("claude-x"));
    }

    #[test]
    fn error_events_map_to_retryable_and_permanent_errors() {
        let overloaded = decode(
            &request(None),
            &[json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})],
        )
        .expect_err("fails");
        assert!(overloaded.is_retryable(), "{overloaded}");
        let invalid = decode(
            &request(None),
            &[json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}})],
        )
        .expect_err("fails");
        assert!(!invalid.is_retryable());
        assert!(
            invalid.to_string().contains("prompt is too long"),
            "{invalid}"
        );
    }

    #[test]
    fn a_stream_without_message_stop_is_unfinished() {
        let error = decode(
            &request(None),
            &[json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}})],
        )
        .expect_err("fails");
        assert!(
            matches!(error, ProviderError::InvalidResponse(_)),
            "{error}"
        );
    }
}
