import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// `npm run dev` proxies nothing: point VITE_ORCHESTRA_URL at a running
// `orchestra up` (its ORCHESTRA_WEB_ORIGINS must list the dev server's
// origin), or leave it unset and open the page `orchestra up` serves.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    // The graph library is most of the bundle; one chunk keeps the first
    // load a single round trip on the one port.
    chunkSizeWarningLimit: 1024,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
