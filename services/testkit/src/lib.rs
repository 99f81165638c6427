//! The mesh for cross-service tests: the scheduler, the artifact store, the
//! review service and a phase executor, each on its own loopback port over
//! real gRPC, with a fresh database per test (Postgres or SQLite). Services
//! can be stopped and started again on the same port, to test restarts.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use orchestra_db::Backend;
use orchestra_db::testing::TestDb;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::review_service_client::ReviewServiceClient;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::task_service_client::TaskServiceClient;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// One service's server, which can be stopped and started again.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    async fn spawn<F, Fut>(addr: SocketAddr, start: F) -> Server
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = bind(addr).await;
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(start(listener, stopped));
        Server {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            // A graceful stop waits for open streams; do not wait forever.
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

/// Binds a loopback address, retrying while a just-stopped server lets go.
async fn bind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {addr}");
}

async fn stopped(receiver: oneshot::Receiver<()>) {
    let _ = receiver.await;
}

/// How to set the mesh up.
#[derive(Debug, Clone)]
pub struct MeshOptions {
    /// Start a phase executor.
    pub executor: bool,
    /// The scheduler's lease time-to-live.
    pub lease_ttl: Duration,
    /// The scheduler's safety sweep: how often it looks for work without a
    /// wake-up. As slow as in production by default, so that tests see
    /// work found by wake-ups, not by the sweep.
    pub poll_interval: Duration,
    /// Every service's message size limit.
    pub max_message_bytes: usize,
}

impl Default for MeshOptions {
    fn default() -> Self {
        MeshOptions {
            executor: true,
            lease_ttl: Duration::from_secs(5),
            poll_interval: Duration::from_secs(10),
            max_message_bytes: orchestra_kit::limits::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// The running mesh.
pub struct Mesh {
    db: TestDb,
    data_dir: tempfile::TempDir,
    options: MeshOptions,
    scheduler: Server,
    artifact_store: Server,
    review: Server,
    executor: Option<orchestra_kit::Background>,
    replicas: Vec<Server>,
}

impl Mesh {
    /// Starts every service on its own port with a fresh database.
    pub async fn start(backend: Backend, options: MeshOptions) -> Mesh {
        // Service logs only when asked for (RUST_LOG=info cargo test …).
        if std::env::var_os("RUST_LOG").is_some() {
            orchestra_kit::telemetry::init();
        }
        let db = TestDb::new(backend).await;
        let data_dir = tempfile::tempdir().expect("temp dir");
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        // Addresses first, so each service can be told where its peers are.
        let artifact_store = Server::spawn(any, |l, s| async { drop((l, s)) }).await;
        let review = Server::spawn(any, |l, s| async { drop((l, s)) }).await;
        let scheduler = Server::spawn(any, |l, s| async { drop((l, s)) }).await;
        let mut mesh = Mesh {
            db,
            data_dir,
            options,
            scheduler,
            artifact_store,
            review,
            executor: None,
            replicas: Vec::new(),
        };
        mesh.start_artifact_store().await;
        mesh.start_review().await;
        mesh.start_scheduler().await;
        if mesh.options.executor {
            mesh.start_executor();
        }
        mesh
    }

    /// The backend under test.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    fn url(addr: SocketAddr) -> String {
        format!("http://{addr}")
    }

    /// The scheduler's URL.
    pub fn scheduler_url(&self) -> String {
        Self::url(self.scheduler.addr)
    }

    /// The artifact store's URL.
    pub fn artifact_store_url(&self) -> String {
        Self::url(self.artifact_store.addr)
    }

    /// The review service's URL.
    pub fn review_url(&self) -> String {
        Self::url(self.review.addr)
    }

    /// The data directory (blobs).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().to_owned()
    }

    /// Starts the artifact store (again) on its port.
    pub async fn start_artifact_store(&mut self) {
        let mut config = orchestra_artifact_store::Config::for_data_dir(self.data_dir.path());
        config.database_url = self.db.url_for("artifact_store");
        config.max_message_bytes = self.options.max_message_bytes;
        let store = orchestra_artifact_store::ArtifactStore::open(&config)
            .await
            .expect("artifact store opens");
        self.artifact_store =
            Server::spawn(self.artifact_store.addr, move |listener, stop| async move {
                let mut routes = orchestra_kit::server::ServiceRoutes::new();
                store.add_routes(&mut routes);
                let _ = orchestra_kit::server::serve(routes, listener, stopped(stop)).await;
            })
            .await;
    }

    /// Stops the artifact store: its port refuses connections until
    /// [`Mesh::start_artifact_store`], so attempts wait to store their
    /// outputs (heartbeating) and runs wait to publish them.
    pub async fn stop_artifact_store(&mut self) {
        self.artifact_store.stop().await;
    }

    async fn start_review(&mut self) {
        let mut config = orchestra_review::Config::for_data_dir(
            self.data_dir.path(),
            &Self::url(self.scheduler.addr),
            &Self::url(self.artifact_store.addr),
        );
        config.database_url = self.db.url_for("review");
        config.max_message_bytes = self.options.max_message_bytes;
        let review = orchestra_review::Review::open(&config)
            .await
            .expect("review opens");
        self.review = Server::spawn(self.review.addr, move |listener, stop| async move {
            let background = review.spawn_background();
            let mut routes = orchestra_kit::server::ServiceRoutes::new();
            review.add_routes(&mut routes);
            let _ = orchestra_kit::server::serve(routes, listener, stopped(stop)).await;
            // As a crash would: the delivery in hand is cut off.
            drop(background);
        })
        .await;
    }

    fn scheduler_config(&self) -> orchestra_scheduler::Config {
        let mut config = orchestra_scheduler::Config::for_data_dir(
            self.data_dir.path(),
            &Self::url(self.review.addr),
            &Self::url(self.artifact_store.addr),
        );
        config.database_url = self.db.url_for("scheduler");
        config.max_message_bytes = self.options.max_message_bytes;
        config.lease_ttl_ms = u64::try_from(self.options.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        config.poll_interval_ms =
            u64::try_from(self.options.poll_interval.as_millis()).unwrap_or(u64::MAX);
        config
    }

    async fn spawn_scheduler(&self, addr: SocketAddr) -> Server {
        let scheduler = orchestra_scheduler::Scheduler::open(&self.scheduler_config())
            .await
            .expect("scheduler opens");
        Server::spawn(addr, move |listener, stop| async move {
            let _background = scheduler.spawn_background();
            let mut routes = orchestra_kit::server::ServiceRoutes::new();
            scheduler.add_routes(&mut routes);
            let shutdown = scheduler.draining(stopped(stop));
            let _ = orchestra_kit::server::serve(routes, listener, shutdown).await;
        })
        .await
    }

    /// Starts the scheduler (again) on its port.
    pub async fn start_scheduler(&mut self) {
        self.scheduler = self.spawn_scheduler(self.scheduler.addr).await;
    }

    /// Starts another scheduler replica on the same database; returns its URL.
    pub async fn start_scheduler_replica(&mut self) -> String {
        let replica = self
            .spawn_scheduler(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await;
        let url = Self::url(replica.addr);
        self.replicas.push(replica);
        url
    }

    /// Stops the scheduler, as a crash would: its streams end, its
    /// background loops stop, its port refuses connections.
    pub async fn stop_scheduler(&mut self) {
        self.scheduler.stop().await;
    }

    /// Starts a phase executor with a new id.
    pub fn start_executor(&mut self) {
        self.start_executor_at(&Self::url(self.scheduler.addr));
    }

    /// Starts a phase executor that leases from the given scheduler.
    pub fn start_executor_at(&mut self, scheduler_url: &str) {
        let config = orchestra_phase_executor::Config {
            max_message_bytes: self.options.max_message_bytes,
            ..orchestra_phase_executor::Config::with_urls(
                scheduler_url,
                &Self::url(self.artifact_store.addr),
            )
        };
        let executor = orchestra_phase_executor::Executor::new(&config).expect("executor");
        self.executor = Some(executor.start());
    }

    /// Stops the executor; leases it holds expire.
    pub fn stop_executor(&mut self) {
        self.executor = None;
    }

    async fn channel(addr: SocketAddr) -> Channel {
        Channel::from_shared(Self::url(addr))
            .expect("url")
            .connect_lazy()
    }

    /// A TemplateService client.
    pub async fn templates(&self) -> TemplateServiceClient<Channel> {
        TemplateServiceClient::new(Self::channel(self.scheduler.addr).await)
    }

    /// A RunService client.
    pub async fn runs(&self) -> RunServiceClient<Channel> {
        RunServiceClient::new(Self::channel(self.scheduler.addr).await)
    }

    /// A TaskService client, for tests that act as an executor.
    pub async fn tasks(&self) -> TaskServiceClient<Channel> {
        TaskServiceClient::new(Self::channel(self.scheduler.addr).await)
    }

    /// A ReviewService client.
    pub async fn review(&self) -> ReviewServiceClient<Channel> {
        ReviewServiceClient::new(Self::channel(self.review.addr).await)
    }

    /// An ArtifactService client.
    pub async fn artifacts(&self) -> ArtifactServiceClient<Channel> {
        ArtifactServiceClient::new(Self::channel(self.artifact_store.addr).await)
    }

    /// Stores a template from the examples folder (or any file), sending the
    /// files it refers to along, as the CLI does.
    pub async fn apply_template(&self, path: &std::path::Path) -> pb::Template {
        let source = std::fs::read_to_string(path).expect("template file");
        let dir = path.parent().expect("folder").to_owned();
        let files = referenced_files(&source, &dir);
        self.templates()
            .await
            .create_template(pb::CreateTemplateRequest {
                source: Some(pb::TemplateSource {
                    source,
                    format: pb::TemplateFormat::Unspecified as i32,
                    files: files.into_iter().collect(),
                }),
            })
            .await
            .expect("template stored")
            .into_inner()
            .template
            .expect("template")
    }

    /// Polls `check` until it returns `Some`, for at most `limit`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, limit: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A run's snapshot.
    pub async fn run(&self, run_id: &str) -> pb::GetRunResponse {
        self.runs()
            .await
            .get_run(pb::GetRunRequest {
                run_id: run_id.to_owned(),
            })
            .await
            .expect("run")
            .into_inner()
    }

    /// A finished run's whole event log, read through WatchRun (which ends
    /// with the run).
    pub async fn events(&self, run_id: &str) -> Vec<pb::RunEvent> {
        let mut stream = self
            .runs()
            .await
            .watch_run(pb::WatchRunRequest {
                run_id: run_id.to_owned(),
                after_seq: 0,
            })
            .await
            .expect("watch")
            .into_inner();
        let mut events = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("the log streams and ends")
                .expect("stream");
            match next {
                Some(message) => events.extend(message.event),
                None => return events,
            }
        }
    }

    /// The open human task of a run's phase, once it is open.
    pub async fn human_task(&self, run_id: &str, phase_id: &str) -> pb::HumanTask {
        let run_id = run_id.to_owned();
        let phase_id = phase_id.to_owned();
        self.eventually(
            &format!("a human task for {phase_id}"),
            Duration::from_secs(30),
            || {
                let run_id = run_id.clone();
                let phase_id = phase_id.clone();
                async move {
                    let inbox = self
                        .review()
                        .await
                        .list_inbox(pb::ListInboxRequest {
                            include_closed: false,
                            run_id,
                        })
                        .await
                        .ok()?
                        .into_inner();
                    inbox
                        .tasks
                        .into_iter()
                        .find(|t| t.key.as_ref().is_some_and(|k| k.phase_id == phase_id))
                }
            },
        )
        .await
    }

    /// Waits until a run's status is one of `statuses`.
    pub async fn run_reaches(
        &self,
        run_id: &str,
        statuses: &[pb::RunStatus],
    ) -> pb::GetRunResponse {
        self.eventually("the run's status", Duration::from_secs(60), || async {
            let snapshot = self.run(run_id).await;
            let status = snapshot.run.as_ref().map(|r| r.status)?;
            statuses
                .iter()
                .any(|s| *s as i32 == status)
                .then_some(snapshot)
        })
        .await
    }

    /// Cuts the test's own Postgres database off, as a restart of the server
    /// does to the services: new connections are refused and every open one
    /// is terminated (`pg_terminate_backend` on this database's backends
    /// only, so other tests' databases are undisturbed) until
    /// [`Mesh::restore_database`]. Panics on SQLite.
    pub async fn cut_database(&self) {
        let name = self.postgres_name();
        admin_sql(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid();"
        ))
        .await;
    }

    /// Lets the services connect to their database again after
    /// [`Mesh::cut_database`].
    pub async fn restore_database(&self) {
        let name = self.postgres_name();
        admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true;")).await;
    }

    /// The name of the test's Postgres database, for tests that read its
    /// statistics from the server. Panics on SQLite.
    pub fn postgres_database(&self) -> String {
        self.postgres_name()
    }

    fn postgres_name(&self) -> String {
        assert_eq!(
            self.backend(),
            Backend::Postgres,
            "only Postgres can be cut off"
        );
        let url = self.db.url();
        url.rsplit('/').next().expect("a database name").to_owned()
    }

    /// Stops every service.
    pub async fn stop(mut self) {
        self.executor = None;
        for mut replica in std::mem::take(&mut self.replicas) {
            replica.stop().await;
        }
        self.scheduler.stop().await;
        self.review.stop().await;
        self.artifact_store.stop().await;
    }
}

/// Runs SQL as the Postgres test administrator.
async fn admin_sql(sql: &str) {
    use orchestra_db::diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let mut admin = AsyncPgConnection::establish(&orchestra_db::testing::postgres_admin_url())
        .await
        .expect("the Postgres admin connection");
    admin.batch_execute(sql).await.expect("admin sql");
}

/// The files a template's source refers to, read from its folder.
pub fn referenced_files(source: &str, dir: &std::path::Path) -> BTreeMap<String, String> {
    let files = std::cell::RefCell::new(BTreeMap::new());
    if let Ok(mut template) = parse_template(source) {
        let _ = template.bundle_with(&|path| {
            let text = std::fs::read_to_string(dir.join(path))?;
            files.borrow_mut().insert(path.to_owned(), text.clone());
            Ok(text)
        });
    }
    files.into_inner()
}

fn parse_template(source: &str) -> Result<orchestra_model::Template, orchestra_model::Violation> {
    orchestra_model::Template::parse(source, orchestra_model::Format::Auto)
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Generates, for each `async fn f(backend: Backend)`, a test per backend:
/// `postgres::f` and `sqlite::f`.
#[macro_export]
macro_rules! mesh_tests {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(orchestra_db::Backend::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(orchestra_db::Backend::Sqlite).await;
                }
            )*
        }
    };
}
