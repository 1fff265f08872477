//! Each input line through the cron parser (src/api/schedule.rs): a target
//! of its own because the cron library's parser is slow. Checks:
//! fuzz/checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_cron_lines(data);
});
