//! The verification stage between decoding and commit: submitted records
//! from every connection are checked (every server step of `record.md`, the
//! signature included) in batches on the blocking pool, off the tasks that
//! serve connections.
//!
//! One task gathers what is queued while the workers are busy, so a batch
//! grows with the load: under load, records from many connections share a
//! batch and one batch verification. At most `workers` batches run at
//! once. When nothing is waiting or being checked, a submission is checked
//! where it is, alone, without the trips to the stage and back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mosaic_core::{OwnedRecord, Record, RecordError};
use mosaic_net::Bytes;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::debug;

/// The bytes of a Submission message before its record.
const RECORD_AT: usize = 8;

/// A submitted record to check: the whole Submission message.
struct Job {
    frame: Bytes,
    reply: oneshot::Sender<Verdict>,
}

/// What the stage says of one submission.
pub(crate) type Verdict = Result<OwnedRecord, RecordError>;

/// The handle sessions submit through.
#[derive(Clone)]
pub(crate) struct Verifier {
    tx: mpsc::Sender<Job>,
    /// Records being checked, here or in the stage.
    pending: Arc<AtomicUsize>,
}

impl Verifier {
    /// Starts the stage: at most `workers` batches at once, each of at most
    /// `max_batch` records. It ends when every handle is dropped.
    pub(crate) fn start(workers: usize, max_batch: usize) -> Verifier {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * workers.max(1) * 4);
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(rx, workers.max(1), max_batch.max(1), pending.clone()));
        Verifier { tx, pending }
    }

    /// Checks the record of a Submission message whose header was checked
    /// (type, length, reserved bytes); `None` when the server is stopping.
    pub(crate) async fn verify(&self, frame: Bytes) -> Option<Verdict> {
        if self.pending.fetch_add(1, Ordering::AcqRel) == 0 {
            // Nothing else is being checked: no batch to join.
            let verdict = Record::from_bytes(frame.get(RECORD_AT..).unwrap_or_default());
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Some(verdict.map(Record::to_owned));
        }
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Job { frame, reply }).await.is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        answer.await.ok()
    }
}

/// Whether `frame` has a Submission's header: the type, a length equal to
/// the frame's, zero reserved bytes. Anything else goes through the full
/// decoder, which says precisely what is wrong.
pub(crate) fn is_plain_submission(frame: &[u8]) -> bool {
    frame.len() > RECORD_AT
        && frame[0] == mosaic_core::MessageType::SUBMISSION.as_u8()
        && matches!(mosaic_core::frame_len(frame), Ok(Some(n)) if n == frame.len())
        && frame[4..RECORD_AT] == [0; 4]
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    workers: usize,
    max_batch: usize,
    pending: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(workers));
    while let Some(first) = rx.recv().await {
        // Waiting for a free worker is what lets a batch grow.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let pending = pending.clone();
        if jobs.len() == 1 {
            // A lone record costs one signature check, about as long as
            // handing it to another thread and back: check it here.
            check(jobs, &pending);
            drop(slot);
            continue;
        }
        tokio::task::spawn_blocking(move || {
            check(jobs, &pending);
            drop(slot);
        });
    }
}

/// Checks a batch and answers each job.
fn check(jobs: Vec<Job>, pending: &AtomicUsize) {
    debug!(records = jobs.len(), "verifying a batch");
    let items: Vec<&[u8]> = jobs
        .iter()
        .map(|job| job.frame.get(RECORD_AT..).unwrap_or_default())
        .collect();
    let verdicts: Vec<Verdict> = verify_all(&items)
        .into_iter()
        .map(|verdict| verdict.map(Record::to_owned))
        .collect();
    drop(items);
    let answered = jobs.len();
    for (job, verdict) in jobs.into_iter().zip(verdicts) {
        let _ = job.reply.send(verdict);
    }
    pending.fetch_sub(answered, Ordering::AcqRel);
}

/// The verdict of `Record::from_bytes` on each item.
fn verify_all<'a>(items: &[&'a [u8]]) -> Vec<Result<&'a Record, RecordError>> {
    items
        .iter()
        .map(|bytes| Record::from_bytes(bytes))
        .collect()
}
