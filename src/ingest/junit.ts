import { SaxesParser, type SaxesTagPlain } from "saxes";
import { RESULT_LIMITS, RUN_LIMITS } from "../core/limits";
import type { Annotation, ResultError } from "../core/results/results";
import {
  BoundedText,
  cleanText,
  decimalAttribute,
  finishResult,
  invalidValue,
  secondsToMs,
  truncateErrorText,
  type ResultSource,
  type Subject,
} from "./finish";
import {
  IngestError,
  MAX_NESTING_DEPTH,
  type NormalizedResult,
  type Position,
  type ReportMetadata,
  type ReportParser,
  type ReportTotals,
} from "./normalized";

/**
 * Suite-level <system-out>/<system-err> (Ant and Gradle write a test class's output only there)
 * goes to the suite's failed and flaky results that have none of their own: those are the ones
 * whose output someone reads, and copying one log into every passing result would multiply it
 * thousands of times. A suite's output usually follows its test cases, so such results wait for
 * the suite to close; at most this many per suite, so streaming stays bounded.
 */
const HELD_PER_SUITE = 100;

const FAILURE_ELEMENTS = new Set(["failure", "error"]);
const FLAKY_ELEMENTS = new Set(["flakyFailure", "flakyError"]);
const RERUN_ELEMENTS = new Set(["rerunFailure", "rerunError"]);
const TOLERATED_XML_ERRORS = new Set([
  // Control characters and bad character references in captured output are common in real
  // reports; the text keeps going (NUL becomes U+FFFD later) rather than failing the report.
  "disallowed character.",
  "malformed character entity.",
]);

/**
 * Testsuite properties that carry run metadata under the names CI systems and build tools use,
 * compared lowercased with "env." and separators stripped.
 */
type TextField = Exclude<keyof ReportMetadata, "workers" | "shardCurrent" | "shardTotal" | "tags" | "grepPatterns">;
const METADATA_PROPERTIES: Record<string, TextField> = {
  branch: "branch",
  gitbranch: "branch",
  branchname: "branch",
  cibranch: "branch",
  githubrefname: "branch",
  githubheadref: "branch",
  cicommitbranch: "branch",
  cicommitrefname: "branch",
  commit: "commitSha",
  commitsha: "commitSha",
  gitcommit: "commitSha",
  gitsha: "commitSha",
  sha: "commitSha",
  githubsha: "commitSha",
  cicommitsha: "commitSha",
  revision: "commitSha",
  buildid: "ciBuildId",
  buildnumber: "ciBuildId",
  cibuildid: "ciBuildId",
  githubrunid: "ciBuildId",
  cipipelineid: "ciBuildId",
  buildurl: "ciBuildUrl",
  cibuildurl: "ciBuildUrl",
  cipipelineurl: "ciBuildUrl",
  ciprovider: "ciProvider",
  osname: "os",
  os: "os",
  hostname: "hostname",
  browser: "browser",
};

interface SuiteFrame {
  name: string;
  file?: string;
  stdout?: BoundedText;
  stderr?: BoundedText;
  /** Failed and flaky results without output, waiting for the suite's own. */
  held: NormalizedResult[];
}

interface Rerun {
  message?: string;
  type?: string;
  text: BoundedText;
  stackTrace?: BoundedText;
}

interface CaseDraft {
  name: string;
  classname?: string;
  file?: string;
  line?: number;
  durationMs: number;
  at: Position;
  failure?: { message?: string; type?: string; text: BoundedText };
  skipped?: { message?: string; text: BoundedText };
  notRun: boolean;
  flaky: Rerun[];
  reruns: Rerun[];
  stdout?: BoundedText;
  stderr?: BoundedText;
  tags: string[];
  annotations: Annotation[];
}

interface PropertyDraft {
  name: string;
  value?: string;
  text: BoundedText;
}

type CountKey = "tests" | "failures" | "errors" | "skipped";
const COUNT_TO_TOTAL: Record<CountKey, keyof ReportTotals> = { tests: "tests", failures: "failed", errors: "errors", skipped: "skipped" };

/**
 * JUnit XML, streamed through saxes (a strict, non-validating SAX parser that knows only the
 * five built-in entities). Reads the shapes of Maven Surefire (with its flakyFailure/rerunFailure
 * reruns), pytest, jest-junit, go-junit-report, Gradle and Ant.
 */
export class JUnitParser implements ReportParser {
  readonly format = "junit" as const;
  private readonly sax = new SaxesParser({ xmlns: false, position: true });
  private out: NormalizedResult[] = [];
  private readonly names: string[] = [];
  private readonly suites: SuiteFrame[] = [];
  private testcase: CaseDraft | null = null;
  private property: PropertyDraft | null = null;
  private rerun: Rerun | null = null;
  /** Where each open element's text goes (parallel to `names`); null drops it. */
  private readonly targets: (BoundedText | null)[] = [];
  private readonly meta: ReportMetadata = {};
  private readonly declared: ReportTotals = {};
  private readonly summed: Partial<Record<CountKey, number>> = {};
  private readonly summedMissing = new Set<CountKey>();
  private rootSeen = false;
  private lastClosed = "";
  private failure: IngestError | null = null;
  private sawText = false;
  /** The end of the prolog read so far, so a declaration split between chunks is still found. */
  private prologTail = "";
  private prologTailAt = { line: 1, column: 1 };

  constructor() {
    this.sax.on("doctype", () => {
      throw this.doctypeRefused({ line: this.sax.line, column: this.sax.column, offset: this.sax.position });
    });
    this.sax.on("error", (err) => this.xmlError(err));
    this.sax.on("opentag", (tag) => this.open(tag));
    this.sax.on("closetag", (tag) => this.close(tag.name));
    this.sax.on("text", (text) => this.targets.at(-1)?.append(text));
    this.sax.on("cdata", (text) => this.targets.at(-1)?.append(text));
  }

  write(chunk: string): NormalizedResult[] {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return [];
    if (!this.sawText && chunk.trim() !== "") this.sawText = true;
    try {
      if (!this.rootSeen) this.refuseDeclarations(chunk);
      this.sax.write(chunk);
    } catch (err) {
      throw this.fail(err);
    }
    return this.drain();
  }

  end(): NormalizedResult[] {
    if (this.failure) throw this.failure;
    if (!this.sawText) throw this.fail(IngestError.empty(this.format));
    try {
      this.sax.close();
    } catch (err) {
      throw this.fail(err);
    }
    return this.drain();
  }

  metadata(): ReportMetadata {
    return { ...this.meta };
  }

  totals(): ReportTotals | null {
    const totals: ReportTotals = { ...this.declared };
    for (const key of Object.keys(COUNT_TO_TOTAL) as CountKey[]) {
      const field = COUNT_TO_TOTAL[key];
      const sum = this.summed[key];
      if (totals[field] === undefined && sum !== undefined && !this.summedMissing.has(key)) totals[field] = sum;
    }
    return Object.keys(totals).length > 0 ? totals : null;
  }

  private drain(): NormalizedResult[] {
    const done = this.out;
    this.out = [];
    return done;
  }

  private fail(err: unknown): unknown {
    if (err instanceof IngestError) this.failure = err;
    return err;
  }

  private here(): Position {
    return { line: this.sax.line, column: this.sax.column, offset: this.sax.position };
  }

  private source(at: Position = this.here()): ResultSource & { at: Position } {
    return { format: this.format, at };
  }

  private doctypeRefused(at: Position): IngestError {
    return new IngestError(`XML DOCTYPE and entity declarations are not accepted (line ${at.line}, column ${at.column}).`, {
      format: this.format,
      reason: "doctype",
      ...at,
    });
  }

  /**
   * Refuses a DOCTYPE before saxes reads it: saxes would collect the whole declaration before
   * reporting it, and the declaration is where entity expansion attacks live. Only the prolog
   * (before the root element's first tag) is searched, so a "<!DOCTYPE" inside CDATA is text.
   */
  private refuseDeclarations(chunk: string): void {
    const text = this.prologTail + chunk;
    const rootStart = text.search(/<[A-Za-z_:\u00c0-\uffff]/);
    const prolog = rootStart === -1 ? text : text.slice(0, rootStart);
    const found = prolog.search(/<!(?:DOCTYPE|ENTITY)/);
    if (found !== -1) throw this.doctypeRefused(positionIn(this.prologTailAt, text, found));
    const tail = text.slice(-16);
    this.prologTailAt = positionIn(this.prologTailAt, text, text.length - tail.length);
    this.prologTail = tail;
  }

  private xmlError(err: Error): void {
    const parsed = /^(\d+):(\d+): ([\s\S]*)$/.exec(err.message);
    const problem = parsed ? parsed[3]! : err.message;
    if (TOLERATED_XML_ERRORS.has(problem)) return;
    const at: Position = parsed ? { line: Number(parsed[1]), column: Number(parsed[2]), offset: this.sax.position } : this.here();
    throw IngestError.malformed(this.format, "XML", this.describeXmlProblem(problem), at);
  }

  private describeXmlProblem(problem: string): string {
    const unclosed = /^unclosed tag: (.+)$/.exec(problem);
    if (unclosed) return `unclosed tag '${unclosed[1]}'`;
    const unmatched = /^unmatched closing tag: (.+?)\.?$/.exec(problem);
    if (unmatched) return `closing tag '${unmatched[1]}' matches no open tag`;
    if (problem === "unexpected close tag.") return `unclosed tag '${this.lastClosed}'`;
    if (problem === "document must contain a root element.") return "the report has no root element";
    if (problem === "unexpected end.") return "the report ends in the middle of markup";
    return problem;
  }

  private open(tag: SaxesTagPlain): void {
    if (this.names.length >= MAX_NESTING_DEPTH) {
      const at = this.here();
      throw new IngestError(`The report nests deeper than ${MAX_NESTING_DEPTH} elements at line ${at.line}, column ${at.column}.`, {
        format: this.format,
        reason: "too_deep",
        ...at,
      });
    }
    const parent = this.names.at(-1);
    const inherited = this.targets.at(-1) ?? null;
    const name = tag.name;
    const attrs = tag.attributes as Record<string, string>;
    this.names.push(name);
    this.targets.push(this.targetOf(name, parent, attrs, inherited));
  }

  /** Handles an opening tag and says where the element's text goes. */
  private targetOf(name: string, parent: string | undefined, attrs: Record<string, string>, inherited: BoundedText | null): BoundedText | null {
    if (!this.rootSeen) {
      this.rootSeen = true;
      if (name !== "testsuites" && name !== "testsuite") {
        throw new IngestError(`The XML report's root element is '${name}'; a JUnit report starts with <testsuites> or <testsuite>.`, {
          format: this.format,
          reason: "not_junit",
          ...this.here(),
        });
      }
      if (name === "testsuites") {
        this.openRoot(attrs);
        return null;
      }
    }
    const testcase = this.testcase;
    if (testcase) return this.openInTestcase(testcase, name, parent, attrs, inherited);
    switch (name) {
      case "testsuite":
        this.openSuite(attrs, parent);
        return null;
      case "testcase":
        this.openTestcase(attrs);
        return null;
      case "property":
        if (parent !== "properties") return null;
        this.property = { name: attrs.name ?? "", value: attrs.value, text: new BoundedText(RESULT_LIMITS.annotationText) };
        return this.property.text;
      case "system-out":
      case "system-err": {
        const suite = this.suites.at(-1);
        if (!suite || parent !== "testsuite") return null;
        const buffer = new BoundedText(RESULT_LIMITS.outputBytes + 1);
        if (name === "system-out") suite.stdout = buffer;
        else suite.stderr = buffer;
        return buffer;
      }
    }
    return inherited;
  }

  private openRoot(attrs: Record<string, string>): void {
    for (const key of Object.keys(COUNT_TO_TOTAL) as CountKey[]) {
      const value = decimalAttribute(attrs[key], this.source(), key, undefined, { integer: true });
      if (value !== undefined) this.declared[COUNT_TO_TOTAL[key]] = value;
    }
    decimalAttribute(attrs.time, this.source(), "time", undefined);
    this.remember("runTitle", attrs.name);
    this.remember("startedAt", isoTimestamp(attrs.timestamp));
  }

  private openSuite(attrs: Record<string, string>, parent: string | undefined): void {
    const name = attrs.name ?? "";
    const suite: Subject = { suite: name };
    const source = this.source();
    const topLevel = parent === undefined || parent === "testsuites";
    for (const key of Object.keys(COUNT_TO_TOTAL) as CountKey[]) {
      const value = decimalAttribute(attrs[key], source, key, suite, { integer: true });
      if (!topLevel) continue;
      if (value === undefined) this.summedMissing.add(key);
      else this.summed[key] = (this.summed[key] ?? 0) + value;
    }
    decimalAttribute(attrs.time, source, "time", suite);
    this.remember("hostname", attrs.hostname);
    this.remember("startedAt", isoTimestamp(attrs.timestamp));
    const inherited = this.suites.at(-1)?.file;
    this.suites.push({ name, file: attrs.file || attrs.filepath || inherited, held: [] });
  }

  private openTestcase(attrs: Record<string, string>): void {
    const name = attrs.name ?? "";
    const classname = attrs.classname || attrs.class || undefined;
    const label: Subject = { test: classname && classname !== name ? `${classname} > ${name}` : name };
    const source = this.source();
    const seconds = decimalAttribute(attrs.time, source, "time", label);
    const line = decimalAttribute(attrs.line ?? attrs.lineno, source, "line", label, { integer: true });
    this.testcase = {
      name,
      classname,
      file: attrs.file || attrs.filepath || this.suites.at(-1)?.file,
      line,
      durationMs: seconds === undefined ? 0 : secondsToMs(seconds),
      at: source.at,
      notRun: attrs.status === "notrun" || attrs.result === "suppressed" || attrs.result === "skipped",
      flaky: [],
      reruns: [],
      tags: [],
      annotations: [],
    };
  }

  private openInTestcase(
    testcase: CaseDraft,
    name: string,
    parent: string | undefined,
    attrs: Record<string, string>,
    inherited: BoundedText | null,
  ): BoundedText | null {
    const direct = parent === "testcase";
    if (direct && FAILURE_ELEMENTS.has(name)) {
      // A second failure in one test case is dropped: the first one is the error.
      if (testcase.failure) return null;
      testcase.failure = { message: attrs.message, type: attrs.type, text: new BoundedText(RESULT_LIMITS.errorText) };
      return testcase.failure.text;
    }
    if (direct && name === "skipped") {
      testcase.skipped = { message: attrs.message, text: new BoundedText(RESULT_LIMITS.annotationText) };
      return testcase.skipped.text;
    }
    if (direct && (FLAKY_ELEMENTS.has(name) || RERUN_ELEMENTS.has(name))) {
      this.rerun = { message: attrs.message, type: attrs.type, text: new BoundedText(RESULT_LIMITS.errorText) };
      (FLAKY_ELEMENTS.has(name) ? testcase.flaky : testcase.reruns).push(this.rerun);
      return this.rerun.text;
    }
    if (this.rerun && name === "stackTrace") {
      this.rerun.stackTrace = new BoundedText(RESULT_LIMITS.errorText);
      return this.rerun.stackTrace;
    }
    if (name === "system-out" || name === "system-err") {
      // A rerun's own output belongs to that attempt, not to the result.
      if (!direct) return null;
      const buffer = new BoundedText(RESULT_LIMITS.outputBytes + 1);
      if (name === "system-out") testcase.stdout = buffer;
      else testcase.stderr = buffer;
      return buffer;
    }
    if (name === "property" && parent === "properties") {
      this.property = { name: attrs.name ?? "", value: attrs.value, text: new BoundedText(RESULT_LIMITS.annotationText) };
      return this.property.text;
    }
    return inherited;
  }

  private close(name: string): void {
    this.lastClosed = name;
    this.names.pop();
    this.targets.pop();
    const testcase = this.testcase;
    switch (name) {
      case "testcase":
        if (testcase && !this.names.includes("testcase")) {
          this.testcase = null;
          this.finishTestcase(testcase);
        }
        return;
      case "testsuite":
        if (!testcase) this.closeSuite();
        return;
      case "property":
        if (this.property) this.finishProperty(this.property, testcase);
        this.property = null;
        return;
    }
    if (FLAKY_ELEMENTS.has(name) || RERUN_ELEMENTS.has(name)) this.rerun = null;
  }

  private finishProperty(property: PropertyDraft, testcase: CaseDraft | null): void {
    const value = property.value ?? property.text.toString().trim();
    if (testcase) {
      const key = property.name.toLowerCase();
      if (key === "tag" || key === "tags") testcase.tags.push(...value.split(",").map((t) => t.trim()));
      else if (property.name) testcase.annotations.push(value ? { type: property.name, description: value } : { type: property.name });
      return;
    }
    const key = property.name.toLowerCase().replace(/^env\./, "").replace(/[^a-z0-9]/g, "");
    const field = METADATA_PROPERTIES[key];
    if (field) this.remember(field, value);
  }

  /** The first value a report gives for a field wins; one longer than a run may store is left out. */
  private remember(field: TextField, value: string | undefined): void {
    if (value === undefined) return;
    const text = cleanText(value).trim();
    if (text === "" || text.length > RUN_LIMITS.text || this.meta[field] !== undefined) return;
    this.meta[field] = text;
  }

  private finishTestcase(testcase: CaseDraft): void {
    const suiteNames = this.suites.map((s) => s.name.trim()).filter((n) => n !== "");
    const { name, classname } = testcase;
    const suitePath = classname && classname !== name && classname !== suiteNames.at(-1) ? [...suiteNames, classname] : suiteNames;
    const fullTitle = classname ? (classname === name ? name : `${classname} > ${name}`) : [...suiteNames, name].join(" > ");
    const annotations = [...testcase.annotations];
    let status: NormalizedResult["status"] = "passed";
    let retries = 0;
    let error: ResultError | undefined;
    if (testcase.failure) {
      status = "failed";
      retries = testcase.reruns.length;
      error = errorOf(testcase.failure.message, testcase.failure.type, testcase.failure.text);
    } else if (testcase.skipped || testcase.notRun) {
      status = "skipped";
      // The element's text, where a tool puts one, says more than a generic message ("Skipped").
      const reason = testcase.skipped?.text.toString().trim() || testcase.skipped?.message?.trim();
      annotations.push(reason ? { type: "skip", description: reason } : { type: "skip" });
    } else if (testcase.flaky.length > 0) {
      status = "flaky";
      retries = testcase.flaky.length;
      const last = testcase.flaky.at(-1)!;
      // The test passed in the end; the failure it passed after is what explains the flake.
      error = errorOf(last.message, last.type, last.stackTrace ?? last.text);
    }
    const draft: NormalizedResult = {
      title: name,
      fullTitle,
      status,
      duration: testcase.durationMs,
      retries,
      attempt: retries + 1,
      suitePath,
    };
    if (status === "flaky") draft.isFlaky = true;
    if (testcase.file) draft.filePath = testcase.file;
    if (testcase.line !== undefined) draft.lineNumber = testcase.line;
    if (testcase.tags.length > 0) draft.tags = testcase.tags;
    if (annotations.length > 0) draft.annotations = annotations;
    if (error) draft.error = error;
    const label: Subject = { test: fullTitle };
    if (testcase.stdout) draft.stdout = this.output(testcase.stdout, "system-out", label, testcase.at);
    if (testcase.stderr) draft.stderr = this.output(testcase.stderr, "system-err", label, testcase.at);
    const result = finishResult(draft, this.source(testcase.at));
    const suite = this.suites.at(-1);
    if (suite && waitsForSuiteOutput(result) && suite.held.length < HELD_PER_SUITE) suite.held.push(result);
    else this.out.push(result);
  }

  private output(text: BoundedText, field: string, who: Subject, at: Position): string | undefined {
    if (text.length > RESULT_LIMITS.outputBytes) {
      throw invalidValue(this.source(at), field, who, `must be at most ${RESULT_LIMITS.outputBytes} characters`, "too_long");
    }
    const value = text.toString();
    return value === "" ? undefined : value;
  }

  private closeSuite(): void {
    const suite = this.suites.pop();
    if (!suite) return;
    const at = this.here();
    const who: Subject = { suite: suite.name };
    const stdout = suite.stdout ? this.output(suite.stdout, "system-out", who, at) : undefined;
    const stderr = suite.stderr ? this.output(suite.stderr, "system-err", who, at) : undefined;
    const parent = this.suites.at(-1);
    for (const held of suite.held) {
      if (stdout !== undefined || stderr !== undefined) {
        const withOutput = finishResult({ ...held, ...(stdout ? { stdout } : {}), ...(stderr ? { stderr } : {}) }, this.source(at));
        this.out.push(withOutput);
      } else if (parent && parent.held.length < HELD_PER_SUITE) {
        parent.held.push(held);
      } else {
        this.out.push(held);
      }
    }
  }
}

/** Line and column of `text[index]`, given where `text` starts. */
function positionIn(start: { line: number; column: number }, text: string, index: number): { line: number; column: number } {
  let { line, column } = start;
  for (let i = 0; i < index; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      column = 1;
    } else column++;
  }
  return { line, column };
}

function waitsForSuiteOutput(result: NormalizedResult): boolean {
  return (result.status === "failed" || result.status === "flaky") && result.stdout === undefined && result.stderr === undefined;
}

function errorOf(message: string | undefined, type: string | undefined, text: BoundedText): ResultError | undefined {
  // Text cut at the limit keeps its end as it is, so the marker's count stays exact.
  const raw = text.toString();
  const stack = text.dropped > 0 ? raw.trimStart() : raw.trim();
  const error: ResultError = {};
  const headline = message?.trim() || type?.trim() || stack.split("\n", 1)[0]?.trim();
  if (headline) error.message = headline;
  if (stack) error.stack = truncateErrorText(stack, text.dropped);
  return Object.keys(error).length > 0 ? error : undefined;
}

/** JUnit timestamps often lack a zone ("2024-05-01T10:00:00"); they are read as UTC. */
function isoTimestamp(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const text = raw.trim();
  const zoned = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(text) ? text : `${text}Z`;
  const date = new Date(zoned);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
