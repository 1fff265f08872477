#!/usr/bin/env bash
# Builds helm from the Go module proxy into <repo>/.cache/tools/helm-<key>/bin,
# where <key> is the first 16 hex digits of the sha256 of this script and
# tests/tools/helm/go.sum. Skips the build when the binary is already there.
#
# The version is pinned by tests/tools/helm/go.mod (helm.sh/helm/v3: the major
# version most users run). It has its own module so its Kubernetes pins never
# move kubeconform's (tests/tools/go) or the control plane's (tests/cluster).
# Progress goes to stderr; the only stdout line is the bin directory, so
# callers can do: BIN="$(tests/tools/helm.sh | tail -n1)".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

log() { printf 'tests/tools/helm.sh: %s\n' "$*" >&2; }

KEY="$(cat "$HERE/helm.sh" "$HERE/helm/go.sum" | sha256sum | cut -c1-16)"
DIR="$REPO_ROOT/.cache/tools/helm-$KEY"
BIN="$DIR/bin"

if [[ -x "$BIN/helm" ]]; then
  log "cached helm found in $BIN"
  printf '%s\n' "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "error: 'go' (>= 1.26.0) is not on PATH"; exit 1; }

export GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$DIR"

# Serialise concurrent callers (e.g. parallel test binaries) on one lock.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DIR/.lock"
  log "waiting for build lock..."
  flock 9
  if [[ -x "$BIN/helm" ]]; then
    log "cached helm found in $BIN (built by another process)"
    printf '%s\n' "$BIN"
    exit 0
  fi
fi

# Build into a temp dir and move into place only on success, so an
# interrupted build never leaves a half-written binary in the cache.
TMP="$(mktemp -d "$DIR/tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

cd "$HERE/helm"
version="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"
# The same ldflags as helm's Makefile: its version, and the Kubernetes version
# `helm template`/`helm lint` assume without a cluster (client-go's minor, 1.x).
k8s_minor="$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags="$ldflags -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
done
start=$SECONDS
log "building helm $version (a few minutes on 2 cores with a cold Go build cache)..."
go build -trimpath -ldflags "$ldflags" -o "$TMP/helm" helm.sh/helm/v3/cmd/helm
log "built helm in $((SECONDS - start)) s"

mkdir -p "$BIN"
mv -f "$TMP/helm" "$BIN/helm"
log "done: $("$BIN/helm" version --short)"
printf '%s\n' "$BIN"
