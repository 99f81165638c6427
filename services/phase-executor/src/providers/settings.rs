//! Which HTTP providers an executor calls, read from the variables people
//! already set for the providers' own SDKs, so a key exported for them
//! works here too:
//!
//! | variable | registers | base URL (default) |
//! | --- | --- | --- |
//! | `ANTHROPIC_API_KEY` | `anthropic` | `ANTHROPIC_BASE_URL` (`https://api.anthropic.com`) |
//! | `OPENAI_API_KEY` | `openai` | `OPENAI_BASE_URL` (`https://api.openai.com/v1`) |
//! | `DEEPSEEK_API_KEY` | `deepseek` | `DEEPSEEK_BASE_URL` (`https://api.deepseek.com`) |
//! | `GEMINI_API_KEY` | `gemini` | `GOOGLE_GEMINI_BASE_URL` (`https://generativelanguage.googleapis.com`) |
//! | `ORCHESTRA_PROVIDER_<NAME>_BASE_URL` | `<name>`, an OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) | the value, e.g. `http://127.0.0.1:11434/v1` |
//!
//! An OpenAI-compatible provider also reads `ORCHESTRA_PROVIDER_<NAME>_API_KEY`
//! (optional: local servers take none) and `ORCHESTRA_PROVIDER_<NAME>_MODELS`
//! (optional, comma-separated, for listings). An empty key counts as unset.
//!
//! Keys are [`ApiKey`]s: their `Debug` says `[redacted]`, they appear in no
//! log, error or trace, and they are read only when a request is written.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use orchestra_kit::config::{ConfigError, check_url};
use secrecy::{ExposeSecret, SecretString};

use super::anthropic::Anthropic;
use super::gemini::Gemini;
use super::http::{HttpProvider, HttpTuning};
use super::openai::{OpenAi, OpenAiFlavour};
use super::{OfflineProvider, Provider, ProviderRegistry};

/// The prefix of the variables that configure OpenAI-compatible servers.
pub const COMPATIBLE_PREFIX: &str = "ORCHESTRA_PROVIDER_";

/// A provider's API key, kept out of every `Debug`, log and error.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(SecretString::from(key.into()))
    }

    /// The key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiKey([redacted])")
    }
}

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireKind {
    /// Anthropic's Messages API.
    Anthropic,
    /// OpenAI's Chat Completions API, in one of its flavours.
    OpenAi(OpenAiFlavour),
    /// Google's Gemini API (`generativelanguage.googleapis.com`).
    Gemini,
}

/// One HTTP provider: where it is and how to talk to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The name templates use in `model.provider`.
    pub name: String,
    /// Its wire format.
    pub kind: WireKind,
    /// The base URL the API paths are appended to, without a trailing `/`.
    pub base_url: String,
    /// The key, when the provider takes one.
    pub api_key: Option<ApiKey>,
    /// Model names to list; empty when the provider decides.
    pub models: Vec<String>,
}

impl Endpoint {
    /// An endpoint at `base_url` (a trailing `/` is dropped).
    pub fn new(name: &str, kind: WireKind, base_url: &str, api_key: Option<ApiKey>) -> Endpoint {
        Endpoint {
            name: name.to_owned(),
            kind,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            models: Vec::new(),
        }
    }

    /// A provider for this endpoint, sharing the HTTP mechanism tuned by `tuning`.
    pub fn provider(&self, tuning: &HttpTuning) -> Result<Arc<dyn Provider>, ConfigError> {
        let built: Result<Arc<dyn Provider>, reqwest::Error> = match self.kind {
            WireKind::Anthropic => HttpProvider::new(self, Anthropic, tuning).map(to_dyn),
            WireKind::OpenAi(flavour) => {
                HttpProvider::new(self, OpenAi::new(flavour), tuning).map(to_dyn)
            }
            WireKind::Gemini => HttpProvider::new(self, Gemini, tuning).map(to_dyn),
        };
        built.map_err(|error| {
            ConfigError::new(
                format!("provider {}", self.name),
                format!("cannot build its HTTP client: {error}"),
            )
        })
    }
}

fn to_dyn<P: Provider + 'static>(provider: P) -> Arc<dyn Provider> {
    Arc::new(provider)
}

/// The HTTP providers the environment configures.
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    /// One per configured provider, sorted by name.
    pub endpoints: Vec<Endpoint>,
}

/// The providers configured by a key alone: (key variable, name, wire,
/// base URL variable, default base URL).
const WELL_KNOWN: &[(&str, &str, WireKind, &str, &str)] = &[
    (
        "ANTHROPIC_API_KEY",
        "anthropic",
        WireKind::Anthropic,
        "ANTHROPIC_BASE_URL",
        "https://api.anthropic.com",
    ),
    (
        "OPENAI_API_KEY",
        "openai",
        WireKind::OpenAi(OpenAiFlavour::OpenAi),
        "OPENAI_BASE_URL",
        "https://api.openai.com/v1",
    ),
    (
        "DEEPSEEK_API_KEY",
        "deepseek",
        WireKind::OpenAi(OpenAiFlavour::DeepSeek),
        "DEEPSEEK_BASE_URL",
        "https://api.deepseek.com",
    ),
    (
        "GEMINI_API_KEY",
        "gemini",
        WireKind::Gemini,
        "GOOGLE_GEMINI_BASE_URL",
        "https://generativelanguage.googleapis.com",
    ),
];

impl ProviderSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<ProviderSettings, ConfigError> {
        ProviderSettings::from_vars(std::env::vars())
    }

    /// Reads the given variables, as [`ProviderSettings::from_env`] does.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ProviderSettings, ConfigError> {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        let set = |name: &str| vars.get(name).filter(|value| !value.trim().is_empty());
        let mut endpoints = Vec::new();
        for (key_variable, name, kind, url_variable, default_url) in WELL_KNOWN {
            let Some(key) = set(key_variable) else {
                continue;
            };
            let base_url = match set(url_variable) {
                Some(url) => {
                    check_url(url_variable, url)?;
                    url.as_str()
                }
                None => default_url,
            };
            endpoints.push(Endpoint::new(
                name,
                *kind,
                base_url,
                Some(ApiKey::new(key.trim())),
            ));
        }
        endpoints.extend(compatible_endpoints(&vars)?);
        endpoints.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ProviderSettings { endpoints })
    }

    /// The registry of these providers and the offline one.
    pub fn registry(&self, tuning: &HttpTuning) -> Result<ProviderRegistry, ConfigError> {
        let mut registry = ProviderRegistry::new();
        registry.register(Arc::new(OfflineProvider::new()));
        for endpoint in &self.endpoints {
            registry.register(endpoint.provider(tuning)?);
        }
        Ok(registry)
    }
}

/// The OpenAI-compatible servers named by `ORCHESTRA_PROVIDER_<NAME>_*`.
fn compatible_endpoints(vars: &BTreeMap<String, String>) -> Result<Vec<Endpoint>, ConfigError> {
    const SUFFIXES: [&str; 3] = ["_BASE_URL", "_API_KEY", "_MODELS"];
    let mut found: BTreeMap<String, BTreeMap<&str, &str>> = BTreeMap::new();
    for (variable, value) in vars {
        let Some(rest) = variable.strip_prefix(COMPATIBLE_PREFIX) else {
            continue;
        };
        let Some((name, suffix)) = SUFFIXES
            .iter()
            .find_map(|suffix| Some((rest.strip_suffix(suffix)?, *suffix)))
        else {
            return Err(ConfigError::new(
                variable,
                format!(
                    "is not a provider setting; an OpenAI-compatible server is configured by \
                     {COMPATIBLE_PREFIX}<NAME>_BASE_URL, with optional {COMPATIBLE_PREFIX}<NAME>_API_KEY \
                     and {COMPATIBLE_PREFIX}<NAME>_MODELS"
                ),
            ));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ConfigError::new(
                variable,
                "the provider's name (between the prefix and the setting) must be upper-case \
                 letters, digits and `_`, such as ORCHESTRA_PROVIDER_OLLAMA_BASE_URL",
            ));
        }
        found
            .entry(name.to_owned())
            .or_default()
            .insert(suffix, value.as_str());
    }
    let mut endpoints = Vec::new();
    for (upper, settings) in found {
        let name = upper.to_lowercase();
        let url_variable = format!("{COMPATIBLE_PREFIX}{upper}_BASE_URL");
        let Some(base_url) = settings.get("_BASE_URL") else {
            return Err(ConfigError::new(
                url_variable,
                format!(
                    "is missing, but other {COMPATIBLE_PREFIX}{upper}_* variables are set; set it to the server's OpenAI-compatible base URL, such as http://127.0.0.1:11434/v1"
                ),
            ));
        };
        check_url(&url_variable, base_url)?;
        if WELL_KNOWN.iter().any(|known| known.1 == name) || name == OfflineProvider::NAME {
            return Err(ConfigError::new(
                url_variable,
                format!("`{name}` is a built-in provider's name; choose another"),
            ));
        }
        let api_key = settings
            .get("_API_KEY")
            .map(|key| key.trim())
            .filter(|key| !key.is_empty())
            .map(ApiKey::new);
        let mut endpoint = Endpoint::new(
            &name,
            WireKind::OpenAi(OpenAiFlavour::Compatible),
            base_url,
            api_key,
        );
        endpoint.models = settings
            .get("_MODELS")
            .map(|models| {
                models
                    .split(',')
                    .map(str::trim)
                    .filter(|model| !model.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        endpoints.push(endpoint);
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<ProviderSettings, ConfigError> {
        ProviderSettings::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn the_sdks_variables_register_their_providers() {
        let settings = read(&[
            ("ANTHROPIC_API_KEY", "sk-ant-1"),
            ("OPENAI_API_KEY", "sk-2"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/"),
            ("DEEPSEEK_API_KEY", "sk-3"),
            ("GEMINI_API_KEY", "g-4"),
            ("PATH", "/usr/bin"),
        ])
        .expect("reads");
        let summary: Vec<(&str, &str, Option<&str>)> = settings
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.name.as_str(),
                    e.base_url.as_str(),
                    e.api_key.as_ref().map(ApiKey::expose),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("anthropic", "https://api.anthropic.com", Some("sk-ant-1")),
                ("deepseek", "https://api.deepseek.com", Some("sk-3")),
                (
                    "gemini",
                    "https://generativelanguage.googleapis.com",
                    Some("g-4")
                ),
                ("openai", "http://127.0.0.1:9/v1", Some("sk-2")),
            ]
        );
        assert!(
            read(&[("ANTHROPIC_API_KEY", " ")])
                .expect("reads")
                .endpoints
                .is_empty()
        );
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let settings = read(&[
            ("ANTHROPIC_API_KEY", "sk-ant-secret-123"),
            (
                "ORCHESTRA_PROVIDER_LOCAL_BASE_URL",
                "http://127.0.0.1:8080/v1",
            ),
            ("ORCHESTRA_PROVIDER_LOCAL_API_KEY", "local-secret-456"),
        ])
        .expect("reads");
        let debug = format!("{settings:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn openai_compatible_servers_are_named_by_their_variables() {
        let settings = read(&[
            (
                "ORCHESTRA_PROVIDER_OLLAMA_BASE_URL",
                "http://127.0.0.1:11434/v1",
            ),
            ("ORCHESTRA_PROVIDER_OLLAMA_MODELS", "llama3.2, qwen3 ,"),
            (
                "ORCHESTRA_PROVIDER_LM_STUDIO_BASE_URL",
                "http://127.0.0.1:1234/v1",
            ),
            ("ORCHESTRA_PROVIDER_LM_STUDIO_API_KEY", ""),
        ])
        .expect("reads");
        let [lm, ollama] = settings.endpoints.as_slice() else {
            panic!("two endpoints: {settings:?}");
        };
        assert_eq!(lm.name, "lm_studio");
        assert!(lm.api_key.is_none());
        assert_eq!(ollama.name, "ollama");
        assert_eq!(ollama.models, vec!["llama3.2", "qwen3"]);
        assert_eq!(ollama.kind, WireKind::OpenAi(OpenAiFlavour::Compatible));
    }

    #[test]
    fn bad_provider_variables_are_refused_by_name() {
        for (pairs, variable) in [
            (
                vec![
                    ("ANTHROPIC_API_KEY", "k"),
                    ("ANTHROPIC_BASE_URL", "api.anthropic.com"),
                ],
                "ANTHROPIC_BASE_URL",
            ),
            (
                vec![("ORCHESTRA_PROVIDER_OLLAMA_URL", "http://x")],
                "ORCHESTRA_PROVIDER_OLLAMA_URL",
            ),
            (
                vec![("ORCHESTRA_PROVIDER_OLLAMA_API_KEY", "k")],
                "ORCHESTRA_PROVIDER_OLLAMA_BASE_URL",
            ),
            (
                vec![("ORCHESTRA_PROVIDER_OPENAI_BASE_URL", "http://x")],
                "ORCHESTRA_PROVIDER_OPENAI_BASE_URL",
            ),
            (
                vec![("ORCHESTRA_PROVIDER_my-llm_BASE_URL", "http://x")],
                "ORCHESTRA_PROVIDER_my-llm_BASE_URL",
            ),
        ] {
            let error = read(&pairs).expect_err(variable);
            assert_eq!(error.variable, variable, "{error}");
        }
    }
}
