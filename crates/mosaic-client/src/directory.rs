//! Where the client learns which servers a user uses and where a server is:
//! the [`Directory`] trait, the [`ServerAddress`]es it yields, and
//! [`StaticDirectory`], an in-memory directory.
//!
//! In the protocol, both answers come from bootstraps in the Mainline DHT:
//! [`DhtDirectory`] asks `mosaic-dht` (through its cache); [`StaticDirectory`]
//! serves tests and users who configure servers by hand.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use mosaic_core::{PublicKey, ServerBootstrap, Url, UserBootstrap};

use crate::ClientError;

/// The future a [`Directory`] method returns: boxed, so that the trait is
/// object safe and a client holds any directory as `Arc<dyn Directory>`.
pub type DirectoryFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClientError>> + Send + 'a>>;

/// A source of bootstraps.
///
/// The methods return boxed futures ([`DirectoryFuture`]) rather than being
/// `async fn`s, so that the trait is object safe. An implementation writes
/// `Box::pin(async move { ... })`. `Ok(None)` means "no bootstrap is
/// published"; `Err` means the lookup itself failed (wrap the cause in
/// [`ClientError::Directory`]). Caching is the directory's business: the
/// client asks it every time it needs an answer.
pub trait Directory: Send + Sync {
    /// The user bootstrap of `user` (which servers they use, and how).
    fn user_bootstrap<'a>(
        &'a self,
        user: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<UserBootstrap>>;

    /// The server bootstrap of `server` (its URLs, most preferred first).
    fn server_bootstrap<'a>(
        &'a self,
        server: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<ServerBootstrap>>;

    /// The addresses to try for `server`, in order. The default lists the
    /// URLs of its server bootstrap; a directory may add addresses that are
    /// not Mosaic URLs (such as `ws://127.0.0.1:port/` for a loopback
    /// server), as [`StaticDirectory`] does.
    fn server_addresses<'a>(
        &'a self,
        server: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<Vec<ServerAddress>>> {
        Box::pin(async move {
            Ok(self
                .server_bootstrap(server)
                .await?
                .map(|b| b.urls().iter().cloned().map(ServerAddress::Url).collect()))
        })
    }
}

/// An address the client can connect to.
///
/// Bootstraps hold Mosaic URLs (`mosaic://`, `mosaictcp://`,
/// `mosaicwss://`); only WebSocket is implemented, so the client connects to
/// `mosaicwss` URLs and skips the others (with a recorded reason). Plain
/// WebSocket addresses (`ws://host:port/`, `wss://host:port/`) are not Mosaic
/// URLs, but a client may be pointed at one by hand: a server on loopback or
/// behind a reverse proxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddress {
    /// A Mosaic URL, as found in server bootstraps.
    Url(Url),
    /// A `ws://` or `wss://` address.
    WebSocket(String),
}

impl ServerAddress {
    /// Reads an address: `ws://...` and `wss://...` as they are, anything
    /// else as a Mosaic URL.
    pub fn parse(text: &str) -> Result<ServerAddress, ClientError> {
        if text.starts_with("ws://") || text.starts_with("wss://") {
            return Ok(ServerAddress::WebSocket(text.to_owned()));
        }
        Url::parse(text)
            .map(ServerAddress::Url)
            .map_err(|problem| ClientError::BadAddress {
                address: text.to_owned(),
                problem,
            })
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Url(url) => write!(f, "{url}"),
            ServerAddress::WebSocket(address) => f.write_str(address),
        }
    }
}

impl From<Url> for ServerAddress {
    fn from(url: Url) -> ServerAddress {
        ServerAddress::Url(url)
    }
}

/// An in-memory [`Directory`]: user bootstraps and server addresses set by
/// hand. It can be changed while a client uses it (a server that moved, a
/// user who changed servers).
///
/// ```
/// use mosaic_client::{ServerAddress, StaticDirectory};
/// use mosaic_core::{SecretKey, ServerUsage, UserBootstrap, UserBootstrapEntry};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = SecretKey::from_bytes(&[1; 32]).public();
/// let user = SecretKey::from_bytes(&[2; 32]).public();
/// let directory = StaticDirectory::new();
/// directory.set_server_addresses(server, vec![ServerAddress::parse("ws://127.0.0.1:8135/")?]);
/// directory.set_user(
///     user,
///     UserBootstrap::new(vec![UserBootstrapEntry { usage: ServerUsage::ALL, server }])?,
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct StaticDirectory {
    users: Mutex<HashMap<PublicKey, UserBootstrap>>,
    servers: Mutex<HashMap<PublicKey, Vec<ServerAddress>>>,
}

impl StaticDirectory {
    /// An empty directory.
    pub fn new() -> StaticDirectory {
        StaticDirectory::default()
    }

    /// Sets (or replaces) the bootstrap of `user`.
    pub fn set_user(&self, user: PublicKey, bootstrap: UserBootstrap) {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user, bootstrap);
    }

    /// Forgets the bootstrap of `user`.
    pub fn remove_user(&self, user: &PublicKey) {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user);
    }

    /// Sets (or replaces) the addresses of `server`, most preferred first.
    pub fn set_server_addresses(&self, server: PublicKey, addresses: Vec<ServerAddress>) {
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(server, addresses);
    }

    /// Sets (or replaces) the addresses of `server` from its bootstrap.
    pub fn set_server(&self, server: PublicKey, bootstrap: &ServerBootstrap) {
        let addresses = bootstrap
            .urls()
            .iter()
            .cloned()
            .map(ServerAddress::Url)
            .collect();
        self.set_server_addresses(server, addresses);
    }

    fn addresses(&self, server: &PublicKey) -> Option<Vec<ServerAddress>> {
        self.servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(server)
            .cloned()
    }
}

impl Directory for StaticDirectory {
    fn user_bootstrap<'a>(
        &'a self,
        user: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<UserBootstrap>> {
        let found = self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    /// The Mosaic URLs set for `server` as a bootstrap (`None` when it has
    /// only `ws://` addresses, which a bootstrap cannot hold).
    fn server_bootstrap<'a>(
        &'a self,
        server: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<ServerBootstrap>> {
        let urls: Vec<Url> = self
            .addresses(server)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| match a {
                ServerAddress::Url(url) => Some(url),
                ServerAddress::WebSocket(_) => None,
            })
            .collect();
        Box::pin(async move {
            if urls.is_empty() {
                return Ok(None);
            }
            Ok(ServerBootstrap::new(urls).ok())
        })
    }

    fn server_addresses<'a>(
        &'a self,
        server: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<Vec<ServerAddress>>> {
        let found = self.addresses(server);
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{SecretKey, ServerUsage, UserBootstrapEntry};

    fn key(n: u8) -> PublicKey {
        SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(
            ServerAddress::parse("ws://127.0.0.1:9/").unwrap(),
            ServerAddress::WebSocket("ws://127.0.0.1:9/".into())
        );
        let url = ServerAddress::parse("mosaicwss://example.com/").unwrap();
        assert!(matches!(&url, ServerAddress::Url(u) if u.port() == 443));
        assert_eq!(url.to_string(), "mosaicwss://example.com/");
        assert!(matches!(
            ServerAddress::parse("http://example.com/"),
            Err(ClientError::BadAddress { .. })
        ));
    }

    #[tokio::test]
    async fn static_directory_answers_and_changes() {
        let dir = StaticDirectory::new();
        let (user, server) = (key(1), key(2));
        assert!(dir.user_bootstrap(&user).await.unwrap().is_none());
        assert!(dir.server_addresses(&server).await.unwrap().is_none());

        let bootstrap = UserBootstrap::new(vec![UserBootstrapEntry {
            usage: ServerUsage::OUTBOX,
            server,
        }])
        .unwrap();
        dir.set_user(user, bootstrap.clone());
        assert_eq!(dir.user_bootstrap(&user).await.unwrap(), Some(bootstrap));
        dir.remove_user(&user);
        assert!(dir.user_bootstrap(&user).await.unwrap().is_none());

        // Loopback addresses are served, but a bootstrap holds only URLs.
        let ws = ServerAddress::parse("ws://127.0.0.1:9/").unwrap();
        dir.set_server_addresses(server, vec![ws.clone()]);
        assert_eq!(
            dir.server_addresses(&server).await.unwrap(),
            Some(vec![ws.clone()])
        );
        assert!(dir.server_bootstrap(&server).await.unwrap().is_none());

        let url = Url::parse("mosaicwss://example.com/").unwrap();
        dir.set_server_addresses(server, vec![ws.clone(), ServerAddress::Url(url.clone())]);
        let b = dir.server_bootstrap(&server).await.unwrap().unwrap();
        assert_eq!(b.urls(), std::slice::from_ref(&url));

        // The default `server_addresses` follows the bootstrap.
        struct OnlyBootstraps(ServerBootstrap);
        impl Directory for OnlyBootstraps {
            fn user_bootstrap<'a>(
                &'a self,
                _: &'a PublicKey,
            ) -> DirectoryFuture<'a, Option<UserBootstrap>> {
                Box::pin(async { Ok(None) })
            }
            fn server_bootstrap<'a>(
                &'a self,
                _: &'a PublicKey,
            ) -> DirectoryFuture<'a, Option<ServerBootstrap>> {
                Box::pin(async move { Ok(Some(self.0.clone())) })
            }
        }
        let only = OnlyBootstraps(b);
        assert_eq!(
            only.server_addresses(&server).await.unwrap(),
            Some(vec![ServerAddress::Url(url)])
        );
    }
}

/// A directory backed by the Mainline DHT, through a `mosaic-dht`
/// [`Resolver`](mosaic_dht::Resolver) and its cache (fresh for 30 minutes,
/// stale answers served when the DHT does not answer).
#[derive(Clone)]
pub struct DhtDirectory {
    resolver: mosaic_dht::Resolver,
}

impl DhtDirectory {
    /// Looks bootstraps up through `resolver`.
    pub fn new(resolver: mosaic_dht::Resolver) -> DhtDirectory {
        DhtDirectory { resolver }
    }

    /// The resolver (to save its cache, say).
    pub fn resolver(&self) -> &mosaic_dht::Resolver {
        &self.resolver
    }
}

impl fmt::Debug for DhtDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DhtDirectory")
    }
}

impl Directory for DhtDirectory {
    fn user_bootstrap<'a>(
        &'a self,
        user: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<UserBootstrap>> {
        Box::pin(async move {
            self.resolver
                .resolve_user(user)
                .await
                .map(|found| found.map(|r| r.value))
                .map_err(|e| ClientError::Directory(Box::new(e)))
        })
    }

    fn server_bootstrap<'a>(
        &'a self,
        server: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<ServerBootstrap>> {
        Box::pin(async move {
            self.resolver
                .resolve_server(server)
                .await
                .map(|found| found.map(|r| r.value))
                .map_err(|e| ClientError::Directory(Box::new(e)))
        })
    }
}
