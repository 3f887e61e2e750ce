import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { eventDefinition } from "../src/core/events/catalog";
import { canManage } from "../src/core/users/members";
import { hashPassword } from "../src/core/users/passwords";
import type { MemberRole } from "../src/db/schema";
import { sha256Hex } from "../src/lib/crypto";
import { newId } from "../src/lib/ids";
import { ORIGIN, call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";

const PASSWORD = "correct horse battery staple";
const DAY_MS = 24 * 60 * 60 * 1000;

let seq = 0;
const uniqueEmail = (label: string) => `${label}-${Date.now().toString(36)}-${++seq}@members.test`;

interface TestUser {
  userId: string;
  memberId: string;
  email: string;
}

/** A user with a membership, written straight to D1 (the API has no sign-up: people join by invitation). */
async function addUser(
  organizationId: string,
  role: MemberRole,
  options: { email?: string; name?: string | null; avatarUrl?: string | null; joinedAt?: string } = {},
): Promise<TestUser> {
  const userId = newId("usr");
  const memberId = newId("mem");
  const email = options.email ?? uniqueEmail(role);
  const p = await hashPassword(PASSWORD);
  const at = options.joinedAt ?? new Date().toISOString();
  await env.DB.batch([
    env.DB.prepare(
      "INSERT INTO users (id, email, name, avatar_url, password_hash, password_salt, password_iterations, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).bind(userId, email, options.name ?? null, options.avatarUrl ?? null, p.hash, p.salt, p.iterations, at, at),
    env.DB.prepare("INSERT INTO memberships (id, organization_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)").bind(
      memberId,
      organizationId,
      userId,
      role,
      at,
      at,
    ),
  ]);
  return { userId, memberId, email };
}

/** Signs in through the API; the Cookie header value of the session. */
async function signIn(email: string, password = PASSWORD, organizationId?: string): Promise<string> {
  const res = await call("/api/v1/auth/login", { method: "POST", body: { email, password, organization_id: organizationId } });
  expect(res.status, res.text).toBe(200);
  return `greenlight_session=${res.body.session_token}`;
}

const as = (cookie: string) => ({ headers: { Cookie: cookie } });

async function roleOf(memberId: string): Promise<string | null> {
  const row = await env.DB.prepare("SELECT role FROM memberships WHERE id = ?").bind(memberId).first<{ role: string }>();
  return row?.role ?? null;
}

async function invite(tenant: Tenant, email: string, role: MemberRole = "member", key = tenant.key) {
  const res = await call(`/api/v1/organizations/${tenant.organization.id}/invitations`, { method: "POST", key, body: { email, role } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; token: string; accept_url: string; expires_at: string; created_at: string; status: string };
}

describe("reporting surface: teams (reference 003)", () => {
  it("GET /api/teams lists the key's team with exactly the reference's keys", async () => {
    const t = await createTenant("Acme Engineering");
    const res = await call("/api/teams", { headers: { "X-API-Key": t.key } });
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(1);
    expect(Object.keys(res.body.data[0]).sort()).toEqual(["createdAt", "id", "name"]);
    expect(res.body.data[0]).toMatchObject({ id: t.organization.id, name: "Acme Engineering" });
  });

  it("POST /api/teams creates a team whose Owner is the signed-in user, answered as the reference shows", async () => {
    const t = await createTenant();
    const jane = await addUser(t.organization.id, "member", { name: "Jane Smith" });
    const cookie = await signIn(jane.email);
    const res = await call("/api/teams", { method: "POST", ...as(cookie), body: { name: "QA Automation Team" } });
    expect(res.status, res.text).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(["createdAt", "id", "name"]);
    expect(res.body).toMatchObject({ id: expect.stringMatching(/^org_[0-9A-Z]{26}$/), name: "QA Automation Team" });
    expect(Date.parse(res.body.createdAt)).not.toBeNaN();
    const owner = await env.DB.prepare("SELECT role FROM memberships WHERE organization_id = ? AND user_id = ?").bind(res.body.id, jane.userId).first();
    expect(owner).toEqual({ role: "owner" });
    // The user's teams now include the new one; the session still acts in the first.
    const teams = await call("/api/teams", as(cookie));
    expect(teams.body.data.map((team: { id: string }) => team.id)).toEqual([t.organization.id, res.body.id]);
    // Signed in to the new team, the user is its owner and its only member.
    const inNew = await signIn(jane.email, PASSWORD, res.body.id);
    expect((await call("/api/v1/me", as(inNew))).body).toMatchObject({ organization_id: res.body.id, role: "owner" });
    const members = await call(`/api/team-members?teamId=${res.body.id}`, as(inNew));
    expect(members.body.data).toEqual([expect.objectContaining({ userId: jane.userId, teamId: res.body.id, role: "owner", name: "Jane Smith" })]);
  });

  it("POST /api/teams with a key a user created makes that user the Owner", async () => {
    const t = await createTenant();
    const admin = await addUser(t.organization.id, "admin");
    const made = await call("/api/v1/api-keys", { method: "POST", ...as(await signIn(admin.email)), body: { name: "ci", scopes: ["projects:read"] } });
    expect(made.status, made.text).toBe(201);
    const res = await call("/api/teams", { method: "POST", headers: { "X-API-Key": made.body.key }, body: { name: "Platform Team" } });
    expect(res.status, res.text).toBe(201);
    const owner = await env.DB.prepare("SELECT user_id, role FROM memberships WHERE organization_id = ?").bind(res.body.id).all();
    expect(owner.results).toEqual([{ user_id: admin.userId, role: "owner" }]);
  });

  it("POST /api/teams with a key no user created is 403 with a clear message, and creates nothing", async () => {
    const t = await createTenant();
    const before = await env.DB.prepare("SELECT count(*) AS n FROM organizations").first<{ n: number }>();
    const res = await call("/api/teams", { method: "POST", headers: { "X-API-Key": t.key }, body: { name: "Nobody's team" } });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("FORBIDDEN");
    expect(res.body.error.message).toMatch(/needs a user/);
    const after = await env.DB.prepare("SELECT count(*) AS n FROM organizations").first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
    const bad = await call("/api/teams", { method: "POST", headers: { "X-API-Key": t.key }, body: {} });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("VALIDATION_ERROR");
  });

  it("GET /api/team-members answers the reference's example shape, key for key", async () => {
    const t = await createTenant("Acme Engineering");
    const jane = await addUser(t.organization.id, "owner", {
      name: "Jane Smith",
      email: uniqueEmail("jane"),
      avatarUrl: "https://example.com/avatars/jane.jpg",
      joinedAt: "2026-01-10T08:00:00.000Z",
    });
    const john = await addUser(t.organization.id, "member", { name: "John Doe", email: uniqueEmail("john"), joinedAt: "2026-01-12T14:30:00.000Z" });
    const res = await call(`/api/team-members?teamId=${t.organization.id}`, { headers: { "X-API-Key": t.key } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toEqual([
      {
        id: jane.memberId,
        userId: jane.userId,
        teamId: t.organization.id,
        role: "owner",
        name: "Jane Smith",
        email: jane.email,
        avatarUrl: "https://example.com/avatars/jane.jpg",
        joinedAt: "2026-01-10T08:00:00.000Z",
      },
      {
        id: john.memberId,
        userId: john.userId,
        teamId: t.organization.id,
        role: "member",
        name: "John Doe",
        email: john.email,
        avatarUrl: null,
        joinedAt: "2026-01-12T14:30:00.000Z",
      },
    ]);
    const missing = await call("/api/team-members", { headers: { "X-API-Key": t.key } });
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe("VALIDATION_ERROR");
  });

  it("POST /api/team-members invites: pending, expiring 7 days later, with the reference's keys and the accept link", async () => {
    const t = await createTenant();
    const email = uniqueEmail("newmember");
    const res = await call("/api/team-members", { method: "POST", headers: { "X-API-Key": t.key }, body: { teamId: t.organization.id, email, role: "member" } });
    expect(res.status, res.text).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(["acceptUrl", "createdAt", "email", "expiresAt", "id", "role", "status", "teamId"]);
    expect(res.body).toMatchObject({ id: expect.stringMatching(/^inv_/), teamId: t.organization.id, email, role: "member", status: "pending" });
    expect(Date.parse(res.body.expiresAt) - Date.parse(res.body.createdAt)).toBe(7 * DAY_MS);
    expect(res.body.acceptUrl).toMatch(new RegExp(`^${ORIGIN}/api/v1/invitations/gli_[0-9a-f]{64}/accept$`));
    // The reference offers admin, member and viewer.
    const owner = await call("/api/team-members", { method: "POST", headers: { "X-API-Key": t.key }, body: { teamId: t.organization.id, email, role: "owner" } });
    expect(owner.status).toBe(400);
    expect(owner.body.error.code).toBe("VALIDATION_ERROR");
    const badEmail = await call("/api/team-members", { method: "POST", headers: { "X-API-Key": t.key }, body: { teamId: t.organization.id, email: "nope", role: "member" } });
    expect(badEmail.status).toBe(400);
    expect(badEmail.body.error).toMatchObject({ code: "VALIDATION_ERROR", message: "Field 'email' must be an e-mail address" });
  });
});

describe("invitations", () => {
  it("stores only the token's hash, accepts once creating the user, who can then sign in", async () => {
    const t = await createTenant("Invite Org");
    const email = uniqueEmail("Invitee").toUpperCase();
    const created = await invite(t, email, "viewer");
    expect(created).toMatchObject({ status: "pending", email: email.toLowerCase(), role: "viewer", organization_id: t.organization.id, invited_by: t.keyId });
    expect(created.token).toMatch(/^gli_[0-9a-f]{64}$/);
    expect(created.accept_url).toBe(`${ORIGIN}/api/v1/invitations/${created.token}/accept`);
    expect(Date.parse(created.expires_at) - Date.parse(created.created_at)).toBe(7 * DAY_MS);
    const row = await env.DB.prepare("SELECT * FROM invitations WHERE id = ?").bind(created.id).first<Record<string, unknown>>();
    expect(row?.token_hash).toBe(await sha256Hex(created.token));
    expect(JSON.stringify(row)).not.toContain(created.token.slice(4));

    const preview = await call(`/api/v1/invitations/${created.token}`);
    expect(preview.status).toBe(200);
    expect(preview.body).toEqual({
      id: created.id,
      organization_id: t.organization.id,
      organization_name: "Invite Org",
      email: email.toLowerCase(),
      role: "viewer",
      status: "pending",
      expires_at: created.expires_at,
      created_at: created.created_at,
    });

    const accepted = await call(`/api/v1/invitations/${created.token}/accept`, { method: "POST", body: { password: "a new password!", name: "New Person" } });
    expect(accepted.status, accepted.text).toBe(201);
    expect(accepted.body.user).toMatchObject({ id: expect.stringMatching(/^usr_/), email: email.toLowerCase(), name: "New Person", avatar_url: null });
    expect(accepted.body.member).toMatchObject({
      id: expect.stringMatching(/^mem_/),
      user_id: accepted.body.user.id,
      organization_id: t.organization.id,
      role: "viewer",
      email: email.toLowerCase(),
    });
    const stored = await env.DB.prepare("SELECT password_hash, password_iterations FROM users WHERE id = ?").bind(accepted.body.user.id).first<Record<string, unknown>>();
    expect(stored?.password_iterations).toBe(100_000);
    expect(stored?.password_hash).not.toContain("a new password");

    const session = await signIn(email, "a new password!");
    expect((await call("/api/v1/me", as(session))).body).toMatchObject({ role: "viewer", organization_id: t.organization.id, user: { id: accepted.body.user.id } });
    expect((await call(`/api/v1/invitations/${created.token}`)).body.status).toBe("accepted");
    const again = await call(`/api/v1/invitations/${created.token}/accept`, { method: "POST", body: { password: "a new password!" } });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: "conflict", message: "This invitation was already accepted." });
  });

  it("refuses a new user's password shorter than 10 characters, leaving the invitation pending", async () => {
    const t = await createTenant();
    const email = uniqueEmail("short");
    const created = await invite(t, email);
    const res = await call(`/api/v1/invitations/${created.token}/accept`, { method: "POST", body: { password: "123456789" } });
    expect(res.status).toBe(400);
    expect(res.body.details).toMatchObject({ field: "password", reason: "too_short" });
    expect(await env.DB.prepare("SELECT id FROM users WHERE email = ?").bind(email).first()).toBeNull();
    expect((await call(`/api/v1/invitations/${created.token}`)).body.status).toBe("pending");
  });

  it("expires after 7 days: shown as expired, and accepting answers 409 without creating anyone", async () => {
    const t = await createTenant();
    const email = uniqueEmail("late");
    const created = await invite(t, email);
    await env.DB.prepare("UPDATE invitations SET expires_at = ? WHERE id = ?").bind(new Date(Date.now() - 1000).toISOString(), created.id).run();
    expect((await call(`/api/v1/invitations/${created.token}`)).body.status).toBe("expired");
    const res = await call(`/api/v1/invitations/${created.token}/accept`, { method: "POST", body: { password: PASSWORD } });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error: "conflict", message: "This invitation expired.", details: { reason: "expired" } });
    expect(await env.DB.prepare("SELECT id FROM users WHERE email = ?").bind(email).first()).toBeNull();
  });

  it("a second invitation of the same address replaces the pending one", async () => {
    const t = await createTenant();
    const email = uniqueEmail("twice");
    const first = await invite(t, email, "viewer");
    const second = await invite(t, email, "member");
    expect((await call(`/api/v1/invitations/${first.token}`)).body.status).toBe("revoked");
    expect((await call(`/api/v1/invitations/${first.token}/accept`, { method: "POST", body: { password: PASSWORD } })).status).toBe(409);
    const ok = await call(`/api/v1/invitations/${second.token}/accept`, { method: "POST", body: { password: PASSWORD } });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.member.role).toBe("member");
    const again = await call(`/api/v1/organizations/${t.organization.id}/invitations`, { method: "POST", key: t.key, body: { email, role: "admin" } });
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/already belongs to a member/);
  });

  it("an existing user joins with their own password; a wrong one adds nothing", async () => {
    const a = await createTenant();
    const b = await createTenant("Second Org");
    const user = await addUser(a.organization.id, "member");
    const created = await invite(b, user.email, "admin");
    const wrong = await call(`/api/v1/invitations/${created.token}/accept`, { method: "POST", body: { password: "not the password at all" } });
    expect(wrong.status).toBe(401);
    expect(await env.DB.prepare("SELECT id FROM memberships WHERE organization_id = ? AND user_id = ?").bind(b.organization.id, user.userId).first()).toBeNull();
    expect((await call(`/api/v1/invitations/${created.token}`)).body.status).toBe("pending");

    const right = await call(`/api/v1/invitations/${created.token}/accept`, { method: "POST", body: { password: PASSWORD, name: "Ignored" } });
    expect(right.status, right.text).toBe(201);
    expect(right.body.user.id).toBe(user.userId);
    expect(right.body.member).toMatchObject({ user_id: user.userId, organization_id: b.organization.id, role: "admin" });
    // Still one user, with the old password, now in both organizations.
    expect((await env.DB.prepare("SELECT count(*) AS n FROM users WHERE email = ?").bind(user.email).first<{ n: number }>())?.n).toBe(1);
    const inB = await signIn(user.email, PASSWORD, b.organization.id);
    expect((await call("/api/v1/me", as(inB))).body).toMatchObject({ organization_id: b.organization.id, role: "admin" });
  });

  it("unknown and malformed tokens are 404", async () => {
    for (const token of [`gli_${"0".repeat(64)}`, "nonsense"]) {
      const preview = await call(`/api/v1/invitations/${token}`);
      expect(preview.status).toBe(404);
      expect(preview.body.error).toBe("not_found");
      expect((await call(`/api/v1/invitations/${token}/accept`, { method: "POST", body: { password: PASSWORD } })).status).toBe(404);
    }
  });

  it("writes invitation.created, with the accept link, in the same batch as the invitation", async () => {
    const t = await createTenant();
    const admin = await addUser(t.organization.id, "admin");
    const email = uniqueEmail("evented");
    const res = await call(`/api/v1/organizations/${t.organization.id}/invitations`, {
      method: "POST",
      ...as(await signIn(admin.email)),
      body: { email, role: "viewer" },
    });
    expect(res.status, res.text).toBe(201);
    const rows = await env.DB.prepare("SELECT * FROM events WHERE subject_id = ?").bind(res.body.id).all<Record<string, string | null>>();
    expect(rows.results).toHaveLength(1);
    const row = rows.results[0]!;
    expect(row).toMatchObject({ type: "invitation.created", organization_id: t.organization.id, project_id: null, dispatched_at: null });
    expect(row.id).toMatch(/^evt_[0-9A-Z]{26}$/);
    const payload = JSON.parse(row.payload!);
    expect(payload).toEqual({
      type: "invitation.created",
      invitation: {
        invitation_id: res.body.id,
        organization_id: t.organization.id,
        email,
        role: "viewer",
        expires_at: res.body.expires_at,
        accept_url: res.body.accept_url,
        invited_by: admin.userId,
      },
    });
    expect(eventDefinition("invitation.created").payload.safeParse(payload).error?.issues ?? []).toEqual([]);
  });
});

describe("roles: who manages whom", () => {
  it("canManage: owners manage everyone, admins only members and viewers (granting at most member), nobody else anyone", () => {
    const roles: MemberRole[] = ["owner", "admin", "member", "viewer"];
    for (const target of roles) {
      for (const next of [undefined, ...roles]) {
        expect(canManage({ role: "owner" }, target, next)).toBe(true);
        const below = (r: MemberRole) => r === "member" || r === "viewer";
        expect(canManage({ role: "admin" }, target, next), `admin ${target}→${next}`).toBe(below(target) && (next === undefined || below(next)));
        expect(canManage({ role: "member" }, target, next)).toBe(false);
        expect(canManage({ role: "viewer" }, target, next)).toBe(false);
        expect(canManage({ role: null }, target, next)).toBe(false);
      }
    }
  });

  it("an owner changes any role, including making owners and demoting admins", async () => {
    const t = await createTenant();
    const owner = await addUser(t.organization.id, "owner");
    const m = await addUser(t.organization.id, "member");
    const cookie = await signIn(owner.email);
    const path = `/api/v1/organizations/${t.organization.id}/members/${m.memberId}`;
    const promoted = await call(path, { method: "PATCH", ...as(cookie), body: { role: "admin" } });
    expect(promoted.status, promoted.text).toBe(200);
    expect(promoted.body).toMatchObject({ id: m.memberId, user_id: m.userId, role: "admin", email: m.email });
    expect(Object.keys(promoted.body).sort()).toEqual(["avatar_url", "email", "id", "joined_at", "name", "organization_id", "role", "user_id"]);
    expect((await call(path, { method: "PATCH", ...as(cookie), body: { role: "owner" } })).body.role).toBe("owner");
    expect((await call(path, { method: "PATCH", ...as(cookie), body: { role: "viewer" } })).body.role).toBe("viewer");
    expect(await roleOf(m.memberId)).toBe("viewer");
  });

  it("an admin manages members and viewers only, and cannot grant admin or owner", async () => {
    const t = await createTenant();
    const admin = await addUser(t.organization.id, "admin");
    const otherAdmin = await addUser(t.organization.id, "admin");
    const owner = await addUser(t.organization.id, "owner");
    const member = await addUser(t.organization.id, "member");
    const viewer = await addUser(t.organization.id, "viewer");
    const cookie = await signIn(admin.email);
    const patch = (id: string, role: MemberRole) =>
      call(`/api/v1/organizations/${t.organization.id}/members/${id}`, { method: "PATCH", ...as(cookie), body: { role } });
    const remove = (id: string) => call(`/api/v1/organizations/${t.organization.id}/members/${id}`, { method: "DELETE", ...as(cookie) });

    expect((await patch(member.memberId, "viewer")).status).toBe(200);
    expect((await patch(member.memberId, "member")).status).toBe(200);
    for (const res of [await patch(member.memberId, "admin"), await patch(member.memberId, "owner"), await patch(otherAdmin.memberId, "member"), await patch(owner.memberId, "viewer")]) {
      expect(res.status, res.text).toBe(403);
      expect(res.body.error).toBe("forbidden");
    }
    expect(await roleOf(member.memberId)).toBe("member");
    expect(await roleOf(otherAdmin.memberId)).toBe("admin");
    expect(await roleOf(owner.memberId)).toBe("owner");

    expect((await remove(otherAdmin.memberId)).status).toBe(403);
    expect((await remove(owner.memberId)).status).toBe(403);
    expect((await remove(viewer.memberId)).status).toBe(204);
    expect(await roleOf(viewer.memberId)).toBeNull();

    const inv = (role: MemberRole) =>
      call(`/api/v1/organizations/${t.organization.id}/invitations`, { method: "POST", ...as(cookie), body: { email: uniqueEmail("by-admin"), role } });
    expect((await inv("member")).status).toBe(201);
    expect((await inv("viewer")).status).toBe(201);
    expect((await inv("admin")).status).toBe(403);
    expect((await inv("owner")).status).toBe(403);
  });

  it("members and viewers read the member list but change nothing", async () => {
    const t = await createTenant();
    const member = await addUser(t.organization.id, "member");
    const viewer = await addUser(t.organization.id, "viewer");
    for (const user of [member, viewer]) {
      const cookie = await signIn(user.email);
      const list = await call(`/api/v1/organizations/${t.organization.id}/members`, as(cookie));
      expect(list.status).toBe(200);
      expect(list.body.pagination.total).toBe(2);
      const other = user === member ? viewer : member;
      const res = await call(`/api/v1/organizations/${t.organization.id}/members/${other.memberId}`, { method: "PATCH", ...as(cookie), body: { role: "member" } });
      expect(res.status).toBe(403);
    }
    expect(await roleOf(viewer.memberId)).toBe("viewer");
  });

  it("a key acts with its creator's role; a key no user created acts as an owner; a project key manages no one", async () => {
    const t = await createTenant();
    const admin = await addUser(t.organization.id, "admin");
    const target = await addUser(t.organization.id, "member");
    const adminKey = await call("/api/v1/api-keys", { method: "POST", ...as(await signIn(admin.email)), body: { name: "admin's", scopes: ["members:write", "members:read"] } });
    expect(adminKey.status, adminKey.text).toBe(201);
    const path = `/api/v1/organizations/${t.organization.id}/members/${target.memberId}`;
    expect((await call(path, { method: "PATCH", key: adminKey.body.key, body: { role: "admin" } })).status).toBe(403);
    expect((await call(path, { method: "PATCH", key: adminKey.body.key, body: { role: "viewer" } })).status).toBe(200);
    // The bootstrap key, and a key it made, are the organization's owner credential.
    const derived = await createKey(t, { scopes: ["members:write"] });
    expect((await call(path, { method: "PATCH", key: derived.key, body: { role: "owner" } })).status).toBe(200);
    expect(await roleOf(target.memberId)).toBe("owner");
    const projectKey = await createKey(t, { scopes: ["members:write"], projectId: t.project.id });
    const res = await call(path, { method: "PATCH", key: projectKey.key, body: { role: "member" } });
    expect(res.status).toBe(403);
    expect(await roleOf(target.memberId)).toBe("owner");
  });
});

describe("the last owner", () => {
  it("cannot be demoted or removed (409), by themselves or by the owner key, until there is another owner", async () => {
    const t = await createTenant();
    const owner = await addUser(t.organization.id, "owner");
    const cookie = await signIn(owner.email);
    const path = `/api/v1/organizations/${t.organization.id}/members/${owner.memberId}`;
    for (const auth of [as(cookie), { key: t.key }]) {
      const demote = await call(path, { method: "PATCH", ...auth, body: { role: "admin" } });
      expect(demote.status).toBe(409);
      expect(demote.body).toMatchObject({ error: "conflict", details: { reason: "last_owner" } });
      const remove = await call(path, { method: "DELETE", ...auth });
      expect(remove.status).toBe(409);
    }
    expect(await roleOf(owner.memberId)).toBe("owner");

    const second = await addUser(t.organization.id, "member");
    expect((await call(`/api/v1/organizations/${t.organization.id}/members/${second.memberId}`, { method: "PATCH", ...as(cookie), body: { role: "owner" } })).status).toBe(200);
    // Now the first owner may step down; then the second is the last and stays.
    expect((await call(path, { method: "PATCH", ...as(cookie), body: { role: "admin" } })).status).toBe(200);
    const secondPath = `/api/v1/organizations/${t.organization.id}/members/${second.memberId}`;
    expect((await call(secondPath, { method: "DELETE", key: t.key })).status).toBe(409);
    expect((await call(secondPath, { method: "PATCH", key: t.key, body: { role: "viewer" } })).status).toBe(409);
    expect(await roleOf(second.memberId)).toBe("owner");
  });
});

describe("tenant isolation", () => {
  it("another organization's ids are 404, like missing ones, and nothing of it changes", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const bMember = await addUser(b.organization.id, "member");
    const aMember = await addUser(a.organization.id, "member");

    const foreign = await call(`/api/v1/organizations/${b.organization.id}/members`, { key: a.key });
    const missing = await call("/api/v1/organizations/org_00000000000000000000000000/members", { key: a.key });
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(foreign.body.message).toBe(missing.body.message);

    // B's member addressed through A's own organization path: not found, not changed.
    const path = `/api/v1/organizations/${a.organization.id}/members/${bMember.memberId}`;
    const patched = await call(path, { method: "PATCH", key: a.key, body: { role: "viewer" } });
    expect(patched.status).toBe(404);
    expect(patched.body.message).toBe("Member not found.");
    expect((await call(path, { method: "DELETE", key: a.key })).status).toBe(404);
    expect((await call(`/api/v1/organizations/${b.organization.id}/members/${bMember.memberId}`, { method: "DELETE", key: a.key })).status).toBe(404);
    expect(await roleOf(bMember.memberId)).toBe("member");

    const invited = await call(`/api/v1/organizations/${b.organization.id}/invitations`, { method: "POST", key: a.key, body: { email: uniqueEmail("x"), role: "member" } });
    expect(invited.status).toBe(404);
    const reporting = await call(`/api/team-members?teamId=${b.organization.id}`, { key: a.key });
    expect(reporting.status).toBe(404);
    expect(reporting.body.error.code).toBe("NOT_FOUND");
    const reportingInvite = await call("/api/team-members", { method: "POST", key: a.key, body: { teamId: b.organization.id, email: uniqueEmail("y"), role: "member" } });
    expect(reportingInvite.status).toBe(404);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM invitations WHERE organization_id = ?").bind(b.organization.id).first<{ n: number }>())?.n).toBe(0);

    const list = await call(`/api/v1/organizations/${a.organization.id}/members`, { key: a.key });
    expect(list.body.data.map((m: { id: string }) => m.id)).toEqual([aMember.memberId]);
  });
});

describe("sessions", () => {
  it("a wrong password and an unknown e-mail answer identically", async () => {
    const t = await createTenant();
    const user = await addUser(t.organization.id, "member");
    const wrong = await call("/api/v1/auth/login", { method: "POST", body: { email: user.email, password: "not the password" } });
    const unknown = await call("/api/v1/auth/login", { method: "POST", body: { email: uniqueEmail("nobody"), password: "not the password" } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.headers.get("set-cookie")).toBeNull();
  });

  it("works on the native and reporting surfaces, and stops working after logout", async () => {
    const t = await createTenant();
    const admin = await addUser(t.organization.id, "admin");
    const cookie = await signIn(admin.email);
    const token = cookie.split("=")[1]!;
    expect((await call(`/api/v1/organizations/${t.organization.id}/members`, as(cookie))).status).toBe(200);
    expect((await call(`/api/team-members?teamId=${t.organization.id}`, as(`sb-access-token=${token}`))).status).toBe(200);
    const invited = await call("/api/team-members", { method: "POST", ...as(`sb-access-token=${token}`), body: { teamId: t.organization.id, email: uniqueEmail("s"), role: "viewer" } });
    expect(invited.status, invited.text).toBe(201);
    expect((await call("/api/v1/auth/logout", { method: "POST", ...as(cookie) })).status).toBe(204);
    expect((await call(`/api/v1/organizations/${t.organization.id}/members`, as(cookie))).status).toBe(401);
    const reporting = await call(`/api/team-members?teamId=${t.organization.id}`, as(`sb-access-token=${token}`));
    expect(reporting.status).toBe(401);
    expect(reporting.body.error.code).toBe("UNAUTHORIZED");
  });

  it("removing a member ends their sessions and disarms the keys they made", async () => {
    const t = await createTenant();
    const admin = await addUser(t.organization.id, "admin");
    const cookie = await signIn(admin.email);
    const made = await call("/api/v1/api-keys", { method: "POST", ...as(cookie), body: { name: "theirs", scopes: ["projects:read"] } });
    expect(made.status, made.text).toBe(201);
    expect((await call("/api/v1/projects", { key: made.body.key })).status).toBe(200);
    expect((await call(`/api/v1/organizations/${t.organization.id}/members/${admin.memberId}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await call("/api/v1/projects", as(cookie))).status).toBe(401);
    expect((await call("/api/v1/projects", { key: made.body.key })).status).toBe(403);
    const revoked = await env.DB.prepare("SELECT revoked_at FROM sessions WHERE user_id = ?").bind(admin.userId).first<{ revoked_at: string | null }>();
    expect(revoked?.revoked_at).not.toBeNull();
  });
});
