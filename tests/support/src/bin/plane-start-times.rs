//! The figures of tests/cluster/README.md ("kube-controller-manager"):
//! `cargo run --release -p roost-testcluster --bin plane-start-times`.
//! Planes one after another, so they do not compete.

use roost_testcluster::ControlPlane;
use std::time::Instant;

fn main() -> Result<(), String> {
    for round in 1..=5 {
        let started = Instant::now();
        let bare = ControlPlane::start_without_controller_manager()?;
        let bare_start = started.elapsed();
        drop(bare);
        let started = Instant::now();
        let plane = ControlPlane::start()?;
        let start = started.elapsed();
        let started = Instant::now();
        plane.wait_for_controllers()?;
        let controllers = started.elapsed();
        let started = Instant::now();
        plane.wait_for_controllers()?;
        let again = started.elapsed();
        println!(
            "round {round}: start() without controller manager {bare_start:.2?}, with {start:.2?}; \
             controller manager started to all three controllers seen working {controllers:.2?}; \
             wait_for_controllers again {again:.2?}"
        );
    }
    Ok(())
}
