/**
 * The runs dashboard: state, template and version, started and duration
 * (ticking while a run goes on), filtered by state and template (kept in
 * the hash), a page at a time. The page is read again every two seconds:
 * the contracts have no stream of the run list (a run's own page is pushed
 * by WatchRun).
 */
import { ConnectError } from "@connectrpc/connect";
import { useEffect, useMemo, useState } from "react";

import { useClients } from "../api/clients.js";
import type { Run } from "../gen/orchestra/v1/run_pb.js";
import { isRunFinished, timestampMs } from "../store/transitions.js";
import { formatDuration, runLook } from "./phaseStyle.js";
import { hashOf, queryOf, type RunsQuery, runDuration, STATUS_FILTERS } from "./runsQuery.js";
import { useNow } from "./useNow.js";

const REFRESH_MS = 2_000;
const PAGE_SIZE = 25;

/** The runs list page; `hash` is the page's hash, which holds the filters. */
export function RunsList({ hash }: { hash: string }) {
  const { runs: client, templates } = useClients();
  const query = useMemo(() => queryOf(hash), [hash]);
  // Page tokens of the pages before this one, for "newer".
  const [pages, setPages] = useState<string[]>([]);
  const [token, setToken] = useState("");
  const [page, setPage] = useState<{ runs: Run[]; next: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [templateNames, setTemplateNames] = useState<string[]>([]);
  const anyLive = page?.runs.some((r) => !isRunFinished(r.status)) ?? false;
  const now = useNow(anyLive);

  useEffect(() => {
    const abort = new AbortController();
    templates
      .listTemplates({ pageSize: 500 }, { signal: abort.signal })
      .then((listed) => setTemplateNames([...new Set(listed.templates.map((t) => t.name))].sort()))
      .catch(() => {
        // The filter then offers what the runs show.
      });
    return () => abort.abort();
  }, [templates]);

  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const listed = await client.listRuns(
          {
            statuses: query.status === undefined ? [] : [query.status],
            templateName: query.template,
            pageSize: PAGE_SIZE,
            pageToken: token,
          },
          { signal: abort.signal },
        );
        setPage({ runs: listed.runs, next: listed.nextPageToken });
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
  }, [client, query, token]);

  const setQuery = (next: RunsQuery) => {
    setPages([]);
    setToken("");
    setPage(null);
    window.location.hash = hashOf(next);
  };
  const filtered = query.status !== undefined || query.template !== "";
  const names = templateNames.includes(query.template) || !query.template ? templateNames : [...templateNames, query.template];

  return (
    <section className="runs">
      <div className="runs-head">
        <h2>Runs</h2>
        <label>
          state{" "}
          <select
            value={STATUS_FILTERS.find((f) => f.status === query.status)?.word ?? ""}
            onChange={(e) => setQuery({ ...query, status: STATUS_FILTERS.find((f) => f.word === e.target.value)?.status })}
            data-testid="filter-state"
          >
            <option value="">any</option>
            {STATUS_FILTERS.map((f) => (
              <option key={f.word} value={f.word}>
                {f.word}
              </option>
            ))}
          </select>
        </label>
        <label>
          template{" "}
          <select value={query.template} onChange={(e) => setQuery({ ...query, template: e.target.value })} data-testid="filter-template">
            <option value="">any</option>
            {names.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
        {filtered && (
          <button type="button" className="link-button" onClick={() => setQuery({ template: "" })}>
            Clear filters
          </button>
        )}
      </div>
      {error && (
        <p className="page-message" role="alert">
          The server cannot be reached ({error}); retrying.
        </p>
      )}
      {page === null && !error && <p className="muted">Loading…</p>}
      {page !== null && page.runs.length === 0 && (
        <p className="muted">
          {filtered ? (
            "No runs match these filters."
          ) : (
            <>
              No runs yet. Start one with <code>orchestra run start TEMPLATE</code>.
            </>
          )}
        </p>
      )}
      {page !== null && page.runs.length > 0 && (
        <table className="runs-table">
          <thead>
            <tr>
              <th>Run</th>
              <th>Template</th>
              <th>State</th>
              <th>Started</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {page.runs.map((run) => {
              const look = runLook(run.status);
              const created = timestampMs(run.createdAt);
              const took = runDuration(run, now);
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
                  <td data-testid="run-duration">{took === undefined ? "" : formatDuration(took)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {(pages.length > 0 || page?.next) && (
        <nav className="pager" aria-label="Pages">
          <button
            type="button"
            disabled={pages.length === 0}
            onClick={() => {
              setToken(pages[pages.length - 1] ?? "");
              setPages(pages.slice(0, -1));
            }}
          >
            ← Newer
          </button>
          <span className="muted">page {pages.length + 1}</span>
          <button
            type="button"
            disabled={!page?.next}
            onClick={() => {
              if (!page?.next) return;
              setPages([...pages, token]);
              setToken(page.next);
            }}
          >
            Older →
          </button>
        </nav>
      )}
    </section>
  );
}
