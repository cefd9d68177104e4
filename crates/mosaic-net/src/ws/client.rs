//! The client side: connect, upgrade with the HELLO in the request headers,
//! check the HELLO ACK (and the server's proof of its key), and authenticate
//! with Hello Auth when asked to.

use std::time::Duration;

use mosaic_core::handshake::{ClientHandshake, ClientNext, Hello, HelloAck, WEBSOCKET_SUBPROTOCOL};
use mosaic_core::{Message, PublicKey, ResultCode, SecretKey, Url};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tracing::debug;

use crate::connection::{BoxedIo, Connection, ConnectionConfig, ConnectionInfo, Side};
use crate::error::{NetError, UpgradeError};
use crate::tls::ClientTls;

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The HELLO to send (versions, features; `authenticate_as` is set from
    /// `client_key`).
    pub hello: Hello,
    /// The server's key, when known: the server must then prove it (D-3) or
    /// the connection is refused.
    pub expected_server: Option<PublicKey>,
    /// The key to authenticate as (D-4), if any.
    pub client_key: Option<SecretKey>,
    /// TLS trust for `wss`; `None` uses the Mozilla roots.
    pub tls: Option<ClientTls>,
    /// Settings of the connection.
    pub connection: ConnectionConfig,
    /// Limit on connecting, TLS and the handshake together. Default 15 s.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            hello: Hello::default(),
            expected_server: None,
            client_key: None,
            tls: None,
            connection: ConnectionConfig::default(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Where to connect, from a `ws://`, `wss://` or `mosaicwss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse_target(url: &str) -> Result<Target, NetError> {
    let bad = |reason| NetError::BadTarget {
        url: url.to_string(),
        reason,
    };
    if url.starts_with("mosaicwss://") {
        let parsed = Url::parse(url).map_err(|_| bad("not a valid Mosaic URL"))?;
        let uri = parsed.websocket_uri().ok_or(bad("not a WebSocket URL"))?;
        return parse_target(&uri);
    }
    let (tls, rest) = if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else {
        return Err(bad("the scheme must be ws, wss or mosaicwss"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or(bad("unclosed IPv6 bracket"))?;
        let port = &v6[end + 1..];
        (v6[..end].to_string(), port.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad("bad port"))?,
        None if tls => 443,
        None => 80,
    };
    Ok(Target {
        tls,
        host,
        port,
        path: path.to_string(),
    })
}

/// Connects to a Mosaic server over WebSocket and completes the HELLO
/// exchange (and Hello Auth when `client_key` is given).
///
/// `url` is `ws://host:port/` (plain, for loopback and reverse proxies),
/// `wss://host[:port]/` or `mosaicwss://host[:port]/`.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Connection, NetError> {
    tokio::time::timeout(options.timeout, connect_inner(url, options))
        .await
        .map_err(|_| NetError::Timeout {
            doing: "connecting",
        })?
}

async fn connect_inner(url: &str, options: &ConnectOptions) -> Result<Connection, NetError> {
    let target = parse_target(url)?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr()?;
    let io: BoxedIo = if target.tls {
        let tls = match &options.tls {
            Some(tls) => tls.clone(),
            None => ClientTls::webpki_roots()?,
        };
        let name = rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|_| {
            NetError::BadTarget {
                url: url.to_string(),
                reason: "the host is not a valid TLS server name",
            }
        })?;
        Box::new(
            tokio_rustls::TlsConnector::from(tls.0)
                .connect(name, tcp)
                .await?,
        )
    } else {
        Box::new(tcp)
    };

    let mut hello = options.hello.clone();
    hello.authenticate_as = options.client_key.as_ref().map(SecretKey::public);
    let mut handshake = {
        let mut rng = rand::rng();
        ClientHandshake::new(hello, options.expected_server, &mut rng)
    };

    let host_port = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let scheme = if target.tls { "wss" } else { "ws" };
    let mut request = format!("{scheme}://{host_port}{}", target.path)
        .into_client_request()
        .map_err(NetError::from)?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(WEBSOCKET_SUBPROTOCOL),
    );
    for (name, value) in handshake.hello().to_headers() {
        let value = HeaderValue::from_str(&value).map_err(|_| NetError::BadTarget {
            url: url.to_string(),
            reason: "a HELLO header value is not valid HTTP",
        })?;
        headers.insert(name, value);
    }

    let (ws, response) = tokio_tungstenite::client_async_with_config(
        request,
        io,
        Some(options.connection.websocket_config()),
    )
    .await
    .map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            NetError::Upgrade(UpgradeError::Refused {
                status: resp.status().as_u16(),
            })
        }
        other => NetError::from(other),
    })?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    if header("Sec-WebSocket-Protocol").map(str::trim) != Some(WEBSOCKET_SUBPROTOCOL) {
        return Err(NetError::Upgrade(UpgradeError::MissingSubprotocol));
    }
    let ack = HelloAck::from_headers(header)?;
    let next = handshake.handle_hello_ack(&ack, options.client_key.as_ref())?;
    let info = ConnectionInfo {
        peer,
        version: ack.version,
        features: ack.features_accepted.clone(),
        client_key: match next {
            ClientNext::SendHelloAuth(_) => options.client_key.as_ref().map(SecretKey::public),
            ClientNext::Ready => None,
        },
        server_key: options.expected_server,
    };
    let mut connection = Connection::new(ws, Side::Client, &options.connection, info);
    if let ClientNext::SendHelloAuth(signature) = next {
        connection.send(&Message::HelloAuth { signature }).await?;
        match connection.recv().await? {
            Some(received) => match received.message {
                Ok(Message::HelloAck { code, .. }) if code == ResultCode::SUCCESS => {}
                Ok(Message::Closing { code }) => {
                    debug!(%code, "authentication refused");
                    return Err(NetError::AuthenticationRefused { code });
                }
                _ => {
                    connection.close(ResultCode::INVALID).await;
                    return Err(NetError::Handshake(
                        mosaic_core::handshake::HandshakeError::OutOfOrder {
                            step: "answer to Hello Auth",
                        },
                    ));
                }
            },
            None => return Err(NetError::Closed),
        }
    }
    debug!(%peer, version = ack.version, "connected");
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("ws://127.0.0.1:1234/").unwrap(),
            Target {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1234,
                path: "/".into()
            }
        );
        assert_eq!(parse_target("wss://example.com").unwrap().port, 443);
        assert_eq!(parse_target("ws://[::1]:9/").unwrap().host, "::1");
        let t = parse_target("mosaicwss://example.com/").unwrap();
        assert!(t.tls);
        assert_eq!(t.port, 443);
        assert!(parse_target("http://x/").is_err());
        assert!(parse_target("ws://:80/").is_err());
        assert!(parse_target("ws://h:99999/").is_err());
    }
}
