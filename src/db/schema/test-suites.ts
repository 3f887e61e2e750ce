import { sqliteTable, integer, text, index, uniqueIndex, type AnySQLiteColumn } from "drizzle-orm/sqlite-core";
import { testRuns } from "./test-runs";

/**
 * The describe-block hierarchy of a run. `path_key` encodes parent, file path and title, so
 * "upsert by title + file path + parent" is one unique index.
 */
export const testSuites = sqliteTable(
  "test_suites",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id").notNull(),
    projectId: text("project_id").notNull(),
    runId: text("run_id")
      .notNull()
      .references(() => testRuns.id, { onDelete: "cascade" }),
    parentSuiteId: text("parent_suite_id").references((): AnySQLiteColumn => testSuites.id, { onDelete: "cascade" }),
    pathKey: text("path_key").notNull(),
    title: text("title").notNull(),
    filePath: text("file_path"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("test_suites_path_idx").on(t.runId, t.pathKey),
    // Deleting a suite cascades to its children: without this each delete would scan the table.
    index("test_suites_parent_idx").on(t.parentSuiteId),
  ],
);

export type TestSuiteRow = typeof testSuites.$inferSelect;
