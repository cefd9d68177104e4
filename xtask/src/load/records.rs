//! The load: microblog records from many authors, signed in advance on every
//! core, and the verify bound measured on the same records.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use mosaic_core::{
    IdPrefix, Kind, Message, Nonce, OwnedRecord, PublicKey, Record, RecordBuilder, SecretKey,
    Timestamp,
};

/// How long the timestamps of the load are spread over, ending now.
const SPREAD: Duration = Duration::from_secs(24 * 60 * 60);
/// Records whose signatures the verify bound checks (fewer if the load is
/// smaller).
const BOUND_SAMPLE: usize = 10_000;
/// Rounds of the verify bound whose median is taken, after one warm-up.
const BOUND_ROUNDS: usize = 5;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Records in the load.
    pub records: usize,
    /// Distinct authors; record `i` is by author `i % authors`.
    pub authors: usize,
    /// Bytes of payload per record.
    pub payload: usize,
}

/// One record of the load, ready to send.
pub struct Prepared {
    /// The encoded Submission message.
    pub submission: Vec<u8>,
    /// The prefix its Submission Result carries.
    pub prefix: IdPrefix,
    /// The record, for the verify bound.
    pub record: OwnedRecord,
}

/// The generated load.
pub struct Load {
    /// The records, in the order they are handed to connections.
    pub records: Vec<Prepared>,
    /// The authors' keys, for queries.
    pub authors: Vec<PublicKey>,
}

/// Secret key number `i` of the load. The same on every run, so that the
/// authors of two runs are the same people.
fn author_key(i: usize) -> SecretKey {
    let mut seed = [0x4c; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_bytes(&seed)
}

/// A payload of `len` bytes of text that starts with `label`.
fn payload_text(label: &str, len: usize) -> Vec<u8> {
    let mut text = format!("{label}: ");
    while text.len() < len {
        text.push_str("the quick brown fox jumps over the lazy dog. ");
    }
    let mut bytes = text.into_bytes();
    bytes.truncate(len);
    bytes
}

/// Generates and signs the load on every core, writing progress to
/// standard error when `progress` is set. `now` is the newest timestamp;
/// the others are spread evenly over the day before it.
pub fn generate(shape: Shape, now: SystemTime, progress: bool) -> Result<Load> {
    anyhow::ensure!(
        shape.records > 0 && shape.authors > 0,
        "--records and --authors must be at least 1"
    );
    let now = Timestamp::from_system_time(now)
        .map_err(|e| anyhow!("the system clock gives no valid timestamp: {e}"))?;
    let keys: Vec<SecretKey> = (0..shape.authors).map(author_key).collect();
    let make = |i: usize| -> Result<Prepared> {
        let key = &keys[i % keys.len()];
        let back = SPREAD.mul_f64(i as f64 / shape.records as f64);
        let label = format!("load record {i} of {}", shape.records);
        let payload = payload_text(&label, shape.payload);
        let record = RecordBuilder::new(Kind::MICROBLOG_ROOT, now.saturating_sub(back))
            .nonce(Nonce::from_key(label.as_bytes()))
            .payload(&payload)
            .build(key)
            .with_context(|| {
                format!(
                    "cannot build a record with a {}-byte payload: try a smaller --payload",
                    shape.payload
                )
            })?;
        let submission = Message::Submission {
            record: record.clone(),
        }
        .encode()
        .context("cannot encode a Submission: try a smaller --payload")?;
        Ok(Prepared {
            submission,
            prefix: IdPrefix::from_id(&record.id()),
            record,
        })
    };

    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(shape.records);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let parts = std::thread::scope(|s| {
        let chunk = shape.records.div_ceil(threads);
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (make, done) = (&make, &done);
                s.spawn(move || {
                    let range = t * chunk..((t + 1) * chunk).min(shape.records);
                    let mut out = Vec::with_capacity(range.len());
                    for i in range {
                        out.push(make(i)?);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<_, anyhow::Error>(out)
                })
            })
            .collect();
        let mut last = Instant::now();
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            if progress && last.elapsed() >= Duration::from_millis(500) {
                last = Instant::now();
                let n = done.load(Ordering::Relaxed);
                eprint!(
                    "\rload: signing {n}/{} records on {threads} threads",
                    shape.records
                );
                let _ = std::io::stderr().flush();
            }
        }
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow!("a signing thread panicked"))?)
            .collect::<Result<Vec<_>>>()
    })?;
    if progress {
        eprintln!(
            "\rload: signed {} records on {threads} threads in {:.1} s",
            shape.records,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Load {
        records: parts.into_iter().flatten().collect(),
        authors: keys.iter().map(SecretKey::public).collect(),
    })
}

/// The 2-thread single-verify bound: `Record::from_bytes` (which checks the
/// signature) on up to [`BOUND_SAMPLE`] of the records, split between two OS
/// threads; records/s, the median of [`BOUND_ROUNDS`] rounds after a
/// warm-up round.
pub fn verify_bound(records: &[Prepared]) -> Result<f64> {
    let sample = &records[..records.len().min(BOUND_SAMPLE)];
    anyhow::ensure!(!sample.is_empty(), "no records to verify");
    let (left, right) = sample.split_at(sample.len() / 2);
    let verify = |part: &[Prepared]| {
        part.iter()
            .filter(|p| Record::from_bytes(std::hint::black_box(p.record.as_bytes())).is_ok())
            .count()
    };
    let mut rates = Vec::with_capacity(BOUND_ROUNDS);
    for round in 0..=BOUND_ROUNDS {
        let started = Instant::now();
        let valid = std::thread::scope(|s| {
            let other = s.spawn(|| verify(left));
            let here = verify(right);
            other.join().map(|n| n + here)
        })
        .map_err(|_| anyhow!("a verifying thread panicked"))?;
        let elapsed = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            valid == sample.len(),
            "only {valid} of {} generated records verify",
            sample.len()
        );
        if round > 0 {
            rates.push(sample.len() as f64 / elapsed);
        }
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}
