import type { ZodError } from "zod";
import { invalidFromZod } from "../http/validation";
import { CreateTestRunBody, ResultInputSchema, resultInputOf, runInputOf } from "../surfaces/v1/run-schemas";
import { cleanText, finishResult, truncateErrorText } from "./finish";
import { JsonReportParser } from "./json-report";
import { JsonStream, type PathSegment, type ValueKind, type Visit } from "./json-stream";
import { isObject } from "./json-values";
import { IngestError, type ReportMetadata } from "./normalized";

const ERROR_FIELDS = new Set(["message", "stack", "expected", "actual"]);

/**
 * Our own JSON: `{"run": {…as POST /api/v1/testruns…}, "results": [ …as the items of
 * POST /api/v1/testruns/{id}/results… ]}`, each item checked by the same schema as that endpoint.
 * Unlike that endpoint, NUL characters and unpaired surrogates are replaced and error texts over
 * 64 KB truncated first, as for every other report format.
 */
export class NativeParser extends JsonReportParser {
  readonly format = "native" as const;
  protected readonly json: JsonStream;
  private index = 0;
  private sawResults = false;

  constructor() {
    super();
    this.json = new JsonStream(this.format, {
      visit: (path, kind) => this.visit(path, kind),
      value: (path, value) => this.value(path, value),
    });
  }

  protected override finish(): void {
    if (!this.sawResults) throw this.invalid("results", "required", "is required");
  }

  private visit(path: readonly PathSegment[], kind: ValueKind): Visit {
    switch (path.length) {
      case 0:
        if (kind !== "object") throw new IngestError("A native report must be a JSON object with a 'results' array.", { format: this.format, reason: "invalid_type", field: "body" });
        return "walk";
      case 1:
        if (path[0] === "run") return "capture";
        if (path[0] !== "results") return "skip";
        if (kind !== "array") throw this.invalid("results", "invalid_type", "must be an array");
        this.sawResults = true;
        return "walk";
      case 2:
        return "capture";
      default:
        return "skip";
    }
  }

  private value(path: readonly PathSegment[], value: unknown): void {
    if (path.length === 1) {
      this.readRun(value);
      return;
    }
    const index = this.index++;
    const item = cleanStrings(value);
    if (!isObject(item)) throw this.invalid(`results.${index}`, "invalid_type", "must be an object");
    const parsed = ResultInputSchema.safeParse(item);
    if (!parsed.success) throw this.fromZod(parsed.error, item, `results.${index}`);
    this.out.push(finishResult(resultInputOf(parsed.data), { format: this.format, at: () => this.json.position() }));
  }

  private readRun(value: unknown): void {
    const run = cleanStrings(value);
    if (!isObject(run)) throw this.invalid("run", "invalid_type", "must be an object");
    const parsed = CreateTestRunBody.safeParse(run);
    if (!parsed.success) throw this.fromZod(parsed.error, run, "run");
    const r = parsed.data;
    // What a report says is metadata only where it says something: nulls and "" are not values.
    const meta: ReportMetadata = {};
    for (const [key, v] of Object.entries(runInputOf(r))) {
      if (v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0)) continue;
      (meta as Record<string, unknown>)[key] = v;
    }
    this.meta = meta;
  }

  private invalid(field: string, reason: string, predicate: string): IngestError {
    return new IngestError(`The '${field}' field ${predicate}.`, { format: this.format, reason, field, ...this.json.position() });
  }

  /** The first problem zod found, named by its full path in the report ("results.3.status"). */
  private fromZod(error: ZodError, data: unknown, prefix: string): IngestError {
    const invalid = invalidFromZod(error, "json", data);
    const inner = typeof invalid.details.field === "string" && invalid.details.field !== "body" ? `.${invalid.details.field}` : "";
    const reason = typeof invalid.details.reason === "string" ? invalid.details.reason : "invalid_value";
    return this.invalid(`${prefix}${inner}`, reason, invalid.predicate ?? "is invalid");
  }
}

/**
 * A copy of a JSON value with its strings made clean Unicode and its error texts within 64 KB,
 * walked with an explicit stack.
 */
function cleanStrings(value: unknown): unknown {
  const root: { value: unknown } = { value };
  const stack: { holder: Record<string | number, unknown>; key: string | number; truncate: boolean }[] = [
    { holder: root as Record<string, unknown>, key: "value", truncate: false },
  ];
  while (stack.length > 0) {
    const { holder, key, truncate } = stack.pop()!;
    const current = holder[key];
    if (typeof current === "string") {
      const clean = cleanText(current);
      holder[key] = truncate ? truncateErrorText(clean) : clean;
    } else if (Array.isArray(current)) {
      const copy = [...current];
      holder[key] = copy;
      for (let i = 0; i < copy.length; i++) stack.push({ holder: copy as unknown as Record<number, unknown>, key: i, truncate: false });
    } else if (isObject(current)) {
      const copy = { ...current };
      holder[key] = copy;
      const isError = key === "error";
      for (const k of Object.keys(copy)) stack.push({ holder: copy, key: k, truncate: isError && ERROR_FIELDS.has(k) });
    }
  }
  return root.value;
}
