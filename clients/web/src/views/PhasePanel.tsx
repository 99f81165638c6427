/** The side panel of the selected phase: its state, timing, error, output and streamed text. */
import { useRunStore } from "../store/runStore.js";
import { kindLabel, phaseLook } from "./phaseStyle.js";

/** Details of the selected phase. */
export function PhasePanel() {
  const phase = useRunStore((s) => s.snapshot?.phases.find((p) => p.id === s.selectedPhaseId));
  const streamed = useRunStore((s) => (s.selectedPhaseId ? s.streamed[s.selectedPhaseId] : undefined));
  const selectPhase = useRunStore((s) => s.selectPhase);
  if (!phase) return null;
  const look = phaseLook(phase.state);
  return (
    <aside className="phase-panel" aria-label={`Phase ${phase.title || phase.id}`}>
      <div className="panel-head">
        <h3>{phase.title || phase.id}</h3>
        <button type="button" onClick={() => selectPhase(null)} aria-label="Close">
          ×
        </button>
      </div>
      <dl>
        <dt>id</dt>
        <dd>{phase.id}</dd>
        <dt>kind</dt>
        <dd>{kindLabel(phase.kind)}</dd>
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
        {phase.output && (
          <>
            <dt>output</dt>
            <dd>
              {phase.output.name} v{phase.output.version}
            </dd>
          </>
        )}
      </dl>
      {phase.error && (
        <div className="phase-error" role="alert">
          {phase.error}
        </div>
      )}
      {streamed && <pre className="streamed">{streamed}</pre>}
    </aside>
  );
}
