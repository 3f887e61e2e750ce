import { sql } from "drizzle-orm";
import { sqliteTable, integer, text, index, uniqueIndex } from "drizzle-orm/sqlite-core";
import { organizations } from "./organizations";

/** A person who signs in with e-mail and password (PBKDF2-SHA256, per-user salt). */
export const users = sqliteTable("users", {
  number: integer("number").primaryKey({ autoIncrement: true }),
  id: text("id").notNull().unique(),
  /** Lower-cased and trimmed; unique in the deployment. */
  email: text("email").notNull().unique(),
  name: text("name"),
  avatarUrl: text("avatar_url"),
  /** Hex PBKDF2-SHA256 of the password, with the salt (hex) and iteration count it was made with. */
  passwordHash: text("password_hash").notNull(),
  passwordSalt: text("password_salt").notNull(),
  passwordIterations: integer("password_iterations").notNull(),
  createdAt: text("created_at").notNull(),
  updatedAt: text("updated_at").notNull(),
});

export const MEMBER_ROLES = ["owner", "admin", "member", "viewer"] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

/** A user's role in an organization (a team, on the reporting surface). */
export const memberships = sqliteTable(
  "memberships",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: text("role").notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [uniqueIndex("memberships_org_user_idx").on(t.organizationId, t.userId), index("memberships_user_idx").on(t.userId)],
);

/** A browser session: the cookie holds an opaque token; only its SHA-256 is stored. */
export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    tokenHash: text("token_hash").notNull().unique(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** The organization the session acts in (a user may belong to several). */
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull(),
    expiresAt: text("expires_at").notNull(),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("sessions_user_idx").on(t.userId)],
);

/** An invitation to join an organization with a role; its token (hashed) is the accept link. */
export const invitations = sqliteTable(
  "invitations",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    role: text("role").notNull(),
    tokenHash: text("token_hash").notNull().unique(),
    /** The user or key that invited. */
    invitedBy: text("invited_by"),
    /** pending, accepted, revoked (expired is derived from expires_at). */
    status: text("status").notNull(),
    expiresAt: text("expires_at").notNull(),
    acceptedAt: text("accepted_at"),
    createdAt: text("created_at").notNull(),
  },
  (t) => [
    index("invitations_org_idx").on(t.organizationId, t.number),
    index("invitations_pending_idx").on(t.organizationId, t.email).where(sql`status = 'pending'`),
  ],
);

export type UserRow = typeof users.$inferSelect;
export type MembershipRow = typeof memberships.$inferSelect;
export type InvitationRow = typeof invitations.$inferSelect;
