/**
 * The runs, newest first, refreshed every two seconds: the contracts have
 * no stream of the run list yet (a run's own page is pushed by WatchRun).
 */
import { ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";

import type { RunClient } from "../api/clients.js";
import type { Run } from "../gen/orchestra/v1/run_pb.js";
import { timestampMs } from "../store/transitions.js";
import { runLook } from "./phaseStyle.js";

const REFRESH_MS = 2_000;

/** The runs list page. */
export function RunsList({ client }: { client: RunClient }) {
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const listed = await client.listRuns({ pageSize: 100 }, { signal: abort.signal });
        setRuns(listed.runs);
        setError(null);
      } catch (e) {
        if (abort.signal.aborted) return;
        setError(ConnectError.from(e).rawMessage);
      }
      if (!abort.signal.aborted) timer = setTimeout(load, REFRESH_MS);
    };
    void load();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [client]);

  return (
    <section className="runs">
      <h2>Runs</h2>
      {error && (
        <p className="page-message" role="alert">
          The server cannot be reached ({error}); retrying.
        </p>
      )}
      {runs === null && !error && <p className="muted">Loading…</p>}
      {runs !== null && runs.length === 0 && (
        <p className="muted">
          No runs yet. Start one with <code>orchestra run start TEMPLATE</code>.
        </p>
      )}
      {runs !== null && runs.length > 0 && (
        <table className="runs-table">
          <thead>
            <tr>
              <th>Run</th>
              <th>Template</th>
              <th>State</th>
              <th>Started</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((run) => {
              const look = runLook(run.status);
              const created = timestampMs(run.createdAt);
              return (
                <tr key={run.id} data-testid="run-row">
                  <td>
                    <a href={`#/runs/${encodeURIComponent(run.id)}`}>{run.id}</a>
                  </td>
                  <td>
                    {run.templateName} <span className="muted">v{run.templateVersion}</span>
                  </td>
                  <td>
                    <span className="badge" style={{ background: look.color, color: look.text }}>
                      {look.label}
                    </span>
                  </td>
                  <td>{created === undefined ? "" : new Date(created).toLocaleString()}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
