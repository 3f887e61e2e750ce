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

import { existsSync, readFileSync } from "node:fs";
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

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const base = (process.env.GREENLIGHT_URL || DEFAULT_URL).replace(/\/+$/, "");
  let url;
  try {
    url = new URL(`${base}/api/v1/admin/organizations`);
  } catch {
    fail(`GREENLIGHT_URL is not a valid URL: ${JSON.stringify(base)}`);
  }
  const { token, source } = adminToken();
  console.error(`bootstrap: POST ${url} (admin token from ${source})`);

  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json",
      },
      body: JSON.stringify({ name: opts.name, project_name: opts.project }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    if (err?.name === "TimeoutError") {
      fail(`no answer from ${base} within ${REQUEST_TIMEOUT_MS / 1000} s: is \`npm run dev\` running?`);
    }
    const cause = err?.cause?.code || err?.cause?.message || err?.message || String(err);
    fail(`cannot reach ${base} (${cause}): is \`npm run dev\` running?`);
  }

  const text = await res.text();
  if (!res.ok) {
    console.error(text);
    fail(`server answered ${res.status} ${res.statusText}`.trimEnd());
  }

  let body;
  try {
    body = JSON.parse(text);
  } catch {
    console.error(text);
    fail(`server answered ${res.status} but the body is not JSON`);
  }
  console.log(JSON.stringify(body, null, 2));
  if (body?.api_key?.key) {
    console.error("bootstrap: done. Use api_key.key as `Authorization: Bearer <key>` on /api/v1.");
  }
}

main().catch((err) => fail(err?.stack ?? String(err)));
