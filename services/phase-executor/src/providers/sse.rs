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
    let mut stream = std::pin::pin!(bytes.eventsource());
    loop {
        let next = tokio::time::timeout(idle, stream.next())
            .await
            .map_err(|_| ProviderError::Timeout(idle))?;
        let event = match next {
            None => break,
            Some(Ok(event)) => event,
            Some(Err(EventStreamError::Transport(error))) => {
                return Err(ProviderError::Unavailable(format!(
                    "the connection broke mid-answer: {error}"
                )));
            }
            Some(Err(EventStreamError::Utf8(error))) => {
                return Err(ProviderError::InvalidResponse(format!(
                    "the stream is not UTF-8: {error}"
                )));
            }
            Some(Err(EventStreamError::Parser(error))) => {
                return Err(ProviderError::InvalidResponse(format!(
                    "the stream is not server-sent events: {error}"
                )));
            }
        };
        if let Some(delta) = decoder.event(&event)?
            && !delta.is_empty()
        {
            streamed.store(true, Ordering::Relaxed);
            // A caller that stopped listening still gets the answer.
            let _ = events.send(ProviderEvent::Delta(delta)).await;
        }
    }
    decoder.finish()
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
