//! Live changes to the inbox, for WatchInbox: every task change is published
//! here after it commits.

use tokio::sync::broadcast;

use orchestra_proto::v1::HumanTask;

/// How many changes a slow watcher may fall behind before it is resent the
/// whole open set instead.
const CAPACITY: usize = 256;

/// A broadcast of tasks as they now stand. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    sender: broadcast::Sender<HumanTask>,
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Inbox {
    /// Publishes a task's new state to every watcher (none is fine).
    pub fn publish(&self, task: HumanTask) {
        let _ = self.sender.send(task);
    }

    /// A receiver of every change published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HumanTask> {
        self.sender.subscribe()
    }
}
