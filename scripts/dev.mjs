#!/usr/bin/env node
// `npm run dev [-- wrangler dev args]`: local development server.
//
//   1. creates .dev.vars from .dev.vars.example when it is missing;
//   2. applies pending D1 migrations to the local database
//      (`wrangler d1 migrations apply DB --local`, with the same --persist-to, --config,
//      --env and --env-file as the dev server, so both use the same database);
//   3. runs `wrangler dev` with every argument passed through, stdio inherited,
//      SIGINT/SIGTERM forwarded (SIGHUP as SIGTERM), and wrangler's exit code as ours.
//
// Plain Node ESM without dependencies: runs on Node 20 and later. Wrangler itself needs
// Node >= 22; the project's `node` devDependency provides one in node_modules/.bin, which is
// put first on PATH for the wrangler processes (npm run already does that; running this file
// directly with an older system node works too).

import { spawn } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const binDir = join(root, "node_modules", ".bin");
const isWindows = process.platform === "win32";
const wranglerBin = join(binDir, isWindows ? "wrangler.cmd" : "wrangler");

const log = (msg) => console.error(`[dev] ${msg}`);

const args = process.argv.slice(2);
const initialParentPid = process.ppid;

// Flags of `wrangler dev` that also decide which local D1 database the migrations go to.
const SHARED_FLAGS = new Set(["--persist-to", "--config", "-c", "--env", "-e", "--env-file", "--cwd"]);

/** Picks the flags from SHARED_FLAGS out of argv, in both `--flag value` and `--flag=value` forms. */
function sharedFlags(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") break;
    const eq = a.indexOf("=");
    if (a.startsWith("-") && eq > 0 && SHARED_FLAGS.has(a.slice(0, eq))) {
      out.push(a);
    } else if (SHARED_FLAGS.has(a) && i + 1 < argv.length) {
      out.push(a, argv[i + 1]);
      i++;
    }
  }
  return out;
}

function childEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  // Find the PATH key case-insensitively (Windows spells it "Path").
  const pathKey = Object.keys(env).find((k) => k.toUpperCase() === "PATH") ?? "PATH";
  env[pathKey] = env[pathKey] ? `${binDir}${delimiter}${env[pathKey]}` : binDir;
  return env;
}

function ensureDevVars() {
  const devVars = join(root, ".dev.vars");
  const example = join(root, ".dev.vars.example");
  if (existsSync(devVars)) return;
  if (!existsSync(example)) {
    log("no .dev.vars and no .dev.vars.example: starting without local secrets");
    return;
  }
  copyFileSync(example, devVars);
  log("created .dev.vars from .dev.vars.example (local-only values; edit it as you like)");
}

/** Runs wrangler to completion; resolves with its exit code. stdin is closed so it never prompts. */
function runWrangler(wranglerArgs) {
  return new Promise((resolvePromise) => {
    const child = spawn(wranglerBin, wranglerArgs, {
      cwd: root,
      // No stdin: wrangler treats the session as non-interactive and never waits for input.
      stdio: ["ignore", "inherit", "inherit"],
      // CI=true makes wrangler skip confirmation prompts even where it would otherwise ask.
      env: childEnv({ CI: process.env.CI || "true" }),
      shell: isWindows,
    });
    child.on("error", (err) => {
      log(`could not run ${wranglerBin}: ${err.message}`);
      resolvePromise(1);
    });
    child.on("exit", (code, signal) => resolvePromise(code ?? (signal ? 1 : 0)));
  });
}

/** Runs `wrangler dev`, forwarding signals, and ends this process the way wrangler ended. */
function runDevServer(devArgs) {
  const child = spawn(wranglerBin, ["dev", ...devArgs], {
    cwd: root,
    stdio: "inherit",
    env: childEnv(),
    shell: isWindows,
  });

  // Signal received -> signal sent to wrangler. Wrangler's launcher (node_modules/.bin/wrangler)
  // handles only SIGINT and SIGTERM; SIGHUP would kill the launcher alone and orphan the server
  // (and its workerd children), so a hang-up becomes SIGTERM.
  const forwarded = { SIGINT: "SIGINT", SIGTERM: "SIGTERM", SIGHUP: "SIGTERM" };
  const handlers = new Map();
  for (const [sig, sendSig] of Object.entries(forwarded)) {
    // Ctrl-C in a terminal reaches wrangler directly too (same process group); forwarding it
    // again is harmless, and it is what makes `kill <pid of this script>` stop the server.
    const handler = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sendSig);
    };
    handlers.set(sig, handler);
    process.on(sig, handler);
  }

  // `npm run dev` runs us through `sh -c`; when npm itself gets SIGTERM it signals that shell,
  // which dies without passing it on, and we are re-parented. Stop the server then too, rather
  // than leave it running unowned. Only under npm: `nohup node scripts/dev.mjs &` from a shell
  // that then exits is meant to keep running.
  const underNpm = Boolean(process.env.npm_lifecycle_event);
  const parentWatch = setInterval(() => {
    if (underNpm && process.ppid !== initialParentPid) {
      clearInterval(parentWatch);
      log("parent process went away: stopping the dev server");
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    }
  }, 1000);

  child.on("error", (err) => {
    log(`could not run ${wranglerBin}: ${err.message}`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => {
    clearInterval(parentWatch);
    for (const [sig, handler] of handlers) process.off(sig, handler);
    if (signal) {
      // Die of the same signal, so our parent sees what really happened.
      process.kill(process.pid, signal);
      // Fallback if the signal did not end us.
      setTimeout(() => process.exit(1), 1000).unref();
      return;
    }
    process.exit(code ?? 0);
  });
}

async function main() {
  if (!existsSync(wranglerBin)) {
    log(`wrangler not found at ${wranglerBin}: run \`npm install\` first`);
    process.exit(1);
  }

  const wantsHelp = args.some((a) => a === "--help" || a === "-h");
  if (!wantsHelp) {
    ensureDevVars();

    const migrateArgs = ["d1", "migrations", "apply", "DB", "--local", ...sharedFlags(args)];
    log(`applying pending D1 migrations: wrangler ${migrateArgs.join(" ")}`);
    const code = await runWrangler(migrateArgs);
    if (code !== 0) {
      log(`migrations failed (exit code ${code}); not starting the dev server`);
      process.exit(code);
    }
  }

  log(`starting: wrangler dev${args.length ? " " + args.join(" ") : ""}`);
  runDevServer(args);
}

main().catch((err) => {
  log(err?.stack ?? String(err));
  process.exit(1);
});
