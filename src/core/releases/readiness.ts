import { and, desc, eq, sql, type SQL } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import { builds, releases } from "../../db/schema";
import { visibleBuilds } from "../builds/builds";
import { type CoreContext, type Principal, requireScope } from "../context";
import { NotFound } from "../errors";
import { type RunStatus, visibleRuns } from "../runs/runs";
import { type Gate, type Release, toRelease, visibleReleases } from "./releases";

export const VERDICTS = ["ready", "at_risk", "blocked"] as const;
export type Verdict = (typeof VERDICTS)[number];

/** Every rule a release is judged by, blocking ones first. */
export const READINESS_RULES = [
  "build_assigned",
  "runs_present",
  "no_failures",
  "min_pass_rate",
  "runs_finished",
  "no_flaky",
  "pass_rate_margin",
] as const;
export type ReadinessRule = (typeof READINESS_RULES)[number];

/** The numbers a rule looked at; each rule fills in its own. */
export interface ReasonFigures {
  runs?: number;
  failingTestCases?: number;
  passRate?: number | null;
  minPassRate?: number;
  margin?: number;
  unfinishedRuns?: number;
  flakyTestCases?: number;
  quarantinedFailures?: number;
}

export interface ReadinessReason {
  rule: ReadinessRule;
  verdict: Exclude<Verdict, "ready">;
  message: string;
  figures: ReasonFigures;
}

export interface ProgressBuild {
  id: string;
  name: string;
  buildNumber: string | null;
  commitSha: string | null;
  branch: string | null;
  status: string;
}

/** A run of the build with the counts derived from its results (what readiness is judged on). */
export interface BuildRun {
  id: string;
  status: RunStatus;
  totalTests: number;
  passedTests: number;
  failedTests: number;
  skippedTests: number;
  flakyTests: number;
  createdAt: string;
}

/** Test cases of the build by their latest outcome across the build's runs. */
export interface CaseTotals {
  testCases: number;
  passed: number;
  failed: number;
  skipped: number;
  flaky: number;
  /** Test cases of the release's plans that no run executed: needs test plans (#10), null until then. */
  untested: null;
}

export interface FailingTestCase {
  testCaseId: string;
  title: string;
  fullTitle: string;
  filePath: string | null;
  runId: string;
  resultId: string;
  errorMessage: string | null;
  quarantined: boolean;
}

export interface ReleaseProgress {
  release: Release;
  build: ProgressBuild | null;
  runs: BuildRun[];
  totals: CaseTotals;
  /** 0..1, null when no test case passed or failed. */
  passRate: number | null;
  failingTestCases: FailingTestCase[];
  failingTestCasesTotal: number;
  gate: Gate;
  verdict: Verdict;
  reasons: ReadinessReason[];
  summary: string;
}

/** Failing test cases listed in a progress answer; the total says how many there are in all. */
export const FAILING_LIST_LIMIT = 100;
/** A pass rate less than this far above the minimum puts a release at risk. */
export const PASS_RATE_MARGIN = 0.02;
/** Absorbs binary fractions, so that 0.97 is 2 points above 0.95 and not a hair less. */
const EPSILON = 1e-9;

const UNFINISHED_RUN_STATUSES: readonly RunStatus[] = ["queued", "running"];

/**
 * Whether a test case is quarantined (evaluated over `outcomes`, which has `test_case_id`): its
 * failures are still listed, but they do not block the release.
 */
const QUARANTINED = sql`coalesce((SELECT tc.is_quarantined FROM test_cases tc WHERE tc.id = test_case_id), 0)`;

/**
 * `outcomes`: one row per test case executed in the build, its latest result (highest
 * results.number) across the build's live runs. A test that failed in one run and passed in a
 * rerun is passed. Runs are found by their build_id index, results by their run.
 */
function outcomesOf(buildId: string, principal: Principal): SQL {
  return sql`WITH ranked AS (
      SELECT results.id, results.run_id, results.test_case_id, results.title, results.full_title, results.file_path,
        results.status, results.is_flaky, results.error,
        row_number() OVER (PARTITION BY results.test_case_id ORDER BY results.number DESC) AS recency
      FROM test_runs JOIN results ON results.run_id = test_runs.id
      WHERE test_runs.build_id = ${buildId} AND ${visibleRuns(principal)}
    ), outcomes AS (SELECT * FROM ranked WHERE recency = 1)`;
}

interface TotalsRow {
  test_cases: number;
  passed: number;
  failed: number;
  blocking_failures: number;
  skipped: number;
  flaky: number;
}

interface RunRow {
  id: string;
  status: RunStatus;
  total_tests: number;
  passed_tests: number;
  failed_tests: number;
  skipped_tests: number;
  flaky_tests: number;
  created_at: string;
}

interface FailingRow {
  test_case_id: string;
  title: string;
  full_title: string;
  file_path: string | null;
  run_id: string;
  result_id: string;
  error_message: string | null;
  quarantined: number;
}

/**
 * How ready a release is to ship: the test outcome of its build (the latest one assigned, or the
 * one named, which must belong to the release) judged against the release's gate.
 */
export async function releaseProgress(ctx: CoreContext, releaseId: string, input: { buildId?: string } = {}): Promise<ReleaseProgress> {
  requireScope(ctx.principal, "builds:read");
  const [releaseRows, buildRows] = await ctx.db.batch([
    ctx.db
      .select()
      .from(releases)
      .where(and(eq(releases.id, releaseId), visibleReleases(ctx.principal))),
    ctx.db
      .select({
        id: builds.id,
        name: builds.name,
        buildNumber: builds.buildNumber,
        commitSha: builds.commitSha,
        branch: builds.branch,
        status: builds.status,
      })
      .from(builds)
      .where(
        and(
          eq(builds.releaseId, releaseId),
          visibleBuilds(ctx.principal),
          input.buildId === undefined ? undefined : eq(builds.id, input.buildId),
        ),
      )
      .orderBy(desc(builds.number))
      .limit(1),
  ]);
  const releaseRow = releaseRows[0];
  if (!releaseRow) throw new NotFound("Release", { id: releaseId });
  const release = toRelease(releaseRow);
  const build = buildRows[0] ?? null;
  if (input.buildId !== undefined && !build) throw new NotFound("Build", { id: input.buildId });

  let runs: BuildRun[] = [];
  let totals: TotalsRow = { test_cases: 0, passed: 0, failed: 0, blocking_failures: 0, skipped: 0, flaky: 0 };
  let failing: FailingRow[] = [];
  if (build) {
    const outcomes = outcomesOf(build.id, ctx.principal);
    const [runResult, totalsResult, failingResult] = await batchAll(ctx.db, [
      sql`SELECT id, status, total_tests, passed_tests, failed_tests, skipped_tests, flaky_tests, created_at
        FROM test_runs WHERE build_id = ${build.id} AND ${visibleRuns(ctx.principal)} ORDER BY number`,
      sql`${outcomes} SELECT count(*) AS test_cases,
          coalesce(sum(status = 'passed' AND NOT is_flaky), 0) AS passed,
          coalesce(sum(status = 'failed'), 0) AS failed,
          coalesce(sum(status = 'failed' AND NOT ${QUARANTINED}), 0) AS blocking_failures,
          coalesce(sum(status = 'skipped'), 0) AS skipped,
          coalesce(sum(status = 'flaky' OR (status = 'passed' AND is_flaky)), 0) AS flaky
        FROM outcomes`,
      sql`${outcomes} SELECT test_case_id, title, full_title, file_path, run_id, id AS result_id,
          json_extract(error, '$.message') AS error_message, ${QUARANTINED} AS quarantined
        FROM outcomes WHERE status = 'failed' ORDER BY quarantined, file_path, full_title, test_case_id LIMIT ${FAILING_LIST_LIMIT}`,
    ]);
    runs = (runResult!.results as RunRow[]).map((r) => ({
      id: r.id,
      status: r.status,
      totalTests: r.total_tests,
      passedTests: r.passed_tests,
      failedTests: r.failed_tests,
      skippedTests: r.skipped_tests,
      flakyTests: r.flaky_tests,
      createdAt: r.created_at,
    }));
    totals = (totalsResult!.results as TotalsRow[])[0]!;
    failing = failingResult!.results as FailingRow[];
  }

  const executed = totals.passed + totals.flaky + totals.failed;
  const passRate = executed === 0 ? null : (totals.passed + totals.flaky) / executed;
  const judgement = judgeReadiness({
    build: build && { name: build.name },
    runStatuses: runs.map((r) => r.status),
    testCases: totals.test_cases,
    blockingFailures: totals.blocking_failures,
    quarantinedFailures: totals.failed - totals.blocking_failures,
    flaky: totals.flaky,
    passRate,
    gate: release.gate,
  });
  return {
    release,
    build,
    runs,
    totals: {
      testCases: totals.test_cases,
      passed: totals.passed,
      failed: totals.failed,
      skipped: totals.skipped,
      flaky: totals.flaky,
      untested: null,
    },
    passRate,
    failingTestCases: failing.map((f) => ({
      testCaseId: f.test_case_id,
      title: f.title,
      fullTitle: f.full_title,
      filePath: f.file_path,
      runId: f.run_id,
      resultId: f.result_id,
      errorMessage: f.error_message,
      quarantined: f.quarantined === 1,
    })),
    failingTestCasesTotal: totals.failed,
    gate: release.gate,
    ...judgement,
  };
}

export interface ReadinessFacts {
  build: { name: string } | null;
  runStatuses: RunStatus[];
  testCases: number;
  /** Failing test cases that are not quarantined. */
  blockingFailures: number;
  /** Failing test cases that are quarantined: listed, never blocking. */
  quarantinedFailures?: number;
  flaky: number;
  passRate: number | null;
  gate: Gate;
}

/** "91.2%": a 0..1 rate in percent, at most two decimals. */
function percent(rate: number): string {
  return `${Number((rate * 100).toFixed(2))}%`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The verdict is the worst of the reasons: blocked when the build cannot ship as it is, at risk
 * when it may (runs still going, flaky tests, a pass rate just above the minimum), ready when no
 * rule objects.
 */
export function judgeReadiness(facts: ReadinessFacts): { verdict: Verdict; reasons: ReadinessReason[]; summary: string } {
  const { gate, passRate } = facts;
  const blocked: ReadinessReason[] = [];
  const atRisk: ReadinessReason[] = [];
  const minimum = percent(gate.minPassRate);
  const unfinished = facts.runStatuses.filter((s) => UNFINISHED_RUN_STATUSES.includes(s)).length;

  if (facts.build === null) {
    blocked.push({ rule: "build_assigned", verdict: "blocked", message: "No build is assigned to this release.", figures: {} });
  } else if (facts.runStatuses.length === 0) {
    blocked.push({
      rule: "runs_present",
      verdict: "blocked",
      message: `Build ${facts.build.name} has no test runs.`,
      figures: { runs: 0 },
    });
  } else {
    if (gate.blockOnFailures && facts.blockingFailures > 0) {
      blocked.push({
        rule: "no_failures",
        verdict: "blocked",
        message:
          `${plural(facts.blockingFailures, "test case fails", "test cases fail")}.` +
          (facts.quarantinedFailures ? ` ${plural(facts.quarantinedFailures, "quarantined failure is", "quarantined failures are")} not counted.` : ""),
        figures: { failingTestCases: facts.blockingFailures, ...(facts.quarantinedFailures ? { quarantinedFailures: facts.quarantinedFailures } : {}) },
      });
    }
    if (passRate === null) {
      blocked.push({
        rule: "min_pass_rate",
        verdict: "blocked",
        message: `No test case has passed or failed yet, so the pass rate cannot meet the minimum of ${minimum}.`,
        figures: { passRate: null, minPassRate: gate.minPassRate },
      });
    } else if (passRate < gate.minPassRate - EPSILON) {
      blocked.push({
        rule: "min_pass_rate",
        verdict: "blocked",
        message: `Pass rate ${percent(passRate)} is below the minimum of ${minimum}.`,
        figures: { passRate, minPassRate: gate.minPassRate },
      });
    } else if (passRate < 1 && passRate - gate.minPassRate < PASS_RATE_MARGIN - EPSILON) {
      // A perfect pass rate has nothing left to lose, whatever the minimum.
      atRisk.push({
        rule: "pass_rate_margin",
        verdict: "at_risk",
        message: `Pass rate ${percent(passRate)} is less than ${Number((PASS_RATE_MARGIN * 100).toFixed(2))} percentage points above the minimum of ${minimum}.`,
        figures: { passRate, minPassRate: gate.minPassRate, margin: PASS_RATE_MARGIN },
      });
    }
    if (unfinished > 0) {
      atRisk.push({
        rule: "runs_finished",
        verdict: "at_risk",
        message: `${plural(unfinished, "run is", "runs are")} still queued or running.`,
        figures: { unfinishedRuns: unfinished },
      });
    }
    if (facts.flaky > 0) {
      atRisk.push({
        rule: "no_flaky",
        verdict: "at_risk",
        message: `${plural(facts.flaky, "test case is", "test cases are")} flaky.`,
        figures: { flakyTestCases: facts.flaky },
      });
    }
  }

  if (blocked.length > 0) {
    return { verdict: "blocked", reasons: [...blocked, ...atRisk], summary: `Blocked: ${blocked.map((r) => r.message).join(" ")}` };
  }
  if (atRisk.length > 0) {
    return { verdict: "at_risk", reasons: atRisk, summary: `At risk: ${atRisk.map((r) => r.message).join(" ")}` };
  }
  let summary =
    `Ready: build ${facts.build!.name} has a pass rate of ${percent(passRate!)} (minimum ${minimum}) over ` +
    `${plural(facts.testCases, "test case", "test cases")} in ${plural(facts.runStatuses.length, "finished run", "finished runs")}.`;
  if (facts.blockingFailures > 0) {
    summary += ` ${plural(facts.blockingFailures, "failing test case does", "failing test cases do")} not block it: block_on_failures is off.`;
  }
  if (facts.quarantinedFailures) {
    summary += ` ${plural(facts.quarantinedFailures, "failing test case is", "failing test cases are")} quarantined and not counted against it.`;
  }
  return { verdict: "ready", reasons: [], summary };
}
