/**
 * The page's frame and its two routes, kept in the URL's hash so the server
 * only ever serves `/`: `#/` lists the runs, `#/runs/ID` shows one.
 */
import { useEffect, useMemo, useState } from "react";

import { createClients, grpcWebTransport, serverUrl } from "./api/clients.js";
import { RunPage } from "./views/RunPage.js";
import { RunsList } from "./views/RunsList.js";

function currentRoute(): { runId: string | null } {
  const match = /^#\/runs\/([^/]+)/.exec(window.location.hash);
  return { runId: match ? decodeURIComponent(match[1]) : null };
}

/** The whole page. */
export function App() {
  const clients = useMemo(() => createClients(grpcWebTransport(serverUrl())), []);
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return (
    <div className="app">
      <nav className="top-nav">
        <a href="#/" className="brand">
          Orchestra
        </a>
      </nav>
      <main>
        {route.runId ? <RunPage key={route.runId} client={clients.runs} runId={route.runId} /> : <RunsList client={clients.runs} />}
      </main>
    </div>
  );
}
