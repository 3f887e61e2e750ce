import { sqliteTable, integer, text, index, uniqueIndex, primaryKey } from "drizzle-orm/sqlite-core";
import { organizations } from "./organizations";
import { projects } from "./projects";

/**
 * One logical test run. Shards of one CI build (same project, ciBuildId and run title, shardTotal
 * > 1) share a single row, found through the unique `shard_key`; each shard's own registration is
 * a row of test_run_shards. Results of every shard hang off the one run, so its counts are the
 * merged counts by construction.
 */
export const testRuns = sqliteTable(
  "test_runs",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    buildId: text("build_id"),
    planId: text("plan_id"),
    status: text("status").notNull(),
    /** ciBuildId + run title of a sharded run; NULL for unsharded runs (NULLs never collide). */
    shardKey: text("shard_key"),
    branch: text("branch"),
    commitSha: text("commit_sha"),
    commitMessage: text("commit_message"),
    commitAuthor: text("commit_author"),
    ciProvider: text("ci_provider"),
    ciBuildId: text("ci_build_id"),
    ciBuildUrl: text("ci_build_url"),
    playwrightVersion: text("playwright_version"),
    workers: integer("workers"),
    shardCurrent: integer("shard_current"),
    shardTotal: integer("shard_total"),
    browser: text("browser"),
    os: text("os"),
    viewport: text("viewport"),
    hostname: text("hostname"),
    runTitle: text("run_title"),
    tags: text("tags", { mode: "json" }).$type<string[]>().notNull().default([]),
    grepPatterns: text("grep_patterns", { mode: "json" }).$type<string[]>().notNull().default([]),
    // Derived from the run's results in SQL, in the same batch as every results write.
    totalTests: integer("total_tests").notNull().default(0),
    passedTests: integer("passed_tests").notNull().default(0),
    failedTests: integer("failed_tests").notNull().default(0),
    skippedTests: integer("skipped_tests").notNull().default(0),
    flakyTests: integer("flaky_tests").notNull().default(0),
    durationMs: integer("duration_ms").notNull().default(0),
    /** Counts a client set by hand (PATCH); kept beside the derived ones, never over them. */
    reportedCounts: text("reported_counts", { mode: "json" }).$type<ReportedCounts>(),
    /** Failed results of quarantined tests when the run completed: they did not fail the run. */
    quarantinedFailures: integer("quarantined_failures").notNull().default(0),
    /** Why the server's verdict differs from the status the client reported, when it does. */
    statusReason: text("status_reason"),
    submittedAt: text("submitted_at"),
    /** Written by the statement that moves the run into a terminal status, so the same batch can
     * emit the completion events exactly once. */
    completionToken: text("completion_token"),
    completedAt: text("completed_at"),
    /** Set when a delete starts: the run disappears from every read at once; rows go in chunks. */
    deletedAt: text("deleted_at"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("test_runs_shard_key_idx").on(t.projectId, t.shardKey),
    index("test_runs_project_created_idx").on(t.projectId, t.createdAt),
    index("test_runs_org_created_idx").on(t.organizationId, t.createdAt),
    index("test_runs_deleted_idx").on(t.deletedAt),
    // A release's readiness reads the runs of one build.
    index("test_runs_build_idx").on(t.buildId),
  ],
);

export interface ReportedCounts {
  totalTests?: number;
  passedTests?: number;
  failedTests?: number;
  skippedTests?: number;
  flakyTests?: number;
  duration?: number;
}

/** Each shard's registration with its logical run (which shard, on which host, its own status). */
export const testRunShards = sqliteTable(
  "test_run_shards",
  {
    runId: text("run_id")
      .notNull()
      .references(() => testRuns.id, { onDelete: "cascade" }),
    shardCurrent: integer("shard_current").notNull(),
    status: text("status").notNull(),
    hostname: text("hostname"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.shardCurrent] })],
);

export type TestRunRow = typeof testRuns.$inferSelect;
export type TestRunShardRow = typeof testRunShards.$inferSelect;
