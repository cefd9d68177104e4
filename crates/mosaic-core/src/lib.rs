//! `mosaic-core`: every data format of the Mosaic protocol (spec 0.8.0) and
//! its cryptography, with no IO.
//!
//! This crate never touches a socket, a file, the clock or the environment:
//! time and randomness arrive as arguments. Everything above it (transports,
//! the store, the DHT, the server and the client) builds on these types.
//!
//! The central types:
//! - [`PublicKey`] and [`SecretKey`]: ed25519 identities and their human
//!   encodings (`mopub0`, `mosrv0`, `mosec0`).
//!
//! ```
//! use mosaic_core::{PublicKey, SecretKey, RECORD_CONTEXT};
//!
//! # fn main() -> Result<(), mosaic_core::Error> {
//! let secret = SecretKey::from_bytes(&[7u8; 32]);
//! let public: PublicKey = secret.public().to_printable().parse()?;
//! let signature = secret.sign(b"hello", RECORD_CONTEXT);
//! public.verify(b"hello", RECORD_CONTEXT, &signature)?;
//! # Ok(())
//! # }
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bootstrap;
mod crypto;
mod encrypted;
mod error;
mod keys;
pub mod printable;
mod url;

pub use bootstrap::{
    BootstrapError, ServerBootstrap, ServerUsage, UserBootstrap, UserBootstrapEntry,
};
pub use crypto::{
    CLIENT_AUTH_CONTEXT, RECORD_CONTEXT, SERVER_AUTH_CONTEXT, SignatureError, blake3_xof64,
};
pub use encrypted::{EncryptedKeyError, EncryptedSecretKey};
pub use error::Error;
pub use keys::{KeyError, PublicKey, SecretKey};
pub use url::{Host, Scheme, Url, UrlError};
