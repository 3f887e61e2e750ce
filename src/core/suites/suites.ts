import { and, asc, eq, sql, type SQL } from "drizzle-orm";
import { testRuns, testSuites, type TestSuiteRow } from "../../db/schema";
import { SQL_ID_TAIL, newId, sqlIdHead } from "../../lib/ids";
import { type CoreContext, nowIso, requireScope } from "../context";
import { Invalid, NotFound } from "../errors";
import { RESULT_LIMITS } from "../limits";
import { visibleRuns } from "../runs/runs";

export interface TestSuite {
  id: string;
  runId: string;
  projectId: string;
  title: string;
  filePath: string | null;
  parentSuiteId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface SuiteNode extends TestSuite {
  children: SuiteNode[];
}

function toSuite(row: TestSuiteRow): TestSuite {
  return {
    id: row.id,
    runId: row.runId,
    projectId: row.projectId,
    title: row.title,
    filePath: row.filePath,
    parentSuiteId: row.parentSuiteId,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * A suite's identity within its run: its parent's key, its file path and its title. Suites made
 * from reported results and suites posted explicitly use the same key, so they coincide.
 */
export function suitePathKey(parentKey: string, filePath: string | null | undefined, title: string): string {
  return `${parentKey}\u001e${filePath ?? ""}\u001f${title}`;
}

/**
 * Statements creating the describe-block suites of reported results, one per nesting level:
 * each level finds its parent (made by the previous statement) through the parent's key.
 */
export function suiteStatementsFor(
  run: { id: string; organizationId: string; projectId: string },
  paths: { filePath: string | null; titles: string[] }[],
  now: string,
): SQL[] {
  const levels: Map<string, { key: string; parent: string; title: string; file: string | null }>[] = [];
  for (const { filePath, titles } of paths) {
    let parentKey = "";
    titles.forEach((title, depth) => {
      const key = suitePathKey(parentKey, filePath, title);
      (levels[depth] ??= new Map()).set(key, { key, parent: parentKey, title, file: filePath });
      parentKey = key;
    });
  }
  const head = sqlIdHead("suite", Date.parse(now));
  const f = (name: string) => sql.raw(`json_extract(value, '$.${name}')`);
  return levels.map(
    (level) => sql`INSERT INTO test_suites (id, organization_id, project_id, run_id, parent_suite_id, path_key, title, file_path, created_at, updated_at)
      SELECT ${head} || ${sql.raw(SQL_ID_TAIL)}, ${run.organizationId}, ${run.projectId}, ${run.id},
        (SELECT p.id FROM test_suites p WHERE p.run_id = ${run.id} AND p.path_key = ${f("parent")}),
        ${f("key")}, ${f("title")}, ${f("file")}, ${now}, ${now}
      FROM json_each(${JSON.stringify([...level.values()])}) WHERE true
      ON CONFLICT (run_id, path_key) DO NOTHING`,
  );
}

async function visibleRun(ctx: CoreContext, runId: string, projectId?: string): Promise<{ id: string; organizationId: string; projectId: string }> {
  const conditions = [eq(testRuns.id, runId), visibleRuns(ctx.principal)];
  if (projectId !== undefined) conditions.push(eq(testRuns.projectId, projectId));
  const run = await ctx.db
    .select({ id: testRuns.id, organizationId: testRuns.organizationId, projectId: testRuns.projectId })
    .from(testRuns)
    .where(and(...conditions))
    .get();
  if (!run) throw new NotFound("Test run", { id: runId });
  return run;
}

/** Creates a suite, or returns the one with the same title, file path and parent in the run. */
export async function upsertSuite(
  ctx: CoreContext,
  input: { runId: string; projectId?: string; title: string; filePath?: string | null; parentSuiteId?: string | null },
): Promise<TestSuite> {
  requireScope(ctx.principal, "results:submit");
  const run = await visibleRun(ctx, input.runId, input.projectId);
  let parentKey = "";
  if (input.parentSuiteId) {
    const parent = await ctx.db
      .select({ pathKey: testSuites.pathKey })
      .from(testSuites)
      .where(and(eq(testSuites.id, input.parentSuiteId), eq(testSuites.runId, run.id)))
      .get();
    if (!parent) throw new NotFound("Test suite", { id: input.parentSuiteId });
    parentKey = parent.pathKey;
    // Every level of a key begins with \u001e, so the key says how deep the parent is.
    const parentDepth = parentKey.split("\u001e").length - 1;
    if (parentDepth >= RESULT_LIMITS.suiteDepth) {
      throw Invalid.field("parent_suite_id", "too_deep", `must not nest suites deeper than ${RESULT_LIMITS.suiteDepth} levels`);
    }
  }
  const now = nowIso(ctx.clock);
  const row = await ctx.db
    .insert(testSuites)
    .values({
      id: newId("suite"),
      organizationId: run.organizationId,
      projectId: run.projectId,
      runId: run.id,
      parentSuiteId: input.parentSuiteId ?? null,
      pathKey: suitePathKey(parentKey, input.filePath, input.title),
      title: input.title,
      filePath: input.filePath ?? null,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoUpdate({ target: [testSuites.runId, testSuites.pathKey], set: { updatedAt: now } })
    .returning()
    .get();
  return toSuite(row);
}

/** Every suite of a run as a tree (roots in creation order, children likewise). */
export async function suiteTree(ctx: CoreContext, runId: string, projectId?: string): Promise<SuiteNode[]> {
  requireScope(ctx.principal, "testruns:read");
  const run = await visibleRun(ctx, runId, projectId);
  const rows = await ctx.db
    .select()
    .from(testSuites)
    .where(and(eq(testSuites.runId, run.id), eq(testSuites.organizationId, ctx.principal.organizationId)))
    .orderBy(asc(testSuites.number));
  const nodes = new Map<string, SuiteNode>(rows.map((row) => [row.id, { ...toSuite(row), children: [] }]));
  const roots: SuiteNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.parentSuiteId ? nodes.get(node.parentSuiteId) : undefined;
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  return roots;
}
