//! A call's deadline, as the caller sent it in `grpc-timeout`, kept for the
//! whole call: the header goes on to the owning service unchanged, and the
//! gateway ends the call with DEADLINE_EXCEEDED when the time is up, server
//! streams included. tonic's own timeout covers a call only until its
//! response headers, which for a stream is at once.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::Status;
use tonic::body::Body;

/// The deadline a request carries, if any: `grpc-timeout` is digits then a
/// unit (`H`, `M`, `S`, `m`, `u`, `n`), at most 8 digits.
pub fn requested(headers: &http::HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.saturating_mul(3600)),
        "M" => Duration::from_secs(value.saturating_mul(60)),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// The status of a call whose deadline passed in the gateway.
pub fn exceeded_status(rpc: &str) -> Status {
    let method = rpc.rsplit('/').next().unwrap_or(rpc);
    Status::deadline_exceeded(format!(
        "{method} did not finish within the caller's deadline"
    ))
}

/// A response body that ends with DEADLINE_EXCEEDED trailers when its
/// deadline passes first. Ending drops the owning service's body, which
/// resets that stream, so the service stops working on it too.
pub struct DeadlineBody {
    inner: Option<Body>,
    deadline: Option<Pin<Box<Sleep>>>,
    rpc: String,
}

impl DeadlineBody {
    /// `inner`, cut at `deadline` if there is one.
    pub fn new(inner: Body, deadline: Option<Instant>, rpc: String) -> DeadlineBody {
        DeadlineBody {
            inner: Some(inner),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            rpc,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(inner).poll_frame(cx) {
            if frame.is_none() {
                this.inner = None;
            }
            return Poll::Ready(frame);
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.inner = None;
            let status = exceeded_status(&this.rpc);
            let mut trailers = http::HeaderMap::new();
            // Writing a status into headers fails only on an unencodable
            // message, and this one is ASCII.
            let _ = status.add_header(&mut trailers);
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) if self.deadline.is_none() => inner.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout(value: &str) -> Option<Duration> {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().expect("header"));
        requested(&headers)
    }

    #[test]
    fn grpc_timeout_is_read_in_every_unit() {
        assert_eq!(timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(timeout("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(timeout("S"), None);
        assert_eq!(timeout("123456789S"), None);
        assert_eq!(timeout("5s"), None);
        assert_eq!(requested(&http::HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn a_stream_past_its_deadline_ends_with_deadline_exceeded() {
        use http_body_util::BodyExt;
        let (_sender, pending) = tokio::sync::mpsc::channel::<()>(1);
        // A body that never yields: an open stream with nothing new.
        let never = http_body_util::StreamBody::new(futures_never(pending));
        let body = DeadlineBody::new(
            Body::new(never),
            Some(Instant::now() + Duration::from_millis(50)),
            "/orchestra.v1.RunService/WatchRun".to_owned(),
        );
        let collected = body.collect().await.expect("trailers, not an error");
        let trailers = collected.trailers().expect("trailers").clone();
        let status = Status::from_header_map(&trailers).expect("status");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(
            status.message().starts_with("WatchRun"),
            "{}",
            status.message()
        );
    }

    fn futures_never(
        receiver: tokio::sync::mpsc::Receiver<()>,
    ) -> impl tokio_stream::Stream<Item = Result<Frame<Bytes>, Status>> {
        use tokio_stream::StreamExt;
        tokio_stream::wrappers::ReceiverStream::new(receiver)
            .map(|()| Ok(Frame::data(Bytes::new())))
    }
}
