//! The load's clients: submitting over many connections with a window of
//! submissions in flight each, and timing queries.
//!
//! Both read lean: frames come from `mosaic_net`'s [`Receiver::recv_frame`],
//! Record messages are counted by their type byte and never decoded, so no
//! signature is checked on this side and the figures are the server's, not
//! the client's (when both share a machine, a verifying client would be
//! measured along with the server).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mosaic_core::{FilterBuilder, IdPrefix, Message, MessageType, PublicKey, QueryId, ResultCode};
use mosaic_net::{ConnectOptions, Receiver, Sender, connect};
use tokio::task::JoinSet;

use super::records::Prepared;

/// How long the server may stay silent while answers are owed.
const PATIENCE: Duration = Duration::from_secs(60);
/// The first wait before a record refused TOO_FAST is sent again; it
/// doubles with each refusal of the same record, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Queries not timed before the timed ones.
const QUERY_WARM_UP: usize = 10;
/// The limit of every query.
pub const QUERY_LIMIT: u16 = 500;
/// Error messages kept for the report.
const KEPT_ERRORS: usize = 5;

/// How to submit: connections, and submissions in flight on each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestShape {
    /// Connections, opened before the clock starts.
    pub connections: usize,
    /// Submissions each connection keeps in flight (1: each waits for its
    /// result before the next is sent).
    pub in_flight: usize,
}

impl IngestShape {
    /// A name for the report.
    pub fn describe(self) -> String {
        let conns = if self.connections == 1 {
            "1 connection".to_owned()
        } else {
            format!("{} connections", self.connections)
        };
        if self.in_flight == 1 {
            format!("{conns}, each waiting for its result")
        } else {
            format!("{conns} x {} in flight", self.in_flight)
        }
    }
}

/// What an ingest run measured.
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Records handed to the connections.
    pub records: usize,
    /// From the first send to the last result.
    pub elapsed: Duration,
    /// Final results by code (TOO_FAST answers are retried and counted in
    /// `too_fast` instead, unless the record never got another answer).
    pub codes: BTreeMap<String, u64>,
    /// TOO_FAST answers, each followed by a retry of its record.
    pub too_fast: u64,
    /// Send-to-result latencies of the final results.
    pub latencies: Vec<Duration>,
    /// Records without a final result, and answers that matched nothing.
    pub errors: u64,
    /// The first few error messages.
    pub error_messages: Vec<String>,
}

impl IngestReport {
    /// Final results per second.
    pub fn rate(&self) -> f64 {
        let answered: u64 = self.codes.values().sum();
        answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Results with code `name`.
    pub fn count(&self, name: &str) -> u64 {
        self.codes.get(name).copied().unwrap_or(0)
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_messages.len() < KEPT_ERRORS {
            self.error_messages.push(message);
        }
    }

    fn merge(&mut self, other: IngestReport) {
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        self.too_fast += other.too_fast;
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        for m in other.error_messages {
            if self.error_messages.len() < KEPT_ERRORS {
                self.error_messages.push(m);
            }
        }
    }
}

/// A result code's name, or its number when this version does not know it.
pub fn code_name(code: ResultCode) -> String {
    code.name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("CODE_{}", code.as_u8()))
}

/// Connects to `url`, saying what to check when that fails.
pub async fn open(url: &str, options: &ConnectOptions) -> Result<(Sender, Receiver)> {
    let connection = connect(url, options).await.with_context(|| {
        format!(
            "cannot connect to {url}: is a Mosaic server listening there? \
             (start one with `mosaic serve`, or leave out --url to spawn one; \
             for a private CA give --tls-ca FILE)"
        )
    })?;
    Ok(connection.split())
}

/// Sends `records` over `shape.connections` connections (record `i` on
/// connection `i % connections`), each keeping up to `shape.in_flight`
/// submissions in flight, and matches the Submission Results by id prefix.
/// `done` counts final results as they arrive, for progress.
pub async fn ingest(
    url: &str,
    options: &ConnectOptions,
    records: Arc<Vec<Prepared>>,
    shape: IngestShape,
    done: Arc<AtomicU64>,
) -> Result<IngestReport> {
    let connections = shape.connections.max(1);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(open(url, options).await?);
    }
    let started = Instant::now();
    let mut set = JoinSet::new();
    for (c, (sender, receiver)) in clients.into_iter().enumerate() {
        let records = records.clone();
        let done = done.clone();
        let window = shape.in_flight.max(1);
        set.spawn(async move {
            let mine: VecDeque<usize> = (c..records.len()).step_by(connections).collect();
            let report = one_connection(&sender, receiver, &records, mine, window, &done).await;
            sender.close(ResultCode::SUCCESS).await;
            report
        });
    }
    let mut total = IngestReport {
        records: records.len(),
        ..IngestReport::default()
    };
    while let Some(joined) = set.join_next().await {
        total.merge(joined.context("a connection's task failed")?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// A record waiting for its answer.
struct Pending {
    index: usize,
    sent: Instant,
    refusals: u32,
}

/// Drives one connection until every record in `queue` has a final result
/// or the connection fails.
async fn one_connection(
    sender: &Sender,
    mut receiver: Receiver,
    records: &[Prepared],
    mut queue: VecDeque<usize>,
    window: usize,
    done: &AtomicU64,
) -> IngestReport {
    let mut report = IngestReport::default();
    let mut pending: HashMap<IdPrefix, Pending> = HashMap::with_capacity(window);
    // Records refused TOO_FAST: when to send them again, and how often they
    // were refused.
    let mut retries: VecDeque<(Instant, usize, u32)> = VecDeque::new();
    loop {
        // Fill the window: due retries first, then new records.
        while pending.len() < window {
            let now = Instant::now();
            let (index, refusals) = match retries.front() {
                Some(&(due, index, refusals)) if due <= now => {
                    retries.pop_front();
                    (index, refusals)
                }
                _ => match queue.pop_front() {
                    Some(index) => (index, 0),
                    None => break,
                },
            };
            let record = &records[index];
            if let Err(e) = sender.send_encoded(record.submission.clone()).await {
                report.error(format!("sending a submission failed: {e}"));
                report.errors += (queue.len() + retries.len() + pending.len()) as u64;
                return report;
            }
            pending.insert(
                record.prefix,
                Pending {
                    index,
                    sent: Instant::now(),
                    refusals,
                },
            );
        }
        if pending.is_empty() && queue.is_empty() && retries.is_empty() {
            return report;
        }
        // Wait for an answer, or for the next retry to fall due.
        let next_retry = retries.front().map(|&(due, _, _)| due);
        let wait = match next_retry {
            Some(due) if pending.len() < window => due.saturating_duration_since(Instant::now()),
            _ => PATIENCE,
        };
        let frame = match tokio::time::timeout(wait, receiver.recv_frame()).await {
            Err(_) if wait < PATIENCE => continue,
            Err(_) => {
                report.error(format!(
                    "the server sent nothing for {} s while {} submissions waited for results",
                    PATIENCE.as_secs(),
                    pending.len()
                ));
                report.errors += (queue.len() + retries.len() + pending.len() - 1) as u64;
                return report;
            }
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) | Ok(Err(_)) => {
                report.error(format!(
                    "the server closed the connection with {} records unanswered",
                    queue.len() + retries.len() + pending.len()
                ));
                report.errors +=
                    (queue.len() + retries.len() + pending.len()).saturating_sub(1) as u64;
                return report;
            }
        };
        let message = match Message::decode(&frame) {
            Ok(message) => message,
            Err(e) => {
                report.error(format!(
                    "the server sent a message that does not decode: {e}"
                ));
                continue;
            }
        };
        match message {
            Message::SubmissionResult { code, id_prefix } => {
                let Some(p) = pending.remove(&id_prefix) else {
                    report.error(format!(
                        "a Submission Result ({}) matches no submission in flight",
                        code_name(code)
                    ));
                    continue;
                };
                if code == ResultCode::TOO_FAST {
                    report.too_fast += 1;
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << p.refusals.min(10))
                        .min(MAX_BACKOFF);
                    let due = Instant::now() + backoff;
                    // Keep the retries in due order.
                    let at = retries.partition_point(|&(d, _, _)| d <= due);
                    retries.insert(at, (due, p.index, p.refusals + 1));
                    continue;
                }
                report.latencies.push(p.sent.elapsed());
                *report.codes.entry(code_name(code)).or_default() += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Message::Closing { code } => {
                report.error(format!(
                    "the server closed the connection ({}) with {} records unanswered",
                    code_name(code),
                    queue.len() + retries.len() + pending.len()
                ));
                report.errors +=
                    (queue.len() + retries.len() + pending.len()).saturating_sub(1) as u64;
                return report;
            }
            other => report.error(format!(
                "unexpected {} during the load",
                other.message_type().name()
            )),
        }
    }
}

/// What the timed queries measured.
#[derive(Debug, Default)]
pub struct QueryReport {
    /// Send-to-Query-Closed latencies of the timed queries.
    pub latencies: Vec<Duration>,
    /// Records each timed query returned.
    pub records: Vec<usize>,
    /// Query Closed codes other than SUCCESS (TOO_FAST answers are retried
    /// and counted here too).
    pub codes: BTreeMap<String, u64>,
    /// The same queries through `mosaic-client`, which verifies every
    /// record it receives: latencies from the call to the records in hand.
    pub verified: Vec<Duration>,
}

/// Runs the queries of `authors_asked` again through `mosaic-client`
/// (`ServerLink::query`: every record verified, in batches), timing each
/// call; the latencies are added to `report.verified`.
pub async fn verified_queries(
    url: &str,
    options: &ConnectOptions,
    authors_asked: &[PublicKey],
    report: &mut QueryReport,
) -> Result<()> {
    let client = mosaic_client::Client::new(mosaic_client::ClientConfig {
        connect: options.clone(),
        request_timeout: PATIENCE,
        ..mosaic_client::ClientConfig::default()
    })
    .context("cannot set up mosaic-client")?;
    let link = client
        .connect_url(url, None)
        .await
        .context("mosaic-client cannot connect to the server")?;
    for (i, author) in authors_asked.iter().enumerate() {
        let filter = FilterBuilder::new()
            .authors([*author])
            .build()
            .context("cannot build an author filter")?;
        let started = Instant::now();
        let records = link
            .query(&filter, QUERY_LIMIT)
            .await
            .context("a query through mosaic-client failed")?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            report.records.get(i).is_none_or(|n| *n == records.len()),
            "mosaic-client received {} records where the lean client received {:?}",
            records.len(),
            report.records.get(i)
        );
        report.verified.push(elapsed);
    }
    Ok(())
}

/// Runs `count` queries (after a warm-up) for one random author of
/// `authors` each, with limit [`QUERY_LIMIT`], one after the other on one
/// connection: from sending the Query to receiving Query Closed.
pub async fn queries(
    url: &str,
    options: &ConnectOptions,
    authors: &[PublicKey],
    count: usize,
    seed: u64,
) -> Result<QueryReport> {
    let (sender, mut receiver) = open(url, options).await?;
    let mut rng = SplitMix(seed);
    let mut report = QueryReport::default();
    let mut asked = Vec::new();
    let mut q: u16 = 0;
    let mut timed = 0;
    let mut warm = 0;
    while timed < count {
        let author = authors[(rng.next() % authors.len() as u64) as usize];
        let filter = FilterBuilder::new()
            .authors([author])
            .build()
            .context("cannot build an author filter")?;
        q = q.wrapping_add(1);
        let query_id = QueryId(q);
        let bytes = Message::Query {
            query_id,
            limit: QUERY_LIMIT,
            filter,
        }
        .encode()
        .context("cannot encode a Query")?;
        let started = Instant::now();
        sender
            .send_encoded(bytes)
            .await
            .context("sending a query failed: the server closed the connection")?;
        let mut records = 0;
        let code = loop {
            let frame = tokio::time::timeout(PATIENCE, receiver.recv_frame())
                .await
                .with_context(|| {
                    format!(
                        "the server did not answer a query in {} s",
                        PATIENCE.as_secs()
                    )
                })?
                .context("the connection failed during the queries")?
                .context("the server closed the connection during the queries")?;
            if frame.first() == Some(&MessageType::RECORD.as_u8()) {
                records += 1;
                continue;
            }
            match Message::decode(&frame)
                .context("the server sent a message that does not decode")?
            {
                Message::QueryClosed { query_id: id, code } if id == query_id => break code,
                Message::Closing { code } => {
                    bail!("the server closed the connection ({})", code_name(code))
                }
                other => bail!(
                    "unexpected {} in answer to a query",
                    other.message_type().name()
                ),
            }
        };
        let elapsed = started.elapsed();
        if code != ResultCode::SUCCESS {
            *report.codes.entry(code_name(code)).or_default() += 1;
            if code == ResultCode::TOO_FAST {
                tokio::time::sleep(FIRST_BACKOFF * 10).await;
                continue;
            }
        }
        if warm < QUERY_WARM_UP.min(count) {
            warm += 1;
            continue;
        }
        report.latencies.push(elapsed);
        report.records.push(records);
        asked.push(author);
        timed += 1;
    }
    sender.close(ResultCode::SUCCESS).await;
    verified_queries(url, options, &asked, &mut report).await?;
    Ok(report)
}

/// A small deterministic generator (SplitMix64) for picking authors.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The `q`-quantile of `samples`, in milliseconds (0 for no samples).
pub fn quantile_ms(samples: &[Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}
