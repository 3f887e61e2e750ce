import type { Context } from "hono";
import type { AppEnv } from "./app-env";

/**
 * Changes the headers of the response a middleware is finishing. The headers of a response passed
 * through (an R2 object's body, say) can be immutable: then the response is copied first.
 */
export function editResponseHeaders(c: Context<AppEnv>, edit: (headers: Headers) => void): void {
  try {
    edit(c.res.headers);
  } catch {
    c.res = new Response(c.res.body, c.res);
    edit(c.res.headers);
  }
}
