//! Forwarding one gRPC service's calls to the service that owns it. Each
//! forwarded service is a [`Forward`] named by the gRPC service it stands
//! for, so the kit's router sends it every call whose path starts with
//! `/orchestra.v1.XService/`. The call goes on as it came (after grpc-web
//! has become gRPC in the kit's layers): headers, metadata and
//! `grpc-timeout` included, its body streamed both ways. Dropping the
//! caller's side (a closed tab, a cancelled stream) drops the owner's, which
//! resets that HTTP/2 stream, so the owner stops too.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tower::ServiceExt;

use crate::deadline::{DeadlineBody, exceeded_status, requested};

/// A gRPC service the gateway forwards, by its full name.
pub trait Forwarded: Send + Sync + 'static {
    /// The full gRPC name, such as `orchestra.v1.RunService`.
    const NAME: &'static str;
}

/// Declares a marker type per forwarded service.
macro_rules! forwarded {
    ($($(#[$doc:meta])* $marker:ident => $name:literal,)*) => {$(
        $(#[$doc])*
        pub enum $marker {}
        impl Forwarded for $marker {
            const NAME: &'static str = $name;
        }
    )*};
}

forwarded! {
    /// Templates: the scheduler's.
    TemplateService => "orchestra.v1.TemplateService",
    /// Runs and their events: the scheduler's.
    RunService => "orchestra.v1.RunService",
    /// Artifacts: the artifact store's.
    ArtifactService => "orchestra.v1.ArtifactService",
    /// Human tasks and the inbox: the review service's.
    ReviewService => "orchestra.v1.ReviewService",
    /// Providers and their labels: a phase executor's.
    ProviderService => "orchestra.v1.ProviderService",
}

/// One owning service's address and the calls open to it.
#[derive(Clone)]
pub struct Upstream {
    channel: Channel,
    /// Who owns the calls, for the message of a call that cannot reach it.
    owner: &'static str,
    url: Arc<str>,
    open: Arc<AtomicUsize>,
}

impl Upstream {
    /// The service `owner` at `url`, reached over `channel`; `open` counts
    /// the calls in flight through every upstream.
    pub fn new(
        owner: &'static str,
        url: &str,
        channel: Channel,
        open: Arc<AtomicUsize>,
    ) -> Upstream {
        Upstream {
            channel,
            owner,
            url: url.into(),
            open,
        }
    }
}

/// The tonic service that forwards every call of `N` to its owner.
pub struct Forward<N> {
    upstream: Upstream,
    name: PhantomData<fn() -> N>,
}

impl<N> Forward<N> {
    /// Forwards `N`'s calls to `upstream`.
    pub fn new(upstream: Upstream) -> Forward<N> {
        Forward {
            upstream,
            name: PhantomData,
        }
    }
}

impl<N> Clone for Forward<N> {
    fn clone(&self) -> Self {
        Forward::new(self.upstream.clone())
    }
}

impl<N: Forwarded> NamedService for Forward<N> {
    const NAME: &'static str = N::NAME;
}

/// How much sooner than tonic's own `grpc-timeout` timer the gateway ends
/// a call that has no response yet: one tick of tokio's millisecond timer.
const EARLY: std::time::Duration = std::time::Duration::from_millis(1);

/// Headers that describe one HTTP/1.1 hop, which HTTP/2 forbids: a
/// grpc-web call from a browser arrives with them.
const HOP_HEADERS: [http::header::HeaderName; 6] = [
    http::header::CONNECTION,
    http::header::HOST,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
];

impl<N: Forwarded> tower_service::Service<http::Request<Body>> for Forward<N> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The channel is readied per call, in the call's future.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let upstream = self.upstream.clone();
        let rpc = request.uri().path().to_owned();
        let deadline = requested(request.headers()).map(|d| tokio::time::Instant::now() + d);
        for header in &HOP_HEADERS {
            request.headers_mut().remove(header);
        }
        request.headers_mut().remove("keep-alive");
        *request.version_mut() = http::Version::HTTP_2;
        let open = OpenCall::new(&upstream.open);
        Box::pin(async move {
            let call = upstream.channel.clone().oneshot(request);
            let answer = match deadline {
                // A hair early: tonic's own timer on the same header would
                // otherwise answer first, as CANCELLED.
                Some(at) => match tokio::time::timeout_at(at - EARLY, call).await {
                    Ok(answer) => answer,
                    Err(_) => return Ok(exceeded_status(&rpc).into_http()),
                },
                None => call.await,
            };
            Ok(match answer {
                Ok(response) => response.map(|body| {
                    Body::new(Tracked {
                        body: DeadlineBody::new(body, deadline, rpc),
                        _open: open,
                    })
                }),
                Err(error) => {
                    tracing::warn!(%rpc, owner = upstream.owner, url = %upstream.url, %error, "cannot forward");
                    Status::unavailable(format!(
                        "the {} at {} cannot be reached ({error}); try again",
                        upstream.owner, upstream.url
                    ))
                    .into_http()
                }
            })
        })
    }
}

/// Counts a call as open from its arrival until its response body is done
/// or dropped.
struct OpenCall(Arc<AtomicUsize>);

impl OpenCall {
    fn new(open: &Arc<AtomicUsize>) -> OpenCall {
        open.fetch_add(1, Ordering::SeqCst);
        OpenCall(open.clone())
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its call counted as open while it lives.
struct Tracked {
    body: DeadlineBody,
    _open: OpenCall,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
