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
//! [`LeaseSettings::absent_after`]: super::LeaseSettings::absent_after
//! [`LeaseSettings::settle_after_outage`]: super::LeaseSettings::settle_after_outage

use std::sync::atomic::Ordering;

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
        let session_id = uuid::Uuid::now_v7().to_string();
        let wake = self.bus.tasks();
        let closed = self.bus.closed();
        tokio::pin!(closed);
        let presence = self.leases.presence_interval();
        let pause = presence.min(self.bus.poll_interval());
        let mut seen: Option<Instant> = None;
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let step = async {
                if seen.is_none_or(|at| at.elapsed() >= presence) {
                    self.mark_present(executor_id, &session_id, seen.is_none())
                        .await?;
                    seen = Some(Instant::now());
                }
                if !self.may_lease(executor_id, slots).await? {
                    return Ok(None);
                }
                self.lease_next(executor_id, kinds).await
            };
            match step.await {
                Ok(Some(task)) => {
                    if sender.send(Ok(task)).await.is_err() {
                        break;
                    }
                    continue;
                }
                Ok(None) => {}
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
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(pause) => {}
                () = sender.closed() => break,
                // The server is stopping: the executor will reconnect to
                // another replica or to this one restarted.
                () = &mut closed => return,
            }
        }
        // The executor closed its stream: release what it holds now.
        let gone = db_run!(&self.db, |c| -> Result<usize> {
            Ok(c.forget_executor(executor_id, &session_id).await?)
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

    /// Says whether the executor may take one more task: it has a free slot
    /// and is not suspended.
    async fn may_lease(&self, executor_id: &str, slots: i64) -> Result<bool> {
        db_run!(&self.db, |c| -> Result<bool> {
            let suspended = c
                .get_executor(executor_id)
                .await?
                .is_some_and(|e| e.suspended);
            Ok(!suspended && c.count_leased(executor_id).await? < slots)
        })
    }

    /// Ends every lost lease: past its deadline, or held by an executor that
    /// is gone. Each attempt is retried (see
    /// [`super::LeaseSettings::min_attempts_on_expiry`]) or its phase fails.
    /// Returns how many ended.
    ///
    /// A database outage pauses this: when the database comes back, every
    /// live lease gets [`super::LeaseSettings::settle_after_outage`] more
    /// (its executor could not heartbeat meanwhile), and no executor counts
    /// as gone until that much time has passed (its stream needs to
    /// reconnect), so the attempts the outage interrupted go on.
    pub async fn expire_leases(&self) -> Result<usize> {
        let at = now();
        let expired = db_run!(&self.db, |c| -> Result<Vec<TaskRow>> {
            Ok(c.expired_leases(at, 64).await?)
        });
        let expired = expired.inspect_err(|error| {
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
                return Ok(0);
            }
            recovered if recovered > 0 && at - recovered < settle_micros => return Ok(0),
            _ => {}
        }
        let mut count = 0;
        for task in expired {
            count += self.end_lost_lease(task, Lost::Expired).await?;
        }
        count += self.release_absent().await?;
        if count > 0 {
            self.bus.tasks_changed();
        }
        Ok(count)
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
            c.set_task_state(&key, task_state::DONE).await?;
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
