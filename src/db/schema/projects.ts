import { sqliteTable, integer, text, real, index } from "drizzle-orm/sqlite-core";
import { organizations } from "./organizations";

export const projects = sqliteTable(
  "projects",
  {
    // Unique per deployment and never reused (AUTOINCREMENT); reference 002 addresses projects by it.
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    description: text("description"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [index("projects_org_idx").on(t.organizationId, t.id)],
);

export const projectSettings = sqliteTable("project_settings", {
  projectId: text("project_id")
    .primaryKey()
    .references(() => projects.id, { onDelete: "cascade" }),
  dataRetentionDays: integer("data_retention_days").notNull().default(90),
  flakinessThreshold: real("flakiness_threshold").notNull().default(0.3),
  autoQuarantineEnabled: integer("auto_quarantine_enabled", { mode: "boolean" }).notNull().default(false),
  /** Executions a flakiness score looks back over. */
  flakinessWindow: integer("flakiness_window").notNull().default(30),
  /** Below this many executions in the window a test has no score ("insufficient data"). */
  flakinessMinSamples: integer("flakiness_min_samples").notNull().default(5),
  /** An automatic quarantine ends after this many days without a flaky execution… */
  quarantineRecoveryDays: integer("quarantine_recovery_days").notNull().default(7),
  /** …or after this many consecutive clean (passed, not retried) executions. */
  quarantineRecoveryRuns: integer("quarantine_recovery_runs").notNull().default(20),
  // The project's flakiness summary, kept up to date in the same batch as every change to a test
  // case's score or quarantine, so the flakiness list reads one row for it instead of every test.
  /** Test cases with a score. */
  scoredTests: integer("scored_tests").notNull().default(0),
  /** The sum of their scores in 1/10,000ths (scores have four decimals): exact, no drift. */
  scoreSum: integer("score_sum").notNull().default(0),
  /** Test cases scoring at or above flakiness_threshold. */
  flakyTests: integer("flaky_tests").notNull().default(0),
  quarantinedTests: integer("quarantined_tests").notNull().default(0),
  updatedAt: text("updated_at").notNull(),
});

export type ProjectRow = typeof projects.$inferSelect;
export type ProjectSettingsRow = typeof projectSettings.$inferSelect;
