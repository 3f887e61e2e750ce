import { z } from "@hono/zod-openapi";
import { EVENT_TYPES } from "../../core/events/catalog";
import { createWebhook, deleteWebhook, listWebhooks, updateWebhook, type Webhook } from "../../core/webhooks/webhooks";
import { ReportingPageQuery, pageOf, reportingList, reportingListSchema } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { Id, IdParam, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const tags = ["reporting: webhooks"];

const Events = z.array(z.string().max(100)).min(1).max(EVENT_TYPES.length).openapi({ example: ["run.completed", "run.failed"] });
const Headers = z.record(z.string().max(100), z.string().max(1024)).openapi({ example: { "X-Custom-Header": "value" } });

const CreateBody = z
  .object({
    projectId: Id,
    url: z.string().max(2048).openapi({ example: "https://hooks.slack.com/services/T00/B00/xxx" }),
    events: Events,
    headers: Headers.optional(),
    secret: z.string().max(256).optional().openapi({ example: "whsec_your-webhook-secret" }),
  })
  .openapi("ReportingCreateWebhook");

const UpdateBody = z
  .object({
    url: z.string().max(2048).optional(),
    events: Events.optional(),
    headers: Headers.optional(),
    secret: z.string().max(256).optional(),
    isActive: z.boolean().optional(),
  })
  .openapi("ReportingUpdateWebhook");

const WebhookItem = z
  .object({
    id: z.string().openapi({ example: "wh_abc123" }),
    projectId: z.string(),
    url: z.string(),
    events: z.array(z.string()),
    headers: z.record(z.string(), z.string()),
    isActive: z.boolean(),
    createdAt: Timestamp,
  })
  .openapi("ReportingWebhook");

const CreatedWebhook = z
  .object({
    id: z.string(),
    projectId: z.string(),
    url: z.string(),
    events: z.array(z.string()),
    isActive: z.boolean(),
    createdAt: Timestamp,
    secret: z.string().optional().openapi({ description: "Present only when Greenlight generated the secret: shown this once." }),
  })
  .openapi("ReportingCreatedWebhook");

const UpdatedWebhook = z
  .object({ id: z.string(), url: z.string(), events: z.array(z.string()), isActive: z.boolean(), updatedAt: Timestamp })
  .openapi("ReportingUpdatedWebhook");

const Deleted = z.object({ success: z.literal(true), message: z.string() }).openapi("ReportingWebhookDeleted");

function itemOut(w: Webhook): z.infer<typeof WebhookItem> {
  return { id: w.id, projectId: w.projectId ?? "", url: w.url, events: w.events, headers: w.headers, isActive: w.isActive, createdAt: w.createdAt };
}

const listRoute = defineRoute({ scope: "webhooks:read" }, {
  method: "get",
  path: "/webhooks",
  operationId: "reportingListWebhooks",
  tags,
  summary: "Returns all webhooks configured for a project",
  request: { query: ReportingPageQuery.extend({ projectId: Id }) },
  responses: { 200: jsonResponse(reportingListSchema(WebhookItem, "ReportingWebhookList"), "Webhooks."), ...reportingErrors(400, 401, 403, 404) },
});

const createRoute = defineRoute(
  { scope: "webhooks:write" },
  {
    method: "post",
    path: "/webhooks",
    operationId: "reportingCreateWebhook",
    tags,
    summary: "Creates a new webhook for a project",
    request: { body: jsonBody(CreateBody) },
    responses: { 201: jsonResponse(CreatedWebhook, "Created."), ...reportingErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const updateRoute = defineRoute({ scope: "webhooks:write" }, {
  method: "patch",
  path: "/webhooks/{id}",
  operationId: "reportingUpdateWebhook",
  tags,
  summary: "Updates a webhook's URL, events, headers, secret, or active status",
  request: { params: IdParam, body: jsonBody(UpdateBody) },
  responses: { 200: jsonResponse(UpdatedWebhook, "Updated."), ...reportingErrors(400, 401, 403, 404, 413, 415, 422) },
});

const deleteRoute = defineRoute({ scope: "webhooks:write" }, {
  method: "delete",
  path: "/webhooks/{id}",
  operationId: "reportingDeleteWebhook",
  tags,
  summary: "Permanently deletes a webhook",
  request: { params: IdParam },
  responses: { 200: jsonResponse(Deleted, "Deleted."), ...reportingErrors(401, 403, 404) },
});

export const reportingWebhookRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listWebhooks(coreContext(c), { page: pageOf(q), projectId: q.projectId, projectOnly: true });
    return c.json(reportingList(page, itemOut), 200);
  })
  .openapi(createRoute, async (c) => {
    const b = c.req.valid("json");
    const { webhook, secret } = await createWebhook(coreContext(c), { projectId: b.projectId, url: b.url, events: b.events, headers: b.headers, secret: b.secret });
    const { headers: _headers, ...created } = itemOut(webhook);
    return c.json({ ...created, ...(b.secret === undefined ? { secret } : {}) }, 201);
  })
  .openapi(updateRoute, async (c) => {
    const b = c.req.valid("json");
    const w = await updateWebhook(coreContext(c), c.req.valid("param").id, { url: b.url, events: b.events, headers: b.headers, secret: b.secret, isActive: b.isActive });
    return c.json({ id: w.id, url: w.url, events: w.events, isActive: w.isActive, updatedAt: w.updatedAt }, 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteWebhook(coreContext(c), c.req.valid("param").id);
    return c.json({ success: true as const, message: "Webhook deleted successfully" }, 200);
  });
