import { sqliteTable, integer, text, index, uniqueIndex } from "drizzle-orm/sqlite-core";
import { testCases } from "./test-cases";
import { testRuns } from "./test-runs";

/** One execution of a test case in a run; a test case has at most one result per run. */
export const results = sqliteTable(
  "results",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id").notNull(),
    projectId: text("project_id").notNull(),
    runId: text("run_id")
      .notNull()
      .references(() => testRuns.id, { onDelete: "cascade" }),
    testCaseId: text("test_case_id")
      .notNull()
      .references(() => testCases.id, { onDelete: "cascade" }),
    /** The submission that last wrote this row: lets one batch find exactly the rows it wrote. */
    submissionId: text("submission_id").notNull(),
    title: text("title").notNull(),
    fullTitle: text("full_title").notNull(),
    filePath: text("file_path"),
    lineNumber: integer("line_number"),
    status: text("status").notNull(),
    durationMs: integer("duration_ms").notNull(),
    retries: integer("retries").notNull().default(0),
    attempt: integer("attempt").notNull().default(1),
    isFlaky: integer("is_flaky", { mode: "boolean" }).notNull().default(false),
    tags: text("tags", { mode: "json" }).$type<string[]>().notNull().default([]),
    annotations: text("annotations", { mode: "json" }).$type<unknown[]>().notNull().default([]),
    error: text("error", { mode: "json" }).$type<Record<string, string>>(),
    steps: text("steps", { mode: "json" }).$type<unknown[]>().notNull().default([]),
    /** Output and steps up to 64 KB are kept inline; larger ones live in R2 under *_key, never truncated. */
    stepsKey: text("steps_key"),
    stdout: text("stdout"),
    stdoutKey: text("stdout_key"),
    stderr: text("stderr"),
    stderrKey: text("stderr_key"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("results_run_case_idx").on(t.runId, t.testCaseId),
    // Covers the per-run count and duration aggregate.
    index("results_run_status_idx").on(t.runId, t.status, t.isFlaky, t.durationMs),
    // A run's results in number order (the index carries the rowid, which is number): a page of
    // GET /testruns/{id}/results reads the page, not the run.
    index("results_run_idx").on(t.runId),
    index("results_case_created_idx").on(t.testCaseId, t.createdAt),
    index("results_project_created_idx").on(t.projectId, t.createdAt),
    index("results_run_submission_idx").on(t.runId, t.submissionId),
  ],
);

export type ResultRow = typeof results.$inferSelect;
