/**
 * One human task's page: the form of a human_input task or the workbench
 * of a review, or, once the task is done, what was decided. The task is
 * read with GetTask, and again whenever the inbox stream says it changed
 * (another person decided it, say).
 */
import { ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";

import { useClients } from "../api/clients.js";
import { DecisionKind, type HumanTask, HumanTaskKind, HumanTaskState } from "../gen/orchestra/v1/review_pb.js";
import { useInbox } from "../inbox/inboxStore.js";
import { timestampMs } from "../store/time.js";
import { InputForm } from "./InputForm.js";
import { ReviewWorkbench } from "./ReviewWorkbench.js";

const DECISION_WORDS: Record<DecisionKind, string> = {
  [DecisionKind.UNSPECIFIED]: "answered",
  [DecisionKind.APPROVE]: "approved",
  [DecisionKind.REJECT]: "rejected",
  [DecisionKind.RETRY]: "sent back for a retry",
};

/** Who the page acts as: remembered in this browser. */
export function usePerson(): [string, (name: string) => void] {
  const [person, setPerson] = useState(() => window.localStorage.getItem("orchestra.person") ?? "");
  return [
    person,
    (name: string) => {
      window.localStorage.setItem("orchestra.person", name);
      setPerson(name);
    },
  ];
}

/** The page of task `taskId`. */
export default function TaskPage({ taskId }: { taskId: string }) {
  const { review } = useClients();
  const [task, setTask] = useState<HumanTask | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [person, setPerson] = usePerson();
  // The inbox's copy changes (or leaves) when the task changes anywhere.
  const stamp = useInbox((s) => {
    const known = s.tasks.get(taskId);
    return known ? `${known.state}:${timestampMs(known.updatedAt)}` : "gone";
  });

  useEffect(() => {
    const abort = new AbortController();
    review
      .getTask({ taskId }, { signal: abort.signal })
      .then((got) => {
        setTask(got.task ?? null);
        setFailure(null);
      })
      .catch((error: unknown) => {
        if (!abort.signal.aborted) setFailure(ConnectError.from(error).rawMessage);
      });
    return () => abort.abort();
  }, [review, taskId, stamp]);

  if (failure) {
    return (
      <div className="page-message" role="alert">
        <h2>This task cannot be shown</h2>
        <p>{failure}</p>
        <a href="#/inbox">Back to the inbox</a>
      </div>
    );
  }
  if (!task) return <div className="page-message">Loading task {taskId}…</div>;
  const open = task.state === HumanTaskState.OPEN || task.state === HumanTaskState.CLAIMED;
  const runId = task.key?.runId ?? "";
  return (
    <div className="task-page">
      <header className="task-bar">
        <a href="#/inbox" className="back">
          ← Inbox
        </a>
        <h2>{task.title || task.key?.phaseId}</h2>
        <span className="muted">
          {task.kind === HumanTaskKind.REVIEW ? "review" : "input"} · {task.templateName} ·{" "}
          <a href={`#/runs/${encodeURIComponent(runId)}`}>run {runId.slice(0, 8)}…</a> · attempt {task.key?.attempt}
        </span>
        <label className="person">
          acting as{" "}
          <input value={person} onChange={(e) => setPerson(e.target.value)} placeholder="your name" aria-label="Your name" />
        </label>
      </header>
      <div className="task-body">
        {!open ? (
          <div className="task-closed" role="status" data-testid="task-closed">
            {task.state === HumanTaskState.CANCELLED ? (
              <p>This task was closed: {task.closedReason || "the run no longer needs it"}.</p>
            ) : (
              <p>
                Done: {DECISION_WORDS[task.decision?.kind ?? DecisionKind.UNSPECIFIED]}
                {task.decision?.selected.length ? ` ${task.decision.selected.join(", ")}` : ""}
                {task.decision?.decidedBy ? ` by ${task.decision.decidedBy}` : ""}
                {task.decision?.comment ? ` (“${task.decision.comment}”)` : ""}.
              </p>
            )}
            <a className="button primary" href={`#/runs/${encodeURIComponent(runId)}`}>
              Back to the run
            </a>
          </div>
        ) : task.kind === HumanTaskKind.REVIEW ? (
          <ReviewWorkbench task={task} person={person} onDone={setTask} />
        ) : (
          <InputForm task={task} person={person} onDone={setTask} />
        )}
      </div>
    </div>
  );
}
