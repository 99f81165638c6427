/**
 * `useRunStream(runId)`: while the page shows a run, {@link followRun} keeps
 * the run store live, and {@link loadHistory} reads back the events before
 * the snapshot for the timeline; the hook holds no state of its own. A run
 * that does not exist leaves the store's connection status at "error" and
 * the reason in the returned value.
 */
import { ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";

import type { RunClient } from "../api/clients.js";
import { historyComplete } from "../store/history.js";
import { runStore } from "../store/runStore.js";
import { followRun } from "./followRun.js";
import { loadHistory } from "./loadHistory.js";

/** Follows `runId` for as long as the component is mounted. */
export function useRunStream(client: RunClient, runId: string): string | null {
  const [failure, setFailure] = useState<{ runId: string; message: string } | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    if (runStore.getState().snapshot?.run.id !== runId) runStore.getState().reset();
    followRun(client, runStore, runId, abort.signal).catch((error: unknown) => {
      if (!abort.signal.aborted) {
        setFailure({ runId, message: ConnectError.from(error).rawMessage });
      }
    });
    // Once the first snapshot is in, read back what came before it.
    let asked = false;
    const backfill = () => {
      const state = runStore.getState();
      if (asked || state.snapshot?.run.id !== runId) return;
      asked = true;
      if (historyComplete(state.history, state.lastSeq)) return;
      loadHistory(client, runStore, runId, state.lastSeq, abort.signal).catch(() => {
        // The timeline then starts where the page joined; the run is shown all the same.
      });
    };
    backfill();
    const unsubscribe = runStore.subscribe(backfill);
    return () => {
      unsubscribe();
      abort.abort();
    };
  }, [client, runId]);
  return failure?.runId === runId ? failure.message : null;
}
