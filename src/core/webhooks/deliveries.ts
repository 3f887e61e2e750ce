import { and, desc, eq, sql } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import { events, webhookDeliveries, type WebhookDeliveryRow } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, requireScope } from "../context";
import { NotFound } from "../errors";
import type { PageRequest, Paged } from "../pagination";
import { attemptDelivery } from "./delivery";
import { readWebhookRow } from "./webhooks";

export const DELIVERY_STATUSES = ["pending", "sending", "retrying", "succeeded", "failed"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface Delivery {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastDurationMs: number | null;
  lastResponse: string | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

function toDelivery(row: WebhookDeliveryRow): Delivery {
  return {
    id: row.id,
    webhookId: row.webhookId,
    eventId: row.eventId,
    eventType: row.eventType,
    status: row.status as DeliveryStatus,
    attempts: row.attempts,
    lastStatusCode: row.lastStatusCode,
    lastDurationMs: row.lastDurationMs,
    lastResponse: row.lastResponse,
    lastError: row.lastError,
    nextAttemptAt: row.nextAttemptAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    completedAt: row.completedAt,
  };
}

/** A subscription's deliveries, newest first (kept 30 days). */
export async function listDeliveries(
  ctx: CoreContext,
  webhookId: string,
  input: { page: PageRequest; status?: DeliveryStatus },
): Promise<Paged<Delivery>> {
  requireScope(ctx.principal, "webhooks:read");
  const webhook = await readWebhookRow(ctx, webhookId);
  const where = and(
    eq(webhookDeliveries.webhookId, webhook.id),
    eq(webhookDeliveries.organizationId, ctx.principal.organizationId),
    input.status === undefined ? undefined : eq(webhookDeliveries.status, input.status),
  )!;
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(webhookDeliveries).where(where),
    ctx.db.select().from(webhookDeliveries).where(where).orderBy(desc(webhookDeliveries.number)).limit(input.page.limit).offset(input.page.offset),
  ]);
  return { items: rows.map(toDelivery), total: totalRows[0]?.total ?? 0, ...input.page };
}

async function readDelivery(ctx: CoreContext, webhookId: string, deliveryId: string): Promise<WebhookDeliveryRow> {
  const row = await ctx.db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.webhookId, webhookId), eq(webhookDeliveries.organizationId, ctx.principal.organizationId)))
    .get();
  if (!row) throw new NotFound("Delivery", { id: deliveryId });
  return row;
}

/** Sends a delivery again now, whatever became of it, and answers how that went. */
export async function redeliver(ctx: CoreContext, webhookId: string, deliveryId: string): Promise<Delivery> {
  requireScope(ctx.principal, "webhooks:write");
  const webhook = await readWebhookRow(ctx, webhookId);
  const delivery = await readDelivery(ctx, webhook.id, deliveryId);
  await attemptDelivery(ctx.env, delivery.id, { manual: true });
  return toDelivery(await readDelivery(ctx, webhook.id, delivery.id));
}

/**
 * Sends a webhook.ping to one subscription now and answers how it went. The ping is an event of
 * its own (in the log like any other) that goes to this subscription only.
 */
export async function pingWebhook(ctx: CoreContext, webhookId: string): Promise<Delivery> {
  requireScope(ctx.principal, "webhooks:write");
  const webhook = await readWebhookRow(ctx, webhookId);
  const now = ctx.clock.now().toISOString();
  const eventId = newId("evt");
  const deliveryId = newId("whd");
  await batchAll(ctx.db, [
    // Marked dispatched: the outbox must not fan it out to every subscription.
    ctx.db.insert(events).values({
      id: eventId,
      organizationId: webhook.organizationId,
      projectId: webhook.projectId,
      type: "webhook.ping",
      subjectId: webhook.id,
      payload: { type: "webhook.ping", webhook_id: webhook.id, sent_at: now },
      createdAt: now,
      dispatchedAt: now,
    }),
    ctx.db.insert(webhookDeliveries).values({
      id: deliveryId,
      organizationId: webhook.organizationId,
      webhookId: webhook.id,
      eventId,
      eventType: "webhook.ping",
      status: "pending",
      createdAt: now,
      updatedAt: now,
    }),
  ]);
  await attemptDelivery(ctx.env, deliveryId, { manual: true });
  return toDelivery(await readDelivery(ctx, webhook.id, deliveryId));
}
