import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { systemClock, type AdminContext, type CoreContext } from "../core/context";
import { createDb } from "../db/client";
import type { AppEnv } from "../http/app-env";
import { validationHook } from "../http/validation";

/** A surface's router: validation failures become domain errors rendered in the surface's envelope. */
export function surfaceApp(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

/** The core context of an authenticated request. */
export function coreContext(c: Context<AppEnv>): CoreContext {
  return { db: createDb(c.env.DB), env: c.env, principal: c.get("principal"), clock: systemClock };
}

export function jsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return { required: true, description, content: { "application/json": { schema } } } as const;
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } } as const;
}

/** The core context of a request authorized by ADMIN_TOKEN. */
export function adminContext(c: Context<AppEnv>): AdminContext {
  return { db: createDb(c.env.DB), env: c.env, clock: systemClock };
}
