//! Integration tests of the WebSocket transport over real loopback sockets.

use std::time::Duration;

use mosaic_core::handshake::{AuthNonce, ServerHandshake};
use mosaic_core::{FilterBuilder, Message, QueryId, ResultCode, SecretKey};
use mosaic_net::{
    AcceptConfig, ClientTls, ConnectOptions, ConnectionConfig, Incoming, NetError, ServerTls,
    accept, connect,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A tiny server: completes the handshake (with Hello Auth when asked),
/// answers `GET /` with a status body, and echoes every message it receives
/// back as Unrecognized or, for Unsubscribe, as Query Closed.
async fn spawn_server(tls: Option<ServerTls>, server_key: SecretKey) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.unwrap();
            let tls = tls.clone();
            let key = server_key.clone();
            tokio::spawn(async move {
                let config = AcceptConfig {
                    connection: ConnectionConfig {
                        max_message_len: 4096,
                        ..ConnectionConfig::default()
                    },
                    ..AcceptConfig::default()
                };
                let incoming = match accept(tcp, peer, tls.as_ref(), &config).await {
                    Ok(i) => i,
                    Err(_) => return,
                };
                let upgrade = match incoming {
                    Incoming::Http(req) => {
                        let _ = req.respond(200, "application/json", b"{\"ok\":true}").await;
                        return;
                    }
                    Incoming::Upgrade(u) => u,
                };
                let mut hs = ServerHandshake::new(key.public(), &[0], &["echo"]);
                let nonce = AuthNonce::random(&mut rand::rng());
                let ack = hs.handle_hello(upgrade.hello(), &key, nonce, None).unwrap();
                let mut conn = upgrade.accept(&ack, &config.connection).await.unwrap();
                while let Ok(Some(received)) = conn.recv().await {
                    let reply = match received.message {
                        Ok(Message::HelloAuth { signature }) => {
                            match hs.handle_hello_auth(&signature) {
                                Ok(_) => Message::HelloAck {
                                    code: ResultCode::SUCCESS,
                                    version: 0,
                                    applications: vec![],
                                },
                                Err(_) => {
                                    conn.close(ResultCode::UNAUTHORIZED).await;
                                    return;
                                }
                            }
                        }
                        Ok(Message::Unsubscribe { query_id }) => Message::QueryClosed {
                            query_id,
                            code: ResultCode::SUCCESS,
                        },
                        _ => Message::Unrecognized,
                    };
                    if conn.send(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/")
}

#[tokio::test]
async fn messages_flow_both_ways() {
    let key = SecretKey::from_bytes(&[1; 32]);
    let addr = spawn_server(None, key.clone()).await;
    let mut conn = connect(&url(addr), &ConnectOptions::default())
        .await
        .unwrap();
    conn.send(&Message::Unsubscribe {
        query_id: QueryId(7),
    })
    .await
    .unwrap();
    let got = conn.recv().await.unwrap().unwrap().message.unwrap();
    assert_eq!(
        got,
        Message::QueryClosed {
            query_id: QueryId(7),
            code: ResultCode::SUCCESS
        }
    );
    let filter = FilterBuilder::new().build().unwrap();
    conn.send(&Message::Query {
        query_id: QueryId(1),
        limit: 1,
        filter,
    })
    .await
    .unwrap();
    assert_eq!(
        conn.recv().await.unwrap().unwrap().message.unwrap(),
        Message::Unrecognized
    );
}

#[tokio::test]
async fn server_key_is_checked_and_client_authenticates() {
    let key = SecretKey::from_bytes(&[1; 32]);
    let addr = spawn_server(None, key.clone()).await;
    let client_key = SecretKey::from_bytes(&[2; 32]);
    let options = ConnectOptions {
        expected_server: Some(key.public()),
        client_key: Some(client_key.clone()),
        ..ConnectOptions::default()
    };
    let conn = connect(&url(addr), &options).await.unwrap();
    assert_eq!(conn.info().client_key, Some(client_key.public()));
    assert_eq!(conn.info().server_key, Some(key.public()));

    // Expecting another key: the server cannot prove it.
    let other = SecretKey::from_bytes(&[3; 32]).public();
    let options = ConnectOptions {
        expected_server: Some(other),
        ..ConnectOptions::default()
    };
    assert!(matches!(
        connect(&url(addr), &options).await,
        Err(NetError::Handshake(_))
    ));
}

#[tokio::test]
async fn plain_http_and_bad_upgrades() {
    let key = SecretKey::from_bytes(&[1; 32]);
    let addr = spawn_server(None, key).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.ends_with("{\"ok\":true}"));

    // An upgrade without the mosaic2025 subprotocol is refused (D-2).
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 400"), "{body}");

    // Garbage instead of HTTP.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"\x00\x01\x02garbage\r\n\r\n").await.unwrap();
    let mut body = String::new();
    let _ = tcp.read_to_string(&mut body).await;
    assert!(body.starts_with("HTTP/1.1 400"), "{body}");
}

#[tokio::test]
async fn oversized_frames_end_the_connection_with_closing() {
    let key = SecretKey::from_bytes(&[1; 32]);
    let addr = spawn_server(None, key).await;
    let mut conn = connect(&url(addr), &ConnectOptions::default())
        .await
        .unwrap();
    // The test server accepts at most 4096 bytes.
    let blob = vec![7u8; 5000];
    conn.send(&Message::BlobSubmission {
        hash: mosaic_core::blob_hash(&blob),
        data: blob,
    })
    .await
    .unwrap();
    let got = conn.recv().await.unwrap().unwrap().message.unwrap();
    assert_eq!(
        got,
        Message::Closing {
            code: ResultCode::TOO_LARGE
        }
    );
    assert!(conn.recv().await.unwrap().is_none());
}

#[tokio::test]
async fn server_messages_from_a_client_are_refused() {
    let key = SecretKey::from_bytes(&[1; 32]);
    let addr = spawn_server(None, key).await;
    let mut conn = connect(&url(addr), &ConnectOptions::default())
        .await
        .unwrap();
    let (sender, mut receiver) = {
        let c = conn;
        c.split()
    };
    // Send raw bytes of a server message (Locally Complete).
    let bytes = Message::LocallyComplete {
        query_id: QueryId(1),
    }
    .encode()
    .unwrap();
    sender.send_encoded(bytes).await.unwrap();
    let got = receiver.recv().await.unwrap().unwrap().message.unwrap();
    assert_eq!(
        got,
        Message::Closing {
            code: ResultCode::INVALID
        }
    );
    conn = {
        // Reconnect to show the server keeps serving others.
        connect(&url(addr), &ConnectOptions::default())
            .await
            .unwrap()
    };
    conn.send(&Message::Unsubscribe {
        query_id: QueryId(2),
    })
    .await
    .unwrap();
    assert!(conn.recv().await.unwrap().is_some());
}

#[tokio::test]
async fn undecodable_frames_are_handed_over() {
    let key = SecretKey::from_bytes(&[1; 32]);
    let addr = spawn_server(None, key).await;
    let conn = connect(&url(addr), &ConnectOptions::default())
        .await
        .unwrap();
    let (sender, mut receiver) = conn.split();
    // An unknown message type: the server receives it as a decode error and
    // answers Unrecognized; the connection goes on.
    sender
        .send_encoded(vec![0x7f, 8, 0, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let got = receiver.recv().await.unwrap().unwrap().message.unwrap();
    assert_eq!(got, Message::Unrecognized);
}

#[tokio::test]
async fn wss_with_a_private_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key_pem = cert.signing_key.serialize_pem();
    let tls = ServerTls::from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), "cert", "key").unwrap();
    let key = SecretKey::from_bytes(&[1; 32]);
    let addr = spawn_server(Some(tls), key.clone()).await;
    let options = ConnectOptions {
        tls: Some(ClientTls::with_roots(cert_pem.as_bytes(), "cert").unwrap()),
        expected_server: Some(key.public()),
        ..ConnectOptions::default()
    };
    let url = format!("wss://localhost:{}/", addr.port());
    let mut conn = connect(&url, &options).await.unwrap();
    conn.send(&Message::Unsubscribe {
        query_id: QueryId(3),
    })
    .await
    .unwrap();
    assert!(conn.recv().await.unwrap().is_some());

    // Without trusting the certificate, the connection fails.
    let options = ConnectOptions {
        timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    assert!(connect(&url, &options).await.is_err());
}

/// Answers every plain HTTP request with the client address `accept` saw.
async fn spawn_echo_peer(
    tls: Option<ServerTls>,
    trusted: &[&str],
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = AcceptConfig {
        trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
        handshake_timeout: Duration::from_secs(5),
        ..AcceptConfig::default()
    };
    let (errors, errors_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.unwrap();
            match accept(tcp, peer, tls.as_ref(), &config).await {
                Ok(Incoming::Http(request)) => {
                    let body = request.peer().to_string();
                    let _ = request.respond(200, "text/plain", body.as_bytes()).await;
                }
                Ok(Incoming::Upgrade(upgrade)) => {
                    let body = upgrade.peer().to_string();
                    let _ = upgrade.refuse(409, &body).await;
                }
                Err(e) => {
                    let _ = errors.send(e.to_string());
                }
            }
        }
    });
    (addr, errors_rx)
}

/// Sends `bytes`, closes the sending side, and reads everything the server
/// answers.
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn proxy_v2(source: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    h.extend_from_slice(&source);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&8135u16.to_be_bytes());
    h
}

#[tokio::test]
async fn trusted_proxies_name_the_client() {
    let (addr, _errors) = spawn_echo_peer(None, &["127.0.0.0/8"]).await;
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let direct = exchange(addr, get).await;
    assert!(direct.contains("\r\n\r\n127.0.0.1:"), "{direct}");
    assert!(!direct.ends_with(":0"), "{direct}");
    let v1 = exchange(
        addr,
        &[&b"PROXY TCP4 203.0.113.9 127.0.0.1 4711 8135\r\n"[..], get].concat(),
    )
    .await;
    assert!(v1.ends_with("\r\n\r\n203.0.113.9:4711"), "{v1}");
    let v2 = exchange(
        addr,
        &[proxy_v2([198, 51, 100, 7], 99), get.to_vec()].concat(),
    )
    .await;
    assert!(v2.ends_with("\r\n\r\n198.51.100.7:99"), "{v2}");
    // X-Forwarded-For: the rightmost address that is not a trusted proxy,
    // on plain requests and upgrades alike.
    let xff = exchange(
        addr,
        b"GET / HTTP/1.1\r\nX-Forwarded-For: 192.0.2.1, 203.0.113.5, 127.0.0.9\r\n\r\n",
    )
    .await;
    assert!(xff.ends_with("\r\n\r\n203.0.113.5:0"), "{xff}");
    let upgrade = exchange(
        addr,
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mosaic2025\r\n\
          X-Forwarded-For: 203.0.113.77\r\n\r\n",
    )
    .await;
    assert!(upgrade.starts_with("HTTP/1.1 409"), "{upgrade}");
    assert!(upgrade.ends_with("\r\n\r\n203.0.113.77:0\n"), "{upgrade}");
    // A PROXY header naming a trusted proxy, then X-Forwarded-For.
    let both = exchange(
        addr,
        &[
            &b"PROXY TCP4 127.0.0.5 127.0.0.1 1 2\r\n"[..],
            b"GET / HTTP/1.1\r\nX-Forwarded-For: 203.0.113.6\r\n\r\n",
        ]
        .concat(),
    )
    .await;
    assert!(both.ends_with("\r\n\r\n203.0.113.6:0"), "{both}");
}

#[tokio::test]
async fn untrusted_peers_and_malformed_headers_are_refused() {
    let (addr, mut errors) = spawn_echo_peer(None, &["10.0.0.0/8"]).await;
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // From an untrusted peer: the PROXY header closes the connection with
    // no answer, and X-Forwarded-For is ignored.
    for header in [
        b"PROXY TCP4 203.0.113.9 127.0.0.1 4711 8135\r\n".to_vec(),
        proxy_v2([203, 0, 113, 9], 1),
    ] {
        assert_eq!(exchange(addr, &[header, get.to_vec()].concat()).await, "");
        let error = errors.recv().await.unwrap();
        assert!(error.contains("not a trusted proxy"), "{error}");
    }
    let xff = exchange(
        addr,
        b"GET / HTTP/1.1\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n",
    )
    .await;
    assert!(xff.contains("\r\n\r\n127.0.0.1:"), "{xff}");

    let (addr, mut errors) = spawn_echo_peer(None, &["127.0.0.1"]).await;
    for bad in [
        &b"PROXY TCP4 203.0.113.9 127.0.0.1 4711\r\nGET / HTTP/1.1\r\n\r\n"[..],
        b"PROXY TCP4 999.0.113.9 127.0.0.1 4711 1\r\n",
        &[b"PROXY ".as_slice(), &[b'x'; 300]].concat(),
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x04abcd",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff",
        b"PROXY TCP4 203.0.113.9",
    ] {
        assert_eq!(exchange(addr, bad).await, "", "{bad:?}");
        let error = errors.recv().await.unwrap();
        assert!(error.contains("PROXY protocol header"), "{error}");
    }
    // The listener still answers.
    assert!(exchange(addr, get).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_proxy_header_comes_before_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key_pem = cert.signing_key.serialize_pem();
    let tls = ServerTls::from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), "cert", "key").unwrap();
    let (addr, _errors) = spawn_echo_peer(Some(tls), &["127.0.0.1"]).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&proxy_v2([198, 51, 100, 8], 7))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.ends_with("\r\n\r\n198.51.100.8:7"), "{answer}");
}

#[tokio::test]
async fn a_replaced_certificate_serves_new_connections() {
    let first = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let second = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem =
        |c: &rcgen::CertifiedKey<rcgen::KeyPair>| (c.cert.pem(), c.signing_key.serialize_pem());
    let (cert1, key1) = pem(&first);
    let (cert2, key2) = pem(&second);
    let tls = ServerTls::from_pem(cert1.as_bytes(), key1.as_bytes(), "cert1", "key1").unwrap();
    let key = SecretKey::from_bytes(&[1; 32]);
    let addr = spawn_server(Some(tls.clone()), key.clone()).await;
    let url = format!("wss://localhost:{}/", addr.port());
    let trusting = |cert: &str| ConnectOptions {
        tls: Some(ClientTls::with_roots(cert.as_bytes(), "cert").unwrap()),
        expected_server: Some(key.public()),
        timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    let mut old = connect(&url, &trusting(&cert1)).await.unwrap();
    assert!(connect(&url, &trusting(&cert2)).await.is_err());

    let replacement =
        ServerTls::from_pem(cert2.as_bytes(), key2.as_bytes(), "cert2", "key2").unwrap();
    tls.replace(&replacement);
    connect(&url, &trusting(&cert2)).await.unwrap();
    assert!(connect(&url, &trusting(&cert1)).await.is_err());
    // The connection made before the swap goes on.
    old.send(&Message::Unsubscribe {
        query_id: QueryId(4),
    })
    .await
    .unwrap();
    assert!(old.recv().await.unwrap().is_some());
}
