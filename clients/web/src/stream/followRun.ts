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
      const stream = client.watchRun(
        { runId, afterSeq },
        { signal, onHeader: () => actions.setConnectionStatus("open") },
      );
      let gap = false;
      for await (const response of stream) {
        if (!response.event) continue;
        const outcome = store.getState().applyEvent(response.event);
        if (outcome === "applied") delay = backoff.initialMs;
        if (outcome === "gap") {
          gap = true;
          break;
        }
      }
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
