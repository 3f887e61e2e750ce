import { createParser, detectFormat, SNIFF_BYTES, type IngestFormat, type NormalizedResult, type ReportMetadata, type ReportTotals } from "../../ingest";
import { withoutUndefined } from "../../lib/objects";
import { type CoreContext, requireScope } from "../context";
import { NotFound, TooLarge } from "../errors";
import { recordResults, type ResultInput } from "../results/results";
import { type CreateRunInput, type Run, createRun, deleteRun, findRunOfBuild, readVisibleRun, resolveProject, shardKeyOf } from "../runs/runs";

/** Reports up to this size and count are ingested in the request, in one D1 transaction. */
export const SYNC_INGEST_MAX_BYTES = 5 * 1024 * 1024;
export const SYNC_INGEST_MAX_RESULTS = 5000;

/** What the caller says about the run, from query parameters or X-Greenlight-* headers. */
export interface IngestTarget extends Omit<CreateRunInput, "status"> {
  /** Extend this run rather than find or create one. */
  runId?: string;
}

export interface IngestInput {
  text: string;
  contentType: string | null;
  format?: string;
  target: IngestTarget;
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

/** The parsed report: all of it, before anything is written. */
function parseWhole(input: IngestInput): { format: IngestFormat; results: NormalizedResult[]; metadata: ReportMetadata; totals: ReportTotals | null } {
  const format = detectFormat(input.contentType, input.text.slice(0, SNIFF_BYTES), input.format);
  const parser = createParser(format);
  const results = parser.write(input.text);
  results.push(...parser.end());
  if (results.length > SYNC_INGEST_MAX_RESULTS) {
    throw new TooLarge(
      `The report holds ${results.length} results; reports of more than ${SYNC_INGEST_MAX_RESULTS} results need the asynchronous ingest, which is not available yet.`,
      { results: results.length, max_results: SYNC_INGEST_MAX_RESULTS },
    );
  }
  return { format, results, metadata: parser.metadata(), totals: parser.totals() };
}

/** Attachments named by the report are kept as annotations until artifacts are stored. */
function toResultInput(result: NormalizedResult): ResultInput {
  const { attachments, ...input } = result;
  if (!attachments || attachments.length === 0) return input;
  const annotations = [
    ...(input.annotations ?? []),
    ...attachments.map((a) => ({ type: "attachment", description: a.path ? `${a.name}: ${a.path}` : a.name })),
  ];
  return { ...input, annotations: annotations.slice(0, 100) };
}

/**
 * Ingests a whole report in the request: parse it completely (a bad report writes nothing), then
 * find, extend or create its run, then record every result in one D1 batch. Explicit run
 * metadata wins over what the report says. A run this ingest created is deleted again if the
 * results cannot be written, so no empty run is left behind.
 */
export async function ingestReport(ctx: CoreContext, input: IngestInput): Promise<IngestOutcome> {
  requireScope(ctx.principal, "results:submit");
  if (input.text.length > SYNC_INGEST_MAX_BYTES) {
    throw new TooLarge(`Reports over ${SYNC_INGEST_MAX_BYTES} bytes need the asynchronous ingest, which is not available yet.`, {
      max_bytes: SYNC_INGEST_MAX_BYTES,
    });
  }
  const parsed = parseWhole(input);
  const { runId, ...explicit } = input.target;
  const metadata: CreateRunInput = { ...withoutUndefined(parsed.metadata), ...withoutUndefined(explicit) };
  // Which run a report joins depends on what the caller says, not on names inside the report:
  // each module's JUnit file of one build may name itself differently.
  const grouping = { ...metadata, runTitle: explicit.runTitle };

  let run: Run | null;
  let createdRun = false;
  if (runId !== undefined) {
    run = await readVisibleRun(ctx, runId);
    if (!run || (metadata.projectId !== undefined && run.projectId !== metadata.projectId)) throw new NotFound("Test run", { id: runId });
  } else {
    const projectId = await resolveProject(ctx, metadata.projectId);
    const sharded = shardKeyOf(grouping) !== null;
    run = !sharded && grouping.ciBuildId ? await findRunOfBuild(ctx, projectId, grouping.ciBuildId, grouping.runTitle ?? undefined) : null;
    if (!run) {
      run = await createRun(ctx, { ...metadata, ...(sharded ? { runTitle: grouping.runTitle } : {}), projectId });
      createdRun = true;
    }
  }

  let outcome;
  try {
    outcome = await recordResults(ctx, run.id, parsed.results.map(toResultInput), { maxResults: SYNC_INGEST_MAX_RESULTS });
  } catch (err) {
    if (createdRun) await deleteRun(ctx, run.id);
    throw err;
  }
  return {
    format: parsed.format,
    run: outcome.run,
    createdRun,
    results: parsed.results.length,
    superseded: outcome.superseded,
    reportTotals: parsed.totals,
  };
}
