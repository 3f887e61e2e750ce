import { sqliteTable, text, integer, primaryKey, index } from "drizzle-orm/sqlite-core";

/**
 * One row per (caller, Idempotency-Key). The key itself is stored hashed and the response
 * encrypted with a key derived from it, so a database dump replays nothing (a replayed
 * POST /api-keys response carries a secret).
 */
export const idempotencyRecords = sqliteTable(
  "idempotency_records",
  {
    /** Who may replay: "key:<api key id>" or "admin". */
    scope: text("scope").notNull(),
    keyHash: text("key_hash").notNull(),
    method: text("method").notNull(),
    path: text("path").notNull(),
    requestHash: text("request_hash").notNull(),
    /** Null while the first request is still being processed. */
    status: integer("status"),
    response: text("response"),
    createdAt: text("created_at").notNull(),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.keyHash] }), index("idempotency_expires_idx").on(t.expiresAt)],
);
