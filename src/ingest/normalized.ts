import { Invalid } from "../core/errors";
import type { ResultInput } from "../core/results/results";

export const INGEST_FORMATS = ["junit", "playwright", "ctrf", "native"] as const;
export type IngestFormat = (typeof INGEST_FORMATS)[number];

export interface Attachment {
  name: string;
  path?: string;
  contentType?: string;
}

/** One test's outcome as the core records it, plus the files the report points at. */
export type NormalizedResult = ResultInput & { attachments?: Attachment[] };

/** What a report may say about the run that produced it. */
export interface ReportMetadata {
  /** Only native reports name these (their `run` object takes POST /testruns' fields). */
  projectId?: string;
  buildId?: string;
  planId?: string;
  viewport?: string;
  grepPatterns?: string[];
  branch?: string;
  commitSha?: string;
  commitMessage?: string;
  commitAuthor?: string;
  ciBuildId?: string;
  ciBuildUrl?: string;
  ciProvider?: string;
  runTitle?: string;
  playwrightVersion?: string;
  workers?: number;
  shardCurrent?: number;
  shardTotal?: number;
  hostname?: string;
  os?: string;
  browser?: string;
  /** ISO 8601. */
  startedAt?: string;
  tags?: string[];
}

/**
 * The counts a report declares about itself, where its format has them; only the fields the
 * report states are set. `passed` counts flaky tests too when the format does not tell them
 * apart (JUnit, CTRF); Playwright's stats do, and then they are only in `flaky`. JUnit keeps
 * errors apart from failures: a JUnit report's failed results number `failed + errors`.
 */
export interface ReportTotals {
  tests?: number;
  passed?: number;
  failed?: number;
  skipped?: number;
  flaky?: number;
  errors?: number;
}

/**
 * An incremental parser of one report: fed the text in chunks of any size, it hands back each
 * result as soon as the chunk that completes it arrives, so a report is never held whole.
 * Every method throws IngestError on a bad report; after a throw the parser is spent.
 */
export interface ReportParser {
  readonly format: IngestFormat;
  /** Results completed by this chunk. */
  write(chunk: string): NormalizedResult[];
  /** Results still held back; throws when the report is truncated or empty. */
  end(): NormalizedResult[];
  /** What the report said about its run so far (complete after end()). */
  metadata(): ReportMetadata;
  /** The report's own declared totals, or null when it declares none (complete after end()). */
  totals(): ReportTotals | null;
}

export interface IngestErrorDetails {
  format: IngestFormat | "unknown";
  /** Machine-readable: "empty", "malformed", "too_deep", "doctype", "invalid_number", "too_long"... */
  reason: string;
  /** 1-based, where the format gives positions. */
  line?: number;
  /** 1-based, in UTF-16 code units. */
  column?: number;
  /** 0-based: characters for XML, UTF-8 bytes for JSON. */
  offset?: number;
  /** The offending field, dotted for native reports ("results.3.status"). */
  field?: string;
  /** The test the problem is in, when there is one. */
  test?: string;
  [key: string]: unknown;
}

export interface Position {
  line?: number;
  column?: number;
  offset?: number;
}

/** A report the parsers refuse: 400 when it is not well-formed, 422 when a value makes no sense. */
export class IngestError extends Invalid {
  declare readonly details: IngestErrorDetails;
  constructor(message: string, details: IngestErrorDetails, status: 400 | 422 = 400) {
    super(message, details, status);
  }

  /** "Malformed XML at line 3, column 7: unclosed tag 'testcase'." */
  static malformed(format: IngestFormat | "unknown", language: "XML" | "JSON", problem: string, at: Position): IngestError {
    return new IngestError(`Malformed ${language}${describePosition(at)}: ${sentence(problem)}`, {
      format,
      reason: "malformed",
      ...definedPosition(at),
    });
  }

  static empty(format: IngestFormat | "unknown"): IngestError {
    return new IngestError("The report is empty.", { format, reason: "empty" });
  }
}

export function describePosition(at: Position): string {
  if (at.line !== undefined && at.column !== undefined) return ` at line ${at.line}, column ${at.column}`;
  if (at.offset !== undefined) return ` at offset ${at.offset}`;
  return "";
}

export function definedPosition(at: Position): Position {
  const out: Position = {};
  if (at.line !== undefined) out.line = at.line;
  if (at.column !== undefined) out.column = at.column;
  if (at.offset !== undefined) out.offset = at.offset;
  return out;
}

function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/**
 * How deep any report may nest (XML elements, JSON objects and arrays). Real reports stay far
 * below it; the parsers count depth themselves so a hostile document is refused before any
 * structure that deep is built, and nothing recurses on the input's depth.
 */
export const MAX_NESTING_DEPTH = 512;
