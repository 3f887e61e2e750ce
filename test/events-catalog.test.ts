import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { EVENT_CATALOG, EVENT_TYPES, eventDefinition, eventPayloadJsonSchema, isEventType, type EventType } from "../src/core/events/catalog";
import { call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";
import playwright from "./fixtures/playwright.json?raw";

/** API.md, "Events", in its order. */
const DOCUMENTED = [
  "build.created.v1",
  "testrun.created.v1",
  "testrun.submitted.v1",
  "testrun.completed.v1",
  "testcase.failed.v1",
  "release.released.v1",
  "run.completed",
  "run.failed",
  "testrun.queued.v1",
  "testcase.flaky.v1",
  "testcase.quarantined.v1",
  // Issue 11: an invitation carries its accept link, for a webhook to e-mail.
  "invitation.created",
  "webhook.ping",
];
const NOT_EMITTED: string[] = [];

type JsonSchema = Record<string, any>;
const schemaOf = (type: EventType): JsonSchema => eventPayloadJsonSchema(type);

/** Every object schema inside a JSON Schema, with its path. */
function objectsOf(schema: JsonSchema, path = "$"): [string, JsonSchema][] {
  const found: [string, JsonSchema][] = [];
  if (schema.type === "object") found.push([path, schema]);
  for (const [name, child] of Object.entries<JsonSchema>(schema.properties ?? {})) found.push(...objectsOf(child, `${path}.${name}`));
  for (const [i, child] of (schema.anyOf ?? []).entries()) found.push(...objectsOf(child, `${path}|${i}`));
  return found;
}

describe("GET /api/v1/events", () => {
  let t: Tenant;
  beforeAll(async () => {
    t = await createTenant();
  });

  it("lists exactly the documented types, each with a description and the JSON Schema of its payload", async () => {
    const res = await call("/api/v1/events", { key: t.key });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.map((e: { type: string }) => e.type)).toEqual(DOCUMENTED);
    expect(res.body.pagination).toEqual({ total: 13, limit: 13, offset: 0, has_more: false });
    for (const entry of res.body.data) {
      expect(Object.keys(entry).sort()).toEqual(["description", "emitted", "schema", "type"]);
      expect(entry.description, entry.type).toMatch(/^\S.{10,}\.$/);
      expect(entry.emitted, entry.type).toBe(!NOT_EMITTED.includes(entry.type));
      expect(entry.schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
      expect(entry.schema.type).toBe("object");
      expect(entry.schema.properties.type).toEqual({ type: "string", const: entry.type });
      expect(entry.schema).toEqual(eventPayloadJsonSchema(entry.type));
    }
  });

  it("answers 401 without a key and 403 to a key without webhooks:read; that scope alone is enough", async () => {
    const none = await call("/api/v1/events");
    expect(none.status).toBe(401);
    expect(none.body.error).toBe("unauthorized");
    const other = await createKey(t, { scopes: ["builds:read", "testruns:read", "results:read"] });
    const denied = await call("/api/v1/events", { key: other.key });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ error: "forbidden", details: { required_scope: "webhooks:read" } });
    const reader = await createKey(t, { scopes: ["webhooks:read"], projectId: t.project.id });
    expect((await call("/api/v1/events", { key: reader.key })).status).toBe(200);
  });

  it("is in the OpenAPI document with named schemas and its errors", async () => {
    const doc = (await call("/openapi.json")).body;
    const op = doc.paths["/api/v1/events"].get;
    expect(op.operationId).toBe("listEventTypes");
    expect(op["x-greenlight-access"]).toBe("webhooks:read");
    expect(Object.keys(op.responses).sort()).toEqual(["200", "401", "403", "500"]);
    expect(op.responses["200"].content["application/json"].schema.$ref).toBe("#/components/schemas/EventTypeList");
    expect(doc.components.schemas.EventType.properties.type.enum).toEqual(DOCUMENTED);
  });
});

describe("the catalog's JSON Schemas", () => {
  it("mark every field required, say where null is allowed, and leave objects open to new fields", () => {
    for (const type of EVENT_TYPES) {
      for (const [path, object] of objectsOf(schemaOf(type))) {
        // json_object() writes every key, NULL columns as null: nothing in a payload is optional.
        expect(object.required?.slice().sort(), `${type} ${path}`).toEqual(Object.keys(object.properties).sort());
        expect(object.additionalProperties, `${type} ${path}`).toBeUndefined();
      }
    }
    const run = schemaOf("testrun.created.v1").properties.run.properties;
    expect(run.build_id.type).toEqual(["string", "null"]);
    expect(run.completed_at.anyOf.map((s: JsonSchema) => s.type)).toEqual(["string", "null"]);
    expect(run.shard_total.anyOf.map((s: JsonSchema) => s.type)).toEqual(["integer", "null"]);
    expect(run.total_tests).toMatchObject({ type: "integer", minimum: 0 });
    const completed = schemaOf("testrun.completed.v1").properties.run.properties;
    expect(completed.completed_at).toMatchObject({ type: "string", format: "date-time" });
    expect(completed.status.enum).toEqual(["passed", "failed", "cancelled"]);
    const failed = schemaOf("testcase.failed.v1").properties.result.properties;
    expect(failed.error_message.type).toEqual(["string", "null"]);
    expect(schemaOf("release.released.v1").properties.release.properties.status).toMatchObject({ const: "released" });
  });

  it("are copies: changing one answer leaves the next alone", () => {
    const first = schemaOf("webhook.ping");
    first.properties.type = "changed";
    expect(schemaOf("webhook.ping").properties.type).toEqual({ type: "string", const: "webhook.ping" });
  });

  it("has a guard that knows the types and nothing else", () => {
    for (const type of DOCUMENTED) expect(isEventType(type), type).toBe(true);
    for (const other of ["build.created", "testrun.created.v2", "", "WEBHOOK.PING", 7, null]) expect(isEventType(other)).toBe(false);
    expect(EVENT_CATALOG.map((d) => d.type)).toEqual(DOCUMENTED);
  });
});

interface EventRow {
  type: string;
  subject_id: string | null;
  project_id: string | null;
  payload: string;
}

/** The id a payload is about, which the outbox row also carries as subject_id. */
function subjectOf(payload: Record<string, any>): string | undefined {
  return (
    payload.run?.run_id ??
    payload.result?.result_id ??
    payload.build?.build_id ??
    payload.release?.release_id ??
    payload.test_case?.test_case_id ??
    payload.invitation?.invitation_id ??
    payload.webhook_id
  );
}

/** The object a payload describes: its one nested object (`run`, `build`, ...), or itself when flat (webhook.ping). */
function subjectKeyOf(payload: Record<string, unknown>): string | null {
  return Object.keys(payload).find((k) => typeof payload[k] === "object" && payload[k] !== null) ?? null;
}

describe("the catalog matches what the outbox stores", () => {
  let t: Tenant;
  let rows: EventRow[];

  /** Everything that writes an event today, through the public API, in one tenant. */
  beforeAll(async () => {
    t = await createTenant();
    const post = async (path: string, body: unknown, expected: number) => {
      const res = await call(path, { method: "POST", key: t.key, body });
      expect(res.status, `${path}: ${res.text}`).toBe(expected);
      return res.body;
    };
    const patch = async (path: string, body: unknown) => {
      const res = await call(path, { method: "PATCH", key: t.key, body });
      expect(res.status, `${path}: ${res.text}`).toBe(200);
      return res.body;
    };
    const project_id = t.project.id;

    // Every run field the payload carries set, results with and without an error message, failed at the end.
    const full = await post(
      "/api/v1/testruns",
      { project_id, build_id: "ci-build-7", branch: "main", commit_sha: "a1b2c3d", ci_build_id: "gh-1", run_title: "e2e" },
      201,
    );
    await post(
      `/api/v1/testruns/${full.id}/results`,
      {
        results: [
          { title: "passes", full_title: "S > passes", file_path: "tests/a.spec.ts", status: "passed", duration: 10 },
          { title: "fails", full_title: "S > fails", file_path: "tests/a.spec.ts", status: "failed", duration: 20, error: { message: "boom" } },
          { title: "fails quietly", status: "failed", duration: 5, attempt: 2, retries: 1 },
          { title: "skipped", status: "skipped", duration: 0 },
          { title: "flaky", status: "flaky", duration: 7 },
        ],
      },
      201,
    );
    await patch(`/api/v1/testruns/${full.id}`, { status: "failed" });
    // Quarantine a failing test and release it again: testcase.quarantined.v1 both ways.
    const failing = (await call(`/api/v1/testruns/${full.id}/results?status=failed&limit=1`, { key: t.key })).body.data[0].test_case_id;
    await patch(`/api/v1/testcases/${failing}`, { is_quarantined: true, quarantine_reason: "catalog" });
    await patch(`/api/v1/testcases/${failing}`, { is_quarantined: false });
    // A test that flips from run to run: its score crosses the threshold (testcase.flaky.v1) and,
    // with auto-quarantine on, it enters quarantine by itself (testcase.quarantined.v1, source auto).
    await patch(`/api/v1/projects/${project_id}/settings`, { auto_quarantine_enabled: true });
    for (let i = 0; i < 5; i++) {
      const run = await post("/api/v1/testruns", { project_id }, 201);
      await post(`/api/v1/testruns/${run.id}/results`, { results: [{ title: "flips", status: i % 2 ? "failed" : "passed", duration: 1 }] }, 201);
    }

    // Nothing but the project: every nullable run field null; passed; then reopened and cancelled (a second completion).
    const bare = await post("/api/v1/testruns", { project_id }, 201);
    await patch(`/api/v1/testruns/${bare.id}`, { status: "passed" });
    await patch(`/api/v1/testruns/${bare.id}`, { status: "running" });
    await patch(`/api/v1/testruns/${bare.id}`, { status: "cancelled" });

    // Created queued, and created already finished.
    await post("/api/v1/testruns", { project_id, status: "queued" }, 201);
    await post("/api/v1/testruns", { project_id, status: "passed" }, 201);

    // Two shards of one run, completed as the merge of their statuses.
    const shard = { project_id, ci_build_id: "gh-2", run_title: "sharded", shard_total: 2 };
    const sharded = await post("/api/v1/testruns", { ...shard, shard_current: 1 }, 201);
    await post("/api/v1/testruns", { ...shard, shard_current: 2 }, 201);
    await patch(`/api/v1/testruns/${sharded.id}`, { status: "passed", shard_current: 1 });
    await patch(`/api/v1/testruns/${sharded.id}`, { status: "failed", shard_current: 2 });

    // The reporting surface (reference 003) writes through the same core.
    const reporting = await call("/api/runs", { method: "POST", headers: { "X-API-Key": t.key }, body: { projectId: project_id, status: "running" } });
    expect(reporting.status, reporting.text).toBe(201);
    expect((await call(`/api/runs/${reporting.body.id}`, { method: "PATCH", headers: { "X-API-Key": t.key }, body: { status: "failed" } })).status).toBe(200);

    // A report ingested as a file: its own run, results and failures.
    const ingested = await call(`/api/v1/results/ingest?project_id=${project_id}`, {
      method: "POST",
      key: t.key,
      body: playwright,
      headers: { "content-type": "application/json" },
    });
    expect(ingested.status, ingested.text.slice(0, 300)).toBe(201);

    // Releases: created released, and moved to released with reference 001's word for it.
    const shipped = await post("/api/v1/releases", { project_id, name: "r1", version: "1.0.0", target_date: "2026-12-31", status: "released" }, 201);
    const release = await post("/api/v1/releases", { project_id, name: "r2" }, 201);
    await patch(`/api/v1/releases/${release.id}`, { status: "completed" });

    // Builds: queued without a release, assigned with one, with and without the optional fields.
    await post("/api/v1/builds", { project_id, name: "queued build" }, 202);
    await post(
      "/api/v1/builds",
      { project_id, name: "v1.0.0", build_number: "42", commit_sha: "A1B2C3D4", branch: "main", repo_url: "https://example.com/r", release_id: shipped.id },
      201,
    );

    // An invitation: invitation.created with its accept link.
    await post(`/api/v1/organizations/${t.organization.id}/invitations`, { email: "invitee@catalog.test", role: "member" }, 201);

    // A plan triggered: its run is queued for a runner (testrun.queued.v1).
    const triggered = await post("/api/v1/testplans", { project_id, name: "catalog plan" }, 201);
    await post(`/api/v1/testplans/${triggered.id}/trigger`, {}, 201);

    // Last, so the subscription receives nothing but its ping; subscribing to every catalog type
    // also proves the webhooks accept each one.
    const webhook = await post("/api/v1/webhooks", { url: "https://receiver.test/ok/events-catalog", events: [...EVENT_TYPES] }, 201);
    await post(`/api/v1/webhooks/${webhook.id}/ping`, undefined, 200);

    const result = await env.DB.prepare("SELECT type, subject_id, project_id, payload FROM events WHERE organization_id = ? ORDER BY number")
      .bind(t.organization.id)
      .all<EventRow>();
    rows = result.results;
  });

  it("every stored payload is exactly what its type's schema says, and about the row's subject", () => {
    expect(rows.length).toBeGreaterThan(20);
    for (const row of rows) {
      expect(isEventType(row.type), row.type).toBe(true);
      const payload = JSON.parse(row.payload);
      const parsed = eventDefinition(row.type as EventType).payload.safeParse(payload);
      expect(parsed.error?.issues ?? [], `${row.type}: ${row.payload}`).toEqual([]);
      expect(payload.type).toBe(row.type);
      expect(subjectOf(payload), row.type).toBe(row.subject_id);
      const subject = subjectKeyOf(payload);
      // An organization-wide subject (an invitation) has no project, in the payload or the row.
      if (subject) expect(payload[subject].project_id ?? null, row.type).toBe(row.project_id);
    }
  });

  it("covers every type emitted today with real rows, and none of the types reserved for later", () => {
    const seen = new Set(rows.map((r) => r.type));
    const expected = EVENT_CATALOG.filter((d) => d.emitted).map((d) => d.type);
    expect(expected).toHaveLength(13);
    for (const type of expected) expect(seen.has(type), type).toBe(true);
    for (const type of NOT_EMITTED) expect(seen.has(type), type).toBe(false);
  });

  it("the rows exercise the nullable fields both ways", () => {
    const payloads = rows.map((r) => JSON.parse(r.payload));
    const values = (pick: (p: any) => unknown) => new Set(payloads.map(pick).filter((v) => v !== undefined).map((v) => (v === null ? "null" : typeof v)));
    expect(values((p) => p.run?.build_id)).toEqual(new Set(["null", "string"]));
    expect(values((p) => p.run?.shard_total)).toEqual(new Set(["null", "number"]));
    expect(values((p) => p.run?.completed_at)).toEqual(new Set(["null", "string"]));
    expect(values((p) => p.result?.error_message)).toEqual(new Set(["null", "string"]));
    expect(values((p) => p.result?.file_path)).toEqual(new Set(["null", "string"]));
    expect(values((p) => p.build?.release_id)).toEqual(new Set(["null", "string"]));
    expect(values((p) => p.build?.commit_sha)).toEqual(new Set(["null", "string"]));
    expect(values((p) => p.release?.version)).toEqual(new Set(["null", "string"]));
    expect(values((p) => p.release?.target_date)).toEqual(new Set(["null", "string"]));
  });

  it("the published JSON Schemas accept every stored payload too", () => {
    // z.fromJSONSchema is experimental in zod 4, which is fine for a test: it reads the published schema back.
    const validators = new Map(EVENT_TYPES.map((type) => [type, z.fromJSONSchema(eventPayloadJsonSchema(type))]));
    for (const row of rows) {
      const parsed = validators.get(row.type as EventType)!.safeParse(JSON.parse(row.payload));
      expect(parsed.error?.issues ?? [], `${row.type}: ${row.payload}`).toEqual([]);
    }
  });

  it("a payload with a field more or a field less fails its schema: drift either way is caught", () => {
    const checked = new Set<string>();
    for (const row of rows) {
      if (checked.has(row.type)) continue;
      checked.add(row.type);
      const schema = eventDefinition(row.type as EventType).payload;
      const payload = JSON.parse(row.payload) as Record<string, unknown>;
      // Replaces the described object (nested or the payload itself) in a copy of the payload.
      const subject = subjectKeyOf(payload);
      const inner = (subject ? payload[subject] : payload) as Record<string, unknown>;
      const withInner = (next: Record<string, unknown>) => (subject ? { ...payload, [subject]: next } : next);
      expect(schema.safeParse(withInner({ ...inner, surprise: 1 })).success, `${row.type} + field`).toBe(false);
      expect(schema.safeParse({ ...payload, extra: true }).success, `${row.type} + top-level field`).toBe(false);
      for (const key of Object.keys(inner)) {
        const { [key]: _dropped, ...less } = inner;
        expect(schema.safeParse(withInner(less)).success, `${row.type} - ${key}`).toBe(false);
      }
    }
    expect(checked.size).toBe(13);
  });
});

describe("hand-written payload examples against the contracts", () => {
  const now = "2026-03-19T10:00:00.000Z";
  const id = (prefix: string) => `${prefix}_01JD3W6Q8X4N2B7R5T9V0YHZKM`;
  const run = {
    run_id: id("run"),
    project_id: id("proj"),
    build_id: null,
    status: "queued",
    branch: null,
    commit_sha: null,
    ci_build_id: null,
    run_title: null,
    shard_total: null,
    total_tests: 0,
    passed_tests: 0,
    failed_tests: 0,
    skipped_tests: 0,
    flaky_tests: 0,
    duration: 0,
    created_at: now,
    completed_at: null,
  };
  const testCase = {
    test_case_id: id("tc"),
    project_id: id("proj"),
    title: "t",
    full_title: "S > t",
    file_path: null,
    flakiness_score: 0.4,
    total_runs: 10,
    flaky_runs: 4,
    last_flaky_at: now,
    is_quarantined: false,
  };
  const examples: Record<string, unknown> = {
    "testrun.queued.v1": { type: "testrun.queued.v1", run, plan_id: id("plan"), job_id: id("job") },
    "testcase.flaky.v1": { type: "testcase.flaky.v1", test_case: testCase, run_id: id("run") },
    "testcase.quarantined.v1": { type: "testcase.quarantined.v1", test_case: { ...testCase, is_quarantined: true, flakiness_score: null }, source: "manual", reason: null },
    "webhook.ping": { type: "webhook.ping", webhook_id: id("wh"), sent_at: now },
  };

  it("accept a well-formed example and refuse a wrong id or a missing field", () => {
    for (const [type, example] of Object.entries(examples)) {
      const schema = eventDefinition(type as EventType).payload;
      expect(schema.safeParse(example).error?.issues ?? [], type).toEqual([]);
      expect(z.fromJSONSchema(eventPayloadJsonSchema(type as EventType)).safeParse(example).success, type).toBe(true);
      const { type: _type, ...rest } = example as Record<string, unknown>;
      expect(schema.safeParse(rest).success, type).toBe(false);
    }
    expect(eventDefinition("testrun.queued.v1").payload.safeParse({ ...(examples["testrun.queued.v1"] as object), run: { ...run, status: "running" } }).success).toBe(false);
    expect(eventDefinition("webhook.ping").payload.safeParse({ type: "webhook.ping", webhook_id: id("run"), sent_at: now }).success).toBe(false);
  });
});
