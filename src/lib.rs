//! roost-keeper: admission webhook, status controller and offline validator
//! for the `ManagedRoost` custom resource.
//!
//! The domain (types, defaults, validation) is pure and synchronous; the
//! command line, and later the admission server and the controller, call into it.

pub mod api;
pub mod cache;
pub mod cli;
pub mod crd;
pub mod defaults;
pub mod document;
pub mod error;
pub mod offline;
pub mod validation;

pub use error::{Error, Result};
