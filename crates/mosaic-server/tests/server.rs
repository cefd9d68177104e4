//! Integration tests of the server over real loopback sockets, driven by the
//! `mosaic-net` client.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mosaic_core::{
    DuplicateHandling, FilterBuilder, IdPrefix, Kind, KindFlags, Message, Nonce, OwnedFilter,
    OwnedRecord, QueryId, ReadAccess, RecordBuilder, Reference, ResultCode, SecretKey, Timestamp,
};
use mosaic_net::{ConnectOptions, Connection, ConnectionConfig, connect};
use mosaic_server::{Server, ServerConfig, ServerHandle};
use mosaic_store::{Store, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "server/admin.rs"]
mod admin;
#[path = "server/auth.rs"]
mod auth;
#[path = "server/faults.rs"]
mod faults;
#[path = "server/load.rs"]
mod load;
#[path = "server/observability.rs"]
mod observability;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mosaic-server-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct TestServer {
    handle: ServerHandle,
    _dir: TempDir,
}

async fn start(config: ServerConfig) -> TestServer {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.0.join("store"), StoreConfig::default()).unwrap());
    let handle = Server::start_for_tests(config, SecretKey::from_bytes(&[9; 32]), store)
        .await
        .unwrap();
    TestServer { handle, _dir: dir }
}

async fn client(server: &TestServer) -> Connection {
    connect(server.handle.url(), &ConnectOptions::default())
        .await
        .unwrap()
}

async fn client_as(server: &TestServer, key: &SecretKey) -> Connection {
    let options = ConnectOptions {
        client_key: Some(key.clone()),
        expected_server: Some(server.handle.public_key()),
        ..ConnectOptions::default()
    };
    connect(server.handle.url(), &options).await.unwrap()
}

async fn recv(conn: &mut Connection) -> Message {
    tokio::time::timeout(Duration::from_secs(10), conn.recv())
        .await
        .expect("no answer within 10 s")
        .unwrap()
        .expect("connection closed")
        .message
        .unwrap()
}

const MICROBLOG: Kind = Kind::MICROBLOG_ROOT;

fn kind(duplicates: DuplicateHandling, access: ReadAccess) -> Kind {
    Kind::from_parts(99, 7, KindFlags::from_parts(duplicates, access, false))
}

fn record(key: &SecretKey, kind: Kind, t: u64, payload: &[u8]) -> OwnedRecord {
    RecordBuilder::new(kind, Timestamp::from_nanos(t).unwrap())
        .nonce(Nonce::from_key(&t.to_be_bytes()))
        .payload(payload)
        .build(key)
        .unwrap()
}

async fn submit(conn: &mut Connection, r: &OwnedRecord) -> ResultCode {
    conn.send(&Message::Submission { record: r.clone() })
        .await
        .unwrap();
    match recv(conn).await {
        Message::SubmissionResult { code, id_prefix } => {
            assert_eq!(id_prefix, IdPrefix::from_id(&r.id()));
            code
        }
        other => panic!("expected a Submission Result, got {other:?}"),
    }
}

/// Runs a query and collects the records until Query Closed.
async fn query(
    conn: &mut Connection,
    id: u16,
    limit: u16,
    filter: OwnedFilter,
) -> (Vec<OwnedRecord>, ResultCode) {
    conn.send(&Message::Query {
        query_id: QueryId(id),
        limit,
        filter,
    })
    .await
    .unwrap();
    let mut records = Vec::new();
    loop {
        match recv(conn).await {
            Message::Record { query_id, record } => {
                assert_eq!(query_id, QueryId(id));
                records.push(record);
            }
            Message::QueryClosed { query_id, code } => {
                assert_eq!(query_id, QueryId(id));
                return (records, code);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn by_author(key: &SecretKey) -> OwnedFilter {
    FilterBuilder::new()
        .authors([key.public()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn submissions_queries_and_gets() {
    let server = start(ServerConfig::default()).await;
    let mut conn = client(&server).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let records: Vec<_> = (1..=5u64)
        .map(|i| record(&alice, MICROBLOG, 1_700_000_000_000_000_000 + i, b"post"))
        .collect();
    for r in &records {
        assert_eq!(submit(&mut conn, r).await, ResultCode::ACCEPTED);
    }
    assert_eq!(submit(&mut conn, &records[0]).await, ResultCode::DUPLICATE);

    // Newest first, and LIMIT is honoured.
    let (got, code) = query(&mut conn, 1, 0, by_author(&alice)).await;
    assert_eq!(code, ResultCode::SUCCESS);
    let ts: Vec<u64> = got.iter().map(|r| r.timestamp().as_nanos() % 10).collect();
    assert_eq!(ts, vec![5, 4, 3, 2, 1]);
    let (got, _) = query(&mut conn, 2, 2, by_author(&alice)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], records[4]);

    // Get by id and by address.
    conn.send(&Message::Get {
        query_id: QueryId(3),
        references: vec![
            Reference::Id(records[1].id()),
            Reference::Address(records[2].address()),
        ],
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut conn).await,
        Message::Record {
            query_id: QueryId(3),
            record: records[1].clone()
        }
    );
    assert_eq!(
        recv(&mut conn).await,
        Message::Record {
            query_id: QueryId(3),
            record: records[2].clone()
        }
    );
    assert_eq!(
        recv(&mut conn).await,
        Message::QueryClosed {
            query_id: QueryId(3),
            code: ResultCode::SUCCESS
        }
    );
    // A Get for something absent.
    let missing = record(&alice, MICROBLOG, 42, b"never sent");
    conn.send(&Message::Get {
        query_id: QueryId(4),
        references: vec![Reference::Id(missing.id())],
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut conn).await,
        Message::QueryClosed {
            query_id: QueryId(4),
            code: ResultCode::NOT_FOUND
        }
    );

    // An open filter is refused unless configured (D-6).
    let (got, code) = query(&mut conn, 5, 0, OwnedFilter::empty()).await;
    assert!(got.is_empty());
    assert_eq!(code, ResultCode::TOO_OPEN);

    // An invalid record: its signature no longer verifies.
    let mut bytes = records[0].as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mut frame = vec![0x05, 0, 0, 0, 0, 0, 0, 0];
    frame.extend_from_slice(&bytes);
    let len = frame.len() as u32;
    frame[1..4].copy_from_slice(&len.to_le_bytes()[..3]);
    let (sender, mut receiver) = conn.split();
    sender.send_encoded(frame).await.unwrap();
    let answer = receiver.recv().await.unwrap().unwrap().message.unwrap();
    assert!(matches!(
        answer,
        Message::SubmissionResult {
            code: ResultCode::INVALID,
            ..
        }
    ));
    server.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn replaceable_records_keep_the_newest() {
    let server = start(ServerConfig::default()).await;
    let mut conn = client(&server).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let k = kind(DuplicateHandling::Replaceable, ReadAccess::Everybody);
    let make = |t: u64| {
        RecordBuilder::new(k, Timestamp::from_nanos(t).unwrap())
            .nonce(Nonce::from_key(b"slot"))
            .payload(b"v")
            .build(&alice)
            .unwrap()
    };
    assert_eq!(submit(&mut conn, &make(20)).await, ResultCode::ACCEPTED);
    assert_eq!(submit(&mut conn, &make(10)).await, ResultCode::DUPLICATE);
    assert_eq!(submit(&mut conn, &make(30)).await, ResultCode::ACCEPTED);
    let (got, _) = query(&mut conn, 1, 0, by_author(&alice)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp().as_nanos(), 30);
}

#[tokio::test]
async fn subscriptions_deliver_stored_then_live_records() {
    let server = start(ServerConfig::default()).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let mut writer = client(&server).await;
    let old = record(&alice, MICROBLOG, 100, b"old");
    assert_eq!(submit(&mut writer, &old).await, ResultCode::ACCEPTED);

    let mut reader = client(&server).await;
    reader
        .send(&Message::Subscribe {
            query_id: QueryId(7),
            limit: 0,
            filter: by_author(&alice),
        })
        .await
        .unwrap();
    assert_eq!(
        recv(&mut reader).await,
        Message::Record {
            query_id: QueryId(7),
            record: old.clone()
        }
    );
    assert_eq!(
        recv(&mut reader).await,
        Message::LocallyComplete {
            query_id: QueryId(7)
        }
    );
    // The same query id again is refused while open.
    reader
        .send(&Message::Subscribe {
            query_id: QueryId(7),
            limit: 0,
            filter: by_author(&alice),
        })
        .await
        .unwrap();
    assert_eq!(
        recv(&mut reader).await,
        Message::QueryClosed {
            query_id: QueryId(7),
            code: ResultCode::INVALID
        }
    );

    let new = record(&alice, MICROBLOG, 200, b"new");
    assert_eq!(submit(&mut writer, &new).await, ResultCode::ACCEPTED);
    assert_eq!(
        recv(&mut reader).await,
        Message::Record {
            query_id: QueryId(7),
            record: new.clone()
        }
    );
    // A record of someone else does not match.
    let bob = SecretKey::from_bytes(&[2; 32]);
    assert_eq!(
        submit(&mut writer, &record(&bob, MICROBLOG, 300, b"bob")).await,
        ResultCode::ACCEPTED
    );
    reader
        .send(&Message::Unsubscribe {
            query_id: QueryId(7),
        })
        .await
        .unwrap();
    assert_eq!(
        recv(&mut reader).await,
        Message::QueryClosed {
            query_id: QueryId(7),
            code: ResultCode::SUCCESS
        }
    );
    // After Unsubscribe nothing more arrives.
    assert_eq!(
        submit(&mut writer, &record(&alice, MICROBLOG, 400, b"later")).await,
        ResultCode::ACCEPTED
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), reader.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn ephemeral_records_reach_live_subscribers_only() {
    let server = start(ServerConfig::default()).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let k = kind(DuplicateHandling::Ephemeral, ReadAccess::Everybody);
    let mut writer = client(&server).await;
    assert_eq!(
        submit(&mut writer, &record(&alice, k, 1, b"nobody listens")).await,
        ResultCode::NO_CONSUMERS
    );
    let mut reader = client(&server).await;
    reader
        .send(&Message::Subscribe {
            query_id: QueryId(1),
            limit: 0,
            filter: FilterBuilder::new().kinds([k]).build().unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(
        recv(&mut reader).await,
        Message::LocallyComplete {
            query_id: QueryId(1)
        }
    );
    let e = record(&alice, k, 2, b"hello");
    assert_eq!(submit(&mut writer, &e).await, ResultCode::ACCEPTED);
    assert_eq!(
        recv(&mut reader).await,
        Message::Record {
            query_id: QueryId(1),
            record: e
        }
    );
    // Never stored.
    let (got, _) = query(
        &mut writer,
        2,
        0,
        FilterBuilder::new().kinds([k]).build().unwrap(),
    )
    .await;
    assert!(got.is_empty());
}

#[tokio::test]
async fn private_records_are_served_only_to_their_readers() {
    let server = start(ServerConfig::default()).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let private = kind(DuplicateHandling::Unique, ReadAccess::AuthorOnly);
    let mut anon = client(&server).await;
    let secret = record(&alice, private, 10, b"diary");
    let public = record(&alice, MICROBLOG, 11, b"hello");
    assert_eq!(submit(&mut anon, &secret).await, ResultCode::ACCEPTED);
    assert_eq!(submit(&mut anon, &public).await, ResultCode::ACCEPTED);

    // Anonymous: the public record only; a Get for the private id finds
    // nothing.
    let (got, _) = query(&mut anon, 1, 0, by_author(&alice)).await;
    assert_eq!(got, vec![public.clone()]);
    anon.send(&Message::Get {
        query_id: QueryId(2),
        references: vec![Reference::Id(secret.id())],
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut anon).await,
        Message::QueryClosed {
            query_id: QueryId(2),
            code: ResultCode::NOT_FOUND
        }
    );

    // Authenticated as the author: both.
    let mut own = client_as(&server, &alice).await;
    let (got, _) = query(&mut own, 1, 0, by_author(&alice)).await;
    assert_eq!(got, vec![public, secret]);
}

#[tokio::test]
async fn from_author_records_need_the_authenticated_author() {
    let server = start(ServerConfig::default()).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let r = RecordBuilder::new(MICROBLOG, Timestamp::from_nanos(5).unwrap())
        .nonce(Nonce::from_key(b"fa"))
        .payload(b"signed and sent by me")
        .from_author(true)
        .build(&alice)
        .unwrap();
    let mut anon = client(&server).await;
    assert_eq!(
        submit(&mut anon, &r).await,
        ResultCode::REQUIRES_AUTHENTICATION
    );
    let mut own = client_as(&server, &alice).await;
    assert_eq!(submit(&mut own, &r).await, ResultCode::ACCEPTED);
}

#[tokio::test]
async fn blobs_and_dht_lookups() {
    let server = start(ServerConfig::default()).await;
    let mut conn = client(&server).await;
    let data = b"a small picture".to_vec();
    let hash = mosaic_core::blob_hash(&data);
    conn.send(&Message::blob_submission(data.clone()))
        .await
        .unwrap();
    assert_eq!(
        recv(&mut conn).await,
        Message::BlobSubmissionResult {
            code: ResultCode::ACCEPTED,
            hash
        }
    );
    conn.send(&Message::BlobGet { hash }).await.unwrap();
    assert_eq!(recv(&mut conn).await, Message::blob_found(data));
    conn.send(&Message::BlobGet { hash: [7; 32] })
        .await
        .unwrap();
    assert!(matches!(
        recv(&mut conn).await,
        Message::BlobResult {
            code: ResultCode::NOT_FOUND,
            ..
        }
    ));
    let key = SecretKey::from_bytes(&[1; 32]).public();
    conn.send(&Message::DhtLookup {
        query_id: QueryId(1),
        target: mosaic_core::DhtTarget::User,
        public_key: key,
    })
    .await
    .unwrap();
    assert!(matches!(
        recv(&mut conn).await,
        Message::DhtResponse {
            code: ResultCode::NOT_FOUND,
            ..
        }
    ));
}

#[tokio::test]
async fn status_page() {
    let server = start(ServerConfig::default()).await;
    let _conn = client(&server).await;
    let mut tcp = TcpStream::connect(server.handle.local_addr())
        .await
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let status: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        status["server_key"],
        server.handle.public_key().to_server_printable()
    );
    assert_eq!(status["connections"], 1);
    assert!(status["uptime_s"].is_u64());
    assert_eq!(status["records"], 0);
    assert!(status["version"].is_string());
}

/// The well-behaved client still gets its submissions accepted.
async fn still_served(good: &mut Connection, key: &SecretKey, t: &mut u64) {
    *t += 1;
    let r = record(key, MICROBLOG, *t, b"still here");
    assert_eq!(submit(good, &r).await, ResultCode::ACCEPTED);
}

#[tokio::test]
async fn bad_input_never_stops_the_server() {
    let mut config = ServerConfig::default();
    config.limits.submissions_per_second = 10;
    config.limits.submission_burst = 100;
    let server = start(config).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let mut good = client(&server).await;
    let mut t = 1_000;

    // Random bytes instead of HTTP.
    let mut tcp = TcpStream::connect(server.handle.local_addr())
        .await
        .unwrap();
    tcp.write_all(&[0xde, 0xad, 0xbe, 0xef, 13, 10, 13, 10])
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tcp.read_to_end(&mut sink).await;
    still_served(&mut good, &alice, &mut t).await;

    // A WebSocket upgrade without the mosaic2025 subprotocol.
    let mut tcp = TcpStream::connect(server.handle.local_addr())
        .await
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response).await;
    assert!(response.starts_with("HTTP/1.1 400"));
    still_served(&mut good, &alice, &mut t).await;

    // Unknown message type: Unrecognized, and the connection goes on.
    let (s, mut r) = client(&server).await.split();
    s.send_encoded(vec![0x55, 8, 0, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    assert_eq!(
        r.recv().await.unwrap().unwrap().message.unwrap(),
        Message::Unrecognized
    );
    // Truncated frame of a known type: refused, connection closed.
    s.send_encoded(vec![0x02, 0x40, 0, 0, 1, 0]).await.unwrap();
    let answer = r.recv().await.unwrap().unwrap().message.unwrap();
    assert!(
        matches!(
            answer,
            Message::QueryClosed {
                code: ResultCode::INVALID,
                ..
            }
        ),
        "{answer:?}"
    );
    still_served(&mut good, &alice, &mut t).await;

    // A server message from a client ends that connection.
    let (s, mut r) = client(&server).await.split();
    s.send(&Message::Unrecognized).await.unwrap();
    s.send_encoded(
        Message::LocallyComplete {
            query_id: QueryId(1),
        }
        .encode()
        .unwrap(),
    )
    .await
    .unwrap();
    let mut closed = false;
    while let Ok(Some(received)) = r.recv().await {
        if received.message
            == Ok(Message::Closing {
                code: ResultCode::INVALID,
            })
        {
            closed = true;
        }
    }
    assert!(closed);
    still_served(&mut good, &alice, &mut t).await;

    // Oversized: a BLOB above the message limit.
    let (s, mut r) = client(&server).await.split();
    let mut frame = vec![0x07, 0];
    frame.extend_from_slice(&(2_000_000u64).to_le_bytes()[..6]);
    frame.extend_from_slice(&[0; 32]);
    frame.resize(frame.len() + 2_000_000, 0);
    let _ = s.send_encoded(frame).await;
    let mut saw_too_large = false;
    while let Ok(Some(received)) = r.recv().await {
        if received.message
            == Ok(Message::Closing {
                code: ResultCode::TOO_LARGE,
            })
        {
            saw_too_large = true;
        }
    }
    assert!(saw_too_large);
    still_served(&mut good, &alice, &mut t).await;

    // A flood of submissions: TOO_FAST beyond the burst, others unaffected.
    let mut flood = client(&server).await;
    let bob = SecretKey::from_bytes(&[2; 32]);
    let mut too_fast = 0;
    let spam: Vec<_> = (0..260u64)
        .map(|i| record(&bob, MICROBLOG, 50_000 + i, b"spam"))
        .collect();
    for r in spam {
        flood
            .send(&Message::Submission { record: r })
            .await
            .unwrap();
    }
    for _ in 0..260 {
        if let Message::SubmissionResult { code, .. } = recv(&mut flood).await
            && code == ResultCode::TOO_FAST
        {
            too_fast += 1;
        }
    }
    assert!(too_fast > 0, "the flood was never slowed");
    still_served(&mut good, &alice, &mut t).await;
}

#[tokio::test]
async fn connection_and_subscription_limits() {
    let mut config = ServerConfig::default();
    config.limits.max_connections_per_ip = 2;
    config.limits.max_subscriptions_per_connection = 1;
    let server = start(config).await;
    let alice = SecretKey::from_bytes(&[1; 32]);
    let mut a = client(&server).await;
    let _b = client(&server).await;
    assert!(
        connect(server.handle.url(), &ConnectOptions::default())
            .await
            .is_err()
    );
    a.send(&Message::Subscribe {
        query_id: QueryId(1),
        limit: 0,
        filter: by_author(&alice),
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut a).await,
        Message::LocallyComplete {
            query_id: QueryId(1)
        }
    );
    a.send(&Message::Subscribe {
        query_id: QueryId(2),
        limit: 0,
        filter: by_author(&alice),
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut a).await,
        Message::QueryClosed {
            query_id: QueryId(2),
            code: ResultCode::TOO_FAST
        }
    );
}

#[tokio::test]
async fn shutdown_tells_clients() {
    let server = start(ServerConfig::default()).await;
    let mut conn = client(&server).await;
    let TestServer { handle, _dir } = server;
    let stopping = tokio::spawn(handle.shutdown());
    assert_eq!(
        recv(&mut conn).await,
        Message::Closing {
            code: ResultCode::SHUTTING_DOWN
        }
    );
    stopping.await.unwrap().unwrap();
}

mod dht {
    //! DHT Lookup through a real server (D-9): the client verifies the answer
    //! itself, and catches a server that alters it.

    use super::*;
    use mosaic_core::handshake::{AuthNonce, ServerHandshake};
    use mosaic_core::{DhtTarget, ServerUsage, UserBootstrap, UserBootstrapEntry};
    use mosaic_dht::{Dht, DhtError, Resolver, Testnet, verify_dht_response};
    use mosaic_net::{AcceptConfig, Incoming, accept};
    use tokio::net::TcpListener;

    async fn lookup(conn: &mut Connection, key: mosaic_core::PublicKey) -> Message {
        conn.send(&Message::DhtLookup {
            query_id: QueryId(3),
            target: DhtTarget::User,
            public_key: key,
        })
        .await
        .unwrap();
        recv(conn).await
    }

    /// A flood of lookups: a few run at once per connection and
    /// server-wide, the rest are answered TOO_FAST at once; every query
    /// gets exactly one answer and the connection stays in service.
    #[tokio::test]
    async fn a_lookup_flood_is_bounded() {
        let testnet = Testnet::start(8).await.unwrap();
        let dir = TempDir::new();
        let store = Arc::new(Store::open(dir.0.join("store"), StoreConfig::default()).unwrap());
        let mut config = ServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ServerConfig::default()
        };
        config.limits.dht_lookups_in_flight = 6;
        let server = Server::bind(config, SecretKey::from_bytes(&[9; 32]), store, None)
            .await
            .unwrap();
        server.set_dht(Resolver::new(Dht::start(testnet.client_config()).unwrap()));
        let handle = server.spawn();
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(
                connect(handle.url(), &ConnectOptions::default())
                    .await
                    .unwrap(),
            );
        }
        // 3 connections x 40 lookups of keys nobody published.
        for (c, conn) in conns.iter().enumerate() {
            for q in 0..40u16 {
                let key = SecretKey::from_bytes(&[100 + c as u8 * 40 + q as u8; 32]).public();
                conn.send(&Message::DhtLookup {
                    query_id: QueryId(q),
                    target: DhtTarget::User,
                    public_key: key,
                })
                .await
                .unwrap();
            }
        }
        let mut looked_up = 0;
        for conn in &mut conns {
            let mut answered = std::collections::HashSet::new();
            let mut too_fast = 0;
            while answered.len() < 40 {
                match recv(conn).await {
                    Message::DhtResponse { query_id, code, .. } => {
                        assert!(answered.insert(query_id), "{query_id} answered twice");
                        match code {
                            ResultCode::TOO_FAST => too_fast += 1,
                            ResultCode::NOT_FOUND => looked_up += 1,
                            other => panic!("unexpected {other}"),
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            // At most 4 at once per connection: all but a few of a burst of
            // 40 are refused (more than 4 pass only if some finish while
            // the burst is still arriving).
            assert!(too_fast >= 30, "{too_fast} refused");
        }
        assert!((1..=30).contains(&looked_up), "{looked_up} looked up");
        // Once they are done, lookups run again.
        let nobody = SecretKey::from_bytes(&[3; 32]).public();
        let answer = lookup(&mut conns[0], nobody).await;
        assert!(
            matches!(answer, Message::DhtResponse { code, .. } if code == ResultCode::NOT_FOUND)
        );
        handle.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn lookups_are_verifiable_and_lies_are_caught() {
        let testnet = Testnet::start(8).await.unwrap();
        let dht = Dht::start(testnet.client_config()).unwrap();
        let alice = SecretKey::from_bytes(&[1; 32]);
        let server_key = SecretKey::from_bytes(&[9; 32]).public();
        let bootstrap = UserBootstrap::new(vec![UserBootstrapEntry {
            usage: ServerUsage::OUTBOX,
            server: server_key,
        }])
        .unwrap();
        dht.publish_user(&alice, &bootstrap).await.unwrap();

        // An honest server answers from the DHT; the answer verifies.
        let dir = TempDir::new();
        let store = Arc::new(Store::open(dir.0.join("store"), StoreConfig::default()).unwrap());
        let config = ServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ServerConfig::default()
        };
        let server = Server::bind(config, SecretKey::from_bytes(&[9; 32]), store, None)
            .await
            .unwrap();
        server.set_dht(Resolver::new(Dht::start(testnet.client_config()).unwrap()));
        let handle = server.spawn();
        let mut conn = connect(handle.url(), &ConnectOptions::default())
            .await
            .unwrap();
        let answer = lookup(&mut conn, alice.public()).await;
        let item = verify_dht_response(&answer, &alice.public(), DhtTarget::User)
            .unwrap()
            .expect("found");
        assert_eq!(item.value(), bootstrap.to_text().as_bytes());
        // A key with no bootstrap: NOT_FOUND, which verifies as "none".
        let nobody = SecretKey::from_bytes(&[3; 32]).public();
        let answer = lookup(&mut conn, nobody).await;
        assert!(
            verify_dht_response(&answer, &nobody, DhtTarget::User)
                .unwrap()
                .is_none()
        );

        // A lying server relays the real answer with the text altered.
        let honest = lookup(&mut conn, alice.public()).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, peer) = listener.accept().await.unwrap();
            let Ok(Incoming::Upgrade(up)) = accept(tcp, peer, None, &AcceptConfig::default()).await
            else {
                return;
            };
            let key = SecretKey::from_bytes(&[8; 32]);
            let mut hs = ServerHandshake::new(key.public(), &[0], &[]);
            let ack = hs
                .handle_hello(up.hello(), &key, AuthNonce::random(&mut rand::rng()), None)
                .unwrap();
            let mut c = up.accept(&ack, &ConnectionConfig::default()).await.unwrap();
            while let Ok(Some(_)) = c.recv().await {
                let mut lie = honest.clone();
                if let Message::DhtResponse { value, .. } = &mut lie {
                    let text = String::from_utf8(value.clone()).unwrap();
                    *value = text.replace("1 mosrv0", "3 mosrv0").into_bytes();
                }
                let _ = c.send(&lie).await;
            }
        });
        let mut liar = connect(&format!("ws://{addr}/"), &ConnectOptions::default())
            .await
            .unwrap();
        let answer = lookup(&mut liar, alice.public()).await;
        assert!(matches!(
            verify_dht_response(&answer, &alice.public(), DhtTarget::User),
            Err(DhtError::BadSignature { .. })
        ));
        handle.shutdown().await.unwrap();
    }
}
