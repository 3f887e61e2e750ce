import { z } from "@hono/zod-openapi";
import { BUILD_SOURCES, BUILD_STATUSES, getBuild, getBuildQueue, listBuilds, registerBuild, updateBuild, type Build } from "../../core/builds/builds";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam, Label, Text, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const tags = ["native: builds"];

const QUEUED_MESSAGE = "Build queued for release assignment.";
const ASSIGNED_MESSAGE = "Build created and assigned to its release.";

const BuildStatusEnum = z.enum(BUILD_STATUSES);

const CreateBuildBody = z
  .object({
    name: Label(200).openapi({ example: "v2.4.1" }),
    // CI systems interpolate run numbers; a bare number is taken as its digits.
    build_number: z
      .union([Label(100), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)])
      .transform(String)
      .optional()
      .openapi({ type: "string", example: "1042", description: "Re-registering the same build_number in a project returns the existing build." }),
    commit_sha: z
      .string()
      .regex(/^[0-9a-fA-F]{7,40}$/, { message: "must be 7 to 40 hexadecimal characters" })
      .optional()
      .openapi({ example: "a1b2c3d4e5f6789012345678901234567890abcd", description: "With name, another identity of the build for re-registration." }),
    branch: Text(255).optional().openapi({ example: "main" }),
    repo_url: z.url({ protocol: /^https?$/ }).max(2048).optional().openapi({ example: "https://github.com/acme/shop" }),
    release_id: Id.optional().openapi({ description: "Assign at once (201); without it the build waits in the build queue (202)." }),
    project_id: Id.optional().openapi({ description: "Required unless the key is restricted to one project." }),
  })
  .openapi("CreateBuild");

const UpdateBuildBody = z
  .object({
    release_id: Id.nullable().optional().openapi({ description: "Assign to a release of the build's project; null puts it back at the end of the queue." }),
    status: BuildStatusEnum.optional(),
  })
  .openapi("UpdateBuild");

const BuildSchema = z
  .object({
    id: z.string().openapi({ example: "bld_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    project_id: z.string(),
    release_id: z.string().nullable(),
    name: z.string(),
    build_number: z.string().nullable(),
    commit_sha: z.string().nullable(),
    branch: z.string().nullable(),
    repo_url: z.string().nullable(),
    status: BuildStatusEnum,
    source: z.enum(BUILD_SOURCES),
    queue_position: z.number().int().nullable().openapi({ description: "1-based place in the project's build queue; null once assigned." }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Build");

const RegisteredBuildSchema = BuildSchema.extend({ message: z.string().openapi({ example: QUEUED_MESSAGE }) }).openapi("RegisteredBuild");

const BuildQueueSchema = z
  .object({ project_id: z.string(), size: z.number().int(), data: z.array(BuildSchema) })
  .openapi("BuildQueue");

function buildOut(build: Build): z.infer<typeof BuildSchema> {
  return {
    id: build.id,
    project_id: build.projectId,
    release_id: build.releaseId,
    name: build.name,
    build_number: build.buildNumber,
    commit_sha: build.commitSha,
    branch: build.branch,
    repo_url: build.repoUrl,
    status: build.status,
    source: build.source,
    queue_position: build.queuePosition,
    created_at: build.createdAt,
    updated_at: build.updatedAt,
  };
}

const createRoute = defineRoute(
  { scope: "builds:create" },
  {
    method: "post",
    path: "/builds",
    operationId: "createBuild",
    tags,
    summary: "Register a build from CI",
    description: `Without \`release_id\` the build joins the end of its project's build queue: 202 with \`status: "planned"\`, its \`queue_position\` and "${QUEUED_MESSAGE}". With a release of the project: 201. Registering again with the same build_number (or commit_sha and name) answers the existing build instead of creating a duplicate.`,
    request: { body: jsonBody(CreateBuildBody) },
    responses: {
      200: jsonResponse(RegisteredBuildSchema, "Registered before, and neither queued nor in a release now."),
      201: jsonResponse(RegisteredBuildSchema, "Created and assigned to its release."),
      202: jsonResponse(RegisteredBuildSchema, "Queued for release assignment."),
      ...nativeErrors(400, 401, 403, 404, 409, 413, 415, 422),
    },
  },
  { idempotent: true },
);

const listRoute = defineRoute(
  { scope: "builds:read" },
  {
    method: "get",
    path: "/builds",
    operationId: "listBuilds",
    tags,
    summary: "List builds, newest first",
    request: {
      query: NativePageQuery.extend({ project_id: Id.optional(), release_id: Id.optional(), status: BuildStatusEnum.optional(), branch: Text(255).optional() }),
    },
    responses: { 200: jsonResponse(nativeListSchema(BuildSchema, "BuildList"), "Builds."), ...nativeErrors(400, 401, 403, 404) },
  },
);

const getRoute = defineRoute(
  { scope: "builds:read" },
  {
    method: "get",
    path: "/builds/{id}",
    operationId: "getBuild",
    tags,
    summary: "Get a build, with its queue position while it waits for a release",
    request: { params: IdParam },
    responses: { 200: jsonResponse(BuildSchema, "The build."), ...nativeErrors(401, 403, 404) },
  },
);

const updateRoute = defineRoute(
  { scope: "builds:update" },
  {
    method: "patch",
    path: "/builds/{id}",
    operationId: "updateBuild",
    tags,
    summary: "Assign a build to a release (it leaves the queue), move it, or change its status",
    description: "Of two concurrent assignments one wins; the other gets 409 with the build's state in `details`, unless it asked for that same state.",
    request: { params: IdParam, body: jsonBody(UpdateBuildBody) },
    responses: { 200: jsonResponse(BuildSchema, "The build."), ...nativeErrors(400, 401, 403, 404, 409, 413, 415, 422) },
  },
);

const queueRoute = defineRoute(
  { scope: "builds:read" },
  {
    method: "get",
    path: "/projects/{id}/build-queue",
    operationId: "getBuildQueue",
    tags,
    summary: "The project's build queue, in order, with positions",
    request: { params: IdParam },
    responses: { 200: jsonResponse(BuildQueueSchema, "The queue."), ...nativeErrors(401, 403, 404) },
  },
);

export const buildRoutes = surfaceApp()
  .openapi(createRoute, async (c) => {
    const body = c.req.valid("json");
    const { build } = await registerBuild(coreContext(c), {
      projectId: body.project_id,
      name: body.name,
      buildNumber: body.build_number,
      commitSha: body.commit_sha,
      branch: body.branch,
      repoUrl: body.repo_url,
      releaseId: body.release_id,
    });
    if (build.queuePosition !== null) return c.json({ ...buildOut(build), message: QUEUED_MESSAGE }, 202);
    if (build.releaseId !== null) return c.json({ ...buildOut(build), message: ASSIGNED_MESSAGE }, 201);
    // Registered before and since taken out of the queue without a release (cancelled, say).
    return c.json({ ...buildOut(build), message: `Build already registered; it is ${build.status}.` }, 200);
  })
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listBuilds(coreContext(c), { page: pageOf(q), projectId: q.project_id, releaseId: q.release_id, status: q.status, branch: q.branch });
    return c.json(nativeList(page, buildOut), 200);
  })
  .openapi(getRoute, async (c) => c.json(buildOut(await getBuild(coreContext(c), c.req.valid("param").id)), 200))
  .openapi(updateRoute, async (c) => {
    const body = c.req.valid("json");
    const build = await updateBuild(coreContext(c), c.req.valid("param").id, { releaseId: body.release_id, status: body.status });
    return c.json(buildOut(build), 200);
  })
  .openapi(queueRoute, async (c) => {
    const projectId = c.req.valid("param").id;
    const queue = await getBuildQueue(coreContext(c), projectId);
    return c.json({ project_id: projectId, size: queue.length, data: queue.map(buildOut) }, 200);
  });
