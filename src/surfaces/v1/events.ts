import { z } from "@hono/zod-openapi";
import { EVENT_TYPES, listEventTypes, type EventTypeEntry } from "../../core/events/catalog";
import { nativeList, nativeListSchema } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { coreContext, jsonResponse, surfaceApp } from "../shared";

const tags = ["native: events"];

const EventTypeSchema = z
  .object({
    type: z.enum(EVENT_TYPES).openapi({ example: "testrun.completed.v1" }),
    description: z.string().openapi({ example: "Test run marked completed: its status became passed, failed or cancelled." }),
    emitted: z.boolean().openapi({ description: "False for a type reserved for a feature not built yet: nothing sends it today, but it can be subscribed to." }),
    schema: z
      .record(z.string(), z.unknown())
      .openapi("EventPayloadJsonSchema", {
        description:
          "JSON Schema (draft 2020-12) of the event's payload, `{type, <subject>: {...}}`. A delivery's body is this object with the event's `id` and `created_at` beside `type`; objects may gain fields within a version.",
        example: { $schema: "https://json-schema.org/draft/2020-12/schema", type: "object", properties: { type: { type: "string", const: "webhook.ping" } } },
      }),
  })
  .openapi("EventType");

const listRoute = defineRoute(
  { scope: "webhooks:read" },
  {
    method: "get",
    path: "/events",
    operationId: "listEventTypes",
    tags,
    summary: "Discover supported webhook event types",
    description: "Every event type a webhook can subscribe to, with its description and the JSON Schema of its payload, in one page.",
    responses: { 200: jsonResponse(nativeListSchema(EventTypeSchema, "EventTypeList"), "The event types."), ...nativeErrors(401, 403) },
  },
);

function eventTypeOut(entry: EventTypeEntry): z.infer<typeof EventTypeSchema> {
  return { type: entry.type, description: entry.description, emitted: entry.emitted, schema: entry.schema };
}

export const eventRoutes = surfaceApp().openapi(listRoute, (c) => c.json(nativeList(listEventTypes(coreContext(c)), eventTypeOut), 200));
