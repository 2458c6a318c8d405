// Adds up every suite's results into the one closing line CI reads: "N passed, N failed, N skipped".
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
let passed = 0;
let failed = 0;
let skipped = 0;
for (const f of fs.readdirSync(dir)) {
  const file = path.join(dir, f);
  if (f.endsWith('.json')) {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (r.stats && 'expected' in r.stats) {
      // Playwright's JSON reporter (the e2e suite); a flaky test passed on retry
      passed += r.stats.expected + r.stats.flaky;
      failed += r.stats.unexpected + (r.errors?.length ?? 0);
      skipped += r.stats.skipped;
      continue;
    }
    passed += r.numPassedTests;
    failed += r.numFailedTests + (r.numFailedTestSuites ?? 0) - (r.testResults ?? []).filter((t) => t.status === 'failed' && t.assertionResults?.some((a) => a.status === 'failed')).length;
    skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  } else if (f.endsWith('.txt')) {
    // native test runners (launcher, tracer) each print "NAME: N passed, N failed[, N skipped]"
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/(\d+) passed, (\d+) failed(?:, (\d+) skipped)?/g)) {
      passed += Number(m[1]);
      failed += Number(m[2]);
      skipped += Number(m[3] ?? 0);
    }
  }
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
