//! Reads a streamed answer: bytes, in whatever pieces the network cuts
//! them (inside a UTF-8 character, inside a line), become server-sent
//! events through `eventsource-stream`; each event goes to the wire
//! format's [`StreamDecoder`], and the text it yields goes to the caller at
//! once. A silence longer than the idle limit ends the read as a timeout.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::{ProviderError, ProviderEvent, Usage};

/// What a finished stream amounted to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The whole output text.
    pub text: String,
    /// Token counts the provider reported.
    pub usage: Usage,
    /// The model that answered, when the provider said.
    pub model: Option<String>,
    /// Whether the model stopped at the token limit.
    pub truncated: bool,
    /// When the first text arrived.
    pub first_text_at: Option<tokio::time::Instant>,
}

/// Reads one provider's stream events; one decoder per response.
pub trait StreamDecoder: Send {
    /// Takes one event; returns the output text it adds, if any. An error
    /// event of the provider's becomes the matching [`ProviderError`].
    fn event(&mut self, event: &Event) -> Result<Option<String>, ProviderError>;

    /// The answer, once the stream has ended; an answer the stream never
    /// finished is [`ProviderError::InvalidResponse`] (retryable).
    fn finish(self: Box<Self>) -> Result<Answer, ProviderError>;
}

/// Reads `bytes` as server-sent events through `decoder`, sending each
/// piece of text to `events` as it arrives (and setting `streamed` once
/// one went), until the stream ends.
pub async fn read_answer<S, B, E>(
    bytes: S,
    mut decoder: Box<dyn StreamDecoder>,
    events: &mpsc::Sender<ProviderEvent>,
    idle: Duration,
    streamed: &AtomicBool,
) -> Result<Answer, ProviderError>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Display,
{
    let mut first_text_at = None;
    let mut stream = std::pin::pin!(watched(bytes, idle).eventsource());
    while let Some(next) = stream.next().await {
        let event = match next {
            Ok(event) => event,
            Err(EventStreamError::Transport(Read::Idle)) => {
                return Err(ProviderError::Timeout(idle));
            }
            Err(EventStreamError::Transport(Read::Broken(error))) => {
                return Err(ProviderError::Unavailable(format!(
                    "the connection broke mid-answer: {error}"
                )));
            }
            Err(EventStreamError::Utf8(error)) => {
                return Err(ProviderError::InvalidResponse(format!(
                    "the stream is not UTF-8: {error}"
                )));
            }
            Err(EventStreamError::Parser(error)) => {
                return Err(ProviderError::InvalidResponse(format!(
                    "the stream is not server-sent events: {error}"
                )));
            }
        };
        if let Some(delta) = decoder.event(&event)?
            && !delta.is_empty()
        {
            streamed.store(true, Ordering::Relaxed);
            first_text_at.get_or_insert_with(tokio::time::Instant::now);
            // A caller that stopped listening still gets the answer.
            let _ = events.send(ProviderEvent::Delta(delta)).await;
        }
    }
    let mut answer = decoder.finish()?;
    answer.first_text_at = first_text_at;
    Ok(answer)
}

/// Why reading the bytes of a stream stopped.
enum Read<E> {
    /// Nothing arrived within the idle limit.
    Idle,
    /// The transport failed.
    Broken(E),
}

/// `bytes`, ending with [`Read::Idle`] when no piece arrives within `idle`.
fn watched<S, B, E>(bytes: S, idle: Duration) -> impl Stream<Item = Result<B, Read<E>>>
where
    S: Stream<Item = Result<B, E>>,
{
    futures::stream::unfold(Some(Box::pin(bytes)), move |bytes| async move {
        let mut bytes = bytes?;
        match tokio::time::timeout(idle, bytes.next()).await {
            Err(_) => Some((Err(Read::Idle), None)),
            Ok(None) => None,
            Ok(Some(Ok(piece))) => Some((Ok(piece), Some(bytes))),
            Ok(Some(Err(error))) => Some((Err(Read::Broken(error)), None)),
        }
    })
}

/// Parses an event's JSON data as `T`; a chunk that does not parse is
/// [`ProviderError::InvalidResponse`], quoting its start.
pub fn parse<T: DeserializeOwned>(event: &Event) -> Result<T, ProviderError> {
    serde_json::from_str(&event.data).map_err(|error| {
        let start: String = event.data.chars().take(120).collect();
        ProviderError::InvalidResponse(format!("unreadable stream chunk ({error}): {start}"))
    })
}

/// The error for a stream that ended before the provider said it was done.
pub fn unfinished(what: &str) -> ProviderError {
    ProviderError::InvalidResponse(format!("the stream ended before {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder whose text is the events' data, one line per event.
    struct Echo(String);

    impl StreamDecoder for Echo {
        fn event(&mut self, event: &Event) -> Result<Option<String>, ProviderError> {
            let line = format!("{}:{}\n", event.event, event.data);
            self.0.push_str(&line);
            Ok(Some(line))
        }

        fn finish(self: Box<Self>) -> Result<Answer, ProviderError> {
            Ok(Answer {
                text: self.0,
                ..Answer::default()
            })
        }
    }

    async fn read(pieces: Vec<Vec<u8>>) -> Result<(String, String), ProviderError> {
        let (sender, mut receiver) = mpsc::channel(1024);
        let bytes = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
        let streamed = AtomicBool::new(false);
        let answer = read_answer(
            bytes,
            Box::new(Echo(String::new())),
            &sender,
            Duration::from_secs(5),
            &streamed,
        )
        .await?;
        drop(sender);
        let mut deltas = String::new();
        while let Some(ProviderEvent::Delta(delta)) = receiver.recv().await {
            deltas.push_str(&delta);
        }
        Ok((answer.text, deltas))
    }

    #[tokio::test]
    async fn every_cut_of_the_bytes_reads_the_same_events() {
        let stream = "event: a\ndata: caf\u{e9} \u{1f389}\n\n: a comment\r\ndata: {\"x\": \"\u{2014}\"}\r\n\r\nevent: b\ndata: one\ndata: two\n\n";
        let bytes = stream.as_bytes();
        let expected = "a:caf\u{e9} \u{1f389}\nmessage:{\"x\": \"\u{2014}\"}\nb:one\ntwo\n";
        for at in 0..=bytes.len() {
            let pieces = vec![bytes[..at].to_vec(), bytes[at..].to_vec()];
            let (text, deltas) = read(pieces).await.expect("reads");
            assert_eq!(text, expected, "cut at {at}");
            assert_eq!(deltas, expected, "cut at {at}");
        }
        let bytewise = bytes.iter().map(|byte| vec![*byte]).collect();
        assert_eq!(read(bytewise).await.expect("reads").0, expected);
    }

    #[tokio::test]
    async fn silence_past_the_idle_limit_is_a_timeout() {
        let (sender, _receiver) = mpsc::channel(16);
        let bytes = futures::stream::iter([Ok::<_, std::io::Error>(b"data: x\n".to_vec())])
            .chain(futures::stream::pending());
        let error = read_answer(
            bytes,
            Box::new(Echo(String::new())),
            &sender,
            Duration::from_millis(50),
            &AtomicBool::new(false),
        )
        .await
        .expect_err("times out");
        assert_eq!(error, ProviderError::Timeout(Duration::from_millis(50)));
    }
}
