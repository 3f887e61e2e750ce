import { z } from "@hono/zod-openapi";
import { EVENT_TYPES } from "../../core/events/catalog";
import { DELIVERY_STATUSES, listDeliveries, pingWebhook, redeliver, type Delivery } from "../../core/webhooks/deliveries";
import { createWebhook, deleteWebhook, getWebhook, listWebhooks, rotateWebhookSecret, updateWebhook, type Webhook } from "../../core/webhooks/webhooks";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam, Text, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const tags = ["native: webhooks"];

const EventTypeList = z.array(z.string().max(100)).min(1).max(EVENT_TYPES.length).openapi({ example: ["build.created.v1", "testrun.completed.v1"] });
const HeaderMap = z.record(z.string().max(100), z.string().max(1024)).openapi({ example: { "X-Team": "qa" } });
const Secret = z.string().max(256).openapi({ description: "16-256 printable characters; generated (whsec_…) when left out." });

const CreateWebhookBody = z
  .object({
    url: z.string().max(2048).openapi({ example: "https://hooks.example.com/greenlight" }),
    events: EventTypeList,
    headers: HeaderMap.optional(),
    secret: Secret.optional(),
    description: Text(500).nullable().optional(),
    is_active: z.boolean().optional(),
    project_id: Id.nullable().optional().openapi({ description: "Only this project's events; organization-wide when left out." }),
  })
  .openapi("CreateWebhook");

const UpdateWebhookBody = z
  .object({
    url: z.string().max(2048).optional(),
    events: EventTypeList.optional(),
    headers: HeaderMap.optional(),
    secret: Secret.optional().openapi({ description: "Starts a rotation: the previous secret keeps signing for 24 hours." }),
    description: Text(500).nullable().optional(),
    is_active: z.boolean().optional().openapi({ description: "true also clears a disable caused by delivery failures." }),
  })
  .openapi("UpdateWebhook");

const WebhookSchema = z
  .object({
    id: z.string().openapi({ example: "wh_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    project_id: z.string().nullable(),
    url: z.string(),
    events: z.array(z.string()),
    headers: z.record(z.string(), z.string()),
    description: z.string().nullable(),
    is_active: z.boolean(),
    disabled_reason: z.enum(["gone", "failing"]).nullable().openapi({ description: "gone: the receiver answered 410; failing: every delivery failed for 5 days." }),
    disabled_at: Timestamp.nullable(),
    failing_since: Timestamp.nullable(),
    previous_secret_expires_at: Timestamp.nullable().openapi({ description: "While set and in the future, deliveries carry signatures of both secrets." }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Webhook");

const WebhookWithSecret = WebhookSchema.extend({ secret: z.string().openapi({ description: "Shown only in this answer." }) }).openapi("WebhookWithSecret");

const DeliverySchema = z
  .object({
    id: z.string().openapi({ description: "Also the webhook-id header of every attempt." }),
    webhook_id: z.string(),
    event_id: z.string(),
    event_type: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number().int(),
    last_status_code: z.number().int().nullable(),
    last_duration_ms: z.number().int().nullable(),
    last_response: z.string().nullable().openapi({ description: "At most 4 KB of the receiver's last answer." }),
    last_error: z.string().nullable(),
    next_attempt_at: Timestamp.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
    completed_at: Timestamp.nullable(),
  })
  .openapi("WebhookDelivery");

export function webhookOut(w: Webhook): z.infer<typeof WebhookSchema> {
  return {
    id: w.id,
    project_id: w.projectId,
    url: w.url,
    events: w.events,
    headers: w.headers,
    description: w.description,
    is_active: w.isActive,
    disabled_reason: (w.disabledReason as "gone" | "failing" | null) ?? null,
    disabled_at: w.disabledAt,
    failing_since: w.failingSince,
    previous_secret_expires_at: w.previousSecretExpiresAt,
    created_at: w.createdAt,
    updated_at: w.updatedAt,
  };
}

function deliveryOut(d: Delivery): z.infer<typeof DeliverySchema> {
  return {
    id: d.id,
    webhook_id: d.webhookId,
    event_id: d.eventId,
    event_type: d.eventType,
    status: d.status,
    attempts: d.attempts,
    last_status_code: d.lastStatusCode,
    last_duration_ms: d.lastDurationMs,
    last_response: d.lastResponse,
    last_error: d.lastError,
    next_attempt_at: d.nextAttemptAt,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
    completed_at: d.completedAt,
  };
}

const listRoute = defineRoute({ scope: "webhooks:read" }, {
  method: "get",
  path: "/webhooks",
  operationId: "listWebhooks",
  tags,
  summary: "List webhook subscriptions, newest first",
  request: { query: NativePageQuery.extend({ project_id: Id.optional().openapi({ description: "The project's and the organization-wide ones." }) }) },
  responses: { 200: jsonResponse(nativeListSchema(WebhookSchema, "WebhookList"), "Subscriptions."), ...nativeErrors(400, 401, 403, 404) },
});

const createRoute = defineRoute(
  { scope: "webhooks:write" },
  {
    method: "post",
    path: "/webhooks",
    operationId: "createWebhook",
    tags,
    summary: "Subscribe a URL to events",
    description:
      "Deliveries are POSTs of JSON signed with `X-Perpetual-Signature: sha256=<hex HMAC-SHA256(secret, body)>` and the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`). URLs must be https on port 443 and not point at private addresses. Past the organization's subscription limit: 403.",
    request: { body: jsonBody(CreateWebhookBody) },
    responses: { 201: jsonResponse(WebhookWithSecret, "Subscribed; the secret is shown only here."), ...nativeErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const getRoute = defineRoute({ scope: "webhooks:read" }, {
  method: "get",
  path: "/webhooks/{id}",
  operationId: "getWebhook",
  tags,
  summary: "Get a subscription (never its secret)",
  request: { params: IdParam },
  responses: { 200: jsonResponse(WebhookSchema, "The subscription."), ...nativeErrors(401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "webhooks:write" }, {
  method: "patch",
  path: "/webhooks/{id}",
  operationId: "updateWebhook",
  tags,
  summary: "Change a subscription",
  request: { params: IdParam, body: jsonBody(UpdateWebhookBody) },
  responses: { 200: jsonResponse(WebhookSchema, "The subscription."), ...nativeErrors(400, 401, 403, 404, 413, 415, 422) },
});

const deleteRoute = defineRoute({ scope: "webhooks:write" }, {
  method: "delete",
  path: "/webhooks/{id}",
  operationId: "deleteWebhook",
  tags,
  summary: "Delete a subscription and its delivery log",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted." }, ...nativeErrors(401, 403, 404) },
});

const rotateRoute = defineRoute({ scope: "webhooks:write" }, {
  method: "post",
  path: "/webhooks/{id}/rotate-secret",
  operationId: "rotateWebhookSecret",
  tags,
  summary: "Replace the signing secret; the old one keeps signing for 24 hours",
  request: { params: IdParam },
  responses: { 200: jsonResponse(WebhookWithSecret, "The new secret, shown only here."), ...nativeErrors(401, 403, 404) },
});

const deliveriesRoute = defineRoute({ scope: "webhooks:read" }, {
  method: "get",
  path: "/webhooks/{id}/deliveries",
  operationId: "listWebhookDeliveries",
  tags,
  summary: "The delivery log (30 days), newest first",
  request: { params: IdParam, query: NativePageQuery.extend({ status: z.enum(DELIVERY_STATUSES).optional() }) },
  responses: { 200: jsonResponse(nativeListSchema(DeliverySchema, "WebhookDeliveryList"), "Deliveries."), ...nativeErrors(400, 401, 403, 404) },
});

const redeliverRoute = defineRoute({ scope: "webhooks:write" }, {
  method: "post",
  path: "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
  operationId: "redeliverWebhookDelivery",
  tags,
  summary: "Send a delivery again now (whatever its state), and answer how it went",
  request: {
    params: z.object({
      id: Id.openapi({ param: { name: "id", in: "path" } }),
      delivery_id: Id.openapi({ param: { name: "delivery_id", in: "path" } }),
    }),
  },
  responses: { 200: jsonResponse(DeliverySchema, "The delivery after the attempt."), ...nativeErrors(401, 403, 404) },
});

const pingRoute = defineRoute({ scope: "webhooks:write" }, {
  method: "post",
  path: "/webhooks/{id}/ping",
  operationId: "pingWebhook",
  tags,
  summary: "Send a webhook.ping to this subscription now, and answer how it went",
  request: { params: IdParam },
  responses: { 200: jsonResponse(DeliverySchema, "The ping's delivery."), ...nativeErrors(401, 403, 404) },
});

export const webhookRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    return c.json(nativeList(await listWebhooks(coreContext(c), { page: pageOf(q), projectId: q.project_id }), webhookOut), 200);
  })
  .openapi(createRoute, async (c) => {
    const b = c.req.valid("json");
    const { webhook, secret } = await createWebhook(coreContext(c), {
      projectId: b.project_id,
      url: b.url,
      events: b.events,
      headers: b.headers,
      secret: b.secret,
      description: b.description,
      isActive: b.is_active,
    });
    return c.json({ ...webhookOut(webhook), secret }, 201);
  })
  .openapi(getRoute, async (c) => c.json(webhookOut(await getWebhook(coreContext(c), c.req.valid("param").id)), 200))
  .openapi(updateRoute, async (c) => {
    const b = c.req.valid("json");
    const webhook = await updateWebhook(coreContext(c), c.req.valid("param").id, {
      url: b.url,
      events: b.events,
      headers: b.headers,
      secret: b.secret,
      description: b.description,
      isActive: b.is_active,
    });
    return c.json(webhookOut(webhook), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteWebhook(coreContext(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(rotateRoute, async (c) => {
    const { webhook, secret } = await rotateWebhookSecret(coreContext(c), c.req.valid("param").id);
    return c.json({ ...webhookOut(webhook), secret }, 200);
  })
  .openapi(deliveriesRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listDeliveries(coreContext(c), c.req.valid("param").id, { page: pageOf(q), status: q.status });
    return c.json(nativeList(page, deliveryOut), 200);
  })
  .openapi(redeliverRoute, async (c) => {
    const { id, delivery_id } = c.req.valid("param");
    return c.json(deliveryOut(await redeliver(coreContext(c), id, delivery_id)), 200);
  })
  .openapi(pingRoute, async (c) => c.json(deliveryOut(await pingWebhook(coreContext(c), c.req.valid("param").id)), 200));
