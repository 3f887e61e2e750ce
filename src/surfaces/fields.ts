import { z } from "@hono/zod-openapi";
import { NAME_MAX_LENGTH } from "../core/limits";

/** Schema pieces every surface shares, whatever its casing. */
export const Name = z
  .string()
  .trim()
  .min(1)
  .max(NAME_MAX_LENGTH)
  .refine((v) => isCleanText(v), { message: "must not contain NUL characters or unpaired surrogates" });
export const Id = z.string().min(1).max(100);
export const Timestamp = z.string().openapi({ example: "2026-03-19T10:00:00.000Z" });
export const DateTimeInput = z.iso.datetime({ offset: true }).openapi({ example: "2026-12-31T23:59:59Z" });
export const IdParam = z.object({ id: Id.openapi({ param: { name: "id", in: "path" } }) });

/** NUL characters and unpaired UTF-16 surrogates: stored text must be clean Unicode. */
export function isCleanText(value: string): boolean {
  return !value.includes("\u0000") && value.isWellFormed();
}

/** Text of at most `max` characters, without NUL or unpaired surrogates. */
export function Text(max: number) {
  return z.string().max(max).refine(isCleanText, { message: "must not contain NUL characters or unpaired surrogates" });
}

/** A non-empty, trimmed Text. */
export function Label(max: number) {
  return z.string().trim().min(1).max(max).refine(isCleanText, { message: "must not contain NUL characters or unpaired surrogates" });
}

/** Non-negative integers a client may send (counts, shard numbers): never beyond 2^53 - 1. */
export function Count(max: number = Number.MAX_SAFE_INTEGER) {
  return z.number().int().min(0).max(max);
}

/** A duration in milliseconds: non-negative, finite, at most 2^53 - 1 (fractions are rounded). */
export const DurationMs = z.number().min(0).max(Number.MAX_SAFE_INTEGER).openapi({ description: "Milliseconds.", example: 3420 });
