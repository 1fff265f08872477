//! Any JSON through `apply_defaults` twice: idempotent, and its patch turns
//! the input into the output. Checks: fuzz/checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_defaults_idempotent(data);
});
