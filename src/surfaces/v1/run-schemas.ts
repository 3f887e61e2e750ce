import { z } from "@hono/zod-openapi";
import { DESCRIPTION_MAX_LENGTH, RESULT_LIMITS, RESULTS_PER_SUBMISSION, RUN_LIMITS } from "../../core/limits";
import type { HistoryEntry, ResultDetail, ResultInput, ResultSummary } from "../../core/results/results";
import type { CreateRunInput, Run, RunCounts } from "../../core/runs/runs";
import type { SuiteNode } from "../../core/suites/suites";
import type { TestCase } from "../../core/testcases/testcases";
import { Count, Id, Label, Text, Timestamp } from "../fields";
import {
  RESULT_WORD_FIELDS,
  AnnotationSchema,
  GrepPatternList,
  ResultErrorSchema,
  ResultFieldLimits,
  ResultStatusEnum,
  RunStatusEnum,
  RunText,
  TagList,
} from "../result-fields";

const runMetadataFields = {
  branch: RunText.openapi({ example: "feature/login-flow" }),
  commit_sha: RunText.openapi({ example: "a1b2c3d4e5f6" }),
  commit_message: Text(RUN_LIMITS.commitMessage).nullable().optional(),
  commit_author: RunText,
  ci_provider: RunText.openapi({ example: "github-actions" }),
  ci_build_url: RunText,
  playwright_version: RunText,
  workers: Count(RUN_LIMITS.workers).nullable().optional(),
  browser: RunText,
  os: RunText,
  viewport: RunText,
  hostname: RunText,
  tags: TagList.optional(),
  grep_patterns: GrepPatternList.optional(),
};

export const CreateTestRunBody = z
  .object({
    project_id: Id.optional().openapi({ description: "Implied by a project-restricted key.", example: "proj_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    status: RunStatusEnum.optional().openapi({ description: "Defaults to running." }),
    build_id: Id.nullable().optional(),
    plan_id: Id.nullable().optional(),
    ci_build_id: RunText.openapi({ example: "run-12345" }),
    run_title: RunText,
    shard_current: z.number().int().min(1).max(RUN_LIMITS.shards).nullable().optional(),
    shard_total: z.number().int().min(1).max(RUN_LIMITS.shards).nullable().optional(),
    ...runMetadataFields,
  })
  .openapi("CreateTestRun", {
    description:
      "Shards: runs with the same project, ci_build_id and run_title and shard_total > 1 are one run; each shard's POST registers its part and returns that run.",
  });

/**
 * The core's run input from the native snake_case fields, wherever they come from: the body of
 * POST or PATCH /testruns, the query or headers of an ingest, the `run` of a native report.
 */
export function runInputOf(b: Partial<z.infer<typeof CreateTestRunBody>>): Omit<CreateRunInput, "status"> {
  return {
    projectId: b.project_id,
    buildId: b.build_id,
    planId: b.plan_id,
    branch: b.branch,
    commitSha: b.commit_sha,
    commitMessage: b.commit_message,
    commitAuthor: b.commit_author,
    ciProvider: b.ci_provider,
    ciBuildId: b.ci_build_id,
    ciBuildUrl: b.ci_build_url,
    playwrightVersion: b.playwright_version,
    workers: b.workers,
    shardCurrent: b.shard_current,
    shardTotal: b.shard_total,
    browser: b.browser,
    os: b.os,
    viewport: b.viewport,
    hostname: b.hostname,
    runTitle: b.run_title,
    tags: b.tags,
    grepPatterns: b.grep_patterns,
  };
}

export const UpdateTestRunBody = z
  .object({
    status: RunStatusEnum.optional(),
    shard_current: z.number().int().min(1).max(RUN_LIMITS.shards).nullable().optional().openapi({
      description: "For a sharded run: the shard whose status this is; the run's status is then the merge of its shards.",
    }),
    total_tests: Count().optional(),
    passed_tests: Count().optional(),
    failed_tests: Count().optional(),
    skipped_tests: Count().optional(),
    flaky_tests: Count().optional(),
    duration: Count().optional(),
    ...runMetadataFields,
  })
  .openapi("UpdateTestRun");

const CountsSchema = z
  .object({
    total_tests: z.number().int(),
    passed_tests: z.number().int(),
    failed_tests: z.number().int(),
    skipped_tests: z.number().int(),
    flaky_tests: z.number().int(),
    pass_rate: z.number(),
    duration: z.number().int(),
  })
  .openapi("TestRunCounts");

export const TestRunSchema = z
  .object({
    id: z.string().openapi({ example: "run_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    number: z.number().int(),
    project_id: z.string(),
    build_id: z.string().nullable(),
    plan_id: z.string().nullable(),
    status: RunStatusEnum,
    branch: z.string().nullable(),
    commit_sha: z.string().nullable(),
    commit_message: z.string().nullable(),
    commit_author: z.string().nullable(),
    ci_provider: z.string().nullable(),
    ci_build_id: z.string().nullable(),
    ci_build_url: z.string().nullable(),
    playwright_version: z.string().nullable(),
    workers: z.number().int().nullable(),
    shard_current: z.number().int().nullable(),
    shard_total: z.number().int().nullable(),
    browser: z.string().nullable(),
    os: z.string().nullable(),
    viewport: z.string().nullable(),
    hostname: z.string().nullable(),
    run_title: z.string().nullable(),
    tags: z.array(z.string()),
    grep_patterns: z.array(z.string()),
    total_tests: z.number().int(),
    passed_tests: z.number().int(),
    failed_tests: z.number().int(),
    skipped_tests: z.number().int(),
    flaky_tests: z.number().int(),
    pass_rate: z.number().openapi({ description: "Percent of tests that passed, two decimals." }),
    duration: z.number().int().openapi({ description: "Milliseconds." }),
    derived_counts: CountsSchema.openapi({ description: "Always computed from the run's results." }),
    reported_counts: z.record(z.string(), z.number()).nullable().openapi({ description: "Counts a client set by hand, if any." }),
    shards: z.array(
      z.object({ shard_current: z.number().int(), status: z.string(), hostname: z.string().nullable(), created_at: Timestamp, updated_at: Timestamp }),
    ),
    quarantined_failures: z.number().int().openapi({
      description: "Failed results of tests that were quarantined when the run completed: they do not fail the run.",
    }),
    status_reason: z.string().nullable().openapi({
      description: "Why the server's status differs from what the client reported (only quarantined tests failed), or which failures it ignored.",
    }),
    submitted_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("TestRun");

function countsOut(c: RunCounts) {
  return {
    total_tests: c.totalTests,
    passed_tests: c.passedTests,
    failed_tests: c.failedTests,
    skipped_tests: c.skippedTests,
    flaky_tests: c.flakyTests,
    pass_rate: c.passRate,
    duration: c.duration,
  };
}

export function testRunOut(r: Run) {
  const reported = r.reportedCounts
    ? Object.fromEntries(Object.entries(r.reportedCounts).map(([k, v]) => [k === "duration" ? k : k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`), v]))
    : null;
  return {
    id: r.id,
    number: r.number,
    project_id: r.projectId,
    build_id: r.buildId,
    plan_id: r.planId,
    status: r.status,
    branch: r.branch,
    commit_sha: r.commitSha,
    commit_message: r.commitMessage,
    commit_author: r.commitAuthor,
    ci_provider: r.ciProvider,
    ci_build_id: r.ciBuildId,
    ci_build_url: r.ciBuildUrl,
    playwright_version: r.playwrightVersion,
    workers: r.workers,
    shard_current: r.shardCurrent,
    shard_total: r.shardTotal,
    browser: r.browser,
    os: r.os,
    viewport: r.viewport,
    hostname: r.hostname,
    run_title: r.runTitle,
    tags: r.tags,
    grep_patterns: r.grepPatterns,
    ...countsOut(r.counts),
    derived_counts: countsOut(r.derivedCounts),
    reported_counts: reported as Record<string, number> | null,
    shards: r.shards.map((s) => ({
      shard_current: s.shardCurrent,
      status: s.status,
      hostname: s.hostname,
      created_at: s.createdAt,
      updated_at: s.updatedAt,
    })),
    quarantined_failures: r.quarantinedFailures,
    status_reason: r.statusReason,
    submitted_at: r.submittedAt,
    completed_at: r.completedAt,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

export const ResultInputSchema = z
  .object({
    automation_id: ResultFieldLimits.automationId.openapi({ description: "Stable id from an automation framework; the test's identity when given." }),
    title: ResultFieldLimits.title.openapi({ example: "should display login form" }),
    full_title: ResultFieldLimits.fullTitle.optional().openapi({ example: "Auth > Login Page > should display login form" }),
    file_path: ResultFieldLimits.filePath.openapi({ example: "tests/auth/login.spec.ts" }),
    line_number: ResultFieldLimits.lineNumber,
    ...RESULT_WORD_FIELDS,
    is_flaky: z.boolean().optional(),
    suite_path: ResultFieldLimits.suitePath.openapi({ description: "Enclosing describe blocks; derived from 'A > B > test' full titles when absent." }),
  })
  .openapi("ResultInput");

export const SubmitResultsBody = z
  .object({ results: z.array(ResultInputSchema).min(1).max(RESULTS_PER_SUBMISSION) })
  .openapi("SubmitResults");

export function resultInputOf(r: z.infer<typeof ResultInputSchema>): ResultInput {
  return {
    automationId: r.automation_id,
    title: r.title,
    fullTitle: r.full_title,
    filePath: r.file_path,
    lineNumber: r.line_number,
    status: r.status,
    duration: r.duration,
    retries: r.retries,
    attempt: r.attempt,
    isFlaky: r.is_flaky,
    tags: r.tags,
    annotations: r.annotations,
    error: r.error,
    steps: r.steps,
    stdout: r.stdout,
    stderr: r.stderr,
    suitePath: r.suite_path,
  };
}

export const SubmissionSchema = z
  .object({
    run: TestRunSchema,
    accepted: z.number().int().openapi({ description: "Results in the request." }),
    superseded: z.number().int().openapi({ description: "Not stored: the run already holds a later attempt of that test." }),
    results: z.array(z.object({ id: z.string(), test_case_id: z.string(), full_title: z.string(), status: ResultStatusEnum })),
  })
  .openapi("ResultSubmission");

export const ResultSummarySchema = z
  .object({
    id: z.string().openapi({ example: "res_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    run_id: z.string(),
    project_id: z.string(),
    test_case_id: z.string(),
    title: z.string(),
    full_title: z.string(),
    file_path: z.string().nullable(),
    line_number: z.number().int().nullable(),
    status: ResultStatusEnum,
    duration: z.number().int(),
    retries: z.number().int(),
    attempt: z.number().int(),
    is_flaky: z.boolean(),
    tags: z.array(z.string()),
    annotations: z.array(AnnotationSchema),
    error: ResultErrorSchema.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Result");

export const ResultDetailSchema = ResultSummarySchema.extend({ stdout: z.string(), stderr: z.string() }).openapi("ResultDetail");

export function resultSummaryOut(r: ResultSummary) {
  return {
    id: r.id,
    run_id: r.runId,
    project_id: r.projectId,
    test_case_id: r.testCaseId,
    title: r.title,
    full_title: r.fullTitle,
    file_path: r.filePath,
    line_number: r.lineNumber,
    status: r.status,
    duration: r.duration,
    retries: r.retries,
    attempt: r.attempt,
    is_flaky: r.isFlaky,
    tags: r.tags,
    annotations: r.annotations,
    error: r.error,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

export function resultDetailOut(r: ResultDetail) {
  return { ...resultSummaryOut(r), stdout: r.stdout, stderr: r.stderr };
}

const StepOut: z.ZodType = z
  .object({
    title: z.string(),
    category: z.string().optional(),
    status: z.string().optional(),
    duration: z.number().optional(),
    error: ResultErrorSchema.nullable().optional(),
    steps: z.array(z.lazy(() => StepOut)).optional(),
  })
  .openapi("Step");

export const StepsOut = z.object({ data: z.array(StepOut) }).openapi("StepList");

export interface SuiteNodeOut {
  id: string;
  run_id: string;
  title: string;
  file_path: string | null;
  parent_suite_id: string | null;
  created_at: string;
  children: SuiteNodeOut[];
}

const SuiteNodeSchema: z.ZodType<SuiteNodeOut> = z
  .object({
    id: z.string(),
    run_id: z.string(),
    title: z.string(),
    file_path: z.string().nullable(),
    parent_suite_id: z.string().nullable(),
    created_at: Timestamp,
    children: z.array(z.lazy(() => SuiteNodeSchema)),
  })
  .openapi("TestSuiteNode");

export const SuiteTreeSchema = z.object({ data: z.array(SuiteNodeSchema) }).openapi("TestSuiteTree");

export function suiteNodeOut(n: SuiteNode): SuiteNodeOut {
  return {
    id: n.id,
    run_id: n.runId,
    title: n.title,
    file_path: n.filePath,
    parent_suite_id: n.parentSuiteId,
    created_at: n.createdAt,
    children: n.children.map(suiteNodeOut),
  };
}

export const TestCaseSchema = z
  .object({
    id: z.string().openapi({ example: "tc_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    number: z.number().int(),
    project_id: z.string(),
    automation_id: z.string().nullable(),
    title: z.string(),
    full_title: z.string(),
    file_path: z.string().nullable(),
    line_number: z.number().int().nullable(),
    description: z.string().nullable(),
    tags: z.array(z.string()),
    flakiness_score: z.number().nullable().openapi({ description: "See GET /projects/{id}/flakiness for its parts." }),
    is_quarantined: z.boolean().openapi({ description: "Its failures do not block a release." }),
    quarantined_at: Timestamp.nullable(),
    quarantined_by: z.string().nullable().openapi({ description: "The API key that quarantined it, or \"auto\"." }),
    quarantine_source: z.enum(["manual", "auto"]).nullable().openapi({
      description: "manual: set through the API, stays until lifted; auto: the project's auto-quarantine, which recovers by itself.",
    }),
    quarantine_reason: z.string().nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("TestCase");

export function testCaseOut(t: TestCase) {
  return {
    id: t.id,
    number: t.number,
    project_id: t.projectId,
    automation_id: t.automationId,
    title: t.title,
    full_title: t.fullTitle,
    file_path: t.filePath,
    line_number: t.lineNumber,
    description: t.description,
    tags: t.tags,
    flakiness_score: t.flakinessScore,
    is_quarantined: t.isQuarantined,
    quarantined_at: t.quarantinedAt,
    quarantined_by: t.quarantinedBy,
    quarantine_source: t.quarantineSource as "manual" | "auto" | null,
    quarantine_reason: t.quarantineReason,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
  };
}

const TestCaseInputSchema = z.object({
  automation_id: ResultFieldLimits.automationId.openapi({ example: "AUTH-LOGIN-001" }),
  title: ResultFieldLimits.title.openapi({ example: "should display login form" }),
  full_title: ResultFieldLimits.fullTitle.optional(),
  file_path: ResultFieldLimits.filePath,
  line_number: ResultFieldLimits.lineNumber,
  description: Text(DESCRIPTION_MAX_LENGTH).nullable().optional(),
  tags: TagList.optional(),
});

export const UpsertTestCasesBody = z
  .object({ test_cases: z.array(TestCaseInputSchema).min(1).max(RESULTS_PER_SUBMISSION) })
  .openapi("UpsertTestCases", { description: "Created or updated by automation_id when given, else by file_path + full_title." });

export const UpsertedTestCasesSchema = z
  .object({
    data: z.array(TestCaseSchema.extend({ created: z.boolean() })),
    created: z.number().int(),
    updated: z.number().int(),
  })
  .openapi("UpsertedTestCases");

export const UpdateTestCaseBody = z
  .object({
    title: ResultFieldLimits.title.optional(),
    description: Text(DESCRIPTION_MAX_LENGTH).nullable().optional(),
    tags: TagList.optional(),
    is_quarantined: z.boolean().optional().openapi({ description: "Quarantine it (its failures stop blocking releases) or take it out; recorded with the key." }),
    quarantine_reason: Text(DESCRIPTION_MAX_LENGTH).nullable().optional().openapi({ description: "Why, kept with the quarantine." }),
  })
  .openapi("UpdateTestCase");

export const TestCaseListQuery = z.object({
  tag: Label(RESULT_LIMITS.shortText).optional(),
  file: Text(RESULT_LIMITS.filePathLength).optional().openapi({ description: "Exact file path." }),
  search: Text(RESULT_LIMITS.fullTitleLength).optional().openapi({ description: "Substring of the full title." }),
});

export const HistorySchema = z
  .object({
    data: z.array(
      z.object({
        result_id: z.string(),
        run_id: z.string(),
        status: ResultStatusEnum,
        duration: z.number().int(),
        is_flaky: z.boolean(),
        branch: z.string().nullable(),
        commit_sha: z.string().nullable(),
        created_at: Timestamp,
      }),
    ),
    total: z.number().int().openapi({ description: "All executions recorded for the test case." }),
  })
  .openapi("TestCaseHistory");

export function historyOut(h: { items: HistoryEntry[]; total: number }) {
  return {
    data: h.items.map((e) => ({
      result_id: e.resultId,
      run_id: e.runId,
      status: e.status,
      duration: e.duration,
      is_flaky: e.isFlaky,
      branch: e.branch,
      commit_sha: e.commitSha,
      created_at: e.createdAt,
    })),
    total: h.total,
  };
}

export const RunListQuery = z.object({
  project_id: Id.optional(),
  status: RunStatusEnum.optional(),
  branch: Text(RUN_LIMITS.text).optional(),
  ci_build_id: Text(RUN_LIMITS.text).optional(),
});

export const ResultListQuery = z.object({
  status: ResultStatusEnum.optional(),
  search: Text(RESULT_LIMITS.fullTitleLength).optional(),
});
