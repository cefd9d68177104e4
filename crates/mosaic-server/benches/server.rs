//! `cargo xtask bench server`: the server's figures over real loopback
//! WebSocket connections, measured in one run.
//!
//! - Durable ingest, records/s, with 1 and with 10 connections, each
//!   waiting for its Submission Result before it sends the next record
//!   (closed loop), next to the 2-thread verify bound (`Record::from_bytes`
//!   on the same records in 2 OS threads) measured in the same run. Beside
//!   them, to show where the time goes: 10 connections that keep 50
//!   submissions in flight each, and the store's own durable commit of one
//!   record.
//! - Query latency p50/p99: author + limit 500 on a store of 20,000 records
//!   by 100 authors, from sending the Query to receiving Query Closed.
//! - Subscription fan-out: 1,000 subscribers with a matching Subscribe each;
//!   time from sending a submission to the last subscriber receiving the
//!   record (the durable commit included), p50/p99.
//! - Selective fan-out: 10,000 subscriptions (10 per connection) of which 1%
//!   match the records submitted; p50/p99 from sending a submission to the
//!   last matching subscription receiving it, and the submitter's ACK
//!   latency with and without those subscriptions open (an ACK must not wait
//!   for delivery).
//! - Resident memory per idle connection, of a server in a child process
//!   (this binary re-executed with `MOSAIC_BENCH_CHILD_SERVER` set) so that
//!   the clients' memory is not counted; and the same server's resident
//!   memory during two attacks: subscribers that never read while large
//!   records are submitted, and Gets of 20,000 references to one 1 MiB
//!   record sent by clients that never read.
//!
//! Every client runs in this process, on the cores the server uses. The
//! query and fan-out clients therefore do not check the signatures of the
//! records they receive (see [`lean_connect`]); the query latency is also
//! given with the `mosaic-net` client, which does.
//!
//! Records are signed before anything is timed. The server runs with the
//! default limits, except the submission rate (raised, or the benchmark
//! would measure the rate limiter) and the connections per IP address (all
//! clients come from 127.0.0.1). `MOSAIC_BENCH_QUICK=1` shrinks the sizes so
//! that CI only checks that the benchmark still runs. Figures are printed,
//! never asserted.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use mosaic_core::handshake::{Hello, WEBSOCKET_SUBPROTOCOL};
use mosaic_core::{
    FilterBuilder, Kind, Message, Nonce, OwnedRecord, OwnedTag, PublicKey, QueryId, Record,
    RecordBuilder, ResultCode, SecretKey, Timestamp,
};
use mosaic_net::{ConnectOptions, Connection, Receiver, Sender, connect};
use mosaic_server::{Server, ServerConfig};
use mosaic_store::{Store, StoreConfig};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Set (to a directory) in the child process that serves the memory test.
const CHILD_ENV: &str = "MOSAIC_BENCH_CHILD_SERVER";
/// Length of a post's text.
const PAYLOAD_LEN: usize = 280;
/// Authors of the query dataset.
const QUERY_AUTHORS: usize = 100;
/// The limit of every query.
const QUERY_LIMIT: u16 = 500;
/// Submissions each connection keeps in flight in the pipelined ingest.
const PIPELINE_WINDOW: usize = 50;
/// Connections opened at once when many are wanted.
const CONNECT_WAVE: usize = 100;
/// File descriptors kept free for the store, the listener and the runtime.
const SPARE_FDS: usize = 200;
/// Single-record commits timed straight on the store.
const COMMIT_PROBES: usize = 50;
/// How long anything one step waits for may take before the run fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// How much to measure.
struct Plan {
    quick: bool,
    /// Records submitted by each ingest run.
    ingest: usize,
    /// Connections of the concurrent ingest run.
    ingest_connections: usize,
    /// Rounds of the verify bound (median taken).
    bound_rounds: usize,
    /// Records in the query dataset.
    query_records: usize,
    /// Queries timed.
    queries: usize,
    /// Subscribers of the fan-out.
    subscribers: usize,
    /// Submissions timed in the fan-out.
    fanout_submissions: usize,
    /// Idle connections for the memory figure.
    idle_connections: usize,
    /// Subscribers that never read, large records sent to them, and
    /// clients sending Gets they never read, for the attack figures.
    attack_subscribers: usize,
    attack_records: usize,
    attack_getters: usize,
}

impl Plan {
    fn from_env() -> Plan {
        let quick = std::env::var_os("MOSAIC_BENCH_QUICK").is_some_and(|v| v != "0");
        if quick {
            Plan {
                quick,
                ingest: 200,
                ingest_connections: 10,
                bound_rounds: 3,
                query_records: 2_000,
                queries: 200,
                subscribers: 1_000,
                fanout_submissions: 10,
                idle_connections: 1_000,
                attack_subscribers: 4,
                attack_records: 40,
                attack_getters: 4,
            }
        } else {
            Plan {
                quick,
                ingest: 2_000,
                ingest_connections: 10,
                bound_rounds: 7,
                query_records: 20_000,
                queries: 200,
                subscribers: 1_000,
                fanout_submissions: 50,
                idle_connections: 1_000,
                attack_subscribers: 20,
                attack_records: 300,
                attack_getters: 20,
            }
        }
    }

    /// Scales the connection counts down to what the file descriptor limit
    /// allows: a fan-out subscriber costs two descriptors in this process
    /// (client and server end), an idle connection one.
    fn fit_fd_limit(&mut self) {
        let Some(limit) = open_files_limit() else {
            return;
        };
        let room = limit.saturating_sub(SPARE_FDS);
        if room < 2 * self.subscribers {
            let fit = room / 2;
            println!(
                "server: NOTE: the open files limit is {limit} (raise it with `ulimit -n 4096`); \
                 fan-out scaled down from {} to {fit} subscribers",
                self.subscribers
            );
            self.subscribers = fit.max(1);
        }
        if room < self.idle_connections {
            println!(
                "server: NOTE: the open files limit is {limit}; idle connections scaled down from {} to {room}",
                self.idle_connections
            );
            self.idle_connections = room.max(1);
        }
    }
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The server's configuration: defaults, but for the rate limits and the
/// connections per IP address (every client is on 127.0.0.1, and the
/// benchmark measures the server, not its rate limiter), subscriptions per
/// connection for the selective fan-out, and references per Get for the
/// amplification attack.
fn server_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    let l = &mut config.limits;
    l.submissions_per_second = 1_000_000;
    l.submission_burst = 1_000_000;
    l.ip_submissions_per_second = 1_000_000;
    l.ip_submission_burst = 1_000_000;
    l.key_submissions_per_second = 1_000_000;
    l.key_submission_burst = 1_000_000;
    l.reads_per_second = 1_000_000;
    l.read_burst = 1_000_000;
    l.ip_reads_per_second = 1_000_000;
    l.ip_read_burst = 1_000_000;
    l.key_reads_per_second = 1_000_000;
    l.key_read_burst = 1_000_000;
    l.max_connections_per_ip = 4_000;
    l.max_subscriptions_per_connection = SELECTIVE_SUBSCRIPTIONS;
    l.max_get_references = 20_000;
    config
}

/// Subscriptions of the selective fan-out, and how many of them match.
const SELECTIVE_SUBSCRIPTIONS: usize = 10_000;
const SELECTIVE_MATCHING: usize = 100;

fn server_key() -> SecretKey {
    SecretKey::from_bytes(&[0x5e; 32])
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mosaic-server-bench-{}-{label}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Key number `i` of the dataset.
fn key(i: u64) -> SecretKey {
    let mut seed = [0x42u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    SecretKey::from_bytes(&seed)
}

/// A microblog post of about 400 bytes: a mention and a 280-byte text.
fn post(key: &SecretKey, timestamp: Timestamp, label: &str, i: usize) -> OwnedRecord {
    let mut text = format!("{label} {i}: ");
    while text.len() < PAYLOAD_LEN {
        text.push_str("the quick brown fox jumps over the lazy dog. ");
    }
    text.truncate(PAYLOAD_LEN);
    let mentioned = SecretKey::from_bytes(&[0x33; 32]).public();
    RecordBuilder::new(Kind::MICROBLOG_ROOT, timestamp)
        .nonce(Nonce::from_key(format!("{label} {i}").as_bytes()))
        .tag(&OwnedTag::notify_public_key(&mentioned))
        .payload(text.as_bytes())
        .build(key)
        .expect("a valid microblog post")
}

/// Signs `n` records in two threads; `make(i)` signs record `i`.
fn sign_all(n: usize, make: impl Fn(usize) -> OwnedRecord + Sync) -> Vec<OwnedRecord> {
    let half = n / 2;
    std::thread::scope(|s| {
        let first = s.spawn(|| (0..half).map(&make).collect::<Vec<_>>());
        let second: Vec<_> = (half..n).map(&make).collect();
        let mut all = first.join().expect("signing thread");
        all.extend(second);
        all
    })
}

/// A timestamp `back` milliseconds before `now`.
fn before(now: Timestamp, back: usize) -> Timestamp {
    now.saturating_sub(Duration::from_millis(back as u64))
}

/// Encoded Submission messages, ready to send.
fn submissions(records: &[OwnedRecord]) -> Vec<Vec<u8>> {
    records
        .iter()
        .map(|r| {
            Message::Submission { record: r.clone() }
                .encode()
                .expect("a submission encodes")
        })
        .collect()
}

async fn client(url: &str) -> Connection {
    connect(url, &ConnectOptions::default())
        .await
        .expect("connect to the server")
}

/// Opens `n` connections, `CONNECT_WAVE` at a time.
async fn connect_many(url: &str, n: usize) -> Vec<Connection> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let wave = CONNECT_WAVE.min(n - out.len());
        let mut set = JoinSet::new();
        for _ in 0..wave {
            let url = url.to_string();
            set.spawn(async move { client(&url).await });
        }
        while let Some(done) = set.join_next().await {
            out.push(done.expect("connecting task"));
        }
    }
    out
}

/// Receives the next message, failing the run on a closed connection or a
/// stall.
async fn next(receiver: &mut Receiver) -> Message {
    tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .expect("the server answers in time")
        .expect("the connection stays up")
        .expect("the connection stays open")
        .message
        .expect("the server's message decodes")
}

/// Sends each submission and waits for its result before the next.
async fn submit_each(sender: &Sender, receiver: &mut Receiver, encoded: Vec<Vec<u8>>) {
    for bytes in encoded {
        sender.send_encoded(bytes).await.expect("send a submission");
        match next(receiver).await {
            Message::SubmissionResult { code, .. } if code == ResultCode::ACCEPTED => {}
            other => panic!("expected Submission Result ACCEPTED, got {other:?}"),
        }
    }
}

/// Durable ingest over `connections` closed-loop connections: records/s.
async fn ingest(url: &str, records: &[OwnedRecord], connections: usize) -> f64 {
    let mut chunks = vec![Vec::new(); connections];
    for (i, bytes) in submissions(records).into_iter().enumerate() {
        chunks[i % connections].push(bytes);
    }
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(client(url).await.split());
    }
    let started = Instant::now();
    let mut set = JoinSet::new();
    for ((sender, mut receiver), chunk) in clients.into_iter().zip(chunks) {
        set.spawn(async move {
            submit_each(&sender, &mut receiver, chunk).await;
            sender
        });
    }
    let mut senders = Vec::new();
    while let Some(done) = set.join_next().await {
        senders.push(done.expect("ingest task"));
    }
    let rate = records.len() as f64 / started.elapsed().as_secs_f64();
    for sender in senders {
        sender.close(ResultCode::SUCCESS).await;
    }
    rate
}

/// Ingest over `connections` connections that each keep up to `window`
/// submissions in flight: records/s.
async fn ingest_pipelined(
    url: &str,
    records: &[OwnedRecord],
    connections: usize,
    window: usize,
) -> f64 {
    let mut chunks = vec![Vec::new(); connections];
    for (i, bytes) in submissions(records).into_iter().enumerate() {
        chunks[i % connections].push(bytes);
    }
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(client(url).await.split());
    }
    let started = Instant::now();
    let mut set = JoinSet::new();
    for ((sender, mut receiver), chunk) in clients.into_iter().zip(chunks) {
        set.spawn(async move {
            let room = Arc::new(Semaphore::new(window));
            let expected = chunk.len();
            let writer = {
                let sender = sender.clone();
                let room = room.clone();
                tokio::spawn(async move {
                    for bytes in chunk {
                        room.acquire()
                            .await
                            .expect("the semaphore stays open")
                            .forget();
                        sender.send_encoded(bytes).await.expect("send a submission");
                    }
                })
            };
            for _ in 0..expected {
                match next(&mut receiver).await {
                    Message::SubmissionResult { code, .. } if code == ResultCode::ACCEPTED => {
                        room.add_permits(1);
                    }
                    other => panic!("expected Submission Result ACCEPTED, got {other:?}"),
                }
            }
            writer.await.expect("writer task");
            sender
        });
    }
    let mut senders = Vec::new();
    while let Some(done) = set.join_next().await {
        senders.push(done.expect("ingest task"));
    }
    let rate = records.len() as f64 / started.elapsed().as_secs_f64();
    for sender in senders {
        sender.close(ResultCode::SUCCESS).await;
    }
    rate
}

/// `Record::from_bytes` on `records` in two OS threads: records/s, the
/// median of `rounds` rounds after a warm-up round.
fn verify_bound(records: &[OwnedRecord], rounds: usize) -> f64 {
    let (left, right) = records.split_at(records.len() / 2);
    let verify = |part: &[OwnedRecord]| {
        part.iter()
            .filter(|r| Record::from_bytes(std::hint::black_box(r.as_bytes())).is_ok())
            .count()
    };
    let mut rates = Vec::new();
    for round in 0..=rounds {
        let started = Instant::now();
        let valid = std::thread::scope(|s| {
            let a = s.spawn(|| verify(left));
            let b = verify(right);
            a.join().expect("verify thread") + b
        });
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(valid, records.len(), "every record verifies");
        if round > 0 {
            rates.push(records.len() as f64 / elapsed);
        }
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The `q`-quantile of sorted durations, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// p50 and p99 of durations, in milliseconds.
fn p50_p99(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    (quantile_ms(&samples, 0.50), quantile_ms(&samples, 0.99))
}

/// Which client runs the queries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QueryClient {
    /// [`lean_connect`]: records are counted, not decoded.
    Lean,
    /// `mosaic_net::connect`: every record is decoded and its signature
    /// checked, on the cores the server uses too.
    Verifying,
}

/// Query round trips, author + limit 500, from sending the Query to
/// receiving Query Closed: p50/p99 in ms, and the records per query.
async fn query_latency(
    url: &str,
    addr: SocketAddr,
    authors: &[PublicKey],
    queries: usize,
    how: QueryClient,
) -> (f64, f64, usize) {
    let mut lean = None;
    let mut verifying = None;
    match how {
        QueryClient::Lean => lean = Some(lean_connect(addr).await),
        QueryClient::Verifying => verifying = Some(client(url).await.split()),
    }
    let warm_up = 10;
    let mut samples = Vec::with_capacity(queries);
    let mut returned = 0;
    for q in 0..warm_up + queries {
        // Spread over the authors, in an order unlike the insertion order.
        let author = authors[(q * 37) % authors.len()];
        let filter = FilterBuilder::new()
            .authors([author])
            .build()
            .expect("an author filter");
        let query_id = QueryId((q % 60_000) as u16);
        let query = Message::Query {
            query_id,
            limit: QUERY_LIMIT,
            filter,
        };
        let bytes = query.encode().expect("a query encodes");
        let started = Instant::now();
        let mut records = 0;
        let code = match (&mut lean, &mut verifying) {
            (Some(ws), _) => {
                ws.send(WsMessage::Binary(bytes.into()))
                    .await
                    .expect("send a query");
                loop {
                    match lean_next(ws).await {
                        Frame::Record => records += 1,
                        Frame::Other(Message::QueryClosed { query_id: id, code })
                            if id == query_id =>
                        {
                            break code;
                        }
                        Frame::Other(other) => panic!("unexpected answer to a query: {other:?}"),
                    }
                }
            }
            (None, Some((sender, receiver))) => {
                sender.send_encoded(bytes).await.expect("send a query");
                loop {
                    match next(receiver).await {
                        Message::Record { query_id: id, .. } if id == query_id => records += 1,
                        Message::QueryClosed { query_id: id, code } if id == query_id => {
                            break code;
                        }
                        other => panic!("unexpected answer to a query: {other:?}"),
                    }
                }
            }
            (None, None) => unreachable!("one client is open"),
        };
        assert_eq!(code, ResultCode::SUCCESS, "the query succeeds");
        if q >= warm_up {
            samples.push(started.elapsed());
            returned = records;
        }
    }
    if let Some((sender, _)) = verifying {
        sender.close(ResultCode::SUCCESS).await;
    }
    let (p50, p99) = p50_p99(samples);
    (p50, p99, returned)
}

/// What the fan-out subscribers record: per submission, how many received
/// it and when the last one did (ns since `base`).
struct Tally {
    base: Instant,
    /// Record bytes to submission number.
    index: HashMap<Vec<u8>, usize>,
    counts: Vec<AtomicUsize>,
    last: Vec<AtomicU64>,
    subscribers: usize,
    complete: Notify,
}

impl Tally {
    /// A tally of `records`, each to reach `subscribers` subscribers.
    fn new(records: &[OwnedRecord], subscribers: usize) -> Arc<Tally> {
        Arc::new(Tally {
            base: Instant::now(),
            index: records
                .iter()
                .enumerate()
                .map(|(i, r)| (r.as_bytes().to_vec(), i))
                .collect(),
            counts: records.iter().map(|_| AtomicUsize::new(0)).collect(),
            last: records.iter().map(|_| AtomicU64::new(0)).collect(),
            subscribers,
            complete: Notify::new(),
        })
    }

    /// Reads every subscriber's records into the tally, in the background.
    fn listen(self: &Arc<Self>, subscribed: Vec<Lean>) -> JoinSet<()> {
        let mut listeners = JoinSet::new();
        for mut ws in subscribed {
            let tally = self.clone();
            listeners.spawn(async move {
                while let Some(Ok(frame)) = ws.next().await {
                    if let WsMessage::Binary(frame) = frame
                        && frame.first() == Some(&RECORD)
                        && let Some(record) = frame.get(RECORD_AT..)
                    {
                        tally.arrived(record);
                    }
                }
            });
        }
        listeners
    }

    /// Waits until record `i` has reached every subscriber; when the last
    /// one received it.
    async fn delivered(&self, i: usize) -> Duration {
        tokio::time::timeout(PATIENCE, async {
            while self.counts[i].load(Ordering::Acquire) < self.subscribers {
                self.complete.notified().await;
            }
        })
        .await
        .expect("every subscriber receives the record in time");
        Duration::from_nanos(self.last[i].load(Ordering::Acquire))
    }

    fn arrived(&self, record: &[u8]) {
        let Some(&i) = self.index.get(record) else {
            return;
        };
        let at = self.base.elapsed().as_nanos() as u64;
        self.last[i].fetch_max(at, Ordering::AcqRel);
        if self.counts[i].fetch_add(1, Ordering::AcqRel) + 1 == self.subscribers {
            self.complete.notify_one();
        }
    }
}

/// The type byte of a Record message, and the bytes before its record.
const RECORD: u8 = 0x80;
const RECORD_AT: usize = 8;

/// A lean client's WebSocket.
type Lean = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A lean client: it upgrades as `mosaic_net::connect` does (HELLO in the
/// headers) but then handles raw frames, so that it can skip Record
/// messages without decoding them. Every client here shares this machine's
/// two cores with the server; a client that checked the signature of each
/// record it receives (as `mosaic_net` does) would be measured along with
/// the server.
async fn lean_connect(addr: SocketAddr) -> Lean {
    let mut request = format!("ws://{addr}/")
        .into_client_request()
        .expect("a request");
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(WEBSOCKET_SUBPROTOCOL),
    );
    for (name, value) in Hello::default().to_headers() {
        headers.insert(name, HeaderValue::from_str(&value).expect("a header"));
    }
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .expect("upgrade");
    ws
}

/// What a lean client received.
enum Frame {
    /// A Record message, not decoded.
    Record,
    /// Any other message, decoded.
    Other(Message),
}

/// The next message from the server.
async fn lean_next(ws: &mut Lean) -> Frame {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await {
            Ok(Some(Ok(WsMessage::Binary(frame)))) => {
                if frame.first() == Some(&RECORD) {
                    return Frame::Record;
                }
                return Frame::Other(Message::decode(&frame).expect("a message"));
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the server did not answer: {other:?}"),
        }
    }
}

/// A lean subscriber, once the server said Locally Complete.
async fn lean_subscriber(addr: SocketAddr, subscribe: Vec<u8>) -> Lean {
    let mut ws = lean_connect(addr).await;
    ws.send(WsMessage::Binary(subscribe.into()))
        .await
        .expect("send Subscribe");
    match lean_next(&mut ws).await {
        Frame::Other(Message::LocallyComplete { .. }) => ws,
        Frame::Record => panic!("expected Locally Complete, got a record"),
        Frame::Other(other) => panic!("expected Locally Complete, got {other:?}"),
    }
}

/// Fan-out latency to `subscribers` subscribers: p50/p99 in ms over the
/// `records` after the first (the warm-up).
async fn fan_out(
    url: &str,
    addr: SocketAddr,
    author: PublicKey,
    records: &[OwnedRecord],
    subscribers: usize,
) -> (f64, f64) {
    let tally = Tally::new(records, subscribers);
    let filter = FilterBuilder::new()
        .authors([author])
        .build()
        .expect("an author filter");
    let subscribe = Message::Subscribe {
        query_id: QueryId(1),
        limit: 10,
        filter,
    }
    .encode()
    .expect("Subscribe encodes");

    let mut subscribed = Vec::with_capacity(subscribers);
    while subscribed.len() < subscribers {
        let wave = CONNECT_WAVE.min(subscribers - subscribed.len());
        let mut set = JoinSet::new();
        for _ in 0..wave {
            set.spawn(lean_subscriber(addr, subscribe.clone()));
        }
        while let Some(done) = set.join_next().await {
            subscribed.push(done.expect("subscribing task"));
        }
    }
    let mut listeners = tally.listen(subscribed);

    let (sender, mut receiver) = client(url).await.split();
    let mut samples = Vec::new();
    for (i, bytes) in submissions(records).into_iter().enumerate() {
        let sent = tally.base.elapsed();
        sender.send_encoded(bytes).await.expect("send a submission");
        match next(&mut receiver).await {
            Message::SubmissionResult { code, .. } if code == ResultCode::ACCEPTED => {}
            other => panic!("expected Submission Result ACCEPTED, got {other:?}"),
        }
        let last = tally.delivered(i).await;
        if i > 0 {
            samples.push(last.saturating_sub(sent));
        }
    }
    sender.close(ResultCode::SUCCESS).await;
    listeners.abort_all();
    while listeners.join_next().await.is_some() {}
    p50_p99(samples)
}

/// A child process, killed and reaped on drop (also when the run panics).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// VmRSS of a process, in KiB.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The child's side of the memory test: serve on 127.0.0.1:0 from a store
/// in `dir`, print the URL, and stop when stdin closes.
fn child_server(dir: PathBuf) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store =
            Arc::new(Store::open(dir.join("store"), StoreConfig::default()).expect("open a store"));
        let handle = Server::start_for_tests(server_config(), server_key(), store)
            .await
            .expect("start the server");
        let mut out = std::io::stdout().lock();
        writeln!(out, "url {}", handle.url()).expect("write to the parent");
        out.flush().expect("write to the parent");
        drop(out);
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            std::io::stdin().read_to_end(&mut sink)
        })
        .await;
        let _ = handle.shutdown().await;
    });
}

/// Resident memory of a server in a child process before and after
/// `connections` idle connections: (KiB per connection, KiB before, KiB
/// after), or `None` where `/proc` is missing.
async fn idle_memory(connections: usize) -> Option<(f64, u64, u64)> {
    resident_kib(std::process::id())?;
    let dir = TempDir::new("child");
    let (child, url, pid) = child(&dir).await;

    // A few connections first, so that what the first connection sets up
    // once (runtime, allocator arenas, tables) is in the baseline.
    let warm = connect_many(&url, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_kib(pid)?;
    let idle = connect_many(&url, connections).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = resident_kib(pid)?;
    drop(idle);
    drop(warm);
    drop(child);
    let per = after.saturating_sub(before) as f64 / connections as f64;
    Some((per, before, after))
}

/// A lean client with several subscriptions open, once each has said
/// Locally Complete.
async fn lean_subscriptions(addr: SocketAddr, subscribes: Vec<Vec<u8>>) -> Lean {
    let mut ws = lean_connect(addr).await;
    let n = subscribes.len();
    for subscribe in subscribes {
        ws.send(WsMessage::Binary(subscribe.into()))
            .await
            .expect("send Subscribe");
    }
    let mut complete = 0;
    while complete < n {
        match lean_next(&mut ws).await {
            Frame::Other(Message::LocallyComplete { .. }) => complete += 1,
            Frame::Record => {}
            Frame::Other(other) => panic!("expected Locally Complete, got {other:?}"),
        }
    }
    ws
}

/// A Subscribe for the records of `author`.
fn subscribe_to(query_id: u16, author: PublicKey) -> Vec<u8> {
    Message::Subscribe {
        query_id: QueryId(query_id),
        limit: 1,
        filter: FilterBuilder::new()
            .authors([author])
            .build()
            .expect("an author filter"),
    }
    .encode()
    .expect("Subscribe encodes")
}

/// What the selective fan-out measured, in ms.
struct Selective {
    delivery: (f64, f64),
    ack_alone: (f64, f64),
    ack_with: (f64, f64),
    connections: usize,
}

/// Submits each record and waits for its result: the ACK latencies.
async fn ack_latencies(
    sender: &Sender,
    receiver: &mut Receiver,
    records: &[OwnedRecord],
) -> Vec<Duration> {
    let mut samples = Vec::new();
    for bytes in submissions(records) {
        let sent = Instant::now();
        sender.send_encoded(bytes).await.expect("send a submission");
        match next(receiver).await {
            Message::SubmissionResult { code, .. } if code == ResultCode::ACCEPTED => {}
            other => panic!("expected Submission Result ACCEPTED, got {other:?}"),
        }
        samples.push(sent.elapsed());
    }
    samples
}

/// 10,000 subscriptions on `connections` connections, 1% of them for
/// `author`: delivery latency of `loud` to the matching ones, and the ACK
/// latency of `quiet` (before the subscriptions open) and `loud`.
async fn selective_fan_out(
    url: &str,
    addr: SocketAddr,
    author: PublicKey,
    quiet: &[OwnedRecord],
    loud: &[OwnedRecord],
    connections: usize,
) -> Selective {
    let (sender, mut receiver) = client(url).await.split();
    let ack_alone = p50_p99(ack_latencies(&sender, &mut receiver, quiet).await);

    let per_connection = SELECTIVE_SUBSCRIPTIONS.div_ceil(connections);
    let every = SELECTIVE_SUBSCRIPTIONS / SELECTIVE_MATCHING;
    let mut plans: Vec<Vec<Vec<u8>>> = vec![Vec::new(); connections];
    for g in 0..SELECTIVE_SUBSCRIPTIONS {
        let who = if g % every == 0 {
            author
        } else {
            key(100_000 + g as u64).public()
        };
        let conn = g % connections;
        let query_id = plans[conn].len() as u16;
        plans[conn].push(subscribe_to(query_id, who));
    }
    debug_assert!(plans.iter().all(|p| p.len() <= per_connection));
    let mut subscribed = Vec::with_capacity(connections);
    let mut plans = plans.into_iter();
    while subscribed.len() < connections {
        let mut set = JoinSet::new();
        for plan in plans.by_ref().take(CONNECT_WAVE) {
            set.spawn(lean_subscriptions(addr, plan));
        }
        while let Some(done) = set.join_next().await {
            subscribed.push(done.expect("subscribing task"));
        }
    }
    let tally = Tally::new(loud, SELECTIVE_MATCHING);
    let mut listeners = tally.listen(subscribed);
    let mut delivery = Vec::new();
    let mut acks = Vec::new();
    for (i, bytes) in submissions(loud).into_iter().enumerate() {
        let sent = tally.base.elapsed();
        let started = Instant::now();
        sender.send_encoded(bytes).await.expect("send a submission");
        match next(&mut receiver).await {
            Message::SubmissionResult { code, .. } if code == ResultCode::ACCEPTED => {}
            other => panic!("expected Submission Result ACCEPTED, got {other:?}"),
        }
        acks.push(started.elapsed());
        let last = tally.delivered(i).await;
        delivery.push(last.saturating_sub(sent));
    }
    sender.close(ResultCode::SUCCESS).await;
    listeners.abort_all();
    while listeners.join_next().await.is_some() {}
    Selective {
        delivery: p50_p99(delivery),
        ack_alone,
        ack_with: p50_p99(acks),
        connections,
    }
}

/// A server in a child process: the guard, its URL and its pid.
async fn child(dir: &TempDir) -> (ChildGuard, String, u32) {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let child = Command::new(exe)
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server process");
    let mut child = ChildGuard(child);
    let pid = child.0.id();
    let stdout = child.0.stdout.take().expect("the child's stdout");
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the child's URL");
        line
    })
    .await
    .expect("reading task");
    let url = url
        .trim()
        .strip_prefix("url ")
        .expect("the child prints its URL")
        .to_string();
    (child, url, pid)
}

/// Samples a process's resident memory every 20 ms until stopped; the peak.
struct Sampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let peak = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let peak = peak.clone();
            async move {
                loop {
                    if let Some(kib) = resident_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        Sampler { peak, task }
    }

    fn stop(self) -> u64 {
        self.task.abort();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Resident memory (KiB) of a server in a child process: at rest, at its
/// peak while `slow` subscribers that never read are sent `large` records,
/// and at its peak while `getters` clients that never read each send 5 Gets
/// of 20,000 references to `huge`.
struct Attacks {
    rest: u64,
    slow_peak: u64,
    get_peak: u64,
    slow: usize,
    large_bytes: usize,
    getters: usize,
}

async fn attack_memory(
    slow: usize,
    large: &[OwnedRecord],
    getters: usize,
    huge: &OwnedRecord,
) -> Option<Attacks> {
    resident_kib(std::process::id())?;
    let dir = TempDir::new("attack");
    let (guard, url, pid) = child(&dir).await;
    let addr: SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .expect("the child's address");
    let warm = connect_many(&url, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rest = resident_kib(pid)?;

    // Subscribers that never read, while large records are submitted.
    let author = large.first()?.author();
    let mut lazy = Vec::new();
    for _ in 0..slow {
        lazy.push(lean_subscriptions(addr, vec![subscribe_to(1, author)]).await);
    }
    let sampler = Sampler::start(pid);
    let (sender, mut receiver) = client(&url).await.split();
    ack_latencies(&sender, &mut receiver, large).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let slow_peak = sampler.stop();
    drop(lazy);

    // Gets of one huge record, 20,000 times over, never read.
    ack_latencies(&sender, &mut receiver, std::slice::from_ref(huge)).await;
    let get = Message::Get {
        query_id: QueryId(1),
        references: vec![mosaic_core::Reference::Id(huge.id()); 20_000],
    }
    .encode()
    .expect("Get encodes");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sampler = Sampler::start(pid);
    let mut getting = Vec::new();
    for _ in 0..getters {
        let mut ws = lean_connect(addr).await;
        for _ in 0..5 {
            ws.send(WsMessage::Binary(get.clone().into()))
                .await
                .expect("send Get");
        }
        getting.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let get_peak = sampler.stop();
    drop(getting);
    drop(warm);
    drop(guard);
    Some(Attacks {
        rest,
        slow_peak,
        get_peak,
        slow,
        large_bytes: large.iter().map(|r| r.len()).sum(),
        getters,
    })
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

async fn run(plan: Plan) {
    let run_started = Instant::now();
    let now = Timestamp::from_system_time(SystemTime::now()).expect("the clock is after 1970");

    // Everything is signed before anything is timed.
    let authors: Vec<SecretKey> = (0..QUERY_AUTHORS as u64).map(key).collect();
    let author_keys: Vec<PublicKey> = authors.iter().map(SecretKey::public).collect();
    let query_records = sign_all(plan.query_records, |i| {
        post(
            &authors[i % QUERY_AUTHORS],
            before(now, 10 * plan.query_records - 10 * i),
            "stored",
            i,
        )
    });
    let ingester = key(1_000);
    let warm_up = 20;
    let ingest_records = sign_all(warm_up + 3 * plan.ingest, |i| {
        post(&ingester, before(now, 5 * plan.ingest - i), "ingest", i)
    });
    let (warm_records, measured) = ingest_records.split_at(warm_up);
    let (single, rest) = measured.split_at(plan.ingest);
    let (many, pipelined) = rest.split_at(plan.ingest);
    let fanout_author = key(2_000);
    let fanout_records = sign_all(plan.fanout_submissions + 1, |i| {
        post(&fanout_author, before(now, 1_000 - i), "fan-out", i)
    });
    let selective_author = key(4_000);
    let selective_records = sign_all(2 * plan.fanout_submissions, |i| {
        post(&selective_author, before(now, 3_000 - i), "selective", i)
    });
    let (selective_quiet, selective_loud) = selective_records.split_at(plan.fanout_submissions);
    let large_author = key(5_000);
    let large_records: Vec<OwnedRecord> = sign_all(plan.attack_records, |i| {
        RecordBuilder::new(Kind::MICROBLOG_ROOT, before(now, 4_000 - i))
            .nonce(Nonce::from_key(&(i as u64).to_be_bytes()))
            .payload(&vec![b'L'; 100_000])
            .build(&large_author)
            .expect("a large record")
    });
    let huge = RecordBuilder::new(Kind::MICROBLOG_ROOT, before(now, 5_000))
        .nonce(Nonce::from_key(b"huge"))
        .payload(&vec![b'H'; 1_000_000])
        .build(&key(6_000))
        .expect("a huge record");
    let probe_records = sign_all(COMMIT_PROBES, |i| {
        post(&key(3_000), before(now, 2_000 - i), "probe", i)
    });
    let signed = COMMIT_PROBES + query_records.len() + ingest_records.len() + fanout_records.len();
    let record_len = single[0].len();

    let dir = TempDir::new("main");
    let store =
        Arc::new(Store::open(dir.path().join("store"), StoreConfig::default()).expect("a store"));
    let filling = store.clone();
    tokio::task::spawn_blocking(move || {
        for chunk in query_records.chunks(5_000) {
            filling
                .insert_batch(chunk.iter().map(|r| (r, now)))
                .expect("fill the store");
        }
    })
    .await
    .expect("filling task");
    // The store's own durable commit of one record, without the server: the
    // floor under every closed-loop submission.
    let probing = store.clone();
    let commits = tokio::task::spawn_blocking(move || {
        probe_records
            .iter()
            .map(|r| {
                let started = Instant::now();
                probing.insert(r, now).expect("insert one record");
                started.elapsed()
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("commit probe");
    let (commit_p50, commit_p99) = p50_p99(commits);
    let server = Server::start_for_tests(server_config(), server_key(), store)
        .await
        .expect("start the server");
    let url = server.url().to_string();
    println!(
        "server: {signed} records signed ({record_len} bytes each), store filled with {} records by {QUERY_AUTHORS} authors, in {:.1} s{}",
        plan.query_records,
        run_started.elapsed().as_secs_f64(),
        if plan.quick { " (quick)" } else { "" }
    );

    // Ingest.
    ingest(&url, warm_records, 1).await;
    let ingest_1 = ingest(&url, single, 1).await;
    let ingest_n = ingest(&url, many, plan.ingest_connections).await;
    let ingest_piped =
        ingest_pipelined(&url, pipelined, plan.ingest_connections, PIPELINE_WINDOW).await;
    let bound_records = measured.to_vec();
    let rounds = plan.bound_rounds;
    let bound = tokio::task::spawn_blocking(move || verify_bound(&bound_records, rounds))
        .await
        .expect("verify task");
    let ratio = ingest_n / bound;
    println!(
        "server: ingest 1 conn: {ingest_1:.0} records/s ({} records, each awaiting its Submission Result)",
        plan.ingest
    );
    println!(
        "server: ingest {} conns: {ingest_n:.0} records/s ({} records)",
        plan.ingest_connections, plan.ingest
    );
    println!("server: verify bound (2 threads): {bound:.0} records/s");
    println!("server: ingest/bound ratio: {ratio:.3} (target >= 0.5)");
    println!(
        "server: ingest {} conns pipelined ({PIPELINE_WINDOW} in flight each): {ingest_piped:.0} records/s = {:.3} of the bound",
        plan.ingest_connections,
        ingest_piped / bound
    );
    println!(
        "server: store commit of 1 record (no server): p50/p99 {commit_p50:.2} ms / {commit_p99:.2} ms"
    );
    println!(
        "server: closed-loop ceiling at that commit latency: {:.0} records/s with 1 conn, {:.0} with {} (one commit per round of submissions)",
        1e3 / commit_p50,
        plan.ingest_connections as f64 * 1e3 / commit_p50,
        plan.ingest_connections
    );

    // Queries.
    let addr = server.local_addr();
    let (query_p50, query_p99, returned) =
        query_latency(&url, addr, &author_keys, plan.queries, QueryClient::Lean).await;
    println!(
        "server: query p50/p99: {query_p50:.2} ms / {query_p99:.2} ms ({} queries, author + limit {QUERY_LIMIT}, {returned} records each; client does not verify)",
        plan.queries
    );
    let (verified_p50, verified_p99, _) = query_latency(
        &url,
        addr,
        &author_keys,
        plan.queries,
        QueryClient::Verifying,
    )
    .await;
    println!(
        "server: query p50/p99 with a verifying client (mosaic-net, same cores): {verified_p50:.2} ms / {verified_p99:.2} ms"
    );

    // Fan-out.
    let (fan_p50, fan_p99) = fan_out(
        &url,
        addr,
        fanout_author.public(),
        &fanout_records,
        plan.subscribers,
    )
    .await;
    println!(
        "server: fan-out ({} subscribers) p50/p99: {fan_p50:.2} ms / {fan_p99:.2} ms (target p99 < 50 ms; {} submissions, durable commit included; subscribers do not verify)",
        plan.subscribers, plan.fanout_submissions
    );
    let selective = selective_fan_out(
        &url,
        addr,
        selective_author.public(),
        selective_quiet,
        selective_loud,
        plan.subscribers,
    )
    .await;
    println!(
        "server: selective fan-out ({SELECTIVE_SUBSCRIPTIONS} subscriptions on {} connections, {SELECTIVE_MATCHING} matching) p50/p99: {:.2} ms / {:.2} ms; ACK p50/p99 {:.2} / {:.2} ms with them, {:.2} / {:.2} ms without ({} submissions each)",
        selective.connections,
        selective.delivery.0,
        selective.delivery.1,
        selective.ack_with.0,
        selective.ack_with.1,
        selective.ack_alone.0,
        selective.ack_alone.1,
        plan.fanout_submissions
    );
    server.shutdown().await.expect("shut the server down");

    // Memory, in a separate server process.
    let memory = idle_memory(plan.idle_connections).await;
    match memory {
        Some((per, before, after)) => println!(
            "server: memory per idle connection: {per:.1} KiB (target < 100 KiB; server RSS {before} KiB -> {after} KiB with {} idle connections)",
            plan.idle_connections
        ),
        None => println!("server: memory per idle connection: not measured (no /proc)"),
    }

    let attacks = attack_memory(
        plan.attack_subscribers,
        &large_records,
        plan.attack_getters,
        &huge,
    )
    .await;
    match &attacks {
        Some(a) => println!(
            "server: RSS under attack: at rest {} KiB; peak {} KiB with {} subscribers not reading while {:.1} MiB of records arrive; peak {} KiB with {} clients not reading 5 Gets each of 20,000 references to a 1 MiB record",
            a.rest,
            a.slow_peak,
            a.slow,
            a.large_bytes as f64 / (1024.0 * 1024.0),
            a.get_peak,
            a.getters
        ),
        None => println!("server: RSS under attack: not measured (no /proc)"),
    }

    let memory_summary = match memory {
        Some((per, ..)) => format!("{per:.1} KiB/idle conn ({})", met(per < 100.0)),
        None => "memory not measured".to_string(),
    };
    println!(
        "server: summary: ingest {ingest_1:.0}/s (1 conn), {ingest_n:.0}/s ({} conns) = {ratio:.3} of the verify bound ({}); query p99 {query_p99:.2} ms; fan-out p99 {fan_p99:.2} ms to {} subscribers ({}); {memory_summary}; {:.1} s in all",
        plan.ingest_connections,
        met(ratio >= 0.5),
        plan.subscribers,
        met(fan_p99 < 50.0),
        run_started.elapsed().as_secs_f64()
    );
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child_server(PathBuf::from(dir));
        return;
    }
    let mut plan = Plan::from_env();
    plan.fit_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(plan));
}
