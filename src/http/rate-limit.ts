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
    console.error(JSON.stringify({ level: "error", request_id: c.get("requestId"), note: "rate limiter unavailable", message: String(err) }));
    if (modeOf(c.env.RATE_LIMITS) === "fail-open") return null;
    throw new Unavailable("Rate limiting is unavailable for a moment; retry shortly.", UNAVAILABLE_RETRY_SECONDS);
  }
}

/**
 * Counts a request of an authenticated key against its group's limit: one Durable Object call,
 * no D1 query (the organization's setting came with the key). Sets the IETF draft RateLimit
 * headers; past the limit, throws 429 with Retry-After.
 */
export async function limitKeyRequest(c: Context<AppEnv>, principal: Principal, group: RateLimitGroup): Promise<void> {
  if (modeOf(c.env.RATE_LIMITS) === "off") return;
  const limit = limitFor(group, principal.rateLimits ?? null, deploymentTier(c.env.RATE_LIMIT_TIER));
  if (!Number.isFinite(limit)) return;
  const decision = await decide(c, `key:${principal.keyId}`, group, limit);
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
