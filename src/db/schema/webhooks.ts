import { sqliteTable, integer, text, index, uniqueIndex } from "drizzle-orm/sqlite-core";
import { sql } from "drizzle-orm";
import { organizations } from "./organizations";
import { projects } from "./projects";

/**
 * A webhook subscription: an organization's (project_id NULL) or one project's. Secrets are
 * stored sealed (AES-GCM, key derived from a Worker secret); during a rotation the previous one
 * still signs until previous_secret_expires_at.
 */
export const webhooks = sqliteTable(
  "webhooks",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    projectId: text("project_id").references(() => projects.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    events: text("events", { mode: "json" }).$type<string[]>().notNull(),
    headers: text("headers", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
    description: text("description"),
    secretSealed: text("secret_sealed").notNull(),
    previousSecretSealed: text("previous_secret_sealed"),
    previousSecretExpiresAt: text("previous_secret_expires_at"),
    isActive: integer("is_active", { mode: "boolean" }).notNull().default(true),
    /** Why delivery stopped on its own: "gone" (the receiver answered 410) or "failing" (5 days of failures). */
    disabledReason: text("disabled_reason"),
    disabledAt: text("disabled_at"),
    /** Start of the current run of failed deliveries; NULL after a success. */
    failingSince: text("failing_since"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [index("webhooks_org_idx").on(t.organizationId, t.number), index("webhooks_project_idx").on(t.projectId)],
);

/** One event for one webhook: its attempts so far and how the last one went. */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id").notNull(),
    webhookId: text("webhook_id")
      .notNull()
      .references(() => webhooks.id, { onDelete: "cascade" }),
    eventId: text("event_id").notNull(),
    eventType: text("event_type").notNull(),
    /** pending | sending | retrying | succeeded | failed */
    status: text("status").notNull(),
    attempts: integer("attempts").notNull().default(0),
    lastStatusCode: integer("last_status_code"),
    lastDurationMs: integer("last_duration_ms"),
    /** At most 4 KB of the receiver's last answer. */
    lastResponse: text("last_response"),
    lastError: text("last_error"),
    nextAttemptAt: text("next_attempt_at"),
    /** A consumer sending it holds it until then (a duplicate message must not send twice). */
    leaseUntil: text("lease_until"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
    completedAt: text("completed_at"),
  },
  (t) => [
    // One delivery per event and webhook, however often the event's message arrives.
    uniqueIndex("webhook_deliveries_event_idx").on(t.webhookId, t.eventId),
    index("webhook_deliveries_webhook_idx").on(t.webhookId, t.number),
    index("webhook_deliveries_created_idx").on(t.createdAt),
  ],
);

export type WebhookRow = typeof webhooks.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
