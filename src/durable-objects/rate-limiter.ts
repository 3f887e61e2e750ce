import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/**
 * Per-key rate limiting (one instance per API key). The limiting itself arrives with the rate-limit
 * issue; until then every request is allowed, and the class exists so the binding and its SQLite
 * storage are declared from the first deploy.
 */
export class RateLimiter extends DurableObject<Env> {
  async check(_group: string): Promise<{ allowed: true }> {
    return { allowed: true };
  }
}
