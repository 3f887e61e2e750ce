import { z } from "@hono/zod-openapi";
import { NAME_MAX_LENGTH } from "../../core/limits";
import {
  type ReadinessReason,
  type ReasonFigures,
  type ReleaseProgress,
  FAILING_LIST_LIMIT,
  PASS_RATE_MARGIN,
  READINESS_RULES,
  VERDICTS,
  releaseProgress,
} from "../../core/releases/readiness";
import {
  type GateInput,
  type Release,
  DEFAULT_GATE,
  RELEASE_STATUSES,
  RELEASE_STATUS_INPUTS,
  createRelease,
  getRelease,
  listReleases,
  updateRelease,
} from "../../core/releases/releases";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam, Label, Timestamp } from "../fields";
import { RunStatusEnum } from "../result-fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const tags = ["native: releases"];

const ReleaseStatusEnum = z.enum(RELEASE_STATUSES);
const ReleaseStatusInput = z.enum(RELEASE_STATUS_INPUTS).openapi({
  description: "`completed` (the word of reference 001) means `released`: it is stored and returned as `released`.",
});

const GateSchema = z
  .object({
    min_pass_rate: z.number().openapi({ description: "0..1: (passed + flaky) ÷ (passed + flaky + failed) test cases.", example: 0.95 }),
    block_on_failures: z.boolean().openapi({ description: "Any failing test case that is not quarantined blocks the release." }),
  })
  .openapi("ReleaseGate", { description: "The effective gate, defaults filled in." });

const GateInputSchema = z
  .object({
    min_pass_rate: z
      .number()
      .min(0)
      .max(1)
      .nullable()
      .optional()
      .openapi({ description: `0..1, default ${DEFAULT_GATE.minPassRate}; null returns to the default.`, example: 0.95 }),
    block_on_failures: z
      .boolean()
      .nullable()
      .optional()
      .openapi({ description: `Default ${DEFAULT_GATE.blockOnFailures}; null returns to the default.` }),
  })
  .openapi("ReleaseGateInput", { description: "Fields left out keep their value." });

const TargetDate = z.iso.date().nullable().optional().openapi({ description: "A calendar date, YYYY-MM-DD.", example: "2026-06-30" });
const ReleaseName = Label(NAME_MAX_LENGTH).openapi({ description: "Unique within the project.", example: "Spring release" });
const Version = Label(NAME_MAX_LENGTH).nullable().optional().openapi({ example: "2.4.1" });

const CreateReleaseBody = z
  .object({
    name: ReleaseName,
    version: Version,
    project_id: Id.optional().openapi({ description: "Implied by a project-restricted key.", example: "proj_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    status: ReleaseStatusInput.optional().openapi({ description: "Defaults to planned; `completed` means `released`." }),
    target_date: TargetDate,
    gate: GateInputSchema.optional(),
  })
  .openapi("CreateRelease");

const UpdateReleaseBody = z
  .object({
    name: ReleaseName.optional(),
    version: Version,
    status: ReleaseStatusInput.optional().openapi({
      description: "Moving into `released` (or `completed`) sets released_at and sends release.released.v1 once; moving out clears released_at.",
    }),
    target_date: TargetDate,
    gate: GateInputSchema.optional(),
  })
  .openapi("UpdateRelease", { description: "Fields left out keep their value." });

const ReleaseListQuery = z.object({
  project_id: Id.optional(),
  status: ReleaseStatusInput.optional(),
});

const ProgressQuery = z.object({
  build_id: Id.optional().openapi({ description: "A build of the release to judge instead of its latest one." }),
});

const ReleaseSchema = z
  .object({
    id: z.string().openapi({ example: "rel_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    project_id: z.string(),
    name: z.string(),
    version: z.string().nullable(),
    status: ReleaseStatusEnum,
    target_date: z.string().nullable().openapi({ example: "2026-06-30" }),
    gate: GateSchema,
    released_at: z.string().nullable().openapi({ description: "When the release last moved into released; null unless it is released." }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Release");

function releaseOut(r: Release) {
  return {
    id: r.id,
    project_id: r.projectId,
    name: r.name,
    version: r.version,
    status: r.status,
    target_date: r.targetDate,
    gate: { min_pass_rate: r.gate.minPassRate, block_on_failures: r.gate.blockOnFailures },
    released_at: r.releasedAt,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

function gateInputOf(g: z.infer<typeof GateInputSchema> | undefined): GateInput | undefined {
  return g && { minPassRate: g.min_pass_rate, blockOnFailures: g.block_on_failures };
}

const ReasonSchema = z
  .object({
    rule: z.enum(READINESS_RULES),
    verdict: z.enum(VERDICTS).exclude(["ready"]),
    message: z.string().openapi({ example: "Pass rate 91.2% is below the minimum of 95%." }),
    runs: z.number().int().optional(),
    failing_test_cases: z.number().int().optional().openapi({ description: "no_failures: failing test cases that are not quarantined." }),
    pass_rate: z.number().nullable().optional(),
    min_pass_rate: z.number().optional(),
    margin: z.number().optional().openapi({ description: `pass_rate_margin: ${PASS_RATE_MARGIN}.` }),
    unfinished_runs: z.number().int().optional(),
    flaky_test_cases: z.number().int().optional(),
    quarantined_failures: z.number().int().optional().openapi({ description: "no_failures: failing test cases left out because they are quarantined." }),
  })
  .openapi("ReadinessReason", { description: "A rule that objects, with the numbers it looked at." });

const FIGURE_NAMES: Record<keyof ReasonFigures, string> = {
  runs: "runs",
  failingTestCases: "failing_test_cases",
  passRate: "pass_rate",
  minPassRate: "min_pass_rate",
  margin: "margin",
  unfinishedRuns: "unfinished_runs",
  flakyTestCases: "flaky_test_cases",
  quarantinedFailures: "quarantined_failures",
};

function reasonOut(r: ReadinessReason) {
  const figures = Object.fromEntries(
    Object.entries(r.figures).map(([name, value]) => [FIGURE_NAMES[name as keyof ReasonFigures], value as number | null]),
  );
  return { rule: r.rule, verdict: r.verdict, message: r.message, ...figures };
}

const ReleaseProgressSchema = z
  .object({
    release: ReleaseSchema,
    build: z
      .object({
        id: z.string().openapi({ example: "bld_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
        name: z.string(),
        build_number: z.string().nullable(),
        commit_sha: z.string().nullable(),
        branch: z.string().nullable(),
        status: z.string(),
      })
      .nullable()
      .openapi({ description: "The build judged; null when the release has none." }),
    runs: z
      .array(
        z.object({
          id: z.string(),
          status: RunStatusEnum,
          total_tests: z.number().int(),
          passed_tests: z.number().int(),
          failed_tests: z.number().int(),
          skipped_tests: z.number().int(),
          flaky_tests: z.number().int(),
          created_at: Timestamp,
        }),
      )
      .openapi({ description: "The build's runs, oldest first, with counts derived from their results." }),
    totals: z
      .object({
        test_cases: z.number().int(),
        passed: z.number().int(),
        failed: z.number().int(),
        skipped: z.number().int(),
        flaky: z.number().int(),
        untested: z.number().int().nullable().openapi({
          description: "Test cases of the release's test plans that no run executed. Always null until test plans exist.",
        }),
      })
      .openapi({
        description:
          "Test cases by their latest result across the build's runs: a test that failed in one run and passed in a rerun counts as passed.",
      }),
    pass_rate: z.number().nullable().openapi({
      description: "0..1: (passed + flaky) ÷ (passed + flaky + failed); skipped excluded. null when no test case passed or failed.",
    }),
    failing_test_cases: z
      .array(
        z.object({
          test_case_id: z.string(),
          title: z.string(),
          full_title: z.string(),
          file_path: z.string().nullable(),
          run_id: z.string().openapi({ description: "The run of the failing (latest) result." }),
          result_id: z.string(),
          error_message: z.string().nullable(),
          quarantined: z.boolean().openapi({ description: "Quarantined failures do not block; always false until quarantine exists." }),
        }),
      )
      .openapi({ description: `At most ${FAILING_LIST_LIMIT}; failing_test_cases_total counts all.` }),
    failing_test_cases_total: z.number().int(),
    gate: GateSchema,
    verdict: z.enum(VERDICTS).openapi({ description: "The worst verdict among the reasons; ready when there are none." }),
    reasons: z.array(ReasonSchema),
    summary: z.string().openapi({ example: "Blocked: 3 test cases fail." }),
  })
  .openapi("ReleaseProgress");

function progressOut(p: ReleaseProgress) {
  return {
    release: releaseOut(p.release),
    build: p.build && {
      id: p.build.id,
      name: p.build.name,
      build_number: p.build.buildNumber,
      commit_sha: p.build.commitSha,
      branch: p.build.branch,
      status: p.build.status,
    },
    runs: p.runs.map((r) => ({
      id: r.id,
      status: r.status,
      total_tests: r.totalTests,
      passed_tests: r.passedTests,
      failed_tests: r.failedTests,
      skipped_tests: r.skippedTests,
      flaky_tests: r.flakyTests,
      created_at: r.createdAt,
    })),
    totals: {
      test_cases: p.totals.testCases,
      passed: p.totals.passed,
      failed: p.totals.failed,
      skipped: p.totals.skipped,
      flaky: p.totals.flaky,
      untested: p.totals.untested,
    },
    pass_rate: p.passRate,
    failing_test_cases: p.failingTestCases.map((f) => ({
      test_case_id: f.testCaseId,
      title: f.title,
      full_title: f.fullTitle,
      file_path: f.filePath,
      run_id: f.runId,
      result_id: f.resultId,
      error_message: f.errorMessage,
      quarantined: f.quarantined,
    })),
    failing_test_cases_total: p.failingTestCasesTotal,
    gate: { min_pass_rate: p.gate.minPassRate, block_on_failures: p.gate.blockOnFailures },
    verdict: p.verdict,
    reasons: p.reasons.map(reasonOut),
    summary: p.summary,
  };
}

const listRoute = defineRoute({ scope: "builds:read" }, {
  method: "get",
  path: "/releases",
  operationId: "listReleases",
  tags,
  summary: "List releases, newest first",
  request: { query: NativePageQuery.extend(ReleaseListQuery.shape) },
  responses: { 200: jsonResponse(nativeListSchema(ReleaseSchema, "ReleaseList"), "Releases."), ...nativeErrors(400, 401, 403, 404) },
});

const createRouteDef = defineRoute(
  { scope: "builds:update" },
  {
    method: "post",
    path: "/releases",
    operationId: "createRelease",
    tags,
    summary: "Create a release",
    request: { body: jsonBody(CreateReleaseBody) },
    responses: {
      201: jsonResponse(ReleaseSchema, "The release."),
      ...nativeErrors(400, 401, 403, 404, 409, 413, 415, 422),
    },
  },
  { idempotent: true },
);

const getRoute = defineRoute({ scope: "builds:read" }, {
  method: "get",
  path: "/releases/{id}",
  operationId: "getRelease",
  tags,
  summary: "Get a release",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ReleaseSchema, "The release."), ...nativeErrors(401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "builds:update" }, {
  method: "patch",
  path: "/releases/{id}",
  operationId: "updateRelease",
  tags,
  summary: "Update a release's name, version, status, target date or gate",
  request: { params: IdParam, body: jsonBody(UpdateReleaseBody) },
  responses: { 200: jsonResponse(ReleaseSchema, "Updated."), ...nativeErrors(400, 401, 403, 404, 409, 413, 415) },
});

const progressRoute = defineRoute({ scope: "builds:read" }, {
  method: "get",
  path: "/releases/{id}/progress",
  operationId: "getReleaseProgress",
  tags,
  summary: "Release readiness: the test outcome of its build judged against its gate",
  description:
    "Judges the release's latest build (or `build_id`, which must belong to the release) on the runs reporting that build. " +
    "Blocked: no build, no runs, failing test cases (when block_on_failures), a pass rate below min_pass_rate. " +
    `At risk: runs still queued or running, flaky test cases, a pass rate less than ${PASS_RATE_MARGIN * 100} percentage points above the minimum. ` +
    "`totals.untested` needs test plans and is null for now. Failures of quarantined test cases are listed but never block.",
  request: { params: IdParam, query: ProgressQuery },
  responses: { 200: jsonResponse(ReleaseProgressSchema, "Readiness."), ...nativeErrors(400, 401, 403, 404) },
});

export const releaseRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listReleases(coreContext(c), { page: pageOf(q), projectId: q.project_id, status: q.status });
    return c.json(nativeList(page, releaseOut), 200);
  })
  .openapi(createRouteDef, async (c) => {
    const b = c.req.valid("json");
    const release = await createRelease(coreContext(c), {
      projectId: b.project_id,
      name: b.name,
      version: b.version,
      status: b.status,
      targetDate: b.target_date,
      gate: gateInputOf(b.gate),
    });
    return c.json(releaseOut(release), 201);
  })
  .openapi(getRoute, async (c) => c.json(releaseOut(await getRelease(coreContext(c), c.req.valid("param").id)), 200))
  .openapi(updateRoute, async (c) => {
    const b = c.req.valid("json");
    const release = await updateRelease(coreContext(c), c.req.valid("param").id, {
      name: b.name,
      version: b.version,
      status: b.status,
      targetDate: b.target_date,
      gate: gateInputOf(b.gate),
    });
    return c.json(releaseOut(release), 200);
  })
  .openapi(progressRoute, async (c) => {
    const progress = await releaseProgress(coreContext(c), c.req.valid("param").id, { buildId: c.req.valid("query").build_id });
    return c.json(progressOut(progress), 200);
  });
