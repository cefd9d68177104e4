//! `cargo xtask bench store`: the store's figures, measured in one run.
//!
//! - bulk import with all indexes (records already validated, in the
//!   batches `Store::import` commits: `StoreConfig::import_batch` records or
//!   `import_batch_bytes`) against the same bytes in a bare table with no
//!   index, in the same batches and the same durable transactions. The two
//!   take turns batch by batch, so that both run under the same load on a
//!   shared machine;
//! - import from an export stream, with full re-validation;
//! - durable batched inserts into the filled store (batches of 1 and 1,000);
//! - the latency of one durable `insert_batch` of 1 and of 10 records,
//!   logged and with a durable database commit each, beside a bare
//!   `fdatasync` on the same disk;
//! - query latency p50/p99 on the filled store, warm: author + limit 500,
//!   kind + since, tag;
//! - bytes on disk per record, both files measured closed.
//!
//! The load average is printed next to the figures: the machine may be
//! shared, and the figures move with its load.
//!
//! 1,000,000 records (about 50 s of signing on the first run; the dataset
//! is cached under the target directory and reused), or 20,000 with
//! `MOSAIC_BENCH_QUICK=1`. `MOSAIC_BENCH_IMPORT_BATCH=<records>` replaces
//! the default import batch, for both sides.

#[path = "../tests/store/common.rs"]
mod common;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mosaic_core::{
    DuplicateHandling, FilterBuilder, Kind, Nonce, OwnedFilter, OwnedRecord, OwnedTag, PublicKey,
    RecordBuilder, Reference, SecretKey, Timestamp,
};
use mosaic_store::{DATABASE_FILE, Store, StoreConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};

use common::{TempDir, kind, secret};

/// Version of the generated dataset; bump when the generator changes.
const DATASET_VERSION: u32 = 1;
/// Records per author, on average.
const PER_AUTHOR: usize = 1_000;
/// The first timestamp of the dataset, and its spacing (~1 year for 1M).
const START: u64 = 1_700_000_000_000_000_000;
const SPACING: u64 = 31_000_000_000;

const BARE: TableDefinition<'static, &'static [u8; 48], &'static [u8]> =
    TableDefinition::new("records");

struct Sizes {
    records: usize,
    singles: usize,
    thousands: usize,
    /// Samples of each commit latency (batches of 1 and of 10, bare fdatasync).
    latency: usize,
    queries: usize,
    validated_import: usize,
}

fn sizes() -> Sizes {
    if std::env::var_os("MOSAIC_BENCH_QUICK").is_some_and(|v| v != "0") {
        Sizes {
            records: 20_000,
            singles: 50,
            thousands: 3,
            latency: 200,
            queries: 200,
            validated_import: 5_000,
        }
    } else {
        Sizes {
            records: 1_000_000,
            singles: 300,
            thousands: 20,
            latency: 500,
            queries: 1_000,
            validated_import: 100_000,
        }
    }
}

/// The kinds of the dataset, with their share in thousandths.
fn kinds() -> [(Kind, u32); 4] {
    [
        (Kind::MICROBLOG_ROOT, 450),
        (Kind::REPLY_COMMENT, 450),
        (kind(DuplicateHandling::Versioned, 7), 90),
        (kind(DuplicateHandling::Replaceable, 8), 10),
    ]
}

fn author_key(i: usize) -> SecretKey {
    secret(1_000_000 + i as u64)
}

/// Record `i` of the dataset: authors, kinds, tags and payload sizes drawn
/// from a fixed seed, timestamps increasing with `i`.
fn make(i: usize, authors: &[(SecretKey, PublicKey)], rng: &mut StdRng) -> OwnedRecord {
    let (key, _) = &authors[rng.random_range(0..authors.len())];
    let mut roll = rng.random_range(0..1000u32);
    let mut k = Kind::MICROBLOG_ROOT;
    for (candidate, share) in kinds() {
        if roll < share {
            k = candidate;
            break;
        }
        roll -= share;
    }
    let t = Timestamp::from_nanos(START + i as u64 * SPACING + rng.random_range(0..1000))
        .expect("in range");
    let nonce = if k.duplicate_handling().is_replaceable() {
        Nonce::from_key(b"profile")
    } else if k.duplicate_handling().is_versioned() {
        Nonce::from_key(&[rng.random_range(0..4u8)])
    } else {
        Nonce::from_key(&(i as u64).to_le_bytes())
    };
    let mut tags = Vec::new();
    for _ in 0..rng.random_range(0..3) {
        tags.push(OwnedTag::notify_public_key(
            &authors[rng.random_range(0..authors.len())].1,
        ));
    }
    if k == Kind::REPLY_COMMENT {
        let mut root = [0u8; 48];
        root[..8]
            .copy_from_slice(&(START + rng.random_range(0..=i as u64) * SPACING).to_be_bytes());
        rng.fill(&mut root[8..]);
        if let Ok(reference) = Reference::from_bytes(&root) {
            tags.push(OwnedTag::reply(&reference, Kind::MICROBLOG_ROOT));
        }
    }
    let len = rng.random_range(40..400);
    let payload: Vec<u8> = (0..len).map(|_| rng.random_range(b'a'..=b'z')).collect();
    let mut b = RecordBuilder::new(k, t).nonce(nonce).payload(&payload);
    for tag in &tags {
        b = b.tag(tag);
    }
    b.build(key).expect("valid record")
}

fn authors(n: usize) -> Vec<(SecretKey, PublicKey)> {
    (0..(n / PER_AUTHOR).max(10))
        .map(|i| {
            let k = author_key(i);
            let p = k.public();
            (k, p)
        })
        .collect()
}

/// Generates `n` records on two threads, in timestamp order.
fn generate(n: usize, authors: &[(SecretKey, PublicKey)]) -> Vec<OwnedRecord> {
    let threads = 2;
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(0xbe0c_0000 + t as u64);
                    (t * per..((t + 1) * per).min(n))
                        .map(|i| make(i, authors, &mut rng))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("generator thread"))
            .collect()
    })
}

fn cache_path(n: usize) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mosaic-store-bench-v{DATASET_VERSION}-{n}.records"))
}

fn write_frames(path: &PathBuf, records: &[OwnedRecord]) -> std::io::Result<()> {
    let tmp = path.with_extension("partial");
    let mut out = BufWriter::new(File::create(&tmp)?);
    for r in records {
        out.write_all(&(r.len() as u32).to_le_bytes())?;
        out.write_all(r.as_bytes())?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(tmp, path)
}

fn read_frames(path: &PathBuf, n: usize) -> Option<Vec<OwnedRecord>> {
    let mut input = BufReader::new(File::open(path).ok()?);
    let mut records = Vec::with_capacity(n);
    let mut len = [0u8; 4];
    while input.read_exact(&mut len).is_ok() {
        let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
        input.read_exact(&mut bytes).ok()?;
        // Our own cache: the layout is checked, the signatures were at generation.
        records.push(OwnedRecord::danger_from_vec_unverified(bytes).ok()?);
    }
    (records.len() == n).then_some(records)
}

/// The dataset: `n` records, plus extra ones for the durable-insert runs.
fn dataset(n: usize, extra: usize, authors: &[(SecretKey, PublicKey)]) -> Vec<OwnedRecord> {
    let total = n + extra;
    let path = cache_path(total);
    if let Some(records) = read_frames(&path, total) {
        println!("dataset: {total} records read from {}", path.display());
        return records;
    }
    let started = Instant::now();
    let records = generate(total, authors);
    println!(
        "dataset: {total} records generated and signed in {:.1}s, cached at {}",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    if let Err(e) = write_frames(&path, &records) {
        println!("dataset: not cached ({e})");
    }
    records
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// The bare table: the same bytes the store writes into `records` (a
/// received time, then the record), under the same keys, with no index.
struct Bare {
    _dir: TempDir,
    path: PathBuf,
    db: Database,
}

impl Bare {
    fn new() -> Bare {
        let dir = TempDir::new("bench-bare");
        let path = dir.path().join("bare.redb");
        let db = Database::builder()
            .set_cache_size(StoreConfig::default().cache_bytes)
            .create(&path)
            .expect("bare database");
        Bare {
            _dir: dir,
            path,
            db,
        }
    }

    /// One durable transaction, as the store commits one.
    fn insert(&self, chunk: &[OwnedRecord], received: Timestamp) {
        let mut txn = self.db.begin_write().expect("begin");
        txn.set_durability(Durability::Immediate)
            .expect("durability");
        txn.set_quick_repair(StoreConfig::default().quick_repair);
        {
            let mut table = txn.open_table(BARE).expect("table");
            for r in chunk {
                let mut value = Vec::with_capacity(r.len() + 10);
                value.extend_from_slice(&received.as_nanos().to_le_bytes());
                value.extend_from_slice(r.as_bytes());
                table
                    .insert(r.id().as_bytes(), value.as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    /// Checks that it holds `n` records, closes it and returns its size
    /// closed and compacted.
    fn close(self, n: usize) -> (u64, u64) {
        let txn = self.db.begin_read().expect("read");
        let len = txn.open_table(BARE).expect("table").len().expect("len");
        assert_eq!(len as usize, n);
        drop(txn);
        drop(self.db);
        sizes_on_disk(&self.path)
    }
}

/// The size of a closed database file, then its size once compacted (the
/// space freed by earlier transactions given back).
fn sizes_on_disk(path: &std::path::Path) -> (u64, u64) {
    let size = || std::fs::metadata(path).map_or(0, |m| m.len());
    let closed = size();
    let mut db = Database::open(path).expect("reopen");
    while db.compact().expect("compact") {}
    drop(db);
    (closed, size())
}

/// The batches `Store::import` commits: `import_batch` records, or fewer
/// when they reach `import_batch_bytes`.
fn import_batches<'r>(records: &'r [OwnedRecord], config: &StoreConfig) -> Vec<&'r [OwnedRecord]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, r) in records.iter().enumerate() {
        bytes += r.len() as u64;
        if i + 1 - start >= config.import_batch.max(1) || bytes >= config.import_batch_bytes {
            batches.push(&records[start..=i]);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < records.len() {
        batches.push(&records[start..]);
    }
    batches
}

/// The load average of the machine, where the system tells it.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            let parts: Vec<&str> = l.split_whitespace().take(3).collect();
            (parts.len() == 3).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = samples.len();
    (
        ms(samples[n / 2]),
        ms(samples[(n * 99 / 100).min(n - 1)]),
        ms(samples[n - 1]),
    )
}

fn time_queries(
    store: &Store,
    name: &str,
    filters: &[(OwnedFilter, usize)],
) -> (f64, f64, f64, f64) {
    // Warm the cache, then measure.
    for (f, limit) in filters {
        store.query(f, *limit).expect("query").for_each(drop);
    }
    let mut samples = Vec::with_capacity(filters.len());
    let mut results = 0usize;
    for (f, limit) in filters {
        let started = Instant::now();
        let mut n = 0;
        for r in store.query(f, *limit).expect("query") {
            r.expect("record");
            n += 1;
        }
        samples.push(started.elapsed());
        results += n;
    }
    let (p50, p99, max) = percentiles(samples);
    let mean = results as f64 / filters.len() as f64;
    println!(
        "query {name:<22} p50 {p50:>7.3} ms   p99 {p99:>7.3} ms   max {max:>7.3} ms   ({mean:.0} results on average)"
    );
    (p50, p99, max, mean)
}

/// The latency of one durable `insert_batch` of 1 and of 10 records, with
/// the write-ahead log (the default) and with one durable database commit
/// per batch (`checkpoint_records: 1`, as every batch was committed before
/// the log), and of a bare `fdatasync` after a 100-byte append to a file in
/// the same directory, taken in turn with each. Reopens the store for the
/// second half and returns it reopened with `config`.
fn commit_latency(
    store: Store,
    dir: &TempDir,
    config: &StoreConfig,
    records: &[OwnedRecord],
    samples: usize,
    received: Timestamp,
) -> Store {
    let path = dir.path().join("bench-fdatasync");
    let mut file = File::create(&path).expect("scratch file");
    let mut bare = Vec::new();
    let mut store = store;
    let mut rows = Vec::new();
    for (half, how) in records.chunks(samples * 11).zip(["logged", "redb commit"]) {
        if how != "logged" {
            drop(store);
            let mut direct = config.clone();
            direct.checkpoint_records = 1;
            store = Store::open(dir.path(), direct).expect("store");
        }
        let (mut one, mut ten) = (Vec::new(), Vec::new());
        let (singles, tens) = half.split_at(samples);
        for (single, group) in singles.iter().zip(tens.chunks(10)) {
            let started = Instant::now();
            store.insert(single, received).expect("insert");
            one.push(started.elapsed());
            let started = Instant::now();
            store
                .insert_batch(group.iter().map(|r| (r, received)))
                .expect("insert");
            ten.push(started.elapsed());
            let started = Instant::now();
            file.write_all(&[7u8; 100]).expect("append");
            file.sync_data().expect("fdatasync");
            bare.push(started.elapsed());
        }
        rows.push((format!("insert_batch of 1, {how}"), one));
        rows.push((format!("insert_batch of 10, {how}"), ten));
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    rows.push(("bare fdatasync, 100 B".to_owned(), bare));
    for (name, samples) in rows {
        let (p50, p99, _) = percentiles(samples);
        println!("durable {name:<31} p50 {p50:>7.3} ms   p99 {p99:>7.3} ms");
    }
    drop(store);
    Store::open(dir.path(), config.clone()).expect("store")
}

fn main() {
    let sizes = sizes();
    let n = sizes.records;
    let extra = sizes.singles + sizes.thousands * 1000 + sizes.latency * 22;
    println!("store bench: {n} records (MOSAIC_BENCH_QUICK=1 for 20,000)");
    let authors = authors(n + extra);
    let all = dataset(n, extra, &authors);
    let (records, fresh) = all.split_at(n);
    let bytes: usize = records.iter().map(|r| r.len()).sum();
    println!(
        "dataset: {} authors, {:.0} bytes per record on average",
        authors.len(),
        bytes as f64 / n as f64
    );
    let received = Timestamp::from_nanos(START + 2 * n as u64 * SPACING).expect("in range");

    // Bulk import: the bare table and the store take the same batches, in
    // the same durable transactions, in turn (the store first in every
    // other batch), so that both see the same load on a shared machine.
    let mut config = StoreConfig::default();
    if let Some(batch) = std::env::var("MOSAIC_BENCH_IMPORT_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.import_batch = batch;
    }
    let batches = import_batches(records, &config);
    let bare = Bare::new();
    let dir = TempDir::new("bench-store");
    let store = Store::open(dir.path(), config.clone()).expect("store");
    println!(
        "bulk import: {} batches of up to {} records or {} MiB, load average {}",
        batches.len(),
        config.import_batch,
        config.import_batch_bytes >> 20,
        load()
    );
    let (mut bare_time, mut store_time) = (Duration::ZERO, Duration::ZERO);
    for (i, batch) in batches.iter().enumerate() {
        for turn in 0..2 {
            let started = Instant::now();
            if (turn + i) % 2 == 0 {
                bare.insert(batch, received);
                bare_time += started.elapsed();
            } else {
                store
                    .insert_batch(batch.iter().map(|r| (r, received)))
                    .expect("insert");
                store_time += started.elapsed();
            }
        }
    }
    let bare_rate = rate(n, bare_time);
    let import_rate = rate(n, store_time);
    println!("bulk import, bare redb table (no index):  {bare_rate:>10.0} records/s");
    println!(
        "bulk import, store with all indexes:      {import_rate:>10.0} records/s   ratio to bare {:.2} (target >= 0.5), load average {}",
        import_rate / bare_rate,
        load()
    );
    let (bare_closed, bare_compacted) = bare.close(n);

    // Import of an export stream, with full validation, into a fresh store.
    {
        let subset = &records[..sizes.validated_import.min(n)];
        let mut stream = Vec::new();
        for r in subset {
            stream.extend_from_slice(&(r.len() as u32).to_le_bytes());
            stream.extend_from_slice(r.as_bytes());
        }
        let dir = TempDir::new("bench-import");
        let target = Store::open(dir.path(), StoreConfig::default()).expect("store");
        let started = Instant::now();
        let report = target
            .import(stream.as_slice(), received, |_| {})
            .expect("import");
        println!(
            "import from a stream, fully re-validated: {:>10.0} records/s   ({} records, {} threads)",
            rate(report.read as usize, started.elapsed()),
            report.read,
            std::thread::available_parallelism().map_or(1, |t| t.get())
        );
    }

    // Durable inserts into the filled store.
    let (singles, rest) = fresh.split_at(sizes.singles);
    let (thousands, latency) = rest.split_at(sizes.thousands * 1000);
    let started = Instant::now();
    for r in singles {
        store.insert(r, received).expect("insert");
    }
    println!(
        "durable insert, batches of 1:             {:>10.0} records/s",
        rate(singles.len(), started.elapsed())
    );
    let started = Instant::now();
    for chunk in thousands.chunks(1000) {
        store
            .insert_batch(chunk.iter().map(|r| (r, received)))
            .expect("insert");
    }
    println!(
        "durable insert, batches of 1000:          {:>10.0} records/s",
        rate(thousands.len(), started.elapsed())
    );

    let store = commit_latency(store, &dir, &config, latency, sizes.latency, received);

    // Queries, warm.
    let mut rng = StdRng::seed_from_u64(42);
    let last = START + n as u64 * SPACING;
    let by_author: Vec<_> = (0..sizes.queries)
        .map(|_| {
            let a = authors[rng.random_range(0..authors.len())].1;
            (
                FilterBuilder::new().authors([a]).build().expect("filter"),
                500,
            )
        })
        .collect();
    let (_, author_p99, _, _) = time_queries(&store, "author, limit 500", &by_author);
    let by_kind: Vec<_> = (0..sizes.queries)
        .map(|_| {
            let since = last - rng.random_range(0..n as u64 / 10) * SPACING;
            let f = FilterBuilder::new()
                .kinds([Kind::MICROBLOG_ROOT])
                .since(Timestamp::from_nanos(since).expect("in range"))
                .build()
                .expect("filter");
            (f, 500)
        })
        .collect();
    time_queries(&store, "kind + since, limit 500", &by_kind);
    let by_tag: Vec<_> = (0..sizes.queries)
        .map(|_| {
            let who = authors[rng.random_range(0..authors.len())].1;
            let tag = OwnedTag::notify_public_key(&who);
            (
                FilterBuilder::new()
                    .included_tags([&*tag])
                    .build()
                    .expect("filter"),
                500,
            )
        })
        .collect();
    time_queries(&store, "tag, limit 500", &by_tag);
    let author_kind: Vec<_> = (0..sizes.queries)
        .map(|_| {
            let a = authors[rng.random_range(0..authors.len())].1;
            let f = FilterBuilder::new()
                .authors([a])
                .kinds([Kind::REPLY_COMMENT])
                .build()
                .expect("filter");
            (f, 500)
        })
        .collect();
    time_queries(&store, "author + kind, limit 500", &author_kind);
    println!(
        "targets: import ratio {:.2} (>= 0.5: {}), author p99 {:.3} ms (< 10 ms: {})",
        import_rate / bare_rate,
        if import_rate / bare_rate >= 0.5 {
            "met"
        } else {
            "MISSED"
        },
        author_p99,
        if author_p99 < 10.0 { "met" } else { "MISSED" }
    );
    // Bytes on disk, measured last: compaction changes the file.
    let stored = store.stats().expect("stats").records;
    drop(store);
    let (closed, compacted) = sizes_on_disk(&dir.path().join(DATABASE_FILE));
    println!(
        "bytes on disk per record, closed / compacted: store {:.0} / {:.0} ({stored} records), bare table {:.0} / {:.0}",
        closed as f64 / stored as f64,
        compacted as f64 / stored as f64,
        bare_closed as f64 / n as f64,
        bare_compacted as f64 / n as f64
    );
    println!("load average at the end: {}", load());
}
