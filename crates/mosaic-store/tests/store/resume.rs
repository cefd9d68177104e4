//! Queries in parts ([`Store::query_after`] from [`Records::resume_point`])
//! and the scan budget ([`Records::with_scan_budget`]), on every plan.

use mosaic_core::{
    DuplicateHandling, Filter, FilterBuilder, Id, Kind, OwnedFilter, OwnedRecord, OwnedTag,
    SecretKey, TagType, Timestamp,
};
use mosaic_store::{QueryCursor, Records, Store, StoreConfig};

use crate::common::{Spec, TempDir, kind, secret, ts};

/// Records from three authors (one of them also signing through a subkey),
/// three kinds and three tags, over only 15 distinct timestamps, so that
/// many records tie on their timestamp.
struct Data {
    dir: TempDir,
    store: Store,
    keys: Vec<SecretKey>,
    subkey: SecretKey,
    kinds: Vec<Kind>,
    tags: Vec<OwnedTag>,
    records: Vec<OwnedRecord>,
}

fn time(i: u64) -> Timestamp {
    ts((i * 7 % 15) * 1_000)
}

fn data(n: u64) -> Data {
    let dir = TempDir::new("resume");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let keys: Vec<SecretKey> = (0..3).map(secret).collect();
    let subkey = secret(50);
    let kinds = vec![
        kind(DuplicateHandling::Unique, 1),
        kind(DuplicateHandling::Unique, 2),
        kind(DuplicateHandling::Versioned, 6),
    ];
    let tags: Vec<OwnedTag> = (0..3u8)
        .map(|i| OwnedTag::new(TagType(0x50), &[i; 24]).unwrap())
        .collect();
    let mut records = Vec::new();
    for i in 0..n {
        let mut spec = Spec::new(kinds[(i / 3 % 3) as usize], time(i), &i.to_be_bytes());
        for (t, tag) in tags.iter().enumerate() {
            if (i >> t) & 1 == 1 {
                spec = spec.tag(tag.clone());
            }
        }
        let author = (i % 3) as usize;
        let record = if author == 0 && i % 2 == 0 {
            spec.author(keys[0].public()).sign(&subkey)
        } else {
            spec.sign(&keys[author])
        };
        records.push(record);
    }
    store
        .insert_batch(records.iter().map(|r| (r, ts(1_000_000))))
        .unwrap();
    Data {
        dir,
        store,
        keys,
        subkey,
        kinds,
        tags,
        records,
    }
}

impl Data {
    /// A filter for each plan, with the index table it must use.
    fn filters(&self) -> Vec<(&'static str, OwnedFilter)> {
        let k = |i: usize| self.keys[i].public();
        let b = FilterBuilder::new;
        vec![
            ("records", OwnedFilter::empty()),
            (
                "records",
                b().since(ts(3_000)).until(ts(11_000)).build().unwrap(),
            ),
            (
                "records",
                b().timestamps([ts(2_000), ts(9_000), ts(14_000), ts(77)])
                    .build()
                    .unwrap(),
            ),
            (
                "by_tag",
                b().included_tags([&*self.tags[1]]).build().unwrap(),
            ),
            (
                "by_tag",
                b().included_tags(self.tags.iter().map(|t| &**t))
                    .until(ts(12_000))
                    .build()
                    .unwrap(),
            ),
            ("by_author_kind", b().authors([k(0)]).build().unwrap()),
            (
                "by_author_kind",
                b().authors([k(0), k(2)])
                    .exclude([self.records[5].id(), self.records[8].id()])
                    .build()
                    .unwrap(),
            ),
            (
                "by_author_kind",
                b().authors([k(1), k(2)])
                    .kinds([self.kinds[0], self.kinds[2]])
                    .build()
                    .unwrap(),
            ),
            (
                "by_signer",
                b().signers([self.subkey.public(), k(1)]).build().unwrap(),
            ),
            (
                "by_kind",
                b().kinds([self.kinds[1], self.kinds[2]])
                    .since(ts(1_000))
                    .build()
                    .unwrap(),
            ),
        ]
    }
}

fn ids(records: &mut Records) -> Vec<Id> {
    records.map(|r| r.unwrap().record.id()).collect()
}

/// The whole result, in parts of at most `chunk` records, each part read
/// with at most `budget` candidates, from a new query each time.
fn in_parts(store: &Store, filter: &Filter, chunk: usize, budget: Option<u64>) -> Vec<Id> {
    let mut out = Vec::new();
    let mut cursor: Option<QueryCursor> = None;
    for _ in 0..100_000 {
        let records = match cursor {
            None => store.query(filter, chunk),
            Some(c) => store.query_after(filter, chunk, c),
        }
        .unwrap();
        let mut records = match budget {
            Some(b) => records.with_scan_budget(b),
            None => records,
        };
        let part = ids(&mut records);
        if let Some(b) = budget {
            assert!(records.examined() <= b, "{records:?}");
        }
        let complete = part.len() < chunk && !records.budget_exhausted();
        out.extend(part);
        if complete {
            return out;
        }
        let next = records.resume_point();
        assert!(next.is_some(), "a part that is not the last moved on");
        assert_ne!(next, cursor, "every part moves on");
        cursor = next;
    }
    panic!("the query never ended");
}

#[test]
fn parts_give_the_same_sequence_as_one_query_on_every_plan() {
    let d = data(240);
    for (table, filter) in d.filters() {
        let mut whole = d.store.query(&filter, usize::MAX).unwrap();
        assert!(
            format!("{whole:?}").contains(&format!("{table:?}")),
            "{filter:?} should use {table}: {whole:?}"
        );
        let expected = ids(&mut whole);
        assert!(expected.len() >= 5, "{filter:?} matches too little");
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(
                in_parts(&d.store, &filter, chunk, None),
                expected,
                "{filter:?} in parts of {chunk}"
            );
            for budget in [1, 2, 5] {
                assert_eq!(
                    in_parts(&d.store, &filter, chunk, Some(budget)),
                    expected,
                    "{filter:?} in parts of {chunk}, budget {budget}"
                );
            }
        }
    }
    drop(d.dir);
}

#[test]
fn ties_on_one_timestamp_split_across_parts() {
    let d = data(150);
    // Ten records per timestamp: parts of 3 cut inside every tie.
    let t = ts(7_000);
    let at_t: Vec<&OwnedRecord> = d.records.iter().filter(|r| r.timestamp() == t).collect();
    assert_eq!(at_t.len(), 10);
    for filter in [
        FilterBuilder::new().timestamps([t]).build().unwrap(),
        FilterBuilder::new().since(t).until(t).build().unwrap(),
    ] {
        let got = in_parts(&d.store, &filter, 3, None);
        let mut want: Vec<Id> = at_t.iter().map(|r| r.id()).collect();
        want.sort_by(|a, b| b.cmp(a));
        assert_eq!(got, want);
    }
}

#[test]
fn the_resume_point_follows_the_last_record_read() {
    let d = data(60);
    let filter = FilterBuilder::new()
        .authors([d.keys[1].public()])
        .build()
        .unwrap();
    let all = ids(&mut d.store.query(&filter, usize::MAX).unwrap());
    let mut first = d.store.query(&filter, 4).unwrap();
    assert_eq!(first.resume_point(), None, "nothing read yet");
    let head = ids(&mut first);
    assert_eq!(head, all[..4]);
    let cursor = first.resume_point().unwrap();
    // A cursor is a position: it can be used again, and from a copy.
    let copy = cursor;
    for c in [cursor, copy] {
        let rest = ids(&mut d.store.query_after(&filter, usize::MAX, c).unwrap());
        assert_eq!(rest, all[4..]);
    }
    assert!(format!("{cursor:?}").starts_with("QueryCursor("));
    // After the last record, nothing follows.
    let mut whole = d.store.query(&filter, usize::MAX).unwrap();
    whole.by_ref().for_each(drop);
    let end = whole.resume_point().unwrap();
    assert!(
        d.store
            .query_after(&filter, usize::MAX, end)
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn records_written_between_parts_appear_only_behind_the_cursor() {
    let d = data(90);
    let filter = FilterBuilder::new()
        .authors([d.keys[2].public()])
        .build()
        .unwrap();
    let before = ids(&mut d.store.query(&filter, usize::MAX).unwrap());
    let mut first = d.store.query(&filter, 10).unwrap();
    let head = ids(&mut first);
    let cursor = first.resume_point().unwrap();
    drop(first);
    let last_seen = d.store.get(head.last().unwrap()).unwrap().unwrap();
    // One record older than the cursor, one newer, one at the cursor's
    // timestamp on each side of it, and one of the records not yet read
    // removed.
    let key = &d.keys[2];
    let unique = d.kinds[0];
    let older = Spec::new(unique, ts(500), b"older").sign(key);
    let newer = Spec::new(unique, ts(20_000), b"newer").sign(key);
    let same_time: Vec<OwnedRecord> = (0..8u8)
        .map(|i| Spec::new(unique, last_seen.record.timestamp(), &[b's', i]).sign(key))
        .collect();
    let gone = before[15];
    d.store
        .insert_batch(
            [&older, &newer]
                .into_iter()
                .chain(&same_time)
                .map(|r| (r, ts(2_000_000))),
        )
        .unwrap();
    assert!(d.store.remove(&gone).unwrap());
    let rest = ids(&mut d.store.query_after(&filter, usize::MAX, cursor).unwrap());
    let cut = head.last().unwrap();
    let mut want: Vec<Id> = before[10..]
        .iter()
        .copied()
        .filter(|id| *id != gone)
        .chain([older.id()])
        .chain(same_time.iter().map(|r| r.id()).filter(|id| id < cut))
        .collect();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(rest, want);
    assert!(!rest.contains(&newer.id()));
    // Both sides of the cursor were exercised.
    assert!(same_time.iter().any(|r| r.id() < *cut));
    assert!(same_time.iter().any(|r| r.id() > *cut));
}

#[test]
fn a_budget_bounds_a_narrow_filter_that_matches_nothing() {
    let dir = TempDir::new("budget");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let key = secret(9);
    let k = kind(DuplicateHandling::Unique, 1);
    let records: Vec<OwnedRecord> = (0..300u64)
        .map(|i| Spec::new(k, ts(i * 10), &i.to_be_bytes()).sign(&key))
        .collect();
    store
        .insert_batch(records.iter().map(|r| (r, ts(1))))
        .unwrap();
    // Narrow (one author) but unselective: no record was received that
    // early, so every candidate the author's index yields fails.
    let filter = FilterBuilder::new()
        .authors([key.public()])
        .received_until(ts(0))
        .build()
        .unwrap();

    let mut unbounded = store.query(&filter, 10).unwrap();
    assert!(unbounded.next().is_none());
    assert_eq!(unbounded.examined(), 300);
    assert!(!unbounded.budget_exhausted());

    let mut bounded = store.query(&filter, 10).unwrap().with_scan_budget(25);
    assert!(bounded.next().is_none());
    assert_eq!(bounded.examined(), 25);
    assert!(bounded.budget_exhausted());
    assert!(bounded.next().is_none(), "it stays ended");
    assert_eq!(bounded.examined(), 25);
    // It can go on where it stopped, 25 candidates at a time.
    let mut cursor = bounded.resume_point().unwrap();
    let mut parts = 1;
    loop {
        let mut part = store
            .query_after(&filter, 10, cursor)
            .unwrap()
            .with_scan_budget(25);
        assert!(part.next().is_none());
        parts += 1;
        if !part.budget_exhausted() {
            assert!(part.examined() < 25);
            break;
        }
        cursor = part.resume_point().unwrap();
    }
    assert_eq!(parts, 13);

    // A budget of zero reads nothing.
    let mut none = store
        .query(&OwnedFilter::empty(), 10)
        .unwrap()
        .with_scan_budget(0);
    assert!(none.next().is_none());
    assert!(none.budget_exhausted());
    assert_eq!(none.resume_point(), None);
}

#[test]
fn records_yielded_before_the_budget_ends_stay_valid() {
    let d = data(120);
    let filter = FilterBuilder::new()
        .included_tags([&*d.tags[0]])
        .kinds([d.kinds[1]])
        .build()
        .unwrap();
    let all: Vec<_> = d
        .store
        .query(&filter, usize::MAX)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut records = d
        .store
        .query(&filter, usize::MAX)
        .unwrap()
        .with_scan_budget(15);
    let got: Vec<_> = records.by_ref().map(|r| r.unwrap()).collect();
    assert!(records.budget_exhausted());
    assert_eq!(records.examined(), 15);
    assert!(
        !got.is_empty() && got.len() < all.len(),
        "{} of {}",
        got.len(),
        all.len()
    );
    drop(records);
    assert_eq!(got[..], all[..got.len()]);
    // A budget that is not reached changes nothing.
    let mut roomy = d
        .store
        .query(&filter, usize::MAX)
        .unwrap()
        .with_scan_budget(1_000);
    assert_eq!(roomy.by_ref().count(), all.len());
    assert!(!roomy.budget_exhausted());
    // A limit ends a query before its budget.
    let mut limited = d.store.query(&filter, 2).unwrap().with_scan_budget(1_000);
    assert_eq!(limited.by_ref().count(), 2);
    assert!(!limited.budget_exhausted());
}
