//! The review service over real gRPC on 127.0.0.1:0, on both backends, with
//! a real artifact store and a recording stand-in for the scheduler's
//! `TaskService` (it answers ResolveHumanPhase only).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use orchestra_db::backend_tests;
use orchestra_db::testing::TestDb;
use orchestra_kit::status::field_violations;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::review_service_client::ReviewServiceClient;
use orchestra_proto::v1::task_service_server::{TaskService, TaskServiceServer};
use orchestra_proto::v1::{
    Actor, ActorKind, ArtifactRef, AttemptKey, ClaimTaskRequest, CloseTaskRequest,
    CompleteTaskRequest, CompleteTaskResponse, DecideRequest, DecisionKind, FailTaskRequest,
    FailTaskResponse, GetArtifactRequest, GetTaskRequest, HeartbeatRequest, HeartbeatResponse,
    HumanResolution, HumanTask, HumanTaskKind, HumanTaskState, LeaseRequest, LeaseResponse,
    ListArtifactsRequest, ListInboxRequest, OpenTaskRequest, PutArtifactRequest,
    ReportProgressRequest, ReportProgressResponse, ResolveHumanPhaseRequest,
    ResolveHumanPhaseResponse, Selection, SubmitInputRequest, WatchInboxRequest,
};
use orchestra_review::Config;

const RUN: &str = "run-1";
const FORM: &str = r#"{
    "type": "object",
    "required": ["goal"],
    "properties": {
        "goal": {"type": "string", "minLength": 3},
        "budget": {"type": "integer", "minimum": 0}
    }
}"#;

// ---- the recording scheduler ----

/// What the stand-in scheduler was sent, in arrival order.
#[derive(Clone, Default)]
struct Recorder {
    requests: Arc<Mutex<Vec<ResolveHumanPhaseRequest>>>,
}

impl Recorder {
    fn seen(&self) -> Vec<ResolveHumanPhaseRequest> {
        self.requests.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived, then a little longer to
    /// catch duplicates, and returns them all.
    async fn wait_for(&self, n: usize) -> Vec<ResolveHumanPhaseRequest> {
        for _ in 0..300 {
            if self.seen().len() >= n {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return self.seen();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} resolutions, got {:?}", self.seen());
    }
}

type LeaseStream = Pin<Box<dyn Stream<Item = Result<LeaseResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TaskService for Recorder {
    type LeaseStream = LeaseStream;

    async fn lease(&self, _: Request<LeaseRequest>) -> Result<Response<LeaseStream>, Status> {
        Err(Status::unimplemented("recorder"))
    }

    async fn heartbeat(
        &self,
        _: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        Err(Status::unimplemented("recorder"))
    }

    async fn report_progress(
        &self,
        _: Request<ReportProgressRequest>,
    ) -> Result<Response<ReportProgressResponse>, Status> {
        Err(Status::unimplemented("recorder"))
    }

    async fn complete_task(
        &self,
        _: Request<CompleteTaskRequest>,
    ) -> Result<Response<CompleteTaskResponse>, Status> {
        Err(Status::unimplemented("recorder"))
    }

    async fn fail_task(
        &self,
        _: Request<FailTaskRequest>,
    ) -> Result<Response<FailTaskResponse>, Status> {
        Err(Status::unimplemented("recorder"))
    }

    async fn resolve_human_phase(
        &self,
        request: Request<ResolveHumanPhaseRequest>,
    ) -> Result<Response<ResolveHumanPhaseResponse>, Status> {
        self.requests
            .lock()
            .expect("lock")
            .push(request.into_inner());
        Ok(Response::new(ResolveHumanPhaseResponse {}))
    }
}

// ---- the harness ----

/// Stops a spawned server when dropped, or explicitly with `stop`.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.handle).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn spawn_server<F>(run: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> F) -> Running
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = Box::pin(async {
        let _ = stopped.await;
    });
    Running {
        stop: Some(stop),
        handle: tokio::spawn(run(shutdown)),
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

/// A port nothing listens on now, for a peer that starts later.
async fn free_port() -> SocketAddr {
    bind().await.1
}

fn start_scheduler(listener: TcpListener, recorder: Recorder) -> Running {
    spawn_server(move |shutdown| async move {
        let mut routes = orchestra_kit::server::ServiceRoutes::new();
        routes.add(TaskServiceServer::new(recorder));
        orchestra_kit::server::serve(routes, listener, shutdown)
            .await
            .expect("scheduler");
    })
}

async fn start_artifact_store(db: &TestDb, dir: &std::path::Path) -> (Running, SocketAddr) {
    let (listener, addr) = bind().await;
    let mut config = orchestra_artifact_store::Config::for_data_dir(dir);
    config.database_url = db.url_for("artifact_store");
    let running = spawn_server(move |shutdown| async move {
        orchestra_artifact_store::serve(config, listener, shutdown)
            .await
            .expect("artifact store");
    });
    (running, addr)
}

async fn start_review(config: Config) -> (Running, ReviewServiceClient<Channel>) {
    let (listener, addr) = bind().await;
    let running = spawn_server(move |shutdown| async move {
        orchestra_review::serve(config, listener, shutdown)
            .await
            .expect("review");
    });
    let client = ReviewServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to review");
    (running, client)
}

/// Everything one test needs; every server stops when it is dropped.
struct Mesh {
    review: ReviewServiceClient<Channel>,
    artifacts: ArtifactServiceClient<Channel>,
    recorder: Recorder,
    config: Config,
    scheduler_addr: SocketAddr,
    review_server: Option<Running>,
    _scheduler: Option<Running>,
    _store: Running,
    _dir: tempfile::TempDir,
}

impl Mesh {
    /// Starts the artifact store and the review service, and the recording
    /// scheduler unless `scheduler_up` is false.
    async fn start(db: &TestDb, scheduler_up: bool) -> Mesh {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, store_addr) = start_artifact_store(db, dir.path()).await;
        let recorder = Recorder::default();
        let (scheduler, scheduler_addr) = if scheduler_up {
            let (listener, addr) = bind().await;
            (Some(start_scheduler(listener, recorder.clone())), addr)
        } else {
            (None, free_port().await)
        };
        let config = Config {
            database_url: db.url_for("review"),
            scheduler_url: format!("http://{scheduler_addr}"),
            artifact_store_url: format!("http://{store_addr}"),
            ..Config::for_data_dir(dir.path(), "http://unused", "http://unused")
        };
        let (review_server, review) = start_review(config.clone()).await;
        let artifacts = ArtifactServiceClient::connect(format!("http://{store_addr}"))
            .await
            .expect("connect to the store");
        Mesh {
            review,
            artifacts,
            recorder,
            config,
            scheduler_addr,
            review_server: Some(review_server),
            _scheduler: scheduler,
            _store: store,
            _dir: dir,
        }
    }

    /// Starts the recording scheduler on the port reserved for it.
    async fn start_scheduler_late(&mut self) {
        let listener = TcpListener::bind(self.scheduler_addr)
            .await
            .expect("rebind the scheduler's port");
        self._scheduler = Some(start_scheduler(listener, self.recorder.clone()));
    }

    /// Stops the review service and starts a new one on the same database.
    async fn restart_review(&mut self) {
        if let Some(server) = self.review_server.take() {
            server.stop().await;
        }
        let (server, client) = start_review(self.config.clone()).await;
        self.review_server = Some(server);
        self.review = client;
    }

    async fn put(&self, phase: &str, name: &str, content: &str) -> ArtifactRef {
        let request = PutArtifactRequest {
            key: Some(key(phase)),
            name: name.to_owned(),
            media_type: "application/json".to_owned(),
            content: content.as_bytes().to_vec(),
            schema_json: String::new(),
            created_by: Some(Actor {
                kind: ActorKind::Phase as i32,
                id: format!("{RUN}/{phase}/1"),
            }),
        };
        self.artifacts
            .clone()
            .put_artifact(request)
            .await
            .expect("put")
            .into_inner()
            .artifact
            .and_then(|a| a.r#ref)
            .expect("ref")
    }

    async fn content(&self, artifact: &ArtifactRef) -> serde_json::Value {
        let version = self
            .artifacts
            .clone()
            .get_artifact(GetArtifactRequest {
                artifact_id: artifact.artifact_id.clone(),
                version: artifact.version,
                include_content: true,
            })
            .await
            .expect("get artifact")
            .into_inner()
            .artifact
            .expect("version");
        serde_json::from_slice(&version.content).expect("json content")
    }

    async fn open(&self, request: OpenTaskRequest) -> HumanTask {
        self.review
            .clone()
            .open_task(request)
            .await
            .expect("open task")
            .into_inner()
            .task
            .expect("task")
    }

    async fn get(&self, id: &str) -> HumanTask {
        self.review
            .clone()
            .get_task(GetTaskRequest {
                task_id: id.to_owned(),
            })
            .await
            .expect("get task")
            .into_inner()
            .task
            .expect("task")
    }

    /// Two candidates and a brief, and a review task over them.
    async fn open_review(&self, id: &str) -> HumanTask {
        let a = self
            .put(
                "variant_a",
                "variant",
                r#"{"title": "Save", "color": "blue"}"#,
            )
            .await;
        let b = self
            .put(
                "variant_b",
                "variant",
                r#"{"title": "Save", "color": "green"}"#,
            )
            .await;
        let brief = self
            .put("context", "context", r#"{"goal": "a save button"}"#)
            .await;
        self.open(OpenTaskRequest {
            task_id: id.to_owned(),
            kind: HumanTaskKind::Review as i32,
            key: Some(key("review")),
            title: "Review the variants".to_owned(),
            template_name: "backtrack-ui-patch".to_owned(),
            inputs: [
                ("variant_a".to_owned(), a),
                ("variant_b".to_owned(), b),
                ("brief".to_owned(), brief),
            ]
            .into(),
            show: vec!["diff".to_owned()],
            candidates: vec!["variant_a".to_owned(), "variant_b".to_owned()],
            selection: Selection::One as i32,
            ..OpenTaskRequest::default()
        })
        .await
    }
}

fn key(phase: &str) -> AttemptKey {
    AttemptKey {
        run_id: RUN.to_owned(),
        phase_id: phase.to_owned(),
        attempt: 1,
    }
}

fn input_task(id: &str) -> OpenTaskRequest {
    OpenTaskRequest {
        task_id: id.to_owned(),
        kind: HumanTaskKind::Input as i32,
        key: Some(key(id)),
        title: "Write the brief".to_owned(),
        template_name: "backtrack-ui-patch".to_owned(),
        form_schema_json: FORM.to_owned(),
        output_name: "context".to_owned(),
        ..OpenTaskRequest::default()
    }
}

fn submit(id: &str, content: &str, person: &str) -> SubmitInputRequest {
    SubmitInputRequest {
        task_id: id.to_owned(),
        content_json: content.to_owned(),
        person: person.to_owned(),
    }
}

fn decide(id: &str, kind: DecisionKind, selected: &[&str], person: &str) -> DecideRequest {
    DecideRequest {
        task_id: id.to_owned(),
        kind: kind as i32,
        comment: "looks right".to_owned(),
        selected: selected.iter().map(|s| (*s).to_owned()).collect(),
        retry_phases: Vec::new(),
        person: person.to_owned(),
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(f, d)| ((*f).to_owned(), (*d).to_owned()))
        .collect()
}

// ---- the suites ----

async fn an_input_form_is_checked_then_stored_and_resolved(db: &TestDb) {
    let mesh = Mesh::start(db, true).await;
    let mut review = mesh.review.clone();
    let opened = mesh.open(input_task("brief")).await;
    assert_eq!(opened.state, HumanTaskState::Open as i32);
    let again = mesh.open(input_task("brief")).await;
    assert_eq!(again, opened, "opening twice opens one task");

    let refused = review
        .submit_input(submit("brief", r#"{"budget": -1}"#, "ann"))
        .await
        .expect_err("invalid form");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&refused),
        pairs(&[
            ("/", "\"goal\" is a required property"),
            ("/budget", "-1 is less than the minimum of 0"),
        ])
    );
    let malformed = review
        .submit_input(submit("brief", "{", "ann"))
        .await
        .expect_err("not json");
    assert_eq!(field_violations(&malformed)[0].0, "content_json");
    let nobody = review
        .submit_input(submit("brief", r#"{"goal": "ship"}"#, ""))
        .await
        .expect_err("no person");
    assert_eq!(field_violations(&nobody)[0].0, "person");
    let stored = mesh
        .artifacts
        .clone()
        .list_artifacts(ListArtifactsRequest {
            run_id: RUN.to_owned(),
            phase_id: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    assert!(
        stored.artifacts.is_empty(),
        "nothing stored for a refused form"
    );
    assert_eq!(mesh.get("brief").await.state, HumanTaskState::Open as i32);

    let done = review
        .submit_input(submit(
            "brief",
            r#"{"goal": "a save button", "budget": 3}"#,
            "ann",
        ))
        .await
        .expect("valid form")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(done.state, HumanTaskState::Done as i32);
    let decision = done.decision.expect("decision");
    assert_eq!(decision.decided_by, "ann");
    assert_eq!(decision.comment, "submitted");

    let seen = mesh.recorder.wait_for(1).await;
    assert_eq!(seen.len(), 1, "delivered exactly once: {seen:?}");
    let resolved = &seen[0];
    assert_eq!(resolved.key, Some(key("brief")));
    assert_eq!(resolved.resolution, HumanResolution::Submitted as i32);
    assert_eq!(resolved.actor.as_ref().map(|a| a.id.as_str()), Some("ann"));
    assert!(resolved.decided_at.is_some());
    let output = resolved.output.as_ref().expect("output ref");
    assert_eq!(output.name, "context");
    assert_eq!(
        mesh.content(output).await,
        serde_json::json!({"goal": "a save button", "budget": 3})
    );

    let twice = review
        .submit_input(submit("brief", r#"{"goal": "again"}"#, "ann"))
        .await
        .expect_err("already submitted");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let wrong_kind = review
        .decide(decide("brief", DecisionKind::Approve, &[], "ann"))
        .await
        .expect_err("not a review");
    assert_eq!(wrong_kind.code(), Code::FailedPrecondition);
}

async fn a_review_shows_items_and_the_candidates_diff(db: &TestDb) {
    let mesh = Mesh::start(db, true).await;
    let mut review = mesh.review.clone();
    mesh.open_review("rv").await;

    let task = mesh.get("rv").await;
    assert_eq!(task.candidates, ["variant_a", "variant_b"]);
    assert_eq!(task.selection, Selection::One as i32);
    let names: Vec<&str> = task.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["brief", "variant_a", "variant_b"]);
    let a: serde_json::Value = serde_json::from_str(&task.items[1].content).expect("json");
    assert_eq!(a, serde_json::json!({"title": "Save", "color": "blue"}));
    assert_eq!(task.diffs.len(), 1, "only the two variants are compared");
    let diff = &task.diffs[0];
    assert_eq!(
        (diff.left.as_str(), diff.right.as_str()),
        ("variant_a", "variant_b")
    );
    assert!(diff.unified.contains("green"), "{}", diff.unified);
    assert_eq!(diff.operations.len(), 1, "{:?}", diff.operations);
    assert_eq!(diff.operations[0].path, "/color");

    let unknown = review
        .decide(decide(
            "rv",
            DecisionKind::Approve,
            &["variant_b", "variant_c"],
            "bob",
        ))
        .await
        .expect_err("no such item");
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&unknown),
        pairs(&[(
            "selected[1]",
            "`variant_c` is not a candidate; choose from: variant_a, variant_b"
        )])
    );
    let evidence = review
        .decide(decide("rv", DecisionKind::Approve, &["brief"], "bob"))
        .await
        .expect_err("evidence is not a candidate");
    assert_eq!(
        field_violations(&evidence),
        pairs(&[(
            "selected[0]",
            "`brief` is shown as evidence, not a candidate; choose from: variant_a, variant_b"
        )])
    );
    let none = review
        .decide(decide("rv", DecisionKind::Approve, &[], "bob"))
        .await
        .expect_err("one of two must be picked");
    assert_eq!(
        field_violations(&none),
        pairs(&[(
            "selected",
            "this review needs exactly one candidate: pick one of variant_a, variant_b"
        )])
    );
    let both = review
        .decide(decide(
            "rv",
            DecisionKind::Approve,
            &["variant_a", "variant_b"],
            "bob",
        ))
        .await
        .expect_err("one, not two");
    assert_eq!(
        field_violations(&both),
        pairs(&[(
            "selected",
            "this review needs exactly one candidate, not 2: pick one of variant_a, variant_b"
        )])
    );
    let reject_with_pick = review
        .decide(decide("rv", DecisionKind::Reject, &["variant_a"], "bob"))
        .await
        .expect_err("a rejection picks nothing");
    assert_eq!(reject_with_pick.code(), Code::InvalidArgument);
    assert_eq!(mesh.get("rv").await.state, HumanTaskState::Open as i32);
    review
        .claim_task(ClaimTaskRequest {
            task_id: "rv".to_owned(),
            person: "bob".to_owned(),
        })
        .await
        .expect("claim");
    let taken = review
        .claim_task(ClaimTaskRequest {
            task_id: "rv".to_owned(),
            person: "ann".to_owned(),
        })
        .await
        .expect_err("bob has it");
    assert_eq!(taken.code(), Code::FailedPrecondition);
    assert!(taken.message().contains("bob"), "{}", taken.message());

    let done = review
        .decide(decide("rv", DecisionKind::Approve, &["variant_b"], "bob"))
        .await
        .expect("decide")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(done.state, HumanTaskState::Done as i32);
    let again = review
        .decide(decide("rv", DecisionKind::Approve, &["variant_b"], "bob"))
        .await
        .expect("the same decision again is idempotent")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(again.decision, done.decision, "nothing changed");
    let twice = review
        .decide(decide("rv", DecisionKind::Reject, &[], "bob"))
        .await
        .expect_err("decided already");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(
        twice.message().contains("was already decided by bob at"),
        "{}",
        twice.message()
    );

    let seen = mesh.recorder.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen_later = mesh.recorder.seen();
    assert_eq!(
        seen_later.len(),
        1,
        "one resolution, however often decided: {seen_later:?}"
    );
    let approved = &seen[0];
    assert_eq!(approved.resolution, HumanResolution::Approved as i32);
    assert_eq!(approved.comment, "looks right");
    let output = approved.output.as_ref().expect("decision record");
    assert_eq!(output.name, "decision");
    let record = mesh.content(output).await;
    assert_eq!(record["decision"], "approve");
    assert_eq!(record["selected"], serde_json::json!(["variant_b"]));
    assert_eq!(record["decided_by"], "bob");
    assert!(
        record["decided_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20") && t.contains('T')),
        "{record}"
    );
}

async fn a_decision_waits_for_the_scheduler_across_a_restart(db: &TestDb) {
    let mut mesh = Mesh::start(db, false).await;
    mesh.open_review("late").await;
    let mut retry = decide("late", DecisionKind::Retry, &[], "cy");
    retry.retry_phases = vec!["variant_a".to_owned()];
    retry.comment = "tighter copy".to_owned();
    mesh.review
        .clone()
        .decide(retry)
        .await
        .expect("decide while the scheduler is down");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A new review process finds the pending messages in the database.
    mesh.restart_review().await;
    mesh.start_scheduler_late().await;

    let seen = mesh.recorder.wait_for(1).await;
    let kinds: Vec<i32> = seen.iter().map(|r| r.resolution).collect();
    assert_eq!(kinds, [HumanResolution::Retry as i32], "delivered once");
    assert_eq!(seen[0].retry_phases, ["variant_a"]);
    assert_eq!(seen[0].comment, "tighter copy");
}

async fn watching_the_inbox_shows_new_tasks_and_their_changes(db: &TestDb) {
    let mesh = Mesh::start(db, true).await;
    let mut review = mesh.review.clone();
    mesh.open(input_task("first")).await;
    let mut stream = review
        .watch_inbox(WatchInboxRequest {})
        .await
        .expect("watch")
        .into_inner();
    let mut next = async || -> HumanTask {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a message in time")
            .expect("stream open")
            .expect("no error");
        message.task.expect("task")
    };
    let first = next().await;
    assert_eq!(
        (first.id.as_str(), first.state),
        ("first", HumanTaskState::Open as i32)
    );

    mesh.open(input_task("second")).await;
    let opened = next().await;
    assert_eq!(
        (opened.id.as_str(), opened.state),
        ("second", HumanTaskState::Open as i32)
    );
    review
        .submit_input(submit("second", r#"{"goal": "done soon"}"#, "dee"))
        .await
        .expect("submit");
    let done = next().await;
    assert_eq!(
        (done.id.as_str(), done.state),
        ("second", HumanTaskState::Done as i32)
    );
    assert_eq!(done.decision.map(|d| d.decided_by).as_deref(), Some("dee"));

    let closed = review
        .close_task(CloseTaskRequest {
            task_id: "first".to_owned(),
            reason: "the run was cancelled".to_owned(),
        })
        .await
        .expect("close")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(closed.state, HumanTaskState::Cancelled as i32);
    let seen_closed = next().await;
    assert_eq!(
        (seen_closed.id.as_str(), seen_closed.state),
        ("first", HumanTaskState::Cancelled as i32),
        "watchers see the task leave"
    );
    assert_eq!(seen_closed.closed_reason, "the run was cancelled");
    review
        .close_task(CloseTaskRequest {
            task_id: "first".to_owned(),
            reason: "again".to_owned(),
        })
        .await
        .expect("closing again is fine");
    let late = review
        .submit_input(submit("first", r#"{"goal": "too late"}"#, "dee"))
        .await
        .expect_err("closed");
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(
        late.message().contains("the run was cancelled"),
        "{}",
        late.message()
    );
    let missing = review
        .close_task(CloseTaskRequest {
            task_id: "never-opened".to_owned(),
            reason: String::new(),
        })
        .await
        .expect_err("no such task");
    assert_eq!(missing.code(), Code::NotFound);

    let inbox = review
        .list_inbox(ListInboxRequest::default())
        .await
        .expect("list")
        .into_inner()
        .tasks;
    assert!(inbox.is_empty(), "{inbox:?}");
}

async fn an_unreachable_artifact_store_changes_nothing(db: &TestDb) {
    let mut mesh = Mesh::start(db, true).await;
    mesh.open_review("rv").await;
    mesh.open(input_task("form")).await;
    // Point a fresh review process at a store that is not there.
    mesh.config.artifact_store_url = format!("http://{}", free_port().await);
    mesh.restart_review().await;
    let mut review = mesh.review.clone();

    let task = mesh.get("rv").await;
    assert_eq!(task.items.len(), 3, "refs are shown without the store");
    assert!(
        task.items
            .iter()
            .all(|i| i.content.is_empty() && i.artifact.is_some())
    );
    assert!(task.diffs.is_empty());

    let down = review
        .submit_input(submit("form", r#"{"goal": "ship it"}"#, "ann"))
        .await
        .expect_err("store down");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    let down = review
        .decide(decide("rv", DecisionKind::Approve, &["variant_a"], "ann"))
        .await
        .expect_err("store down");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert_eq!(mesh.get("form").await.state, HumanTaskState::Open as i32);
    assert_eq!(mesh.get("rv").await.state, HumanTaskState::Open as i32);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = mesh.recorder.seen();
    assert!(seen.is_empty(), "nothing reached the scheduler: {seen:?}");
}

backend_tests!(
    an_input_form_is_checked_then_stored_and_resolved,
    a_review_shows_items_and_the_candidates_diff,
    a_decision_waits_for_the_scheduler_across_a_restart,
    watching_the_inbox_shows_new_tasks_and_their_changes,
    an_unreachable_artifact_store_changes_nothing,
);
