#!/usr/bin/env bash
# `roost-keeper validate` over many files of the typical object (the valid
# example, examples/web-valid.yaml, each copy with its own name): wall time
# and peak RSS, the median of RUNS runs, for each binary given (default: the
# release build). Figures go to BENCHMARKS.md ("Offline validation at scale").
#
#   cargo build --release && benches/cli_files.sh [BINARY...]
#   FILES=1000 RUNS=7 benches/cli_files.sh old-binary target/release/roost-keeper
set -euo pipefail

FILES="${FILES:-1000}"
RUNS="${RUNS:-7}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
BINARIES=("$@")
[[ ${#BINARIES[@]} -gt 0 ]] || BINARIES=("$TARGET_DIR/release/roost-keeper")

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/in"
for i in $(seq 1 "$FILES"); do
  sed "s/^  name: web$/  name: web-$i/" "$REPO_ROOT/examples/web-valid.yaml" > "$WORK/in/roost-$i.yaml"
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for binary in "${BINARIES[@]}"; do
  : > "$WORK/times"
  for _ in $(seq 1 "$RUNS"); do
    start="$(date +%s%N)"
    /usr/bin/time -f '%M' -o "$WORK/rss" "$binary" validate -f "$WORK/in" -o json > "$WORK/out" || true
    end="$(date +%s%N)"
    printf '%s %s\n' "$(( (end - start) / 1000000 ))" "$(cat "$WORK/rss")" >> "$WORK/times"
  done
  checked="$(grep -c '"valid": true' "$WORK/out" || true)"
  wall="$(cut -d' ' -f1 "$WORK/times" | median)"
  rss="$(cut -d' ' -f2 "$WORK/times" | median)"
  printf '%s: %s files (%s valid), median of %s runs: %s ms wall, %s MiB peak RSS\n' \
    "$binary" "$FILES" "$checked" "$RUNS" "$wall" "$((rss / 1024))"
done
