#!/usr/bin/env bash
# Builds CRIU (>= 4.2) from Debian's source package into a prefix of ours (see ../../shared/HOST-FACTS.md,
# section CRIU): bookworm ships 3.17, which fails on this kernel ("vdso: Unexpected rt vDSO area bounds"),
# and trixie's 4.1.1 cannot dump TCP/UDP sockets on kernels >= 6.16.
#
# Idempotent and cached:
#   - does nothing (well under a second) when $PREFIX/sbin/criu --version already reports >= 4.2;
#   - keeps the verified .dsc + .orig.tar.xz under $CACHE, so a rebuild needs no download;
#   - installs into a staging dir and swaps it into place, so a failed build never leaves half a prefix.
# The deb-src entry lives in a file of our own (ai-sandbox-src.sources) and reuses the mirror URI that
# debian.sources already has: no host name is written by this script.
#
# usage: scripts/criu.sh [--force]        (root; env: AI_SANDBOX_CRIU_PREFIX, AI_SANDBOX_CRIU_CACHE)
set -euo pipefail

PREFIX=${AI_SANDBOX_CRIU_PREFIX:-/opt/ai-sandbox/criu}
CACHE=${AI_SANDBOX_CRIU_CACHE:-/var/cache/ai-sandbox/criu-src}
MIN_MAJOR=4 MIN_MINOR=2
# Our deb-src entry lives outside /etc/apt, so the system's own `apt-get update` never fetches sid.
SRC_LIST=/var/cache/ai-sandbox/apt/ai-sandbox-src.sources
DEB_SOURCES=/etc/apt/sources.list.d/debian.sources
BUILD_DEPS=(build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev
  protobuf-compiler python3-protobuf libnl-3-dev libnet1-dev libcap-dev libbsd-dev
  libaio-dev uuid-dev patch)
# Build options beyond the prefix and run dir. NO_GNUTLS=1: without TLS for the page server, which we
# never use; GnuTLS and its 8 dependencies were 9 of criu's 25 shared libraries, and loading them cost
# ~2 ms of every criu run here (`criu --version` 4.3 -> 2.1 ms), once per checkpoint, restore and fork.
# NO_LIBBPF=1 NO_NFTABLES=1 (our patch 0007): without BPF map dumping (seccomp keeps bpf() out of every
# sandbox) and the nftables network lock (our dumps leave the sandbox's private netns out and lock
# nothing, see docs/launcher-protocol.md "Restore"): 9 more libraries, ~1.7 ms of every criu run.
BUILD_OPTS=(NO_GNUTLS=1 NO_LIBBPF=1 NO_NFTABLES=1)
# Our patches on top of Debian's source (scripts/criu-patches/*.patch) and the options: their hash is
# recorded in the prefix, so a changed patch set or option rebuilds.
PATCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/criu-patches"
patches_hash() { { cat "$PATCH_DIR"/*.patch 2>/dev/null; echo "${BUILD_OPTS[*]}"; } | sha256sum | cut -d' ' -f1; }

log() { printf 'criu: %s\n' "$*" >&2; }
step='' steplog='' reported=0
fail() { printf 'criu: FAILED: %s\n' "$*" >&2; reported=1; exit 1; }
# Any unexpected error names the step that was running (one clear line), with the log to read.
on_exit() {
  local rc=$?
  [ -z "${work:-}" ] || rm -rf "$work"
  if [ $rc -ne 0 ] && [ $reported = 0 ]; then
    printf 'criu: FAILED while %s (exit %d)%s\n' "${step:-starting}" "$rc" "${steplog:+; see $steplog}" >&2
  fi
}
trap on_exit EXIT

# "criu --version" prints "Version: 4.2" (and "GitID: ..." for git builds).
version_ok() {
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n1) || return 1
  [ -n "$v" ] || return 1
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  (( major > MIN_MAJOR || (major == MIN_MAJOR && minor >= MIN_MINOR) ))
}

force=0
[ "${1:-}" = --force ] && force=1
if [ $force = 0 ] && [ -x "$PREFIX/sbin/criu" ] && version_ok "$PREFIX/sbin/criu" \
  && [ "$(cat "$PREFIX/.ai-sandbox-patches" 2>/dev/null)" = "$(patches_hash)" ]; then
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "building CRIU needs root (apt-get and $PREFIX); run: sudo $0"
start=$(date +%s)
mkdir -p "$CACHE"
mkdir -p "$(dirname "$SRC_LIST")"
# Two setups at once: the second waits, then finds CRIU installed and stops.
exec 9>"$CACHE/.lock"
flock 9
if [ $force = 0 ] && [ -x "$PREFIX/sbin/criu" ] && version_ok "$PREFIX/sbin/criu" \
  && [ "$(cat "$PREFIX/.ai-sandbox-patches" 2>/dev/null)" = "$(patches_hash)" ]; then
  exit 0
fi
steplog="$CACHE/last-build.log"
: > "$steplog"

# ---- 1. deb-src entry for sid, on the mirror debian.sources already uses ------------------------
step="writing $SRC_LIST"
[ -r "$DEB_SOURCES" ] || fail "$DEB_SOURCES not found: cannot tell which Debian mirror to use"
# The first stanza whose Suites name bookworm (not bookworm-security) gives the URI and keyring.
read -r uri keyring < <(awk '
  BEGIN { RS=""; FS="\n" }
  {
    u=""; s=""; k=""
    for (i = 1; i <= NF; i++) {
      if ($i ~ /^URIs:/)      { u=$i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
      if ($i ~ /^Suites:/)    { s=" " $i " " }
      if ($i ~ /^Signed-By:/) { k=$i; sub(/^Signed-By:[ \t]*/, "", k) }
    }
    if (u != "" && s ~ /[ \t]bookworm[ \t]/) { print u, (k == "" ? "-" : k); exit }
  }' "$DEB_SOURCES") || true
[ -n "${uri:-}" ] || fail "no bookworm stanza with URIs in $DEB_SOURCES"
want=$(printf '# Written by ai-sandbox scripts/criu.sh: source packages only (to build CRIU >= 4.2).\n'
       printf 'Types: deb-src\nURIs: %s\nSuites: sid\nComponents: main\n' "$uri"
       [ "$keyring" = - ] || printf 'Signed-By: %s\n' "$keyring")
if [ ! -f "$SRC_LIST" ] || [ "$(cat "$SRC_LIST")" != "$want" ]; then
  log "writing $SRC_LIST (deb-src sid on $uri)"
  printf '%s\n' "$want" > "$SRC_LIST.tmp"
  mv "$SRC_LIST.tmp" "$SRC_LIST"
fi

# ---- 2. sources: .dsc + orig tarball, cached and checked ----------------------------------------
# A cached pair is reused when the orig's sha256 matches its .dsc (no network at all then).
verify_dsc() { # $1 = .dsc; prints the orig path when it exists and its sha256 matches
  local dsc=$1 sum name
  while read -r sum _ name; do
    case "$name" in *.orig.tar.*)
      [ -f "$CACHE/$name" ] || return 1
      [ "$(sha256sum "$CACHE/$name" | cut -d' ' -f1)" = "$sum" ] || return 2
      echo "$CACHE/$name"; return 0 ;;
    esac
  done < <(sed -n '/^Checksums-Sha256:/,/^[^ ]/{/^ /p}' "$dsc")
  return 1
}
newest_dsc() { ls -1 "$CACHE"/criu_*.dsc 2>/dev/null | sort -V | tail -n1; }

step="looking for cached sources in $CACHE"
dsc=$(newest_dsc || true)
orig=''
if [ -n "$dsc" ]; then orig=$(verify_dsc "$dsc" || true); fi
if [ -z "$orig" ]; then
  step="apt-get update of $SRC_LIST"
  log "downloading the criu source package from sid"
  # Update only our own list; leave every other list (and its cleanup) alone.
  apt-get update -qq -o Dir::Etc::sourcelist="$SRC_LIST" -o Dir::Etc::sourceparts=- \
    -o APT::Get::List-Cleanup=0 >>"$steplog" 2>&1
  step="apt-get source --download-only criu/sid"
  # The .debian.tar.xz may 404 on some mirrors; we do not need it, so judge by what arrived.
  (cd "$CACHE" && apt-get source --download-only -qq -o Dir::Etc::sourcelist="$SRC_LIST" -o Dir::Etc::sourceparts=- criu/sid) >>"$steplog" 2>&1 || true
  dsc=$(newest_dsc || true)
  [ -n "$dsc" ] || fail "apt-get source criu/sid gave no .dsc (see $steplog)"
  step="verifying the orig tarball against $dsc"
  rc=0; orig=$(verify_dsc "$dsc") || rc=$?
  [ $rc -ne 2 ] || { rm -f "$CACHE"/criu_*.orig.tar.*; fail "sha256 of the orig tarball does not match $dsc (removed it; run again)"; }
  [ $rc -eq 0 ] || fail "the orig tarball named in $dsc did not arrive (see $steplog)"
fi
version=$(sed -n 's/^Version: *//p' "$dsc" | head -n1)
upstream=${version%%-*}; upstream=${upstream#*:}
log "source criu $version ($(basename "$orig"), sha256 verified)"

# ---- 3. build dependencies (bookworm packages) ---------------------------------------------------
step="installing build dependencies"
missing=()
for p in "${BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing build dependencies: ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$steplog" 2>&1; then
    apt-get update -qq >>"$steplog" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$steplog" 2>&1
  fi
fi

# ---- 4. build in a scratch dir, install into a staging prefix, swap into place ------------------
step="unpacking $(basename "$orig")"
work=$(mktemp -d /var/tmp/ai-sandbox-criu-build.XXXXXX)
tar -C "$work" -xf "$orig"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
[ -n "$src" ] || fail "$(basename "$orig") holds no directory"
for p in "$PATCH_DIR"/*.patch; do
  [ -e "$p" ] || continue
  step="applying $(basename "$p")"
  patch -s -p1 -d "$src" < "$p" >>"$steplog" 2>&1
done

step="make criu lib (criu $upstream)"
log "building criu $upstream (make criu lib, -j$(nproc))"
# PREFIX is compiled into the binary (plugin dir), so build and install with the final prefix.
# RUNDIR is where criu keeps its kernel-feature cache (criu.kdat); criu only keeps it on a tmpfs, and
# /run is not one on every host: the helper mounts a tmpfs on /run/criu at start (~3x faster dumps).
mk=(make -C "$src" -j"$(nproc)" PREFIX="$PREFIX" RUNDIR=/run/criu SKIP_PIP_INSTALL=1 WERROR=0 "${BUILD_OPTS[@]}")
"${mk[@]}" criu lib >>"$steplog" 2>&1

step="make install into a staging dir"
stage="$work/stage"
"${mk[@]}" DESTDIR="$stage" install-criu install-lib >>"$steplog" 2>&1
[ -x "$stage$PREFIX/sbin/criu" ] || fail "make install did not produce $PREFIX/sbin/criu"
version_ok "$stage$PREFIX/sbin/criu" || fail "the built criu reports '$("$stage$PREFIX/sbin/criu" --version 2>&1 | head -n1)', not >= $MIN_MAJOR.$MIN_MINOR"

step="installing into $PREFIX"
mkdir -p "$(dirname "$PREFIX")"
rm -rf "$PREFIX.old"
[ -e "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
patches_hash > "$stage$PREFIX/.ai-sandbox-patches"
mv "$stage$PREFIX" "$PREFIX"
rm -rf "$PREFIX.old"
step=''
log "installed $("$PREFIX/sbin/criu" --version | head -n1) into $PREFIX in $(( $(date +%s) - start )) s"
