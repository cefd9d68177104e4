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
use mosaic_core::{MAX_MESSAGE_LEN, Message, MessageError, PublicKey, ResultCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
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
    /// Messages that may wait in the outbound queue. Default 1024. A sender
    /// using [`Sender::try_send`] gets [`NetError::QueueFull`] beyond it.
    pub outbound_queue: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_message_len: MAX_MESSAGE_LEN,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            outbound_queue: 1024,
        }
    }
}

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

enum Outbound {
    Frame(Bytes),
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
        let (tx, rx) = mpsc::channel(config.outbound_queue.max(1));
        let closed = Arc::new(AtomicBool::new(false));
        let info = Arc::new(info);
        tokio::spawn(write_loop(sink, rx, config.ping_interval, closed.clone()));
        let sender = Sender {
            tx,
            closed,
            info: info.clone(),
        };
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
        &self.sender.info
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

/// The sending half of a connection. Clones share one queue.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Outbound>,
    closed: Arc<AtomicBool>,
    info: Arc<ConnectionInfo>,
}

impl Sender {
    /// What is known about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Queues a message, waiting while the queue is full.
    pub async fn send(&self, message: &Message) -> Result<(), NetError> {
        self.send_encoded(message.encode()?).await
    }

    /// Queues already-encoded message bytes, waiting while the queue is full.
    pub async fn send_encoded(&self, frame: Vec<u8>) -> Result<(), NetError> {
        let frame = Bytes::from(frame);
        if self.is_closed() {
            return Err(NetError::Closed);
        }
        self.tx
            .send(Outbound::Frame(frame))
            .await
            .map_err(|_| NetError::Closed)
    }

    /// Queues a message without waiting: [`NetError::QueueFull`] when the
    /// peer has not kept up.
    pub fn try_send(&self, message: &Message) -> Result<(), NetError> {
        self.try_send_encoded(message.encode()?)
    }

    /// Queues already-encoded message bytes without waiting:
    /// [`NetError::QueueFull`] when the peer has not kept up.
    pub fn try_send_encoded(&self, frame: Vec<u8>) -> Result<(), NetError> {
        let frame = Bytes::from(frame);
        if self.is_closed() {
            return Err(NetError::Closed);
        }
        self.tx
            .try_send(Outbound::Frame(frame))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => NetError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => NetError::Closed,
            })
    }

    /// Sends a Closing message with `code` after what is queued, then closes
    /// the connection. Messages sent afterwards are refused.
    pub async fn close(&self, code: ResultCode) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Outbound::Close(Some(code))).await;
        }
    }

    /// Closes the connection at once (for a peer that does not read):
    /// queued messages are dropped and no Closing is sent.
    pub fn abort(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.tx.try_send(Outbound::Close(None));
        }
    }

    /// Whether the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.tx.is_closed()
    }

    /// Waits until the writer has finished (the connection is closed).
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocketStream<BoxedIo>, WsMessage>,
    mut rx: mpsc::Receiver<Outbound>,
    ping_interval: Duration,
    closed: Arc<AtomicBool>,
) {
    let mut ping = tokio::time::interval(ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Frame(bytes)) => {
                    trace!(len = bytes.len(), "send frame");
                    if let Err(e) = sink.send(WsMessage::Binary(bytes)).await {
                        debug!(error = %e, "write failed");
                        break;
                    }
                    ping.reset();
                }
                Some(Outbound::Close(code)) => {
                    if let Some(code) = code
                        && let Ok(bytes) = (Message::Closing { code }).encode()
                    {
                        let _ = sink.send(WsMessage::Binary(Bytes::from(bytes))).await;
                    }
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break;
                }
                None => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break;
                }
            },
            _ = ping.tick() => {
                if sink.send(WsMessage::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    closed.store(true, Ordering::Release);
    let _ = sink.close().await;
    rx.close();
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
                    trace!(len = bytes.len(), "received frame");
                    return Ok(Some(Received { bytes, message }));
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
}
