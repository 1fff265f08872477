#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and rule unit-test runner) for
# tests/monitoring.rs into <repo>/.cache/tools/promtool-<key>/bin (go-tool.sh:
# the key, the cache, the lock). Skips the build when the binary is already there.
#
# The version is pinned by tests/tools/promtool/go.mod (Go module proxy only);
# it is a module of its own so its large dependency graph never moves the pins
# of tests/tools/go/. Progress goes to stderr; the only stdout line is the bin
# directory, so callers can do: BIN="$(tests/tools/promtool.sh | tail -n1)".
set -euo pipefail

# shellcheck source=go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
go_tool_prepare promtool ">= 1.26.7, Prometheus's minimum"

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
log "done: $("$TMP/promtool" --version 2>&1 | head -n1)"
go_tool_install
