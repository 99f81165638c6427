//! In-process wake-ups after a commit: run watchers re-read the event log,
//! lease streams look for tasks, the outbox dispatcher looks for hand-offs.
//! They carry no data (the database is the truth), so a missed wake-up costs
//! only latency: every waiter also polls. Commits of other replicas arrive
//! through Postgres LISTEN/NOTIFY (see [`crate::listen`]).

use std::sync::Arc;

use tokio::sync::{Notify, watch};

/// The scheduler's wake-up signals. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    events: watch::Sender<u64>,
    tasks: Arc<Notify>,
    outbox: Arc<Notify>,
    closed: watch::Sender<bool>,
    poll: std::time::Duration,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(std::time::Duration::from_millis(500))
    }
}

impl Bus {
    /// Signals whose waiters also poll every `poll`.
    pub fn new(poll: std::time::Duration) -> Self {
        Bus {
            poll,
            events: watch::channel(0).0,
            tasks: Arc::new(Notify::new()),
            outbox: Arc::new(Notify::new()),
            closed: watch::channel(false).0,
        }
    }

    /// How often waiters look without a wake-up.
    pub fn poll_interval(&self) -> std::time::Duration {
        self.poll
    }

    /// Something changed, possibly in another replica: wake every waiter.
    pub fn everything_changed(&self) {
        self.events_appended();
        self.tasks_changed();
        self.outbox_added();
    }

    /// Some run has new events.
    pub fn events_appended(&self) {
        self.events.send_modify(|generation| *generation += 1);
    }

    /// A receiver that sees [`Bus::events_appended`].
    pub fn watch_events(&self) -> watch::Receiver<u64> {
        self.events.subscribe()
    }

    /// Tasks were queued or leases freed.
    pub fn tasks_changed(&self) {
        self.tasks.notify_waiters();
    }

    /// Waits for [`Bus::tasks_changed`].
    pub fn tasks(&self) -> Arc<Notify> {
        self.tasks.clone()
    }

    /// Hand-offs were added.
    pub fn outbox_added(&self) {
        self.outbox.notify_one();
    }

    /// Waits for [`Bus::outbox_added`].
    pub fn outbox(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    /// The scheduler is stopping: open streams end so the server can drain.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once [`Bus::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closed = self.closed.subscribe();
        async move {
            let _ = closed.wait_for(|closed| *closed).await;
        }
    }
}
