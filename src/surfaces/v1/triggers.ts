import { z } from "@hono/zod-openapi";
import { TEST_TYPES, type TestPlanRow } from "../../db/schema";
import { Invalid, NotFound } from "../../core/errors";
import { findPlansByNumbers, getPlanRow, plansOfProjectNumber, visiblePlans } from "../../core/plans/plans";
import {
  INSUFFICIENT_CREDITS,
  type TriggeredJob,
  requireAppBuild,
  requireSomeQueued,
  selectorOf,
  suiteMatches,
  triggerPlans,
} from "../../core/plans/trigger";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const Cookie = z.object({
  name: z.string().min(1).max(4096),
  value: z.string().max(4096),
  domain: z.string().min(1).max(255),
  path: z.string().max(1024).optional(),
});

// ---- Plan trigger surface (reference 002): POST /api/v1/run -------------------------------------

const NO_TARGET = "One of testPlanId, testPlanIds, or projectId is required";
const NO_PLANS = "No test plans found";

const RunBody = z
  .object({
    testPlanId: z.number().int().positive().optional().openapi({ description: "A plan's integer number." }),
    testPlanIds: z
      .union([z.array(z.number().int().positive()).min(1).max(100), z.string().max(2000)])
      .optional()
      .openapi({ description: "Plan numbers, as an array or a comma-separated string." }),
    projectId: z.number().int().positive().optional().openapi({ description: "A project's integer number: all its plans." }),
    testType: z.enum(TEST_TYPES).optional().openapi({ description: "Default: each plan's own." }),
    buildId: z.string().max(100).optional().openapi({ description: "CI build/commit identifier, echoed back." }),
    cookies: z.array(Cookie).max(50).optional().openapi({ description: "Injected into the runs; they override the plans' stored cookies." }),
  })
  .openapi("PlanTriggerRun");

const JobOut = z.object({
  jobId: z.string().nullable(),
  status: z.string(),
  testPlanId: z.number().int(),
  testPlanName: z.string(),
  testType: z.string(),
  runId: z.string().optional(),
  error: z.string().optional(),
});

const SingleOut = z
  .object({ jobId: z.string(), status: z.string(), testPlanId: z.number().int(), testType: z.string(), runId: z.string(), buildId: z.string().optional() })
  .openapi("PlanTriggerSingle");
const MultiOut = z
  .object({ jobs: z.array(JobOut), triggered: z.number().int(), failed: z.number().int(), buildId: z.string().optional() })
  .openapi("PlanTriggerMulti");

const planTriggerErrors = {
  400: { description: "Invalid parameters", content: { "application/json": { schema: z.object({ error: z.string() }) } } },
  401: { description: "Invalid API key", content: { "application/json": { schema: z.object({ error: z.string() }) } } },
  402: { description: "Insufficient credits", content: { "application/json": { schema: z.object({ error: z.string() }) } } },
  403: { description: "The key lacks plans:trigger", content: { "application/json": { schema: z.object({ error: z.string() }) } } },
  404: { description: "No test plans found", content: { "application/json": { schema: z.object({ error: z.string() }) } } },
};

const runRoute = defineRoute({ scope: "plans:trigger" }, {
  method: "post",
  path: "/run",
  operationId: "planTriggerRun",
  tags: ["plan trigger"],
  summary: "Trigger one or more test plans (reference 002): each plan becomes a queued run for a runner to claim",
  request: { body: jsonBody(RunBody) },
  responses: { 200: jsonResponse(z.union([SingleOut, MultiOut]), "Queued."), ...planTriggerErrors },
}, { idempotent: true });

function planNumbers(value: number[] | string): number[] {
  if (Array.isArray(value)) return value;
  const parts = value.split(",").map((p) => p.trim()).filter((p) => p !== "");
  const numbers = parts.map(Number);
  if (parts.length === 0 || numbers.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new Invalid("testPlanIds must be plan numbers, as an array or a comma-separated string", { field: "testPlanIds" });
  }
  if (numbers.length > 100) throw new Invalid("testPlanIds may name at most 100 plans", { field: "testPlanIds" });
  return numbers;
}

function multiJob(j: TriggeredJob) {
  const base = { testPlanId: j.plan.number, testPlanName: j.plan.name, testType: j.outcome.ok ? j.outcome.job.request.testType : j.outcome.request.testType };
  return j.outcome.ok
    ? { jobId: j.outcome.job.jobId, status: "queued", runId: j.outcome.job.runId, ...base }
    : { jobId: null, status: "failed", error: INSUFFICIENT_CREDITS, ...base };
}

// ---- Suite trigger surface (reference 004) --------------------------------------------------------

const TagMap = z.record(z.string().max(100), z.array(z.string().max(200)).max(100));

const SuiteBody = z
  .object({
    app_id: z.string().min(1).max(200).openapi({ description: "A build id (bld_…) or an uploaded artifact id (art_…)." }),
    tags: z.object({ include: TagMap.optional(), exclude: TagMap.optional(), include_tags: TagMap.optional(), exclude_tags: TagMap.optional() }),
    devices: z.array(z.object({ device_name: z.string().min(1).max(200), platform_version: z.string().min(1).max(100) })).min(1).max(50),
    env_name: z.string().min(1).max(100).optional(),
    context_name: z.string().min(1).max(100).optional(),
  })
  .openapi("SuiteTrigger");

const detail = (description: string) => ({ description, content: { "application/json": { schema: z.object({ detail: z.string() }) } } });

const suiteRoute = defineRoute({ scope: "plans:trigger" }, {
  method: "post",
  path: "/qa/external/testsuite/trigger",
  operationId: "suiteTrigger",
  tags: ["suite trigger"],
  summary: "Trigger the test suites (plans) matching tags on a list of devices (reference 004): one queued run per suite and device",
  description:
    "include: a suite matches when, for every tag named, it has that tag with one of the listed values (an empty list: any value). exclude: every suite matches except those having, for some tag named, one of the listed values. Suites are the test plans the key may see; env_name and context_name resolve in each matched suite's project.",
  request: { body: jsonBody(SuiteBody) },
  responses: {
    200: jsonResponse(z.object({ message: z.string(), test_runs: z.array(z.string()) }).openapi("SuiteTriggered"), "Queued."),
    400: detail("Invalid selector or fields"),
    401: detail("Missing or invalid key"),
    402: detail("Insufficient credits"),
    403: detail("The key lacks plans:trigger"),
    404: detail("Build file not found / Environment not found / Context not found / No test suites found matching the provided tags"),
  },
}, { idempotent: true });

// ---- Native: POST /api/v1/testplans/{id}/trigger ---------------------------------------------------

const NativeTriggerBody = z
  .object({
    test_type: z.enum(TEST_TYPES).optional(),
    build_id: z.string().max(100).optional(),
    cookies: z.array(Cookie).max(50).optional(),
    devices: z.array(z.object({ device_name: z.string().min(1).max(200), platform_version: z.string().min(1).max(100) })).max(50).optional(),
    environment: z.string().min(1).max(100).optional().openapi({ description: "An environment's name in the plan's project." }),
    context: z.string().min(1).max(100).optional().openapi({ description: "A context's name in the plan's project." }),
    labels: z.array(z.string().min(1).max(100)).max(20).optional().openapi({ description: "Only runners offering all of them claim the jobs." }),
  })
  .openapi("TriggerTestPlan");

const NativeJob = z.object({
  job_id: z.string().nullable(),
  run_id: z.string().nullable(),
  status: z.enum(["queued", "failed"]),
  test_type: z.enum(TEST_TYPES),
  device_name: z.string().nullable(),
  platform_version: z.string().nullable(),
  credits_charged: z.number().int(),
  error: z.string().nullable(),
});

const nativeTriggerRoute = defineRoute({ scope: "plans:trigger" }, {
  method: "post",
  path: "/testplans/{id}/trigger",
  operationId: "triggerTestPlan",
  tags: ["native: test plans"],
  summary: "Queue the plan's runs (one per device, or one) for runners to claim",
  request: { params: IdParam, body: jsonBody(NativeTriggerBody) },
  responses: {
    201: jsonResponse(z.object({ plan_id: Id, jobs: z.array(NativeJob), triggered: z.number().int(), failed: z.number().int() }).openapi("TriggeredTestPlan"), "Queued."),
    ...nativeErrors(400, 401, 402, 403, 404),
  },
}, { idempotent: true });

export const triggerRoutes = surfaceApp()
  .openapi(runRoute, async (c) => {
    const ctx = coreContext(c);
    const b = c.req.valid("json");
    const given = [b.testPlanId, b.testPlanIds, b.projectId].filter((v) => v !== undefined).length;
    if (given === 0) throw new Invalid(NO_TARGET, { field: "testPlanId" });
    if (given > 1) throw new Invalid("Only one of testPlanId, testPlanIds, or projectId may be provided", { field: "testPlanId" });
    let plans: TestPlanRow[];
    if (b.testPlanId !== undefined) plans = await findPlansByNumbers(ctx, [b.testPlanId]);
    else if (b.testPlanIds !== undefined) plans = await findPlansByNumbers(ctx, planNumbers(b.testPlanIds));
    else plans = (await plansOfProjectNumber(ctx, b.projectId!)) ?? [];
    if (plans.length === 0) throw NotFound.saying(NO_PLANS, "Test plan");
    const jobs = await triggerPlans(ctx, plans, { testType: b.testType, buildRef: b.buildId ?? null, cookies: b.cookies });
    requireSomeQueued(jobs);
    const buildId = b.buildId !== undefined ? { buildId: b.buildId } : {};
    if (b.testPlanId !== undefined) {
      const job = jobs[0]!;
      if (!job.outcome.ok) throw new Error("unreachable: requireSomeQueued");
      return c.json({ jobId: job.outcome.job.jobId, status: "queued", testPlanId: job.plan.number, testType: job.outcome.job.request.testType, runId: job.outcome.job.runId, ...buildId }, 200);
    }
    const out = jobs.map(multiJob);
    return c.json({ jobs: out, triggered: out.filter((j) => j.status === "queued").length, failed: out.filter((j) => j.status === "failed").length, ...buildId }, 200);
  })
  .openapi(suiteRoute, async (c) => {
    const ctx = coreContext(c);
    const b = c.req.valid("json");
    const selector = selectorOf(b.tags);
    await requireAppBuild(ctx, b.app_id);
    const suites = (await visiblePlans(ctx)).filter((p) => suiteMatches(p.tags, selector));
    if (suites.length === 0) throw NotFound.saying("No test suites found matching the provided tags", "Test suite");
    const jobs = await triggerPlans(ctx, suites, {
      buildRef: b.app_id,
      devices: b.devices.map((d) => ({ deviceName: d.device_name, platformVersion: d.platform_version })),
      environmentName: b.env_name ?? null,
      contextName: b.context_name ?? null,
    });
    requireSomeQueued(jobs);
    const runs = jobs.flatMap((j) => (j.outcome.ok ? [j.outcome.job.runId] : []));
    const matched = new Set(jobs.filter((j) => j.outcome.ok).map((j) => j.plan.id)).size;
    return c.json({ message: `Triggered ${matched} test suite(s) matched.`, test_runs: runs }, 200);
  })
  .openapi(nativeTriggerRoute, async (c) => {
    const ctx = coreContext(c);
    const b = c.req.valid("json");
    const plan = await getPlanRow(ctx, c.req.valid("param").id);
    const jobs = await triggerPlans(ctx, [plan], {
      testType: b.test_type,
      buildRef: b.build_id ?? null,
      cookies: b.cookies,
      devices: b.devices?.map((d) => ({ deviceName: d.device_name, platformVersion: d.platform_version })),
      environmentName: b.environment ?? null,
      contextName: b.context ?? null,
      labels: b.labels,
    });
    requireSomeQueued(jobs);
    const out = jobs.map((j) =>
      j.outcome.ok
        ? {
            job_id: j.outcome.job.jobId,
            run_id: j.outcome.job.runId,
            status: "queued" as const,
            test_type: j.outcome.job.request.testType,
            device_name: j.device?.deviceName ?? null,
            platform_version: j.device?.platformVersion ?? null,
            credits_charged: j.outcome.job.creditsCharged,
            error: null,
          }
        : {
            job_id: null,
            run_id: null,
            status: "failed" as const,
            test_type: j.outcome.request.testType,
            device_name: j.device?.deviceName ?? null,
            platform_version: j.device?.platformVersion ?? null,
            credits_charged: 0,
            error: INSUFFICIENT_CREDITS,
          },
    );
    return c.json({ plan_id: plan.id, jobs: out, triggered: out.filter((j) => j.status === "queued").length, failed: out.filter((j) => j.status === "failed").length }, 201);
  });
