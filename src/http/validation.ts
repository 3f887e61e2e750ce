import type { OpenAPIHonoOptions } from "@hono/zod-openapi";
import type { ZodError } from "zod";
import { Invalid, type FieldLocation } from "../core/errors";
import type { AppEnv } from "./app-env";

const TARGET_LOCATION: Record<string, FieldLocation> = {
  json: "body",
  form: "body",
  query: "query",
  param: "path",
  header: "header",
};

type Issue = ZodError["issues"][number];

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = data;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function describe(issue: Issue, data: unknown): { reason: string; predicate: string } {
  const missing = (issue.code === "invalid_type" || issue.code === "invalid_value") && valueAt(data, issue.path) === undefined;
  if (missing) return { reason: "required", predicate: "is required" };
  switch (issue.code) {
    case "invalid_type":
      return { reason: "invalid_type", predicate: `must be ${article(issue.expected)}` };
    case "too_big": {
      const max = String(issue.maximum);
      if (issue.origin === "string") return { reason: "too_long", predicate: `must be at most ${max} characters` };
      if (issue.origin === "array") return { reason: "too_many", predicate: `must have at most ${max} items` };
      return { reason: "too_big", predicate: `must be at most ${max}` };
    }
    case "too_small": {
      const min = String(issue.minimum);
      if (issue.origin === "string") {
        return issue.minimum === 1
          ? { reason: "empty", predicate: "must not be empty" }
          : { reason: "too_short", predicate: `must be at least ${min} characters` };
      }
      if (issue.origin === "array") return { reason: "too_few", predicate: `must have at least ${min} items` };
      return { reason: "too_small", predicate: `must be at least ${min}` };
    }
    case "invalid_value":
      return { reason: "invalid_value", predicate: `must be one of: ${issue.values.map(String).join(", ")}` };
    case "invalid_format":
      return { reason: "invalid_format", predicate: issue.format === "datetime" ? "must be an ISO 8601 date-time" : `must be a valid ${issue.format}` };
    case "unrecognized_keys":
      return { reason: "unknown_field", predicate: `has unknown keys: ${issue.keys.join(", ")}` };
    default:
      return { reason: "invalid_value", predicate: issue.message.replace(/\.$/, "") };
  }
}

function article(expected: string): string {
  const word = expected === "int" ? "integer" : expected;
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

/** Turns zod's verdict on one request part into an Invalid naming the first bad field (all of them in details). */
export function invalidFromZod(
  error: ZodError,
  target: string,
  data: unknown,
  /** How the client names a field, when that differs from the schema's key (headers). */
  rename: (field: string) => string = (field) => field,
): Invalid {
  const location = TARGET_LOCATION[target] ?? "body";
  const described = error.issues.map((issue) => {
    const { reason, predicate } = describe(issue, data);
    return { field: rename(issue.path.map(String).join(".") || "body"), reason, predicate };
  });
  const first = described[0] ?? { field: "body", reason: "invalid_value", predicate: "is invalid" };
  if (first.field === "body" && location === "body") {
    return new Invalid("The request body must be a JSON object.", { field: "body", reason: first.reason, location });
  }
  const extra =
    described.length > 1
      ? { errors: described.map((d) => ({ field: d.field, reason: d.reason, message: `'${d.field}' ${d.predicate}` })) }
      : undefined;
  return Invalid.field(first.field, first.reason, first.predicate, { location, extra });
}

/** The defaultHook of every OpenAPIHono: validation failures become domain errors, rendered per surface. */
export const validationHook: NonNullable<OpenAPIHonoOptions<AppEnv>["defaultHook"]> = (result) => {
  // @hono/zod-validator passes the raw input as `data` on failure too (its type omits it); it
  // tells a missing field ("is required") from a wrong one.
  if (!result.success) throw invalidFromZod(result.error, result.target, "data" in result ? result.data : undefined);
};
