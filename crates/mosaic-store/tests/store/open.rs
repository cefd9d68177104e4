//! Opening: format versions, foreign files, double opens, damaged data,
//! snapshots and concurrency.

use std::sync::Arc;

use mosaic_core::{DuplicateHandling, FilterBuilder, OwnedFilter};
use mosaic_store::{
    Corruption, DATABASE_FILE, InsertOutcome, LOG_FILE, LogProblem, Store, StoreConfig, StoreError,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::common::{Spec, TempDir, kind, secret, ts};

const META: TableDefinition<'static, &'static str, &'static [u8]> = TableDefinition::new("meta");
const RECORDS: TableDefinition<'static, &'static [u8; 16], &'static [u8]> =
    TableDefinition::new("records");
const BY_AUTHOR_KIND: TableDefinition<'static, &'static [u8; 56], &'static [u8]> =
    TableDefinition::new("by_author_kind");

#[test]
fn a_store_reopens_with_its_records() {
    let dir = TempDir::new("reopen");
    let r = Spec::new(kind(DuplicateHandling::Unique, 1), ts(1), b"r").sign(&secret(1));
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        assert_eq!(store.path(), dir.path().join(DATABASE_FILE));
        store.insert(&r, ts(2)).unwrap();
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let got = store.get(&r.id()).unwrap().unwrap();
    assert_eq!(got.record, r);
    assert_eq!(got.received_at, ts(2));
}

#[test]
fn an_interrupted_creation_leaves_nothing_behind() {
    let dir = TempDir::new("create");
    // What a crash while creating leaves: a half-written file under the
    // temporary name, and no store.
    let leftover = dir.path().join(format!("{DATABASE_FILE}.new-999999"));
    std::fs::write(&leftover, b"half a header").unwrap();
    let log_leftover = dir.path().join(format!("{LOG_FILE}.new-999999"));
    std::fs::write(&log_leftover, b"MOSAIC").unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert!(!leftover.exists());
    assert!(!log_leftover.exists());
    assert!(dir.path().join(DATABASE_FILE).exists());
    assert_eq!(store.stats().unwrap().records, 0);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec![DATABASE_FILE.to_owned(), LOG_FILE.to_owned()]);
}

#[test]
fn another_format_version_is_refused_untouched() {
    let dir = TempDir::new("version");
    drop(Store::open(dir.path(), StoreConfig::default()).unwrap());
    let file = dir.path().join(DATABASE_FILE);
    {
        let db = Database::create(&file).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format_version", [7u8].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    match Store::open(dir.path(), StoreConfig::default()) {
        Err(StoreError::FormatVersion {
            found, expected, ..
        }) => {
            assert_eq!(found, 7);
            assert_eq!(expected, 2);
        }
        other => panic!("expected a format version error, got {other:?}"),
    }
    // Nothing was migrated.
    let db = Database::create(&file).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    assert_eq!(meta.get("format_version").unwrap().unwrap().value(), &[7u8]);
}

#[test]
fn a_foreign_database_is_not_a_store() {
    let dir = TempDir::new("foreign");
    {
        let db = Database::create(dir.path().join(DATABASE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        let def: TableDefinition<'_, u64, u64> = TableDefinition::new("accounts");
        txn.open_table(def).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        Store::open(dir.path(), StoreConfig::default()),
        Err(StoreError::NotAStore { .. })
    ));
}

#[test]
fn a_file_that_is_no_database_is_an_error() {
    let dir = TempDir::new("garbage");
    std::fs::write(dir.path().join(DATABASE_FILE), vec![0x5au8; 10_000]).unwrap();
    let err = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

#[test]
fn a_second_open_is_refused() {
    let dir = TempDir::new("twice");
    let _store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert!(matches!(
        Store::open(dir.path(), StoreConfig::default()),
        Err(StoreError::AlreadyOpen { .. })
    ));
}

#[test]
fn damaged_records_are_errors_never_panics() {
    let dir = TempDir::new("damaged");
    let k = secret(1);
    let unique = kind(DuplicateHandling::Unique, 1);
    let good = Spec::new(unique, ts(1), b"good").sign(&k);
    let bad = Spec::new(unique, ts(2), b"bad").sign(&k);
    let dangling = Spec::new(unique, ts(3), b"dangling").sign(&k);
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store
            .insert_batch([(&good, ts(0)), (&bad, ts(0)), (&dangling, ts(0))])
            .unwrap();
    }
    {
        let db = Database::create(dir.path().join(DATABASE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut records = txn.open_table(RECORDS).unwrap();
            // Records are keyed by the first 16 bytes of their ids.
            let key = |id: mosaic_core::Id| -> [u8; 16] { id.as_bytes()[..16].try_into().unwrap() };
            // Cut the record short behind its metadata.
            let value = records
                .get(&key(bad.id()))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            records
                .insert(&key(bad.id()), &value[..value.len() - 16])
                .unwrap();
            records.remove(&key(dangling.id())).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert!(matches!(
        store.get(&bad.id()),
        Err(StoreError::Corrupt(Corruption::Record { .. }))
    ));
    let by_author = FilterBuilder::new().authors([k.public()]).build().unwrap();
    let items: Vec<_> = store.query(&by_author, 10).unwrap().collect();
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(matches!(
        items[0],
        Err(StoreError::Corrupt(Corruption::DanglingIndex { id_prefix, .. }))
            if id_prefix[..] == dangling.id().as_bytes()[..16]
    ));
    assert!(matches!(
        items[1],
        Err(StoreError::Corrupt(Corruption::Record { id_prefix, .. }))
            if id_prefix[..] == bad.id().as_bytes()[..16]
    ));
    assert_eq!(items[2].as_ref().unwrap().record, good);
    // A scan sees the damaged record too, and goes on.
    let scanned: Vec<_> = store.query(&OwnedFilter::empty(), 10).unwrap().collect();
    assert_eq!(scanned.len(), 2);
    assert!(scanned[0].is_err());
    // An export refuses to skip it silently.
    assert!(matches!(
        store.export(Vec::new(), |_| {}),
        Err(StoreError::Corrupt(_))
    ));
    // Removal of a damaged record reports the damage and changes nothing.
    assert!(matches!(
        store.remove(&bad.id()),
        Err(StoreError::Corrupt(_))
    ));
    assert!(store.contains(&bad.id()).unwrap());
}

#[test]
fn a_short_id_held_by_another_record_refuses_the_insert() {
    // Records are keyed by the first 16 bytes of their ids; two records
    // sharing them take a deliberate hash collision. Simulate one: the slot
    // of `a` and `r` holds the bytes of `held`.
    let dir = TempDir::new("short-id");
    let k = secret(1);
    let held = Spec::new(kind(DuplicateHandling::Unique, 1), ts(1), b"held").sign(&k);
    let a = Spec::new(kind(DuplicateHandling::Unique, 1), ts(2), b"a").sign(&k);
    let r = Spec::new(kind(DuplicateHandling::Replaceable, 2), ts(3), b"r").sign(&k);
    let key = |id: mosaic_core::Id| -> [u8; 16] { id.as_bytes()[..16].try_into().unwrap() };
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.insert(&held, ts(0)).unwrap();
    }
    {
        let db = Database::create(dir.path().join(DATABASE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut records = txn.open_table(RECORDS).unwrap();
            let value = records
                .get(&key(held.id()))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            records.insert(&key(a.id()), value.as_slice()).unwrap();
            records.insert(&key(r.id()), value.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let before = store.stats().unwrap();
    assert_eq!(store.insert(&a, ts(5)).unwrap(), InsertOutcome::Duplicate);
    assert_eq!(store.insert(&r, ts(5)).unwrap(), InsertOutcome::Duplicate);
    assert!(!store.contains(&a.id()).unwrap());
    assert!(!store.contains(&r.id()).unwrap());
    assert!(store.contains(&held.id()).unwrap());
    assert_eq!(store.stats().unwrap().kinds, before.kinds);
    let f = FilterBuilder::new().authors([k.public()]).build().unwrap();
    let found: Vec<_> = store
        .query(&f, 10)
        .unwrap()
        .map(|r| r.unwrap().record)
        .collect();
    assert_eq!(found, vec![held.clone()]);
}

#[test]
fn damaged_index_blocks_are_errors() {
    let dir = TempDir::new("badblock");
    let k = secret(1);
    let r = Spec::new(kind(DuplicateHandling::Unique, 1), ts(1), b"r").sign(&k);
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.insert(&r, ts(0)).unwrap();
    }
    {
        let db = Database::create(dir.path().join(DATABASE_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut idx = txn.open_table(BY_AUTHOR_KIND).unwrap();
            // A block below the record's, holding 10 bytes: no whole entry.
            let mut key = [0u8; 56];
            key[..32].copy_from_slice(k.public().as_bytes());
            key[32..40].copy_from_slice(&r.kind().to_be_bytes());
            idx.insert(&key, [1u8; 10].as_slice()).unwrap();
            // A block above every id: never read.
            let mut above = key;
            above[40..].fill(0xff);
            idx.insert(&above, [0xffu8; 24].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let f = FilterBuilder::new().authors([k.public()]).build().unwrap();
    let items: Vec<_> = store.query(&f, 10).unwrap().collect();
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().record, r);
    assert!(matches!(
        items[1],
        Err(StoreError::Corrupt(Corruption::IndexBlock { .. }))
    ));
}

#[test]
fn readers_see_a_snapshot_and_never_block_the_writer() {
    let dir = TempDir::new("snapshot");
    let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).unwrap());
    let k = secret(1);
    let unique = kind(DuplicateHandling::Unique, 1);
    let first: Vec<_> = (0..10)
        .map(|i| Spec::new(unique, ts(i), &[i as u8]).sign(&k))
        .collect();
    store
        .insert_batch(first.iter().map(|r| (r, ts(0))))
        .unwrap();
    let f = FilterBuilder::new().kinds([unique]).build().unwrap();
    let mut reading = store.query(&f, 100).unwrap();
    let head = reading.next().unwrap().unwrap();
    assert_eq!(head.record, first[9]);

    // A writer on another thread commits while the reader is half way.
    let writer = {
        let store = Arc::clone(&store);
        let later = Spec::new(unique, ts(100), b"later").sign(&k);
        std::thread::spawn(move || store.insert(&later, ts(1)).unwrap())
    };
    assert_eq!(writer.join().unwrap(), InsertOutcome::Inserted);
    store.remove(&first[0].id()).unwrap();

    // The open iterator still sees its snapshot: nine more, the removed one included.
    let rest: Vec<_> = reading.map(|r| r.unwrap().record).collect();
    assert_eq!(rest.len(), 9);
    assert_eq!(rest.last(), Some(&first[0]));
    // A new query sees the new state.
    let now: Vec<_> = store.query(&f, 100).unwrap().collect();
    assert_eq!(now.len(), 10);
}

#[test]
fn concurrent_writers_and_readers_agree() {
    let dir = TempDir::new("threads");
    let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).unwrap());
    let unique = kind(DuplicateHandling::Unique, 1);
    let mut handles = Vec::new();
    for t in 0..4u64 {
        let store = Arc::clone(&store);
        handles.push(std::thread::spawn(move || {
            let k = secret(10 + t);
            for i in 0..10u64 {
                let r = Spec::new(unique, ts(i), &[t as u8, i as u8]).sign(&k);
                assert_eq!(store.insert(&r, ts(0)).unwrap(), InsertOutcome::Inserted);
                let f = FilterBuilder::new().authors([k.public()]).build().unwrap();
                assert_eq!(store.query(&f, 100).unwrap().count(), i as usize + 1);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.stats().unwrap().records, 40);
}

/// A store that checkpoints only when told, so that its log keeps every
/// write.
fn logging_config() -> StoreConfig {
    let mut config = StoreConfig::default();
    config.checkpoint_records = u64::MAX;
    config.checkpoint_interval = std::time::Duration::from_secs(3600);
    config.checkpoint_bytes = u64::MAX;
    config
}

/// Copies a store's files as they are on disk: what a process killed at
/// this instant would leave behind.
fn crash_image(from: &TempDir) -> TempDir {
    let to = TempDir::new("image");
    for name in [DATABASE_FILE, LOG_FILE] {
        std::fs::copy(from.path().join(name), to.path().join(name)).unwrap();
    }
    to
}

#[test]
fn acknowledged_writes_are_replayed_from_the_log_and_a_torn_tail_is_dropped() {
    let dir = TempDir::new("replay");
    let store = Store::open(dir.path(), logging_config()).unwrap();
    let key = secret(1);
    let unique = kind(DuplicateHandling::Unique, 1);
    let replaceable = kind(DuplicateHandling::Replaceable, 2);
    let kept: Vec<_> = (0..20u64)
        .map(|i| Spec::new(unique, ts(i), &i.to_le_bytes()).sign(&key))
        .collect();
    for chunk in kept.chunks(7) {
        store
            .insert_batch(chunk.iter().map(|r| (r, ts(99))))
            .unwrap();
    }
    // Three versions at one address, the middle one replaced within its
    // batch; then a removal.
    let versions: Vec<_> = (0..3u64)
        .map(|i| Spec::new(replaceable, ts(100 + i), b"here").sign(&key))
        .collect();
    store.insert(&versions[0], ts(99)).unwrap();
    store
        .insert_batch([(&versions[1], ts(99)), (&versions[2], ts(99))])
        .unwrap();
    assert!(store.remove(&kept[3].id()).unwrap());
    let image = crash_image(&dir);
    let log_len = std::fs::metadata(image.path().join(LOG_FILE))
        .unwrap()
        .len();
    // A torn entry at the end: an append the kill cut short.
    {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(image.path().join(LOG_FILE))
            .unwrap();
        log.write_all(&[0x40, 0, 0, 0, 1, 2, 3]).unwrap();
    }
    let expected = store.stats().unwrap();
    drop(store);
    for _ in 0..2 {
        let recovered = Store::open(image.path(), StoreConfig::default()).unwrap();
        for (i, r) in kept.iter().enumerate() {
            assert_eq!(recovered.contains(&r.id()).unwrap(), i != 3, "record {i}");
        }
        let address = versions[2].address();
        let at_address: Vec<_> = recovered
            .versions(&address)
            .unwrap()
            .map(|r| r.unwrap().record.id())
            .collect();
        assert_eq!(at_address, [versions[2].id()]);
        let mut stats = recovered.stats().unwrap();
        stats.file_bytes = expected.file_bytes;
        assert_eq!(stats, expected);
        // Recovery checkpointed and emptied the log.
        assert!(
            std::fs::metadata(image.path().join(LOG_FILE))
                .unwrap()
                .len()
                < log_len
        );
    }
}

#[test]
fn a_log_of_another_store_or_format_is_refused() {
    let (a, b) = (TempDir::new("log-a"), TempDir::new("log-b"));
    let record = Spec::new(kind(DuplicateHandling::Unique, 1), ts(1), b"a").sign(&secret(1));
    drop(Store::open(a.path(), StoreConfig::default()).unwrap());
    {
        let store = Store::open(b.path(), logging_config()).unwrap();
        store.insert(&record, ts(2)).unwrap();
        let image = crash_image(&b);
        std::fs::copy(image.path().join(LOG_FILE), a.path().join(LOG_FILE)).unwrap();
    }
    let refused = |dir: &TempDir| match Store::open(dir.path(), StoreConfig::default()) {
        Err(StoreError::Log { path, problem }) => {
            assert_eq!(path, dir.path().join(LOG_FILE));
            problem
        }
        other => panic!("expected a refused log, got {other:?}"),
    };
    assert_eq!(refused(&a), LogProblem::OtherStore);
    let message = Store::open(a.path(), StoreConfig::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("another store"), "{message}");
    // Not a log at all; a log of another version.
    std::fs::write(
        a.path().join(LOG_FILE),
        b"something else entirely, and long enough",
    )
    .unwrap();
    assert_eq!(refused(&a), LogProblem::NotALog);
    let mut bytes = std::fs::read(b.path().join(LOG_FILE)).unwrap();
    bytes[8] = 99;
    std::fs::write(b.path().join(LOG_FILE), &bytes).unwrap();
    assert!(matches!(refused(&b), LogProblem::Version { found: 99, .. }));
    bytes[8] = 1;
    std::fs::write(b.path().join(LOG_FILE), &bytes).unwrap();
    // Put back, the store's own log opens, with the record.
    let store = Store::open(b.path(), StoreConfig::default()).unwrap();
    assert!(store.contains(&record.id()).unwrap());
}

/// After a checkpoint the log is written again from its start, over the
/// old entries, without shrinking: recovery replays the new entries and
/// stops at the first old one, which the checkpoint already holds.
#[test]
fn a_log_written_over_its_old_entries_recovers_only_the_new_ones() {
    let dir = TempDir::new("rewind");
    let store = Store::open(dir.path(), logging_config()).unwrap();
    let key = secret(9);
    let unique = kind(DuplicateHandling::Unique, 1);
    // Long old entries, then a checkpoint.
    let old: Vec<_> = (0..5u64)
        .map(|i| Spec::new(unique, ts(1_000 + i), &[b'o'; 2_000]).sign(&key))
        .collect();
    for r in &old {
        store.insert(r, ts(1)).unwrap();
    }
    let full = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
    store.checkpoint().unwrap();
    assert_eq!(
        std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len(),
        full,
        "the log keeps its length"
    );
    // Short new entries over the first old one; one record removed.
    let new: Vec<_> = (0..3u64)
        .map(|i| Spec::new(unique, ts(2_000 + i), b"n").sign(&key))
        .collect();
    for r in &new {
        store.insert(r, ts(2)).unwrap();
    }
    assert!(store.remove(&old[0].id()).unwrap());
    let image = crash_image(&dir);
    drop(store);
    let recovered = Store::open(image.path(), logging_config()).unwrap();
    for r in &new {
        assert!(recovered.contains(&r.id()).unwrap());
    }
    assert!(
        !recovered.contains(&old[0].id()).unwrap(),
        "the removal replays"
    );
    for r in &old[1..] {
        assert!(recovered.contains(&r.id()).unwrap());
    }
    assert_eq!(recovered.stats().unwrap().records, 7);
}
