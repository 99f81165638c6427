//! The gateway in front of the split mesh (each service on its own
//! loopback port, as `orchestra-testkit` starts them): unary calls reach
//! the service that owns them, a server stream streams, a deadline ends a
//! call (a stream's too) with DEADLINE_EXCEEDED, a cancelled stream is let
//! go on both sides, TaskService is not reachable from outside, and the web
//! client's page is served at `/`.

use std::net::SocketAddr;
use std::time::Duration;

use orchestra_db::Backend;
use orchestra_gateway::{Config, Gateway};
use orchestra_kit::web::WebConfig;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::review_service_client::ReviewServiceClient;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::task_service_client::TaskServiceClient;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use orchestra_testkit::{Mesh, MeshOptions, repo_root};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// A gateway on a free port, serving until dropped.
struct Front {
    addr: SocketAddr,
    gateway: Gateway,
    _stop: tokio::sync::oneshot::Sender<()>,
    _web: tempfile::TempDir,
}

impl Front {
    async fn start(config: Config) -> Front {
        let web = tempfile::tempdir().expect("web dir");
        std::fs::write(web.path().join("index.html"), "<title>Orchestra</title>").expect("index");
        let web_config = WebConfig {
            origins: Vec::new(),
            dir: web.path().to_owned(),
        };
        let gateway = Gateway::open(&config).expect("gateway opens");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = gateway.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            orchestra_gateway::serve_with(&serving, &web_config, listener, shutdown)
                .await
                .expect("gateway serves");
        });
        Front {
            addr,
            gateway,
            _stop: stop,
            _web: web,
        }
    }

    fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect_lazy()
    }
}

async fn next_event(stream: &mut tonic::Streaming<pb::WatchRunResponse>) -> pb::RunEvent {
    tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an event in time")
        .expect("no error")
        .expect("the stream is open")
        .event
        .expect("an event")
}

/// The data frames (counted) and the trailer frame's text of a grpc-web
/// response read whole off the socket, its chunked framing removed.
fn grpc_web_frames(raw: &[u8]) -> (usize, String) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let mut chunked = &raw[split + 4..];
    let mut body = Vec::new();
    loop {
        let line = chunked
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&chunked[..line]).expect("hex"), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        body.extend_from_slice(&chunked[line + 2..line + 2 + size]);
        chunked = &chunked[line + 2 + size + 2..];
    }
    let (mut events, mut trailers, mut at) = (0, String::new(), 0);
    while at + 5 <= body.len() {
        let len =
            u32::from_be_bytes([body[at + 1], body[at + 2], body[at + 3], body[at + 4]]) as usize;
        let payload = &body[at + 5..at + 5 + len];
        if body[at] & 0x80 == 0 {
            events += 1;
        } else {
            trailers.push_str(&String::from_utf8_lossy(payload).to_lowercase());
        }
        at += 5 + len;
    }
    (events, trailers)
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_forwards_the_split_mesh() {
    let mesh = Mesh::start(Backend::Sqlite, MeshOptions::default()).await;
    // The test mesh runs its executor without a server: ProviderService
    // goes nowhere here, and no call below needs it.
    let front = Front::start(Config::with_urls(
        &mesh.scheduler_url(),
        &mesh.artifact_store_url(),
        &mesh.review_url(),
        "http://127.0.0.1:1",
    ))
    .await;
    mesh.apply_template(&repo_root().join("examples/backtrack/template.yaml"))
        .await;

    // Unary calls, each to its owner: scheduler, review, artifact store.
    let templates = TemplateServiceClient::new(front.channel())
        .list_templates(pb::ListTemplatesRequest::default())
        .await
        .expect("templates through the gateway")
        .into_inner();
    assert!(
        templates
            .templates
            .iter()
            .any(|t| t.name == "backtrack-ui-patch"),
        "{templates:?}"
    );
    let mut runs = RunServiceClient::new(front.channel());
    let run = runs
        .start_run(pb::StartRunRequest {
            template_name: "backtrack-ui-patch".into(),
            ..Default::default()
        })
        .await
        .expect("start through the gateway")
        .into_inner()
        .run
        .expect("run");
    let task = mesh.human_task(&run.id, "context").await;
    let inbox = ReviewServiceClient::new(front.channel())
        .list_inbox(pb::ListInboxRequest {
            include_closed: false,
            run_id: run.id.clone(),
        })
        .await
        .expect("inbox through the gateway")
        .into_inner();
    assert_eq!(inbox.tasks.len(), 1);
    assert_eq!(inbox.tasks[0].id, task.id);
    ArtifactServiceClient::new(front.channel())
        .list_artifacts(pb::ListArtifactsRequest {
            run_id: run.id.clone(),
            ..Default::default()
        })
        .await
        .expect("artifacts through the gateway");

    // A server stream: the run's log from the start, in order, up to the
    // human task it now waits on.
    let mut watch = runs
        .watch_run(pb::WatchRunRequest {
            run_id: run.id.clone(),
            after_seq: 0,
        })
        .await
        .expect("watch through the gateway")
        .into_inner();
    let mut seq = 0;
    loop {
        let event = next_event(&mut watch).await;
        assert_eq!(event.seq, seq + 1, "gapless and in order");
        seq = event.seq;
        if matches!(event.body, Some(pb::run_event::Body::HumanTaskOpened(_))) {
            break;
        }
    }

    // Cancelled: dropping the stream lets the call go on the gateway (and
    // so the scheduler's stream behind it) at once.
    assert_eq!(front.gateway.open_calls(), 1, "the watch is open");
    drop(watch);
    wait_until("the cancelled watch to be let go", || {
        front.gateway.open_calls() == 0
    })
    .await;

    let settled = mesh
        .run_reaches(&run.id, &[pb::RunStatus::WaitingForHuman])
        .await
        .seq;
    // A deadline on a stream: its events arrive, then it ends with
    // DEADLINE_EXCEEDED when the caller's time is up, though the run goes on.
    let mut request = tonic::Request::new(pb::WatchRunRequest {
        run_id: run.id.clone(),
        after_seq: 0,
    });
    request.set_timeout(Duration::from_millis(800));
    let began = tokio::time::Instant::now();
    let mut watch = runs
        .watch_run(request)
        .await
        .expect("watch with a deadline")
        .into_inner();
    let mut received = 0;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .expect("the deadline ends the stream")
        {
            Ok(Some(_)) => received += 1,
            Ok(None) => panic!("the stream ended without its deadline"),
            Err(status) => break status,
        }
    };
    assert_eq!(received, settled, "every event before the deadline");
    assert_eq!(ended.code(), tonic::Code::DeadlineExceeded, "{ended:?}");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(5),
        "{took:?}"
    );
    wait_until("the expired watch to be let go", || {
        front.gateway.open_calls() == 0
    })
    .await;

    // The same stream as a browser reads it: grpc-web over HTTP/1.1, the
    // events in data frames, ended by the deadline in the trailer frame.
    let request = pb::WatchRunRequest {
        run_id: run.id.clone(),
        after_seq: 0,
    };
    let mut body = vec![0u8];
    let payload = prost::Message::encode_to_vec(&request);
    body.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    body.extend_from_slice(&payload);
    let mut socket = tokio::net::TcpStream::connect(front.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /orchestra.v1.RunService/WatchRun HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\
         content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\ngrpc-timeout: 500m\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    socket.write_all(&body).await.expect("write body");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut raw))
        .await
        .expect("the deadline ends the stream")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    let (events, trailers) = grpc_web_frames(&raw);
    assert_eq!(events, usize::try_from(settled).expect("count"), "{text}");
    assert!(trailers.contains("grpc-status:4"), "{trailers}");

    // Executors' TaskService stays inside the mesh.
    let refused = TaskServiceClient::new(front.channel())
        .heartbeat(pb::HeartbeatRequest::default())
        .await
        .expect_err("TaskService is not forwarded");
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");

    // The page a browser opens.
    let mut socket = tokio::net::TcpStream::connect(front.addr)
        .await
        .expect("connect");
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut page = String::new();
    socket.read_to_string(&mut page).await.expect("read");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<title>Orchestra</title>"), "{page}");

    mesh.stop().await;
}

/// A unary call whose owner does not answer in time ends with
/// DEADLINE_EXCEEDED at the caller's deadline, not at the gateway's own
/// limits.
#[tokio::test]
async fn a_unary_deadline_is_kept_when_the_owner_hangs() {
    // Accepts connections (the kernel's backlog) but never speaks HTTP/2.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung_url = format!("http://{}", hung.local_addr().expect("addr"));
    let front = Front::start(Config::with_urls(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
        &hung_url,
        "http://127.0.0.1:1",
    ))
    .await;
    // A grpc-web call, as a browser sends it, written on the socket: a
    // tonic client would enforce the deadline itself and never show what
    // the gateway answered.
    let began = tokio::time::Instant::now();
    let mut socket = tokio::net::TcpStream::connect(front.addr)
        .await
        .expect("connect");
    socket
        .write_all(
            b"POST /orchestra.v1.ReviewService/ListInbox HTTP/1.1\r\nhost: gateway\r\n\
              connection: close\r\ncontent-type: application/grpc-web+proto\r\n\
              x-grpc-web: 1\r\ngrpc-timeout: 300m\r\ncontent-length: 5\r\n\r\n\0\0\0\0\0",
        )
        .await
        .expect("write");
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).await.expect("read");
    let answer = String::from_utf8_lossy(&raw).to_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        answer.contains("grpc-status: 4"),
        "DEADLINE_EXCEEDED: {answer}"
    );
    assert!(answer.contains("listinbox"), "{answer}");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );

    // An owner that is down is UNAVAILABLE, naming it.
    let status = RunServiceClient::new(front.channel())
        .get_run(pb::GetRunRequest { run_id: "r".into() })
        .await
        .expect_err("the scheduler is down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("scheduler"), "{status:?}");
    assert_eq!(front.gateway.open_calls(), 0);
}
