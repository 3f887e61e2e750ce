import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { webhookReceiver } from "./test/webhook-receiver";

// Tests run inside workerd with the real bindings of wrangler.toml (D1, R2, Durable Objects,
// Queues); migrations/ is applied by test/setup/apply-migrations.ts.
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          // Every outbound fetch of the Worker goes to the test receiver (webhook deliveries).
          outboundService: webhookReceiver,
          bindings: {
            TEST_MIGRATIONS: migrations,
            // Set explicitly so a developer's .dev.vars cannot change what the tests see.
            REQUIRE_HTTPS: "true",
            PUBLIC_BASE_URL: "",
            ADMIN_TOKEN: "test-admin-token",
            URL_SIGNING_SECRET: "test-url-signing-secret",
            // Small, so every large ingest in the tests also hands over between invocations.
            INGEST_CHUNKS_PER_INVOCATION: "1",
            // Organizations without a setting are not limited in the tests (many make hundreds of
            // requests with one key); test/rate-limits.test.ts gives its organizations limits.
            RATE_LIMIT_TIER: "unlimited",
            // Responses say what they cost in D1 (Server-Timing), which tests of read costs assert.
            D1_METRICS: "on",
            // Many tests change a key in D1 directly and expect the next request to see it; the
            // cache is tested on its own (test/auth-cache.test.ts) with the default lifetime.
            AUTH_CACHE_SECONDS: "0",
          },
        },
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      // In CI a JSON report as well, from which .ci/run prints the closing "N passed, N failed".
      reporters: process.env.CI ? ["default", "json"] : ["default"],
      outputFile: { json: "test-results/workers.json" },
      setupFiles: ["./test/setup/apply-migrations.ts"],
      // Tests drive real D1/R2/queues on a shared 2-core machine: a walk over every route took
      // 6.3 s once under load (vitest's default budget is 5 s). Speed is measured in bench/.
      testTimeout: 30_000,
      // The Worker logs every client error as a JSON line; the suite provokes hundreds on purpose.
      onConsoleLog: (log: string) => !log.includes('"level":"info"'),
    },
  };
});
