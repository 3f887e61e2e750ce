import { z } from "@hono/zod-openapi";
import { NAME_MAX_LENGTH } from "../core/limits";

/** Schema pieces every surface shares, whatever its casing. */
export const Name = z.string().trim().min(1).max(NAME_MAX_LENGTH);
export const Id = z.string().min(1).max(100);
export const Timestamp = z.string().openapi({ example: "2026-03-19T10:00:00.000Z" });
export const DateTimeInput = z.iso.datetime({ offset: true }).openapi({ example: "2026-12-31T23:59:59Z" });
export const IdParam = z.object({ id: Id.openapi({ param: { name: "id", in: "path" } }) });
