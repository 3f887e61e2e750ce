import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createProject, createTenant, type Tenant } from "./helpers/factories";

function register(t: Tenant | string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return call("/api/v1/builds", { method: "POST", key: typeof t === "string" ? t : t.key, body, headers });
}

async function newRelease(t: Tenant, projectId = t.project.id, name = `R ${Math.random()}`): Promise<string> {
  const res = await call("/api/v1/releases", { method: "POST", key: t.key, body: { project_id: projectId, name } });
  if (res.status === 201) return res.body.id;
  // Until the releases routes land: the same row they write.
  const id = `rel_${crypto.randomUUID().replace(/-/g, "").slice(0, 26).toUpperCase()}`;
  const now = new Date().toISOString();
  const org = (await env.DB.prepare("SELECT organization_id FROM projects WHERE id = ?").bind(projectId).first<{ organization_id: string }>())!;
  await env.DB.prepare("INSERT INTO releases (id, organization_id, project_id, name, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'planned', ?, ?)")
    .bind(id, org.organization_id, projectId, name, now, now)
    .run();
  return id;
}

const queueOf = (projectId: string) => env.BUILD_QUEUE.get(env.BUILD_QUEUE.idFromName(projectId));

async function queue(t: Tenant, projectId = t.project.id) {
  const res = await call(`/api/v1/projects/${projectId}/build-queue`, { key: t.key });
  expect(res.status, res.text).toBe(200);
  return res.body as { size: number; data: { id: string; queue_position: number; name: string }[] };
}

async function count(sql: string, ...binds: unknown[]): Promise<number> {
  return (await env.DB.prepare(sql).bind(...binds).first<{ n: number }>())!.n;
}

describe("POST /api/v1/builds", () => {
  it("answers reference 000's example with 202 and the documented body, and lists the build in the queue", async () => {
    const t = await createTenant();
    // Reference 000, verbatim but for the key: the organization's only project is implied.
    const res = await register(t, {
      name: "v2.4.1",
      build_number: "1042",
      commit_sha: "a1b2c3d4e5f6789012345678901234567890abcd",
      branch: "main",
    });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ name: "v2.4.1", status: "planned", source: "api", queue_position: 1, message: "Build queued for release assignment." });
    expect(res.body.id).toMatch(/^bld_[0-9A-Z]{26}$/);
    const q = await queue(t);
    expect(q.data.map((b) => [b.id, b.queue_position])).toEqual([[res.body.id, 1]]);
    expect((await call(`/api/v1/builds/${res.body.id}`, { key: t.key })).body).toMatchObject({ queue_position: 1, release_id: null, repo_url: null });
    // build.created.v1 is in the outbox, once.
    expect(await count("SELECT count(*) AS n FROM events WHERE type = 'build.created.v1' AND subject_id = ?", res.body.id)).toBe(1);
  });

  it("needs project_id from an organization-wide key once there is more than one project", async () => {
    const t = await createTenant();
    await createProject(t);
    const res = await register(t, { name: "v1", build_number: "1" });
    expect(res.status).toBe(400);
    expect(res.body.details.field).toBe("project_id");
  });

  it("takes the GitHub Actions example's body from a project-restricted CI key", async () => {
    const t = await createTenant();
    const ci = await createKey(t, { scopes: ["builds:create"], projectId: t.project.id });
    const res = await register(ci.key, {
      name: "refs/heads/main".replace("refs/heads/", ""),
      build_number: "57",
      commit_sha: "0123456789abcdef0123456789abcdef01234567",
      branch: "main",
      repo_url: "https://github.com/acme/shop",
    });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toMatchObject({ project_id: t.project.id, repo_url: "https://github.com/acme/shop", build_number: "57" });
  });

  it("creates a build with a release of its project with 201, outside the queue", async () => {
    const t = await createTenant();
    const release = await newRelease(t);
    const res = await register(t, { name: "v3", build_number: "1", release_id: release, project_id: t.project.id });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ release_id: release, queue_position: null });
    expect((await queue(t)).size).toBe(0);
  });

  it("answers a re-registration with the existing build, by build_number or by commit and name", async () => {
    const t = await createTenant();
    const first = await register(t, { name: "v1", build_number: "7", commit_sha: "abcdef1", project_id: t.project.id });
    const byNumber = await register(t, { name: "other name", build_number: "7", project_id: t.project.id });
    const byCommit = await register(t, { name: "v1", commit_sha: "ABCDEF1", project_id: t.project.id });
    expect(byNumber.status).toBe(202);
    expect(byNumber.body.id).toBe(first.body.id);
    expect(byCommit.body.id).toBe(first.body.id);
    expect(byNumber.body.queue_position).toBe(1);
    expect(await count("SELECT count(*) AS n FROM builds WHERE project_id = ?", t.project.id)).toBe(1);
    expect(await count("SELECT count(*) AS n FROM events WHERE type = 'build.created.v1' AND project_id = ?", t.project.id)).toBe(1);
    // The same build_number in another project is another build.
    const other = await createProject(t);
    const elsewhere = await register(t, { name: "v1", build_number: "7", project_id: other.id });
    expect(elsewhere.body.id).not.toBe(first.body.id);
    expect(elsewhere.body.queue_position).toBe(1);
  });

  it("gives 100 concurrent registrations positions 1..100 without gaps or duplicates", { timeout: 60_000 }, async () => {
    const t = await createTenant();
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => register(t, { name: `b${i}`, build_number: String(i), project_id: t.project.id })),
    );
    for (const a of answers) expect(a.status, a.text).toBe(202);
    expect(answers.map((a) => a.body.queue_position).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const q = await queue(t);
    expect(q.size).toBe(100);
    expect(q.data.map((b) => b.queue_position)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    // The queue's order is the order in which the object took the registrations.
    const byId = new Map(answers.map((a) => [a.body.id, a.body.queue_position]));
    for (const b of q.data) expect(byId.get(b.id)).toBe(b.queue_position);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["missing name", { build_number: "1" }, "name"],
    ["a commit_sha that is not 7-40 hex", { name: "x", commit_sha: "xyz123" }, "commit_sha"],
    ["a 41-character commit_sha", { name: "x", commit_sha: "a".repeat(41) }, "commit_sha"],
    ["a build_number over 100 characters", { name: "x", build_number: "9".repeat(101) }, "build_number"],
    ["a repo_url that is not a URL", { name: "x", repo_url: "not a url" }, "repo_url"],
  ];
  for (const [what, body, field] of bad) {
    it(`refuses ${what} in reference 000's envelope, writing nothing`, async () => {
      const t = await createTenant();
      const res = await register(t, { ...body, project_id: t.project.id });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe("invalid_request");
      expect(res.body.details.field).toBe(field);
      expect(res.body.message).toContain(field);
      expect(await count("SELECT count(*) AS n FROM builds WHERE project_id = ?", t.project.id)).toBe(0);
    });
  }

  it("refuses a release of another project or organization with 404, writing nothing", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const foreign = await newRelease(other);
    const sibling = await createProject(t);
    const siblingRelease = await newRelease(t, sibling.id);
    for (const release of [foreign, siblingRelease]) {
      const res = await register(t, { name: "x", release_id: release, project_id: t.project.id });
      expect(res.status).toBe(404);
      expect(res.body.error).toBe("not_found");
    }
    expect(await count("SELECT count(*) AS n FROM builds WHERE project_id = ?", t.project.id)).toBe(0);
  });
});

describe("assigning builds to releases", () => {
  it("takes an assigned build out of the queue and moves the ones behind it up", async () => {
    const t = await createTenant();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await register(t, { name: `b${i}`, build_number: String(i), project_id: t.project.id })).body.id);
    const release = await newRelease(t);
    const assigned = await call(`/api/v1/builds/${ids[1]}`, { method: "PATCH", key: t.key, body: { release_id: release } });
    expect(assigned.status, assigned.text).toBe(200);
    expect(assigned.body).toMatchObject({ release_id: release, queue_position: null });
    const q = await queue(t);
    expect(q.data.map((b) => [b.id, b.queue_position])).toEqual([
      [ids[0], 1],
      [ids[2], 2],
      [ids[3], 3],
    ]);
    expect((await call(`/api/v1/builds/${ids[3]}`, { key: t.key })).body.queue_position).toBe(3);
    // Taken out of its release again, it goes to the end of the queue; cancelled, it leaves it.
    expect((await call(`/api/v1/builds/${ids[1]}`, { method: "PATCH", key: t.key, body: { release_id: null } })).body.queue_position).toBe(4);
    expect((await call(`/api/v1/builds/${ids[0]}`, { method: "PATCH", key: t.key, body: { status: "cancelled" } })).body.queue_position).toBeNull();
    expect((await queue(t)).data.map((b) => b.id)).toEqual([ids[2], ids[3], ids[1]]);
    const listed = await call(`/api/v1/builds?project_id=${t.project.id}&status=planned&limit=2`, { key: t.key });
    expect(listed.body.pagination).toMatchObject({ total: 3, limit: 2, has_more: true });
    // Newest first: b3 (second in the queue), then b2 (first).
    expect(listed.body.data.map((b: any) => [b.id, b.queue_position])).toEqual([
      [ids[3], 2],
      [ids[2], 1],
    ]);
  });

  it("lets one of two concurrent assignments win; the other sees the state it lost to", async () => {
    const t = await createTenant();
    const build = (await register(t, { name: "b", build_number: "1", project_id: t.project.id })).body.id;
    const [r1, r2] = [await newRelease(t), await newRelease(t)];
    const answers = await Promise.all([r1, r2].map((r) => call(`/api/v1/builds/${build}`, { method: "PATCH", key: t.key, body: { release_id: r } })));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 409]);
    const winner = answers.find((a) => a.status === 200)!.body.release_id;
    const loser = answers.find((a) => a.status === 409)!;
    expect(loser.body.error).toBe("conflict");
    expect(loser.body.details.release_id).toBe(winner);
    expect((await call(`/api/v1/builds/${build}`, { key: t.key })).body.release_id).toBe(winner);
    // Asking again for the state it already has is not a conflict.
    expect((await call(`/api/v1/builds/${build}`, { method: "PATCH", key: t.key, body: { release_id: winner } })).status).toBe(200);
  });

  it("refuses a release of another project and an unknown status; an empty PATCH changes nothing", async () => {
    const t = await createTenant();
    const build = (await register(t, { name: "b", project_id: t.project.id })).body.id;
    const other = await createProject(t);
    const elsewhere = await newRelease(t, other.id);
    expect((await call(`/api/v1/builds/${build}`, { method: "PATCH", key: t.key, body: { release_id: elsewhere } })).status).toBe(404);
    const empty = await call(`/api/v1/builds/${build}`, { method: "PATCH", key: t.key, body: {} });
    expect(empty.status).toBe(200);
    expect((await call(`/api/v1/builds/${build}`, { method: "PATCH", key: t.key, body: { status: "shipped" } })).status).toBe(400);
    expect((await call(`/api/v1/builds/${build}`, { key: t.key })).body).toMatchObject({ release_id: null, status: "planned", queue_position: 1 });
  });

  it("needs builds:update to assign and builds:read to read", async () => {
    const t = await createTenant();
    const build = (await register(t, { name: "b", project_id: t.project.id })).body.id;
    const ci = await createKey(t, { scopes: ["builds:create"] });
    expect((await call(`/api/v1/builds/${build}`, { method: "PATCH", key: ci.key, body: { status: "cancelled" } })).status).toBe(403);
    expect((await call(`/api/v1/builds/${build}`, { key: ci.key })).status).toBe(403);
    expect((await call(`/api/v1/projects/${t.project.id}/build-queue`, { key: ci.key })).status).toBe(403);
  });
});

describe("the build queue Durable Object", () => {
  it("keeps its order through eviction", async () => {
    const t = await createTenant();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await register(t, { name: `b${i}`, build_number: String(i), project_id: t.project.id })).body.id);
    const stub = queueOf(t.project.id);
    await evictDurableObject(stub);
    expect((await queue(t)).data.map((b) => b.id)).toEqual(ids);
    expect(await stub.size()).toBe(5);
  });

  it("agrees with D1 after a registration that stopped between its two writes", async () => {
    const t = await createTenant();
    const first = (await register(t, { name: "first", build_number: "1", project_id: t.project.id })).body.id;
    // The build reached D1, but the call to the queue never happened (the worker died there).
    const now = new Date().toISOString();
    await env.DB.prepare(
      "INSERT INTO builds (id, organization_id, project_id, name, build_number, status, source, created_at, updated_at) VALUES ('bld_00000000000000000000LOST1', ?, ?, 'lost', '2', 'planned', 'api', ?, ?)",
    )
      .bind(t.organization.id, t.project.id, now, now)
      .run();
    await runInDurableObject(queueOf(t.project.id), async (instance) => {
      expect((await instance.list()).map((e) => e.buildId)).toEqual([first]);
    });
    // The queue as read is D1's, in order, and the object has caught up.
    expect((await queue(t)).data.map((b) => [b.id, b.queue_position])).toEqual([
      [first, 1],
      ["bld_00000000000000000000LOST1", 2],
    ]);
    await runInDurableObject(queueOf(t.project.id), async (instance) => {
      expect((await instance.list()).map((e) => e.buildId)).toEqual([first, "bld_00000000000000000000LOST1"]);
    });
    // A CI retry of the lost registration finds the build and its place.
    const retry = await register(t, { name: "lost", build_number: "2", project_id: t.project.id });
    expect(retry.body).toMatchObject({ id: "bld_00000000000000000000LOST1", queue_position: 2 });
  });

  it("agrees with D1 after an assignment that stopped between its two writes", async () => {
    const t = await createTenant();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await register(t, { name: `b${i}`, build_number: String(i), project_id: t.project.id })).body.id);
    const release = await newRelease(t);
    // D1 took the assignment; the object was never told.
    await env.DB.prepare("UPDATE builds SET release_id = ? WHERE id = ?").bind(release, ids[0]).run();
    expect(await queueOf(t.project.id).size()).toBe(3);
    expect((await queue(t)).data.map((b) => [b.id, b.queue_position])).toEqual([
      [ids[1], 1],
      [ids[2], 2],
    ]);
    expect(await queueOf(t.project.id).size()).toBe(2);
    expect((await call(`/api/v1/builds/${ids[0]}`, { key: t.key })).body).toMatchObject({ release_id: release, queue_position: null });
  });
});

describe("deleting a project", () => {
  it("empties its build queue object", async () => {
    const t = await createTenant();
    const other = await createProject(t);
    await register(t, { name: "b", project_id: other.id });
    expect(await queueOf(other.id).size()).toBe(1);
    expect((await call(`/api/v1/projects/${other.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    await runInDurableObject(queueOf(other.id), async (_instance, state) => {
      expect(state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'queue'").toArray()).toHaveLength(0);
    });
  });
});

describe("builds across tenants", () => {
  it("answers 404 to another tenant's build and project queue and changes nothing", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const theirs = (await register(b, { name: "b", project_id: b.project.id })).body.id;
    expect((await call(`/api/v1/builds/${theirs}`, { key: a.key })).status).toBe(404);
    expect((await call(`/api/v1/builds/${theirs}`, { method: "PATCH", key: a.key, body: { status: "cancelled" } })).status).toBe(404);
    expect((await call(`/api/v1/projects/${b.project.id}/build-queue`, { key: a.key })).status).toBe(404);
    expect((await register(a, { name: "x", project_id: b.project.id })).status).toBe(404);
    expect((await call(`/api/v1/builds?project_id=${b.project.id}`, { key: a.key })).status).toBe(404);
    expect((await call("/api/v1/builds", { key: a.key })).body.data).toHaveLength(0);
    expect((await call(`/api/v1/builds/${theirs}`, { key: b.key })).body).toMatchObject({ status: "planned", queue_position: 1 });
  });
});
