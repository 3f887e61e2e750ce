import { log } from "../lib/log";
import type { Context } from "hono";
import type { Principal } from "../core/context";
import { RateLimited, Unavailable } from "../core/errors";
import { type RateLimitGroup, WINDOW_SECONDS, deploymentTier, limitFor } from "../core/rate-limits/limits";
import type { RateLimitDecision } from "../durable-objects/rate-limiter";
import type { AppEnv } from "./app-env";

/** Failed authentications one client address may make per minute before it is answered 429. */
export const AUTH_FAILURES_PER_MINUTE = 30;
const AUTH_FAILURES_GROUP = "auth_failures";
/** How long a 503 asks a client to wait when the limiter cannot answer. */
const UNAVAILABLE_RETRY_SECONDS = 5;

/**
 * Addresses this isolate has seen run out of failed authentications, until their window ends:
 * they are refused before their key is even looked up, valid or not, which is what slows key
 * guessing down. Other isolates learn it from the limiter on the address's next failure.
 */
const blockedAddresses = new Map<string, number>();

type Mode = "on" | "off" | "fail-open";

/** RATE_LIMITS: "off" for local load tests and benchmarks, "fail-open" to allow when the limiter is down. */
function modeOf(value: string | undefined): Mode {
  return value === "off" || value === "fail-open" ? value : "on";
}

async function decide(c: Context<AppEnv>, name: string, group: string, limit: number): Promise<RateLimitDecision | null> {
  try {
    return await c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(name)).hit(group, limit, WINDOW_SECONDS);
  } catch (err) {
    return unavailable(c, err);
  }
}

/** The limiter could not answer: logged; null (allow) in fail-open mode, else 503. */
function unavailable(c: Context<AppEnv>, err: unknown): null {
  log.error("rate limiter unavailable", { request_id: c.get("requestId"), message: String(err) });
  if (modeOf(c.env.RATE_LIMITS) === "fail-open") return null;
  throw new Unavailable("Rate limiting is unavailable for a moment; retry shortly.", UNAVAILABLE_RETRY_SECONDS);
}

/**
 * Requests of the current window this isolate holds for a key and group, granted by the key's
 * limiter in one call (a lease): spending one costs no call. Leases never let more through than
 * the limit (granted requests count as made); an isolate that dies with requests left merely
 * refuses a little early that minute, never lets extra through.
 */
interface Lease {
  limit: number;
  windowStart: number;
  tokens: number;
  /** The window's unleased requests when this isolate last asked; `r=` in RateLimit is this plus `tokens`. */
  unleased: number;
  resetAt: number;
}
const leases = new Map<string, Lease>();
const MAX_LEASES = 10_000;
/** A lease is a twentieth of the limit (at most 50): a limit under 40 a minute is counted one request at a time. */
export function leaseSize(limit: number): number {
  return Math.max(1, Math.min(50, Math.floor(limit / 20)));
}

/** Takes one request from this isolate's lease, or a new lease from the limiter; null when the limiter is down in fail-open mode. */
async function spend(c: Context<AppEnv>, keyId: string, group: string, limit: number): Promise<RateLimitDecision | null> {
  const now = Date.now();
  const windowMs = WINDOW_SECONDS * 1000;
  const windowStart = Math.floor(now / windowMs) * windowMs;
  const name = `key:${keyId}`;
  const slot = `${name}\u001f${group}`;
  const held = leases.get(slot);
  const current = held && held.limit === limit && held.windowStart === windowStart ? held : undefined;
  if (current && current.tokens > 0) {
    current.tokens--;
    return { allowed: true, limit, remaining: current.unleased + current.tokens, resetSeconds: Math.max(1, Math.ceil((current.resetAt - now) / 1000)) };
  }
  let lease;
  try {
    lease = await c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(name)).take(group, limit, WINDOW_SECONDS, leaseSize(limit));
  } catch (err) {
    return unavailable(c, err);
  }
  // Other requests of this isolate may have taken leases meanwhile: their tokens are kept, and a
  // refusal from the limiter is only final when none are left (a burst of concurrent requests
  // all ask before any lease arrives).
  const again = leases.get(slot);
  const kept = again && again.limit === limit && again.windowStart === lease.windowStart ? again.tokens : 0;
  if (lease.granted === 0) {
    if (again && kept > 0) {
      again.tokens--;
      return { allowed: true, limit, remaining: again.unleased + again.tokens, resetSeconds: lease.resetSeconds };
    }
    return { allowed: false, limit, remaining: 0, resetSeconds: lease.resetSeconds };
  }
  if (leases.size >= MAX_LEASES) leases.clear();
  const next = { limit, windowStart: lease.windowStart, tokens: kept + lease.granted - 1, unleased: lease.remaining, resetAt: now + lease.resetSeconds * 1000 };
  leases.set(slot, next);
  return { allowed: true, limit, remaining: next.unleased + next.tokens, resetSeconds: lease.resetSeconds };
}

/**
 * Counts a request of an authenticated key against its group's limit: from this isolate's lease
 * of the window when it has one, else one Durable Object call, and no D1 query (the
 * organization's setting came with the key). Sets the IETF draft RateLimit headers; past the
 * limit, throws 429 with Retry-After.
 */
export async function limitKeyRequest(c: Context<AppEnv>, principal: Principal, group: RateLimitGroup): Promise<void> {
  if (modeOf(c.env.RATE_LIMITS) === "off") return;
  const limit = limitFor(group, principal.rateLimits ?? null, deploymentTier(c.env.RATE_LIMIT_TIER));
  if (!Number.isFinite(limit)) return;
  const decision = await spend(c, principal.keyId, group, limit);
  if (!decision) return;
  c.header("RateLimit-Policy", `"${group}";q=${limit};w=${WINDOW_SECONDS}`);
  c.header("RateLimit", `"${group}";r=${decision.remaining};t=${decision.resetSeconds}`);
  if (!decision.allowed) {
    throw new RateLimited(`Rate limit exceeded: this key may make ${limit} ${group.replace(/_/g, " ")} requests per minute. Retry in ${decision.resetSeconds} s.`, decision.resetSeconds, {
      group,
      limit,
      window_seconds: WINDOW_SECONDS,
    });
  }
}

function clientAddress(c: Context<AppEnv>): string | null {
  // Set by Cloudflare on every request it forwards; absent only in local tools and tests.
  return c.req.header("cf-connecting-ip") ?? null;
}

/** Refuses an address that ran out of failed authentications, before its key is looked up. */
export function refuseBlockedAddress(c: Context<AppEnv>): void {
  const address = clientAddress(c);
  if (!address || modeOf(c.env.RATE_LIMITS) === "off") return;
  const until = blockedAddresses.get(address);
  if (until === undefined) return;
  const seconds = Math.ceil((until - Date.now()) / 1000);
  if (seconds <= 0) {
    blockedAddresses.delete(address);
    return;
  }
  throw tooManyFailures(seconds);
}

function tooManyFailures(seconds: number): RateLimited {
  return new RateLimited(`Too many failed authentications from this address; retry in ${seconds} s.`, seconds, {
    group: AUTH_FAILURES_GROUP,
    limit: AUTH_FAILURES_PER_MINUTE,
    window_seconds: WINDOW_SECONDS,
  });
}

/** Counts a failed authentication against the client's address; past the limit, 429 instead of 401. */
export async function limitFailedAuth(c: Context<AppEnv>): Promise<void> {
  const address = clientAddress(c);
  if (!address || modeOf(c.env.RATE_LIMITS) === "off") return;
  const decision = await decide(c, `ip:${address}`, AUTH_FAILURES_GROUP, AUTH_FAILURES_PER_MINUTE);
  if (!decision || decision.allowed) return;
  if (blockedAddresses.size > 10_000) blockedAddresses.clear();
  blockedAddresses.set(address, Date.now() + decision.resetSeconds * 1000);
  throw tooManyFailures(decision.resetSeconds);
}

/** Sign-in attempts per minute: per e-mail address (guessing one account's password) and per client address. */
export const LOGINS_PER_EMAIL_PER_MINUTE = 10;
export const LOGINS_PER_ADDRESS_PER_MINUTE = 30;

/**
 * Counts a sign-in attempt against the e-mail (hashed: the limiter never sees it) and the client
 * address; past either limit, 429 with Retry-After, whether or not the e-mail names anyone.
 */
export async function limitLogin(c: Context<AppEnv>, emailHash: string): Promise<void> {
  if (modeOf(c.env.RATE_LIMITS) === "off") return;
  const address = clientAddress(c);
  const checks: [string, number][] = [[`login-email:${emailHash}`, LOGINS_PER_EMAIL_PER_MINUTE]];
  if (address) checks.push([`login-ip:${address}`, LOGINS_PER_ADDRESS_PER_MINUTE]);
  for (const [name, limit] of checks) {
    const decision = await decide(c, name, "logins", limit);
    if (decision && !decision.allowed) {
      throw new RateLimited(`Too many sign-in attempts; retry in ${decision.resetSeconds} s.`, decision.resetSeconds, {
        group: "logins",
        limit,
        window_seconds: WINDOW_SECONDS,
      });
    }
  }
}
