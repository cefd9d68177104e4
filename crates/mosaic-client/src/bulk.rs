//! [`ServerLink::submit_many`](crate::ServerLink::submit_many): many records
//! to one server, pipelined, and paced by the server's rate limit.
//!
//! Up to [`BulkOptions::in_flight`] submissions wait for their result at
//! once (results are matched by id prefix, so they may come back in any
//! order). A TOO_FAST or TEMPORARY_ERROR answer is not a failure: the
//! record goes back to the front of the queue, sending pauses for a backoff
//! with jitter, and the window of submissions in flight is halved; each
//! record stored widens it by one again, up to the maximum. Only the first
//! refusal after a pause starts a new pause, so a full window refused at
//! once costs one wait, not one per record. A lost connection is opened
//! again and the records not answered are sent again (a repeat is answered
//! DUPLICATE).

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use mosaic_core::{Id, Record, ResultCode};
use tokio::time::Instant;
use tracing::debug;

use crate::link::Link;
use crate::{Backoff, ClientError};

/// How [`ServerLink::submit_many`](crate::ServerLink::submit_many) paces
/// itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BulkOptions {
    /// The most submissions waiting for their result at once. Default 64:
    /// well under a server's burst (2,000 by default), and enough to keep a
    /// connection busy across a round trip. 1 submits one record at a time.
    pub in_flight: usize,
    /// The wait after a TOO_FAST or TEMPORARY_ERROR answer, or a lost
    /// connection, growing while nothing gets through. Default 100 ms
    /// doubling up to 5 s, jitter 0.3.
    pub backoff: Backoff,
    /// How many pauses in a row (with no record stored between them) end
    /// the upload with [`ClientError::Throttled`]. Default 30: a couple of
    /// minutes of refusals at the default backoff.
    pub max_pauses: u32,
    /// How many times in a row the connection may be lost, or a result not
    /// arrive within the request timeout, before the upload ends with that
    /// error. Default 3.
    pub max_reconnects: u32,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            in_flight: 64,
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
                jitter: 0.3,
            },
            max_pauses: 30,
            max_reconnects: 3,
        }
    }
}

/// What [`ServerLink::submit_many`](crate::ServerLink::submit_many) did:
/// handed to the progress callback after each answer, and returned at the
/// end.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BulkReport {
    /// How many records were given.
    pub total: usize,
    /// Stored anew (ACCEPTED).
    pub accepted: usize,
    /// Already there (DUPLICATE).
    pub duplicate: usize,
    /// Ephemeral records that nobody was subscribed to (NO_CONSUMERS):
    /// nothing to keep.
    pub no_consumers: usize,
    /// Records the server refused, with its answer (INVALID, UNAUTHORIZED,
    /// PERSISTENT_ERROR, ...), in the order answered.
    pub refused: Vec<(Id, ResultCode)>,
    /// Times a record was sent again (after TOO_FAST, TEMPORARY_ERROR or a
    /// lost connection).
    pub retried: usize,
    /// Times sending paused for a backoff.
    pub pauses: usize,
    /// Why the upload ended before every record was answered, if it did.
    /// The records without an answer are `total - answered()`; run it
    /// again later (records already stored are answered DUPLICATE).
    pub stopped: Option<ClientError>,
}

impl BulkReport {
    /// How many records got a final answer.
    pub fn answered(&self) -> usize {
        self.accepted + self.duplicate + self.no_consumers + self.refused.len()
    }

    /// How many records the server holds (ACCEPTED or DUPLICATE).
    pub fn stored(&self) -> usize {
        self.accepted + self.duplicate
    }

    /// Whether every record was answered and none refused.
    pub fn is_complete(&self) -> bool {
        self.stopped.is_none() && self.refused.is_empty() && self.answered() == self.total
    }
}

/// Submits `records` through `link`; see the module documentation.
pub(crate) async fn submit_many<R: Borrow<Record>>(
    link: &Link,
    request_timeout: Duration,
    records: &[R],
    options: &BulkOptions,
    mut progress: impl FnMut(&BulkReport),
) -> BulkReport {
    let mut report = BulkReport {
        total: records.len(),
        ..BulkReport::default()
    };
    let max_window = options.in_flight.max(1);
    let mut window = max_window;
    let mut queue: VecDeque<usize> = (0..records.len()).collect();
    let mut pending = FuturesUnordered::new();
    // Bumped at each pause: answers to what was sent before it do not
    // cause another.
    let mut epoch = 0u64;
    let mut pauses_in_a_row = 0u32;
    let mut losses_in_a_row = 0u32;
    let mut resume_at: Option<Instant> = None;
    loop {
        if resume_at.is_some_and(|at| Instant::now() >= at) {
            resume_at = None;
        }
        if resume_at.is_none() {
            while pending.len() < window {
                let Some(index) = queue.pop_front() else {
                    break;
                };
                let Some(record) = records.get(index) else {
                    continue;
                };
                let record: &Record = record.borrow();
                let sent_in = epoch;
                pending.push(async move {
                    (index, sent_in, link.submit(record, request_timeout).await)
                });
            }
        }
        let next = match (pending.is_empty(), resume_at) {
            (true, None) => break,
            (true, Some(at)) => {
                tokio::time::sleep_until(at).await;
                continue;
            }
            (false, Some(at)) => tokio::select! {
                next = pending.next() => next,
                () = tokio::time::sleep_until(at) => continue,
            },
            (false, None) => pending.next().await,
        };
        let Some((index, sent_in, result)) = next else {
            continue;
        };
        let Some(record) = records.get(index) else {
            continue;
        };
        let record: &Record = record.borrow();
        // The backoff attempt of a pause to start now.
        let mut pause = None;
        match result {
            Ok(code)
                if code == ResultCode::ACCEPTED
                    || code == ResultCode::DUPLICATE
                    || code == ResultCode::NO_CONSUMERS =>
            {
                match code {
                    ResultCode::ACCEPTED => report.accepted += 1,
                    ResultCode::DUPLICATE => report.duplicate += 1,
                    _ => report.no_consumers += 1,
                }
                pauses_in_a_row = 0;
                losses_in_a_row = 0;
                window = (window + 1).min(max_window);
            }
            Ok(code) if code == ResultCode::TOO_FAST || code == ResultCode::TEMPORARY_ERROR => {
                queue.push_front(index);
                report.retried += 1;
                if sent_in == epoch {
                    if pauses_in_a_row >= options.max_pauses {
                        report.stopped = Some(ClientError::Throttled {
                            server: link.id().clone(),
                            code,
                            pauses: pauses_in_a_row,
                        });
                        break;
                    }
                    window = (window / 2).max(1);
                    debug!(server = %link.id(), %code, window, "the server asks to slow down");
                    pause = Some(pauses_in_a_row);
                    pauses_in_a_row += 1;
                }
            }
            Ok(code) => {
                debug!(server = %link.id(), id = %record.id().to_printable(), %code, "record refused");
                report.refused.push((record.id(), code));
            }
            Err(error) => {
                queue.push_front(index);
                report.retried += 1;
                if sent_in == epoch {
                    if losses_in_a_row >= options.max_reconnects {
                        report.stopped = Some(error);
                        break;
                    }
                    debug!(server = %link.id(), %error, "submission failed; will reconnect");
                    pause = Some(losses_in_a_row);
                    losses_in_a_row += 1;
                }
            }
        }
        if let Some(attempt) = pause {
            epoch += 1;
            report.pauses += 1;
            resume_at = Some(Instant::now() + options.backoff.random_delay(attempt));
        }
        progress(&report);
    }
    progress(&report);
    report
}
