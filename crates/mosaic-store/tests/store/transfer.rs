//! BLOBs, export and import.

use mosaic_core::{DuplicateHandling, HEADER_LEN, OwnedFilter};
use mosaic_store::{BlobOutcome, Store, StoreConfig, StoreError, blob_hash};

use crate::common::{Spec, TempDir, kind, secret, ts};

#[test]
fn blobs_are_put_and_got_by_hash() {
    let dir = TempDir::new("blobs");
    let mut config = StoreConfig::default();
    config.max_blob_len = 1000;
    let store = Store::open(dir.path(), config).unwrap();
    let data = b"a picture, say".to_vec();
    let hash = blob_hash(&data);
    assert_eq!(store.put_blob(&hash, &data).unwrap(), BlobOutcome::Stored);
    assert_eq!(
        store.put_blob(&hash, &data).unwrap(),
        BlobOutcome::Duplicate
    );
    assert_eq!(store.blob(&hash).unwrap(), Some(data.clone()));
    assert_eq!(store.blob(&[0u8; 32]).unwrap(), None);

    match store.put_blob(&[1u8; 32], &data) {
        Err(StoreError::BlobHashMismatch { claimed, actual }) => {
            assert_eq!(claimed, [1u8; 32]);
            assert_eq!(actual, hash);
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    let big = vec![0u8; 1001];
    assert!(matches!(
        store.put_blob(&blob_hash(&big), &big),
        Err(StoreError::BlobTooLarge {
            len: 1001,
            max: 1000
        })
    ));
    let exact = vec![1u8; 1000];
    store.put_blob(&blob_hash(&exact), &exact).unwrap();

    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.blobs, stats.blob_bytes),
        (2, data.len() as u64 + 1000)
    );
    assert!(store.remove_blob(&hash).unwrap());
    assert!(!store.remove_blob(&hash).unwrap());
    assert_eq!(store.blob(&hash).unwrap(), None);
    let stats = store.stats().unwrap();
    assert_eq!((stats.blobs, stats.blob_bytes), (1, 1000));
}

fn filled_store(dir: &TempDir) -> (Store, Vec<mosaic_core::OwnedRecord>) {
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(1);
    let records: Vec<_> = (0..50u64)
        .map(|i| {
            let handling = if i % 5 == 0 {
                DuplicateHandling::Replaceable
            } else {
                DuplicateHandling::Unique
            };
            Spec::new(kind(handling, 1), ts(i), &i.to_le_bytes())
                .payload(&vec![i as u8; i as usize])
                .sign(&k)
        })
        .collect();
    store
        .insert_batch(records.iter().map(|r| (r, ts(7))))
        .unwrap();
    (store, records)
}

fn all_ids(store: &Store) -> Vec<mosaic_core::Id> {
    store
        .query(&OwnedFilter::empty(), usize::MAX)
        .unwrap()
        .map(|r| r.unwrap().record.id())
        .collect()
}

#[test]
fn export_then_import_restores_every_record() {
    let a = TempDir::new("export-a");
    let (source, records) = filled_store(&a);
    let mut stream = Vec::new();
    let mut seen = Vec::new();
    assert_eq!(source.export(&mut stream, |n| seen.push(n)).unwrap(), 50);
    assert_eq!(seen.last(), Some(&50));
    // Frames: u32 LE length, then the exact record bytes, oldest first.
    assert_eq!(&stream[..4], &(records[0].len() as u32).to_le_bytes());
    assert_eq!(&stream[4..4 + records[0].len()], records[0].as_bytes());

    let b = TempDir::new("export-b");
    let mut config = StoreConfig::default();
    config.import_batch = 7;
    let target = Store::open(b.path(), config).unwrap();
    let mut progress = Vec::new();
    let report = target
        .import(stream.as_slice(), ts(99), |n| progress.push(n))
        .unwrap();
    assert_eq!(report.read, 50);
    assert_eq!(report.inserted, 50);
    assert_eq!(report.invalid, 0);
    assert_eq!(progress, vec![7, 14, 21, 28, 35, 42, 49, 50]);
    assert_eq!(all_ids(&target), all_ids(&source));
    assert_eq!(target.stats().unwrap().kinds, source.stats().unwrap().kinds);
    let got = target.get(&records[3].id()).unwrap().unwrap();
    assert_eq!(got.record, records[3]);
    assert_eq!(got.received_at, ts(99));

    // Importing again changes nothing.
    let again = target.import(stream.as_slice(), ts(100), |_| {}).unwrap();
    assert_eq!((again.read, again.duplicates, again.inserted), (50, 50, 0));

    // A batch also ends at `import_batch_bytes`: here after the record
    // that reaches three records' worth of bytes.
    let c = TempDir::new("export-c");
    let mut config = StoreConfig::default();
    config.import_batch_bytes = 3 * records[0].len() as u64;
    let target = Store::open(c.path(), config).unwrap();
    let mut progress = Vec::new();
    let report = target
        .import(stream.as_slice(), ts(99), |n| progress.push(n))
        .unwrap();
    assert_eq!(report.inserted, 50);
    let mut expected = Vec::new();
    let (mut read, mut bytes) = (0u64, 0u64);
    for r in &records {
        read += 1;
        bytes += r.len() as u64;
        if bytes >= 3 * records[0].len() as u64 {
            expected.push(read);
            bytes = 0;
        }
    }
    if expected.last() != Some(&50) {
        expected.push(50);
    }
    assert_eq!(progress, expected);
    assert!(progress.len() > 10, "{progress:?}");
    assert_eq!(all_ids(&target), all_ids(&source));
}

#[test]
fn import_revalidates_and_stops_on_broken_frames() {
    let a = TempDir::new("import-a");
    let (source, records) = filled_store(&a);
    let mut stream = Vec::new();
    source.export(&mut stream, |_| {}).unwrap();

    // Flip a signature byte of the first record (it has no tags or payload).
    let mut forged = stream.clone();
    forged[4 + HEADER_LEN] ^= 1;
    let b = TempDir::new("import-b");
    let target = Store::open(b.path(), StoreConfig::default()).unwrap();
    let report = target.import(forged.as_slice(), ts(1), |_| {}).unwrap();
    assert_eq!((report.read, report.invalid, report.inserted), (50, 1, 49));
    assert!(!target.contains(&records[0].id()).unwrap());

    // Cut inside the last record.
    let c = TempDir::new("import-c");
    let target = Store::open(c.path(), StoreConfig::default()).unwrap();
    let cut = &stream[..stream.len() - 3];
    let last_at = (stream.len() - 4 - records[49].len()) as u64;
    match target.import(cut, ts(1), |_| {}) {
        Err(StoreError::ImportTruncated { offset }) => assert_eq!(offset, last_at),
        other => panic!("expected a truncated import, got {other:?}"),
    }

    // A length no record can have.
    let mut framed = stream[..4 + records[0].len()].to_vec();
    framed.extend_from_slice(&[3, 0, 0, 0, 1, 2, 3]);
    match target.import(framed.as_slice(), ts(1), |_| {}) {
        Err(StoreError::ImportFrame { offset, len }) => {
            assert_eq!(offset, 4 + records[0].len() as u64);
            assert_eq!(len, 3);
        }
        other => panic!("expected a frame error, got {other:?}"),
    }
    // An empty stream imports nothing.
    let report = target.import(&[][..], ts(1), |_| {}).unwrap();
    assert_eq!(report.read, 0);
}
