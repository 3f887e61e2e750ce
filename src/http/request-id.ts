import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app-env";

const ACCEPTABLE = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Every response carries X-Request-Id. A caller's own id is kept when it looks like one (so a CI
 * log and ours can be correlated); otherwise a fresh one is made.
 */
export const requestId: MiddlewareHandler<AppEnv> = async (c, next) => {
  const incoming = c.req.header("x-request-id");
  const id = incoming && ACCEPTABLE.test(incoming) ? incoming : `req_${crypto.randomUUID().replaceAll("-", "")}`;
  c.set("requestId", id);
  await next();
  c.res.headers.set("X-Request-Id", id);
};
