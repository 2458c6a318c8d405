#!/usr/bin/env bash
# `npm start`: set up, start the privileged helper, run the example agent in a sandbox through it, open
# the app with the example workflow (Electron where it can run, otherwise web mode with its URL printed),
# and keep the helper running in the foreground (Ctrl-C stops it, the app and every sandbox).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" != 0 ]; then
  echo "npm start needs root (the helper creates namespaces, mounts and cgroups): sudo npm start" >&2
  exit 1
fi
bash scripts/setup.sh
cli=(node privileged-helper/bin/ai-sandbox.js)
socket=${AI_SANDBOX_SOCKET:-/run/ai-sandbox/helper.sock}

"${cli[@]}" doctor || { echo "ai-sandbox doctor found a missing feature: see above" >&2; exit 1; }

"${cli[@]}" helper &
helper=$!
ui=""
trap 'for p in $ui $helper; do kill -TERM $p 2>/dev/null; done; wait $helper' EXIT INT TERM
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done

echo
echo "== example: examples/hello-agent/agent.py in a sandbox (256M memory, half a CPU, 10 s timeout)"
echo "summarise the design document" | "${cli[@]}" run --memory 256M --cpus 0.5 --timeout 10s \
  --mount "$PWD/examples/hello-agent:/agent:ro" --report /tmp/ai-sandbox-example-report.json -- python3 /agent/agent.py
echo "exit report: $(cat /tmp/ai-sandbox-example-report.json | tr -d '\n ')"
echo
echo "== example workflow: examples/agent-pipeline (fetch → parse → 3 analyzers in parallel → summarize)"
"${cli[@]}" workflow run examples/agent-pipeline/workflow.yaml || true
echo
echo
example="$PWD/examples/agent-pipeline/workflow.yaml"
electron_bin=""
if [ -f node_modules/electron/path.txt ] && [ -x "node_modules/electron/dist/$(cat node_modules/electron/path.txt)" ]; then
  electron_bin="node_modules/electron/dist/$(cat node_modules/electron/path.txt)"
fi
if [ -n "$electron_bin" ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "== the app (Electron) with $example"
  node electron/build.mjs >/dev/null
  # as root Chromium's OS sandbox cannot start, hence --no-sandbox; context isolation and a Node-free renderer still hold
  "$electron_bin" electron/dist/main/main.js --no-sandbox --open "$example" &
  ui=$!
else
  why="no display"; [ -z "$electron_bin" ] && why="no Electron binary installed"
  echo "== the app in web mode ($why): open the URL below in a browser on this machine"
  "${cli[@]}" ui --open "$example" &
  ui=$!
  sleep 2
fi
echo
echo "The helper is running on $socket. In another terminal try:"
echo "  npx --no-install ai-sandbox run -- python3 -c 'print(42)'"
echo "  npx --no-install ai-sandbox start --name demo -- sh -c 'while sleep 1; do date; done'"
echo "  npx --no-install ai-sandbox logs demo -f"
echo "  npx --no-install ai-sandbox checkpoint demo --leave-running   # then: snapshots, restore, fork"
echo "  npx --no-install ai-sandbox workflow list"
echo "Ctrl-C stops the helper and every sandbox."
wait $helper
