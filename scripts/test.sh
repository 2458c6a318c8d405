#!/usr/bin/env bash
# `npm test`: setup, lint, type-check, unit tests, native tests, then the root-only integration suite.
# Ends with one summary line "N passed, N failed, N skipped" over every suite.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh || exit 1
results=.test-results
rm -rf "$results" && mkdir -p "$results"
status=0

step() { printf '\n== %s\n' "$*"; }

# Root suites (a real helper, real sandboxes) run one at a time machine-wide under this lock. When npm
# test itself was started under it (`flock LOCK npm test`), taking it again would wait for ourselves
# forever: an ancestor holding it means we already have it.
ROOT_LOCK=/tmp/ai-sandbox-root-tests.lock
with_root_lock() {
  local pid=$$
  while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "flock.*$ROOT_LOCK"; then "$@"; return; fi
    pid=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')
  done
  flock "$ROOT_LOCK" "$@"
}

step lint and type-check
npx --no-install eslint . || status=1
npx --no-install tsc -p privileged-helper/tsconfig.test.json || status=1
npx --no-install tsc -p renderer/tsconfig.json || status=1
npx --no-install tsc -p renderer/tsconfig.test.json || status=1
npx --no-install tsc -p e2e/tsconfig.json || status=1
npx --no-install tsc -p electron/tsconfig.json || status=1

step unit tests
npx --no-install vitest run --project unit --reporter=default --reporter=json --outputFile.json="$results/unit.json" || status=1

step native tests
make -s -C privileged-helper/native test 2>&1 | tee "$results/native.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step integration tests
if [ "$(id -u)" = 0 ]; then
  with_root_lock npx --no-install vitest run --project integration --reporter=default --reporter=json --outputFile.json="$results/integration.json" || status=1
else
  echo "SKIPPED: the integration suite needs root (real namespaces, mounts and cgroups): run npm test as root"
fi

step end-to-end tests of the app
if [ "$(id -u)" = 0 ]; then
  E2E_JSON="$PWD/$results/e2e.json" with_root_lock npx --no-install playwright test -c e2e/playwright.config.ts || status=1
else
  echo "SKIPPED: the e2e suite needs root (a real helper and real sandboxes): run npm test as root"
fi

node scripts/test-summary.mjs "$results" || status=1
exit $status
