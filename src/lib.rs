//! roost-keeper: admission webhook, status controller and offline validator
//! for the `ManagedRoost` custom resource.
//!
//! The domain (types, defaults, validation) is pure and synchronous; the
//! command line, the admission server (and later the controller) call into it.

#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod cache;
pub mod cli;
pub mod connection;
pub mod controller;
pub mod defaults;
pub mod engine;
pub mod error;
pub mod explain;
pub mod files;
pub mod lifecycle_api;
pub mod metrics;
pub mod offline;
pub mod policy;
pub mod report;
pub mod server;
pub mod telemetry;
pub mod text;
pub mod tls;
pub mod validation;
pub mod yaml;

pub use error::{Error, Result};
