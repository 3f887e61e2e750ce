import { eq, sql, type SQL } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import type { Db } from "../../db/client";
import { projectSettings } from "../../db/schema";
import { randomHex } from "../../lib/crypto";
import { SQL_ID_TAIL, sqlIdHead } from "../../lib/ids";
import type { QueueMessageBody } from "../../env";
import { jsonChunks } from "../testcases/testcases";
import {
  DEFAULT_MIN_SAMPLES,
  DEFAULT_WINDOW,
  type Execution,
  OUTAGE_FAILED_SHARE,
  OUTAGE_MIN_TESTS,
  cleanStreak,
  scoreExecutions,
} from "./flakiness";

export const TESTCASE_FLAKY_EVENT = "testcase.flaky.v1";
export const TESTCASE_QUARANTINED_EVENT = "testcase.quarantined.v1";

/** A project's flakiness settings, as project_settings holds them. */
export interface FlakinessSettings {
  window: number;
  minSamples: number;
  threshold: number;
  autoQuarantine: boolean;
  recoveryDays: number;
  recoveryRuns: number;
}

export const DEFAULT_SETTINGS: FlakinessSettings = {
  window: DEFAULT_WINDOW,
  minSamples: DEFAULT_MIN_SAMPLES,
  threshold: 0.3,
  autoQuarantine: false,
  recoveryDays: 7,
  recoveryRuns: 20,
};

/** The columns of project_settings a refresh needs, for a caller that joins them into a query it makes anyway. */
export const SETTINGS_COLUMNS = {
  window: projectSettings.flakinessWindow,
  minSamples: projectSettings.flakinessMinSamples,
  threshold: projectSettings.flakinessThreshold,
  autoQuarantine: projectSettings.autoQuarantineEnabled,
  recoveryDays: projectSettings.quarantineRecoveryDays,
  recoveryRuns: projectSettings.quarantineRecoveryRuns,
};

type Nullable<T> = { [K in keyof T]: T[K] | null };

/** Settings read through a LEFT JOIN may be null (no row): the defaults apply. */
export function settingsFrom(row: Nullable<FlakinessSettings> | undefined): FlakinessSettings {
  const out = { ...DEFAULT_SETTINGS };
  for (const name of Object.keys(out) as (keyof FlakinessSettings)[]) {
    const value = row?.[name];
    if (value !== null && value !== undefined) (out as Record<string, unknown>)[name] = value;
  }
  return out;
}

export async function settingsOf(db: Db, projectId: string): Promise<FlakinessSettings> {
  const row = await db.select(SETTINGS_COLUMNS).from(projectSettings).where(eq(projectSettings.projectId, projectId)).get();
  return settingsFrom(row);
}

/**
 * Moves the project's flakiness summary (project_settings.scored_tests, score_sum, flaky_tests,
 * quarantined_tests) by the current state of the given test cases: subtract (-1) before a
 * statement that changes them and add (+1) after it, in the same batch, and the summary moves by
 * exactly what changed, whoever else is writing.
 */
export function adjustSummary(projectId: string, idsJson: string | SQL, sign: 1 | -1): SQL {
  const op = sql.raw(sign === 1 ? "+" : "-");
  return sql`UPDATE project_settings SET (scored_tests, score_sum, flaky_tests, quarantined_tests) = (
      SELECT project_settings.scored_tests ${op} count(tc.flakiness_score),
        project_settings.score_sum ${op} coalesce(sum(CAST(round(tc.flakiness_score * 10000) AS INTEGER)), 0),
        project_settings.flaky_tests ${op} coalesce(sum(tc.flakiness_score >= project_settings.flakiness_threshold), 0),
        project_settings.quarantined_tests ${op} coalesce(sum(tc.is_quarantined), 0)
      FROM json_each(${idsJson}) j CROSS JOIN test_cases tc ON tc.id = j.value AND tc.project_id = ${projectId})
    WHERE project_id = ${projectId}`;
}

/** Recounts a project's flakiness summary from its test cases: after the threshold changed. O(test cases), so rare. */
export function recountSummary(projectId: string): SQL {
  return sql`UPDATE project_settings SET (scored_tests, score_sum, flaky_tests, quarantined_tests) = (
      SELECT count(tc.flakiness_score), coalesce(sum(CAST(round(tc.flakiness_score * 10000) AS INTEGER)), 0),
        coalesce(sum(tc.flakiness_score >= project_settings.flakiness_threshold), 0), coalesce(sum(tc.is_quarantined), 0)
      FROM test_cases tc WHERE tc.project_id = ${projectId})
    WHERE project_id = ${projectId}`;
}

/**
 * The test case (alias `tc`) as a flakiness event payload, with `overrides` (json_set's path,
 * value pairs: `'$.flakiness_score', …`) laid over the row's values.
 */
export function flakyTestCasePayloadSql(overrides: SQL): SQL {
  return sql`json_set(json_object('test_case_id', tc.id, 'project_id', tc.project_id, 'title', tc.title,
    'full_title', tc.full_title, 'file_path', tc.file_path, 'flakiness_score', tc.flakiness_score, 'total_runs', tc.total_runs,
    'flaky_runs', tc.flaky_runs, 'last_flaky_at', tc.last_flaky_at,
    'is_quarantined', json(CASE WHEN tc.is_quarantined THEN 'true' ELSE 'false' END)), ${overrides})`;
}

/** INSERT … SELECT of one event per test case (alias `tc`) of the FROM/WHERE tail: nothing when none matches. */
export function insertTestCaseEvent(type: string, payload: SQL, fromWhere: SQL, now: string): SQL {
  return sql`INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at)
    SELECT ${sqlIdHead("evt", Date.parse(now))} || ${sql.raw(SQL_ID_TAIL)}, tc.organization_id, tc.project_id, ${type}, tc.id,
      ${payload}, ${now}
    ${fromWhere}`;
}

interface CaseState {
  id: string;
  flakiness_score: number | null;
  is_quarantined: number;
  quarantine_source: string | null;
  quarantined_at: string | null;
  quarantine_released_at: string | null;
  flakiness_stale: string | null;
}

export interface RefreshOutcome {
  /** Test cases whose score crossed the threshold upwards (testcase.flaky.v1). */
  flaky: number;
  quarantined: number;
  recovered: number;
}

const DAY_MS = 86_400_000;

/** Why an automatic quarantine ends now, or null while it should stay. */
export function recoveryReason(
  state: { quarantinedAt: string | null; lastFlakyAt: string | null; cleanStreak: number },
  settings: Pick<FlakinessSettings, "recoveryDays" | "recoveryRuns">,
  now: string,
): string | null {
  if (state.cleanStreak >= settings.recoveryRuns) return `recovered: ${state.cleanStreak} consecutive clean executions`;
  const lastTrouble = [state.quarantinedAt, state.lastFlakyAt].filter((t): t is string => t !== null).sort().at(-1);
  if (lastTrouble && Date.parse(now) - Date.parse(lastTrouble) >= settings.recoveryDays * DAY_MS) {
    return `recovered: no flaky execution for ${settings.recoveryDays} days`;
  }
  return null;
}

const j = (name: string) => sql.raw(`json_extract(j.value, '$.${name}')`);

/**
 * The last `depth` counted executions of each test case of `page` (a JSON array of ids), oldest
 * first per test case. Exported so a test can read its query plan.
 */
export function executionsSql(page: string | SQL, projectId: string, depth: number): SQL {
  return sql`SELECT j.value AS tc, x.status, x.is_flaky, tr.commit_sha, x.created_at
    FROM json_each(${page}) j
    CROSS JOIN results x ON x.number IN (
      SELECT r.number FROM results r JOIN test_runs t ON t.id = r.run_id
      -- The unary + keeps the planner on the (test_case_id, created_at) index: by project it
      -- would read every result of the project for each test case.
      WHERE r.test_case_id = j.value AND +r.project_id = ${projectId} AND r.status <> 'skipped'
        AND t.deleted_at IS NULL
        AND NOT (t.total_tests >= ${OUTAGE_MIN_TESTS} AND t.failed_tests > ${OUTAGE_FAILED_SHARE} * t.total_tests)
      ORDER BY r.created_at DESC, r.number DESC
      LIMIT ${depth})
    JOIN test_runs tr ON tr.id = x.run_id
    ORDER BY j.value, x.created_at, x.number`;
}

/** Writes the scores of `chunk` (a JSON array of scored test cases). Exported for its query plan. */
export function scoresUpdateSql(chunk: string, projectId: string, now: string): SQL {
  return sql`UPDATE test_cases SET flakiness_score = ${j("score")}, total_runs = ${j("totalRuns")},
      flaky_runs = ${j("flakyRuns")}, flip_rate = ${j("flipRate")}, same_commit_conflicts = ${j("sameCommitConflicts")},
      pass_on_retry = ${j("passOnRetry")}, flakiness_confidence = ${j("confidence")}, last_flaky_at = ${j("lastFlakyAt")},
      flakiness_window_start = ${j("windowStart")}, flakiness_updated_at = ${now},
      -- A mark set after this refresh read the results stays for the next one.
      flakiness_stale = CASE WHEN flakiness_stale IS ${j("stale")} THEN NULL ELSE flakiness_stale END
    FROM json_each(${chunk}) j
    -- Each JSON row looks its test case up by id (the + keeps the planner from looping over
    -- the project's test cases and scanning the JSON for each).
    WHERE test_cases.id = ${j("id")} AND +test_cases.project_id = ${projectId}`;
}

/**
 * Recomputes the flakiness of the given test cases of a project from their last executions,
 * then applies what the new scores mean, in one batch:
 *
 * - testcase.flaky.v1 when a score reaches the project's threshold from below;
 * - automatic quarantine (project setting) when a score is at or above the threshold and the test
 *   was flaky again since it last left quarantine (so a recovered test is not sent straight back
 *   on the old evidence still in its window);
 * - recovery of an automatic quarantine after `recoveryRuns` consecutive clean executions or
 *   `recoveryDays` without a flaky one. A quarantine a person set stays until a person lifts it.
 *
 * Each test case reads at most max(window, recoveryRuns) results (newest first, through the
 * (test_case_id, created_at) index) plus any outage or skipped ones it passes over: the cost
 * follows the number of test cases, not the length of history. Computed from the results each
 * time, so two writers racing cannot leave a wrong score behind for longer than the next write;
 * events and quarantine changes are guarded by the row's state inside the batch, so they happen
 * once however the writers interleave.
 */
export async function refreshFlakiness(
  db: Db,
  projectId: string,
  testCaseIds: string[],
  now: string,
  options: { settings?: FlakinessSettings; runId?: string | null } = {},
): Promise<RefreshOutcome> {
  const outcome: RefreshOutcome = { flaky: 0, quarantined: 0, recovered: 0 };
  if (testCaseIds.length === 0) return outcome;
  const settings = options.settings ?? (await settingsOf(db, projectId));
  const ids = [...new Set(testCaseIds)];
  for (let i = 0; i < ids.length; i += REFRESH_PAGE) {
    const reads = refreshReads(JSON.stringify(ids.slice(i, i + REFRESH_PAGE)), projectId, settings);
    const [executionRows, stateRows] = await batchAll(db, reads);
    const plan = refreshWrites(executionRows, stateRows, projectId, settings, now, options.runId ?? null);
    addOutcome(outcome, plan, await batchAll(db, plan.statements));
  }
  return outcome;
}

/** Test cases one refresh reads and writes at a time (one JSON parameter each way). */
export const REFRESH_PAGE = 1000;

/**
 * The two reads of a refresh: the last executions and the current state of the test cases of
 * `page` (a JSON array of at most REFRESH_PAGE ids, or a scalar subquery giving one). A writer
 * appends them to the batch that wrote the results, so they see those results in the same round
 * trip; refreshWrites turns their answers into the writes.
 */
export function refreshReads(page: string | SQL, projectId: string, settings: FlakinessSettings): [SQL, SQL] {
  const depth = Math.max(settings.window, settings.recoveryRuns);
  return [
    executionsSql(page, projectId, depth),
    sql`SELECT tc.id, tc.flakiness_score, tc.is_quarantined, tc.quarantine_source, tc.quarantined_at,
        tc.quarantine_released_at, tc.flakiness_stale
      FROM json_each(${page}) j CROSS JOIN test_cases tc ON tc.id = j.value AND tc.project_id = ${projectId}`,
  ];
}

/** The writes of a refresh, and where in them the flaky events are (to count what was announced). */
export interface RefreshPlan {
  statements: SQL[];
  flakyInserts: number[];
  quarantined: number;
  recovered: number;
}

/** Adds what a refresh's batch did to an outcome. */
export function addOutcome(outcome: RefreshOutcome, plan: RefreshPlan, results: D1Result[]): void {
  outcome.flaky += plan.flakyInserts.reduce((sum, index) => sum + (results[index]?.meta.changes ?? 0), 0);
  outcome.quarantined += plan.quarantined;
  outcome.recovered += plan.recovered;
}

/**
 * Scores the test cases from the answers of refreshReads and builds the writes: the scores, the
 * summary counters around them, testcase.flaky.v1 for scores crossing the threshold, and
 * automatic quarantine or recovery. The writes go first in a batch (`flakyInserts` index it).
 */
export function refreshWrites(
  executionResult: D1Result | undefined,
  stateResult: D1Result | undefined,
  projectId: string,
  settings: FlakinessSettings,
  now: string,
  runId: string | null,
): RefreshPlan {
  const byCase = new Map<string, Execution[]>();
  for (const row of (executionResult?.results ?? []) as { tc: string; status: Execution["status"]; is_flaky: number; commit_sha: string | null; created_at: string }[]) {
    const list = byCase.get(row.tc) ?? [];
    list.push({ status: row.status, isFlaky: row.is_flaky === 1, commitSha: row.commit_sha, at: row.created_at });
    byCase.set(row.tc, list);
  }

  const scored = [];
  const crossed: string[] = [];
  const quarantine: { id: string; reason: string }[] = [];
  const recover: { id: string; reason: string }[] = [];
  for (const state of (stateResult?.results ?? []) as unknown as CaseState[]) {
    const all = byCase.get(state.id) ?? [];
    const inWindow = all.slice(-settings.window);
    const f = scoreExecutions(inWindow, settings);
    // '' when the window holds every execution: then deleting any of them changes the score.
    const windowStart = all.length >= settings.window ? (inWindow[0]?.at ?? "") : "";
    scored.push({ id: state.id, ...f, windowStart, stale: state.flakiness_stale });
    const above = f.score !== null && f.score >= settings.threshold;
    if (above && (state.flakiness_score === null || state.flakiness_score < settings.threshold)) crossed.push(state.id);
    if (state.is_quarantined === 0) {
      const flakyAgain = state.quarantine_released_at === null || (f.lastFlakyAt !== null && f.lastFlakyAt > state.quarantine_released_at);
      if (settings.autoQuarantine && above && flakyAgain) {
        quarantine.push({ id: state.id, reason: `auto: flakiness score ${f.score} reached the threshold ${settings.threshold}` });
      }
    } else if (state.quarantine_source === "auto") {
      const reason = recoveryReason({ quarantinedAt: state.quarantined_at, lastFlakyAt: f.lastFlakyAt, cleanStreak: cleanStreak(all, state.quarantined_at) }, settings, now);
      if (reason) recover.push({ id: state.id, reason });
    }
  }

  const statements: SQL[] = [];
  const flakyInserts: number[] = [];
  for (const chunk of jsonChunks(scored)) {
    const chunkIds = sql`(SELECT json_group_array(json_extract(value, '$.id')) FROM json_each(${chunk}))`;
    if (crossed.length > 0) {
      // Before the update, so the row still shows the old score the guard compares against.
      flakyInserts.push(statements.length);
      statements.push(
        insertTestCaseEvent(
          TESTCASE_FLAKY_EVENT,
          sql`json_object('type', ${TESTCASE_FLAKY_EVENT}, 'test_case', ${flakyTestCasePayloadSql(
            sql`'$.flakiness_score', ${j("score")}, '$.total_runs', ${j("totalRuns")}, '$.flaky_runs', ${j("flakyRuns")},
              '$.last_flaky_at', ${j("lastFlakyAt")}`,
          )}, 'run_id', ${runId})`,
          sql`FROM json_each(${chunk}) j CROSS JOIN test_cases tc ON tc.id = ${j("id")} AND tc.project_id = ${projectId}
            WHERE ${j("id")} IN (SELECT value FROM json_each(${JSON.stringify(crossed)}))
              AND ${j("score")} >= ${settings.threshold}
              AND (tc.flakiness_score IS NULL OR tc.flakiness_score < ${settings.threshold})`,
          now,
        ),
      );
    }
    statements.push(adjustSummary(projectId, chunkIds, -1));
    statements.push(scoresUpdateSql(chunk, projectId, now));
    statements.push(adjustSummary(projectId, chunkIds, 1));
  }
  statements.push(...quarantineTransitions(projectId, quarantine, recover, now));
  return { statements, flakyInserts, quarantined: quarantine.length, recovered: recover.length };
}

/**
 * Automatic quarantine and recovery of the given test cases, each guarded by the row's state so
 * that only a real change happens and is announced (testcase.quarantined.v1, source "auto").
 */
export function quarantineTransitions(
  projectId: string,
  enter: { id: string; reason: string }[],
  leave: { id: string; reason: string }[],
  now: string,
): SQL[] {
  const statements: SQL[] = [];
  for (const [list, entering] of [
    [enter, true],
    [leave, false],
  ] as const) {
    if (list.length === 0) continue;
    const json = JSON.stringify(list);
    const ids = JSON.stringify(list.map((t) => t.id));
    const guard = entering ? sql`tc.is_quarantined = 0` : sql`tc.is_quarantined = 1 AND tc.quarantine_source = 'auto'`;
    const from = sql`FROM json_each(${json}) j CROSS JOIN test_cases tc ON tc.id = ${j("id")} AND tc.project_id = ${projectId} WHERE ${guard}`;
    statements.push(
      insertTestCaseEvent(
        TESTCASE_QUARANTINED_EVENT,
        sql`json_object('type', ${TESTCASE_QUARANTINED_EVENT},
          'test_case', ${flakyTestCasePayloadSql(sql`'$.is_quarantined', json(${entering ? "true" : "false"})`)},
          'source', 'auto', 'reason', ${j("reason")})`,
        from,
        now,
      ),
      adjustSummary(projectId, ids, -1),
      sql`UPDATE test_cases SET ${
        entering
          ? sql`is_quarantined = 1, quarantined_at = ${now}, quarantined_by = 'auto', quarantine_source = 'auto', quarantine_reason = ${j("reason")}`
          : sql`is_quarantined = 0, quarantined_at = NULL, quarantined_by = NULL, quarantine_source = NULL, quarantine_reason = NULL,
              quarantine_released_at = ${now}`
      }, updated_at = ${now}
        FROM json_each(${json}) j
        WHERE test_cases.id = ${j("id")} AND +test_cases.project_id = ${projectId}
          AND ${sql.raw(entering ? "test_cases.is_quarantined = 0" : "test_cases.is_quarantined = 1 AND test_cases.quarantine_source = 'auto'")}`,
      adjustSummary(projectId, ids, 1),
    );
  }
  return statements;
}

export const FLAKINESS_REFRESH_MESSAGE = "flakiness.refresh";

/**
 * Marks test cases whose score may have changed without a results write to refresh them (their
 * results were deleted, the run turned out an outage, the project's window changed). refreshStale
 * picks them up in bounded batches: right after the change where that is cheap, else from the
 * queue or the cron. `ids` is a subquery yielding test case ids.
 */
export function markStale(ids: SQL): SQL {
  return sql`UPDATE test_cases SET flakiness_stale = ${randomHex(8)} WHERE id IN (${ids})`;
}

/**
 * Refreshes up to `max` stale test cases (of one project, or of any), oldest mark first per
 * project. Returns how many it refreshed and whether more are waiting.
 */
export async function refreshStale(db: Db, now: string, options: { projectId?: string; max?: number } = {}): Promise<{ refreshed: number; more: boolean }> {
  const max = options.max ?? 1000;
  const rows = await db.all<{ id: string; project_id: string }>(
    options.projectId
      ? sql`SELECT id, project_id FROM test_cases WHERE project_id = ${options.projectId} AND flakiness_stale IS NOT NULL LIMIT ${max + 1}`
      : sql`SELECT id, project_id FROM test_cases WHERE flakiness_stale IS NOT NULL LIMIT ${max + 1}`,
  );
  const byProject = new Map<string, string[]>();
  for (const row of rows.slice(0, max)) byProject.set(row.project_id, [...(byProject.get(row.project_id) ?? []), row.id]);
  for (const [projectId, ids] of byProject) await refreshFlakiness(db, projectId, ids, now);
  return { refreshed: Math.min(rows.length, max), more: rows.length > max };
}

/**
 * Cron: ends automatic quarantines that have had no flaky execution for their project's recovery
 * days, for tests that stopped running (a running test recovers in refreshFlakiness). Reads the
 * partial index of automatic quarantines only.
 */
export async function recoverIdleQuarantines(db: Db, now: string, max = 500): Promise<number> {
  const rows = await db.all<{ id: string; project_id: string; quarantined_at: string | null; last_flaky_at: string | null; days: number; runs: number }>(
    sql`SELECT tc.id, tc.project_id, tc.quarantined_at, tc.last_flaky_at, s.quarantine_recovery_days AS days, s.quarantine_recovery_runs AS runs
      FROM test_cases tc INDEXED BY test_cases_auto_quarantine_idx
      JOIN project_settings s ON s.project_id = tc.project_id
      WHERE tc.is_quarantined = 1 AND tc.quarantine_source = 'auto'
        AND max(coalesce(tc.last_flaky_at, ''), coalesce(tc.quarantined_at, ''))
          <= strftime('%Y-%m-%dT%H:%M:%fZ', ${now}, '-' || s.quarantine_recovery_days || ' days')
      LIMIT ${max}`,
  );
  const byProject = new Map<string, { id: string; reason: string }[]>();
  for (const row of rows) {
    const reason = recoveryReason({ quarantinedAt: row.quarantined_at, lastFlakyAt: row.last_flaky_at, cleanStreak: 0 }, { recoveryDays: row.days, recoveryRuns: row.runs }, now);
    if (reason) byProject.set(row.project_id, [...(byProject.get(row.project_id) ?? []), { id: row.id, reason }]);
  }
  let recovered = 0;
  for (const [projectId, leave] of byProject) {
    await batchAll(db, quarantineTransitions(projectId, [], leave, now));
    recovered += leave.length;
  }
  return recovered;
}

/** Inline refreshes stop here; the rest goes to the queue (and the cron catches what is left). */
const INLINE_REFRESH = 1000;

/**
 * Refreshes a project's stale test cases now, up to a bound, and hands the rest to the queue.
 * Cheap when none is stale: one read of a partial index.
 */
export async function refreshStaleSoon(db: Db, queue: Queue<QueueMessageBody>, projectId: string, now: string): Promise<void> {
  const { more } = await refreshStale(db, now, { projectId, max: INLINE_REFRESH });
  if (more) await queue.send({ type: FLAKINESS_REFRESH_MESSAGE, project_id: projectId });
}

/** Queue: refreshes a project's stale test cases in pages, sending itself on while more are waiting. */
export async function handleFlakinessRefresh(db: Db, queue: Queue<QueueMessageBody>, projectId: string, now: string, max = 20_000): Promise<{ refreshed: number; more: boolean }> {
  const outcome = await refreshStale(db, now, { projectId, max });
  if (outcome.more) await queue.send({ type: FLAKINESS_REFRESH_MESSAGE, project_id: projectId });
  return outcome;
}
