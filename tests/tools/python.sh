#!/usr/bin/env bash
# Installs, from the Python package index only, what the output-format tests
# validate against, into <repo>/.cache/tools/python/<key>, where <key> is the
# first 16 hex digits of the sha256 of this script and requirements.txt:
#   venv/            xmlschema and jsonschema (requirements.txt, pinned)
#   junit-10.xsd     the JUnit schema Jenkins and pytest check reports with,
#                    from pytest's source package
#   sarif-2.1.0.json the OASIS SARIF 2.1.0 JSON Schema, from sarif-pydantic's
#                    source package
# Skips the work when all are there. Progress goes to stderr; the only stdout
# line is the directory, so callers can do: DIR="$(tests/tools/python.sh | tail -n1)".
set -euo pipefail

PYTEST_VERSION=8.3.4
SARIF_PYDANTIC_VERSION=0.6.2

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
KEY="$(cat "$HERE/python.sh" "$HERE/requirements.txt" | sha256sum | cut -c1-16)"
DIR="$REPO_ROOT/.cache/tools/python/$KEY"

log() { printf 'tests/tools/python.sh: %s\n' "$*" >&2; }
have_all() {
  [[ -x "$DIR/venv/bin/python" && -s "$DIR/junit-10.xsd" && -s "$DIR/sarif-2.1.0.json" ]]
}

if have_all; then
  printf '%s\n' "$DIR"
  exit 0
fi
PYTHON="$(command -v python3 || true)"
[[ -n "$PYTHON" ]] || { log "error: python3 is not on PATH (the output-format tests need it)"; exit 1; }

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if have_all; then
  printf '%s\n' "$DIR"
  exit 0
fi

log "creating a venv with xmlschema and jsonschema in $DIR/venv"
"$PYTHON" -m venv "$DIR/venv"
"$DIR/venv/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
log "fetching the JUnit and SARIF schemas from source packages"
"$DIR/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  -d "$WORK" "pytest==$PYTEST_VERSION" "sarif-pydantic==$SARIF_PYDANTIC_VERSION" >&2
tar -xzf "$WORK/pytest-$PYTEST_VERSION.tar.gz" -C "$WORK" \
  "pytest-$PYTEST_VERSION/testing/example_scripts/junit-10.xsd"
tar -xzf "$WORK/sarif_pydantic-$SARIF_PYDANTIC_VERSION.tar.gz" -C "$WORK" \
  "sarif_pydantic-$SARIF_PYDANTIC_VERSION/sarif-schema-2.1.0.json"
cp "$WORK/pytest-$PYTEST_VERSION/testing/example_scripts/junit-10.xsd" "$DIR/junit-10.xsd.tmp"
cp "$WORK/sarif_pydantic-$SARIF_PYDANTIC_VERSION/sarif-schema-2.1.0.json" "$DIR/sarif-2.1.0.json.tmp"
mv "$DIR/junit-10.xsd.tmp" "$DIR/junit-10.xsd"
mv "$DIR/sarif-2.1.0.json.tmp" "$DIR/sarif-2.1.0.json"
log "ready in $DIR"
printf '%s\n' "$DIR"
