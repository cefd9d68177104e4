//! The live sessions: each connection's peer address, the key it reads as
//! (and the subkey it authenticated through), and its sender, so that a ban
//! reaches the connections it names at once.
//!
//! A session registers once its identity is settled (after Hello Auth, or
//! at once when it does not authenticate) and unregisters when it ends. A
//! ban is put in force in the [`Policy`] first and then applied here; a
//! registration checks the bans after it is listed. Whichever comes second
//! sees the other, so no connection slips between a ban and its enforcement.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use mosaic_core::{PublicKey, ResultCode, Timestamp};
use mosaic_net::Sender;
use tracing::info;

use crate::policy::Policy;
use crate::server::Shared;

/// One live connection.
struct Live {
    ip: IpAddr,
    /// The key the connection reads as (the master, for a subkey).
    reader: Option<PublicKey>,
    /// The subkey it authenticated through, if it did.
    subkey: Option<PublicKey>,
    sender: Sender,
}

/// The registry of live connections, by connection id.
#[derive(Default)]
pub(crate) struct Connections {
    live: Mutex<HashMap<u64, Live>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Live>> {
        // Each change is one map operation: a poisoned map is still whole.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists connection `id`. When a ban in force at `now` already names
    /// it, it is closed with the ban's code at once and that code is
    /// returned.
    fn register(&self, id: u64, live: Live, policy: &Policy, now: Timestamp) -> Option<ResultCode> {
        let sender = live.sender.clone();
        let code = ban_of(&live, policy, now);
        self.lock().insert(id, live);
        // Checked again after listing: a ban put in force in between has
        // either been seen above or will find the connection listed.
        let code = code.or_else(|| self.lock().get(&id).and_then(|l| ban_of(l, policy, now)));
        if let Some(code) = code {
            close(id, sender, code);
        }
        code
    }

    /// Forgets connection `id` (its session ended).
    pub(crate) fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// How many connections are listed.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Closes, with the ban's code, every listed connection a ban in force
    /// at `now` names: its address, the key it reads as, or the subkey it
    /// authenticated through. Returns the ids closed (they stay listed until
    /// their sessions end).
    pub(crate) fn enforce(&self, policy: &Policy, now: Timestamp) -> Vec<u64> {
        let banned: Vec<(u64, Sender, ResultCode)> = self
            .lock()
            .iter()
            .filter(|(_, live)| !live.sender.is_closed())
            .filter_map(|(id, live)| {
                ban_of(live, policy, now).map(|c| (*id, live.sender.clone(), c))
            })
            .collect();
        banned
            .into_iter()
            .map(|(id, sender, code)| {
                close(id, sender, code);
                id
            })
            .collect()
    }
}

impl Shared {
    /// Lists a session in [`Shared::live`] once its identity is settled
    /// (`reader`, and the subkey the key ring knows it authenticated
    /// through); closes it at once when a ban names it.
    pub(crate) fn register_live(
        &self,
        id: u64,
        ip: IpAddr,
        reader: Option<PublicKey>,
        sender: &Sender,
    ) -> Option<ResultCode> {
        let live = Live {
            ip: ip.to_canonical(),
            reader,
            subkey: self.policy.keys.subkey_of(id),
            sender: sender.clone(),
        };
        self.live.register(id, live, &self.policy, crate::now())
    }
}

/// The ban code that applies to a connection, if any: its address first,
/// then the subkey it authenticated through, then the key it reads as.
fn ban_of(live: &Live, policy: &Policy, now: Timestamp) -> Option<ResultCode> {
    policy
        .ip_ban(live.ip, now)
        .or_else(|| live.subkey.and_then(|k| policy.key_ban(&k, now)))
        .or_else(|| live.reader.and_then(|k| policy.key_ban(&k, now)))
}

/// Sends Closing `code` and closes, without making the caller wait for a
/// client that does not read.
fn close(id: u64, sender: Sender, code: ResultCode) {
    info!(conn = id, %code, "banned: connection closed");
    tokio::spawn(async move { sender.close(code).await });
}
