//! The `ManagedRoost` resource: spec and status types, lenient scalars and
//! the value parsers (Go durations, quantities) the rules use.

pub mod convert;
pub mod crd;
pub mod duration;
pub mod json_schema;
pub mod quantity;
pub mod roost_policy;
pub mod roost_policy_exception;
pub mod scalar;
pub mod schedule;
pub mod spec;
pub mod status;
pub mod strict;
pub mod v1beta1;
pub mod version;

pub use scalar::{DurationText, NumberText, QuantityText, Scalar};
pub use spec::*;
pub use status::*;
pub use version::ApiVersion;

/// API group of the resource.
pub const GROUP: &str = "roost.birb.party";
/// The hub's version: the shape the rules, defaults and typed model use.
pub const VERSION: &str = "v1alpha1";
/// The hub's `apiVersion` as written in manifests.
pub const API_VERSION: &str = "roost.birb.party/v1alpha1";
/// Kind of the resource.
pub const KIND: &str = "ManagedRoost";
/// Kind of the policy resource.
pub const POLICY_KIND: &str = "RoostPolicy";
/// Kind of the exception resource.
pub const EXCEPTION_KIND: &str = "RoostPolicyException";
