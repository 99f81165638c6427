//! Browsers on `orchestra up`'s one port: grpc-web calls (binary and
//! base64 text) over HTTP/1.1, CORS for the configured origins only, the
//! built web client at `/`, and plain gRPC beside them, all against the
//! real all-in-one server on 127.0.0.1:0.
//!
//! The grpc-web requests are written byte by byte over a TCP socket, as a
//! browser's fetch sends them, so the test checks the wire format itself
//! rather than a client library's reading of it.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use orchestra_kit::web::WebConfig;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use orchestra_proto::v1::{
    CreateTemplateRequest, GetTemplateRequest, GetTemplateResponse, ListTemplatesRequest,
    ListTemplatesResponse, TemplateFormat, TemplateSource,
};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ALLOWED: &str = "http://allowed.example:5173";

const DIAMOND: &str = "name: diamond
phases:
  - { id: a, kind: function, function: json.merge }
  - { id: b, kind: function, function: json.merge, needs: [a] }
  - { id: c, kind: function, function: json.merge, needs: [a] }
  - { id: d, kind: function, function: json.merge, needs: [b, c] }
";

/// An `orchestra up` on a free port, with a built client in its web folder.
struct Up {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Up {
    async fn start() -> Up {
        let dir = tempfile::tempdir().expect("temp dir");
        let dist = dir.path().join("dist");
        std::fs::create_dir_all(&dist).expect("dist");
        std::fs::write(dist.join("index.html"), "<title>Orchestra</title>").expect("index");
        let mut options = orchestra_standalone::Options::new(dir.path().join("data"));
        options.executor_slots = 1;
        options.web = Some(WebConfig {
            origins: vec![ALLOWED.to_owned()],
            dir: dist,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mesh = orchestra_standalone::open(options, listener)
            .await
            .expect("open");
        let addr = mesh.addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            mesh.serve(async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        Up {
            addr,
            stop: Some(stop),
            served,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served).await.expect("server task");
    }
}

/// A response read off the socket: status, lower-cased headers, body with
/// any chunked framing removed.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one HTTP/1.1 request and reads the whole response.
async fn http1(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    socket.write_all(request.as_bytes()).await.expect("write");
    socket.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size_text = std::str::from_utf8(&raw[..line_end]).expect("hex");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// One grpc-web data frame around a message.
fn frame(message: &impl Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&payload);
    framed
}

/// The data frames and the trailers of a grpc-web response body.
fn unframe(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while body.len() >= 5 {
        let flag = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let payload = &body[5..5 + len];
        if flag & 0x80 == 0 {
            messages.push(payload.to_vec());
        } else {
            trailers.push_str(&String::from_utf8_lossy(payload));
        }
        body = &body[5 + len..];
    }
    assert!(body.is_empty(), "a truncated grpc-web frame");
    (messages, trailers.to_lowercase())
}

/// Decodes grpc-web-text: base64 in padded pieces, one per frame the
/// server wrote. Every four characters decode on their own, padded or not,
/// so decoding quartet by quartet reads any split.
fn decode_text(body: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    assert_eq!(text.len() % 4, 0, "whole base64 quartets");
    text.chunks(4)
        .flat_map(|quartet| BASE64.decode(quartet).expect("base64"))
        .collect()
}

async fn apply_diamond(addr: SocketAddr) {
    let mut templates = TemplateServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("plain gRPC connects");
    let created = templates
        .create_template(CreateTemplateRequest {
            source: Some(TemplateSource {
                source: DIAMOND.to_owned(),
                format: TemplateFormat::Yaml.into(),
                files: Default::default(),
            }),
        })
        .await
        .expect("plain gRPC CreateTemplate")
        .into_inner();
    assert_eq!(created.template.expect("template").name, "diamond");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_web_binary_and_text_and_plain_grpc_share_the_port() {
    let up = Up::start().await;
    apply_diamond(up.addr).await;

    // Binary grpc-web, as connect-web's transport sends it by default.
    let reply = http1(
        up.addr,
        "POST",
        "/orchestra.v1.TemplateService/GetTemplate",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
            ("origin", ALLOWED),
        ],
        &frame(&GetTemplateRequest {
            name: "diamond".to_owned(),
            version: 0,
        }),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/grpc-web+proto")
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some(ALLOWED));
    let exposed = reply.header("access-control-expose-headers").unwrap_or("");
    assert!(
        exposed.contains("grpc-status") && exposed.contains("grpc-message"),
        "{exposed}"
    );
    let (messages, trailers) = unframe(&reply.body);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let got = GetTemplateResponse::decode(messages[0].as_slice()).expect("decodes");
    let template = got.template.expect("template");
    assert_eq!((template.name.as_str(), template.version), ("diamond", 1));
    assert_eq!(template.phases.len(), 4);

    // grpc-web-text: base64 both ways.
    let reply = http1(
        up.addr,
        "POST",
        "/orchestra.v1.TemplateService/ListTemplates",
        &[
            ("content-type", "application/grpc-web-text"),
            ("accept", "application/grpc-web-text"),
            ("x-grpc-web", "1"),
        ],
        BASE64
            .encode(frame(&ListTemplatesRequest::default()))
            .as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/grpc-web-text")),
        "{:?}",
        reply.header("content-type")
    );
    let (messages, trailers) = unframe(&decode_text(&reply.body));
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let listed = ListTemplatesResponse::decode(messages[0].as_slice()).expect("decodes");
    let names: Vec<&str> = listed.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["diamond"]);

    // An error reaches a browser as a status it can read.
    let reply = http1(
        up.addr,
        "POST",
        "/orchestra.v1.TemplateService/GetTemplate",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
        ],
        &frame(&GetTemplateRequest {
            name: "missing".to_owned(),
            version: 0,
        }),
    )
    .await;
    let (_, trailers) = unframe(&reply.body);
    let status = reply.header("grpc-status").map(str::to_owned).or_else(|| {
        trailers
            .lines()
            .find_map(|l| l.strip_prefix("grpc-status:").map(|s| s.trim().to_owned()))
    });
    assert_eq!(status.as_deref(), Some("5"), "NOT_FOUND");

    // Plain gRPC over HTTP/2 still works after all that.
    let mut templates = TemplateServiceClient::connect(format!("http://{}", up.addr))
        .await
        .expect("connect");
    let listed = templates
        .list_templates(ListTemplatesRequest::default())
        .await
        .expect("plain gRPC ListTemplates")
        .into_inner();
    assert_eq!(listed.templates.len(), 1);
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_allows_only_the_configured_origins() {
    let up = Up::start().await;
    let addr = up.addr;
    let preflight = |origin: &'static str| async move {
        http1(
            addr,
            "OPTIONS",
            "/orchestra.v1.RunService/WatchRun",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type,x-grpc-web,x-user-agent",
                ),
            ],
            b"",
        )
        .await
    };
    let allowed = preflight(ALLOWED).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(ALLOWED));
    let methods = allowed.header("access-control-allow-methods").unwrap_or("");
    assert!(methods.contains("POST"), "{methods}");
    let headers = allowed.header("access-control-allow-headers").unwrap_or("");
    assert!(headers.contains("x-grpc-web"), "{headers}");

    // Without an Access-Control-Allow-Origin naming it, a browser refuses
    // the preflight and never sends the call.
    let refused = preflight("http://elsewhere.example").await;
    assert_eq!(refused.header("access-control-allow-origin"), None);

    // A call from a refused origin carries no allow-origin either, so the
    // browser withholds the response from the page.
    let reply = http1(
        up.addr,
        "POST",
        "/orchestra.v1.TemplateService/ListTemplates",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("origin", "http://elsewhere.example"),
        ],
        &frame(&ListTemplatesRequest::default()),
    )
    .await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_built_client_is_served_at_the_root() {
    let up = Up::start().await;
    let page = http1(up.addr, "GET", "/", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert_eq!(page.body, b"<title>Orchestra</title>");
    let missing = http1(up.addr, "GET", "/assets/nothing.js", &[], b"").await;
    assert_eq!(missing.status, 404);
    up.stop().await;
}
