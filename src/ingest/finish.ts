import { RESULT_LIMITS } from "../core/limits";
import { STEP_CATEGORIES, STEP_STATUSES, type Annotation, type ResultError, type Step } from "../core/results/results";
import { IngestError, definedPosition, describePosition, type IngestFormat, type NormalizedResult, type Position } from "./normalized";

/**
 * Where a result came from, for the messages of the errors about it. The position may be given
 * as a function: working out a line and column costs a scan, paid only when there is an error.
 */
export interface ResultSource {
  format: IngestFormat;
  at?: Position | (() => Position);
}

export const STEPS_TRUNCATED = "greenlight:steps-truncated";
const STEP_CATEGORIES_SET: ReadonlySet<string> = new Set(STEP_CATEGORIES);
const STEP_STATUSES_SET: ReadonlySet<string> = new Set(STEP_STATUSES);
const ANSI_ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]/g;

/**
 * Reports are written by every kind of tool, some of which leak NUL characters or half a
 * surrogate pair into their output; stored text must be clean Unicode, and one bad byte is no
 * reason to refuse a whole report, so such characters become U+FFFD.
 */
export function cleanText(value: string): string {
  const wellFormed = value.isWellFormed() ? value : value.toWellFormed();
  return wellFormed.includes("\u0000") ? wellFormed.replaceAll("\u0000", "\uFFFD") : wellFormed;
}

/** Terminal colour codes (Playwright's and Jest's messages are full of them) read as noise. */
export function stripAnsi(value: string): string {
  return value.includes("\u001b") ? value.replace(ANSI_ESCAPES, "") : value;
}

/**
 * Error texts are the one place a report's text is cut rather than refused: a stack trace or
 * diff of megabytes is still worth its first 64 KB, and the marker says how much is missing.
 * The result stays within RESULT_LIMITS.errorText.
 */
export function truncateErrorText(value: string, dropped = 0): string {
  return truncateText(value, RESULT_LIMITS.errorText, dropped);
}

/** `value` cut to at most `limit` characters, ending with a marker that says how much is missing. */
function truncateText(value: string, limit: number, dropped = 0): string {
  if (dropped === 0 && value.length <= limit) return value;
  if (value.length + marker(dropped).length <= limit) return `${value}${marker(dropped)}`;
  let kept = limit - marker(value.length + dropped).length;
  const code = value.charCodeAt(kept - 1);
  if (code >= 0xd800 && code <= 0xdbff) kept -= 1;
  return `${value.slice(0, kept)}${marker(value.length - kept + dropped)}`;
}

function marker(dropped: number): string {
  return `… [truncated ${dropped} characters]`;
}

/**
 * Collects an element's text across chunks without holding more than the result may keep:
 * `cap` characters, counting the rest (error texts are then truncated with a marker).
 */
export class BoundedText {
  private parts: string[] = [];
  private kept = 0;
  dropped = 0;
  constructor(readonly cap: number) {}

  append(text: string): void {
    if (text.length === 0) return;
    const room = this.cap - this.kept;
    if (room >= text.length) {
      this.parts.push(text);
      this.kept += text.length;
    } else {
      if (room > 0) this.parts.push(text.slice(0, room));
      this.kept += Math.max(room, 0);
      this.dropped += text.length - Math.max(room, 0);
    }
  }

  get length(): number {
    return this.kept + this.dropped;
  }

  toString(): string {
    const text = this.parts.join("");
    this.parts = [text];
    return text;
  }
}

export function testLabel(result: { title?: string; fullTitle?: string }): string {
  const label = cleanText(result.fullTitle || result.title || "").trim();
  return label.length > 120 ? `${label.slice(0, 119)}…` : label;
}

/** Who a value belongs to, for messages: a test, a suite, or the report itself (undefined). */
export type Subject = { test: string } | { suite: string } | undefined;

/** 422: the report is well-formed but says something a test result cannot be. */
export function invalidValue(source: ResultSource, field: string, subject: Subject, predicate: string, reason = "invalid_value"): IngestError {
  let of = "";
  if (subject && "test" in subject) of = subject.test ? ` of test '${subject.test}'` : " of a test";
  else if (subject) of = subject.suite ? ` of test suite '${subject.suite}'` : " of a test suite";
  const position = typeof source.at === "function" ? source.at() : (source.at ?? {});
  return new IngestError(
    `The '${field}'${of}${describePosition(position)} ${predicate}.`,
    { format: source.format, reason, field, ...subject, ...definedPosition(position) },
    422,
  );
}

function shown(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value) : String(value);
  return text;
}

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** Surefire writes times of a second or more with the JVM locale's grouping: time="1,234.567". */
const GROUPED_DECIMAL = /^\d{1,3}(?:,\d{3})+(?:\.\d+)?$/;

/** A number written as text (XML attributes); empty means absent, anything else not a number is refused. */
export function decimalAttribute(
  raw: string | undefined,
  source: ResultSource,
  field: string,
  subject: Subject,
  options: { integer?: boolean } = {},
): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (text === "") return undefined;
  const normalized = GROUPED_DECIMAL.test(text) ? text.replaceAll(",", "") : text;
  const value = DECIMAL.test(normalized) ? Number(normalized) : Number.NaN;
  if (!Number.isFinite(value)) throw invalidValue(source, field, subject, `must be a number, not ${shown(raw)}`, "invalid_number");
  if (value < 0) throw invalidValue(source, field, subject, `must not be negative, not ${shown(raw)}`, "invalid_number");
  if (options.integer && !Number.isInteger(value)) {
    throw invalidValue(source, field, subject, `must be a whole number, not ${shown(raw)}`, "invalid_number");
  }
  return value;
}

/** A number in a JSON report: absent or null means absent; a string or anything else is refused. */
export function jsonNumber(
  value: unknown,
  source: ResultSource,
  field: string,
  subject: Subject,
  options: { integer?: boolean } = {},
): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw invalidValue(source, field, subject, `must be a number, not ${shown(value)}`, "invalid_number");
  }
  if (value < 0) throw invalidValue(source, field, subject, `must not be negative, not ${shown(value)}`, "invalid_number");
  if (options.integer && !Number.isInteger(value)) {
    throw invalidValue(source, field, subject, `must be a whole number, not ${shown(value)}`, "invalid_number");
  }
  return value;
}

/** A string in a JSON report: absent or null means absent; numbers and booleans read as text. */
export function jsonString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

/** Seconds with decimals (JUnit) to milliseconds, without 0.003 * 1000 = 3.0000000000000004. */
export function secondsToMs(seconds: number): number {
  return Math.round(seconds * 1_000_000) / 1000;
}

function cleanLabel(value: string | null | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = cleanText(value).trim();
  return text === "" ? undefined : text;
}

function cleanError(error: ResultError | null | undefined): ResultError | undefined {
  if (!error) return undefined;
  const out: ResultError = {};
  for (const key of ["message", "stack", "expected", "actual"] as const) {
    const value = error[key];
    if (typeof value === "string" && value !== "") out[key] = truncateErrorText(cleanText(value));
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Brings a parser's draft within the limits every surface enforces (src/core/limits.ts): text is
 * cleaned, error texts truncated, steps deeper than 32 levels moved up and steps beyond 10,000
 * dropped (both noted by a `greenlight:steps-truncated` annotation); anything else over a limit
 * is refused with a 422 naming the field and the test, since cutting it would silently change
 * what the test is.
 */
export function finishResult(draft: NormalizedResult, source: ResultSource): NormalizedResult {
  const test = { test: testLabel(draft) };
  const fail = (field: string, predicate: string, reason = "invalid_value") => invalidValue(source, field, test, predicate, reason);
  const tooLong = (field: string, max: number) => fail(field, `must be at most ${max} characters`, "too_long");

  const title = cleanLabel(draft.title);
  if (title === undefined) throw invalidValue(source, "title", { test: "" }, "must not be empty", "empty");
  if (title.length > RESULT_LIMITS.titleLength) throw tooLong("title", RESULT_LIMITS.titleLength);
  const out: NormalizedResult = { title, status: draft.status, duration: draft.duration };

  const fullTitle = cleanLabel(draft.fullTitle);
  if (fullTitle !== undefined) {
    if (fullTitle.length > RESULT_LIMITS.fullTitleLength) throw tooLong("fullTitle", RESULT_LIMITS.fullTitleLength);
    out.fullTitle = fullTitle;
  }
  const automationId = cleanLabel(draft.automationId);
  if (automationId !== undefined) {
    if (automationId.length > RESULT_LIMITS.shortText) throw tooLong("automationId", RESULT_LIMITS.shortText);
    out.automationId = automationId;
  }
  const filePath = cleanLabel(draft.filePath);
  if (filePath !== undefined) {
    if (filePath.length > RESULT_LIMITS.filePathLength) throw tooLong("filePath", RESULT_LIMITS.filePathLength);
    out.filePath = filePath;
  }
  if (draft.lineNumber !== undefined && draft.lineNumber !== null) {
    if (!Number.isInteger(draft.lineNumber) || draft.lineNumber < 0 || draft.lineNumber > 10_000_000) {
      throw fail("lineNumber", "must be a whole number from 0 to 10000000", "invalid_number");
    }
    out.lineNumber = draft.lineNumber;
  }
  if (!Number.isFinite(draft.duration) || draft.duration < 0 || draft.duration > Number.MAX_SAFE_INTEGER) {
    throw fail("duration", "must be a non-negative number of milliseconds", "invalid_number");
  }
  if (draft.retries !== undefined) {
    if (!Number.isInteger(draft.retries) || draft.retries < 0 || draft.retries > 1000) {
      throw fail("retries", "must be a whole number from 0 to 1000", "invalid_number");
    }
    out.retries = draft.retries;
  }
  if (draft.attempt !== undefined) {
    if (!Number.isInteger(draft.attempt) || draft.attempt < 1 || draft.attempt > 1001) {
      throw fail("attempt", "must be a whole number from 1 to 1001", "invalid_number");
    }
    out.attempt = draft.attempt;
  }
  if (draft.isFlaky !== undefined) out.isFlaky = draft.isFlaky;

  if (draft.tags) {
    const tags = [...new Set(draft.tags.map(cleanLabel).filter((t): t is string => t !== undefined))];
    if (tags.length > RESULT_LIMITS.tags) throw fail("tags", `must have at most ${RESULT_LIMITS.tags} items`, "too_many");
    if (tags.some((t) => t.length > RESULT_LIMITS.shortText)) throw tooLong("tags", RESULT_LIMITS.shortText);
    if (tags.length > 0) out.tags = tags;
  }

  const annotations: Annotation[] = [];
  for (const annotation of draft.annotations ?? []) {
    const type = cleanLabel(annotation.type);
    // An annotation is its type; one without a type says nothing.
    if (type === undefined) continue;
    if (type.length > RESULT_LIMITS.shortText) throw tooLong("annotations.type", RESULT_LIMITS.shortText);
    const description = annotation.description ? cleanText(annotation.description) : undefined;
    if (description !== undefined && description.length > RESULT_LIMITS.annotationText) {
      throw tooLong("annotations.description", RESULT_LIMITS.annotationText);
    }
    annotations.push(description ? { type, description } : { type });
  }

  const error = cleanError(draft.error);
  if (error) out.error = error;

  if (draft.steps && draft.steps.length > 0) {
    const { steps, truncated } = boundedSteps(draft.steps, fail);
    out.steps = steps;
    if (truncated) {
      annotations.push({
        type: STEPS_TRUNCATED,
        description: `Steps nested deeper than ${RESULT_LIMITS.stepDepth} levels were moved up to that level; steps beyond ${RESULT_LIMITS.stepsPerResult} were dropped; step titles over ${RESULT_LIMITS.stepTitleLength} characters were cut.`,
      });
    }
  }
  if (annotations.length > RESULT_LIMITS.annotations) {
    throw fail("annotations", `must have at most ${RESULT_LIMITS.annotations} items`, "too_many");
  }
  if (annotations.length > 0) out.annotations = annotations;

  for (const stream of ["stdout", "stderr"] as const) {
    const text = draft[stream];
    if (text === undefined || text === "") continue;
    if (text.length > RESULT_LIMITS.outputBytes) throw tooLong(stream, RESULT_LIMITS.outputBytes);
    out[stream] = cleanText(text);
  }

  if (draft.suitePath) {
    const suitePath = draft.suitePath.map(cleanLabel).filter((s): s is string => s !== undefined);
    if (suitePath.length > RESULT_LIMITS.suiteDepth) {
      throw fail("suitePath", `must have at most ${RESULT_LIMITS.suiteDepth} levels`, "too_many");
    }
    if (suitePath.some((s) => s.length > RESULT_LIMITS.titleLength)) throw tooLong("suitePath", RESULT_LIMITS.titleLength);
    out.suitePath = suitePath;
  }

  if (draft.attachments && draft.attachments.length > 0) {
    out.attachments = draft.attachments.map((a) => {
      const attachment: { name: string; path?: string; contentType?: string } = { name: cleanText(a.name) };
      if (a.path) attachment.path = cleanText(a.path);
      if (a.contentType) attachment.contentType = cleanText(a.contentType);
      return attachment;
    });
  }
  return out;
}

/**
 * Copies a step tree within the limits, walking it with an explicit stack: steps below level 32
 * become following siblings at level 32 (their order is kept), and the walk stops after 10,000.
 */
function boundedSteps(
  roots: Step[],
  fail: (field: string, predicate: string, reason?: string) => IngestError,
): { steps: Step[]; truncated: boolean } {
  const out: Step[] = [];
  const stack: { step: Step; depth: number; into: Step[] }[] = [];
  for (let i = roots.length - 1; i >= 0; i--) stack.push({ step: roots[i]!, depth: 1, into: out });
  let count = 0;
  let truncated = false;
  while (stack.length > 0) {
    const { step, depth, into } = stack.pop()!;
    if (count === RESULT_LIMITS.stepsPerResult) {
      truncated = true;
      break;
    }
    count++;
    // Titles of expect() steps quote their arguments and can be long; one such step must not
    // cost the whole report, so the title is cut with a marker and the result annotated.
    let title = cleanText(step.title ?? "");
    if (title.length > RESULT_LIMITS.stepTitleLength) {
      title = truncateText(title, RESULT_LIMITS.stepTitleLength);
      truncated = true;
    }
    const node: Step = { title };
    if (step.category && STEP_CATEGORIES_SET.has(step.category)) node.category = step.category;
    if (step.status && STEP_STATUSES_SET.has(step.status)) node.status = step.status;
    if (step.duration !== undefined) {
      if (!Number.isFinite(step.duration) || step.duration < 0) throw fail("steps.duration", "must be a non-negative number", "invalid_number");
      node.duration = step.duration;
    }
    const error = cleanError(step.error);
    if (error) node.error = error;
    into.push(node);
    const children = step.steps;
    if (!children || children.length === 0) continue;
    let target: Step[];
    let childDepth: number;
    if (depth < RESULT_LIMITS.stepDepth) {
      node.steps = [];
      target = node.steps;
      childDepth = depth + 1;
    } else {
      truncated = true;
      target = into;
      childDepth = depth;
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push({ step: children[i]!, depth: childDepth, into: target });
  }
  return { steps: out, truncated };
}
