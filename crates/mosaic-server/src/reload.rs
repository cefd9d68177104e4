//! [`Reloader`]: puts a new configuration in force while the server runs.
//!
//! What a reload changes at once: every limit read per decision (query
//! limits, filter sizes, submission rates, connection counts, BLOB size),
//! `allow_open_queries`, the roles, the allow-list and the bans (read from
//! the store again; the live connections a ban names are closed), and the
//! TLS certificate for new connections. What it cannot change:
//!
//! - `listen`: the socket is bound once; a reload that changes it is
//!   refused ([`ReloadError::Fixed`]), since silently keeping the old
//!   address would leave the operator believing the server moved;
//! - plain `ws` versus `wss`: also refused;
//! - the settings fixed when the server was bound ([`KEPT_UNTIL_RESTART`]):
//!   the old values are kept, a warning names each one, and
//!   [`ReloadReport::kept_until_restart`] lists them.
//!
//! A refused reload changes nothing. Connections are never dropped by a
//! reload.

use std::sync::{Arc, Weak};

use mosaic_net::ServerTls;
use tracing::{info, warn};

use crate::admin;
use crate::config::{ConfigError, ServerConfig};
use crate::server::Shared;

/// The settings read once, when the server is bound: a reload keeps their
/// old values (and says so); a restart applies them.
pub const KEPT_UNTIL_RESTART: &[&str] = &[
    "public_url",
    "metrics_listen",
    "limits.max_commit_batch",
    "limits.submission_bytes_in_flight",
    "limits.dht_lookups_in_flight",
];

/// Why a reload was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The new configuration is invalid; fix the named field.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A setting that cannot change while the server runs was changed;
    /// put it back, or restart the server to apply it.
    #[error(
        "{field} cannot change while the server runs ({reason}); restore it, or restart the server"
    )]
    Fixed {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The allow-list and the bans could not be read from the store.
    #[error("cannot read the allow-list and the bans: {0}")]
    Store(#[from] mosaic_store::StoreError),
    /// The server has stopped.
    #[error("the server has stopped")]
    Stopped,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Settings that differed but keep their old values until a restart
    /// (from [`KEPT_UNTIL_RESTART`]).
    pub kept_until_restart: Vec<&'static str>,
    /// Live connections closed because the bans read again name them.
    pub closed: usize,
    /// Whether a new TLS certificate is in force for new connections.
    pub tls_replaced: bool,
}

/// Reloads a running server's configuration. Cheap to clone; it does not
/// keep the server alive.
#[derive(Clone)]
pub struct Reloader(Weak<Shared>);

impl Reloader {
    pub(crate) fn new(shared: &Arc<Shared>) -> Reloader {
        Reloader(Arc::downgrade(shared))
    }

    /// Checks `config` (and `tls`, the certificate to serve new connections
    /// with, when the server serves `wss`; `None` keeps the current one),
    /// then puts it in force: the limits, `allow_open_queries`, the roles,
    /// and the allow-list and bans read again from the store. Refused, with
    /// nothing changed, when `config` is invalid, changes `listen`, or
    /// gives a certificate to a server without TLS. See the module docs
    /// for the settings kept until a restart.
    pub async fn reload(
        &self,
        config: ServerConfig,
        tls: Option<ServerTls>,
    ) -> Result<ReloadReport, ReloadError> {
        let shared = self.0.upgrade().ok_or(ReloadError::Stopped)?;
        config.validate()?;
        let current = shared.config();
        if config.listen != current.listen {
            return Err(ReloadError::Fixed {
                field: "listen",
                reason: "the listening socket is bound once",
            });
        }
        if tls.is_some() && shared.tls.is_none() {
            return Err(ReloadError::Fixed {
                field: "TLS",
                reason: "a server started with plain ws cannot switch to wss",
            });
        }
        let (config, kept) = keep_fixed(config, &current);
        // The one step that can fail comes first: when it does, nothing
        // has changed.
        let again = shared.clone();
        tokio::task::spawn_blocking(move || again.policy.reload_moderation(&again.store))
            .await
            .map_err(|_| ReloadError::Stopped)??;
        for field in &kept {
            warn!(
                field,
                "this setting changed but keeps its old value until the server restarts"
            );
        }
        shared.policy.set_roles(config.roles);
        let tls_replaced = match (&shared.tls, tls) {
            (Some(current), Some(new)) => {
                current.replace(&new);
                true
            }
            _ => false,
        };
        shared.set_config(config);
        let closed = admin::enforce_bans(&shared);
        info!(
            kept_until_restart = kept.len(),
            closed, tls_replaced, "configuration reloaded"
        );
        Ok(ReloadReport {
            kept_until_restart: kept,
            closed,
            tls_replaced,
        })
    }
}

/// `new` with the settings fixed at bind time taken from `current`, and the
/// names of those that differed.
fn keep_fixed(mut new: ServerConfig, current: &ServerConfig) -> (ServerConfig, Vec<&'static str>) {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($path:ident).+, $name:literal) => {
            if new.$($path).+ != current.$($path).+ {
                new.$($path).+ = current.$($path).+.clone();
                kept.push($name);
            }
        };
    }
    keep!(public_url, "public_url");
    keep!(metrics_listen, "metrics_listen");
    keep!(limits.max_commit_batch, "limits.max_commit_batch");
    keep!(
        limits.submission_bytes_in_flight,
        "limits.submission_bytes_in_flight"
    );
    keep!(limits.dht_lookups_in_flight, "limits.dht_lookups_in_flight");
    (new, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_settings_are_kept_and_named() {
        let current = ServerConfig::default();
        let mut new = current.clone();
        new.limits.max_query_limit = 3;
        new.limits.max_commit_batch = 7;
        new.public_url = Some("mosaicws://example.com:1/".into());
        let (applied, kept) = keep_fixed(new, &current);
        assert_eq!(applied.limits.max_query_limit, 3);
        assert_eq!(
            applied.limits.max_commit_batch,
            current.limits.max_commit_batch
        );
        assert_eq!(applied.public_url, None);
        assert_eq!(kept, ["public_url", "limits.max_commit_batch"]);
        for name in &kept {
            assert!(KEPT_UNTIL_RESTART.contains(name));
        }
    }
}
