/** Narrowing helpers for values read from JSON reports, which may hold anything anywhere. */

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function objectOf(value: unknown): JsonObject {
  return isObject(value) ? value : {};
}

export function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Strings of an array (or of one string), anything else left out. */
export function stringsOf(value: unknown): string[] {
  if (typeof value === "string") return [value];
  return arrayOf(value).filter((v): v is string => typeof v === "string");
}

/** The first of several places a value may be, as a non-empty string. */
export function firstString(...values: unknown[]): string | undefined {
  for (const value of values) {
    if (typeof value === "string" && value.trim() !== "") return value.trim();
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
  }
  return undefined;
}

/** A positive whole number where metadata allows one; anything else is left out, not refused. */
export function positiveInteger(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 ? value : undefined;
}

/** A date-time as ISO 8601, when the value is one. */
export function isoDateTime(value: unknown): string | undefined {
  if (typeof value !== "string" && typeof value !== "number") return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
