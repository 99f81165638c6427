/** The template gallery: every template's latest version, to open, start or edit. */
import { ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";

import { useClients } from "../api/clients.js";
import type { Template } from "../gen/orchestra/v1/template_pb.js";

/** The gallery page. */
export function TemplatesPage() {
  const { templates } = useClients();
  const [list, setList] = useState<Template[] | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    templates
      .listTemplates({ pageSize: 500 }, { signal: abort.signal })
      .then((listed) => setList(listed.templates))
      .catch((error: unknown) => {
        if (!abort.signal.aborted) setFailure(ConnectError.from(error).rawMessage);
      });
    return () => abort.abort();
  }, [templates]);
  return (
    <section className="runs">
      <div className="runs-head">
        <h2>Templates</h2>
        <a className="button" href="#/templates/new/edit">
          New template
        </a>
      </div>
      {failure && (
        <p className="page-message" role="alert">
          The server cannot be reached ({failure}).
        </p>
      )}
      {list === null && !failure && <p className="muted">Loading…</p>}
      {list?.length === 0 && (
        <p className="muted">
          No templates yet. Write one with <a href="#/templates/new/edit">New template</a>, or apply one with{" "}
          <code>orchestra template apply FILE</code>.
        </p>
      )}
      <div className="gallery">
        {list?.map((t) => (
          <a key={t.id} className="template-card" href={`#/templates/${encodeURIComponent(t.name)}`} data-testid="template-card">
            <strong>{t.name}</strong> <span className="muted">v{t.version}</span>
            <p>{t.description || <span className="muted">no description</span>}</p>
            <span className="muted">
              {t.phases.length} phase{t.phases.length === 1 ? "" : "s"}
            </span>
          </a>
        ))}
      </div>
    </section>
  );
}
