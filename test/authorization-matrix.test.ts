import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ROLE_SCOPES, type Role } from "../src/core/keys/scopes";
import { hashPassword } from "../src/core/users/passwords";
import { ADMIN_TOKEN, call } from "./helpers/http";

const ACCESS = "x-greenlight-access";
const GROUP = "x-greenlight-rate-limit-group";
const PASSWORD = "correct horse battery";

interface Operation {
  method: string;
  path: string;
  scope: string;
  group: string;
}

interface Caller {
  role: Role;
  userId: string;
  cookie: string;
}

let orgId = "";
let ownerKey = "";
const callers = new Map<Role, Caller>();
let ops: Operation[] = [];

async function addUser(role: Role): Promise<string> {
  const id = `usr_${role.toUpperCase().padEnd(26, "0")}`;
  const p = await hashPassword(PASSWORD);
  await env.DB.batch([
    env.DB.prepare("INSERT INTO users (id, email, name, password_hash, password_salt, password_iterations, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").bind(
      id,
      `${role}@matrix.test`,
      role,
      p.hash,
      p.salt,
      p.iterations,
      new Date().toISOString(),
      new Date().toISOString(),
    ),
    env.DB.prepare("INSERT INTO memberships (id, organization_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)").bind(
      `mem_${role.toUpperCase().padEnd(26, "0")}`,
      orgId,
      id,
      role,
      new Date().toISOString(),
      new Date().toISOString(),
    ),
  ]);
  return id;
}

async function signIn(email: string): Promise<string> {
  const res = await call("/api/v1/auth/login", { method: "POST", body: { email, password: PASSWORD } });
  expect(res.status, res.text).toBe(200);
  const cookie = res.headers.get("set-cookie") ?? "";
  expect(cookie).toMatch(/^greenlight_session=gls_[0-9a-f]{64}; Path=\/; HttpOnly; Secure; SameSite=Lax; Max-Age=\d+$/);
  return `greenlight_session=${res.body.session_token}`;
}

/** The id into {id}, "1" into any other parameter: the route's own checks answer 404 or 400 after authorization. */
const fill = (path: string) => path.replace(/\{id\}/g, "x_1").replace(/\{[^}]+\}/g, "1");

beforeAll(async () => {
  const created = await call("/api/v1/admin/organizations", {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    body: { name: "Matrix org", owner: { email: "owner@matrix.test", password: PASSWORD, name: "Owner" } },
  });
  expect(created.status, created.text).toBe(201);
  orgId = created.body.organization.id;
  ownerKey = created.body.api_key.key;
  expect(created.body.owner).toMatchObject({ email: "owner@matrix.test" });
  callers.set("owner", { role: "owner", userId: created.body.owner.id, cookie: await signIn("owner@matrix.test") });
  for (const role of ["admin", "member", "viewer"] as const) {
    const userId = await addUser(role);
    callers.set(role, { role, userId, cookie: await signIn(`${role}@matrix.test`) });
  }
  const doc = (await call("/openapi.json")).body;
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const scope = op[ACCESS];
      if (typeof scope === "string" && scope.includes(":")) ops.push({ method: method.toUpperCase(), path, scope, group: op[GROUP] });
    }
  }
  // Signing out is checked on its own below; walking it would end the sessions.
  ops = ops.filter((o) => o.path !== "/api/v1/auth/logout");
});

describe("roles → permissions, for sessions and keys alike", () => {
  it("decides every route of every group for every role by the role's scopes", { timeout: 120_000 }, async () => {
    expect(ops.length).toBeGreaterThan(80);
    const groups = new Set(ops.map((o) => o.group));
    expect(groups.size).toBeGreaterThan(8);
    const table: Record<string, Record<Role, string>> = {};
    for (const [role, caller] of callers) {
      const allowed = new Set<string>(ROLE_SCOPES[role]);
      for (const op of ops) {
        const res = await call(fill(op.path), { method: op.method, headers: { Cookie: caller.cookie }, body: op.method === "GET" || op.method === "DELETE" ? undefined : {} });
        const denied = res.status === 403;
        expect(res.status, `${role} ${op.method} ${op.path}: ${res.text.slice(0, 200)}`).not.toBe(401);
        expect(denied, `${role} ${op.method} ${op.path} (${op.scope}): ${res.status} ${res.text.slice(0, 200)}`).toBe(!allowed.has(op.scope));
        (table[op.group] ??= {} as Record<Role, string>)[role] = allowed.has(op.scope) ? "some" : (table[op.group]?.[role] ?? "none");
      }
    }
    // The shape of the table: viewers read only, members also write results, admins and owners everything.
    expect(ROLE_SCOPES.viewer.every((s) => s.endsWith(":read"))).toBe(true);
    expect(ROLE_SCOPES.member).toEqual(expect.arrayContaining(["results:submit", "testruns:create", "plans:trigger", "artifacts:write", "jobs:run"]));
    expect(ROLE_SCOPES.member).not.toContain("keys:write");
    expect(ROLE_SCOPES.member).not.toContain("webhooks:write");
    expect(ROLE_SCOPES.member).not.toContain("members:write");
    expect(ROLE_SCOPES.admin).toEqual(expect.arrayContaining(["keys:write", "webhooks:write", "settings:write", "members:write", "projects:write"]));
  });

  it("a key a user creates never exceeds that user's role, and follows a later demotion", async () => {
    const member = callers.get("member")!;
    // A member cannot mint a key with scopes beyond a member's.
    const tooMuch = await call("/api/v1/api-keys", { method: "POST", headers: { Cookie: member.cookie }, body: { name: "ci", scopes: ["webhooks:write"] } });
    expect([403, 400]).toContain(tooMuch.status);
    // Members have no keys:write at all; an admin does, and makes a key with results:submit.
    const admin = callers.get("admin")!;
    const made = await call("/api/v1/api-keys", { method: "POST", headers: { Cookie: admin.cookie }, body: { name: "ci", scopes: ["results:submit", "webhooks:write"] } });
    expect(made.status, made.text).toBe(201);
    const key = made.body.key as string;
    expect((await call("/api/v1/webhooks", { key })).status).toBe(403); // it has webhooks:write, not :read
    // Demote the admin to viewer (directly: the owner's member routes are tested elsewhere).
    await env.DB.prepare("UPDATE memberships SET role = 'viewer' WHERE user_id = ? AND organization_id = ?").bind(admin.userId, orgId).run();
    const hook = await call("/api/v1/webhooks", { method: "POST", key, body: { url: "https://receiver.test/ok/matrix", events: ["build.created.v1"] } });
    expect(hook.status, hook.text).toBe(403);
    const run = await call("/api/v1/testruns", { method: "POST", key: ownerKey, body: { project_id: (await call("/api/v1/projects", { key: ownerKey })).body.data[0].id } });
    expect((await call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key, body: { results: [] } })).status).toBe(403);
    // Promoted back: the key works again.
    await env.DB.prepare("UPDATE memberships SET role = 'admin' WHERE user_id = ? AND organization_id = ?").bind(admin.userId, orgId).run();
    expect((await call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key, body: { results: [{ title: "t", status: "passed", duration: 1 }] } })).status).toBe(201);
  });

  it("a session works on the native and reporting surfaces, from either cookie, and stops working after logout", async () => {
    const viewer = callers.get("viewer")!;
    const token = viewer.cookie.split("=")[1]!;
    expect((await call("/api/v1/me", { headers: { Cookie: viewer.cookie } })).body).toMatchObject({ role: "viewer", organization_id: orgId, key_id: null, user: { email: "viewer@matrix.test" } });
    const projectId = (await call("/api/v1/projects", { headers: { Cookie: viewer.cookie } })).body.data[0].id;
    const runs = await call(`/api/runs?projectId=${projectId}`, { headers: { Cookie: `sb-access-token=${token}` } });
    expect(runs.status, runs.text).toBe(200);
    expect((await call("/api/v1/projects", { headers: { Cookie: `other=1; greenlight_session=${token}` } })).status).toBe(200);
    const out = await call("/api/v1/auth/logout", { method: "POST", headers: { Cookie: viewer.cookie } });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toMatch(/^greenlight_session=; .*Max-Age=0$/);
    expect((await call("/api/v1/projects", { headers: { Cookie: viewer.cookie } })).status).toBe(401);
    const reporting = await call(`/api/runs?projectId=${projectId}`, { headers: { Cookie: `sb-access-token=${token}` } });
    expect(reporting.status).toBe(401);
    expect(reporting.body.error.code).toBe("UNAUTHORIZED");
  });

  it("login answers a wrong password and an unknown e-mail alike, and is limited per e-mail", async () => {
    const wrong = await call("/api/v1/auth/login", { method: "POST", body: { email: "owner@matrix.test", password: "not the password" } });
    const unknown = await call("/api/v1/auth/login", { method: "POST", body: { email: "nobody@matrix.test", password: "not the password" } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect({ ...wrong.body, details: undefined }).toEqual({ ...unknown.body, details: undefined });
    expect(wrong.body.message).toBe("Invalid email or password.");
    // E-mail case and spaces do not matter.
    expect((await call("/api/v1/auth/login", { method: "POST", body: { email: "  OWNER@Matrix.test ", password: PASSWORD } })).status).toBe(200);
    // Ten attempts a minute per e-mail, whether it names anyone or not; the eleventh waits.
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await call("/api/v1/auth/login", { method: "POST", body: { email: "guess@matrix.test", password: `guess ${i}` } })).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses[10]).toBe(429);
  });
});
