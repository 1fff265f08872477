//! Any JSON object as a ManagedRoost of either version through the
//! conversion both ways: never fails on a served object, keeps every
//! schema-accepted object schema-accepted and converts it back unchanged.
//! Checks: fuzz/checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    checks::check_conversion(data);
});
