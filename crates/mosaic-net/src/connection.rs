//! [`Connection`]: whole Mosaic messages over one transport connection.
//!
//! A connection splits into a [`Sender`] (cheap to clone, backed by a bounded
//! queue that one writer task drains) and a [`Receiver`]. The writer task also
//! sends WebSocket pings when the connection is quiet, so that idle peers stay
//! connected and dead ones are noticed. The receiver enforces the rules of
//! `websockets.md`: binary frames only, at most [`MAX_MESSAGE_LEN`] bytes each
//! (D-12), and only messages the other side may send; a violation ends the
//! connection with a Closing message where one can still be sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use mosaic_core::{
    MAX_MESSAGE_LEN, Message, MessageError, OwnedRecord, PublicKey, QueryId, ResultCode,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message as WsMessage};
use tracing::{debug, trace};

use crate::NetError;

/// Any byte stream a connection can run over (TCP, TLS over TCP, ...).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The boxed stream every transport is reduced to.
pub(crate) type BoxedIo = Box<dyn Io>;

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Largest message accepted, in bytes. Default [`MAX_MESSAGE_LEN`]
    /// (one whole record, D-12); larger frames end the connection.
    pub max_message_len: usize,
    /// How long the connection may be quiet before a ping is sent.
    /// Default 30 s.
    pub ping_interval: Duration,
    /// How long nothing may arrive (pongs included) before the connection is
    /// dropped. Default 90 s; keep it above `ping_interval`.
    pub idle_timeout: Duration,
    /// Bytes of messages that may wait to be written to the peer (SPEC-NOTES
    /// D-21's outbound budget). Default 8 MiB. Senders wait while the queue
    /// is over it ([`Sender::send`]), or get [`NetError::QueueFull`]
    /// ([`Sender::try_send`]); a message larger than the whole budget waits
    /// for the queue to be empty. Bounds the memory one peer can hold.
    pub outbound_budget: usize,
    /// How long writing one message to the peer may take. A peer that reads
    /// nothing for this long is sent Closing (if the socket still takes it)
    /// and disconnected, so a client that stops reading cannot hold its
    /// session or the server's memory. Default 30 s.
    pub write_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_message_len: MAX_MESSAGE_LEN,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            outbound_budget: DEFAULT_OUTBOUND_BUDGET,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// The default outbound budget (D-21): 8 MiB.
pub const DEFAULT_OUTBOUND_BUDGET: usize = 8 * 1024 * 1024;

/// Bytes read from the socket at a time. The WebSocket layer allocates and
/// zero-fills this much per connection as soon as the connection opens
/// (128 KiB by default, which would be most of an idle connection's memory).
/// A larger message is still read whole, in several reads.
const READ_BUFFER: usize = 8 * 1024;

impl ConnectionConfig {
    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(self.max_message_len))
            .max_frame_size(Some(self.max_message_len))
    }
}

/// Which end of a connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client end: it receives server messages.
    Client,
    /// The server end: it receives client messages.
    Server,
}

/// What is known about a connection once its handshake is done.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The peer's socket address.
    pub peer: SocketAddr,
    /// The protocol version agreed.
    pub version: u16,
    /// The features agreed.
    pub features: Vec<String>,
    /// On a server: the client's authenticated key. On a client: the key it
    /// authenticated as.
    pub client_key: Option<PublicKey>,
    /// On a client: the server key that proved itself, if one was expected.
    pub server_key: Option<PublicKey>,
}

/// What the writer task is handed. Frames carry the share of the outbound
/// budget they hold until they are written.
enum Outbound {
    /// A whole encoded message.
    Frame(Bytes, Option<OwnedSemaphorePermit>),
    /// A Record message: its 8-byte header, and the record's bytes shared
    /// with every other connection the record goes to.
    Record([u8; 8], Arc<OwnedRecord>, Option<OwnedSemaphorePermit>),
    /// Send Closing with this code (if any) after what is queued, then close.
    Close(Option<ResultCode>),
}

/// One Mosaic connection: send and receive whole messages.
pub struct Connection {
    sender: Sender,
    receiver: Receiver,
}

impl Connection {
    pub(crate) fn new(
        ws: WebSocketStream<BoxedIo>,
        side: Side,
        config: &ConnectionConfig,
        info: ConnectionInfo,
    ) -> Connection {
        let (sink, stream) = ws.split();
        // The queue itself is unbounded: the budget's permits bound what it
        // holds, and Close must get in even when the budget is spent.
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = config.outbound_budget.clamp(1, MAX_PERMITS);
        let shared = Arc::new(SenderShared {
            closed: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            budget: Arc::new(Semaphore::new(budget)),
            capacity: budget,
            abort: Notify::new(),
            info,
        });
        tokio::spawn(write_loop(
            sink,
            rx,
            config.ping_interval,
            config.write_timeout,
            shared.clone(),
        ));
        let sender = Sender { tx, shared };
        Connection {
            receiver: Receiver {
                stream,
                side,
                idle_timeout: config.idle_timeout,
                max_message_len: config.max_message_len,
                sender: sender.clone(),
            },
            sender,
        }
    }

    /// What is known about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        self.sender.info()
    }

    /// The sending half, for sending encoded bytes or from another task.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Splits into a sending and a receiving half.
    pub fn split(self) -> (Sender, Receiver) {
        (self.sender, self.receiver)
    }

    /// Sends a message, waiting for room in the queue.
    pub async fn send(&self, message: &Message) -> Result<(), NetError> {
        self.sender.send(message).await
    }

    /// Receives the next message (see [`Receiver::recv`]).
    pub async fn recv(&mut self) -> Result<Option<Received>, NetError> {
        self.receiver.recv().await
    }

    /// Sends a Closing message with `code` and closes the connection.
    pub async fn close(&self, code: ResultCode) {
        self.sender.close(code).await
    }
}

/// Permits a tokio semaphore can hold, and so the largest budget.
const MAX_PERMITS: usize = u32::MAX as usize;

struct SenderShared {
    closed: AtomicBool,
    /// Set when the write timeout ended the connection.
    stalled: AtomicBool,
    /// One permit per byte of the outbound budget.
    budget: Arc<Semaphore>,
    capacity: usize,
    abort: Notify,
    info: ConnectionInfo,
}

/// The sending half of a connection. Clones share one queue and one
/// outbound budget (see [`ConnectionConfig::outbound_budget`]).
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Outbound>,
    shared: Arc<SenderShared>,
}

/// The 8-byte header of a Record message for `query_id` carrying a record of
/// `len` bytes (`messages.md`: type, u24 LE length, query id, 2 zero bytes).
fn record_header(query_id: QueryId, len: usize) -> Result<[u8; 8], NetError> {
    let total = len + 8;
    if total > MAX_MESSAGE_LEN {
        return Err(NetError::Message(MessageError::TooLong {
            len: total as u64,
        }));
    }
    let mut head = [0u8; 8];
    head[0] = mosaic_core::MessageType::RECORD.as_u8();
    head[1..4].copy_from_slice(&(total as u32).to_le_bytes()[..3]);
    head[4..6].copy_from_slice(&query_id.to_bytes());
    Ok(head)
}

impl Sender {
    /// What is known about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        &self.shared.info
    }

    /// The share of the budget a message of `len` bytes takes: its length,
    /// at most the whole budget.
    fn cost(&self, len: usize) -> u32 {
        // `capacity` is at most `MAX_PERMITS`, so this fits.
        len.clamp(1, self.shared.capacity) as u32
    }

    async fn reserve(&self, len: usize) -> Result<OwnedSemaphorePermit, NetError> {
        if self.is_closed() {
            return Err(NetError::Closed);
        }
        self.shared
            .budget
            .clone()
            .acquire_many_owned(self.cost(len))
            .await
            .map_err(|_| NetError::Closed)
    }

    fn try_reserve(&self, len: usize) -> Result<OwnedSemaphorePermit, NetError> {
        if self.is_closed() {
            return Err(NetError::Closed);
        }
        self.shared
            .budget
            .clone()
            .try_acquire_many_owned(self.cost(len))
            .map_err(|e| match e {
                TryAcquireError::NoPermits => NetError::QueueFull,
                TryAcquireError::Closed => NetError::Closed,
            })
    }

    fn put(&self, out: Outbound) -> Result<(), NetError> {
        self.tx.send(out).map_err(|_| NetError::Closed)
    }

    /// Queues a message, waiting while the outbound budget is spent.
    pub async fn send(&self, message: &Message) -> Result<(), NetError> {
        self.send_encoded(message.encode()?).await
    }

    /// Queues already-encoded message bytes, waiting while the outbound
    /// budget is spent.
    pub async fn send_encoded(&self, frame: Vec<u8>) -> Result<(), NetError> {
        let permit = self.reserve(frame.len()).await?;
        self.put(Outbound::Frame(Bytes::from(frame), Some(permit)))
    }

    /// Queues a message without waiting: [`NetError::QueueFull`] when the
    /// peer has not kept up.
    pub fn try_send(&self, message: &Message) -> Result<(), NetError> {
        self.try_send_encoded(message.encode()?)
    }

    /// Queues already-encoded message bytes without waiting:
    /// [`NetError::QueueFull`] when the peer has not kept up.
    pub fn try_send_encoded(&self, frame: Vec<u8>) -> Result<(), NetError> {
        let permit = self.try_reserve(frame.len())?;
        self.put(Outbound::Frame(Bytes::from(frame), Some(permit)))
    }

    /// Queues a small control message (Query Closed, a result) at once,
    /// outside the outbound budget, so that telling a client why something
    /// ended never waits behind the data it is not reading. Callers bound
    /// how many they send; anything large goes through [`Sender::send`].
    pub fn send_control(&self, message: &Message) -> Result<(), NetError> {
        if self.is_closed() {
            return Err(NetError::Closed);
        }
        self.put(Outbound::Frame(Bytes::from(message.encode()?), None))
    }

    /// Queues a Record message for `query_id`, waiting while the outbound
    /// budget is spent. The record's bytes are shared, not copied: a record
    /// sent to many connections is held in memory once.
    pub async fn send_record(
        &self,
        query_id: QueryId,
        record: Arc<OwnedRecord>,
    ) -> Result<(), NetError> {
        let head = record_header(query_id, record.len())?;
        let permit = self.reserve(record.len() + 8).await?;
        self.put(Outbound::Record(head, record, Some(permit)))
    }

    /// Queues a Record message without waiting: [`NetError::QueueFull`]
    /// when the outbound budget is spent.
    pub fn try_send_record(
        &self,
        query_id: QueryId,
        record: Arc<OwnedRecord>,
    ) -> Result<(), NetError> {
        let head = record_header(query_id, record.len())?;
        let permit = self.try_reserve(record.len() + 8)?;
        self.put(Outbound::Record(head, record, Some(permit)))
    }

    /// Bytes queued and not yet written to the peer.
    pub fn queued_bytes(&self) -> usize {
        self.shared
            .capacity
            .saturating_sub(self.shared.budget.available_permits())
    }

    /// The outbound budget, in bytes.
    pub fn budget(&self) -> usize {
        self.shared.capacity
    }

    /// Waits until at least `bytes` of the budget are free (at most the
    /// whole budget), without taking them; an error once the connection is
    /// closed.
    pub async fn ready(&self, bytes: usize) -> Result<(), NetError> {
        self.reserve(bytes).await.map(drop)
    }

    /// Sends a Closing message with `code` after what is queued, then closes
    /// the connection. Messages sent afterwards are refused, and senders
    /// waiting for room in the budget are woken with an error. It takes
    /// effect whatever the queue holds: a peer that reads nothing is
    /// disconnected by the write timeout.
    pub async fn close(&self, code: ResultCode) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Outbound::Close(Some(code)));
            self.shared.budget.close();
        }
    }

    /// Closes the connection at once (for a peer that does not read):
    /// queued messages are dropped and no Closing is sent. Takes effect
    /// whatever the queue holds.
    pub fn abort(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.budget.close();
        // A stored permit: the writer sees it even if it is not waiting now.
        self.shared.abort.notify_one();
    }

    /// Whether the write timeout ended the connection: the peer stopped
    /// reading.
    pub fn is_stalled(&self) -> bool {
        self.shared.stalled.load(Ordering::Acquire)
    }

    /// Whether the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.tx.is_closed()
    }

    /// Waits until the writer has finished (the connection is closed).
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// Why a write did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteFailure {
    /// The socket failed.
    Failed,
    /// Nothing was taken within the write timeout.
    NotReading,
}

/// Runs one write of the WebSocket layer within the write timeout.
async fn within(
    timeout: Duration,
    write: impl std::future::Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
) -> Result<(), WriteFailure> {
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            debug!(error = %e, "write failed");
            Err(WriteFailure::Failed)
        }
        Err(_) => Err(WriteFailure::NotReading),
    }
}

/// Writes one WebSocket message, within the write timeout.
async fn write(
    sink: &mut SplitSink<WebSocketStream<BoxedIo>, WsMessage>,
    message: WsMessage,
    timeout: Duration,
) -> Result<(), WriteFailure> {
    within(timeout, sink.send(message)).await
}

/// Bytes of frames the writer hands to the WebSocket layer before it
/// flushes them to the socket together (one system call for many small
/// messages, such as the records of a query).
const FLUSH_EVERY: usize = 64 * 1024;

/// What the writer does with one item of the queue.
enum Step {
    /// A frame to send, and the share of the budget it holds until sent.
    Send(WsMessage, Option<OwnedSemaphorePermit>),
    /// Close, after Closing with this code if there is one.
    Close(Option<ResultCode>),
}

fn step(out: Outbound) -> Step {
    match out {
        Outbound::Frame(bytes, permit) => Step::Send(WsMessage::Binary(bytes), permit),
        Outbound::Record(head, record, permit) => {
            let mut frame = Vec::with_capacity(8 + record.len());
            frame.extend_from_slice(&head);
            frame.extend_from_slice(record.as_bytes());
            Step::Send(WsMessage::Binary(Bytes::from(frame)), permit)
        }
        Outbound::Close(code) => Step::Close(code),
    }
}

/// Hands a message to the WebSocket layer without flushing, within the
/// write timeout (it writes to the socket when its buffer is full).
async fn feed(
    sink: &mut SplitSink<WebSocketStream<BoxedIo>, WsMessage>,
    message: WsMessage,
    timeout: Duration,
) -> Result<(), WriteFailure> {
    within(timeout, sink.feed(message)).await
}

/// Flushes what was fed, within the write timeout.
async fn flush(
    sink: &mut SplitSink<WebSocketStream<BoxedIo>, WsMessage>,
    timeout: Duration,
) -> Result<(), WriteFailure> {
    within(timeout, SinkExt::<WsMessage>::flush(sink)).await
}

/// Sends `first` and whatever else is queued already (up to
/// [`FLUSH_EVERY`] bytes), then flushes once; the budget they hold is
/// released when they are on the socket. `Ok(Some(code))` when a Close
/// came up, to be done after them.
async fn send_run(
    sink: &mut SplitSink<WebSocketStream<BoxedIo>, WsMessage>,
    rx: &mut mpsc::UnboundedReceiver<Outbound>,
    first: (WsMessage, Option<OwnedSemaphorePermit>),
    timeout: Duration,
) -> Result<Option<Option<ResultCode>>, WriteFailure> {
    let mut held = Vec::new();
    let mut fed = 0;
    let mut next = Some(first);
    let mut close = None;
    while let Some((message, permit)) = next.take() {
        fed += message.len();
        trace!(len = message.len(), "send frame");
        feed(sink, message, timeout).await?;
        held.push(permit);
        if fed >= FLUSH_EVERY {
            break;
        }
        match rx.try_recv().map(step) {
            Ok(Step::Send(message, permit)) => next = Some((message, permit)),
            Ok(Step::Close(code)) => close = Some(code),
            Err(_) => {}
        }
    }
    flush(sink, timeout).await?;
    drop(held);
    Ok(close)
}

async fn write_loop(
    mut sink: SplitSink<WebSocketStream<BoxedIo>, WsMessage>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    ping_interval: Duration,
    write_timeout: Duration,
    shared: Arc<SenderShared>,
) {
    let mut ping = tokio::time::interval(ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        let sent = tokio::select! {
            biased;
            _ = shared.abort.notified() => {
                debug!("connection aborted");
                break;
            }
            out = rx.recv() => match out.map(step) {
                Some(Step::Send(message, permit)) => {
                    match send_run(&mut sink, &mut rx, (message, permit), write_timeout).await {
                        Ok(None) => Ok(()),
                        Ok(Some(code)) => {
                            close_with(&mut sink, code, write_timeout).await;
                            break;
                        }
                        Err(why) => Err(why),
                    }
                }
                Some(Step::Close(code)) => {
                    close_with(&mut sink, code, write_timeout).await;
                    break;
                }
                None => {
                    let _ = write(&mut sink, WsMessage::Close(None), write_timeout).await;
                    break;
                }
            },
            _ = ping.tick() => write(&mut sink, WsMessage::Ping(Bytes::new()), write_timeout).await,
        };
        match sent {
            Ok(()) => ping.reset(),
            Err(why) => {
                debug!(?why, "closing the connection");
                if why == WriteFailure::NotReading {
                    shared.stalled.store(true, Ordering::Release);
                    // The socket may still take a few bytes; never wait long.
                    if let Ok(bytes) = (Message::Closing {
                        code: ResultCode::TEMPORARY_ERROR,
                    })
                    .encode()
                    {
                        let _ = write(
                            &mut sink,
                            WsMessage::Binary(Bytes::from(bytes)),
                            Duration::from_millis(100),
                        )
                        .await;
                    }
                }
                break;
            }
        }
    }
    shared.closed.store(true, Ordering::Release);
    shared.budget.close();
    rx.close();
    // Whatever is left in the queue is dropped here, with its permits.
    while rx.try_recv().is_ok() {}
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

/// Sends Closing with `code` (when there is one), then the WebSocket close.
async fn close_with(
    sink: &mut SplitSink<WebSocketStream<BoxedIo>, WsMessage>,
    code: Option<ResultCode>,
    timeout: Duration,
) {
    if let Some(code) = code
        && let Ok(bytes) = (Message::Closing { code }).encode()
    {
        let _ = write(sink, WsMessage::Binary(Bytes::from(bytes)), timeout).await;
    }
    let _ = write(sink, WsMessage::Close(None), timeout).await;
}

/// A message as received: its bytes, and the message if they decode.
///
/// A frame that does not decode is still handed over, so the caller can
/// answer it as the protocol says (Unrecognized for an unknown type, a
/// Submission Result INVALID for a bad record, ...).
#[derive(Debug)]
pub struct Received {
    /// The frame's bytes.
    pub bytes: Bytes,
    /// The decoded message, or why it does not decode.
    pub message: Result<Message, MessageError>,
}

/// The receiving half of a connection.
pub struct Receiver {
    stream: SplitStream<WebSocketStream<BoxedIo>>,
    side: Side,
    idle_timeout: Duration,
    max_message_len: usize,
    sender: Sender,
}

impl Receiver {
    /// Receives the next message. `Ok(None)` means the peer closed the
    /// connection. Protocol violations (a text frame, an oversized frame, a
    /// message only this side may send) close the connection with a Closing
    /// message and return an error; so does an idle timeout.
    pub async fn recv(&mut self) -> Result<Option<Received>, NetError> {
        match self.recv_frame().await? {
            Some(bytes) => self.decode(bytes).await.map(Some),
            None => Ok(None),
        }
    }

    /// Receives the next frame without decoding it, so that the caller can
    /// decide what to spend on it first (a server charges its rate limits
    /// before it verifies a submitted record's signature); then
    /// [`Receiver::decode`] it. Size limits, text frames and the idle
    /// timeout are handled as in [`Receiver::recv`].
    pub async fn recv_frame(&mut self) -> Result<Option<Bytes>, NetError> {
        loop {
            let next = match tokio::time::timeout(self.idle_timeout, self.stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    self.sender.close(ResultCode::TEMPORARY_ERROR).await;
                    return Err(NetError::IdleTimeout {
                        seconds: self.idle_timeout.as_secs(),
                    });
                }
            };
            let frame = match next {
                None => return Ok(None),
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    let e = NetError::from(e);
                    if matches!(e, NetError::TooLarge { .. }) {
                        self.sender.close(ResultCode::TOO_LARGE).await;
                    }
                    return match e {
                        NetError::Closed => Ok(None),
                        e => Err(e),
                    };
                }
            };
            match frame {
                WsMessage::Binary(bytes) => {
                    if bytes.len() > self.max_message_len {
                        self.sender.close(ResultCode::TOO_LARGE).await;
                        return Err(NetError::TooLarge {
                            limit: self.max_message_len,
                        });
                    }
                    trace!(len = bytes.len(), "received frame");
                    return Ok(Some(bytes));
                }
                WsMessage::Text(_) => {
                    self.sender.close(ResultCode::INVALID).await;
                    return Err(NetError::TextFrame);
                }
                WsMessage::Close(_) => return Ok(None),
                // Pings are answered by the WebSocket layer; pongs only show
                // the peer is alive.
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
            }
        }
    }

    /// Decodes a frame from [`Receiver::recv_frame`]. A message only the
    /// other side may send closes the connection with Closing INVALID and
    /// is an error; bytes that do not decode are handed back in
    /// [`Received::message`] for the caller to answer.
    pub async fn decode(&self, bytes: Bytes) -> Result<Received, NetError> {
        let message = Message::decode(&bytes);
        if let Ok(m) = &message {
            let wrong = match self.side {
                Side::Server => !m.is_from_client(),
                Side::Client => !m.is_from_server(),
            };
            if wrong {
                self.sender.close(ResultCode::INVALID).await;
                return Err(NetError::WrongDirection {
                    name: m.message_type().name(),
                });
            }
        }
        Ok(Received { bytes, message })
    }

    /// A sender for this connection.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::Role;

    fn info() -> ConnectionInfo {
        ConnectionInfo {
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            version: 0,
            features: Vec::new(),
            client_key: None,
            server_key: None,
        }
    }

    /// A connected client and server over an in-memory pipe.
    async fn pair(config: &ConnectionConfig) -> (Connection, Connection) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(
            Box::new(a) as BoxedIo,
            Role::Client,
            Some(config.websocket_config()),
        )
        .await;
        let server = WebSocketStream::from_raw_socket(
            Box::new(b) as BoxedIo,
            Role::Server,
            Some(config.websocket_config()),
        )
        .await;
        (
            Connection::new(client, Side::Client, config, info()),
            Connection::new(server, Side::Server, config, info()),
        )
    }

    #[tokio::test]
    async fn messages_many_times_the_read_buffer_arrive_whole() {
        let config = ConnectionConfig::default();
        let (client, mut server) = pair(&config).await;
        let data: Vec<u8> = (0..MAX_MESSAGE_LEN - 40).map(|i| (i % 251) as u8).collect();
        assert!(data.len() > 100 * READ_BUFFER);
        let hash = mosaic_core::blob_hash(&data);
        let big = Message::BlobSubmission {
            hash,
            data: data.clone(),
        };
        client.send(&big).await.unwrap();
        client
            .send(&Message::BlobGet { hash: [4; 32] })
            .await
            .unwrap();
        let first = server.recv().await.unwrap().unwrap();
        assert_eq!(first.bytes.len(), MAX_MESSAGE_LEN);
        match first.message.unwrap() {
            Message::BlobSubmission {
                hash: got_hash,
                data: got,
            } => {
                assert_eq!(got_hash, hash);
                assert!(got == data, "the BLOB arrives intact");
            }
            other => panic!("expected the BLOB submission, got {other:?}"),
        }
        let second = server.recv().await.unwrap().unwrap();
        assert!(matches!(
            second.message,
            Ok(Message::BlobGet { hash }) if hash == [4; 32]
        ));
    }

    #[tokio::test]
    async fn one_byte_over_the_limit_is_refused() {
        let config = ConnectionConfig {
            max_message_len: 3 * READ_BUFFER,
            ..ConnectionConfig::default()
        };
        let (client, mut server) = pair(&config).await;
        let data = vec![1; 3 * READ_BUFFER - 40 + 1];
        let big = Message::BlobSubmission {
            hash: mosaic_core::blob_hash(&data),
            data,
        };
        client.send(&big).await.unwrap();
        assert!(matches!(
            server.recv().await,
            Err(NetError::TooLarge { .. })
        ));
    }

    fn blob(len: usize) -> Message {
        let data = vec![7u8; len];
        Message::BlobSubmission {
            hash: mosaic_core::blob_hash(&data),
            data,
        }
    }

    #[tokio::test]
    async fn the_budget_is_in_bytes_and_abort_always_takes_effect() {
        let config = ConnectionConfig {
            outbound_budget: 100_000,
            ..ConnectionConfig::default()
        };
        // The peer never reads: after the pipe's 64 KiB, writes block.
        let (client, _server) = pair(&config).await;
        let mut queued = 0;
        loop {
            match client.sender().try_send(&blob(10_000)) {
                Ok(()) => queued += 1,
                Err(NetError::QueueFull) => break,
                Err(e) => panic!("unexpected {e}"),
            }
            assert!(queued < 100, "the budget never filled");
        }
        assert!(client.sender().queued_bytes() > 50_000);
        // Close messages still get in, and abort ends the connection even
        // though the queue is full.
        client.sender().abort();
        tokio::time::timeout(Duration::from_secs(5), client.sender().closed())
            .await
            .expect("abort did not take effect");
        assert!(matches!(
            client.sender().send(&blob(10)).await,
            Err(NetError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_peer_that_reads_nothing_is_dropped_after_the_write_timeout() {
        let config = ConnectionConfig {
            write_timeout: Duration::from_millis(200),
            ..ConnectionConfig::default()
        };
        let (client, _server) = pair(&config).await;
        // Larger than the pipe: the write cannot finish.
        client.send(&blob(200_000)).await.unwrap();
        // A sender waiting for room is woken with an error, not left hanging.
        let waiting = client.sender().clone();
        let big = tokio::spawn(async move {
            let mut result = Ok(());
            for _ in 0..100 {
                result = waiting.send(&blob(500_000)).await;
                if result.is_err() {
                    break;
                }
            }
            result
        });
        tokio::time::timeout(Duration::from_secs(5), client.sender().closed())
            .await
            .expect("the write timeout did not close the connection");
        assert!(big.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_still_passes() {
        let config = ConnectionConfig {
            outbound_budget: 1_000,
            ..ConnectionConfig::default()
        };
        let (client, mut server) = pair(&config).await;
        let big = blob(50_000);
        let reader = tokio::spawn(async move { server.recv().await.unwrap().unwrap().bytes.len() });
        client.send(&big).await.unwrap();
        assert_eq!(reader.await.unwrap(), 50_040);
    }
}
