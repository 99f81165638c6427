/**
 * What the gallery reads from a template: its run inputs as one form
 * schema (each input a property, required where the template says), the
 * values of that form as StartRun's JSON-text inputs, and its phases as
 * nodes a graph can lay out. Pure.
 */
import { create } from "@bufbuild/protobuf";
import type { RJSFSchema } from "@rjsf/utils";

import { PhaseState } from "../gen/orchestra/v1/common_pb.js";
import { type Phase, PhaseSchema } from "../gen/orchestra/v1/run_pb.js";
import type { PhaseDefinition } from "../gen/orchestra/v1/template_pb.js";

interface SpecInput {
  schema?: unknown;
  required?: boolean;
  description?: string;
}

/** The run inputs a bundled spec declares, as one object schema (null when there are none). */
export function inputsSchema(specJson: string): RJSFSchema | null {
  let spec: { inputs?: Record<string, SpecInput> };
  try {
    spec = JSON.parse(specJson) as typeof spec;
  } catch {
    return null;
  }
  const inputs = Object.entries(spec.inputs ?? {});
  if (inputs.length === 0) return null;
  const properties: Record<string, RJSFSchema> = {};
  const required: string[] = [];
  for (const [name, input] of inputs) {
    const schema = input.schema && typeof input.schema === "object" ? { ...(input.schema as RJSFSchema) } : {};
    if (input.description && !schema.description) schema.description = input.description;
    properties[name] = schema;
    if (input.required !== false) required.push(name);
  }
  return { type: "object", properties, required };
}

/** The form's values as StartRun's inputs: each given value as JSON text. */
export function runInputs(values: unknown): Record<string, string> {
  if (!values || typeof values !== "object") return {};
  const inputs: Record<string, string> = {};
  for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
    if (value !== undefined) inputs[name] = JSON.stringify(value);
  }
  return inputs;
}

/** Phase definitions as phases the run graph's layout and nodes take, none run yet. */
export function definitionPhases(definitions: PhaseDefinition[]): Phase[] {
  return definitions.map((d) =>
    create(PhaseSchema, { id: d.id, title: d.title, kind: d.kind, needs: d.needs, state: PhaseState.UNSPECIFIED }),
  );
}
