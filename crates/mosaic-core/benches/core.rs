//! `cargo xtask bench core`: how fast records are signed, verified and
//! matched against a filter, next to the bare cost that any Mosaic verifier
//! must pay (BLAKE3-XOF64 of the signed bytes plus one Ed25519 check).
//!
//! Batch validation (`Record::from_bytes_batch`) is measured on its own pool
//! of 256 records, once with every record by another author and once with
//! all by one author (what a query for one author returns), next to
//! validating the same records one by one.
//!
//! Every figure comes from the same process on the same machine. The
//! measurements are interleaved round by round, so a change in the machine's
//! load touches them alike, and each figure is the median of the rounds
//! after one warm-up round. `MOSAIC_BENCH_QUICK=1` shrinks the rounds so
//! that CI only checks that the benchmark still runs.

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use mosaic_core::{
    Filter, FilterBuilder, Kind, Nonce, OwnedFilter, OwnedRecord, OwnedTag, Record, RecordBuilder,
    SecretKey, Timestamp, blake3_xof64,
};

/// Distinct records cycled through, so that no measurement reads the same
/// bytes over and over.
const POOL: usize = 64;
/// Records of each batch pool.
const BATCH_POOL: usize = 256;
/// The batch sizes measured.
const BATCH_SIZES: [usize; 4] = [1, 8, 64, 256];
/// Length of a microblog post's text.
const PAYLOAD_LEN: usize = 280;
/// Offset of the signed bytes in a record.
const SIGNED_AT: usize = 48;

/// How much to measure.
struct Plan {
    /// Measured rounds (after one warm-up round).
    rounds: usize,
    /// Records signed, verified or checked against the bound per round.
    crypto_iterations: usize,
    /// Records matched against the filter per round.
    match_iterations: usize,
}

impl Plan {
    fn from_env() -> Plan {
        let quick = std::env::var_os("MOSAIC_BENCH_QUICK").is_some_and(|v| v != "0");
        if quick {
            Plan {
                rounds: 3,
                crypto_iterations: 100,
                match_iterations: 10_000,
            }
        } else {
            Plan {
                rounds: 11,
                crypto_iterations: 2_000,
                match_iterations: 400_000,
            }
        }
    }
}

/// What a record of the pool is made from.
struct Post {
    timestamp: Timestamp,
    nonce: Nonce,
    payload: Vec<u8>,
    tags: [OwnedTag; 2],
    author: usize,
}

/// The fixed inputs of every measurement.
struct Fixture {
    keys: [SecretKey; 2],
    posts: Vec<Post>,
    records: Vec<OwnedRecord>,
    /// The same posts by the first author, signed by a subkey: the author
    /// key is then a second key to check.
    subkey_records: Vec<OwnedRecord>,
    filter: OwnedFilter,
    received: Timestamp,
    /// For the bound: the signer's key bytes and a plain Ed25519 signature
    /// of each record's 64-byte prehash.
    bound_keys: Vec<[u8; 32]>,
    bound_signatures: Vec<Signature>,
    /// `BATCH_POOL` posts, each by another author.
    batch_distinct: Vec<OwnedRecord>,
    /// `BATCH_POOL` posts, all by one author.
    batch_one_author: Vec<OwnedRecord>,
}

fn timestamp(nanos: u64) -> Timestamp {
    Timestamp::from_nanos(nanos).expect("fixture timestamps are below 2^63")
}

impl Fixture {
    fn new() -> Fixture {
        let seeds = [[0x11u8; 32], [0x22u8; 32]];
        let keys = seeds.map(|s| SecretKey::from_bytes(&s));
        let mentioned = SecretKey::from_bytes(&[0x33; 32]).public();
        let start = 1_750_000_000_000_000_000u64;
        let posts: Vec<Post> = (0..POOL)
            .map(|i| {
                let mut text = format!("Post {i}: ");
                while text.len() < PAYLOAD_LEN {
                    text.push_str("the quick brown fox jumps over the lazy dog. ");
                }
                text.truncate(PAYLOAD_LEN);
                Post {
                    timestamp: timestamp(start + i as u64 * 1_000_000_000),
                    nonce: Nonce::from_key(format!("post {i}").as_bytes()),
                    payload: text.into_bytes(),
                    tags: [
                        OwnedTag::notify_public_key(&mentioned),
                        OwnedTag::url(5, "https://example.com/a/link/in/the/post")
                            .expect("a short URL fits a tag"),
                    ],
                    // Three posts in four are by the author the filter asks for.
                    author: usize::from(i % 4 == 3),
                }
            })
            .collect();
        let records: Vec<OwnedRecord> = posts.iter().map(|p| sign(p, &keys)).collect();
        let subkey = SecretKey::from_bytes(&[0x12; 32]);
        let subkey_records: Vec<OwnedRecord> = posts
            .iter()
            .map(|p| {
                RecordBuilder::new(Kind::MICROBLOG_ROOT, p.timestamp)
                    .nonce(p.nonce)
                    .author(keys[0].public())
                    .tag(&p.tags[0])
                    .tag(&p.tags[1])
                    .payload(&p.payload)
                    .build(&subkey)
                    .expect("a valid microblog post")
            })
            .collect();

        // Nine other authors, then the one most posts are by; two kinds; and
        // a `since` half way through the pool.
        let mut authors: Vec<_> = (0..9u8)
            .map(|i| SecretKey::from_bytes(&[0x40 + i; 32]).public())
            .collect();
        authors.push(keys[0].public());
        let filter = FilterBuilder::new()
            .authors(authors)
            .kinds([Kind::REPLY_COMMENT, Kind::MICROBLOG_ROOT])
            .since(posts[POOL / 2].timestamp)
            .build()
            .expect("a small filter");

        let signing_keys = seeds.map(|s| SigningKey::from_bytes(&s));
        let mut bound_keys = Vec::with_capacity(POOL);
        let mut bound_signatures = Vec::with_capacity(POOL);
        for (post, record) in posts.iter().zip(&records) {
            let signer = &signing_keys[post.author];
            let prehash = blake3_xof64(signed_bytes(record));
            let signature = signer.sign(&prehash);
            let key = signer.verifying_key().to_bytes();
            VerifyingKey::from_bytes(&key)
                .and_then(|k| k.verify_strict(&prehash, &signature))
                .expect("the bound's signature verifies");
            bound_keys.push(key);
            bound_signatures.push(signature);
        }

        let batch_post = |i: usize, key: &SecretKey| {
            let post = &posts[i % POOL];
            RecordBuilder::new(Kind::MICROBLOG_ROOT, post.timestamp)
                .nonce(Nonce::from_key(format!("batch post {i}").as_bytes()))
                .tag(&post.tags[0])
                .tag(&post.tags[1])
                .payload(&post.payload)
                .build(key)
                .expect("a valid microblog post")
        };
        let batch_distinct = (0..BATCH_POOL)
            .map(|i| {
                let mut seed = [0x70u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                batch_post(i, &SecretKey::from_bytes(&seed))
            })
            .collect();
        let batch_one_author = (0..BATCH_POOL).map(|i| batch_post(i, &keys[0])).collect();

        Fixture {
            keys,
            posts,
            records,
            subkey_records,
            filter,
            received: timestamp(start + 10_000_000_000_000),
            bound_keys,
            bound_signatures,
            batch_distinct,
            batch_one_author,
        }
    }
}

fn sign(post: &Post, keys: &[SecretKey; 2]) -> OwnedRecord {
    RecordBuilder::new(Kind::MICROBLOG_ROOT, post.timestamp)
        .nonce(post.nonce)
        .tag(&post.tags[0])
        .tag(&post.tags[1])
        .payload(&post.payload)
        .build(&keys[post.author])
        .expect("a valid microblog post")
}

/// The bytes a record's signature covers.
fn signed_bytes(record: &Record) -> &[u8] {
    &record.as_bytes()[SIGNED_AT..record.len() - 64]
}

/// Runs `iterations` calls and returns calls per second.
fn rate(iterations: usize, mut call: impl FnMut(usize) -> bool) -> f64 {
    let started = Instant::now();
    let mut hits = 0usize;
    for i in 0..iterations {
        hits += usize::from(call(i));
    }
    black_box(hits);
    iterations as f64 / started.elapsed().as_secs_f64()
}

/// Validates `records` records of `pool`, cycling through it, in batches of
/// `size` (a divisor of the pool's length); returns records per second.
fn batch_rate(pool: &[&[u8]], size: usize, records: usize) -> f64 {
    let started = Instant::now();
    let (mut done, mut valid) = (0, 0);
    while done < records {
        let at = done % pool.len();
        let verdicts = Record::from_bytes_batch(black_box(&pool[at..at + size]));
        valid += verdicts.iter().filter(|v| v.is_ok()).count();
        done += size;
    }
    black_box(valid);
    done as f64 / started.elapsed().as_secs_f64()
}

/// Validates `records` records of `pool` one by one; records per second.
fn single_rate(pool: &[&[u8]], records: usize) -> f64 {
    rate(records, |i| {
        Record::from_bytes(black_box(pool[i % pool.len()])).is_ok()
    })
}

/// Records per second one by one and in each of `BATCH_SIZES`.
#[derive(Default, Clone, Copy)]
struct BatchRound {
    single: f64,
    batched: [f64; BATCH_SIZES.len()],
}

fn batch_round(pool: &[OwnedRecord], records: usize) -> BatchRound {
    let slices: Vec<&[u8]> = pool.iter().map(|r| r.as_bytes()).collect();
    let single = single_rate(&slices, records);
    let batched = BATCH_SIZES.map(|size| batch_rate(&slices, size, records));
    BatchRound { single, batched }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One round's figures, in calls per second.
#[derive(Default)]
struct Round {
    signed: f64,
    verified: f64,
    verified_subkey: f64,
    bound: f64,
    matched: f64,
    batch_distinct: BatchRound,
    batch_one_author: BatchRound,
}

fn round(fixture: &Fixture, plan: &Plan) -> Round {
    let n = plan.crypto_iterations;
    let signed = rate(n, |i| {
        let record = sign(&fixture.posts[i % POOL], &fixture.keys);
        black_box(record).len() > 0
    });
    let verified = rate(n, |i| {
        Record::from_bytes(black_box(fixture.records[i % POOL].as_bytes())).is_ok()
    });
    let verified_subkey = rate(n, |i| {
        Record::from_bytes(black_box(fixture.subkey_records[i % POOL].as_bytes())).is_ok()
    });
    let bound = rate(n, |i| {
        let record = black_box(&fixture.records[i % POOL]);
        let prehash = blake3_xof64(signed_bytes(record));
        VerifyingKey::from_bytes(black_box(&fixture.bound_keys[i % POOL]))
            .and_then(|key| key.verify_strict(&prehash, &fixture.bound_signatures[i % POOL]))
            .is_ok()
    });
    let filter: &Filter = &fixture.filter;
    let matched = rate(plan.match_iterations, |i| {
        black_box(filter).matches(black_box(&fixture.records[i % POOL]), fixture.received)
    });
    // Whole passes over the batch pools, at least as many records as the
    // other measurements.
    let batch_records = n.div_ceil(BATCH_POOL).max(1) * BATCH_POOL;
    let batch_distinct = batch_round(&fixture.batch_distinct, batch_records);
    let batch_one_author = batch_round(&fixture.batch_one_author, batch_records);
    Round {
        signed,
        verified,
        verified_subkey,
        bound,
        matched,
        batch_distinct,
        batch_one_author,
    }
}

fn main() {
    let plan = Plan::from_env();
    let fixture = Fixture::new();

    // The pool must be what it claims: every record valid, and the filter
    // matching some records but not all.
    let valid = fixture
        .records
        .iter()
        .chain(&fixture.subkey_records)
        .filter(|r| Record::from_bytes(r.as_bytes()).is_ok())
        .count();
    assert_eq!(valid, 2 * POOL, "every record of the pools verifies");
    let matching = fixture
        .records
        .iter()
        .filter(|r| fixture.filter.matches(r, fixture.received))
        .count();
    assert!(
        0 < matching && matching < POOL,
        "the filter must discriminate"
    );
    for pool in [&fixture.batch_distinct, &fixture.batch_one_author] {
        let slices: Vec<&[u8]> = pool.iter().map(|r| r.as_bytes()).collect();
        let valid = Record::from_bytes_batch(&slices)
            .iter()
            .filter(|v| v.is_ok())
            .count();
        assert_eq!(
            valid, BATCH_POOL,
            "every record of the batch pools verifies"
        );
    }
    let record_len = fixture.records[0].len();

    round(&fixture, &plan);
    let rounds: Vec<Round> = (0..plan.rounds).map(|_| round(&fixture, &plan)).collect();
    let pick = |f: fn(&Round) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
    let signed = pick(|r| r.signed);
    let verified = pick(|r| r.verified);
    let verified_subkey = pick(|r| r.verified_subkey);
    let bound = pick(|r| r.bound);
    let matched = pick(|r| r.matched);
    // Paired per round, so that load on the machine cancels out.
    let ratio = pick(|r| r.verified / r.bound);

    println!(
        "core: {} rounds of {} records ({record_len} bytes: 2 tags, {PAYLOAD_LEN}-byte payload), median per round{}",
        plan.rounds,
        plan.crypto_iterations,
        if plan.rounds < 5 { " (quick)" } else { "" }
    );
    println!("core: records signed/s: {signed:.0}");
    println!("core: records verified/s: {verified:.0}");
    println!("core: records verified/s, signed by a subkey: {verified_subkey:.0}");
    println!(
        "core: bound (BLAKE3-XOF64 + ed25519 key decompression + verify_strict)/s: {bound:.0}"
    );
    println!(
        "core: filters matched/s: {matched:.0} (authors x10, kinds x2, since; {matching} of {POOL} records match)"
    );
    println!("core: verified/bound ratio: {ratio:.3} (target >= 0.95)");
    for (name, pick_batch) in [
        (
            "each by another author",
            (|r: &Round| r.batch_distinct) as fn(&Round) -> BatchRound,
        ),
        ("all by one author", |r: &Round| r.batch_one_author),
    ] {
        let single = median(
            &mut rounds
                .iter()
                .map(|r| pick_batch(r).single)
                .collect::<Vec<_>>(),
        );
        let mut line = format!(
            "core: batch validation, {BATCH_POOL} records {name}: one by one {single:.0}/s"
        );
        for (i, size) in BATCH_SIZES.iter().enumerate() {
            let batched = median(
                &mut rounds
                    .iter()
                    .map(|r| pick_batch(r).batched[i])
                    .collect::<Vec<_>>(),
            );
            let ratio = median(
                &mut rounds
                    .iter()
                    .map(|r| pick_batch(r).batched[i] / pick_batch(r).single)
                    .collect::<Vec<_>>(),
            );
            line.push_str(&format!("; batch {size}: {batched:.0}/s ({ratio:.2}x)"));
        }
        println!("{line}");
    }
    println!(
        "core: summary: signed {signed:.0}/s, verified {verified:.0}/s = {:.1} us each, {ratio:.3} of the bound ({bound:.0}/s), filters matched {matched:.0}/s",
        1e6 / verified
    );
}
