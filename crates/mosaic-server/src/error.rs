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
    /// The store could not be read at start (the allow-list, the bans or
    /// the key schedules); see the store error.
    #[error("cannot read the store: {0}")]
    Store(#[from] mosaic_store::StoreError),
    /// The admin socket could not be bound; see the admin error.
    #[error("{0}")]
    Admin(#[from] crate::admin::AdminError),
    /// Accepting connections failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The result code a store failure is told to clients with: the one place
/// where store errors meet the wire. TEMPORARY_ERROR when trying again later
/// may work without an operator ([`StoreError::is_transient`]), else
/// PERSISTENT_ERROR. A failed durable write also turns writes off (see
/// `committer.rs`), whatever the code.
///
/// [`StoreError::is_transient`]: mosaic_store::StoreError::is_transient
pub(crate) fn store_code(e: &mosaic_store::StoreError) -> mosaic_core::ResultCode {
    if e.is_transient() {
        mosaic_core::ResultCode::TEMPORARY_ERROR
    } else {
        mosaic_core::ResultCode::PERSISTENT_ERROR
    }
}
