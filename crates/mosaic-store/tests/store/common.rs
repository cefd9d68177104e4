//! Helpers shared by the store's tests and its benchmark: temporary
//! directories and records made to order.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mosaic_core::{
    DuplicateHandling, Kind, KindFlags, Nonce, OwnedRecord, OwnedTag, PublicKey, ReadAccess,
    RecordBuilder, SecretKey, Timestamp,
};

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory whose name starts with `tag`.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "mosaic-store-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A plausible timestamp: 2023-11-14 plus `n` nanoseconds.
pub fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(1_700_000_000_000_000_000 + n).expect("in range")
}

/// A kind of application 99 with the given duplicate handling, readable by
/// everybody, not printable.
pub fn kind(handling: DuplicateHandling, app_kind: u16) -> Kind {
    Kind::from_parts(
        99,
        app_kind,
        KindFlags::from_parts(handling, ReadAccess::Everybody, false),
    )
}

/// Deterministic secret key number `n`.
pub fn secret(n: u64) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0x5a;
    SecretKey::from_bytes(&seed)
}

/// How to make one record.
#[derive(Clone)]
pub struct Spec {
    pub kind: Kind,
    pub timestamp: Timestamp,
    pub nonce: Nonce,
    pub author: Option<PublicKey>,
    pub tags: Vec<OwnedTag>,
    pub payload: Vec<u8>,
}

impl Spec {
    /// A record of `kind` at `timestamp` with nonce `nonce`.
    pub fn new(kind: Kind, timestamp: Timestamp, nonce: &[u8]) -> Spec {
        Spec {
            kind,
            timestamp,
            nonce: Nonce::from_key(nonce),
            author: None,
            tags: Vec::new(),
            payload: Vec::new(),
        }
    }

    pub fn tag(mut self, tag: OwnedTag) -> Spec {
        self.tags.push(tag);
        self
    }

    pub fn payload(mut self, payload: &[u8]) -> Spec {
        self.payload = payload.to_vec();
        self
    }

    pub fn author(mut self, author: PublicKey) -> Spec {
        self.author = Some(author);
        self
    }

    /// Signs the record with `signer`.
    pub fn sign(&self, signer: &SecretKey) -> OwnedRecord {
        let mut b = RecordBuilder::new(self.kind, self.timestamp)
            .nonce(self.nonce)
            .payload(&self.payload);
        if let Some(author) = self.author {
            b = b.author(author);
        }
        for t in &self.tags {
            b = b.tag(t);
        }
        b.build(signer).expect("a valid record")
    }
}
