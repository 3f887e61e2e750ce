/**
 * Structured logs: one JSON object per line, which Workers Logs (and `wrangler tail --format
 * json`) index by field. Every line has `ts`, `level` and `msg`; the rest are the caller's fields.
 *
 * Nothing secret is ever meant to reach a log, and two nets catch what slips: a field whose name
 * says it holds a secret is replaced, and an API key or session token inside any string is masked.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const SECRET_NAMES = /^(key|api_key|secret|token|password|authorization|cookie|set_cookie|signature|admin_token|session)$/i;
/**
 * API keys (gl_live_…), our session tokens (gls_…) and invitation tokens (gli_…, which the
 * access log would otherwise write with the path of /invitations/{token}) in free text.
 */
const SECRET_VALUES = /\b(gl_live_|gls_|gli_)[0-9A-Za-z_-]{8,}/g;

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return value.replace(SECRET_VALUES, "$1[redacted]");
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(value)) out[name] = SECRET_NAMES.test(name) ? "[redacted]" : scrub(v, depth + 1);
  return out;
}

function write(level: LogLevel, msg: string, fields: Record<string, unknown>): void {
  const line = JSON.stringify({ ts: new Date().toISOString(), level, msg, ...(scrub(fields) as Record<string, unknown>) });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export const log = {
  debug: (msg: string, fields: Record<string, unknown> = {}) => write("debug", msg, fields),
  info: (msg: string, fields: Record<string, unknown> = {}) => write("info", msg, fields),
  warn: (msg: string, fields: Record<string, unknown> = {}) => write("warn", msg, fields),
  error: (msg: string, fields: Record<string, unknown> = {}) => write("error", msg, fields),
};
