#!/usr/bin/env bash
# Re-fetches the report CRDs listed in ORIGIN.md (next to this script) from
# their Go modules with `go mod download`, checks each file's sha256 against
# the table there and, only when every one matches, copies them here.
# Exits non-zero, changing nothing, on any difference.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf 'tests/cluster/crds/refresh.sh: %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "error: 'go' is not on PATH"; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# `go mod download module@version` wants a main module to run in.
printf 'module roost-keeper.invalid/crd-refresh\n\ngo 1.26.0\n' >"$WORK/go.mod"

# The table rows: | file | module | version | path in the module | sha256 |
rows="$(grep -E '^\| [^ ]+\.yaml \|' "$HERE/ORIGIN.md")"
[[ -n "$rows" ]] || { log "error: no rows in ORIGIN.md"; exit 1; }

failed=0
while IFS='|' read -r _ file module version path sha _; do
  file="$(echo $file)" module="$(echo $module)" version="$(echo $version)"
  path="$(echo $path)" sha="$(echo $sha)"
  dir="$(cd "$WORK" && go mod download -json "$module@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -z "$dir" || ! -f "$dir/$path" ]]; then
    log "error: $module@$version has no $path"
    failed=1
    continue
  fi
  got="$(sha256sum "$dir/$path" | cut -d' ' -f1)"
  if [[ "$got" != "$sha" ]]; then
    log "error: $module@$version $path: sha256 $got, ORIGIN.md records $sha"
    failed=1
    continue
  fi
  cp "$dir/$path" "$WORK/$file"
  log "ok: $file = $module@$version $path ($got)"
done <<<"$rows"

if (( failed )); then
  log "nothing changed"
  exit 1
fi
while IFS='|' read -r _ file _; do
  file="$(echo $file)"
  install -m 0644 "$WORK/$file" "$HERE/$file"
done <<<"$rows"
log "all files match ORIGIN.md"
