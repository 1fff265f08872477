//! The defaults of `roost-keeper serve`, written once: the command line's
//! flags show and use them (`cli`), [`ServeConfig::with_tls`] starts from
//! them (tests, benches, embedders), and the flag table in
//! `docs/serving.md` is generated from the flags. Durations are written as
//! the flags take them (Go durations) and read with [`duration`].
//!
//! [`ServeConfig::with_tls`]: super::ServeConfig::with_tls

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub use crate::admission::http::{
    DEFAULT_BODY_BUDGET_BYTES as BODY_BUDGET_BYTES, DEFAULT_REVIEW_TIMEOUT as REVIEW_TIMEOUT,
};
pub use crate::cache::VALIDATION_CACHE_BYTES;
pub use crate::lifecycle_api::{
    DEFAULT_MAX_STREAMS as LIFECYCLE_API_MAX_STREAMS,
    DEFAULT_MAX_STREAMS_PER_IDENTITY as LIFECYCLE_API_MAX_STREAMS_PER_IDENTITY,
};

/// Address both ports listen on: every interface.
pub const BIND_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
pub const WEBHOOK_PORT: u16 = 8443;
pub const METRICS_PORT: u16 = 8080;
pub const CERT_RELOAD_INTERVAL: &str = "2s";
pub const SHUTDOWN_DELAY: &str = "5s";
pub const SHUTDOWN_GRACE: &str = "25s";
pub const READ_TIMEOUT: &str = "10s";
pub const IDLE_TIMEOUT: &str = "60s";
pub const MAX_CONCURRENT_REVIEWS: usize = 256;
pub const MAX_CONNECTIONS: usize = 1024;
pub const MAX_CONNECTIONS_PER_PEER: usize = 512;

/// The Service a managed certificate names (also `certs generate`'s and
/// `webhook-config`'s default).
pub const SERVICE: &str = crate::api::crd::SERVICE_NAME;
/// Namespace of that Service (`webhook-config`, `crd`, `certs generate`).
pub const NAMESPACE: &str = crate::api::crd::SERVICE_NAMESPACE;
/// 90 days; a managed serving certificate is rotated at 2/3 of it.
pub const CERT_VALIDITY: &str = "2160h";
pub const CERT_CHECK_INTERVAL: &str = "30s";

/// `--reports`: the OpenReports API (Policy Reporter's and Kyverno's current one).
pub const REPORTS: &str = "openreports.io";

pub const LEADER_ELECTION_LEASE: &str = "roost-keeper-controller";
pub const LEASE_DURATION: &str = "15s";
pub const LEASE_RENEW_DEADLINE: &str = "10s";
pub const LEASE_RETRY_PERIOD: &str = "2s";

/// One of the duration defaults above as a [`Duration`].
///
/// # Panics
///
/// If `text` is not a non-negative Go duration (the unit tests read every one).
pub fn duration(text: &str) -> Duration {
    let parsed = crate::api::duration::parse_go_duration(text)
        .unwrap_or_else(|e| panic!("default {text:?} is not a duration: {e}"));
    Duration::from_nanos(u64::try_from(parsed.as_nanos()).expect("a default is not negative"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::leader::{
        DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD, LeaseConfig,
    };
    use crate::tls::secret::CertSecretConfig;

    #[test]
    fn every_duration_default_reads() {
        for text in [
            CERT_RELOAD_INTERVAL,
            SHUTDOWN_DELAY,
            SHUTDOWN_GRACE,
            READ_TIMEOUT,
            IDLE_TIMEOUT,
            REVIEW_TIMEOUT,
            CERT_VALIDITY,
            CERT_CHECK_INTERVAL,
            LEASE_DURATION,
            LEASE_RENEW_DEADLINE,
            LEASE_RETRY_PERIOD,
        ] {
            assert!(!duration(text).is_zero(), "{text}");
        }
    }

    /// The lease and certificate libraries keep their own defaults for
    /// callers that build them directly; they must be the flags'.
    #[test]
    fn library_defaults_are_the_flags() {
        assert_eq!(duration(LEASE_DURATION), DEFAULT_LEASE_DURATION);
        assert_eq!(duration(LEASE_RENEW_DEADLINE), DEFAULT_RENEW_DEADLINE);
        assert_eq!(duration(LEASE_RETRY_PERIOD), DEFAULT_RETRY_PERIOD);
        LeaseConfig::new("ns", LEADER_ELECTION_LEASE, "me")
            .validate()
            .unwrap();
        let secret = CertSecretConfig::new("ns/name", SERVICE, &[]).unwrap();
        assert_eq!(secret.validity, duration(CERT_VALIDITY));
        assert_eq!(secret.check_interval, duration(CERT_CHECK_INTERVAL));
    }
}
