/**
 * A review: the candidates side by side (each with its rubric checks,
 * pass or fail with their detail, its preview in a sandboxed frame, and
 * its content), a JSON-aware diff of two candidates, and the decision:
 * approve picking the candidate, reject, or send phases back for a retry
 * with a comment. Every control is a native one, so the review is
 * decidable from the keyboard alone.
 */
import { ConnectError } from "@connectrpc/connect";
import { lazy, Suspense, useMemo, useState } from "react";

import { useClients } from "../api/clients.js";
import { DecisionKind, type HumanTask, Selection } from "../gen/orchestra/v1/review_pb.js";
import { comparableText, contentText } from "../views/artifacts.js";
import { NAME_FIRST } from "./InputForm.js";
import { Preview } from "./Preview.js";
import { candidatesOf, previewsOf, retryablePhases, rubricsOf } from "./review.js";
import { errorSchemaOf, fieldFaults } from "./violations.js";

const JsonDiff = lazy(() => import("../views/JsonDiff.js"));

const encoder = new TextEncoder();

/** Props of {@link ReviewWorkbench}. */
export interface ReviewWorkbenchProps {
  task: HumanTask;
  person: string;
  onDone(task: HumanTask): void;
}

/** The workbench of review `task`. */
export function ReviewWorkbench({ task, person, onDone }: ReviewWorkbenchProps) {
  const { review } = useClients();
  const candidates = useMemo(() => candidatesOf(task), [task]);
  const rubrics = useMemo(() => rubricsOf(task), [task]);
  const previews = useMemo(() => previewsOf(task), [task]);
  const phases = useMemo(() => retryablePhases(task), [task]);
  const show = new Set(task.show.length > 0 ? task.show : ["diff", "rubric", "preview"]);
  const [picked, setPicked] = useState<string>("");
  const [comment, setComment] = useState("");
  const [retry, setRetry] = useState<Set<string>>(() => new Set(phases.filter((p) => p.candidate).map((p) => p.phaseId)));
  const [left, setLeft] = useState(candidates[0] ?? "");
  const [right, setRight] = useState(candidates[1] ?? candidates[0] ?? "");
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const content = (name: string) => task.items.find((i) => i.name === name)?.content ?? "";
  const needsPick = task.selection === Selection.ONE && candidates.length > 1;

  const decide = async (kind: DecisionKind) => {
    setFailure(null);
    if (!person.trim()) {
      setFailure(NAME_FIRST);
      return;
    }
    if (kind === DecisionKind.APPROVE && needsPick && !picked) {
      setFailure("Pick the candidate to approve first.");
      return;
    }
    if (kind === DecisionKind.RETRY && retry.size === 0) {
      setFailure("Pick at least one phase to run again.");
      return;
    }
    setBusy(true);
    try {
      const decided = await review.decide({
        taskId: task.id,
        kind,
        comment,
        selected: kind === DecisionKind.APPROVE && picked ? [picked] : [],
        retryPhases: kind === DecisionKind.RETRY ? [...retry] : [],
        person,
      });
      if (decided.task) onDone(decided.task);
    } catch (error) {
      const refused = ConnectError.from(error);
      const faults = fieldFaults(refused);
      const tree = errorSchemaOf(faults) as Record<string, { __errors?: string[] }>;
      setFailure([refused.rawMessage, ...Object.values(tree).flatMap((n) => n.__errors ?? [])].join(" · "));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="workbench">
      <div className="candidates" style={{ gridTemplateColumns: `repeat(${Math.max(1, candidates.length)}, minmax(0, 1fr))` }}>
        {candidates.map((name) => {
          const rubric = rubrics.get(name);
          const html = previews.get(name);
          return (
            <section key={name} className={`candidate${picked === name ? " picked" : ""}`} aria-label={`Candidate ${name}`} data-testid={`candidate-${name}`}>
              <h3>
                Candidate {name}
                {rubric?.score !== undefined && <span className="score"> score {rubric.score.toFixed(2)}</span>}
              </h3>
              {show.has("rubric") && rubric && (
                <ul className="rubric" aria-label={`Rubric of ${name}`}>
                  {rubric.checks.map((check) => (
                    <li key={check.id} className={check.passed ? "pass" : "fail"}>
                      <span className="verdict">{check.passed ? "✓ pass" : "✗ fail"}</span> <code>{check.id}</code>{" "}
                      <span className="muted">{check.detail}</span>
                    </li>
                  ))}
                </ul>
              )}
              {show.has("preview") && html !== undefined && <Preview name={name} html={html} />}
              <details>
                <summary>Content</summary>
                <pre className="json">{contentText(encoder.encode(content(name)))}</pre>
              </details>
            </section>
          );
        })}
      </div>

      {show.has("diff") && candidates.length > 1 && (
        <section className="review-diff" aria-label="Diff">
          <div className="artifact-head">
            <strong>Diff</strong>
            <label>
              left{" "}
              <select value={left} onChange={(e) => setLeft(e.target.value)}>
                {candidates.map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            </label>
            <label>
              right{" "}
              <select value={right} onChange={(e) => setRight(e.target.value)}>
                {candidates.map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            </label>
          </div>
          <Suspense fallback={<p className="muted">Loading the diff…</p>}>
            <JsonDiff
              left={comparableText(encoder.encode(content(left)))}
              right={comparableText(encoder.encode(content(right)))}
              leftTitle={`candidate ${left}`}
              rightTitle={`candidate ${right}`}
            />
          </Suspense>
        </section>
      )}

      <form
        className="decision"
        aria-label="Decision"
        onSubmit={(e) => {
          e.preventDefault();
          void decide(DecisionKind.APPROVE);
        }}
      >
        {candidates.length > 0 && task.selection !== Selection.UNSPECIFIED && (
          <fieldset>
            <legend>Approve which candidate?</legend>
            {candidates.map((name) => (
              <label key={name} className="choice">
                <input type="radio" name="candidate" value={name} checked={picked === name} onChange={() => setPicked(name)} /> {name}
              </label>
            ))}
          </fieldset>
        )}
        <label className="comment">
          Comment (sent with a retry as the model's feedback)
          <textarea value={comment} onChange={(e) => setComment(e.target.value)} rows={3} />
        </label>
        {phases.length > 0 && (
          <fieldset>
            <legend>Phases a retry runs again</legend>
            {phases.map(({ phaseId }) => (
              <label key={phaseId} className="choice">
                <input
                  type="checkbox"
                  checked={retry.has(phaseId)}
                  onChange={(e) => {
                    const next = new Set(retry);
                    if (e.target.checked) next.add(phaseId);
                    else next.delete(phaseId);
                    setRetry(next);
                  }}
                />{" "}
                {phaseId}
              </label>
            ))}
          </fieldset>
        )}
        {failure && (
          <p className="form-failure" role="alert">
            {failure}
          </p>
        )}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy}>
            Approve{picked ? ` ${picked}` : ""}
          </button>
          <button type="button" className="danger" disabled={busy} onClick={() => void decide(DecisionKind.REJECT)}>
            Reject
          </button>
          <button type="button" disabled={busy} onClick={() => void decide(DecisionKind.RETRY)}>
            Retry with comment
          </button>
        </div>
      </form>
    </div>
  );
}
