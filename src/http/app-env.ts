import type { Env } from "../env";
import type { Principal } from "../core/context";

export type Surface = "native" | "reporting" | "plan-trigger" | "suite-trigger";

/** Hono's environment for every app and middleware of the Worker. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    principal: Principal;
    /** "key:<id>" or "admin": whose Idempotency-Key namespace a request uses. */
    callerScope: string;
    /** A client error's code and message, for the access log. */
    failure?: { code: string; message: string };
  };
}

/** Which surface a path belongs to, so even a 404 or a 401 answers in that surface's envelope. */
export function surfaceForPath(path: string): Surface {
  if (path === "/api/v1/run" || path.startsWith("/api/v1/run/")) return "plan-trigger";
  if (path.startsWith("/api/v1/qa/external/")) return "suite-trigger";
  if (path === "/api/v1" || path.startsWith("/api/v1/")) return "native";
  if (path === "/api" || path.startsWith("/api/")) return "reporting";
  return "native";
}
