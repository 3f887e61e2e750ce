/**
 * Domain errors: one class per meaning. Core code throws these; each surface renders them in its
 * own envelope (see src/http/errors.ts). Messages are written for API clients, so they must never
 * contain secrets or internal detail.
 */
export type ErrorKind =
  | "invalid"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "unsupported_media_type"
  | "rate_limited"
  | "insufficient_credits"
  | "unavailable";

export type FieldLocation = "body" | "query" | "path" | "header";

export interface InvalidDetails {
  /** Dotted path of the offending field, e.g. "name" or "scopes.2". */
  field?: string;
  /** Machine-readable reason, e.g. "required", "invalid_type", "too_long", "invalid_value". */
  reason?: string;
  location?: FieldLocation;
  [key: string]: unknown;
}

const LOCATION_NOUN: Record<FieldLocation, string> = {
  body: "field",
  query: "query parameter",
  path: "path parameter",
  header: "header",
};

export abstract class DomainError extends Error {
  abstract readonly kind: ErrorKind;
  abstract readonly status: 400 | 401 | 402 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503;
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class Invalid extends DomainError {
  readonly kind = "invalid" as const;
  readonly status: 400 | 422;
  /** What is wrong with the field, as a predicate ("is required"), so each surface can phrase it. */
  readonly predicate: string | undefined;
  constructor(message: string, details: InvalidDetails = {}, status: 400 | 422 = 400, predicate?: string) {
    super(message, details);
    this.status = status;
    this.predicate = predicate;
  }

  /** A problem with one named field: `Invalid.field("name", "required", "is required")`. */
  static field(
    field: string,
    reason: string,
    predicate: string,
    options: { location?: FieldLocation; status?: 400 | 422; extra?: Record<string, unknown> } = {},
  ): Invalid {
    const location = options.location ?? "body";
    return new Invalid(
      `The '${field}' ${LOCATION_NOUN[location]} ${predicate}.`,
      { field, reason, location, ...options.extra },
      options.status ?? 400,
      predicate,
    );
  }

  static locationNoun(location: FieldLocation): string {
    return LOCATION_NOUN[location];
  }
}

export class Unauthorized extends DomainError {
  readonly kind = "unauthorized" as const;
  readonly status = 401 as const;
}

export class Forbidden extends DomainError {
  readonly kind = "forbidden" as const;
  readonly status = 403 as const;
}

/** Also what a tenant gets for another tenant's id: indistinguishable from a missing one. */
export class NotFound extends DomainError {
  readonly kind = "not_found" as const;
  readonly status = 404 as const;
  constructor(
    readonly resource: string,
    details: Record<string, unknown> = {},
  ) {
    super(`${resource} not found.`, details);
  }

  /** A 404 whose sentence a compatible surface fixes (reference 002's "No test plans found"). */
  static saying(message: string, resource: string, details: Record<string, unknown> = {}): NotFound {
    const err = new NotFound(resource, details);
    err.message = message;
    return err;
  }
}

export class Conflict extends DomainError {
  readonly kind = "conflict" as const;
  readonly status = 409 as const;
}

export class TooLarge extends DomainError {
  readonly kind = "too_large" as const;
  readonly status = 413 as const;
}

export class UnsupportedMediaType extends DomainError {
  readonly kind = "unsupported_media_type" as const;
  readonly status = 415 as const;
}

/** An error the client cures by waiting: answered with Retry-After. */
export abstract class RetryLater extends DomainError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    details: Record<string, unknown> = {},
  ) {
    super(message, details);
  }
}

export class RateLimited extends RetryLater {
  readonly kind = "rate_limited" as const;
  readonly status = 429 as const;
}

/** A part we depend on (the rate limiter) cannot answer; the client should retry after a pause. */
export class Unavailable extends RetryLater {
  readonly kind = "unavailable" as const;
  readonly status = 503 as const;
}

export class InsufficientCredits extends DomainError {
  readonly kind = "insufficient_credits" as const;
  readonly status = 402 as const;
}
