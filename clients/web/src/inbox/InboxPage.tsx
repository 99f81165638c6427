/** The inbox: the open human tasks, oldest first, live from WatchInbox. */
import { useMemo } from "react";

import { HumanTaskKind, HumanTaskState } from "../gen/orchestra/v1/review_pb.js";
import { timestampMs } from "../store/time.js";
import { inboxTasks } from "./inbox.js";
import { useInbox } from "./inboxStore.js";

/** The inbox page. */
export function InboxPage() {
  const tasks = useInbox((s) => s.tasks);
  const loaded = useInbox((s) => s.loaded);
  const connection = useInbox((s) => s.connectionStatus);
  const list = useMemo(() => inboxTasks(tasks), [tasks]);
  return (
    <section className="runs">
      <h2>Inbox</h2>
      {connection === "error" && (
        <p className="page-message" role="alert">
          The server cannot be reached; reconnecting.
        </p>
      )}
      {!loaded && connection !== "error" && <p className="muted">Loading…</p>}
      {loaded && list.length === 0 && <p className="muted">Nothing waits for you.</p>}
      {list.length > 0 && (
        <table className="runs-table">
          <thead>
            <tr>
              <th>Task</th>
              <th>Kind</th>
              <th>Template</th>
              <th>State</th>
              <th>Opened</th>
            </tr>
          </thead>
          <tbody>
            {list.map((task) => {
              const opened = timestampMs(task.createdAt);
              return (
                <tr key={task.id} data-testid="inbox-row">
                  <td>
                    <a href={`#/tasks/${encodeURIComponent(task.id)}`}>{task.title || task.key?.phaseId}</a>
                  </td>
                  <td>{task.kind === HumanTaskKind.REVIEW ? "review" : "input"}</td>
                  <td>{task.templateName}</td>
                  <td>{task.state === HumanTaskState.CLAIMED ? `claimed by ${task.claimedBy}` : "open"}</td>
                  <td>{opened === undefined ? "" : new Date(opened).toLocaleString()}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
