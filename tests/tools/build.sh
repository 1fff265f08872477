#!/usr/bin/env bash
# Builds the tools the schema and output-format tests run into
# <repo>/.cache/tools/<key>, where <key> is the first 16 hex digits of the
# sha256 of this script, tests/tools/go/go.sum and tests/tools/requirements.txt:
#   bin/kubeconform           (Go module proxy)
#   bin/python3               a venv with jsonschema and xmlschema (PyPI)
#   schemas/junit-10.xsd      the JUnit schema Jenkins and pytest check reports
#                             with, from pytest's source package (PyPI)
#   schemas/sarif-2.1.0.json  the OASIS SARIF 2.1.0 JSON Schema, from
#                             sarif-pydantic's source package (PyPI)
# Skips the build when everything is already there.
#
# Versions are pinned by tests/tools/go/go.mod (Go module proxy only) and
# tests/tools/requirements.txt. Progress goes to stderr; the only stdout line
# is the bin directory, so callers can do: BIN="$(tests/tools/build.sh | tail -n1)".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

log() { printf 'tests/tools/build.sh: %s\n' "$*" >&2; }

PYTEST_VERSION=8.3.4
SARIF_PYDANTIC_VERSION=0.6.2

KEY="$(cat "$HERE/build.sh" "$HERE/go/go.sum" "$HERE/requirements.txt" | sha256sum | cut -c1-16)"
DIR="$REPO_ROOT/.cache/tools/$KEY"
BIN="$DIR/bin"

have_all() {
  [[ -x "$BIN/kubeconform" && -x "$BIN/python3" && -f "$DIR/.python-ready" \
    && -s "$DIR/schemas/junit-10.xsd" && -s "$DIR/schemas/sarif-2.1.0.json" ]]
}

if have_all; then
  log "cached tools found in $BIN"
  printf '%s\n' "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || { log "error: 'go' (>= 1.24) is not on PATH"; exit 1; }
command -v python3 >/dev/null 2>&1 || { log "error: 'python3' (>= 3.9, with venv) is not on PATH"; exit 1; }

export GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$DIR"

# Serialise concurrent callers (e.g. parallel test binaries) on one lock.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DIR/.lock"
  log "waiting for build lock..."
  flock 9
  if have_all; then
    log "cached tools found in $BIN (built by another process)"
    printf '%s\n' "$BIN"
    exit 0
  fi
fi

# Build into a temp dir and move into place only on success, so an
# interrupted build never leaves a half-written binary in the cache.
TMP="$(mktemp -d "$DIR/tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

log "building kubeconform..."
(
  cd "$HERE/go"
  version="$(go list -m -f '{{.Version}}' github.com/yannh/kubeconform)"
  go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$TMP/kubeconform" github.com/yannh/kubeconform/cmd/kubeconform
)

# The venv lives at $DIR itself, so its python3 lands in $BIN beside kubeconform.
log "creating the Python venv (jsonschema, xmlschema)..."
python3 -m venv "$DIR"
"$BIN/python3" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"

log "fetching the JUnit XSD and the SARIF schema from source packages..."
"$BIN/python3" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  -d "$TMP" "pytest==$PYTEST_VERSION" "sarif-pydantic==$SARIF_PYDANTIC_VERSION"
junit="pytest-$PYTEST_VERSION/testing/example_scripts/junit-10.xsd"
sarif="sarif_pydantic-$SARIF_PYDANTIC_VERSION/sarif-schema-2.1.0.json"
tar -xzf "$TMP/pytest-$PYTEST_VERSION.tar.gz" -C "$TMP" "$junit"
tar -xzf "$TMP/sarif_pydantic-$SARIF_PYDANTIC_VERSION.tar.gz" -C "$TMP" "$sarif"
mkdir -p "$DIR/schemas"
mv -f "$TMP/$junit" "$DIR/schemas/junit-10.xsd"
mv -f "$TMP/$sarif" "$DIR/schemas/sarif-2.1.0.json"

mv -f "$TMP/kubeconform" "$BIN/kubeconform"
touch "$DIR/.python-ready"
log "done: kubeconform $("$BIN/kubeconform" -v 2>&1 | head -n1), $("$BIN/python3" -c 'import jsonschema; print("jsonschema", jsonschema.__version__)' 2>/dev/null || echo jsonschema)"
printf '%s\n' "$BIN"
