//! The one way a service runs loops beside its server (an outbox
//! dispatcher, a lease loop, a sweeper): a [`Background`] handle that starts
//! named tasks under one cancellation token, stops them all gracefully, and
//! aborts them if it is dropped instead, as a crash would.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use tokio_util::sync::CancellationToken as StopToken;

/// How long [`Background::stop`] waits for a loop that was told to stop
/// before it aborts it; [`Background::stop_within`] takes another.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A service's background loops. Dropping the handle aborts them; call
/// [`Background::stop`] to let them finish what they are doing first.
#[derive(Debug, Default)]
pub struct Background {
    token: CancellationToken,
    /// The tokens of handles merged in by [`Background::extend`].
    merged: Vec<CancellationToken>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Background {
    /// A handle with no loops yet.
    pub fn new() -> Background {
        Background::default()
    }

    /// Runs `task` as the loop `name` until it returns or the handle stops.
    /// A stop drops the future at its next `.await`: for loops that hold
    /// nothing that must be finished (a lease loop whose leases expire).
    pub fn spawn<F>(&mut self, name: &'static str, task: F) -> &mut Background
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.token.clone();
        self.spawn_with_stop(name, move |_| async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = task => {}
            }
        })
    }

    /// Runs the loop `name` that `start` makes from the stop token: the loop
    /// watches [`StopToken::cancelled`] itself and returns when it fires,
    /// after finishing the step in hand (an outbox delivery, say).
    pub fn spawn_with_stop<F, Fut>(&mut self, name: &'static str, start: F) -> &mut Background
    where
        F: FnOnce(StopToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let span = tracing::info_span!("background", task = name);
        let handle = tokio::spawn(start(self.token.clone()).instrument(span));
        self.tasks.push((name, handle));
        self
    }

    /// Moves `other`'s loops into this handle, to stop them together.
    pub fn extend(&mut self, mut other: Background) -> &mut Background {
        self.merged.push(other.token.clone());
        self.merged.append(&mut other.merged);
        self.tasks.append(&mut other.tasks);
        self
    }

    /// The names of the loops started, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|(name, _)| *name).collect()
    }

    /// Tells every loop to stop and waits for each, at most [`STOP_GRACE`].
    pub async fn stop(self) {
        self.stop_within(STOP_GRACE).await;
    }

    /// Tells every loop to stop and waits for each; a loop still running
    /// after `grace` is aborted and named in a warning.
    pub async fn stop_within(mut self, grace: Duration) {
        self.token.cancel();
        for token in &self.merged {
            token.cancel();
        }
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut handle) in std::mem::take(&mut self.tasks) {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) if error.is_panic() => {
                    tracing::error!(task = name, "background task panicked");
                }
                Ok(Err(_)) => {}
                Err(_) => {
                    tracing::warn!(task = name, ?grace, "background task did not stop; aborted");
                    handle.abort();
                }
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for (_, handle) in &self.tasks {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn stop_lets_a_loop_finish_its_step() {
        let finished = Arc::new(AtomicBool::new(false));
        let mut background = Background::new();
        let flag = finished.clone();
        background.spawn_with_stop("outbox", move |stop| async move {
            stop.cancelled().await;
            // The step in hand still runs after the stop is asked.
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::SeqCst);
        });
        assert_eq!(background.names(), ["outbox"]);
        background.stop().await;
        assert!(finished.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn stop_cancels_plain_loops_and_aborts_stuck_ones() {
        let mut background = Background::new();
        background.spawn("forever", std::future::pending());
        background.spawn_with_stop("deaf", |_| std::future::pending());
        let started = tokio::time::Instant::now();
        background.stop_within(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn dropping_the_handle_aborts_its_loops() {
        let (sender, receiver) = oneshot::channel::<()>();
        let mut background = Background::new();
        background.spawn_with_stop("holder", move |_| async move {
            let _sender = sender;
            std::future::pending::<()>().await;
        });
        drop(background);
        // The aborted task drops its sender, which ends the receiver.
        assert!(receiver.await.is_err());
    }

    #[tokio::test]
    async fn extended_loops_stop_with_the_handle() {
        let finished = Arc::new(AtomicBool::new(false));
        let mut inner = Background::new();
        let flag = finished.clone();
        inner.spawn_with_stop("inner", move |stop| async move {
            stop.cancelled().await;
            flag.store(true, Ordering::SeqCst);
        });
        let mut outer = Background::new();
        outer.extend(inner);
        outer.stop().await;
        assert!(finished.load(Ordering::SeqCst));
    }
}
