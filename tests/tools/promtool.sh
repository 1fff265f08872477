#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and rule unit-test runner) for
# tests/monitoring.rs into <repo>/.cache/tools/promtool-<key>/bin, where <key>
# is the first 16 hex digits of the sha256 of this script and
# tests/tools/promtool/go.sum. Skips the build when the binary is already there.
#
# The version is pinned by tests/tools/promtool/go.mod (Go module proxy only);
# it is a module of its own so its large dependency graph never moves the pins
# of tests/tools/go/. Progress goes to stderr; the only stdout line is the bin
# directory, so callers can do: BIN="$(tests/tools/promtool.sh | tail -n1)".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

log() { printf 'tests/tools/promtool.sh: %s\n' "$*" >&2; }

KEY="$(cat "$HERE/promtool.sh" "$HERE/promtool/go.sum" | sha256sum | cut -c1-16)"
DIR="$REPO_ROOT/.cache/tools/promtool-$KEY"
BIN="$DIR/bin"

if [[ -x "$BIN/promtool" ]]; then
  log "cached promtool found in $BIN"
  printf '%s\n' "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "error: 'go' (>= 1.26.7, Prometheus's minimum) is not on PATH"; exit 1; }

export GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$BIN"

# Serialise concurrent callers (e.g. parallel test binaries) on one lock.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DIR/.lock"
  log "waiting for build lock..."
  flock 9
  if [[ -x "$BIN/promtool" ]]; then
    log "cached promtool found in $BIN (built by another process)"
    printf '%s\n' "$BIN"
    exit 0
  fi
fi

# Build into a temp dir and move into place only on success, so an
# interrupted build never leaves a half-written binary in the cache.
TMP="$(mktemp -d "$DIR/tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# remove_all_sd drops the cloud service-discovery plugins (AWS, Azure, GCE...),
# which rule checking and rule unit tests never use, from a long cold build.
log "building promtool (cold: several minutes)..."
(
  cd "$HERE/promtool"
  version="$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"
  go build -trimpath -tags remove_all_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$version" \
    -o "$TMP/promtool" github.com/prometheus/prometheus/cmd/promtool
)

mv -f "$TMP/promtool" "$BIN/promtool"
log "done: $("$BIN/promtool" --version 2>&1 | head -n1)"
printf '%s\n' "$BIN"
