//! AdmissionReview bodies through both webhooks; differential against the
//! offline validator for ManagedRoost CREATEs. Checks: fuzz/checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static HARNESS: OnceLock<checks::AdmissionHarness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(checks::AdmissionHarness::new);
    checks::check_admission_review(harness, data);
});
