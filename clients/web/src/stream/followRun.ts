/**
 * Keeps the run store in step with one run: `GetRun` for a snapshot, then
 * `WatchRun` from the snapshot's sequence, each event dispatched into the
 * store. When the stream drops, it reconnects with exponential backoff and
 * resumes after the last sequence applied; when events turn out to have
 * been missed (a gap), it fetches a fresh snapshot. It stops when the run
 * is finished and its stream has ended, or when `signal` aborts, and
 * throws on a failure that retrying cannot mend (the run does not exist).
 *
 * Kept apart from React so the loop is tested against a real server.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { StoreApi } from "zustand";

import type { RunClient } from "../api/clients.js";
import type { RunEvent } from "../gen/orchestra/v1/run_pb.js";
import type { RunStore } from "../store/runStore.js";
import { isRunFinished } from "../store/transitions.js";

/** How long to wait between attempts. */
export interface Backoff {
  initialMs: number;
  maxMs: number;
}

/** Waits of 250 ms doubling up to 5 s: quick after a blip, gentle on a down server. */
export const DEFAULT_BACKOFF: Backoff = { initialMs: 250, maxMs: 5_000 };

/**
 * Failures that a later attempt may not meet: the server is down or busy,
 * the connection dropped (fetch failures surface as Unknown), a deadline.
 */
const RETRYABLE = new Set<Code>([
  Code.Unavailable,
  Code.Unknown,
  Code.Internal,
  Code.DeadlineExceeded,
  Code.ResourceExhausted,
  Code.Aborted,
  Code.Canceled,
]);

/**
 * How long events that arrive together wait to be applied together: one
 * frame. Applied one by one, each would make React draw the whole graph
 * again, and a burst of hundreds would hold the page for seconds.
 */
export const BATCH_MS = 16;

/**
 * Reads one WatchRun stream into the store, applying the events that
 * arrive within {@link BATCH_MS} of each other in one synchronous pass (one
 * render). Returns true when events were missed (a gap): the caller must
 * fetch a fresh snapshot. Throws what the stream throws.
 */
async function readEvents(
  client: RunClient,
  store: StoreApi<RunStore>,
  runId: string,
  afterSeq: bigint,
  signal: AbortSignal,
  onOpen: () => void,
  onApplied: () => void,
): Promise<boolean> {
  const reading = new AbortController();
  const stop = () => reading.abort();
  signal.addEventListener("abort", stop, { once: true });
  const pending: RunEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let gap = false;
  const flush = () => {
    timer = undefined;
    for (const event of pending.splice(0)) {
      const outcome = store.getState().applyEvent(event);
      if (outcome === "applied") onApplied();
      if (outcome === "gap") {
        gap = true;
        reading.abort();
        pending.length = 0;
        return;
      }
    }
  };
  try {
    for await (const response of client.watchRun({ runId, afterSeq }, { signal: reading.signal, onHeader: onOpen })) {
      if (!response.event) continue;
      pending.push(response.event);
      timer ??= setTimeout(flush, BATCH_MS);
    }
  } catch (error) {
    // Cut short because of a gap: not a failure of the connection.
    if (!gap) throw error;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", stop);
    // What arrived before the stream ended or broke is applied all the same.
    if (!gap && !signal.aborted) flush();
  }
  return gap;
}

/** Follows `runId` into `store` until the run ends or `signal` aborts. */
export async function followRun(
  client: RunClient,
  store: StoreApi<RunStore>,
  runId: string,
  signal: AbortSignal,
  backoff: Backoff = DEFAULT_BACKOFF,
): Promise<void> {
  const actions = store.getState();
  let delay = backoff.initialMs;
  let needSnapshot = store.getState().snapshot?.run.id !== runId;
  while (!signal.aborted) {
    actions.setConnectionStatus("connecting");
    try {
      if (needSnapshot) {
        actions.setSnapshot(await client.getRun({ runId }, { signal }));
        needSnapshot = false;
      }
      const afterSeq = store.getState().lastSeq;
      const gap = await readEvents(client, store, runId, afterSeq, signal, () => {
        actions.setConnectionStatus("open");
      }, () => {
        delay = backoff.initialMs;
      });
      if (gap) {
        needSnapshot = true;
        continue;
      }
      const run = store.getState().snapshot?.run;
      if (run && isRunFinished(run.status)) {
        actions.setConnectionStatus("closed");
        return;
      }
      // The server ended the stream of a live run (it is shutting down,
      // say): reconnect after the usual wait.
    } catch (error) {
      if (signal.aborted) break;
      if (!RETRYABLE.has(ConnectError.from(error).code)) {
        // The run does not exist, say: asking again will not help.
        actions.setConnectionStatus("error");
        throw error;
      }
    }
    actions.setConnectionStatus("error");
    await sleep(delay, signal);
    delay = Math.min(delay * 2, backoff.maxMs);
  }
  actions.setConnectionStatus("closed");
}

/** Waits `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
