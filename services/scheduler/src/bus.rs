//! What this replica tells its own waiters after a commit.
//!
//! - Each watched run has a channel of its committed events
//!   ([`Bus::subscribe`], [`Bus::committed`]): a watcher is handed the
//!   events themselves, so nobody re-reads the log per commit. The channel
//!   passes them on in sequence order: an event published ahead of its
//!   predecessor (concurrent commits return in any order; another replica's
//!   commit is heard of later) is held back until the gap is filled, by the
//!   missing event's own publication or by one read of the log for the whole
//!   replica (see [`Gap`]). The database stays the truth: a watcher that
//!   still sees a gap, or falls behind the channel, reads what it missed
//!   from the log.
//! - Lease streams, the lease sweeper and the outbox dispatcher get bare
//!   wake-ups ([`tokio::sync::Notify`]) and look in the database; each also
//!   looks at a slow safety sweep, so a missed wake-up costs only latency.
//!
//! Commits of other replicas arrive through Postgres LISTEN/NOTIFY (see
//! [`crate::listen`]), which feeds the same channels and wake-ups.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use orchestra_proto::v1 as pb;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, broadcast, watch};

/// Events buffered per watched run; a watcher further behind than this
/// reads the rest from the log. A channel holds back at most as many.
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
    /// One wake-up per phase kind, so a change to `function` tasks does not
    /// wake the Lease streams that take only `llm` ones.
    task_kinds: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
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
            task_kinds: Arc::default(),
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
                sent: 0,
                held: BTreeMap::new(),
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
    /// the commit as ours and hand them to the run's watchers. Returns the
    /// gap this opened, as [`Bus::publish`] does.
    #[must_use = "a gap left open delays the run's watchers"]
    pub fn committed(&self, events: Vec<pb::RunEvent>) -> Option<Gap> {
        self.publish(events)
    }

    /// Marks a commit about to be made as this replica's own, before it is
    /// made: its notification can reach the listener before the committing
    /// task goes on, and must not wake everything as a stranger's would.
    /// Dropping the mark unkept (the transaction failed) forgets it.
    #[must_use = "keep the mark once the transaction has committed"]
    pub fn expect_commit(&self, events: &[pb::RunEvent]) -> OwnCommit {
        let key = events.last().map(|last| {
            lock(&self.own).insert(&last.run_id, last.seq);
            (last.run_id.clone(), last.seq)
        });
        OwnCommit {
            own: self.own.clone(),
            key,
        }
    }

    /// Hands committed events of one run to its watchers on this replica,
    /// in sequence order; an unwatched run's are dropped. Returns a gap
    /// when the channel starts holding events back for want of earlier
    /// ones: if those do not arrive shortly, read them from the log (see
    /// [`Bus::gap`]) and publish them, or give up with [`Bus::release`].
    #[must_use = "a gap left open delays the run's watchers"]
    pub fn publish(&self, events: Vec<pb::RunEvent>) -> Option<Gap> {
        let run_id = events.first()?.run_id.clone();
        let mut runs = self.runs.lock();
        let channel = runs.get_mut(&run_id)?;
        let mut opened = false;
        for event in events {
            opened |= channel.take(event);
        }
        if channel.held.len() > self.runs.capacity {
            // Long unfilled: the watchers read the gap for themselves.
            channel.release();
            return None;
        }
        opened.then_some(Gap { run_id })
    }

    /// The sequences a run's channel waits for, first and last, if any.
    pub fn gap(&self, run_id: &str) -> Option<(i64, i64)> {
        let runs = self.runs.lock();
        let channel = runs.get(run_id)?;
        let (next_held, _) = channel.held.first_key_value()?;
        Some((channel.sent + 1, next_held - 1))
    }

    /// Passes on what a run's channel holds back, gap and all: its
    /// watchers read the gap from the log themselves.
    pub fn release(&self, run_id: &str) {
        if let Some(channel) = self.runs.lock().get_mut(run_id) {
            channel.release();
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

    /// Tasks of any kind may have been queued or leases freed: every Lease
    /// stream looks again.
    pub fn tasks_changed(&self) {
        self.tasks.notify_waiters();
    }

    /// Tasks of these kinds were queued, or leases of them freed: the Lease
    /// streams that take them look again.
    pub fn tasks_changed_for<'k>(&self, kinds: impl IntoIterator<Item = &'k str>) {
        let wakes = lock(&self.task_kinds);
        for kind in kinds {
            if let Some(wake) = wakes.get(kind) {
                wake.notify_waiters();
            }
        }
    }

    /// What a Lease stream taking these kinds waits on: any of them
    /// changed ([`Bus::tasks_changed_for`]) or everything did
    /// ([`Bus::tasks_changed`]).
    pub fn tasks(&self, kinds: &[String]) -> Vec<Arc<Notify>> {
        let mut wakes = lock(&self.task_kinds);
        let mut all = vec![self.tasks.clone()];
        for kind in kinds {
            all.push(wakes.entry(kind.clone()).or_default().clone());
        }
        all
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

/// A run whose channel holds events back until earlier ones arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The run.
    pub run_id: String,
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
    /// The next event passed on for the run: `Lagged` when this watcher
    /// fell so far behind that events were dropped (read them from the log).
    pub async fn recv(&mut self) -> Result<Arc<pb::RunEvent>, RecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => Err(RecvError::Closed),
        }
    }

    /// Records that events up to `seq` are committed (the watcher read them
    /// from the log): the listener reads only what comes after, and a
    /// channel that has passed nothing on yet starts after it.
    pub fn seen_committed(&self, seq: i64) {
        if let Some(channel) = self.hub.lock().get_mut(&self.run_id) {
            channel.known = channel.known.max(seq);
            if channel.sent == 0 {
                channel.sent = seq;
            }
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
    /// The last sequence passed on; 0 until the first event, or the first
    /// watcher's read of the log, sets where the channel starts.
    sent: i64,
    /// Events published ahead of their predecessors, by sequence.
    held: BTreeMap<i64, Arc<pb::RunEvent>>,
}

impl RunChannel {
    /// Passes an event on in order, or holds it back; says whether holding
    /// it opened a gap.
    fn take(&mut self, event: pb::RunEvent) -> bool {
        let seq = event.seq;
        self.known = self.known.max(seq);
        if self.sent != 0 && seq <= self.sent {
            return false;
        }
        if self.sent != 0 && seq > self.sent + 1 {
            let opened = self.held.is_empty();
            self.held.insert(seq, Arc::new(event));
            return opened;
        }
        self.send(seq, Arc::new(event));
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.sent + 1 {
                break;
            }
            let (seq, event) = entry.remove_entry();
            self.send(seq, event);
        }
        false
    }

    /// Passes on every held event, gap and all.
    fn release(&mut self) {
        for (seq, event) in std::mem::take(&mut self.held) {
            self.send(seq, event);
        }
    }

    fn send(&mut self, seq: i64, event: Arc<pb::RunEvent>) {
        self.sent = seq;
        // No receiver left is a watcher leaving right now.
        let _ = self.sender.send(event);
    }
}

/// A commit marked as this replica's own while its transaction runs
/// ([`Bus::expect_commit`]).
pub struct OwnCommit {
    own: Arc<Mutex<OwnCommits>>,
    key: Option<(String, i64)>,
}

impl OwnCommit {
    /// The transaction committed: the mark stays for the listener.
    pub fn keep(mut self) {
        self.key = None;
    }
}

impl Drop for OwnCommit {
    fn drop(&mut self) {
        // Not kept: the sequences may yet be another replica's commit.
        if let Some((run_id, seq)) = self.key.take() {
            lock(&self.own).take(&run_id, seq);
        }
    }
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

    fn events(run_id: &str, seqs: impl IntoIterator<Item = i64>) -> Vec<pb::RunEvent> {
        seqs.into_iter().map(|seq| event(run_id, seq)).collect()
    }

    /// The sequences a watcher can take now, without waiting (past any it
    /// fell too far behind to get).
    fn ready(watcher: &mut RunEvents) -> Vec<i64> {
        let receiver = watcher.receiver.as_mut().expect("subscribed");
        let mut seqs = Vec::new();
        loop {
            match receiver.try_recv() {
                Ok(event) => seqs.push(event.seq),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return seqs,
            }
        }
    }

    #[test]
    fn watchers_of_a_run_get_its_events_and_no_other_run_s() {
        let bus = Bus::default();
        let mut first = bus.subscribe("r1");
        let mut second = bus.subscribe("r1");
        let mut other = bus.subscribe("r2");
        assert_eq!(bus.committed(events("r1", [1, 2])), None);
        assert_eq!(ready(&mut first), [1, 2]);
        assert_eq!(ready(&mut second), [1, 2]);
        assert_eq!(ready(&mut other), [] as [i64; 0]);
        assert_eq!(bus.publish(events("r2", [7])), None);
        assert_eq!(ready(&mut other), [7]);
        assert_eq!(bus.known_seq("r1"), Some(2));
        assert_eq!(bus.known_seq("r2"), Some(7));
    }

    #[test]
    fn events_pass_on_in_order_whatever_order_they_are_published_in() {
        let bus = Bus::default();
        let mut watcher = bus.subscribe("r1");
        watcher.seen_committed(3);
        assert_eq!(bus.publish(events("r1", [2, 3])), None, "read already");
        assert_eq!(bus.publish(events("r1", [4])), None);
        let gap = bus.publish(events("r1", [6, 7]));
        assert_eq!(
            gap,
            Some(Gap {
                run_id: "r1".into()
            })
        );
        assert_eq!(bus.gap("r1"), Some((5, 5)));
        assert_eq!(bus.publish(events("r1", [9])), None, "one gap at a time");
        assert_eq!(ready(&mut watcher), [4]);
        assert_eq!(bus.publish(events("r1", [5])), None);
        assert_eq!(ready(&mut watcher), [5, 6, 7]);
        assert_eq!(bus.gap("r1"), Some((8, 8)));
        bus.release("r1");
        assert_eq!(ready(&mut watcher), [9], "the watcher reads 8 itself");
        assert_eq!(bus.gap("r1"), None);
        assert_eq!(bus.publish(events("r1", [8, 10])), None);
        assert_eq!(ready(&mut watcher), [10]);
    }

    #[test]
    fn a_gap_left_open_too_long_is_passed_on() {
        let bus = Bus::with_run_capacity(Duration::from_secs(10), 2);
        let mut watcher = bus.subscribe("r1");
        assert_eq!(bus.publish(events("r1", [1])), None);
        assert!(bus.publish(events("r1", [3, 4])).is_some());
        assert_eq!(bus.gap("r1"), Some((2, 2)));
        assert_eq!(bus.publish(events("r1", [5])), None, "more than it holds");
        assert_eq!(bus.gap("r1"), None);
        assert_eq!(ready(&mut watcher).last(), Some(&5));
        assert_eq!(bus.publish(events("r1", [6])), None);
        assert_eq!(ready(&mut watcher), [6]);
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
        assert_eq!(bus.committed(events("r1", [5, 7])), None);
        assert_eq!(bus.known_seq("r1"), None);
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_the_buffer_is_told() {
        let bus = Bus::with_run_capacity(Duration::from_secs(10), 2);
        let mut slow = bus.subscribe("r1");
        assert_eq!(bus.committed(events("r1", 1..=5)), None);
        assert!(matches!(slow.recv().await, Err(RecvError::Lagged(3))));
        assert_eq!(slow.recv().await.expect("event").seq, 4);
    }

    #[test]
    fn own_commits_are_recognised_once_and_forgotten_when_old() {
        let bus = Bus::default();
        bus.expect_commit(&events("r1", [1, 2])).keep();
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
            bus.expect_commit(&events("r2", [seq])).keep();
        }
        assert!(!bus.is_own_commit("r2", 0));
        assert!(bus.is_own_commit("r2", OWN_COMMITS_KEPT as i64));
    }

    /// Whether a stream of `kinds`, waiting from before `change`, wakes.
    fn wakes(bus: &Bus, kinds: &[&str], change: impl FnOnce(&Bus)) -> bool {
        use futures::FutureExt as _;
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        let wakes = bus.tasks(&kinds);
        let mut waiting: Vec<_> = wakes.iter().map(|w| Box::pin(w.notified())).collect();
        for one in &mut waiting {
            one.as_mut().enable();
        }
        change(bus);
        futures::future::select_all(waiting)
            .now_or_never()
            .is_some()
    }

    #[test]
    fn a_change_to_one_kind_wakes_only_the_streams_that_take_it() {
        let bus = Bus::default();
        assert!(!wakes(&bus, &["llm"], |b| b.tasks_changed_for(["function"])));
        assert!(wakes(&bus, &["llm"], |b| b.tasks_changed_for(["llm"])));
        assert!(wakes(&bus, &["llm", "function"], |b| b
            .tasks_changed_for(["function"])));
        assert!(wakes(&bus, &["llm"], Bus::tasks_changed));
        assert!(!wakes(&bus, &["llm"], |_| {}));
    }

    #[test]
    fn a_commit_that_failed_is_not_taken_for_our_own() {
        let bus = Bus::default();
        let mark = bus.expect_commit(&events("r1", [3, 4]));
        drop(mark);
        assert!(
            !bus.is_own_commit("r1", 4),
            "another replica may commit these sequences"
        );
        let empty = bus.expect_commit(&[]);
        empty.keep();
    }
}
