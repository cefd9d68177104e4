//! The key schedules this server holds (`keyschedule.md`): the newest one
//! per master key, learned from the key-schedule records it stores, with the
//! index from subkeys to their masters that subkey authentication needs.
//!
//! At start the ring is filled from the store (every stored record of kind
//! [`Kind::KEY_SCHEDULE`], newest per author); afterwards each key schedule
//! the committer makes durable is offered to it. A schedule replaces the
//! held one only when it is newer by (timestamp, id), whatever its nonce.
//!
//! Connections authenticated *through* a subkey (as its master) are
//! registered here; when a new schedule of that master no longer lists the
//! subkey as active, they are closed with UNAUTHORIZED, so a revocation takes
//! effect at once rather than at the next connection.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use mosaic_core::{
    FilterBuilder, Id, KeyMarker, KeySchedule, Kind, PublicKey, Record, ResultCode, SignerStatus,
    Timestamp,
};
use mosaic_net::Sender;
use mosaic_store::Store;
use tracing::{debug, info, warn};

/// What a proven key (Hello Auth) makes of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Authenticated as the key itself: a master key, or a subkey whose
    /// master's schedule is unknown here or does not list it as active.
    Direct(PublicKey),
    /// A subkey the held schedule of `master` lists as an active signing
    /// key: the connection reads and submits as `master`.
    Delegated {
        /// The key that signed Hello Auth.
        subkey: PublicKey,
        /// The master it stands for.
        master: PublicKey,
    },
    /// A subkey the held schedule of some master marks revoked (REVOKED_ALL,
    /// or REVOKED_PAST at or before now): refused.
    Revoked,
}

/// What the ring says about a record's signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signer {
    /// The author's master key.
    Master,
    /// A subkey the author's held schedule shows valid for this record.
    Valid,
    /// A subkey, and no schedule of the author is held: cannot be judged.
    Unverified,
    /// A subkey the author's held schedule shows invalid for this record
    /// (revoked, retired, or not listed).
    Invalid(SignerStatus),
}

struct Held {
    timestamp: Timestamp,
    id: Id,
    schedule: Arc<KeySchedule>,
}

#[derive(Default)]
struct Inner {
    schedules: HashMap<PublicKey, Held>,
    /// Subkey -> the masters whose held schedules list it as a signing key.
    masters_of: HashMap<PublicKey, BTreeSet<PublicKey>>,
}

struct Delegation {
    subkey: PublicKey,
    master: PublicKey,
    sender: Sender,
}

/// The held key schedules and the connections authenticated through them.
#[derive(Default)]
pub(crate) struct KeyRing {
    inner: RwLock<Inner>,
    delegated: Mutex<HashMap<u64, Delegation>>,
}

impl KeyRing {
    /// A ring holding the newest stored key schedule of every author.
    /// Stored records that are not valid schedules are skipped with a
    /// warning.
    pub(crate) fn load(store: &Store) -> KeyRing {
        let ring = KeyRing::default();
        let filter = match FilterBuilder::new().kinds([Kind::KEY_SCHEDULE]).build() {
            Ok(filter) => filter,
            Err(_) => return ring,
        };
        let records = match store.query(&filter, usize::MAX) {
            Ok(records) => records,
            Err(e) => {
                warn!(error = %e, "cannot read the stored key schedules");
                return ring;
            }
        };
        let mut loaded = 0usize;
        for item in records {
            match item {
                Ok(stored) => {
                    if ring.offer(&stored.record).is_some() {
                        loaded += 1;
                    }
                }
                Err(e) => warn!(error = %e, "damaged key schedule record skipped"),
            }
        }
        if loaded > 0 {
            info!(schedules = loaded, "key schedules loaded");
        }
        ring
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // Every update below is a few map operations that cannot leave the
        // maps half-changed in a way later readers would trip on.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn delegations(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Delegation>> {
        self.delegated.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The held schedule of `master`.
    pub(crate) fn schedule(&self, master: &PublicKey) -> Option<Arc<KeySchedule>> {
        self.read()
            .schedules
            .get(master)
            .map(|h| h.schedule.clone())
    }

    /// Takes a key-schedule record (already stored) if it is newer than the
    /// held schedule of its author; returns the author when the held
    /// schedule changed. Anything that is not a valid schedule is ignored.
    pub(crate) fn offer(&self, record: &Record) -> Option<PublicKey> {
        let schedule = KeySchedule::from_record(record).ok()?;
        let master = schedule.master();
        let (timestamp, id) = (record.timestamp(), record.id());
        let mut inner = self.write();
        if let Some(held) = inner.schedules.get(&master)
            && (held.timestamp, held.id) >= (timestamp, id)
        {
            return None;
        }
        if let Some(old) = inner.schedules.remove(&master) {
            for entry in old.schedule.entries() {
                if let Some(subkey) = entry.signing_key()
                    && let Some(set) = inner.masters_of.get_mut(&subkey)
                {
                    set.remove(&master);
                    if set.is_empty() {
                        inner.masters_of.remove(&subkey);
                    }
                }
            }
        }
        for entry in schedule.entries() {
            if let Some(subkey) = entry.signing_key() {
                inner.masters_of.entry(subkey).or_default().insert(master);
            }
        }
        inner.schedules.insert(
            master,
            Held {
                timestamp,
                id,
                schedule: Arc::new(schedule),
            },
        );
        debug!(%master, "key schedule updated");
        Some(master)
    }

    /// What a key that proved itself in Hello Auth at `now` stands for.
    ///
    /// A subkey listed by exactly one held schedule as ACTIVE_SIGNING_KEY
    /// stands for that master. A subkey some held schedule marks revoked at
    /// `now` is refused. Anything else (no schedule lists it, it is out of
    /// use, or two masters claim it) is authenticated as itself.
    pub(crate) fn identify(&self, proven: PublicKey, now: Timestamp) -> Identity {
        let inner = self.read();
        let Some(masters) = inner.masters_of.get(&proven) else {
            return Identity::Direct(proven);
        };
        let mut active = Vec::new();
        for master in masters {
            let Some(held) = inner.schedules.get(master) else {
                continue;
            };
            match held.schedule.signer_status(&proven, now, Some(now)) {
                SignerStatus::Revoked { .. } => return Identity::Revoked,
                SignerStatus::ActiveSubkey => active.push(*master),
                _ => {}
            }
        }
        match active.as_slice() {
            [master] => Identity::Delegated {
                subkey: proven,
                master: *master,
            },
            _ => Identity::Direct(proven),
        }
    }

    /// Judges a record's signer against its author's held schedule, the
    /// record having been received at `received_at`.
    pub(crate) fn signer(&self, record: &Record, received_at: Timestamp) -> Signer {
        let author = record.author();
        let signer = record.signing_key();
        if signer == author {
            return Signer::Master;
        }
        let inner = self.read();
        let Some(held) = inner.schedules.get(&author) else {
            return Signer::Unverified;
        };
        let status = held
            .schedule
            .signer_status(&signer, record.timestamp(), Some(received_at));
        if status.is_valid() {
            Signer::Valid
        } else {
            Signer::Invalid(status)
        }
    }

    /// Records that connection `conn` is authenticated as `master` through
    /// `subkey`, so that a revocation can close it.
    pub(crate) fn register(&self, conn: u64, subkey: PublicKey, master: PublicKey, sender: Sender) {
        self.delegations().insert(
            conn,
            Delegation {
                subkey,
                master,
                sender,
            },
        );
    }

    /// The subkey connection `conn` authenticated through, if it did.
    pub(crate) fn subkey_of(&self, conn: u64) -> Option<PublicKey> {
        self.delegations().get(&conn).map(|d| d.subkey)
    }

    /// Forgets connection `conn` (it ended).
    pub(crate) fn unregister(&self, conn: u64) {
        self.delegations().remove(&conn);
    }

    /// After the schedule of `master` changed: closes, with Closing
    /// UNAUTHORIZED, every connection authenticated as `master` through a
    /// subkey the new schedule no longer lists as active. Returns how many.
    pub(crate) fn revalidate(&self, master: &PublicKey) -> usize {
        let schedule = self.schedule(master);
        let still_active = |subkey: &PublicKey| {
            schedule.as_ref().is_some_and(|s| {
                s.entry(subkey.as_bytes())
                    .is_some_and(|e| e.marker() == KeyMarker::ActiveSigningKey)
            })
        };
        let mut closed = Vec::new();
        self.delegations().retain(|conn, d| {
            if d.master == *master && !still_active(&d.subkey) {
                closed.push((*conn, d.sender.clone()));
                false
            } else {
                true
            }
        });
        let n = closed.len();
        for (conn, sender) in closed {
            info!(conn, %master, "subkey no longer active: connection closed");
            tokio::spawn(async move { sender.close(ResultCode::UNAUTHORIZED).await });
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{KeyScheduleEntry, Nonce, OwnedRecord, RecordBuilder, SecretKey};

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n).unwrap()
    }

    fn schedule_record(
        master: &SecretKey,
        entries: &[(&SecretKey, KeyMarker, u64)],
        at: u64,
    ) -> OwnedRecord {
        let entries = entries
            .iter()
            .map(|(sub, marker, t)| {
                KeyScheduleEntry::new_attested(&master.public(), sub, *marker, ts(*t)).unwrap()
            })
            .collect();
        KeySchedule::new(master.public(), entries)
            .unwrap()
            .build_record(master, ts(at), KeySchedule::default_nonce())
            .unwrap()
    }

    fn signed_by(author: &SecretKey, signer: &SecretKey, t: u64) -> OwnedRecord {
        RecordBuilder::new(Kind::MICROBLOG_ROOT, ts(t))
            .nonce(Nonce::from_key(&t.to_be_bytes()))
            .author(author.public())
            .payload(b"x")
            .build(signer)
            .unwrap()
    }

    #[test]
    fn identities_follow_the_newest_schedule() {
        let ring = KeyRing::default();
        let master = SecretKey::from_bytes(&[1; 32]);
        let phone = SecretKey::from_bytes(&[2; 32]);
        let laptop = SecretKey::from_bytes(&[3; 32]);
        let stranger = SecretKey::from_bytes(&[4; 32]);
        let now = ts(1_000);

        // Nothing held: everyone is themselves.
        assert_eq!(
            ring.identify(phone.public(), now),
            Identity::Direct(phone.public())
        );
        let v1 = schedule_record(
            &master,
            &[
                (&phone, KeyMarker::ActiveSigningKey, 0),
                (&laptop, KeyMarker::OutOfUse, 0),
            ],
            100,
        );
        assert_eq!(ring.offer(&v1), Some(master.public()));
        assert_eq!(ring.offer(&v1), None, "the same schedule changes nothing");
        assert_eq!(
            ring.identify(phone.public(), now),
            Identity::Delegated {
                subkey: phone.public(),
                master: master.public()
            }
        );
        assert_eq!(
            ring.identify(laptop.public(), now),
            Identity::Direct(laptop.public())
        );
        assert_eq!(
            ring.identify(stranger.public(), now),
            Identity::Direct(stranger.public())
        );

        // A newer schedule revokes the phone; an older one is ignored.
        let v2 = schedule_record(&master, &[(&phone, KeyMarker::RevokedAll, 50)], 200);
        assert_eq!(ring.offer(&v2), Some(master.public()));
        assert_eq!(ring.offer(&v1), None);
        assert_eq!(ring.identify(phone.public(), now), Identity::Revoked);
        // The laptop is no longer listed at all.
        assert_eq!(
            ring.identify(laptop.public(), now),
            Identity::Direct(laptop.public())
        );
        // A schedule that is not one is ignored.
        assert_eq!(ring.offer(&signed_by(&master, &master, 300)), None);
    }

    #[test]
    fn signers_are_judged_by_timestamp_and_receipt() {
        let ring = KeyRing::default();
        let master = SecretKey::from_bytes(&[1; 32]);
        let phone = SecretKey::from_bytes(&[2; 32]);
        let old = SecretKey::from_bytes(&[3; 32]);
        let forger = SecretKey::from_bytes(&[4; 32]);
        let by_phone = signed_by(&master, &phone, 500);
        assert_eq!(ring.signer(&by_phone, ts(600)), Signer::Unverified);
        assert_eq!(
            ring.signer(&signed_by(&master, &master, 500), ts(600)),
            Signer::Master
        );

        ring.offer(&schedule_record(
            &master,
            &[
                (&phone, KeyMarker::ActiveSigningKey, 0),
                (&old, KeyMarker::RevokedPast, 1_000),
            ],
            100,
        ));
        assert_eq!(ring.signer(&by_phone, ts(600)), Signer::Valid);
        assert!(matches!(
            ring.signer(&signed_by(&master, &forger, 500), ts(600)),
            Signer::Invalid(SignerStatus::Unknown)
        ));
        // REVOKED_PAST: valid only when timestamped and received before.
        let by_old = signed_by(&master, &old, 900);
        assert_eq!(ring.signer(&by_old, ts(950)), Signer::Valid);
        assert!(matches!(
            ring.signer(&by_old, ts(1_000)),
            Signer::Invalid(SignerStatus::Revoked { .. })
        ));
        let late = signed_by(&master, &old, 1_100);
        assert!(matches!(
            ring.signer(&late, ts(950)),
            Signer::Invalid(SignerStatus::Revoked { .. })
        ));
    }
}
