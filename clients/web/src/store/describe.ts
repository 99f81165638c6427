/**
 * Events in words, for the run's timeline: what happened, to which phase.
 * Pure, so each kind's wording is tested.
 */
import { ActorKind, PhaseState, RunStatus } from "../gen/orchestra/v1/common_pb.js";
import type { RunEvent } from "../gen/orchestra/v1/run_pb.js";

/** One line of the timeline. */
export interface EventLine {
  /** The phase it concerns, when it concerns one. */
  phaseId?: string;
  text: string;
}

const PHASE_WORDS: Record<PhaseState, string> = {
  [PhaseState.UNSPECIFIED]: "unknown",
  [PhaseState.BLOCKED]: "blocked",
  [PhaseState.READY]: "ready",
  [PhaseState.QUEUED]: "queued",
  [PhaseState.RUNNING]: "running",
  [PhaseState.COMPLETED]: "completed",
  [PhaseState.ERROR]: "error",
  [PhaseState.WAITING_FOR_HUMAN]: "waiting for a person",
  [PhaseState.READY_FOR_REVIEW]: "ready for review",
  [PhaseState.APPROVED]: "approved",
  [PhaseState.REJECTED]: "rejected",
  [PhaseState.SKIPPED]: "skipped",
  [PhaseState.CANCELLED]: "cancelled",
};

const RUN_WORDS: Record<RunStatus, string> = {
  [RunStatus.UNSPECIFIED]: "unknown",
  [RunStatus.PENDING]: "pending",
  [RunStatus.RUNNING]: "running",
  [RunStatus.WAITING_FOR_HUMAN]: "waiting for a person",
  [RunStatus.COMPLETED]: "completed",
  [RunStatus.FAILED]: "failed",
  [RunStatus.CANCELLED]: "cancelled",
};

/** The word for an actor's kind. */
export function kindOfActor(kind: ActorKind): string {
  switch (kind) {
    case ActorKind.PERSON:
      return "person";
    case ActorKind.PHASE:
      return "phase";
    case ActorKind.SYSTEM:
      return "system";
    default:
      return "someone";
  }
}

/** The word for a phase state. */
export function phaseWord(state: PhaseState): string {
  return PHASE_WORDS[state] ?? "unknown";
}

/** What `event` says, naming phases by `title` (their id when untitled). */
export function describeEvent(event: RunEvent, title: (phaseId: string) => string = (id) => id): EventLine {
  const body = event.body;
  switch (body.case) {
    case "runStarted":
      return { text: `run started: ${body.value.templateName} v${body.value.templateVersion}, seed ${body.value.seed}` };
    case "runStatusChanged":
      return { text: `run ${RUN_WORDS[body.value.to] ?? "unknown"}` };
    case "phaseStateChanged": {
      const change = body.value;
      const by = change.actor?.kind === ActorKind.PERSON && change.actor.id ? ` by ${change.actor.id}` : "";
      const reason = change.reason ? `: ${change.reason}` : "";
      return {
        phaseId: change.phaseId,
        text: `${title(change.phaseId)} ${phaseWord(change.from)} → ${phaseWord(change.to)}${change.attempt > 0 ? ` (attempt ${change.attempt})` : ""}${by}${reason}`,
      };
    }
    case "phaseOutputDelta":
      return { phaseId: body.value.phaseId, text: `${title(body.value.phaseId)} streamed ${body.value.text.length} characters` };
    case "artifactAccepted": {
      const ref = body.value.artifact;
      return {
        phaseId: body.value.phaseId,
        text: `${title(body.value.phaseId)} output ${ref ? `${ref.name} v${ref.version}` : ""} accepted`.replace("  ", " "),
      };
    }
    case "humanTaskOpened":
      return { phaseId: body.value.phaseId, text: `${title(body.value.phaseId)} task opened for a person` };
    default:
      return { text: "an event this page does not know" };
  }
}
