#!/usr/bin/env bash
# Builds helm from the Go module proxy into <repo>/.cache/tools/helm-<key>/bin
# (go-tool.sh: the key, the cache, the lock). Skips the build when the binary
# is already there.
#
# The version is pinned by tests/tools/helm/go.mod (helm.sh/helm/v3: the major
# version most users run). It has its own module so its Kubernetes pins never
# move kubeconform's (tests/tools/go) or the control plane's (tests/cluster).
# Progress goes to stderr; the only stdout line is the bin directory, so
# callers can do: BIN="$(tests/tools/helm.sh | tail -n1)".
set -euo pipefail

# shellcheck source=go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
go_tool_prepare helm ">= 1.26.0"

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
log "done: $("$TMP/helm" version --short)"
go_tool_install
