import { Invalid } from "../errors";

/**
 * Endpoint groups and their default limits per key per minute: reference 003's table, plus
 * groups for the endpoints only the native surface has.
 */
export const RATE_LIMIT_GROUPS = {
  runs_read: 100,
  runs_write: 30,
  tests_read: 200,
  tests_write: 60,
  uploads: 30,
  projects: 60,
  keys_webhooks: 30,
  flakiness: 60,
  // Native only. A CI fleet registers a build per pipeline; ingest also covers the status polls
  // of a background ingest (GET /ingests/{id}), which a client may send every second or two.
  builds: 120,
  ingest: 120,
  triggers: 30,
  jobs: 300,
} as const;

export type RateLimitGroup = keyof typeof RATE_LIMIT_GROUPS;
export const RATE_LIMIT_GROUP_NAMES = Object.keys(RATE_LIMIT_GROUPS) as RateLimitGroup[];

export const WINDOW_SECONDS = 60;

/** Tiers scale every default; "unlimited" switches limiting off for the organization. */
export const RATE_LIMIT_TIERS = { standard: 1, pro: 5, enterprise: 20, unlimited: Infinity } as const;
export type RateLimitTier = keyof typeof RATE_LIMIT_TIERS;

/** An organization's setting (PATCH /api/v1/admin/organizations/{id}): a tier, with per-group overrides. */
export interface RateLimitConfig {
  tier?: RateLimitTier;
  /** Requests per minute for a group; null removes an override. */
  overrides?: Partial<Record<RateLimitGroup, number>>;
}

/**
 * The limit of one group for a key of an organization: its override, else its tier's multiple
 * of the default, else the deployment's default tier. Infinity means not limited.
 */
export function limitFor(group: RateLimitGroup, config: RateLimitConfig | null, deploymentTier: RateLimitTier): number {
  const override = config?.overrides?.[group];
  if (override !== undefined) return override;
  const tier = config?.tier ?? deploymentTier;
  return RATE_LIMIT_GROUPS[group] * RATE_LIMIT_TIERS[tier];
}

export function isTier(value: unknown): value is RateLimitTier {
  return typeof value === "string" && Object.hasOwn(RATE_LIMIT_TIERS, value);
}

/** The deployment's default tier (RATE_LIMIT_TIER); a misspelt one is a configuration error. */
export function deploymentTier(value: string | undefined): RateLimitTier {
  if (value === undefined || value === "") return "standard";
  if (!isTier(value)) throw new Error(`RATE_LIMIT_TIER must be one of ${Object.keys(RATE_LIMIT_TIERS).join(", ")}; it is "${value}".`);
  return value;
}

/** Checks an admin's rate_limits value: a tier name, "unlimited", or {tier?, overrides?}. */
export function parseRateLimitConfig(value: unknown): RateLimitConfig | null {
  if (value === null) return null;
  if (typeof value === "string") {
    if (!isTier(value)) throw Invalid.field("rate_limits", "invalid_value", `must be a tier (${Object.keys(RATE_LIMIT_TIERS).join(", ")}) or an object`);
    return { tier: value };
  }
  if (typeof value !== "object" || Array.isArray(value)) throw Invalid.field("rate_limits", "invalid_value", "must be a tier name or an object");
  const { tier, overrides, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw Invalid.field("rate_limits", "invalid_value", `has unknown fields (${Object.keys(rest).join(", ")})`);
  const config: RateLimitConfig = {};
  if (tier !== undefined) {
    if (!isTier(tier)) throw Invalid.field("rate_limits.tier", "invalid_value", `must be one of ${Object.keys(RATE_LIMIT_TIERS).join(", ")}`);
    config.tier = tier;
  }
  if (overrides !== undefined) {
    if (typeof overrides !== "object" || overrides === null || Array.isArray(overrides)) {
      throw Invalid.field("rate_limits.overrides", "invalid_value", "must be an object of group: requests per minute");
    }
    config.overrides = {};
    for (const [group, limit] of Object.entries(overrides)) {
      if (!Object.hasOwn(RATE_LIMIT_GROUPS, group)) {
        throw Invalid.field("rate_limits.overrides", "invalid_value", `names an unknown group (${group}); groups: ${RATE_LIMIT_GROUP_NAMES.join(", ")}`);
      }
      if (!Number.isInteger(limit) || (limit as number) < 0 || (limit as number) > 1_000_000) {
        throw Invalid.field(`rate_limits.overrides.${group}`, "invalid_value", "must be a whole number of requests per minute from 0 to 1000000");
      }
      config.overrides[group as RateLimitGroup] = limit as number;
    }
  }
  return config;
}

const READ = new Set(["GET", "HEAD"]);

/**
 * The group of a route, from its method and its path within its surface. Every keyed route
 * must land in exactly one group: a path no rule matches is an error at startup, and a test
 * checks every registered route.
 */
export function rateLimitGroupOf(method: string, path: string): RateLimitGroup {
  const read = READ.has(method.toUpperCase());
  const p = path;
  if (/^\/(results\/ingest|ingests)(\/|$)/.test(p)) return "ingest";
  if (/^\/(builds|releases)(\/|$)/.test(p) || /^\/projects\/\{id\}\/build-queue$/.test(p)) return "builds";
  if (/^\/(api-keys|webhooks|events)(\/|$)/.test(p)) return "keys_webhooks";
  if (/^\/(upload|artifacts)(\/|$)/.test(p)) return "uploads";
  if (/flakiness|quarantine/.test(p)) return "flakiness";
  if (/^\/(run|qa\/external|testplans)(\/|$)/.test(p)) return "triggers";
  if (/^\/jobs(\/|$)/.test(p)) return "jobs";
  // A run's results and suites are tests; the runs themselves are runs.
  if (/^\/(testruns|runs)\/\{id\}\/(results|suites)$/.test(p)) return read ? "tests_read" : "tests_write";
  if (/^\/(testruns|runs)(\/|$)/.test(p)) return read ? "runs_read" : "runs_write";
  if (/^\/(results|tests|testcases|test-suites)(\/|$)/.test(p) || /^\/projects\/\{id\}\/testcases$/.test(p)) return read ? "tests_read" : "tests_write";
  if (/^\/(projects|teams|team-members|organizations|auth|me|invitations)(\/|$)/.test(p)) return "projects";
  throw new Error(`No rate-limit group for ${method} ${path}: add a rule to rateLimitGroupOf.`);
}
