/**
 * One template: its versions, the graph a run of the chosen version will
 * follow, and starting a run of it, with a form for its run inputs
 * (generated from their schemas) when it takes some.
 */
import { ConnectError } from "@connectrpc/connect";
import Form from "@rjsf/core";
import { customizeValidator } from "@rjsf/validator-ajv8";
import Ajv2020 from "ajv/dist/2020.js";
import { useEffect, useMemo, useState } from "react";

import { useClients } from "../api/clients.js";
import type { Template } from "../gen/orchestra/v1/template_pb.js";
import { fieldFaults } from "../tasks/violations.js";
import { inputsSchema, runInputs } from "./spec.js";
import { TemplateGraph } from "./TemplateGraph.js";

const validator = customizeValidator({ AjvClass: Ajv2020 });

/** The page of template `name`. */
export default function TemplatePage({ name }: { name: string }) {
  const { templates, runs } = useClients();
  const [latest, setLatest] = useState(0);
  const [version, setVersion] = useState(0);
  const [template, setTemplate] = useState<Template | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [values, setValues] = useState<unknown>(undefined);
  const [manual, setManual] = useState(false);
  const [busy, setBusy] = useState(false);
  const [startFailure, setStartFailure] = useState<string | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    templates
      .getTemplate({ name, version }, { signal: abort.signal })
      .then((got) => {
        setTemplate(got.template ?? null);
        if (version === 0) setLatest(got.template?.version ?? 0);
        setFailure(null);
      })
      .catch((error: unknown) => {
        if (!abort.signal.aborted) setFailure(ConnectError.from(error).rawMessage);
      });
    return () => abort.abort();
  }, [templates, name, version]);

  const schema = useMemo(() => (template ? inputsSchema(template.specJson) : null), [template]);

  const start = async (formValues: unknown) => {
    if (!template) return;
    setBusy(true);
    setStartFailure(null);
    try {
      const started = await runs.startRun({
        templateName: template.name,
        templateVersion: template.version,
        inputs: runInputs(formValues),
        manualAdvance: manual,
      });
      if (started.run) window.location.hash = `#/runs/${encodeURIComponent(started.run.id)}`;
    } catch (error) {
      const refused = ConnectError.from(error);
      const faults = fieldFaults(refused);
      setStartFailure([refused.rawMessage, ...faults.map((f) => `${f.field}: ${f.description}`)].join(" · "));
    } finally {
      setBusy(false);
    }
  };

  if (failure) {
    return (
      <div className="page-message" role="alert">
        <h2>This template cannot be shown</h2>
        <p>{failure}</p>
        <a href="#/templates">Back to the templates</a>
      </div>
    );
  }
  if (!template) return <div className="page-message">Loading {name}…</div>;
  const options = (
    <label className="choice">
      <input type="checkbox" checked={manual} onChange={(e) => setManual(e.target.checked)} /> wait for me before each phase
    </label>
  );
  return (
    <div className="task-page">
      <header className="task-bar">
        <a href="#/templates" className="back">
          ← Templates
        </a>
        <h2>{template.name}</h2>
        <label>
          version{" "}
          <select value={template.version} onChange={(e) => setVersion(Number(e.target.value))} data-testid="template-version">
            {Array.from({ length: Math.max(latest, template.version) }, (_, i) => i + 1)
              .reverse()
              .map((v) => (
                <option key={v} value={v}>
                  v{v}
                  {v === latest ? " (latest)" : ""}
                </option>
              ))}
          </select>
        </label>
        <a className="button" href={`#/templates/${encodeURIComponent(template.name)}/edit`}>
          Edit
        </a>
      </header>
      <div className="template-body">
        <TemplateGraph definitions={template.phases} />
        <aside className="start-panel" aria-label="Start a run">
          <p>{template.description || <span className="muted">no description</span>}</p>
          <h3>Start a run</h3>
          {startFailure && (
            <p className="form-failure" role="alert">
              {startFailure}
            </p>
          )}
          {schema ? (
            <div className="input-form">
              <Form
                schema={schema}
                validator={validator}
                formData={values}
                onChange={(e) => setValues(e.formData)}
                onSubmit={(e) => void start(e.formData)}
                noValidate
                noHtml5Validate
                disabled={busy}
              >
                {options}
                <div className="form-actions">
                  <button type="submit" className="primary" disabled={busy}>
                    Start run
                  </button>
                </div>
              </Form>
            </div>
          ) : (
            <>
              <p className="muted">This template takes no inputs.</p>
              {options}
              <div className="form-actions">
                <button type="button" className="primary" disabled={busy} onClick={() => void start(undefined)}>
                  Start run
                </button>
              </div>
            </>
          )}
        </aside>
      </div>
    </div>
  );
}
