import { log } from "../lib/log";
import { INGEST_MESSAGE } from "../core/ingest/ingests";
import { processIngest } from "../core/ingest/process";
import { WEBHOOK_DELIVERY_MESSAGE, WEBHOOK_EVENT_MESSAGE, attemptDelivery, fanOutEvent, flushOutbox } from "../core/webhooks/delivery";
import type { Env, QueueMessageBody } from "../env";
import { createDb } from "../db/client";
import { FLAKINESS_REFRESH_MESSAGE, handleFlakinessRefresh as refreshProjectFlakiness } from "../core/flakiness/refresh";

/** Seconds before a failed delivery is tried again: 2, 4, 8 … up to five minutes. */
function backoffSeconds(attempts: number): number {
  return Math.min(2 ** Math.max(attempts, 1), 300);
}

async function handleIngest(message: Message<QueueMessageBody>, env: Env): Promise<void> {
  const ingestId = message.body.ingest_id;
  if (typeof ingestId !== "string") {
    log.error("ingest message without ingest_id", { message_id: message.id });
    message.ack();
    return;
  }
  try {
    const outcome = await processIngest(env, ingestId);
    if (outcome.kind === "busy") message.retry({ delaySeconds: outcome.retryAfterSeconds });
    else message.ack();
    // The ingest's events (results submitted, failed tests) reach webhooks now, not at the next cron.
    if (outcome.kind === "done") await flushOutbox(env).catch(() => undefined);
  } catch (err) {
    // A fault of ours (D1, R2): the ingest resumes from its last committed chunk next time.
    log.error("ingest interrupted", { ingest_id: ingestId, attempts: message.attempts, message: String(err) });
    message.retry({ delaySeconds: backoffSeconds(message.attempts) });
  }
}

/** Refreshes a project's stale flakiness scores, a bounded page per message (it sends itself on). */
async function handleFlakinessRefresh(message: Message<QueueMessageBody>, env: Env): Promise<void> {
  const projectId = message.body.project_id;
  if (typeof projectId !== "string") return message.ack();
  try {
    await refreshProjectFlakiness(createDb(env.DB), env.INGESTS, projectId, new Date().toISOString());
    message.ack();
    // Flaky and quarantine events reach webhooks now, not at the next cron.
    await flushOutbox(env).catch(() => undefined);
  } catch (err) {
    log.error("flakiness refresh interrupted", { project_id: projectId, message: String(err) });
    message.retry({ delaySeconds: backoffSeconds(message.attempts) });
  }
}

/** Fans an event out to its subscriptions: one delivery message each. */
async function handleWebhookEvent(message: Message<QueueMessageBody>, env: Env): Promise<void> {
  const eventId = message.body.event_id;
  if (typeof eventId !== "string") return message.ack();
  try {
    await fanOutEvent(env, eventId);
    message.ack();
  } catch (err) {
    log.error("webhook fan-out failed", { event_id: eventId, message: String(err) });
    message.retry({ delaySeconds: backoffSeconds(message.attempts) });
  }
}

/**
 * One attempt of one delivery. A failed attempt is retried with the schedule's delay; after the
 * last one the message is retried once more, which the queue's max_retries turns into a move to
 * the dead-letter queue, while D1 already records the delivery as failed.
 */
async function handleWebhookDelivery(message: Message<QueueMessageBody>, env: Env): Promise<void> {
  const deliveryId = message.body.delivery_id;
  if (typeof deliveryId !== "string") return message.ack();
  try {
    const outcome = await attemptDelivery(env, deliveryId);
    if (outcome.kind === "retry") message.retry({ delaySeconds: outcome.delaySeconds });
    else if (outcome.kind === "exhausted") message.retry();
    else message.ack();
  } catch (err) {
    log.error("webhook delivery interrupted", { delivery_id: deliveryId, message: String(err) });
    message.retry({ delaySeconds: backoffSeconds(message.attempts) });
  }
}

/**
 * Dispatches queue messages by type. A message of a type nobody handles is retried and so ends
 * in the dead-letter queue instead of being dropped.
 */
export async function handleQueueBatch(batch: MessageBatch<QueueMessageBody>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    if (message.body?.type === INGEST_MESSAGE) {
      await handleIngest(message, env);
      continue;
    }
    if (message.body?.type === FLAKINESS_REFRESH_MESSAGE) {
      await handleFlakinessRefresh(message, env);
      continue;
    }
    if (message.body?.type === WEBHOOK_EVENT_MESSAGE) {
      await handleWebhookEvent(message, env);
      continue;
    }
    if (message.body?.type === WEBHOOK_DELIVERY_MESSAGE) {
      await handleWebhookDelivery(message, env);
      continue;
    }
    log.warn("no handler for message type", { queue: batch.queue, message_id: message.id, type: message.body?.type });
    message.retry();
  }
}
