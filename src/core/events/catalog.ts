import { z } from "zod";
import { BUILD_CREATED_EVENT, BUILD_SOURCES, BUILD_STATUSES } from "../builds/builds";
import { type CoreContext, requireScope } from "../context";
import type { Paged } from "../pagination";
import { RELEASE_RELEASED_EVENT } from "../releases/releases";
import { RUN_STATUSES } from "../runs/runs";
import { RUN_EVENT_TYPES } from "./outbox";

/**
 * The catalog of event types (API.md, "Events"): what each means and the exact shape of the
 * `payload` the outbox stores for it, which is the body a webhook delivery carries. The schemas
 * are strict on purpose: test/events-catalog.test.ts validates real outbox rows against them, so
 * a field added to or dropped from an emitting statement fails there until the catalog follows.
 *
 * The names of emitted types come from the constants their emitters use, so the two cannot
 * disagree on a spelling.
 */
export const EVENT_TYPES = [
  BUILD_CREATED_EVENT,
  RUN_EVENT_TYPES.created,
  RUN_EVENT_TYPES.submitted,
  RUN_EVENT_TYPES.completed,
  RUN_EVENT_TYPES.caseFailed,
  RELEASE_RELEASED_EVENT,
  RUN_EVENT_TYPES.reportingCompleted,
  RUN_EVENT_TYPES.reportingFailed,
  "testrun.queued.v1",
  "testcase.flaky.v1",
  "testcase.quarantined.v1",
  "invitation.created",
  "webhook.ping",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(value: unknown): value is EventType {
  return typeof value === "string" && (EVENT_TYPES as readonly string[]).includes(value);
}

/** An id as lib/ids makes them, in code or in SQL: the prefix, then 26 Crockford base-32 characters. */
function idOf(prefix: string) {
  return z.string().regex(new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`));
}

const Timestamp = z.iso.datetime();
const Count = z.int().min(0);
const RunStatus = z.enum(RUN_STATUSES);
const TerminalRunStatus = z.enum(["passed", "failed", "cancelled"]);

/**
 * The run as outbox.ts's runPayloadSql writes it, read from the row in the statement that writes
 * the event. The counts are the ones derived from the run's results, not counts a client reported.
 */
function runShape<S extends z.ZodType, C extends z.ZodType>(status: S, completedAt: C) {
  return z.strictObject({
    run_id: idOf("run"),
    project_id: idOf("proj"),
    build_id: z.string().nullable().describe("The build the run tests, as the client named it."),
    status,
    branch: z.string().nullable(),
    commit_sha: z.string().nullable(),
    ci_build_id: z.string().nullable(),
    run_title: z.string().nullable(),
    shard_total: z.int().min(1).nullable().describe("Shards of a sharded run; null for an unsharded run."),
    total_tests: Count,
    passed_tests: Count,
    failed_tests: Count,
    skipped_tests: Count,
    flaky_tests: Count,
    duration: Count.describe("Milliseconds: the sum of the results' durations."),
    created_at: Timestamp,
    completed_at: completedAt,
  });
}

const AnyRun = runShape(RunStatus, Timestamp.nullable());
/** A completion event is written by the statement that moved the run into a terminal status. */
const CompletedRun = runShape(TerminalRunStatus, Timestamp);

function payload<T extends string, S extends z.ZodRawShape>(type: T, shape: S) {
  return z.strictObject({ type: z.literal(type), ...shape });
}

/** The test case a flakiness event is about, with the figures GET /projects/{id}/flakiness shows. */
const FlakyTestCase = z.strictObject({
  test_case_id: idOf("tc"),
  project_id: idOf("proj"),
  title: z.string(),
  full_title: z.string(),
  file_path: z.string().nullable(),
  flakiness_score: z.number().min(0).max(1).describe("0 (stable) to 1 (flaky every time), over the case's recent runs."),
  total_runs: Count,
  flaky_runs: Count,
  last_flaky_at: Timestamp.nullable(),
  is_quarantined: z.boolean(),
});

const payloads = {
  [BUILD_CREATED_EVENT]: payload(BUILD_CREATED_EVENT, {
    build: z.strictObject({
      build_id: idOf("bld"),
      project_id: idOf("proj"),
      release_id: idOf("rel").nullable().describe("Null while the build waits in its project's build queue."),
      name: z.string(),
      build_number: z.string().nullable(),
      commit_sha: z.string().nullable(),
      branch: z.string().nullable(),
      repo_url: z.string().nullable(),
      status: z.enum(BUILD_STATUSES),
      source: z.enum(BUILD_SOURCES),
      created_at: Timestamp,
    }),
  }),
  [RUN_EVENT_TYPES.created]: payload(RUN_EVENT_TYPES.created, { run: AnyRun }),
  [RUN_EVENT_TYPES.submitted]: payload(RUN_EVENT_TYPES.submitted, { run: AnyRun }),
  [RUN_EVENT_TYPES.completed]: payload(RUN_EVENT_TYPES.completed, { run: CompletedRun }),
  [RUN_EVENT_TYPES.caseFailed]: payload(RUN_EVENT_TYPES.caseFailed, {
    result: z.strictObject({
      result_id: idOf("res"),
      test_case_id: idOf("tc"),
      run_id: idOf("run"),
      project_id: idOf("proj"),
      title: z.string(),
      full_title: z.string(),
      file_path: z.string().nullable(),
      attempt: z.int().min(1),
      error_message: z.string().nullable().describe("The result's error message; null when it reported none."),
    }),
  }),
  [RELEASE_RELEASED_EVENT]: payload(RELEASE_RELEASED_EVENT, {
    release: z.strictObject({
      release_id: idOf("rel"),
      project_id: idOf("proj"),
      name: z.string(),
      version: z.string().nullable(),
      status: z.literal("released").describe("Reference 001's `completed`; stored and sent as `released`."),
      target_date: z.iso.date().nullable(),
      released_at: Timestamp,
      created_at: Timestamp,
    }),
  }),
  [RUN_EVENT_TYPES.reportingCompleted]: payload(RUN_EVENT_TYPES.reportingCompleted, { run: CompletedRun }),
  [RUN_EVENT_TYPES.reportingFailed]: payload(RUN_EVENT_TYPES.reportingFailed, {
    run: runShape(z.literal("failed"), Timestamp),
  }),
  "testrun.queued.v1": payload("testrun.queued.v1", {
    run: runShape(z.literal("queued"), z.null()),
    plan_id: idOf("plan").describe("The test plan whose trigger queued the run."),
    job_id: idOf("job").describe("The job a runner claims (POST /jobs/claim) to execute the run."),
  }),
  "testcase.flaky.v1": payload("testcase.flaky.v1", {
    test_case: FlakyTestCase,
    run_id: idOf("run").nullable().describe("The run whose results raised the score; null when a recalculation did (a new threshold)."),
  }),
  "testcase.quarantined.v1": payload("testcase.quarantined.v1", {
    test_case: FlakyTestCase.extend({
      is_quarantined: z.boolean().describe("true: entered quarantine; false: left it."),
      flakiness_score: z.number().min(0).max(1).nullable().describe("Null when the case has no flakiness history yet."),
    }),
    source: z.enum(["manual", "auto"]).describe("manual: a client set it; auto: the project's auto-quarantine or automatic recovery did."),
    reason: z.string().nullable().describe("Why: the client's reason, or the score and threshold (entering) or the recovery rule met (leaving)."),
  }),
  "invitation.created": payload("invitation.created", {
    invitation: z.strictObject({
      invitation_id: idOf("inv"),
      organization_id: idOf("org"),
      email: z.string(),
      role: z.enum(["owner", "admin", "member", "viewer"]),
      expires_at: Timestamp,
      accept_url: z.string().describe("The link the invitee opens: Greenlight sends no e-mail itself, a webhook can."),
      invited_by: z.string().nullable().describe("The user (or key) that invited."),
    }),
  }),
  "webhook.ping": payload("webhook.ping", {
    webhook_id: idOf("wh"),
    sent_at: Timestamp,
  }),
} satisfies { [T in EventType]: z.ZodType<{ type: T }> };

export type EventPayload<T extends EventType = EventType> = z.infer<(typeof payloads)[T]>;

export interface EventDefinition<T extends EventType = EventType> {
  type: T;
  description: string;
  /** False for types reserved for features not built yet: nothing sends them today. */
  emitted: boolean;
  payload: (typeof payloads)[T];
}

const definitions: { [T in EventType]: { description: string; emitted: boolean } } = {
  "build.created.v1": { description: "New build created (UI or API).", emitted: true },
  "testrun.created.v1": { description: "New test run created.", emitted: true },
  "testrun.submitted.v1": {
    description: "Test run submitted: results were recorded for it, once per submission or ingest.",
    emitted: true,
  },
  "testrun.completed.v1": {
    description: "Test run marked completed: its status became passed, failed or cancelled.",
    emitted: true,
  },
  "testcase.failed.v1": { description: "Test case execution records a fail.", emitted: true },
  "release.released.v1": { description: "Release status changes to completed (stored as `released`).", emitted: true },
  "run.completed": {
    description: "A run finished with any terminal status (the reporting surface's name for testrun.completed.v1).",
    emitted: true,
  },
  "run.failed": { description: "A run finished with status failed.", emitted: true },
  "testrun.queued.v1": {
    description: "A test plan's trigger queued a test run, which waits for a runner to claim its job.",
    emitted: true,
  },
  "testcase.flaky.v1": {
    description: "A test case's flakiness score reached its project's flakiness threshold.",
    emitted: true,
  },
  "testcase.quarantined.v1": {
    description: "A test case entered or left quarantine, set by a client or by the project's auto-quarantine.",
    emitted: true,
  },
  "invitation.created": {
    description: "Someone was invited to an organization (a team): carries the accept link so a webhook can send the e-mail.",
    emitted: true,
  },
  "webhook.ping": {
    description: "A test delivery sent by POST /webhooks/{id}/ping, to check an endpoint receives and verifies deliveries.",
    emitted: true,
  },
};

export const EVENT_CATALOG: readonly EventDefinition[] = EVENT_TYPES.map((type) => ({ type, ...definitions[type], payload: payloads[type] }));

export function eventDefinition<T extends EventType>(type: T): EventDefinition<T> {
  return { type, ...definitions[type], payload: payloads[type] };
}

const jsonSchemas = new Map<EventType, Record<string, unknown>>();

/**
 * The JSON Schema (draft 2020-12) of a type's payload. The zod schemas are strict so the tests
 * catch drift, but the published schema leaves objects open: reference 001 counts a new field as
 * a compatible change, and a receiver validating with `additionalProperties: false` would reject
 * every delivery after one.
 */
export function eventPayloadJsonSchema(type: EventType): Record<string, unknown> {
  let schema = jsonSchemas.get(type);
  if (!schema) {
    schema = z.toJSONSchema(payloads[type], {
      target: "draft-2020-12",
      override: ({ jsonSchema }) => {
        if (jsonSchema.additionalProperties === false) delete jsonSchema.additionalProperties;
      },
    }) as Record<string, unknown>;
    jsonSchemas.set(type, schema);
  }
  // A copy, so no caller can change what the next one gets.
  return structuredClone(schema);
}

export interface EventTypeEntry {
  type: EventType;
  description: string;
  emitted: boolean;
  schema: Record<string, unknown>;
}

/** Every event type, in one page: the catalog is a dozen entries and the same for every tenant. */
export function listEventTypes(ctx: CoreContext): Paged<EventTypeEntry> {
  requireScope(ctx.principal, "webhooks:read");
  const items = EVENT_CATALOG.map((d) => ({ type: d.type, description: d.description, emitted: d.emitted, schema: eventPayloadJsonSchema(d.type) }));
  return { items, total: items.length, limit: items.length, offset: 0 };
}
