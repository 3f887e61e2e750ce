import { and, asc, eq, inArray, sql, type SQL } from "drizzle-orm";
import { TEST_TYPES, projects, testCases, testPlans, type TestPlanRow, type TestType } from "../../db/schema";
import { decryptText, requiredSecretRing } from "../../lib/crypto";
import { newId } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Invalid, NotFound } from "../errors";
import { COOKIE_PURPOSE, type Cookie, sealCookies } from "../jobs/queue";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible, visibleProjects } from "../projects/projects";
import { tenantScope } from "../tenancy";

export const PLAN_LIMITS = {
  tags: 50,
  tagNameLength: 100,
  tagValues: 50,
  tagValueLength: 200,
  testCaseIds: 1000,
  filePatterns: 200,
  filePatternLength: 500,
  cookies: 50,
  cookieNameLength: 256,
  cookieValueLength: 4096,
  cookieDomainLength: 253,
  cookiePathLength: 1024,
} as const;

/** Ids per `IN (…)` lookup: D1 binds at most 100 parameters per statement, and the scope needs a few. */
const LOOKUP_CHUNK = 90;

/** What a plan says about its cookies: never their values. */
export interface CookieSummary {
  name: string;
  domain: string;
  path: string | null;
}

export interface TestPlan {
  id: string;
  number: number;
  projectId: string;
  name: string;
  description: string | null;
  defaultTestType: TestType;
  tags: Record<string, string[]>;
  testCaseIds: string[];
  filePatterns: string[];
  cookies: CookieSummary[];
  hasCookies: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface CreatePlanInput {
  projectId: string;
  name: string;
  description?: string | null;
  defaultTestType?: string;
  tags?: Record<string, string[]>;
  testCaseIds?: string[];
  filePatterns?: string[];
  cookies?: Cookie[];
}

export interface UpdatePlanInput {
  name?: string;
  description?: string | null;
  defaultTestType?: string;
  tags?: Record<string, string[]>;
  testCaseIds?: string[];
  filePatterns?: string[];
  /** null (or an empty list) removes the stored cookies. */
  cookies?: Cookie[] | null;
}

/** The SQL condition limiting plans to what the principal may see. */
export function planScope(principal: Principal): SQL {
  return tenantScope(principal, { organizationId: testPlans.organizationId, projectId: testPlans.projectId });
}

/** The plan's stored cookies in clear, for queueing its runs. Never put these in an answer. */
export async function storedCookies(ctx: Pick<CoreContext, "env">, row: Pick<TestPlanRow, "cookiesSealed">): Promise<Cookie[]> {
  if (!row.cookiesSealed) return [];
  return JSON.parse(await decryptText(requiredSecretRing(ctx.env, "stored cookies cannot be decrypted"), COOKIE_PURPOSE, row.cookiesSealed)) as Cookie[];
}

export async function toPlan(ctx: Pick<CoreContext, "env">, row: TestPlanRow): Promise<TestPlan> {
  const cookies = await storedCookies(ctx, row);
  return {
    id: row.id,
    number: row.number,
    projectId: row.projectId,
    name: row.name,
    description: row.description,
    defaultTestType: row.defaultTestType as TestType,
    tags: row.tags,
    testCaseIds: row.testCaseIds,
    filePatterns: row.filePatterns,
    cookies: cookies.map((c) => ({ name: c.name, domain: c.domain, path: c.path ?? null })),
    hasCookies: cookies.length > 0,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Control characters or unpaired surrogates: nothing a runner should paste into a header or a file. */
function isUnsafeText(value: string): boolean {
  return /[\u0000-\u001f\u007f]/.test(value) || !value.isWellFormed();
}

function checkTestType(value: string): TestType {
  if (!(TEST_TYPES as readonly string[]).includes(value)) {
    throw Invalid.field("default_test_type", "invalid_value", `must be one of: ${TEST_TYPES.join(", ")}`);
  }
  return value as TestType;
}

function checkTags(tags: Record<string, string[]>): Record<string, string[]> {
  const entries = Object.entries(tags);
  if (entries.length > PLAN_LIMITS.tags) throw Invalid.field("tags", "too_many", `must have at most ${PLAN_LIMITS.tags} tags`);
  const out: Record<string, string[]> = {};
  for (const [name, values] of entries) {
    if (name.length === 0 || name.length > PLAN_LIMITS.tagNameLength || isUnsafeText(name)) {
      throw Invalid.field("tags", "invalid_value", `has an invalid tag name (1 to ${PLAN_LIMITS.tagNameLength} characters, no control characters)`);
    }
    if (!Array.isArray(values)) throw Invalid.field(`tags.${name}`, "invalid_type", "must be an array of strings");
    if (values.length > PLAN_LIMITS.tagValues) throw Invalid.field(`tags.${name}`, "too_many", `must have at most ${PLAN_LIMITS.tagValues} values`);
    for (const value of values) {
      if (typeof value !== "string" || value.length > PLAN_LIMITS.tagValueLength || isUnsafeText(value)) {
        throw Invalid.field(`tags.${name}`, "invalid_value", `must hold strings of at most ${PLAN_LIMITS.tagValueLength} characters`);
      }
    }
    out[name] = [...new Set(values)];
  }
  return out;
}

function checkFilePatterns(patterns: string[]): string[] {
  if (patterns.length > PLAN_LIMITS.filePatterns) throw Invalid.field("file_patterns", "too_many", `must have at most ${PLAN_LIMITS.filePatterns} items`);
  patterns.forEach((p, i) => {
    if (p.length === 0 || p.length > PLAN_LIMITS.filePatternLength || isUnsafeText(p)) {
      throw Invalid.field(`file_patterns.${i}`, "invalid_value", `must be a glob of 1 to ${PLAN_LIMITS.filePatternLength} characters`);
    }
  });
  return [...new Set(patterns)];
}

function checkCookies(cookies: Cookie[]): Cookie[] {
  if (cookies.length > PLAN_LIMITS.cookies) throw Invalid.field("cookies", "too_many", `must have at most ${PLAN_LIMITS.cookies} items`);
  return cookies.map((c, i) => {
    const bad = (field: string, predicate: string) => Invalid.field(`cookies.${i}.${field}`, "invalid_value", predicate);
    if (typeof c.name !== "string" || c.name.length === 0 || c.name.length > PLAN_LIMITS.cookieNameLength || isUnsafeText(c.name) || /[;=\s]/.test(c.name)) {
      throw bad("name", `must be 1 to ${PLAN_LIMITS.cookieNameLength} characters without spaces, ';' or '='`);
    }
    if (typeof c.value !== "string" || c.value.length > PLAN_LIMITS.cookieValueLength || isUnsafeText(c.value) || c.value.includes(";")) {
      throw bad("value", `must be at most ${PLAN_LIMITS.cookieValueLength} characters without ';' or control characters`);
    }
    if (typeof c.domain !== "string" || c.domain.length === 0 || c.domain.length > PLAN_LIMITS.cookieDomainLength || isUnsafeText(c.domain) || /[;\s]/.test(c.domain)) {
      throw bad("domain", `must be a domain of 1 to ${PLAN_LIMITS.cookieDomainLength} characters`);
    }
    if (c.path !== undefined && (typeof c.path !== "string" || c.path.length > PLAN_LIMITS.cookiePathLength || isUnsafeText(c.path) || c.path.includes(";"))) {
      throw bad("path", `must be at most ${PLAN_LIMITS.cookiePathLength} characters without ';' or control characters`);
    }
    return c.path === undefined ? { name: c.name, value: c.value, domain: c.domain } : { name: c.name, value: c.value, domain: c.domain, path: c.path };
  });
}

/** The ids, deduplicated in order, once each is known to be a test case of the project; else 400 naming the first that is not. */
async function checkTestCaseIds(ctx: CoreContext, projectId: string, ids: string[]): Promise<string[]> {
  if (ids.length > PLAN_LIMITS.testCaseIds) throw Invalid.field("test_case_ids", "too_many", `must have at most ${PLAN_LIMITS.testCaseIds} items`);
  const unique = [...new Set(ids)];
  const found = new Set<string>();
  for (let i = 0; i < unique.length; i += LOOKUP_CHUNK) {
    const rows = await ctx.db
      .select({ id: testCases.id })
      .from(testCases)
      .where(
        and(
          inArray(testCases.id, unique.slice(i, i + LOOKUP_CHUNK)),
          eq(testCases.projectId, projectId),
          tenantScope(ctx.principal, { organizationId: testCases.organizationId, projectId: testCases.projectId }),
        ),
      );
    for (const r of rows) found.add(r.id);
  }
  const index = ids.findIndex((id) => !found.has(id));
  if (index >= 0) {
    throw Invalid.field(`test_case_ids.${index}`, "not_found", `names a test case that is not in the project (${ids[index]!.slice(0, 100)})`, {
      extra: { test_case_id: ids[index] },
    });
  }
  return unique;
}

/** A plan the principal may see, without a scope check (the caller checks its own); NotFound otherwise. */
export async function getPlanRow(ctx: CoreContext, id: string): Promise<TestPlanRow> {
  const row = await ctx.db.select().from(testPlans).where(and(eq(testPlans.id, id), planScope(ctx.principal))).get();
  if (!row) throw new NotFound("Test plan", { id });
  return row;
}

/** Every plan the principal may see, optionally of one project, in number order; no scope check (for tag matching). */
export async function visiblePlans(ctx: CoreContext, projectId?: string): Promise<TestPlanRow[]> {
  const conditions = [planScope(ctx.principal)];
  if (projectId !== undefined) conditions.push(eq(testPlans.projectId, projectId));
  return ctx.db.select().from(testPlans).where(and(...conditions)).orderBy(asc(testPlans.number));
}

/** The visible plans among those integer numbers (reference 002's testPlanId), in number order; missing ones are left out. */
export async function findPlansByNumbers(ctx: CoreContext, numbers: number[]): Promise<TestPlanRow[]> {
  const unique = [...new Set(numbers.filter((n) => Number.isSafeInteger(n)))];
  const rows: TestPlanRow[] = [];
  for (let i = 0; i < unique.length; i += LOOKUP_CHUNK) {
    rows.push(
      ...(await ctx.db
        .select()
        .from(testPlans)
        .where(and(inArray(testPlans.number, unique.slice(i, i + LOOKUP_CHUNK)), planScope(ctx.principal)))),
    );
  }
  return rows.sort((a, b) => a.number - b.number);
}

/** The plans of the project with that integer number (reference 002's projectId): null when no such project is visible. */
export async function plansOfProjectNumber(ctx: CoreContext, projectNumber: number): Promise<TestPlanRow[] | null> {
  if (!Number.isSafeInteger(projectNumber)) return null;
  const project = await ctx.db
    .select({ id: projects.id })
    .from(projects)
    .where(and(eq(projects.number, projectNumber), visibleProjects(ctx.principal)))
    .get();
  if (!project) return null;
  return visiblePlans(ctx, project.id);
}

export async function listPlans(ctx: CoreContext, input: { page: PageRequest; projectId?: string }): Promise<Paged<TestPlan>> {
  requireScope(ctx.principal, "plans:read");
  const conditions = [planScope(ctx.principal)];
  if (input.projectId !== undefined) {
    await assertProjectVisible(ctx, input.projectId);
    conditions.push(eq(testPlans.projectId, input.projectId));
  }
  const where = and(...conditions)!;
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(testPlans).where(where),
    ctx.db.select().from(testPlans).where(where).orderBy(asc(testPlans.number)).limit(input.page.limit).offset(input.page.offset),
  ]);
  return { items: await Promise.all(rows.map((r) => toPlan(ctx, r))), total: totalRows[0]?.total ?? 0, ...input.page };
}

export async function getPlan(ctx: CoreContext, id: string): Promise<TestPlan> {
  requireScope(ctx.principal, "plans:read");
  return toPlan(ctx, await getPlanRow(ctx, id));
}

export async function createPlan(ctx: CoreContext, input: CreatePlanInput): Promise<TestPlan> {
  requireScope(ctx.principal, "projects:write");
  await assertProjectVisible(ctx, input.projectId);
  const defaultTestType = checkTestType(input.defaultTestType ?? "quickTest");
  const tags = checkTags(input.tags ?? {});
  const filePatterns = checkFilePatterns(input.filePatterns ?? []);
  const cookies = checkCookies(input.cookies ?? []);
  const testCaseIds = await checkTestCaseIds(ctx, input.projectId, input.testCaseIds ?? []);
  const now = nowIso(ctx.clock);
  const row = await ctx.db
    .insert(testPlans)
    .values({
      id: newId("plan"),
      organizationId: ctx.principal.organizationId,
      projectId: input.projectId,
      name: input.name,
      description: input.description ?? null,
      defaultTestType,
      tags,
      testCaseIds,
      filePatterns,
      cookiesSealed: await sealCookies(ctx, cookies),
      createdAt: now,
      updatedAt: now,
    })
    .returning()
    .get();
  return toPlan(ctx, row);
}

/** Changes the fields given; test case ids are checked against the plan's own project. */
export async function updatePlan(ctx: CoreContext, id: string, input: UpdatePlanInput): Promise<TestPlan> {
  requireScope(ctx.principal, "projects:write");
  const current = await getPlanRow(ctx, id);
  const changes: Partial<typeof testPlans.$inferInsert> = { updatedAt: nowIso(ctx.clock) };
  if (input.name !== undefined) changes.name = input.name;
  if (input.description !== undefined) changes.description = input.description;
  if (input.defaultTestType !== undefined) changes.defaultTestType = checkTestType(input.defaultTestType);
  if (input.tags !== undefined) changes.tags = checkTags(input.tags);
  if (input.filePatterns !== undefined) changes.filePatterns = checkFilePatterns(input.filePatterns);
  if (input.cookies !== undefined) changes.cookiesSealed = await sealCookies(ctx, input.cookies === null ? [] : checkCookies(input.cookies));
  if (input.testCaseIds !== undefined) changes.testCaseIds = await checkTestCaseIds(ctx, current.projectId, input.testCaseIds);
  const row = await ctx.db.update(testPlans).set(changes).where(and(eq(testPlans.id, id), planScope(ctx.principal))).returning().get();
  if (!row) throw new NotFound("Test plan", { id });
  return toPlan(ctx, row);
}

export async function deletePlan(ctx: CoreContext, id: string): Promise<void> {
  requireScope(ctx.principal, "projects:write");
  const deleted = await ctx.db.delete(testPlans).where(and(eq(testPlans.id, id), planScope(ctx.principal))).returning({ id: testPlans.id }).get();
  if (!deleted) throw new NotFound("Test plan", { id });
}
