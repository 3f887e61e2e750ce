import { exports } from "cloudflare:workers";

export const ORIGIN = "https://greenlight.test";
export const ADMIN_TOKEN = "test-admin-token";

export interface CallOptions {
  method?: string;
  /** An API key, sent as `Authorization: Bearer`. */
  key?: string;
  /** A JSON body (serialized here), or a raw string/stream/bytes/FormData sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Full URL override, e.g. to call over http://. */
  origin?: string;
}

export interface CallResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** One request through the Worker's real fetch handler; the body is always consumed. */
export async function call<T = any>(path: string, options: CallOptions = {}): Promise<CallResult<T>> {
  const headers = new Headers(options.headers);
  if (options.key) headers.set("Authorization", `Bearer ${options.key}`);
  let body: BodyInit | undefined;
  if (options.body !== undefined) {
    if (
      typeof options.body === "string" ||
      options.body instanceof ReadableStream ||
      options.body instanceof Uint8Array ||
      // A multipart form: the Request sets its Content-Type with the boundary.
      options.body instanceof FormData
    ) {
      body = options.body as BodyInit;
    } else {
      body = JSON.stringify(options.body);
      if (!headers.has("content-type")) headers.set("Content-Type", "application/json");
    }
  }
  const response = await exports.default.fetch(
    new Request(`${options.origin ?? ORIGIN}${path}`, { method: options.method ?? "GET", headers, body, redirect: "manual" }),
  );
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text && (response.headers.get("content-type") ?? "").includes("json")) parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed as T, text };
}
