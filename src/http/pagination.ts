import { z } from "@hono/zod-openapi";
import type { PageRequest, Paged } from "../core/pagination";

export const MAX_LIMIT = 100;

function pageQuery(defaultLimit: number) {
  return z.object({
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(MAX_LIMIT)
      .default(defaultLimit)
      .openapi({ description: `Page size, 1 to ${MAX_LIMIT}.`, example: defaultLimit }),
    offset: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).openapi({ description: "Items to skip." }),
  });
}

/** Native lists: limit defaults to 20. */
export const NativePageQuery = pageQuery(20);
/** Reporting (reference 003) lists: limit defaults to 50. */
export const ReportingPageQuery = pageQuery(50);

export function pageOf(query: { limit: number; offset: number }): PageRequest {
  return { limit: query.limit, offset: query.offset };
}

/** `{data, pagination: {total, limit, offset, has_more}}` (references 000/001). */
export function nativeList<T, U>(page: Paged<T>, map: (item: T) => U) {
  return {
    data: page.items.map(map),
    pagination: {
      total: page.total,
      limit: page.limit,
      offset: page.offset,
      has_more: page.offset + page.items.length < page.total,
    },
  };
}

/** `{data, total, limit, offset}` (reference 003). */
export function reportingList<T, U>(page: Paged<T>, map: (item: T) => U) {
  return { data: page.items.map(map), total: page.total, limit: page.limit, offset: page.offset };
}

export function nativeListSchema<T extends z.ZodType>(item: T, name: string) {
  return z
    .object({
      data: z.array(item),
      pagination: z.object({ total: z.number().int(), limit: z.number().int(), offset: z.number().int(), has_more: z.boolean() }),
    })
    .openapi(name);
}

export function reportingListSchema<T extends z.ZodType>(item: T, name: string) {
  return z
    .object({ data: z.array(item), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })
    .openapi(name);
}
