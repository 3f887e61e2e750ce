import { createApp } from "./app";
import type { Env, QueueMessageBody } from "./env";
import { handleQueueBatch } from "./queues/consumer";
import { runHousekeeping } from "./scheduled/housekeeping";

export { RateLimiter } from "./durable-objects/rate-limiter";
export { BuildQueue } from "./durable-objects/build-queue";

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    await handleQueueBatch(batch, env);
  },
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(runHousekeeping(env, new Date(controller.scheduledTime)));
  },
} satisfies ExportedHandler<Env, QueueMessageBody>;
