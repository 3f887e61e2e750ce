import { eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client";
import { projectSettings } from "../../db/schema";
import { jsonChunks } from "../testcases/testcases";

/**
 * Flakiness of a test case, from its last `window` executions (one per run: the test's final
 * outcome there), oldest first. Skipped executions do not count, nor do executions in runs of at
 * least 5 tests where more than 80 % of them failed (an outage says nothing about one test). Signals:
 *
 * - pass on retry: the run reported it flaky (failed, then passed on a retry);
 * - flips: how often the outcome changed from one execution to the next, as flips ÷ (n − 1);
 * - same-commit conflicts: commits on which the test both passed and failed.
 *
 * score = 1 − (1 − retried ÷ n) × (1 − flip rate) × (1 − conflicting ÷ n), where `conflicting`
 * counts the executions on a conflicting commit. Each signal alone can take it to 1, none can
 * take it down, and a test that always fails scores 0: broken is not flaky. Below `minSamples`
 * executions the score is null ("insufficient data"). confidence = min(1, n ÷ window).
 */
export interface Execution {
  status: "passed" | "failed" | "flaky";
  isFlaky: boolean;
  commitSha: string | null;
  at?: string;
}

export interface Flakiness {
  score: number | null;
  totalRuns: number;
  /** Executions that were retried into a pass or sit on a conflicting commit. */
  flakyRuns: number;
  flipRate: number | null;
  sameCommitConflicts: number;
  passOnRetry: number;
  confidence: number;
  /** When the last execution counted in flakyRuns ran. */
  lastFlakyAt: string | null;
}

export const DEFAULT_WINDOW = 30;
export const DEFAULT_MIN_SAMPLES = 5;
/** Runs where more than this share of tests failed are outages, not evidence… */
export const OUTAGE_FAILED_SHARE = 0.8;
/** …once they ran enough tests to tell: a run of two tests, one failing, is no outage. */
export const OUTAGE_MIN_TESTS = 5;

const round = (x: number) => Math.round(x * 10_000) / 10_000;

export function scoreExecutions(executions: Execution[], options: { window: number; minSamples: number }): Flakiness {
  const n = executions.length;
  const passed = (e: Execution) => e.status !== "failed";
  const retried = (e: Execution) => e.status === "flaky" || (e.status === "passed" && e.isFlaky);
  const passOnRetry = executions.filter(retried).length;
  let flips = 0;
  for (let i = 1; i < n; i++) if (passed(executions[i]!) !== passed(executions[i - 1]!)) flips++;
  const byCommit = new Map<string, { pass: boolean; fail: boolean }>();
  for (const e of executions) {
    if (!e.commitSha) continue;
    const seen = byCommit.get(e.commitSha) ?? { pass: false, fail: false };
    if (passed(e)) seen.pass = true;
    else seen.fail = true;
    byCommit.set(e.commitSha, seen);
  }
  const conflictingCommits = new Set([...byCommit].filter(([, s]) => s.pass && s.fail).map(([sha]) => sha));
  const onConflict = (e: Execution) => e.commitSha !== null && conflictingCommits.has(e.commitSha);
  const flaky = executions.filter((e) => retried(e) || onConflict(e));
  const flakyRuns = flaky.length;
  const lastFlakyAt = flaky.reduce<string | null>((latest, e) => (e.at && (!latest || e.at > latest) ? e.at : latest), null);
  const flipRate = n > 1 ? flips / (n - 1) : null;
  const score =
    n < options.minSamples || n === 0
      ? null
      : 1 - (1 - passOnRetry / n) * (1 - (flipRate ?? 0)) * (1 - executions.filter(onConflict).length / n);
  return {
    score: score === null ? null : round(score),
    totalRuns: n,
    flakyRuns,
    flipRate: flipRate === null ? null : round(flipRate),
    sameCommitConflicts: conflictingCommits.size,
    passOnRetry,
    confidence: round(Math.min(1, n / options.window)),
    lastFlakyAt,
  };
}

async function settingsOf(db: Db, projectId: string): Promise<{ window: number; minSamples: number }> {
  const row = await db
    .select({ window: projectSettings.flakinessWindow, minSamples: projectSettings.flakinessMinSamples })
    .from(projectSettings)
    .where(eq(projectSettings.projectId, projectId))
    .get();
  return { window: row?.window ?? DEFAULT_WINDOW, minSamples: row?.minSamples ?? DEFAULT_MIN_SAMPLES };
}

/**
 * Recomputes the flakiness of the given test cases of a project from their last executions,
 * after results for them were written. Each test case reads at most its window of results
 * (newest first, by the (test_case_id, created_at) index) plus any outage or skipped ones it
 * passes over: the cost follows the number of test cases written, not the length of history.
 * Computed from the results each time, so two writers racing cannot leave a wrong score behind
 * for longer than the next write.
 */
export async function refreshFlakiness(
  db: Db,
  projectId: string,
  testCaseIds: string[],
  now: string,
  /** The project's window and minimum sample, when the caller read them already. */
  known?: { window: number | null; minSamples: number | null },
): Promise<void> {
  if (testCaseIds.length === 0) return;
  const settings =
    known === undefined ? await settingsOf(db, projectId) : { window: known.window ?? DEFAULT_WINDOW, minSamples: known.minSamples ?? DEFAULT_MIN_SAMPLES };
  const ids = [...new Set(testCaseIds)];
  for (let i = 0; i < ids.length; i += 1000) {
    const page = ids.slice(i, i + 1000);
    const rows = await db.all<{ tc: string; status: Execution["status"]; is_flaky: number; commit_sha: string | null; created_at: string }>(
      sql`SELECT j.value AS tc, x.status, x.is_flaky, tr.commit_sha, x.created_at
        FROM json_each(${JSON.stringify(page)}) j
        CROSS JOIN results x ON x.number IN (
          SELECT r.number FROM results r JOIN test_runs t ON t.id = r.run_id
          WHERE r.test_case_id = j.value AND r.project_id = ${projectId} AND r.status <> 'skipped'
            AND t.deleted_at IS NULL
            AND NOT (t.total_tests >= ${OUTAGE_MIN_TESTS} AND t.failed_tests > ${OUTAGE_FAILED_SHARE} * t.total_tests)
          ORDER BY r.created_at DESC, r.number DESC
          LIMIT ${settings.window})
        JOIN test_runs tr ON tr.id = x.run_id
        ORDER BY j.value, x.created_at, x.number`,
    );
    const byCase = new Map<string, Execution[]>(page.map((id) => [id, []]));
    for (const row of rows) byCase.get(row.tc)?.push({ status: row.status, isFlaky: row.is_flaky === 1, commitSha: row.commit_sha, at: row.created_at });
    const scored = [...byCase].map(([id, executions]) => ({ id, ...scoreExecutions(executions, settings) }));
    for (const chunk of jsonChunks(scored)) {
      const f = (name: string) => sql.raw(`json_extract(j.value, '$.${name}')`);
      await db.run(sql`UPDATE test_cases SET flakiness_score = ${f("score")}, total_runs = ${f("totalRuns")},
          flaky_runs = ${f("flakyRuns")}, flip_rate = ${f("flipRate")}, same_commit_conflicts = ${f("sameCommitConflicts")},
          pass_on_retry = ${f("passOnRetry")}, flakiness_confidence = ${f("confidence")}, last_flaky_at = ${f("lastFlakyAt")},
          flakiness_updated_at = ${now}
        FROM json_each(${chunk}) j
        WHERE test_cases.id = ${f("id")} AND test_cases.project_id = ${projectId}`);
    }
  }
}

export const FLAKINESS_STATUSES = ["flaky", "stable", "insufficient_data"] as const;
export type FlakinessStatus = (typeof FLAKINESS_STATUSES)[number];

export interface FlakinessItem extends Flakiness {
  testCaseId: string;
  title: string;
  fullTitle: string;
  filePath: string | null;
  /** flaky at or above the project's flakiness threshold; insufficient_data below the minimum sample. */
  status: FlakinessStatus;
  isQuarantined: boolean;
  updatedAt: string | null;
}

export interface FlakinessSummary {
  /** Test cases at or above the project's flakiness threshold. */
  flakyTests: number;
  quarantinedTests: number;
  /** Over the test cases that have a score; null when none has. */
  averageScore: number | null;
}
