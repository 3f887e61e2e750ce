/**
 * Large JUnit reports made inside the test, in the shape scripts/generate-report.mjs writes (a
 * suite per 50 tests; every 20 tests 1 failed, 1 skipped, 1 flaky), with the counts the parsers
 * must find. `padding` adds that many characters of system-out to each test, to reach a size.
 */
export interface GeneratedReport {
  text: string;
  totals: { tests: number; passed: number; failed: number; skipped: number; flaky: number };
}

function statusOf(i: number): "passed" | "failed" | "skipped" | "flaky" {
  return i % 20 === 3 ? "failed" : i % 20 === 7 ? "skipped" : i % 20 === 13 ? "flaky" : "passed";
}

export function junitReport(count: number, options: { padding?: number; firstTitle?: number } = {}): GeneratedReport {
  const totals = { tests: count, passed: 0, failed: 0, skipped: 0, flaky: 0 };
  const out: string[] = [`<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="generated" tests="${count}">\n`];
  const pad = options.padding ? `<system-out>${"ü".repeat(options.padding)}</system-out>` : "";
  for (let i = 0; i < count; i++) {
    const n = i + (options.firstTitle ?? 0);
    if (i % 50 === 0) {
      if (i > 0) out.push("  </testsuite>\n");
      out.push(`  <testsuite name="Area ${Math.floor(n / 50)}" file="tests/area-${Math.floor(n / 50)}.spec.ts">\n`);
    }
    const status = statusOf(i);
    totals[status]++;
    const open = `    <testcase classname="Area ${Math.floor(n / 50)}" name="handles case ${n}" time="${((i % 997) / 1000).toFixed(3)}">`;
    const body =
      status === "skipped"
        ? `<skipped/>`
        : status === "failed"
          ? `<failure message="expected 200 for case ${n}">at case ${n}</failure>`
          : status === "flaky"
            ? `<flakyFailure message="timed out"/>`
            : "";
    out.push(`${open}${body}${pad}</testcase>\n`);
  }
  out.push("  </testsuite>\n</testsuites>\n");
  return { text: out.join(""), totals };
}

/** A body that arrives in pieces with no Content-Length, as a streamed CI upload does. */
export function streamOf(content: string | Uint8Array, pieceBytes = 256 * 1024): ReadableStream<Uint8Array> {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(at, at + pieceBytes));
      at += pieceBytes;
    },
  });
}
