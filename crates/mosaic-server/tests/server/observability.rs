//! Metrics at `/metrics` and the real client address behind trusted
//! proxies, over real loopback sockets.

use std::net::{IpAddr, SocketAddr};

use mosaic_core::handshake::Hello;
use mosaic_store::Ban;

use super::auth::start_with;
use super::*;

fn counted(key: &SecretKey, t: u64) -> OwnedRecord {
    RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(t).unwrap())
        .nonce(Nonce::from_key(&t.to_be_bytes()))
        .payload(b"counted")
        .build(key)
        .unwrap()
}

/// Sends `bytes`, closes the sending side, and reads the whole answer.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// `GET path` on `addr`: the status line, the headers and the body.
async fn get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let answer = exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

/// The value of the series `name{labels}` as the text prints it, or 0 when
/// it has never been counted.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_a_real_session() {
    let mut config = ServerConfig::default();
    config.limits.max_connections_per_ip = 1;
    let server = start_with(config, |_| {}).await;
    let addr = server.handle.local_addr();
    let mut conn = client(&server).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let records: Vec<_> = (1..=3u64)
        .map(|i| counted(&alice, 1_700_000_000_000_000_000 + i))
        .collect();
    for r in &records {
        assert_eq!(submit(&mut conn, r).await, ResultCode::ACCEPTED);
    }
    assert_eq!(submit(&mut conn, &records[0]).await, ResultCode::DUPLICATE);
    for id in 1..=2u16 {
        conn.send(&Message::Query {
            query_id: QueryId(id),
            limit: 0,
            filter: FilterBuilder::new()
                .authors([alice.public()])
                .build()
                .unwrap(),
        })
        .await
        .unwrap();
        let mut found = 0;
        while let Message::Record { .. } = recv(&mut conn).await {
            found += 1;
        }
        assert_eq!(found, 3);
    }
    // A second connection from the same address is over the limit.
    assert!(
        connect(server.handle.url(), &ConnectOptions::default())
            .await
            .is_err()
    );

    let (status, headers, text) = get(addr, "/metrics").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(
        headers.contains("Content-Type: application/openmetrics-text"),
        "{headers}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    for (series, value) in [
        ("mosaic_connections_open", 1.0),
        ("mosaic_connections_accepted_total{transport=\"ws\"}", 1.0),
        (
            "mosaic_connections_refused_total{reason=\"max_connections_per_ip\"}",
            1.0,
        ),
        (
            "mosaic_messages_received_total{message=\"Submission\"}",
            4.0,
        ),
        ("mosaic_messages_received_total{message=\"Query\"}", 2.0),
        (
            "mosaic_results_sent_total{message=\"Submission Result\",code=\"ACCEPTED\"}",
            3.0,
        ),
        (
            "mosaic_results_sent_total{message=\"Submission Result\",code=\"DUPLICATE\"}",
            1.0,
        ),
        (
            "mosaic_results_sent_total{message=\"Query Closed\",code=\"SUCCESS\"}",
            2.0,
        ),
        // This very request is counted once answered.
        (
            "mosaic_http_requests_total{endpoint=\"metrics\",status=\"200\"}",
            0.0,
        ),
    ] {
        assert_eq!(sample(&text, series), value, "{series} in\n{text}");
    }

    // The status page stays at `/`; both requests are counted.
    let (status, _, body) = get(addr, "/").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["connections"], 1);
    assert_eq!(json["records"], 3);
    assert!(get(addr, "/nothing").await.0.starts_with("HTTP/1.1 404"));
    drop(conn);
    // The closed connection leaves the gauge once the server has seen it go.
    let mut text = String::new();
    for _ in 0..200 {
        text = get(addr, "/metrics").await.2;
        if sample(&text, "mosaic_connections_open") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sample(&text, "mosaic_connections_open"), 0.0, "{text}");
    assert!(
        sample(
            &text,
            "mosaic_http_requests_total{endpoint=\"metrics\",status=\"200\"}"
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &text,
            "mosaic_http_requests_total{endpoint=\"status\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "mosaic_http_requests_total{endpoint=\"other\",status=\"404\"}"
        ),
        1.0
    );
    // The same numbers through the library.
    assert_eq!(
        sample(
            &server.handle.metrics().encode(),
            "mosaic_messages_received_total{message=\"Query\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn metrics_on_a_separate_address() {
    let config = ServerConfig {
        metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServerConfig::default()
    };
    let server = start_with(config, |_| {}).await;
    let metrics_addr = server.handle.metrics_addr().expect("a metrics address");
    assert_ne!(metrics_addr, server.handle.local_addr());
    let _conn = client(&server).await;

    let (status, headers, text) = get(metrics_addr, "/metrics").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(headers.contains("openmetrics-text"), "{headers}");
    assert_eq!(sample(&text, "mosaic_connections_open"), 1.0, "{text}");
    // Only /metrics is served there, and WebSocket clients are turned away.
    assert!(get(metrics_addr, "/").await.0.starts_with("HTTP/1.1 404"));
    let ws = format!("ws://{metrics_addr}/");
    assert!(connect(&ws, &ConnectOptions::default()).await.is_err());
    // The main port keeps the status but no longer serves /metrics.
    assert!(
        get(server.handle.local_addr(), "/metrics")
            .await
            .0
            .starts_with("HTTP/1.1 404")
    );
    assert!(
        get(server.handle.local_addr(), "/")
            .await
            .0
            .starts_with("HTTP/1.1 200")
    );
    server.handle.shutdown().await.unwrap();
}

const BANNED: [u8; 4] = [203, 0, 113, 9];

fn proxy_v1(source: [u8; 4]) -> Vec<u8> {
    let [a, b, c, d] = source;
    format!("PROXY TCP4 {a}.{b}.{c}.{d} 127.0.0.1 4711 8135\r\n").into_bytes()
}

fn proxy_v2(source: [u8; 4]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    h.extend_from_slice(&source);
    h.extend_from_slice(&[127, 0, 0, 1, 0x12, 0x67, 0x1f, 0xc7]);
    h
}

fn forwarded_for(source: [u8; 4]) -> String {
    let [a, b, c, d] = source;
    format!("X-Forwarded-For: 192.0.2.200, {a}.{b}.{c}.{d}\r\n")
}

fn status_request(extra_header: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: x\r\n{extra_header}\r\n").into_bytes()
}

fn upgrade_request(extra_header: &str) -> Vec<u8> {
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: mosaic2025\r\n{extra_header}"
    );
    for (name, value) in Hello::default().to_headers() {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// An upgrade sent raw: the connection and the status line answered.
async fn raw_upgrade(addr: SocketAddr, preamble: &[u8], extra_header: &str) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&[preamble, &upgrade_request(extra_header)].concat())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if tcp.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    (tcp, status)
}

/// Reads the first WebSocket frame of an upgraded raw connection as a
/// message (server frames are unmasked; ours are short).
async fn first_message(tcp: &mut TcpStream) -> Message {
    let mut header = [0u8; 2];
    tcp.read_exact(&mut header).await.unwrap();
    assert_eq!(header[0], 0x82, "a final binary frame");
    assert!(header[1] < 126, "a short frame");
    let mut payload = vec![0u8; usize::from(header[1])];
    tcp.read_exact(&mut payload).await.unwrap();
    Message::decode(&payload).unwrap()
}

#[tokio::test]
async fn trusted_proxies_give_the_client_address() {
    let mut config = ServerConfig {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..ServerConfig::default()
    };
    config.limits.max_connections_per_ip = 1;
    let server = start_with(config, |store| {
        store.ban_ip(IpAddr::from(BANNED), Ban::Permanent).unwrap();
    })
    .await;
    let addr = server.handle.local_addr();

    // The ban follows the address each form names, on the status page...
    assert!(
        exchange(addr, &status_request(""))
            .await
            .starts_with("HTTP/1.1 200")
    );
    for (preamble, header) in [
        (proxy_v1(BANNED), String::new()),
        (proxy_v2(BANNED), String::new()),
        (Vec::new(), forwarded_for(BANNED)),
    ] {
        let answer = exchange(addr, &[preamble, status_request(&header)].concat()).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    }
    // ...and on upgrades: Closing with the ban code.
    for (preamble, header) in [
        (proxy_v1(BANNED), String::new()),
        (proxy_v2(BANNED), String::new()),
        (Vec::new(), forwarded_for(BANNED)),
    ] {
        let (mut tcp, status) = raw_upgrade(addr, &preamble, &header).await;
        assert!(status.starts_with("HTTP/1.1 101"), "{status}");
        assert_eq!(
            first_message(&mut tcp).await,
            Message::Closing {
                code: ResultCode::IP_PERM_BANNED
            }
        );
    }

    // The per-IP limit (1) counts each forwarded address apart.
    let one = [198, 51, 100, 1];
    let (_first, status) = raw_upgrade(addr, &proxy_v1(one), "").await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    for (preamble, header) in [
        (proxy_v1(one), String::new()),
        (proxy_v2(one), String::new()),
        (Vec::new(), forwarded_for(one)),
    ] {
        let (_tcp, status) = raw_upgrade(addr, &preamble, &header).await;
        assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    }
    let (_second, status) = raw_upgrade(addr, &proxy_v2([198, 51, 100, 2]), "").await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let (_third, status) = raw_upgrade(addr, &[], &forwarded_for([198, 51, 100, 3])).await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    // The proxy's own address is not used up by its clients.
    let mut direct = client(&server).await;
    let r = counted(&SecretKey::from_bytes(&[2; 32]), 1_700_000_000_000_000_001);
    assert_eq!(submit(&mut direct, &r).await, ResultCode::ACCEPTED);
    let text = server.handle.metrics().encode();
    assert_eq!(
        sample(
            &text,
            "mosaic_connections_refused_total{reason=\"max_connections_per_ip\"}"
        ),
        3.0,
        "{text}"
    );
}

#[tokio::test]
async fn untrusted_peers_cannot_name_a_client() {
    let config = ServerConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..ServerConfig::default()
    };
    let server = start_with(config, |store| {
        store.ban_ip(IpAddr::from(BANNED), Ban::Permanent).unwrap();
    })
    .await;
    let addr = server.handle.local_addr();
    // A PROXY header from an untrusted peer closes the connection unanswered.
    for preamble in [proxy_v1([192, 0, 2, 1]), proxy_v2([192, 0, 2, 1])] {
        assert_eq!(
            exchange(addr, &[preamble, status_request("")].concat()).await,
            ""
        );
    }
    // X-Forwarded-For from it is ignored: the banned address it names is
    // not the client's.
    let answer = exchange(addr, &status_request(&forwarded_for(BANNED))).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (_tcp, status) = raw_upgrade(addr, &[], &forwarded_for(BANNED)).await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");

    // From a trusted peer, a malformed header is refused cleanly too, and
    // the server goes on.
    let config = ServerConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..ServerConfig::default()
    };
    let server = start_with(config, |_| {}).await;
    let addr = server.handle.local_addr();
    for bad in [
        &b"PROXY TCP4 203.0.113.9 127.0.0.1 4711\r\n"[..],
        b"PROXY TCP6 203.0.113.9 127.0.0.1 1 2\r\n",
        b"PROXY \xff\xfe\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x02ab",
        b"\r\n\r\n\0\r\nQUIT\n\x29\x11\x00\x00",
    ] {
        assert_eq!(
            exchange(addr, &[bad, &status_request("")].concat()).await,
            ""
        );
    }
    let mut conn = client(&server).await;
    let r = counted(&SecretKey::from_bytes(&[3; 32]), 1_700_000_000_000_000_002);
    assert_eq!(submit(&mut conn, &r).await, ResultCode::ACCEPTED);
}
