// Prints one closing line, "Tests: N passed, N failed, N skipped", from the vitest JSON reports
// that the test configs write when CI is set. Exits 1 when a report is missing or ran no test.
import { existsSync, readFileSync } from "node:fs";

const reports = ["test-results/workers.json", "test-results/e2e.json"];
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of reports) {
  if (!existsSync(file)) {
    console.error(`test-summary: ${file} is missing`);
    process.exit(1);
  }
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + (report.numTodoTests ?? 0);
}
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
