import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { fanOutEvent } from "../../src/core/webhooks/delivery";
import { newId } from "../../src/lib/ids";
import { call } from "../helpers/http";
import { createTenant, type Tenant } from "../helpers/factories";
import { receiver, received } from "../helpers/receiver";

/**
 * The webhook queue's consumer, driven with hand-made batches: each message is acknowledged or
 * retried on its own, so a fault in one (D1 failing for its delivery, or for everything from some
 * point on) sends only the rest back; running what came back, or the whole batch again, repeats no
 * delivery that was made and adds no delivery row.
 */

const eventIdsReceived = async (key: string) => (await received(key)).map((r) => JSON.parse(r.body).id as string).sort();

async function subscribe(t: Tenant, url: string): Promise<string> {
  const res = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url, events: ["build.created.v1"] } });
  expect(res.status, res.text).toBe(201);
  return res.body.id;
}

/** An event already marked dispatched, so only these tests' messages deliver it (not the real queue). */
async function event(t: Tenant): Promise<string> {
  const id = newId("evt");
  const now = new Date().toISOString();
  await env.DB.prepare("INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at, dispatched_at) VALUES (?, ?, ?, 'build.created.v1', 'bld_x', ?, ?, ?)")
    .bind(id, t.organization.id, t.project.id, JSON.stringify({ type: "build.created.v1", build: { build_id: "bld_x", name: id } }), now, now)
    .run();
  return id;
}

/** Fans an event out with the real code; the delivery messages it would send are handed back instead. */
async function fanOut(eventId: string): Promise<Map<string, string>> {
  const sent: string[] = [];
  const recording = { ...env, WEBHOOKS: { sendBatch: async (messages: { body: { delivery_id: string } }[]) => void sent.push(...messages.map((m) => m.body.delivery_id)) } };
  await fanOutEvent(recording as never, eventId);
  const byHook = new Map<string, string>();
  for (const id of sent) {
    const row = await env.DB.prepare("SELECT webhook_id FROM webhook_deliveries WHERE id = ?").bind(id).first<{ webhook_id: string }>();
    byHook.set(row!.webhook_id, id);
  }
  return byHook;
}

async function consume(messages: { id: string; deliveryId: string; attempts?: number }[], runEnv: unknown = env) {
  const batch = createMessageBatch(
    "greenlight-webhooks",
    messages.map((m) => ({ id: m.id, timestamp: new Date(), attempts: m.attempts ?? 1, body: { type: "webhook.delivery", delivery_id: m.deliveryId } })),
  );
  const ctx = createExecutionContext();
  await worker.queue!(batch as never, runEnv as never);
  const result = await getQueueResult(batch, ctx);
  return { acked: [...result.explicitAcks].sort(), retried: result.retryMessages.map((m) => m.msgId).sort() };
}

interface DeliveryRow {
  id: string;
  status: string;
  attempts: number;
  lease_until: string | null;
}

async function deliveryRows(t: Tenant): Promise<DeliveryRow[]> {
  return (await env.DB.prepare("SELECT id, status, attempts, lease_until FROM webhook_deliveries WHERE organization_id = ? ORDER BY id").bind(t.organization.id).all<DeliveryRow>()).results;
}

/** Lets a delivery's lease run out: the only way in a test is to move it into the past. */
async function lapse(deliveryId: string): Promise<void> {
  await env.DB.prepare("UPDATE webhook_deliveries SET lease_until = ? WHERE id = ?").bind(new Date(Date.now() - 1000).toISOString(), deliveryId).run();
}

/**
 * env with D1 failing where `fails` says: for a single statement (run, all, first, raw) or a whole
 * batch, given the parameters each statement was bound with. The real binding does everything else.
 */
function failingD1(fails: (kind: "statement" | "batch", params: unknown[][]) => boolean): typeof env {
  const real = env.DB;
  const underlying = new WeakMap<object, { statement: D1PreparedStatement; params: unknown[] }>();
  const wrap = (statement: D1PreparedStatement, params: unknown[]): D1PreparedStatement => {
    const proxy: D1PreparedStatement = new Proxy(statement, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        if (typeof value !== "function") return value;
        if (prop === "bind") return (...args: unknown[]) => wrap((value as (...a: unknown[]) => D1PreparedStatement).apply(target, args), args);
        if (prop === "run" || prop === "all" || prop === "first" || prop === "raw") {
          return (...args: unknown[]) => {
            if (fails("statement", [params])) return Promise.reject(new Error("D1_ERROR: injected fault"));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    underlying.set(proxy, { statement, params });
    return proxy;
  };
  const db = new Proxy(real, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrap(target.prepare(query), []);
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          const unwrapped = statements.map((s) => underlying.get(s) ?? { statement: s, params: [] });
          if (fails("batch", unwrapped.map((u) => u.params))) return Promise.reject(new Error("D1_ERROR: injected fault"));
          return target.batch(unwrapped.map((u) => u.statement));
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...env, DB: db };
}

const mentions = (params: unknown[][], value: string) => params.some((p) => p.includes(value));

describe("a batch of webhook deliveries with a fault in one message", () => {
  it("acknowledges the delivered messages and retries only the failed one; running it again, or the whole batch, delivers nothing twice", async () => {
    const t = await createTenant();
    const [ra, rb] = [receiver("ok", "queues"), receiver("ok", "queues")];
    const [ha, hb] = [await subscribe(t, ra.url), await subscribe(t, rb.url)];
    const [e1, e2] = [await event(t), await event(t)];
    const [d1, d2] = [await fanOut(e1), await fanOut(e2)];
    const [a1, b1, a2, b2] = [d1.get(ha)!, d1.get(hb)!, d2.get(ha)!, d2.get(hb)!];
    expect(new Set([a1, b1, a2, b2]).size).toBe(4);

    // D1 fails for everything concerning delivery b1, from its first statement on.
    const broken = failingD1((_kind, params) => mentions(params, b1));
    const messages = [
      { id: "m1", deliveryId: a1 },
      { id: "m2", deliveryId: b1 },
      { id: "m3", deliveryId: a2 },
      { id: "m4", deliveryId: b2 },
      // The queue delivers at least once: the same delivery twice in a batch.
      { id: "m5", deliveryId: a1 },
    ];
    const first = await consume(messages, broken);
    expect(first).toEqual({ acked: ["m1", "m3", "m4", "m5"], retried: ["m2"] });
    expect(await eventIdsReceived(ra.key)).toEqual([e1, e2].sort());
    expect(await eventIdsReceived(rb.key)).toEqual([e2]);
    const byId = (rows: DeliveryRow[]) => Object.fromEntries(rows.map((r) => [r.id, [r.status, r.attempts]]));
    expect(byId(await deliveryRows(t))).toEqual({ [a1]: ["succeeded", 1], [a2]: ["succeeded", 1], [b2]: ["succeeded", 1], [b1]: ["pending", 0] });

    // The queue brings back only m2, D1 working again.
    expect(await consume([{ id: "m2", deliveryId: b1, attempts: 2 }])).toEqual({ acked: ["m2"], retried: [] });
    expect(await eventIdsReceived(rb.key)).toEqual([e1, e2].sort());
    // The whole batch again (a consumer that died before its acks reached the queue): nothing is sent.
    expect(await consume(messages.map((m) => ({ ...m, attempts: 2 })))).toEqual({ acked: ["m1", "m2", "m3", "m4", "m5"], retried: [] });
    expect(await received(ra.key)).toHaveLength(2);
    expect(await received(rb.key)).toHaveLength(2);
    const rows = await deliveryRows(t);
    expect(rows).toHaveLength(4);
    expect(rows.every((r) => r.status === "succeeded" && r.attempts === 1)).toBe(true);
    // Fanning the events out again adds no delivery.
    expect((await fanOut(e1)).size).toBe(0);
    expect((await fanOut(e2)).size).toBe(0);
  });

  it("acknowledges what was done before D1 went down mid-batch; the rest come back, and a delivery left holding its lease is taken over once it lapses", async () => {
    const t = await createTenant();
    const hooks = [receiver("ok", "queues"), receiver("ok", "queues"), receiver("ok", "queues"), receiver("ok", "queues")];
    const ids = [];
    for (const r of hooks) ids.push(await subscribe(t, r.url));
    const e = await event(t);
    const byHook = await fanOut(e);
    const deliveries = ids.map((id) => byHook.get(id)!);

    // After two deliveries are recorded, every D1 batch fails: the next message's claim (a single
    // statement) lands, then the read of its subscription and event (a batch) fails, leaving the
    // delivery leased to an attempt that will never finish.
    let recorded = 0;
    const broken = failingD1((kind, params) => {
      if (kind !== "batch") return false;
      if (recorded >= 2) return true;
      if (params.some((p) => p.includes("succeeded"))) recorded++;
      return false;
    });
    const messages = deliveries.map((d, i) => ({ id: `m${i + 1}`, deliveryId: d }));
    expect(await consume(messages, broken)).toEqual({ acked: ["m1", "m2"], retried: ["m3", "m4"] });
    expect((await Promise.all(hooks.map((h) => received(h.key)))).map((r) => r.length)).toEqual([1, 1, 0, 0]);
    const leased = (await deliveryRows(t)).filter((r) => r.status === "sending");
    expect(leased.map((r) => r.id).sort()).toEqual([deliveries[2], deliveries[3]].sort());
    expect(leased.every((r) => Date.parse(r.lease_until!) > Date.now())).toBe(true);

    // Brought back while the leases hold: still nobody sends.
    expect(await consume(messages.slice(2).map((m) => ({ ...m, attempts: 2 })))).toEqual({ acked: [], retried: ["m3", "m4"] });
    expect((await Promise.all(hooks.map((h) => received(h.key)))).map((r) => r.length)).toEqual([1, 1, 0, 0]);

    // The leases lapse: the next delivery of each message takes its delivery over and sends it once.
    await lapse(deliveries[2]!);
    await lapse(deliveries[3]!);
    expect(await consume(messages.slice(2).map((m) => ({ ...m, attempts: 3 })))).toEqual({ acked: ["m3", "m4"], retried: [] });
    expect(await consume(messages.map((m) => ({ ...m, attempts: 4 })))).toEqual({ acked: ["m1", "m2", "m3", "m4"], retried: [] });
    expect((await Promise.all(hooks.map((h) => received(h.key)))).map((r) => r.length)).toEqual([1, 1, 1, 1]);
    const rows = await deliveryRows(t);
    expect(rows).toHaveLength(4);
    expect(rows.map((r) => [r.status, r.attempts])).toEqual(Array.from({ length: 4 }, () => ["succeeded", 1]));
  });

  it("does not send again while a delivery whose record failed after the receiver answered holds its lease; after it lapses, resends with the same webhook-id and records one success", async () => {
    const t = await createTenant();
    const r = receiver("ok", "queues");
    const hook = await subscribe(t, r.url);
    const e = await event(t);
    const delivery = (await fanOut(e)).get(hook)!;
    // The batch recording the attempt fails: the receiver has the event, D1 does not know it.
    const broken = failingD1((kind, params) => kind === "batch" && mentions(params, delivery) && params.some((p) => p.includes("succeeded")));
    expect(await consume([{ id: "m1", deliveryId: delivery }], broken)).toEqual({ acked: [], retried: ["m1"] });
    expect(await received(r.key)).toHaveLength(1);
    expect((await deliveryRows(t))[0]).toMatchObject({ status: "sending", attempts: 0 });

    expect(await consume([{ id: "m1", deliveryId: delivery, attempts: 2 }])).toEqual({ acked: [], retried: ["m1"] });
    expect(await received(r.key)).toHaveLength(1);

    await lapse(delivery);
    expect(await consume([{ id: "m1", deliveryId: delivery, attempts: 3 }])).toEqual({ acked: ["m1"], retried: [] });
    // At least once: the receiver may see a delivery twice, always under the one webhook-id.
    const got = await received(r.key);
    expect(got).toHaveLength(2);
    expect(got[1]!.headers["webhook-id"]).toBe(got[0]!.headers["webhook-id"]);
    expect(got[0]!.headers["webhook-id"]).toBe(delivery);
    expect(await deliveryRows(t)).toEqual([expect.objectContaining({ id: delivery, status: "succeeded", attempts: 1, lease_until: null })]);
    // Recorded as a success, it is never sent again.
    expect(await consume([{ id: "m1", deliveryId: delivery, attempts: 4 }])).toEqual({ acked: ["m1"], retried: [] });
    expect(await received(r.key)).toHaveLength(2);
  });
});
