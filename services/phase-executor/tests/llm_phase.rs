//! An `llm` phase run end to end against a provider's wire format: the
//! scheduler and the artifact store on loopback (SQLite), this executor
//! configured with an Anthropic endpoint that is a loopback server, and a
//! run of a one-phase template. The model's deltas reach the run's event
//! log as they stream; an answer that still breaks its schema after the
//! repair fails the attempt with its raw output kept beside the schema;
//! cancelling the run closes the model call's connection; and a key the
//! provider echoes back appears in no event and no log line.

mod support;

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::Duration;

use orchestra_kit::Background;
use orchestra_kit::server::ServiceRoutes;
use orchestra_phase_executor::providers::settings::{ApiKey, Endpoint, ProviderSettings, WireKind};
use orchestra_phase_executor::{Config, Executor};
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::provider_service_client::ProviderServiceClient;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use serde_json::{Value, json};
use support::{Reply, WireServer, sse};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// A key the tests look for in every event and log line.
const KEY: &str = "sk-ant-e2e-8d1f0c5a";

/// Every log line of this test binary, at debug level.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().expect("logs").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every service's logs, down to debug, into [`LOGS`].
fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

const TEMPLATE: &str = r#"
name: greet
phases:
  - id: write
    kind: llm
    model: { provider: anthropic, name: claude-sonnet-4-5, temperature: 0.2 }
    prompt: "Greet the reader in French, as JSON."
    output:
      name: greeting
      schema:
        type: object
        required: [greeting]
        properties: { greeting: { type: string } }
        additionalProperties: false
    timeout: 30s
"#;

/// The services a run needs, on loopback, stopped when dropped.
struct Mesh {
    _dir: tempfile::TempDir,
    scheduler_url: String,
    artifacts_url: String,
    executor_url: String,
    _services: Vec<tokio::task::JoinHandle<()>>,
    _background: Vec<Background>,
}

async fn serve(routes: ServiceRoutes) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let _ = orchestra_kit::server::serve(routes, listener, std::future::pending()).await;
    });
    (url, task)
}

impl Mesh {
    async fn start(provider: &WireServer) -> Mesh {
        capture_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let store = orchestra_artifact_store::ArtifactStore::open(
            &orchestra_artifact_store::Config::for_data_dir(dir.path()),
        )
        .await
        .expect("artifact store opens");
        let mut routes = ServiceRoutes::new();
        store.add_routes(&mut routes);
        let (artifacts_url, store_task) = serve(routes).await;

        // No human phase here, so no review service is ever called.
        let mut config = orchestra_scheduler::Config::for_data_dir(
            dir.path(),
            "http://127.0.0.1:9",
            &artifacts_url,
        );
        config.providers = vec!["anthropic".to_owned()];
        // Heartbeats every half second, so a cancelled run is noticed soon.
        config.lease_ttl_ms = 1_500;
        let scheduler = orchestra_scheduler::Scheduler::open(&config)
            .await
            .expect("scheduler opens");
        let scheduler_background = scheduler.spawn_background();
        let mut routes = ServiceRoutes::new();
        scheduler.add_routes(&mut routes);
        let (scheduler_url, scheduler_task) = serve(routes).await;

        let mut config = Config::with_urls(&scheduler_url, &artifacts_url);
        config.provider_backoff_ms = 10;
        config.providers = Some(ProviderSettings {
            endpoints: vec![Endpoint::new(
                "anthropic",
                WireKind::Anthropic,
                &provider.url(""),
                Some(ApiKey::new(KEY)),
            )],
        });
        let executor = Executor::new(&config).expect("executor");
        assert_eq!(executor.provider_names(), ["anthropic", "offline"]);
        let executor_background = executor.start();
        let mut routes = ServiceRoutes::new();
        executor.add_routes(&mut routes);
        let (executor_url, executor_task) = serve(routes).await;
        Mesh {
            _dir: dir,
            scheduler_url,
            artifacts_url,
            executor_url,
            _services: vec![store_task, scheduler_task, executor_task],
            _background: vec![scheduler_background, executor_background],
        }
    }

    fn channel(url: &str) -> Channel {
        Channel::from_shared(url.to_owned())
            .expect("url")
            .connect_lazy()
    }

    async fn run(&self) -> String {
        TemplateServiceClient::new(Self::channel(&self.scheduler_url))
            .create_template(pb::CreateTemplateRequest {
                source: Some(pb::TemplateSource {
                    source: TEMPLATE.to_owned(),
                    format: pb::TemplateFormat::Unspecified as i32,
                    files: Default::default(),
                }),
            })
            .await
            .expect("template stored");
        RunServiceClient::new(Self::channel(&self.scheduler_url))
            .start_run(pb::StartRunRequest {
                template_name: "greet".into(),
                seed: Some(7),
                ..Default::default()
            })
            .await
            .expect("run starts")
            .into_inner()
            .run
            .expect("run")
            .id
    }

    /// The run's whole event log, once it has ended.
    async fn events(&self, run_id: &str) -> Vec<pb::RunEvent> {
        let mut stream = RunServiceClient::new(Self::channel(&self.scheduler_url))
            .watch_run(pb::WatchRunRequest {
                run_id: run_id.to_owned(),
                after_seq: 0,
            })
            .await
            .expect("watch")
            .into_inner();
        let mut events = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), stream.message())
                .await
                .expect("the run ends")
                .expect("stream");
            match next {
                Some(message) => events.extend(message.event),
                None => return events,
            }
        }
    }

    async fn snapshot(&self, run_id: &str) -> pb::GetRunResponse {
        RunServiceClient::new(Self::channel(&self.scheduler_url))
            .get_run(pb::GetRunRequest {
                run_id: run_id.to_owned(),
            })
            .await
            .expect("run")
            .into_inner()
    }

    async fn artifacts(&self, run_id: &str) -> Vec<pb::ArtifactVersion> {
        ArtifactServiceClient::new(Self::channel(&self.artifacts_url))
            .list_artifacts(pb::ListArtifactsRequest {
                run_id: run_id.to_owned(),
                phase_id: "write".into(),
            })
            .await
            .expect("list")
            .into_inner()
            .artifacts
    }
}

/// A kept version's content, as JSON.
async fn content(mesh: &Mesh, version: &pb::ArtifactVersion) -> Value {
    let reference = version.r#ref.clone().expect("a reference");
    let artifact = ArtifactServiceClient::new(Mesh::channel(&mesh.artifacts_url))
        .get_artifact(pb::GetArtifactRequest {
            artifact_id: reference.artifact_id,
            version: reference.version,
            include_content: true,
        })
        .await
        .expect("artifact")
        .into_inner()
        .artifact
        .expect("artifact");
    serde_json::from_slice(&artifact.content).expect("JSON")
}

/// Claude answering through the forced tool, its input in these pieces.
fn tool_answer(pieces: &[&str]) -> Vec<u8> {
    let mut events = vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "usage": {"input_tokens": 20, "output_tokens": 1}}}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "answer", "input": {}}}),
        ),
    ];
    for piece in pieces {
        events.push((
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}),
        ));
    }
    events.extend([
        (Some("content_block_stop"), json!({"type": "content_block_stop", "index": 0})),
        (Some("message_delta"), json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}})),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ]);
    let events: Vec<(Option<&str>, String)> = events
        .into_iter()
        .map(|(name, data)| (name, data.to_string()))
        .collect();
    sse(&events, "\n")
}

fn deltas(events: &[pb::RunEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match &event.body {
            Some(pb::run_event::Body::PhaseOutputDelta(delta)) => Some(delta.text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_answer_reaches_the_watchers_and_becomes_the_output() {
    let provider = WireServer::start().await;
    let pieces = ["{\"greeting\": ", "\"Bonjour à ", "tous\"}"];
    // A 529 first: the run still completes, through a retry.
    provider.play([
        Reply::status(
            529,
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).to_string(),
        ),
        Reply::stream(tool_answer(&pieces)),
    ]);
    let mesh = Mesh::start(&provider).await;
    let run_id = mesh.run().await;
    let events = mesh.events(&run_id).await;
    assert_eq!(
        deltas(&events),
        pieces.concat(),
        "every delta reached the log"
    );
    let snapshot = mesh.snapshot(&run_id).await;
    let run = snapshot.run.expect("run");
    assert_eq!(run.status, pb::RunStatus::Completed as i32, "{run:?}");
    let artifacts = mesh.artifacts(&run_id).await;
    assert_eq!(artifacts.len(), 1);
    assert!(artifacts[0].valid && artifacts[0].is_latest);
    assert_eq!(
        content(&mesh, &artifacts[0]).await,
        json!({"greeting": "Bonjour à tous"})
    );
    let requests = provider.requests();
    assert_eq!(requests.len(), 2, "the 529 was retried");
    assert_eq!(requests[1].header("x-api-key"), KEY);
    assert_eq!(requests[1].body["temperature"], json!(0.2f32));
    assert_eq!(
        requests[1].body["tool_choice"],
        json!({"type": "tool", "name": "answer"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_still_broken_after_its_repair_fails_with_the_raw_output_kept() {
    let provider = WireServer::start().await;
    provider.play([
        Reply::stream(tool_answer(&["{\"greeting\": 42}"])),
        Reply::stream(tool_answer(&["{\"salut\": \"x\"}"])),
    ]);
    let mesh = Mesh::start(&provider).await;
    let run_id = mesh.run().await;
    let events = mesh.events(&run_id).await;
    let log = deltas(&events);
    assert!(log.starts_with("{\"greeting\": 42}"), "{log}");
    assert!(
        log.contains("asking for a repair"),
        "the log says why it restarts: {log}"
    );
    let snapshot = mesh.snapshot(&run_id).await;
    let phase = &snapshot.phases[0];
    assert_eq!(phase.state, pb::PhaseState::Error as i32, "{phase:?}");
    assert!(phase.error.contains("breaks its schema"), "{}", phase.error);
    let requests = provider.requests();
    assert_eq!(requests.len(), 2, "one repair");
    let repair = requests[1].body["messages"][0]["content"]
        .as_str()
        .expect("prompt");
    assert!(
        repair.contains("{\"greeting\": 42}") && repair.contains("/greeting"),
        "{repair}"
    );
    let kept = mesh.artifacts(&run_id).await;
    assert_eq!(kept.len(), 1, "the raw output is kept");
    assert!(!kept[0].valid && !kept[0].is_latest);
    assert_eq!(content(&mesh, &kept[0]).await, json!({"salut": "x"}));
    assert!(!kept[0].schema_sha256.is_empty(), "beside its schema");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_the_run_closes_the_model_call() {
    let provider = WireServer::start().await;
    let answer = tool_answer(&["{\"greeting\": ", "\"Bonjour\"}"]);
    // Half an answer, then the model goes quiet.
    provider.play([Reply::Stall(vec![support::before(&answer, "\\\"Bonjour")])]);
    let mesh = Mesh::start(&provider).await;
    let run_id = mesh.run().await;
    assert!(
        support::eventually(|| !provider.requests().is_empty()).await,
        "the model is called"
    );
    RunServiceClient::new(Mesh::channel(&mesh.scheduler_url))
        .cancel_run(pb::CancelRunRequest {
            run_id: run_id.clone(),
            reason: "changed my mind".into(),
        })
        .await
        .expect("cancels");
    assert!(
        support::eventually(|| provider.closed() == 1).await,
        "the executor dropped the call when its lease went"
    );
    let run = mesh.snapshot(&run_id).await.run.expect("run");
    assert_eq!(run.status, pb::RunStatus::Cancelled as i32);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_fails_the_phase_and_appears_in_no_event_or_log() {
    let provider = WireServer::start().await;
    // A provider (or a proxy) that echoes the key it refused.
    let refusal = json!({"type": "error", "error": {"type": "authentication_error", "message": format!("invalid x-api-key {KEY}")}});
    provider.play([Reply::status(401, &refusal.to_string())]);
    let mesh = Mesh::start(&provider).await;
    let run_id = mesh.run().await;
    let events = mesh.events(&run_id).await;
    let snapshot = mesh.snapshot(&run_id).await;
    let phase = &snapshot.phases[0];
    assert_eq!(phase.state, pb::PhaseState::Error as i32, "{phase:?}");
    assert!(
        phase.error.contains("401") && phase.error.contains("invalid x-api-key"),
        "the provider's own message: {}",
        phase.error
    );
    assert_eq!(provider.requests().len(), 1, "a refused key is not retried");
    assert!(
        !format!("{events:?}").contains(KEY),
        "an event carries the key"
    );
    assert!(
        !format!("{snapshot:?}").contains(KEY),
        "the snapshot carries the key"
    );
    let logs = String::from_utf8_lossy(&LOGS.lock().expect("logs")).into_owned();
    assert!(logs.contains("attempt failed"), "logs are captured");
    assert!(!logs.contains(KEY), "a log line carries the key");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_cut_at_max_tokens_says_so_when_it_breaks_the_schema() {
    let provider = WireServer::start().await;
    let cut = |piece: &str| {
        let answer = String::from_utf8(tool_answer(&[piece])).expect("utf-8");
        Reply::stream(answer.replace("\"tool_use\"}", "\"max_tokens\"}"))
    };
    provider.play([
        cut("{\"greeting\": \"Bonj"),
        cut("{\"greeting\": \"Bonjour à"),
    ]);
    let mesh = Mesh::start(&provider).await;
    let run_id = mesh.run().await;
    mesh.events(&run_id).await;
    let phase = &mesh.snapshot(&run_id).await.phases[0];
    assert_eq!(phase.state, pb::PhaseState::Error as i32, "{phase:?}");
    assert!(phase.error.contains("breaks its schema"), "{}", phase.error);
    assert!(
        phase.error.contains("max_tokens (2048)") && phase.error.contains("raise"),
        "{}",
        phase.error
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_providers_shows_the_configured_ones_without_their_keys() {
    let provider = WireServer::start().await;
    let mesh = Mesh::start(&provider).await;
    let listed = ProviderServiceClient::new(Mesh::channel(&mesh.executor_url))
        .list_providers(pb::ListProvidersRequest {})
        .await
        .expect("lists")
        .into_inner();
    let names: Vec<(&str, &str, bool)> = listed
        .providers
        .iter()
        .map(|p| (p.name.as_str(), p.label.as_str(), p.offline))
        .collect();
    assert_eq!(
        names,
        [
            ("anthropic", "Anthropic", false),
            ("offline", "Offline (deterministic, no network)", true)
        ]
    );
    assert!(!format!("{listed:?}").contains(KEY));
}
