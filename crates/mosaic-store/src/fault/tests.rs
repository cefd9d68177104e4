//! Injected faults on a real store: what fails, what reaches the disk, and
//! that the store works again once they end.

use std::path::{Path, PathBuf};

use mosaic_core::{
    DuplicateHandling, FilterBuilder, Kind, KindFlags, Nonce, OwnedRecord, ReadAccess,
    RecordBuilder, SecretKey, Timestamp,
};

use crate::{Fault, Store, StoreConfig, StoreError, blob_hash};

/// A directory for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "mosaic-store-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(1_700_000_000_000_000_000 + n).unwrap()
}

fn secret(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n; 32])
}

/// Record number `n` of key 1, of a unique kind.
fn record(n: u8) -> OwnedRecord {
    let kind = Kind::from_parts(
        99,
        1,
        KindFlags::from_parts(DuplicateHandling::Unique, ReadAccess::Everybody, false),
    );
    RecordBuilder::new(kind, ts(u64::from(n)))
        .nonce(Nonce::from_key(&[n]))
        .build(&secret(1))
        .unwrap()
}

/// An injected I/O error, with whether it is transient.
fn injected(result: Result<impl std::fmt::Debug, StoreError>) -> bool {
    match result {
        Err(e @ StoreError::Io(_)) => {
            assert!(e.to_string().contains("injected fault"), "{e}");
            e.is_transient()
        }
        other => panic!("expected an injected I/O error, got {other:?}"),
    }
}

#[test]
fn failing_commits_write_nothing() {
    let dir = TempDir::new("fault-commit");
    let kept = record(1);
    let lost = record(2);
    let data = b"blob data";
    let hash = blob_hash(data);
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.insert(&kept, ts(100)).unwrap();
        let before = store.stats().unwrap();
        store.inject(Fault::FailCommits);
        assert!(!injected(store.insert(&lost, ts(100))));
        assert!(!injected(store.insert_batch([(&lost, ts(100))])));
        assert!(!injected(store.remove(&kept.id())));
        assert!(!injected(store.put_blob(&hash, data)));
        assert!(!injected(store.add_served_user(&secret(3).public())));
        // Reads go on, and see nothing changed.
        assert!(store.get(&lost.id()).unwrap().is_none());
        assert!(store.contains(&kept.id()).unwrap());
        assert_eq!(store.blob(&hash).unwrap(), None);
        assert_eq!(store.stats().unwrap(), before);
        assert!(store.moderation().unwrap().served_users.is_empty());
        // The transient flavour fails the same way with a transient error.
        store.clear_faults();
        store.inject(Fault::FailCommitsTransiently);
        assert!(injected(store.insert(&lost, ts(100))));
        assert!(store.get(&lost.id()).unwrap().is_none());
        store.clear_faults();
        assert!(store.insert(&lost, ts(100)).unwrap().is_stored());
        assert!(store.remove(&lost.id()).unwrap());
    }
    // Nothing of the failed writes is on disk.
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert!(store.get(&lost.id()).unwrap().is_none());
    assert!(store.get(&kept.id()).unwrap().is_some());
    assert_eq!(store.blob(&hash).unwrap(), None);
    assert_eq!(store.stats().unwrap().records, 1);
}

#[test]
fn failing_after_the_write_still_commits() {
    let dir = TempDir::new("fault-after");
    let a = record(1);
    let b = record(2);
    let data = b"blob data";
    let hash = blob_hash(data);
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.insert(&b, ts(100)).unwrap();
        store.inject(Fault::FailCommitsAfterWrite);
        assert!(!injected(store.insert(&a, ts(100))));
        assert!(!injected(store.remove(&b.id())));
        assert!(!injected(store.put_blob(&hash, data)));
        // A write with nothing to store fails the same way.
        assert!(!injected(store.insert(&a, ts(100))));
        // Reads are not affected, and see the writes.
        assert!(store.contains(&a.id()).unwrap());
        assert!(!store.contains(&b.id()).unwrap());
        assert_eq!(store.blob(&hash).unwrap().as_deref(), Some(&data[..]));
    }
    // The writes are durable.
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.get(&a.id()).unwrap().unwrap().record, a);
    assert!(store.get(&b.id()).unwrap().is_none());
    assert_eq!(store.blob(&hash).unwrap().as_deref(), Some(&data[..]));
    assert_eq!(store.stats().unwrap().records, 1);
}

#[test]
fn failing_reads_fail_every_lookup_but_not_open_iterators() {
    let dir = TempDir::new("fault-read");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let a = record(1);
    let b = record(2);
    store.insert_batch([(&a, ts(100)), (&b, ts(100))]).unwrap();
    let hash = blob_hash(b"x");
    store.put_blob(&hash, b"x").unwrap();
    let filter = FilterBuilder::new()
        .authors([secret(1).public()])
        .build()
        .unwrap();
    let mut open = store.query(&filter, 10).unwrap();
    let mut first = store.query(&filter, 1).unwrap();
    assert_eq!(first.next().unwrap().unwrap().record, b);
    let cursor = first.resume_point().unwrap();

    store.inject(Fault::FailReads);
    assert!(!injected(store.get(&a.id())));
    assert!(!injected(store.contains(&a.id())));
    assert!(!injected(store.latest(&a.address())));
    assert!(!injected(store.versions(&a.address())));
    assert!(!injected(store.query(&filter, 10)));
    assert!(!injected(store.query_after(&filter, 10, cursor)));
    assert!(!injected(store.blob(&hash)));
    // An iterator opened before reads on.
    assert_eq!(open.next().unwrap().unwrap().record, b);
    // Writes go on.
    let c = record(3);
    assert!(store.insert(&c, ts(100)).unwrap().is_stored());

    store.clear_faults();
    let rest: Vec<_> = store
        .query_after(&filter, 10, cursor)
        .unwrap()
        .map(|r| r.unwrap().record)
        .collect();
    assert_eq!(rest, vec![a]);
    assert!(store.contains(&c.id()).unwrap());
}

#[test]
fn faults_add_up_and_clear_together() {
    let dir = TempDir::new("fault-both");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let a = record(1);
    store.inject(Fault::FailReads);
    store.inject(Fault::FailCommits);
    store.inject(Fault::FailReads);
    assert!(!injected(store.insert(&a, ts(100))));
    assert!(!injected(store.get(&a.id())));
    store.clear_faults();
    assert!(store.insert(&a, ts(100)).unwrap().is_stored());
    assert!(store.get(&a.id()).unwrap().is_some());
    // A store opened afresh has no fault.
    drop(store);
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert!(store.contains(&a.id()).unwrap());
}
