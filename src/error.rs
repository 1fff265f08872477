//! The library's error type. A denied object is not an error: it is a
//! [`crate::validation::ValidationResult`].
//!
//! Each variant says what failed and keeps the cause as its
//! [`std::error::Error::source`], never repeated in its own message: the
//! binary prints the whole chain (anyhow), and logs use [`ErrorChain`].

use std::path::PathBuf;

/// Any underlying error kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write output")]
    Write(#[from] std::io::Error),

    #[error("cannot write {path}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),

    /// Settings that cannot work together; there is no underlying error.
    #[error("configuration: {0}")]
    Config(String),

    #[error("no usable cluster config{}", at.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    ClusterConfig {
        at: Option<PathBuf>,
        #[source]
        source: BoxError,
    },

    /// Generating, reading or rotating a certificate; `source` is absent
    /// when the certificate itself is the problem (e.g. one that expired).
    #[error("certificate: {context}")]
    Certificate {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// Serving TLS: loading the key pair, or dialling our own listener.
    #[error("TLS: {context}")]
    Tls {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// A call to the Kubernetes API that failed.
    #[error("{context}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },

    #[error("cannot listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("telemetry: {context}")]
    Telemetry {
        context: &'static str,
        #[source]
        source: BoxError,
    },

    #[error("cannot serialize {what}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_norway::Error,
    },

    #[error("cannot serialize {what}")]
    SerializeJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn certificate(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Certificate {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    pub(crate) fn tls(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Tls {
            context: context.into(),
            source: Some(source.into()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line (`what failed: because: because`),
/// for logs and messages.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn causes_are_sources_and_reported_once_each() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Error::Read {
            path: "/etc/tls.crt".into(),
            source: io,
        };
        assert_eq!(err.to_string(), "cannot read /etc/tls.crt");
        assert_eq!(err.source().unwrap().to_string(), "no such file");
        assert_eq!(
            ErrorChain(&err).to_string(),
            "cannot read /etc/tls.crt: no such file"
        );
    }
}
