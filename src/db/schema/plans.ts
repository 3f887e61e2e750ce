import { sql } from "drizzle-orm";
import { sqliteTable, integer, text, index, uniqueIndex } from "drizzle-orm/sqlite-core";
import { organizations } from "./organizations";
import { projects } from "./projects";
import { testRuns } from "./test-runs";

export const TEST_TYPES = ["quickTest", "deepTest"] as const;
export type TestType = (typeof TEST_TYPES)[number];

/**
 * A test plan (reference 002) or test suite (reference 004): what to run, addressed by its string
 * id or by its integer `number` (unique in the deployment, never reused), selected by its tags.
 */
export const testPlans = sqliteTable(
  "test_plans",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    description: text("description"),
    defaultTestType: text("default_test_type").notNull().default("quickTest"),
    /** Tag name → values: what reference 004's include/exclude selectors match. */
    tags: text("tags", { mode: "json" }).$type<Record<string, string[]>>().notNull().default({}),
    /** The test cases (ids) and file patterns (globs) it covers. */
    testCaseIds: text("test_case_ids", { mode: "json" }).$type<string[]>().notNull().default([]),
    filePatterns: text("file_patterns", { mode: "json" }).$type<string[]>().notNull().default([]),
    /** Cookies injected into its runs, AES-GCM encrypted (never returned in clear); runtime cookies override them. */
    cookiesSealed: text("cookies_sealed"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [index("test_plans_project_idx").on(t.projectId, t.number), index("test_plans_org_idx").on(t.organizationId, t.number)],
);

/** A named target environment of a project (reference 004's env_name). */
export const environments = sqliteTable(
  "environments",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id").notNull(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    baseUrl: text("base_url"),
    variables: text("variables", { mode: "json" }).$type<Record<string, string>>().notNull().default({}),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [uniqueIndex("environments_project_name_idx").on(t.projectId, t.name)],
);

/** A named execution context of a project (reference 004's context_name): data handed to the runner. */
export const contexts = sqliteTable(
  "contexts",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id").notNull(),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull().default({}),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [uniqueIndex("contexts_project_name_idx").on(t.projectId, t.name)],
);

export const JOB_STATUSES = ["queued", "claimed", "done", "failed", "cancelled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/**
 * A queued test run waiting for one of the team's runners: claimed with a lease, extended by
 * heartbeats, given back on release or when the lease runs out (at most `max_attempts` claims).
 */
export const jobs = sqliteTable(
  "jobs",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id").notNull(),
    projectId: text("project_id").notNull(),
    runId: text("run_id")
      .notNull()
      .references(() => testRuns.id, { onDelete: "cascade" }),
    planId: text("plan_id"),
    testType: text("test_type").notNull(),
    /** The CI build / commit the trigger named (reference 002's buildId), or reference 004's app_id. */
    buildRef: text("build_ref"),
    deviceName: text("device_name"),
    platformVersion: text("platform_version"),
    environmentId: text("environment_id"),
    contextId: text("context_id"),
    labels: text("labels", { mode: "json" }).$type<string[]>().notNull().default([]),
    /** The plan's cookies with the trigger's laid over them, sealed as the plan's are. */
    cookiesSealed: text("cookies_sealed"),
    creditsCharged: integer("credits_charged").notNull().default(0),
    status: text("status").notNull(),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(3),
    leaseUntil: text("lease_until"),
    /** The key of the runner holding it. */
    claimedBy: text("claimed_by"),
    runnerName: text("runner_name"),
    error: text("error"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
    finishedAt: text("finished_at"),
  },
  (t) => [
    // A claim reads the oldest claimable job of the organization (queued, or with a lapsed lease).
    index("jobs_claimable_idx").on(t.organizationId, t.number).where(sql`status IN ('queued', 'claimed')`),
    index("jobs_run_idx").on(t.runId),
  ],
);

export type TestPlanRow = typeof testPlans.$inferSelect;
export type JobRow = typeof jobs.$inferSelect;
