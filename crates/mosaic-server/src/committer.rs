//! Group commit: submissions from every connection are gathered and written
//! in one durable transaction, then answered, then handed to the fan-out
//! task, so that an acknowledgement never waits for delivery.
//!
//! One task owns the write side of the store. While a batch is being made
//! durable, new submissions queue up; the next batch takes all of them (up
//! to `max_commit_batch`). When fewer are queued than the last commit
//! answered plus those that queued behind it, the batch waits briefly (half
//! the last commit's time, at most 2 ms) for the rest: submitters that wait
//! for each result then share one commit. A submitter hears ACCEPTED only once its record is
//! durable (D-7), and subscribers see the record only then too.
//!
//! A commit that fails leaves the store in a state this process cannot
//! know (an fsync error may or may not have reached the disk), so the first
//! failure turns writes off for good ([`WriteHealth`]): the failed batch and
//! every later submission are answered with an error, never ACCEPTED, until
//! an operator has looked and restarted the server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mosaic_core::{ResultCode, Timestamp};
use mosaic_store::{InsertOutcome, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, error};

use crate::metrics::Metrics;
use crate::subscriptions::Published;

/// Why a submission was not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitFailure {
    /// The store failed; the code to answer with (see
    /// [`store_code`](crate::error::store_code)).
    Store(ResultCode),
    /// Writes are off after an earlier failed commit.
    WritesOff,
    /// The server is shutting down.
    ShuttingDown,
}

impl CommitFailure {
    /// The result code a submitter is answered with.
    pub(crate) fn code(self) -> ResultCode {
        match self {
            CommitFailure::Store(code) => code,
            CommitFailure::WritesOff => ResultCode::PERSISTENT_ERROR,
            CommitFailure::ShuttingDown => ResultCode::SHUTTING_DOWN,
        }
    }
}

/// Whether the store may still be written, and if not, why.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    off: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl WriteHealth {
    /// Turns writes off for the rest of the process's life.
    pub(crate) fn fail(&self, reason: String) {
        let mut held = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_none() {
            error!(
                reason = %reason,
                "a durable write failed: refusing every write until the server is restarted (check the disk and the logs)"
            );
            *held = Some(reason);
        }
        self.off.store(true, Ordering::Release);
    }

    /// Whether writes are off.
    pub(crate) fn is_off(&self) -> bool {
        self.off.load(Ordering::Acquire)
    }

    /// Why writes are off.
    pub(crate) fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Records made durable, in commit order, and when, for the fan-out task.
pub(crate) type Committed = (Instant, Vec<(Published, Timestamp)>);

/// The longest a batch waits for more submissions (see [`gather`]); never
/// more than half of the last commit's time either.
const MAX_LINGER: Duration = Duration::from_millis(2);

struct Job {
    record: Published,
    received_at: Timestamp,
    reply: oneshot::Sender<Result<InsertOutcome, CommitFailure>>,
}

/// The handle sessions submit through.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the commit task; it ends when every handle is dropped and the
    /// queue is drained.
    pub(crate) fn start(
        store: Arc<Store>,
        fanout: mpsc::Sender<Committed>,
        health: Arc<WriteHealth>,
        metrics: Arc<Metrics>,
        max_batch: usize,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let task = tokio::spawn(run(rx, store, fanout, health, metrics, max_batch.max(1)));
        (Committer { tx }, task)
    }

    /// Submissions waiting for a commit.
    pub(crate) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Submits a validated record; resolves once it is durable (or refused).
    pub(crate) async fn submit(
        &self,
        record: Published,
        received_at: Timestamp,
    ) -> Result<InsertOutcome, CommitFailure> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job {
                record,
                received_at,
                reply,
            })
            .await
            .map_err(|_| CommitFailure::ShuttingDown)?;
        answer.await.unwrap_or(Err(CommitFailure::ShuttingDown))
    }
}

/// Makes a batch: `first`, what is queued, and, while fewer than
/// `expected` are in hand, what arrives within `linger`; at most `max_batch`.
///
/// Submitters answered by the last commit are usually about to send their
/// next record. Waiting for them briefly lets them share one commit, instead
/// of the first to come back being committed alone while the others queue
/// behind it (a batch of one, then a batch of the rest, and so on).
async fn gather(
    rx: &mut mpsc::Receiver<Job>,
    first: Job,
    expected: usize,
    linger: Duration,
    max_batch: usize,
) -> Vec<Job> {
    let mut jobs = vec![first];
    take_queued(rx, &mut jobs, max_batch);
    let deadline = Instant::now() + linger;
    while jobs.len() < expected.min(max_batch) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(job)) => {
                jobs.push(job);
                take_queued(rx, &mut jobs, max_batch);
            }
            Ok(None) | Err(_) => break,
        }
    }
    jobs
}

/// Moves what is queued into `jobs`, up to `max_batch` in all.
fn take_queued(rx: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>, max_batch: usize) {
    while jobs.len() < max_batch {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<Store>,
    fanout: mpsc::Sender<Committed>,
    health: Arc<WriteHealth>,
    metrics: Arc<Metrics>,
    max_batch: usize,
) {
    // Submitters answered by the last commit, and those that queued up
    // while it was made durable.
    let mut expected = 0;
    let mut last_commit = Duration::ZERO;
    while let Some(first) = rx.recv().await {
        if health.is_off() {
            let _ = first.reply.send(Err(CommitFailure::WritesOff));
            continue;
        }
        let linger = (last_commit / 2).min(MAX_LINGER);
        let jobs = gather(&mut rx, first, expected, linger, max_batch).await;
        let started = Instant::now();
        let batch: Vec<(Published, Timestamp)> = jobs
            .iter()
            .map(|j| (j.record.clone(), j.received_at))
            .collect();
        let store = store.clone();
        let result = tokio::task::spawn_blocking(move || {
            store.insert_batch(batch.iter().map(|(r, t)| (r.as_ref(), *t)))
        })
        .await;
        last_commit = started.elapsed();
        expected = jobs.len() + rx.len();
        let failure = match result {
            Ok(Ok(outcomes)) => {
                debug!(records = jobs.len(), "batch durable");
                metrics.commit_finished(jobs.len(), last_commit);
                let mut committed = Vec::new();
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    if outcome.is_stored() {
                        committed.push((job.record, job.received_at));
                    }
                    let _ = job.reply.send(Ok(outcome));
                }
                // After the answers: delivery never delays them. A full
                // fan-out queue holds the next commit, not these answers.
                metrics.records_accepted(committed.len() as u64);
                if !committed.is_empty() && fanout.send((Instant::now(), committed)).await.is_err()
                {
                    debug!("fan-out task gone");
                }
                continue;
            }
            Ok(Err(e)) => {
                let code = crate::error::store_code(&e);
                health.fail(format!("commit of {} records failed: {e}", jobs.len()));
                code
            }
            Err(e) => {
                health.fail(format!("the commit task failed: {e}"));
                ResultCode::PERSISTENT_ERROR
            }
        };
        for job in jobs {
            let _ = job.reply.send(Err(CommitFailure::Store(failure)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{Kind, Nonce, OwnedRecord, RecordBuilder, SecretKey};

    fn job(i: u64) -> (Job, oneshot::Receiver<Result<InsertOutcome, CommitFailure>>) {
        let record: OwnedRecord = RecordBuilder::new(
            Kind::MICROBLOG_ROOT,
            Timestamp::from_nanos(1_700_000_000_000_000_000 + i).unwrap(),
        )
        .nonce(Nonce::from_key(&i.to_le_bytes()))
        .payload(b"hello")
        .build(&SecretKey::from_bytes(&[7; 32]))
        .unwrap();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            record: Arc::new(record),
            received_at: Timestamp::ZERO,
            reply,
        };
        (job, answer)
    }

    const LINGER: Duration = Duration::from_millis(10);

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_for_the_expected_submitters_within_the_linger() {
        let (tx, mut rx) = mpsc::channel(16);
        let (first, _a) = job(0);
        let (queued, _b) = job(1);
        tx.send(queued).await.unwrap();
        let late = tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 2..5 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let (j, answer) = job(i);
                answers.push(answer);
                tx.send(j).await.unwrap();
            }
            answers
        });
        let started = Instant::now();
        let jobs = gather(&mut rx, first, 5, LINGER, 100).await;
        assert_eq!(jobs.len(), 5, "the three late submitters join the batch");
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(3),
            "no longer than needed"
        );
        let _answers = late.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_no_longer_than_the_linger() {
        let (tx, mut rx) = mpsc::channel(16);
        let (first, _a) = job(0);
        let started = Instant::now();
        let jobs = gather(&mut rx, first, 3, LINGER, 100).await;
        assert_eq!(jobs.len(), 1);
        assert_eq!(started.elapsed(), LINGER);
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_submitter_does_not_wait() {
        let (tx, mut rx) = mpsc::channel(16);
        let (first, _a) = job(0);
        let started = Instant::now();
        let jobs = gather(&mut rx, first, 1, LINGER, 100).await;
        assert_eq!(jobs.len(), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
        // Nor does a batch that already has what was expected.
        let (first, _b) = job(1);
        for i in 2..6 {
            tx.send(job(i).0).await.unwrap();
        }
        let jobs = gather(&mut rx, first, 3, LINGER, 100).await;
        assert_eq!(jobs.len(), 5);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_never_exceeds_the_maximum() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 1..10 {
            tx.send(job(i).0).await.unwrap();
        }
        let jobs = gather(&mut rx, job(0).0, 20, LINGER, 4).await;
        assert_eq!(jobs.len(), 4);
        assert_eq!(rx.len(), 6, "the rest stay queued for the next batch");
    }
}
