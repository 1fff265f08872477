#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS_PER_TARGET each, one
# after the other (a single libFuzzer process at a time), and prints each
# target's executions, exec/s, coverage (cov, ft), corpus entries and crashes.
#
#   fuzz/run.sh SECONDS_PER_TARGET [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz --locked).
# The committed seeds in fuzz/corpus/<target>/ are only read; what the fuzzer
# finds goes to fuzz/work/corpus/<target>/ (ignored by git), crashes to
# fuzz/artifacts/<target>/. Logs: fuzz/work/logs/<target>.log.
# Environment: FUZZ_NICE (default 10), FUZZ_CARGO_FLAGS (extra `cargo fuzz
# run` flags, e.g. "--sanitizer none"), FUZZ_LIBFUZZER_FLAGS (extra libFuzzer
# flags). Exit status: 0, or 1 when a target crashed or failed to run.
set -uo pipefail

usage() {
    echo "usage: $0 SECONDS_PER_TARGET [TARGET...]" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift

cd "$(dirname "$0")"
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "no fuzz targets found" >&2; exit 1; }

mkdir -p work/logs
# shellcheck disable=SC2206
cargo_flags=(${FUZZ_CARGO_FLAGS:-})
# shellcheck disable=SC2206
extra_flags=(${FUZZ_LIBFUZZER_FLAGS:-})

# Build everything first, so that the time budget is spent fuzzing.
nice -n "${FUZZ_NICE:-10}" cargo +nightly fuzz build "${cargo_flags[@]}" || exit 1

summary=()
status=0
for target in "${targets[@]}"; do
    mkdir -p "work/corpus/$target" "corpus/$target"
    log="work/logs/$target.log"
    echo "== $target: ${seconds}s (log: fuzz/$log)"
    started=$(date +%s)
    nice -n "${FUZZ_NICE:-10}" cargo +nightly fuzz run "${cargo_flags[@]}" "$target" \
        "work/corpus/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        -print_final_stats=1 "${extra_flags[@]}" >"$log" 2>&1
    rc=$?
    elapsed=$(($(date +%s) - started))
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9A-Za-z]+).*/\1/p' <<<"$last")
    crashes=$(find "artifacts/$target" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) \
        -newermt "@$started" 2>/dev/null | wc -l)
    line=$(printf '%-20s rc=%-3s time=%5ss execs=%-10s exec/s=%-7s cov=%-6s ft=%-7s corpus=%-12s rss_mb=%-5s new_crashes=%s' \
        "$target" "$rc" "$elapsed" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$crashes")
    echo "$line"
    summary+=("$line")
    if [[ $rc -ne 0 ]]; then
        status=1
        grep -m1 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/   /'
        grep -E '^(artifact_prefix|Test unit written to)' "$log" | sed 's/^/   /'
    fi
done

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$status"
