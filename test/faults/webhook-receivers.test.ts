import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { DELIVERY_TIMEOUT_MS, RETRY_SCHEDULE_SECONDS, fanOutEvent } from "../../src/core/webhooks/delivery";
import { newId } from "../../src/lib/ids";
import { call } from "../helpers/http";
import { createTenant, type Tenant } from "../helpers/factories";
import { receiver, received } from "../helpers/receiver";

/**
 * What a receiver's answer does to a delivery (reference 001: 5 attempts over about 14 hours, a
 * delivery log): 500s are retried on the schedule and then fail for good; an answer later than the
 * 15 s timeout is a failure; a 302 is a failure and not followed; 410 disables the subscription;
 * 429 and 503 wait at least as long as Retry-After asks. A delivery succeeds at most once, however
 * often its message comes back. Each message is handed to the Worker's queue handler directly, so
 * the tests need not wait out the queue's delays.
 */

async function subscribe(t: Tenant, url: string): Promise<string> {
  const res = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url, events: ["build.created.v1"] } });
  expect(res.status, res.text).toBe(201);
  return res.body.id;
}

/** A delivery of a fresh event to the subscription, made by the real fan-out; its message is ours to deliver. */
async function newDelivery(t: Tenant, hook: string): Promise<string> {
  const eventId = newId("evt");
  const now = new Date().toISOString();
  // Marked dispatched: the outbox leaves it to this test.
  await env.DB.prepare("INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at, dispatched_at) VALUES (?, ?, ?, 'build.created.v1', 'bld_x', ?, ?, ?)")
    .bind(eventId, t.organization.id, t.project.id, JSON.stringify({ type: "build.created.v1", build: { build_id: "bld_x" } }), now, now)
    .run();
  const sent: string[] = [];
  const recording = { ...env, WEBHOOKS: { sendBatch: async (messages: { body: { delivery_id: string } }[]) => void sent.push(...messages.map((m) => m.body.delivery_id)) } };
  await fanOutEvent(recording as never, eventId);
  const rows = await env.DB.prepare("SELECT id FROM webhook_deliveries WHERE event_id = ? AND webhook_id = ?").bind(eventId, hook).all<{ id: string }>();
  expect(rows.results).toHaveLength(1);
  expect(sent).toContain(rows.results[0]!.id);
  return rows.results[0]!.id;
}

let messages = 0;
/** One delivery of the delivery's message to the Worker's queue handler: acked or retried. */
async function deliver(deliveryId: string, attempts = 1): Promise<"acked" | "retried"> {
  const id = `msg${++messages}`;
  const batch = createMessageBatch("greenlight-webhooks", [{ id, timestamp: new Date(), attempts, body: { type: "webhook.delivery", delivery_id: deliveryId } }]);
  const ctx = createExecutionContext();
  await worker.queue!(batch as never, env);
  const result = await getQueueResult(batch, ctx);
  expect(result.explicitAcks.length + result.retryMessages.length).toBe(1);
  return result.explicitAcks.includes(id) ? "acked" : "retried";
}

async function logEntry(t: Tenant, hook: string, deliveryId: string): Promise<any> {
  const res = await call(`/api/v1/webhooks/${hook}/deliveries?limit=100`, { key: t.key });
  expect(res.status, res.text).toBe(200);
  const entry = res.body.data.find((d: any) => d.id === deliveryId);
  expect(entry, `delivery ${deliveryId} in the log`).toBeTruthy();
  return entry;
}

/** Seconds from the attempt that failed to the next, as the log records them. */
const delayOf = (d: any) => (Date.parse(d.next_attempt_at) - Date.parse(d.updated_at)) / 1000;

/**
 * The receiver's real answer with headers added for URLs under `behaviour` (the test receiver has
 * no 429 with Retry-After): everything else goes out and comes back untouched.
 */
async function withAddedHeaders<T>(behaviour: string, headers: () => Record<string, string>, run: () => Promise<T>): Promise<T> {
  const real = globalThis.fetch;
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await real(input, init);
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (!url.includes(`/${behaviour}/`)) return response;
    const merged = new Headers(response.headers);
    for (const [name, value] of Object.entries(headers())) merged.set(name, value);
    return new Response(response.body, { status: response.status, headers: merged });
  }) as typeof fetch;
  try {
    return await run();
  } finally {
    globalThis.fetch = real;
  }
}

describe("a receiver answering 500", () => {
  it("gets 5 attempts on reference 001's schedule (about 14 hours), then the delivery fails and its message goes on to the dead-letter queue", async () => {
    const t = await createTenant();
    const r = receiver("status-500", "receivers");
    const hook = await subscribe(t, r.url);
    const d = await newDelivery(t, hook);
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      expect(await deliver(d, attempt)).toBe("retried");
      const entry = await logEntry(t, hook, d);
      expect(entry).toMatchObject({ status: "retrying", attempts: attempt, last_status_code: 500, last_response: "answered 500", completed_at: null });
      const base = RETRY_SCHEDULE_SECONDS[attempt - 1]!;
      expect(delayOf(entry)).toBeGreaterThanOrEqual(Math.floor(base * 0.9));
      expect(delayOf(entry)).toBeLessThanOrEqual(Math.ceil(base * 1.1));
      delays.push(delayOf(entry));
    }
    expect(RETRY_SCHEDULE_SECONDS).toEqual([600, 3600, 10800, 36000]);
    const hours = delays.reduce((a, b) => a + b, 0) / 3600;
    expect(hours).toBeGreaterThan(12.5);
    expect(hours).toBeLessThan(15.6);
    // The fifth attempt is the last: failed, and the message retried once more, past max_retries.
    expect(await deliver(d, 5)).toBe("retried");
    expect(await logEntry(t, hook, d)).toMatchObject({ status: "failed", attempts: 5, next_attempt_at: null, last_status_code: 500 });
    expect(await received(r.key)).toHaveLength(5);
    // A copy of the message arriving after that sends nothing.
    expect(await deliver(d, 6)).toBe("acked");
    expect(await received(r.key)).toHaveLength(5);
  });
});

describe("a receiver that does not answer", () => {
  it("is a failed attempt once the delivery timeout passes, retried on the schedule", async () => {
    const t = await createTenant();
    const r = receiver("slow", "receivers");
    const hook = await subscribe(t, r.url);
    const d = await newDelivery(t, hook);
    // The receiver answers after 20 s, past the 15 s timeout. Waiting 15 s is not needed to see
    // what the timeout does: the delivery's own AbortSignal.timeout(15 s) is made to fire after
    // 0.5 s, so the real fetch to the real receiver is aborted as it would be at 15 s.
    const timeout = AbortSignal.timeout;
    const shortened = (ms: number) => timeout.call(AbortSignal, ms === DELIVERY_TIMEOUT_MS ? 500 : ms);
    Object.defineProperty(AbortSignal, "timeout", { value: shortened, configurable: true, writable: true });
    let outcome;
    const started = Date.now();
    try {
      outcome = await deliver(d);
    } finally {
      Object.defineProperty(AbortSignal, "timeout", { value: timeout, configurable: true, writable: true });
    }
    expect(Date.now() - started).toBeLessThan(DELIVERY_TIMEOUT_MS);
    expect(outcome).toBe("retried");
    const entry = await logEntry(t, hook, d);
    expect(entry).toMatchObject({ status: "retrying", attempts: 1, last_status_code: null, last_error: `No answer within ${DELIVERY_TIMEOUT_MS / 1000} s.`, last_response: null });
    expect(entry.last_duration_ms).toBeGreaterThanOrEqual(400);
    expect(delayOf(entry)).toBeGreaterThanOrEqual(540);
    expect(delayOf(entry)).toBeLessThanOrEqual(660);
    expect(await received(r.key)).toHaveLength(1);
  });
});

describe("a receiver answering 302", () => {
  it("is a failed attempt: the redirect is not followed", async () => {
    const t = await createTenant();
    const r = receiver("redirect", "receivers");
    const hook = await subscribe(t, r.url);
    const d = await newDelivery(t, hook);
    expect(await deliver(d)).toBe("retried");
    const entry = await logEntry(t, hook, d);
    expect(entry).toMatchObject({ status: "retrying", attempts: 1, last_status_code: 302 });
    expect(entry.last_error).toMatch(/not followed/);
    // Following it would have reached /ok/<the same key>, logged beside the first request.
    const got = await received(r.key);
    expect(got.map((g) => new URL(g.url).pathname)).toEqual([`/redirect/${r.key}`]);
    expect((await call(`/api/v1/webhooks/${hook}`, { key: t.key })).body).toMatchObject({ is_active: true });
  });
});

describe("a receiver answering 410", () => {
  it("disables the subscription at once: the delivery fails without retries and later deliveries are not sent", async () => {
    const t = await createTenant();
    const r = receiver("gone", "receivers");
    const hook = await subscribe(t, r.url);
    const [d, later] = [await newDelivery(t, hook), await newDelivery(t, hook)];
    expect(await deliver(d)).toBe("acked");
    expect(await logEntry(t, hook, d)).toMatchObject({ status: "failed", attempts: 1, last_status_code: 410, next_attempt_at: null });
    expect((await call(`/api/v1/webhooks/${hook}`, { key: t.key })).body).toMatchObject({ is_active: false, disabled_reason: "gone" });
    // A delivery already queued for it is closed without a request.
    expect(await deliver(later)).toBe("acked");
    expect(await logEntry(t, hook, later)).toMatchObject({ status: "failed", attempts: 0, last_error: "The subscription is disabled." });
    // The first one's message coming back sends nothing either.
    expect(await deliver(d, 2)).toBe("acked");
    expect(await received(r.key)).toHaveLength(1);
  });
});

describe("a receiver answering 429 or 503 with Retry-After", () => {
  const cases: [string, string, () => string, (delay: number) => void][] = [
    ["429, Retry-After in seconds past the schedule's delay", "status-429", () => "7200", (delay) => expect(delay).toBe(7200)],
    ["429, Retry-After as an HTTP date", "status-429", () => new Date(Date.now() + 3 * 3600_000).toUTCString(), (delay) => {
      expect(delay).toBeGreaterThanOrEqual(3 * 3600 - 10);
      expect(delay).toBeLessThanOrEqual(3 * 3600);
    }],
    ["429, Retry-After shorter than the schedule's delay", "status-429", () => "5", (delay) => {
      expect(delay).toBeGreaterThanOrEqual(540);
      expect(delay).toBeLessThanOrEqual(660);
    }],
    ["429, Retry-After past what the queue can delay (12 h)", "status-429", () => "100000", (delay) => expect(delay).toBe(12 * 3600)],
    ["503, Retry-After from the receiver itself", "retry-after-9000", () => "", (delay) => expect(delay).toBe(9000)],
  ];
  for (const [what, behaviour, retryAfter, check] of cases) {
    it(`waits as asked: ${what}`, async () => {
      const t = await createTenant();
      const r = receiver(behaviour, "receivers");
      const hook = await subscribe(t, r.url);
      const d = await newDelivery(t, hook);
      const added = () => (retryAfter() ? { "Retry-After": retryAfter() } : ({} as Record<string, string>));
      expect(await withAddedHeaders(behaviour, added, () => deliver(d))).toBe("retried");
      const entry = await logEntry(t, hook, d);
      expect(entry).toMatchObject({ status: "retrying", attempts: 1, last_status_code: behaviour === "status-429" ? 429 : 503 });
      check(delayOf(entry));
    });
  }

  it("keeps to the schedule for a 429 without Retry-After", async () => {
    const t = await createTenant();
    const hook = await subscribe(t, receiver("status-429", "receivers").url);
    const d = await newDelivery(t, hook);
    expect(await deliver(d)).toBe("retried");
    const delay = delayOf(await logEntry(t, hook, d));
    expect(delay).toBeGreaterThanOrEqual(540);
    expect(delay).toBeLessThanOrEqual(660);
  });
});

describe("a delivery that succeeds", () => {
  it("succeeds once: after two 500s the third attempt is recorded, and copies of its message, even at once, send nothing more", async () => {
    const t = await createTenant();
    const r = receiver("flaky-2", "receivers");
    const hook = await subscribe(t, r.url);
    const d = await newDelivery(t, hook);
    expect(await deliver(d, 1)).toBe("retried");
    expect(await deliver(d, 2)).toBe("retried");
    expect(await deliver(d, 3)).toBe("acked");
    expect(await logEntry(t, hook, d)).toMatchObject({ status: "succeeded", attempts: 3, last_status_code: 204, next_attempt_at: null });
    expect(await Promise.all(Array.from({ length: 5 }, (_, i) => deliver(d, 4 + i)))).toEqual(Array.from({ length: 5 }, () => "acked"));
    expect(await received(r.key)).toHaveLength(3);
    const rows = await env.DB.prepare("SELECT status, attempts FROM webhook_deliveries WHERE webhook_id = ?").bind(hook).all();
    expect(rows.results).toEqual([{ status: "succeeded", attempts: 3 }]);
  });

  it("is sent by one of several copies of its message arriving at once", async () => {
    const t = await createTenant();
    const r = receiver("ok", "receivers");
    const hook = await subscribe(t, r.url);
    const d = await newDelivery(t, hook);
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => deliver(d)));
    // The copy that sent it is acked; a copy that found it being sent comes back later, and then acks.
    expect(outcomes).toContain("acked");
    expect(await deliver(d, 2)).toBe("acked");
    expect(await received(r.key)).toHaveLength(1);
    expect(await logEntry(t, hook, d)).toMatchObject({ status: "succeeded", attempts: 1 });
  });
});
