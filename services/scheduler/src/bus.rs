//! What this replica tells its own waiters after a commit.
//!
//! - Each watched run has a channel of its committed events
//!   ([`Bus::subscribe`], [`Bus::committed`]): a watcher is handed the
//!   events themselves, so nobody re-reads the log per commit. The database
//!   stays the truth: a watcher that sees a gap in the sequence or falls
//!   behind the channel reads what it missed from the log.
//! - Lease streams, the lease sweeper and the outbox dispatcher get bare
//!   wake-ups ([`tokio::sync::Notify`]) and look in the database; each also
//!   looks at a slow safety sweep, so a missed wake-up costs only latency.
//!
//! Commits of other replicas arrive through Postgres LISTEN/NOTIFY (see
//! [`crate::listen`]), which feeds the same channels and wake-ups.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use orchestra_proto::v1 as pb;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, broadcast, watch};

/// Events buffered per watched run; a watcher further behind than this
/// reads the rest from the database.
const RUN_CHANNEL_CAPACITY: usize = 512;

/// How many of this replica's own commits are remembered, so the listener
/// can skip their notifications; older ones only cost a redundant wake-up.
const OWN_COMMITS_KEPT: usize = 1024;

/// The scheduler's signals. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    runs: Arc<Hub>,
    own: Arc<Mutex<OwnCommits>>,
    tasks: Arc<Notify>,
    leases: Arc<Notify>,
    outbox: Arc<Notify>,
    closed: watch::Sender<bool>,
    sweep: Duration,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(Duration::from_secs(10))
    }
}

impl Bus {
    /// Signals whose waiters also look every `sweep` in case a wake-up
    /// was missed.
    pub fn new(sweep: Duration) -> Self {
        Bus::with_run_capacity(sweep, RUN_CHANNEL_CAPACITY)
    }

    /// As [`Bus::new`], buffering `capacity` events per watched run.
    pub fn with_run_capacity(sweep: Duration, capacity: usize) -> Self {
        Bus {
            runs: Arc::new(Hub {
                runs: Mutex::default(),
                capacity: capacity.max(1),
            }),
            own: Arc::default(),
            tasks: Arc::new(Notify::new()),
            leases: Arc::new(Notify::new()),
            outbox: Arc::new(Notify::new()),
            closed: watch::channel(false).0,
            sweep,
        }
    }

    /// How often waiters look without a wake-up: a safety net, not the way
    /// work is found.
    pub fn sweep_interval(&self) -> Duration {
        self.sweep
    }

    /// Something changed in another replica, or may have: wake every
    /// waiter that looks in the database.
    pub fn everything_changed(&self) {
        self.tasks_changed();
        self.leases_changed();
        self.outbox_added();
    }

    /// Joins a run's channel. Subscribe before reading the log, so that an
    /// event committed after the read still arrives.
    pub fn subscribe(&self, run_id: &str) -> RunEvents {
        let receiver = {
            let mut runs = self.runs.lock();
            let channel = runs.entry(run_id.to_owned()).or_insert_with(|| RunChannel {
                sender: broadcast::channel(self.runs.capacity).0,
                known: 0,
            });
            channel.sender.subscribe()
        };
        RunEvents {
            hub: self.runs.clone(),
            run_id: run_id.to_owned(),
            receiver: Some(receiver),
        }
    }

    /// This replica committed these events (of one run, in order): remember
    /// the commit as ours and hand them to the run's watchers.
    pub fn committed(&self, events: Vec<pb::RunEvent>) {
        if let Some(last) = events.last() {
            lock(&self.own).insert(&last.run_id, last.seq);
        }
        self.publish(events);
    }

    /// Hands committed events to their runs' watchers on this replica; an
    /// unwatched run's are dropped.
    pub fn publish(&self, events: Vec<pb::RunEvent>) {
        let mut runs = self.runs.lock();
        for event in events {
            if let Some(channel) = runs.get_mut(&event.run_id) {
                channel.known = channel.known.max(event.seq);
                // No receiver left is a watcher leaving right now.
                let _ = channel.sender.send(Arc::new(event));
            }
        }
    }

    /// Whether this replica made the commit that ended at `last_seq` on a
    /// run (forgetting it: each commit is notified once).
    pub fn is_own_commit(&self, run_id: &str, last_seq: i64) -> bool {
        lock(&self.own).take(run_id, last_seq)
    }

    /// The highest sequence this replica has seen committed on a run its
    /// watchers follow; `None` when nobody here watches it.
    pub fn known_seq(&self, run_id: &str) -> Option<i64> {
        self.runs.lock().get(run_id).map(|channel| channel.known)
    }

    /// Every watched run with the highest sequence seen committed on it.
    pub fn watched_runs(&self) -> Vec<(String, i64)> {
        self.runs
            .lock()
            .iter()
            .map(|(run_id, channel)| (run_id.clone(), channel.known))
            .collect()
    }

    /// Tasks were queued or leases freed.
    pub fn tasks_changed(&self) {
        self.tasks.notify_waiters();
    }

    /// Waits for [`Bus::tasks_changed`].
    pub fn tasks(&self) -> Arc<Notify> {
        self.tasks.clone()
    }

    /// A lease was granted, here or maybe in another replica: the lease
    /// sweeper, idle while no lease was live, looks again.
    pub fn leases_changed(&self) {
        self.leases.notify_one();
    }

    /// Waits for [`Bus::leases_changed`].
    pub fn leases(&self) -> Arc<Notify> {
        self.leases.clone()
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

/// One watcher's place on its run's channel. Dropping it leaves the
/// channel, and the last watcher to leave removes it.
pub struct RunEvents {
    hub: Arc<Hub>,
    run_id: String,
    /// Always `Some` until dropped, which happens under the hub's lock.
    receiver: Option<broadcast::Receiver<Arc<pb::RunEvent>>>,
}

impl RunEvents {
    /// The next event published on the run: `Lagged` when this watcher fell
    /// so far behind that events were dropped (read them from the log).
    pub async fn recv(&mut self) -> Result<Arc<pb::RunEvent>, RecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => Err(RecvError::Closed),
        }
    }

    /// Records that events up to `seq` are committed (the watcher read them
    /// from the log), so the listener reads only what comes after.
    pub fn seen_committed(&self, seq: i64) {
        if let Some(channel) = self.hub.lock().get_mut(&self.run_id) {
            channel.known = channel.known.max(seq);
        }
    }
}

impl Drop for RunEvents {
    fn drop(&mut self) {
        let mut runs = self.hub.lock();
        drop(self.receiver.take());
        if runs
            .get(&self.run_id)
            .is_some_and(|channel| channel.sender.receiver_count() == 0)
        {
            runs.remove(&self.run_id);
        }
    }
}

/// Every watched run's channel.
struct Hub {
    runs: Mutex<HashMap<String, RunChannel>>,
    capacity: usize,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, RunChannel>> {
        lock(&self.runs)
    }
}

/// A watched run's channel.
struct RunChannel {
    sender: broadcast::Sender<Arc<pb::RunEvent>>,
    /// The highest sequence known committed (published, or read by a
    /// watcher); 0 until one is.
    known: i64,
}

/// This replica's latest commits, by run and last sequence.
#[derive(Default)]
struct OwnCommits {
    kept: HashSet<(String, i64)>,
    order: VecDeque<(String, i64)>,
}

impl OwnCommits {
    fn insert(&mut self, run_id: &str, last_seq: i64) {
        let key = (run_id.to_owned(), last_seq);
        if self.kept.insert(key.clone()) {
            self.order.push_back(key);
        }
        while self.order.len() > OWN_COMMITS_KEPT {
            if let Some(oldest) = self.order.pop_front() {
                self.kept.remove(&oldest);
            }
        }
    }

    fn take(&mut self, run_id: &str, last_seq: i64) -> bool {
        // The queue entry stays until it ages out; it no longer matches.
        self.kept.remove(&(run_id.to_owned(), last_seq))
    }
}

/// A lock that a panic elsewhere does not poison: the maps stay consistent
/// between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(run_id: &str, seq: i64) -> pb::RunEvent {
        pb::RunEvent {
            run_id: run_id.into(),
            seq,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn watchers_of_a_run_get_its_events_and_no_other_run_s() {
        let bus = Bus::default();
        let mut first = bus.subscribe("r1");
        let mut second = bus.subscribe("r1");
        let mut other = bus.subscribe("r2");
        bus.committed(vec![event("r1", 1), event("r1", 2)]);
        for watcher in [&mut first, &mut second] {
            assert_eq!(watcher.recv().await.expect("event").seq, 1);
            assert_eq!(watcher.recv().await.expect("event").seq, 2);
        }
        bus.publish(vec![event("r2", 7)]);
        assert_eq!(other.recv().await.expect("event").seq, 7);
        assert_eq!(bus.known_seq("r1"), Some(2));
        assert_eq!(bus.known_seq("r2"), Some(7));
    }

    #[test]
    fn the_last_watcher_to_leave_removes_the_run_s_channel() {
        let bus = Bus::default();
        let first = bus.subscribe("r1");
        let second = bus.subscribe("r1");
        first.seen_committed(4);
        drop(first);
        assert_eq!(bus.known_seq("r1"), Some(4));
        drop(second);
        assert_eq!(bus.known_seq("r1"), None);
        assert!(bus.watched_runs().is_empty());
        // Events of a run nobody watches go nowhere.
        bus.committed(vec![event("r1", 5)]);
        assert_eq!(bus.known_seq("r1"), None);
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_the_buffer_is_told() {
        let bus = Bus::with_run_capacity(Duration::from_secs(10), 2);
        let mut slow = bus.subscribe("r1");
        bus.committed((1..=5).map(|seq| event("r1", seq)).collect());
        assert!(matches!(slow.recv().await, Err(RecvError::Lagged(3))));
        assert_eq!(slow.recv().await.expect("event").seq, 4);
    }

    #[test]
    fn own_commits_are_recognised_once_and_forgotten_when_old() {
        let bus = Bus::default();
        bus.committed(vec![event("r1", 1), event("r1", 2)]);
        assert!(
            !bus.is_own_commit("r1", 1),
            "a commit is known by its last event"
        );
        assert!(bus.is_own_commit("r1", 2));
        assert!(
            !bus.is_own_commit("r1", 2),
            "each notification is heard once"
        );
        for seq in 0..=OWN_COMMITS_KEPT as i64 {
            bus.committed(vec![event("r2", seq)]);
        }
        assert!(!bus.is_own_commit("r2", 0));
        assert!(bus.is_own_commit("r2", OWN_COMMITS_KEPT as i64));
    }
}
