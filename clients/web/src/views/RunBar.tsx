/**
 * The run page's top bar: the template, the run's state (word and colour),
 * its elapsed time, the actions that apply (cancel an unfinished run, with
 * a second click to confirm; continue the READY phases of a manual run),
 * and where the live connection stands.
 */
import { ConnectError } from "@connectrpc/connect";
import { useMemo, useState } from "react";

import { useClients } from "../api/clients.js";
import { PhaseState } from "../gen/orchestra/v1/common_pb.js";
import { useRunStore } from "../store/runStore.js";
import { type ConnectionStatus, isRunFinished, timestampMs } from "../store/transitions.js";
import { formatDuration, runLook } from "./phaseStyle.js";
import { useNow } from "./useNow.js";

const CONNECTION_LABELS: Record<ConnectionStatus, string> = {
  connecting: "connecting…",
  open: "live",
  closed: "finished",
  error: "reconnecting…",
};

/** How long the run has taken: ticking while it runs, fixed once it ends. */
function RunElapsed() {
  const run = useRunStore((s) => s.snapshot?.run);
  const finished = run ? isRunFinished(run.status) : true;
  const now = useNow(!finished);
  const created = timestampMs(run?.createdAt);
  if (!run || created === undefined) return null;
  const end = finished ? (timestampMs(run.updatedAt) ?? now) : now;
  return (
    <span className="muted" data-testid="run-elapsed" title="elapsed">
      {formatDuration(end - created)}
    </span>
  );
}

/** The top bar of the shown run. */
export function RunBar() {
  const { runs } = useClients();
  const run = useRunStore((s) => s.snapshot?.run);
  const phases = useRunStore((s) => s.snapshot?.phases);
  const ready = useMemo(() => (phases ?? []).filter((p) => p.state === PhaseState.READY).map((p) => p.id), [phases]);
  const connection = useRunStore((s) => s.connectionStatus);
  const applyActionResponse = useRunStore((s) => s.applyActionResponse);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  if (!run) return null;
  const look = runLook(run.status);
  const finished = isRunFinished(run.status);
  const continuable = !run.autoAdvance && !finished ? ready : [];
  // While the connection is down an action could not be seen to land.
  const offline = connection === "error" || connection === "connecting";

  const act = async (action: () => Promise<void>) => {
    setBusy(true);
    setFailure(null);
    try {
      await action();
    } catch (error) {
      setFailure(ConnectError.from(error).rawMessage);
    } finally {
      setBusy(false);
    }
  };
  const cancel = () =>
    act(async () => {
      setConfirming(false);
      applyActionResponse(await runs.cancelRun({ runId: run.id, reason: "cancelled from the web client" }));
    });
  const continueReady = () =>
    act(async () => {
      for (const phaseId of continuable) applyActionResponse(await runs.continuePhase({ runId: run.id, phaseId }));
    });

  return (
    <header className="run-bar">
      <a href="#/" className="back">
        ← Runs
      </a>
      <h2>
        {run.templateName} <span className="muted">v{run.templateVersion}</span>
      </h2>
      <span className="badge" data-testid="run-status" style={{ background: look.color, color: look.text }}>
        {look.label}
      </span>
      <RunElapsed />
      <span className="muted run-id" title="run id">
        {run.id}
      </span>
      <span className="run-actions">
        {continuable.length > 0 && (
          <button type="button" disabled={busy || offline} onClick={() => void continueReady()}>
            Continue {continuable.length} ready phase{continuable.length === 1 ? "" : "s"}
          </button>
        )}
        {!finished &&
          (confirming ? (
            <>
              <button type="button" className="danger" disabled={busy} onClick={() => void cancel()} autoFocus>
                Yes, cancel the run
              </button>
              <button type="button" onClick={() => setConfirming(false)}>
                Keep it running
              </button>
            </>
          ) : (
            <button type="button" disabled={busy || offline} onClick={() => setConfirming(true)}>
              Cancel run…
            </button>
          ))}
      </span>
      {failure && (
        <span className="bar-error" role="alert">
          {failure}
        </span>
      )}
      <span className={`connection connection-${connection}`} data-testid="connection" role="status">
        {CONNECTION_LABELS[connection]}
      </span>
      {connection === "error" && (
        <div className="offline-banner" role="alert">
          The server cannot be reached. This page reconnects by itself and catches up on everything that happened meanwhile;
          actions wait until it is back.
        </div>
      )}
    </header>
  );
}
