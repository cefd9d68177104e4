//! A server's data for `mosaic admin` and `mosaic store`: through the admin
//! socket of the server running on the data directory (`DIR/admin.sock`),
//! or, when none answers, directly in its store (`DIR/store`). Both give the
//! same answers, so the commands print the same either way.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mosaic_core::{Id, PublicKey};
use mosaic_server::{ADMIN_SOCKET, AdminClient};
use mosaic_store::{Ban, Store, StoreConfig, StoreError, StoreStats};

use crate::output;
use crate::serve::default_data_dir;

/// Where a command works.
pub enum ServerData {
    /// The running server, through its admin socket.
    Live {
        runtime: tokio::runtime::Runtime,
        client: AdminClient,
    },
    /// The store of a stopped server.
    Offline(Store),
}

/// The data directory given with `--data`, or `mosaic serve`'s default.
pub fn data_dir(data: Option<&Path>) -> anyhow::Result<PathBuf> {
    match data {
        Some(d) => Ok(d.to_path_buf()),
        None => default_data_dir(),
    }
}

impl ServerData {
    /// The running server on `data`, else its store; `create` makes a store
    /// when there is none (so that the allow-list can be set up before the
    /// first start).
    pub fn open(data: Option<&Path>, create: bool) -> anyhow::Result<ServerData> {
        let data = data_dir(data)?;
        let socket = data.join(ADMIN_SOCKET);
        if socket.exists() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            // A socket nobody answers on was left by a killed server.
            if let Ok(client) = runtime.block_on(AdminClient::connect(&socket)) {
                return Ok(ServerData::Live { runtime, client });
            }
        }
        let dir = data.join("store");
        if !dir.exists() {
            if !create {
                bail!(
                    "no store in {} (give --data DIR: the directory `mosaic serve` uses)",
                    dir.display()
                );
            }
            output::warn(format!("creating a new store in {}", dir.display()));
        }
        match Store::open(&dir, StoreConfig::default()) {
            Ok(store) => Ok(ServerData::Offline(store)),
            Err(StoreError::AlreadyOpen { .. }) => bail!(
                "the store in {} is in use by another process, and no server answers on {}: \
                 if a server runs on it without its admin socket (an older `mosaic serve`), \
                 stop it and run this command again; if another `mosaic store` or `mosaic admin` \
                 command is running, wait for it to end",
                dir.display(),
                socket.display()
            ),
            Err(e) => Err(e).with_context(|| format!("cannot open the store in {}", dir.display())),
        }
    }

    /// Adds a served user; whether it was not served.
    pub fn add_user(&mut self, key: &PublicKey) -> anyhow::Result<bool> {
        Ok(match self {
            ServerData::Live { runtime, client } => runtime.block_on(client.add_users(&[*key]))?[0],
            ServerData::Offline(store) => store.add_served_user(key)?,
        })
    }

    /// Removes a served user; whether it was served.
    pub fn remove_user(&mut self, key: &PublicKey) -> anyhow::Result<bool> {
        Ok(match self {
            ServerData::Live { runtime, client } => {
                runtime.block_on(client.remove_users(&[*key]))?[0]
            }
            ServerData::Offline(store) => store.remove_served_user(key)?,
        })
    }

    /// The served users.
    pub fn users(&mut self) -> anyhow::Result<BTreeSet<PublicKey>> {
        Ok(match self {
            ServerData::Live { runtime, client } => runtime.block_on(client.users())?,
            ServerData::Offline(store) => store.moderation()?.served_users,
        })
    }

    /// Bans a key; the live connections closed (0 offline).
    pub fn ban_key(&mut self, key: &PublicKey, ban: Ban) -> anyhow::Result<usize> {
        Ok(match self {
            ServerData::Live { runtime, client } => runtime.block_on(client.ban_key(key, ban))?,
            ServerData::Offline(store) => {
                store.ban_key(key, ban)?;
                0
            }
        })
    }

    /// Bans an address; the live connections closed (0 offline).
    pub fn ban_ip(&mut self, ip: IpAddr, ban: Ban) -> anyhow::Result<usize> {
        Ok(match self {
            ServerData::Live { runtime, client } => runtime.block_on(client.ban_ip(ip, ban))?,
            ServerData::Offline(store) => {
                store.ban_ip(ip, ban)?;
                0
            }
        })
    }

    /// Lifts a key's ban; whether it was banned.
    pub fn unban_key(&mut self, key: &PublicKey) -> anyhow::Result<bool> {
        Ok(match self {
            ServerData::Live { runtime, client } => runtime.block_on(client.unban_key(key))?,
            ServerData::Offline(store) => store.unban_key(key)?,
        })
    }

    /// Lifts an address's ban; whether it was banned.
    pub fn unban_ip(&mut self, ip: IpAddr) -> anyhow::Result<bool> {
        Ok(match self {
            ServerData::Live { runtime, client } => runtime.block_on(client.unban_ip(ip))?,
            ServerData::Offline(store) => store.unban_ip(ip)?,
        })
    }

    /// The banned keys and addresses.
    pub fn bans(&mut self) -> anyhow::Result<(BTreeMap<PublicKey, Ban>, BTreeMap<IpAddr, Ban>)> {
        Ok(match self {
            ServerData::Live { runtime, client } => {
                let list = runtime.block_on(client.bans())?;
                (list.keys, list.ips)
            }
            ServerData::Offline(store) => {
                let m = store.moderation()?;
                (m.banned_keys, m.banned_ips)
            }
        })
    }

    /// Removes a record; whether it was stored.
    pub fn remove(&mut self, id: &Id) -> anyhow::Result<bool> {
        Ok(match self {
            ServerData::Live { runtime, client } => runtime.block_on(client.remove(&[*id]))?[0],
            ServerData::Offline(store) => store.remove(id)?,
        })
    }

    /// The store's counts.
    pub fn stats(&mut self) -> anyhow::Result<StoreStats> {
        Ok(match self {
            ServerData::Live { runtime, client } => runtime.block_on(client.stats())?.store,
            ServerData::Offline(store) => store.stats()?,
        })
    }

    /// Writes every record to `out` in the export format; the count.
    pub fn export(&mut self, out: impl Write, progress: impl FnMut(u64)) -> anyhow::Result<u64> {
        Ok(match self {
            ServerData::Live { runtime, client } => {
                runtime.block_on(client.export(out, progress))?
            }
            ServerData::Offline(store) => store.export(out, progress)?,
        })
    }
}
