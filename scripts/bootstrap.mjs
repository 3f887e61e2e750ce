#!/usr/bin/env node
// `npm run bootstrap [-- --name "Acme" --project "Web app"]`
//
// Creates an organization, its first project and an API key on a running Greenlight server
// (by default the local one started by `npm run dev`), through
// POST /api/v1/admin/organizations, and prints the server's JSON answer to stdout.
//
//   GREENLIGHT_URL  base URL of the server (default http://localhost:8787)
//   ADMIN_TOKEN     admin bearer token; when unset, read from .dev.vars, then .dev.vars.example
//
// stdout carries only the JSON (pipe it to jq); messages go to stderr.
// Plain Node ESM without dependencies (Node 20+: uses the global fetch).
//
// createOrganization() is the request itself, exported for scripts/setup-cloudflare.mjs, which
// creates a deployment's first organization the same way.

import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DEFAULT_URL = "http://localhost:8787";
const REQUEST_TIMEOUT_MS = 30_000;

const USAGE = `usage: npm run bootstrap [-- --name <organization name>] [--project <project name>]

Creates an organization, a project and an API key on a running Greenlight server.
  --name     organization name (default "Demo organization")
  --project  first project's name (default "Demo project")
Environment: GREENLIGHT_URL (default ${DEFAULT_URL}), ADMIN_TOKEN (default: from .dev.vars,
then .dev.vars.example).`;

function fail(message) {
  console.error(`bootstrap: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { name: "Demo organization", project: "Demo project" };
  const flags = { "--name": "name", "--project": "project" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      process.exit(0);
    }
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const key = flags[flag];
    if (!key) fail(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    let value;
    if (eq > 0) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) fail(`${flag} needs a value`);
      value = argv[++i];
    }
    if (value.trim() === "") fail(`${flag} must not be empty`);
    opts[key] = value;
  }
  return opts;
}

/** Reads KEY=VALUE lines (dotenv style: comments, optional `export`, optional quotes). */
function readDotenv(file) {
  const vars = {};
  for (const rawLine of readFileSync(file, "utf8").split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2];
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
    } else {
      value = value.replace(/\s+#.*$/, "").trim();
    }
    vars[m[1]] = value;
  }
  return vars;
}

function adminToken() {
  if (process.env.ADMIN_TOKEN) return { token: process.env.ADMIN_TOKEN, source: "$ADMIN_TOKEN" };
  for (const name of [".dev.vars", ".dev.vars.example"]) {
    const file = join(root, name);
    if (!existsSync(file)) continue;
    const token = readDotenv(file).ADMIN_TOKEN;
    if (token) return { token, source: name };
  }
  fail("no admin token: set ADMIN_TOKEN, or put ADMIN_TOKEN=... in .dev.vars");
}

/**
 * Why createOrganization() failed: `unreachable` (no answer, or none in time), `http` (an answer
 * other than 2xx; `status` and `body` say which) or `not-json` (a 2xx whose body is not JSON).
 */
export class BootstrapError extends Error {
  constructor(message, { kind, status, body, cause } = {}) {
    super(message, { cause });
    this.name = "BootstrapError";
    this.kind = kind;
    this.status = status;
    this.body = body;
  }
}

/**
 * POST /api/v1/admin/organizations on the server at `baseUrl` with the admin `token`; resolves
 * with the server's JSON answer ({organization, project, api_key, owner}). `idempotencyKey`, when
 * given, makes a retried call replay the first one's answer instead of creating a second tenant.
 * Throws BootstrapError.
 */
export async function createOrganization({
  baseUrl,
  token,
  name,
  project,
  idempotencyKey,
  timeoutMs = REQUEST_TIMEOUT_MS,
  fetch: fetchImpl = globalThis.fetch,
}) {
  const base = String(baseUrl).replace(/\/+$/, "");
  let url;
  try {
    url = new URL(`${base}/api/v1/admin/organizations`);
  } catch {
    throw new BootstrapError(`not a valid URL: ${JSON.stringify(base)}`, { kind: "usage" });
  }
  const headers = {
    authorization: `Bearer ${token}`,
    "content-type": "application/json",
    accept: "application/json",
  };
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;

  let res;
  try {
    res = await fetchImpl(url, {
      method: "POST",
      headers,
      body: JSON.stringify({ name, project_name: project }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    if (err?.name === "TimeoutError") {
      throw new BootstrapError(`no answer from ${base} within ${timeoutMs / 1000} s`, { kind: "unreachable", cause: err });
    }
    const cause = err?.cause?.code || err?.cause?.message || err?.message || String(err);
    throw new BootstrapError(`cannot reach ${base} (${cause})`, { kind: "unreachable", cause: err });
  }

  const text = await res.text();
  if (!res.ok) {
    throw new BootstrapError(`server answered ${res.status} ${res.statusText}`.trimEnd(), { kind: "http", status: res.status, body: text });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new BootstrapError(`server answered ${res.status} but the body is not JSON`, { kind: "not-json", status: res.status, body: text });
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const base = (process.env.GREENLIGHT_URL || DEFAULT_URL).replace(/\/+$/, "");
  try {
    new URL(`${base}/api/v1/admin/organizations`);
  } catch {
    fail(`GREENLIGHT_URL is not a valid URL: ${JSON.stringify(base)}`);
  }
  const { token, source } = adminToken();
  console.error(`bootstrap: POST ${base}/api/v1/admin/organizations (admin token from ${source})`);

  let body;
  try {
    body = await createOrganization({ baseUrl: base, token, name: opts.name, project: opts.project });
  } catch (err) {
    if (!(err instanceof BootstrapError)) throw err;
    if (err.body !== undefined) console.error(err.body);
    fail(err.kind === "unreachable" ? `${err.message}: is \`npm run dev\` running?` : err.message);
  }
  console.log(JSON.stringify(body, null, 2));
  if (body?.api_key?.key) {
    console.error("bootstrap: done. Use api_key.key as `Authorization: Bearer <key>` on /api/v1.");
  }
}

// Run only as a script (`npm run bootstrap`), not when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  main().catch((err) => fail(err?.stack ?? String(err)));
}
