//! Who may write what and who may read what: bans, server roles and the
//! signer rules of key schedules, on top of the read access of
//! [`may_read`](crate::access::may_read). `docs/SECURITY.md` states the
//! rules; every path that accepts or reveals a record asks this module.
//!
//! The allow-list of served users and the bans are read from the store at
//! start; the admin socket changes them while the server runs (the store
//! first, then memory), a reload reads them again, and the key schedules
//! change as they are submitted (see [`KeyRing`]).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use mosaic_core::{Kind, PublicKey, Record, ResultCode, Timestamp};
use mosaic_store::{Ban, Moderation, Store, StoreError, StoredRecord};

use crate::access::may_read;
use crate::config::Roles;
use crate::keyring::{KeyRing, Signer};

/// The role under which a record is kept (when roles are on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Authored by a served user: served to anyone its read access allows.
    Outbox,
    /// From anyone, tagging a served user: served to the tagged served
    /// users and the author, and to anyone when `inbox_public` is set.
    Inbox,
    /// From anyone, tagging a served user: served to the tagged served
    /// users only.
    Encryption,
}

/// The allow-list, the bans and the roles in force, replaced as a whole.
#[derive(Clone)]
struct Rules {
    roles: Roles,
    moderation: Moderation,
}

/// The rules of this server. The roles change on reload; the allow-list and
/// the bans change through the admin socket (written to the store first,
/// then put in force here); the key schedules change as they are submitted.
/// Every decision takes one snapshot of the rules, so a change never shows
/// half-way through one.
pub(crate) struct Policy {
    rules: RwLock<Arc<Rules>>,
    /// Held while a change is written to the store and put in force, so the
    /// memory follows the store's order of changes.
    writer: Mutex<()>,
    pub(crate) keys: KeyRing,
}

/// One decision's view of the rules.
struct View<'a> {
    roles: Roles,
    moderation: &'a Moderation,
    keys: &'a KeyRing,
}

fn key_ban_code(ban: Ban) -> ResultCode {
    if ban.is_permanent() {
        ResultCode::PUBKEY_PERM_BANNED
    } else {
        ResultCode::PUBKEY_TEMP_BANNED
    }
}

fn ip_ban_code(ban: Ban) -> ResultCode {
    if ban.is_permanent() {
        ResultCode::IP_PERM_BANNED
    } else {
        ResultCode::IP_TEMP_BANNED
    }
}

impl Policy {
    pub(crate) fn new(roles: Roles, moderation: Moderation, keys: KeyRing) -> Policy {
        Policy {
            rules: RwLock::new(Arc::new(Rules { roles, moderation })),
            writer: Mutex::new(()),
            keys,
        }
    }

    fn snapshot(&self) -> Arc<Rules> {
        // The rules are replaced whole: a poisoned lock still holds a
        // complete value.
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn with<T>(&self, decide: impl FnOnce(&View<'_>) -> T) -> T {
        let rules = self.snapshot();
        decide(&View {
            roles: rules.roles,
            moderation: &rules.moderation,
            keys: &self.keys,
        })
    }

    /// Changes the rules in memory (the caller holds `writer`).
    fn update(&self, change: impl FnOnce(&mut Rules)) {
        let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
        change(Arc::make_mut(&mut rules));
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the allow-list and the bans in force.
    pub(crate) fn moderation(&self) -> Moderation {
        self.snapshot().moderation.clone()
    }

    /// Puts new roles in force (on reload).
    pub(crate) fn set_roles(&self, roles: Roles) {
        let _writer = self.write_lock();
        self.update(|rules| rules.roles = roles);
    }

    /// Reads the allow-list and the bans from the store again and puts them
    /// in force (on reload). Blocking.
    pub(crate) fn reload_moderation(&self, store: &Store) -> Result<(), StoreError> {
        let _writer = self.write_lock();
        let moderation = store.moderation()?;
        self.update(|rules| rules.moderation = moderation);
        Ok(())
    }

    /// Bans `key` in the store, then here. Blocking.
    pub(crate) fn ban_key(
        &self,
        store: &Store,
        key: PublicKey,
        ban: Ban,
    ) -> Result<(), StoreError> {
        let _writer = self.write_lock();
        store.ban_key(&key, ban)?;
        self.update(|rules| {
            rules.moderation.banned_keys.insert(key, ban);
        });
        Ok(())
    }

    /// Lifts the ban of `key` in the store, then here; whether it was
    /// banned. Blocking.
    pub(crate) fn unban_key(&self, store: &Store, key: PublicKey) -> Result<bool, StoreError> {
        let _writer = self.write_lock();
        let was = store.unban_key(&key)?;
        self.update(|rules| {
            rules.moderation.banned_keys.remove(&key);
        });
        Ok(was)
    }

    /// Bans `ip` in the store, then here. Blocking.
    pub(crate) fn ban_ip(&self, store: &Store, ip: IpAddr, ban: Ban) -> Result<(), StoreError> {
        let _writer = self.write_lock();
        store.ban_ip(ip, ban)?;
        self.update(|rules| {
            rules.moderation.banned_ips.insert(ip.to_canonical(), ban);
        });
        Ok(())
    }

    /// Lifts the ban of `ip` in the store, then here; whether it was
    /// banned. Blocking.
    pub(crate) fn unban_ip(&self, store: &Store, ip: IpAddr) -> Result<bool, StoreError> {
        let _writer = self.write_lock();
        let was = store.unban_ip(ip)?;
        self.update(|rules| {
            rules.moderation.banned_ips.remove(&ip.to_canonical());
        });
        Ok(was)
    }

    /// Adds `key` to the allow-list in the store, then here; whether it was
    /// not listed. Blocking.
    pub(crate) fn add_served_user(
        &self,
        store: &Store,
        key: PublicKey,
    ) -> Result<bool, StoreError> {
        let _writer = self.write_lock();
        let added = store.add_served_user(&key)?;
        self.update(|rules| {
            rules.moderation.served_users.insert(key);
        });
        Ok(added)
    }

    /// Takes `key` off the allow-list in the store, then here; whether it
    /// was listed. Blocking.
    pub(crate) fn remove_served_user(
        &self,
        store: &Store,
        key: PublicKey,
    ) -> Result<bool, StoreError> {
        let _writer = self.write_lock();
        let removed = store.remove_served_user(&key)?;
        self.update(|rules| {
            rules.moderation.served_users.remove(&key);
        });
        Ok(removed)
    }

    /// IP_TEMP_BANNED or IP_PERM_BANNED when `ip` is banned at `now`.
    pub(crate) fn ip_ban(&self, ip: IpAddr, now: Timestamp) -> Option<ResultCode> {
        self.with(|v| v.ip_ban(ip, now))
    }

    /// PUBKEY_TEMP_BANNED or PUBKEY_PERM_BANNED when `key` is banned at
    /// `now`.
    pub(crate) fn key_ban(&self, key: &PublicKey, now: Timestamp) -> Option<ResultCode> {
        self.with(|v| v.key_ban(key, now))
    }

    /// The role a record falls under (see [`View::role_of`]).
    #[cfg(test)]
    pub(crate) fn role_of(&self, record: &Record, received_at: Timestamp) -> Option<Role> {
        self.with(|v| v.role_of(record, received_at))
    }

    /// The first check of a submission (see [`View::refuse_submission`]).
    pub(crate) fn refuse_submission(&self, record: &Record, now: Timestamp) -> Option<ResultCode> {
        self.with(|v| v.refuse_submission(record, now))
    }

    /// Why a BLOB submission is refused (see [`View::refuse_blob`]).
    pub(crate) fn refuse_blob(&self, reader: Option<&PublicKey>) -> Option<ResultCode> {
        self.with(|v| v.refuse_blob(reader))
    }

    /// Whether a subkey's record may displace `old` (see
    /// [`View::may_displace`]).
    pub(crate) fn may_displace(&self, old: &StoredRecord, signer: &PublicKey) -> bool {
        self.with(|v| v.may_displace(old, signer))
    }

    /// Whether `record` may be revealed to `reader` (see
    /// [`View::may_serve`]).
    pub(crate) fn may_serve(
        &self,
        record: &Record,
        received_at: Timestamp,
        reader: Option<&PublicKey>,
    ) -> bool {
        self.with(|v| v.may_serve(record, received_at, reader))
    }
}

impl View<'_> {
    /// IP_TEMP_BANNED or IP_PERM_BANNED when `ip` is banned at `now`.
    pub(crate) fn ip_ban(&self, ip: IpAddr, now: Timestamp) -> Option<ResultCode> {
        self.moderation.ip_ban(ip, now).map(ip_ban_code)
    }

    /// PUBKEY_TEMP_BANNED or PUBKEY_PERM_BANNED when `key` is banned at
    /// `now`.
    pub(crate) fn key_ban(&self, key: &PublicKey, now: Timestamp) -> Option<ResultCode> {
        self.moderation.key_ban(key, now).map(key_ban_code)
    }

    /// Whether `key` is on the allow-list of served users.
    pub(crate) fn serves(&self, key: &PublicKey) -> bool {
        self.moderation.served_users.contains(key)
    }

    /// Whether the record's signer is its author or a subkey the author's
    /// held schedule shows valid for it.
    fn signer_verified(&self, record: &Record, received_at: Timestamp) -> bool {
        matches!(
            self.keys.signer(record, received_at),
            Signer::Master | Signer::Valid
        )
    }

    /// The role a record falls under, judged from the current allow-list
    /// and key schedules (the same answer on submission and on every read).
    pub(crate) fn role_of(&self, record: &Record, received_at: Timestamp) -> Option<Role> {
        let author = record.author();
        let own = self.serves(&author) && self.signer_verified(record, received_at);
        // A served user's own key schedule is kept whatever the roles: the
        // server needs it to know the user's subkeys.
        if own && (self.roles.outbox || record.kind() == Kind::KEY_SCHEDULE) {
            return Some(Role::Outbox);
        }
        let tags_served = record
            .tags()
            .notified_keys()
            .any(|k| self.moderation.served_users.contains(&k));
        if !tags_served {
            return None;
        }
        let everybody = record.kind().read_access().is_everybody();
        if self.roles.encryption && !(self.roles.inbox && everybody) {
            Some(Role::Encryption)
        } else if self.roles.inbox {
            Some(Role::Inbox)
        } else {
            None
        }
    }

    /// The first check of a submission received at `now`, before anything
    /// is read from the store: bans, the master-only kinds, the signer
    /// rules and the roles. `None` lets it through.
    pub(crate) fn refuse_submission(&self, record: &Record, now: Timestamp) -> Option<ResultCode> {
        let author = record.author();
        let signer = record.signing_key();
        if let Some(code) = self
            .key_ban(&signer, now)
            .or_else(|| self.key_ban(&author, now))
        {
            return Some(code);
        }
        let kind = record.kind();
        if kind == Kind::KEY_SCHEDULE {
            // Signed by the master, entries and attestations valid.
            if mosaic_core::KeySchedule::from_record(record).is_err() {
                return Some(ResultCode::INVALID);
            }
        } else if kind == Kind::PROFILE && signer != author {
            return Some(ResultCode::INVALID);
        }
        let duplicates = kind.duplicate_handling();
        match self.keys.signer(record, now) {
            Signer::Master | Signer::Valid => {}
            Signer::Invalid(_) => return Some(ResultCode::UNAUTHORIZED),
            // Replaceable and versioned records could displace or join the
            // author's own: an unverifiable subkey may not write them.
            Signer::Unverified if duplicates.is_replaceable() || duplicates.is_versioned() => {
                return Some(ResultCode::UNAUTHORIZED);
            }
            Signer::Unverified => {}
        }
        if self.roles.any() && self.role_of(record, now).is_none() {
            return Some(ResultCode::UNAUTHORIZED);
        }
        None
    }

    /// Why a BLOB submission from a connection authenticated as `reader`
    /// is refused, if it is. An open server takes BLOBs from anyone; with
    /// roles on, only served users may store them (REQUIRES_AUTHENTICATION
    /// for an anonymous connection, UNAUTHORIZED for anyone else).
    pub(crate) fn refuse_blob(&self, reader: Option<&PublicKey>) -> Option<ResultCode> {
        if !self.roles.any() {
            return None;
        }
        match reader {
            None => Some(ResultCode::REQUIRES_AUTHENTICATION),
            Some(key) if self.serves(key) => None,
            Some(_) => Some(ResultCode::UNAUTHORIZED),
        }
    }

    /// Whether a replaceable or versioned record signed by the subkey
    /// `signer` may replace or join `old`, a record stored at its address:
    /// yes when `old` has the same signer, or a signer the held schedule
    /// shows valid for `old`'s own timestamp and receipt (the master key
    /// always is). The new record's own signer was checked by
    /// [`refuse_submission`](Self::refuse_submission); a master-signed
    /// record is not asked about.
    pub(crate) fn may_displace(&self, old: &StoredRecord, signer: &PublicKey) -> bool {
        old.record.signing_key() == *signer
            || matches!(
                self.keys.signer(&old.record, old.received_at),
                Signer::Master | Signer::Valid
            )
    }

    /// Whether `record`, received at `received_at`, may be revealed to
    /// `reader` (the connection's authenticated identity, if any): its read
    /// access allows it, and when roles are on, its role does too.
    pub(crate) fn may_serve(
        &self,
        record: &Record,
        received_at: Timestamp,
        reader: Option<&PublicKey>,
    ) -> bool {
        if !may_read(record, reader) {
            return false;
        }
        if !self.roles.any() {
            return true;
        }
        let tagged_served = |reader: &PublicKey| {
            self.serves(reader) && record.tags().notified_keys().any(|k| k == *reader)
        };
        match self.role_of(record, received_at) {
            Some(Role::Outbox) => true,
            Some(Role::Inbox) => {
                self.roles.inbox_public
                    || reader.is_some_and(|r| *r == record.author() || tagged_served(r))
            }
            Some(Role::Encryption) => reader.is_some_and(tagged_served),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{
        DuplicateHandling, KindFlags, Nonce, OwnedRecord, OwnedTag, OwnedTagSet, ReadAccess,
        RecordBuilder, SecretKey,
    };

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n).unwrap()
    }

    fn kind(access: ReadAccess) -> Kind {
        Kind::from_parts(
            99,
            1,
            KindFlags::from_parts(DuplicateHandling::Unique, access, false),
        )
    }

    fn record(author: &SecretKey, access: ReadAccess, tagged: &[&SecretKey]) -> OwnedRecord {
        let tags = OwnedTagSet::from_tags(
            tagged
                .iter()
                .map(|k| OwnedTag::notify_public_key(&k.public())),
        )
        .unwrap();
        RecordBuilder::new(kind(access), ts(10))
            .nonce(Nonce::from_key(b"n"))
            .tags(&tags)
            .payload(b"x")
            .build(author)
            .unwrap()
    }

    fn policy(roles: Roles, served: &[&SecretKey]) -> Policy {
        let mut moderation = Moderation::default();
        moderation
            .served_users
            .extend(served.iter().map(|k| k.public()));
        Policy::new(roles, moderation, KeyRing::default())
    }

    #[test]
    fn an_open_server_follows_read_access_only() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let bob = SecretKey::from_bytes(&[2; 32]);
        let p = policy(Roles::default(), &[]);
        let public = record(&bob, ReadAccess::Everybody, &[]);
        let private = record(&bob, ReadAccess::AuthorOnly, &[]);
        assert_eq!(p.refuse_submission(&public, ts(20)), None);
        assert!(p.may_serve(&public, ts(20), None));
        assert!(!p.may_serve(&private, ts(20), None));
        assert!(!p.may_serve(&private, ts(20), Some(&alice.public())));
        assert!(p.may_serve(&private, ts(20), Some(&bob.public())));
    }

    #[test]
    fn roles_decide_what_is_accepted_and_for_whom() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let bob = SecretKey::from_bytes(&[2; 32]);
        let carol = SecretKey::from_bytes(&[3; 32]);
        let (a, b, c) = (alice.public(), bob.public(), carol.public());
        let now = ts(20);

        // Outbox for alice: her records only, to anyone.
        let outbox = policy(
            Roles {
                outbox: true,
                ..Roles::default()
            },
            &[&alice],
        );
        let hers = record(&alice, ReadAccess::Everybody, &[]);
        let to_her = record(&bob, ReadAccess::Everybody, &[&alice]);
        assert_eq!(outbox.refuse_submission(&hers, now), None);
        assert_eq!(
            outbox.refuse_submission(&to_her, now),
            Some(ResultCode::UNAUTHORIZED)
        );
        assert!(outbox.may_serve(&hers, now, None));
        assert!(!outbox.may_serve(&to_her, now, Some(&a)));

        // A private inbox for alice: from anyone, to her and the author.
        let roles = Roles {
            inbox: true,
            inbox_public: false,
            ..Roles::default()
        };
        let inbox = policy(roles, &[&alice]);
        assert_eq!(inbox.refuse_submission(&to_her, now), None);
        assert_eq!(
            inbox.refuse_submission(&hers, now),
            Some(ResultCode::UNAUTHORIZED)
        );
        let to_both = record(&bob, ReadAccess::AuthorAndTagged, &[&alice, &carol]);
        assert!(inbox.may_serve(&to_her, now, Some(&a)));
        assert!(inbox.may_serve(&to_her, now, Some(&b)));
        assert!(!inbox.may_serve(&to_her, now, None));
        assert!(!inbox.may_serve(&to_her, now, Some(&c)));
        // Carol is tagged but not served here.
        assert!(!inbox.may_serve(&to_both, now, Some(&c)));
        assert!(inbox.may_serve(&to_both, now, Some(&a)));
        // Public, as inbox servers are by default.
        let public_inbox = policy(
            Roles {
                inbox: true,
                ..Roles::default()
            },
            &[&alice],
        );
        assert!(public_inbox.may_serve(&to_her, now, None));
        // Read access still applies.
        assert!(!public_inbox.may_serve(&to_both, now, None));

        // Encryption for alice: to her only, not even the author.
        let encryption = policy(
            Roles {
                encryption: true,
                inbox_public: true,
                ..Roles::default()
            },
            &[&alice],
        );
        assert_eq!(encryption.refuse_submission(&to_both, now), None);
        assert!(encryption.may_serve(&to_both, now, Some(&a)));
        assert!(!encryption.may_serve(&to_both, now, Some(&b)));
        assert!(!encryption.may_serve(&to_both, now, Some(&c)));
        assert!(!encryption.may_serve(&to_both, now, None));

        // Both: "everybody" records are inbox records, others encryption.
        let both = policy(
            Roles {
                inbox: true,
                encryption: true,
                ..Roles::default()
            },
            &[&alice],
        );
        assert_eq!(both.role_of(&to_her, now), Some(Role::Inbox));
        assert_eq!(both.role_of(&to_both, now), Some(Role::Encryption));
    }

    #[test]
    fn bans_and_master_only_kinds_refuse_submissions() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let phone = SecretKey::from_bytes(&[2; 32]);
        let mut moderation = Moderation::default();
        moderation
            .banned_keys
            .insert(alice.public(), Ban::Until(ts(100)));
        let p = Policy::new(Roles::default(), moderation, KeyRing::default());
        let r = record(&alice, ReadAccess::Everybody, &[]);
        assert_eq!(
            p.refuse_submission(&r, ts(50)),
            Some(ResultCode::PUBKEY_TEMP_BANNED)
        );
        assert_eq!(p.refuse_submission(&r, ts(100)), None);

        let profile = RecordBuilder::new(Kind::PROFILE, ts(10))
            .nonce(Nonce::from_key(b"p"))
            .author(alice.public())
            .payload(b"x")
            .build(&phone)
            .unwrap();
        assert_eq!(
            p.refuse_submission(&profile, ts(200)),
            Some(ResultCode::INVALID)
        );
        let fake_schedule = RecordBuilder::new(Kind::KEY_SCHEDULE, ts(10))
            .nonce(Nonce::from_key(b"k"))
            .author(alice.public())
            .build(&phone)
            .unwrap();
        assert_eq!(
            p.refuse_submission(&fake_schedule, ts(200)),
            Some(ResultCode::INVALID)
        );
    }
}
