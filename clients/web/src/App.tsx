/**
 * The page's frame and its routes, kept in the URL's hash so the server
 * only ever serves `/`: `#/` lists the runs, `#/runs/ID` shows one,
 * `#/inbox` lists the open human tasks and `#/tasks/ID` is one of them.
 * The inbox is followed for as long as the page is open, so the
 * navigation's count is always live.
 */
import { lazy, Suspense, useEffect, useMemo, useState } from "react";

import { ClientsContext, createClients, grpcWebTransport, serverUrl } from "./api/clients.js";
import { followInbox } from "./inbox/followInbox.js";
import { InboxPage } from "./inbox/InboxPage.js";
import { inboxStore, useInbox } from "./inbox/inboxStore.js";
import { TemplatesPage } from "./templates/TemplatesPage.js";
import { RunPage } from "./views/RunPage.js";
import { RunsList } from "./views/RunsList.js";

// The form generator and the review workbench load when a task is opened,
// so the runs pages stay small.
const TaskPage = lazy(() => import("./tasks/TaskPage.js"));

const TemplatePage = lazy(() => import("./templates/TemplatePage.js"));
const TemplateEditor = lazy(() => import("./templates/TemplateEditor.js"));

/** Where the page is. */
export type Route =
  | { page: "runs" }
  | { page: "run"; runId: string }
  | { page: "inbox" }
  | { page: "task"; taskId: string }
  | { page: "templates" }
  | { page: "template"; name: string }
  | { page: "edit"; name: string };

/** The route a hash names; anything unknown is the runs list. */
export function routeOf(hash: string): Route {
  const run = /^#\/runs\/([^/]+)/.exec(hash);
  if (run) return { page: "run", runId: decodeURIComponent(run[1]) };
  const task = /^#\/tasks\/([^/]+)/.exec(hash);
  if (task) return { page: "task", taskId: decodeURIComponent(task[1]) };
  if (/^#\/inbox\/?$/.test(hash)) return { page: "inbox" };
  const edit = /^#\/templates\/([^/]+)\/edit$/.exec(hash);
  if (edit) return { page: "edit", name: edit[1] === "new" ? "" : decodeURIComponent(edit[1]) };
  const template = /^#\/templates\/([^/]+)$/.exec(hash);
  if (template) return { page: "template", name: decodeURIComponent(template[1]) };
  if (/^#\/templates\/?$/.test(hash)) return { page: "templates" };
  return { page: "runs" };
}

function InboxLink({ current }: { current: boolean }) {
  const count = useInbox((s) => s.tasks.size);
  const loaded = useInbox((s) => s.loaded);
  return (
    <a href="#/inbox" aria-current={current ? "page" : undefined} data-testid="nav-inbox">
      Inbox{" "}
      {loaded && (
        <span className={`count${count > 0 ? " waiting" : ""}`} aria-label={`${count} open task${count === 1 ? "" : "s"}`}>
          {count}
        </span>
      )}
    </a>
  );
}

/** The whole page. */
export function App() {
  const clients = useMemo(() => createClients(grpcWebTransport(serverUrl())), []);
  const [hash, setHash] = useState(() => window.location.hash);
  const route = useMemo(() => routeOf(hash), [hash]);
  useEffect(() => {
    const onChange = () => setHash(window.location.hash);
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  useEffect(() => {
    const abort = new AbortController();
    void followInbox(clients.review, inboxStore, abort.signal);
    return () => abort.abort();
  }, [clients]);
  return (
    <ClientsContext.Provider value={clients}>
      <div className="app">
        <nav className="top-nav" aria-label="Main">
          <a href="#/" className="brand">
            Orchestra
          </a>
          <a href="#/" aria-current={route.page === "runs" || route.page === "run" ? "page" : undefined}>
            Runs
          </a>
          <a
            href="#/templates"
            aria-current={route.page === "templates" || route.page === "template" || route.page === "edit" ? "page" : undefined}
          >
            Templates
          </a>
          <InboxLink current={route.page === "inbox" || route.page === "task"} />
        </nav>
        <main>
          {route.page === "run" && <RunPage key={route.runId} runId={route.runId} />}
          {route.page === "runs" && <RunsList hash={hash} />}
          {route.page === "inbox" && <InboxPage />}
          <Suspense fallback={<div className="page-message">Loading…</div>}>
            {route.page === "task" && <TaskPage key={route.taskId} taskId={route.taskId} />}
            {route.page === "template" && <TemplatePage key={route.name} name={route.name} />}
            {route.page === "edit" && <TemplateEditor key={route.name} name={route.name} />}
          </Suspense>
          {route.page === "templates" && <TemplatesPage />}
        </main>
      </div>
    </ClientsContext.Provider>
  );
}
