import { z } from "@hono/zod-openapi";
import { RESULT_LIMITS, RUN_LIMITS } from "../../core/limits";
import { STEP_CATEGORIES, STEP_STATUSES, type HistoryEntry, type ResultDetail, type ResultSummary, type Step } from "../../core/results/results";
import type { Run } from "../../core/runs/runs";
import type { SuiteNode, TestSuite } from "../../core/suites/suites";
import { Count, DurationMs, Id, Label, Text, Timestamp } from "../fields";
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

/*
 * Schemas of the reporting surface's runs, tests (one result each), steps, history and suites
 * (reference 003). Names carry the Reporting prefix so they never clash with the native ones.
 */

/** Reference 003 lists these for a new run; queued and cancelled are not a client's to start with. */
export const ReportingCreateRunStatus = z.enum(["running", "passed", "failed"]);
/** Reference 003 lists these for PATCH. */
export const ReportingUpdateRunStatus = z.enum(["running", "passed", "failed", "cancelled"]);

const ShardNumber = Count(RUN_LIMITS.shards).min(1);

const runMetadata = {
  branch: RunText,
  commitSha: RunText,
  commitMessage: Text(RUN_LIMITS.commitMessage).nullable().optional(),
  commitAuthor: RunText,
  ciProvider: RunText,
  ciBuildId: RunText,
  ciBuildUrl: RunText,
  playwrightVersion: RunText,
  workers: Count(RUN_LIMITS.workers).nullable().optional(),
  shardCurrent: ShardNumber.nullable().optional(),
  shardTotal: ShardNumber.nullable().optional(),
  browser: RunText,
  os: RunText,
  viewport: RunText,
  hostname: RunText,
  runTitle: RunText,
  tags: TagList.optional(),
  grepPatterns: GrepPatternList.optional(),
};

export const ReportingCreateRunBody = z
  .object({ projectId: Id, status: ReportingCreateRunStatus, ...runMetadata })
  .openapi("ReportingCreateTestRun", {
    example: {
      projectId: "proj_01JD3W6Q8X4N2B7R5T9V0YHZKM",
      status: "running",
      branch: "feature/login-flow",
      commitSha: "a1b2c3d4e5f6",
      commitMessage: "Add login flow tests",
      commitAuthor: "jane@example.com",
      ciProvider: "github-actions",
      ciBuildId: "run-12345",
      ciBuildUrl: "https://github.com/org/repo/actions/runs/12345",
      playwrightVersion: "1.52.0",
      workers: 4,
      shardCurrent: 1,
      shardTotal: 3,
      browser: "chromium",
      os: "linux",
      viewport: "1280x720",
      hostname: "ci-runner-01",
      runTitle: "Login Flow Tests",
      tags: ["smoke", "login"],
      grepPatterns: ["@smoke"],
    },
  });

export const ReportingUpdateRunBody = z
  .object({
    status: ReportingUpdateRunStatus.optional(),
    totalTests: Count().optional(),
    passedTests: Count().optional(),
    failedTests: Count().optional(),
    skippedTests: Count().optional(),
    flakyTests: Count().optional(),
    duration: DurationMs.optional(),
    shardCurrent: ShardNumber.optional().openapi({
      description: "Extension: for a sharded run, which shard this status belongs to; the run's status is then the merge of its shards'.",
    }),
  })
  .openapi("ReportingUpdateTestRun", {
    example: { status: "failed", totalTests: 142, passedTests: 138, failedTests: 3, skippedTests: 0, flakyTests: 1, duration: 245000 },
  });

export const ReportingRunQuery = z.object({
  projectId: Id,
  status: RunStatusEnum.optional(),
  branch: Text(RUN_LIMITS.text).optional(),
});

const nullableString = z.string().nullable();
const nullableInt = z.number().int().nullable();

const countFields = {
  totalTests: z.number().int(),
  passedTests: z.number().int(),
  failedTests: z.number().int(),
  skippedTests: z.number().int(),
  flakyTests: z.number().int(),
  passRate: z.number().openapi({ description: "Percentage of passed tests, two decimals.", example: 97.18 }),
  duration: z.number().openapi({ description: "Milliseconds.", example: 245000 }),
};

export const ReportingRunCounts = z.object(countFields).openapi("ReportingRunCounts");

export const ReportingReportedCounts = z
  .object({
    totalTests: z.number().int().optional(),
    passedTests: z.number().int().optional(),
    failedTests: z.number().int().optional(),
    skippedTests: z.number().int().optional(),
    flakyTests: z.number().int().optional(),
    duration: z.number().optional(),
  })
  .openapi("ReportingReportedCounts");

const runSummaryFields = {
  id: z.string().openapi({ example: "run_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
  projectId: z.string(),
  status: RunStatusEnum,
  branch: nullableString,
  commitSha: nullableString,
  commitMessage: nullableString,
  commitAuthor: nullableString,
  ciProvider: nullableString,
  ciBuildId: nullableString,
  ciBuildUrl: nullableString,
  playwrightVersion: nullableString,
  workers: nullableInt,
  shardCurrent: nullableInt,
  shardTotal: nullableInt,
  browser: nullableString,
  os: nullableString,
  viewport: nullableString,
  hostname: nullableString,
  runTitle: nullableString,
  tags: z.array(z.string()),
  grepPatterns: z.array(z.string()),
  ...countFields,
  createdAt: Timestamp,
  updatedAt: Timestamp,
};

/** A run in a list: headline counts (reported where a client set them, else derived). */
export const ReportingTestRunSummary = z.object(runSummaryFields).openapi("ReportingTestRunSummary");

export const ReportingShard = z
  .object({ shardCurrent: z.number().int(), status: z.string(), hostname: nullableString, createdAt: Timestamp, updatedAt: Timestamp })
  .openapi("ReportingShard");

export const ReportingTestRun = z
  .object({
    ...runSummaryFields,
    shards: z.array(ReportingShard).openapi({ description: "Each shard's registration, for a sharded run; empty otherwise." }),
    derivedCounts: ReportingRunCounts.openapi({ description: "Counts computed from the run's tests." }),
    reportedCounts: ReportingReportedCounts.nullable().openapi({ description: "Counts a client set with PATCH, if any." }),
  })
  .openapi("ReportingTestRun");

export const ReportingTestRunUpdated = z
  .object({
    id: z.string(),
    status: RunStatusEnum,
    totalTests: z.number().int(),
    passedTests: z.number().int(),
    failedTests: z.number().int(),
    skippedTests: z.number().int(),
    flakyTests: z.number().int(),
    duration: z.number(),
    updatedAt: Timestamp,
  })
  .openapi("ReportingTestRunUpdated");

export function runSummaryOut(run: Run) {
  const { counts } = run;
  return {
    id: run.id,
    projectId: run.projectId,
    status: run.status,
    branch: run.branch,
    commitSha: run.commitSha,
    commitMessage: run.commitMessage,
    commitAuthor: run.commitAuthor,
    ciProvider: run.ciProvider,
    ciBuildId: run.ciBuildId,
    ciBuildUrl: run.ciBuildUrl,
    playwrightVersion: run.playwrightVersion,
    workers: run.workers,
    shardCurrent: run.shardCurrent,
    shardTotal: run.shardTotal,
    browser: run.browser,
    os: run.os,
    viewport: run.viewport,
    hostname: run.hostname,
    runTitle: run.runTitle,
    tags: run.tags,
    grepPatterns: run.grepPatterns,
    totalTests: counts.totalTests,
    passedTests: counts.passedTests,
    failedTests: counts.failedTests,
    skippedTests: counts.skippedTests,
    flakyTests: counts.flakyTests,
    passRate: counts.passRate,
    duration: counts.duration,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
  };
}

export function runOut(run: Run) {
  return { ...runSummaryOut(run), shards: run.shards, derivedCounts: run.derivedCounts, reportedCounts: run.reportedCounts };
}

export function runUpdatedOut(run: Run) {
  const { counts } = run;
  return {
    id: run.id,
    status: run.status,
    totalTests: counts.totalTests,
    passedTests: counts.passedTests,
    failedTests: counts.failedTests,
    skippedTests: counts.skippedTests,
    flakyTests: counts.flakyTests,
    duration: counts.duration,
    updatedAt: run.updatedAt,
  };
}

export const ReportingCreateTestBody = z
  .object({
    runId: Id,
    projectId: Id,
    title: ResultFieldLimits.title,
    fullTitle: ResultFieldLimits.fullTitle,
    filePath: ResultFieldLimits.filePath,
    lineNumber: ResultFieldLimits.lineNumber,
    ...RESULT_WORD_FIELDS,
    isFlaky: z.boolean().optional(),
    automationId: ResultFieldLimits.automationId.openapi({
      description: "Extension: a stable id for the test; when given it identifies the test instead of file path and full title.",
    }),
    suitePath: ResultFieldLimits.suitePath.openapi({
      description: "Extension: the describe blocks enclosing the test; derived from 'A > B > test' full titles when absent.",
    }),
  })
  .openapi("ReportingCreateTest", {
    example: {
      runId: "run_01JD3W6Q8X4N2B7R5T9V0YHZKM",
      projectId: "proj_01JD3W6Q8X4N2B7R5T9V0YHZKM",
      title: "should display login form",
      fullTitle: "Auth > Login Page > should display login form",
      filePath: "tests/auth/login.spec.ts",
      lineNumber: 15,
      status: "passed",
      duration: 3420,
      retries: 0,
      attempt: 1,
      isFlaky: false,
      tags: ["@smoke", "@auth"],
      annotations: [{ type: "slow", description: "Includes network wait" }],
      error: null,
      steps: [
        { title: "navigate to /login", category: "action", status: "passed", duration: 820, error: null },
        { title: "expect(locator).toBeVisible()", category: "assertion", status: "passed", duration: 45, error: null },
      ],
      stdout: "",
      stderr: "",
    },
  });

export const ReportingTestCreated = z
  .object({
    id: z.string().openapi({ example: "res_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    runId: z.string(),
    projectId: z.string(),
    title: z.string(),
    fullTitle: z.string(),
    status: ResultStatusEnum,
    duration: z.number(),
    isFlaky: z.boolean(),
    createdAt: Timestamp,
  })
  .openapi("ReportingTestCreated");

export const ReportingTestQuery = z.object({
  runId: Id.optional(),
  projectId: Id,
  status: ResultStatusEnum.optional(),
  search: Text(RESULT_LIMITS.fullTitleLength).optional().openapi({ description: "Part of the full title (case-insensitive for ASCII letters)." }),
});

const testSummaryFields = {
  id: z.string(),
  runId: z.string(),
  projectId: z.string(),
  title: z.string(),
  fullTitle: z.string(),
  filePath: nullableString,
  lineNumber: nullableInt,
  status: ResultStatusEnum,
  duration: z.number(),
  retries: z.number().int(),
  attempt: z.number().int(),
  isFlaky: z.boolean(),
  tags: z.array(z.string()),
  annotations: z.array(AnnotationSchema),
  error: ResultErrorSchema.nullable(),
  createdAt: Timestamp,
};

export const ReportingTestSummary = z.object(testSummaryFields).openapi("ReportingTestSummary");
export const ReportingTest = z
  .object({ ...testSummaryFields, stdout: z.string(), stderr: z.string() })
  .openapi("ReportingTest");

export function testSummaryOut(r: ResultSummary) {
  return {
    id: r.id,
    runId: r.runId,
    projectId: r.projectId,
    title: r.title,
    fullTitle: r.fullTitle,
    filePath: r.filePath,
    lineNumber: r.lineNumber,
    status: r.status,
    duration: r.duration,
    retries: r.retries,
    attempt: r.attempt,
    isFlaky: r.isFlaky,
    tags: r.tags,
    annotations: r.annotations,
    error: r.error,
    createdAt: r.createdAt,
  };
}

export function testOut(r: ResultDetail) {
  return { ...testSummaryOut(r), stdout: r.stdout, stderr: r.stderr };
}

export function testCreatedOut(r: ResultSummary) {
  return {
    id: r.id,
    runId: r.runId,
    projectId: r.projectId,
    title: r.title,
    fullTitle: r.fullTitle,
    status: r.status,
    duration: r.duration,
    isFlaky: r.isFlaky,
    createdAt: r.createdAt,
  };
}

/** A stored step: the same shape that was posted, nested steps included. */
export const ReportingStep: z.ZodType<Step> = z
  .object({
    title: z.string(),
    category: z.enum(STEP_CATEGORIES).optional(),
    status: z.enum(STEP_STATUSES).optional(),
    duration: z.number().optional(),
    error: ResultErrorSchema.nullable().optional(),
    get steps(): z.ZodOptional<z.ZodArray<z.ZodType<Step>>> {
      return z.array(ReportingStep).optional();
    },
  })
  .openapi("ReportingStep");

export const ReportingSteps = z.object({ data: z.array(ReportingStep) }).openapi("ReportingSteps");

export const ReportingHistoryEntry = z
  .object({
    runId: z.string(),
    status: ResultStatusEnum,
    duration: z.number(),
    branch: nullableString,
    createdAt: Timestamp,
    resultId: z.string().openapi({ description: "Extension: the test (result) of that run." }),
    commitSha: nullableString,
    isFlaky: z.boolean(),
  })
  .openapi("ReportingHistoryEntry");

export const ReportingHistory = z
  .object({
    data: z.array(ReportingHistoryEntry).openapi({ description: "The last 20 executions, newest first." }),
    total: z.number().int().openapi({ description: "Executions of this test in all visible runs." }),
  })
  .openapi("ReportingHistory");

export function historyEntryOut(h: HistoryEntry) {
  return {
    runId: h.runId,
    status: h.status,
    duration: h.duration,
    branch: h.branch,
    createdAt: h.createdAt,
    resultId: h.resultId,
    commitSha: h.commitSha,
    isFlaky: h.isFlaky,
  };
}

export const ReportingCreateSuiteBody = z
  .object({
    runId: Id,
    projectId: Id,
    title: Label(RESULT_LIMITS.titleLength),
    filePath: ResultFieldLimits.filePath,
    parentSuiteId: Id.nullable().optional(),
  })
  .openapi("ReportingCreateTestSuite", {
    example: {
      runId: "run_01JD3W6Q8X4N2B7R5T9V0YHZKM",
      projectId: "proj_01JD3W6Q8X4N2B7R5T9V0YHZKM",
      title: "Login Page",
      filePath: "tests/auth/login.spec.ts",
    },
  });

export const ReportingTestSuite = z
  .object({
    id: z.string().openapi({ example: "suite_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    runId: z.string(),
    projectId: z.string(),
    title: z.string(),
    filePath: nullableString,
    parentSuiteId: nullableString,
    createdAt: Timestamp,
  })
  .openapi("ReportingTestSuite");

export interface SuiteTreeNode {
  id: string;
  title: string;
  filePath: string | null;
  parentSuiteId: string | null;
  children: SuiteTreeNode[];
}

export const ReportingTestSuiteNode: z.ZodType<SuiteTreeNode> = z
  .object({
    id: z.string(),
    title: z.string(),
    filePath: nullableString,
    parentSuiteId: nullableString,
    get children(): z.ZodArray<z.ZodType<SuiteTreeNode>> {
      return z.array(ReportingTestSuiteNode);
    },
  })
  .openapi("ReportingTestSuiteNode");

export const ReportingTestSuiteTree = z.object({ data: z.array(ReportingTestSuiteNode) }).openapi("ReportingTestSuiteTree");

export const ReportingSuiteQuery = z.object({ runId: Id, projectId: Id });

export function suiteOut(s: TestSuite) {
  return { id: s.id, runId: s.runId, projectId: s.projectId, title: s.title, filePath: s.filePath, parentSuiteId: s.parentSuiteId, createdAt: s.createdAt };
}

/**
 * The documented node shape of a suite tree, built with an explicit stack: suites posted one by
 * one with parentSuiteId can chain deeper than any call stack should be trusted with.
 */
export function suiteTreeOut(roots: SuiteNode[]): SuiteTreeNode[] {
  const out: SuiteTreeNode[] = [];
  const stack: { node: SuiteNode; into: SuiteTreeNode[] }[] = [];
  for (let i = roots.length - 1; i >= 0; i--) stack.push({ node: roots[i]!, into: out });
  const placed: { into: SuiteTreeNode[]; node: SuiteTreeNode }[] = [];
  while (stack.length > 0) {
    const { node, into } = stack.pop()!;
    const shaped: SuiteTreeNode = { id: node.id, title: node.title, filePath: node.filePath, parentSuiteId: node.parentSuiteId, children: [] };
    placed.push({ into, node: shaped });
    for (let i = node.children.length - 1; i >= 0; i--) stack.push({ node: node.children[i]!, into: shaped.children });
  }
  // Pre-order placement keeps every list in the order the core gave.
  for (const { into, node } of placed) into.push(node);
  return out;
}
