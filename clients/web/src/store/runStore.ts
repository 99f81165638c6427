/**
 * The one store of the run page (Zustand): the snapshot, the selected phase,
 * the connection status and the last event sequence, with the actions of
 * the Backtrack plan's §9. Every action hands the state to a pure function
 * in `transitions.ts`; nothing else writes to it.
 */
import type { StoreApi } from "zustand";
import { useStore } from "zustand";
import { createStore } from "zustand/vanilla";

import type { GetRunResponse, RunEvent } from "../gen/orchestra/v1/run_pb.js";
import {
  type ActionResponse,
  type ConnectionStatus,
  type EventOutcome,
  initialRunViewState,
  reduceActionResponse,
  reduceEvent,
  reduceHistory,
  reduceSelect,
  type RunViewState,
  withSnapshot,
} from "./transitions.js";

/** The run page's state and its actions. */
export interface RunStore extends RunViewState {
  setSnapshot(response: GetRunResponse): void;
  selectPhase(phaseId: string | null): void;
  /** Applies the event if it is the next one; says what became of it. */
  applyEvent(event: RunEvent): EventOutcome;
  setConnectionStatus(status: ConnectionStatus): void;
  applyActionResponse(response: ActionResponse): void;
  /** Adds events read back from the log to the timeline. */
  addHistory(events: RunEvent[]): void;
  /** Forgets the run, when the page turns to another. */
  reset(): void;
}

/** A fresh store; the page uses {@link runStore}, tests make their own. */
export function createRunStore(): StoreApi<RunStore> {
  return createStore<RunStore>()((set, get) => ({
    ...initialRunViewState,
    setSnapshot: (response) => set((state) => withSnapshot(state, response)),
    selectPhase: (phaseId) => set((state) => reduceSelect(state, phaseId)),
    applyEvent: (event) => {
      const { state, outcome } = reduceEvent(get(), event);
      if (outcome === "applied") set(state);
      return outcome;
    },
    setConnectionStatus: (connectionStatus) =>
      set((state) => (state.connectionStatus === connectionStatus ? state : { connectionStatus })),
    applyActionResponse: (response) => set((state) => reduceActionResponse(state, response)),
    addHistory: (events) => set((state) => reduceHistory(state, events)),
    reset: () => set({ ...initialRunViewState }),
  }));
}

/** The store behind the run page. */
export const runStore = createRunStore();

/** Reads a slice of the run page's state, re-rendering when it changes. */
export function useRunStore<T>(selector: (state: RunStore) => T): T {
  return useStore(runStore, selector);
}
