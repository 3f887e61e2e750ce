import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { call } from "../helpers/http";
import { createTenant, type Tenant } from "../helpers/factories";

/**
 * Webhook receiver URLs (issue 14, case 10): refused when a subscription is made or changed, on
 * both surfaces, and again at send time for a URL that reached D1 some other way (an older rule,
 * a restored backup, a hand edit).
 *
 * `:8443`: refused. The guard allows https on the standard port only (src/core/webhooks/url-guard.ts:
 * "must use the standard https port 443"), as README.md documents ("Receiver URLs: https on port
 * 443"): a non-default port is how internal admin services are usually reached, and no hosted
 * receiver needs one. An explicit `:443` is the default port and is accepted.
 */

let seq = 0;
const unique = (what: string) => `${what}-${Date.now()}-${++seq}`;

/** Each refused URL, with a spelling that points at the test receiver where one exists (so a send would be seen there). */
const REFUSED: Array<{ what: string; url: string; toReceiver?: (k: string) => string; reason: string }> = [
  { what: "plain http://", url: "http://hooks.example.com/x", toReceiver: (k) => `http://receiver.test/ok/${k}`, reason: "must use https" },
  { what: "127.0.0.1", url: "https://127.0.0.1/x", reason: "(127.0.0.1)" },
  { what: "127.0.0.1 over http with a port", url: "http://127.0.0.1:8787/x", reason: "(127.0.0.1)" },
  { what: "[::1]", url: "https://[::1]/x", reason: "([::1])" },
  { what: "169.254.169.254 (metadata)", url: "https://169.254.169.254/latest/meta-data/", reason: "(169.254.169.254)" },
  { what: "10.0.0.1", url: "https://10.0.0.1/x", reason: "(10.0.0.1)" },
  { what: "2130706433 (decimal 127.0.0.1)", url: "https://2130706433/x", reason: "(127.0.0.1)" },
  { what: "0x7f000001 (hex 127.0.0.1)", url: "https://0x7f000001/x", reason: "(127.0.0.1)" },
  { what: "user:pass@", url: "https://user:pass@hooks.example.com/x", toReceiver: (k) => `https://user:pass@receiver.test/ok/${k}`, reason: "user name or password" },
  { what: ":8443", url: "https://hooks.example.com:8443/x", toReceiver: (k) => `https://receiver.test:8443/ok/${k}`, reason: "port 443, not 8443" },
];

async function webhookRows(t: Tenant): Promise<Array<{ id: string; url: string }>> {
  return (await env.DB.prepare("SELECT id, url FROM webhooks WHERE organization_id = ? ORDER BY id").bind(t.organization.id).all<{ id: string; url: string }>()).results;
}

describe("at registration", () => {
  it("refuses every bad URL with 422 naming the url field, on POST and PATCH of both surfaces, storing nothing", async () => {
    const t = await createTenant();
    const native = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: "https://hooks.example.com/ok", events: ["run.failed"] } });
    const reporting = await call("/api/webhooks", { method: "POST", key: t.key, body: { projectId: t.project.id, url: "https://hooks.example.com/ok", events: ["run.failed"] } });
    expect(native.status).toBe(201);
    expect(reporting.status).toBe(201);
    const before = await webhookRows(t);
    let tried = 0;
    for (const row of REFUSED) {
      const attempts = [
        { surface: "native", res: await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: row.url, events: ["run.failed"] } }) },
        { surface: "native", res: await call(`/api/v1/webhooks/${native.body.id}`, { method: "PATCH", key: t.key, body: { url: row.url } }) },
        { surface: "reporting", res: await call("/api/webhooks", { method: "POST", key: t.key, body: { projectId: t.project.id, url: row.url, events: ["run.failed"] } }) },
        { surface: "reporting", res: await call(`/api/webhooks/${reporting.body.id}`, { method: "PATCH", key: t.key, body: { url: row.url } }) },
      ];
      for (const { surface, res } of attempts) {
        tried++;
        expect(res.status, `${row.what} (${surface}): ${res.text}`).toBe(422);
        if (surface === "native") {
          expect(res.body).toMatchObject({ error: "invalid_request", details: { field: "url" } });
          expect(res.body.message).toContain(row.reason);
        } else {
          expect(res.body.error).toMatchObject({ code: "VALIDATION_ERROR", details: { field: "url" } });
          expect(res.body.error.message).toContain(row.reason);
        }
      }
    }
    expect(tried).toBe(REFUSED.length * 4);
    expect(await webhookRows(t)).toEqual(before);
  });

  it("accepts an explicit :443 as the default port, stored without it", async () => {
    const t = await createTenant();
    const res = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: "https://hooks.example.com:443/x", events: ["run.failed"] } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.url).toBe("https://hooks.example.com/x");
  });
});

interface Received {
  url: string;
}

async function received(key: string): Promise<Received[]> {
  return (await (await fetch(`https://receiver.test/__received/${key}`)).json()) as Received[];
}

describe("at send time", () => {
  /** Every URL the Worker fetches during a test (the Worker runs in this isolate). */
  let fetched: string[] = [];
  const realFetch = globalThis.fetch;
  beforeEach(() => {
    fetched = [];
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      fetched.push(input instanceof Request ? input.url : String(input));
      return realFetch(input, init);
    }) as typeof fetch;
  });
  afterEach(() => {
    globalThis.fetch = realFetch;
  });

  it("does not send to a subscription whose URL was changed in D1 to a bad one: ping and redelivery fail as not sent", async () => {
    const t = await createTenant();
    const control = unique("control");
    const hook = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: `https://receiver.test/ok/${control}`, events: ["build.created.v1"] } });
    expect(hook.status).toBe(201);
    // The observation works: a good URL is fetched and received.
    const good = await call(`/api/v1/webhooks/${hook.body.id}/ping`, { method: "POST", key: t.key });
    expect(good.body).toMatchObject({ status: "succeeded", last_status_code: 204 });
    expect(fetched).toEqual([`https://receiver.test/ok/${control}`]);
    expect(await received(control)).toHaveLength(1);

    for (const row of REFUSED) {
      const k = unique("bad");
      const url = row.toReceiver ? row.toReceiver(k) : row.url;
      await env.DB.prepare("UPDATE webhooks SET url = ? WHERE id = ?").bind(url, hook.body.id).run();
      fetched = [];
      const ping = await call(`/api/v1/webhooks/${hook.body.id}/ping`, { method: "POST", key: t.key });
      expect(ping.status, ping.text).toBe(200);
      expect(ping.body, row.what).toMatchObject({ status: "failed", attempts: 1, last_status_code: null });
      expect(ping.body.last_error, row.what).toMatch(/^Not sent: /);
      expect(ping.body.last_error, row.what).toContain(row.reason);
      const again = await call(`/api/v1/webhooks/${hook.body.id}/deliveries/${ping.body.id}/redeliver`, { method: "POST", key: t.key });
      expect(again.body, row.what).toMatchObject({ status: "failed", attempts: 2, last_status_code: null });
      expect(fetched, row.what).toEqual([]);
      if (row.toReceiver) expect(await received(k), row.what).toEqual([]);
    }
  });

  it("does not send a queued event's delivery to a bad URL, and does not retry it", async () => {
    const t = await createTenant();
    const hook = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: "https://hooks.example.com/later-changed", events: ["build.created.v1"] } });
    const k = unique("queued");
    await env.DB.prepare("UPDATE webhooks SET url = ? WHERE id = ?").bind(`https://receiver.test:8443/ok/${k}`, hook.body.id).run();
    const build = await call("/api/v1/builds", { method: "POST", key: t.key, body: { name: "queued", project_id: t.project.id } });
    expect(build.status).toBe(202);
    const until = Date.now() + 20_000;
    let delivery: any;
    while (Date.now() < until) {
      [delivery] = (await call(`/api/v1/webhooks/${hook.body.id}/deliveries`, { key: t.key })).body.data;
      if (delivery?.status === "failed") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(delivery).toMatchObject({ event_type: "build.created.v1", status: "failed", attempts: 1, last_status_code: null, next_attempt_at: null });
    expect(delivery.last_error).toMatch(/^Not sent: .*port 443, not 8443/);
    expect(fetched.filter((u) => u.includes("8443") || u.includes(k))).toEqual([]);
    expect(await received(k)).toEqual([]);
  });
});
