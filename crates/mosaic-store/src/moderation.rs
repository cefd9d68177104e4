//! Moderation data and the allow-list: which users a server serves, and
//! which keys and IP addresses it has banned.
//!
//! Three tables beside the record tables (`docs/STORE.md`): `served_users`
//! (key -> nothing), `banned_keys` (key -> [`Ban`]) and `banned_ips`
//! (address as 16 bytes, IPv4 mapped into IPv6 -> [`Ban`]). Older code of the
//! same format version ignores them, and opening an older store creates them
//! empty, so they need no new format version. They are not part of an export.
//!
//! The server reads all of it at start (and on reload) as a [`Moderation`]
//! snapshot; while it runs, its admin socket writes each change here first
//! and then puts it in force. With the server stopped, `mosaic admin` writes
//! here directly (the store is opened exclusively).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};

use mosaic_core::{PublicKey, Timestamp};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use crate::error::{Corruption, StoreError};
use crate::store::Store;

/// Served user key (32) -> ().
pub(crate) const SERVED_USERS: TableDefinition<'static, &'static [u8; 32], ()> =
    TableDefinition::new("served_users");
/// Banned key (32) -> postcard(`Option<u64>`): the end of the ban in
/// nanoseconds, `None` when permanent.
pub(crate) const BANNED_KEYS: TableDefinition<'static, &'static [u8; 32], &'static [u8]> =
    TableDefinition::new("banned_keys");
/// Banned address (16, IPv4 as an IPv4-mapped IPv6 address) -> as
/// `banned_keys`.
pub(crate) const BANNED_IPS: TableDefinition<'static, &'static [u8; 16], &'static [u8]> =
    TableDefinition::new("banned_ips");

const NAME_SERVED_USERS: &str = "served_users";
const NAME_BANNED_KEYS: &str = "banned_keys";
const NAME_BANNED_IPS: &str = "banned_ips";

/// How long a ban lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ban {
    /// Until an operator lifts it (PUBKEY_PERM_BANNED / IP_PERM_BANNED on
    /// the wire).
    Permanent,
    /// Until this instant, exclusive (PUBKEY_TEMP_BANNED / IP_TEMP_BANNED).
    Until(Timestamp),
}

impl Ban {
    /// Whether the ban is in force at `now`.
    pub fn is_active_at(&self, now: Timestamp) -> bool {
        match self {
            Ban::Permanent => true,
            Ban::Until(end) => now < *end,
        }
    }

    /// Whether the ban is permanent.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Ban::Permanent)
    }

    fn encode(&self) -> Vec<u8> {
        let end: Option<u64> = match self {
            Ban::Permanent => None,
            Ban::Until(t) => Some(t.as_nanos()),
        };
        // Encoding an Option<u64> into a Vec cannot fail.
        postcard::to_allocvec(&end).unwrap_or_default()
    }

    fn decode(bytes: &[u8], table: &'static str) -> Result<Ban, Corruption> {
        let end: Option<u64> =
            postcard::from_bytes(bytes).map_err(|_| Corruption::Moderation { table })?;
        match end {
            None => Ok(Ban::Permanent),
            Some(n) => Timestamp::from_nanos(n)
                .map(Ban::Until)
                .map_err(|_| Corruption::Moderation { table }),
        }
    }
}

/// Everything the moderation tables hold, read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moderation {
    /// The users the server serves (its allow-list).
    pub served_users: BTreeSet<PublicKey>,
    /// Banned keys, expired temporary bans included.
    pub banned_keys: BTreeMap<PublicKey, Ban>,
    /// Banned addresses, expired temporary bans included. IPv4 addresses
    /// appear as such, never IPv4-mapped.
    pub banned_ips: BTreeMap<IpAddr, Ban>,
}

impl Moderation {
    /// The ban on `key` in force at `now`, if any.
    pub fn key_ban(&self, key: &PublicKey, now: Timestamp) -> Option<Ban> {
        self.banned_keys
            .get(key)
            .copied()
            .filter(|b| b.is_active_at(now))
    }

    /// The ban on `ip` in force at `now`, if any. An IPv4-mapped IPv6
    /// address is the IPv4 address.
    pub fn ip_ban(&self, ip: IpAddr, now: Timestamp) -> Option<Ban> {
        self.banned_ips
            .get(&ip.to_canonical())
            .copied()
            .filter(|b| b.is_active_at(now))
    }
}

/// The 16-byte key of an address: IPv4 is stored IPv4-mapped, so that a
/// client reaching an IPv6 socket from IPv4 matches its IPv4 ban.
fn ip_key(ip: IpAddr) -> [u8; 16] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn ip_from_key(key: &[u8; 16]) -> IpAddr {
    Ipv6Addr::from(*key).to_canonical()
}

fn key_from_bytes(bytes: &[u8; 32], table: &'static str) -> Result<PublicKey, Corruption> {
    PublicKey::from_bytes(bytes).map_err(|_| Corruption::Moderation { table })
}

/// Creates the moderation tables when missing (on open).
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(SERVED_USERS)?;
    txn.open_table(BANNED_KEYS)?;
    txn.open_table(BANNED_IPS)?;
    Ok(())
}

impl Store {
    /// Adds a user to the allow-list of served users, in one durable
    /// commit. Returns whether it was not listed before.
    pub fn add_served_user(&self, key: &PublicKey) -> Result<bool, StoreError> {
        let txn = self.begin_write()?;
        let added = txn
            .open_table(SERVED_USERS)?
            .insert(key.as_bytes(), ())?
            .is_none();
        self.commit(txn)?;
        Ok(added)
    }

    /// Takes a user off the allow-list, in one durable commit. Returns
    /// whether it was listed. Its records stay stored.
    pub fn remove_served_user(&self, key: &PublicKey) -> Result<bool, StoreError> {
        let txn = self.begin_write()?;
        let removed = txn
            .open_table(SERVED_USERS)?
            .remove(key.as_bytes())?
            .is_some();
        self.commit(txn)?;
        Ok(removed)
    }

    /// Bans a key (replacing any earlier ban of it), in one durable commit.
    pub fn ban_key(&self, key: &PublicKey, ban: Ban) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        txn.open_table(BANNED_KEYS)?
            .insert(key.as_bytes(), ban.encode().as_slice())?;
        self.commit(txn)?;
        Ok(())
    }

    /// Lifts the ban of a key, in one durable commit. Returns whether it
    /// was banned (expired bans included).
    pub fn unban_key(&self, key: &PublicKey) -> Result<bool, StoreError> {
        let txn = self.begin_write()?;
        let removed = txn
            .open_table(BANNED_KEYS)?
            .remove(key.as_bytes())?
            .is_some();
        self.commit(txn)?;
        Ok(removed)
    }

    /// Bans an IP address (replacing any earlier ban of it), in one durable
    /// commit.
    pub fn ban_ip(&self, ip: IpAddr, ban: Ban) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        txn.open_table(BANNED_IPS)?
            .insert(&ip_key(ip), ban.encode().as_slice())?;
        self.commit(txn)?;
        Ok(())
    }

    /// Lifts the ban of an IP address, in one durable commit. Returns
    /// whether it was banned (expired bans included).
    pub fn unban_ip(&self, ip: IpAddr) -> Result<bool, StoreError> {
        let txn = self.begin_write()?;
        let removed = txn.open_table(BANNED_IPS)?.remove(&ip_key(ip))?.is_some();
        self.commit(txn)?;
        Ok(removed)
    }

    /// The allow-list, the banned keys and the banned addresses, from one
    /// snapshot.
    pub fn moderation(&self) -> Result<Moderation, StoreError> {
        let txn = self.begin_read()?;
        let mut out = Moderation::default();
        for item in txn.open_table(SERVED_USERS)?.iter()? {
            let (key, _) = item?;
            out.served_users
                .insert(key_from_bytes(key.value(), NAME_SERVED_USERS)?);
        }
        for item in txn.open_table(BANNED_KEYS)?.iter()? {
            let (key, value) = item?;
            out.banned_keys.insert(
                key_from_bytes(key.value(), NAME_BANNED_KEYS)?,
                Ban::decode(value.value(), NAME_BANNED_KEYS)?,
            );
        }
        for item in txn.open_table(BANNED_IPS)?.iter()? {
            let (key, value) = item?;
            out.banned_ips.insert(
                ip_from_key(key.value()),
                Ban::decode(value.value(), NAME_BANNED_IPS)?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;
    use mosaic_core::SecretKey;
    use std::net::Ipv4Addr;

    fn temp_store(name: &str) -> (std::path::PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!(
            "mosaic-store-moderation-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir, StoreConfig::default()).unwrap();
        (dir, store)
    }

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n).unwrap()
    }

    #[test]
    fn allow_list_and_bans_persist_across_reopen() {
        let (dir, store) = temp_store("persist");
        let alice = SecretKey::from_bytes(&[1; 32]).public();
        let bob = SecretKey::from_bytes(&[2; 32]).public();
        assert_eq!(store.moderation().unwrap(), Moderation::default());

        assert!(store.add_served_user(&alice).unwrap());
        assert!(!store.add_served_user(&alice).unwrap());
        assert!(store.add_served_user(&bob).unwrap());
        assert!(store.remove_served_user(&bob).unwrap());
        assert!(!store.remove_served_user(&bob).unwrap());
        store.ban_key(&bob, Ban::Until(ts(100))).unwrap();
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        store.ban_ip(v4, Ban::Permanent).unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        store.ban_ip(v6, Ban::Until(ts(5))).unwrap();
        drop(store);

        let store = Store::open(&dir, StoreConfig::default()).unwrap();
        let m = store.moderation().unwrap();
        assert_eq!(m.served_users.iter().copied().collect::<Vec<_>>(), [alice]);
        assert_eq!(m.banned_keys.get(&bob), Some(&Ban::Until(ts(100))));
        assert_eq!(m.banned_ips.get(&v4), Some(&Ban::Permanent));
        assert_eq!(m.banned_ips.get(&v6), Some(&Ban::Until(ts(5))));

        // Temporary bans end at their timestamp.
        assert_eq!(m.key_ban(&bob, ts(99)), Some(Ban::Until(ts(100))));
        assert_eq!(m.key_ban(&bob, ts(100)), None);
        assert_eq!(m.key_ban(&alice, ts(1)), None);
        // An IPv4-mapped IPv6 peer is the IPv4 address.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(m.ip_ban(mapped, ts(1)), Some(Ban::Permanent));
        assert_eq!(m.ip_ban(v6, ts(4)), Some(Ban::Until(ts(5))));
        assert_eq!(m.ip_ban(v6, ts(5)), None);

        assert!(store.unban_key(&bob).unwrap());
        assert!(!store.unban_key(&bob).unwrap());
        assert!(store.unban_ip(mapped).unwrap());
        assert!(!store.unban_ip(v4).unwrap());
        let m = store.moderation().unwrap();
        assert!(m.banned_keys.is_empty());
        assert_eq!(m.banned_ips.len(), 1);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_entries_are_reported_not_panicked_on() {
        let (dir, store) = temp_store("damaged");
        {
            let txn = store.begin_write().unwrap();
            txn.open_table(BANNED_KEYS)
                .unwrap()
                .insert(&[3; 32], [0xff, 0xff, 0xff].as_slice())
                .unwrap();
            store.commit(txn).unwrap();
        }
        assert!(matches!(
            store.moderation(),
            Err(StoreError::Corrupt(Corruption::Moderation {
                table: "banned_keys"
            }))
        ));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
