#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from source
# (Go module proxy only) into <repo>/.cache/cluster/<key>/bin, where <key> is
# the first 16 hex digits of the sha256 of this module's go.sum file(s).
# Builds only the binaries that are missing there (none when all four are).
#
# Progress goes to stderr; the only stdout line is the bin directory path, so
# callers can do: BIN="$(tests/cluster/build.sh | tail -n1)".
set -euo pipefail

K8S_VERSION=v1.36.3
K8S_MAJOR=1
K8S_MINOR=36

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

log() { printf 'tests/cluster/build.sh: %s\n' "$*" >&2; }

# go.sum files that define the build, in a fixed order (the etcd/ sub-module
# is optional and only exists if etcd ever needs its own pins).
SUMS=("$HERE/go.sum")
[[ -f "$HERE/etcd/go.sum" ]] && SUMS+=("$HERE/etcd/go.sum")
KEY="$(cat "${SUMS[@]}" | sha256sum | cut -c1-16)"
BIN="$REPO_ROOT/.cache/cluster/$KEY/bin"

BINARIES=(kube-apiserver kube-controller-manager kubectl etcd)

# The binaries not yet in $BIN, one per line.
missing() {
  local b
  for b in "${BINARIES[@]}"; do
    [[ -x "$BIN/$b" ]] || printf '%s\n' "$b"
  done
}

have_all() {
  [[ -z "$(missing)" ]]
}

if have_all; then
  log "cached binaries found in $BIN"
  printf '%s\n' "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "error: 'go' (>= 1.26.0) is not on PATH"; exit 1; }

export GOTOOLCHAIN=local CGO_ENABLED=0
GO_MINOR="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [[ ! "$GO_MINOR" =~ ^[0-9]+$ ]] || (( GO_MINOR < 26 )); then
  log "error: need go >= 1.26.0 (k8s.io/kubernetes $K8S_VERSION requires it), found $(go env GOVERSION)"
  exit 1
fi

mkdir -p "$REPO_ROOT/.cache/cluster/$KEY"

# Serialise concurrent callers (e.g. parallel test binaries) on one lock.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$REPO_ROOT/.cache/cluster/$KEY/.lock"
  log "waiting for build lock..."
  flock 9
  if have_all; then
    log "cached binaries found in $BIN (built by another process)"
    printf '%s\n' "$BIN"
    exit 0
  fi
fi

X=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  X="$X -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$K8S_MAJOR -X $p.gitMinor=$K8S_MINOR -X $p.gitTreeState=clean"
done

# Build into a temp dir and move into place only on success, so an
# interrupted build never leaves a half-written binary in the cache.
TMP="$(mktemp -d "$REPO_ROOT/.cache/cluster/$KEY/tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

cd "$HERE"
build() { # name ldflags package
  local name="$1" ldflags="$2" pkg="$3" start=$SECONDS
  log "building $name (first build takes 15-30 min; seconds with a warm Go build cache)..."
  go build -trimpath -ldflags "$ldflags" -o "$TMP/$name" "$pkg"
  log "built $name in $((SECONDS - start)) s"
}

mkdir -p "$BIN"
for name in $(missing); do
  case "$name" in
    etcd) build etcd "-s -w" go.etcd.io/etcd/server/v3 ;;
    *)    build "$name" "-s -w$X" "k8s.io/kubernetes/cmd/$name" ;;
  esac
  # Each binary moves into place as soon as it is built: an interrupted run
  # keeps the ones already done, and the next run builds only the rest.
  mv -f "$TMP/$name" "$BIN/$name"
done
log "done: $("$BIN/kube-apiserver" --version 2>&1 | head -n1), $("$BIN/kube-controller-manager" --version 2>&1 | head -n1), $("$BIN/etcd" --version 2>&1 | head -n1)"
printf '%s\n' "$BIN"
