/**
 * How artifact content reads on the page: decoded, pretty-printed when it
 * is JSON, with object keys sorted for comparing (so a diff shows changed
 * values, not keys in another order), and each version labelled. Also the
 * output schema a phase's template declares, which an invalid output is
 * shown beside. Pure functions, tested on their own.
 */
import type { ArtifactVersion } from "../gen/orchestra/v1/artifact_pb.js";

const decoder = new TextDecoder();

/** The content as text: JSON pretty-printed, anything else as it is. */
export function contentText(content: Uint8Array, mediaType = "application/json"): string {
  const text = decoder.decode(content);
  if (!isJsonType(mediaType) && !looksLikeJson(text)) return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/**
 * The content for comparing: JSON with every object's keys sorted and
 * pretty-printed, so that two versions line up field by field.
 */
export function comparableText(content: Uint8Array): string {
  const text = decoder.decode(content);
  try {
    return JSON.stringify(sortKeys(JSON.parse(text)), null, 2);
  } catch {
    return text;
  }
}

/** A JSON value with the keys of every object in it sorted. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/** "v2 · variant_a, attempt 1 · invalid". */
export function versionLabel(version: ArtifactVersion): string {
  const ref = version.ref;
  if (!ref) return "unknown version";
  const parts = [`v${ref.version}`, `${ref.phaseId}, attempt ${ref.attempt}`];
  if (!version.valid) parts.push("invalid");
  else if (version.isLatest) parts.push("latest");
  return parts.join(" · ");
}

/** The versions grouped by artifact, each group newest first, groups by name. */
export function groupVersions(versions: ArtifactVersion[]): { artifactId: string; name: string; versions: ArtifactVersion[] }[] {
  const groups = new Map<string, { artifactId: string; name: string; versions: ArtifactVersion[] }>();
  for (const version of versions) {
    const ref = version.ref;
    if (!ref) continue;
    const group = groups.get(ref.artifactId) ?? { artifactId: ref.artifactId, name: ref.name, versions: [] };
    group.versions.push(version);
    groups.set(ref.artifactId, group);
  }
  for (const group of groups.values()) group.versions.sort((a, b) => (b.ref?.version ?? 0) - (a.ref?.version ?? 0));
  return [...groups.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The output schema the template (its bundled `spec_json`) declares for
 * `phaseId`, pretty-printed; null when it declares none or the spec
 * cannot be read.
 */
export function outputSchema(specJson: string, phaseId: string): string | null {
  try {
    const spec = JSON.parse(specJson) as { phases?: { id?: string; output?: { schema?: unknown } }[] };
    const schema = spec.phases?.find((p) => p.id === phaseId)?.output?.schema;
    if (schema === undefined || schema === null || typeof schema === "string") return null;
    return JSON.stringify(schema, null, 2);
  } catch {
    return null;
  }
}

function isJsonType(mediaType: string): boolean {
  return mediaType === "" || mediaType.includes("json");
}

function looksLikeJson(text: string): boolean {
  const start = text.trimStart()[0];
  return start === "{" || start === "[";
}
