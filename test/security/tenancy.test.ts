import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { SCOPES } from "../../src/core/keys/scopes";
import { ADMIN_TOKEN, call } from "../helpers/http";
import { createKey, createProject, type Tenant } from "../helpers/factories";
import { type Operation, PNG, type TenantB, exampleFor, fill, idFor, operations, seedTenant } from "../helpers/routes";

/**
 * Tenant isolation over the whole route table (issue 14, cases 1, 2 and the R2 part of 9): keys of
 * another organization, and keys restricted to another project, reach nothing of tenant B through
 * a path id, a body or query field, or an artifact's file name.
 */

const PASSWORD = "correct horse battery";

interface Seeded extends TenantB {
  ownerEmail: string;
  memberId: string;
  deliveryId: string;
}

let a: Seeded;
let b: Seeded;
/** A key of organization A restricted to A's project, with every scope. */
let aProjectKey: string;
/** A key of organization B restricted to B's second project, with every scope. */
let bOtherProjectKey: string;
let ops: Operation[];
let doc: any;

/** An organization made through the admin API with an owner user (so it has a member), then seeded. */
async function seededTenant(name: string, email: string): Promise<Seeded> {
  const res = await call("/api/v1/admin/organizations", {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    body: { name, project_name: `${name} project`, owner: { email, password: PASSWORD, name: `${name} owner` } },
  });
  if (res.status !== 201) throw new Error(`setup: ${res.status} ${res.text}`);
  const tenant: Tenant = { organization: res.body.organization, project: res.body.project, key: res.body.api_key.key, keyId: res.body.api_key.id };
  const seeded = await seedTenant(tenant, name, `tenancy-${name.replace(/\W/g, "")}`);
  const members = await call(`/api/v1/organizations/${tenant.organization.id}/members`, { key: tenant.key });
  if (members.status !== 200 || members.body.data.length !== 1) throw new Error(`setup: ${members.status} ${members.text}`);
  const ping = await call(`/api/v1/webhooks/${seeded.webhookId}/ping`, { method: "POST", key: tenant.key });
  if (ping.status !== 200) throw new Error(`setup: ${ping.status} ${ping.text}`);
  return { ...seeded, ownerEmail: email, memberId: members.body.data[0].id, deliveryId: ping.body.id };
}

/** Path ids other than {id}: a webhook's delivery and an organization's member. */
function withSecondaryIds(path: string, t: Pick<Seeded, "deliveryId" | "memberId">): string {
  return path.replace(/\{delivery_id\}/g, t.deliveryId).replace(/\{member_id\}/g, t.memberId);
}

const missingId = (id: string) => id.replace(/_.*/, "_00000000000000000000000000");

/** Ids in a body differ between the foreign and the missing answer; nothing else may. */
const stripIds = (body: unknown) =>
  JSON.stringify(body ?? null).replace(/"(org|proj|key|run|res|tc|ing|bld|rel|wh|whd|art|plan|job|mem)_[0-9A-Z]+"/g, '"ID"');

/**
 * Everything organization `orgId` has in D1, table by table: every row of every table that names
 * the organization, or one of its projects, runs, artifacts or ingests. Columns that a read
 * legitimately writes (a key's last use) are left out. Equal before and after means nothing of the
 * organization was written.
 */
async function fingerprint(orgId: string): Promise<Record<string, string[]>> {
  const tables = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
  ).all<{ name: string }>();
  const owners: Array<[column: string, subquery: string]> = [
    ["organization_id", "?"],
    ["project_id", "SELECT id FROM projects WHERE organization_id = ?"],
    ["run_id", "SELECT id FROM test_runs WHERE organization_id = ?"],
    ["artifact_id", "SELECT id FROM artifacts WHERE organization_id = ?"],
    ["ingest_id", "SELECT id FROM ingests WHERE organization_id = ?"],
  ];
  const out: Record<string, string[]> = {};
  for (const { name } of tables.results) {
    const columns = (await env.DB.prepare(`PRAGMA table_info("${name}")`).all<{ name: string }>()).results.map((c) => c.name);
    let where: string | null = name === "organizations" ? "id = ?" : null;
    for (const [column, subquery] of owners) {
      if (where === null && columns.includes(column)) where = `${column} IN (${subquery})`;
    }
    if (where === null) continue;
    const rows = await env.DB.prepare(`SELECT * FROM "${name}" WHERE ${where}`).bind(orgId).all<Record<string, unknown>>();
    out[name] = rows.results.map(({ last_used_at: _lastUsed, ...row }) => JSON.stringify(row)).sort();
  }
  return out;
}

function expectSameFingerprint(before: Record<string, string[]>, after: Record<string, string[]>): void {
  for (const table of Object.keys(before)) expect(after[table], `organization B's ${table}`).toEqual(before[table]);
  expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
}

beforeAll(async () => {
  a = await seededTenant("Tenancy A", "owner@tenancy-a.test");
  b = await seededTenant("Tenancy B", "owner@tenancy-b.test");
  const bSecond = await createProject(b, "B's second project");
  aProjectKey = (await createKey(a, { scopes: [...SCOPES], projectId: a.project.id, name: "A project key" })).key;
  bOtherProjectKey = (await createKey(b, { scopes: [...SCOPES], projectId: bSecond.id, name: "B second project key" })).key;
  ops = await operations();
  doc = (await call("/openapi.json")).body;
});

describe("a project-restricted key on every id-bearing route of another tenant", () => {
  const callers = [
    { what: "a key restricted to a project of another organization", key: () => aProjectKey, sameOrganization: false },
    { what: "a key restricted to another project of the same organization", key: () => bOtherProjectKey, sameOrganization: true },
  ];
  for (const caller of callers) {
    it(`${caller.what} gets 404, with the same body as for a missing id, and writes nothing`, async () => {
      // The organization's own routes are the same organization's for a key of another of its
      // projects: only routes addressing a project's resources (or another organization) apply.
      const withIds = ops.filter(
        (o) => o.access.includes(":") && /\{id\}/.test(o.path) && !(caller.sameOrganization && /\/organizations\/\{id\}/.test(o.path)),
      );
      expect(withIds.length).toBeGreaterThan(caller.sameOrganization ? 50 : 55);
      const before = await fingerprint(b.organization.id);
      const kinds = new Set<string>();
      for (const op of withIds) {
        const id = idFor(op.path, b);
        kinds.add(id.replace(/_.*/, ""));
        const foreign = await call(fill(withSecondaryIds(op.path, b), id), { method: op.method, key: caller.key(), body: op.example });
        const missing = await call(fill(withSecondaryIds(op.path, { deliveryId: missingId(b.deliveryId), memberId: missingId(b.memberId) }), missingId(id)), {
          method: op.method,
          key: caller.key(),
          body: op.example,
        });
        // Deleting a run or an artifact is idempotent: a missing one (and so another tenant's) answers like a deleted one.
        const idempotentDelete = op.method === "DELETE" && /\/(testruns|runs|artifacts)\//.test(op.path);
        const expected = idempotentDelete ? (op.path.startsWith("/api/v1/") ? 204 : 200) : 404;
        expect(foreign.status, `${op.method} ${op.path}: ${foreign.text}`).toBe(expected);
        expect(missing.status, `${op.method} ${op.path}`).toBe(expected);
        expect(stripIds(foreign.body), `${op.method} ${op.path}`).toBe(stripIds(missing.body));
      }
      // Runs, results, test cases, ingests, builds, releases, artifacts and uploads, webhooks (and
      // their deliveries), plans, jobs, keys, projects; members and organizations from outside.
      expect([...kinds].sort()).toEqual(
        caller.sameOrganization
          ? ["art", "bld", "ing", "job", "key", "plan", "proj", "rel", "res", "run", "tc", "wh"]
          : ["art", "bld", "ing", "job", "key", "org", "plan", "proj", "rel", "res", "run", "tc", "wh"],
      );
      expectSameFingerprint(before, await fingerprint(b.organization.id));
    });
  }
});

describe("signed artifact links", () => {
  async function linkOf(t: Seeded): Promise<URL> {
    const res = await call(`/api/v1/artifacts/${t.artifactId}`, { key: t.key });
    expect(res.status, res.text).toBe(200);
    return new URL(res.body.url);
  }
  const pathAndQuery = (url: URL) => `${url.pathname}${url.search}`;

  it("a link is good for its own artifact only: another id under it, or another artifact's signature, is 403", async () => {
    const bLink = await linkOf(b);
    const aLink = await linkOf(a);
    // B's link with A's artifact id put in (and the other way round).
    const swapped = pathAndQuery(bLink).replace(b.artifactId, a.artifactId);
    expect(swapped).toContain(a.artifactId);
    const forB = pathAndQuery(aLink).replace(a.artifactId, b.artifactId);
    // A signature made for a missing artifact: still 403, so a link cannot probe which ids exist.
    const forMissing = pathAndQuery(bLink).replace(b.artifactId, missingId(b.artifactId));
    for (const [what, path] of [
      ["B's link with A's artifact id", swapped],
      ["A's signature on B's artifact", forB],
      ["B's signature on a missing artifact", forMissing],
    ] as const) {
      for (const key of [undefined, a.key, b.key]) {
        const res = await call(path, { key });
        expect(res.status, `${what}: ${res.text}`).toBe(403);
        expect(res.body).toMatchObject({ error: "forbidden", details: { reason: "invalid_signature" } });
        expect(res.headers.get("content-disposition")).toBeNull();
      }
    }
  });

  it("a valid link is a bearer credential: it serves the file to whoever holds it, with or without any key", async () => {
    const bLink = await linkOf(b);
    for (const key of [undefined, a.key, "gl_live_not-a-key"]) {
      const res = await call(pathAndQuery(bLink), { key });
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/png");
      expect(res.headers.get("content-length")).toBe(String(PNG.byteLength));
    }
    // Its signature covers the expiry: pushing it later breaks the link.
    const later = new URL(bLink);
    later.searchParams.set("expires", String(Number(later.searchParams.get("expires")) + 3600));
    expect((await call(pathAndQuery(later))).status).toBe(403);
  });
});

type Variant = "foreign" | "missing" | "own";

/** B's value for each tenant-naming field (or one naming nothing), as the field's schema types it. */
function foreignValue(field: string, schema: any, variant: Variant = "foreign"): unknown {
  if (variant === "own" && field !== "role") return ownValue(field, schema);
  const missing = variant === "missing";
  // The strongest role the field's schema allows.
  if (field === "role") return ["owner", "admin"].find((r) => !schema?.enum || schema.enum.includes(r));
  if (field === "teamId" || field === "organization_id") return missing ? missingId(b.organization.id) : b.organization.id;
  if (schema?.type === "integer" || schema?.type === "number") return missing ? 999_999_999 : b.project.number;
  return missing ? missingId(b.project.id) : b.project.id;
}

const TENANT_FIELDS = ["project_id", "projectId", "teamId", "organization_id", "role"];

/** A's own ids for the other fields a body or query needs, so the request gets as far as the tenant field. */
function ownValue(field: string, schema: any): unknown {
  const byName: Record<string, unknown> = {
    project_id: a.project.id,
    projectId: schema?.type === "integer" ? a.project.number : a.project.id,
    teamId: a.organization.id,
    organization_id: a.organization.id,
    run_id: a.runId,
    runId: a.runId,
    result_id: a.resultId,
    testId: a.resultId,
    release_id: a.releaseId,
    build_id: a.buildId,
    test_case_id: a.testCaseId,
    url: "https://receiver.test/ok/tenancy-fields",
    events: ["build.created.v1"],
    email: "someone@tenancy-fields.test",
    password: PASSWORD,
  };
  if (field in byName) return byName[field];
  return exampleFor(schema, doc);
}

function resolve(schema: any): any {
  return schema?.$ref ? resolve(doc.components.schemas[schema.$ref.split("/").pop()]) : schema;
}

interface FieldCase {
  op: Operation;
  field: string;
  location: "body" | "query" | "form";
}

function fieldCases(): FieldCase[] {
  const cases: FieldCase[] = [];
  for (const op of ops) {
    const json = resolve(op.operation.requestBody?.content?.["application/json"]?.schema);
    const form = op.operation.requestBody?.content?.["multipart/form-data"]?.schema;
    const query = (op.operation.parameters ?? []).filter((p: any) => p.in === "query").map((p: any) => p.name as string);
    for (const field of TENANT_FIELDS) {
      if (json?.properties?.[field]) cases.push({ op, field, location: "body" });
      if (form?.properties?.[field]) cases.push({ op, field, location: "form" });
      if (query.includes(field)) cases.push({ op, field, location: "query" });
    }
  }
  return cases;
}

/** The request of one case: A's key (the login route: A's owner's password), A's ids everywhere but the field. */
function requestFor(c: FieldCase, variant: Variant): { path: string; init: { method: string; key?: string; body?: unknown } } {
  const { op, field } = c;
  // A role is B's when it is given to B's member (under A's organization, so the path itself is
  // no reason to refuse), or to someone in B's organization.
  const roleInB = field === "role" && !op.path.includes("{member_id}");
  const ownId = /\{id\}/.test(op.path) ? idFor(op.path, a) : "";
  const bOrg = variant === "foreign" ? b.organization.id : variant === "own" ? a.organization.id : missingId(b.organization.id);
  const bMember = variant === "foreign" ? b.memberId : variant === "own" ? a.memberId : missingId(b.memberId);
  const path = fill(
    withSecondaryIds(op.path, { deliveryId: a.deliveryId, memberId: field === "role" ? bMember : a.memberId }),
    roleInB && ownId.startsWith("org_") ? bOrg : ownId,
  );
  const key = op.access === "public" ? undefined : a.key;
  if (c.location === "form") {
    const form = new FormData();
    form.append("type", "screenshot");
    form.append("runId", a.runId);
    form.append(field, String(foreignValue(field, { type: "string" }, variant)));
    form.append("file", new File([PNG], "cross.png", { type: "image/png" }));
    return { path, init: { method: op.method, key, body: form } };
  }
  if (c.location === "query") {
    const params = new URLSearchParams();
    for (const p of op.operation.parameters ?? []) {
      if (p.in !== "query") continue;
      if (p.name === field) params.set(p.name, String(foreignValue(field, p.schema, variant)));
      else if (p.required) params.set(p.name, String(ownValue(p.name, p.schema)));
    }
    const json = resolve(op.operation.requestBody?.content?.["application/json"]?.schema);
    // A report in the native format: the ingest's target is what the query names.
    const report = { results: [{ title: "cross-tenant", status: "passed", duration: 1 }] };
    const body = op.path.endsWith("/results/ingest") ? report : json ? bodyOf(json) : undefined;
    return { path: `${path}?${params}`, init: { method: op.method, key, body } };
  }
  const json = resolve(op.operation.requestBody.content["application/json"].schema);
  const body = { ...bodyOf(json), [field]: foreignValue(field, resolve(json.properties[field]), variant) };
  if (roleInB && "teamId" in body) body.teamId = bOrg;
  if (op.path === "/api/v1/auth/login") Object.assign(body, { email: a.ownerEmail, password: PASSWORD });
  return { path, init: { method: op.method, key, body } };
}

function bodyOf(json: any): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const name of json.required ?? []) body[name] = ownValue(name, json.properties[name]);
  return body;
}

describe("tenant-naming fields in bodies and queries", () => {
  it("another tenant's project_id, projectId, teamId, organization_id or member (role) is refused or ignored, never written", { timeout: 120_000 }, async () => {
    const cases = fieldCases();
    const before = await fingerprint(b.organization.id);
    const outcomes: string[] = [];
    const ignored: string[] = [];
    for (const c of cases) {
      const { path, init } = requestFor(c, "foreign");
      const res = await call(path, init);
      const missing = requestFor(c, "missing");
      const control = await call(missing.path, missing.init);
      // And A's own value is accepted: so the refusal was the field's doing.
      const ownRequest = requestFor(c, "own");
      const own = await call(ownRequest.path, ownRequest.init);
      const label = `${c.op.method} ${c.op.path} ${c.location} ${c.field} → ${res.status} (own: ${own.status})`;
      expect(own.status, `${label}: ${own.text.slice(0, 300)}`).toBeLessThan(300);
      outcomes.push(label);
      expect(res.status, `${label}: ${res.text.slice(0, 300)}`).toBeLessThan(500);
      // B's id gets the answer an id naming nothing gets: no way to tell B's ids exist.
      expect(res.status, `${label} (missing: ${control.status} ${control.text.slice(0, 200)})`).toBe(control.status);
      if (res.status < 300) {
        // Accepted: then the field named nothing of B's, and nothing of B's came back.
        ignored.push(label);
        expect(res.text, label).not.toContain(b.organization.id);
        expect(res.text, label).not.toContain(b.project.id);
        expect(res.text, label).not.toContain(b.runId);
      } else {
        expect(stripIds(res.body), label).toBe(stripIds(control.body));
        // Refused because of the field: as a missing id (404), or the login as bad credentials.
        expect([401, 404], `${label}: ${res.text.slice(0, 300)}`).toContain(res.status);
      }
    }
    // Every one of the fields appears somewhere in the table, on several surfaces.
    expect(new Set(cases.map((c) => c.field))).toEqual(new Set(TENANT_FIELDS));
    expect(cases.length, outcomes.join("\n")).toBeGreaterThan(25);
    expectSameFingerprint(before, await fingerprint(b.organization.id));
    // B's member is still B's owner; A's organization gained no project of B's.
    expect((await call(`/api/v1/organizations/${b.organization.id}/members`, { key: b.key })).body.data).toMatchObject([{ id: b.memberId, role: "owner" }]);
  });
});

/** A multipart body written byte by byte, so a file name reaches the parser exactly as given. */
function multipart(fields: Array<[string, string]>, file: { header: string; bytes: Uint8Array }, fileFirst = false): { body: Uint8Array; contentType: string } {
  const boundary = "----greenlight-tenancy";
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const fieldChunks = fields.map(([name, value]) => enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  const fileChunks = [enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; ${file.header}\r\nContent-Type: image/png\r\n\r\n`), file.bytes, enc.encode("\r\n")];
  if (fileFirst) chunks.push(...fileChunks, ...fieldChunks);
  else chunks.push(...fieldChunks, ...fileChunks);
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  const body = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.byteLength;
  }
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.ARTIFACTS.list({ cursor, limit: 1000 });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

describe("artifact file names never choose an R2 key", () => {
  const longAscii = `${"a".repeat(1021)}.png`; // 1,025 bytes
  const longUtf8 = `${"é".repeat(600)}.png`; // 1,204 bytes in UTF-8, 604 characters
  const hostile: Array<[string, string]> = [
    ["traversal", "../../../evil-traversal.png"],
    ["traversal into another project", `../../../../projects/${"proj_B"}/runs/x/artifacts/evil-cross.png`],
    ["encoded traversal ..%2f", "..%2f..%2fevil-encoded.png"],
    ["encoded dots %2e%2e%2f", "%2e%2e%2fevil-dots.png"],
    ["double-encoded traversal", "%252e%252e%252fevil-double.png"],
    ["encoded dots without a separator", "%2e%2e"],
    ["an absolute path", "/etc/evil-absolute.png"],
    ["a Windows path", "C:\\evil\\windows.png"],
    ["a UNC path", "\\\\server\\share\\evil-unc.png"],
    ["a backslash traversal", "..\\..\\evil-backslash.png"],
    ["a NUL byte", "evil\u0000nul.png"],
    ["a line break", "evil\nline.png"],
    ["a directory reference", ".."],
    ["a name over 1,024 bytes", longAscii],
    ["a name over 1,024 bytes of UTF-8", longUtf8],
  ];
  const fine = ["a..b.png", "report (final) #2.png", "スクリーンショット.png", `${"b".repeat(251)}.png`];

  it("refuses hostile names with 400 on every upload route, storing nothing; keeps every object under its tenant's project prefix", { timeout: 120_000 }, async () => {
    const aKeysBefore = (await bucketKeys()).filter((k) => k.startsWith(`projects/${a.project.id}/`));
    const countArtifacts = async () =>
      (await env.DB.prepare("SELECT count(*) AS n FROM artifacts WHERE organization_id = ?").bind(a.organization.id).first<{ n: number }>())!.n;
    const rowsBefore = await countArtifacts();
    const uploads = [
      { what: "native form, fields first", send: (header: string) => postForm("/api/v1/artifacts", [["type", "screenshot"], ["run_id", a.runId]], header, false) },
      { what: "native form, file first (staged)", send: (header: string) => postForm("/api/v1/artifacts", [["type", "screenshot"], ["run_id", a.runId]], header, true) },
      {
        what: "reporting upload, file first (staged)",
        send: (header: string) => postForm("/api/upload", [["type", "screenshot"], ["runId", a.runId], ["projectId", a.project.id]], header, true),
      },
    ];
    async function postForm(path: string, fields: Array<[string, string]>, header: string, fileFirst: boolean) {
      const { body, contentType } = multipart(fields, { header, bytes: PNG }, fileFirst);
      return call(path, { method: "POST", key: a.key, body, headers: { "Content-Type": contentType } });
    }
    const enc = (name: string) => encodeURIComponent(name).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
    let tried = 0;
    for (const [what, name] of hostile) {
      // As a plain filename parameter and as RFC 8187 filename* (which the parser decodes).
      const headers = [`filename*=UTF-8''${enc(name)}`, ...(/[\n"]/.test(name) ? [] : [`filename="${name}"`])];
      for (const upload of uploads) {
        for (const header of headers) {
          const res = await upload.send(header);
          tried++;
          expect(res.status, `${what} (${upload.what}, ${header.slice(0, 60)}): ${res.text.slice(0, 300)}`).toBe(400);
          expect(JSON.stringify(res.body), what).toMatch(/file/);
        }
      }
      const opened = await call("/api/v1/artifacts/uploads", { method: "POST", key: a.key, body: { type: "report", run_id: a.runId, file_name: name } });
      tried++;
      expect(opened.status, `${what} (multipart upload): ${opened.text.slice(0, 300)}`).toBe(400);
      expect(opened.body.details.field).toBe("file");
    }
    expect(tried).toBeGreaterThan(80);
    expect(await countArtifacts()).toBe(rowsBefore);
    expect((await bucketKeys()).filter((k) => k.startsWith(`projects/${a.project.id}/`))).toEqual(aKeysBefore);

    // Names a person may give a file are kept as given, and still never become part of a key.
    for (const name of fine) {
      const res = await postForm("/api/v1/artifacts", [["type", "screenshot"], ["run_id", a.runId]], `filename*=UTF-8''${enc(name)}`, false);
      expect(res.status, `${name}: ${res.text.slice(0, 300)}`).toBe(201);
      expect(res.body.file_name).toBe(name);
      const row = await env.DB.prepare("SELECT object_key FROM artifacts WHERE id = ?").bind(res.body.id).first<{ object_key: string }>();
      expect(row!.object_key).toBe(`projects/${a.project.id}/runs/${a.runId}/artifacts/${res.body.id}`);
    }

    // The whole bucket: every object lies under some project's prefix (nothing staged is left),
    // no key carries any part of a client's name, and each of A's artifacts lies under A's project.
    const all = await bucketKeys();
    expect(all.length).toBeGreaterThan(0);
    for (const key of all) {
      expect(key).toMatch(/^projects\/proj_[0-9A-Z]{26}\/(runs\/run_[0-9A-Z]{26}|ingests\/ing_[0-9A-Z]{26})\/[0-9A-Za-z_/.-]+$/);
      expect(key).not.toMatch(/\.\.|evil|%|\\|\/\/|\.png$/);
    }
    const aRows = await env.DB.prepare("SELECT object_key FROM artifacts WHERE organization_id = ?").bind(a.organization.id).all<{ object_key: string }>();
    expect(aRows.results.length).toBe(rowsBefore + fine.length);
    for (const row of aRows.results) expect(row.object_key.startsWith(`projects/${a.project.id}/`), row.object_key).toBe(true);
    const aObjects = all.filter((k) => k.includes(a.runId));
    expect(aObjects.every((k) => k.startsWith(`projects/${a.project.id}/runs/${a.runId}/`))).toBe(true);
  });
});
