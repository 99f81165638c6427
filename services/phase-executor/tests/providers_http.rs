//! The HTTP providers against a loopback server speaking each wire format
//! (Anthropic Messages, OpenAI Chat Completions, DeepSeek, an
//! OpenAI-compatible server, Gemini): what the client sends, checked
//! against each API's reference, and how it reads what comes back — a
//! normal answer, one cut at odd byte boundaries, 429 with a wait then
//! success, 500 then success, a malformed chunk, a stalled stream, an
//! answer that breaks its schema then a repair, a 401, a cancelled call,
//! and the concurrency bound. Backoffs and timeouts are shortened through
//! [`HttpTuning`] so the suite stays quick.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use orchestra_phase_executor::providers::http::HttpTuning;
use orchestra_phase_executor::providers::openai::OpenAiFlavour;
use orchestra_phase_executor::providers::settings::{ApiKey, Endpoint, WireKind};
use orchestra_phase_executor::providers::{
    Completion, CompletionRequest, Provider, ProviderError, ProviderEvent, Usage,
};
use orchestra_phase_executor::structured::complete_valid;
use support::{Reply, WireServer, before, cut, eventually, sse};

/// A key the tests look for wherever it must not be.
const KEY: &str = "sk-test-7f3a9c-do-not-leak";
/// Text with multi-byte characters, so cuts fall inside them.
const PARTS: [&str; 4] = ["Bonjour, ", "café crème ", "— naïve ", "🎉 done."];
/// What every script reports: 16 input tokens (4 from the cache), 15 output.
const USAGE: Usage = Usage {
    input_tokens: 16,
    output_tokens: 15,
    cached_input_tokens: 4,
};

/// One wire format's script: how it is configured, how its answers and
/// errors look on the wire, and what its requests must carry.
struct Wire {
    name: &'static str,
    kind: WireKind,
    /// Appended to the server's address to make the base URL, as users
    /// set it (OpenAI's includes `/v1`).
    base_path: &'static str,
    model: &'static str,
    /// The model the server says answered.
    answered_by: &'static str,
    keyed: bool,
    /// A streamed answer made of these text pieces; `structured` answers
    /// the way the wire format's structured output does.
    answer: fn(&[&str], bool) -> Vec<u8>,
    /// A stream whose second chunk is cut-off JSON.
    malformed: fn() -> Vec<u8>,
    /// The provider's error body for a status.
    error: fn(u16, &str) -> String,
    /// A 429 asking for a wait as the provider does, and the wait.
    rate_limit: fn() -> (Reply, Duration),
    /// Checks a request against the API reference.
    check_request: fn(&support::Recorded, &CompletionRequest),
}

fn wires() -> Vec<Wire> {
    vec![
        Wire {
            name: "anthropic",
            kind: WireKind::Anthropic,
            base_path: "",
            model: "claude-sonnet-4-5",
            answered_by: "claude-sonnet-4-5-20250929",
            keyed: true,
            answer: anthropic_answer,
            malformed: || {
                sse(
                    &[
                        (Some("message_start"), json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "usage": {"input_tokens": 1, "output_tokens": 1}}}).to_string()),
                        (Some("content_block_start"), json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}).to_string()),
                        (Some("content_block_delta"), json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}}).to_string()),
                        (Some("content_block_delta"), "{\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_de".to_owned()),
                    ],
                    "\n",
                )
            },
            error: |status, message| {
                let kind = match status {
                    401 => "authentication_error",
                    429 => "rate_limit_error",
                    _ => "api_error",
                };
                json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011"}).to_string()
            },
            rate_limit: || {
                let body = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your per-minute rate limit"}});
                let reply = Reply::Status {
                    status: 429,
                    headers: vec![("retry-after", "1".to_owned())],
                    body: body.to_string(),
                };
                (reply, Duration::from_secs(1))
            },
            check_request: |request, asked| {
                assert_eq!(request.path, "/v1/messages");
                assert_eq!(request.header("x-api-key"), KEY);
                assert_eq!(request.header("anthropic-version"), "2023-06-01");
                assert!(request.header("authorization").is_empty());
                let body = &request.body;
                assert_eq!(body["model"], asked.model);
                assert_eq!(body["max_tokens"], asked.max_tokens);
                assert_eq!(body["stream"], true);
                assert_eq!(body["system"], json!(asked.system));
                assert_eq!(
                    body["messages"],
                    json!([{"role": "user", "content": asked.prompt}])
                );
                assert_eq!(body["temperature"], json!(asked.temperature));
                assert!(body.get("seed").is_none(), "Messages takes no seed");
                match &asked.output_schema {
                    Some(schema) => {
                        assert_eq!(body["tools"][0]["name"], "answer");
                        assert_eq!(body["tools"][0]["input_schema"], *schema);
                        assert_eq!(
                            body["tool_choice"],
                            json!({"type": "tool", "name": "answer"})
                        );
                    }
                    None => assert!(body.get("tools").is_none()),
                }
            },
        },
        openai_like(
            "openai",
            OpenAiFlavour::OpenAi,
            "/v1",
            "gpt-4o",
            "gpt-4o-2024-08-06",
        ),
        openai_like(
            "deepseek",
            OpenAiFlavour::DeepSeek,
            "",
            "deepseek-chat",
            "deepseek-chat",
        ),
        openai_like(
            "local",
            OpenAiFlavour::Compatible,
            "/v1",
            "llama3.2",
            "llama3.2",
        ),
        Wire {
            name: "gemini",
            kind: WireKind::Gemini,
            base_path: "",
            model: "gemini-2.5-flash",
            answered_by: "gemini-2.5-flash",
            keyed: true,
            answer: gemini_answer,
            malformed: || {
                let good = json!({"candidates": [{"content": {"parts": [{"text": "Bon"}], "role": "model"}, "index": 0}]});
                sse(
                    &[
                        (None, good.to_string()),
                        (
                            None,
                            "{\"candidates\": [{\"content\": {\"parts\": [{\"te".to_owned(),
                        ),
                    ],
                    "\r\n",
                )
            },
            error: |status, message| {
                let kind = match status {
                    401 => "UNAUTHENTICATED",
                    429 => "RESOURCE_EXHAUSTED",
                    _ => "INTERNAL",
                };
                json!({"error": {"code": status, "message": message, "status": kind}}).to_string()
            },
            rate_limit: || {
                let body = json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED", "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.4s"}
                ]}});
                (
                    Reply::status(429, &body.to_string()),
                    Duration::from_millis(400),
                )
            },
            check_request: |request, asked| {
                assert_eq!(
                    request.path,
                    format!(
                        "/v1beta/models/{}:streamGenerateContent?alt=sse",
                        asked.model
                    )
                );
                assert_eq!(request.header("x-goog-api-key"), KEY);
                assert!(!request.path.contains(KEY), "the key stays out of the URL");
                let body = &request.body;
                assert_eq!(
                    body["contents"],
                    json!([{"role": "user", "parts": [{"text": asked.prompt}]}])
                );
                assert_eq!(
                    body["systemInstruction"],
                    json!({"parts": [{"text": asked.system}]})
                );
                let config = &body["generationConfig"];
                assert_eq!(config["maxOutputTokens"], asked.max_tokens);
                assert_eq!(config["temperature"], json!(asked.temperature));
                assert_eq!(config["seed"], json!(asked.seed & 0x7fff_ffff));
                match &asked.output_schema {
                    Some(schema) => {
                        assert_eq!(config["responseMimeType"], "application/json");
                        assert_eq!(config["responseJsonSchema"], *schema);
                    }
                    None => assert!(config.get("responseJsonSchema").is_none()),
                }
            },
        },
    ]
}

fn openai_like(
    name: &'static str,
    flavour: OpenAiFlavour,
    base_path: &'static str,
    model: &'static str,
    answered_by: &'static str,
) -> Wire {
    Wire {
        name,
        kind: WireKind::OpenAi(flavour),
        base_path,
        model,
        answered_by,
        keyed: flavour != OpenAiFlavour::Compatible,
        answer: match flavour {
            OpenAiFlavour::DeepSeek => |parts, _| openai_answer(parts, true),
            _ => |parts, _| openai_answer(parts, false),
        },
        malformed: || {
            sse(
                &[
                    (
                        None,
                        openai_chunk(json!({"role": "assistant", "content": "Bon"}), None, None)
                            .to_string(),
                    ),
                    (
                        None,
                        "{\"id\": \"chatcmpl-1\", \"choices\": [{\"delta\": {\"content\": \"jo"
                            .to_owned(),
                    ),
                ],
                "\n",
            )
        },
        error: |status, message| {
            let code = match status {
                401 => "invalid_api_key",
                429 => "rate_limit_exceeded",
                _ => "server_error",
            };
            json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}}).to_string()
        },
        rate_limit: || {
            let body = json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}});
            let reply = Reply::Status {
                status: 429,
                headers: vec![("retry-after-ms", "400".to_owned())],
                body: body.to_string(),
            };
            (reply, Duration::from_millis(400))
        },
        check_request: match flavour {
            OpenAiFlavour::OpenAi => {
                |request, asked| check_openai(request, asked, OpenAiFlavour::OpenAi)
            }
            OpenAiFlavour::DeepSeek => {
                |request, asked| check_openai(request, asked, OpenAiFlavour::DeepSeek)
            }
            OpenAiFlavour::Compatible => {
                |request, asked| check_openai(request, asked, OpenAiFlavour::Compatible)
            }
        },
    }
}

fn check_openai(request: &support::Recorded, asked: &CompletionRequest, flavour: OpenAiFlavour) {
    let base = if flavour == OpenAiFlavour::DeepSeek {
        ""
    } else {
        "/v1"
    };
    assert_eq!(request.path, format!("{base}/chat/completions"));
    match flavour {
        OpenAiFlavour::Compatible => assert!(request.header("authorization").is_empty()),
        _ => assert_eq!(request.header("authorization"), format!("Bearer {KEY}")),
    }
    let body = &request.body;
    assert_eq!(body["model"], asked.model);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    match flavour {
        OpenAiFlavour::DeepSeek => assert!(body.get("seed").is_none()),
        _ => assert_eq!(body["seed"], json!(asked.seed >> 1)),
    }
    assert_eq!(body["temperature"], json!(asked.temperature));
    let (limit, other) = match flavour {
        OpenAiFlavour::OpenAi => ("max_completion_tokens", "max_tokens"),
        _ => ("max_tokens", "max_completion_tokens"),
    };
    assert_eq!(body[limit], asked.max_tokens);
    assert!(body.get(other).is_none());
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .is_some_and(|s| s.starts_with(asked.system.as_deref().unwrap_or_default()))
    );
    assert_eq!(
        messages[1],
        json!({"role": "user", "content": asked.prompt})
    );
    match (&asked.output_schema, flavour) {
        (Some(_), OpenAiFlavour::DeepSeek) => {
            assert_eq!(body["response_format"], json!({"type": "json_object"}));
            assert!(
                messages[0]["content"]
                    .as_str()
                    .is_some_and(|s| s.contains("JSON"))
            );
        }
        (Some(schema), _) => {
            let format = &body["response_format"];
            assert_eq!(format["type"], "json_schema");
            assert_eq!(format["json_schema"]["name"], "output");
            assert_eq!(format["json_schema"]["schema"], *schema);
            assert_eq!(format["json_schema"]["strict"], true);
        }
        (None, _) => assert!(body.get("response_format").is_none()),
    }
}

fn anthropic_answer(parts: &[&str], structured: bool) -> Vec<u8> {
    let (block, delta_kind, field) = if structured {
        (
            json!({"type": "tool_use", "id": "toolu_01", "name": "answer", "input": {}}),
            "input_json_delta",
            "partial_json",
        )
    } else {
        (json!({"type": "text", "text": ""}), "text_delta", "text")
    };
    let mut events = vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4, "output_tokens": 1}}}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0, "content_block": block}),
        ),
        (Some("ping"), json!({"type": "ping"})),
    ];
    for part in parts {
        events.push((
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": delta_kind, field: part}}),
        ));
    }
    events.extend([
        (Some("content_block_stop"), json!({"type": "content_block_stop", "index": 0})),
        (Some("message_delta"), json!({"type": "message_delta", "delta": {"stop_reason": if structured { "tool_use" } else { "end_turn" }, "stop_sequence": null}, "usage": {"output_tokens": 15}})),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ]);
    let events: Vec<(Option<&str>, String)> = events
        .into_iter()
        .map(|(name, data)| (name, data.to_string()))
        .collect();
    sse(&events, "\n")
}

fn openai_chunk(delta: Value, finish: Option<&str>, usage: Option<Value>) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_733_000_000,
        "model": "MODEL", "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    })
}

fn openai_answer(parts: &[&str], deepseek: bool) -> Vec<u8> {
    let mut chunks = vec![openai_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
        None,
    )];
    for part in parts {
        chunks.push(openai_chunk(json!({"content": part}), None, None));
    }
    chunks.push(openai_chunk(json!({}), Some("stop"), None));
    let usage = if deepseek {
        json!({"prompt_tokens": 16, "completion_tokens": 15, "total_tokens": 31, "prompt_cache_hit_tokens": 4, "prompt_cache_miss_tokens": 12})
    } else {
        json!({"prompt_tokens": 16, "completion_tokens": 15, "total_tokens": 31, "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
    };
    let mut last = openai_chunk(json!({}), None, Some(usage));
    last["choices"] = json!([]);
    chunks.push(last);
    let mut events: Vec<(Option<&str>, String)> = chunks
        .into_iter()
        .map(|chunk| (None, chunk.to_string()))
        .collect();
    events.push((None, "[DONE]".to_owned()));
    let text = String::from_utf8(sse(&events, "\n")).expect("utf-8");
    // Each flavour reports its own model; the script fills it in per test.
    text.into_bytes()
}

fn gemini_answer(parts: &[&str], _structured: bool) -> Vec<u8> {
    let mut events = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let last = index + 1 == parts.len();
        let mut chunk = json!({
            "candidates": [{"content": {"parts": [{"text": part}], "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 16, "totalTokenCount": 16},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "resp-1",
        });
        if index == 0 {
            // A thought comes first and is not part of the answer.
            chunk["candidates"][0]["content"]["parts"] =
                json!([{"text": "Let me think.", "thought": true}, {"text": part}]);
        }
        if last {
            chunk["candidates"][0]["finishReason"] = json!("STOP");
            chunk["usageMetadata"] = json!({"promptTokenCount": 16, "candidatesTokenCount": 12, "thoughtsTokenCount": 3, "cachedContentTokenCount": 4, "totalTokenCount": 31});
        }
        events.push((None, chunk.to_string()));
    }
    sse(&events, "\r\n")
}

impl Wire {
    /// The provider pointed at `server`.
    fn provider(&self, server: &WireServer, tuning: &HttpTuning) -> Arc<dyn Provider> {
        let key = self.keyed.then(|| ApiKey::new(KEY));
        Endpoint::new(self.name, self.kind, &server.url(self.base_path), key)
            .provider(tuning)
            .expect("provider")
    }

    /// A streamed answer as this provider would send it.
    fn answer(&self, parts: &[&str], structured: bool) -> Vec<u8> {
        let bytes = (self.answer)(parts, structured);
        let text = String::from_utf8(bytes).expect("utf-8");
        text.replace("\"MODEL\"", &format!("\"{}\"", self.answered_by))
            .into_bytes()
    }

    fn request(&self, schema: Option<Value>) -> CompletionRequest {
        CompletionRequest {
            model: self.model.to_owned(),
            system: Some("You write French.".to_owned()),
            prompt: "Greet the café.".to_owned(),
            temperature: Some(0.25),
            max_tokens: 300,
            seed: 0xDEAD_BEEF_0000_0042,
            output_schema: schema,
            deadline: None,
        }
    }
}

/// Quick retries and timeouts for tests.
fn tuning() -> HttpTuning {
    HttpTuning {
        concurrency: 4,
        retries: 3,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(2),
        // Long enough that a loaded machine never trips it by accident;
        // the stall test shortens it.
        idle_timeout: Duration::from_secs(2),
    }
}

/// The idle limit the stall test waits out.
const STALL: Duration = Duration::from_millis(400);

/// Runs a completion, collecting what it reported along the way.
async fn complete(
    provider: &dyn Provider,
    request: CompletionRequest,
) -> (Result<Completion, ProviderError>, Vec<ProviderEvent>) {
    let (sender, mut receiver) = mpsc::channel(1024);
    let result = provider.complete(request, sender).await;
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }
    (result, events)
}

fn deltas(events: &[ProviderEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            ProviderEvent::Delta(text) => Some(text.clone()),
            ProviderEvent::Retrying { .. } => None,
        })
        .collect()
}

fn retries(events: &[ProviderEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|event| match event {
            ProviderEvent::Retrying {
                reason, discarded, ..
            } => Some((reason.clone(), *discarded)),
            ProviderEvent::Delta(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn a_normal_answer_streams_its_deltas_and_reports_usage_and_model() {
    for wire in wires() {
        let server = WireServer::start().await;
        server.play([Reply::stream(wire.answer(&PARTS, false))]);
        let provider = wire.provider(&server, &tuning());
        let request = wire.request(None);
        let (result, events) = complete(provider.as_ref(), request.clone()).await;
        let completion = result.unwrap_or_else(|e| panic!("{}: {e}", wire.name));
        assert_eq!(completion.text, PARTS.concat(), "{}", wire.name);
        assert_eq!(deltas(&events).concat(), PARTS.concat(), "{}", wire.name);
        assert!(
            deltas(&events).len() >= PARTS.len(),
            "{}: streamed",
            wire.name
        );
        assert_eq!(completion.usage, USAGE, "{}", wire.name);
        assert_eq!(completion.model, wire.answered_by, "{}", wire.name);
        assert_eq!(completion.provider, wire.name);
        assert!(!completion.offline);
        let first = completion.time_to_first_token.expect("a first token");
        assert!(first <= completion.latency, "{}", wire.name);
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{}", wire.name);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].header("content-type"), "application/json");
        (wire.check_request)(&requests[0], &request);
    }
}

#[tokio::test]
async fn a_stream_cut_inside_characters_and_lines_reads_the_same() {
    for wire in wires() {
        let whole = wire.answer(&PARTS, false);
        for size in [29, 61] {
            let server = WireServer::start().await;
            let pieces = cut(&whole, size);
            assert!(
                pieces.iter().any(|p| std::str::from_utf8(p).is_err()),
                "some piece splits a character"
            );
            server.play([Reply::Stream(pieces)]);
            let provider = wire.provider(&server, &tuning());
            let (result, events) = complete(provider.as_ref(), wire.request(None)).await;
            let completion = result.unwrap_or_else(|e| {
                panic!("{} cut by {size}: {e}; {:?}", wire.name, retries(&events))
            });
            assert_eq!(
                completion.text,
                PARTS.concat(),
                "{} cut by {size}",
                wire.name
            );
            assert_eq!(deltas(&events).concat(), PARTS.concat());
            assert_eq!(completion.usage, USAGE, "{} cut by {size}", wire.name);
        }
    }
}

#[tokio::test]
async fn rate_limits_wait_as_long_as_the_provider_asks_then_succeed() {
    // The wire formats wait side by side, so the suite waits once.
    futures::future::join_all(wires().into_iter().map(|wire| async move {
        let server = WireServer::start().await;
        let (limited, wait) = (wire.rate_limit)();
        server.play([limited, Reply::stream(wire.answer(&PARTS, false))]);
        let provider = wire.provider(&server, &tuning());
        let started = Instant::now();
        let before = SystemTime::now();
        let (sender, mut receiver) = mpsc::channel(1024);
        let result = provider.complete(wire.request(None), sender).await;
        let elapsed = started.elapsed();
        assert_eq!(
            result.map(|c| c.text).ok().as_deref(),
            Some(PARTS.concat().as_str()),
            "{}",
            wire.name
        );
        assert!(
            elapsed >= wait,
            "{}: waited {elapsed:?}, asked {wait:?}",
            wire.name
        );
        assert_eq!(server.requests().len(), 2);
        match receiver.recv().await {
            Some(ProviderEvent::Retrying {
                until,
                reason,
                discarded,
            }) => {
                assert!(reason.contains("rate limited"), "{reason}");
                assert!(!discarded, "nothing was streamed before");
                let announced = until.duration_since(before).unwrap_or_default();
                assert!(
                    announced >= wait,
                    "{}: until is {announced:?} away",
                    wire.name
                );
            }
            other => panic!(
                "{}: expected a retry notice first, got {other:?}",
                wire.name
            ),
        }
    }))
    .await;
}

#[tokio::test]
async fn a_server_error_is_retried() {
    for wire in wires() {
        let server = WireServer::start().await;
        server.play([
            Reply::status(500, &(wire.error)(500, "Internal server error")),
            Reply::status(529, &(wire.error)(529, "Overloaded")),
            Reply::stream(wire.answer(&PARTS, false)),
        ]);
        let provider = wire.provider(&server, &tuning());
        let (result, events) = complete(provider.as_ref(), wire.request(None)).await;
        assert_eq!(
            result
                .map(|c| c.text)
                .unwrap_or_else(|e| panic!("{}: {e}", wire.name)),
            PARTS.concat()
        );
        let retried = retries(&events);
        assert_eq!(retried.len(), 2, "{}: {retried:?}", wire.name);
        assert!(retried[0].0.contains("500") && retried[0].0.contains("Internal server error"));
    }
}

#[tokio::test]
async fn a_malformed_chunk_fails_the_call_which_is_then_retried() {
    for wire in wires() {
        let server = WireServer::start().await;
        server.play([
            Reply::stream((wire.malformed)()),
            Reply::stream(wire.answer(&PARTS, false)),
        ]);
        let provider = wire.provider(&server, &tuning());
        let (result, events) = complete(provider.as_ref(), wire.request(None)).await;
        assert_eq!(
            result
                .map(|c| c.text)
                .unwrap_or_else(|e| panic!("{}: {e}", wire.name)),
            PARTS.concat()
        );
        let retried = retries(&events);
        assert_eq!(retried.len(), 1, "{}", wire.name);
        assert!(
            retried[0].0.contains("unreadable stream chunk"),
            "{retried:?}"
        );
        assert!(
            retried[0].1,
            "{}: the text streamed before is void",
            wire.name
        );

        // With no retries left the error says what was wrong.
        let server = WireServer::start().await;
        server.play([Reply::stream((wire.malformed)())]);
        let provider = wire.provider(
            &server,
            &HttpTuning {
                retries: 0,
                ..tuning()
            },
        );
        let (result, _) = complete(provider.as_ref(), wire.request(None)).await;
        assert!(
            matches!(result, Err(ProviderError::InvalidResponse(_))),
            "{}: {result:?}",
            wire.name
        );
    }
}

#[tokio::test]
async fn a_stream_that_stalls_past_the_idle_limit_is_retried() {
    // The wire formats wait side by side, so the suite waits once.
    futures::future::join_all(wires().into_iter().map(|wire| async move {
        let whole = wire.answer(&PARTS, false);
        let server = WireServer::start().await;
        // Two parts of the answer, then silence; then whole answers (more
        // than one, should a loaded machine make the next call slow too).
        server.play([
            Reply::Stall(vec![before(&whole, PARTS[2])]),
            Reply::stream(whole.clone()),
            Reply::stream(whole.clone()),
        ]);
        let provider = wire.provider(
            &server,
            &HttpTuning {
                idle_timeout: STALL,
                ..tuning()
            },
        );
        let started = Instant::now();
        let (result, events) = complete(provider.as_ref(), wire.request(None)).await;
        assert_eq!(
            result
                .map(|c| c.text)
                .unwrap_or_else(|e| panic!("{}: {e}", wire.name)),
            PARTS.concat()
        );
        assert!(started.elapsed() >= STALL);
        let retried = retries(&events);
        assert!(!retried.is_empty(), "{}", wire.name);
        assert!(retried[0].0.contains("timed out"), "{retried:?}");
        assert!(retried[0].1, "{}: the half answer is void", wire.name);
        assert!(
            eventually(|| server.closed() >= 2).await,
            "{}: the stalled response was dropped",
            wire.name
        );
    }))
    .await;
}

#[tokio::test]
async fn an_unauthorised_key_fails_at_once_with_the_providers_message() {
    for wire in wires() {
        let server = WireServer::start().await;
        // A provider echoing the key must not put it into our error.
        let message = format!("Incorrect API key provided: {KEY}");
        server.play([
            Reply::status(401, &(wire.error)(401, &message)),
            Reply::stream(wire.answer(&PARTS, false)),
        ]);
        let provider = wire.provider(&server, &tuning());
        let (result, events) = complete(provider.as_ref(), wire.request(None)).await;
        let error = result.expect_err(wire.name);
        assert!(
            matches!(error, ProviderError::Auth(_)),
            "{}: {error:?}",
            wire.name
        );
        assert!(!error.is_retryable());
        let text = error.to_string();
        assert!(text.contains("Incorrect API key provided"), "{text}");
        assert!(text.contains("401"), "{text}");
        if wire.keyed {
            assert!(!text.contains(KEY), "{}: the key leaked: {text}", wire.name);
            assert!(!format!("{error:?}").contains(KEY));
        }
        assert_eq!(server.requests().len(), 1, "{}: no retry", wire.name);
        assert!(events.is_empty());
    }
}

#[tokio::test]
async fn unknown_models_and_long_contexts_fail_at_once() {
    let wire = &wires()[1];
    for (status, message) in [
        (
            404,
            "The model `gpt-9` does not exist or you do not have access to it.",
        ),
        (400, "This model's maximum context length is 128000 tokens."),
    ] {
        let server = WireServer::start().await;
        server.play([Reply::status(status, &(wire.error)(status, message))]);
        let provider = wire.provider(&server, &tuning());
        let (result, _) = complete(provider.as_ref(), wire.request(None)).await;
        let error = result.expect_err("fails");
        assert!(matches!(error, ProviderError::BadRequest(_)), "{error:?}");
        assert!(error.to_string().contains(message), "{error}");
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn a_wait_past_the_deadline_fails_now_instead_of_sleeping() {
    let wire = &wires()[0];
    let server = WireServer::start().await;
    server.play([Reply::Status {
        status: 429,
        headers: vec![("retry-after", "30".to_owned())],
        body: (wire.error)(429, "slow down"),
    }]);
    let provider = wire.provider(&server, &tuning());
    let mut request = wire.request(None);
    request.deadline = Some(tokio::time::Instant::now() + Duration::from_secs(2));
    let started = Instant::now();
    let (result, _) = complete(provider.as_ref(), request).await;
    assert!(
        matches!(result, Err(ProviderError::RateLimited { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn structured_output_uses_each_native_mechanism_and_a_bad_answer_is_repaired() {
    let schema = json!({
        "type": "object",
        "properties": {"greeting": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["greeting", "count"],
        "additionalProperties": false,
    });
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    for wire in wires() {
        let server = WireServer::start().await;
        server.play([
            Reply::stream(
                wire.answer(&["{\"greeting\": \"salut\",", " \"count\": \"two\"}"], true),
            ),
            Reply::stream(wire.answer(&["{\"greeting\": \"salut\",", " \"count\": 2}"], true)),
        ]);
        let provider = wire.provider(&server, &tuning());
        let request = wire.request(Some(schema.clone()));
        let (sender, mut receiver) = mpsc::channel(1024);
        let (completion, usage) = complete_valid(
            provider.as_ref(),
            request.clone(),
            Some(&validator),
            1,
            &sender,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", wire.name));
        assert_eq!(
            serde_json::from_str::<Value>(&completion.text).expect("JSON"),
            json!({"greeting": "salut", "count": 2}),
            "{}",
            wire.name
        );
        assert_eq!(usage, USAGE.plus(USAGE), "both calls are counted");
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{}", wire.name);
        (wire.check_request)(&requests[0], &request);
        let repair_prompt = match wire.kind {
            WireKind::Anthropic => requests[1].body["messages"][0]["content"].clone(),
            WireKind::OpenAi(_) => requests[1].body["messages"][1]["content"].clone(),
            WireKind::Gemini => requests[1].body["contents"][0]["parts"][0]["text"].clone(),
        };
        let repair_prompt = repair_prompt.as_str().expect("a prompt");
        assert!(
            repair_prompt.starts_with(&request.prompt),
            "{repair_prompt}"
        );
        assert!(
            repair_prompt.contains("\"count\": \"two\""),
            "{repair_prompt}"
        );
        assert!(repair_prompt.contains("/count: "), "{repair_prompt}");
        drop(sender);
        let mut notices = Vec::new();
        while let Some(event) = receiver.recv().await {
            notices.push(event);
        }
        assert_eq!(
            retries(&notices).len(),
            1,
            "{}: the repair is announced",
            wire.name
        );
    }
}

#[tokio::test]
async fn an_answer_still_broken_after_the_repairs_is_returned_for_the_schema_check() {
    let schema = json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}, "additionalProperties": false});
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let wire = &wires()[1];
    let server = WireServer::start().await;
    server.play([
        Reply::stream(wire.answer(&["{\"n\": \"x\"}"], true)),
        Reply::stream(wire.answer(&["{\"n\": \"y\"}"], true)),
    ]);
    let provider = wire.provider(&server, &tuning());
    let (sender, _receiver) = mpsc::channel(1024);
    let (completion, _) = complete_valid(
        provider.as_ref(),
        wire.request(Some(schema)),
        Some(&validator),
        1,
        &sender,
    )
    .await
    .expect("completes");
    // The raw output goes on to be stored beside its schema, which reports
    // the violations and keeps it for inspection.
    assert_eq!(completion.text, "{\"n\": \"y\"}");
    assert_eq!(server.requests().len(), 2, "one repair, then no more");
}

#[tokio::test]
async fn dropping_the_call_closes_its_connection() {
    for wire in wires() {
        let whole = wire.answer(&PARTS, false);
        let server = WireServer::start().await;
        server.play([Reply::Stall(vec![before(&whole, PARTS[2])])]);
        let provider = wire.provider(
            &server,
            &HttpTuning {
                idle_timeout: Duration::from_secs(30),
                ..tuning()
            },
        );
        let (sender, mut receiver) = mpsc::channel(1024);
        let call = tokio::spawn({
            let request = wire.request(None);
            async move { provider.complete(request, sender).await }
        });
        // The stream has begun when its first text arrives.
        assert!(matches!(
            receiver.recv().await,
            Some(ProviderEvent::Delta(_))
        ));
        call.abort();
        let _ = call.await;
        assert!(
            eventually(|| server.closed() == 1).await,
            "{}: the server saw the client go",
            wire.name
        );
    }
}

#[tokio::test]
async fn calls_in_flight_per_provider_are_bounded() {
    let wire = &wires()[0];
    let server = WireServer::start().await;
    let pieces = cut(&wire.answer(&PARTS, false), 16);
    server.play((0..6).map(|_| Reply::Stream(pieces.clone())));
    let provider = wire.provider(
        &server,
        &HttpTuning {
            concurrency: 2,
            ..tuning()
        },
    );
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let provider = provider.clone();
            let request = wire.request(None);
            tokio::spawn(async move { complete(provider.as_ref(), request).await.0 })
        })
        .collect();
    for call in calls {
        assert_eq!(
            call.await.expect("joins").expect("completes").text,
            PARTS.concat()
        );
    }
    assert_eq!(server.requests().len(), 6);
    assert_eq!(server.most_in_flight(), 2);
}

#[tokio::test]
async fn an_unreachable_provider_is_retried_then_reported_unavailable() {
    // A port nothing listens on: bind one, then free it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let provider = Endpoint::new(
        "anthropic",
        WireKind::Anthropic,
        &url,
        Some(ApiKey::new(KEY)),
    )
    .provider(&tuning())
    .expect("provider");
    let (result, events) = complete(provider.as_ref(), wires()[0].request(None)).await;
    let error = result.expect_err("fails");
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("cannot connect"), "{error}");
    assert!(!error.to_string().contains(KEY));
    assert_eq!(retries(&events).len(), tuning().retries);
}

#[tokio::test]
async fn an_answer_stopped_at_the_token_limit_is_flagged_truncated() {
    for wire in wires() {
        let text = String::from_utf8(wire.answer(&PARTS, false)).expect("utf-8");
        // Each wire format's own way to say it stopped at max_tokens.
        let cut = text
            .replace("\"end_turn\"", "\"max_tokens\"")
            .replace("\"finish_reason\":\"stop\"", "\"finish_reason\":\"length\"")
            .replace(
                "\"finishReason\":\"STOP\"",
                "\"finishReason\":\"MAX_TOKENS\"",
            );
        assert_ne!(cut, text, "{}: the script has a stop reason", wire.name);
        for (bytes, truncated) in [(text, false), (cut, true)] {
            let server = WireServer::start().await;
            server.play([Reply::stream(bytes)]);
            let provider = wire.provider(&server, &tuning());
            let (result, _) = complete(provider.as_ref(), wire.request(None)).await;
            let completion = result.unwrap_or_else(|e| panic!("{}: {e}", wire.name));
            assert_eq!(completion.truncated, truncated, "{}", wire.name);
            assert_eq!(completion.text, PARTS.concat());
        }
    }
}

#[tokio::test]
async fn a_server_that_does_not_stream_fails_at_once_saying_so() {
    let wire = &wires()[3];
    let server = WireServer::start().await;
    // 200 with a whole JSON body: a server that ignores `stream: true`.
    server.play([
        Reply::status(200, "{\"choices\": [{\"message\": {\"content\": \"hi\"}}]}"),
        Reply::stream(wire.answer(&PARTS, false)),
    ]);
    let provider = wire.provider(&server, &tuning());
    let (result, _) = complete(provider.as_ref(), wire.request(None)).await;
    let error = result.expect_err("fails");
    assert!(matches!(error, ProviderError::BadRequest(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("without streaming (application/json)"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1);
}
