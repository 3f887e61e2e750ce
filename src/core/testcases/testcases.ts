import { and, asc, eq, sql, type SQL, type SQLWrapper } from "drizzle-orm";
import { tenantScope } from "../tenancy";
import { batchAll } from "../../db/batch";
import { testCases, type TestCaseRow } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, nowIso, requireScope } from "../context";
import { NotFound } from "../errors";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible } from "../projects/projects";

export interface TestCase {
  id: string;
  number: number;
  projectId: string;
  automationId: string | null;
  title: string;
  fullTitle: string;
  filePath: string | null;
  lineNumber: number | null;
  description: string | null;
  tags: string[];
  flakinessScore: number | null;
  isQuarantined: boolean;
  quarantinedAt: string | null;
  /** The key that quarantined it. */
  quarantinedBy: string | null;
  quarantineSource: string | null;
  quarantineReason: string | null;
  createdAt: string;
  updatedAt: string;
}

export function toTestCase(row: TestCaseRow): TestCase {
  return {
    id: row.id,
    number: row.number,
    projectId: row.projectId,
    automationId: row.automationId,
    title: row.title,
    fullTitle: row.fullTitle,
    filePath: row.filePath,
    lineNumber: row.lineNumber,
    description: row.description,
    tags: row.tags,
    flakinessScore: row.flakinessScore,
    isQuarantined: row.isQuarantined,
    quarantinedAt: row.quarantinedAt,
    quarantinedBy: row.quarantinedBy,
    quarantineSource: row.quarantineSource,
    quarantineReason: row.quarantineReason,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * A test's identity within its project: its automation id when it has one (automation-framework
 * sync), otherwise file path + full title. Reports must carry the automation id to reach a test
 * case that was synced by one.
 */
export function identityKey(input: { automationId?: string | null; filePath?: string | null; fullTitle: string }): string {
  return input.automationId ? `auto:${input.automationId}` : `path:${input.filePath ?? ""}\u001f${input.fullTitle}`;
}

/** The JSON fields testCaseUpsert reads from each element of its array. */
export interface TestCaseRowJson {
  /** identity key */
  k: string;
  /** id to use if the test case is new */
  tc: string;
  automation_id: string | null;
  title: string;
  full_title: string;
  file_path: string | null;
  line_number: number | null;
  tags: string[];
  description?: string | null;
}

/**
 * One statement that creates or refreshes every test case in a JSON array (see TestCaseRowJson).
 * A single bound parameter carries all the rows, so D1's 100-parameter limit never applies.
 */
export function testCaseUpsert(organizationId: string, projectId: string, json: string, now: string): SQL {
  const f = (name: string) => sql.raw(`json_extract(value, '$.${name}')`);
  return sql`INSERT INTO test_cases (id, organization_id, project_id, identity_key, automation_id, title, full_title,
      file_path, line_number, description, tags, created_at, updated_at)
    SELECT ${f("tc")}, ${organizationId}, ${projectId}, ${f("k")}, ${f("automation_id")}, ${f("title")}, ${f("full_title")},
      ${f("file_path")}, ${f("line_number")}, ${f("description")}, coalesce(${f("tags")}, '[]'), ${now}, ${now}
    FROM json_each(${json}) WHERE true
    ON CONFLICT (project_id, identity_key) DO UPDATE SET
      title = excluded.title, full_title = excluded.full_title,
      file_path = coalesce(excluded.file_path, test_cases.file_path),
      line_number = coalesce(excluded.line_number, test_cases.line_number),
      description = coalesce(excluded.description, test_cases.description),
      tags = excluded.tags, updated_at = excluded.updated_at`;
}

export interface TestCaseInput {
  automationId?: string | null;
  title: string;
  fullTitle?: string;
  filePath?: string | null;
  lineNumber?: number | null;
  description?: string | null;
  tags?: string[];
}

export function testCaseRowJson(input: TestCaseInput): TestCaseRowJson {
  const fullTitle = input.fullTitle ?? input.title;
  return {
    k: identityKey({ automationId: input.automationId, filePath: input.filePath, fullTitle }),
    tc: newId("tc"),
    automation_id: input.automationId ?? null,
    title: input.title,
    full_title: fullTitle,
    file_path: input.filePath ?? null,
    line_number: input.lineNumber ?? null,
    description: input.description ?? null,
    tags: input.tags ?? [],
  };
}

/** Splits rows into JSON arrays of at most maxBytes each (D1 allows about 2 MB per bound value). */
export function jsonChunks(rows: unknown[], maxBytes = 900_000): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let size = 2;
  const encoder = new TextEncoder();
  for (const row of rows) {
    const text = JSON.stringify(row);
    const bytes = text.length * 3 <= maxBytes ? text.length * 3 : encoder.encode(text).byteLength;
    if (current.length > 0 && size + bytes + 1 > maxBytes) {
      chunks.push(`[${current.join(",")}]`);
      current = [];
      size = 2;
    }
    current.push(text);
    size += bytes + 1;
  }
  if (current.length > 0) chunks.push(`[${current.join(",")}]`);
  return chunks;
}

function visibleTestCases(ctx: CoreContext): SQL {
  return tenantScope(ctx.principal, { organizationId: testCases.organizationId, projectId: testCases.projectId });
}

export interface ListTestCasesInput {
  page: PageRequest;
  tag?: string;
  filePath?: string;
  search?: string;
}

/**
 * Whether a column contains `text`, ignoring the case of ASCII letters (as LIKE did). Not LIKE:
 * D1 refuses a LIKE pattern over 50 bytes ("LIKE or GLOB pattern too complex"), and instr()
 * has no wildcards to escape.
 */
export function containsText(column: SQLWrapper, text: string): SQL {
  return sql`instr(lower(${column}), lower(${text})) > 0`;
}

/** The listing query; exported so a test can show its plan uses the project's index. */
export function testCaseListWhere(ctx: CoreContext, projectId: string, input: Omit<ListTestCasesInput, "page">): SQL {
  const conditions = [visibleTestCases(ctx), eq(testCases.projectId, projectId)];
  if (input.filePath !== undefined) conditions.push(eq(testCases.filePath, input.filePath));
  if (input.tag !== undefined) {
    conditions.push(sql`EXISTS (SELECT 1 FROM json_each(${testCases.tags}) WHERE json_each.value = ${input.tag})`);
  }
  if (input.search !== undefined) {
    conditions.push(containsText(testCases.fullTitle, input.search));
  }
  return and(...conditions)!;
}

export async function listTestCases(ctx: CoreContext, projectId: string, input: ListTestCasesInput): Promise<Paged<TestCase>> {
  requireScope(ctx.principal, "results:read");
  await assertProjectVisible(ctx, projectId);
  const where = testCaseListWhere(ctx, projectId, input);
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(testCases).where(where),
    ctx.db.select().from(testCases).where(where).orderBy(asc(testCases.number)).limit(input.page.limit).offset(input.page.offset),
  ]);
  return { items: rows.map(toTestCase), total: totalRows[0]?.total ?? 0, ...input.page };
}

/**
 * Creates or updates test cases by identity (automation id, else file path + full title), for
 * automation-framework sync. Returns them in input order with whether each was new.
 */
export async function upsertTestCases(
  ctx: CoreContext,
  projectId: string,
  inputs: TestCaseInput[],
): Promise<{ testCase: TestCase; created: boolean }[]> {
  requireScope(ctx.principal, "results:submit");
  await assertProjectVisible(ctx, projectId);
  const now = nowIso(ctx.clock);
  const byKey = new Map<string, TestCaseRowJson>();
  for (const input of inputs) {
    const row = testCaseRowJson(input);
    byKey.set(row.k, row);
  }
  const rows = [...byKey.values()];
  const keysJson = JSON.stringify(rows.map((r) => r.k));
  await batchAll(ctx.db, jsonChunks(rows).map((chunk) => testCaseUpsert(ctx.principal.organizationId, projectId, chunk, now)));
  const stored = await ctx.db
    .select()
    .from(testCases)
    .where(
      and(
        eq(testCases.projectId, projectId),
        visibleTestCases(ctx),
        sql`${testCases.identityKey} IN (SELECT value FROM json_each(${keysJson}))`,
      ),
    );
  const storedByKey = new Map(stored.map((row) => [row.identityKey, row]));
  const seen = new Set<string>();
  const out: { testCase: TestCase; created: boolean }[] = [];
  for (const input of inputs) {
    const key = identityKey({ automationId: input.automationId, filePath: input.filePath, fullTitle: input.fullTitle ?? input.title });
    if (seen.has(key)) continue;
    seen.add(key);
    const row = storedByKey.get(key)!;
    out.push({ testCase: toTestCase(row), created: row.id === byKey.get(key)!.tc });
  }
  return out;
}

export async function getTestCase(ctx: CoreContext, id: string): Promise<TestCase> {
  requireScope(ctx.principal, "results:read");
  const row = await ctx.db.select().from(testCases).where(and(eq(testCases.id, id), visibleTestCases(ctx))).get();
  if (!row) throw new NotFound("Test case", { id });
  return toTestCase(row);
}

export async function updateTestCase(
  ctx: CoreContext,
  id: string,
  input: { title?: string; description?: string | null; tags?: string[] },
): Promise<TestCase> {
  requireScope(ctx.principal, "results:submit");
  const changes: Partial<TestCaseRow> = { updatedAt: nowIso(ctx.clock) };
  if (input.title !== undefined) changes.title = input.title;
  if (input.description !== undefined) changes.description = input.description;
  if (input.tags !== undefined) changes.tags = input.tags;
  const row = await ctx.db
    .update(testCases)
    .set(changes)
    .where(and(eq(testCases.id, id), visibleTestCases(ctx)))
    .returning()
    .get();
  if (!row) throw new NotFound("Test case", { id });
  return toTestCase(row);
}
