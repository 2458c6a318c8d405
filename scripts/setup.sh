#!/usr/bin/env bash
# One idempotent setup for `npm start` and `npm test`: Debian packages, npm packages, the native
# launcher, the TypeScript build. Each step checks first and does nothing when all is in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: build tools, libseccomp for the launcher, libnftables for network rules; clang,
# bpftool and libbpf for the tracer; bubblewrap and strace as benchmark peers; chromium for the app's
# end-to-end tests and UI benchmark (never a browser downloaded by a test tool).
APT_PACKAGES=(build-essential pkg-config libseccomp-dev libnftables-dev bubblewrap util-linux iproute2 python3 procps
  clang bpftool libbpf-dev strace chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]}; run this as root (or: sudo apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, reinstalled only when the lock file changed.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.ai-sandbox-lock ] || [ "$(cat node_modules/.ai-sandbox-lock)" != "$lock_hash" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.ai-sandbox-lock
fi

# CRIU >= 4.2 from Debian's source (bookworm's 3.17 fails on this kernel), cached in /opt/ai-sandbox/criu.
# Sandboxes work without it; only checkpoint/restore/fork need it, and doctor says so.
if [ "$(id -u)" = 0 ]; then
  bash scripts/criu.sh || log "CRIU could not be built: snapshots are unavailable until it is (see the line above)"
fi

# Native parts (make rebuilds only what changed), then TypeScript (incremental).
make -s -C privileged-helper/native
npx --no-install tsc -b privileged-helper

# The app's renderer (web mode serves it; Electron loads it): rebuilt when a source is newer than the build.
if [ ! -f renderer/dist/index.html ] || [ -n "$(find renderer/src renderer/index.html renderer/vite.config.ts privileged-helper/src/ui privileged-helper/src/protocol/schema.ts -newer renderer/dist/index.html -print -quit)" ]; then
  log "building the app (renderer/dist)"
  npx --no-install vite build --config renderer/vite.config.ts --logLevel warn
fi
