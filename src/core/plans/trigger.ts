import { and, eq } from "drizzle-orm";
import { artifacts, builds, type TestPlanRow, type TestType } from "../../db/schema";
import { type CoreContext, requireScope } from "../context";
import { InsufficientCredits, Invalid, NotFound } from "../errors";
import { type Cookie, type JobRequest, type QueueOutcome, mergeCookies, queueJobs } from "../jobs/queue";
import { tenantScope } from "../tenancy";
import { findContext, findEnvironment } from "./environments";
import { storedCookies } from "./plans";

export interface Device {
  deviceName: string;
  platformVersion: string;
}

export interface TriggerOptions {
  /** Overrides each plan's default test type. */
  testType?: TestType;
  /** The CI build / commit (reference 002's buildId) or the app build (reference 004's app_id). */
  buildRef?: string | null;
  /** Laid over each plan's stored cookies. */
  cookies?: Cookie[];
  /** One run per plan and device; no devices, one run per plan. */
  devices?: Device[];
  /** Names, resolved in each plan's project. */
  environmentName?: string | null;
  contextName?: string | null;
  labels?: string[];
}

export interface TriggeredJob {
  plan: TestPlanRow;
  device: Device | null;
  outcome: QueueOutcome;
}

export const INSUFFICIENT_CREDITS = "Insufficient credits. Please top up to continue running tests.";

/**
 * Queues a run (and its job) per plan and device. Environment and context names resolve in each
 * plan's project, before anything is queued (unknown → 404 naming which). Each job is charged on
 * its own (queueJobs): when credits run out part-way, the rest are reported as failed.
 */
export async function triggerPlans(ctx: CoreContext, plans: TestPlanRow[], options: TriggerOptions): Promise<TriggeredJob[]> {
  requireScope(ctx.principal, "plans:trigger");
  const projects = [...new Set(plans.map((p) => p.projectId))];
  const environments = new Map<string, string | null>();
  const contexts = new Map<string, string | null>();
  for (const projectId of projects) {
    if (options.environmentName) {
      const env = await findEnvironment(ctx, projectId, options.environmentName);
      if (!env) throw NotFound.saying("Environment not found", "Environment", { name: options.environmentName });
      environments.set(projectId, env.id);
    }
    if (options.contextName) {
      const context = await findContext(ctx, projectId, options.contextName);
      if (!context) throw NotFound.saying("Context not found", "Context", { name: options.contextName });
      contexts.set(projectId, context.id);
    }
  }
  const requests: { plan: TestPlanRow; device: Device | null; request: JobRequest }[] = [];
  for (const plan of plans) {
    const cookies = mergeCookies(await storedCookies(ctx, plan), options.cookies);
    for (const device of options.devices?.length ? options.devices : [null]) {
      requests.push({
        plan,
        device,
        request: {
          projectId: plan.projectId,
          planId: plan.id,
          testType: options.testType ?? (plan.defaultTestType as TestType),
          buildRef: options.buildRef ?? null,
          runTitle: device ? `${plan.name} on ${device.deviceName} ${device.platformVersion}` : plan.name,
          deviceName: device?.deviceName ?? null,
          platformVersion: device?.platformVersion ?? null,
          environmentId: environments.get(plan.projectId) ?? null,
          contextId: contexts.get(plan.projectId) ?? null,
          labels: options.labels ?? [],
          cookies,
        },
      });
    }
  }
  const outcomes = await queueJobs(
    ctx,
    requests.map((r) => r.request),
  );
  return requests.map((r, i) => ({ plan: r.plan, device: r.device, outcome: outcomes[i]! }));
}

/** Throws 402 when nothing could be queued for want of credits; otherwise the caller reports per job. */
export function requireSomeQueued(jobs: TriggeredJob[]): void {
  if (jobs.length > 0 && jobs.every((j) => !j.outcome.ok)) throw new InsufficientCredits(INSUFFICIENT_CREDITS);
}

export interface TagSelector {
  include?: Record<string, string[]>;
  exclude?: Record<string, string[]>;
}

/**
 * Reference 004's selectors. include: a suite matches when, for every tag named, it has that tag
 * with one of the values listed (an empty list: any value of that tag). exclude: a suite matches
 * unless, for some tag named, it has that tag with one of the values listed (an empty list: any).
 */
export function suiteMatches(tags: Record<string, string[]>, selector: TagSelector): boolean {
  const hits = (name: string, values: string[]) => {
    const own = tags[name];
    if (!own || own.length === 0) return false;
    return values.length === 0 || own.some((v) => values.includes(v));
  };
  if (selector.include) return Object.entries(selector.include).every(([name, values]) => hits(name, values));
  if (selector.exclude) return !Object.entries(selector.exclude).some(([name, values]) => hits(name, values));
  return false;
}

/**
 * Reference 004's app_id: a build registered with Greenlight (bld_…) or an uploaded artifact
 * (art_…) the caller may see. Anything else: "Build file not found".
 */
export async function requireAppBuild(ctx: CoreContext, appId: string): Promise<void> {
  const found = appId.startsWith("art_")
    ? await ctx.db
        .select({ id: artifacts.id })
        .from(artifacts)
        .where(and(eq(artifacts.id, appId), eq(artifacts.status, "stored"), tenantScope(ctx.principal, { organizationId: artifacts.organizationId, projectId: artifacts.projectId })))
        .get()
    : await ctx.db
        .select({ id: builds.id })
        .from(builds)
        .where(and(eq(builds.id, appId), tenantScope(ctx.principal, { organizationId: builds.organizationId, projectId: builds.projectId })))
        .get();
  if (!found) throw NotFound.saying("Build file not found", "Build", { id: appId });
}

/** A selector with exactly one of include (or include_tags) and exclude (or exclude_tags). */
export function selectorOf(tags: {
  include?: Record<string, string[]>;
  include_tags?: Record<string, string[]>;
  exclude?: Record<string, string[]>;
  exclude_tags?: Record<string, string[]>;
}): TagSelector {
  const include = tags.include ?? tags.include_tags;
  const exclude = tags.exclude ?? tags.exclude_tags;
  if ((tags.include && tags.include_tags) || (tags.exclude && tags.exclude_tags)) {
    throw new Invalid("Send each selector once: tags.include or its alias tags.include_tags, tags.exclude or tags.exclude_tags.", { field: "tags" });
  }
  if (include && exclude) throw new Invalid("Send either tags.include or tags.exclude, not both.", { field: "tags" });
  if (!include && !exclude) throw new Invalid("Exactly one tags selector is required: tags.include (or tags.include_tags) or tags.exclude (or tags.exclude_tags).", { field: "tags" });
  return include ? { include } : { exclude };
}
