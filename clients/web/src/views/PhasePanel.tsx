/**
 * The side panel of the selected phase: its state, timing and actions
 * (continue a READY phase of a manual run, open its human task), its error
 * with the raw output beside the schema it broke, its artifacts (version
 * picker, pretty JSON, diff), the text a running llm phase streams, and
 * its attempt history.
 */
import { ConnectError } from "@connectrpc/connect";
import { useMemo, useState } from "react";

import { useClients } from "../api/clients.js";
import { PhaseKind, PhaseState } from "../gen/orchestra/v1/common_pb.js";
import { attemptHistory } from "../store/history.js";
import { useRunStore } from "../store/runStore.js";
import { phaseWord } from "../store/describe.js";
import { timestampMs } from "../store/transitions.js";
import { ArtifactViewer } from "./ArtifactViewer.js";
import { formatDuration, kindLabel, phaseLook } from "./phaseStyle.js";
import { SchemaBreak } from "./SchemaBreak.js";

/** Details of the selected phase. */
export function PhasePanel() {
  const { runs } = useClients();
  const run = useRunStore((s) => s.snapshot?.run);
  const phase = useRunStore((s) => s.snapshot?.phases.find((p) => p.id === s.selectedPhaseId));
  const streamed = useRunStore((s) => (s.selectedPhaseId ? s.streamed[s.selectedPhaseId] : undefined));
  const history = useRunStore((s) => s.history);
  const selectPhase = useRunStore((s) => s.selectPhase);
  const applyActionResponse = useRunStore((s) => s.applyActionResponse);
  const [actionError, setActionError] = useState<string | null>(null);
  const attempts = useMemo(() => (phase ? attemptHistory(history, phase.id) : []), [history, phase]);
  if (!phase || !run) return null;
  const look = phaseLook(phase.state);
  const revision = `${phase.attempt}:${phase.state}:${phase.output?.version ?? 0}`;
  const canContinue = phase.state === PhaseState.READY && !run.autoAdvance;

  const continuePhase = async () => {
    setActionError(null);
    try {
      applyActionResponse(await runs.continuePhase({ runId: run.id, phaseId: phase.id }));
    } catch (error) {
      setActionError(ConnectError.from(error).rawMessage);
    }
  };

  return (
    <aside className="phase-panel" aria-label={`Phase ${phase.title || phase.id}`}>
      <div className="panel-head">
        <h3>{phase.title || phase.id}</h3>
        <button type="button" className="icon-button" onClick={() => selectPhase(null)} aria-label="Close the panel">
          ×
        </button>
      </div>
      <dl>
        <dt>id</dt>
        <dd>
          <code>{phase.id}</code>
        </dd>
        <dt>kind</dt>
        <dd>
          {kindLabel(phase.kind)}
          {phase.kind === PhaseKind.LLM && phase.providerLabel && <span className="phase-provider"> {phase.providerLabel}</span>}
        </dd>
        <dt>state</dt>
        <dd>
          <span className="badge" style={{ background: look.color, color: look.text }}>
            {look.label}
          </span>
        </dd>
        <dt>attempt</dt>
        <dd>{phase.attempt > 0 ? phase.attempt : "not run yet"}</dd>
        {phase.needs.length > 0 && (
          <>
            <dt>needs</dt>
            <dd>{phase.needs.join(", ")}</dd>
          </>
        )}
      </dl>
      {(canContinue || phase.humanTaskId) && (
        <div className="panel-actions">
          {canContinue && (
            <button type="button" className="primary" onClick={() => void continuePhase()}>
              Continue this phase
            </button>
          )}
          {phase.humanTaskId && (
            <a className="button primary" href={`#/tasks/${encodeURIComponent(phase.humanTaskId)}`}>
              {phase.kind === PhaseKind.HUMAN_REVIEW ? "Open the review" : "Open the form"}
            </a>
          )}
        </div>
      )}
      {actionError && (
        <p className="phase-error" role="alert">
          {actionError}
        </p>
      )}
      {phase.error && (
        <section aria-label="Error">
          <h4>Error</h4>
          <p className="phase-error" data-testid="phase-error">
            {phase.error}
          </p>
        </section>
      )}
      {(phase.error || phase.state === PhaseState.ERROR) && (
        <SchemaBreak
          runId={run.id}
          phaseId={phase.id}
          templateName={run.templateName}
          templateVersion={run.templateVersion}
          revision={revision}
        />
      )}
      {streamed && (
        <section aria-label="Streamed output">
          <h4>{phase.state === PhaseState.RUNNING ? "Streaming…" : "Streamed output"}</h4>
          <pre className="streamed" data-testid="streamed">
            {streamed}
          </pre>
        </section>
      )}
      <section aria-label="Artifacts">
        <h4>Artifacts</h4>
        <ArtifactViewer runId={run.id} phaseId={phase.id} revision={revision} preferredVersion={phase.output?.version} />
      </section>
      <section aria-label="Attempts">
        <h4>Attempts</h4>
        {attempts.length === 0 ? (
          <p className="panel-note muted">{phase.attempt > 0 ? "Loading the history…" : "Not run yet."}</p>
        ) : (
          <ol className="attempts" data-testid="attempts">
            {attempts.map((a) => (
              <li key={a.attempt}>
                <strong>#{a.attempt}</strong>{" "}
                {a.endedAs !== undefined && a.endedAs !== a.state ? `${phaseWord(a.endedAs)}, then sent back` : phaseWord(a.state)}
                {a.startedMs !== undefined && (
                  <span className="muted">
                    {" "}
                    · {new Date(a.startedMs).toLocaleTimeString()}
                    {a.endedMs !== undefined && ` · took ${formatDuration(a.endedMs - a.startedMs)}`}
                  </span>
                )}
                {a.by && <span className="muted"> · {a.by}</span>}
                {a.reason && <div className="attempt-reason">{a.reason}</div>}
              </li>
            ))}
          </ol>
        )}
      </section>
      {timestampMs(phase.startedAt) === undefined ? null : (
        <p className="panel-note muted">started {new Date(timestampMs(phase.startedAt) ?? 0).toLocaleString()}</p>
      )}
    </aside>
  );
}
