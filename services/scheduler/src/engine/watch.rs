//! A run's event stream: what a watcher missed, then each event as it is
//! committed, until the run finishes, the watcher leaves or the server
//! stops.

use orchestra_db::db_run;
use orchestra_model::RunStatus;
use orchestra_proto::v1 as pb;
use prost::Message;
use tokio::sync::mpsc;

use super::Engine;
use crate::convert;
use crate::error::{Error, Result};
use crate::storage::events::EventStore;
use crate::storage::models::EventRow;

/// How many events are read, and buffered for a watcher, at a time.
const BATCH: usize = 256;

impl Engine {
    /// Streams a run's events after `after_seq`. NOT_FOUND at once for an
    /// unknown run rather than an empty stream; a run that has already
    /// ended streams what the watcher missed, then ends. An error ends the
    /// stream: UNAVAILABLE when the server is stopping (watch again from
    /// the last sequence seen).
    pub async fn watch_run(
        &self,
        run_id: &str,
        after_seq: i64,
    ) -> Result<mpsc::Receiver<Result<pb::RunEvent>>> {
        let (run, _) = self.get_run(run_id).await?;
        let already_finished = convert::stored_status(&run)?.is_finished();
        let (sender, receiver) = mpsc::channel(BATCH);
        let engine = self.clone();
        let run_id = run_id.to_owned();
        tokio::spawn(async move {
            engine
                .serve_watch(&run_id, after_seq, already_finished, sender)
                .await;
        });
        Ok(receiver)
    }

    async fn serve_watch(
        &self,
        run_id: &str,
        mut after: i64,
        mut finished: bool,
        sender: mpsc::Sender<Result<pb::RunEvent>>,
    ) {
        let mut wake = self.bus.watch_events();
        let closed = self.bus.closed();
        tokio::pin!(closed);
        loop {
            // Subscribe-then-read: a commit after this read still wakes us.
            wake.mark_unchanged();
            let rows = match self.events_after(run_id, after, BATCH as i64).await {
                Ok(rows) => rows,
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            };
            let read = rows.len();
            for row in rows {
                let event = match pb::RunEvent::decode(row.body.as_slice()) {
                    Ok(event) => event,
                    Err(e) => {
                        let error = Error::Corrupt(format!("event {}: {e}", row.seq));
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                };
                after = row.seq;
                finished |= ends_watch(&event);
                if sender.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if read > 0 {
                continue;
            }
            if finished {
                return;
            }
            tokio::select! {
                _ = wake.changed() => {}
                () = tokio::time::sleep(self.bus.poll_interval()) => {}
                () = sender.closed() => return,
                () = &mut closed => {
                    let stopping = Error::Unavailable(
                        "the scheduler is stopping; watch again from your last sequence".into(),
                    );
                    let _ = sender.send(Err(stopping)).await;
                    return;
                }
            }
        }
    }

    /// A run's events after a sequence.
    async fn events_after(&self, run_id: &str, after: i64, limit: i64) -> Result<Vec<EventRow>> {
        db_run!(&self.db, |c| -> Result<Vec<EventRow>> {
            Ok(c.events_after(run_id, after, limit).await?)
        })
    }
}

/// Whether an event ends a run's watch stream.
fn ends_watch(event: &pb::RunEvent) -> bool {
    match &event.body {
        Some(pb::run_event::Body::RunStatusChanged(change)) => pb::RunStatus::try_from(change.to)
            .ok()
            .and_then(convert::model_run_status)
            .is_some_and(RunStatus::is_finished),
        _ => false,
    }
}
