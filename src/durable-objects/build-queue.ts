import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/**
 * The per-project build queue (one instance per project). Its behaviour arrives with the builds
 * issue; the class exists so the binding and its SQLite storage are declared from the first deploy.
 */
export class BuildQueue extends DurableObject<Env> {
  async size(): Promise<number> {
    return 0;
  }
}
