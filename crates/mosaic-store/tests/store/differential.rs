//! The store against a plain in-memory model: thousands of random records
//! and operations, then hundreds of random filters; every outcome and every
//! result (order included) must be identical, whether a query is answered
//! at once or in parts resumed from where the last one stopped.

use std::collections::{BTreeMap, BTreeSet};

use mosaic_core::{
    Address, DuplicateHandling, Filter, FilterBuilder, Id, Kind, OwnedFilter, OwnedRecord,
    OwnedTag, PublicKey, SecretKey, TagType, Timestamp,
};
use mosaic_store::{DATABASE_FILE, InsertOutcome, LOG_FILE, Store, StoreConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::common::{Spec, TempDir, kind, secret, ts};

/// What the store should hold: records by id with their received times.
#[derive(Default)]
struct Model {
    records: BTreeMap<Id, (OwnedRecord, Timestamp)>,
}

impl Model {
    fn insert(&mut self, record: &OwnedRecord, at: Timestamp) -> InsertOutcome {
        let handling = record.kind().duplicate_handling();
        if handling == DuplicateHandling::Ephemeral {
            return InsertOutcome::Ephemeral;
        }
        let id = record.id();
        if self.records.contains_key(&id) {
            return InsertOutcome::Duplicate;
        }
        let mut outcome = InsertOutcome::Inserted;
        if handling == DuplicateHandling::Replaceable {
            let same: Vec<Id> = self
                .records
                .values()
                .filter(|(r, _)| r.address() == record.address())
                .map(|(r, _)| r.id())
                .collect();
            if let Some(&newest) = same.iter().max() {
                if (newest.timestamp(), newest) > (id.timestamp(), id) {
                    return InsertOutcome::Superseded { newer: newest };
                }
                outcome = InsertOutcome::Replaced { old: newest };
            }
            for old in same {
                self.records.remove(&old);
            }
        }
        self.records.insert(id, (record.clone(), at));
        outcome
    }

    fn query(&self, filter: &Filter, limit: usize) -> Vec<(Id, Timestamp)> {
        let mut all: Vec<_> = self
            .records
            .values()
            .filter(|(r, at)| filter.matches(r, *at))
            .map(|(r, at)| (r.timestamp(), r.id(), *at))
            .collect();
        // D-5: timestamp descending, then id descending.
        all.sort_by_key(|&(t, id, _)| std::cmp::Reverse((t, id)));
        all.into_iter()
            .take(limit)
            .map(|(_, id, at)| (id, at))
            .collect()
    }

    fn versions(&self, address: &Address) -> Vec<Id> {
        let mut ids: Vec<Id> = self
            .records
            .values()
            .filter(|(r, _)| &r.address() == address)
            .map(|(r, _)| r.id())
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        ids
    }
}

/// Pools of keys, kinds, times, nonces and tags, small enough that records
/// collide on every index and on addresses.
struct World {
    rng: StdRng,
    masters: Vec<SecretKey>,
    /// Subkeys and the index of the master they sign for.
    subkeys: Vec<(SecretKey, usize)>,
    strangers: Vec<PublicKey>,
    kinds: Vec<Kind>,
    tags: Vec<OwnedTag>,
    made: Vec<OwnedRecord>,
    addresses: BTreeSet<Address>,
}

const TIMES: u64 = 300;

impl World {
    fn new(seed: u64) -> World {
        let mut tags = Vec::new();
        for ty in [1u16, 2, 0x30] {
            for tail in 0..3u8 {
                // Values that share their first 20 bytes and differ later.
                let mut long = [ty as u8; 36];
                long[35] = tail;
                tags.push(OwnedTag::new(TagType(ty), &long).unwrap());
            }
            tags.push(OwnedTag::new(TagType(ty), &[ty as u8, 9, 9]).unwrap());
        }
        tags.push(OwnedTag::new(TagType(0x31), &[]).unwrap());
        World {
            rng: StdRng::seed_from_u64(seed),
            masters: (0..4).map(secret).collect(),
            subkeys: vec![(secret(100), 0), (secret(101), 1)],
            strangers: vec![secret(200).public()],
            kinds: vec![
                kind(DuplicateHandling::Unique, 1),
                kind(DuplicateHandling::Unique, 2),
                kind(DuplicateHandling::Ephemeral, 3),
                kind(DuplicateHandling::Replaceable, 4),
                kind(DuplicateHandling::Replaceable, 5),
                kind(DuplicateHandling::Versioned, 6),
            ],
            tags,
            made: Vec::new(),
            addresses: BTreeSet::new(),
        }
    }

    fn time(&mut self) -> Timestamp {
        ts(self.rng.random_range(0..TIMES) * 1_000)
    }

    fn received(&mut self) -> Timestamp {
        ts(self.rng.random_range(0..50u64) * 1_000_000_000)
    }

    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from[self.rng.random_range(0..from.len())].clone()
    }

    fn new_record(&mut self) -> OwnedRecord {
        let kind = self.pick(&self.kinds.clone());
        let time = self.time();
        let nonce = [self.rng.random_range(0..5u8)];
        let mut spec = Spec::new(kind, time, &nonce);
        for _ in 0..self.rng.random_range(0..4) {
            let tag = self.pick(&self.tags.clone());
            spec = spec.tag(tag);
        }
        let len = self.rng.random_range(0..40);
        let payload: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
        spec = spec.payload(&payload);
        let record = if self.rng.random_bool(0.25) {
            let (sub, master) = self.pick(&self.subkeys.clone());
            spec.author(self.masters[master].public()).sign(&sub)
        } else {
            let key = self.pick(&self.masters.clone());
            spec.sign(&key)
        };
        self.made.push(record.clone());
        self.addresses.insert(record.address());
        record
    }

    /// A record to submit: mostly new, sometimes one submitted before.
    fn submission(&mut self) -> OwnedRecord {
        if !self.made.is_empty() && self.rng.random_bool(0.2) {
            self.pick(&self.made.clone())
        } else {
            self.new_record()
        }
    }

    fn some_keys(&mut self, signers: bool) -> Vec<PublicKey> {
        let mut pool: Vec<PublicKey> = self.masters.iter().map(|k| k.public()).collect();
        if signers {
            pool.extend(self.subkeys.iter().map(|(k, _)| k.public()));
        }
        pool.extend(self.strangers.iter().copied());
        (0..self.rng.random_range(1..4))
            .map(|_| self.pick(&pool))
            .collect()
    }

    fn some_tags(&mut self) -> Vec<OwnedTag> {
        (0..self.rng.random_range(1..4))
            .map(|_| self.pick(&self.tags.clone()))
            .collect()
    }

    fn filter(&mut self) -> OwnedFilter {
        let mut b = FilterBuilder::new();
        if self.rng.random_bool(0.35) {
            b = b.authors(self.some_keys(false));
        }
        if self.rng.random_bool(0.15) {
            b = b.signers(self.some_keys(true));
        }
        if self.rng.random_bool(0.35) {
            let n = self.rng.random_range(1..4);
            let kinds: Vec<Kind> = (0..n).map(|_| self.pick(&self.kinds.clone())).collect();
            b = b.kinds(kinds);
        }
        if self.rng.random_bool(0.1) {
            let n = self.rng.random_range(1..5);
            let times: Vec<Timestamp> = (0..n).map(|_| self.time()).collect();
            b = b.timestamps(times);
        }
        for _ in 0..self.rng.random_range(0..3) {
            if self.rng.random_bool(0.4) {
                let tags = self.some_tags();
                b = b.included_tags(tags.iter().map(|t| &**t));
            }
        }
        if self.rng.random_bool(0.3) {
            b = b.since(self.time());
        }
        if self.rng.random_bool(0.3) {
            b = b.until(self.time());
        }
        if self.rng.random_bool(0.15) {
            b = b.received_since(self.received());
        }
        if self.rng.random_bool(0.15) {
            b = b.received_until(self.received());
        }
        if self.rng.random_bool(0.15) && !self.made.is_empty() {
            let n = self.rng.random_range(1..4);
            let ids: Vec<Id> = (0..n).map(|_| self.pick(&self.made.clone()).id()).collect();
            b = b.exclude(ids);
        }
        if self.rng.random_bool(0.15) {
            let tags = self.some_tags();
            b = b.excluded_tags(tags.iter().map(|t| &**t));
        }
        b.build().unwrap()
    }

    fn limit(&mut self) -> usize {
        if self.rng.random_bool(0.5) {
            self.rng.random_range(1..20)
        } else {
            usize::MAX
        }
    }
}

fn store_query(store: &Store, filter: &Filter, limit: usize) -> Vec<(Id, Timestamp)> {
    store
        .query(filter, limit)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.record.id(), r.received_at)
        })
        .collect()
}

/// The same query answered in parts of at most `chunk` records, each from
/// a new snapshot after the previous part's resume point, each reading at
/// most `budget` candidates.
fn store_query_in_parts(
    store: &Store,
    filter: &Filter,
    limit: usize,
    chunk: usize,
    budget: Option<u64>,
) -> Vec<(Id, Timestamp)> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let n = chunk.min(limit - out.len());
        if n == 0 {
            return out;
        }
        let records = match cursor {
            None => store.query(filter, n),
            Some(c) => store.query_after(filter, n, c),
        }
        .unwrap();
        let mut records = match budget {
            Some(b) => records.with_scan_budget(b),
            None => records,
        };
        let before = out.len();
        for r in records.by_ref() {
            let r = r.unwrap();
            out.push((r.record.id(), r.received_at));
        }
        if out.len() - before < n && !records.budget_exhausted() {
            return out;
        }
        let next = records.resume_point();
        assert!(next.is_some() && next != cursor, "a part moved on");
        cursor = next;
    }
}

fn compare_queries(world: &mut World, store: &Store, model: &Model, count: usize) -> usize {
    let mut nonempty = 0;
    for _ in 0..count {
        let filter = world.filter();
        let limit = world.limit();
        let expected = model.query(&filter, limit);
        assert_eq!(
            store_query(store, &filter, limit),
            expected,
            "filter {filter:?} limit {limit}"
        );
        let chunk = if world.rng.random_bool(0.8) {
            world.rng.random_range(1..8)
        } else {
            50
        };
        let budget = world
            .rng
            .random_bool(0.5)
            .then(|| world.rng.random_range(5..60));
        assert_eq!(
            store_query_in_parts(store, &filter, limit, chunk, budget),
            expected,
            "filter {filter:?} limit {limit} in parts of {chunk}, budget {budget:?}"
        );
        if !expected.is_empty() {
            nonempty += 1;
        }
    }
    nonempty
}

fn compare_everything(world: &mut World, store: &Store, model: &Model) {
    for r in &world.made {
        let got = store.get(&r.id()).unwrap();
        let want = model.records.get(&r.id());
        assert_eq!(
            got.map(|g| (g.record, g.received_at)),
            want.cloned(),
            "record {:?}",
            r.id()
        );
    }
    for address in &world.addresses {
        let versions: Vec<Id> = store
            .versions(address)
            .unwrap()
            .map(|r| r.unwrap().record.id())
            .collect();
        assert_eq!(versions, model.versions(address));
        let latest = store.latest(address).unwrap().map(|r| r.record.id());
        assert_eq!(latest, model.versions(address).first().copied());
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.records, model.records.len() as u64);
    let mut per_kind: BTreeMap<Kind, (u64, u64)> = BTreeMap::new();
    for (r, _) in model.records.values() {
        let e = per_kind.entry(r.kind()).or_default();
        e.0 += 1;
        e.1 += r.len() as u64;
    }
    let got: BTreeMap<Kind, (u64, u64)> = stats
        .kinds
        .iter()
        .map(|k| (k.kind, (k.records, k.bytes)))
        .collect();
    assert_eq!(got, per_kind);
}

/// Copies a store's files as they are on disk: what a process killed at
/// this instant would leave behind.
fn crash_image(from: &TempDir) -> TempDir {
    let to = TempDir::new("differential-image");
    for name in [DATABASE_FILE, LOG_FILE] {
        std::fs::copy(from.path().join(name), to.path().join(name)).unwrap();
    }
    to
}

/// Checkpoints every 1 to 200 records, so that runs reopen with logs of
/// every length.
fn config(world: &mut World) -> StoreConfig {
    let mut config = StoreConfig::default();
    config.checkpoint_records = world.rng.random_range(1..200);
    config.checkpoint_interval = std::time::Duration::from_secs(3600);
    config
}

fn run(seed: u64, records: usize, filters: usize) {
    let mut dir = TempDir::new("differential");
    let mut world = World::new(seed);
    let mut store = Store::open(dir.path(), config(&mut world)).unwrap();
    let mut model = Model::default();
    let (mut reopened, mut recovered) = (0, 0);
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut step = 0;
    while world.made.len() < records {
        step += 1;
        if world.rng.random_bool(0.12) && !model.records.is_empty() {
            let id = if world.rng.random_bool(0.7) {
                let stored: Vec<Id> = model.records.keys().copied().collect();
                world.pick(&stored)
            } else {
                world.pick(&world.made.clone()).id()
            };
            let expected = model.records.remove(&id).is_some();
            assert_eq!(store.remove(&id).unwrap(), expected, "remove {id:?}");
            *outcomes.entry("removed").or_default() += usize::from(expected);
        } else {
            let n = world.rng.random_range(1..30);
            let batch: Vec<(OwnedRecord, Timestamp)> = (0..n)
                .map(|_| (world.submission(), world.received()))
                .collect();
            let got = store
                .insert_batch(batch.iter().map(|(r, t)| (r, *t)))
                .unwrap();
            let want: Vec<_> = batch.iter().map(|(r, t)| model.insert(r, *t)).collect();
            assert_eq!(got, want, "seed {seed} step {step}");
            for o in want {
                let name = match o {
                    InsertOutcome::Inserted => "inserted",
                    InsertOutcome::Replaced { .. } => "replaced",
                    InsertOutcome::Duplicate => "duplicate",
                    InsertOutcome::Superseded { .. } => "superseded",
                    InsertOutcome::Ephemeral => "ephemeral",
                };
                *outcomes.entry(name).or_default() += 1;
            }
        }
        if step % 40 == 0 {
            compare_queries(&mut world, &store, &model, 10);
        }
        // Random reopen points: closed cleanly, or recovered from the
        // files a kill at this instant would leave (the log replayed).
        // The two alternate.
        if world.rng.random_bool(0.06) {
            let image = (recovered <= reopened).then(|| crash_image(&dir));
            drop(store);
            if let Some(image) = image {
                dir = image;
                recovered += 1;
            } else {
                reopened += 1;
            }
            store = Store::open(dir.path(), config(&mut world)).unwrap();
            if world.rng.random_bool(0.3) {
                compare_everything(&mut world, &store, &model);
            }
        }
    }
    assert!(
        reopened >= 2 && recovered >= 2,
        "too few reopen points: {reopened} closed, {recovered} recovered"
    );
    // Every case of D-7 happened, many times.
    for name in [
        "inserted",
        "replaced",
        "duplicate",
        "superseded",
        "ephemeral",
        "removed",
    ] {
        assert!(
            outcomes.get(name).copied().unwrap_or(0) >= 10,
            "too few {name}: {outcomes:?}"
        );
    }
    let nonempty = compare_queries(&mut world, &store, &model, filters);
    assert!(
        nonempty * 4 >= filters,
        "most filters should match something: {nonempty} of {filters}"
    );
    compare_everything(&mut world, &store, &model);

    // The same after closing and reopening.
    drop(store);
    store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    compare_queries(&mut world, &store, &model, filters / 4);

    // The export holds exactly the model's records, oldest first, as
    // `u32 LE length | bytes` frames (import is tested in `transfer`, on
    // fewer records, since full validation is slow in debug builds).
    let mut stream = Vec::new();
    let written = store.export(&mut stream, |_| {}).unwrap();
    assert_eq!(written, model.records.len() as u64);
    let mut expected = Vec::new();
    for (r, _) in model.records.values() {
        expected.extend_from_slice(&(r.len() as u32).to_le_bytes());
        expected.extend_from_slice(r.as_bytes());
    }
    assert!(stream == expected, "the export differs from the model");
}

#[test]
fn store_matches_the_model() {
    run(0x5eed_0001, 3_000, 400);
}

#[test]
fn store_matches_the_model_on_another_seed() {
    run(0x5eed_0002, 1_500, 200);
}
