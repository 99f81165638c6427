//! The HTTP mechanism every model provider shares. A provider is a
//! [`WireFormat`] — how one request is written and how its streamed answer
//! and its errors are read — run by [`HttpProvider`], which owns what is
//! the same for all of them:
//!
//! - at most [`HttpTuning::concurrency`] calls in flight per provider (a
//!   semaphore), so fifty parallel phases do not trip a rate limit at once;
//! - retries of what may heal (429, 5xx, connection faults, timeouts, a
//!   broken stream) with exponential backoff and jitter, waiting at least
//!   what the provider asks (`retry-after-ms`, `retry-after`, or the wait in
//!   its error body), never past the attempt's deadline; a 4xx that will not
//!   heal fails at once with the provider's own message;
//! - a silence limit on the response and on every gap in its stream;
//! - the key, sent in a header marked sensitive and scrubbed from every
//!   message built from a response.
//!
//! Dropping the future of [`Provider::complete`] drops the request, which
//! closes its connection: a cancelled run stops its model call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;

use super::settings::{ApiKey, Endpoint};
use super::sse::{self, StreamDecoder};
use super::{Completion, CompletionRequest, Provider, ProviderError, ProviderEvent, ProviderInfo};

/// The most of an error body read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How the shared HTTP mechanism behaves; the executor's configuration
/// sets it (`ORCHESTRA_EXECUTOR_PROVIDER_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTuning {
    /// Calls in flight at once per provider.
    pub concurrency: usize,
    /// Retries of one call after the first try.
    pub retries: usize,
    /// The first backoff; each next one doubles, with jitter.
    pub backoff: Duration,
    /// The longest backoff the executor chooses (a provider's `retry-after`
    /// may ask for longer, and is honoured).
    pub max_backoff: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// The longest silence: until the response starts, and between two
    /// pieces of its stream.
    pub idle_timeout: Duration,
}

impl Default for HttpTuning {
    fn default() -> HttpTuning {
        HttpTuning {
            concurrency: 8,
            retries: 4,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// One request as a wire format writes it.
#[derive(Debug)]
pub struct WireRequest {
    /// Appended to the endpoint's base URL: path and query, from `/`.
    pub path: String,
    /// Headers beside `content-type` and `accept`, the key among them
    /// (marked sensitive).
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
}

/// One provider's HTTP dialect.
pub trait WireFormat: Send + Sync + 'static {
    /// A label for listings, such as "Anthropic".
    fn label(&self) -> &'static str;

    /// Writes the request for `req`, authenticated with `key`.
    fn request(
        &self,
        req: &CompletionRequest,
        key: Option<&ApiKey>,
    ) -> Result<WireRequest, ProviderError>;

    /// A decoder for one streamed answer to `req`.
    fn decoder(&self, req: &CompletionRequest) -> Box<dyn StreamDecoder>;

    /// The provider's own message in an error body. The default reads the
    /// shapes the providers and the OpenAI-compatible servers use:
    /// `{"error": {"message": …}}`, `{"error": "…"}`, `{"message": …}`
    /// and `{"detail": …}`.
    fn error_message(&self, body: &Value) -> Option<String> {
        error_message(body)
    }

    /// The wait an error body asks for, for providers that put it there.
    fn retry_delay(&self, _body: &Value) -> Option<Duration> {
        None
    }
}

/// The provider's message in a JSON error body, as [`WireFormat::error_message`] reads it.
pub fn error_message(body: &Value) -> Option<String> {
    let error = body.get("error");
    let message = error
        .and_then(|e| e.get("message"))
        .or_else(|| error.filter(|e| e.is_string()))
        .or_else(|| body.get("message"))
        .or_else(|| body.get("detail"))?;
    Some(match message {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

/// A [`Provider`] speaking `W` over HTTP.
pub struct HttpProvider<W> {
    wire: W,
    name: String,
    base_url: String,
    key: Option<ApiKey>,
    models: Vec<String>,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    tuning: HttpTuning,
}

impl<W: WireFormat> HttpProvider<W> {
    /// A provider for `endpoint`.
    pub fn new(
        endpoint: &Endpoint,
        wire: W,
        tuning: &HttpTuning,
    ) -> Result<HttpProvider<W>, reqwest::Error> {
        // reqwest is built without a crypto provider of its own; ring is the
        // one tonic uses too. Installing twice is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(tuning.connect_timeout)
            .user_agent(concat!("orchestra/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpProvider {
            wire,
            name: endpoint.name.clone(),
            base_url: endpoint.base_url.clone(),
            key: endpoint.api_key.clone(),
            models: endpoint.models.clone(),
            client,
            permits: Arc::new(Semaphore::new(tuning.concurrency.max(1))),
            tuning: tuning.clone(),
        })
    }

    /// The backoff schedule of one completion.
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.tuning.backoff)
            .with_max_delay(self.tuning.max_backoff.max(self.tuning.backoff))
            .with_max_times(self.tuning.retries)
            .with_jitter()
    }

    /// One try: a permit, the request, and its streamed answer.
    async fn call_once(
        &self,
        req: &CompletionRequest,
        events: &mpsc::Sender<ProviderEvent>,
        streamed: &AtomicBool,
    ) -> Result<Completion, ProviderError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ProviderError::Unavailable("the provider is shutting down".into()))?;
        let wire = self.wire.request(req, self.key.as_ref())?;
        let body = serde_json::to_vec(&wire.body)
            .map_err(|error| ProviderError::BadRequest(format!("unwritable request: {error}")))?;
        let send = self
            .client
            .post(format!("{}{}", self.base_url, wire.path))
            .headers(wire.headers)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "text/event-stream")
            .body(body)
            .send();
        let idle = self.tuning.idle_timeout;
        let sent = tokio::time::Instant::now();
        let response = tokio::time::timeout(idle, send)
            .await
            .map_err(|_| ProviderError::Timeout(idle))?
            .map_err(|error| self.transport_error(&error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("text/event-stream")
            .to_owned();
        if !content_type.starts_with("text/event-stream") {
            // A server that ignores `stream: true` never will: no retry.
            let body = read_limited(response).await;
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let said = self
                .wire
                .error_message(&json)
                .unwrap_or_else(|| body.chars().take(200).collect());
            return Err(self.redacted(ProviderError::BadRequest(format!(
                "{} answered without streaming ({content_type}): {said}",
                self.name
            ))));
        }
        let decoder = self.wire.decoder(req);
        let answer = sse::read_answer(response.bytes_stream(), decoder, events, idle, streamed)
            .await
            .map_err(|error| self.redacted(error))?;
        Ok(Completion {
            text: answer.text,
            usage: answer.usage,
            model: answer.model.unwrap_or_else(|| req.model.clone()),
            provider: self.name.clone(),
            offline: false,
            truncated: answer.truncated,
            latency: sent.elapsed(),
            time_to_first_token: answer.first_text_at.map(|at| at - sent),
        })
    }

    /// The error for a non-success response, with the provider's message.
    async fn status_error(&self, response: reqwest::Response) -> ProviderError {
        let status = response.status();
        let mut retry_after = retry_after(response.headers());
        let body = read_limited(response).await;
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        retry_after = retry_after.or_else(|| self.wire.retry_delay(&json));
        let message = self.wire.error_message(&json).unwrap_or_else(|| {
            let text = body.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no message").to_owned()
            } else {
                text.chars().take(500).collect()
            }
        });
        let message = format!("{} answered {}: {message}", self.name, status.as_u16());
        self.redacted(ProviderError::from_http_status(
            status.as_u16(),
            retry_after,
            message,
        ))
    }

    /// The error for a request that got no response.
    fn transport_error(&self, error: &reqwest::Error) -> ProviderError {
        let described = describe(error);
        let error = if error.is_timeout() {
            ProviderError::Timeout(self.tuning.connect_timeout)
        } else {
            ProviderError::Unavailable(format!("{}: {described}", self.name))
        };
        self.redacted(error)
    }

    /// `error` with the key scrubbed from its message, should a provider or
    /// a proxy ever echo it.
    fn redacted(&self, error: ProviderError) -> ProviderError {
        let Some(key) = self.key.as_ref().map(ApiKey::expose) else {
            return error;
        };
        if key.is_empty() {
            return error;
        }
        let scrub = |text: String| text.replace(key, "[redacted]");
        match error {
            ProviderError::Server { status, message } => ProviderError::Server {
                status,
                message: scrub(message),
            },
            ProviderError::Unavailable(message) => ProviderError::Unavailable(scrub(message)),
            ProviderError::InvalidResponse(message) => {
                ProviderError::InvalidResponse(scrub(message))
            }
            ProviderError::BadRequest(message) => ProviderError::BadRequest(scrub(message)),
            ProviderError::Auth(message) => ProviderError::Auth(scrub(message)),
            other => other,
        }
    }
}

#[async_trait::async_trait]
impl<W: WireFormat> Provider for HttpProvider<W> {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            label: self.wire.label().to_owned(),
            offline: false,
            models: self.models.clone(),
        }
    }

    async fn complete(
        &self,
        req: CompletionRequest,
        events: mpsc::Sender<ProviderEvent>,
    ) -> Result<Completion, ProviderError> {
        let streamed = AtomicBool::new(false);
        let deadline = req.deadline;
        // One span per model call, retries inside it.
        let span = tracing::info_span!("llm call", provider = %self.name, model = %req.model);
        let call = || self.call_once(&req, &events, &streamed);
        let completion = call
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(ProviderError::is_retryable)
            .adjust(|error, planned| {
                // The schedule's end is the end, whatever the provider asks.
                let wait = planned?.max(error.retry_after().unwrap_or_default());
                // A wait past the attempt's deadline would only be cut off:
                // fail now, with the error that made us wait.
                match deadline {
                    Some(deadline) if tokio::time::Instant::now() + wait >= deadline => None,
                    _ => Some(wait),
                }
            })
            .notify(|error, wait| {
                let discarded = streamed.swap(false, Ordering::Relaxed);
                tracing::info!(
                    provider = %self.name,
                    error = %error,
                    wait_ms = wait.as_millis() as u64,
                    "provider call failed; retrying"
                );
                // A full channel only loses the notice, never the answer.
                let _ = events.try_send(ProviderEvent::Retrying {
                    until: SystemTime::now() + wait,
                    reason: error.to_string(),
                    discarded,
                });
            })
            .instrument(span.clone())
            .await?;
        span.in_scope(|| {
            tracing::info!(
                answered_by = %completion.model,
                input_tokens = completion.usage.input_tokens,
                cached_input_tokens = completion.usage.cached_input_tokens,
                output_tokens = completion.usage.output_tokens,
                latency_ms = completion.latency.as_millis() as u64,
                first_token_ms = completion.time_to_first_token.map(|t| t.as_millis() as u64),
                truncated = completion.truncated,
                "model answered"
            );
        });
        Ok(completion)
    }
}

/// The wait a response's headers ask for: `retry-after-ms` (OpenAI's and
/// Anthropic's), else `retry-after` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The phase's schema as sent to a provider: without `$schema`, which
/// names a dialect the providers do not take as a keyword.
pub fn schema_to_send(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    schema
}

/// A header carrying a key, marked sensitive so it is never printed.
pub fn secret_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::Auth("the API key has characters a header cannot carry".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Reads at most [`ERROR_BODY_LIMIT`] bytes of an error response.
async fn read_limited(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

/// A reqwest error with its causes and without its URL.
fn describe(error: &reqwest::Error) -> String {
    let mut text = String::from(if error.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        headers.remove("retry-after-ms");
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&later).expect("header"),
        );
        let wait = retry_after(&headers).expect("a date");
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn error_messages_are_found_in_every_usual_shape() {
        for (body, message) in [
            (
                serde_json::json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
                "invalid x-api-key",
            ),
            (
                serde_json::json!({"error": {"message": "model not found", "type": "invalid_request_error", "code": "model_not_found"}}),
                "model not found",
            ),
            (
                serde_json::json!({"error": "model 'x' not found"}),
                "model 'x' not found",
            ),
            (
                serde_json::json!({"object": "error", "message": "too long"}),
                "too long",
            ),
            (serde_json::json!({"detail": "Not Found"}), "Not Found"),
        ] {
            assert_eq!(error_message(&body).as_deref(), Some(message));
        }
        assert_eq!(error_message(&Value::Null), None);
    }

    #[test]
    fn secret_headers_are_marked_sensitive() {
        let value = secret_header("Bearer sk-1").expect("header");
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("sk-1"));
    }
}
