import { z } from "@hono/zod-openapi";
import { SYNC_INGEST_MAX_BYTES, SYNC_INGEST_MAX_RESULTS, ingestReport, type IngestTarget } from "../../core/ingest/ingest";
import { RUN_LIMITS } from "../../core/limits";
import { defineRoute } from "../../http/routes";
import { invalidFromZod } from "../../http/validation";
import { INGEST_FORMATS } from "../../ingest";
import { nativeErrors } from "../errors-openapi";
import { Id, Text } from "../fields";
import { coreContext, jsonResponse, surfaceApp } from "../shared";
import { TestRunSchema, runInputOf, testRunOut } from "./run-schemas";

const tags = ["native: ingest"];

const shard = z.coerce.number().int().min(1).max(RUN_LIMITS.shards).optional();
const text = Text(RUN_LIMITS.text).optional();

/** Run metadata an ingest may carry, as query parameters or as X-Greenlight-* headers. */
const IngestTargetFields = z.object({
  project_id: Id.optional().openapi({ description: "Implied by a project-restricted key." }),
  run_id: Id.optional().openapi({ description: "Extend this run." }),
  build_id: Id.optional(),
  branch: text,
  commit_sha: text,
  commit_message: text,
  commit_author: text,
  ci_provider: text,
  ci_build_id: text.openapi({ description: "Reports of one CI build (and run title) extend one run." }),
  ci_build_url: text,
  run_title: text,
  shard_current: shard,
  shard_total: shard,
  hostname: text,
  os: text,
  browser: text,
});

const IngestQuery = IngestTargetFields.extend({
  format: z.enum(INGEST_FORMATS).optional().openapi({ description: "Overrides detection from Content-Type and content." }),
});

const HEADER_PREFIX = "x-greenlight-";
const headerName = (field: string) => `X-Greenlight-${field.split("_").map((w) => w[0]!.toUpperCase() + w.slice(1)).join("-")}`;

const IngestOutcomeSchema = z
  .object({
    run_id: z.string(),
    format: z.enum(INGEST_FORMATS),
    created_run: z.boolean().openapi({ description: "False when the report extended an existing run." }),
    results: z.number().int().openapi({ description: "Results in the report." }),
    superseded: z.number().int(),
    report_totals: z.record(z.string(), z.number()).nullable().openapi({ description: "The report's own declared totals." }),
    run: TestRunSchema,
  })
  .openapi("IngestOutcome");

const ingestRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "post",
    path: "/results/ingest",
    operationId: "ingestReport",
    tags,
    summary: "Ingest a JUnit XML, Playwright JSON, CTRF or native JSON report",
    description: `The body is the report. Its format comes from \`?format=\`, else from Content-Type (XML = JUnit) and the JSON's shape. Run metadata come from query parameters, else \`X-Greenlight-*\` headers (e.g. \`X-Greenlight-Ci-Build-Id\`), else the report. The report extends the run named by \`run_id\`, or the run of the same CI build (project + ci_build_id + run_title; shards merge as for POST /testruns), or a new run. Reports up to ${SYNC_INGEST_MAX_BYTES / 1024 / 1024} MB and ${SYNC_INGEST_MAX_RESULTS} results are ingested in the request, all or nothing.`,
    request: {
      query: IngestQuery,
      body: {
        required: true,
        content: {
          "application/xml": { schema: { type: "string", description: "A JUnit XML report." } },
          "text/xml": { schema: { type: "string", description: "A JUnit XML report." } },
          "application/json": { schema: { type: "object", description: "A Playwright JSON, CTRF or native report." } },
        },
      },
    },
    responses: {
      201: jsonResponse(IngestOutcomeSchema, "Ingested."),
      ...nativeErrors(400, 401, 403, 404, 413, 415, 422),
    },
  },
  { idempotent: true },
);

/** X-Greenlight-* headers, validated like the query; the query wins where both are given. */
function targetFromHeaders(headers: Headers): z.infer<typeof IngestTargetFields> {
  const raw: Record<string, string> = {};
  for (const field of Object.keys(IngestTargetFields.shape)) {
    const value = headers.get(`${HEADER_PREFIX}${field.replace(/_/g, "-")}`);
    if (value !== null) raw[field] = value;
  }
  const parsed = IngestTargetFields.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw invalidFromZod(parsed.error, "header", raw, headerName);
}

export const ingestRoutes = surfaceApp().openapi(ingestRoute, async (c) => {
  const { format, ...query } = c.req.valid("query");
  const t = { ...targetFromHeaders(c.req.raw.headers), ...Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) };
  const target: IngestTarget = { ...runInputOf(t), runId: t.run_id };
  const outcome = await ingestReport(coreContext(c), {
    text: await c.req.text(),
    contentType: c.req.header("content-type") ?? null,
    format,
    target,
  });
  return c.json(
    {
      run_id: outcome.run.id,
      format: outcome.format,
      created_run: outcome.createdRun,
      results: outcome.results,
      superseded: outcome.superseded,
      report_totals: (outcome.reportTotals as Record<string, number> | null) ?? null,
      run: testRunOut(outcome.run),
    },
    201,
  );
});
