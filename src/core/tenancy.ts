import { and, eq, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Principal } from "./context";

/**
 * The SQL that keeps a query inside what a principal may see: its organization, and its project
 * when the key is restricted to one. Every table that belongs to a project scopes reads with it.
 */
export function tenantScope(principal: Principal, columns: { organizationId: SQLiteColumn; projectId: SQLiteColumn }): SQL {
  const conditions = [eq(columns.organizationId, principal.organizationId)];
  if (principal.projectId) conditions.push(eq(columns.projectId, principal.projectId));
  return and(...conditions)!;
}
