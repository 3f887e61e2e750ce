import type { Principal } from "../context";

/**
 * Principals of recently seen API keys, per isolate, by the SHA-256 of the presented key (never
 * the key itself). A hit skips the key's D1 lookup: on a busy CI key that is one round trip of
 * every request (issue 12's hot read spent a third of its time there).
 *
 * The trade-off is how fast a change to a key reaches other isolates: revoking, deactivating,
 * rotating or deleting a key, changing its creator's role or the organization's rate limits take
 * effect at once in the isolate that made the change (it clears this cache) and within
 * AUTH_CACHE_SECONDS elsewhere (default 5; "0" turns the cache off). Expiry is checked on every
 * hit, so an expiring key stops at its second.
 */
export interface CachedKey {
  principal: Principal;
  /** Milliseconds since the epoch, or null: checked on every hit. */
  expiresAt: number | null;
  /** When last_used_at was last written, in ms (null: never): it is written once a minute. */
  lastUsedAt: number | null;
  cachedAt: number;
}

export const DEFAULT_AUTH_CACHE_SECONDS = 5;
const MAX_AUTH_CACHE_SECONDS = 60;
/** Enough for every key a deployment's CI uses at once; the oldest entry goes first past it. */
const MAX_ENTRIES = 1_000;

const entries = new Map<string, CachedKey>();

/** The cache's lifetime from AUTH_CACHE_SECONDS: an integer 0..60, else the default. */
export function authCacheMs(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return DEFAULT_AUTH_CACHE_SECONDS * 1000;
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds < 0) return DEFAULT_AUTH_CACHE_SECONDS * 1000;
  return Math.min(seconds, MAX_AUTH_CACHE_SECONDS) * 1000;
}

/** The entry for a key hash if it is younger than `ttlMs`; an older one is dropped. */
export function cachedKey(keyHash: string, now: number, ttlMs: number): CachedKey | undefined {
  if (ttlMs <= 0) return undefined;
  const entry = entries.get(keyHash);
  if (!entry) return undefined;
  if (now - entry.cachedAt >= ttlMs || now < entry.cachedAt) {
    entries.delete(keyHash);
    return undefined;
  }
  return entry;
}

export function rememberKey(keyHash: string, entry: CachedKey, ttlMs: number): void {
  if (ttlMs <= 0) return;
  entries.delete(keyHash);
  if (entries.size >= MAX_ENTRIES) {
    const oldest = entries.keys().next().value;
    if (oldest !== undefined) entries.delete(oldest);
  }
  entries.set(keyHash, entry);
}

/** Forgets every cached key: after any change to keys, memberships or an organization's limits. */
export function forgetKeys(): void {
  entries.clear();
}
