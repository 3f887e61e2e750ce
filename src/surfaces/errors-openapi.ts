import { z } from "@hono/zod-openapi";

const DESCRIPTIONS: Record<number, string> = {
  400: "Invalid request: the field at fault is named in the message and details.",
  401: "Missing, invalid, inactive or expired credentials.",
  402: "Insufficient credits.",
  403: "Authenticated, but not allowed (missing scope, plain http, restricted key).",
  404: "Not found, or not visible to this key.",
  409: "Conflict.",
  413: "Body too large.",
  415: "Unsupported Content-Type.",
  422: "Idempotency-Key reused with a different request.",
  429: "Rate limited; see Retry-After.",
  500: "Unexpected error; quote X-Request-Id.",
};

export const NativeError = z
  .object({
    error: z.string().openapi({ example: "invalid_request" }),
    message: z.string().openapi({ example: "The 'name' field is required." }),
    details: z.record(z.string(), z.unknown()).openapi({ example: { field: "name" } }),
  })
  .openapi("Error");

export const ReportingError = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "VALIDATION_ERROR" }),
      message: z.string().openapi({ example: "Field 'projectId' is required" }),
      details: z.record(z.string(), z.unknown()).openapi({ example: { field: "projectId", reason: "required" } }),
    }),
  })
  .openapi("ReportingError");

type Status = keyof typeof DESCRIPTIONS;

function responses<T extends z.ZodType>(schema: T, statuses: Status[]) {
  return Object.fromEntries(
    [...statuses, 500].map((s) => [s, { description: DESCRIPTIONS[s]!, content: { "application/json": { schema } } }]),
  );
}

export const nativeErrors = (...statuses: Status[]) => responses(NativeError, statuses);
export const reportingErrors = (...statuses: Status[]) => responses(ReportingError, statuses);
