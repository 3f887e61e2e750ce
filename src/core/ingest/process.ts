import { log } from "../../lib/log";
import { and, asc, eq, isNull, sql, type SQL } from "drizzle-orm";
import { batchAll, type Statement } from "../../db/batch";
import { createDb, type Db } from "../../db/client";
import { ingestParts, ingests, testRuns, type IngestRow } from "../../db/schema";
import type { Env } from "../../env";
import { IngestError, createParser, type IngestFormat, type NormalizedResult } from "../../ingest";
import { type CoreContext, systemClock } from "../context";
import { DomainError } from "../errors";
import { RUN_EVENT_TYPES, insertRunEvent, withdrawEvents } from "../events/outbox";
import { putOffloads, recountRun, resultWrite, storedCount } from "../results/results";
import { FLAKINESS_REFRESH_MESSAGE, markStale } from "../flakiness/refresh";
import { fillRunMetadata, purgeRun } from "../runs/runs";
import { deleteR2Prefix } from "../storage/r2";
import { INGEST_MESSAGE } from "./ingests";
import { toResultInput } from "./ingest";
import { MissingSource, ingestObjectPrefix, partPrefix, readSegments } from "./source";

/**
 * Results per chunk: one D1 batch, one transaction, as many as a synchronous ingest writes at
 * once. Measured with `npm run bench:ingest`: 1,000 per chunk reached 0.36-0.47 of the raw
 * batch() floor, 5,000 about 0.5-0.6 (fewer batches, each statement's fixed cost shared by more rows).
 */
export const CHUNK_RESULTS = 5000;
/** A chunk is also cut when its output grows past this, so its statements stay well within D1's row limits. */
const CHUNK_TEXT_BYTES = 8 * 1024 * 1024;
/** The most results one report may hold. */
export const INGEST_MAX_RESULTS = 1_000_000;
/** A consumer holds an ingest this long after its last commit. */
const LEASE_MS = 2 * 60 * 1000;
/** Attempts (deliveries that claimed the ingest) before an ingest that keeps failing is given up. */
export const MAX_ATTEMPTS = 8;
/** One invocation commits at most this many chunks (500,000 results), then hands over to a fresh one. */
const DEFAULT_CHUNKS_PER_INVOCATION = 100;
/** …and stops after this long, well inside a queue invocation's 15 minutes. */
const INVOCATION_WALL_MS = 8 * 60 * 1000;

export type ProcessOutcome =
  | { kind: "done" }
  | { kind: "failed" }
  /** Handed over to a new message: this one is finished. */
  | { kind: "continued" }
  /** Nothing to do (finished, gone, or never started). */
  | { kind: "skipped" }
  /** Another consumer holds the ingest; look again later. */
  | { kind: "busy"; retryAfterSeconds: number };

/** Counts D1 calls made through a binding, to report them with the ingest. */
function countingD1(d1: D1Database, counter: { calls: number }): D1Database {
  const countStatement = (statement: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(statement, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== "function") return value;
        if (prop === "bind") return (...args: unknown[]) => countStatement((value as (...a: unknown[]) => D1PreparedStatement).apply(target, args));
        if (prop === "run" || prop === "all" || prop === "first" || prop === "raw") {
          return (...args: unknown[]) => {
            counter.calls++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
  return new Proxy(d1, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop === "prepare") return (query: string) => countStatement(target.prepare(query));
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          counter.calls++;
          return target.batch(statements);
        };
      }
      if (prop === "exec") {
        return (query: string) => {
          counter.calls++;
          return target.exec(query);
        };
      }
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Rough size of a result's text, to keep a chunk's statements small; no serialization. */
function textWeight(result: NormalizedResult): number {
  return (
    512 +
    (result.stdout?.length ?? 0) +
    (result.stderr?.length ?? 0) +
    (result.error?.message?.length ?? 0) +
    (result.error?.stack?.length ?? 0) +
    (result.steps ? 256 * result.steps.length : 0)
  );
}

class Superseded extends Error {}
/** This invocation has used its budget; the ingest goes on in a new one. */
class HandOver extends Error {}

export interface ProcessOptions {
  clock?: { now(): Date };
  chunksPerInvocation?: number;
}

/**
 * Processes one queued ingest: parses its stored source from the start, skips the results
 * already committed, and records the rest in chunks. Each chunk's rows and the ingest's new
 * resume point are one D1 batch, so a crash anywhere resumes with no result lost or written
 * twice. A report found bad fails the ingest with the reason and removes the run if the ingest
 * created it; a fault of ours (D1, R2) throws, and the queue delivers the message again.
 */
export async function processIngest(env: Env, ingestId: string, options: ProcessOptions = {}): Promise<ProcessOutcome> {
  const clock = options.clock ?? systemClock;
  const counter = { calls: 0 };
  const db = createDb(countingD1(env.DB, counter));
  const startedAt = Date.now();
  const chunkBudget = options.chunksPerInvocation ?? chunksPerInvocation(env);

  const now = () => clock.now().toISOString();
  const leaseEnd = () => new Date(clock.now().getTime() + LEASE_MS).toISOString();
  const claimed = await db
    .update(ingests)
    .set({ status: "processing", leaseUntil: leaseEnd(), attempts: sql`${ingests.attempts} + 1`, startedAt: sql`coalesce(${ingests.startedAt}, ${now()})`, updatedAt: now() })
    .where(
      and(
        eq(ingests.id, ingestId),
        sql`${ingests.status} IN ('queued', 'processing')`,
        sql`(${ingests.leaseUntil} IS NULL OR ${ingests.leaseUntil} < ${now()})`,
      ),
    )
    .returning()
    .get();
  if (!claimed) {
    const row = await db.select({ status: ingests.status, leaseUntil: ingests.leaseUntil }).from(ingests).where(eq(ingests.id, ingestId)).get();
    if (!row || (row.status !== "queued" && row.status !== "processing") || row.leaseUntil === null) return { kind: "skipped" };
    const wait = Math.ceil((Date.parse(row.leaseUntil) - clock.now().getTime()) / 1000);
    return { kind: "busy", retryAfterSeconds: Math.min(Math.max(wait, 1), 300) };
  }

  const ctx: CoreContext = {
    db,
    env,
    clock,
    // The key's rights as the ingest was accepted, narrowed to the ingest's project.
    principal: {
      keyId: claimed.keyId,
      organizationId: claimed.organizationId,
      projectId: claimed.projectId,
      scopes: new Set(["results:submit", "testruns:create", "testruns:read"]),
    },
  };

  try {
    const outcome = await run(ctx, claimed, counter, { startedAt, chunkBudget, now, leaseEnd });
    if (outcome === "continued") {
      await releaseLease(db, ingestId, counter);
      await env.INGESTS.send({ type: INGEST_MESSAGE, ingest_id: ingestId });
      return { kind: "continued" };
    }
    return { kind: "done" };
  } catch (err) {
    if (err instanceof Superseded) return { kind: "skipped" };
    if (err instanceof IngestError || err instanceof MissingSource || err instanceof DomainError) {
      await failIngest(ctx, claimed, err.message, err instanceof DomainError ? (err.details as Record<string, unknown>) : { reason: "source_missing" }, counter);
      return { kind: "failed" };
    }
    // `claimed` is the row as this claim left it: its attempts already count this one.
    if (claimed.attempts >= MAX_ATTEMPTS) {
      log.error("ingest given up", { ingest_id: ingestId, message: String(err), stack: (err as Error)?.stack });
      await failIngest(ctx, claimed, `Processing was interrupted by internal errors ${MAX_ATTEMPTS} times; the ingest was given up.`, { reason: "internal" }, counter);
      return { kind: "failed" };
    }
    await releaseLease(db, ingestId, counter, {
      message: "Processing was interrupted; it resumes from the last committed chunk.",
      details: { reason: "interrupted", attempts: claimed.attempts },
    }).catch(() => undefined);
    throw err;
  }
}

function chunksPerInvocation(env: Env): number {
  const configured = Number(env.INGEST_CHUNKS_PER_INVOCATION);
  return Number.isInteger(configured) && configured > 0 ? configured : DEFAULT_CHUNKS_PER_INVOCATION;
}

async function releaseLease(db: Db, ingestId: string, counter: { calls: number }, note?: IngestRow["error"]): Promise<void> {
  await db
    .update(ingests)
    .set({ leaseUntil: null, d1Calls: sql`${ingests.d1Calls} + ${counter.calls + 1}`, ...(note ? { error: note } : {}) })
    .where(eq(ingests.id, ingestId));
  counter.calls = 0;
}

interface RunState {
  startedAt: number;
  chunkBudget: number;
  now: () => string;
  leaseEnd: () => string;
}

async function run(ctx: CoreContext, ingest: IngestRow, counter: { calls: number }, state: RunState): Promise<"done" | "continued"> {
  const db = ctx.db;
  // The run and the parts in one round trip; each invocation of a long ingest starts with them.
  const [runRows, parts] = await db.batch([
    db
      .select({ id: testRuns.id, organizationId: testRuns.organizationId, projectId: testRuns.projectId })
      .from(testRuns)
      .where(and(eq(testRuns.id, ingest.runId ?? ""), eq(testRuns.organizationId, ingest.organizationId), isNull(testRuns.deletedAt))),
    db.select().from(ingestParts).where(eq(ingestParts.ingestId, ingest.id)).orderBy(asc(ingestParts.partNumber)),
  ]);
  const runRow = runRows[0];
  if (!runRow) throw new IngestError("The run was deleted while its report was being ingested.", { format: (ingest.format ?? "unknown") as IngestFormat, reason: "run_deleted" }, 422);

  const parser = createParser(ingest.format as IngestFormat);
  const progress = { bytes: 0 };
  const skip = ingest.results;
  let committed = ingest.results;
  let emitted = 0;
  let chunks = 0;
  let pending: NormalizedResult[] = [];
  let pendingWeight = 0;

  // Superseded results are known only from a batch's answer, so each batch's count rides on
  // the next batch (the final one included): a crash can lose one chunk's count, never results.
  let supersededUnsaved = 0;
  // One batch is in flight while the next chunk is parsed and built: D1's time and ours overlap.
  // Batches still land one after another, each moving the resume point from where the last left it.
  let inflight: Promise<void> | null = null;
  const landed = async () => {
    const previous = inflight;
    inflight = null;
    if (previous) await previous;
  };

  const commit = async (final: boolean) => {
    const batch = pending;
    pending = [];
    pendingWeight = 0;
    const write = batch.length > 0 ? await resultWrite(runRow, batch.map(toResultInput), state.now(), { submittedEvent: false, counts: "deferred" }) : null;
    if (write) await putOffloads(ctx.env.ARTIFACTS, write.offloads);
    await landed();
    const from = committed;
    const next = committed + batch.length;
    const statements: Statement[] = write ? [...write.statements] : [];
    const progressAt = statements.length;
    const finalFields: SQL = final
      ? sql`, status = 'done', finished_at = ${state.now()}, lease_until = NULL, error = NULL, report_totals = ${JSON.stringify(parser.totals())}`
      : sql`, lease_until = ${state.leaseEnd()}`;
    // The resume point moves only from where this consumer found it: if another consumer took
    // over (this one outlived its lease), the batch changes nothing of the ingest and this one stops.
    statements.push(sql`UPDATE ingests SET results = ${next}, chunks = chunks + ${write ? 1 : 0},
        bytes_processed = ${progress.bytes}, superseded = superseded + ${supersededUnsaved},
        d1_calls = d1_calls + ${counter.calls + (final ? 1 : 0)}, updated_at = ${state.now()} ${finalFields}
      WHERE id = ${ingest.id} AND results = ${from} AND status = 'processing'`);
    if (final) {
      // The run's counts were left alone chunk by chunk; one pass over the run settles them.
      statements.push(recountRun(runRow.id));
      // Scored after the ingest, from the run's final counts (outage exclusion needs them), by
      // the queue in pages: refreshing 500,000 test cases does not fit in this invocation.
      statements.push(markStale(sql`SELECT test_case_id FROM results WHERE run_id = ${runRow.id}`));
      const fill = fillRunMetadata(db, runRow.id, parser.metadata());
      if (fill) statements.push(fill);
      if (next > 0) statements.push(insertRunEvent(RUN_EVENT_TYPES.submitted, sql`r.id = ${runRow.id}`, state.now()));
    }
    // Calls so far are recorded by this batch; the batch itself is counted by the next record
    // (the next batch's, the hand-over's or the failure's), except the final one, which counts itself.
    counter.calls = 0;
    committed = next;
    if (write) chunks++;
    const landing = (async () => {
      const results = await batchAll(db, statements);
      if ((results[progressAt]?.meta.changes ?? 0) === 0) throw new Superseded();
      supersededUnsaved = write ? write.rows - storedCount(write, results) : 0;
    })();
    // Awaited before the next batch, or when the ingest ends either way; never left unobserved.
    landing.catch(() => undefined);
    inflight = landing;
    if (final) {
      await landed();
      if (supersededUnsaved > 0) {
        await db.update(ingests).set({ superseded: sql`${ingests.superseded} + ${supersededUnsaved}` }).where(eq(ingests.id, ingest.id));
      }
    }
  };

  const take = async (results: NormalizedResult[]) => {
    for (const result of results) {
      emitted++;
      if (emitted > INGEST_MAX_RESULTS) {
        throw new IngestError(`The report holds more than ${INGEST_MAX_RESULTS} results.`, { format: parser.format, reason: "too_many_results", max_results: INGEST_MAX_RESULTS }, 422);
      }
      if (emitted <= skip) continue;
      pending.push(result);
      pendingWeight += textWeight(result);
      if (pending.length >= CHUNK_RESULTS || pendingWeight >= CHUNK_TEXT_BYTES) {
        await commit(false);
        // Handing over right after a commit keeps chunks whole: a fresh invocation (with fresh
        // time and subrequest budgets) resumes from the results count.
        if (chunks >= state.chunkBudget || Date.now() - state.startedAt > INVOCATION_WALL_MS) throw new HandOver();
      }
    }
  };

  const pieces = readSegments(
    ctx.env.ARTIFACTS,
    parts.map((p) => ({ prefix: partPrefix(ingest.projectId, ingest.id, p.partNumber, p.upload), segments: p.segments })),
    progress,
  );
  try {
    for await (const text of pieces) await take(parser.write(text));
    await take(parser.end());
    await commit(true);
  } catch (err) {
    // Whatever stopped this invocation, the batch in flight lands (or fails) first.
    if (err instanceof HandOver) {
      await landed();
      return "continued";
    }
    await landed().catch(() => undefined);
    throw err;
  }
  await deleteR2Prefix(ctx.env.ARTIFACTS, ingestObjectPrefix(ingest.projectId, ingest.id)).catch(() => undefined);
  // If this send is lost, the cron refreshes what is marked.
  await ctx.env.INGESTS.send({ type: FLAKINESS_REFRESH_MESSAGE, project_id: ingest.projectId }).catch(() => undefined);
  return "done";
}

/**
 * Ends an ingest as failed with the reason. The run it created is hidden in the same batch, so
 * no half-filled run stays visible; its rows and objects are purged after (or by the cron).
 */
async function failIngest(
  ctx: CoreContext,
  ingest: IngestRow,
  message: string,
  details: Record<string, unknown>,
  counter: { calls: number },
): Promise<void> {
  const now = ctx.clock.now().toISOString();
  const statements: Statement[] = [
    ctx.db
      .update(ingests)
      .set({ status: "failed", error: { message, details }, finishedAt: now, updatedAt: now, leaseUntil: null, d1Calls: sql`${ingests.d1Calls} + ${counter.calls + 1}` })
      .where(and(eq(ingests.id, ingest.id), eq(ingests.status, "processing"))),
  ];
  const runId = ingest.createdRun ? ingest.runId : null;
  if (runId) {
    statements.push(
      ctx.db
        .update(testRuns)
        .set({ deletedAt: sql`coalesce(${testRuns.deletedAt}, ${now})`, shardKey: null })
        .where(and(eq(testRuns.id, runId), eq(testRuns.organizationId, ingest.organizationId))),
      // The run never existed for anyone: its testrun.created.v1 goes with it (as a failed
      // synchronous ingest's does).
      withdrawEvents(ingest.organizationId, runId),
    );
  }
  await batchAll(ctx.db, statements);
  if (runId) await purgeRun(ctx.db, ctx.env.ARTIFACTS, { id: runId, projectId: ingest.projectId });
  await deleteR2Prefix(ctx.env.ARTIFACTS, ingestObjectPrefix(ingest.projectId, ingest.id));
}
