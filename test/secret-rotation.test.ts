import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { decryptText } from "../src/lib/crypto";
import { COOKIE_PURPOSE } from "../src/core/jobs/queue";
import { WEBHOOK_SEALING_PURPOSE } from "../src/core/webhooks/signing";
import { PNG } from "./helpers/artifact-bytes";
import { ORIGIN, call } from "./helpers/http";
import { createTenant } from "./helpers/factories";

/**
 * Rotating URL_SIGNING_SECRET with an overlap (README, "Operating"): the new secret goes into
 * URL_SIGNING_SECRET, the old one into URL_SIGNING_SECRET_PREVIOUS; everything the old one signed
 * or sealed still works, the cron re-seals stored secrets, and then the old one can go.
 */
const OLD = env.URL_SIGNING_SECRET!;
const NEW = "rotated-url-signing-secret";
const rotating = { ...env, URL_SIGNING_SECRET: NEW, URL_SIGNING_SECRET_PREVIOUS: OLD };
const rotated = { ...env, URL_SIGNING_SECRET: NEW };
const app = createApp();

async function send(target: typeof env, path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const res = await app.request(`${ORIGIN}${path}`, init, target, ctx);
  const bytes = new Uint8Array(await res.arrayBuffer());
  await waitOnExecutionContext(ctx);
  const text = new TextDecoder().decode(bytes);
  return { status: res.status, bytes, body: res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : undefined };
}

async function cron(target: typeof env) {
  const worker = (await import("../src/index")).default;
  const ctx = createExecutionContext();
  await worker.scheduled!(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), target, ctx);
  await waitOnExecutionContext(ctx);
}

const opens = (secret: string, purpose: string, sealed: string) => decryptText(secret, purpose, sealed).then(() => true, () => false);

describe("rotating URL_SIGNING_SECRET with an overlap", () => {
  it("keeps links, sealed secrets and idempotent replays working, re-seals in the cron, then needs only the new secret", async () => {
    const t = await createTenant();
    const auth = { Authorization: `Bearer ${t.key}`, "Content-Type": "application/json" };
    // Made under the old secret: a webhook, a plan with cookies, an artifact link, an idempotent POST.
    const hook = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: "https://hooks.example.com/rotation", events: ["run.failed"] } });
    expect(hook.status).toBe(201);
    const plan = await call("/api/v1/testplans", {
      method: "POST",
      key: t.key,
      body: { project_id: t.project.id, name: "Rotation", cookies: [{ name: "session", value: "s-1", domain: "app.example.com", path: "/" }] },
    });
    expect(plan.status).toBe(201);
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const form = new FormData();
    form.append("type", "screenshot");
    form.append("run_id", run.body.id);
    form.append("file", new File([PNG], "shot.png"));
    const artifact = await call("/api/v1/artifacts", { method: "POST", key: t.key, body: form });
    expect(artifact.status).toBe(201);
    const oldLink = new URL(artifact.body.url);
    const idempotent = { method: "POST", headers: { ...auth, "Idempotency-Key": "rotation-1" }, body: JSON.stringify({ project_id: t.project.id, run_title: "once" }) };
    const first = await send(env, "/api/v1/testruns", idempotent);
    expect(first.status).toBe(201);
    const sealedBefore = await env.DB.prepare("SELECT secret_sealed FROM webhooks WHERE id = ?").bind(hook.body.id).first<{ secret_sealed: string }>();
    expect(await opens(NEW, WEBHOOK_SEALING_PURPOSE, sealedBefore!.secret_sealed)).toBe(false);

    // During the overlap, all of it still works.
    expect((await send(rotating, `${oldLink.pathname}${oldLink.search}`)).bytes).toEqual(PNG);
    expect((await send(rotating, `/api/v1/testplans/${plan.body.id}`, { headers: auth })).body.cookies).toEqual([{ name: "session", domain: "app.example.com", path: "/" }]);
    const replay = await send(rotating, "/api/v1/testruns", idempotent);
    expect(replay.status).toBe(201);
    expect(replay.body.id).toBe(first.body.id);
    // New links are signed with the new secret.
    const fresh = await send(rotating, `/api/v1/artifacts/${artifact.body.id}`, { headers: auth });
    const newLink = new URL(fresh.body.url);
    expect((await send(rotated, `${newLink.pathname}${newLink.search}`)).bytes).toEqual(PNG);
    expect((await send(env, `${newLink.pathname}${newLink.search}`)).status).toBe(403);

    // The cron re-seals what the old secret sealed; a second round finds nothing left.
    await cron(rotating);
    const sealedAfter = await env.DB.prepare("SELECT secret_sealed FROM webhooks WHERE id = ?").bind(hook.body.id).first<{ secret_sealed: string }>();
    expect(await opens(NEW, WEBHOOK_SEALING_PURPOSE, sealedAfter!.secret_sealed)).toBe(true);
    const planRow = await env.DB.prepare("SELECT cookies_sealed FROM test_plans WHERE id = ?").bind(plan.body.id).first<{ cookies_sealed: string }>();
    expect(await opens(NEW, COOKIE_PURPOSE, planRow!.cookies_sealed)).toBe(true);
    const { resealStoredSecrets } = await import("../src/core/secrets/reseal");
    const { createDb } = await import("../src/db/client");
    expect(await resealStoredSecrets(createDb(env.DB), rotating)).toEqual({ resealed: 0, unreadable: 0 });

    // The old secret can go: stored secrets open with the new one alone; old links stop working.
    expect((await send(rotated, `/api/v1/testplans/${plan.body.id}`, { headers: auth })).status).toBe(200);
    expect((await send(rotated, `${oldLink.pathname}${oldLink.search}`)).status).toBe(403);
  });
});
