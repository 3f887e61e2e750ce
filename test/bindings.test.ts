import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker, { BuildQueue, RateLimiter } from "../src/index";

describe("declared bindings are real and wired", () => {
  it("R2 ARTIFACTS stores and reads back an object", async () => {
    await env.ARTIFACTS.put("probe/hello.txt", "hello");
    const obj = await env.ARTIFACTS.get("probe/hello.txt");
    expect(await obj?.text()).toBe("hello");
  });

  it("the Durable Object classes are exported, bound and SQLite-backed", async () => {
    const limiter = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName("key_probe"));
    await runInDurableObject(limiter, async (instance, state) => {
      expect(instance).toBeInstanceOf(RateLimiter);
      expect(state.storage.sql.exec("SELECT 1 AS one").one().one).toBe(1);
    });
    expect(await limiter.hit("runs_read", 5, 60)).toMatchObject({ allowed: true, limit: 5, remaining: 4 });
    const queue = env.BUILD_QUEUE.get(env.BUILD_QUEUE.idFromName("proj_probe"));
    await runInDurableObject(queue, (instance) => {
      expect(instance).toBeInstanceOf(BuildQueue);
    });
    expect(await queue.size()).toBe(0);
  });

  it("the WEBHOOKS producer accepts messages", async () => {
    const sent = await env.WEBHOOKS.send({ type: "probe" });
    expect(sent).toHaveProperty("metadata");
  });

  it("the queue consumer retries messages nobody handles yet, so they reach the dead-letter queue instead of vanishing", async () => {
    const batch = createMessageBatch("greenlight-webhooks", [
      { id: "m1", timestamp: new Date(), attempts: 1, body: { type: "unknown.kind" } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.outcome).toBe("ok");
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(["m1"]);
    expect(result.explicitAcks).toEqual([]);
  });
});
