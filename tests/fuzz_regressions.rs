//! Replays, on stable Rust, every input the fuzz targets found
//! (`fuzz/regressions/<target>/`) and every committed seed
//! (`fuzz/corpus/<target>/`) through the same checks as the fuzz targets
//! (`fuzz/checks.rs`, shared with `fuzz/fuzz_targets/*.rs`).
//!
//! Fuzzing itself needs nightly and cargo-fuzz: see `fuzz/run.sh`.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file under `fuzz/<kind>/<target>/`, sorted (none when the directory is absent).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` on every regression and seed of `target`; fails listing each
/// input that panicked, with its message.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let regressions = inputs("regressions", target);
    let seeds = inputs("corpus", target);
    assert!(
        !seeds.is_empty(),
        "no seed corpus in {}",
        fuzz_dir().join("corpus").join(target).display()
    );
    let mut failures = Vec::new();
    for path in regressions.iter().chain(&seeds) {
        let data = std::fs::read(path).expect("input is readable");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            let message: String = message.chars().take(1500).collect();
            failures.push(format!("{}:\n    {message}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs ({} regressions, {} seeds) fail:\n{}",
        failures.len(),
        regressions.len() + seeds.len(),
        regressions.len(),
        seeds.len(),
        failures.join("\n")
    );
}

#[test]
fn admission_review() {
    let harness = checks::AdmissionHarness::new();
    replay("admission_review", |data| {
        checks::check_admission_review(&harness, data)
    });
}

#[test]
fn validate_documents() {
    replay("validate_documents", checks::check_validate_documents);
}

#[test]
fn parsers() {
    replay("parsers", checks::check_parsers);
}

#[test]
fn cron() {
    replay("cron", checks::check_cron_lines);
}

#[test]
fn defaults_idempotent() {
    replay("defaults_idempotent", checks::check_defaults_idempotent);
}

#[test]
fn reply_bounds_stay_near_one_mebibyte() {
    // The bound the admission target asserts for the validating webhook is
    // derived from the finding caps; it must stay a meaningful bound.
    let bound = checks::validate_reply_bound();
    assert!(bound < 1_200_000, "validate reply bound {bound}");
    assert!(checks::mutate_reply_bound(checks::MAX_INPUT_LEN) < 1_200_000);
}

#[test]
fn go_duration_reference_agrees_with_go() {
    // Cases from Go's time_test.go (parseDurationTests, parseDurationErrorTests):
    // the reference the parsers target compares parse_go_duration with must
    // itself give Go's answers.
    const S: i64 = 1_000_000_000;
    const MS: i64 = 1_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;
    let ok: &[(&str, i64)] = &[
        ("0", 0),
        ("5s", 5 * S),
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0", 0),
        ("+0", 0),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.004s", S + 4 * MS),
        ("100.00100s", 100 * S + MS),
        ("12µs", 12_000),
        ("12μs", 12_000),
        ("10.5s4m", 4 * M + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
        ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5_000 + 6),
        ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
        ("52763797000ns", 52_763_797_000),
        ("0.3333333333333333333h", 20 * M),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", i64::MAX),
        ("9223372036854775.807us", i64::MAX),
        ("9223372036854.775807ms", i64::MAX),
        ("-9223372036854775808ns", i64::MIN),
        ("-9223372036854775.808us", i64::MIN),
        ("-9223372036854.775808ms", i64::MIN),
        ("-2562047h47m16.854775808s", i64::MIN),
        ("0.100000000000000000000h", 6 * M),
        ("0.830103483285477580700h", 49 * M + 48 * S + 372_539_827),
    ];
    for (text, nanos) in ok {
        assert_eq!(checks::go_parse_duration(text), Some(*nanos), "{text}");
    }
    for bad in [
        "",
        "3",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "1d",
        "\u{85}\u{85}",
        "9223372036854775810ns",
        "9223372036854775808ns",
        "-9223372036854775809ns",
        "9223372036854776us",
        "3000000h",
        "9223372036854775.808us",
        "9223372036854.775808ms",
    ] {
        assert_eq!(checks::go_parse_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn conversion() {
    replay("conversion", checks::check_conversion);
}
