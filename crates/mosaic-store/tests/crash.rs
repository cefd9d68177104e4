//! Durability under SIGKILL.
//!
//! This test binary is its own child: run with `MOSAIC_STORE_CRASH_CHILD`
//! set to a directory, it opens the store there and writes batches forever,
//! printing each batch's ids before the call and an acknowledgement after
//! it returns. Without that variable it is the parent: for each round it
//! starts the child, kills it with SIGKILL at a random moment, reopens the
//! store and checks that every acknowledged write is there, that every
//! batch is all there or not at all, that the counts agree with the
//! records, and that the file passes the engine's integrity check.
//!
//! The child checkpoints often (every few hundred records or 20 ms, some
//! rounds every 30 records, so that larger batches skip the log), so kills
//! land in log appends, in checkpoints and between them. In one round of
//! three the parent checks a copy of the killed store's files and leaves
//! the store itself unrecovered, with a long log: the next child replays
//! it when it opens, and is often killed while it does.
//!
//! A kill cannot show a missing `fdatasync` (the page cache survives a
//! killed process); the unit tests count the log's syncs instead.
//!
//! It has no libtest harness (`harness = false` in `Cargo.toml`), so it
//! runs in the ordinary `cargo test` and prints its own summary.

#[path = "store/common.rs"]
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mosaic_core::{DuplicateHandling, Id, OwnedFilter};
use mosaic_store::{DATABASE_FILE, InsertOutcome, LOG_FILE, Store, StoreConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use common::{Spec, TempDir, kind, secret, ts};

const CHILD_ENV: &str = "MOSAIC_STORE_CRASH_CHILD";
const ROUND_ENV: &str = "MOSAIC_STORE_CRASH_ROUND";
/// `<records>,<milliseconds>`: the child's checkpoint settings.
const CHECKPOINT_ENV: &str = "MOSAIC_STORE_CRASH_CHECKPOINT";
/// Stores, each killed in `ROUNDS_PER_STORE` rounds.
const STORES: u64 = 10;
const ROUNDS_PER_STORE: u64 = 10;
const ROUNDS: u64 = STORES * ROUNDS_PER_STORE;

fn main() -> ExitCode {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let mut config = StoreConfig::default();
        if let Some((records, ms)) = std::env::var(CHECKPOINT_ENV)
            .ok()
            .as_deref()
            .and_then(|v| v.split_once(','))
            .and_then(|(r, m)| Some((r.parse().ok()?, m.parse().ok()?)))
        {
            config.checkpoint_records = records;
            config.checkpoint_interval = Duration::from_millis(ms);
        }
        child(Path::new(&dir), round, config);
        return ExitCode::SUCCESS;
    }
    match parent() {
        Ok(summary) => {
            println!("crash: {summary}");
            println!("1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("crash: FAILED: {why}");
            println!("0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn hex(id: &Id) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Id> {
    let mut bytes = [0u8; 48];
    if s.len() != 96 {
        return None;
    }
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Id::from_bytes(&bytes).ok()
}

/// Writes until killed. Lines: `ready` once the store is open, then
/// `insert <batch> <id>...` before a batch, `remove <batch> <id>` before a
/// removal, `ack <batch>` after either.
fn child(dir: &Path, round: u64, config: StoreConfig) {
    let store = Store::open(dir, config).expect("the store opens");
    let key = secret(round);
    let unique = kind(DuplicateHandling::Unique, 1);
    let mut out = std::io::stdout().lock();
    let mut rng = StdRng::seed_from_u64(round);
    let mut written: Vec<Id> = Vec::new();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    for batch in 0u64.. {
        if batch % 4 == 3 && !written.is_empty() {
            let id = written.swap_remove(rng.random_range(0..written.len()));
            writeln!(out, "remove {batch} {}", hex(&id)).expect("stdout");
            out.flush().expect("stdout");
            assert!(store.remove(&id).expect("remove"));
        } else {
            let n = rng.random_range(1..40u64);
            let records: Vec<_> = (0..n)
                .map(|i| {
                    let nonce =
                        [round.to_le_bytes(), batch.to_le_bytes(), i.to_le_bytes()].concat();
                    Spec::new(unique, ts(batch * 1_000 + i), &nonce)
                        .payload(&vec![i as u8; rng.random_range(0..600)])
                        .sign(&key)
                })
                .collect();
            let ids: Vec<String> = records.iter().map(|r| hex(&r.id())).collect();
            writeln!(out, "insert {batch} {}", ids.join(" ")).expect("stdout");
            out.flush().expect("stdout");
            let outcomes = store
                .insert_batch(records.iter().map(|r| (r, ts(0))))
                .expect("insert");
            assert!(outcomes.iter().all(|o| *o == InsertOutcome::Inserted));
            written.extend(records.iter().map(|r| r.id()));
        }
        writeln!(out, "ack {batch}").expect("stdout");
        out.flush().expect("stdout");
    }
}

/// What one round's child said it did.
#[derive(Default)]
struct Log {
    /// Batches announced: (batch, removal?, ids).
    announced: Vec<(u64, bool, Vec<Id>)>,
    acked: BTreeSet<u64>,
    /// Whether it said `ready` (its store was open).
    ready: bool,
}

/// When to kill the child: a delay after it starts, or after it is ready.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// At a random moment while it starts, creates or opens the store.
    AfterStart(Duration),
    /// At a random moment while it writes.
    AfterReady(Duration),
}

fn run_child(dir: &Path, round: u64, kill: Kill, checkpoint: (u64, u64)) -> Result<Log, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .env(CHECKPOINT_ENV, format!("{},{}", checkpoint.0, checkpoint.1))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                // Only whole lines count: the kill may cut the last one.
                Ok(n) if n > 0 && line.ends_with(b"\n") => {
                    if tx
                        .send(String::from_utf8_lossy(&line).trim().to_owned())
                        .is_err()
                    {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    let mut lines = Vec::new();
    match kill {
        Kill::AfterStart(delay) => std::thread::sleep(delay),
        Kill::AfterReady(delay) => {
            // Wait for `ready` (or for the child to die on its own).
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(line) => {
                        let ready = line == "ready";
                        lines.push(line);
                        if ready {
                            break;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                    Err(_) => return Err("the child never became ready".to_owned()),
                }
            }
            std::thread::sleep(delay);
        }
    }
    // SIGKILL on Unix.
    child.kill().map_err(|e| format!("kill: {e}"))?;
    child.wait().map_err(|e| format!("wait: {e}"))?;
    reader.join().map_err(|_| "reader thread panicked")?;
    let mut log = Log::default();
    lines.extend(rx.try_iter());
    for line in lines {
        let mut words = line.split(' ');
        let (what, batch) = (words.next(), words.next().and_then(|b| b.parse().ok()));
        match (what, batch) {
            (Some("ready"), None) => log.ready = true,
            (Some("ack"), Some(b)) => {
                log.acked.insert(b);
            }
            (Some(w @ ("insert" | "remove")), Some(b)) => {
                let ids = words
                    .map(|h| unhex(h).ok_or_else(|| format!("bad id in {line:?}")))
                    .collect::<Result<Vec<_>, _>>()?;
                log.announced.push((b, w == "remove", ids));
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    Ok(log)
}

fn parent() -> Result<String, String> {
    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut dir = TempDir::new("crash");
    let copy = TempDir::new("crash-copy");
    // Ids that must be there, and ids that must not.
    let mut present: BTreeSet<Id> = BTreeSet::new();
    let mut absent: BTreeSet<Id> = BTreeSet::new();
    let mut acked_batches = 0;
    let mut torn_batches = 0;
    let mut replays = 0;
    let mut left_unrecovered = false;
    for round in 0..ROUNDS {
        if round % ROUNDS_PER_STORE == 0 && round > 0 {
            dir = TempDir::new("crash");
            present.clear();
            absent.clear();
            left_unrecovered = false;
        }
        // After a round left its log unrecovered, the child is killed
        // while it opens the store and replays the log; one round in four
        // too (while it starts, creates or opens the store); the others
        // while it writes.
        let kill = if left_unrecovered || round % 4 == 0 {
            Kill::AfterStart(Duration::from_millis(rng.random_range(0..40)))
        } else {
            Kill::AfterReady(Duration::from_millis(rng.random_range(0..80)))
        };
        // Checked on a copy: the store keeps a long log for the next child.
        let on_copy = round % 3 == 1 && round % ROUNDS_PER_STORE != ROUNDS_PER_STORE - 1;
        let checkpoint = if on_copy {
            (u64::MAX, 60_000)
        } else if round % 5 == 2 {
            (30, 20)
        } else {
            (300, 20)
        };
        let log = run_child(dir.path(), round, kill, checkpoint)?;
        let context = format!("seed {seed}, round {round}, killed {kill:?}");
        let checked = if on_copy {
            for name in [DATABASE_FILE, LOG_FILE] {
                let from = dir.path().join(name);
                let to = copy.path().join(name);
                let _ = std::fs::remove_file(&to);
                if from.exists() {
                    std::fs::copy(&from, &to).map_err(|e| format!("{context}: copy: {e}"))?;
                }
            }
            copy.path()
        } else {
            dir.path()
        };
        if left_unrecovered && !log.ready {
            replays += 1;
        }
        left_unrecovered = on_copy;
        let mut store = Store::open(checked, StoreConfig::default())
            .map_err(|e| format!("{context}: the store does not reopen: {e}"))?;
        for (batch, removal, ids) in &log.announced {
            let acked = log.acked.contains(batch);
            if acked {
                acked_batches += 1;
                for id in ids {
                    if *removal {
                        present.remove(id);
                        absent.insert(*id);
                    } else {
                        present.insert(*id);
                    }
                }
                continue;
            }
            // Killed during this batch: all of it or none of it.
            torn_batches += 1;
            let there: Vec<bool> = ids
                .iter()
                .map(|id| store.contains(id))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{context}: {e}"))?;
            if there.iter().any(|&t| t != there[0]) {
                return Err(format!("{context}: batch {batch} was partly applied"));
            }
            if there.first() == Some(&(!*removal)) {
                for id in ids {
                    if *removal {
                        present.remove(id);
                        absent.insert(*id);
                    } else {
                        present.insert(*id);
                    }
                }
            }
        }
        for id in &present {
            if !store.contains(id).map_err(|e| format!("{context}: {e}"))? {
                return Err(format!(
                    "{context}: acknowledged record {} is lost",
                    hex(id)
                ));
            }
        }
        for id in &absent {
            if store.contains(id).map_err(|e| format!("{context}: {e}"))? {
                return Err(format!("{context}: removed record {} is back", hex(id)));
            }
        }
        let stats = store.stats().map_err(|e| format!("{context}: {e}"))?;
        let scanned = store
            .query(&OwnedFilter::empty(), usize::MAX)
            .map_err(|e| format!("{context}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{context}: {e}"))?
            .len() as u64;
        if stats.records != scanned || scanned != present.len() as u64 {
            return Err(format!(
                "{context}: counts disagree: stats {}, scan {scanned}, expected {}",
                stats.records,
                present.len()
            ));
        }
        if !store
            .check_integrity()
            .map_err(|e| format!("{context}: integrity check failed: {e}"))?
        {
            return Err(format!("{context}: the file needed repair after reopening"));
        }
    }
    if present.is_empty() || acked_batches < ROUNDS / 2 {
        return Err(format!(
            "seed {seed}: too little was written to mean anything: {} records, {acked_batches} batches",
            present.len()
        ));
    }
    Ok(format!(
        "{ROUNDS} rounds on {STORES} stores killed with SIGKILL ({replays} while opening a \
         store with a log to replay), {acked_batches} acknowledged batches all durable, {torn_batches} interrupted \
         batches atomic, seed {seed}, {:.1}s",
        started.elapsed().as_secs_f64()
    ))
}
