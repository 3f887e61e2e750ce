#!/usr/bin/env node
// `npm run setup:cloudflare [-- --env staging|production] [--dry-run] [--yes]`
//
// Self-hosting in one step: makes a Cloudflare account ready for one environment of
// wrangler.toml (the top level, or an [env.<name>] section) and deploys it, using wrangler's own
// commands (the project's wrangler, run with the project's Node first on PATH, as scripts/dev.mjs
// does). In order:
//
//   1. `wrangler whoami --json`: logged in, and to one account (or CLOUDFLARE_ACCOUNT_ID is set)?
//   2. looks up, without changing anything: the D1 database (`d1 list --json`), the R2 bucket
//      (`r2 bucket info --json`), each queue and dead-letter queue (`queues info`) and the
//      Worker's secrets (`secret list --format json`), all by the names in wrangler.toml;
//   3. creates what is missing (`d1 create`, `r2 bucket create`, `queues create`);
//   4. writes the D1 database's id into `database_id` of that environment in wrangler.toml (one
//      line changes, comments and layout stay; nothing is written when the id is already right);
//   5. sets the secrets ADMIN_TOKEN and URL_SIGNING_SECRET that the Worker lacks (`secret put`,
//      the value on stdin): from GREENLIGHT_ADMIN_TOKEN / GREENLIGHT_URL_SIGNING_SECRET when set,
//      else asked for (interactive runs), else generated. A generated ADMIN_TOKEN is printed
//      once; no other secret value is ever printed. Secrets already set are left alone;
//   6. `wrangler d1 migrations apply DB --remote`, then `wrangler deploy`;
//   7. when the database has no organization yet (`d1 execute … SELECT COUNT(*)`), creates the
//      first one through the deployed Worker's admin API (scripts/bootstrap.mjs) and prints its
//      owner key, once.
//
// Re-running changes nothing that exists: it creates no resource twice, rewrites no secret, leaves
// wrangler.toml byte for byte as it is, and creates no second organization. It does deploy the
// current code again (the same code: a new version, same behaviour) and applies any new migration.
//
// Why the id goes into wrangler.toml: `wrangler deploy`, `wrangler d1 migrations apply` and the
// GitHub Actions workflow in README.md all read it from there with no extra flag, the id is not a
// secret (it is useless without an API token of the account), and committing it is what lets CI
// deploy from a clean checkout. A generated, git-ignored config would need `--config` on every
// command and would not exist in CI.
//
// --dry-run sends nothing to Cloudflare and writes nothing: it prints, one per line and in order,
// each command a first run on an account without any of these resources would run ("would run:
// …", with "# only if …" on those skipped when their resource exists), and the wrangler.toml
// lines it would write, with the placeholder id "<d1-id from wrangler d1 create>"
// (`--write-config <path>` writes that whole config to <path> instead).
//
// runSetup() takes the wrangler runner, fetch, the prompt and the output as parameters, so that
// test/e2e/setup-cloudflare.e2e.ts can run the whole flow against a fake account.
//
// Plain Node ESM without dependencies (Node 20+). Linux and macOS.

import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { BootstrapError, createOrganization } from "./bootstrap.mjs";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const isWindows = process.platform === "win32";

/** The id wrangler.toml carries until this script writes a real one. */
export const PLACEHOLDER_DATABASE_ID = "00000000-0000-0000-0000-000000000000";
/** The id a dry run shows (and writes with --write-config) where the real one would go. */
export const DRY_RUN_DATABASE_ID = "<d1-id from wrangler d1 create>";
/** What the Worker needs; `envVar` supplies the value in CI. */
export const SECRETS = [
  { name: "ADMIN_TOKEN", envVar: "GREENLIGHT_ADMIN_TOKEN" },
  { name: "URL_SIGNING_SECRET", envVar: "GREENLIGHT_URL_SIGNING_SECRET" },
];
/** The binding the application reads its database through (src/env.ts). */
const APP_DATABASE_BINDING = "DB";
const ORGANIZATION_COUNT_SQL = "SELECT COUNT(*) AS n FROM organizations";
const DEFAULT_ORGANIZATION = "Default organization";
const DEFAULT_PROJECT = "Default project";
// A new workers.dev hostname can take a while to answer after the first deploy.
const ORGANIZATION_RETRY_FOR_MS = 120_000;
const ORGANIZATION_RETRY_EVERY_MS = 5_000;

export const USAGE = `usage: npm run setup:cloudflare [-- options]

Creates (or finds) the Cloudflare resources named in wrangler.toml, writes the D1 database id
into wrangler.toml, sets the Worker's secrets, applies the D1 migrations, deploys, and creates the
first organization. Safe to run again: it changes nothing that exists.

  --env <name>            an [env.<name>] section of wrangler.toml (staging, production);
                          none = the top level (Worker "greenlight")
  --dry-run               send nothing to Cloudflare, write nothing: print every command a first
                          run would run, and the wrangler.toml lines it would write
  --write-config <path>   with --dry-run: write the whole config it would write to <path>
  --yes, -y               ask nothing (also when CI is set, or without a terminal): secrets
                          not in the environment are generated
  --config <path>         another wrangler config file (passed on to wrangler)
  --url <origin>          where the deployed Worker answers, for the first organization (default:
                          the workers.dev URL \`wrangler deploy\` reports)
  --organization <name>   the first organization's name (default "${DEFAULT_ORGANIZATION}")
  --project <name>        its first project's name (default "${DEFAULT_PROJECT}")
  --no-organization       do not create the first organization
  -h, --help              this text

Environment: CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID (instead of \`npx wrangler login\`),
GREENLIGHT_ADMIN_TOKEN and GREENLIGHT_URL_SIGNING_SECRET (the secrets' values when they are not
set on the Worker yet; otherwise they are asked for or generated).`;

class UsageError extends Error {}

/** A failure that ends the run; `details` (wrangler's output) is printed after the message. */
export class SetupError extends Error {
  constructor(message, details) {
    super(message);
    this.details = details;
  }
}

export function parseArgs(argv) {
  const opts = {
    env: undefined,
    dryRun: false,
    yes: false,
    config: undefined,
    writeConfig: undefined,
    url: undefined,
    organization: DEFAULT_ORGANIZATION,
    project: DEFAULT_PROJECT,
    createOrganization: true,
    help: false,
  };
  const valued = {
    "--env": "env",
    "-e": "env",
    "--config": "config",
    "-c": "config",
    "--write-config": "writeConfig",
    "--url": "url",
    "--organization": "organization",
    "--project": "project",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") opts.help = true;
    else if (arg === "--dry-run") opts.dryRun = true;
    else if (arg === "--yes" || arg === "-y") opts.yes = true;
    else if (arg === "--no-organization") opts.createOrganization = false;
    else {
      const eq = arg.indexOf("=");
      const flag = eq > 0 ? arg.slice(0, eq) : arg;
      const key = valued[flag];
      if (!key) throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
      let value;
      if (eq > 0) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new UsageError(`${flag} needs a value`);
      opts[key] = value;
    }
  }
  if (opts.env === "") opts.env = undefined;
  if (opts.env !== undefined && !/^[A-Za-z0-9_-]+$/.test(opts.env)) throw new UsageError(`--env: not an environment name: ${JSON.stringify(opts.env)}`);
  if (opts.writeConfig !== undefined && !opts.dryRun) throw new UsageError("--write-config goes with --dry-run");
  for (const key of ["organization", "project"]) {
    if (!opts[key].trim()) throw new UsageError(`--${key} must not be empty`);
  }
  if (opts.url !== undefined) {
    try {
      new URL(opts.url);
    } catch {
      throw new UsageError(`--url: not a URL: ${JSON.stringify(opts.url)}`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// wrangler.toml: the subset this script reads and writes. Bindings are [[array.of.tables]] with
// `key = "string"` lines, which is how wrangler.toml writes them; anything else is left alone.

/** The file's tables in order: {header, array, keys: Map(key -> {value, line})}; header "" = top. */
export function readTables(text) {
  const tables = [{ header: "", array: false, keys: new Map() }];
  text.split("\n").forEach((rawLine, line) => {
    const source = rawLine.replace(/\r$/, "");
    let m = /^\s*\[\[\s*([^[\]]+?)\s*\]\]\s*(?:#.*)?$/.exec(source);
    if (m) return void tables.push({ header: m[1], array: true, keys: new Map() });
    m = /^\s*\[\s*([^[\]]+?)\s*\]\s*(?:#.*)?$/.exec(source);
    if (m) return void tables.push({ header: m[1], array: false, keys: new Map() });
    m = /^\s*([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(source);
    if (!m) return;
    const string = /^"((?:[^"\\]|\\.)*)"\s*(?:#.*)?$/.exec(m[2]);
    let value;
    if (string) {
      try {
        value = JSON.parse(`"${string[1]}"`);
      } catch {
        value = string[1];
      }
    }
    tables.at(-1).keys.set(m[1], { value, raw: m[2], line });
  });
  return tables;
}

/**
 * What one environment of the config needs on Cloudflare: {env, workerName, databases:
 * [{binding, name, id}], buckets: [name], queues: [name]} (queues in file order: each producer's
 * queue, each consumer's queue and its dead-letter queue).
 */
export function describeTarget(text, env) {
  const tables = readTables(text);
  const prefix = env ? `env.${env}.` : "";
  if (env && !tables.some((t) => t.header === `env.${env}` || t.header.startsWith(`env.${env}.`))) {
    throw new SetupError(`the config has no [env.${env}] section`);
  }
  const scope = env ? `env.${env}` : "";
  for (const t of tables) {
    const inline =
      (t.header === scope && ["d1_databases", "r2_buckets", "queues"].find((k) => t.keys.has(k))) ||
      (t.header === `${prefix}queues` && ["producers", "consumers"].find((k) => t.keys.has(k)));
    if (inline) {
      throw new SetupError(`\`${inline} = …\` in [${t.header || "top level"}]: write bindings as [[${prefix}${inline === "producers" || inline === "consumers" ? "queues." : ""}${inline}]] tables, the only form this script reads`);
    }
  }
  const str = (table, key) => table.keys.get(key)?.value;
  const need = (table, key) => {
    const value = str(table, key);
    if (!value) throw new SetupError(`[[${table.header}]] has no ${key} = "…"`);
    return value;
  };

  const databases = [];
  const buckets = [];
  const queues = [];
  const addQueue = (name) => {
    if (name && !queues.includes(name)) queues.push(name);
  };
  for (const t of tables) {
    if (!t.array) continue;
    if (t.header === `${prefix}d1_databases`) {
      databases.push({ binding: need(t, "binding"), name: need(t, "database_name"), id: str(t, "database_id") });
    } else if (t.header === `${prefix}r2_buckets`) {
      buckets.push(need(t, "bucket_name"));
    } else if (t.header === `${prefix}queues.producers`) {
      addQueue(need(t, "queue"));
    } else if (t.header === `${prefix}queues.consumers`) {
      addQueue(need(t, "queue"));
      addQueue(str(t, "dead_letter_queue"));
    }
  }
  if (!databases.some((d) => d.binding === APP_DATABASE_BINDING)) {
    throw new SetupError(`no [[${prefix}d1_databases]] with binding = "${APP_DATABASE_BINDING}"`);
  }
  const topName = str(tables[0], "name");
  const envTable = tables.find((t) => !t.array && t.header === scope);
  const workerName = env ? (envTable && str(envTable, "name")) || `${topName}-${env}` : topName;
  if (!workerName) throw new SetupError('the config has no name = "…"');
  return { env, workerName, databases, buckets, queues };
}

/**
 * Returns `text` with `database_id` of the D1 binding `binding` in environment `env` set to `id`:
 * that one line is rewritten (or added after database_name), everything else is kept byte for
 * byte. Returns `text` itself when the id is already right.
 */
export function setDatabaseId(text, env, binding, id) {
  const header = `${env ? `env.${env}.` : ""}d1_databases`;
  const table = readTables(text).find((t) => t.array && t.header === header && t.keys.get("binding")?.value === binding);
  if (!table) throw new SetupError(`no [[${header}]] with binding = "${binding}"`);
  const lines = text.split("\n");
  const current = table.keys.get("database_id");
  if (current) {
    if (current.value === id) return text;
    lines[current.line] = lines[current.line].replace(/^(\s*database_id\s*=\s*)"(?:[^"\\]|\\.)*"/, (_, lead) => `${lead}${JSON.stringify(id)}`);
  } else {
    const after = (table.keys.get("database_name") ?? table.keys.get("binding")).line;
    const indent = /^[ \t]*/.exec(lines[after])[0];
    const eol = lines[after].endsWith("\r") ? "\r" : "";
    lines.splice(after + 1, 0, `${indent}database_id = ${JSON.stringify(id)}${eol}`);
  }
  return lines.join("\n");
}

/** The lines of one [[…d1_databases]] table, header included, for printing. */
function databaseTableLines(text, env, binding) {
  const header = `${env ? `env.${env}.` : ""}d1_databases`;
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  const tables = readTables(text);
  const table = tables.find((t) => t.array && t.header === header && t.keys.get("binding")?.value === binding);
  const keyLines = [...table.keys.values()].map((k) => k.line);
  const first = Math.min(...keyLines);
  const last = Math.max(...keyLines);
  return [`[[${header}]]`, ...lines.slice(first, last + 1).filter((l) => l.trim() && !l.trim().startsWith("#"))];
}

// ---------------------------------------------------------------------------------------------
// Running wrangler

/** Shell-style rendering of a command, for printing (secrets are never in `args`). */
export function formatCommand(args) {
  const quote = (a) => (a !== "" && /^[A-Za-z0-9_\-.,/:=@%+]+$/.test(a) ? a : `"${a.replace(/(["\\$`])/g, "\\$1")}"`);
  return ["wrangler", ...args].map(quote).join(" ");
}

function childEnv(binDir, extra) {
  const env = { ...process.env, ...extra };
  const pathKey = Object.keys(env).find((k) => k.toUpperCase() === "PATH") ?? "PATH";
  env[pathKey] = env[pathKey] ? `${binDir}${delimiter}${env[pathKey]}` : binDir;
  return env;
}

/**
 * The real runner: runs the project's wrangler and resolves with {code, stdout, stderr}. `input`
 * goes to its stdin (otherwise stdin is closed); `echo` also copies its output to our stderr as it
 * comes; `env` adds environment variables. CI=true: wrangler never waits for an answer.
 */
export function wranglerRunner({ root = ROOT, echoTo = process.stderr } = {}) {
  const binDir = join(root, "node_modules", ".bin");
  const bin = join(binDir, isWindows ? "wrangler.cmd" : "wrangler");
  return (args, { input, echo = false, env = {} } = {}) =>
    new Promise((resolveRun) => {
      const child = spawn(bin, args, {
        cwd: root,
        stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
        env: childEnv(binDir, { CI: "true", ...env }),
        shell: isWindows,
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
        if (echo) echoTo.write(chunk);
      });
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
        if (echo) echoTo.write(chunk);
      });
      child.on("error", (err) => resolveRun({ code: 127, stdout, stderr: `${stderr}could not run ${bin}: ${err.message}\n` }));
      child.on("close", (code) => resolveRun({ code: code ?? 1, stdout, stderr }));
      if (input !== undefined) {
        child.stdin.on("error", () => {}); // wrangler may exit before reading; its exit code tells
        child.stdin.end(input);
      }
    });
}

/**
 * The dry run's runner: prints the command and answers as an account holding none of the
 * resources would, so that the flow walks through every step of a first run.
 */
function dryRunRunner(print) {
  const created = new Map();
  return async (args, { note } = {}) => {
    print(`would run: ${formatCommand(args)}${note ? `   # ${note}` : ""}`);
    const [group, verb, sub] = args;
    const ok = (stdout = "") => ({ code: 0, stdout, stderr: "" });
    if (group === "whoami") return ok(JSON.stringify({ loggedIn: true, accounts: [{ id: "<account id>", name: "<your account>" }] }));
    if (group === "d1" && verb === "list") return ok(JSON.stringify([...created.entries()].map(([name, uuid]) => ({ name, uuid }))));
    if (group === "d1" && verb === "create") {
      created.set(sub, DRY_RUN_DATABASE_ID);
      return ok();
    }
    if (group === "d1" && verb === "execute") return ok(JSON.stringify([{ results: [{ n: 0 }], success: true }]));
    if (group === "r2" && sub === "info") return { code: 1, stdout: "", stderr: "The specified bucket does not exist. [code: 10006]" };
    if (group === "queues" && verb === "info") return { code: 1, stdout: "", stderr: `Queue "${sub}" does not exist.` };
    if (group === "secret" && verb === "list") return { code: 1, stdout: "", stderr: "Worker not found." };
    return ok();
  };
}

// ---------------------------------------------------------------------------------------------
// Prompts (interactive runs only)

function terminalPrompt(question, { hidden = false } = {}) {
  return new Promise((resolveAnswer) => {
    let muted = false;
    const output = new Writable({
      write(chunk, encoding, done) {
        if (!muted) process.stdout.write(chunk, encoding);
        done();
      },
    });
    const rl = createInterface({ input: process.stdin, output, terminal: true });
    rl.on("SIGINT", () => {
      rl.close();
      process.stdout.write("\n");
      process.exit(130);
    });
    rl.question(question, (answer) => {
      rl.close();
      if (hidden) process.stdout.write("\n");
      resolveAnswer(answer.trim());
    });
    muted = hidden;
  });
}

function isCI(env) {
  return Boolean(env.CI) && env.CI !== "false" && env.CI !== "0";
}

// ---------------------------------------------------------------------------------------------
// The flow

function parseJson(text, what) {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    // Anything wrangler printed before the JSON (it should not) is skipped.
    const start = trimmed.search(/^[[{]/m);
    if (start > 0) {
      try {
        return JSON.parse(trimmed.slice(start));
      } catch {
        // fall through
      }
    }
    throw new SetupError(`could not read the JSON of ${what}`, text);
  }
}

function tail(result, lines = 40) {
  return `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-lines).join("\n");
}

/**
 * Runs the setup; resolves with the exit code (0 done, 1 failed, 2 usage). Every side effect goes
 * through the parameters: `runWrangler(args, {input, echo, env, note})` -> {code, stdout, stderr},
 * `fetch`, `prompt(question, {hidden})`, `stdout(line)` and `stderr(line)`.
 */
export async function runSetup({
  argv = process.argv.slice(2),
  env: processEnv = process.env,
  root = ROOT,
  runWrangler,
  fetch: fetchImpl = globalThis.fetch,
  prompt = terminalPrompt,
  interactive,
  stdout = (line) => process.stdout.write(`${line}\n`),
  stderr = (line) => process.stderr.write(`${line}\n`),
  organizationRetryForMs = ORGANIZATION_RETRY_FOR_MS,
  organizationRetryEveryMs = ORGANIZATION_RETRY_EVERY_MS,
} = {}) {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr(`setup-cloudflare: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    stdout(USAGE);
    return 0;
  }
  try {
    await setup({ opts, processEnv, root, runWrangler, fetchImpl, prompt, interactive, stdout, organizationRetryForMs, organizationRetryEveryMs });
    return 0;
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    stderr(`setup-cloudflare: ${err.message}`);
    if (err.details) stderr(err.details);
    return 1;
  }
}

async function setup({ opts, processEnv, root, runWrangler, fetchImpl, prompt, interactive, stdout, organizationRetryForMs, organizationRetryEveryMs }) {
  const dryRun = opts.dryRun;
  const out = stdout;
  // Progress and findings: a dry run knows nothing of the account, so it prints only its plan.
  const info = dryRun ? () => {} : stdout;
  const canAsk = !dryRun && !opts.yes && (interactive ?? (Boolean(process.stdin.isTTY && process.stdout.isTTY) && !isCI(processEnv)));

  const configPath = resolve(opts.config ?? join(root, "wrangler.toml"));
  let configText;
  try {
    configText = readFileSync(configPath, "utf8");
  } catch (err) {
    throw new SetupError(`cannot read ${configPath}: ${err.message}`);
  }
  const target = describeTarget(configText, opts.env);
  const configArgs = opts.config !== undefined ? ["--config", configPath] : [];
  // `--env ""` names the top level explicitly; without it wrangler warns that several exist.
  const envArgs = ["--env", opts.env ?? ""];
  const section = opts.env ? `[env.${opts.env}]` : "the top level";
  const wr = dryRun ? dryRunRunner(out) : (runWrangler ?? wranglerRunner({ root }));

  const run = async (args, { allowFailure = false, ...rest } = {}) => {
    const result = await wr(args, rest);
    if (result.code !== 0 && !allowFailure) {
      throw new SetupError(`\`${formatCommand(args)}\` failed (exit code ${result.code})`, tail(result));
    }
    return result;
  };

  if (dryRun) {
    out(`Dry run for ${section} of ${configPath} (Worker "${target.workerName}"): nothing is sent to Cloudflare and nothing is written.`);
    out("These are the commands of a first run on an account that has none of the resources yet; those marked");
    out('"# only if" are skipped when what they would create exists.');
  } else {
    info(`Setting up ${section} of ${configPath}: Worker "${target.workerName}".`);
  }

  // 1. Who and where.
  const who = await run(["whoami", "--json"], { allowFailure: true });
  const whoami = who.code === 0 ? parseJson(who.stdout, "wrangler whoami --json") : undefined;
  if (!whoami?.loggedIn) {
    throw new SetupError("`wrangler whoami` found no login: run `npx wrangler login`, or set CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID)", tail(who, 10));
  }
  const accounts = Array.isArray(whoami.accounts) ? whoami.accounts : [];
  const configAccount = readTables(configText)[0].keys.get("account_id")?.value;
  const accountId = processEnv.CLOUDFLARE_ACCOUNT_ID || configAccount;
  if (!accountId && accounts.length > 1) {
    throw new SetupError(
      `these credentials reach ${accounts.length} accounts; say which with CLOUDFLARE_ACCOUNT_ID:\n` +
        accounts.map((a) => `  ${a.id}  ${a.name}`).join("\n"),
    );
  }
  const account = accounts.find((a) => a.id === accountId) ?? (accountId ? { id: accountId, name: "" } : accounts[0]);
  if (account) info(`Cloudflare account: ${account.name ? `${account.name} ` : ""}(${account.id})`);

  // 2. What exists.
  const d1List = async (note) => {
    const listed = parseJson((await run(["d1", "list", "--json", ...configArgs], { note })).stdout, "wrangler d1 list --json");
    if (!Array.isArray(listed)) throw new SetupError("wrangler d1 list --json did not answer a list", JSON.stringify(listed));
    return listed;
  };
  const databasesListed = await d1List();
  const databases = target.databases.map((db) => ({ ...db, found: databasesListed.find((d) => d.name === db.name) }));
  for (const db of databases) checkConfiguredId(db, databasesListed, configPath, info);

  const buckets = [];
  for (const name of target.buckets) {
    const args = ["r2", "bucket", "info", name, "--json", ...configArgs];
    const result = await run(args, { allowFailure: true });
    if (result.code === 0) buckets.push({ name, exists: true });
    else if (/\[code: 10006\]|does not exist/i.test(`${result.stdout}\n${result.stderr}`)) buckets.push({ name, exists: false });
    else throw new SetupError(`\`${formatCommand(args)}\` failed (exit code ${result.code})`, tail(result));
  }

  const queues = [];
  for (const name of target.queues) {
    const args = ["queues", "info", name, ...configArgs];
    const result = await run(args, { allowFailure: true });
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.code === 0) {
      // The lookup filters by name; a different queue in the answer means ours does not exist.
      const exact = output.split("\n").some((line) => line.trim() === `Queue Name: ${name}`);
      queues.push({ name, exists: exact });
    } else if (/does not exist/i.test(output)) {
      queues.push({ name, exists: false });
    } else {
      throw new SetupError(`\`${formatCommand(args)}\` failed (exit code ${result.code})`, tail(result));
    }
  }

  const secretListArgs = ["secret", "list", "--format", "json", ...envArgs, ...configArgs];
  const secretList = await run(secretListArgs, { allowFailure: true });
  let secretNames;
  if (secretList.code === 0) {
    const listed = parseJson(secretList.stdout, formatCommand(secretListArgs));
    secretNames = new Set((Array.isArray(listed) ? listed : []).map((s) => s.name));
  } else if (/not found/i.test(`${secretList.stdout}\n${secretList.stderr}`)) {
    secretNames = new Set(); // no Worker yet: `secret put` creates it (an empty one, until the deploy)
  } else {
    throw new SetupError(`\`${formatCommand(secretListArgs)}\` failed (exit code ${secretList.code})`, tail(secretList));
  }
  const secrets = SECRETS.map((s) => {
    const fromEnv = processEnv[s.envVar] ? processEnv[s.envVar] : undefined;
    return { ...s, exists: secretNames.has(s.name), fromEnv };
  });

  // The plan, before anything changes.
  const missing = [
    ...databases.filter((d) => !d.found).map((d) => `D1 database ${d.name}`),
    ...buckets.filter((b) => !b.exists).map((b) => `R2 bucket ${b.name}`),
    ...queues.filter((q) => !q.exists).map((q) => `queue ${q.name}`),
    ...secrets.filter((s) => !s.exists).map((s) => `secret ${s.name} (${s.fromEnv ? `from $${s.envVar}` : canAsk ? "asked for next" : "generated"})`),
  ];
  info("");
  for (const d of databases) info(`  D1 database  ${d.name}: ${d.found ? `exists (${d.found.uuid})` : "missing"}`);
  for (const b of buckets) info(`  R2 bucket    ${b.name}: ${b.exists ? "exists" : "missing"}`);
  for (const q of queues) info(`  queue        ${q.name}: ${q.exists ? "exists" : "missing"}`);
  for (const s of secrets) info(`  secret       ${s.name}: ${s.exists ? "set" : "not set"}`);
  info("");
  info(missing.length ? `To create: ${missing.join(", ")}.` : "Every resource and secret exists already.");
  info(`Then: apply pending D1 migrations, deploy Worker "${target.workerName}"${opts.createOrganization ? ", create the first organization if there is none" : ""}.`);
  if (canAsk) {
    const answer = await prompt("Go ahead? [y/N] ");
    if (!/^y(es)?$/i.test(answer)) throw new SetupError("stopped; nothing was changed");
  }

  // 3. + 4. The database, and its id in the config.
  const createdDatabase = databases.some((d) => !d.found);
  for (const db of databases.filter((d) => !d.found)) {
    const args = ["d1", "create", db.name, ...configArgs];
    const result = await run(args, { allowFailure: true, echo: true, note: `only if D1 database ${db.name} does not exist` });
    if (result.code !== 0 && !/already exists/i.test(`${result.stdout}\n${result.stderr}`)) {
      throw new SetupError(`\`${formatCommand(args)}\` failed (exit code ${result.code})`, tail(result));
    }
  }
  if (createdDatabase) {
    const relisted = await d1List("after a create: reads the new database's id");
    for (const db of databases.filter((d) => !d.found)) {
      db.found = relisted.find((d) => d.name === db.name);
      if (!db.found) throw new SetupError(`D1 database ${db.name} was created but \`wrangler d1 list\` does not show it`);
    }
  }
  let newText = configText;
  for (const db of databases) newText = setDatabaseId(newText, opts.env, db.binding, db.found.uuid);
  if (dryRun) {
    if (opts.writeConfig) {
      writeFileSync(resolve(opts.writeConfig), newText);
      out(`would write: ${configPath}: database_id of ${section} (written to ${resolve(opts.writeConfig)} instead)`);
    } else {
      out(`would write: ${configPath}, in ${section}:`);
      for (const db of databases) for (const line of databaseTableLines(newText, opts.env, db.binding)) out(`    ${line}`);
    }
  } else if (newText !== configText) {
    writeFileSync(configPath, newText);
    info(`Wrote database_id into ${section} of ${configPath}: ${databases.map((d) => `${d.binding} = ${d.found.uuid}`).join(", ")}. Commit it: deploys from CI read it there.`);
  } else {
    info(`${configPath} already has the right database_id; not written.`);
  }

  // 3., continued: the bucket and the queues.
  for (const b of buckets.filter((x) => !x.exists)) {
    const args = ["r2", "bucket", "create", b.name, ...configArgs];
    const result = await run(args, { allowFailure: true, echo: true, note: `only if R2 bucket ${b.name} does not exist` });
    if (result.code !== 0 && !/already exists|\[code: 10004\]/i.test(`${result.stdout}\n${result.stderr}`)) {
      throw new SetupError(`\`${formatCommand(args)}\` failed (exit code ${result.code})`, tail(result));
    }
  }
  for (const q of queues.filter((x) => !x.exists)) {
    const args = ["queues", "create", q.name, ...configArgs];
    const result = await run(args, { allowFailure: true, echo: true, note: `only if queue ${q.name} does not exist` });
    if (result.code !== 0 && !/already (exists|taken)/i.test(`${result.stdout}\n${result.stderr}`)) {
      throw new SetupError(`\`${formatCommand(args)}\` failed (exit code ${result.code})`, tail(result));
    }
  }

  // 5. Secrets the Worker lacks.
  let adminToken = secrets.find((s) => s.name === "ADMIN_TOKEN").fromEnv;
  let generatedAdminToken = false;
  for (const s of secrets.filter((x) => !x.exists)) {
    let value = s.fromEnv;
    let generated = false;
    if (value === undefined && canAsk) {
      value = (await prompt(`Value for ${s.name} (input hidden; empty = generate one): `, { hidden: true })) || undefined;
    }
    if (value === undefined) {
      value = randomBytes(32).toString("hex");
      generated = true;
    }
    const source = s.fromEnv !== undefined ? `$${s.envVar}` : generated ? "generated" : "typed in";
    await run(["secret", "put", s.name, ...envArgs, ...configArgs], {
      input: value,
      echo: true,
      note: `only if the Worker lacks ${s.name}; the value (${source}) goes on stdin`,
    });
    if (s.name === "ADMIN_TOKEN") {
      adminToken = value;
      generatedAdminToken = generated;
    }
    if (!dryRun) info(`Secret ${s.name} set (${source}).`);
  }
  if (generatedAdminToken && !dryRun) {
    out("");
    out("ADMIN_TOKEN was generated. It is shown only now: keep it (password manager, CI secret). It authorizes /api/v1/admin/*.");
    out(`  ADMIN_TOKEN=${adminToken}`);
    out("");
  }

  // 6. Schema, then code.
  for (const db of databases) {
    await run(["d1", "migrations", "apply", db.binding, "--remote", ...envArgs, ...configArgs], { echo: true });
  }
  const outputDir = dryRun ? undefined : mkdtempSync(join(tmpdir(), "greenlight-setup-"));
  let deployedUrl;
  try {
    const outputFile = outputDir && join(outputDir, "wrangler-output.ndjson");
    const deployed = await run(["deploy", ...envArgs, ...configArgs], { echo: true, env: outputFile ? { WRANGLER_OUTPUT_FILE_PATH: outputFile } : {} });
    deployedUrl = workerUrl(outputFile, deployed.stdout);
  } finally {
    if (outputDir) rmSync(outputDir, { recursive: true, force: true });
  }
  if (deployedUrl) info(`Deployed: ${deployedUrl}`);

  // 7. The first organization.
  if (!opts.createOrganization) return done(info, target);
  const countArgs = ["d1", "execute", APP_DATABASE_BINDING, "--remote", "--json", "--command", ORGANIZATION_COUNT_SQL, ...envArgs, ...configArgs];
  const counted = parseJson((await run(countArgs)).stdout, formatCommand(countArgs));
  const organizations = Number(counted?.[0]?.results?.[0]?.n);
  if (!Number.isFinite(organizations)) throw new SetupError("could not read the number of organizations", JSON.stringify(counted));
  if (organizations > 0) {
    info(`The database has ${organizations} organization${organizations === 1 ? "" : "s"}: not creating one.`);
    return done(info, target);
  }
  const baseUrl = opts.url ?? deployedUrl;
  if (dryRun) {
    out(`would POST: ${baseUrl ?? "<the Worker's URL from wrangler deploy>"}/api/v1/admin/organizations   # only if the database has no organization yet; prints the owner key once`);
    return;
  }
  const bootstrapHint = `GREENLIGHT_URL=${baseUrl ?? "https://<your worker>"} ADMIN_TOKEN=<the Worker's ADMIN_TOKEN> npm run bootstrap -- --name "${opts.organization}" --project "${opts.project}"`;
  if (!baseUrl) {
    out(`No organization yet, and wrangler deploy reported no https URL (workers_dev off?). Pass --url, or create it with:\n  ${bootstrapHint}`);
    return done(info, target);
  }
  if (adminToken === undefined && canAsk) {
    adminToken = (await prompt("ADMIN_TOKEN is already set on the Worker; type it to create the first organization (input hidden; empty = skip): ", { hidden: true })) || undefined;
  }
  if (adminToken === undefined) {
    out(`No organization yet. ADMIN_TOKEN was set before this run and is not in $GREENLIGHT_ADMIN_TOKEN; create it with:\n  ${bootstrapHint}`);
    return done(info, target);
  }
  const created = await createFirstOrganization({ baseUrl, token: adminToken, opts, fetchImpl, info, organizationRetryForMs, organizationRetryEveryMs });
  out("");
  out("First organization created. Its owner key is shown only now: keep it; it is the API key for everything else.");
  out(`  organization  ${created.organization?.name} (${created.organization?.id})`);
  out(`  project       ${created.project?.name} (${created.project?.id})`);
  out(`  owner key     ${created.api_key?.key}`);
  out("");
  return done(info, target);
}

function done(info, target) {
  info(`Done: Worker "${target.workerName}" is deployed. Running this again changes nothing that exists.`);
}

/** A configured id that belongs to another database is a mistake to stop at, not to overwrite. */
function checkConfiguredId(db, listed, configPath, info) {
  if (!db.id || db.id === PLACEHOLDER_DATABASE_ID || db.id === DRY_RUN_DATABASE_ID) return;
  if (db.found?.uuid === db.id) return;
  const owner = listed.find((d) => d.uuid === db.id);
  if (owner) {
    throw new SetupError(`${configPath}: database_id ${db.id} is D1 database "${owner.name}", but database_name says "${db.name}"; make them agree`);
  }
  info(`${configPath}: database_id ${db.id} is no D1 database of this account; it will be replaced by ${db.name}'s id.`);
}

/** The https URL `wrangler deploy` reports: its output file first, its printed output else. */
function workerUrl(outputFile, printed) {
  let text = "";
  try {
    text = outputFile ? readFileSync(outputFile, "utf8") : "";
  } catch {
    // no output file: wrangler failed before writing it, or the runner is a fake
  }
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    const url = entry.type === "deploy" && Array.isArray(entry.targets) ? entry.targets.find((t) => /^https:\/\//.test(t)) : undefined;
    if (url) return url.replace(/\/+$/, "");
  }
  return /https:\/\/[A-Za-z0-9.-]+\.workers\.dev/.exec(printed ?? "")?.[0];
}

async function createFirstOrganization({ baseUrl, token, opts, fetchImpl, info, organizationRetryForMs, organizationRetryEveryMs }) {
  // One key for every attempt: a retry after a lost answer replays the first creation.
  const idempotencyKey = randomUUID();
  const deadline = Date.now() + organizationRetryForMs;
  info(`Creating the first organization: POST ${baseUrl}/api/v1/admin/organizations`);
  for (;;) {
    try {
      return await createOrganization({ baseUrl, token, name: opts.organization, project: opts.project, idempotencyKey, fetch: fetchImpl });
    } catch (err) {
      if (!(err instanceof BootstrapError)) throw err;
      // The Worker's own refusals are JSON and final; no answer, 5xx or an HTML page from the edge
      // mean the new deployment is not reachable yet.
      let fromWorker = false;
      try {
        fromWorker = err.kind === "http" && err.status < 500 && typeof JSON.parse(err.body) === "object";
      } catch {
        // not JSON: not the Worker
      }
      if (fromWorker) {
        const why =
          err.status === 401
            ? "the ADMIN_TOKEN given is not the Worker's"
            : err.status === 404
              ? "the Worker has no ADMIN_TOKEN"
              : err.message;
        throw new SetupError(`creating the first organization failed: ${why}`, err.body);
      }
      if (Date.now() + organizationRetryEveryMs > deadline) {
        throw new SetupError(`creating the first organization failed: ${err.message}; run \`npm run bootstrap\` with GREENLIGHT_URL=${baseUrl} and ADMIN_TOKEN later`, err.body);
      }
      info(`  not reachable yet (${err.message}); trying again in ${organizationRetryEveryMs / 1000} s`);
      await new Promise((r) => setTimeout(r, organizationRetryEveryMs));
    }
  }
}

// Run only as a script (`npm run setup:cloudflare`), not when imported by the tests.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  runSetup().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(`setup-cloudflare: ${err?.stack ?? err}`);
      process.exitCode = 1;
    },
  );
}
