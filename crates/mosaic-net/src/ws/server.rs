//! The server side: read an HTTP request, then either upgrade it to a Mosaic
//! WebSocket connection or answer it as plain HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use mosaic_core::handshake::{Hello, HelloAck, WEBSOCKET_SUBPROTOCOL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::debug;

use crate::connection::{BoxedIo, Connection, ConnectionConfig, ConnectionInfo, Side};
use crate::error::{NetError, UpgradeError};
use crate::proxy::{IpRange, Prefixed, forwarded_for, is_trusted, read_proxy_header};
use crate::tls::ServerTls;

/// Settings for accepting connections.
#[derive(Debug, Clone)]
pub struct AcceptConfig {
    /// Settings of each accepted connection.
    pub connection: ConnectionConfig,
    /// How long a client has to complete TLS and send its request head.
    /// Default 10 s.
    pub handshake_timeout: Duration,
    /// Largest HTTP request head accepted, and largest PROXY protocol
    /// header. Default 16 KiB.
    pub max_head_len: usize,
    /// The reverse proxies whose word on the client's address is believed:
    /// a PROXY protocol header (v1 or v2, ahead of TLS and HTTP) and the
    /// `X-Forwarded-For` header are taken from these peers only. From any
    /// other peer a PROXY header closes the connection and
    /// `X-Forwarded-For` is ignored. Default: none.
    pub trusted_proxies: Vec<IpRange>,
}

impl Default for AcceptConfig {
    fn default() -> Self {
        AcceptConfig {
            connection: ConnectionConfig::default(),
            handshake_timeout: Duration::from_secs(10),
            max_head_len: 16 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// What a client asked for.
pub enum Incoming {
    /// A Mosaic WebSocket upgrade.
    Upgrade(Upgrade),
    /// A plain HTTP request (no upgrade), such as a status page.
    Http(HttpRequest),
}

impl Incoming {
    /// The client's address: the TCP peer's, or the one a trusted proxy
    /// gave (see [`AcceptConfig::trusted_proxies`]).
    pub fn peer(&self) -> SocketAddr {
        match self {
            Incoming::Upgrade(upgrade) => upgrade.peer,
            Incoming::Http(request) => request.peer,
        }
    }
}

struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Reads the HTTP request on a freshly accepted TCP connection (after TLS when
/// `tls` is given).
///
/// When `peer` is one of [`AcceptConfig::trusted_proxies`], a PROXY protocol
/// header ahead of everything and then the `X-Forwarded-For` header name the
/// client; [`Incoming::peer`] reports it.
pub async fn accept(
    mut tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<&ServerTls>,
    config: &AcceptConfig,
) -> Result<Incoming, NetError> {
    let _ = tcp.set_nodelay(true);
    let trusted = config.trusted_proxies.as_slice();
    let work = async {
        let (proxied, read) =
            read_proxy_header(&mut tcp, peer, trusted, config.max_head_len).await?;
        let tcp = Prefixed::new(read, tcp);
        let io: BoxedIo = match tls {
            Some(tls) => Box::new(
                tokio_rustls::TlsAcceptor::from(tls.current())
                    .accept(tcp)
                    .await?,
            ),
            None => Box::new(tcp),
        };
        let (io, head, leftover) = read_head(io, config.max_head_len).await?;
        Ok::<_, NetError>((io, head, leftover, proxied))
    };
    let (mut io, head, leftover, proxied) = tokio::time::timeout(config.handshake_timeout, work)
        .await
        .map_err(|_| NetError::Timeout {
            doing: "reading the request",
        })??;
    let mut client = proxied.unwrap_or(peer);
    if is_trusted(trusted, client.ip()) {
        let forwarded = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("X-Forwarded-For"))
            .map(|(_, v)| v.as_str());
        client = forwarded_for(forwarded, client, trusted);
    }
    if client != peer {
        debug!(%peer, %client, "client address given by a trusted proxy");
    }
    let peer = client;

    let is_upgrade = head.header_has_token("Upgrade", "websocket");
    if !is_upgrade {
        return Ok(Incoming::Http(HttpRequest {
            io,
            method: head.method,
            path: head.path,
            peer,
        }));
    }
    let key = match validate_upgrade(&head) {
        Ok(key) => key,
        Err(reason) => {
            let body = format!("{reason}\n");
            let _ = respond(&mut io, 400, "text/plain; charset=utf-8", body.as_bytes()).await;
            return Err(NetError::Upgrade(reason));
        }
    };
    let hello = match Hello::from_headers(|name| head.header(name)) {
        Ok(hello) => hello,
        Err(e) => {
            let body = format!("{e}\n");
            let _ = respond(&mut io, 400, "text/plain; charset=utf-8", body.as_bytes()).await;
            return Err(NetError::Handshake(e));
        }
    };
    Ok(Incoming::Upgrade(Upgrade {
        io,
        leftover,
        key,
        hello,
        peer,
        path: head.path,
    }))
}

/// Checks the RFC 6455 and Mosaic requirements of an upgrade; returns the key.
fn validate_upgrade(head: &Head) -> Result<String, UpgradeError> {
    if head.method != "GET" {
        return Err(UpgradeError::NotWebSocket("the method must be GET"));
    }
    if !head.header_has_token("Connection", "upgrade") {
        return Err(UpgradeError::NotWebSocket("no Connection: Upgrade"));
    }
    if head.header("Sec-WebSocket-Version").map(str::trim) != Some("13") {
        return Err(UpgradeError::NotWebSocket(
            "Sec-WebSocket-Version must be 13",
        ));
    }
    let key = head
        .header("Sec-WebSocket-Key")
        .map(|k| k.trim().to_string())
        .ok_or(UpgradeError::NotWebSocket("no Sec-WebSocket-Key"))?;
    if !head.header_has_token("Sec-WebSocket-Protocol", WEBSOCKET_SUBPROTOCOL) {
        return Err(UpgradeError::MissingSubprotocol);
    }
    Ok(key)
}

async fn read_head(mut io: BoxedIo, max: usize) -> Result<(BoxedIo, Head, Vec<u8>), NetError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(NetError::Upgrade(UpgradeError::Incomplete));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = Head {
                    method: req.method.unwrap_or_default().to_string(),
                    path: req.path.unwrap_or_default().to_string(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                };
                let leftover = buf[len..].to_vec();
                return Ok((io, head, leftover));
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > max {
                    let _ = respond(&mut io, 431, "text/plain", b"request head too large\n").await;
                    return Err(NetError::Upgrade(UpgradeError::HeadTooLarge));
                }
            }
            Err(_) => {
                let _ = respond(&mut io, 400, "text/plain", b"malformed request\n").await;
                return Err(NetError::Upgrade(UpgradeError::MalformedRequest));
            }
        }
    }
}

async fn respond(
    io: &mut BoxedIo,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<(), NetError> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    io.write_all(head.as_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await?;
    let _ = io.shutdown().await;
    Ok(())
}

/// A plain HTTP request.
pub struct HttpRequest {
    io: BoxedIo,
    /// The method, such as `GET`.
    pub method: String,
    /// The path, such as `/`.
    pub path: String,
    peer: SocketAddr,
}

impl HttpRequest {
    /// The client's address: the TCP peer's, or the one a trusted proxy
    /// gave (see [`AcceptConfig::trusted_proxies`]).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Answers and closes the connection.
    pub async fn respond(
        mut self,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), NetError> {
        respond(&mut self.io, status, content_type, body).await
    }
}

/// A WebSocket upgrade that asks for Mosaic; the HELLO is read from its
/// headers.
pub struct Upgrade {
    io: BoxedIo,
    leftover: Vec<u8>,
    key: String,
    hello: Hello,
    peer: SocketAddr,
    path: String,
}

impl Upgrade {
    /// The client's HELLO.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The client's address: the TCP peer's, or the one a trusted proxy
    /// gave (see [`AcceptConfig::trusted_proxies`]).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The request path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Completes the upgrade with `ack` in the response headers. A client
    /// that asked to authenticate must then send Hello Auth first; the
    /// caller checks it (see `mosaic_core::handshake::ServerHandshake`).
    pub async fn accept(
        mut self,
        ack: &HelloAck,
        config: &ConnectionConfig,
    ) -> Result<Connection, NetError> {
        let mut head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {}\r\n",
            derive_accept_key(self.key.as_bytes()),
            WEBSOCKET_SUBPROTOCOL
        );
        for (name, value) in ack.to_headers() {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(&value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        self.io.write_all(head.as_bytes()).await?;
        self.io.flush().await?;
        debug!(peer = %self.peer, "websocket upgraded");
        let ws = WebSocketStream::from_partially_read(
            self.io,
            self.leftover,
            Role::Server,
            Some(config.websocket_config()),
        )
        .await;
        let info = ConnectionInfo {
            peer: self.peer,
            version: ack.version,
            features: ack.features_accepted.clone(),
            client_key: None,
            server_key: None,
        };
        Ok(Connection::new(ws, Side::Server, config, info))
    }

    /// Refuses the upgrade with an HTTP status and a short text.
    pub async fn refuse(mut self, status: u16, reason: &str) -> Result<(), NetError> {
        respond(
            &mut self.io,
            status,
            "text/plain; charset=utf-8",
            format!("{reason}\n").as_bytes(),
        )
        .await
    }
}
