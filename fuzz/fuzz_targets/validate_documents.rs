//! Any bytes as the stdin of `roost-keeper validate -`. Checks: fuzz/checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_validate_documents(data);
});
