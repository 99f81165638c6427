/**
 * The template editor: the YAML source on one side, the graph it
 * describes on the other, kept live as the person types. The server
 * validates each draft (ValidateTemplate); every fault is listed with its
 * line, marked in the gutter, and a click puts the cursor there. Saving
 * stores a new version (or, for a new template, its version 1) and opens
 * it. Files the stored source refers to (schemas, prompts) go along,
 * recovered from its bundled spec.
 */
import { ConnectError } from "@connectrpc/connect";
import { useEffect, useMemo, useRef, useState } from "react";

import { useClients } from "../api/clients.js";
import { TemplateFormat, type PhaseDefinition } from "../gen/orchestra/v1/template_pb.js";
import { fieldFaults } from "../tasks/violations.js";
import { faultLine, referencedFiles } from "./source.js";
import { TemplateGraph } from "./TemplateGraph.js";

const STARTER = `name: my-template
description: What this workflow does
phases:
  - id: gather
    title: Gather
    kind: function
    function: json.merge
  - id: review
    title: Review
    kind: human_review
    needs: [gather]
    inputs: { work: gather.merged }
`;

/** How long typing pauses before the draft is validated. */
const SETTLE_MS = 350;

interface Fault {
  line?: number;
  field: string;
  description: string;
}

/** The editor of template `name`, or of a new one when `name` is empty. */
export default function TemplateEditor({ name }: { name: string }) {
  const { templates } = useClients();
  const [source, setSource] = useState<string | null>(name ? null : STARTER);
  const [files, setFiles] = useState<Record<string, string>>({});
  const [faults, setFaults] = useState<Fault[]>([]);
  const [phases, setPhases] = useState<PhaseDefinition[]>([]);
  const [checking, setChecking] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const text = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLPreElement>(null);

  useEffect(() => {
    if (!name) return;
    const abort = new AbortController();
    templates
      .getTemplate({ name, version: 0 }, { signal: abort.signal })
      .then((got) => {
        const template = got.template;
        if (!template) return;
        setSource(template.source);
        setFiles(referencedFiles(template.source, template.specJson));
      })
      .catch((error: unknown) => {
        if (!abort.signal.aborted) setFailure(ConnectError.from(error).rawMessage);
      });
    return () => abort.abort();
  }, [templates, name]);

  useEffect(() => {
    if (source === null) return;
    const abort = new AbortController();
    const timer = setTimeout(() => {
      setChecking(true);
      templates
        .validateTemplate({ source: { source, format: TemplateFormat.YAML, files } }, { signal: abort.signal })
        .then((checked) => {
          setFaults(checked.violations.map((v) => ({ ...v, line: faultLine(source, v.field, v.description) })));
          if (checked.violations.length === 0) setPhases(checked.phases);
          setFailure(null);
        })
        .catch((error: unknown) => {
          if (!abort.signal.aborted) setFailure(ConnectError.from(error).rawMessage);
        })
        .finally(() => setChecking(false));
    }, SETTLE_MS);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [templates, source, files]);

  const lineCount = (source ?? "").split("\n").length;
  const faultLines = useMemo(() => new Set(faults.map((f) => f.line).filter((l) => l !== undefined)), [faults]);
  const gutterLines = useMemo(
    () =>
      Array.from({ length: lineCount }, (_, i) => (
        <span key={i} className={faultLines.has(i + 1) ? "fault-line" : undefined}>
          {`${faultLines.has(i + 1) ? "●" : " "}${String(i + 1).padStart(3)}\n`}
        </span>
      )),
    [lineCount, faultLines],
  );

  const goTo = (line: number) => {
    const area = text.current;
    if (!area || source === null) return;
    const lines = source.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    area.focus();
    area.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
  };

  const save = async () => {
    if (source === null) return;
    setFailure(null);
    setSaved(null);
    try {
      const templateSource = { source, format: TemplateFormat.YAML, files };
      const stored = name
        ? (await templates.createTemplateVersion({ name, source: templateSource })).template
        : (await templates.createTemplate({ source: templateSource })).template;
      if (stored) {
        setSaved(`saved as ${stored.name} v${stored.version}`);
        window.location.hash = `#/templates/${encodeURIComponent(stored.name)}`;
      }
    } catch (error) {
      const refused = ConnectError.from(error);
      const found = fieldFaults(refused);
      if (found.length > 0) setFaults(found.map((v) => ({ ...v, line: faultLine(source, v.field, v.description) })));
      setFailure(refused.rawMessage);
    }
  };

  if (source === null) return <div className="page-message">{failure ? `Cannot load ${name}: ${failure}` : `Loading ${name}…`}</div>;
  return (
    <div className="task-page">
      <header className="task-bar">
        <a href={name ? `#/templates/${encodeURIComponent(name)}` : "#/templates"} className="back">
          ← {name || "Templates"}
        </a>
        <h2>{name ? `Edit ${name}` : "New template"}</h2>
        <span className="muted" role="status" data-testid="validation-state">
          {checking ? "checking…" : faults.length === 0 ? "valid" : `${faults.length} fault${faults.length === 1 ? "" : "s"}`}
        </span>
        <button type="button" className="primary" disabled={faults.length > 0} onClick={() => void save()}>
          {name ? "Save as a new version" : "Save"}
        </button>
        {saved && <span role="status">{saved}</span>}
      </header>
      <div className="editor-body">
        <div className="editor-source">
          <div className="code">
            <pre className="gutter" ref={gutter} aria-hidden="true">
              {gutterLines}
            </pre>
            <textarea
              ref={text}
              value={source}
              onChange={(e) => setSource(e.target.value)}
              onScroll={(e) => {
                if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop;
              }}
              spellCheck={false}
              aria-label="Template source (YAML)"
              wrap="off"
            />
          </div>
          {failure && (
            <p className="form-failure" role="alert">
              {failure}
            </p>
          )}
          {faults.length > 0 && (
            <ul className="faults" aria-label="Faults" data-testid="faults">
              {faults.map((fault, i) => (
                <li key={i}>
                  {fault.line !== undefined ? (
                    <button type="button" className="link" onClick={() => goTo(fault.line ?? 1)}>
                      line {fault.line}
                    </button>
                  ) : (
                    <span className="muted">—</span>
                  )}{" "}
                  <code>{fault.field}</code> {fault.description}
                </li>
              ))}
            </ul>
          )}
        </div>
        <div className="editor-graph">
          {phases.length > 0 ? <TemplateGraph definitions={phases} /> : <p className="page-message muted">The graph shows once the template is valid.</p>}
          {faults.length > 0 && phases.length > 0 && <p className="stale-note">The graph is the last valid draft's.</p>}
        </div>
      </div>
    </div>
  );
}
