import { RUN_LIMITS } from "../core/limits";
import type { Annotation, ResultError, Step } from "../core/results/results";
import { cleanText, finishResult, invalidValue, jsonNumber, jsonString, stripAnsi, type ResultSource, type Subject } from "./finish";
import { JsonReportParser } from "./json-report";
import { JsonStream, type PathSegment, type ValueKind, type Visit } from "./json-stream";
import { arrayOf, firstString, isObject, isoDateTime, objectOf, positiveInteger, stringsOf, type JsonObject } from "./json-values";
import {
  IngestError,
  type Attachment,
  type NormalizedResult,
  type ReportTotals,
} from "./normalized";

interface SuiteFrame {
  title?: string;
  file?: string;
  closed: boolean;
  /** Specs read before a title of their suites: they wait until the titles are known. */
  pending: { spec: JsonObject; chain: SuiteFrame[] }[];
}

const SUITE_FIELDS = new Set(["title", "file"]);
const STEP_CATEGORIES: Record<string, Step["category"]> = {
  hook: "hook",
  fixture: "fixture",
  "test.step": "action",
  "pw:api": "action",
  expect: "assertion",
};
const TITLE_TAG = /(?:^|\s)(@[^\s@]+)/g;

/** Whether `path` (up to `length`) is a suite: "suites", i, "suites", j, ... */
function isSuitePath(path: readonly PathSegment[], length: number): boolean {
  if (length < 2 || length % 2 !== 0) return false;
  for (let i = 0; i < length; i += 2) {
    if (path[i] !== "suites" || typeof path[i + 1] !== "number") return false;
  }
  return true;
}

/**
 * The JSON reporter's output (`reporter: [["json"]]`). Each spec is built and mapped as soon as
 * it is complete; the suites around it are walked, never assembled, so a report of any size
 * holds one spec at a time.
 */
export class PlaywrightParser extends JsonReportParser {
  readonly format = "playwright" as const;
  protected readonly json: JsonStream;
  private readonly suites: SuiteFrame[] = [];
  private projectNames: Set<string> | null = null;

  constructor() {
    super();
    this.json = new JsonStream(this.format, {
      visit: (path, kind) => this.visit(path, kind),
      value: (path, value) => this.value(path, value),
      leave: (path) => {
        if (isSuitePath(path, path.length)) this.closeSuite();
      },
    });
  }

  private source(): ResultSource {
    return { format: this.format, at: () => this.json.position() };
  }

  private visit(path: readonly PathSegment[], kind: ValueKind): Visit {
    const depth = path.length;
    if (depth === 0) {
      if (kind !== "object") throw notPlaywright("the report is not a JSON object");
      return "walk";
    }
    const last = path[depth - 1];
    if (depth === 1) {
      if (last === "config" || last === "stats") return "capture";
      if (last === "suites") {
        if (kind !== "array") throw invalidValue(this.source(), "suites", undefined, "must be an array");
        return "walk";
      }
      return "skip";
    }
    if (typeof last === "number") {
      if (kind === "object" && path[depth - 2] === "suites" && isSuitePath(path, depth)) {
        this.suites.push({ closed: false, pending: [] });
        return "walk";
      }
      if (kind === "object" && path[depth - 2] === "specs" && isSuitePath(path, depth - 2)) return "capture";
      return "skip";
    }
    if (!isSuitePath(path, depth - 1)) return "skip";
    if (SUITE_FIELDS.has(last!) && kind === "primitive") return "capture";
    if ((last === "specs" || last === "suites") && kind === "array") return "walk";
    return "skip";
  }

  private value(path: readonly PathSegment[], value: unknown): void {
    const depth = path.length;
    if (depth === 1) {
      if (path[0] === "config") this.readConfig(objectOf(value));
      else this.readStats(objectOf(value));
      return;
    }
    const last = path[depth - 1];
    if (typeof last === "number") {
      this.readSpec(objectOf(value));
      return;
    }
    const suite = this.suites.at(-1);
    if (!suite) return;
    if (last === "title") suite.title = jsonString(value) ?? "";
    else if (last === "file") suite.file = jsonString(value);
  }

  private readSpec(spec: JsonObject): void {
    const chain = [...this.suites];
    if (chain.every((s) => s.title !== undefined)) this.emitSpec(spec, chain);
    else this.suites.at(-1)!.pending.push({ spec, chain });
  }

  private closeSuite(): void {
    const suite = this.suites.pop();
    if (!suite) return;
    suite.closed = true;
    suite.title ??= "";
    const parent = this.suites.at(-1);
    for (const waiting of suite.pending) {
      if (waiting.chain.every((s) => s.title !== undefined)) this.emitSpec(waiting.spec, waiting.chain);
      else parent?.pending.push(waiting);
    }
    suite.pending = [];
  }

  private emitSpec(spec: JsonObject, chain: SuiteFrame[]): void {
    const source = this.source();
    const title = jsonString(spec.title) ?? "";
    // The outermost suite is the file; describe blocks are the ones inside it.
    const describes = chain.slice(1).map((s) => s.title ?? "").filter((t) => t.trim() !== "");
    const filePath = jsonString(spec.file) ?? chain[0]?.file ?? chain[0]?.title;
    const subject: Subject = { test: [...describes, title].join(" > ") };
    const lineNumber = jsonNumber(spec.line, source, "line", subject, { integer: true });
    const tags = [...stringsOf(spec.tags), ...[...title.matchAll(TITLE_TAG)].map((m) => m[1]!)];
    const tests = spec.tests;
    if (tests !== undefined && !Array.isArray(tests)) throw invalidValue(source, "tests", subject, "must be an array");
    const projectsInSpec = new Set(arrayOf(tests).map((t) => jsonString(objectOf(t).projectName) ?? ""));
    const severalProjects = this.projectNames ? this.projectNames.size > 1 : projectsInSpec.size > 1;
    for (const entry of arrayOf(tests)) {
      const test = objectOf(entry);
      const project = jsonString(test.projectName) ?? "";
      const path = severalProjects && project ? [project, ...describes, title] : [...describes, title];
      const fullTitle = path.join(" > ");
      const draft = this.resultOf(test, { test: fullTitle }, source);
      draft.title = title;
      draft.fullTitle = fullTitle;
      draft.suitePath = describes;
      if (filePath) draft.filePath = filePath;
      if (lineNumber !== undefined) draft.lineNumber = lineNumber;
      if (tags.length > 0) draft.tags = tags;
      this.out.push(finishResult(draft, source));
    }
  }

  private resultOf(test: JsonObject, subject: Subject, source: ResultSource): NormalizedResult {
    if (test.results !== undefined && !Array.isArray(test.results)) throw invalidValue(source, "results", subject, "must be an array");
    const results = arrayOf(test.results).map(objectOf);
    const last = results.at(-1);
    const status = outcomeOf(test, results);
    const retries = Math.max(results.length - 1, 0);
    const lastRetry = last ? jsonNumber(last.retry, source, "retry", subject, { integer: true }) : undefined;
    const draft: NormalizedResult = {
      title: "",
      status,
      duration: (last && jsonNumber(last.duration, source, "duration", subject)) ?? 0,
      retries,
      attempt: (lastRetry ?? retries) + 1,
    };
    if (status === "flaky") draft.isFlaky = true;
    if (last) {
      // A flaky test passed in the end; the failure before that is what explains the flake.
      const erring = status === "flaky" ? results.findLast((r) => failedStatus(r.status)) : status === "failed" ? last : undefined;
      const error = erring ? errorOfResult(erring) : undefined;
      if (error) draft.error = error;
      const steps = stepsOf(last.steps);
      if (steps.length > 0) draft.steps = steps;
      const stdout = outputOf(last.stdout);
      const stderr = outputOf(last.stderr);
      if (stdout) draft.stdout = stdout;
      if (stderr) draft.stderr = stderr;
    }
    const annotations = annotationsOf([...arrayOf(test.annotations), ...arrayOf(last?.annotations)]);
    if (annotations.length > 0) draft.annotations = annotations;
    const attachments = results.flatMap((r) => attachmentsOf(r.attachments));
    if (attachments.length > 0) draft.attachments = attachments;
    return draft;
  }

  private readConfig(config: JsonObject): void {
    this.projectNames = new Set(arrayOf(config.projects).map((p) => jsonString(objectOf(p).name) ?? ""));
    const metadata = objectOf(config.metadata);
    const ci = objectOf(metadata.ci);
    const git = objectOf(metadata.gitCommit);
    this.remember("playwrightVersion", firstString(config.version));
    this.remember("commitSha", firstString(ci.commitHash, metadata["revision.id"], git.hash, metadata.commit, metadata.commitSha));
    this.remember("branch", firstString(ci.branch, git.branch, metadata.branch, metadata["revision.branch"]));
    this.remember("ciBuildUrl", firstString(ci.buildHref, metadata["ci.link"]));
    this.remember("commitMessage", firstString(git.subject, metadata["revision.subject"]));
    this.remember("commitAuthor", firstString(objectOf(git.author).name, metadata["revision.author"]));
    const workers = positiveInteger(config.workers);
    if (workers !== undefined && workers <= RUN_LIMITS.workers) this.meta.workers = workers;
    const shard = objectOf(config.shard);
    const current = positiveInteger(shard.current);
    const total = positiveInteger(shard.total);
    if (current !== undefined && total !== undefined && current <= total && total <= RUN_LIMITS.shards) {
      this.meta.shardCurrent = current;
      this.meta.shardTotal = total;
    }
  }

  private readStats(stats: JsonObject): void {
    const source = this.source();
    const count = (field: string) => jsonNumber(stats[field], source, `stats.${field}`, undefined, { integer: true });
    const passed = count("expected");
    const failed = count("unexpected");
    const flaky = count("flaky");
    const skipped = count("skipped");
    const totals: ReportTotals = {};
    if (passed !== undefined) totals.passed = passed;
    if (failed !== undefined) totals.failed = failed;
    if (flaky !== undefined) totals.flaky = flaky;
    if (skipped !== undefined) totals.skipped = skipped;
    const known = [passed, failed, flaky, skipped];
    if (known.every((n) => n !== undefined)) totals.tests = known.reduce((a, b) => a! + b!, 0);
    if (Object.keys(totals).length > 0) this.declared = totals;
    this.remember("startedAt", isoDateTime(stats.startTime));
  }

  private remember(field: "playwrightVersion" | "commitSha" | "branch" | "ciBuildUrl" | "commitMessage" | "commitAuthor" | "startedAt", value: string | undefined): void {
    if (value === undefined) return;
    const text = cleanText(value);
    const limit = field === "commitMessage" ? RUN_LIMITS.commitMessage : RUN_LIMITS.text;
    if (text.length <= limit && this.meta[field] === undefined) this.meta[field] = text;
  }
}

function notPlaywright(problem: string): IngestError {
  return new IngestError(`Not a Playwright JSON report: ${problem}.`, { format: "playwright", reason: "not_playwright" });
}

function failedStatus(status: unknown): boolean {
  return status === "failed" || status === "timedOut" || status === "interrupted";
}

/** Playwright's own verdict when the report has it, else worked out the way Playwright does. */
function outcomeOf(test: JsonObject, results: JsonObject[]): NormalizedResult["status"] {
  switch (test.status) {
    case "expected":
      return "passed";
    case "unexpected":
      return "failed";
    case "flaky":
      return "flaky";
    case "skipped":
      return "skipped";
  }
  const ran = results.filter((r) => r.status !== "interrupted");
  if (ran.every((r) => r.status === "skipped")) return results.length > ran.length ? "failed" : "skipped";
  const expected = jsonString(test.expectedStatus) ?? "passed";
  const failures = ran.filter((r) => r.status !== expected).length;
  if (failures === 0) return "passed";
  return failures === ran.length || ran.at(-1)?.status !== expected ? "failed" : "flaky";
}

function errorOf(value: unknown): ResultError | undefined {
  if (!isObject(value)) return undefined;
  const error: ResultError = {};
  const message = jsonString(value.message) ?? jsonString(value.value);
  const stack = jsonString(value.stack);
  if (message) error.message = stripAnsi(message);
  if (stack) error.stack = stripAnsi(stack);
  return error.message || error.stack ? error : undefined;
}

function errorOfResult(result: JsonObject): ResultError | undefined {
  return errorOf(result.error) ?? errorOf(arrayOf(result.errors)[0]);
}

/** The step tree, copied with an explicit stack: its depth is the report's to choose. */
function stepsOf(value: unknown): Step[] {
  const roots: Step[] = [];
  const stack: { raw: unknown; into: Step[] }[] = [];
  const list = arrayOf(value);
  for (let i = list.length - 1; i >= 0; i--) stack.push({ raw: list[i], into: roots });
  const placed: { into: Step[]; step: Step }[] = [];
  while (stack.length > 0) {
    const { raw, into } = stack.pop()!;
    if (!isObject(raw)) continue;
    const step: Step = { title: jsonString(raw.title) ?? "" };
    const category = STEP_CATEGORIES[jsonString(raw.category) ?? ""];
    if (category) step.category = category;
    const error = errorOf(raw.error);
    step.status = error ? "failed" : "passed";
    if (typeof raw.duration === "number" && Number.isFinite(raw.duration) && raw.duration >= 0) step.duration = raw.duration;
    if (error) step.error = error;
    placed.push({ into, step });
    const children = arrayOf(raw.steps);
    if (children.length > 0) {
      step.steps = [];
      for (let i = children.length - 1; i >= 0; i--) stack.push({ raw: children[i], into: step.steps });
    }
  }
  for (const { into, step } of placed) into.push(step);
  return roots;
}

/** stdout/stderr entries are {text} or {buffer} (base64 of bytes that were not valid UTF-8). */
function outputOf(value: unknown): string | undefined {
  const parts: string[] = [];
  for (const entry of arrayOf(value)) {
    if (typeof entry === "string") parts.push(entry);
    else if (isObject(entry) && typeof entry.text === "string") parts.push(entry.text);
    else if (isObject(entry) && typeof entry.buffer === "string") {
      const decoded = decodeBase64(entry.buffer);
      if (decoded !== undefined) parts.push(decoded);
    }
  }
  const text = parts.join("");
  return text === "" ? undefined : text;
}

function decodeBase64(value: string): string | undefined {
  try {
    const binary = atob(value);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch {
    return undefined;
  }
}

function annotationsOf(values: unknown[]): Annotation[] {
  const seen = new Set<string>();
  const out: Annotation[] = [];
  for (const value of values) {
    if (!isObject(value)) continue;
    const type = jsonString(value.type);
    if (!type) continue;
    const description = jsonString(value.description);
    const key = `${type}\u0000${description ?? ""}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(description ? { type, description } : { type });
  }
  return out;
}

function attachmentsOf(value: unknown): Attachment[] {
  const out: Attachment[] = [];
  for (const entry of arrayOf(value)) {
    if (!isObject(entry)) continue;
    const name = jsonString(entry.name);
    if (!name) continue;
    const attachment: Attachment = { name };
    const path = jsonString(entry.path);
    const contentType = jsonString(entry.contentType);
    if (path) attachment.path = path;
    if (contentType) attachment.contentType = contentType;
    out.push(attachment);
  }
  return out;
}
