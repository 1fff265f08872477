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

    #[error("cannot serialize {what}: {message}")]
    Serialize { what: &'static str, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
