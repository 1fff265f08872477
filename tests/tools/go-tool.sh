# Sourced by the scripts that build one Go tool from its own pinned module
# (helm.sh, promtool.sh): `go_tool_prepare NAME GO_HINT` caches the tool under
# <repo>/.cache/tools/NAME-<key>/bin, where <key> is the first 16 hex digits
# of the sha256 of the calling script, this file and tests/tools/NAME/go.sum.
# When the binary is there it prints the bin directory and exits; otherwise it
# checks for go, takes the build lock (parallel test binaries call the
# scripts too) and leaves HERE, BIN and TMP set for the build, which ends with
# `go_tool_install`. Progress goes to stderr; the only stdout line is the bin
# directory.

go_tool_prepare() {
  TOOL="$1"
  local go_hint="$2"
  HERE="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
  local repo_root key dir
  repo_root="$(cd "$HERE/../.." && pwd)"
  key="$(cat "${BASH_SOURCE[1]}" "${BASH_SOURCE[0]}" "$HERE/$TOOL/go.sum" | sha256sum | cut -c1-16)"
  dir="$repo_root/.cache/tools/$TOOL-$key"
  BIN="$dir/bin"
  go_tool_cached && exit 0
  command -v go >/dev/null 2>&1 || { log "error: 'go' ($go_hint) is not on PATH"; exit 1; }
  export GOTOOLCHAIN=local CGO_ENABLED=0
  mkdir -p "$BIN"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$dir/.lock"
    log "waiting for build lock..."
    flock 9
    go_tool_cached && exit 0
  fi
  # Build into a temp dir and move into place only on success, so an
  # interrupted build never leaves a half-written binary in the cache.
  TMP="$(mktemp -d "$dir/tmp.XXXXXX")"
  trap 'rm -rf "$TMP"' EXIT
}

go_tool_cached() {
  [[ -x "$BIN/$TOOL" ]] || return 1
  log "cached $TOOL found in $BIN"
  printf '%s\n' "$BIN"
}

log() { printf 'tests/tools/%s.sh: %s\n' "$TOOL" "$*" >&2; }

# Moves the built binary into the cache and prints the bin directory.
go_tool_install() {
  mv -f "$TMP/$TOOL" "$BIN/$TOOL"
  printf '%s\n' "$BIN"
}
