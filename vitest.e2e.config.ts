// End-to-end tests (`npm run test:e2e`): plain Node environment, no Workers pool. Each test file
// starts the real local server (scripts/dev.mjs -> wrangler dev) and talks to it over HTTP on
// loopback, so files run one at a time and timeouts are generous.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.ts"],
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: "test-results/e2e.json" },
    environment: "node",
    pool: "forks",
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
