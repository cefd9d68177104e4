//! Group commit: submissions from every connection are gathered and written
//! in one durable transaction, then answered and published.
//!
//! One task owns the write side of the store. While a batch is being made
//! durable, new submissions queue up; the next batch takes all of them (up
//! to `max_commit_batch`). A submitter hears ACCEPTED only once its record is
//! durable (D-7), and subscribers see the record only then too.

use std::sync::Arc;

use mosaic_core::Timestamp;
use mosaic_store::{InsertOutcome, Store};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

use crate::subscriptions::{Published, Registry};

/// Why a submission was not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitFailure {
    /// The store failed (disk full, I/O error, ...).
    Store,
    /// The server is shutting down.
    ShuttingDown,
}

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
        registry: Arc<Registry>,
        max_batch: usize,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let task = tokio::spawn(run(rx, store, registry, max_batch.max(1)));
        (Committer { tx }, task)
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

async fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<Store>,
    registry: Arc<Registry>,
    max_batch: usize,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let batch: Vec<(Published, Timestamp)> = jobs
            .iter()
            .map(|j| (j.record.clone(), j.received_at))
            .collect();
        let store = store.clone();
        let result = tokio::task::spawn_blocking(move || {
            store.insert_batch(batch.iter().map(|(r, t)| (r.as_ref(), *t)))
        })
        .await;
        match result {
            Ok(Ok(outcomes)) => {
                debug!(records = jobs.len(), "batch durable");
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    if outcome.is_stored() {
                        registry.publish(&job.record, job.received_at);
                    }
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Ok(Err(e)) => {
                error!(error = %e, records = jobs.len(), "commit failed");
                for job in jobs {
                    let _ = job.reply.send(Err(CommitFailure::Store));
                }
            }
            Err(e) => {
                error!(error = %e, "commit task failed");
                for job in jobs {
                    let _ = job.reply.send(Err(CommitFailure::Store));
                }
            }
        }
    }
}
