import { RUN_LIMITS } from "../core/limits";
import type { Annotation, Step } from "../core/results/results";
import { cleanText, finishResult, invalidValue, jsonNumber, jsonString, stripAnsi, type ResultSource, type Subject } from "./finish";
import { JsonReportParser } from "./json-report";
import { JsonStream, type PathSegment, type ValueKind, type Visit } from "./json-stream";
import { arrayOf, firstString, isObject, isoDateTime, objectOf, stringsOf, type JsonObject } from "./json-values";
import { IngestError, type Attachment, type NormalizedResult, type ReportTotals } from "./normalized";

const STATUSES: Record<string, NormalizedResult["status"]> = {
  passed: "passed",
  failed: "failed",
  skipped: "skipped",
  // CTRF's "pending" (declared, not run) and "other" (a tool's own status) did not pass or fail.
  pending: "skipped",
  other: "skipped",
};
const STEP_STATUSES: Record<string, NonNullable<Step["status"]>> = {
  passed: "passed",
  failed: "failed",
  skipped: "skipped",
  pending: "skipped",
  other: "skipped",
};

/** CTRF (Common Test Report Format) JSON; each entry of results.tests is mapped once complete. */
export class CtrfParser extends JsonReportParser {
  readonly format = "ctrf" as const;
  protected readonly json: JsonStream;
  private index = 0;

  constructor() {
    super();
    this.json = new JsonStream(this.format, {
      visit: (path, kind) => this.visit(path, kind),
      value: (path, value) => this.value(path, value),
    });
  }

  private visit(path: readonly PathSegment[], kind: ValueKind): Visit {
    switch (path.length) {
      case 0:
        if (kind !== "object") throw notCtrf("the report is not a JSON object");
        return "walk";
      case 1:
        if (path[0] !== "results") return "skip";
        if (kind !== "object") throw notCtrf("'results' is not an object");
        return "walk";
      case 2:
        if (path[1] === "tests") {
          if (kind !== "array") throw invalidValue(this.source(), "results.tests", undefined, "must be an array");
          return "walk";
        }
        return path[1] === "summary" || path[1] === "environment" ? "capture" : "skip";
      case 3:
        return path[1] === "tests" ? "capture" : "skip";
      default:
        return "skip";
    }
  }

  private source(): ResultSource {
    return { format: this.format, at: () => this.json.position() };
  }

  private value(path: readonly PathSegment[], value: unknown): void {
    if (path.length === 3) {
      this.out.push(this.resultOf(value, this.index++));
      return;
    }
    const object = objectOf(value);
    if (path[1] === "summary") this.readSummary(object);
    else if (path[1] === "environment") this.readEnvironment(object);
  }

  private resultOf(value: unknown, index: number): NormalizedResult {
    const source = this.source();
    if (!isObject(value)) throw invalidValue(source, `results.tests.${index}`, undefined, "must be an object");
    const test = value;
    const name = jsonString(test.name) ?? "";
    const suitePath = suitePathOf(test.suite);
    const fullTitle = [...suitePath, name].join(" > ");
    const subject: Subject = { test: fullTitle };
    const rawStatus = jsonString(test.status) ?? "";
    const mapped = STATUSES[rawStatus];
    if (!mapped) throw invalidValue(source, "status", subject, `must be one of: ${Object.keys(STATUSES).join(", ")}`);
    const flaky = test.flaky === true && mapped === "passed";
    const retries = jsonNumber(test.retries, source, "retries", subject, { integer: true }) ?? 0;
    const draft: NormalizedResult = {
      title: name,
      fullTitle,
      suitePath,
      status: flaky ? "flaky" : mapped,
      duration: jsonNumber(test.duration, source, "duration", subject) ?? 0,
      retries,
      attempt: retries + 1,
    };
    if (flaky || test.flaky === true) draft.isFlaky = true;
    const filePath = jsonString(test.filePath);
    if (filePath) draft.filePath = filePath;
    const line = jsonNumber(test.line, source, "line", subject, { integer: true });
    if (line !== undefined) draft.lineNumber = line;
    const tags = stringsOf(test.tags);
    if (tags.length > 0) draft.tags = tags;
    const annotations: Annotation[] = [];
    if (rawStatus === "pending" || rawStatus === "other") {
      annotations.push({ type: `ctrf:${rawStatus}`, ...(jsonString(test.rawStatus) ? { description: jsonString(test.rawStatus) } : {}) });
    }
    const type = jsonString(test.type);
    if (type) annotations.push({ type: "ctrf:type", description: type });
    if (annotations.length > 0) draft.annotations = annotations;
    const message = jsonString(test.message);
    const trace = jsonString(test.trace);
    if (message || trace) {
      draft.error = {};
      if (message) draft.error.message = stripAnsi(message);
      if (trace) draft.error.stack = stripAnsi(trace);
    }
    const stdout = outputOf(test.stdout);
    const stderr = outputOf(test.stderr);
    if (stdout) draft.stdout = stdout;
    if (stderr) draft.stderr = stderr;
    const steps = arrayOf(test.steps)
      .filter(isObject)
      .map((s): Step => {
        const step: Step = { title: jsonString(s.name) ?? "" };
        const status = STEP_STATUSES[jsonString(s.status) ?? ""];
        if (status) step.status = status;
        return step;
      });
    if (steps.length > 0) draft.steps = steps;
    const attachments = arrayOf(test.attachments)
      .filter(isObject)
      .flatMap((a): Attachment[] => {
        const attachmentName = jsonString(a.name);
        if (!attachmentName) return [];
        const attachment: Attachment = { name: attachmentName };
        const path = jsonString(a.path);
        const contentType = jsonString(a.contentType);
        if (path) attachment.path = path;
        if (contentType) attachment.contentType = contentType;
        return [attachment];
      });
    if (attachments.length > 0) draft.attachments = attachments;
    return finishResult(draft, source);
  }

  private readSummary(summary: JsonObject): void {
    const source = this.source();
    const count = (field: string) => jsonNumber(summary[field], source, `summary.${field}`, undefined, { integer: true });
    const totals: ReportTotals = {};
    const tests = count("tests");
    const passed = count("passed");
    const failed = count("failed");
    const skipped = count("skipped");
    const pending = count("pending");
    const other = count("other");
    const flaky = count("flaky");
    if (tests !== undefined) totals.tests = tests;
    if (passed !== undefined) totals.passed = passed;
    if (failed !== undefined) totals.failed = failed;
    if (skipped !== undefined || pending !== undefined || other !== undefined) totals.skipped = (skipped ?? 0) + (pending ?? 0) + (other ?? 0);
    if (flaky !== undefined) totals.flaky = flaky;
    if (Object.keys(totals).length > 0) this.declared = totals;
    this.remember("startedAt", isoDateTime(summary.start));
  }

  private readEnvironment(environment: JsonObject): void {
    this.remember("branch", firstString(environment.branchName));
    this.remember("commitSha", firstString(environment.commit));
    this.remember("ciBuildId", firstString(environment.buildId, environment.buildNumber));
    this.remember("ciBuildUrl", firstString(environment.buildUrl));
    this.remember("ciProvider", firstString(environment.ciProvider));
    this.remember("runTitle", firstString(environment.reportName, environment.buildName, environment.appName));
    this.remember("os", firstString([environment.osPlatform, environment.osRelease].filter((v) => typeof v === "string").join(" ")));
    this.remember("browser", firstString(environment.browser));
    this.remember("hostname", firstString(environment.hostname));
  }

  private remember(field: "branch" | "commitSha" | "ciBuildId" | "ciBuildUrl" | "ciProvider" | "runTitle" | "os" | "browser" | "hostname" | "startedAt", value: string | undefined): void {
    if (value === undefined) return;
    const text = cleanText(value);
    if (text.length <= RUN_LIMITS.text && this.meta[field] === undefined) this.meta[field] = text;
  }
}

function notCtrf(problem: string): IngestError {
  return new IngestError(`Not a CTRF report: ${problem}.`, { format: "ctrf", reason: "not_ctrf" });
}

/** "A > B" or ["A", "B"]. */
function suitePathOf(value: unknown): string[] {
  const parts = Array.isArray(value) ? stringsOf(value) : typeof value === "string" ? value.split(" > ") : [];
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

function outputOf(value: unknown): string | undefined {
  const text = Array.isArray(value) ? stringsOf(value).join("\n") : (jsonString(value) ?? "");
  return text === "" ? undefined : text;
}
