import { and, asc, desc, eq, sql, type SQL } from "drizzle-orm";
import { tenantScope } from "../tenancy";
import { batchAll, batchRows } from "../../db/batch";
import { projectSettings, results, testCases, testRuns, type ResultRow } from "../../db/schema";
import { SQL_ID_TAIL, newId, sqlIdHead } from "../../lib/ids";
import { type CoreContext, nowIso, requireScope } from "../context";
import { Invalid, NotFound } from "../errors";
import { REFRESH_PAGE, SETTINGS_COLUMNS, refreshFlakiness, refreshReads, refreshWrites, settingsFrom } from "../flakiness/refresh";
import { RUN_EVENT_TYPES, insertRunEvent } from "../events/outbox";
import { INLINE_TEXT_MAX_BYTES, RESULTS_PER_SUBMISSION, RESULT_LIMITS } from "../limits";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible } from "../projects/projects";
import { type Run, runReads, visibleRuns } from "../runs/runs";
import { runObjectPrefix } from "../storage/r2";
import { suiteStatementsFor } from "../suites/suites";
import { containsText, getTestCase, identityKey, jsonChunks, testCaseUpsert, testCaseRowJson } from "../testcases/testcases";

export const RESULT_STATUSES = ["passed", "failed", "skipped", "flaky"] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];
export const STEP_CATEGORIES = ["hook", "action", "assertion", "fixture"] as const;
export const STEP_STATUSES = ["passed", "failed", "skipped"] as const;

export interface ResultError {
  message?: string;
  stack?: string;
  expected?: string;
  actual?: string;
}

export interface Step {
  title: string;
  category?: (typeof STEP_CATEGORIES)[number];
  status?: (typeof STEP_STATUSES)[number];
  duration?: number;
  error?: ResultError | null;
  steps?: Step[];
}

export interface Annotation {
  type: string;
  description?: string;
}

export interface ResultInput {
  automationId?: string | null;
  title: string;
  /** Defaults to the title. */
  fullTitle?: string;
  filePath?: string | null;
  lineNumber?: number | null;
  status: ResultStatus;
  /** Milliseconds. */
  duration: number;
  retries?: number;
  attempt?: number;
  isFlaky?: boolean;
  tags?: string[];
  annotations?: Annotation[];
  error?: ResultError | null;
  steps?: Step[];
  stdout?: string;
  stderr?: string;
  /** Describe blocks enclosing the test; derived from "A > B > test" full titles when absent. */
  suitePath?: string[];
}

export interface ResultSummary {
  id: string;
  runId: string;
  projectId: string;
  testCaseId: string;
  title: string;
  fullTitle: string;
  filePath: string | null;
  lineNumber: number | null;
  status: ResultStatus;
  duration: number;
  retries: number;
  attempt: number;
  isFlaky: boolean;
  tags: string[];
  annotations: Annotation[];
  error: ResultError | null;
  createdAt: string;
  updatedAt: string;
}

export interface ResultDetail extends ResultSummary {
  stdout: string;
  stderr: string;
}

export interface SubmissionOutcome {
  run: Run;
  /** What this submission stored, in reporting order (duplicates within it collapsed). */
  stored: ResultSummary[];
  /** Results not stored because the run already holds a later attempt of the same test. */
  superseded: number;
}

/** Suite titles enclosing a test: given explicitly, or the leading parts of "Suite > Inner > test". */
export function suitePathOf(input: Pick<ResultInput, "suitePath" | "fullTitle" | "title">): string[] {
  if (input.suitePath) return input.suitePath.slice(0, RESULT_LIMITS.suiteDepth);
  const parts = (input.fullTitle ?? input.title).split(" > ").map((p) => p.trim());
  return parts.length > 1 ? parts.slice(0, -1).filter((p) => p.length > 0).slice(0, RESULT_LIMITS.suiteDepth) : [];
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function byteLength(text: string): number {
  // Cheap upper bound first: most output is far below the inline limit.
  return text.length * 3 <= INLINE_TEXT_MAX_BYTES ? text.length : new TextEncoder().encode(text).byteLength;
}

export interface Offload {
  key: string;
  body: string;
  contentType: string;
}

/** The identity of a run that results are written to. */
export interface RunRef {
  id: string;
  organizationId: string;
  projectId: string;
}

/** The statements that record a set of results, and what must be in R2 before they run. */
export interface ResultWrite {
  /** Large output and step trees, to put into R2 before the statements run. */
  offloads: Offload[];
  statements: SQL[];
  /** Results after collapsing repeats of one test (the later attempt wins). */
  rows: number;
  /** Indexes into the batch's results of the result upserts, whose `changes` count stored results. */
  resultStatements: number[];
  submissionId: string;
}

/**
 * Builds the writes for a set of results (test cases, results, suites, the run's counts and the
 * failure events) without running them, so a caller can add statements of its own to the same
 * batch. Output and step trees over 64 KB are routed to R2 (see `offloads`). The run's counts
 * change by what this write changes: the replaced results are subtracted before the upsert and
 * added back after it, so the cost follows the write's size, not the run's.
 */
export async function resultWrite(
  run: RunRef,
  inputs: ResultInput[],
  now: string,
  options: {
    submittedEvent?: boolean;
    /**
     * "delta" (the default) moves the run's counts in this batch; "deferred" leaves them to a
     * recountRun the caller runs once after many writes (a background ingest), which is cheaper
     * than two lookups per result per write.
     */
    counts?: "delta" | "deferred";
  } = {},
): Promise<ResultWrite> {
  const submissionId = newId("res");

  // One row per test: within a submission the later attempt wins, as it does against the table.
  const byKey = new Map<string, ResultInput>();
  for (const input of inputs) {
    const key = identityKey({ automationId: input.automationId, filePath: input.filePath, fullTitle: input.fullTitle ?? input.title });
    const previous = byKey.get(key);
    if (!previous || (input.attempt ?? 1) >= (previous.attempt ?? 1)) byKey.set(key, input);
  }

  const offloads: Offload[] = [];
  const rows = await Promise.all(
    [...byKey.entries()].map(async ([key, input]) => {
      const attempt = input.attempt ?? 1;
      const isFlaky = input.status === "flaky" || (input.isFlaky ?? false);
      let base: string | null = null;
      const place = async (name: string, body: string, contentType: string): Promise<string> => {
        base ??= `${runObjectPrefix(run.projectId, run.id)}results/${await sha256Hex(key)}/${attempt}/`;
        const objectKey = `${base}${name}`;
        offloads.push({ key: objectKey, body, contentType });
        return objectKey;
      };
      const stdout = input.stdout ?? "";
      const stderr = input.stderr ?? "";
      const stepsJson = JSON.stringify(input.steps ?? []);
      const stdoutKey = byteLength(stdout) > INLINE_TEXT_MAX_BYTES ? await place("stdout.txt", stdout, "text/plain; charset=utf-8") : null;
      const stderrKey = byteLength(stderr) > INLINE_TEXT_MAX_BYTES ? await place("stderr.txt", stderr, "text/plain; charset=utf-8") : null;
      const stepsKey = byteLength(stepsJson) > INLINE_TEXT_MAX_BYTES ? await place("steps.json", stepsJson, "application/json") : null;
      const testCase = testCaseRowJson({
        automationId: input.automationId,
        title: input.title,
        fullTitle: input.fullTitle,
        filePath: input.filePath,
        lineNumber: input.lineNumber,
        tags: input.tags,
      });
      return {
        testCase,
        result: {
          k: key,
          id: newId("res"),
          title: input.title,
          full_title: testCase.full_title,
          file_path: input.filePath ?? null,
          line_number: input.lineNumber ?? null,
          status: input.status,
          duration: Math.round(input.duration),
          retries: input.retries ?? 0,
          attempt,
          is_flaky: isFlaky,
          tags: input.tags ?? [],
          annotations: input.annotations ?? [],
          error: input.error ?? null,
          steps: stepsKey ? [] : (input.steps ?? []),
          steps_key: stepsKey,
          stdout: stdoutKey ? null : stdout,
          stdout_key: stdoutKey,
          stderr: stderrKey ? null : stderr,
          stderr_key: stderrKey,
        },
        suite: { filePath: input.filePath ?? null, titles: suitePathOf(input) },
      };
    }),
  );

  const statements: SQL[] = [];
  for (const chunk of jsonChunks(rows.map((r) => r.testCase))) {
    statements.push(testCaseUpsert(run.organizationId, run.projectId, chunk, now));
  }
  const keyChunks = options.counts === "deferred" ? [] : jsonChunks(rows.map((r) => r.result.k));
  for (const keys of keyChunks) statements.push(adjustRunCounts(run, keys, -1));
  const resultStatements: number[] = [];
  for (const chunk of jsonChunks(rows.map((r) => r.result))) {
    resultStatements.push(statements.length);
    statements.push(resultUpsert(run, submissionId, chunk, now));
  }
  for (const keys of keyChunks) statements.push(adjustRunCounts(run, keys, 1));
  // New rows only (a replaced result keeps its created_at): each test case's execution count.
  statements.push(sql`UPDATE test_cases SET executions = executions + (
      SELECT count(*) FROM results x WHERE x.run_id = ${run.id} AND x.submission_id = ${submissionId} AND x.created_at = ${now}
        AND x.test_case_id = test_cases.id)
    WHERE id IN (SELECT x.test_case_id FROM results x WHERE x.run_id = ${run.id} AND x.submission_id = ${submissionId} AND x.created_at = ${now})`);
  statements.push(...suiteStatementsFor(run, rows.map((r) => r.suite).filter((s) => s.titles.length > 0), now));
  statements.push(markRunSubmitted(run.id, now));
  if (options.submittedEvent ?? true) statements.push(insertRunEvent(RUN_EVENT_TYPES.submitted, sql`r.id = ${run.id}`, now));
  const failed = rows.filter((r) => r.result.status === "failed").map((r) => r.result.k);
  for (const keys of failed.length > 0 ? jsonChunks(failed) : []) statements.push(failedCaseEvents(run, submissionId, keys, now));
  return { offloads, statements, rows: rows.length, resultStatements, submissionId };
}

/**
 * Puts a write's large output into R2. First, so that if D1 then fails an unreferenced object
 * under the run's prefix is harmless and goes with the run; the reverse would leave rows
 * pointing at nothing.
 */
export async function putOffloads(bucket: R2Bucket, offloads: Offload[]): Promise<void> {
  for (let i = 0; i < offloads.length; i += 16) {
    await Promise.all(offloads.slice(i, i + 16).map((o) => bucket.put(o.key, o.body, { httpMetadata: { contentType: o.contentType } })));
  }
}

/** Results stored by a batch built by resultWrite: the upserts' changes (a superseded row changes nothing). */
export function storedCount(write: ResultWrite, batchResults: D1Result[]): number {
  return write.resultStatements.reduce((sum, index) => sum + (batchResults[index]?.meta.changes ?? 0), 0);
}

/**
 * Records up to 1,000 results in a run: test cases, results, suites, the run's derived counts and
 * the events, in one D1 batch (one transaction), with every row carried as JSON in a handful of
 * statements. A test has one result per run; reporting it again replaces the result unless the
 * run already holds a later attempt. Output and step trees over 64 KB go to R2 first.
 */
export async function recordResults(
  ctx: CoreContext,
  runId: string,
  inputs: ResultInput[],
  options: { projectId?: string; maxResults?: number } = {},
): Promise<SubmissionOutcome> {
  requireScope(ctx.principal, "results:submit");
  const max = options.maxResults ?? RESULTS_PER_SUBMISSION;
  if (inputs.length > max) {
    throw Invalid.field("results", "too_many", `must have at most ${max} items`, { status: 422 });
  }
  const found = await ctx.db
    .select({
      id: testRuns.id,
      organizationId: testRuns.organizationId,
      projectId: testRuns.projectId,
      // Read here so that refreshing flakiness costs no query of its own.
      settings: SETTINGS_COLUMNS,
    })
    .from(testRuns)
    .leftJoin(projectSettings, eq(projectSettings.projectId, testRuns.projectId))
    .where(and(eq(testRuns.id, runId), visibleRuns(ctx.principal), options.projectId ? eq(testRuns.projectId, options.projectId) : undefined))
    .get();
  // A run of another project than the one named answers as a missing run does.
  if (!found) throw new NotFound("Test run", { id: runId });
  const { settings, ...run } = found;

  const now = nowIso(ctx.clock);
  const write = await resultWrite(run, inputs, now);
  await putOffloads(ctx.env.ARTIFACTS, write.offloads);
  const storedQuery = ctx.db
    .select(summaryColumns)
    .from(results)
    .where(and(eq(results.runId, run.id), eq(results.submissionId, write.submissionId)))
    .orderBy(asc(results.number));
  const flakiness = settingsFrom(settings ?? undefined);
  // Two round trips: the writes with the reads of what they stored and of the flakiness inputs
  // of its test cases (one batch sees its own writes), then the scores with the run's new counts.
  // A run read without the testruns:read scope: a CI key that may only submit still sees its counts.
  const runRead = runReads(ctx, and(eq(testRuns.id, run.id), visibleRuns(ctx.principal))!);
  if (write.rows > REFRESH_PAGE) {
    // More test cases than one refresh reads at a time (a large synchronous report): paged.
    await batchAll(ctx.db, write.statements);
    const stored = (await storedQuery).map((r) => toSummary(r as SummaryRow));
    await refreshFlakiness(ctx.db, run.projectId, stored.map((r) => r.testCaseId), now, { settings: flakiness, runId: run.id });
    const updated = runRead.from(await batchAll(ctx.db, [...runRead.statements]));
    if (!updated) throw new NotFound("Test run", { id: run.id });
    return { run: updated, stored, superseded: write.rows - stored.length };
  }
  const storedCases = sql`(SELECT json_group_array(test_case_id) FROM results WHERE run_id = ${run.id} AND submission_id = ${write.submissionId})`;
  const written = await batchAll(ctx.db, [...write.statements, storedQuery, ...refreshReads(storedCases, run.projectId, flakiness)]);
  const [storedResult, executionRows, stateRows] = written.slice(-3);
  const stored = batchRows(storedQuery, storedResult).map((r) => toSummary(r as SummaryRow));
  const plan = refreshWrites(executionRows, stateRows, run.projectId, flakiness, now, run.id);
  const scored = await batchAll(ctx.db, [...plan.statements, ...runRead.statements]);
  const updated = runRead.from(scored);
  if (!updated) throw new NotFound("Test run", { id: run.id });
  return { run: updated, stored, superseded: write.rows - stored.length };
}

/** Exported so a test can read its query plan. */
export function resultUpsert(run: { id: string; organizationId: string; projectId: string }, submissionId: string, json: string, now: string): SQL {
  const f = (name: string) => sql.raw(`json_extract(j.value, '$.${name}')`);
  const replace = [
    "submission_id", "title", "full_title", "file_path", "line_number", "status", "duration_ms", "retries", "attempt",
    "is_flaky", "tags", "annotations", "error", "steps", "steps_key", "stdout", "stdout_key", "stderr", "stderr_key", "updated_at",
  ]
    .map((c) => `${c} = excluded.${c}`)
    .join(", ");
  return sql`INSERT INTO results (id, organization_id, project_id, run_id, test_case_id, submission_id, title, full_title,
      file_path, line_number, status, duration_ms, retries, attempt, is_flaky, tags, annotations, error, steps, steps_key,
      stdout, stdout_key, stderr, stderr_key, created_at, updated_at)
    SELECT ${f("id")}, ${run.organizationId}, ${run.projectId}, ${run.id}, tc.id, ${submissionId}, ${f("title")}, ${f("full_title")},
      ${f("file_path")}, ${f("line_number")}, ${f("status")}, ${f("duration")}, ${f("retries")}, ${f("attempt")}, ${f("is_flaky")},
      ${f("tags")}, ${f("annotations")}, ${f("error")}, ${f("steps")}, ${f("steps_key")},
      ${f("stdout")}, ${f("stdout_key")}, ${f("stderr")}, ${f("stderr_key")}, ${now}, ${now}
    FROM json_each(${json}) j
    -- CROSS JOIN fixes the loop order: each row looks its test case up by the identity index.
    -- Left to the planner, it looped over every test case of the project and scanned the JSON
    -- for each, so a submission cost grew with the size of the project.
    CROSS JOIN test_cases tc ON tc.project_id = ${run.projectId} AND tc.identity_key = ${f("k")}
    WHERE true
    ON CONFLICT (run_id, test_case_id) DO UPDATE SET ${sql.raw(replace)}
    WHERE excluded.attempt >= results.attempt`;
}

/**
 * Adds (sign 1) or subtracts (sign -1) the current results of the given tests to the run's
 * counts and duration. Run around an upsert, in the same batch, it moves the counts by exactly
 * what the upsert changed. A flaky result (status flaky, or passed with isFlaky) counts as
 * flaky, not passed.
 */
function adjustRunCounts(run: RunRef, keysJson: string, sign: 1 | -1): SQL {
  const op = sql.raw(sign === 1 ? "+" : "-");
  return sql`UPDATE test_runs SET (total_tests, passed_tests, failed_tests, skipped_tests, flaky_tests, duration_ms) = (
      SELECT test_runs.total_tests ${op} count(*),
        test_runs.passed_tests ${op} coalesce(sum(x.status = 'passed' AND NOT x.is_flaky), 0),
        test_runs.failed_tests ${op} coalesce(sum(x.status = 'failed'), 0),
        test_runs.skipped_tests ${op} coalesce(sum(x.status = 'skipped'), 0),
        test_runs.flaky_tests ${op} coalesce(sum(x.status = 'flaky' OR (x.status = 'passed' AND x.is_flaky)), 0),
        test_runs.duration_ms ${op} coalesce(sum(x.duration_ms), 0)
      FROM json_each(${keysJson}) j
      CROSS JOIN test_cases tc ON tc.project_id = ${run.projectId} AND tc.identity_key = j.value
      CROSS JOIN results x ON x.run_id = ${run.id} AND x.test_case_id = tc.id)
    WHERE id = ${run.id}`;
}

/**
 * The run's counts and duration recomputed from all its results: one pass over the run, for a
 * writer that deferred the counts of many writes. A flaky result (status flaky, or passed with
 * isFlaky) counts as flaky, not passed.
 */
export function recountRun(runId: string): SQL {
  return sql`UPDATE test_runs SET (total_tests, passed_tests, failed_tests, skipped_tests, flaky_tests, duration_ms) = (
      SELECT count(*),
        coalesce(sum(status = 'passed' AND NOT is_flaky), 0),
        coalesce(sum(status = 'failed'), 0),
        coalesce(sum(status = 'skipped'), 0),
        coalesce(sum(status = 'flaky' OR (status = 'passed' AND is_flaky)), 0),
        coalesce(sum(duration_ms), 0)
      FROM results WHERE run_id = ${runId})
    WHERE id = ${runId}`;
}

/** A run that receives results is running (if it was queued) and records when it last did. */
function markRunSubmitted(runId: string, now: string): SQL {
  return sql`UPDATE test_runs SET submitted_at = ${now}, updated_at = ${now},
    status = CASE WHEN status = 'queued' THEN 'running' ELSE status END
    WHERE id = ${runId}`;
}

/**
 * testcase.failed.v1 for each failed result this submission stored. The failed tests are looked
 * up by identity (a few per submission, usually), not found by reading back every result the
 * submission wrote; a result superseded by a later attempt already there has another submission.
 */
function failedCaseEvents(run: RunRef, submissionId: string, failedKeysJson: string, now: string): SQL {
  const type = RUN_EVENT_TYPES.caseFailed;
  return sql`INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at)
    SELECT ${sqlIdHead("evt", Date.parse(now))} || ${sql.raw(SQL_ID_TAIL)}, x.organization_id, x.project_id, ${type}, x.id,
      json_object('type', ${type}, 'result', json_object('result_id', x.id, 'test_case_id', x.test_case_id, 'run_id', x.run_id,
        'project_id', x.project_id, 'title', x.title, 'full_title', x.full_title, 'file_path', x.file_path,
        'attempt', x.attempt, 'error_message', json_extract(x.error, '$.message'))), ${now}
    FROM json_each(${failedKeysJson}) j
    CROSS JOIN test_cases tc ON tc.project_id = ${run.projectId} AND tc.identity_key = j.value
    CROSS JOIN results x ON x.run_id = ${run.id} AND x.test_case_id = tc.id
    WHERE x.submission_id = ${submissionId} AND x.status = 'failed'`;
}

const summaryColumns = {
  id: results.id,
  runId: results.runId,
  projectId: results.projectId,
  testCaseId: results.testCaseId,
  title: results.title,
  fullTitle: results.fullTitle,
  filePath: results.filePath,
  lineNumber: results.lineNumber,
  status: results.status,
  durationMs: results.durationMs,
  retries: results.retries,
  attempt: results.attempt,
  isFlaky: results.isFlaky,
  tags: results.tags,
  annotations: results.annotations,
  error: results.error,
  createdAt: results.createdAt,
  updatedAt: results.updatedAt,
};

type SummaryRow = { [K in keyof typeof summaryColumns]: (typeof summaryColumns)[K]["_"]["data"] } & Record<string, unknown>;

function toSummary(row: Pick<ResultRow, keyof typeof summaryColumns>): ResultSummary {
  return {
    id: row.id,
    runId: row.runId,
    projectId: row.projectId,
    testCaseId: row.testCaseId,
    title: row.title,
    fullTitle: row.fullTitle,
    filePath: row.filePath,
    lineNumber: row.lineNumber,
    status: row.status as ResultStatus,
    duration: row.durationMs,
    retries: row.retries,
    attempt: row.attempt,
    isFlaky: row.isFlaky,
    tags: row.tags,
    annotations: row.annotations as Annotation[],
    error: (row.error as ResultError | null) ?? null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Results of runs the principal may see (a run being deleted hides its results at once). */
function visibleResults(ctx: CoreContext): SQL {
  return tenantScope(ctx.principal, { organizationId: results.organizationId, projectId: results.projectId });
}

const visibleRunJoin = (ctx: CoreContext) => and(eq(testRuns.id, results.runId), visibleRuns(ctx.principal))!;

export interface ListResultsInput {
  page: PageRequest;
  runId?: string;
  projectId?: string;
  status?: ResultStatus;
  search?: string;
}

function statusCondition(status: ResultStatus): SQL {
  switch (status) {
    case "flaky":
      return sql`(${results.status} = 'flaky' OR (${results.status} = 'passed' AND ${results.isFlaky} = 1))`;
    case "passed":
      return sql`(${results.status} = 'passed' AND ${results.isFlaky} = 0)`;
    default:
      return eq(results.status, status);
  }
}

/** Results of one run (in reporting order) or of a project (newest first), filtered. */
export async function listResults(ctx: CoreContext, input: ListResultsInput): Promise<Paged<ResultSummary>> {
  requireScope(ctx.principal, "results:read");
  const conditions = [visibleResults(ctx)];
  if (input.projectId !== undefined) await assertProjectVisible(ctx, input.projectId);
  const run = input.runId !== undefined ? await getRunForResults(ctx, input.runId, input.projectId) : null;
  if (input.runId !== undefined) conditions.push(eq(results.runId, input.runId));
  if (input.projectId !== undefined) conditions.push(eq(results.projectId, input.projectId));
  const filtered = input.status !== undefined || (input.search !== undefined && input.search !== "");
  if (input.status !== undefined) conditions.push(statusCondition(input.status));
  if (input.search !== undefined && input.search !== "") {
    conditions.push(containsText(results.fullTitle, input.search));
  }
  const where = and(...conditions)!;
  if (run) {
    // One run, already checked visible: a page of its results in number order straight from the
    // (run_id) index, and, unfiltered, the total from the run's own count instead of counting them.
    const page = ctx.db.select(summaryColumns).from(results).where(where).orderBy(asc(results.number)).limit(input.page.limit).offset(input.page.offset);
    if (!filtered) {
      // Through batch() even alone: D1 reports rows read for it (D1_METRICS), not for a bare select.
      const [rows] = await ctx.db.batch([page]);
      return { items: rows.map((r) => toSummary(r as SummaryRow)), total: run.totalTests, ...input.page };
    }
    const [totalRows, rows] = await ctx.db.batch([ctx.db.select({ total: sql<number>`count(*)` }).from(results).where(where), page]);
    return { items: rows.map((r) => toSummary(r as SummaryRow)), total: totalRows[0]?.total ?? 0, ...input.page };
  }
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(results).innerJoin(testRuns, visibleRunJoin(ctx)).where(where),
    ctx.db
      .select(summaryColumns)
      .from(results)
      .innerJoin(testRuns, visibleRunJoin(ctx))
      .where(where)
      .orderBy(desc(results.createdAt), desc(results.number))
      .limit(input.page.limit)
      .offset(input.page.offset),
  ]);
  return { items: rows.map((r) => toSummary(r as SummaryRow)), total: totalRows[0]?.total ?? 0, ...input.page };
}

async function getRunForResults(ctx: CoreContext, runId: string, projectId?: string): Promise<{ id: string; totalTests: number }> {
  const conditions = [eq(testRuns.id, runId), visibleRuns(ctx.principal)];
  if (projectId !== undefined) conditions.push(eq(testRuns.projectId, projectId));
  const run = await ctx.db.select({ id: testRuns.id, totalTests: testRuns.totalTests }).from(testRuns).where(and(...conditions)).get();
  if (!run) throw new NotFound("Test run", { id: runId });
  return run;
}

async function readResultRow(ctx: CoreContext, id: string): Promise<ResultRow> {
  const found = await ctx.db
    .select({ result: results })
    .from(results)
    .innerJoin(testRuns, visibleRunJoin(ctx))
    .where(and(eq(results.id, id), visibleResults(ctx)))
    .get();
  if (!found) throw new NotFound("Result", { id });
  return found.result;
}

async function readObject(bucket: R2Bucket, key: string): Promise<string> {
  const object = await bucket.get(key);
  // The row names an object that should exist; if it does not, say so rather than pretend it was empty.
  if (!object) throw new Error(`R2 object ${key} referenced by a result is missing`);
  return object.text();
}

export async function getResult(ctx: CoreContext, id: string): Promise<ResultDetail> {
  requireScope(ctx.principal, "results:read");
  const row = await readResultRow(ctx, id);
  const [stdout, stderr] = await Promise.all([
    row.stdoutKey ? readObject(ctx.env.ARTIFACTS, row.stdoutKey) : Promise.resolve(row.stdout ?? ""),
    row.stderrKey ? readObject(ctx.env.ARTIFACTS, row.stderrKey) : Promise.resolve(row.stderr ?? ""),
  ]);
  return { ...toSummary(row), stdout, stderr };
}

export async function getResultSteps(ctx: CoreContext, id: string): Promise<Step[]> {
  requireScope(ctx.principal, "results:read");
  const row = await readResultRow(ctx, id);
  if (row.stepsKey) return JSON.parse(await readObject(ctx.env.ARTIFACTS, row.stepsKey)) as Step[];
  return row.steps as Step[];
}

export const HISTORY_LENGTH = 20;

export interface HistoryEntry {
  resultId: string;
  runId: string;
  status: ResultStatus;
  duration: number;
  isFlaky: boolean;
  branch: string | null;
  commitSha: string | null;
  createdAt: string;
}

/** The history query (last 20 executions, newest first); exported so a test can show its plan. */
export function historyQuery(ctx: CoreContext, testCaseId: string) {
  return ctx.db
    .select({
      resultId: results.id,
      runId: results.runId,
      status: results.status,
      duration: results.durationMs,
      isFlaky: results.isFlaky,
      branch: testRuns.branch,
      commitSha: testRuns.commitSha,
      createdAt: results.createdAt,
    })
    .from(results)
    .innerJoin(testRuns, visibleRunJoin(ctx))
    .where(and(eq(results.testCaseId, testCaseId), visibleResults(ctx)))
    .orderBy(desc(results.createdAt), desc(results.number))
    .limit(HISTORY_LENGTH);
}

export async function testCaseHistory(ctx: CoreContext, testCaseId: string): Promise<{ items: HistoryEntry[]; total: number }> {
  requireScope(ctx.principal, "results:read");
  await getTestCase(ctx, testCaseId);
  // The total is the test case's execution count, kept by writes and deletes: counting the
  // results here read the whole history on every request.
  const [rows, totals] = await ctx.db.batch([
    historyQuery(ctx, testCaseId),
    ctx.db
      .select({ total: testCases.executions })
      .from(testCases)
      .where(and(eq(testCases.id, testCaseId), tenantScope(ctx.principal, { organizationId: testCases.organizationId, projectId: testCases.projectId }))),
  ]);
  return { items: rows.map((r) => ({ ...r, status: r.status as ResultStatus })), total: totals[0]?.total ?? 0 };
}

/** The history of the test case a result belongs to (the reporting surface's /tests/:id/history). */
export async function resultHistory(ctx: CoreContext, resultId: string): Promise<{ items: HistoryEntry[]; total: number }> {
  requireScope(ctx.principal, "results:read");
  const row = await readResultRow(ctx, resultId);
  return testCaseHistory(ctx, row.testCaseId);
}
