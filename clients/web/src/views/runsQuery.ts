/**
 * The runs dashboard's query, kept in the page's hash (`#/?state=running&
 * template=backtrack-ui-patch`) so a reload or a shared link shows the same
 * list, and each run's duration. Pure.
 */
import { RunStatus } from "../gen/orchestra/v1/common_pb.js";
import type { Run } from "../gen/orchestra/v1/run_pb.js";
import { isRunFinished, timestampMs } from "../store/transitions.js";

/** What the list shows. */
export interface RunsQuery {
  /** Only runs in this state (all when undefined). */
  status?: RunStatus;
  /** Only runs of this template (all when empty). */
  template: string;
}

/** The states a person filters by, with their words. */
export const STATUS_FILTERS: { status: RunStatus; word: string }[] = [
  { status: RunStatus.RUNNING, word: "running" },
  { status: RunStatus.WAITING_FOR_HUMAN, word: "waiting" },
  { status: RunStatus.PENDING, word: "pending" },
  { status: RunStatus.COMPLETED, word: "completed" },
  { status: RunStatus.FAILED, word: "failed" },
  { status: RunStatus.CANCELLED, word: "cancelled" },
];

/** The query a hash holds; unknown values are ignored. */
export function queryOf(hash: string): RunsQuery {
  const at = hash.indexOf("?");
  const params = new URLSearchParams(at >= 0 ? hash.slice(at + 1) : "");
  const word = params.get("state");
  return {
    status: STATUS_FILTERS.find((f) => f.word === word)?.status,
    template: params.get("template") ?? "",
  };
}

/** The hash for a query. */
export function hashOf(query: RunsQuery): string {
  const params = new URLSearchParams();
  const word = STATUS_FILTERS.find((f) => f.status === query.status)?.word;
  if (word) params.set("state", word);
  if (query.template) params.set("template", query.template);
  const text = params.toString();
  return text ? `#/?${text}` : "#/";
}

/** How long a run took, or has taken so far if it is still going, in ms. */
export function runDuration(run: Run, nowMs: number): number | undefined {
  const created = timestampMs(run.createdAt);
  if (created === undefined) return undefined;
  const end = isRunFinished(run.status) ? (timestampMs(run.updatedAt) ?? nowMs) : nowMs;
  return Math.max(0, end - created);
}
