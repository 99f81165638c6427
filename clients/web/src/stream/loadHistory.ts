/**
 * Reads a run's log from its start up to `untilSeq` into the store's
 * history, for the timeline and attempt history after a reload (the
 * snapshot carries the run's state, not how it got there). It reads
 * `WatchRun` from 0 and lets go once it has the events the snapshot
 * reflects; the live stream brings the rest.
 */
import type { StoreApi } from "zustand";

import type { RunClient } from "../api/clients.js";
import type { RunEvent } from "../gen/orchestra/v1/run_pb.js";
import type { RunStore } from "../store/runStore.js";

/** Events handed to the store at once while reading. */
const BATCH = 200;

/** Fills the history of `runId` up to `untilSeq`; ends early when `signal` aborts. */
export async function loadHistory(
  client: RunClient,
  store: StoreApi<RunStore>,
  runId: string,
  untilSeq: bigint,
  signal: AbortSignal,
): Promise<void> {
  if (untilSeq <= 0n) return;
  const reading = new AbortController();
  const stop = () => reading.abort();
  signal.addEventListener("abort", stop, { once: true });
  let batch: RunEvent[] = [];
  try {
    for await (const response of client.watchRun({ runId, afterSeq: 0n }, { signal: reading.signal })) {
      const event = response.event;
      if (!event) continue;
      if (event.seq <= untilSeq) batch.push(event);
      if (batch.length >= BATCH) {
        store.getState().addHistory(batch);
        batch = [];
      }
      if (event.seq >= untilSeq) break;
    }
  } catch (error) {
    if (!reading.signal.aborted) throw error;
  } finally {
    if (batch.length > 0 && !signal.aborted) store.getState().addHistory(batch);
    signal.removeEventListener("abort", stop);
    reading.abort();
  }
}
