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
  /** Executions that were retried into a pass, sit on a conflicting commit, or flipped the outcome before them. */
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
  const flipped = (i: number) => i > 0 && passed(executions[i]!) !== passed(executions[i - 1]!);
  const flaky = executions.filter((e, i) => retried(e) || onConflict(e) || flipped(i));
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

/**
 * Consecutive clean executions (passed at the first attempt) at the newest end of `executions`
 * (oldest first), counting only those after `since` (when the quarantine began).
 */
export function cleanStreak(executions: Execution[], since: string | null = null): number {
  let n = 0;
  for (let i = executions.length - 1; i >= 0; i--) {
    const e = executions[i]!;
    if (since !== null && e.at !== undefined && e.at <= since) break;
    if (e.status !== "passed" || e.isFlaky) break;
    n++;
  }
  return n;
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
  /** "manual" or "auto" while quarantined, else null. */
  quarantineSource: string | null;
  quarantinedAt: string | null;
  quarantineReason: string | null;
  updatedAt: string | null;
}

export interface FlakinessSummary {
  /** Test cases at or above the project's flakiness threshold. */
  flakyTests: number;
  quarantinedTests: number;
  /** Over the test cases that have a score; null when none has. */
  averageScore: number | null;
}
