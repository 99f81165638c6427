/**
 * Why a phase's output was refused: the raw output of its invalid version
 * beside the output schema its template declares, with each violation
 * under them. Shown for a phase in error that left an invalid version.
 */
import { ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";

import { fetchVersion } from "../api/content.js";
import { useClients } from "../api/clients.js";
import type { ArtifactVersion } from "../gen/orchestra/v1/artifact_pb.js";
import { contentText, outputSchema } from "./artifacts.js";

/** Props of {@link SchemaBreak}. */
export interface SchemaBreakProps {
  runId: string;
  phaseId: string;
  templateName: string;
  templateVersion: number;
  revision: string;
}

/** The raw output and the schema it broke, if the phase left one. */
export function SchemaBreak({ runId, phaseId, templateName, templateVersion, revision }: SchemaBreakProps) {
  const { artifacts, templates } = useClients();
  const [found, setFound] = useState<{ version: ArtifactVersion; raw: string; schema: string | null } | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    (async () => {
      const listed = await artifacts.listArtifacts({ runId, phaseId }, { signal: abort.signal });
      const invalid = listed.artifacts
        .filter((a) => !a.valid && a.ref)
        .sort((a, b) => (b.ref?.attempt ?? 0) - (a.ref?.attempt ?? 0))[0];
      if (!invalid?.ref) {
        setFound(null);
        return;
      }
      const [{ content }, template] = await Promise.all([
        fetchVersion(artifacts, invalid.ref.artifactId, invalid.ref.version, abort.signal),
        templates.getTemplate({ name: templateName, version: templateVersion }, { signal: abort.signal }),
      ]);
      setFound({
        version: invalid,
        raw: contentText(content, invalid.ref.mediaType),
        schema: outputSchema(template.template?.specJson ?? "", phaseId),
      });
    })().catch((error: unknown) => {
      if (!abort.signal.aborted) setFailure(ConnectError.from(error).rawMessage);
    });
    return () => abort.abort();
  }, [artifacts, templates, runId, phaseId, templateName, templateVersion, revision]);

  if (failure) return <p className="panel-note" role="alert">The refused output cannot be read: {failure}</p>;
  if (!found) return null;
  return (
    <section className="schema-break" aria-label="Output that broke its schema" data-testid="schema-break">
      <h4>Output that broke its schema (attempt {found.version.ref?.attempt})</h4>
      <div className="side-by-side">
        <div>
          <div className="pane-title">raw output</div>
          <pre className="json">{found.raw}</pre>
        </div>
        <div>
          <div className="pane-title">schema</div>
          <pre className="json">{found.schema ?? "the template declares no schema for this output"}</pre>
        </div>
      </div>
      <ul className="violations" aria-label="Schema violations">
        {found.version.violations.map((v, i) => (
          <li key={i}>
            <code>{v.field || "(root)"}</code> {v.description}
          </li>
        ))}
      </ul>
    </section>
  );
}
