//! Leases as executors hold them: the Lease stream that pushes tasks to an
//! executor while it has free slots, the executor's presence (seen by the
//! replica serving its stream), and the sweeps that end lost leases.
//!
//! A lease ends without a report in two ways, each followed by a retry:
//! - its deadline passed without a heartbeat: the executor is hung, so it is
//!   suspended and gets no new lease until it heartbeats or reconnects;
//! - its executor is gone: its stream closed, or no replica has seen it for
//!   [`LeaseSettings::absent_after`] (the process or the replica serving it
//!   died). Presence lives in the database, so a restarted process or any
//!   other replica learns of it without waiting out the lease's deadline.
//!
//! A database outage is a pause: leases are not ended until executors have
//! had [`LeaseSettings::settle_after_outage`] to heartbeat again.
//!
//! Nothing here polls while idle: a Lease stream waits for the queue's
//! wake-up, a timer to the next delayed task and the bus's safety sweep;
//! presence is written only while the executor holds leases (or is about
//! to take one); the sweeper runs while a lease is live and otherwise waits
//! for a grant or the safety sweep.
//!
//! [`LeaseSettings::absent_after`]: super::LeaseSettings::absent_after
//! [`LeaseSettings::settle_after_outage`]: super::LeaseSettings::settle_after_outage

use std::sync::atomic::Ordering;
use std::time::Duration;

use orchestra_db::db_run;
use orchestra_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Engine, in_run_tx, now};
use crate::error::Result;
use crate::storage::executors::ExecutorStore;
use crate::storage::models::{TaskRow, task_state};
use crate::storage::tasks::{TaskKey, TaskStore};

/// [`Engine::recovered_at`] while the database is away.
pub(super) const IN_OUTAGE: i64 = -1;

/// How often lost leases are looked for while some lease is live.
const LEASE_SWEEP: Duration = Duration::from_millis(250);

/// The shortest wait between two sweeps.
const MIN_SWEEP: Duration = Duration::from_millis(10);

/// An open Lease stream.
struct LeaseStream<'a> {
    executor_id: &'a str,
    /// Tells this stream from a newer one of the same executor.
    session_id: String,
    slots: i64,
    kinds: &'a [String],
    /// When its presence was last written; `None` until registered.
    seen: Option<Instant>,
}

/// What a Lease stream learns in one read.
struct Outlook {
    /// The executor let a lease expire and has not been heard from since.
    suspended: bool,
    /// Leases it holds.
    held: i64,
    /// When the next queued task of its kinds is due.
    next_due: Option<i64>,
}

/// What a Lease stream does next.
enum Step {
    /// Sends the executor the tasks it has just leased.
    Send(Vec<pb::Task>),
    /// Waits for a wake-up until then.
    WaitUntil(Instant),
}

/// The instant of an epoch time in micros (now, when past).
fn instant_at(micros: i64) -> Instant {
    Instant::now() + Duration::from_micros(u64::try_from(micros - now()).unwrap_or(0))
}

/// Why a lease ended without a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// Its deadline passed without a heartbeat.
    Expired,
    /// Its executor's stream closed or went unseen.
    ExecutorGone,
}

impl Engine {
    /// Opens an executor's Lease stream: tasks of the given kinds arrive on
    /// the receiver while the executor holds fewer than `slots` and is not
    /// suspended. The stream ends with an error when the database is away
    /// (the executor reconnects); when the executor closes it, its leases
    /// are released at once.
    pub fn lease_stream(
        &self,
        executor_id: String,
        slots: u32,
        kinds: Vec<String>,
    ) -> mpsc::Receiver<Result<pb::Task>> {
        let (sender, receiver) = mpsc::channel(slots.max(1) as usize);
        let engine = self.clone();
        tokio::spawn(async move {
            engine
                .serve_lease_stream(&executor_id, i64::from(slots), &kinds, sender)
                .await;
        });
        receiver
    }

    async fn serve_lease_stream(
        &self,
        executor_id: &str,
        slots: i64,
        kinds: &[String],
        sender: mpsc::Sender<Result<pb::Task>>,
    ) {
        let mut stream = LeaseStream {
            executor_id,
            session_id: uuid::Uuid::now_v7().to_string(),
            slots,
            kinds,
            seen: None,
        };
        let wakes = self.bus.tasks(kinds);
        let closed = self.bus.closed();
        tokio::pin!(closed);
        loop {
            let mut notified: Vec<_> = wakes.iter().map(|w| Box::pin(w.notified())).collect();
            for one in &mut notified {
                one.as_mut().enable();
            }
            let notified = futures::future::select_all(notified);
            tokio::pin!(notified);
            let until = match self.lease_step(&mut stream).await {
                Ok(Step::Send(tasks)) => {
                    for task in tasks {
                        if sender.send(Ok(task)).await.is_err() {
                            break;
                        }
                    }
                    if sender.is_closed() {
                        break;
                    }
                    continue;
                }
                Ok(Step::WaitUntil(until)) => until,
                Err(error) => {
                    if error.is_outage() {
                        self.recovered_at.store(IN_OUTAGE, Ordering::Relaxed);
                        tracing::info!(%error, executor_id, "lease stream paused: the database is away");
                    } else {
                        tracing::warn!(%error, executor_id, "lease stream failed");
                    }
                    // The executor reconnects; its leases stay while it does.
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                () = tokio::time::sleep_until(until) => {}
                () = sender.closed() => break,
                // The server is stopping: the executor will reconnect to
                // another replica or to this one restarted.
                () = &mut closed => return,
            }
        }
        // The executor closed its stream: release what it holds now.
        let session_id = &stream.session_id;
        let gone = db_run!(&self.db, |c| -> Result<usize> {
            Ok(c.forget_executor(executor_id, session_id).await?)
        });
        match gone {
            Ok(0) => {}
            Ok(_) => {
                if let Err(error) = self.release_absent().await {
                    tracing::warn!(%error, executor_id, "cannot release a closed stream's leases");
                }
            }
            Err(error) => tracing::warn!(%error, executor_id, "cannot mark an executor gone"),
        }
    }

    /// One look by a Lease stream: a task to send, or until when to wait
    /// for a wake-up. One read says whether the executor may lease and when
    /// the next task of its kinds is due; only a due task is leased.
    ///
    /// The executor's presence is written when its stream opens, and then
    /// only while it matters: every [`super::LeaseSettings::presence_interval`]
    /// while it holds leases (so no replica takes them for lost), and
    /// before it takes a lease after a quiet spell (so a new lease never
    /// belongs to an executor that looks absent). An idle executor's stream
    /// writes nothing.
    async fn lease_step(&self, stream: &mut LeaseStream<'_>) -> Result<Step> {
        let presence = self.leases.presence_interval();
        if stream.seen.is_none() {
            self.mark_present(stream.executor_id, &stream.session_id, true)
                .await?;
            stream.seen = Some(Instant::now());
        }
        let outlook = self.lease_outlook(stream.executor_id, stream.kinds).await?;
        let fresh =
            |stream: &LeaseStream<'_>| stream.seen.is_some_and(|at| at.elapsed() < presence);
        if outlook.held > 0 && !fresh(stream) {
            self.mark_present(stream.executor_id, &stream.session_id, false)
                .await?;
            stream.seen = Some(Instant::now());
        }
        let sweep = Instant::now() + self.bus.sweep_interval();
        let idle_until = match stream.seen {
            Some(seen) if outlook.held > 0 => sweep.min(seen + presence),
            _ => sweep,
        };
        if outlook.suspended || outlook.held >= stream.slots {
            return Ok(Step::WaitUntil(idle_until));
        }
        match outlook.next_due {
            Some(at) if at <= now() => {}
            Some(at) => return Ok(Step::WaitUntil(idle_until.min(instant_at(at)))),
            None => return Ok(Step::WaitUntil(idle_until)),
        }
        if !fresh(stream) {
            self.mark_present(stream.executor_id, &stream.session_id, false)
                .await?;
            stream.seen = Some(Instant::now());
        }
        let free = usize::try_from(stream.slots - outlook.held).unwrap_or(1);
        let tasks = self
            .lease_next(stream.executor_id, stream.kinds, free)
            .await?;
        if tasks.is_empty() {
            // Others took the due ones it tried: look again.
            return Ok(Step::WaitUntil(Instant::now()));
        }
        // The lease sweeper may be idle: a lease is live now.
        self.bus.leases_changed();
        Ok(Step::Send(tasks))
    }

    /// Records that this replica serves the executor's stream; the first
    /// time, registers the stream (lifting any suspension: it reconnected).
    async fn mark_present(&self, executor_id: &str, session_id: &str, first: bool) -> Result<()> {
        let at = now();
        let touched = db_run!(&self.db, |c| -> Result<usize> {
            if first {
                c.register_executor(executor_id, session_id, at).await?;
                return Ok(1);
            }
            Ok(c.touch_executor(executor_id, session_id, at).await?)
        })?;
        if touched == 0 {
            tracing::debug!(executor_id, "a newer stream of this executor took over");
        }
        if first {
            self.bus.tasks_changed();
        }
        Ok(())
    }

    /// What a Lease stream needs to know, in one read.
    async fn lease_outlook(&self, executor_id: &str, kinds: &[String]) -> Result<Outlook> {
        db_run!(&self.db, |c| -> Result<Outlook> {
            let (suspended, held, next_due) = c.lease_outlook(executor_id, kinds).await?;
            Ok(Outlook {
                suspended: suspended.unwrap_or(false),
                held,
                next_due,
            })
        })
    }

    /// Ends lost leases until the task is aborted. While a lease is live it
    /// looks at the earliest deadline and every [`LEASE_SWEEP`] (for
    /// executors gone unseen); while none is, only when one is granted
    /// (here, or in another replica as a notification tells) and at the
    /// bus's safety sweep, so an idle scheduler reads nothing.
    pub async fn sweep_leases(&self) {
        let granted = self.bus.leases();
        loop {
            let next = match self.expire_leases().await {
                Ok(Some(next)) => next,
                Ok(None) => {
                    tokio::select! {
                        // A lease just granted cannot be lost before a tick.
                        () = granted.notified() => tokio::time::sleep(LEASE_SWEEP).await,
                        () = tokio::time::sleep(self.bus.sweep_interval()) => {}
                    }
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "lease sweep failed");
                    now()
                }
            };
            let wait = Duration::from_micros(u64::try_from(next - now()).unwrap_or(0));
            tokio::time::sleep(wait.clamp(MIN_SWEEP, LEASE_SWEEP)).await;
        }
    }

    /// Ends every lost lease: past its deadline, or held by an executor that
    /// is gone. Each attempt is retried (see
    /// [`super::LeaseSettings::min_attempts_on_expiry`]) or its phase fails.
    /// Returns when to look again (epoch micros: the earliest live
    /// deadline), or `None` when no lease is live.
    ///
    /// A database outage pauses this: when the database comes back, every
    /// live lease gets [`super::LeaseSettings::settle_after_outage`] more
    /// (its executor could not heartbeat meanwhile), and no executor counts
    /// as gone until that much time has passed (its stream needs to
    /// reconnect), so the attempts the outage interrupted go on.
    pub async fn expire_leases(&self) -> Result<Option<i64>> {
        let at = now();
        let earliest = db_run!(&self.db, |c| -> Result<Option<i64>> {
            Ok(c.next_lease_deadline().await?)
        });
        let earliest = earliest.inspect_err(|error| {
            if error.is_outage() {
                self.recovered_at.store(IN_OUTAGE, Ordering::Relaxed);
            }
        })?;
        let settle = self.leases.settle_after_outage();
        let settle_micros = i64::try_from(settle.as_micros()).unwrap_or(i64::MAX / 2);
        match self.recovered_at.load(Ordering::Relaxed) {
            IN_OUTAGE => {
                let paused = db_run!(&self.db, |c| -> Result<usize> {
                    Ok(c.pause_leases(at + settle_micros).await?)
                })?;
                tracing::info!(
                    paused,
                    ?settle,
                    "the database is back; live leases extended"
                );
                self.recovered_at.store(at, Ordering::Relaxed);
                return Ok(earliest.map(|_| at + settle_micros));
            }
            recovered if recovered > 0 && at - recovered < settle_micros => {
                return Ok(earliest.map(|_| recovered + settle_micros));
            }
            _ => {}
        }
        let Some(earliest) = earliest else {
            return Ok(None);
        };
        let mut count = 0;
        if earliest < at {
            let expired = db_run!(&self.db, |c| -> Result<Vec<TaskRow>> {
                Ok(c.expired_leases(at, 64).await?)
            })?;
            for task in expired {
                count += self.end_lost_lease(task, Lost::Expired).await?;
            }
        }
        count += self.release_absent().await?;
        if count > 0 {
            self.bus.tasks_changed();
        }
        Ok(Some(earliest))
    }

    /// Releases the leases of executors no replica has seen lately.
    async fn release_absent(&self) -> Result<usize> {
        let absent = i64::try_from(self.leases.absent_after().as_micros()).unwrap_or(0);
        let seen_before = now() - absent;
        let tasks = db_run!(&self.db, |c| -> Result<Vec<TaskRow>> {
            Ok(c.leases_of_absent_executors(seen_before, 64).await?)
        })?;
        let mut count = 0;
        for task in tasks {
            count += self.end_lost_lease(task, Lost::ExecutorGone).await?;
        }
        if count > 0 {
            self.bus.tasks_changed();
        }
        Ok(count)
    }

    /// Ends one lease that was lost, if a heartbeat or a report has not won
    /// the race for the run's lock; 1 when it ended.
    async fn end_lost_lease(&self, task: TaskRow, lost: Lost) -> Result<usize> {
        let min_attempts = self.leases.min_attempts_on_expiry;
        let key = TaskKey {
            run_id: task.run_id.clone(),
            phase_id: task.phase_id.clone(),
            attempt: task.attempt,
        };
        let ended = in_run_tx!(self, &key.run_id, |c, tx| -> usize {
            let Some(current) = c.get_task(&key).await? else {
                return Ok(0);
            };
            // Re-read under the run lock: the lease may have moved on.
            if current.state != task_state::LEASED || current.lease_id != task.lease_id {
                return Ok(0);
            }
            if lost == Lost::Expired && current.lease_deadline >= now() {
                return Ok(0);
            }
            let executor = current.executor_id.unwrap_or_default();
            let reason = match lost {
                Lost::Expired => {
                    c.set_executor_suspended(&executor, true).await?;
                    format!("lease expired: executor {executor} stopped heartbeating")
                }
                Lost::ExecutorGone => format!("executor {executor} disconnected"),
            };
            tx.finish_task(&key);
            let index = tx.index(&key.phase_id)?;
            // An executor that vanished or hung is not the phase's fault.
            let max = i32::try_from(tx.spec(index)?.retry_policy().max_attempts)
                .unwrap_or(1)
                .max(min_attempts);
            Self::end_attempt(tx, index, &reason, key.attempt < max)?;
            Ok(1)
        });
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::LeaseSettings;

    fn settings(ttl: Duration) -> LeaseSettings {
        LeaseSettings {
            ttl,
            min_attempts_on_expiry: 3,
        }
    }

    #[test]
    fn a_gone_executor_is_noticed_within_a_heartbeat_interval_and_2_s() {
        let default = settings(Duration::from_secs(30));
        assert_eq!(default.absent_after(), Duration::from_secs(2));
        assert_eq!(default.presence_interval(), Duration::from_millis(500));
        assert_eq!(default.settle_after_outage(), Duration::from_secs(12));
        let short = settings(Duration::from_secs(3));
        assert_eq!(short.absent_after(), Duration::from_secs(1));
        assert!(short.presence_interval() * 3 < short.absent_after());
    }
}
