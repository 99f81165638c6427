//! LLM providers: one trait that every backend implements, and the registry
//! the executor picks a phase's `model.provider` from.
//!
//! Module map:
//! - this module: [`Provider`], its request and response types, [`ProviderError`]
//!   (which says whether a retry can help) and [`ProviderRegistry`]
//! - [`offline`]: the deterministic, network-free provider the examples use
//!   when no key is configured
//! - [`generate`]: the seeded JSON Schema instance generator behind it
//! - [`settings`]: which HTTP providers the environment configures
//!   (`ANTHROPIC_API_KEY`, …), their keys kept secret
//! - [`http`]: the one HTTP mechanism every model provider shares — a
//!   provider is an [`http::WireFormat`] (how to write a request and read
//!   its answer) run by [`http::HttpProvider`] (concurrency bound, retries
//!   with backoff honouring `retry-after`, timeouts, key redaction)
//! - [`sse`]: reads a streamed answer as server-sent events, incrementally
//! - the wire formats: [`anthropic`] (Messages), [`openai`] (Chat
//!   Completions: OpenAI, DeepSeek, any OpenAI-compatible server) and
//!   [`gemini`] (`streamGenerateContent`)

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub mod anthropic;
pub mod gemini;
pub mod generate;
pub mod http;
pub mod offline;
pub mod openai;
pub mod settings;
pub mod sse;

pub use offline::OfflineProvider;

/// One call to a model, as an `llm` phase builds it from its template and
/// rendered prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The provider's model name, such as `claude-sonnet-4-5` or `offline-1`.
    pub model: String,
    /// An optional system prompt.
    pub system: Option<String>,
    /// The rendered user prompt.
    pub prompt: String,
    /// Sampling temperature; the provider's default when `None` (some
    /// models, OpenAI's reasoning ones among them, refuse any other).
    pub temperature: Option<f32>,
    /// Upper bound on output tokens.
    pub max_tokens: u32,
    /// The phase attempt's seed, derived from the run's seed; providers that
    /// accept a seed get it, and the offline provider is a function of it.
    pub seed: u64,
    /// JSON Schema the output must satisfy; providers use their structured
    /// output mode when they have one. The executor validates regardless.
    pub output_schema: Option<serde_json::Value>,
    /// When the attempt this call serves times out: retries do not wait
    /// past it. Not part of what is asked, so never recorded.
    #[serde(skip)]
    pub deadline: Option<tokio::time::Instant>,
}

/// Token counts for one completion, as the provider reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the system prompt and prompt.
    pub input_tokens: u64,
    /// Tokens in the returned text.
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache
    /// (billed lower), where the provider reports them.
    pub cached_input_tokens: u64,
}

impl Usage {
    /// The sum of two calls' usage: an attempt that repaired its output
    /// used both.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cached_input_tokens: self.cached_input_tokens + other.cached_input_tokens,
        }
    }
}

/// What a provider reports while it works on a completion.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    /// Text the model produced, in order, as it arrived.
    Delta(String),
    /// The call failed in a way that may heal, and is sent again at `until`.
    /// When `discarded` is true, text already streamed belongs to the failed
    /// call: the new one starts over.
    Retrying {
        /// When the next call goes out.
        until: std::time::SystemTime,
        /// Why, for people (`rate limited by the provider`, …).
        reason: String,
        /// Whether deltas sent before this event are void.
        discarded: bool,
    },
}

/// A finished completion: the whole text, whatever was streamed before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The full output text (JSON text when an output schema was given).
    pub text: String,
    /// Token accounting for cost reporting.
    pub usage: Usage,
    /// The model that answered, which may be more specific than the one asked.
    pub model: String,
    /// The registry name of the provider that answered.
    pub provider: String,
    /// True when no real model was called, so UIs can label the output.
    pub offline: bool,
    /// True when the model stopped at `max_tokens`, so the text may be cut
    /// short (and JSON in it unfinished).
    pub truncated: bool,
    /// From sending the call that answered to its last byte (earlier failed
    /// tries and their backoffs not included).
    pub latency: Duration,
    /// From sending the call that answered to its first text.
    pub time_to_first_token: Option<Duration>,
}

/// What a provider is, for listings and template validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The name templates use in `model.provider`.
    pub name: String,
    /// A human-readable label for UIs.
    pub label: String,
    /// True for providers that call no model.
    pub offline: bool,
    /// The model names it accepts; empty when the provider decides (an
    /// HTTP provider refuses an unknown model itself).
    pub models: Vec<String>,
}

/// An LLM backend.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Describes the provider.
    fn info(&self) -> ProviderInfo;

    /// Streams text deltas (and retries) into `events` as they happen and
    /// returns the whole completion. A closed `events` receiver is not an
    /// error: the completion still finishes, because the caller may only
    /// want the final text. Dropping the future abandons the call (an HTTP
    /// provider closes its connection).
    async fn complete(
        &self,
        req: CompletionRequest,
        events: mpsc::Sender<ProviderEvent>,
    ) -> Result<Completion, ProviderError>;
}

/// Why a completion failed, split by whether retrying the same request can
/// succeed; the executor retries the retryable ones with backoff, honouring
/// [`ProviderError::retry_after`], and fails the attempt on the rest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// HTTP 429: too many requests; wait `retry_after` when the provider says.
    #[error("rate limited by the provider")]
    RateLimited {
        /// The provider's `retry-after`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx or an overloaded provider.
    #[error("provider server error ({status}): {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// No answer within the request's deadline.
    #[error("provider timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed before a response (DNS, TLS, reset).
    #[error("could not reach the provider: {0}")]
    Unavailable(String),
    /// A response arrived but could not be read (cut-off stream, bad JSON).
    #[error("unreadable provider response: {0}")]
    InvalidResponse(String),
    /// HTTP 400-class: the request itself is wrong; retrying cannot help.
    #[error("provider rejected the request: {0}")]
    BadRequest(String),
    /// HTTP 401/403: the key is missing, wrong or not allowed this model.
    #[error("provider refused the credentials: {0}")]
    Auth(String),
    /// The provider does not serve the model the template names.
    #[error("provider `{provider}` has no model `{model}`")]
    UnknownModel {
        /// The provider's registry name.
        provider: String,
        /// The model asked for.
        model: String,
    },
}

impl ProviderError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Timeout(_)
                | Self::Unavailable(_)
                | Self::InvalidResponse(_)
        )
    }

    /// How long the provider asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// Classifies a non-success HTTP status, so every HTTP provider maps
    /// statuses the same way: 429 rate limit, 408 timeout, 401/403 auth,
    /// other 4xx bad request, 5xx (and Anthropic's 529) server error.
    pub fn from_http_status(
        status: u16,
        retry_after: Option<Duration>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        match status {
            429 => Self::RateLimited { retry_after },
            408 => Self::Timeout(retry_after.unwrap_or_default()),
            401 | 403 => Self::Auth(message),
            400..=499 => Self::BadRequest(message),
            _ => Self::Server { status, message },
        }
    }
}

/// The providers an executor can call, by name.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
}

impl ProviderRegistry {
    /// Returns an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns a registry holding only the offline provider, which is what
    /// an executor with no keys configured runs with.
    pub fn with_offline() -> Self {
        let mut registry = Self::new();
        registry.register(Arc::new(OfflineProvider::new()));
        registry
    }

    /// Adds `provider` under its [`ProviderInfo::name`], returning the one
    /// it replaces, so a key change can swap a provider in place.
    pub fn register(&mut self, provider: Arc<dyn Provider>) -> Option<Arc<dyn Provider>> {
        self.providers.insert(provider.info().name, provider)
    }

    /// Returns the provider called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(name).cloned()
    }

    /// Returns the registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.providers.keys().map(String::as_str).collect()
    }

    /// Describes every provider, sorted by name.
    pub fn infos(&self) -> Vec<ProviderInfo> {
        self.providers
            .values()
            .map(|provider| provider.info())
            .collect()
    }
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ProviderRegistry")
            .field("providers", &self.names())
            .finish()
    }
}

/// Counts tokens the way the offline provider does: whitespace-separated
/// words. Real providers report their own counts.
pub fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_retryable_and_permanent_errors() {
        let wait = Some(Duration::from_secs(7));
        let rate = ProviderError::from_http_status(429, wait, "slow down");
        assert!(rate.is_retryable());
        assert_eq!(rate.retry_after(), wait);
        for status in [500, 502, 503, 529] {
            assert!(
                ProviderError::from_http_status(status, None, "x").is_retryable(),
                "{status}"
            );
        }
        assert!(ProviderError::from_http_status(408, None, "x").is_retryable());
        for status in [400, 401, 403, 404, 422] {
            let error = ProviderError::from_http_status(status, None, "x");
            assert!(!error.is_retryable(), "{status}");
            assert_eq!(error.retry_after(), None);
        }
        assert_eq!(
            ProviderError::from_http_status(401, None, "bad key"),
            ProviderError::Auth("bad key".into())
        );
    }

    #[test]
    fn registry_with_offline_lists_and_finds_it() {
        let registry = ProviderRegistry::with_offline();
        assert_eq!(registry.names(), vec!["offline"]);
        let info = registry.get("offline").map(|provider| provider.info());
        assert_eq!(info.map(|info| info.offline), Some(true));
        assert!(registry.get("anthropic").is_none());
        assert_eq!(
            format!("{registry:?}"),
            "ProviderRegistry { providers: [\"offline\"] }"
        );
        let mut registry = registry;
        assert!(
            registry
                .register(Arc::new(OfflineProvider::new()))
                .is_some(),
            "replaces by name"
        );
    }
}
