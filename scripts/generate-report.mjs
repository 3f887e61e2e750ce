#!/usr/bin/env node
// Writes a valid test report of N results, to try ingest at sizes no fixture has:
//
//   node scripts/generate-report.mjs --format junit|playwright|ctrf --results N [--pad BYTES] [--out file]
//
// --pad gives each JUnit test that many bytes of <system-out>, to reach a file size with fewer
// results (a 100 MB report of 85,000 tests, say).
//
// The report is streamed out result by result (never built in memory), with a deterministic mix
// of statuses; its totals are printed to stderr as JSON, so a test or benchmark knows what the
// parsers must find. Without --out the report goes to stdout.
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { parseArgs } from "node:util";

const FORMATS = ["junit", "playwright", "ctrf"];
const SPECS_PER_FILE = 50;

function usage(message) {
  process.stderr.write(`${message}\nusage: node scripts/generate-report.mjs --format ${FORMATS.join("|")} --results N [--out file]\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: { format: { type: "string" }, results: { type: "string" }, pad: { type: "string" }, out: { type: "string" } },
});
if (!FORMATS.includes(values.format)) usage(`--format must be one of: ${FORMATS.join(", ")}`);
const count = Number(values.results);
if (!Number.isInteger(count) || count < 1) usage("--results must be a positive whole number");

/** Every 20 results: 1 failed, 1 skipped, 1 flaky, the rest passed. */
function statusOf(i) {
  switch (i % 20) {
    case 3:
      return "failed";
    case 7:
      return "skipped";
    case 13:
      return "flaky";
    default:
      return "passed";
  }
}

/** Milliseconds, varied but reproducible. */
function durationOf(i) {
  return ((i * 7919) % 5000) + 1;
}

const totals = { tests: count, passed: 0, failed: 0, skipped: 0, flaky: 0 };
for (let i = 0; i < count; i++) totals[statusOf(i)]++;

const pad = values.pad === undefined ? 0 : Number(values.pad);
if (!Number.isInteger(pad) || pad < 0) usage("--pad must be a whole number of bytes");
if (pad > 0 && values.format !== "junit") usage("--pad applies to --format junit only");
const systemOut = pad > 0 ? `<system-out>${"log line ".repeat(Math.ceil(pad / 9)).slice(0, pad)}</system-out>` : "";

const out = values.out ? createWriteStream(values.out) : process.stdout;

async function write(text) {
  if (!out.write(text)) await once(out, "drain");
}

const xmlEscape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const fileOf = (i) => `tests/area-${Math.floor(i / SPECS_PER_FILE)}.spec.ts`;
const titleOf = (i) => `handles case ${i}`;
const describeOf = (i) => `Area ${Math.floor(i / SPECS_PER_FILE)}`;
const failure = (i) => ({
  message: `Expected status 200 for case ${i}, received 500`,
  stack: `Error: Expected status 200 for case ${i}, received 500\n    at Context.<anonymous> (${fileOf(i)}:${(i % 300) + 1}:11)`,
});

async function junit() {
  const failures = totals.failed;
  await write(
    `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="generated" tests="${count}" failures="${failures}" errors="0" skipped="${totals.skipped}">\n`,
  );
  for (let i = 0; i < count; i++) {
    if (i % SPECS_PER_FILE === 0) {
      if (i > 0) await write(`  </testsuite>\n`);
      const size = Math.min(SPECS_PER_FILE, count - i);
      let suiteFailures = 0;
      let suiteSkipped = 0;
      for (let j = i; j < i + size; j++) {
        if (statusOf(j) === "failed") suiteFailures++;
        if (statusOf(j) === "skipped") suiteSkipped++;
      }
      await write(
        `  <testsuite name="${describeOf(i)}" tests="${size}" failures="${suiteFailures}" errors="0" skipped="${suiteSkipped}" file="${fileOf(i)}">\n`,
      );
    }
    const status = statusOf(i);
    const open = `    <testcase classname="${describeOf(i)}" name="${titleOf(i)}" time="${(durationOf(i) / 1000).toFixed(3)}"`;
    if (status === "passed") {
      await write(systemOut ? `${open}>${systemOut}</testcase>\n` : `${open}/>\n`);
    } else if (status === "skipped") {
      await write(`${open}>\n      <skipped message="not on this platform"/>${systemOut}\n    </testcase>\n`);
    } else if (status === "failed") {
      const f = failure(i);
      await write(`${open}>\n      <failure message="${xmlEscape(f.message)}" type="AssertionError">${xmlEscape(f.stack)}</failure>${systemOut}\n    </testcase>\n`);
    } else {
      const f = failure(i);
      await write(
        `${open}>\n      <flakyFailure message="${xmlEscape(f.message)}" type="AssertionError"><stackTrace>${xmlEscape(f.stack)}</stackTrace></flakyFailure>${systemOut}\n    </testcase>\n`,
      );
    }
  }
  await write(`  </testsuite>\n</testsuites>\n`);
}

function playwrightTest(i) {
  const status = statusOf(i);
  const duration = durationOf(i);
  const base = { workerIndex: 0, parallelIndex: 0, duration, errors: [], stdout: [], stderr: [], retry: 0, startTime: "2026-01-01T00:00:00.000Z", attachments: [] };
  const f = failure(i);
  const results =
    status === "flaky"
      ? [
          { ...base, status: "failed", errors: [f], error: f },
          { ...base, workerIndex: 1, retry: 1, status: "passed" },
        ]
      : status === "failed"
        ? [{ ...base, status: "failed", errors: [f], error: f }]
        : [{ ...base, status }];
  const outcome = { passed: "expected", failed: "unexpected", skipped: "skipped", flaky: "flaky" }[status];
  const annotations = status === "skipped" ? [{ type: "skip", description: "not on this platform" }] : [];
  return { timeout: 30000, annotations, expectedStatus: "passed", projectId: "chromium", projectName: "chromium", results, status: outcome };
}

async function playwright() {
  const config = { version: "1.51.1", workers: 4, projects: [{ id: "chromium", name: "chromium" }], metadata: {}, shard: null };
  await write(`{\n  "config": ${JSON.stringify(config)},\n  "suites": [\n`);
  for (let i = 0; i < count; i++) {
    if (i % SPECS_PER_FILE === 0) {
      if (i > 0) await write(`\n      ]\n    }]\n  },\n`);
      const file = fileOf(i).replace(/^tests\//, "");
      await write(
        `  {\n    "title": ${JSON.stringify(file)}, "file": ${JSON.stringify(file)}, "line": 0, "column": 0, "specs": [],\n    "suites": [{\n      "title": ${JSON.stringify(describeOf(i))}, "file": ${JSON.stringify(file)}, "line": 1, "column": 1,\n      "specs": [\n`,
      );
    } else {
      await write(",\n");
    }
    const spec = { title: titleOf(i), ok: statusOf(i) !== "failed", tags: [], tests: [playwrightTest(i)], id: `spec-${i}`, file: fileOf(i).replace(/^tests\//, ""), line: (i % 300) + 1, column: 3 };
    await write(`        ${JSON.stringify(spec)}`);
  }
  const stats = { startTime: "2026-01-01T00:00:00.000Z", duration: 1000, expected: totals.passed, skipped: totals.skipped, unexpected: totals.failed, flaky: totals.flaky };
  await write(`\n      ]\n    }]\n  }\n  ],\n  "errors": [],\n  "stats": ${JSON.stringify(stats)}\n}\n`);
}

async function ctrf() {
  const summary = {
    tests: count,
    // CTRF counts flaky tests (passed in the end) among the passed.
    passed: totals.passed + totals.flaky,
    failed: totals.failed,
    skipped: totals.skipped,
    pending: 0,
    other: 0,
    start: 1767225600000,
    stop: 1767225600000 + count,
  };
  await write(`{\n  "results": {\n    "tool": {"name": "generated", "version": "1.0.0"},\n    "summary": ${JSON.stringify(summary)},\n    "tests": [\n`);
  for (let i = 0; i < count; i++) {
    const status = statusOf(i);
    const test = {
      name: titleOf(i),
      status: status === "flaky" ? "passed" : status,
      duration: durationOf(i),
      suite: describeOf(i),
      filePath: fileOf(i),
      line: (i % 300) + 1,
      ...(status === "flaky" ? { flaky: true, retries: 1 } : {}),
      ...(status === "failed" ? { message: failure(i).message, trace: failure(i).stack } : {}),
    };
    await write(`      ${JSON.stringify(test)}${i === count - 1 ? "" : ","}\n`);
  }
  await write(`    ],\n    "environment": {"branchName": "main", "commit": "0000000000000000000000000000000000000000"}\n  }\n}\n`);
}

await { junit, playwright, ctrf }[values.format]();
if (out !== process.stdout) {
  out.end();
  await once(out, "finish");
}
process.stderr.write(`${JSON.stringify({ format: values.format, ...totals })}\n`);
