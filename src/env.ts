import type { RateLimiter } from "./durable-objects/rate-limiter";
import type { BuildQueue } from "./durable-objects/build-queue";

/** Bindings, variables and secrets of the Worker; the single source of truth for their types. */
export interface Env {
  DB: D1Database;
  ARTIFACTS: R2Bucket;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  BUILD_QUEUE: DurableObjectNamespace<BuildQueue>;
  WEBHOOKS: Queue<QueueMessageBody>;
  INGESTS: Queue<QueueMessageBody>;
  /** "true" refuses plain http:// requests with 403. */
  REQUIRE_HTTPS: string;
  /** Externally visible origin; empty means the request's own origin. */
  PUBLIC_BASE_URL: string;
  /** Authorizes /api/v1/admin/*; when unset, admin routes answer 404. */
  ADMIN_TOKEN?: string;
  /** Chunks (of up to 5,000 results) one queue invocation commits before handing a large ingest on; default 100. */
  INGEST_CHUNKS_PER_INVOCATION?: string;
  /** "off" disables rate limiting (local load tests, benchmarks); "fail-open" allows requests when the limiter is down. Default: on. */
  RATE_LIMITS?: string;
  /** The tier of organizations without a setting of their own: standard (default), pro, enterprise or unlimited. */
  RATE_LIMIT_TIER?: string;
  /** "true" lets webhooks deliver over plain http to loopback receivers: local development only. */
  WEBHOOKS_ALLOW_LOCAL_HTTP?: string;
  /**
   * Browser origins allowed to call the API across origins, comma-separated (`https://dash.example.com`);
   * each is answered with credentials allowed. Unset or empty: none. `*`: any origin, never with credentials.
   */
  CORS_ORIGINS?: string;
  /** "on" adds what each request cost in D1 (calls, rows read and written) as a Server-Timing header. */
  D1_METRICS?: string;
  /**
   * Seconds an isolate may reuse an API key's principal without reading it again (0..60, default
   * 5; "0" turns it off): how long a key change made elsewhere can take to reach this isolate.
   */
  AUTH_CACHE_SECONDS?: string;
  /**
   * The URL_SIGNING_SECRET being replaced, during a rotation: links it signed and everything it
   * sealed (webhook secrets, plan and job cookies, idempotent responses) are still read, and the
   * cron re-seals stored secrets with the new one. Remove it once the cron logs none left.
   */
  URL_SIGNING_SECRET_PREVIOUS?: string;
  /** Signs expiring URLs and encrypts stored idempotent responses. */
  URL_SIGNING_SECRET?: string;
}

/** Every queue message names its kind, so the consumer can dispatch on it. */
export interface QueueMessageBody {
  type: string;
  [key: string]: unknown;
}

type GreenlightEnv = Env;

// `env` from "cloudflare:workers" (used by the tests) is typed as Cloudflare.Env.
declare global {
  namespace Cloudflare {
    interface Env extends GreenlightEnv {}
  }
}
