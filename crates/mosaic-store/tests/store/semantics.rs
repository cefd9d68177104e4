//! Kind semantics (D-7), lookups, removal and counts.

use mosaic_core::{Address, DuplicateHandling, FilterBuilder, Id, OwnedTag, TagType};
use mosaic_store::{InsertOutcome, Store, StoreConfig, StoredRecord};

use crate::common::{Spec, TempDir, kind, secret, ts};

fn ids(found: impl Iterator<Item = Result<StoredRecord, mosaic_store::StoreError>>) -> Vec<Id> {
    found.map(|r| r.expect("readable").record.id()).collect()
}

#[test]
fn unique_records_at_one_address_are_kept_side_by_side() {
    let dir = TempDir::new("unique");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(1);
    let unique = kind(DuplicateHandling::Unique, 1);
    let a = Spec::new(unique, ts(10), b"same").sign(&k);
    let b = Spec::new(unique, ts(20), b"same").sign(&k);
    assert_eq!(store.insert(&a, ts(100)).unwrap(), InsertOutcome::Inserted);
    assert_eq!(store.insert(&b, ts(101)).unwrap(), InsertOutcome::Inserted);
    assert_eq!(store.insert(&a, ts(102)).unwrap(), InsertOutcome::Duplicate);
    let address = a.address();
    assert_eq!(ids(store.versions(&address).unwrap()), vec![b.id(), a.id()]);
    assert_eq!(store.latest(&address).unwrap().unwrap().record, b);
    // The duplicate did not change the received time.
    assert_eq!(store.get(&a.id()).unwrap().unwrap().received_at, ts(100));
}

#[test]
fn ephemeral_records_are_never_stored() {
    let dir = TempDir::new("ephemeral");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let r = Spec::new(kind(DuplicateHandling::Ephemeral, 2), ts(1), b"e").sign(&secret(1));
    assert_eq!(store.insert(&r, ts(2)).unwrap(), InsertOutcome::Ephemeral);
    assert_eq!(store.insert(&r, ts(3)).unwrap(), InsertOutcome::Ephemeral);
    assert!(store.get(&r.id()).unwrap().is_none());
    assert!(!store.contains(&r.id()).unwrap());
    assert_eq!(store.stats().unwrap().records, 0);
}

#[test]
fn replaceable_records_keep_only_the_newest() {
    let dir = TempDir::new("replaceable");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(1);
    let repl = kind(DuplicateHandling::Replaceable, 3);
    let tag = OwnedTag::new(TagType(0x77), b"topic").unwrap();
    let old = Spec::new(repl, ts(10), b"profile")
        .tag(tag.clone())
        .sign(&k);
    let new = Spec::new(repl, ts(20), b"profile").payload(b"v2").sign(&k);
    assert_eq!(store.insert(&old, ts(1)).unwrap(), InsertOutcome::Inserted);
    assert_eq!(
        store.insert(&new, ts(2)).unwrap(),
        InsertOutcome::Replaced { old: old.id() }
    );
    // The old record and all its index entries are gone.
    assert!(store.get(&old.id()).unwrap().is_none());
    let by_tag = FilterBuilder::new().included_tags([&*tag]).build().unwrap();
    assert!(ids(store.query(&by_tag, 10).unwrap()).is_empty());
    let by_author = FilterBuilder::new().authors([k.public()]).build().unwrap();
    assert_eq!(ids(store.query(&by_author, 10).unwrap()), vec![new.id()]);
    // An older submission is superseded and not stored; a repeat is a duplicate.
    assert_eq!(
        store.insert(&old, ts(3)).unwrap(),
        InsertOutcome::Superseded { newer: new.id() }
    );
    assert_eq!(store.insert(&new, ts(4)).unwrap(), InsertOutcome::Duplicate);
    assert!(store.get(&old.id()).unwrap().is_none());
    assert_eq!(ids(store.versions(&new.address()).unwrap()), vec![new.id()]);
    let stats = store.stats().unwrap();
    assert_eq!(stats.records, 1);
    assert_eq!(stats.record_bytes, new.len() as u64);
}

#[test]
fn replaceable_ties_on_timestamp_go_to_the_higher_id() {
    let dir = TempDir::new("tie");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(1);
    let repl = kind(DuplicateHandling::Replaceable, 3);
    let a = Spec::new(repl, ts(10), b"x").payload(b"a").sign(&k);
    let b = Spec::new(repl, ts(10), b"x").payload(b"b").sign(&k);
    let (low, high) = if a.id() < b.id() { (a, b) } else { (b, a) };
    assert_eq!(store.insert(&high, ts(1)).unwrap(), InsertOutcome::Inserted);
    assert_eq!(
        store.insert(&low, ts(1)).unwrap(),
        InsertOutcome::Superseded { newer: high.id() }
    );
    assert_eq!(store.latest(&high.address()).unwrap().unwrap().record, high);
}

#[test]
fn versioned_records_are_all_kept_newest_first() {
    let dir = TempDir::new("versioned");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(2);
    let v = kind(DuplicateHandling::Versioned, 4);
    let records: Vec<_> = [30, 10, 20]
        .iter()
        .map(|&t| Spec::new(v, ts(t), b"doc").sign(&k))
        .collect();
    let outcomes = store
        .insert_batch(records.iter().map(|r| (r, ts(0))))
        .unwrap();
    assert_eq!(outcomes, vec![InsertOutcome::Inserted; 3]);
    let address = Address::new(records[0].nonce(), v, k.public());
    assert_eq!(
        ids(store.versions(&address).unwrap()),
        vec![records[0].id(), records[2].id(), records[1].id()]
    );
    assert_eq!(store.latest(&address).unwrap().unwrap().record, records[0]);
    let nowhere = Address::new(records[0].nonce(), v, secret(3).public());
    assert!(store.latest(&nowhere).unwrap().is_none());
}

#[test]
fn a_batch_reports_each_outcome_in_order() {
    let dir = TempDir::new("batch");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(1);
    let repl = kind(DuplicateHandling::Replaceable, 3);
    let r1 = Spec::new(repl, ts(1), b"slot").sign(&k);
    let r2 = Spec::new(repl, ts(2), b"slot").sign(&k);
    let u = Spec::new(kind(DuplicateHandling::Unique, 1), ts(5), b"u").sign(&k);
    let e = Spec::new(kind(DuplicateHandling::Ephemeral, 2), ts(5), b"e").sign(&k);
    let outcomes = store
        .insert_batch([
            (&r1, ts(9)),
            (&u, ts(9)),
            (&r2, ts(9)),
            (&u, ts(9)),
            (&e, ts(9)),
            (&r1, ts(9)),
        ])
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            InsertOutcome::Inserted,
            InsertOutcome::Inserted,
            InsertOutcome::Replaced { old: r1.id() },
            InsertOutcome::Duplicate,
            InsertOutcome::Ephemeral,
            InsertOutcome::Superseded { newer: r2.id() },
        ]
    );
    assert!(outcomes[0].is_stored() && !outcomes[3].is_stored());
    assert_eq!(store.stats().unwrap().records, 2);
    assert!(
        store
            .insert_batch(Vec::<(&mosaic_core::Record, _)>::new())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn removal_takes_the_record_and_every_index_entry() {
    let dir = TempDir::new("remove");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let master = secret(1);
    let sub = secret(2);
    let unique = kind(DuplicateHandling::Unique, 1);
    let tag = OwnedTag::new(TagType(0x99), &[7u8; 40]).unwrap();
    let gone = Spec::new(unique, ts(5), b"a")
        .author(master.public())
        .tag(tag.clone())
        .sign(&sub);
    let kept = Spec::new(unique, ts(6), b"a")
        .author(master.public())
        .tag(tag.clone())
        .sign(&sub);
    store
        .insert_batch([(&gone, ts(1)), (&kept, ts(1))])
        .unwrap();
    assert!(store.remove(&gone.id()).unwrap());
    assert!(!store.remove(&gone.id()).unwrap());
    assert!(store.get(&gone.id()).unwrap().is_none());
    let filters = [
        FilterBuilder::new()
            .authors([master.public()])
            .build()
            .unwrap(),
        FilterBuilder::new()
            .signers([sub.public()])
            .build()
            .unwrap(),
        FilterBuilder::new().kinds([unique]).build().unwrap(),
        FilterBuilder::new().included_tags([&*tag]).build().unwrap(),
        FilterBuilder::new()
            .timestamps([ts(5), ts(6)])
            .build()
            .unwrap(),
        mosaic_core::OwnedFilter::empty(),
    ];
    for f in &filters {
        assert_eq!(ids(store.query(f, 10).unwrap()), vec![kept.id()], "{f:?}");
    }
    assert_eq!(
        ids(store.versions(&kept.address()).unwrap()),
        vec![kept.id()]
    );
    let stats = store.stats().unwrap();
    assert_eq!(stats.records, 1);
    assert_eq!(stats.kinds.len(), 1);
    assert_eq!(stats.kinds[0].kind, unique);
    assert_eq!(stats.kinds[0].bytes, kept.len() as u64);
    // Removing the last record of a kind drops the kind from the counts.
    assert!(store.remove(&kept.id()).unwrap());
    assert!(store.stats().unwrap().kinds.is_empty());
}

#[test]
fn removed_space_is_reused() {
    let dir = TempDir::new("reuse");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(1);
    let unique = kind(DuplicateHandling::Unique, 1);
    let payload = vec![0x42u8; 2000];
    let round = |start: u64| -> Vec<mosaic_core::OwnedRecord> {
        (start..start + 300)
            .map(|i| {
                Spec::new(unique, ts(i), &i.to_le_bytes())
                    .payload(&payload)
                    .sign(&k)
            })
            .collect()
    };
    let first = round(0);
    store
        .insert_batch(first.iter().map(|r| (r, ts(0))))
        .unwrap();
    let full = store.stats().unwrap().file_bytes;
    let first_ids: Vec<_> = first.iter().map(|r| r.id()).collect();
    assert_eq!(store.remove_batch(&first_ids).unwrap(), 300);
    assert_eq!(store.remove_batch(&first_ids).unwrap(), 0);
    for start in [1_000, 2_000, 3_000] {
        let again = round(start);
        store
            .insert_batch(again.iter().map(|r| (r, ts(0))))
            .unwrap();
        let ids: Vec<_> = again.iter().map(|r| r.id()).collect();
        assert_eq!(store.remove_batch(&ids).unwrap(), 300);
    }
    let after = store.stats().unwrap();
    assert_eq!(after.records, 0);
    // Four rounds of 600 KB each fit in little more than the first round's space.
    assert!(
        after.file_bytes < full * 2,
        "file grew from {full} to {} bytes",
        after.file_bytes
    );
}

#[test]
fn queries_honour_bounds_and_limits() {
    let dir = TempDir::new("bounds");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(1);
    let unique = kind(DuplicateHandling::Unique, 1);
    let records: Vec<_> = (0..20)
        .map(|i| Spec::new(unique, ts(i * 10), &[i as u8]).sign(&k))
        .collect();
    store
        .insert_batch(
            records
                .iter()
                .enumerate()
                .map(|(i, r)| (r, ts(1000 + i as u64))),
        )
        .unwrap();
    let all = FilterBuilder::new().authors([k.public()]).build().unwrap();
    let newest_first: Vec<_> = records.iter().rev().map(|r| r.id()).collect();
    assert_eq!(ids(store.query(&all, 100).unwrap()), newest_first);
    assert_eq!(ids(store.query(&all, 3).unwrap()), newest_first[..3]);
    assert!(ids(store.query(&all, 0).unwrap()).is_empty());

    let window = FilterBuilder::new()
        .authors([k.public()])
        .since(ts(50))
        .until(ts(100))
        .build()
        .unwrap();
    assert_eq!(ids(store.query(&window, 100).unwrap()), newest_first[9..15]);
    let backwards = FilterBuilder::new()
        .kinds([unique])
        .since(ts(100))
        .until(ts(50))
        .build()
        .unwrap();
    assert!(ids(store.query(&backwards, 100).unwrap()).is_empty());
    let received = FilterBuilder::new()
        .kinds([unique])
        .received_since(ts(1005))
        .received_until(ts(1006))
        .build()
        .unwrap();
    assert_eq!(
        ids(store.query(&received, 100).unwrap()),
        vec![records[6].id(), records[5].id()]
    );
    let excluded = FilterBuilder::new()
        .authors([k.public()])
        .exclude([records[19].id(), records[0].id()])
        .build()
        .unwrap();
    assert_eq!(
        ids(store.query(&excluded, 100).unwrap()),
        newest_first[1..19]
    );
    let nobody = FilterBuilder::new().authors([]).build().unwrap();
    assert!(ids(store.query(&nobody, 100).unwrap()).is_empty());
}

#[test]
fn tag_queries_recheck_values_longer_than_the_index_prefix() {
    let dir = TempDir::new("tags");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let k = secret(1);
    let unique = kind(DuplicateHandling::Unique, 1);
    let mut v1 = [5u8; 40];
    let mut v2 = [5u8; 40];
    v1[39] = 1;
    v2[39] = 2;
    let t1 = OwnedTag::new(TagType(0x40), &v1).unwrap();
    let t2 = OwnedTag::new(TagType(0x40), &v2).unwrap();
    let other_type = OwnedTag::new(TagType(0x41), &v1).unwrap();
    let r1 = Spec::new(unique, ts(1), b"1").tag(t1.clone()).sign(&k);
    let r2 = Spec::new(unique, ts(2), b"2").tag(t2.clone()).sign(&k);
    let r3 = Spec::new(unique, ts(3), b"3")
        .tag(other_type.clone())
        .tag(t1.clone())
        .sign(&k);
    store
        .insert_batch([(&r1, ts(0)), (&r2, ts(0)), (&r3, ts(0))])
        .unwrap();
    let f = FilterBuilder::new().included_tags([&*t1]).build().unwrap();
    assert_eq!(ids(store.query(&f, 10).unwrap()), vec![r3.id(), r1.id()]);
    let f = FilterBuilder::new()
        .included_tags([&*t1, &*other_type])
        .build()
        .unwrap();
    // r3 carries both tags and comes once.
    assert_eq!(ids(store.query(&f, 10).unwrap()), vec![r3.id(), r1.id()]);
    let f = FilterBuilder::new()
        .included_tags([&*t1, &*t2])
        .excluded_tags([&*other_type])
        .build()
        .unwrap();
    assert_eq!(ids(store.query(&f, 10).unwrap()), vec![r2.id(), r1.id()]);
}
