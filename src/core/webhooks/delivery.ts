import { and, eq, inArray, isNull, lt, sql } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import { createDb, type Db } from "../../db/client";
import { events, webhookDeliveries, webhooks, type WebhookDeliveryRow, type WebhookRow } from "../../db/schema";
import type { Env } from "../../env";
import { requiredSecretRing } from "../../lib/crypto";
import { SQL_ID_TAIL, sqlIdHead } from "../../lib/ids";
import { openSecret, perpetualSignature, standardWebhookHeaders } from "./signing";
import { checkWebhookUrl } from "./url-guard";
import { allowsLocalHttp } from "./webhooks";

export const WEBHOOK_EVENT_MESSAGE = "webhook.event";
export const WEBHOOK_DELIVERY_MESSAGE = "webhook.delivery";

/** Reference 001: 5 attempts over about 14 hours. Seconds after the attempt that failed. */
export const RETRY_SCHEDULE_SECONDS = [10 * 60, 60 * 60, 3 * 60 * 60, 10 * 60 * 60] as const;
export const MAX_ATTEMPTS = RETRY_SCHEDULE_SECONDS.length + 1;
/** Queues refuse longer delays. */
const MAX_DELAY_SECONDS = 12 * 60 * 60;
export const DELIVERY_TIMEOUT_MS = 15_000;
const RESPONSE_EXCERPT_BYTES = 4096;
const SEND_LEASE_MS = 60_000;
/** A subscription whose every delivery has failed for this long is disabled. */
export const FAILING_DISABLE_MS = 5 * 24 * 60 * 60 * 1000;
export const DELIVERY_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
const USER_AGENT = "Greenlight-Webhooks/1";

/** A claim older than this without a send is taken to have died with its flush. */
const CLAIM_TIMEOUT_MS = 60_000;

/**
 * Sends events written to the outbox but not yet to the queue, oldest first. Called after
 * requests that write events, at the end of a background ingest, and by the cron. Each flush
 * first claims its events in one statement, so concurrent flushes (one per write request under
 * load) do not send the same events; a claim whose send never happened (the flush died, or the
 * send failed) is taken over after a minute, so no event is lost.
 */
export async function flushOutbox(env: Env, options: { batches?: number; now?: () => Date } = {}): Promise<number> {
  const db = createDb(env.DB);
  const clock = options.now ?? (() => new Date());
  let sent = 0;
  for (let i = 0; i < (options.batches ?? 10); i++) {
    const now = clock();
    const stale = new Date(now.getTime() - CLAIM_TIMEOUT_MS).toISOString();
    // Only events some active subscription wants go to the queue (fanOutEvent's match, read at
    // the claim): in an organization without webhooks, or for a type nobody subscribed to, an
    // event costs no queue message, consumer invocation or fan-out query. A subscription made
    // later gets later events, as it would have anyway.
    const rows = await db.all<{ id: string; wanted: number }>(
      sql`UPDATE events SET claimed_at = ${now.toISOString()}
        WHERE number IN (
          SELECT number FROM events
          WHERE dispatched_at IS NULL AND (claimed_at IS NULL OR claimed_at < ${stale})
          ORDER BY number LIMIT 100)
        RETURNING id, (events.type <> 'webhook.ping' AND EXISTS (
          SELECT 1 FROM webhooks w
          WHERE w.organization_id = events.organization_id AND w.is_active = 1
            AND (w.project_id IS NULL OR w.project_id = events.project_id)
            AND EXISTS (SELECT 1 FROM json_each(w.events) t WHERE t.value = events.type))) AS wanted`,
    );
    const claimed = rows.map((row) => row.id);
    if (claimed.length === 0) break;
    const wanted = rows.filter((row) => row.wanted === 1).map((row) => row.id);
    if (wanted.length > 0) await env.WEBHOOKS.sendBatch(wanted.map((id) => ({ body: { type: WEBHOOK_EVENT_MESSAGE, event_id: id } })));
    // One JSON parameter for the ids: D1 binds at most 100 parameters per statement.
    await db.run(sql`UPDATE events SET dispatched_at = ${clock().toISOString()} WHERE id IN (SELECT value FROM json_each(${JSON.stringify(claimed)}))`);
    sent += claimed.length;
    if (claimed.length < 100) break;
  }
  return sent;
}

/**
 * Fans one event out: a delivery for every active subscription of its organization (and its
 * project, or organization-wide) that names its type, then a message per delivery. The
 * deliveries are unique per event and subscription, so a repeated message adds none.
 */
export async function fanOutEvent(env: Env, eventId: string): Promise<number> {
  const db = createDb(env.DB);
  const now = new Date().toISOString();
  const [, created] = await batchAll(db, [
    sql`INSERT INTO webhook_deliveries (id, organization_id, webhook_id, event_id, event_type, status, created_at, updated_at)
      SELECT ${sqlIdHead("whd", Date.parse(now))} || ${sql.raw(SQL_ID_TAIL)}, e.organization_id, w.id, e.id, e.type, 'pending', ${now}, ${now}
      FROM events e
      JOIN webhooks w ON w.organization_id = e.organization_id AND w.is_active = 1
        AND (w.project_id IS NULL OR w.project_id = e.project_id)
        AND EXISTS (SELECT 1 FROM json_each(w.events) t WHERE t.value = e.type)
      WHERE e.id = ${eventId} AND e.type <> 'webhook.ping'
      ON CONFLICT (webhook_id, event_id) DO NOTHING`,
    sql`SELECT id FROM webhook_deliveries WHERE event_id = ${eventId} AND status = 'pending' AND attempts = 0`,
  ]);
  const ids = ((created?.results ?? []) as { id: string }[]).map((r) => r.id);
  if (ids.length > 0) await env.WEBHOOKS.sendBatch(ids.map((id) => ({ body: { type: WEBHOOK_DELIVERY_MESSAGE, delivery_id: id } })));
  return ids.length;
}

export type AttemptOutcome =
  /** Nothing (more) to do for this message: delivered, failed for good, or gone. */
  | { kind: "done" }
  /** Try again after this long (the message is retried with this delay). */
  | { kind: "retry"; delaySeconds: number }
  /** Failed its last attempt: the message goes on to the dead-letter queue. */
  | { kind: "exhausted" };

interface SendResult {
  ok: boolean;
  status: number | null;
  durationMs: number;
  excerpt: string | null;
  error: string | null;
  retryAfterSeconds: number | null;
}

/** Reads at most RESPONSE_EXCERPT_BYTES of a body and drops the rest. */
async function excerptOf(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < RESPONSE_EXCERPT_BYTES) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const bytes = new Uint8Array(Math.min(size, RESPONSE_EXCERPT_BYTES));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.byteLength - at);
    bytes.set(part, at);
    at += part.byteLength;
    if (at >= bytes.byteLength) break;
  }
  return new TextDecoder().decode(bytes);
}

/** Retry-After as seconds or an HTTP date; null when absent or unreadable. */
function retryAfterOf(response: Response): number | null {
  const value = response.headers.get("retry-after");
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** The body every attempt of a delivery sends, byte for byte. */
export function deliveryBody(event: { id: string; type: string; createdAt: string; payload: Record<string, unknown> }): string {
  const { type: _type, ...data } = event.payload;
  return JSON.stringify({ id: event.id, type: event.type, created_at: event.createdAt, ...data });
}

async function send(env: Env, webhook: WebhookRow, delivery: WebhookDeliveryRow, body: string, now: Date): Promise<SendResult> {
  const started = Date.now();
  const checked = checkWebhookUrl(webhook.url, { allowLocalHttp: allowsLocalHttp(env) });
  if (!checked.ok) return { ok: false, status: null, durationMs: 0, excerpt: null, error: `Not sent: ${checked.reason}`, retryAfterSeconds: null };
  const ring = requiredSecretRing(env, "webhook secrets cannot be opened");
  const secrets = [await openSecret(ring, webhook.secretSealed)];
  if (webhook.previousSecretSealed && webhook.previousSecretExpiresAt && webhook.previousSecretExpiresAt > now.toISOString()) {
    secrets.push(await openSecret(ring, webhook.previousSecretSealed));
  }
  const timestamp = Math.floor(now.getTime() / 1000);
  const headers = new Headers(webhook.headers);
  headers.set("Content-Type", "application/json");
  headers.set("User-Agent", USER_AGENT);
  headers.set("X-Perpetual-Signature", await perpetualSignature(secrets[0]!, body));
  // webhook-id is the delivery's id: the same on every attempt, so receivers can deduplicate.
  for (const [name, value] of Object.entries(await standardWebhookHeaders(secrets, delivery.id, timestamp, body))) headers.set(name, value);
  try {
    const response = await fetch(checked.url.toString(), {
      method: "POST",
      headers,
      body,
      // A redirect could lead anywhere, a private address included; it counts as a failure.
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    const excerpt = await excerptOf(response);
    const ok = response.status >= 200 && response.status < 300;
    return {
      ok,
      status: response.status,
      durationMs: Date.now() - started,
      excerpt,
      error: ok ? null : response.status >= 300 && response.status < 400 ? `Redirected (${response.status}); redirects are not followed.` : `Answered ${response.status}.`,
      retryAfterSeconds: response.status === 429 || response.status === 503 ? retryAfterOf(response) : null,
    };
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    return {
      ok: false,
      status: null,
      durationMs: Date.now() - started,
      excerpt: null,
      error: timedOut ? `No answer within ${DELIVERY_TIMEOUT_MS / 1000} s.` : `Could not connect: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500),
      retryAfterSeconds: null,
    };
  }
}

/** Delay before the next attempt after `attempts` failures, with ±10 % jitter, never over 12 h. */
export function nextDelaySeconds(attempts: number, retryAfterSeconds: number | null, random: () => number = Math.random): number {
  const base = RETRY_SCHEDULE_SECONDS[Math.min(attempts, RETRY_SCHEDULE_SECONDS.length) - 1] ?? RETRY_SCHEDULE_SECONDS[0];
  const jittered = Math.round(base * (0.9 + 0.2 * random()));
  return Math.min(Math.max(jittered, retryAfterSeconds ?? 0), MAX_DELAY_SECONDS);
}

/**
 * One attempt of one delivery. Only one consumer sends a delivery at a time (a lease in D1), and
 * a delivery that already succeeded is never sent again, however often its message arrives.
 * `manual` marks a redelivery asked for through the API: it is attempted whatever its state.
 */
export async function attemptDelivery(env: Env, deliveryId: string, options: { manual?: boolean; now?: () => Date } = {}): Promise<AttemptOutcome> {
  const db = createDb(env.DB);
  const clock = options.now ?? (() => new Date());
  const now = clock();
  // "sending" is taken only once its lease has lapsed: the attempt that held it died before
  // recording how it went, and would otherwise be retried every second until the dead-letter queue.
  const states = options.manual ? ["pending", "sending", "retrying", "succeeded", "failed"] : ["pending", "sending", "retrying"];
  const delivery = await db
    .update(webhookDeliveries)
    .set({ status: "sending", leaseUntil: new Date(now.getTime() + SEND_LEASE_MS).toISOString(), updatedAt: now.toISOString() })
    .where(
      and(
        eq(webhookDeliveries.id, deliveryId),
        inArray(webhookDeliveries.status, states),
        sql`(${webhookDeliveries.leaseUntil} IS NULL OR ${webhookDeliveries.leaseUntil} < ${now.toISOString()})`,
      ),
    )
    .returning()
    .get();
  if (!delivery) {
    const current = await db.select({ status: webhookDeliveries.status, leaseUntil: webhookDeliveries.leaseUntil }).from(webhookDeliveries).where(eq(webhookDeliveries.id, deliveryId)).get();
    if (current?.status === "sending" && current.leaseUntil) {
      return { kind: "retry", delaySeconds: Math.max(1, Math.ceil((Date.parse(current.leaseUntil) - now.getTime()) / 1000)) };
    }
    return { kind: "done" };
  }
  // One round trip for both, each scoped to the delivery's organization.
  const [webhookRows, eventRows] = await db.batch([
    db.select().from(webhooks).where(and(eq(webhooks.id, delivery.webhookId), eq(webhooks.organizationId, delivery.organizationId))),
    db.select().from(events).where(and(eq(events.id, delivery.eventId), eq(events.organizationId, delivery.organizationId))),
  ]);
  const webhook = webhookRows[0];
  const event = eventRows[0];
  if (!webhook || !event || (!webhook.isActive && !options.manual)) {
    await finish(db, delivery, { status: "failed", error: !webhook || !event ? "The subscription or the event no longer exists." : "The subscription is disabled.", now });
    return { kind: "done" };
  }

  const body = deliveryBody({ id: event.id, type: event.type, createdAt: event.createdAt, payload: event.payload });
  const result = await send(env, webhook, delivery, body, now);
  const attempts = delivery.attempts + 1;
  const record = {
    attempts,
    lastStatusCode: result.status,
    lastDurationMs: result.durationMs,
    lastResponse: result.excerpt,
    lastError: result.error,
  };

  if (result.ok) {
    await batchAll(db, [
      db.update(webhookDeliveries).set({ ...record, status: "succeeded", leaseUntil: null, nextAttemptAt: null, completedAt: now.toISOString(), updatedAt: now.toISOString() }).where(eq(webhookDeliveries.id, delivery.id)),
      db.update(webhooks).set({ failingSince: null }).where(eq(webhooks.id, webhook.id)),
    ]);
    return { kind: "done" };
  }

  const statements = [];
  let disabled: string | null = null;
  if (result.status === 410) disabled = "gone";
  else if (webhook.failingSince && Date.parse(webhook.failingSince) <= now.getTime() - FAILING_DISABLE_MS) disabled = "failing";
  if (disabled) {
    statements.push(db.update(webhooks).set({ isActive: false, disabledReason: disabled, disabledAt: now.toISOString(), updatedAt: now.toISOString() }).where(eq(webhooks.id, webhook.id)));
  } else if (!webhook.failingSince) {
    statements.push(db.update(webhooks).set({ failingSince: now.toISOString() }).where(and(eq(webhooks.id, webhook.id), isNull(webhooks.failingSince))));
  }
  // A URL the guard refuses, a 410 or a disabled subscription will not get better by waiting.
  const refused = result.status === null && (result.error?.startsWith("Not sent") ?? false);
  const final = options.manual === true || disabled !== null || refused || attempts >= MAX_ATTEMPTS;
  const delaySeconds = final ? 0 : nextDelaySeconds(attempts, result.retryAfterSeconds);
  statements.push(
    db
      .update(webhookDeliveries)
      .set({
        ...record,
        status: final ? "failed" : "retrying",
        leaseUntil: null,
        nextAttemptAt: final ? null : new Date(now.getTime() + delaySeconds * 1000).toISOString(),
        completedAt: final ? now.toISOString() : null,
        updatedAt: now.toISOString(),
      })
      .where(eq(webhookDeliveries.id, delivery.id)),
  );
  await batchAll(db, statements);
  if (!final) return { kind: "retry", delaySeconds };
  return attempts >= MAX_ATTEMPTS && !options.manual ? { kind: "exhausted" } : { kind: "done" };
}

async function finish(db: Db, delivery: WebhookDeliveryRow, outcome: { status: "failed"; error: string; now: Date }): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({ status: outcome.status, lastError: outcome.error, leaseUntil: null, nextAttemptAt: null, completedAt: outcome.now.toISOString(), updatedAt: outcome.now.toISOString() })
    .where(eq(webhookDeliveries.id, delivery.id));
}

/** Cron: forgets deliveries older than 30 days. */
export async function purgeOldDeliveries(env: Env, now: Date): Promise<number> {
  const db = createDb(env.DB);
  const deleted = await db
    .delete(webhookDeliveries)
    .where(lt(webhookDeliveries.createdAt, new Date(now.getTime() - DELIVERY_RETENTION_MS).toISOString()))
    .returning({ id: webhookDeliveries.id });
  return deleted.length;
}
