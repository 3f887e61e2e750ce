import { sqliteTable, text, integer, index } from "drizzle-orm/sqlite-core";
import { organizations } from "./organizations";
import { projects } from "./projects";

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    // A project-restricted key is deleted with its project (reference 003: deleting a project
    // deletes its API keys).
    projectId: text("project_id").references(() => projects.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** The first characters of the key, indexed, so a lookup never needs the secret itself. */
    lookupPrefix: text("lookup_prefix").notNull(),
    /** Hex SHA-256 of the whole key; the key itself is never stored. */
    keyHash: text("key_hash").notNull().unique(),
    lastFour: text("last_four").notNull(),
    /** JSON array of scope names. */
    scopes: text("scopes", { mode: "json" }).$type<string[]>().notNull(),
    isActive: integer("is_active", { mode: "boolean" }).notNull().default(true),
    /** The user who created the key, if a user (not another key) did: the key never exceeds that
     * user's role in the organization, now or after a later demotion. */
    createdByUserId: text("created_by_user_id"),
    expiresAt: text("expires_at"),
    lastUsedAt: text("last_used_at"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    index("api_keys_lookup_prefix_idx").on(t.lookupPrefix),
    index("api_keys_org_idx").on(t.organizationId, t.id),
    index("api_keys_project_idx").on(t.projectId),
  ],
);

export type ApiKeyRow = typeof apiKeys.$inferSelect;
