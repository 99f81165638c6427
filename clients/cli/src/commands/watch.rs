//! `orchestra run watch`: a run's snapshot, then its events live until it
//! ends; and `orchestra run events`: the log replayed from its start, with
//! how long each phase took.
//!
//! The snapshot's `seq` is where the watch starts, and every event's `seq`
//! is remembered, so when the stream drops (a server restart, say) the
//! watch reconnects from the last event received: nothing is printed twice
//! and nothing is missed. [`Transcript`] turns events into text and is pure,
//! so its output is tested without a server.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::Duration;

use orchestra_proto::v1 as pb;
use orchestra_proto::v1::run_event::Body;
use tonic::Code;

use crate::cli::OutputFormat;
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::outln;
use crate::output::{self, write_out};

/// How long the watch keeps reconnecting without receiving anything.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);
/// The first pause before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Follows a run until it ends. The exit code is success only when the run
/// completed.
pub async fn watch(
    connection: &Connection,
    format: OutputFormat,
    run_id: &str,
) -> Result<ExitCode> {
    let snapshot = snapshot_with_patience(connection, run_id).await?;
    let run = snapshot.run.clone().ok_or(Error::Incomplete("run"))?;
    let mut transcript = Transcript::new(&snapshot);
    match format {
        OutputFormat::Json => output::print_json_line(&snapshot)?,
        OutputFormat::Table => {
            outln!(
                "run {}  {} version {}  {}",
                run.id,
                run.template_name,
                run.template_version,
                output::run_status(run.status)
            )?;
            outln!("{}", super::run::phases_table(&snapshot.phases))?;
            write_out(&open_tasks(&snapshot.phases))?;
            write_out(&super::run::ready_lines(&run, &snapshot.phases))?;
        }
    }
    if is_finished(run.status) {
        transcript.ended = Some((
            run.status,
            orchestra_kit::time::micros(run.updated_at.as_ref()),
        ));
    } else {
        follow(connection, format, run_id, &mut transcript, None).await?;
    }
    let (status, _) = transcript.ended.unwrap_or((run.status, 0));
    if format == OutputFormat::Table {
        write_out(&transcript.summary())?;
    }
    Ok(if status == pb::RunStatus::Completed as i32 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The run's snapshot, retried with backoff while the server is unreachable
/// (a restart), so a watch started at the wrong moment still starts.
async fn snapshot_with_patience(
    connection: &Connection,
    run_id: &str,
) -> Result<pb::GetRunResponse> {
    let started = tokio::time::Instant::now();
    let mut backoff = FIRST_BACKOFF;
    loop {
        match super::run::get(connection, run_id).await {
            Err(Error::Grpc(status))
                if !is_fatal(status.code()) && started.elapsed() < GIVE_UP_AFTER =>
            {
                eprintln!("reconnecting… ({})", status.message());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            other => return other,
        }
    }
}

/// The run's event log from its first event: up to the snapshot taken
/// first, or with `follow` until the run ends. Table output ends with how
/// long each phase took; JSON output is one event per line.
pub async fn events(
    connection: &Connection,
    format: OutputFormat,
    run_id: &str,
    follow_on: bool,
) -> Result<()> {
    let snapshot = super::run::get(connection, run_id).await?;
    let run = snapshot.run.clone().ok_or(Error::Incomplete("run"))?;
    let mut transcript = Transcript::replay(&snapshot);
    if format == OutputFormat::Table {
        outln!(
            "run {}  {} version {}  created {}",
            run.id,
            run.template_name,
            run.template_version,
            output::when(run.created_at.as_ref())
        )?;
    }
    if follow_on {
        follow(connection, format, run_id, &mut transcript, None).await?;
    } else if snapshot.seq > 0 {
        follow(
            connection,
            format,
            run_id,
            &mut transcript,
            Some(snapshot.seq),
        )
        .await?;
    }
    if format == OutputFormat::Table {
        outln!(
            "{}",
            transcript.durations_table(orchestra_kit::time::now_micros())
        )?;
        if transcript.ended.is_some() {
            write_out(&transcript.summary())?;
        }
    }
    Ok(())
}

/// Streams events into the transcript until the run ends (or, given
/// `until`, until that sequence), reconnecting with backoff from the last
/// sequence received whenever the stream drops.
async fn follow(
    connection: &Connection,
    format: OutputFormat,
    run_id: &str,
    transcript: &mut Transcript,
    until: Option<i64>,
) -> Result<()> {
    let mut backoff = FIRST_BACKOFF;
    let mut last_progress = tokio::time::Instant::now();
    loop {
        let dropped = match stream_once(connection, format, run_id, transcript, until).await {
            Ok(true) => return Ok(()),
            Ok(false) => None,
            Err(Error::Grpc(status)) if is_fatal(status.code()) => return Err(status.into()),
            Err(Error::Grpc(status)) => Some(status),
            Err(other) => return Err(other),
        };
        if transcript.received_since_connect {
            backoff = FIRST_BACKOFF;
            last_progress = tokio::time::Instant::now();
        }
        if last_progress.elapsed() > GIVE_UP_AFTER {
            return Err(dropped
                .unwrap_or_else(|| tonic::Status::unavailable("the watch stream keeps ending"))
                .into());
        }
        let notice = format!("{}reconnecting…\n", transcript.close_delta());
        match format {
            OutputFormat::Table => write_out(&notice)?,
            OutputFormat::Json => eprint!("{notice}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One WatchRun call from the last sequence seen. True when the run ended
/// (or the sequence `until` was reached); false when the stream ended
/// before that.
async fn stream_once(
    connection: &Connection,
    format: OutputFormat,
    run_id: &str,
    transcript: &mut Transcript,
    until: Option<i64>,
) -> Result<bool> {
    if until.is_some_and(|until| transcript.last_seq >= until) {
        return Ok(true);
    }
    transcript.received_since_connect = false;
    let mut stream = connection
        .runs()
        .watch_run(pb::WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq: transcript.last_seq,
        })
        .await?
        .into_inner();
    while let Some(message) = stream.message().await? {
        let Some(event) = message.event else { continue };
        if event.seq <= transcript.last_seq {
            continue;
        }
        transcript.received_since_connect = true;
        let text = transcript.event(&event);
        let text = if transcript.numbered {
            number_lines(event.seq, &text)
        } else {
            text
        };
        match format {
            OutputFormat::Table => write_out(&text)?,
            OutputFormat::Json => output::print_json_line(&event)?,
        }
        if transcript.ended.is_some() || until.is_some_and(|until| event.seq >= until) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Codes a reconnection cannot cure.
fn is_fatal(code: Code) -> bool {
    matches!(
        code,
        Code::NotFound
            | Code::InvalidArgument
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::Unimplemented
    )
}

/// Whether a run status is final.
fn is_finished(status: i32) -> bool {
    [
        pb::RunStatus::Completed,
        pb::RunStatus::Failed,
        pb::RunStatus::Cancelled,
    ]
    .iter()
    .any(|s| *s as i32 == status)
}

/// What a human phase waits for, and the command that gives it.
fn waiting(phase_id: &str, kind: i32, task_id: &str) -> String {
    if kind == pb::PhaseKind::HumanReview as i32 {
        format!("{phase_id} waits for a decision: orchestra review show {task_id}")
    } else {
        format!("{phase_id} waits for input: orchestra input submit {task_id} FILE")
    }
}

/// The human tasks already open in a snapshot, one `waiting` line each.
fn open_tasks(phases: &[pb::Phase]) -> String {
    phases
        .iter()
        .filter(|p| {
            !p.human_task_id.is_empty()
                && (p.state == pb::PhaseState::WaitingForHuman as i32
                    || p.state == pb::PhaseState::ReadyForReview as i32)
        })
        .map(|p| format!("{}\n", waiting(&p.id, p.kind, &p.human_task_id)))
        .collect()
}

/// Each line of an event's text prefixed with the event's sequence.
fn number_lines(seq: i64, text: &str) -> String {
    text.lines()
        .map(|line| format!("{seq:>4}  {line}\n"))
        .collect()
}

/// Whether a phase in this state is being worked on, by an executor or a
/// person: the time it spends so is the time it took.
fn is_busy(state: i32) -> bool {
    [
        pb::PhaseState::Running,
        pb::PhaseState::WaitingForHuman,
        pb::PhaseState::ReadyForReview,
    ]
    .iter()
    .any(|s| *s as i32 == state)
}

/// How long one phase took over the events seen.
#[derive(Debug, Default, Clone)]
struct PhaseTime {
    /// The latest state.
    state: i32,
    /// The highest attempt seen.
    attempts: i32,
    /// The time spent busy in finished stretches, in microseconds.
    busy_micros: i64,
    /// When the current busy stretch began, if the phase is busy now.
    busy_since: Option<i64>,
    /// The time the latest attempt spent busy (its stretches only).
    last_attempt_micros: i64,
}

/// What a watch has seen, and the text each new event adds.
#[derive(Debug)]
pub struct Transcript {
    run_id: String,
    created_micros: i64,
    /// The sequence of the last event received: where a reconnection resumes.
    pub last_seq: i64,
    /// The final status and when it was reached, once the run ended.
    pub ended: Option<(i32, i64)>,
    received_since_connect: bool,
    kinds: HashMap<String, i32>,
    /// The provider label of each llm phase ("offline (…)" for the offline one).
    providers: HashMap<String, String>,
    /// When each phase's current attempt started: `(attempt, micros)`.
    started: HashMap<String, (i32, i64)>,
    /// The phase whose streamed output is on the current line, and whether
    /// the line is still empty after its prefix was due.
    delta: Option<(String, bool)>,
    width: usize,
    /// Whether READY phases wait for `orchestra run continue`.
    manual: bool,
    /// The run's phases in the template's order.
    order: Vec<String>,
    /// How long each phase took, by phase id.
    times: BTreeMap<String, PhaseTime>,
    /// Whether streamed model output is left out (an event log).
    quiet_deltas: bool,
    /// Whether each line starts with its event's sequence (an event log).
    pub numbered: bool,
}

impl Transcript {
    /// Starts from a snapshot: its sequence, its phases' kinds and start times.
    pub fn new(snapshot: &pb::GetRunResponse) -> Transcript {
        let run = snapshot.run.clone().unwrap_or_default();
        let started = snapshot
            .phases
            .iter()
            .filter(|p| p.started_at.is_some())
            .map(|p| {
                let at = orchestra_kit::time::micros(p.started_at.as_ref());
                (p.id.clone(), (p.attempt, at))
            })
            .collect();
        let providers = snapshot
            .phases
            .iter()
            .filter(|p| !p.provider_label.is_empty())
            .map(|p| (p.id.clone(), p.provider_label.clone()))
            .collect();
        Transcript {
            providers,
            run_id: run.id,
            created_micros: orchestra_kit::time::micros(run.created_at.as_ref()),
            last_seq: snapshot.seq,
            ended: None,
            received_since_connect: false,
            kinds: snapshot
                .phases
                .iter()
                .map(|p| (p.id.clone(), p.kind))
                .collect(),
            started,
            delta: None,
            width: snapshot
                .phases
                .iter()
                .map(|p| p.id.len())
                .max()
                .unwrap_or(0)
                .max(12),
            manual: !run.auto_advance,
            order: snapshot.phases.iter().map(|p| p.id.clone()).collect(),
            times: BTreeMap::new(),
            quiet_deltas: false,
            numbered: false,
        }
    }

    /// Starts before the run's first event, to replay its whole log as an
    /// event log: numbered lines, no streamed model output.
    pub fn replay(snapshot: &pb::GetRunResponse) -> Transcript {
        let mut transcript = Transcript::new(snapshot);
        transcript.last_seq = 0;
        transcript.started.clear();
        transcript.quiet_deltas = true;
        transcript.numbered = true;
        transcript
    }

    /// The text one event adds, and the state it updates.
    pub fn event(&mut self, event: &pb::RunEvent) -> String {
        self.last_seq = self.last_seq.max(event.seq);
        let at = orchestra_kit::time::micros(event.time.as_ref());
        let clock = output::clock(event.time.as_ref());
        if let Some(Body::PhaseOutputDelta(delta)) = &event.body {
            if self.quiet_deltas {
                return String::new();
            }
            return self.delta(delta);
        }
        let mut text = self.close_delta();
        let width = self.width;
        let line = match &event.body {
            Some(Body::RunStarted(started)) => format!(
                "{clock}  run started: {} version {}, seed {}",
                started.template_name, started.template_version, started.seed
            ),
            Some(Body::RunStatusChanged(change)) => {
                if is_finished(change.to) {
                    self.ended = Some((change.to, at));
                }
                format!("{clock}  run is {}", output::run_status(change.to))
            }
            Some(Body::PhaseStateChanged(change)) => {
                self.time(at, change);
                let mut line = self.state_line(&clock, at, change);
                if change.to == pb::PhaseState::Running as i32
                    && let Some(provider) = self.providers.get(&change.phase_id)
                {
                    line.push_str(&format!("  [{provider}]"));
                }
                line
            }
            Some(Body::ArtifactAccepted(accepted)) => {
                let artifact = accepted.artifact.as_ref();
                format!(
                    "{clock}  {:<width$}  output {}",
                    accepted.phase_id,
                    output::artifact_ref(artifact)
                )
            }
            Some(Body::HumanTaskOpened(opened)) => {
                let kind = self
                    .kinds
                    .get(&opened.phase_id)
                    .copied()
                    .unwrap_or_default();
                format!(
                    "{clock}  {}",
                    waiting(&opened.phase_id, kind, &opened.task_id)
                )
            }
            Some(Body::PhaseOutputDelta(_)) | None => return text,
        };
        text.push_str(&line);
        text.push('\n');
        text
    }

    /// `HH:MM:SS  variant_a     RUNNING            attempt 1   +1.2s  reason`.
    fn state_line(&mut self, clock: &str, at: i64, change: &pb::PhaseStateChanged) -> String {
        let to = change.to;
        let begins =
            to == pb::PhaseState::Running as i32 || to == pb::PhaseState::WaitingForHuman as i32;
        if begins {
            self.started
                .insert(change.phase_id.clone(), (change.attempt, at));
        }
        let elapsed = match self.started.get(&change.phase_id) {
            Some((attempt, since)) if *attempt == change.attempt => {
                format!("+{}", output::duration(at - since))
            }
            _ => String::new(),
        };
        let width = self.width;
        // Phases that have not begun an attempt yet (READY) carry attempt 0.
        let attempt = if change.attempt > 0 {
            format!("attempt {:<3}", change.attempt)
        } else {
            String::new()
        };
        let mut line = format!(
            "{clock}  {:<width$}  {:<17}  {attempt:<11} {elapsed}",
            change.phase_id,
            output::phase_state(to),
        );
        if !change.reason.is_empty() {
            line.push_str("  ");
            line.push_str(&change.reason);
        }
        if let Some(actor) = change.actor.as_ref().filter(|a| !a.id.is_empty()) {
            line.push_str(&format!("  (by {})", actor.id));
        }
        if self.manual && to == pb::PhaseState::Ready as i32 {
            line.push_str(&format!(
                "  move it on with: orchestra run continue {} {}",
                self.run_id, change.phase_id
            ));
        }
        line.trim_end().to_owned()
    }

    /// Adds a state change to its phase's time: a busy stretch begins when
    /// the phase enters a busy state and ends when it leaves them.
    fn time(&mut self, at: i64, change: &pb::PhaseStateChanged) {
        let time = self.times.entry(change.phase_id.clone()).or_default();
        if change.attempt > time.attempts {
            time.attempts = change.attempt;
            time.last_attempt_micros = 0;
        }
        time.state = change.to;
        match (time.busy_since, is_busy(change.to)) {
            (None, true) => time.busy_since = Some(at),
            (Some(since), false) => {
                time.busy_micros += at - since;
                time.last_attempt_micros += at - since;
                time.busy_since = None;
            }
            _ => {}
        }
    }

    /// How long each phase took, in the template's order: its state, its
    /// attempts, the latest attempt's time and the time of every attempt
    /// together (`+` while it is still going, counted up to `now`).
    pub fn durations_table(&self, now: i64) -> comfy_table::Table {
        let mut table =
            output::table(["phase", "state", "attempts", "last attempt", "all attempts"]);
        let unlisted = self.times.keys().filter(|id| !self.order.contains(id));
        let phases = self.order.iter().chain(unlisted);
        for (phase, time) in phases.filter_map(|id| Some((id, self.times.get(id)?))) {
            let (open, mark) = match time.busy_since {
                Some(since) => (now - since, "+"),
                None => (0, ""),
            };
            let took = |micros: i64| {
                if micros == 0 && mark.is_empty() {
                    "-".to_owned()
                } else {
                    format!("{}{mark}", output::duration(micros))
                }
            };
            table.add_row([
                phase.clone(),
                output::phase_state(time.state).to_owned(),
                time.attempts.to_string(),
                took(time.last_attempt_micros + open),
                took(time.busy_micros + open),
            ]);
        }
        table
    }

    /// Streamed model output, on lines prefixed `  phase │ `.
    fn delta(&mut self, delta: &pb::PhaseOutputDelta) -> String {
        let mut text = String::new();
        if self
            .delta
            .as_ref()
            .is_none_or(|(phase, _)| *phase != delta.phase_id)
        {
            text.push_str(&self.close_delta());
            self.delta = Some((delta.phase_id.clone(), true));
        }
        let prefix = format!("  {} │ ", delta.phase_id);
        let Some((_, at_line_start)) = &mut self.delta else {
            return text;
        };
        for piece in delta.text.split_inclusive('\n') {
            if *at_line_start {
                text.push_str(&prefix);
            }
            text.push_str(piece);
            *at_line_start = piece.ends_with('\n');
        }
        text
    }

    /// Ends a line of streamed output, if one is open.
    pub fn close_delta(&mut self) -> String {
        match self.delta.take() {
            Some((_, false)) => "\n".to_owned(),
            _ => String::new(),
        }
    }

    /// The closing line: the final status and how long the run took.
    pub fn summary(&self) -> String {
        match self.ended {
            Some((status, at)) => format!(
                "run {} {} in {}\n",
                self.run_id,
                output::run_status(status),
                output::duration(at - self.created_micros)
            ),
            None => format!("run {} has not ended\n", self.run_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestra_proto::Timestamp;

    fn at(seconds: i64, millis: i32) -> Option<Timestamp> {
        Some(Timestamp {
            seconds,
            nanos: millis * 1_000_000,
        })
    }

    fn snapshot() -> pb::GetRunResponse {
        pb::GetRunResponse {
            run: Some(pb::Run {
                id: "r1".into(),
                created_at: at(36_000, 0),
                ..Default::default()
            }),
            phases: vec![
                pb::Phase {
                    id: "context".into(),
                    kind: pb::PhaseKind::HumanInput as i32,
                    ..Default::default()
                },
                pb::Phase {
                    id: "variant_a".into(),
                    kind: pb::PhaseKind::Llm as i32,
                    ..Default::default()
                },
                pb::Phase {
                    id: "review".into(),
                    kind: pb::PhaseKind::HumanReview as i32,
                    ..Default::default()
                },
            ],
            seq: 3,
        }
    }

    fn event(seq: i64, seconds: i64, millis: i32, body: Body) -> pb::RunEvent {
        pb::RunEvent {
            run_id: "r1".into(),
            seq,
            time: at(seconds, millis),
            body: Some(body),
        }
    }

    fn state(phase: &str, to: pb::PhaseState) -> Body {
        Body::PhaseStateChanged(pb::PhaseStateChanged {
            phase_id: phase.into(),
            attempt: 1,
            to: to as i32,
            ..Default::default()
        })
    }

    fn delta(phase: &str, text: &str) -> Body {
        Body::PhaseOutputDelta(pb::PhaseOutputDelta {
            phase_id: phase.into(),
            attempt: 1,
            text: text.into(),
        })
    }

    #[test]
    fn state_lines_show_the_time_since_the_attempt_started() {
        let mut t = Transcript::new(&snapshot());
        let running = t.event(&event(
            4,
            36_001,
            0,
            state("variant_a", pb::PhaseState::Running),
        ));
        assert_eq!(
            running,
            "10:00:01  variant_a     RUNNING            attempt 1   +0ms\n"
        );
        let done = t.event(&event(
            5,
            36_002,
            200,
            state("variant_a", pb::PhaseState::Completed),
        ));
        assert_eq!(
            done,
            "10:00:02  variant_a     COMPLETED          attempt 1   +1.2s\n"
        );
        assert_eq!(t.last_seq, 5);
    }

    #[test]
    fn streamed_output_is_prefixed_and_closed_by_the_next_event() {
        let mut t = Transcript::new(&snapshot());
        let mut text = t.event(&event(4, 36_001, 0, delta("variant_a", "{\"ops\":")));
        text += &t.event(&event(5, 36_001, 0, delta("variant_a", " []\n}")));
        text += &t.event(&event(
            6,
            36_002,
            0,
            state("variant_a", pb::PhaseState::Completed),
        ));
        assert_eq!(
            text,
            "  variant_a │ {\"ops\": []\n  variant_a │ }\n10:00:02  variant_a     COMPLETED          attempt 1\n"
        );
    }

    #[test]
    fn human_tasks_name_the_next_command() {
        let mut t = Transcript::new(&snapshot());
        let input = t.event(&event(
            4,
            36_000,
            0,
            Body::HumanTaskOpened(pb::HumanTaskOpened {
                phase_id: "context".into(),
                attempt: 1,
                task_id: "t1".into(),
            }),
        ));
        assert!(input.ends_with("context waits for input: orchestra input submit t1 FILE\n"));
        let review = t.event(&event(
            5,
            36_000,
            0,
            Body::HumanTaskOpened(pb::HumanTaskOpened {
                phase_id: "review".into(),
                attempt: 1,
                task_id: "t2".into(),
            }),
        ));
        assert!(review.ends_with("review waits for a decision: orchestra review show t2\n"));
    }

    #[test]
    fn a_snapshot_names_the_tasks_already_open() {
        let mut phases = snapshot().phases;
        phases[0].state = pb::PhaseState::WaitingForHuman as i32;
        phases[0].human_task_id = "t1".into();
        assert_eq!(
            open_tasks(&phases),
            "context waits for input: orchestra input submit t1 FILE\n"
        );
    }

    fn attempt(phase: &str, attempt: i32, to: pb::PhaseState) -> Body {
        Body::PhaseStateChanged(pb::PhaseStateChanged {
            phase_id: phase.into(),
            attempt,
            to: to as i32,
            ..Default::default()
        })
    }

    #[test]
    fn an_event_log_adds_up_each_phases_attempts() {
        let mut t = Transcript::replay(&snapshot());
        assert_eq!(t.last_seq, 0);
        let events = [
            (36_000, attempt("variant_a", 1, pb::PhaseState::Queued)),
            (36_001, attempt("variant_a", 1, pb::PhaseState::Running)),
            (36_003, attempt("variant_a", 1, pb::PhaseState::Queued)),
            (36_004, attempt("variant_a", 2, pb::PhaseState::Running)),
            (36_009, attempt("variant_a", 2, pb::PhaseState::Completed)),
            (
                36_010,
                attempt("review", 1, pb::PhaseState::WaitingForHuman),
            ),
            (36_011, attempt("review", 1, pb::PhaseState::ReadyForReview)),
        ];
        for (seq, (seconds, body)) in (1..).zip(events) {
            let text = t.event(&event(seq, seconds, 0, body));
            assert!(!text.is_empty());
        }
        let table = t.durations_table(36_040 * 1_000_000).to_string();
        assert!(
            table.find("variant_a") < table.find("review"),
            "in the template's order: {table}"
        );
        let row = |phase: &str| {
            table
                .lines()
                .find(|l| l.contains(phase))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        assert_eq!(
            row("variant_a"),
            "variant_a COMPLETED 2 5.0s 7.0s",
            "{table}"
        );
        assert_eq!(
            row("review"),
            "review READY_FOR_REVIEW 1 30.0s+ 30.0s+",
            "{table}"
        );
    }

    #[test]
    fn an_event_log_leaves_out_streamed_output() {
        let mut t = Transcript::replay(&snapshot());
        assert_eq!(t.event(&event(1, 36_001, 0, delta("variant_a", "{"))), "");
        assert_eq!(number_lines(7, "a\nb\n"), "   7  a\n   7  b\n");
    }

    #[test]
    fn a_manual_run_says_how_to_move_a_ready_phase_on() {
        let mut snap = snapshot();
        if let Some(run) = snap.run.as_mut() {
            run.auto_advance = false;
        }
        let mut t = Transcript::new(&snap);
        let line = t.event(&event(
            4,
            36_000,
            0,
            state("context", pb::PhaseState::Ready),
        ));
        assert!(
            line.ends_with("move it on with: orchestra run continue r1 context\n"),
            "{line}"
        );
    }

    #[test]
    fn the_run_ends_with_a_summary() {
        let mut t = Transcript::new(&snapshot());
        t.event(&event(
            4,
            36_012,
            300,
            Body::RunStatusChanged(pb::RunStatusChanged {
                from: pb::RunStatus::Running as i32,
                to: pb::RunStatus::Completed as i32,
            }),
        ));
        assert_eq!(t.ended.map(|e| e.0), Some(pb::RunStatus::Completed as i32));
        assert_eq!(t.summary(), "run r1 COMPLETED in 12.3s\n");
    }
}
