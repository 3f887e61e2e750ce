import { createParser, detectFormat, SNIFF_BYTES, type IngestFormat, type NormalizedResult, type ReportMetadata, type ReportTotals } from "../../ingest";
import { withoutUndefined } from "../../lib/objects";
import { type CoreContext, requireScope } from "../context";
import { NotFound } from "../errors";
import { withdrawEvents } from "../events/outbox";
import { recordResults, type ResultInput } from "../results/results";
import { type CreateRunInput, type Run, deleteRun, findRunOfBuild, openRun, readVisibleRun, resolveProject, shardKeyOf } from "../runs/runs";

/** Reports up to this size and count are ingested in the request, in one D1 transaction. */
export const SYNC_INGEST_MAX_BYTES = 5 * 1024 * 1024;
export const SYNC_INGEST_MAX_RESULTS = 5000;

/** What the caller says about the run, from query parameters or X-Greenlight-* headers. */
export interface IngestTarget extends Omit<CreateRunInput, "status"> {
  /** Extend this run rather than find or create one. */
  runId?: string;
}

export interface IngestOutcome {
  format: IngestFormat;
  run: Run;
  /** Whether this ingest created the run (false when it extended one). */
  createdRun: boolean;
  /** Results in the report. */
  results: number;
  /** Results not stored because the run already holds a later attempt of the same test. */
  superseded: number;
  /** The report's own declared totals, when its format has them. */
  reportTotals: ReportTotals | null;
}

export interface ParsedReport {
  format: IngestFormat;
  results: NormalizedResult[];
  metadata: ReportMetadata;
  totals: ReportTotals | null;
}

/** The format of a report, from what the caller says and the report's first bytes. */
export function reportFormat(contentType: string | null, head: string, format: string | undefined): IngestFormat {
  return detectFormat(contentType, head.slice(0, SNIFF_BYTES), format);
}

/** A whole report, parsed before anything is written, so a bad one writes nothing. */
export function parseWhole(format: IngestFormat, text: string): ParsedReport {
  const parser = createParser(format);
  const results = parser.write(text);
  results.push(...parser.end());
  return { format, results, metadata: parser.metadata(), totals: parser.totals() };
}

/**
 * Checks the beginning of a report too large to parse in the request, so a report that is
 * broken from the start is refused at once rather than accepted and failed later, and reads what
 * the report says about its run where it says it early. Throws IngestError.
 */
export function parseHead(format: IngestFormat, head: string): ReportMetadata {
  const parser = createParser(format);
  parser.write(head);
  return parser.metadata();
}

/** Attachments named by the report are kept as annotations until artifacts are stored. */
export function toResultInput(result: NormalizedResult): ResultInput {
  const { attachments, ...input } = result;
  if (!attachments || attachments.length === 0) return input;
  const annotations = [
    ...(input.annotations ?? []),
    ...attachments.map((a) => ({ type: "attachment", description: a.path ? `${a.name}: ${a.path}` : a.name })),
  ];
  return { ...input, annotations: annotations.slice(0, 100) };
}

/**
 * The run a report goes into: the run named by id, or the run of the same CI build (shards merge
 * as for POST /testruns), or a new one. Explicit run metadata wins over what the report says;
 * which run a report joins depends on what the caller says, not on names inside the report: each
 * module's JUnit file of one build may name itself differently.
 */
export async function runForReport(ctx: CoreContext, target: IngestTarget, reported: ReportMetadata): Promise<{ run: Run; created: boolean }> {
  const { runId, ...explicit } = target;
  const metadata: CreateRunInput = { ...withoutUndefined(reported), ...withoutUndefined(explicit) };
  const grouping = { ...metadata, runTitle: explicit.runTitle };
  if (runId !== undefined) {
    const run = await readVisibleRun(ctx, runId);
    if (!run || (metadata.projectId !== undefined && run.projectId !== metadata.projectId)) throw new NotFound("Test run", { id: runId });
    return { run, created: false };
  }
  const projectId = await resolveProject(ctx, metadata.projectId);
  const sharded = shardKeyOf(grouping) !== null;
  const existing = !sharded && grouping.ciBuildId ? await findRunOfBuild(ctx, projectId, grouping.ciBuildId, grouping.runTitle ?? undefined) : null;
  if (existing) return { run: existing, created: false };
  return openRun(ctx, { ...metadata, ...(sharded ? { runTitle: grouping.runTitle } : {}), projectId });
}

/**
 * Ingests a parsed report of at most SYNC_INGEST_MAX_RESULTS results in the request: find, extend
 * or create its run, then record every result in one D1 batch. A run this ingest created is
 * deleted again if the results cannot be written, so no empty run is left behind.
 */
export async function ingestParsedReport(ctx: CoreContext, parsed: ParsedReport, target: IngestTarget): Promise<IngestOutcome> {
  requireScope(ctx.principal, "results:submit");
  const { run, created } = await runForReport(ctx, target, parsed.metadata);
  let outcome;
  try {
    outcome = await recordResults(ctx, run.id, parsed.results.map(toResultInput), { maxResults: SYNC_INGEST_MAX_RESULTS });
  } catch (err) {
    if (created) {
      // The run never existed for anyone: its testrun.created.v1 goes with it.
      await ctx.db.run(withdrawEvents(run.organizationId, run.id));
      await deleteRun(ctx, run.id);
    }
    throw err;
  }
  return {
    format: parsed.format,
    run: outcome.run,
    createdRun: created,
    results: parsed.results.length,
    superseded: outcome.superseded,
    reportTotals: parsed.totals,
  };
}
