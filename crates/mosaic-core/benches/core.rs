//! `cargo xtask bench core`: how fast records are signed, verified and
//! matched against a filter, next to the bare cost that any Mosaic verifier
//! must pay (BLAKE3-XOF64 of the signed bytes plus one Ed25519 check).
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

        Fixture {
            keys,
            posts,
            records,
            subkey_records,
            filter,
            received: timestamp(start + 10_000_000_000_000),
            bound_keys,
            bound_signatures,
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
    Round {
        signed,
        verified,
        verified_subkey,
        bound,
        matched,
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
    println!(
        "core: summary: signed {signed:.0}/s, verified {verified:.0}/s = {:.1} us each, {ratio:.3} of the bound ({bound:.0}/s), filters matched {matched:.0}/s",
        1e6 / verified
    );
}
