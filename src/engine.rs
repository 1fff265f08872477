//! The rules and the policies a process judges ManagedRoosts with: the
//! webhooks and the controller share one [`Engine`], so their verdicts agree.

use crate::policy::live::LivePolicies;
use crate::validation::Registry;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Engine {
    /// The compiled-in rules (and an embedder's own).
    pub registry: Arc<Registry>,
    /// The RoostPolicies in force.
    pub policies: Arc<LivePolicies>,
}

impl Engine {
    pub fn new(registry: Arc<Registry>) -> Self {
        Engine {
            registry,
            policies: Arc::default(),
        }
    }
}

impl Default for Engine {
    /// The built-in rules, no policies.
    fn default() -> Self {
        Engine::new(Arc::new(Registry::builtin()))
    }
}
