//! One server in the pool: a [`Link`] opens (and re-opens) its connection,
//! and a [`Live`] connection routes what the server sends to whoever waits
//! for it.
//!
//! Every query and subscription on a connection gets its own query id; a
//! background task per connection reads the server's messages and hands
//! Record, Locally Complete and Query Closed messages to the query with that
//! id, and Submission Results to the submission whose id prefix they carry
//! (submissions are pipelined: many may wait at once). When the connection
//! ends, every waiter learns it at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use mosaic_core::handshake::HandshakeError;
use mosaic_core::{
    Filter, IdPrefix, Message, MessageError, MessageRef, OwnedRecord, PublicKey, QueryId, Record,
    ResultCode, SecretKey,
};
use mosaic_net::{Bytes, ConnectOptions, Connection, NetError, Received, Receiver, Sender};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, trace, warn};

use crate::{ClientError, ConnectAttempt, ConnectProblem, Directory, ServerAddress, ServerId};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a link finds its server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// By key: the addresses come from the directory at each connection,
    /// and the server must prove the key.
    Key(PublicKey),
    /// By one address, with the key the server must prove if one is given.
    Address {
        address: ServerAddress,
        expected: Option<PublicKey>,
    },
}

/// One server of the pool: at most one live connection at a time, opened on
/// demand and again after it is lost.
pub(crate) struct Link {
    id: ServerId,
    target: Target,
    directory: Arc<dyn Directory>,
    connect: ConnectOptions,
    identity: Option<SecretKey>,
    /// Held while connecting, so that concurrent callers share one attempt.
    connecting: tokio::sync::Mutex<()>,
    live: Mutex<Option<Arc<Live>>>,
    misbehaviour: AtomicU32,
    failures: AtomicU32,
}

impl Link {
    pub(crate) fn new(
        target: Target,
        directory: Arc<dyn Directory>,
        connect: ConnectOptions,
        identity: Option<SecretKey>,
    ) -> Link {
        let id = match &target {
            Target::Key(key) => ServerId::Key(*key),
            Target::Address {
                expected: Some(key),
                ..
            } => ServerId::Key(*key),
            Target::Address { address, .. } => ServerId::Address(address.to_string()),
        };
        Link {
            id,
            target,
            directory,
            connect,
            identity,
            connecting: tokio::sync::Mutex::new(()),
            live: Mutex::new(None),
            misbehaviour: AtomicU32::new(0),
            failures: AtomicU32::new(0),
        }
    }

    pub(crate) fn id(&self) -> &ServerId {
        &self.id
    }

    /// The open connection, if there is one.
    pub(crate) fn current(&self) -> Option<Arc<Live>> {
        lock(&self.live).as_ref().filter(|l| l.is_open()).cloned()
    }

    /// The open connection, connecting first when there is none.
    pub(crate) async fn connection(&self) -> Result<Arc<Live>, ClientError> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(live) = self.current() {
            return Ok(live);
        }
        match self.open().await {
            Ok(live) => {
                *lock(&self.live) = Some(live.clone());
                Ok(live)
            }
            Err(error) => {
                self.count_failure();
                Err(error)
            }
        }
    }

    /// Submits a record (connecting first when needed) and waits at most
    /// `timeout` for its result.
    pub(crate) async fn submit(
        &self,
        record: &Record,
        timeout: Duration,
    ) -> Result<ResultCode, ClientError> {
        let live = self.connection().await?;
        let result = live.submit(record, timeout).await;
        if result.is_err() {
            self.count_failure();
        }
        result
    }

    /// Drops the connection (the next request opens a new one).
    pub(crate) fn disconnect(&self) {
        if let Some(live) = lock(&self.live).take() {
            live.sender.abort();
        }
    }

    pub(crate) fn count_misbehaviour(&self) {
        self.misbehaviour.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn misbehaviour(&self) -> u32 {
        self.misbehaviour.load(Ordering::Relaxed)
    }

    /// Counts a failed connection, a lost one, or a request not answered
    /// in time.
    pub(crate) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Tries each address in order; the first that connects (and proves the
    /// key, when one is expected) wins.
    async fn open(&self) -> Result<Arc<Live>, ClientError> {
        let (addresses, expected) = match &self.target {
            Target::Key(key) => {
                let addresses = self
                    .directory
                    .server_addresses(key)
                    .await?
                    .filter(|a| !a.is_empty())
                    .ok_or(ClientError::NoServerAddress { server: *key })?;
                (addresses, Some(*key))
            }
            Target::Address { address, expected } => (vec![address.clone()], *expected),
        };
        let mut options = self.connect.clone();
        options.expected_server = expected;
        // Authentication signs over the server's key, so it needs one.
        options.client_key = expected.and(self.identity.clone());
        let mut attempts = Vec::new();
        for address in addresses {
            let uri = match &address {
                ServerAddress::Url(url) => match url.websocket_uri() {
                    Some(uri) => uri,
                    None => {
                        debug!(server = %self.id, %address, "transport not supported: skipped");
                        attempts.push(ConnectAttempt {
                            address: address.to_string(),
                            problem: ConnectProblem::UnsupportedTransport {
                                scheme: url.scheme(),
                            },
                        });
                        continue;
                    }
                },
                ServerAddress::WebSocket(uri) => uri.clone(),
            };
            match mosaic_net::connect(&uri, &options).await {
                Ok(connection) => {
                    debug!(server = %self.id, %address, "connected");
                    return Ok(Live::start(self.id.clone(), connection));
                }
                Err(error) => {
                    let problem = match error {
                        NetError::Handshake(
                            HandshakeError::ServerAuthenticationFailed(_)
                            | HandshakeError::ServerAuthenticationMissing,
                        ) => {
                            warn!(server = %self.id, %address, "the server could not prove its key");
                            ConnectProblem::KeyNotProven
                        }
                        error => {
                            debug!(server = %self.id, %address, %error, "connection failed");
                            ConnectProblem::Net(error)
                        }
                    };
                    attempts.push(ConnectAttempt {
                        address: address.to_string(),
                        problem,
                    });
                }
            }
        }
        Err(ClientError::Unreachable {
            server: self.id.clone(),
            attempts,
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// What the server sent for one query.
#[derive(Debug)]
pub(crate) enum QueryEvent {
    /// A record (decoded and verified).
    Record(OwnedRecord),
    /// A Record message that does not decode (the record is invalid).
    Invalid(MessageError),
    /// Locally Complete: a subscription has sent every stored match.
    LocallyComplete,
    /// Query Closed.
    Closed(ResultCode),
}

/// How a connection ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Lost,
    Closing(ResultCode),
}

struct Route {
    token: u64,
    tx: mpsc::Sender<QueryEvent>,
}

/// Events one query or subscription may have waiting for its reader. When a
/// reader falls this far behind, the connection stops reading from the
/// server (which holds what it has not sent, and ends a subscription that
/// stays behind with TEMPORARY_ERROR, D-21): the client's memory never grows
/// with what a server sends. A whole query answer (at most a server's
/// LIMIT, 500 by default) fits, so a caller may read it after sending.
pub(crate) const ROUTE_BUFFER: usize = 1024;

/// The same for a subscription, whose events a task of the client reads as
/// they come.
pub(crate) const SUBSCRIPTION_ROUTE_BUFFER: usize = 64;

struct Routes {
    end: Option<End>,
    next_id: u16,
    next_token: u64,
    queries: HashMap<QueryId, Route>,
    submissions: HashMap<IdPrefix, VecDeque<oneshot::Sender<ResultCode>>>,
}

/// An open connection and its routing table.
pub(crate) struct Live {
    server: ServerId,
    sender: Sender,
    routes: Mutex<Routes>,
}

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

impl Live {
    fn start(server: ServerId, connection: Connection) -> Arc<Live> {
        let (sender, receiver) = connection.split();
        let live = Arc::new(Live {
            server,
            sender,
            routes: Mutex::new(Routes {
                end: None,
                next_id: 1,
                next_token: 1,
                queries: HashMap::new(),
                submissions: HashMap::new(),
            }),
        });
        let number = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("link", conn = number, server = %live.server);
        tokio::spawn(tracing::Instrument::instrument(
            read_loop(Arc::downgrade(&live), receiver),
            span,
        ));
        live
    }

    pub(crate) fn is_open(&self) -> bool {
        lock(&self.routes).end.is_none() && !self.sender.is_closed()
    }

    fn end_error(&self, end: Option<End>) -> ClientError {
        match end {
            Some(End::Closing(code)) => ClientError::ServerClosed {
                server: self.server.clone(),
                code,
            },
            _ => ClientError::Disconnected {
                server: self.server.clone(),
            },
        }
    }

    /// Why the connection is no longer usable.
    pub(crate) fn lost_error(&self) -> ClientError {
        let end = lock(&self.routes).end;
        self.end_error(end)
    }

    /// Opens a route for a new query id.
    fn open_route(self: &Arc<Self>, subscription: bool) -> Result<QueryRoute, ClientError> {
        let mut routes = lock(&self.routes);
        if routes.end.is_some() {
            let end = routes.end;
            drop(routes);
            return Err(self.end_error(end));
        }
        for _ in 0..=u16::MAX {
            let id = QueryId(routes.next_id);
            routes.next_id = routes.next_id.wrapping_add(1);
            if routes.queries.contains_key(&id) {
                continue;
            }
            let token = routes.next_token;
            routes.next_token += 1;
            let (tx, rx) = mpsc::channel(if subscription {
                SUBSCRIPTION_ROUTE_BUFFER
            } else {
                ROUTE_BUFFER
            });
            routes.queries.insert(id, Route { token, tx });
            return Ok(QueryRoute {
                live: self.clone(),
                id,
                token,
                rx,
                subscription,
                closed: false,
            });
        }
        Err(ClientError::QueryIdsExhausted {
            server: self.server.clone(),
        })
    }

    /// Sends a Query (or a Subscribe) and returns the route its answers
    /// arrive on.
    pub(crate) async fn query(
        self: &Arc<Self>,
        filter: &Filter,
        limit: u16,
        subscribe: bool,
    ) -> Result<QueryRoute, ClientError> {
        let route = self.open_route(subscribe)?;
        let query_id = route.id;
        let message = if subscribe {
            MessageRef::Subscribe {
                query_id,
                limit,
                filter,
            }
        } else {
            MessageRef::Query {
                query_id,
                limit,
                filter,
            }
        };
        let bytes = message.encode()?;
        if self.sender.send_encoded(bytes).await.is_err() {
            return Err(self.lost_error());
        }
        trace!(%query_id, subscribe, "query sent");
        Ok(route)
    }

    /// Submits a record and waits (at most `timeout`) for its result.
    pub(crate) async fn submit(
        &self,
        record: &Record,
        timeout: Duration,
    ) -> Result<ResultCode, ClientError> {
        let prefix = IdPrefix::from_id(&record.id());
        let bytes = MessageRef::Submission { record }.encode()?;
        let (tx, rx) = oneshot::channel();
        {
            let mut routes = lock(&self.routes);
            if routes.end.is_some() {
                let end = routes.end;
                drop(routes);
                return Err(self.end_error(end));
            }
            routes.submissions.entry(prefix).or_default().push_back(tx);
        }
        if self.sender.send_encoded(bytes).await.is_err() {
            return Err(self.lost_error());
        }
        let answer = tokio::time::timeout(timeout, rx).await;
        match answer {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(_)) => Err(self.lost_error()),
            Err(_) => {
                // Forget this waiter (its receiver is gone now).
                let mut routes = lock(&self.routes);
                if let Some(queue) = routes.submissions.get_mut(&prefix) {
                    queue.retain(|w| !w.is_closed());
                    if queue.is_empty() {
                        routes.submissions.remove(&prefix);
                    }
                }
                Err(ClientError::Timeout {
                    server: self.server.clone(),
                })
            }
        }
    }

    /// Routes one message; `Some` when the connection ends with it. Waits
    /// while the query's reader is [`ROUTE_BUFFER`] events behind.
    async fn route(&self, received: Received) -> Option<End> {
        let message = match received.message {
            Ok(message) => message,
            Err(error) => {
                // A Record whose record does not verify still names its query.
                if received.bytes.first() == Some(&0x80)
                    && let Some(id) = received.bytes.get(4..6)
                {
                    let query_id = QueryId(u16::from_le_bytes([id[0], id[1]]));
                    debug!(%query_id, %error, "invalid record received");
                    self.deliver(query_id, QueryEvent::Invalid(error), false)
                        .await;
                } else {
                    debug!(%error, "undecodable message ignored");
                }
                return None;
            }
        };
        match message {
            Message::Record { query_id, record } => {
                self.deliver(query_id, QueryEvent::Record(record), false)
                    .await
            }
            Message::LocallyComplete { query_id } => {
                self.deliver(query_id, QueryEvent::LocallyComplete, false)
                    .await
            }
            Message::QueryClosed { query_id, code } => {
                self.deliver(query_id, QueryEvent::Closed(code), true).await
            }
            Message::SubmissionResult { code, id_prefix } => {
                let mut routes = lock(&self.routes);
                if let Some(queue) = routes.submissions.get_mut(&id_prefix) {
                    while let Some(waiter) = queue.pop_front() {
                        if waiter.send(code).is_ok() {
                            break;
                        }
                    }
                    if queue.is_empty() {
                        routes.submissions.remove(&id_prefix);
                    }
                } else {
                    debug!(?id_prefix, "submission result for no pending submission");
                }
            }
            Message::Closing { code } => {
                debug!(%code, "the server is closing the connection");
                return Some(End::Closing(code));
            }
            other => debug!(message = other.message_type().name(), "message ignored"),
        }
        None
    }

    async fn deliver(&self, query_id: QueryId, event: QueryEvent, last: bool) {
        let tx = {
            let mut routes = lock(&self.routes);
            let Some(route) = routes.queries.get(&query_id) else {
                trace!(%query_id, "message for no open query ignored");
                return;
            };
            let tx = route.tx.clone();
            if last {
                routes.queries.remove(&query_id);
            }
            tx
        };
        // A reader that dropped its route just misses the event.
        let _ = tx.send(event).await;
    }

    /// Ends the connection for every waiter.
    fn finish(&self, end: End) {
        let mut routes = lock(&self.routes);
        routes.end.get_or_insert(end);
        routes.queries.clear();
        routes.submissions.clear();
        drop(routes);
        self.sender.abort();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

/// Records verified together at most, when several have arrived at once.
const VERIFY_BATCH: usize = 64;

/// Batches of at least this many records are verified on the blocking pool,
/// split in two halves that run at once.
const VERIFY_APART: usize = 8;

/// Whether `frame` is a Record message with a plain header (type, length
/// equal to the frame's, zero reserved bytes), whose record can be verified
/// with others.
fn is_plain_record(frame: &[u8]) -> bool {
    frame.len() > 8
        && frame[0] == mosaic_core::MessageType::RECORD.as_u8()
        && matches!(mosaic_core::frame_len(frame), Ok(Some(n)) if n == frame.len())
        && frame[6..8] == [0, 0]
}

/// Verifies the records of Record frames together.
fn verify_records(frames: &[Bytes]) -> Vec<Result<OwnedRecord, MessageError>> {
    let items: Vec<&[u8]> = frames
        .iter()
        .map(|f| f.get(8..).unwrap_or_default())
        .collect();
    Record::from_bytes_batch(&items)
        .into_iter()
        .map(|verdict| verdict.map(Record::to_owned).map_err(MessageError::Record))
        .collect()
}

/// Bytes of Record frames taken into one run at most.
const VERIFY_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Runs decoded or being verified ahead of the one being routed: while
/// one run's records are checked, the next is read and started, so that
/// verification uses both cores and overlaps the network.
const RUNS_AHEAD: usize = 2;

/// A run of frames, decoded or still being verified.
enum Decoded {
    /// Decoded (or failed to decode: the connection ends).
    Ready(Result<Vec<Received>, NetError>),
    /// Record messages whose records are being verified together.
    Verifying(tokio::task::JoinHandle<Vec<Received>>),
}

/// Verifies the records of a run of plain Record frames together (in two
/// halves at once when there are many).
async fn verify_run(records: Vec<Bytes>) -> Vec<Received> {
    let verdicts = if records.len() >= VERIFY_APART {
        let half = records.len() / 2;
        let (a, b) = (records[..half].to_vec(), records[half..].to_vec());
        let first = tokio::task::spawn_blocking(move || verify_records(&a));
        let second = tokio::task::spawn_blocking(move || verify_records(&b));
        match (first.await, second.await) {
            (Ok(mut first), Ok(second)) => {
                first.extend(second);
                first
            }
            _ => verify_records(&records),
        }
    } else {
        verify_records(&records)
    };
    records
        .into_iter()
        .zip(verdicts)
        .map(|(bytes, verdict)| {
            let message = verdict.map(|record| Message::Record {
                query_id: QueryId(u16::from_le_bytes([bytes[4], bytes[5]])),
                record,
            });
            Received { bytes, message }
        })
        .collect()
}

/// Decodes a run of frames: a run of plain Record frames is verified
/// together in the background; any other run (it ends at its first other
/// frame) is decoded here, one frame at a time, as the receiver decodes.
async fn decode_run(receiver: &Receiver, frames: Vec<Bytes>) -> Decoded {
    if !frames.is_empty() && frames.iter().all(|f| is_plain_record(f)) {
        return Decoded::Verifying(tokio::spawn(verify_run(frames)));
    }
    let mut out = Vec::with_capacity(frames.len());
    for frame in frames {
        match receiver.decode(frame).await {
            Ok(received) => out.push(received),
            Err(e) => return Decoded::Ready(Err(e)),
        }
    }
    Decoded::Ready(Ok(out))
}

/// Reads the server's messages until the connection ends or nobody holds
/// the connection any more. Record messages that have arrived together are
/// verified together, and runs are verified ahead of [`route_loop`], which
/// routes them in order.
async fn read_loop(live: Weak<Live>, mut receiver: Receiver) {
    let (tx, rx) = mpsc::channel(RUNS_AHEAD);
    let router = tokio::spawn(route_loop(live.clone(), rx));
    loop {
        let mut end = None;
        let first = tokio::select! {
            first = receiver.recv_frame() => first,
            // The router ended the connection.
            _ = tx.closed() => break,
        };
        let frames = match first {
            Ok(Some(frame)) => {
                let mut bytes = frame.len();
                let mut frames = vec![frame];
                if is_plain_record(&frames[0]) {
                    // Take what has arrived already, without waiting.
                    while frames.len() < VERIFY_BATCH && bytes < VERIFY_BATCH_BYTES {
                        match receiver.recv_frame().now_or_never() {
                            Some(Ok(Some(frame))) => {
                                let plain = is_plain_record(&frame);
                                bytes += frame.len();
                                frames.push(frame);
                                if !plain {
                                    break;
                                }
                            }
                            Some(Ok(None)) => {
                                end = Some(End::Lost);
                                break;
                            }
                            Some(Err(error)) => {
                                debug!(%error, "connection failed");
                                end = Some(End::Lost);
                                break;
                            }
                            None => break,
                        }
                    }
                }
                frames
            }
            Ok(None) => Vec::new(),
            Err(error) => {
                debug!(%error, "connection failed");
                Vec::new()
            }
        };
        if live.strong_count() == 0 {
            break;
        }
        if frames.is_empty() {
            end = Some(End::Lost);
        }
        let decoded = decode_run(&receiver, frames).await;
        let stop = end.is_some() || matches!(decoded, Decoded::Ready(Err(_)));
        if tx.send((decoded, end)).await.is_err() || stop {
            break;
        }
    }
    drop(tx);
    let _ = router.await;
}

/// Routes the runs [`read_loop`] decodes, in the order they were read, and
/// ends the connection when one says so.
async fn route_loop(live: Weak<Live>, mut runs: mpsc::Receiver<(Decoded, Option<End>)>) {
    while let Some((decoded, mut end)) = runs.recv().await {
        let run = match decoded {
            Decoded::Ready(Ok(run)) => run,
            Decoded::Ready(Err(error)) => {
                debug!(%error, "connection failed");
                end = Some(End::Lost);
                Vec::new()
            }
            Decoded::Verifying(task) => match task.await {
                Ok(run) => run,
                Err(_) => {
                    end = Some(End::Lost);
                    Vec::new()
                }
            },
        };
        let Some(live) = live.upgrade() else {
            return;
        };
        for received in run {
            if let Some(ended) = live.route(received).await {
                end = Some(ended);
                break;
            }
        }
        if let Some(end) = end {
            debug!(?end, "connection ended");
            live.finish(end);
            return;
        }
    }
}

/// The answers to one query or subscription. Dropping it forgets the query
/// id (and unsubscribes a subscription the server has not closed).
pub(crate) struct QueryRoute {
    live: Arc<Live>,
    id: QueryId,
    token: u64,
    rx: mpsc::Receiver<QueryEvent>,
    subscription: bool,
    closed: bool,
}

impl QueryRoute {
    /// The next event; `None` when the connection is lost (see
    /// [`lost_error`](Self::lost_error)).
    pub(crate) async fn next(&mut self) -> Option<QueryEvent> {
        let event = self.rx.recv().await;
        if matches!(event, Some(QueryEvent::Closed(_))) {
            self.closed = true;
        }
        event
    }

    /// Why the connection is no longer usable.
    pub(crate) fn lost_error(&self) -> ClientError {
        self.live.lost_error()
    }
}

impl Drop for QueryRoute {
    fn drop(&mut self) {
        let mut routes = lock(&self.live.routes);
        let ours = routes
            .queries
            .get(&self.id)
            .is_some_and(|r| r.token == self.token);
        if ours {
            routes.queries.remove(&self.id);
        }
        let open = routes.end.is_none();
        drop(routes);
        if ours && open && self.subscription && !self.closed {
            let _ = self
                .live
                .sender
                .try_send(&Message::Unsubscribe { query_id: self.id });
        }
    }
}
