import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ROLE_SCOPES } from "../../src/core/keys/scopes";
import { sha256Hex } from "../../src/lib/crypto";
import { ADMIN_TOKEN, call } from "../helpers/http";
import { createKey, type Tenant } from "../helpers/factories";
import { type Operation, fill, operations } from "../helpers/routes";

/**
 * Credentials (issue 14, cases 3 and 4): keys that no longer hold, or never did, answer 401 on
 * every keyed route; no key, secret or token is ever shown again, logged or stored in the clear;
 * and the keys CI gets by default, like viewers, cannot manage keys, webhooks, members or the
 * deployment.
 */

const PASSWORD = "correct horse battery";

let t: Tenant & { ownerEmail: string };
let ops: Operation[];
let counter = 0;

async function tenantWithOwner(): Promise<Tenant & { ownerEmail: string }> {
  const ownerEmail = `owner-${++counter}-${Date.now()}@credentials.test`;
  const res = await call("/api/v1/admin/organizations", {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    body: { name: `Credentials ${counter}`, owner: { email: ownerEmail, password: PASSWORD, name: "Owner" } },
  });
  if (res.status !== 201) throw new Error(`setup: ${res.status} ${res.text}`);
  return { organization: res.body.organization, project: res.body.project, key: res.body.api_key.key, keyId: res.body.api_key.id, ownerEmail };
}

/** The same lookup prefix (gl_live_ + 8 characters) with another secret after it. */
function sameprefixOtherSecret(key: string): string {
  const tail = key.slice(16);
  const flipped = Array.from(tail, (ch) => (ch === "0" ? "1" : "0")).join("");
  return key.slice(0, 16) + flipped;
}

beforeAll(async () => {
  t = await tenantWithOwner();
  ops = await operations();
});

describe("keys that do not hold", () => {
  it("revoked, deactivated, expired, rotated-out and wrong-secret keys answer 401 on every keyed route", { timeout: 180_000 }, async () => {
    const revoked = await createKey(t, { name: "revoked" });
    expect((await call(`/api/v1/api-keys/${revoked.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    const deactivated = await createKey(t, { name: "deactivated" });
    expect((await call(`/api/v1/api-keys/${deactivated.id}`, { method: "PATCH", key: t.key, body: { is_active: false } })).status).toBe(200);
    const expired = await createKey(t, { name: "expired", expiresAt: new Date(Date.now() + 60_000).toISOString() });
    await env.DB.prepare("UPDATE api_keys SET expires_at = ? WHERE id = ?").bind(new Date(Date.now() - 1000).toISOString(), expired.id).run();
    const rotated = await createKey(t, { name: "rotated" });
    const rotation = await call(`/api/v1/api-keys/${rotated.id}/rotate`, { method: "POST", key: t.key });
    expect(rotation.status).toBe(200);
    expect(rotation.body.key).not.toBe(rotated.key);
    // Each still works right before it stops: the 401s below are about the state, not the key.
    const live = await createKey(t, { name: "live" });
    expect((await call("/api/v1/projects", { key: live.key })).status).toBe(200);

    const bad: Array<[string, string]> = [
      ["revoked", revoked.key],
      ["deactivated", deactivated.key],
      ["expired", expired.key],
      ["rotated out", rotated.key],
      ["wrong secret, same prefix", sameprefixOtherSecret(live.key)],
    ];
    const keyed = ops.filter((o) => o.access.includes(":"));
    expect(keyed.length).toBeGreaterThan(90);
    for (const op of keyed) {
      for (const [what, key] of bad) {
        const res = await call(fill(op.path, "x_1"), { method: op.method, key, body: op.example });
        expect(res.status, `${what}: ${op.method} ${op.path}`).toBe(401);
        expect(res.text, `${what}: ${op.method} ${op.path}`).not.toContain(key.slice(16));
      }
    }
    // Through the other two headers as well, on each surface.
    const probes: Array<[string, string, unknown]> = [
      ["GET", "/api/v1/projects", undefined],
      ["GET", `/api/projects?teamId=${t.organization.id}`, undefined],
      ["POST", "/api/v1/run", { testPlanId: 1 }],
      ["POST", "/api/v1/qa/external/testsuite/trigger", {}],
    ];
    for (const [method, path, body] of probes) {
      for (const [what, key] of bad) {
        for (const header of ["X-API-Key", "X-PANTO-API-KEY"]) {
          const res = await call(path, { method, body, headers: { [header]: key } });
          expect(res.status, `${what} in ${header}: ${method} ${path}`).toBe(401);
        }
      }
    }
    expect((await call("/api/v1/projects", { key: rotation.body.key })).status).toBe(200);
  });

  it("malformed keys and authorization headers answer 401 on every surface, without echoing what was sent", async () => {
    const malformed = [
      "gl_live_",
      "gl_live_short",
      `gl_test_${"a".repeat(64)}`,
      `GL_LIVE_${t.key.slice(8)}`,
      `${t.key}x`,
      `${t.key.slice(0, -1)}`,
      `${t.key.slice(0, 16)}${"-".repeat(48)}`,
      `gl_live_${"a".repeat(5000)}`,
      `gl_live_${"0".repeat(64)}`,
      `gls_${"0".repeat(64)}`,
      ADMIN_TOKEN,
    ];
    const authorizations = [
      ...malformed.map((k) => `Bearer ${k}`),
      `Bearer ${t.key} ${t.key}`,
      `Basic ${btoa(`${t.key}:`)}`,
      `Token ${t.key}`,
      "Bearer",
      "",
    ];
    const probes: Array<[string, string, unknown]> = [
      ["GET", "/api/v1/projects", undefined],
      ["GET", `/api/projects?teamId=${t.organization.id}`, undefined],
      ["POST", "/api/v1/run", { testPlanId: 1 }],
      ["POST", "/api/v1/qa/external/testsuite/trigger", {}],
    ];
    let tried = 0;
    for (const [method, path, body] of probes) {
      for (const authorization of authorizations) {
        const res = await call(path, { method, body, headers: authorization ? { Authorization: authorization } : {} });
        tried++;
        expect(res.status, `${authorization.slice(0, 40)}: ${method} ${path}`).toBe(401);
        expect(res.text).not.toContain(t.key.slice(16));
        expect(res.text).not.toContain("a".repeat(100));
      }
      for (const key of malformed) {
        const res = await call(path, { method, body, headers: { "X-API-Key": key } });
        tried++;
        expect(res.status, `X-API-Key ${key.slice(0, 40)}: ${method} ${path}`).toBe(401);
      }
    }
    expect(tried).toBeGreaterThan(90);
  });
});

/** Every row of every table, as text. */
async function everyRow(): Promise<Map<string, string>> {
  const tables = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
  ).all<{ name: string }>();
  const out = new Map<string, string>();
  for (const { name } of tables.results) {
    const rows = await env.DB.prepare(`SELECT * FROM "${name}"`).all();
    out.set(name, JSON.stringify(rows.results));
  }
  return out;
}

describe("secrets at rest, in responses and in logs", () => {
  it("keys, webhook secrets, session and invitation tokens are shown once, never logged, and stored only as hashes or sealed", { timeout: 60_000 }, async () => {
    const lines: string[] = [];
    const originals = { log: console.log, error: console.error, warn: console.warn, info: console.info, debug: console.debug };
    for (const level of Object.keys(originals) as Array<keyof typeof originals>) {
      console[level] = (...args: unknown[]) => lines.push(args.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(" "));
    }
    const secrets: Array<[string, string]> = [];
    const responses: string[] = [];
    let session = "";
    let invitationToken = "";
    try {
      // An API key, made with an Idempotency-Key (so its response is kept), then rotated.
      const made = await call("/api/v1/api-keys", { method: "POST", key: t.key, headers: { "Idempotency-Key": "credentials-key-1" }, body: { name: "ci" } });
      expect(made.status, made.text).toBe(201);
      secrets.push(["created key", made.body.key]);
      const replay = await call("/api/v1/api-keys", { method: "POST", key: t.key, headers: { "Idempotency-Key": "credentials-key-1" }, body: { name: "ci" } });
      expect(replay.body.key).toBe(made.body.key);
      const rotated = await call(`/api/v1/api-keys/${made.body.id}/rotate`, { method: "POST", key: t.key });
      secrets.push(["rotated key", rotated.body.key]);
      secrets.push(["owner key", t.key]);
      // Used: in every header, and misplaced in a query string; refused with a wrong secret.
      responses.push((await call(`/api/v1/projects?key=${rotated.body.key}`, { key: rotated.body.key })).text);
      responses.push((await call("/api/v1/projects", { headers: { "X-API-Key": rotated.body.key } })).text);
      responses.push((await call("/api/v1/projects", { key: made.body.key })).text);
      responses.push((await call("/api/v1/projects", { key: sameprefixOtherSecret(rotated.body.key) })).text);
      responses.push((await call(`/api/v1/api-keys/${made.body.id}`, { key: t.key })).text);
      responses.push((await call("/api/v1/api-keys", { key: t.key })).text);
      responses.push((await call(`/api/api-keys?projectId=${t.project.id}`, { key: t.key })).text);
      // A webhook with a generated secret and one with a secret of the client's.
      const generated = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: "https://receiver.test/ok/credentials", events: ["build.created.v1"] } });
      expect(generated.status, generated.text).toBe(201);
      secrets.push(["generated webhook secret", generated.body.secret]);
      const chosen = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
      const own = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: "https://receiver.test/ok/credentials", events: ["build.created.v1"], secret: chosen } });
      expect(own.status, own.text).toBe(201);
      secrets.push(["chosen webhook secret", chosen]);
      const rotatedSecret = await call(`/api/v1/webhooks/${own.body.id}/rotate-secret`, { method: "POST", key: t.key });
      secrets.push(["rotated webhook secret", rotatedSecret.body.secret]);
      responses.push((await call(`/api/v1/webhooks/${own.body.id}`, { key: t.key })).text);
      responses.push((await call("/api/v1/webhooks", { key: t.key })).text);
      responses.push((await call(`/api/webhooks?projectId=${t.project.id}`, { key: t.key })).text);
      responses.push((await call(`/api/v1/webhooks/${own.body.id}/ping`, { method: "POST", key: t.key })).text);
      // An invitation, accepted; sign-in; a session used and ended.
      const invited = await call(`/api/v1/organizations/${t.organization.id}/invitations`, { method: "POST", key: t.key, body: { email: "viewer@credentials.test", role: "viewer" } });
      expect(invited.status, invited.text).toBe(201);
      invitationToken = invited.body.token;
      responses.push((await call(`/api/v1/invitations/${invitationToken}`)).text);
      const accepted = await call(`/api/v1/invitations/${invitationToken}/accept`, { method: "POST", body: { password: PASSWORD, name: "Viewer" } });
      expect(accepted.status, accepted.text).toBe(201);
      responses.push(accepted.text);
      responses.push((await call(`/api/v1/organizations/${t.organization.id}/members`, { key: t.key })).text);
      const login = await call("/api/v1/auth/login", { method: "POST", body: { email: "viewer@credentials.test", password: PASSWORD } });
      expect(login.status, login.text).toBe(200);
      session = login.body.session_token;
      responses.push((await call("/api/v1/me", { headers: { Cookie: `greenlight_session=${session}` } })).text);
      responses.push((await call("/api/v1/auth/login", { method: "POST", body: { email: "viewer@credentials.test", password: `${PASSWORD}!` } })).text);
      expect((await call("/api/v1/auth/logout", { method: "POST", headers: { Cookie: `greenlight_session=${session}` } })).status).toBe(204);
      responses.push((await call("/api/v1/me", { headers: { Cookie: `greenlight_session=${session}` } })).text);
    } finally {
      Object.assign(console, originals);
    }
    secrets.push(["session token", session], ["invitation token", invitationToken]);
    for (const [what, secret] of secrets) expect(secret, what).toMatch(/^(gl_live_|whsec_|gls_|gli_)?[0-9A-Za-z+/=_]{32,}$/);

    // Each part that identifies a secret: the whole, and what follows its public prefix.
    const parts = secrets.flatMap(([what, s]) => [
      [what, s],
      [what, s.slice(16)],
    ]);
    const logged = lines.join("\n");
    expect(lines.length).toBeGreaterThan(20);
    for (const [what, part] of parts) expect(logged.includes(part!), `${what} in the logs`).toBe(false);
    for (const text of responses) for (const [what, part] of parts) expect(text.includes(part!), `${what} in a later response: ${text.slice(0, 200)}`).toBe(false);

    // At rest: nothing in any table, except that the invitation.created event carries the accept
    // link (by design: a webhook of the organization's delivers it to the invitee).
    const rows = await everyRow();
    for (const [table, text] of rows) {
      for (const [what, part] of parts) {
        if (what === "invitation token" && table === "events") continue;
        expect(text.includes(part!), `${what} in table ${table}`).toBe(false);
      }
    }
    // What is stored instead: SHA-256 hashes of keys and tokens, and sealed webhook secrets.
    const key = await env.DB.prepare("SELECT key_hash, lookup_prefix FROM api_keys WHERE key_hash = ?").bind(await sha256Hex(secrets[1]![1])).first();
    expect(key).toMatchObject({ lookup_prefix: secrets[1]![1].slice(0, 16) });
    expect(await env.DB.prepare("SELECT id FROM sessions WHERE token_hash = ?").bind(await sha256Hex(session)).first()).not.toBeNull();
    expect(await env.DB.prepare("SELECT id FROM invitations WHERE token_hash = ?").bind(await sha256Hex(invitationToken)).first()).not.toBeNull();
    const sealed = await env.DB.prepare("SELECT secret_sealed, previous_secret_sealed FROM webhooks WHERE organization_id = ?").bind(t.organization.id).all();
    expect(sealed.results.length).toBe(2);
    const idempotent = await env.DB.prepare("SELECT response FROM idempotency_records WHERE response IS NOT NULL").all<{ response: string }>();
    expect(idempotent.results.length).toBeGreaterThan(0);
  });
});

describe("the keys CI gets by default, and viewers", () => {
  const MANAGEMENT = new Set(["keys:write", "webhooks:write", "members:write"]);

  it("cannot manage keys, webhooks, members or the deployment: 403 on every such route (401 on admin routes), nothing written", { timeout: 120_000 }, async () => {
    const org = await tenantWithOwner();
    // A key made without scopes: what POST /api-keys gives CI by default (a member's scopes).
    const ci = await createKey(org, { name: "ci default" });
    const me = await call("/api/v1/me", { key: ci.key });
    expect([...me.body.scopes].sort()).toEqual([...ROLE_SCOPES.member].sort());
    // A viewer, signed in.
    const invited = await call(`/api/v1/organizations/${org.organization.id}/invitations`, { method: "POST", key: org.key, body: { email: `viewer-${org.organization.id}@credentials.test`, role: "viewer" } });
    expect((await call(`/api/v1/invitations/${invited.body.token}/accept`, { method: "POST", body: { password: PASSWORD } })).status).toBe(201);
    const login = await call("/api/v1/auth/login", { method: "POST", body: { email: `viewer-${org.organization.id}@credentials.test`, password: PASSWORD } });
    expect(login.body.role).toBe("viewer");
    const callers: Array<[string, Record<string, string>]> = [
      ["the default CI key as Bearer", { Authorization: `Bearer ${ci.key}` }],
      ["the default CI key as X-API-Key", { "X-API-Key": ci.key }],
      ["a viewer's session", { Cookie: `greenlight_session=${login.body.session_token}` }],
    ];
    const managing = ops.filter((o) => MANAGEMENT.has(o.access) || o.access === "admin");
    // Key management, webhook configuration, member management, and the deployment's admin routes.
    expect(new Set(managing.map((o) => o.access))).toEqual(new Set([...MANAGEMENT, "admin"]));
    expect(managing.length).toBeGreaterThan(15);

    const snapshot = async () => {
      const out: string[] = [];
      for (const table of ["api_keys", "webhooks", "memberships", "invitations", "organizations", "projects"]) {
        const column = table === "organizations" ? "id" : "organization_id";
        const rows = await env.DB.prepare(`SELECT * FROM ${table} WHERE ${column} = ?`).bind(org.organization.id).all<Record<string, unknown>>();
        out.push(table, ...rows.results.map(({ last_used_at: _l, ...r }) => JSON.stringify(r)).sort());
      }
      return out;
    };
    // Real ids of the organization, so a missing check would reach a real change.
    const hook = await call("/api/v1/webhooks", { method: "POST", key: org.key, body: { url: "https://receiver.test/ok/credentials-matrix", events: ["build.created.v1"] } });
    const ping = await call(`/api/v1/webhooks/${hook.body.id}/ping`, { method: "POST", key: org.key });
    const members = await call(`/api/v1/organizations/${org.organization.id}/members`, { key: org.key });
    const viewerMember = members.body.data.find((m: any) => m.role === "viewer").id;
    const idOf = (path: string) =>
      /\/organizations\/\{id\}/.test(path) ? org.organization.id : /\/api-keys\//.test(path) ? org.keyId : /\/webhooks\//.test(path) ? hook.body.id : "x_1";
    const pathOf = (path: string) => fill(path.replace("{delivery_id}", ping.body.id).replace("{member_id}", viewerMember), idOf(path));
    const bodyOf = (op: Operation) => {
      if (op.path.endsWith("/members/{member_id}")) return { role: "owner" };
      if (op.path.includes("webhooks") && op.method === "POST" && !op.path.includes("{id}")) {
        return { ...(op.example as object), url: "https://receiver.test/ok/x", events: ["build.created.v1"], projectId: org.project.id };
      }
      return op.example;
    };

    const before = await snapshot();
    let tried = 0;
    for (const op of managing) {
      for (const [who, headers] of callers) {
        const res = await call(pathOf(op.path), { method: op.method, headers, body: bodyOf(op) });
        tried++;
        const expected = op.access === "admin" ? 401 : 403;
        expect(res.status, `${who}: ${op.method} ${op.path} (${op.access}): ${res.text.slice(0, 200)}`).toBe(expected);
      }
    }
    expect(tried).toBe(managing.length * callers.length);
    expect(await snapshot()).toEqual(before);
    // Reading keys and members is a :read scope, which viewers and the default CI key hold (API.md:
    // viewer = every :read): they see keys masked, never a secret.
    for (const [who, headers] of callers) {
      const keys = await call("/api/v1/api-keys", { headers });
      expect(keys.status, who).toBe(200);
      expect(keys.body.data.length).toBeGreaterThan(1);
      for (const k of keys.body.data) expect(k.masked_key, who).toMatch(/^gl_\*{4}\.{3}\*{4}[0-9a-f]{4}$/);
      expect(keys.text).not.toContain(org.key.slice(16));
      expect(keys.text).not.toContain(ci.key.slice(16));
    }
    // The same requests with the owner's key do get through (so the refusals above were the scopes').
    const ownerRotate = await call(`/api/v1/api-keys/${ci.id}/rotate`, { method: "POST", key: org.key });
    expect(ownerRotate.status).toBe(200);
  });
});
