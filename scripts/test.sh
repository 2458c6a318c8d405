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

# Root suites run one at a time machine-wide under this lock. When `npm test` itself was started under
# `flock LOCK ...` (as the machine's rules ask), taking the lock again here would wait for ourselves
# forever (flock locks belong to open file descriptions): run directly when an ancestor holds it.
ROOT_LOCK=/tmp/ai-sandbox-root-tests.lock
under_root_lock() {
  local pid=$$
  while [ "$pid" -gt 1 ]; do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "flock.* $ROOT_LOCK "; then return 0; fi
    # the parent pid is the 2nd field after the command name, which may hold spaces: "(npm test)"
    pid=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $2}')
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  done
  return 1
}
root_locked() { if under_root_lock; then "$@"; else flock "$ROOT_LOCK" "$@"; fi; }

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
root_locked make -s -C privileged-helper/native test 2>&1 | tee "$results/native.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step integration tests
if [ "$(id -u)" = 0 ]; then
  # one root suite at a time on a shared machine
  root_locked \
    npx --no-install vitest run --project integration --reporter=default --reporter=json --outputFile.json="$results/integration.json" || status=1
else
  echo "SKIPPED: the integration suite needs root (real namespaces, mounts and cgroups): run npm test as root"
fi

step end-to-end tests of the app
if [ "$(id -u)" = 0 ]; then
  # a real helper and real sandboxes: one root suite at a time on a shared machine
  E2E_JSON="$PWD/$results/e2e.json" root_locked \
    npx --no-install playwright test -c e2e/playwright.config.ts || status=1
else
  echo "SKIPPED: the e2e suite needs root (a real helper and real sandboxes): run npm test as root"
fi

node scripts/test-summary.mjs "$results" || status=1
exit $status
