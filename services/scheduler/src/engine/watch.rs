//! A run's event stream: what a watcher missed, read from the log, then
//! each event as this replica hands it over after its commit, until the run
//! finishes, the watcher leaves or the server stops.
//!
//! Every event is sent once and in order, with no gap: the watcher joins
//! the run's channel before it reads the log, skips what it already sent,
//! and reads from the log whatever the channel cannot give it (a gap in the
//! sequence, when concurrent commits publish out of order or another
//! replica's commit is not heard yet; or events dropped because it fell
//! behind). Commits of other replicas reach the channel through
//! [`Engine::publish_changes`], which reads each commit once per replica.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use orchestra_db::{Db, db_run};
use orchestra_model::RunStatus;
use orchestra_proto::v1 as pb;
use prost::Message;
use tokio::sync::broadcast::error::RecvError;

use super::Engine;
use crate::bus::{Gap, RunEvents};
use crate::convert;
use crate::error::{Error, Result};
use crate::storage::changes::Change;
use crate::storage::events::EventStore;
use crate::storage::models::EventRow;
use crate::storage::runs::RunStore;

/// How many events one read of the log takes.
const BATCH: i64 = 256;

/// How long a run's channel waits for an event published late (a
/// concurrent commit's, usually microseconds behind; another replica's,
/// heard of within milliseconds) before the gap is read from the log.
const GAP_GRACE: Duration = Duration::from_millis(20);

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
    ) -> Result<impl Stream<Item = Result<pb::RunEvent>> + Send + 'static> {
        // Join first: whatever commits after the log is read still arrives.
        let events = self.bus.subscribe(run_id);
        // The run and the first of what the watcher missed, in one read, so
        // that opening a stream costs one round of queries.
        let (run, rows) = db_run!(&self.db, |c| -> Result<_> {
            let Some(run) = c.get_run(run_id).await? else {
                return Err(Error::NotFound(format!("run {run_id} does not exist")));
            };
            let rows = c.events_after(run_id, after_seq, BATCH).await?;
            Ok((run, rows))
        })?;
        let missed = decode(run_id, rows)?;
        events.seen_committed(
            missed
                .last()
                .map_or(run.last_seq, |e| e.seq.max(run.last_seq)),
        );
        let watch = Watch {
            db: self.db.clone(),
            run_id: run_id.to_owned(),
            after: after_seq,
            finished: convert::stored_status(&run)?.is_finished(),
            catch_up: if (missed.len() as i64) < BATCH {
                CatchUp::Done
            } else {
                CatchUp::ToEnd
            },
            pending: missed.into(),
            ended: false,
            events,
            closed: Box::pin(self.bus.closed()),
        };
        Ok(futures::stream::unfold(watch, |mut watch| async move {
            let item = watch.next().await?;
            Some((item, watch))
        }))
    }

    /// Hands other replicas' commits to this replica's watchers: for each
    /// watched run, reads the events it has not seen yet, once, however
    /// many watch it. `None` (a notification this version cannot read, or
    /// notifications missed while reconnecting) looks at every watched run.
    pub async fn publish_changes(&self, changes: Option<Vec<Change>>) -> Result<()> {
        let reads: Vec<(String, i64, Option<i64>)> = match changes {
            None => self
                .bus
                .watched_runs()
                .into_iter()
                .map(|(run_id, known)| (run_id, known, None))
                .collect(),
            Some(changes) => changes
                .into_iter()
                .filter_map(|change| {
                    let (first, last) = change.events?;
                    let known = self.bus.known_seq(&change.run_id)?;
                    // Before `first`: earlier commits, read when heard of
                    // or by a watcher that sees the gap.
                    let after = known.max(first - 1);
                    (after < last).then_some((change.run_id, after, Some(last)))
                })
                .collect(),
        };
        for (run_id, mut after, last) in reads {
            loop {
                let limit = last.map_or(BATCH, |last| (last - after).min(BATCH));
                let events = read_events(&self.db, &run_id, after, limit).await?;
                let read = events.len() as i64;
                let Some(newest) = events.last().map(|e| e.seq) else {
                    break;
                };
                after = newest;
                self.fill_later(self.bus.publish(events));
                if read < limit || last.is_some_and(|last| after >= last) {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Engine {
    /// Fills a gap in a run's channel (see [`crate::bus::Gap`]) unless the
    /// missing events are published within [`GAP_GRACE`]: one read of the
    /// log for this replica, rather than one per watcher.
    pub(super) fn fill_later(&self, gap: Option<Gap>) {
        if let Some(Gap { run_id }) = gap {
            let engine = self.clone();
            tokio::spawn(async move { engine.fill_gap(&run_id).await });
        }
    }

    async fn fill_gap(&self, run_id: &str) {
        tokio::time::sleep(GAP_GRACE).await;
        while let Some((first, last)) = self.bus.gap(run_id) {
            match read_events(&self.db, run_id, first - 1, (last - first + 1).min(BATCH)).await {
                // Events that fill a gap open none.
                Ok(events) if !events.is_empty() => drop(self.bus.publish(events)),
                outcome => {
                    if let Err(error) = outcome {
                        tracing::warn!(%error, run_id, "cannot read a gap in the run's events");
                    }
                    // Its watchers read it themselves.
                    self.bus.release(run_id);
                    return;
                }
            }
        }
    }
}

/// What the watcher still has to read from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CatchUp {
    /// Nothing: the channel has the rest.
    Done,
    /// Events up to this sequence (a gap the channel skipped over).
    Through(i64),
    /// Everything committed (the replay at the start, or after falling
    /// behind the channel).
    ToEnd,
}

/// One watcher's state between the events it sends.
struct Watch {
    db: Db,
    run_id: String,
    /// The last sequence sent.
    after: i64,
    /// The run has ended: stop once nothing is left to send.
    finished: bool,
    catch_up: CatchUp,
    /// Events read or received, in order, not sent yet.
    pending: VecDeque<pb::RunEvent>,
    /// An error was sent: nothing follows.
    ended: bool,
    events: RunEvents,
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Watch {
    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Result<pb::RunEvent>> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                if event.seq <= self.after {
                    continue;
                }
                self.after = event.seq;
                self.finished |= ends_watch(&event);
                return Some(Ok(event));
            }
            if self.catch_up != CatchUp::Done {
                if let Err(error) = self.read_log().await {
                    self.ended = true;
                    return Some(Err(error));
                }
                continue;
            }
            if self.finished {
                return None;
            }
            tokio::select! {
                // An event first: the stop is looked at only while waiting.
                biased;
                received = self.events.recv() => match received {
                    Ok(event) => self.receive(&event),
                    Err(RecvError::Lagged(_)) => self.catch_up = CatchUp::ToEnd,
                    // The bus outlives every watcher; only a stop drops it.
                    Err(RecvError::Closed) => return Some(Err(self.stop())),
                },
                () = &mut self.closed => return Some(Err(self.stop())),
            }
        }
    }

    /// Takes an event from the channel: sends it next, skips it when sent
    /// already, or reads the gap before it from the log.
    fn receive(&mut self, event: &Arc<pb::RunEvent>) {
        if event.seq <= self.after {
            return;
        }
        if event.seq == self.after + 1 {
            self.pending.push_back(pb::RunEvent::clone(event));
        } else {
            // Committed, and so is everything before it: read them all.
            self.catch_up = CatchUp::Through(event.seq);
        }
    }

    /// Reads the next batch the watcher needs from the log.
    async fn read_log(&mut self) -> Result<()> {
        let limit = match self.catch_up {
            CatchUp::Through(seq) => (seq - self.after).clamp(1, BATCH),
            _ => BATCH,
        };
        let events = read_events(&self.db, &self.run_id, self.after, limit).await?;
        let newest = events.last().map_or(self.after, |e| e.seq);
        let complete = match self.catch_up {
            CatchUp::Through(seq) => newest >= seq || (events.len() as i64) < limit,
            _ => (events.len() as i64) < limit,
        };
        if complete {
            self.catch_up = CatchUp::Done;
        }
        self.events.seen_committed(newest);
        self.pending.extend(events);
        Ok(())
    }

    fn stop(&mut self) -> Error {
        self.ended = true;
        Error::Unavailable("the scheduler is stopping; watch again from your last sequence".into())
    }
}

/// A run's events after a sequence, decoded.
async fn read_events(db: &Db, run_id: &str, after: i64, limit: i64) -> Result<Vec<pb::RunEvent>> {
    let rows = db_run!(db, |c| -> Result<_> {
        Ok(c.events_after(run_id, after, limit).await?)
    })?;
    decode(run_id, rows)
}

/// Decodes stored events.
fn decode(run_id: &str, rows: Vec<EventRow>) -> Result<Vec<pb::RunEvent>> {
    rows.into_iter()
        .map(|row| {
            pb::RunEvent::decode(row.body.as_slice())
                .map_err(|e| Error::Corrupt(format!("event {} of run {run_id}: {e}", row.seq)))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use futures::StreamExt;
    use orchestra_db::backend_tests;
    use orchestra_db::testing::TestDb;
    use orchestra_kit::limits::MessageLimit;
    use orchestra_model::{Catalog, Format};
    use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
    use tonic::transport::Channel;

    use super::*;
    use crate::bus::Bus;
    use crate::engine::{LeaseSettings, SourceIn, StartRun};
    use crate::storage::tasks::TaskKey;

    const TEMPLATE: &str =
        "name: watched\nphases:\n  - { id: only, kind: function, function: json.merge }\n";

    /// An engine over `db` with its own bus, as one replica has.
    fn replica(db: &Db, bus: Bus) -> Engine {
        // Nothing here stores inputs or outputs: the artifact store is never called.
        let artifacts =
            ArtifactServiceClient::new(Channel::from_static("http://127.0.0.1:9").connect_lazy());
        Engine::new(
            db.clone(),
            bus,
            Catalog::builtin(),
            LeaseSettings {
                ttl: Duration::from_secs(30),
                min_attempts_on_expiry: 3,
            },
            artifacts,
            MessageLimit::new(1 << 20, "MAX_MESSAGE_BYTES"),
        )
    }

    async fn next_seqs(
        stream: &mut (impl Stream<Item = Result<pb::RunEvent>> + Unpin),
        count: usize,
    ) -> Vec<i64> {
        let mut seqs = Vec::new();
        for _ in 0..count {
            let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("an event arrives")
                .expect("the stream goes on")
                .expect("an event");
            seqs.push(event.seq);
        }
        seqs
    }

    /// A gap in the channel (a commit of another replica not heard of) is
    /// filled from the log once for the replica, and a watcher fallen
    /// behind the channel's buffer reads from the log what it missed: every
    /// event arrives once, in order.
    async fn a_watcher_reads_from_the_log_what_its_channel_misses(test_db: &TestDb) {
        let db = crate::storage::open(&test_db.url_for("scheduler"))
            .await
            .expect("open");
        let here = replica(&db, Bus::with_run_capacity(Duration::from_secs(60), 4));
        let elsewhere = replica(&db, Bus::default());
        here.create_template(&SourceIn {
            source: TEMPLATE.into(),
            format: Format::Yaml,
            files: BTreeMap::new(),
        })
        .await
        .expect("template");
        let run = here
            .start_run(StartRun {
                template_name: "watched".into(),
                template_version: 0,
                inputs: Default::default(),
                input_refs: Default::default(),
                seed: Some(1),
                auto_advance: true,
                request_id: None,
            })
            .await
            .expect("run");
        let task = here
            .lease_next("x", &["function".to_owned()], 1)
            .await
            .expect("lease")
            .pop()
            .expect("a task");
        let key = TaskKey {
            run_id: run.id.clone(),
            phase_id: "only".into(),
            attempt: 1,
        };
        let progress = async |engine: &Engine, text: &str| {
            engine
                .progress(&key, &task.lease_id, text.to_owned())
                .await
                .expect("progress");
        };
        let mut stream = std::pin::pin!(here.watch_run(&run.id, 0).await.expect("watch"));
        let (last, _) = here.get_run(&run.id).await.expect("run");
        let mut seqs = next_seqs(&mut stream, last.last_seq as usize).await;

        // A commit this replica does not hear of, then one it does: the
        // channel holds the second back and fills the gap with one read.
        let mut channel = here.bus.subscribe(&run.id);
        progress(&elsewhere, "unheard").await;
        progress(&here, "heard").await;
        let next = last.last_seq + 1;
        for seq in [next, next + 1] {
            let event = tokio::time::timeout(Duration::from_secs(10), channel.recv())
                .await
                .expect("the gap is filled")
                .expect("an event");
            assert_eq!(event.seq, seq, "passed on in order");
        }
        drop(channel);
        seqs.extend(next_seqs(&mut stream, 2).await);

        // More events than the channel holds while the watcher is not reading.
        for i in 0..10 {
            progress(&here, &format!("burst {i}")).await;
        }
        seqs.extend(next_seqs(&mut stream, 10).await);

        here.complete(&key, &task.lease_id, None, 0)
            .await
            .expect("complete");
        while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the stream ends")
        {
            seqs.push(event.expect("an event").seq);
        }
        let (done, _) = here.get_run(&run.id).await.expect("run");
        assert_eq!(seqs, (1..=done.last_seq).collect::<Vec<_>>());
        assert!(here.bus.watched_runs().is_empty(), "the channel is gone");
    }

    backend_tests!(a_watcher_reads_from_the_log_what_its_channel_misses);
}
