import { sqliteTable, integer, text } from "drizzle-orm/sqlite-core";

export const organizations = sqliteTable("organizations", {
  // AUTOINCREMENT: a deleted organization's number is never handed out again, so an integer
  // address (reference 002 style) can never silently point at someone else's data.
  number: integer("number").primaryKey({ autoIncrement: true }),
  id: text("id").notNull().unique(),
  name: text("name").notNull(),
  /** Webhook subscriptions allowed; NULL is unlimited (the self-hosted default). */
  maxWebhooks: integer("max_webhooks"),
  /** RateLimitConfig (src/core/rate-limits/limits.ts); NULL follows the deployment's default tier. */
  rateLimits: text("rate_limits", { mode: "json" }).$type<import("../../core/rate-limits/limits").RateLimitConfig>(),
  /** Credits left for queued test runs (reference 002's 402); NULL is unlimited (the self-hosted default). */
  credits: integer("credits"),
  /** What a queued quick run and a deep run cost in credits. */
  creditCostQuick: integer("credit_cost_quick").notNull().default(1),
  creditCostDeep: integer("credit_cost_deep").notNull().default(3),
  createdAt: text("created_at").notNull(),
  updatedAt: text("updated_at").notNull(),
});

export type OrganizationRow = typeof organizations.$inferSelect;
