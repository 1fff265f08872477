//! Controller convergence at scale on the local control plane (see BENCHMARKS.md).
fn main() {}
