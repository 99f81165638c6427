/**
 * The artifacts a phase produced: a version picker over every version of
 * each, the chosen one as pretty JSON, and the diff against a second
 * version when one is picked: another version of the same artifact, or
 * another phase's artifact of the same name (the two variants of a
 * review, say). Reloads when the phase's output or attempt changes.
 */
import { ConnectError } from "@connectrpc/connect";
import { lazy, Suspense, useEffect, useMemo, useState } from "react";

import { fetchVersion } from "../api/content.js";
import { useClients } from "../api/clients.js";
import type { ArtifactVersion } from "../gen/orchestra/v1/artifact_pb.js";
import { comparableText, contentText, groupVersions, versionLabel } from "./artifacts.js";

const JsonDiff = lazy(() => import("./JsonDiff.js"));

/** Props of {@link ArtifactViewer}. */
export interface ArtifactViewerProps {
  runId: string;
  phaseId: string;
  /** Changes whenever what the phase has produced may have changed. */
  revision: string;
  /** The version to show first (the phase's accepted output). */
  preferredVersion?: number;
}

/** The phase's artifacts with picker and diff. */
export function ArtifactViewer({ runId, phaseId, revision, preferredVersion }: ArtifactViewerProps) {
  const { artifacts } = useClients();
  const [versions, setVersions] = useState<ArtifactVersion[] | null>(null);
  const [others, setOthers] = useState<ArtifactVersion[]>([]);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    (async () => {
      const listed = await artifacts.listArtifacts({ runId }, { signal: abort.signal });
      const own = listed.artifacts.filter((a) => a.ref?.phaseId === phaseId);
      const ids = [...new Set(own.map((a) => a.ref?.artifactId ?? "").filter((id) => id))];
      const histories = await Promise.all(
        ids.map((artifactId) => artifacts.getArtifactHistory({ artifactId }, { signal: abort.signal })),
      );
      setVersions(histories.flatMap((h) => h.versions));
      setOthers(listed.artifacts.filter((a) => a.ref && a.ref.phaseId !== phaseId));
      setFailure(null);
    })().catch((error: unknown) => {
      if (!abort.signal.aborted) setFailure(ConnectError.from(error).rawMessage);
    });
    return () => abort.abort();
  }, [artifacts, runId, phaseId, revision]);

  const groups = useMemo(() => groupVersions(versions ?? []), [versions]);
  if (failure) return <p className="panel-note" role="alert">The artifacts cannot be read: {failure}</p>;
  if (versions === null) return <p className="panel-note muted">Loading artifacts…</p>;
  if (groups.length === 0) return <p className="panel-note muted">No artifacts yet.</p>;
  return (
    <>
      {groups.map((group) => (
        <VersionPicker
          key={group.artifactId}
          name={group.name}
          versions={group.versions}
          others={others.filter((o) => o.ref?.name === group.name)}
          phaseId={phaseId}
          preferredVersion={preferredVersion}
        />
      ))}
    </>
  );
}

/** A version's key in the picker: artifact and version. */
function keyOf(version: ArtifactVersion | undefined): string {
  return version?.ref ? `${version.ref.artifactId}@${version.ref.version}` : "";
}

function VersionPicker({
  name,
  versions,
  others,
  phaseId,
  preferredVersion,
}: {
  name: string;
  versions: ArtifactVersion[];
  others: ArtifactVersion[];
  phaseId: string;
  preferredVersion?: number;
}) {
  const { artifacts } = useClients();
  const initial = versions.find((v) => v.ref?.version === preferredVersion && v.ref?.phaseId === phaseId) ?? versions[0];
  const [shown, setShown] = useState(keyOf(initial));
  const [compare, setCompare] = useState("");
  const [contents, setContents] = useState<Record<string, Uint8Array>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const all = useMemo(() => [...versions, ...others], [versions, others]);

  useEffect(() => {
    const abort = new AbortController();
    const wanted = [shown, compare]
      .filter((key) => key && !(key in contents))
      .map((key) => all.find((v) => keyOf(v) === key)?.ref)
      .filter((ref) => ref !== undefined);
    if (wanted.length === 0) return;
    Promise.all(wanted.map((ref) => fetchVersion(artifacts, ref.artifactId, ref.version, abort.signal)))
      .then((fetched) => {
        setContents((known) => {
          const next = { ...known };
          for (const { version, content } of fetched) next[keyOf(version)] = content;
          return next;
        });
      })
      .catch((error: unknown) => {
        if (!abort.signal.aborted) setFailure(ConnectError.from(error).rawMessage);
      });
    return () => abort.abort();
  }, [artifacts, all, shown, compare, contents]);

  const shownVersion = all.find((v) => keyOf(v) === shown);
  const compareVersion = all.find((v) => keyOf(v) === compare);
  const media = shownVersion?.ref?.mediaType ?? "application/json";
  const comparable = all.filter((v) => keyOf(v) !== shown);
  return (
    <section className="artifact" aria-label={`Artifact ${name}`}>
      <div className="artifact-head">
        <strong>{name}</strong>
        <label>
          version{" "}
          <select value={shown} onChange={(e) => setShown(e.target.value)} data-testid={`version-${name}`}>
            {versions.map((v) => (
              <option key={keyOf(v)} value={keyOf(v)}>
                {versionLabel(v)}
              </option>
            ))}
          </select>
        </label>
        {comparable.length > 0 && (
          <label>
            compare with{" "}
            <select value={compare} onChange={(e) => setCompare(e.target.value)} data-testid={`compare-${name}`}>
              <option value="">nothing</option>
              {comparable.map((v) => (
                <option key={keyOf(v)} value={keyOf(v)}>
                  {versionLabel(v)}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      {shownVersion && !shownVersion.valid && (
        <ul className="violations" aria-label="Schema violations">
          {shownVersion.violations.map((v, i) => (
            <li key={i}>
              <code>{v.field || "(root)"}</code> {v.description}
            </li>
          ))}
        </ul>
      )}
      {failure && <p role="alert">The content cannot be read: {failure}</p>}
      {compare && contents[shown] && contents[compare] && compareVersion && shownVersion ? (
        <Suspense fallback={<p className="muted">Loading the diff…</p>}>
          <JsonDiff
            left={comparableText(contents[compare])}
            right={comparableText(contents[shown])}
            leftTitle={versionLabel(compareVersion)}
            rightTitle={versionLabel(shownVersion)}
            split={false}
          />
        </Suspense>
      ) : contents[shown] ? (
        <pre className="json" data-testid={`content-${name}`}>
          {contentText(contents[shown], media)}
        </pre>
      ) : (
        <p className="muted">Loading…</p>
      )}
    </section>
  );
}
