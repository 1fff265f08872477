//! The library's error type. A denied object is not an error: it is a
//! [`crate::validation::ValidationResult`].

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write output: {0}")]
    Write(#[from] std::io::Error),

    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),

    #[error("configuration: {0}")]
    Config(String),

    #[error("certificate: {0}")]
    Certificate(String),

    #[error("TLS: {0}")]
    Tls(String),

    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("telemetry: {0}")]
    Telemetry(String),

    #[error("cannot serialize {what}: {message}")]
    Serialize { what: &'static str, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
