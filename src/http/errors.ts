import { log } from "../lib/log";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import {
  DomainError,
  Invalid,
  NotFound,
  RetryLater,
  TooLarge,
  Unauthorized,
  UnsupportedMediaType,
  type ErrorKind,
  type FieldLocation,
} from "../core/errors";
import { surfaceForPath, type AppEnv, type Surface } from "./app-env";

const NATIVE_CODES: Record<ErrorKind, string> = {
  invalid: "invalid_request",
  unauthorized: "unauthorized",
  forbidden: "forbidden",
  not_found: "not_found",
  conflict: "conflict",
  too_large: "payload_too_large",
  unsupported_media_type: "unsupported_media_type",
  rate_limited: "rate_limited",
  insufficient_credits: "insufficient_credits",
  unavailable: "service_unavailable",
};

const REPORTING_CODES: Record<ErrorKind, string> = {
  invalid: "VALIDATION_ERROR",
  unauthorized: "UNAUTHORIZED",
  forbidden: "FORBIDDEN",
  not_found: "NOT_FOUND",
  conflict: "CONFLICT",
  too_large: "PAYLOAD_TOO_LARGE",
  unsupported_media_type: "UNSUPPORTED_MEDIA_TYPE",
  rate_limited: "RATE_LIMITED",
  insufficient_credits: "INSUFFICIENT_CREDITS",
  unavailable: "SERVICE_UNAVAILABLE",
};

const INTERNAL_MESSAGE = "An unexpected error occurred. Quote the X-Request-Id header when reporting it.";

/** Errors that hono itself raises (malformed JSON, media type gate) in domain terms; anything else is internal. */
export function toDomainError(err: unknown): DomainError | null {
  if (err instanceof DomainError) return err;
  if (err instanceof HTTPException) {
    switch (err.status) {
      case 400:
        return new Invalid(
          /malformed json/i.test(err.message) ? "The request body is not valid JSON." : "The request is malformed.",
          { field: "body", reason: "malformed" },
        );
      case 413:
        return new TooLarge("The request body is too large.");
      case 415:
        return new UnsupportedMediaType("Unsupported Content-Type: send the body as application/json.");
      case 404:
        return new NotFound("Resource");
      case 401:
        return new Unauthorized("Invalid API key.");
      default:
        return null;
    }
  }
  return null;
}

const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * The core names fields and detail keys in snake_case; the reporting surface speaks camelCase,
 * so its renderer translates both (a name already in camelCase passes through unchanged).
 */
function camelDetails(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelDetails);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [camel(k), k === "field" && typeof v === "string" ? camel(v) : camelDetails(v)]),
  );
}

function reportingMessage(err: DomainError): string {
  if (err instanceof Invalid && err.predicate && typeof err.details.field === "string") {
    const location = (err.details.location as FieldLocation | undefined) ?? "body";
    const noun = location === "body" ? "Field" : capitalize(Invalid.locationNoun(location));
    return `${noun} '${camel(err.details.field)}' ${err.predicate}`;
  }
  return err.message.replace(/\.$/, "");
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Reference 002 fixes these sentences for the plan-trigger surface. */
function planTriggerMessage(err: DomainError): string {
  if (err.kind === "unauthorized") return "Invalid API key";
  if (err.kind === "insufficient_credits") return "Insufficient credits. Please top up to continue running tests.";
  return err.message.replace(/\.$/, "");
}

function body(surface: Surface, err: DomainError | null): unknown {
  if (!err) {
    switch (surface) {
      case "native":
        return { error: "internal_error", message: INTERNAL_MESSAGE, details: {} };
      case "reporting":
        return { error: { code: "INTERNAL_ERROR", message: INTERNAL_MESSAGE, details: {} } };
      case "plan-trigger":
        return { error: INTERNAL_MESSAGE };
      case "suite-trigger":
        return { detail: INTERNAL_MESSAGE };
    }
  }
  switch (surface) {
    case "native":
      return { error: NATIVE_CODES[err.kind], message: err.message, details: err.details };
    case "reporting":
      return { error: { code: REPORTING_CODES[err.kind], message: reportingMessage(err), details: camelDetails(err.details) } };
    case "plan-trigger":
      return { error: planTriggerMessage(err) };
    case "suite-trigger":
      return { detail: err.message.replace(/\.$/, "") };
  }
}

/** The one place an error becomes a response; 5xx bodies never carry the internal message. */
export function renderError(err: unknown, c: Context<AppEnv>): Response {
  const surface = surfaceForPath(c.req.path);
  const domain = toDomainError(err);
  const requestId = c.get("requestId");
  if (!domain) {
    const e = err instanceof Error ? err : new Error(String(err));
    log.error("unhandled error", { request_id: requestId, method: c.req.method, path: c.req.path, error: e.name, message: e.message, stack: e.stack });
  } else {
    // For the access log (http/access-log.ts), so an operator can follow a caller's X-Request-Id.
    // Messages are written for clients and carry no secrets.
    c.set("failure", { code: domain.kind, message: domain.message });
  }
  const headers: Record<string, string> = {};
  if (domain instanceof RetryLater) headers["Retry-After"] = String(domain.retryAfterSeconds);
  if (domain instanceof Unauthorized) headers["WWW-Authenticate"] = 'Bearer realm="greenlight"';
  return c.json(body(surface, domain), domain ? domain.status : 500, headers);
}

export function renderNotFound(c: Context<AppEnv>): Response {
  return renderError(new NotFound("Resource", { path: c.req.path, method: c.req.method }), c);
}
