//! The crate's error type.

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid; fix the named field.
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// The listening socket could not be opened: is the port in use, or
    /// below 1024 without privileges?
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Accepting connections failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
