import { defineConfig } from "vitest/config";

// The end-to-end suite: a real `orchestra up` (debug build) and, for the
// page, headless Chromium. One file at a time, each with its own server.
export default defineConfig({
  test: {
    include: ["e2e/**/*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
