// `npm run setup:cloudflare` (scripts/setup-cloudflare.mjs) without Cloudflare: its --dry-run as a
// real process, the config it writes checked by wrangler's own offline build, and the whole flow
// against a fake account (a stub answering wrangler's commands the way wrangler 4 prints them) to
// show that a second run changes nothing and that secrets travel only on stdin.
// Needs no server and no network.
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildForDeploy } from "../../scripts/check-bundle.mjs";
import {
  DRY_RUN_DATABASE_ID,
  PLACEHOLDER_DATABASE_ID,
  ROOT,
  describeTarget,
  runSetup,
  setDatabaseId,
  wranglerRunner,
} from "../../scripts/setup-cloudflare.mjs";

const SCRIPT = join(ROOT, "scripts", "setup-cloudflare.mjs");
const CONFIG = join(ROOT, "wrangler.toml");
const ORG_SQL = "SELECT COUNT(*) AS n FROM organizations";

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "greenlight-setup-test-"));
  temps.push(dir);
  return dir;
}

/** The commands a first run prints, in order, for resource names starting with `prefix`. */
function firstRunCommands(prefix: string, env: string): string[] {
  const e = env === "" ? '--env ""' : `--env ${env}`;
  const queues = [`${prefix}-webhooks`, `${prefix}-webhooks-dlq`, `${prefix}-ingests`, `${prefix}-ingests-dlq`];
  return [
    "wrangler whoami --json",
    "wrangler d1 list --json",
    `wrangler r2 bucket info ${prefix}-artifacts --json`,
    ...queues.map((q) => `wrangler queues info ${q}`),
    `wrangler secret list --format json ${e}`,
    `wrangler d1 create ${prefix}`,
    "wrangler d1 list --json",
    `wrangler r2 bucket create ${prefix}-artifacts`,
    ...queues.map((q) => `wrangler queues create ${q}`),
    `wrangler secret put ADMIN_TOKEN ${e}`,
    `wrangler secret put URL_SIGNING_SECRET ${e}`,
    `wrangler d1 migrations apply DB --remote ${e}`,
    `wrangler deploy ${e}`,
    `wrangler d1 execute DB --remote --json --command "${ORG_SQL}" ${e}`,
  ];
}

function dryRun(args: string[], env: Record<string, string> = {}) {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  for (const name of ["CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"]) delete childEnv[name];
  const run = spawnSync(process.execPath, [SCRIPT, "--dry-run", ...args], { cwd: ROOT, encoding: "utf8", env: childEnv, timeout: 30_000 });
  const lines = run.stdout.split("\n");
  const commands = lines.filter((l) => l.startsWith("would run: ")).map((l) => l.slice("would run: ".length).replace(/ {3}# .*$/, ""));
  return { ...run, lines, commands };
}

describe("setup:cloudflare --dry-run", () => {
  it("prints every command of a first run, in order, for the top level, and writes nothing", () => {
    const before = readFileSync(CONFIG);
    const run = dryRun([]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.commands).toEqual(firstRunCommands("greenlight", ""));
    // Creates are marked as conditional; the rest always run.
    expect(run.lines.find((l) => l.startsWith("would run: wrangler d1 create"))).toMatch(/# only if D1 database greenlight does not exist$/);
    const creates = run.lines.filter((l) => /^would run: wrangler (d1|r2 bucket|queues) create /.test(l));
    expect(creates).toHaveLength(6);
    expect(creates.every((l) => /# only if/.test(l))).toBe(true);
    // The config it would write: the top level's database_id, after the id is known.
    const write = run.lines.findIndex((l) => l.startsWith("would write: "));
    expect(write).toBeGreaterThan(run.lines.findIndex((l) => l.startsWith("would run: wrangler d1 create")));
    expect(write).toBeLessThan(run.lines.findIndex((l) => l.startsWith("would run: wrangler r2 bucket create")));
    expect(run.lines.slice(write + 1, write + 6).map((l) => l.trim())).toEqual([
      "[[d1_databases]]",
      'binding = "DB"',
      'database_name = "greenlight"',
      `database_id = "${DRY_RUN_DATABASE_ID}"`,
      'migrations_dir = "migrations"',
    ]);
    expect(run.lines.filter(Boolean).at(-1)).toMatch(/^would POST: .*\/api\/v1\/admin\/organizations {3}# only if the database has no organization yet/);
    expect(readFileSync(CONFIG).equals(before)).toBe(true);
  });

  it("prints the production environment's commands with --env production, and never a secret from the environment", () => {
    const adminToken = `admin-${randomUUID()}`;
    const signing = `signing-${randomUUID()}`;
    const run = dryRun(["--env", "production"], { GREENLIGHT_ADMIN_TOKEN: adminToken, GREENLIGHT_URL_SIGNING_SECRET: signing });
    expect(run.status, run.stderr).toBe(0);
    expect(run.commands).toEqual(firstRunCommands("greenlight-production", "production"));
    expect(run.lines.find((l) => l.startsWith("would run: wrangler secret put ADMIN_TOKEN"))).toMatch(/\(\$GREENLIGHT_ADMIN_TOKEN\) goes on stdin$/);
    expect(run.lines.some((l) => l.includes("[[env.production.d1_databases]]"))).toBe(true);
    for (const secret of [adminToken, signing]) {
      expect(run.stdout).not.toContain(secret);
      expect(run.stderr).not.toContain(secret);
    }
  });

  it("runs no wrangler command and sends nothing", async () => {
    const out: string[] = [];
    const code = await runSetup({
      argv: ["--dry-run", "--env", "staging"],
      env: {},
      runWrangler: () => {
        throw new Error("a dry run ran wrangler");
      },
      fetch: () => {
        throw new Error("a dry run sent a request");
      },
      interactive: false,
      stdout: (l: string) => out.push(l),
      stderr: (l: string) => out.push(l),
    });
    expect(code, out.join("\n")).toBe(0);
    expect(out.filter((l) => l.startsWith("would run: ")).map((l) => l.slice(11).replace(/ {3}# .*$/, ""))).toEqual(
      firstRunCommands("greenlight-staging", "staging"),
    );
  });

  it("--write-config writes a config that differs in one line and that wrangler builds offline", () => {
    // The config's paths (main, migrations_dir) are relative to it: give the copy the same neighbours.
    const dir = tempDir();
    for (const name of ["src", "migrations", "node_modules", "package.json", "tsconfig.json"]) symlinkSync(join(ROOT, name), join(dir, name));
    const written = join(dir, "wrangler.toml");
    const run = dryRun(["--env", "production", "--write-config", written]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain(`written to ${written} instead`);

    const original = readFileSync(CONFIG, "utf8").split("\n");
    const text = readFileSync(written, "utf8");
    const changed = text.split("\n").flatMap((line, i) => (line === original[i] ? [] : [[original[i], line]]));
    expect(changed).toEqual([[`database_id = "${PLACEHOLDER_DATABASE_ID}"`, `database_id = "${DRY_RUN_DATABASE_ID}"`]]);
    expect(describeTarget(text, "production").databases).toEqual([{ binding: "DB", name: "greenlight-production", id: DRY_RUN_DATABASE_ID }]);
    expect(describeTarget(text, "staging").databases[0].id).toBe(PLACEHOLDER_DATABASE_ID);
    expect(describeTarget(text, undefined).databases[0].id).toBe(PLACEHOLDER_DATABASE_ID);

    const build = buildForDeploy({ outdir: join(dir, "out"), env: "production", config: written });
    expect(build.ok, build.output).toBe(true);
    expect(build.output).toMatch(/env\.DB \(greenlight-production\)\s+D1 Database/);
    expect(build.output).toMatch(/env\.WEBHOOKS \(greenlight-production-webhooks\)\s+Queue/);
    expect(build.output).toMatch(/env\.ARTIFACTS \(greenlight-production-artifacts\)\s+R2 Bucket/);
    expect(build.output).toMatch(/env\.REQUIRE_HTTPS \("true"\)/);
  });
});

describe("wrangler.toml environments", () => {
  it("declare every binding with the environment's own names, REQUIRE_HTTPS=true in each", () => {
    const text = readFileSync(CONFIG, "utf8");
    for (const env of ["staging", "production"]) {
      const target = describeTarget(text, env);
      expect(target.workerName).toBe(`greenlight-${env}`);
      expect(target.databases.map((d: { binding: string; name: string }) => [d.binding, d.name])).toEqual([["DB", `greenlight-${env}`]]);
      expect(target.buckets).toEqual([`greenlight-${env}-artifacts`]);
      expect(target.queues).toEqual([`greenlight-${env}-webhooks`, `greenlight-${env}-webhooks-dlq`, `greenlight-${env}-ingests`, `greenlight-${env}-ingests-dlq`]);
      const vars = text.slice(text.indexOf(`[env.${env}.vars]`)).split(/\n\s*\n/)[0];
      expect(vars).toContain('REQUIRE_HTTPS = "true"');
    }
  });
});

describe("setDatabaseId", () => {
  const toml = [
    "# comment stays",
    'name = "w"',
    "",
    "[[d1_databases]]",
    'binding = "DB"',
    'database_name = "w"',
    `database_id = "${PLACEHOLDER_DATABASE_ID}" # trailing comment stays`,
    "",
    "[[env.production.d1_databases]]",
    'binding = "DB"',
    'database_name = "w-production"',
    "",
  ].join("\r\n");

  it("rewrites only the id of that environment's binding, keeping comments and line endings", () => {
    const next = setDatabaseId(toml, undefined, "DB", "11111111-2222-3333-4444-555555555555");
    expect(next).toBe(toml.replace(PLACEHOLDER_DATABASE_ID, "11111111-2222-3333-4444-555555555555"));
    expect(setDatabaseId(next, undefined, "DB", "11111111-2222-3333-4444-555555555555")).toBe(next);
  });

  it("adds the line after database_name when there is none", () => {
    const next = setDatabaseId(toml, "production", "DB", "abc");
    expect(next).toBe(toml.replace('database_name = "w-production"\r\n', 'database_name = "w-production"\r\ndatabase_id = "abc"\r\n'));
    expect(setDatabaseId(next, "production", "DB", "abc")).toBe(next);
  });
});

// ---------------------------------------------------------------------------------------------
// A fake Cloudflare account behind a fake wrangler.

interface Call {
  args: string[];
  input?: string;
}

class FakeAccount {
  databases: { name: string; uuid: string }[] = [];
  buckets = new Set<string>();
  queues = new Set<string>();
  workers = new Map<string, Map<string, string>>();
  organizations = 0;
  calls: Call[] = [];
  posts: { url: string; authorization: string | null; idempotencyKey: string | null }[] = [];
  organizationIdempotencyKeys = new Set<string>();

  static workerName(args: string[]): string {
    const env = args[args.indexOf("--env") + 1];
    return env ? `greenlight-${env}` : "greenlight";
  }

  run = async (args: string[], opts: { input?: string; env?: Record<string, string> } = {}) => {
    this.calls.push({ args, input: opts.input });
    const ok = (stdout = "") => ({ code: 0, stdout, stderr: "" });
    const fail = (stderr: string) => ({ code: 1, stdout: "", stderr: `✘ [ERROR] ${stderr}\n` });
    const [group, verb, name] = args;
    const worker = FakeAccount.workerName(args);
    if (group === "whoami") return ok(JSON.stringify({ loggedIn: true, accounts: [{ id: "acc1", name: "Test account" }] }));
    if (group === "d1" && verb === "list") return ok(JSON.stringify(this.databases.map((d) => ({ ...d, created_at: "2026-11-22", version: "production" }))));
    if (group === "d1" && verb === "create") {
      this.databases.push({ name, uuid: randomUUID() });
      return ok(`✅ Successfully created DB '${name}'`);
    }
    if (group === "d1" && verb === "migrations") return ok("Migrations applied");
    if (group === "d1" && verb === "execute") {
      expect(args).toContain(ORG_SQL);
      return ok(JSON.stringify([{ results: [{ n: this.organizations }], success: true, meta: {} }]));
    }
    if (group === "r2" && args[2] === "info") {
      const bucket = args[3];
      return this.buckets.has(bucket)
        ? ok(JSON.stringify({ name: bucket, location: "WEUR" }))
        : fail(`A request to the Cloudflare API (/accounts/acc1/r2/buckets/${bucket}) failed.\n  The specified bucket does not exist. [code: 10006]`);
    }
    if (group === "r2" && args[2] === "create") {
      this.buckets.add(args[3]);
      return ok(`Created bucket '${args[3]}'`);
    }
    if (group === "queues" && verb === "info") {
      return this.queues.has(name) ? ok(`Queue Name: ${name}\nQueue ID: q-${name}\nNumber of Producers: 0`) : fail(`Queue "${name}" does not exist. To create it, run: wrangler queues create ${name}`);
    }
    if (group === "queues" && verb === "create") {
      this.queues.add(name);
      return ok(`Created queue ${name}`);
    }
    if (group === "secret" && verb === "list") {
      const secrets = this.workers.get(worker);
      if (!secrets) return fail(`Worker "${worker}" not found.\n\nIf this is a new Worker, run \`wrangler deploy\` first to create it.`);
      return ok(JSON.stringify([...secrets.keys()].map((n) => ({ name: n, type: "secret_text" }))));
    }
    if (group === "secret" && verb === "put") {
      expect(opts.input, "a secret value on stdin").toBeTruthy();
      if (!this.workers.has(worker)) this.workers.set(worker, new Map());
      this.workers.get(worker)!.set(name, opts.input!);
      return ok(`✨ Success! Uploaded secret ${name}`);
    }
    if (group === "deploy") {
      if (!this.workers.has(worker)) this.workers.set(worker, new Map());
      const file = opts.env?.WRANGLER_OUTPUT_FILE_PATH;
      if (file) writeFileSync(file, `${JSON.stringify({ type: "wrangler-session", version: 1 })}\n${JSON.stringify({ type: "deploy", version: 1, targets: [`https://${worker}.test.workers.dev`] })}\n`);
      return ok(`Uploaded ${worker}\nDeployed ${worker} triggers`);
    }
    return fail(`the fake does not know: wrangler ${args.join(" ")}`);
  };

  fetch = async (url: URL | string, init: RequestInit) => {
    const headers = new Headers(init.headers);
    this.posts.push({ url: String(url), authorization: headers.get("authorization"), idempotencyKey: headers.get("idempotency-key") });
    const worker = /^https:\/\/([^.]+)\.test\.workers\.dev\/api\/v1\/admin\/organizations$/.exec(String(url))?.[1];
    const token = worker ? this.workers.get(worker)?.get("ADMIN_TOKEN") : undefined;
    if (!token || headers.get("authorization") !== `Bearer ${token}`) {
      return new Response(JSON.stringify({ error: "unauthorized", message: "Invalid or missing admin token." }), { status: 401 });
    }
    const body = JSON.parse(String(init.body));
    this.organizations++;
    return new Response(
      JSON.stringify({
        organization: { id: "org_1", name: body.name },
        project: { id: "proj_1", name: body.project_name },
        api_key: { id: "key_1", key: `gl_live_${"ab".repeat(32)}` },
        owner: null,
      }),
      { status: 201 },
    );
  };

  creates(): string[][] {
    return this.calls.filter((c) => c.args.includes("create") || (c.args[0] === "secret" && c.args[1] === "put")).map((c) => c.args);
  }
}

function copyOfConfig(): string {
  const path = join(tempDir(), "wrangler.toml");
  writeFileSync(path, readFileSync(CONFIG));
  return path;
}

async function setupAgainst(account: FakeAccount, argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const code = await runSetup({
    argv: [...argv, "--yes"],
    env,
    runWrangler: account.run,
    fetch: account.fetch as typeof fetch,
    interactive: false,
    stdout: (l: string) => out.push(l),
    stderr: (l: string) => out.push(l),
    organizationRetryForMs: 0,
  });
  return { code, output: out.join("\n") };
}

describe("setup:cloudflare against a fake account", () => {
  it("creates everything on the first run; a second run creates nothing and leaves the config byte for byte", async () => {
    const account = new FakeAccount();
    const config = copyOfConfig();
    const adminToken = `admin-${randomUUID()}`;
    const signing = `signing-${randomUUID()}`;
    const secretsEnv = { GREENLIGHT_ADMIN_TOKEN: adminToken, GREENLIGHT_URL_SIGNING_SECRET: signing };

    const first = await setupAgainst(account, ["--config", config, "--env", "production"], secretsEnv);
    expect(first.code, first.output).toBe(0);
    expect(account.databases.map((d) => d.name)).toEqual(["greenlight-production"]);
    expect([...account.buckets]).toEqual(["greenlight-production-artifacts"]);
    expect([...account.queues].sort()).toEqual(
      ["greenlight-production-ingests", "greenlight-production-ingests-dlq", "greenlight-production-webhooks", "greenlight-production-webhooks-dlq"],
    );
    // The secrets arrived on stdin, with the values from the environment.
    expect(Object.fromEntries(account.workers.get("greenlight-production")!)).toEqual({ ADMIN_TOKEN: adminToken, URL_SIGNING_SECRET: signing });
    // The id is in the production section, and only there.
    const afterFirst = readFileSync(config);
    const uuid = account.databases[0]!.uuid;
    expect(describeTarget(afterFirst.toString(), "production").databases[0].id).toBe(uuid);
    expect(describeTarget(afterFirst.toString(), "staging").databases[0].id).toBe(PLACEHOLDER_DATABASE_ID);
    expect(describeTarget(afterFirst.toString(), undefined).databases[0].id).toBe(PLACEHOLDER_DATABASE_ID);
    // Migrations before the deploy, the organization after it, with the token from the environment.
    const order = account.calls.map((c) => c.args.slice(0, 2).join(" "));
    expect(order.indexOf("d1 migrations")).toBeLessThan(order.indexOf("deploy --env"));
    expect(order.indexOf("deploy --env")).toBeLessThan(order.indexOf("d1 execute"));
    expect(account.posts).toHaveLength(1);
    expect(account.posts[0]).toMatchObject({ url: "https://greenlight-production.test.workers.dev/api/v1/admin/organizations", authorization: `Bearer ${adminToken}` });
    expect(account.posts[0]!.idempotencyKey).toBeTruthy();
    expect(first.output.split(`gl_live_${"ab".repeat(32)}`)).toHaveLength(2); // the owner key, once
    // No secret value in anything printed or in any command line.
    for (const secret of [adminToken, signing]) {
      expect(first.output).not.toContain(secret);
      expect(account.calls.some((c) => c.args.join(" ").includes(secret))).toBe(false);
    }

    account.calls = [];
    const second = await setupAgainst(account, ["--config", config, "--env", "production"], secretsEnv);
    expect(second.code, second.output).toBe(0);
    expect(account.creates()).toEqual([]);
    expect(account.posts).toHaveLength(1);
    expect(account.organizations).toBe(1);
    expect(readFileSync(config).equals(afterFirst)).toBe(true);
    expect(second.output).toContain("already has the right database_id; not written");
    expect(second.output).not.toContain("gl_live_");
    // What does run again: the lookups, the migrations (none pending) and the deploy.
    expect(account.calls.map((c) => c.args.slice(0, 3).join(" "))).toEqual([
      "whoami --json",
      "d1 list --json",
      "r2 bucket info",
      "queues info greenlight-production-webhooks",
      "queues info greenlight-production-webhooks-dlq",
      "queues info greenlight-production-ingests",
      "queues info greenlight-production-ingests-dlq",
      "secret list --format",
      "d1 migrations apply",
      "deploy --env production",
      "d1 execute DB",
    ]);
  });

  it("generates missing secrets, prints the ADMIN_TOKEN once and the signing secret never", async () => {
    const account = new FakeAccount();
    const config = copyOfConfig();
    const run = await setupAgainst(account, ["--config", config]);
    expect(run.code, run.output).toBe(0);
    const secrets = account.workers.get("greenlight")!;
    const adminToken = secrets.get("ADMIN_TOKEN")!;
    const signing = secrets.get("URL_SIGNING_SECRET")!;
    expect(adminToken).toMatch(/^[0-9a-f]{64}$/);
    expect(signing).toMatch(/^[0-9a-f]{64}$/);
    expect(adminToken).not.toBe(signing);
    expect(run.output.split(adminToken)).toHaveLength(2);
    expect(run.output).toMatch(/ADMIN_TOKEN was generated\. It is shown only now/);
    expect(run.output).not.toContain(signing);
    // The top level: its own names, `--env ""` on the commands that read the config.
    expect(account.databases.map((d) => d.name)).toEqual(["greenlight"]);
    expect(account.calls.find((c) => c.args[0] === "deploy")!.args).toEqual(["deploy", "--env", "", "--config", config]);
    expect(describeTarget(readFileSync(config, "utf8"), undefined).databases[0].id).toBe(account.databases[0]!.uuid);
    expect(account.posts[0]!.authorization).toBe(`Bearer ${adminToken}`);
  });

  it("finds what exists, creates only what is missing, and leaves set secrets and organizations alone", async () => {
    const account = new FakeAccount();
    account.databases.push({ name: "greenlight-staging", uuid: "7d3a1c4e-0000-4000-8000-000000000001" });
    account.buckets.add("greenlight-staging-artifacts");
    account.queues.add("greenlight-staging-webhooks");
    account.workers.set("greenlight-staging", new Map([["ADMIN_TOKEN", "set-before"]]));
    const config = copyOfConfig();
    const run = await setupAgainst(account, ["--config", config, "--env", "staging"]);
    expect(run.code, run.output).toBe(0);
    expect(account.creates().map((args) => args.slice(0, 3).join(" "))).toEqual([
      "queues create greenlight-staging-webhooks-dlq",
      "queues create greenlight-staging-ingests",
      "queues create greenlight-staging-ingests-dlq",
      "secret put URL_SIGNING_SECRET",
    ]);
    expect(account.workers.get("greenlight-staging")!.get("ADMIN_TOKEN")).toBe("set-before");
    expect(describeTarget(readFileSync(config, "utf8"), "staging").databases[0].id).toBe("7d3a1c4e-0000-4000-8000-000000000001");
    // No organization yet, but the admin token is unknown here (set before, not in the
    // environment) and nobody can be asked: it says how to finish, and sends nothing.
    expect(account.posts).toEqual([]);
    expect(run.output).toContain("npm run bootstrap");
    expect(run.output).not.toContain("set-before");
  });

  it("stops at a database_id that belongs to another database instead of overwriting it", async () => {
    const account = new FakeAccount();
    account.databases.push({ name: "something-else", uuid: "aaaaaaaa-0000-4000-8000-000000000000" });
    const config = copyOfConfig();
    const before = readFileSync(config, "utf8").replace(
      /(\[\[env\.production\.d1_databases\]\][\s\S]*?database_id = )"[^"]*"/,
      '$1"aaaaaaaa-0000-4000-8000-000000000000"',
    );
    writeFileSync(config, before);
    const run = await setupAgainst(account, ["--config", config, "--env", "production"]);
    expect(run.code).toBe(1);
    expect(run.output).toContain('is D1 database "something-else", but database_name says "greenlight-production"');
    expect(account.creates()).toEqual([]);
    expect(readFileSync(config, "utf8")).toBe(before);
  });

  it("refuses to guess the account when the credentials reach several", async () => {
    const account = new FakeAccount();
    const run = await setupAgainst(
      Object.assign(account, {
        run: async (args: string[], opts: { input?: string; env?: Record<string, string> } = {}) =>
          args[0] === "whoami"
            ? { code: 0, stdout: JSON.stringify({ loggedIn: true, accounts: [{ id: "a1", name: "One" }, { id: "a2", name: "Two" }] }), stderr: "" }
            : new FakeAccount().run(args, opts),
      }),
      ["--config", copyOfConfig()],
    );
    expect(run.code).toBe(1);
    expect(run.output).toContain("CLOUDFLARE_ACCOUNT_ID");
  });
});

describe("the wrangler runner", () => {
  it.skipIf(process.platform === "win32")("runs the project's wrangler with its bin first on PATH and CI=true, a value only on stdin", async () => {
    const root = tempDir();
    mkdirSync(join(root, "node_modules", ".bin"), { recursive: true });
    const stub = join(root, "node_modules", ".bin", "wrangler");
    writeFileSync(stub, '#!/bin/sh\necho "args:$*"\necho "ci:$CI"\necho "path:${PATH%%:*}"\necho "stdin:$(cat)"\necho "to stderr" >&2\nexit 3\n');
    chmodSync(stub, 0o755);
    const echoed: string[] = [];
    const run = wranglerRunner({ root, echoTo: { write: (c: string | Buffer) => echoed.push(String(c)) } });

    const secret = `value-${randomUUID()}`;
    const put = await run(["secret", "put", "ADMIN_TOKEN", "--env", ""], { input: secret });
    expect(put.code).toBe(3);
    expect(put.stdout.split("\n")).toEqual(["args:secret put ADMIN_TOKEN --env ", "ci:true", `path:${join(root, "node_modules", ".bin")}`, `stdin:${secret}`, ""]);
    expect(put.stderr).toBe("to stderr\n");
    expect(echoed).toEqual([]);

    const list = await run(["d1", "list", "--json"], { echo: true, env: { WRANGLER_OUTPUT_FILE_PATH: "/tmp/x" } });
    expect(list.stdout).toContain("stdin:\n"); // stdin closed: nothing to read, no wait
    expect(echoed.join("")).toContain("args:d1 list --json");
  });
});
