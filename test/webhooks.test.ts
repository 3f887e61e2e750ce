import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { perpetualSignature, verifyStandardWebhook } from "../src/core/webhooks/signing";
import { ADMIN_TOKEN, call } from "./helpers/http";
import { createKey, createProject, createTenant, type Tenant } from "./helpers/factories";
import { receiver, received, waitFor } from "./helpers/receiver";

async function subscribe(t: Tenant, url: string, events = ["build.created.v1"], extra: Record<string, unknown> = {}) {
  const res = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url, events, ...extra } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; secret: string };
}

async function deliveries(t: Tenant, webhookId: string): Promise<any[]> {
  const res = await call(`/api/v1/webhooks/${webhookId}/deliveries`, { key: t.key });
  expect(res.status, res.text).toBe(200);
  return res.body.data;
}

/** Unique names and message ids within this file. */
let keys = 0;
const registerBuild = (t: Tenant, name = `b${++keys}`) =>
  call("/api/v1/builds", { method: "POST", key: t.key, body: { name, project_id: t.project.id } });

async function deliverMessage(deliveryId: string, id = `m${++keys}`) {
  const batch = createMessageBatch("greenlight-webhooks", [{ id, timestamp: new Date(), attempts: 1, body: { type: "webhook.delivery", delivery_id: deliveryId } }]);
  const ctx = createExecutionContext();
  await worker.queue!(batch, env);
  return getQueueResult(batch, ctx);
}

describe("webhook subscriptions", () => {
  it("creates one with a generated whsec_ secret shown once, reads, lists, changes and deletes it", async () => {
    const t = await createTenant();
    const created = await call("/api/v1/webhooks", {
      method: "POST",
      key: t.key,
      body: { url: "https://hooks.example.com/gl", events: ["build.created.v1", "run.failed"], headers: { "X-Team": "qa" }, description: "CI alerts" },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(created.body).toMatchObject({ is_active: true, project_id: null, headers: { "X-Team": "qa" }, disabled_reason: null });
    const read = await call(`/api/v1/webhooks/${created.body.id}`, { key: t.key });
    expect(read.body.secret).toBeUndefined();
    expect(read.text).not.toContain(created.body.secret);
    // The secret is sealed at rest.
    const row = await env.DB.prepare("SELECT secret_sealed FROM webhooks WHERE id = ?").bind(created.body.id).first<{ secret_sealed: string }>();
    expect(row!.secret_sealed).not.toContain(created.body.secret.slice(6));
    const patched = await call(`/api/v1/webhooks/${created.body.id}`, { method: "PATCH", key: t.key, body: { events: ["run.completed"], is_active: false } });
    expect(patched.body).toMatchObject({ events: ["run.completed"], is_active: false, url: "https://hooks.example.com/gl" });
    expect((await call("/api/v1/webhooks", { key: t.key })).body.pagination.total).toBe(1);
    expect((await call(`/api/v1/webhooks/${created.body.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await call(`/api/v1/webhooks/${created.body.id}`, { key: t.key })).status).toBe(404);
  });

  const refused: [string, Record<string, unknown>, string, number][] = [
    ["a plain http URL", { url: "http://hooks.example.com/x" }, "url", 422],
    ["a private address", { url: "https://10.0.0.5/x" }, "url", 422],
    ["the metadata address in decimal", { url: "https://2852039166/latest" }, "url", 422],
    ["localhost", { url: "https://localhost/x" }, "url", 422],
    ["another port", { url: "https://hooks.example.com:8443/x" }, "url", 422],
    ["credentials in the URL", { url: "https://user:pw@hooks.example.com/x" }, "url", 422],
    ["an unknown event type", { events: ["build.exploded.v1"] }, "events", 400],
    ["no event types", { events: [] }, "events", 400],
    ["a header Greenlight sets", { headers: { "X-Perpetual-Signature": "forged" } }, "headers", 400],
    ["a header value with a line break", { headers: { "X-A": "a\r\nX-B: b" } }, "headers", 400],
    ["a short secret", { secret: "short" }, "secret", 400],
  ];
  for (const [what, body, field, status] of refused) {
    it(`refuses ${what}, writing nothing`, async () => {
      const t = await createTenant();
      const res = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: "https://hooks.example.com/x", events: ["run.failed"], ...body } });
      expect(res.status, res.text).toBe(status);
      expect(res.body.details.field).toBe(field);
      expect((await call("/api/v1/webhooks", { key: t.key })).body.pagination.total).toBe(0);
    });
  }

  it("refuses subscriptions past the organization's limit with 403", async () => {
    const t = await createTenant();
    const limited = await call(`/api/v1/admin/organizations/${t.organization.id}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      body: { max_webhooks: 1 },
    });
    expect(limited.status, limited.text).toBe(200);
    expect(limited.body.max_webhooks).toBe(1);
    await subscribe(t, "https://hooks.example.com/1");
    const second = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: "https://hooks.example.com/2", events: ["run.failed"] } });
    expect(second.status).toBe(403);
    expect(second.body.message).toMatch(/at most 1 webhook/);
  });

  it("serves reference 003's reporting shapes", async () => {
    const t = await createTenant();
    const created = await call("/api/webhooks", {
      method: "POST",
      key: t.key,
      body: {
        projectId: t.project.id,
        url: "https://hooks.slack.com/services/T00/B00/xxx",
        events: ["run.completed", "run.failed"],
        headers: { "X-Custom-Header": "value" },
        secret: "whsec_your-webhook-secret",
      },
    });
    expect(created.status, created.text).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(["createdAt", "events", "id", "isActive", "projectId", "url"]);
    const listed = await call(`/api/webhooks?projectId=${t.project.id}`, { key: t.key });
    expect(listed.body.data).toEqual([
      { id: created.body.id, projectId: t.project.id, url: "https://hooks.slack.com/services/T00/B00/xxx", events: ["run.completed", "run.failed"], headers: { "X-Custom-Header": "value" }, isActive: true, createdAt: created.body.createdAt },
    ]);
    const patched = await call(`/api/webhooks/${created.body.id}`, { method: "PATCH", key: t.key, body: { url: "https://hooks.slack.com/services/T00/B00/new-url", events: ["run.failed"], isActive: true } });
    expect(Object.keys(patched.body).sort()).toEqual(["events", "id", "isActive", "updatedAt", "url"]);
    expect(patched.body.events).toEqual(["run.failed"]);
    const deleted = await call(`/api/webhooks/${created.body.id}`, { method: "DELETE", key: t.key });
    expect(deleted.body).toEqual({ success: true, message: "Webhook deleted successfully" });
    const bad = await call("/api/webhooks", { method: "POST", key: t.key, body: { projectId: t.project.id, url: "http://x.example.com", events: ["run.failed"] } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBeTruthy();
  });

  it("needs webhooks:write to subscribe and keeps tenants apart", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const reader = await createKey(a, { scopes: ["webhooks:read"] });
    expect((await call("/api/v1/webhooks", { method: "POST", key: reader.key, body: { url: "https://hooks.example.com/x", events: ["run.failed"] } })).status).toBe(403);
    expect((await call("/api/v1/webhooks", { method: "POST", key: a.key, body: { url: "https://hooks.example.com/x", events: ["run.failed"], project_id: b.project.id } })).status).toBe(404);
  });
});

describe("webhook delivery", () => {
  it("delivers a real build.created.v1, signed both ways, within seconds", async () => {
    const t = await createTenant();
    const r = receiver("ok");
    const hook = await subscribe(t, r.url, ["build.created.v1"], { headers: { "X-Team": "qa" } });
    const build = await registerBuild(t, "v9.9.9");
    expect(build.status).toBe(202);
    const [got] = await waitFor("the delivery", async () => {
      const list = await received(r.key);
      return list.length > 0 ? list : null;
    });
    const body = JSON.parse(got!.body);
    expect(body).toMatchObject({ type: "build.created.v1", build: { build_id: build.body.id, name: "v9.9.9", status: "planned" } });
    expect(body.id).toMatch(/^evt_/);
    expect(got!.headers["content-type"]).toBe("application/json");
    expect(got!.headers["x-team"]).toBe("qa");
    expect(got!.headers["x-perpetual-signature"]).toBe(await perpetualSignature(hook.secret, got!.body));
    expect(await verifyStandardWebhook(hook.secret, new Headers(got!.headers), got!.body, Math.floor(Date.now() / 1000))).toBe(true);
    expect(await verifyStandardWebhook(hook.secret, new Headers(got!.headers), got!.body.replace("v9.9.9", "v6.6.6"), Math.floor(Date.now() / 1000))).toBe(false);
    const [delivery] = await waitFor("the log", async () => {
      const list = await deliveries(t, hook.id);
      return list[0]?.status === "succeeded" ? list : null;
    });
    expect(delivery).toMatchObject({ event_type: "build.created.v1", attempts: 1, last_status_code: 204, next_attempt_at: null });
    expect(got!.headers["webhook-id"]).toBe(delivery.id);
  });

  it("retries a 500 on the schedule, then fails the delivery and sends its message on to the dead-letter queue", async () => {
    const t = await createTenant();
    const r = receiver("status-500");
    const hook = await subscribe(t, r.url);
    await registerBuild(t);
    const first = await waitFor("the first attempt", async () => {
      const [d] = await deliveries(t, hook.id);
      return d?.status === "retrying" ? d : null;
    });
    expect(first).toMatchObject({ attempts: 1, last_status_code: 500, last_response: "answered 500" });
    const schedule = [600, 3600, 3 * 3600, 10 * 3600];
    const delayOf = (d: any) => (Date.parse(d.next_attempt_at) - Date.parse(d.updated_at)) / 1000;
    expect(delayOf(first)).toBeGreaterThanOrEqual(schedule[0]! * 0.9 - 1);
    expect(delayOf(first)).toBeLessThanOrEqual(schedule[0]! * 1.1 + 1);
    // The queue would bring the message back after that delay; deliver it now, three more times.
    for (let attempt = 2; attempt <= 4; attempt++) {
      const result = await deliverMessage(first.id);
      expect(result.retryMessages).toHaveLength(1);
      const [d] = await deliveries(t, hook.id);
      expect(d).toMatchObject({ attempts: attempt, status: "retrying" });
      expect(delayOf(d)).toBeGreaterThanOrEqual(schedule[attempt - 1]! * 0.9 - 1);
      expect(delayOf(d)).toBeLessThanOrEqual(schedule[attempt - 1]! * 1.1 + 1);
    }
    const last = await deliverMessage(first.id);
    // Retried once more: past max_retries (4), which moves the message to the dead-letter queue.
    expect(last.retryMessages).toHaveLength(1);
    const [final] = await deliveries(t, hook.id);
    expect(final).toMatchObject({ status: "failed", attempts: 5, next_attempt_at: null });
    expect(await received(r.key)).toHaveLength(5);
    // The subscription has been failing since the first attempt.
    expect((await call(`/api/v1/webhooks/${hook.id}`, { key: t.key })).body.failing_since).toBeTruthy();
  });

  it("sends a delivery once however often its message arrives", async () => {
    const t = await createTenant();
    const r = receiver("ok");
    const hook = await subscribe(t, r.url);
    await registerBuild(t);
    const [d] = await waitFor("success", async () => {
      const list = await deliveries(t, hook.id);
      return list[0]?.status === "succeeded" ? list : null;
    });
    const again = await deliverMessage(d.id);
    expect(again.explicitAcks).toHaveLength(1);
    await deliverMessage(d.id);
    expect(await received(r.key)).toHaveLength(1);
    // Fanning the same event out again adds no second delivery.
    const { fanOutEvent } = await import("../src/core/webhooks/delivery");
    expect(await fanOutEvent(env, d.event_id)).toBe(0);
    expect(await deliveries(t, hook.id)).toHaveLength(1);
  });

  it("counts a receiver that does not answer within 15 s as a failure", { timeout: 40_000 }, async () => {
    const t = await createTenant();
    const hook = await subscribe(t, receiver("slow").url);
    await registerBuild(t);
    const d = await waitFor(
      "the timeout",
      async () => {
        const [x] = await deliveries(t, hook.id);
        return x?.status === "retrying" ? x : null;
      },
      35_000,
    );
    expect(d).toMatchObject({ attempts: 1, last_status_code: null, last_error: "No answer within 15 s." });
    expect(d.last_duration_ms).toBeGreaterThanOrEqual(14_000);
  });

  it("disables a subscription whose receiver answers 410", async () => {
    const t = await createTenant();
    const hook = await subscribe(t, receiver("gone").url);
    await registerBuild(t);
    const d = await waitFor("the 410", async () => {
      const [x] = await deliveries(t, hook.id);
      return x?.status === "failed" ? x : null;
    });
    expect(d).toMatchObject({ attempts: 1, last_status_code: 410 });
    expect((await call(`/api/v1/webhooks/${hook.id}`, { key: t.key })).body).toMatchObject({ is_active: false, disabled_reason: "gone" });
    // Nothing more is delivered to it until it is turned back on.
    await registerBuild(t);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await deliveries(t, hook.id)).toHaveLength(1);
    const revived = await call(`/api/v1/webhooks/${hook.id}`, { method: "PATCH", key: t.key, body: { is_active: true } });
    expect(revived.body).toMatchObject({ is_active: true, disabled_reason: null });
  });

  it("counts a 302 as a failure and does not follow it", async () => {
    const t = await createTenant();
    const r = receiver("redirect");
    const hook = await subscribe(t, r.url);
    await registerBuild(t);
    const d = await waitFor("the redirect", async () => {
      const [x] = await deliveries(t, hook.id);
      return x?.status === "retrying" ? x : null;
    });
    expect(d).toMatchObject({ last_status_code: 302 });
    expect(d.last_error).toMatch(/not followed/);
    expect(await received(r.key)).toHaveLength(1);
  });

  it("waits as long as Retry-After asks on a 503", async () => {
    const t = await createTenant();
    const hook = await subscribe(t, receiver("retry-after-7200").url);
    await registerBuild(t);
    const d = await waitFor("the 503", async () => {
      const [x] = await deliveries(t, hook.id);
      return x?.status === "retrying" ? x : null;
    });
    expect((Date.parse(d.next_attempt_at) - Date.parse(d.updated_at)) / 1000).toBeGreaterThanOrEqual(7200);
  });

  it("disables a subscription that has failed every delivery for five days", async () => {
    const t = await createTenant();
    const hook = await subscribe(t, receiver("status-500").url);
    await env.DB.prepare("UPDATE webhooks SET failing_since = ? WHERE id = ?").bind(new Date(Date.now() - 6 * 86400_000).toISOString(), hook.id).run();
    await registerBuild(t);
    await waitFor("the disable", async () => (await call(`/api/v1/webhooks/${hook.id}`, { key: t.key })).body.disabled_reason === "failing");
  });

  it("re-sends, from the cron, an event whose send to the queue failed", async () => {
    const t = await createTenant();
    const r = receiver("ok");
    await subscribe(t, r.url, ["release.released.v1"]);
    // An event written with its change whose send never happened.
    await env.DB.prepare(
      "INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at) VALUES ('evt_0000000000000000000LOSTEV', ?, ?, 'release.released.v1', 'rel_x', ?, ?)",
    )
      .bind(t.organization.id, t.project.id, JSON.stringify({ type: "release.released.v1", release: { release_id: "rel_x" } }), new Date().toISOString())
      .run();
    // And one a flush claimed two minutes ago and died before sending.
    await env.DB.prepare(
      "INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at, claimed_at) VALUES ('evt_000000000000000000CLAIMED', ?, ?, 'release.released.v1', 'rel_y', ?, ?, ?)",
    )
      .bind(t.organization.id, t.project.id, JSON.stringify({ type: "release.released.v1", release: { release_id: "rel_y" } }), new Date().toISOString(), new Date(Date.now() - 120_000).toISOString())
      .run();
    const ctx = createExecutionContext();
    await worker.scheduled!(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    const got = await waitFor("the lost events", async () => {
      const list = await received(r.key);
      return list.length >= 2 ? list : null;
    });
    expect(got.map((g) => JSON.parse(g.body).id).sort()).toEqual(["evt_000000000000000000CLAIMED", "evt_0000000000000000000LOSTEV"].sort());
  });

  it("sends each outbox event to the queue once when flushes overlap", async () => {
    const t = await createTenant();
    const ids = Array.from({ length: 5 }, (_, i) => `evt_00000000000000000OVERLAP${i}`);
    for (const id of ids) {
      await env.DB.prepare("INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at) VALUES (?, ?, ?, 'release.released.v1', 'rel_z', '{}', ?)")
        .bind(id, t.organization.id, t.project.id, new Date().toISOString())
        .run();
    }
    // The queue producer is the one part replaced: it records what each flush sends.
    const sent: string[] = [];
    const recording = { ...env, WEBHOOKS: { sendBatch: async (messages: { body: { event_id: string } }[]) => void sent.push(...messages.map((m) => m.body.event_id)) } };
    const { flushOutbox } = await import("../src/core/webhooks/delivery");
    await Promise.all([flushOutbox(recording as never), flushOutbox(recording as never), flushOutbox(recording as never)]);
    const ours = sent.filter((id) => ids.includes(id));
    // Each at most once here (another test's flush may have taken some), and all of them sent.
    expect(new Set(ours).size).toBe(ours.length);
    const pending = await env.DB.prepare(`SELECT count(*) AS n FROM events WHERE id IN (${ids.map(() => "?").join(",")}) AND dispatched_at IS NULL`).bind(...ids).first<{ n: number }>();
    expect(pending!.n).toBe(0);
  });

  it("queues only the events some active subscription wants; the others are dispatched without a message", async () => {
    const t = await createTenant();
    const bystander = await createTenant();
    await subscribe(t, receiver("ok").url, ["testrun.completed.v1"]);
    const at = new Date().toISOString();
    const insert = (id: string, org: string, project: string, type: string) =>
      env.DB.prepare("INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at) VALUES (?, ?, ?, ?, 'run_z', '{}', ?)")
        .bind(id, org, project, type, at)
        .run();
    await insert("evt_0000000000000000WANTED01", t.organization.id, t.project.id, "testrun.completed.v1");
    await insert("evt_00000000000000NOTWANTED1", t.organization.id, t.project.id, "testrun.created.v1");
    await insert("evt_00000000000000NOTWANTED2", bystander.organization.id, bystander.project.id, "testrun.completed.v1");
    const sent: string[] = [];
    const recording = { ...env, WEBHOOKS: { sendBatch: async (messages: { body: { event_id: string } }[]) => void sent.push(...messages.map((m) => m.body.event_id)) } };
    const { flushOutbox } = await import("../src/core/webhooks/delivery");
    await flushOutbox(recording as never);
    const mine = ["evt_0000000000000000WANTED01", "evt_00000000000000NOTWANTED1", "evt_00000000000000NOTWANTED2"];
    expect(sent.filter((id) => mine.includes(id))).toEqual(["evt_0000000000000000WANTED01"]);
    const pending = await env.DB.prepare(`SELECT count(*) AS n FROM events WHERE id IN (?, ?, ?) AND dispatched_at IS NULL`).bind(...mine).first<{ n: number }>();
    expect(pending!.n).toBe(0);
  });

  it("pings, redelivers with the same webhook-id, and signs with both secrets while one is rotated out", async () => {
    const t = await createTenant();
    const r = receiver("ok");
    const hook = await subscribe(t, r.url);
    const ping = await call(`/api/v1/webhooks/${hook.id}/ping`, { method: "POST", key: t.key });
    expect(ping.status, ping.text).toBe(200);
    expect(ping.body).toMatchObject({ event_type: "webhook.ping", status: "succeeded", attempts: 1, last_status_code: 204 });
    const again = await call(`/api/v1/webhooks/${hook.id}/deliveries/${ping.body.id}/redeliver`, { method: "POST", key: t.key });
    expect(again.body).toMatchObject({ id: ping.body.id, status: "succeeded", attempts: 2 });
    const [p1, p2] = await received(r.key);
    expect(JSON.parse(p1!.body)).toMatchObject({ type: "webhook.ping", webhook_id: hook.id });
    expect(p2!.headers["webhook-id"]).toBe(p1!.headers["webhook-id"]);

    const rotated = await call(`/api/v1/webhooks/${hook.id}/rotate-secret`, { method: "POST", key: t.key });
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(hook.secret);
    await call(`/api/v1/webhooks/${hook.id}/ping`, { method: "POST", key: t.key });
    const p3 = (await received(r.key))[2]!;
    expect(p3.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    const now = Math.floor(Date.now() / 1000);
    expect(await verifyStandardWebhook(rotated.body.secret, new Headers(p3.headers), p3.body, now)).toBe(true);
    expect(await verifyStandardWebhook(hook.secret, new Headers(p3.headers), p3.body, now)).toBe(true);
    expect(p3.headers["x-perpetual-signature"]).toBe(await perpetualSignature(rotated.body.secret, p3.body));
  });

  it("delivers an event only to its own organization's and project's subscriptions", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const ra = receiver("ok");
    const rb = receiver("ok");
    const rOther = receiver("ok");
    await subscribe(a, ra.url);
    const other = await createProject(b);
    await subscribe(b, rOther.url, ["build.created.v1"], { project_id: other.id });
    const hb = await subscribe(b, rb.url);
    await registerBuild(b);
    await waitFor("b's delivery", async () => (await deliveries(b, hb.id))[0]?.status === "succeeded");
    await new Promise((r) => setTimeout(r, 500));
    expect(await received(ra.key)).toHaveLength(0);
    expect(await received(rOther.key)).toHaveLength(0);
    expect(await received(rb.key)).toHaveLength(1);
  });
});
