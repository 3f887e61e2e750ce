import type { Env, QueueMessageBody } from "../env";

/**
 * Dispatches queue messages by type. No producer sends anything yet (webhook delivery and large
 * ingests arrive with their issues); a message of a type nobody handles is retried and so ends in
 * the dead-letter queue instead of being dropped.
 */
export async function handleQueueBatch(batch: MessageBatch<QueueMessageBody>, _env: Env): Promise<void> {
  for (const message of batch.messages) {
    console.warn(JSON.stringify({ level: "warn", queue: batch.queue, message_id: message.id, type: message.body?.type, note: "no handler for message type" }));
    message.retry();
  }
}
