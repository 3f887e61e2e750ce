import { z } from "@hono/zod-openapi";
import { LEASE_SECONDS, MAX_RUNNER_LABELS, claimJob, heartbeatJob, releaseJob, type ClaimedJob, type Job } from "../../core/jobs/runner";
import { JOB_STATUSES, TEST_TYPES } from "../../db/schema";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam, Label, Text, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const tags = ["native: jobs (runners)"];

const LeaseSeconds = z
  .number()
  .int()
  .min(LEASE_SECONDS.min)
  .max(LEASE_SECONDS.max)
  .openapi({ description: `How long the lease lasts from now; ${LEASE_SECONDS.default} when left out.`, example: LEASE_SECONDS.default });

/** Bodies a runner may leave out entirely (a bare POST claims any job, with the default lease). */
function optionalJsonBody<T extends z.ZodType>(schema: T) {
  return { ...jsonBody(schema), required: false } as const;
}

const ClaimJobBody = z
  .object({
    project_id: Id.optional().openapi({ description: "Only this project's jobs." }),
    test_type: z.enum(TEST_TYPES).optional(),
    device_name: Text(100).optional().openapi({ description: "Only jobs for this device.", example: "Pixel 8" }),
    platform_version: Text(100).optional().openapi({ description: "Only jobs for this platform version.", example: "14" }),
    labels: z
      .array(Label(100))
      .max(MAX_RUNNER_LABELS)
      .optional()
      .openapi({
        description: "The runner's labels. A job matches when every label of the job is among them; a runner naming none gets only unlabelled jobs.",
        example: ["linux", "gpu"],
      }),
    runner_name: Text(100).optional().openapi({ example: "ci-runner-7" }),
    lease_seconds: LeaseSeconds.optional(),
  })
  .openapi("ClaimJob");

const HeartbeatJobBody = z.object({ lease_seconds: LeaseSeconds.optional() }).openapi("HeartbeatJob");
const ReleaseJobBody = z
  .object({ reason: Text(1000).optional().openapi({ description: "Kept on the job as its error.", example: "Runner shutting down." }) })
  .openapi("ReleaseJob");

const JobSchema = z
  .object({
    id: z.string().openapi({ example: "job_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    run_id: z.string().openapi({ description: "The test run to post results into; completing it ends the job." }),
    project_id: z.string(),
    plan_id: z.string().nullable(),
    test_type: z.enum(TEST_TYPES),
    build_id: z.string().nullable().openapi({ description: "The build the trigger named (reference 002's buildId, reference 004's app_id)." }),
    device_name: z.string().nullable(),
    platform_version: z.string().nullable(),
    labels: z.array(z.string()),
    status: z.enum(JOB_STATUSES),
    attempts: z.number().int().openapi({ description: "Claims so far, this one included." }),
    max_attempts: z.number().int().openapi({ description: "A lease that lapses on the last attempt fails the job and its run." }),
    lease_until: Timestamp.nullable(),
    runner_name: z.string().nullable(),
    error: z.string().nullable().openapi({ description: "Why the job failed, or why its last holder gave it back." }),
    created_at: Timestamp,
    updated_at: Timestamp,
    finished_at: Timestamp.nullable(),
  })
  .openapi("Job");

const ClaimedJobSchema = JobSchema.extend({
  cookies: z
    .array(z.object({ name: z.string(), value: z.string(), domain: z.string(), path: z.string().optional() }).openapi("JobCookie"))
    .openapi({ description: "The cookies to inject, in clear: shown only to the runner that claims the job." }),
  environment: z
    .object({ id: z.string(), name: z.string(), base_url: z.string().nullable(), variables: z.record(z.string(), z.string()) })
    .nullable()
    .openapi("JobEnvironment"),
  context: z
    .object({ id: z.string(), name: z.string(), data: z.record(z.string(), z.unknown()) })
    .nullable()
    .openapi("JobContext"),
}).openapi("ClaimedJob");

function jobOut(j: Job): z.infer<typeof JobSchema> {
  return {
    id: j.id,
    run_id: j.runId,
    project_id: j.projectId,
    plan_id: j.planId,
    test_type: j.testType,
    build_id: j.buildRef,
    device_name: j.deviceName,
    platform_version: j.platformVersion,
    labels: j.labels,
    status: j.status,
    attempts: j.attempts,
    max_attempts: j.maxAttempts,
    lease_until: j.leaseUntil,
    runner_name: j.runnerName,
    error: j.error,
    created_at: j.createdAt,
    updated_at: j.updatedAt,
    finished_at: j.finishedAt,
  };
}

function claimedJobOut(j: ClaimedJob): z.infer<typeof ClaimedJobSchema> {
  return {
    ...jobOut(j),
    cookies: j.cookies,
    environment: j.environment && { id: j.environment.id, name: j.environment.name, base_url: j.environment.baseUrl, variables: j.environment.variables },
    context: j.context && { id: j.context.id, name: j.context.name, data: j.context.data },
  };
}

const claimRoute = defineRoute({ scope: "jobs:run" }, {
  method: "post",
  path: "/jobs/claim",
  operationId: "claimJob",
  tags,
  summary: "Claim the oldest queued job that matches this runner, with a lease",
  description:
    "Answers 204 when no job matches. A job is never held by two runners: the claim is one SQL statement. A job whose lease lapsed is claimable again (attempts counts claims) until its last attempt lapses; then the job and its run fail. Results go to the job's run as usual; completing the run ends the job.",
  request: { body: optionalJsonBody(ClaimJobBody) },
  responses: {
    200: jsonResponse(ClaimedJobSchema, "The claimed job, with its cookies, environment and context."),
    204: { description: "No job is claimable." },
    ...nativeErrors(400, 401, 403, 404, 413, 415),
  },
});

const heartbeatRoute = defineRoute({ scope: "jobs:run" }, {
  method: "post",
  path: "/jobs/{id}/heartbeat",
  operationId: "heartbeatJob",
  tags,
  summary: "Extend the lease on a job this runner holds",
  description: "409 when another runner holds the job, when this runner's lease lapsed or was given back (lease lost), or when the job is finished.",
  request: { params: IdParam, body: optionalJsonBody(HeartbeatJobBody) },
  responses: { 200: jsonResponse(JobSchema, "The job with its new lease."), ...nativeErrors(400, 401, 403, 404, 409, 413, 415) },
});

const releaseRoute = defineRoute({ scope: "jobs:run" }, {
  method: "post",
  path: "/jobs/{id}/release",
  operationId: "releaseJob",
  tags,
  summary: "Give a held job back: queued again, attempts unchanged, its run queued again",
  request: { params: IdParam, body: optionalJsonBody(ReleaseJobBody) },
  responses: { 200: jsonResponse(JobSchema, "The job, queued again."), ...nativeErrors(400, 401, 403, 404, 409, 413, 415) },
});

export const jobRoutes = surfaceApp()
  .openapi(claimRoute, async (c) => {
    const b = c.req.valid("json");
    const job = await claimJob(coreContext(c), {
      projectId: b.project_id,
      testType: b.test_type,
      deviceName: b.device_name,
      platformVersion: b.platform_version,
      labels: b.labels,
      runnerName: b.runner_name,
      leaseSeconds: b.lease_seconds,
    });
    if (!job) return c.body(null, 204);
    return c.json(claimedJobOut(job), 200);
  })
  .openapi(heartbeatRoute, async (c) => {
    const job = await heartbeatJob(coreContext(c), c.req.valid("param").id, { leaseSeconds: c.req.valid("json").lease_seconds });
    return c.json(jobOut(job), 200);
  })
  .openapi(releaseRoute, async (c) => {
    const job = await releaseJob(coreContext(c), c.req.valid("param").id, { reason: c.req.valid("json").reason });
    return c.json(jobOut(job), 200);
  });
