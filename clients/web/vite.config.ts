import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// `npm run dev` proxies nothing: point VITE_ORCHESTRA_URL at a running
// `orchestra up` (its ORCHESTRA_WEB_ORIGINS must list the dev server's
// origin), or leave it unset and open the page `orchestra up` serves.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    // React, React Flow, dagre and the protobuf runtime make one chunk of
    // about 185 KB gzipped: one request on first load, well under the
    // 500 KB budget, so Vite's 500 KB (raw) warning is raised.
    chunkSizeWarningLimit: 1024,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
