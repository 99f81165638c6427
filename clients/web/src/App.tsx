/**
 * The page's frame and its routes, kept in the URL's hash so the server
 * only ever serves `/`: `#/` lists the runs, `#/runs/ID` shows one.
 */
import { useEffect, useMemo, useState } from "react";

import { ClientsContext, createClients, grpcWebTransport, serverUrl } from "./api/clients.js";
import { RunPage } from "./views/RunPage.js";
import { RunsList } from "./views/RunsList.js";

/** Where the page is. */
export type Route = { page: "runs" } | { page: "run"; runId: string };

/** The route a hash names; anything unknown is the runs list. */
export function routeOf(hash: string): Route {
  const run = /^#\/runs\/([^/]+)/.exec(hash);
  if (run) return { page: "run", runId: decodeURIComponent(run[1]) };
  return { page: "runs" };
}

/** The whole page. */
export function App() {
  const clients = useMemo(() => createClients(grpcWebTransport(serverUrl())), []);
  const [route, setRoute] = useState(() => routeOf(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(routeOf(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return (
    <ClientsContext.Provider value={clients}>
      <div className="app">
        <nav className="top-nav" aria-label="Main">
          <a href="#/" className="brand">
            Orchestra
          </a>
          <a href="#/" aria-current={route.page === "runs" ? "page" : undefined}>
            Runs
          </a>
        </nav>
        <main>
          {route.page === "run" ? <RunPage key={route.runId} runId={route.runId} /> : <RunsList client={clients.runs} />}
        </main>
      </div>
    </ClientsContext.Provider>
  );
}
