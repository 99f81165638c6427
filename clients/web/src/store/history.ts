/**
 * The run's event log as the page keeps it for its timeline and each
 * phase's attempt history: events in sequence order, each once, whether it
 * came live from `WatchRun` or from reading the log's start after a
 * reload. Pure functions, tested on their own.
 */
import { PhaseState } from "../gen/orchestra/v1/common_pb.js";
import type { RunEvent } from "../gen/orchestra/v1/run_pb.js";
import { kindOfActor } from "./describe.js";
import { timestampMs } from "./time.js";

/**
 * How many events the page keeps: enough for every run a person reads
 * event by event, bounded so a run of thousands of phases streaming for
 * hours does not grow the page without end (the oldest go first).
 */
export const HISTORY_LIMIT = 5_000;

/** `history` with `events` added: sorted by sequence, each sequence once, at most {@link HISTORY_LIMIT}. */
export function mergeHistory(history: RunEvent[], events: RunEvent[]): RunEvent[] {
  if (events.length === 0) return history;
  const last = history.length > 0 ? history[history.length - 1].seq : 0n;
  // The common case, a live event after the newest: append.
  if (events.every((e, i) => e.seq > (i === 0 ? last : events[i - 1].seq))) {
    const merged = history.concat(events);
    return merged.length > HISTORY_LIMIT ? merged.slice(merged.length - HISTORY_LIMIT) : merged;
  }
  const bySeq = new Map<bigint, RunEvent>();
  for (const e of history) bySeq.set(e.seq, e);
  for (const e of events) if (!bySeq.has(e.seq)) bySeq.set(e.seq, e);
  const merged = [...bySeq.values()].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  return merged.length > HISTORY_LIMIT ? merged.slice(merged.length - HISTORY_LIMIT) : merged;
}

/** Whether `history` holds every event from 1 to `seq` (nothing missing at its start). */
export function historyComplete(history: RunEvent[], seq: bigint): boolean {
  if (seq === 0n) return true;
  return history.length > 0 && history[0].seq === 1n && history[history.length - 1].seq >= seq;
}

/** One attempt of a phase, as its events tell it. */
export interface AttemptRecord {
  attempt: number;
  /** When it started running (or its human task opened). */
  startedMs?: number;
  /** When it reached a state it does not leave by itself. */
  endedMs?: number;
  /** The state it is in now (after ending it may be sent back: READY). */
  state: PhaseState;
  /** The state it ended in, once it did (kept when it is sent back later). */
  endedAs?: PhaseState;
  /** The reason of its last change (an error, a reviewer's comment). */
  reason: string;
  /** Who made its last change, when a person did. */
  by: string;
}

const ENDED = new Set<PhaseState>([
  PhaseState.COMPLETED,
  PhaseState.ERROR,
  PhaseState.APPROVED,
  PhaseState.REJECTED,
  PhaseState.SKIPPED,
  PhaseState.CANCELLED,
]);

/** Every attempt of `phaseId`, first to last, from its state changes. */
export function attemptHistory(history: RunEvent[], phaseId: string): AttemptRecord[] {
  const attempts = new Map<number, AttemptRecord>();
  for (const event of history) {
    if (event.body.case !== "phaseStateChanged" || event.body.value.phaseId !== phaseId) continue;
    const change = event.body.value;
    if (change.attempt <= 0) continue;
    const time = timestampMs(event.time);
    const record = attempts.get(change.attempt) ?? { attempt: change.attempt, state: change.to, reason: "", by: "" };
    record.state = change.to;
    if (change.reason) record.reason = change.reason;
    if (change.actor?.id) record.by = `${kindOfActor(change.actor.kind)} ${change.actor.id}`;
    if ((change.to === PhaseState.RUNNING || change.to === PhaseState.WAITING_FOR_HUMAN) && record.startedMs === undefined) {
      record.startedMs = time;
    }
    if (ENDED.has(change.to)) {
      record.endedMs = time;
      record.endedAs = change.to;
    }
    attempts.set(change.attempt, record);
  }
  return [...attempts.values()].sort((a, b) => a.attempt - b.attempt);
}
