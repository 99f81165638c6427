//! Google's Gemini API (`POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`).
//!
//! Request: the key in `x-goog-api-key` (never in the URL, so no log of a
//! URL can leak it); body `contents` (one `user` turn of `parts`),
//! `systemInstruction`, and `generationConfig` with `maxOutputTokens`,
//! `temperature`, `seed` (a 32-bit integer: the seed's low bits) and, for
//! structured output, `responseMimeType: "application/json"` with
//! `responseJsonSchema` — the JSON Schema form, where `responseSchema`
//! would need the schema rewritten into Google's OpenAPI subset.
//!
//! Stream: every `data:` chunk is a whole `GenerateContentResponse`:
//! `candidates[0].content.parts[].text` (parts marked `thought` are the
//! model's reasoning, not its answer), `finishReason` on the last,
//! `usageMetadata` (`promptTokenCount` including `cachedContentTokenCount`,
//! `candidatesTokenCount` + `thoughtsTokenCount` billed as output),
//! `modelVersion`, and `promptFeedback.blockReason` for a refused prompt.
//! There is no `[DONE]`. Errors are `{error: {code, message, status,
//! details}}`; a 429's `details` carry a `google.rpc.RetryInfo` with the
//! `retryDelay` to honour. Shapes follow googleapis/python-genai
//! (`models.py` `_GenerateContentConfig_to_mldev`, `types.py`).

use std::time::Duration;

use eventsource_stream::Event;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{WireFormat, WireRequest, schema_to_send, secret_header};
use super::settings::ApiKey;
use super::sse::{self, Answer, StreamDecoder};
use super::{CompletionRequest, ProviderError, Usage};

/// The Gemini wire format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gemini;

impl WireFormat for Gemini {
    fn label(&self) -> &'static str {
        "Google Gemini"
    }

    fn request(
        &self,
        req: &CompletionRequest,
        key: Option<&ApiKey>,
    ) -> Result<WireRequest, ProviderError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            headers.insert("x-goog-api-key", secret_header(key.expose())?);
        }
        let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
        if model.is_empty() || model.contains(['/', '?', '#', ':']) {
            return Err(ProviderError::BadRequest(format!(
                "`{}` is not a Gemini model name",
                req.model
            )));
        }
        let mut config = json!({
            "maxOutputTokens": req.max_tokens,
            "seed": req.seed & 0x7fff_ffff,
        });
        if let Some(temperature) = req.temperature {
            config["temperature"] = json!(temperature);
        }
        if let Some(schema) = &req.output_schema {
            config["responseMimeType"] = json!("application/json");
            config["responseJsonSchema"] = schema_to_send(schema);
        }
        let mut body = json!({
            "contents": [{"role": "user", "parts": [{"text": req.prompt}]}],
            "generationConfig": config,
        });
        if let Some(system) = &req.system {
            body["systemInstruction"] = json!({"parts": [{"text": system}]});
        }
        Ok(WireRequest {
            path: format!("/v1beta/models/{model}:streamGenerateContent?alt=sse"),
            headers,
            body,
        })
    }

    fn decoder(&self, _req: &CompletionRequest) -> Box<dyn StreamDecoder> {
        Box::new(Decoder::default())
    }

    fn retry_delay(&self, body: &Value) -> Option<Duration> {
        body.pointer("/error/details")?
            .as_array()?
            .iter()
            .filter(|detail| {
                detail["@type"]
                    .as_str()
                    .is_some_and(|kind| kind.ends_with("google.rpc.RetryInfo"))
            })
            .find_map(|detail| parse_duration(detail["retryDelay"].as_str()?))
    }
}

/// A protobuf JSON duration such as `"7s"` or `"0.250s"`.
fn parse_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    model_version: Option<String>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<WireError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

#[derive(Debug, Default)]
struct Decoder {
    text: String,
    usage: Usage,
    model: Option<String>,
    finish_reason: Option<String>,
}

impl StreamDecoder for Decoder {
    fn event(&mut self, event: &Event) -> Result<Option<String>, ProviderError> {
        let chunk: Chunk = sse::parse(event)?;
        if let Some(error) = chunk.error {
            let status = if (400..600).contains(&error.code) {
                error.code
            } else {
                500
            };
            return Err(ProviderError::from_http_status(
                status,
                None,
                format!("gemini: {}: {}", error.status, error.message),
            ));
        }
        if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            return Err(ProviderError::BadRequest(format!(
                "gemini blocked the prompt: {reason}"
            )));
        }
        if chunk.model_version.is_some() {
            self.model = chunk.model_version;
        }
        if let Some(usage) = chunk.usage_metadata {
            self.usage = Usage {
                input_tokens: usage.prompt_token_count,
                output_tokens: usage.candidates_token_count + usage.thoughts_token_count,
                cached_input_tokens: usage.cached_content_token_count,
            };
        }
        let mut added = String::new();
        if let Some(candidate) = chunk.candidates.into_iter().next() {
            for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(text) = part.text.filter(|_| !part.thought) {
                    added.push_str(&text);
                }
            }
            if let Some(reason) = candidate.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        self.text.push_str(&added);
        Ok(Some(added))
    }

    fn finish(self: Box<Self>) -> Result<Answer, ProviderError> {
        match self.finish_reason.as_deref() {
            None => Err(sse::unfinished("a finishReason")),
            // Whole answers: done, or cut at the token limit (which the
            // schema check then reports).
            Some(reason @ ("STOP" | "MAX_TOKENS" | "FINISH_REASON_UNSPECIFIED")) => Ok(Answer {
                truncated: reason == "MAX_TOKENS",
                text: self.text,
                usage: self.usage,
                model: self.model,
                first_text_at: None,
            }),
            Some(other) => Err(ProviderError::BadRequest(format!(
                "gemini stopped the answer: {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_in_an_error_body_gives_the_wait() {
        let body = json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
        ]}});
        assert_eq!(Gemini.retry_delay(&body), Some(Duration::from_millis(1500)));
        assert_eq!(Gemini.retry_delay(&json!({})), None);
    }

    #[test]
    fn thoughts_are_not_the_answer_and_blocked_answers_fail() {
        let mut decoder = Gemini.decoder(&CompletionRequest {
            model: "gemini-2.5-flash".into(),
            system: None,
            prompt: "hi".into(),
            temperature: None,
            max_tokens: 10,
            seed: 0,
            output_schema: None,
            deadline: None,
        });
        let chunk = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking…", "thought": true}, {"text": "Hello"}]}, "finishReason": "SAFETY"}]});
        let added = decoder
            .event(&Event {
                data: chunk.to_string(),
                ..Event::default()
            })
            .expect("reads");
        assert_eq!(added.as_deref(), Some("Hello"));
        let error = decoder.finish().expect_err("blocked");
        assert!(
            !error.is_retryable() && error.to_string().contains("SAFETY"),
            "{error}"
        );
    }
}
