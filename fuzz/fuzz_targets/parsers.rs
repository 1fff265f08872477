//! Each input line through the scalar parsers (durations, quantities,
//! percentages, chart versions; cron has its own target). Checks:
//! fuzz/checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_parsers(data);
});
