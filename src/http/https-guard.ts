import type { MiddlewareHandler } from "hono";
import { Forbidden } from "../core/errors";
import type { AppEnv } from "./app-env";

/** Refuses plain http:// when REQUIRE_HTTPS is "true", before any credential in the request is looked at. */
export const httpsGuard: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.env.REQUIRE_HTTPS === "true" && new URL(c.req.url).protocol === "http:") {
    throw new Forbidden("HTTPS is required: plain http:// requests are refused.", { reason: "https_required" });
  }
  await next();
};
