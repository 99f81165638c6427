/**
 * A human_input task's form, generated from the task's JSON Schema by
 * react-jsonschema-form. The server checks a submission against the same
 * schema; each fault it reports shows at its field (and in the list at the
 * top). A person may also paste the whole answer as JSON, which fills the
 * form.
 */
import { ConnectError } from "@connectrpc/connect";
import Form from "@rjsf/core";
import type { ErrorSchema, RJSFSchema, UiSchema } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import Ajv2020 from "ajv/dist/2020.js";
import { useEffect, useMemo, useRef, useState } from "react";

import { useClients } from "../api/clients.js";
import type { HumanTask } from "../gen/orchestra/v1/review_pb.js";
import { errorSchemaOf, fieldFaults } from "./violations.js";

/**
 * The validator the form resolves `$ref`s and `oneOf`s with: Ajv for JSON
 * Schema 2020-12, the draft the server validates against (the server alone
 * decides whether a submission is valid).
 */
const validator = customizeValidator({ AjvClass: Ajv2020 });

/** Said when nobody is named as answering: the answer records who gave it. */
export const NAME_FIRST = "Fill in your name (“acting as”, at the top) first: your answer is recorded with it.";

/** Props of {@link InputForm}. */
export interface InputFormProps {
  task: HumanTask;
  person: string;
  onDone(task: HumanTask): void;
}

/** The form of `task`. */
export function InputForm({ task, person, onDone }: InputFormProps) {
  const { review } = useClients();
  const schema = useMemo(() => titledOptions(parseSchema(task.formSchemaJson)) as RJSFSchema, [task.formSchemaJson]);
  const uiSchema = useMemo(() => longTextAreas(schema), [schema]);
  const alert = useRef<HTMLParagraphElement>(null);
  const [formData, setFormData] = useState<unknown>(undefined);
  const [extraErrors, setExtraErrors] = useState<ErrorSchema | undefined>(undefined);
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [mode, setMode] = useState<"form" | "json">("form");
  const [jsonText, setJsonText] = useState("");
  const [jsonProblem, setJsonProblem] = useState<string | null>(null);

  // A refusal is said at the top, where the person may not be looking.
  useEffect(() => {
    if (failure) alert.current?.scrollIntoView({ block: "nearest" });
  }, [failure]);

  const submit = async (data: unknown) => {
    if (!person.trim()) {
      setFailure(NAME_FIRST);
      return;
    }
    setBusy(true);
    setFailure(null);
    try {
      const done = await review.submitInput({ taskId: task.id, contentJson: JSON.stringify(data ?? {}), person });
      setExtraErrors(undefined);
      if (done.task) onDone(done.task);
    } catch (error) {
      const refused = ConnectError.from(error);
      const faults = fieldFaults(refused);
      // Faults of the form's own fields show at them; the others (who is
      // answering, the request itself) are said here.
      const inForm = faults.filter((f) => f.field.startsWith("/"));
      const outside = faults.filter((f) => !f.field.startsWith("/")).map((f) => `${f.field} ${f.description}`);
      setExtraErrors(inForm.length > 0 ? errorSchemaOf(inForm) : undefined);
      setFailure(
        [
          inForm.length > 0 ? `The server refused the form: ${inForm.length} field${inForm.length === 1 ? "" : "s"} to fix, marked below.` : "",
          ...outside,
          faults.length === 0 ? refused.rawMessage : "",
        ]
          .filter((part) => part)
          .join(" "),
      );
      setMode("form");
    } finally {
      setBusy(false);
    }
  };

  const applyJson = () => {
    try {
      const parsed = JSON.parse(jsonText) as unknown;
      setFormData(parsed);
      setJsonProblem(null);
      setMode("form");
    } catch (error) {
      setJsonProblem(`Not JSON: ${(error as Error).message}`);
    }
  };

  return (
    <div className="input-form">
      <div className="mode-switch" role="tablist" aria-label="How to fill in the form">
        <button type="button" role="tab" aria-selected={mode === "form"} onClick={() => setMode("form")}>
          Form
        </button>
        <button
          type="button"
          role="tab"
          aria-selected={mode === "json"}
          onClick={() => {
            setJsonText(JSON.stringify(formData ?? {}, null, 2));
            setMode("json");
          }}
        >
          Paste JSON
        </button>
      </div>
      {failure && (
        <p className="form-failure" role="alert" data-testid="form-failure" ref={alert}>
          {failure}
        </p>
      )}
      {mode === "json" ? (
        <div className="json-entry">
          <label htmlFor="json-entry">The whole answer as JSON; it fills the form.</label>
          <textarea id="json-entry" value={jsonText} onChange={(e) => setJsonText(e.target.value)} rows={18} spellCheck={false} />
          {jsonProblem && <p role="alert">{jsonProblem}</p>}
          <button type="button" className="primary" onClick={applyJson}>
            Fill the form
          </button>
        </div>
      ) : (
        <Form
          schema={schema}
          uiSchema={uiSchema}
          validator={validator}
          formData={formData}
          onChange={(event) => setFormData(event.formData)}
          onSubmit={(event) => void submit(event.formData)}
          extraErrors={extraErrors}
          noValidate
          noHtml5Validate
          showErrorList="top"
          disabled={busy}
        >
          <div className="form-actions">
            <button type="submit" className="primary" disabled={busy}>
              {busy ? "Submitting…" : "Submit"}
            </button>
          </div>
        </Form>
      )}
    </div>
  );
}

/**
 * The schema with a title on each `oneOf`/`anyOf` option that has none but
 * is told apart by a constant property (`{type: {const: "max_ops"}}`), so
 * the option picker reads "max_ops" rather than "Option 1".
 */
export function titledOptions(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(titledOptions);
  if (!schema || typeof schema !== "object") return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema as Record<string, unknown>)) copy[key] = titledOptions(value);
  for (const key of ["oneOf", "anyOf"]) {
    const options = copy[key];
    if (!Array.isArray(options)) continue;
    copy[key] = options.map((option: unknown) => {
      if (!option || typeof option !== "object" || "title" in option) return option;
      const properties = ((option as { properties?: Record<string, unknown> }).properties ?? {}) as Record<string, { const?: unknown }>;
      const constant = Object.values(properties).find((p) => p && typeof p === "object" && typeof p.const === "string");
      return constant ? { ...option, title: constant.const } : option;
    });
  }
  return copy;
}

/** Long text fields (a `maxLength` above 200) at the form's top level get a text area. */
export function longTextAreas(schema: RJSFSchema): UiSchema {
  const ui: UiSchema = {};
  const properties = (schema.properties ?? {}) as Record<string, RJSFSchema | boolean>;
  for (const [name, property] of Object.entries(properties)) {
    if (typeof property === "object" && property.type === "string" && (property.maxLength ?? 0) > 200) {
      ui[name] = { "ui:widget": "textarea", "ui:options": { rows: 4 } };
    }
  }
  return ui;
}

function parseSchema(text: string): RJSFSchema {
  if (!text.trim()) return { type: "object" };
  try {
    return JSON.parse(text) as RJSFSchema;
  } catch {
    return { type: "object" };
  }
}
