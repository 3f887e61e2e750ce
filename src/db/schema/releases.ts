import { sqliteTable, integer, text, index, uniqueIndex } from "drizzle-orm/sqlite-core";
import { sql } from "drizzle-orm";
import { organizations } from "./organizations";
import { projects } from "./projects";

/** What makes a release's build ready to ship; unset fields fall back to the defaults in core. */
export interface ReleaseGate {
  /** 0..1: passed (flaky included) ÷ executed (skipped excluded). */
  min_pass_rate?: number;
  /** Any failing test case that is not quarantined blocks the release. */
  block_on_failures?: boolean;
}

export const releases = sqliteTable(
  "releases",
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
    version: text("version"),
    /** planned | in_progress | released | cancelled */
    status: text("status").notNull(),
    /** YYYY-MM-DD */
    targetDate: text("target_date"),
    gate: text("gate", { mode: "json" }).$type<ReleaseGate>().notNull().default(sql`'{}'`),
    releasedAt: text("released_at"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [uniqueIndex("releases_project_name_idx").on(t.projectId, t.name), index("releases_org_idx").on(t.organizationId, t.number)],
);

/**
 * A build registered by CI (or the UI). Without a release it waits in its project's build queue,
 * whose order the BUILD_QUEUE Durable Object keeps; D1 says which builds belong in the queue
 * (release_id NULL and status planned), the object says in which order.
 */
export const builds = sqliteTable(
  "builds",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    releaseId: text("release_id").references(() => releases.id, { onDelete: "set null" }),
    name: text("name").notNull(),
    buildNumber: text("build_number"),
    commitSha: text("commit_sha"),
    branch: text("branch"),
    repoUrl: text("repo_url"),
    /** planned | in_progress | passed | failed | cancelled */
    status: text("status").notNull(),
    /** api | ui */
    source: text("source").notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    // Re-registering a build (a CI retry) finds the existing one by either identity.
    uniqueIndex("builds_project_number_idx").on(t.projectId, t.buildNumber).where(sql`build_number IS NOT NULL`),
    uniqueIndex("builds_project_commit_name_idx").on(t.projectId, t.commitSha, t.name).where(sql`commit_sha IS NOT NULL`),
    index("builds_project_idx").on(t.projectId, t.number),
    index("builds_release_idx").on(t.releaseId, t.number),
    index("builds_org_idx").on(t.organizationId, t.number),
  ],
);

export type ReleaseRow = typeof releases.$inferSelect;
export type BuildRow = typeof builds.$inferSelect;
