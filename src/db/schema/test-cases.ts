import { sql } from "drizzle-orm";
import { sqliteTable, integer, real, text, index, uniqueIndex } from "drizzle-orm/sqlite-core";
import { organizations } from "./organizations";
import { projects } from "./projects";

/**
 * The stable identity of a test within a project. `identity_key` is `auto:<automation id>` when
 * the test has one, else `path:<file path>\u001f<full title>`.
 */
export const testCases = sqliteTable(
  "test_cases",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    identityKey: text("identity_key").notNull(),
    automationId: text("automation_id"),
    title: text("title").notNull(),
    fullTitle: text("full_title").notNull(),
    filePath: text("file_path"),
    lineNumber: integer("line_number"),
    description: text("description"),
    tags: text("tags", { mode: "json" }).$type<string[]>().notNull().default([]),
    // Flakiness over the test's last executions (src/core/flakiness/flakiness.ts), refreshed when
    // its results arrive; the score is NULL below the project's minimum sample.
    flakinessScore: real("flakiness_score"),
    flakyRuns: integer("flaky_runs").notNull().default(0),
    totalRuns: integer("total_runs").notNull().default(0),
    flipRate: real("flip_rate"),
    sameCommitConflicts: integer("same_commit_conflicts").notNull().default(0),
    passOnRetry: integer("pass_on_retry").notNull().default(0),
    flakinessConfidence: real("flakiness_confidence"),
    flakinessUpdatedAt: text("flakiness_updated_at"),
    /** When the last execution counted as flaky (retried into a pass, or on a conflicting commit) ran. */
    lastFlakyAt: text("last_flaky_at"),
    // Quarantine: its failures no longer block a release. Who set it (a key id, or "auto") and why.
    isQuarantined: integer("is_quarantined", { mode: "boolean" }).notNull().default(false),
    quarantinedAt: text("quarantined_at"),
    quarantinedBy: text("quarantined_by"),
    quarantineReason: text("quarantine_reason"),
    /** "manual" (a person, through the API) or "auto" (the score reached the project's threshold).
     * Only automatic quarantines recover by themselves. */
    quarantineSource: text("quarantine_source"),
    /** When the test last left quarantine: auto-quarantine needs a flaky execution after it. */
    quarantineReleasedAt: text("quarantine_released_at"),
    /** The oldest execution inside the score's window ('' when the window holds all of them):
     * deleting a result older than this cannot change the score. */
    flakinessWindowStart: text("flakiness_window_start"),
    /** A random token set when the score may be out of date (its results were deleted, or the
     * project's settings changed); cleared by the refresh that read it. */
    flakinessStale: text("flakiness_stale"),
    /** Results of this test case (its executions, skipped ones too): the history's total, kept
     * by the writes and deletes of results instead of counted on every read. */
    executions: integer("executions").notNull().default(0),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("test_cases_identity_idx").on(t.projectId, t.identityKey),
    index("test_cases_project_file_idx").on(t.projectId, t.filePath),
    // Listing a project's cases in creation order reads this index alone, without a sort.
    index("test_cases_project_number_idx").on(t.projectId, t.number),
    // The flakiness list reads a page of this index, whatever the length of the history.
    index("test_cases_project_flakiness_idx").on(t.projectId, t.flakinessScore),
    // Lists filtered on quarantine read only the matching rows, in score order.
    index("test_cases_project_quarantine_idx").on(t.projectId, t.isQuarantined, t.flakinessScore),
    // Only the few rows waiting for a refresh or an automatic recovery are in these.
    index("test_cases_stale_idx").on(t.projectId).where(sql`flakiness_stale IS NOT NULL`),
    index("test_cases_auto_quarantine_idx").on(t.projectId, t.quarantinedAt).where(sql`is_quarantined = 1 AND quarantine_source = 'auto'`),
  ],
);

export type TestCaseRow = typeof testCases.$inferSelect;
