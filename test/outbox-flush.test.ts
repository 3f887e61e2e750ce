import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { requestOutboxFlush } from "../src/http/outbox-flush";
import { call } from "./helpers/http";
import { createTenant } from "./helpers/factories";

/**
 * The outbox flush after writes is shared per isolate: while one runs, later writes ask it to go
 * round once more instead of starting their own (src/http/outbox-flush.ts). Whatever the overlap,
 * every event must reach the queue without waiting for the cron.
 */
describe("outbox flush after writes", () => {
  // First: the unit below needs the isolate's flush idle, which a real flush could still hold.
  it("runs one flush at a time per isolate; a request during it makes it go round once more", async () => {
    let release!: () => void;
    const calls: number[] = [];
    const started: Promise<unknown>[] = [];
    const flush = () => {
      calls.push(calls.length + 1);
      // The first round blocks until released; later rounds finish at once.
      return calls.length === 1 ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve();
    };
    const waitUntil = (p: Promise<unknown>) => started.push(p);
    requestOutboxFlush(env, waitUntil, flush);
    // Three more writes while the first flush runs: none starts its own, all ask for one more round.
    for (let i = 0; i < 3; i++) requestOutboxFlush(env, waitUntil, flush);
    expect(started).toHaveLength(1);
    expect(calls).toEqual([1]);
    release();
    await started[0];
    // One more round covered the three (their events may have been missed by the first claim).
    expect(calls).toEqual([1, 2]);
    // Idle again: the next write starts a flush of its own.
    requestOutboxFlush(env, waitUntil, flush);
    expect(started).toHaveLength(2);
    await started[1];
    expect(calls).toEqual([1, 2, 3]);
  });

  it("sends every event of 24 writes sent in waves, none left for the cron", async () => {
    const t = await createTenant();
    // Waves of 4 concurrent writes, each sent as soon as the last answered. Whether a wave lands
    // during an earlier wave's flush depends on timing this test does not control: the unit test
    // above is what proves a write during a flush is covered (it fails without the extra round).
    const created = [];
    for (let wave = 0; wave < 6; wave++) {
      created.push(
        ...(await Promise.all(
          Array.from({ length: 4 }, (_, i) =>
            call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id, run_title: `flush ${wave}.${i}` } }),
          ),
        )),
      );
    }
    expect(created.map((r) => r.status)).toEqual(Array(24).fill(201));
    const pending = async () =>
      (
        await env.DB.prepare("SELECT count(*) AS n FROM events WHERE organization_id = ? AND dispatched_at IS NULL")
          .bind(t.organization.id)
          .first<{ n: number }>()
      )?.n;
    const total = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE organization_id = ?").bind(t.organization.id).first<{ n: number }>();
    expect(total?.n).toBeGreaterThanOrEqual(24);
    const deadline = Date.now() + 10_000;
    while ((await pending()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await pending()).toBe(0);
  });
});
