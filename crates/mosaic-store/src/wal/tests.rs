//! The log's layout: what reading keeps and where it stops.

use super::*;

const ID: StoreId = [7u8; 16];

fn log_of(entries: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = header(&ID).to_vec();
    for (seq, payload) in entries {
        out.extend_from_slice(&entry(*seq, payload));
    }
    out
}

fn seqs(parsed: &Parsed) -> Vec<u64> {
    parsed.entries.iter().map(|(s, _)| *s).collect()
}

#[test]
fn whole_entries_are_read_in_order() {
    let bytes = log_of(&[(5, b"\x02"), (6, b"\x01abc"), (7, b"")]);
    let parsed = parse(&bytes, &ID).unwrap();
    assert_eq!(seqs(&parsed), [5, 6, 7]);
    assert_eq!(parsed.end, bytes.len());
    assert_eq!(&bytes[parsed.entries[1].1.clone()], b"\x01abc");
    // An empty log is its header.
    let empty = parse(&header(&ID), &ID).unwrap();
    assert!(empty.entries.is_empty());
    assert_eq!(empty.end, HEADER_LEN);
}

#[test]
fn a_torn_tail_is_dropped_at_every_cut() {
    let whole = log_of(&[(1, b"\x01first"), (2, b"\x01second entry")]);
    let first_end = HEADER_LEN + ENTRY_HEAD + 6;
    for cut in first_end..whole.len() {
        let parsed = parse(&whole[..cut], &ID).unwrap();
        assert_eq!(seqs(&parsed), [1], "cut at {cut}");
        assert_eq!(parsed.end, first_end);
    }
    for cut in HEADER_LEN..first_end {
        let parsed = parse(&whole[..cut], &ID).unwrap();
        assert!(parsed.entries.is_empty(), "cut at {cut}");
        assert_eq!(parsed.end, HEADER_LEN);
    }
}

#[test]
fn a_bad_checksum_ends_the_log() {
    let whole = log_of(&[(1, b"\x01one"), (2, b"\x01two"), (3, b"\x01three")]);
    let second = HEADER_LEN + ENTRY_HEAD + 4;
    // Any flipped bit of the second entry (length, checksum, sequence or
    // payload) ends the log before it.
    for at in second..second + ENTRY_HEAD + 4 {
        let mut bytes = whole.clone();
        bytes[at] ^= 0x10;
        let parsed = parse(&bytes, &ID).unwrap();
        assert_eq!(seqs(&parsed), [1], "flipped byte {at}");
        assert_eq!(parsed.end, second);
    }
    // Zeros where an entry should be (a file extended but never written).
    let mut bytes = log_of(&[(1, b"\x01one")]);
    bytes.extend_from_slice(&[0u8; 64]);
    assert_eq!(seqs(&parse(&bytes, &ID).unwrap()), [1]);
}

#[test]
fn a_sequence_gap_ends_the_log() {
    let bytes = log_of(&[(1, b"\x01a"), (2, b"\x01b"), (4, b"\x01d"), (5, b"\x01e")]);
    let parsed = parse(&bytes, &ID).unwrap();
    assert_eq!(seqs(&parsed), [1, 2]);
    // An older entry after a newer one (stale bytes) too.
    let bytes = log_of(&[(8, b"\x01a"), (9, b"\x01b"), (3, b"\x01c")]);
    assert_eq!(seqs(&parse(&bytes, &ID).unwrap()), [8, 9]);
}

#[test]
fn a_wrong_magic_version_or_store_is_refused() {
    let mut bytes = log_of(&[(1, b"\x01a")]);
    bytes[0] = b'X';
    assert_eq!(parse(&bytes, &ID), Err(LogProblem::NotALog));
    assert_eq!(parse(&header(&ID)[..10], &ID), Err(LogProblem::NotALog));
    let mut bytes = log_of(&[(1, b"\x01a")]);
    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    assert_eq!(
        parse(&bytes, &ID),
        Err(LogProblem::Version {
            found: 9,
            expected: LOG_VERSION
        })
    );
    let bytes = log_of(&[(1, b"\x01a")]);
    assert_eq!(parse(&bytes, &[8u8; 16]), Err(LogProblem::OtherStore));
    let mut bytes = log_of(&[(1, b"\x01a")]);
    bytes[30] ^= 1;
    assert_eq!(parse(&bytes, &ID), Err(LogProblem::DamagedHeader));
}

#[test]
fn payloads_decode_or_are_refused() {
    let key = mosaic_core::SecretKey::from_bytes(&[3u8; 32]);
    let at = Timestamp::from_nanos(1_700_000_000_000_000_000).unwrap();
    let record = mosaic_core::RecordBuilder::new(mosaic_core::Kind::MICROBLOG_ROOT, at)
        .nonce(mosaic_core::Nonce::from_key(b"wal"))
        .payload(b"logged")
        .build(&key)
        .unwrap();
    let payload = insert_payload([(&*record, at)].into_iter());
    match decode(&payload) {
        Some(Op::Insert(records)) => {
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].0.as_bytes(), record.as_bytes());
            assert_eq!(records[0].1, at);
        }
        other => panic!("{other:?}"),
    }
    let id = record.id();
    match decode(&remove_payload([&id].into_iter())) {
        Some(Op::Remove(ids)) => assert_eq!(ids, [id]),
        other => panic!("{other:?}"),
    }
    // Cut short, or an unknown operation.
    assert!(decode(&payload[..payload.len() - 1]).is_none());
    assert!(decode(&[9]).is_none());
    assert!(decode(&[]).is_none());
}

/// A directory for one test, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "mosaic-store-wal-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn record(n: u64, kind: mosaic_core::Kind) -> mosaic_core::OwnedRecord {
    let at = Timestamp::from_nanos(1_700_000_000_000_000_000 + n).unwrap();
    mosaic_core::RecordBuilder::new(kind, at)
        .nonce(mosaic_core::Nonce::from_key(&n.to_le_bytes()))
        .build(&mosaic_core::SecretKey::from_bytes(&[5u8; 32]))
        .unwrap()
}

fn at(n: u64) -> Timestamp {
    Timestamp::from_nanos(1_800_000_000_000_000_000 + n).unwrap()
}

fn logging_config() -> crate::StoreConfig {
    crate::StoreConfig {
        checkpoint_records: u64::MAX,
        checkpoint_bytes: u64::MAX,
        checkpoint_interval: std::time::Duration::from_secs(3600),
        ..Default::default()
    }
}

fn syncs(store: &crate::Store) -> u64 {
    store.log.lock().unwrap().syncs
}

#[test]
fn every_acknowledged_record_write_syncs_the_log_once() {
    let dir = TempDir::new("syncs");
    let store = crate::Store::open(&dir.0, logging_config()).unwrap();
    let kind = mosaic_core::Kind::MICROBLOG_ROOT;
    let a = record(1, kind);
    let b = record(2, kind);
    assert_eq!(syncs(&store), 0);
    store.insert_batch([(&a, at(1)), (&b, at(1))]).unwrap();
    assert_eq!(syncs(&store), 1);
    store.insert(&a, at(2)).unwrap();
    assert_eq!(syncs(&store), 1, "a duplicate writes nothing");
    assert!(store.remove(&a.id()).unwrap());
    assert_eq!(syncs(&store), 2);
    assert!(!store.remove(&a.id()).unwrap());
    assert_eq!(syncs(&store), 2, "removing nothing writes nothing");
    // A batch of `checkpoint_records` records commits durably instead.
    let mut config = logging_config();
    config.checkpoint_records = 2;
    drop(store);
    let store = crate::Store::open(&dir.0, config).unwrap();
    let (c, d) = (record(3, kind), record(4, kind));
    store.insert_batch([(&c, at(3)), (&d, at(3))]).unwrap();
    assert_eq!(syncs(&store), 0);
    assert!(store.contains(&d.id()).unwrap());
}

/// The store's identity, read from its closed database.
fn store_id(dir: &TempDir) -> StoreId {
    use redb::ReadableDatabase;
    let db = redb::Database::open(dir.0.join(crate::DATABASE_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(crate::layout::META).unwrap();
    let value = meta.get(crate::layout::META_STORE_ID).unwrap().unwrap();
    value.value().try_into().unwrap()
}

#[test]
fn entries_the_database_holds_are_not_applied_again() {
    let dir = TempDir::new("skip");
    let kind = mosaic_core::Kind::MICROBLOG_ROOT;
    let x = record(1, kind);
    let logged_insert = {
        let store = crate::Store::open(&dir.0, logging_config()).unwrap();
        store.insert(&x, at(1)).unwrap();
        let log = std::fs::read(dir.0.join(LOG_FILE)).unwrap();
        assert!(store.remove(&x.id()).unwrap());
        store.checkpoint().unwrap();
        log
    };
    // The log as it was before the removal and the checkpoint: its insert
    // is older than what the database holds, and applying it again would
    // bring the removed record back.
    std::fs::write(dir.0.join(LOG_FILE), &logged_insert).unwrap();
    let store = crate::Store::open(&dir.0, logging_config()).unwrap();
    assert!(!store.contains(&x.id()).unwrap());
    assert_eq!(store.stats().unwrap().records, 0);
}

#[test]
fn a_log_that_begins_after_the_database_is_refused() {
    let dir = TempDir::new("gap");
    drop(crate::Store::open(&dir.0, logging_config()).unwrap());
    let id = store_id(&dir);
    let x = record(1, mosaic_core::Kind::MICROBLOG_ROOT);
    let mut log = header(&id).to_vec();
    log.extend_from_slice(&entry(5, &insert_payload([(&*x, at(1))].into_iter())));
    std::fs::write(dir.0.join(LOG_FILE), &log).unwrap();
    match crate::Store::open(&dir.0, logging_config()) {
        Err(StoreError::Log {
            problem:
                LogProblem::Gap {
                    checkpointed: 0,
                    first: 5,
                },
            ..
        }) => {}
        other => panic!("expected a gap, got {other:?}"),
    }
    // Numbered right, the same entry is replayed.
    let mut log = header(&id).to_vec();
    log.extend_from_slice(&entry(1, &insert_payload([(&*x, at(1))].into_iter())));
    std::fs::write(dir.0.join(LOG_FILE), &log).unwrap();
    let store = crate::Store::open(&dir.0, logging_config()).unwrap();
    assert_eq!(store.get(&x.id()).unwrap().unwrap().received_at, at(1));
}
