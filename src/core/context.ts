import type { Db } from "../db/client";
import type { Env } from "../env";
import type { Scope } from "./keys/scopes";
import type { RateLimitConfig } from "./rate-limits/limits";
import { Forbidden } from "./errors";

/** Who is calling: an API key of one organization, possibly restricted to one project. */
export interface Principal {
  keyId: string;
  organizationId: string;
  /** Set when the key is restricted to one project: it sees nothing else. */
  projectId: string | null;
  scopes: ReadonlySet<string>;
  /** The user behind a session, or who created the key (when a user did). */
  userId?: string | null;
  /** Set for a browser session: logout ends it. */
  sessionId?: string | null;
  /** The user's role in the organization (sessions, and keys a user created). */
  role?: import("../db/schema").MemberRole | null;
  /** The organization's rate-limit setting, read with the key (no second query per request). */
  rateLimits?: RateLimitConfig | null;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** What every core verb receives besides its input. */
export interface CoreContext {
  db: Db;
  env: Env;
  principal: Principal;
  clock: Clock;
}

/** Context for deployment-level operations authorized by ADMIN_TOKEN rather than a key. */
export interface AdminContext {
  db: Db;
  env: Env;
  clock: Clock;
}

export function nowIso(clock: Clock): string {
  return clock.now().toISOString();
}

export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.has(scope)) {
    throw new Forbidden(`This API key lacks the '${scope}' scope.`, { required_scope: scope });
  }
}
