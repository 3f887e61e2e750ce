import { describe, expect, it } from "vitest";
import { Invalid, UnsupportedMediaType } from "../src/core/errors";
import {
  IngestError,
  MAX_NESTING_DEPTH,
  createParser,
  detectFormat,
  type IngestFormat,
  type NormalizedResult,
  type ReportMetadata,
  type ReportTotals,
} from "../src/ingest";
import ctrf from "./fixtures/ctrf.json?raw";
import junitGo from "./fixtures/junit-go.xml?raw";
import junitJest from "./fixtures/junit-jest.xml?raw";
import junitPytest from "./fixtures/junit-pytest.xml?raw";
import junitSurefire from "./fixtures/junit-surefire.xml?raw";
import playwright from "./fixtures/playwright.json?raw";

interface Parsed {
  results: NormalizedResult[];
  metadata: ReportMetadata;
  totals: ReportTotals | null;
  /** Results handed back by write() calls, before end(). */
  early: number;
}

/** Deterministic chunk sizes, so a failure can be replayed. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function chunksOf(text: string, seed: number, max = 200): string[] {
  const random = mulberry32(seed);
  const chunks: string[] = [];
  for (let i = 0; i < text.length; ) {
    const size = 1 + Math.floor(random() * max);
    chunks.push(text.slice(i, i + size));
    i += size;
  }
  return chunks;
}

function parse(format: IngestFormat, chunks: string[]): Parsed {
  const parser = createParser(format);
  const results: NormalizedResult[] = [];
  for (const chunk of chunks) results.push(...parser.write(chunk));
  const early = results.length;
  results.push(...parser.end());
  return { results, metadata: parser.metadata(), totals: parser.totals(), early };
}

function refusal(format: IngestFormat, chunks: string[]): IngestError {
  try {
    parse(format, chunks);
  } catch (err) {
    if (err instanceof IngestError) return err;
    throw err;
  }
  throw new Error("the report was accepted");
}

function count(results: NormalizedResult[], status: NormalizedResult["status"]): number {
  return results.filter((r) => r.status === status).length;
}

function byTitle(results: NormalizedResult[], fullTitle: string): NormalizedResult {
  const found = results.find((r) => r.fullTitle === fullTitle);
  if (!found) throw new Error(`no result '${fullTitle}' among ${results.map((r) => r.fullTitle).join(", ")}`);
  return found;
}

const FIXTURES: { name: string; text: string; format: IngestFormat; contentType: string }[] = [
  { name: "junit-surefire.xml", text: junitSurefire, format: "junit", contentType: "application/xml" },
  { name: "junit-pytest.xml", text: junitPytest, format: "junit", contentType: "text/xml; charset=utf-8" },
  { name: "junit-jest.xml", text: junitJest, format: "junit", contentType: "application/xml" },
  { name: "junit-go.xml", text: junitGo, format: "junit", contentType: "application/xml" },
  { name: "playwright.json", text: playwright, format: "playwright", contentType: "application/json" },
  { name: "ctrf.json", text: ctrf, format: "ctrf", contentType: "application/json" },
];

describe.each(FIXTURES)("$name", ({ text, format, contentType }) => {
  it("is recognized by its content type and first bytes, and by its bytes alone", () => {
    expect(detectFormat(contentType, text.slice(0, 65536))).toBe(format);
    expect(detectFormat(null, new TextEncoder().encode(text))).toBe(format);
    expect(detectFormat("application/octet-stream", text)).toBe(format);
  });

  it("yields the same results whole and in random small chunks", () => {
    const whole = parse(format, [text]);
    expect(whole.results.length).toBeGreaterThan(0);
    for (const seed of [1, 7, 42, 2026]) {
      const chunked = parse(format, chunksOf(text, seed));
      expect(chunked.results).toEqual(whole.results);
      expect(chunked.metadata).toEqual(whole.metadata);
      expect(chunked.totals).toEqual(whole.totals);
    }
    const oneByOne = parse(format, chunksOf(text, 3, 1));
    expect(oneByOne.results).toEqual(whole.results);
  });

  it("hands results back as chunks complete them, before the end", () => {
    expect(parse(format, chunksOf(text, 5)).early).toBeGreaterThan(0);
  });

  it("counts what the report declares", () => {
    const { results, totals } = parse(format, [text]);
    expect(totals).not.toBeNull();
    const t = totals!;
    expect(results.length).toBe(t.tests);
    expect(count(results, "skipped")).toBe(t.skipped);
    if (format === "junit") {
      // JUnit keeps errors apart from failures; both are failed results, and flaky ones passed.
      expect(count(results, "failed")).toBe(t.failed! + t.errors!);
      expect(count(results, "passed") + count(results, "flaky")).toBe(t.tests! - t.failed! - t.errors! - t.skipped!);
    } else if (format === "playwright") {
      expect(count(results, "failed")).toBe(t.failed);
      expect(count(results, "passed")).toBe(t.passed);
      expect(count(results, "flaky")).toBe(t.flaky);
    } else {
      // CTRF counts a flaky test (flaky: true, passed) among the passed ones.
      expect(count(results, "failed")).toBe(t.failed);
      expect(count(results, "passed") + count(results, "flaky")).toBe(t.passed);
    }
  });

  it("keeps every result within the limits, in clean text", () => {
    for (const r of parse(format, [text]).results) {
      expect(r.title.length).toBeGreaterThan(0);
      expect(r.duration).toBeGreaterThanOrEqual(0);
      expect(JSON.stringify(r)).not.toMatch(/\\u0000|\\u001b/);
    }
  });
});

describe("JUnit: Maven Surefire", () => {
  const { results, metadata } = parse("junit", [junitSurefire]);
  const title = (name: string) => byTitle(results, `com.acme.shop.CheckoutServiceTest > ${name}`);

  it("reads a test that passed after a flakyFailure as flaky, its reruns as retries", () => {
    expect(title("chargesCardOnce")).toMatchObject({
      status: "flaky",
      isFlaky: true,
      retries: 1,
      attempt: 2,
      duration: 1021,
      error: { message: "expected: <1> but was: <2>" },
      stdout: "charging card tok_visa (attempt 2)\ncharge id ch_3 created\n",
    });
    expect(title("chargesCardOnce").error!.stack).toMatch(/^org\.opentest4j\.AssertionFailedError: expected: <1> but was: <2>\n\tat /);
    // flakyError and flakyFailure both count; the last one explains the flake.
    expect(title("reservesStock")).toMatchObject({ status: "flaky", retries: 2, attempt: 3, error: { message: "Inventory did not answer within 200 ms" } });
  });

  it("reads a test that failed with rerunFailures as failed, the reruns as retries", () => {
    expect(title("rejectsExpiredCard")).toMatchObject({
      status: "failed",
      retries: 2,
      attempt: 3,
      duration: 118,
      error: { message: "expected: <DECLINED> but was: <APPROVED>" },
      stdout: "card 4000000000000069 expires 01/20\n",
    });
    expect(title("rejectsExpiredCard").isFlaky).toBeUndefined();
  });

  it("reads errors as failed, skips with their reason, and durations in milliseconds", () => {
    expect(title("sendsReceiptEmail")).toMatchObject({ status: "failed", duration: 51, error: { message: "SMTP server unavailable" } });
    expect(title("sendsReceiptEmail").error!.stack).toContain("at com.acme.shop.mail.Mailer.send(Mailer.java:63)");
    expect(title("supportsGiftCards")).toMatchObject({ status: "skipped", duration: 0, annotations: [{ type: "skip", description: "Gift cards are disabled in this build" }] });
    expect(title("appliesDiscountCode")).toMatchObject({ status: "passed", duration: 412, retries: 0, attempt: 1, suitePath: ["com.acme.shop.CheckoutServiceTest"] });
  });

  it("gives the suite's own output to its failed and flaky results that have none", () => {
    const suiteLog = "10:02:11.204 INFO  c.a.s.CheckoutService - mail relay smtp.internal:25 unreachable\n";
    expect(title("sendsReceiptEmail").stdout).toBe(suiteLog);
    expect(title("reservesStock").stdout).toBe(suiteLog);
    expect(title("appliesDiscountCode").stdout).toBeUndefined();
    expect(title("rejectsExpiredCard").stdout).not.toContain("mail relay");
  });

  it("takes run metadata from the suite's properties", () => {
    expect(metadata).toMatchObject({
      branch: "feature/checkout-retries",
      commitSha: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
      ciBuildId: "1287",
      ciBuildUrl: "https://ci.acme.dev/job/shop/1287/",
      os: "Linux",
    });
  });
});

describe("JUnit: pytest, jest-junit, go-junit-report", () => {
  it("pytest: file, line, tags and properties of a test case; errors and skips", () => {
    const { results, metadata } = parse("junit", [junitPytest]);
    expect(byTitle(results, "tests.test_api.TestUsers > test_create_user")).toMatchObject({
      filePath: "tests/test_api.py",
      lineNumber: 14,
      duration: 31,
      tags: ["api", "smoke"],
      annotations: [{ type: "jira", description: "SHOP-231" }],
      suitePath: ["pytest", "tests.test_api.TestUsers"],
    });
    const failed = byTitle(results, "tests.test_api.TestUsers > test_delete_user");
    expect(failed.error!.message).toBe("AssertionError: assert 404 == 204\n +  where 404 = <Response [404]>.status_code");
    expect(failed.error!.stack).toMatch(/^self = <tests\.test_api\.TestUsers object at 0x7f3a2c1d9e50>\n/);
    expect(failed.stdout).toBe("--- Captured stdout call ---\nDELETE /users/42 -> 404\n");
    expect(byTitle(results, "tests.test_db > test_migrations")).toMatchObject({
      status: "failed",
      error: { message: 'failed on setup with "sqlite3.OperationalError: unable to open database file"' },
    });
    expect(byTitle(results, "tests.test_db > test_postgres_only").annotations).toEqual([{ type: "skip", description: "tests/test_db.py:21: requires postgres" }]);
    expect(metadata).toEqual({
      runTitle: "pytest tests",
      hostname: "runner-7f9c",
      startedAt: "2025-03-14T09:26:53.589Z",
      branch: "main",
      commitSha: "4c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
    });
  });

  it("jest-junit: a name that repeats its classname is the full title; the message is the first line", () => {
    const { results, totals } = parse("junit", [junitJest]);
    expect(byTitle(results, "Cart removes an item")).toMatchObject({
      title: "Cart removes an item",
      filePath: "src/cart/cart.test.ts",
      suitePath: ["Cart"],
      duration: 4,
      error: { message: "Error: expect(received).toEqual(expected) // deep equality" },
    });
    expect(byTitle(results, "Checkout submits the order").duration).toBe(1502);
    // The root declares tests and failures but not skipped: that one is summed from the suites.
    expect(totals).toEqual({ tests: 6, failed: 1, errors: 0, skipped: 1 });
  });

  it("go-junit-report: packages are suites, subtests keep their names, suite output reaches the panic", () => {
    const { results } = parse("junit", [junitGo]);
    expect(byTitle(results, "github.com/acme/shop/internal/cart > TestAdd/empty_cart")).toMatchObject({
      status: "passed",
      suitePath: ["github.com/acme/shop/internal/cart"],
    });
    expect(byTitle(results, "github.com/acme/shop/internal/cart/pricing > TestCurrency").annotations).toEqual([
      { type: "skip", description: "pricing_test.go:17: needs network access" },
    ]);
    const panic = byTitle(results, "github.com/acme/shop/internal/db > Failure");
    expect(panic.error!.stack).toMatch(/^panic: runtime error: invalid memory address/);
    expect(panic.stdout).toContain("connecting to postgres://localhost:5432/shop_test");
  });

  it("nested suites make the suite path; file and time are inherited and converted", () => {
    const xml = `<testsuites><testsuite name="outer" file="spec/outer.rb"><testsuite name="inner"><testcase name="works" time="1,234.5"/></testsuite></testsuite></testsuites>`;
    const [result] = parse("junit", [xml]).results;
    expect(result).toMatchObject({ title: "works", fullTitle: "outer > inner > works", suitePath: ["outer", "inner"], filePath: "spec/outer.rb", duration: 1_234_500 });
  });
});

describe("Playwright JSON", () => {
  const { results, metadata } = parse("playwright", [playwright]);

  it("is one result per test and project, the project first in the full title", () => {
    expect(results.map((r) => r.fullTitle).sort()).toEqual([
      "chromium > Checkout > pays with a card",
      "chromium > Login > shows an error for a wrong password",
      "chromium > Login > with valid credentials > signs in @smoke",
      "chromium > redirects anonymous users",
      "firefox > Checkout > pays with a card",
      "firefox > Login > shows an error for a wrong password",
      "firefox > Login > with valid credentials > signs in @smoke",
      "firefox > redirects anonymous users",
    ]);
    expect(byTitle(results, "firefox > Login > with valid credentials > signs in @smoke")).toMatchObject({
      title: "signs in @smoke",
      suitePath: ["Login", "with valid credentials"],
      filePath: "auth/login.spec.ts",
      lineNumber: 12,
      tags: ["@smoke"],
    });
  });

  it("reads a failed retry followed by a pass as flaky, with the failure that explains it", () => {
    const flaky = byTitle(results, "firefox > Login > with valid credentials > signs in @smoke");
    expect(flaky).toMatchObject({ status: "flaky", isFlaky: true, retries: 1, attempt: 2, duration: 2210, error: { message: "Test timeout of 30000ms exceeded." } });
    expect(flaky.attachments).toEqual([
      { name: "screenshot", contentType: "image/png", path: "/home/runner/work/shop/shop/test-results/auth-login-Login-with-valid-credentials-signs-in-firefox/test-failed-1.png" },
      { name: "trace", contentType: "application/zip", path: "/home/runner/work/shop/shop/test-results/auth-login-Login-with-valid-credentials-signs-in-firefox/trace.zip" },
    ]);
    expect(byTitle(results, "chromium > Login > with valid credentials > signs in @smoke")).toMatchObject({ status: "passed", retries: 0, attempt: 1 });
  });

  it("reads a test that failed every retry as failed, its error without colour codes", () => {
    const failed = byTitle(results, "chromium > Login > shows an error for a wrong password");
    expect(failed).toMatchObject({ status: "failed", retries: 1, attempt: 2, duration: 5102, stderr: "[webserver] POST /api/session 500\n" });
    expect(failed.error!.message).toBe(
      'Error: expect(locator).toHaveText(expected) failed\n\nLocator: getByRole(\'alert\')\nExpected string: "Wrong email or password"\nReceived string: "Something went wrong"',
    );
    expect(failed.error!.stack).toContain("at /home/runner/work/shop/shop/tests/auth/login.spec.ts:36:45");
    expect(failed.annotations).toEqual([{ type: "issue", description: "https://github.com/acme/shop/issues/482" }]);
    expect(failed.attachments).toHaveLength(3);
  });

  it("maps skips, steps with their categories, and output written as text or bytes", () => {
    expect(byTitle(results, "chromium > redirects anonymous users")).toMatchObject({
      status: "skipped",
      suitePath: [],
      annotations: [{ type: "skip", description: "SSO redirect is flaky on CI" }],
    });
    const paid = byTitle(results, "chromium > Checkout > pays with a card");
    expect(paid.stdout).toBe("cart: 2 items, total 41.98 EUR\npaid with 4242 ••••\n");
    expect(paid.steps!.map((s) => [s.title, s.category])).toEqual([
      ["Before Hooks", "hook"],
      ["fill in the card", "action"],
      ["expect.toHaveText(getByTestId('receipt'))", "assertion"],
      ["After Hooks", "hook"],
    ]);
    expect(paid.steps![0]!.steps![1]).toEqual({
      title: "fixture: page",
      category: "fixture",
      status: "passed",
      duration: 98,
      steps: [{ title: "browserContext.newPage", category: "action", status: "passed", duration: 61 }],
    });
    expect(paid.steps![1]!.steps![2]!.steps![0]!.title).toBe("locator.click(getByRole('button', { name: 'Pay' }))");
    // A category Playwright has that ours does not is left out.
    expect(paid.steps![3]!.steps![0]).toEqual({ title: 'attach "receipt"', status: "passed", duration: 2 });
  });

  it("takes run metadata from the config and the stats", () => {
    expect(metadata).toEqual({
      playwrightVersion: "1.51.1",
      commitSha: "7e3f9a1c2b4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f",
      branch: "main",
      ciBuildUrl: "https://github.com/acme/shop/actions/runs/13867112345",
      commitMessage: "Retry card charges once",
      commitAuthor: "Ada Lovelace",
      workers: 4,
      shardCurrent: 2,
      shardTotal: 4,
      startedAt: "2025-03-14T09:40:00.512Z",
    });
  });

  it("leaves the project out of the title when there is one, and finds suite titles that come after their specs", () => {
    const report = {
      suites: [
        { specs: [], suites: [{ specs: [pwSpec("late title", "passed")], title: "Described late" }], title: "a.spec.ts", file: "a.spec.ts" },
      ],
      config: { projects: [{ name: "chromium" }] },
    };
    const [result] = parse("playwright", [JSON.stringify(report)]).results;
    expect(result).toMatchObject({ fullTitle: "Described late > late title", suitePath: ["Described late"], filePath: "a.spec.ts" });
  });
});

function pwSpec(title: string, status: string, extra: Record<string, unknown> = {}) {
  return {
    title,
    file: "a.spec.ts",
    line: 3,
    tests: [{ projectName: "chromium", status: status === "passed" ? "expected" : "unexpected", results: [{ status, duration: 12, retry: 0, ...extra }] }],
  };
}

describe("CTRF", () => {
  const { results, metadata } = parse("ctrf", [ctrf]);

  it("maps statuses, flaky passes, suites as text or list, and durations", () => {
    expect(byTitle(results, "Cart > totals > totals with tax")).toMatchObject({
      status: "flaky",
      isFlaky: true,
      retries: 2,
      attempt: 3,
      duration: 31,
      suitePath: ["Cart", "totals"],
      steps: [
        { title: "add items", status: "passed" },
        { title: "apply tax", status: "passed" },
      ],
    });
    expect(byTitle(results, "Cart > coupons > stacks coupons")).toMatchObject({ status: "skipped", annotations: [{ type: "ctrf:pending", description: "todo" }] });
    expect(byTitle(results, "Cart > items > removes an item")).toMatchObject({
      status: "failed",
      filePath: "src/cart/cart.test.ts",
      lineNumber: 19,
      stdout: "removing apple\ncart now has 1 item",
      error: {
        message: "expect(received).toEqual(expected) // deep equality",
        stack: "Error: expect(received).toEqual(expected) // deep equality\n    at Object.<anonymous> (src/cart/cart.test.ts:22:29)",
      },
    });
    expect(byTitle(results, "Checkout > submits the order")).toMatchObject({
      duration: 1502,
      stderr: "warning: slow network",
      attachments: [{ name: "order.json", contentType: "application/json", path: "artifacts/order.json" }],
    });
  });

  it("takes run metadata from the environment", () => {
    expect(metadata).toEqual({
      startedAt: "2025-03-14T09:40:00.000Z",
      branch: "main",
      commitSha: "4c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
      ciBuildId: "1287",
      ciBuildUrl: "https://ci.acme.dev/job/shop/1287/",
      runTitle: "shop-ci",
      os: "linux 6.5.0-1017-azure",
    });
  });
});

describe("native JSON", () => {
  const report = {
    results: [
      { title: "logs in", full_title: "Auth > logs in", file_path: "tests/auth.spec.ts", status: "passed", duration: 120, tags: ["smoke"] },
      { title: "logs out", status: "failed", duration: 80, retries: 1, attempt: 2, error: { message: "boom" }, suite_path: ["Auth"] },
    ],
    run: { branch: "main", commit_sha: "abc123", ci_build_id: "77", shard_current: 1, shard_total: 2, workers: 3, tags: ["nightly"] },
  };

  it("reads results with the schema of the results endpoint, and the run's metadata", () => {
    const text = JSON.stringify(report);
    expect(detectFormat("application/json", text)).toBe("native");
    const parsed = parse("native", chunksOf(text, 11));
    expect(parsed.results).toEqual([
      { title: "logs in", fullTitle: "Auth > logs in", filePath: "tests/auth.spec.ts", status: "passed", duration: 120, tags: ["smoke"] },
      { title: "logs out", status: "failed", duration: 80, retries: 1, attempt: 2, error: { message: "boom" }, suitePath: ["Auth"] },
    ]);
    expect(parsed.metadata).toEqual({ branch: "main", commitSha: "abc123", ciBuildId: "77", shardCurrent: 1, shardTotal: 2, workers: 3, tags: ["nightly"] });
    expect(parsed.totals).toBeNull();
  });

  it("names the first bad item by its index", () => {
    const bad = { results: [report.results[0], report.results[1], { title: "x", status: "exploded", duration: 1 }] };
    const err = refusal("native", [JSON.stringify(bad)]);
    expect(err.status).toBe(400);
    expect(err.details).toMatchObject({ format: "native", field: "results.2.status", reason: "invalid_value" });
    expect(err.message).toBe("The 'results.2.status' field must be one of: passed, failed, skipped, flaky.");
    expect(refusal("native", [JSON.stringify({ results: [{ status: "passed", duration: 1 }] })]).details.field).toBe("results.0.title");
    expect(refusal("native", [JSON.stringify({ run: {} })]).details.field).toBe("results");
  });

  it("replaces NUL characters and unpaired surrogates instead of refusing them", () => {
    const text = `{"results": [{"title": "nul \\u0000 and \\ud800 half", "status": "passed", "duration": 1}]}`;
    expect(parse("native", [text]).results[0]!.title).toBe("nul \uFFFD and \uFFFD half");
  });
});

describe("hostile reports", () => {
  it("refuses malformed XML with its line and column", () => {
    const xml = `<testsuites>\n  <testsuite name="a">\n    <testcase name="x">\n  </testsuite>\n</testsuites>`;
    const err = refusal("junit", [xml]);
    // Surfaces render it as any other invalid request.
    expect(err).toBeInstanceOf(Invalid);
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/^Malformed XML at line 4, column \d+: unclosed tag 'testcase'\.$/);
    expect(err.details).toMatchObject({ format: "junit", reason: "malformed", line: 4 });
    const attr = refusal("junit", [`<testsuites>\n<testsuite name=a>`]);
    expect(attr.message).toMatch(/^Malformed XML at line 2, column \d+: /);
  });

  it("refuses truncated XML and JSON with a position", () => {
    const xml = refusal("junit", chunksOf(junitSurefire.slice(0, 2000), 9));
    expect(xml.status).toBe(400);
    expect(xml.message).toMatch(/^Malformed XML at line \d+, column \d+: unclosed tag '/);
    const json = refusal("playwright", chunksOf(playwright.slice(0, 5000), 9));
    expect(json.status).toBe(400);
    expect(json.details).toMatchObject({ reason: "malformed" });
    expect(json.message).toMatch(/^Malformed JSON at line \d+, column \d+: /);
    expect(json.details.line).toBeGreaterThan(1);
  });

  it("refuses malformed JSON at the offending character", () => {
    const err = refusal("ctrf", ['{\n  "results": {\n    "tests": [ }']);
    expect(err.status).toBe(400);
    expect(err.message).toBe("Malformed JSON at line 3, column 16: unexpected '}'.");
    expect(err.details).toMatchObject({ line: 3, column: 16, offset: 32 });
    const bad = refusal("playwright", ['{"suites": [tru']);
    expect(bad.message).toMatch(/^Malformed JSON at line 1, column \d+: /);
    expect(refusal("native", ['{"results": []} {"results": []}']).message).toMatch(/after the end of the document/);
  });

  it("refuses a number given as text where a number is required, naming the field and the test", () => {
    const time = refusal("junit", [`<testsuite name="s">\n<testcase classname="C" name="slow" time="abc"/></testsuite>`]);
    expect(time.status).toBe(422);
    expect(time.message).toMatch(/^The 'time' of test 'C > slow' at line 2, column \d+ must be a number, not "abc"\.$/);
    expect(time.details).toMatchObject({ field: "time", test: "C > slow", reason: "invalid_number" });

    const duration = { results: { tool: { name: "jest" }, tests: [{ name: "adds", suite: "Cart", status: "passed", duration: "12" }] } };
    const err = refusal("ctrf", [JSON.stringify(duration)]);
    expect(err.status).toBe(422);
    expect(err.message).toMatch(/^The 'duration' of test 'Cart > adds' at line 1, column \d+ must be a number, not "12"\.$/);
    expect(err.details).toMatchObject({ field: "duration", test: "Cart > adds" });

    const pw = { suites: [{ title: "a.spec.ts", specs: [pwSpec("t", "passed", { duration: "NaN" })] }] };
    expect(refusal("playwright", [JSON.stringify(pw)]).details).toMatchObject({ field: "duration", test: "t" });
    expect(refusal("junit", [`<testsuites tests="many"/>`]).details).toMatchObject({ field: "tests", reason: "invalid_number" });
    expect(refusal("junit", [`<testsuite><testcase name="n" time="-1"/></testsuite>`]).status).toBe(422);
  });

  it("refuses nesting 10,000 deep without recursing", () => {
    const deepJson = `{"suites":${"[".repeat(10_000)}`;
    for (const format of ["playwright", "ctrf", "native"] as const) {
      const err = refusal(format, chunksOf(deepJson, 4, 500));
      expect(err.status).toBe(400);
      expect(err.details.reason).toBe("too_deep");
      expect(err.message).toMatch(new RegExp(`^The report nests deeper than ${MAX_NESTING_DEPTH} levels at line 1, column \\d+\\.$`));
    }
    const deepXml = `<testsuites>${"<testsuite>".repeat(10_000)}`;
    const err = refusal("junit", [deepXml]);
    expect(err.status).toBe(400);
    expect(err.details.reason).toBe("too_deep");
  });

  it("refuses an empty body", () => {
    for (const format of ["junit", "playwright", "ctrf", "native"] as const) {
      const err = refusal(format, []);
      expect(err.status).toBe(400);
      expect(err.message).toBe("The report is empty.");
      expect(refusal(format, ["", "  \n"]).message).toBe("The report is empty.");
    }
    expect(() => detectFormat("application/json", "")).toThrow("The report is empty.");
    expect(() => detectFormat("application/xml", new Uint8Array())).toThrow("The report is empty.");
  });

  it("refuses a DOCTYPE and any entity declaration, and does not expand entities", () => {
    const doctype = `<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<testsuite><testcase name="&a;"/></testsuite>`;
    for (const chunks of [[doctype], chunksOf(doctype, 1, 3)]) {
      const err = refusal("junit", chunks);
      expect(err.status).toBe(400);
      expect(err.message).toMatch(/^XML DOCTYPE and entity declarations are not accepted/);
      expect(err.details).toMatchObject({ reason: "doctype", line: 2, column: 1 });
    }
    // Without a declaration an unknown entity is simply malformed.
    expect(refusal("junit", [`<testsuite><testcase name="&nbsp;"/></testsuite>`]).details.reason).toBe("malformed");
    // A "<!DOCTYPE" inside the document's text is just text.
    const cdata = `<testsuite><testcase name="html"><system-out><![CDATA[<!DOCTYPE html><html></html>]]></system-out></testcase></testsuite>`;
    expect(parse("junit", [cdata]).results[0]!.stdout).toBe("<!DOCTYPE html><html></html>");
  });

  it("refuses a billion-laughs document at once", () => {
    const levels = ['<!ENTITY lol "lol">'];
    for (let i = 1; i <= 9; i++) levels.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? "" : i - 1};`.repeat(10)}">`);
    const bomb = `<?xml version="1.0"?>\n<!DOCTYPE lolz [\n${levels.join("\n")}\n]>\n<testsuite><testcase name="&lol9;"/></testsuite>`;
    const started = performance.now();
    const err = refusal("junit", [bomb]);
    expect(performance.now() - started).toBeLessThan(100);
    expect(err.details.reason).toBe("doctype");
  });

  it("refuses an XML report that is not JUnit", () => {
    const err = refusal("junit", [`<html><body/></html>`]);
    expect(err.message).toBe("The XML report's root element is 'html'; a JUnit report starts with <testsuites> or <testsuite>.");
  });

  it("replaces NUL characters and control bytes in XML text rather than refusing the report", () => {
    const xml = `<testsuite><testcase name="a\u0000b"><system-out>esc \u001b[31m red \u0000</system-out></testcase></testsuite>`;
    const [result] = parse("junit", [xml]).results;
    expect(result!.title).toBe("a\uFFFDb");
    expect(result!.stdout).toBe("esc \u001b[31m red \uFFFD");
  });

  it("truncates error texts over 64 KB with a marker, and only those", () => {
    const stack = `Error: boom\n${"    at frame (file.js:1:1)\n".repeat(4000)}`;
    const xml = `<testsuite><testcase name="big"><failure message="boom">${stack}</failure></testcase></testsuite>`;
    const [result] = parse("junit", chunksOf(xml, 13, 5000)).results;
    const kept = result!.error!.stack!;
    expect(kept.length).toBeLessThanOrEqual(64 * 1024);
    const marker = /… \[truncated (\d+) characters\]$/.exec(kept);
    expect(marker).not.toBeNull();
    expect(kept.length - marker![0].length + Number(marker![1])).toBe(stack.length);
    expect(stack.startsWith(kept.slice(0, kept.length - marker![0].length))).toBe(true);

    const pw = { suites: [{ title: "a.spec.ts", specs: [pwSpec("t", "failed", { errors: [{ message: "x".repeat(70_000) }] })] }] };
    expect(parse("playwright", [JSON.stringify(pw)]).results[0]!.error!.message).toMatch(/^x+… \[truncated \d+ characters\]$/);

    const longTitle = `<testsuite><testcase name="${"t".repeat(1001)}"/></testsuite>`;
    const err = refusal("junit", [longTitle]);
    expect(err.status).toBe(422);
    expect(err.details).toMatchObject({ field: "title", reason: "too_long" });
  });

  it("moves steps deeper than 32 levels up and drops steps beyond 10,000, saying so", () => {
    let deep: Record<string, unknown> = { title: "level 40" };
    for (let level = 39; level >= 1; level--) deep = { title: `level ${level}`, steps: [deep] };
    const many = Array.from({ length: 10_050 }, (_, i) => ({ title: `step ${i}` }));
    const pw = {
      suites: [{ title: "a.spec.ts", specs: [pwSpec("deep", "passed", { steps: [deep] }), pwSpec("many", "passed", { steps: many })] }],
    };
    const [deepResult, manyResult] = parse("playwright", chunksOf(JSON.stringify(pw), 2)).results;
    let node = deepResult!.steps![0]!;
    for (let level = 1; level < 32; level++) node = node.steps![0]!;
    expect(node.title).toBe("level 32");
    expect(node.steps).toBeUndefined();
    // What was below level 32 follows it, in order, at level 32.
    let parent = deepResult!.steps![0]!;
    for (let level = 1; level < 31; level++) parent = parent.steps![0]!;
    expect(parent.steps!.map((s) => s.title)).toEqual(Array.from({ length: 9 }, (_, i) => `level ${32 + i}`));
    expect(deepResult!.annotations).toEqual([expect.objectContaining({ type: "greenlight:steps-truncated" })]);
    expect(manyResult!.steps).toHaveLength(10_000);
    expect(manyResult!.steps!.at(-1)!.title).toBe("step 9999");
    expect(manyResult!.annotations).toEqual([expect.objectContaining({ type: "greenlight:steps-truncated" })]);
  });

  it("ignores fields and attributes it does not know", () => {
    const xml = `<testsuites flavour="x"><testsuite name="s" colour="red"><testcase name="t" weird="1"><unknown>text</unknown></testcase></testsuite></testsuites>`;
    expect(parse("junit", [xml]).results).toEqual([{ title: "t", fullTitle: "s > t", status: "passed", duration: 0, retries: 0, attempt: 1, suitePath: ["s"] }]);
    const json = { results: { tool: { name: "x" }, extra: [1, { deep: [] }], tests: [{ name: "t", status: "passed", duration: 1, novel: { a: 1 } }] }, other: true };
    expect(parse("ctrf", [JSON.stringify(json)]).results).toEqual([{ title: "t", fullTitle: "t", suitePath: [], status: "passed", duration: 1, retries: 0, attempt: 1 }]);
  });
});

describe("streaming", () => {
  it("hands back a large report's results as they complete, whatever the chunking", () => {
    const cases = Array.from({ length: 5000 }, (_, i) =>
      i % 10 === 0 ? `<testcase classname="Big" name="t${i}" time="0.01"><failure message="no">trace ${i}</failure></testcase>` : `<testcase classname="Big" name="t${i}" time="0.01"/>`,
    );
    const xml = `<?xml version="1.0"?><testsuite name="Big" tests="5000" failures="500">${cases.join("\n")}</testsuite>`;
    const parser = createParser("junit");
    const half = Math.floor(xml.length / 2);
    const first = parser.write(xml.slice(0, half));
    expect(first.length).toBeGreaterThan(2000);
    const rest = [...parser.write(xml.slice(half)), ...parser.end()];
    expect(first.length + rest.length).toBe(5000);
    expect(count([...first, ...rest], "failed")).toBe(500);
  });
});

describe("detectFormat", () => {
  it("tells the JSON formats apart by their top-level keys in any order", () => {
    expect(detectFormat("application/json", `{"stats": {}, "suites": [], "config": {}}`)).toBe("playwright");
    expect(detectFormat("application/json", `{"results": {"tests": [], "tool": {"name": "x"}}}`)).toBe("ctrf");
    expect(detectFormat("application/json", `{"run": {"branch": "main"}, "results": [{"title": "a"`)).toBe("native");
    expect(detectFormat("application/json", `{"results": [], "run": {}}`)).toBe("native");
    // Keys after a large first value are still found; a key inside a value is not a top-level key.
    const bigConfig = `{"config": {"metadata": {"results": [], "pad": "${"x".repeat(70_000)}"}}, "suites": []}`;
    expect(detectFormat("application/json", bigConfig)).toBe("playwright");
    expect(detectFormat("application/json", `\uFEFF  {"results": {"summary": {}}}`)).toBe("ctrf");
  });

  it("takes XML as JUnit", () => {
    expect(detectFormat("application/xml", "<testsuites/>")).toBe("junit");
    expect(detectFormat("text/xml;charset=UTF-8", `<?xml version="1.0"?><testsuite/>`)).toBe("junit");
    expect(detectFormat(undefined, "\n<testsuite/>")).toBe("junit");
  });

  it("lets ?format= decide, and only for the four formats", () => {
    expect(detectFormat("application/json", `{"anything": 1}`, "ctrf")).toBe("ctrf");
    expect(detectFormat("text/plain", "<x/>", "junit")).toBe("junit");
    try {
      detectFormat("application/json", "{}", "xunit");
      throw new Error("accepted");
    } catch (err) {
      expect(err).toBeInstanceOf(IngestError);
      expect((err as IngestError).status).toBe(400);
      expect((err as IngestError).message).toBe("The 'format' query parameter must be one of: junit, playwright, ctrf, native.");
    }
  });

  it("refuses content types no report has, and bodies that are not what they claim", () => {
    expect(() => detectFormat("image/png", "<testsuite/>")).toThrow(UnsupportedMediaType);
    expect(() => detectFormat("multipart/form-data; boundary=x", "{}")).toThrow(UnsupportedMediaType);
    const mismatch = (() => {
      try {
        detectFormat("application/json", "<testsuite/>");
      } catch (err) {
        return err as IngestError;
      }
    })();
    expect(mismatch).toBeInstanceOf(IngestError);
    expect(mismatch!.details.reason).toBe("content_type_mismatch");
    expect(() => detectFormat("application/json", `{"tests": []}`)).toThrow(/Could not tell the JSON report's format/);
    expect(() => detectFormat(undefined, "hello")).toThrow(/neither XML/);
    expect(() => detectFormat("application/json", `{"results": {"tests": [ }`)).toThrow(/^Malformed JSON at line 1, column 25/);
  });
});

describe("long step titles", () => {
  it("are cut with a marker and noted, not a reason to refuse the report", () => {
    const title = `expect(locator).toHaveText(${"x".repeat(5000)})`;
    const report = JSON.stringify({
      results: { tool: { name: "t" }, summary: { tests: 1 }, tests: [{ name: "t", status: "passed", duration: 1, steps: [{ name: title, status: "passed" }] }] },
    });
    const { results } = parse("ctrf", [report]);
    const step = results[0]!.steps![0]!;
    expect(step.title.length).toBeLessThanOrEqual(2000);
    expect(step.title).toMatch(/^expect\(locator\)\.toHaveText\(x+… \[truncated \d+ characters\]$/);
    expect(results[0]!.annotations!.map((a) => a.type)).toContain("greenlight:steps-truncated");
  });
});
