import { sqliteTable, integer, text, index } from "drizzle-orm/sqlite-core";

/**
 * The events outbox: written in the same batch as the change that causes it, delivered to
 * webhooks later (a sweep reads rows with dispatched_at NULL).
 */
export const events = sqliteTable(
  "events",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id").notNull(),
    projectId: text("project_id"),
    type: text("type").notNull(),
    /** The id of what the event is about (a run, a result). */
    subjectId: text("subject_id"),
    payload: text("payload", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    createdAt: text("created_at").notNull(),
    /** Taken by one outbox flush; a claim older than a minute without dispatched_at is retried. */
    claimedAt: text("claimed_at"),
    dispatchedAt: text("dispatched_at"),
  },
  (t) => [
    index("events_pending_idx").on(t.dispatchedAt, t.number),
    index("events_org_idx").on(t.organizationId, t.number),
    index("events_subject_idx").on(t.subjectId),
  ],
);

export type EventRow = typeof events.$inferSelect;
