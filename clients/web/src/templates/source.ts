/**
 * Reading a template's YAML source in the editor: the line each fault the
 * server reports is at (from the fault's field path, such as
 * `phases[1].needs[0]`, found in the YAML with its positions, or from the
 * parser's own "at line N"), and the files a stored source refers to
 * (schemas, prompts), recovered from its bundled spec so that editing it
 * needs no files. Pure.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from "yaml";

/** `phases[1].output.schema` → ["phases", 1, "output", "schema"]. */
export function fieldPath(field: string): (string | number)[] {
  const path: (string | number)[] = [];
  for (const part of field.split(".")) {
    const name = /^[^[]*/.exec(part)?.[0] ?? "";
    if (name) path.push(name);
    for (const index of part.matchAll(/\[(\d+)\]/g)) path.push(Number(index[1]));
  }
  return path;
}

/** The 1-based line a fault is at, if it can be placed. */
export function faultLine(source: string, field: string, description: string): number | undefined {
  const stated = /at line (\d+)/.exec(description);
  if (stated) return Number(stated[1]);
  const counter = new LineCounter();
  const doc = parseDocument(source, { lineCounter: counter });
  let path = fieldPath(field);
  // The nearest part of the path that exists: a missing field is the fault of its parent.
  while (path.length > 0) {
    const node = doc.getIn(path, true) as Node | undefined;
    const range = node && (isScalar(node) || isMap(node) || isSeq(node)) ? node.range : undefined;
    if (range) {
      // A mapping's value begins on its key's line or below; the key is where the eye goes.
      const keyLine = keyLineOf(doc.contents, path, counter);
      return keyLine ?? counter.linePos(range[0]).line;
    }
    path = path.slice(0, -1);
  }
  return undefined;
}

function keyLineOf(root: unknown, path: (string | number)[], counter: LineCounter): number | undefined {
  let node: unknown = root;
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === step);
      if (!pair) return undefined;
      if (i === path.length - 1 && isScalar(pair.key) && pair.key.range) return counter.linePos(pair.key.range[0]).line;
      node = pair.value;
    } else if (isSeq(node) && typeof step === "number") {
      node = node.items[step];
      if (i === path.length - 1 && node && (isMap(node) || isScalar(node) || isSeq(node)) && node.range) {
        return counter.linePos(node.range[0]).line;
      }
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** Whether a string in a source is a reference to a file, as the server reads one. */
function isFileRef(value: string): boolean {
  return /^[^\s]+\.(json|j2|jinja|txt|md)$/.test(value);
}

/**
 * The files a stored source refers to, with their content from the
 * bundled spec: wherever the source holds a file reference and the spec,
 * at the same place, the content it was replaced by.
 */
export function referencedFiles(source: string, specJson: string): Record<string, string> {
  let spec: unknown;
  try {
    spec = JSON.parse(specJson);
  } catch {
    return {};
  }
  const files: Record<string, string> = {};
  const walk = (written: unknown, bundled: unknown) => {
    if (typeof written === "string") {
      if (isFileRef(written) && bundled !== undefined && bundled !== written) {
        files[written] = typeof bundled === "string" ? bundled : JSON.stringify(bundled, null, 2);
      }
    } else if (Array.isArray(written) && Array.isArray(bundled)) {
      written.forEach((w, i) => walk(w, bundled[i]));
    } else if (written && typeof written === "object" && bundled && typeof bundled === "object") {
      for (const [key, value] of Object.entries(written as Record<string, unknown>)) {
        walk(value, (bundled as Record<string, unknown>)[key]);
      }
    }
  };
  try {
    walk(parseDocument(source).toJS(), spec);
  } catch {
    return files;
  }
  return files;
}
