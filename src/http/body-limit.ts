import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { TooLarge } from "../core/errors";
import { JSON_BODY_MAX_BYTES, RESULTS_BODY_MAX_BYTES } from "../core/limits";
import type { AppEnv } from "./app-env";

const limitJson = bodyLimit({
  maxSize: JSON_BODY_MAX_BYTES,
  onError: () => {
    throw new TooLarge(`JSON request bodies are limited to ${JSON_BODY_MAX_BYTES} bytes.`, { max_bytes: JSON_BODY_MAX_BYTES });
  },
});

const limitResults = bodyLimit({
  maxSize: RESULTS_BODY_MAX_BYTES,
  onError: () => {
    throw new TooLarge(`Results submissions are limited to ${RESULTS_BODY_MAX_BYTES} bytes; split them into several requests.`, {
      max_bytes: RESULTS_BODY_MAX_BYTES,
    });
  },
});

/** Submissions of up to 1,000 results with their output need more room than other JSON. */
const RESULTS_SUBMISSION = /^\/api(\/v1\/testruns\/[^/]+\/results|\/tests)$/;

/**
 * Reports, artifacts and their parts: never limited here. Their handlers read a bounded head and stream the
 * rest to R2 with a cap of their own (hono's bodyLimit, without Content-Length, reads the whole
 * body ahead of the handler, which is what a 100 MB report must not do).
 */
const STREAMED = /^\/api(\/v1\/(results\/ingest|ingests\/[^/]+\/parts\/[^/]+|artifacts|artifacts\/uploads\/[^/]+\/parts\/[^/]+)|\/upload)$/;

/**
 * JSON bodies (or bodies that name no type) over 1 MB are refused with 413: from Content-Length
 * before reading, or while streaming when there is none, so a huge body is never read whole.
 * Routes that take files or reports set their own limits.
 */
export const jsonBodyLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  if ((c.req.method === "POST" || c.req.method === "PUT") && STREAMED.test(c.req.path)) return next();
  const type = c.req.header("content-type")?.toLowerCase() ?? "";
  if (type === "" || type.includes("json")) {
    return c.req.method === "POST" && RESULTS_SUBMISSION.test(c.req.path) ? limitResults(c, next) : limitJson(c, next);
  }
  await next();
};
