//! Load run against `roost-keeper serve` over TLS (see BENCHMARKS.md).
fn main() {}
