//! Authentication and access control over real sockets: Hello Auth and its
//! negative cases, read access on every path, subkeys and key schedules,
//! server roles and bans (`docs/SECURITY.md` maps each rule to a test here).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use mosaic_core::handshake::{AuthNonce, Hello, HelloAck, sign_client_authentication};
use mosaic_core::{
    DuplicateHandling, FilterBuilder, KeyMarker, KeySchedule, KeyScheduleEntry, Kind, KindFlags,
    Message, Nonce, OwnedFilter, OwnedRecord, OwnedTag, OwnedTagSet, PublicKey, QueryId,
    ReadAccess, RecordBuilder, Reference, ResultCode, SecretKey, Timestamp,
};
use mosaic_net::{ConnectOptions, Connection, NetError, connect};
use mosaic_server::{Roles, Server, ServerConfig};
use mosaic_store::{Ban, Store, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{TempDir, TestServer, by_author, client, client_as, query, recv, submit};

// ---------------------------------------------------------------------
// Set-up

/// Starts a server on a store prepared by `setup` (allow-list, bans).
pub(super) async fn start_with(config: ServerConfig, setup: impl FnOnce(&Store)) -> TestServer {
    let dir = TempDir::new();
    let store = Store::open(dir.0.join("store"), StoreConfig::default()).unwrap();
    setup(&store);
    let handle = Server::start_for_tests(
        config,
        SecretKey::from_bytes(&[9; 32]),
        std::sync::Arc::new(store),
    )
    .await
    .unwrap();
    TestServer { handle, _dir: dir }
}

async fn try_client_as(server: &TestServer, key: &SecretKey) -> Result<Connection, NetError> {
    let options = ConnectOptions {
        client_key: Some(key.clone()),
        expected_server: Some(server.handle.public_key()),
        ..ConnectOptions::default()
    };
    connect(server.handle.url(), &options).await
}

pub(super) fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n; 32])
}

fn now_nanos() -> u64 {
    Timestamp::from_system_time(SystemTime::now())
        .unwrap()
        .as_nanos()
}

pub(super) fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n).unwrap()
}

const HOUR: u64 = 3_600_000_000_000;

fn kind(n: u16, duplicates: DuplicateHandling, access: ReadAccess) -> Kind {
    Kind::from_parts(77, n, KindFlags::from_parts(duplicates, access, false))
}

fn public_kind() -> Kind {
    kind(1, DuplicateHandling::Unique, ReadAccess::Everybody)
}

fn private_kind() -> Kind {
    kind(2, DuplicateHandling::Unique, ReadAccess::AuthorOnly)
}

fn tagged_kind() -> Kind {
    kind(3, DuplicateHandling::Unique, ReadAccess::AuthorAndTagged)
}

/// A record of `author`, signed by `signer`, notifying `tagged`.
fn build(
    author: &SecretKey,
    signer: &SecretKey,
    kind: Kind,
    t: u64,
    tagged: &[&SecretKey],
    from_author: bool,
) -> OwnedRecord {
    let tags = OwnedTagSet::from_tags(
        tagged
            .iter()
            .map(|k| OwnedTag::notify_public_key(&k.public())),
    )
    .unwrap();
    RecordBuilder::new(kind, ts(t))
        .nonce(Nonce::from_key(&t.to_be_bytes()))
        .author(author.public())
        .tags(&tags)
        .payload(b"content")
        .from_author(from_author)
        .build(signer)
        .unwrap()
}

fn rec(author: &SecretKey, kind: Kind, t: u64, tagged: &[&SecretKey]) -> OwnedRecord {
    build(author, author, kind, t, tagged, false)
}

/// A key schedule of `master` listing `entries` (subkey, marker, marker
/// timestamp), timestamped `at`.
pub(super) fn schedule(
    master: &SecretKey,
    entries: &[(&SecretKey, KeyMarker, u64)],
    at: u64,
) -> OwnedRecord {
    let entries = entries
        .iter()
        .map(|(sub, marker, t)| {
            KeyScheduleEntry::new_attested(&master.public(), sub, *marker, ts(*t)).unwrap()
        })
        .collect();
    KeySchedule::new(master.public(), entries)
        .unwrap()
        .build_record(master, ts(at), KeySchedule::default_nonce())
        .unwrap()
}

fn ids(records: &[OwnedRecord]) -> Vec<mosaic_core::Id> {
    let mut ids: Vec<_> = records.iter().map(|r| r.id()).collect();
    ids.sort();
    ids
}

async fn get(
    conn: &mut Connection,
    id: u16,
    references: Vec<Reference>,
) -> (Vec<OwnedRecord>, ResultCode) {
    conn.send(&Message::Get {
        query_id: QueryId(id),
        references,
    })
    .await
    .unwrap();
    let mut records = Vec::new();
    loop {
        match recv(conn).await {
            Message::Record { record, .. } => records.push(record),
            Message::QueryClosed { code, .. } => return (records, code),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Subscribes and returns the stored records sent before Locally Complete.
async fn subscribe(conn: &mut Connection, id: u16, filter: OwnedFilter) -> Vec<OwnedRecord> {
    conn.send(&Message::Subscribe {
        query_id: QueryId(id),
        limit: 0,
        filter,
    })
    .await
    .unwrap();
    let mut records = Vec::new();
    loop {
        match recv(conn).await {
            Message::Record { record, .. } => records.push(record),
            Message::LocallyComplete { .. } => return records,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The next live record on a subscription.
async fn next_record(conn: &mut Connection) -> OwnedRecord {
    match recv(conn).await {
        Message::Record { record, .. } => record,
        other => panic!("expected a record, got {other:?}"),
    }
}

/// Asserts that nothing arrives for a while.
async fn silent(conn: &mut Connection) {
    let next = tokio::time::timeout(Duration::from_millis(300), conn.recv()).await;
    assert!(next.is_err(), "unexpected message: {next:?}");
}

/// Reads until the server's Closing, skipping records; its code.
pub(super) async fn closing(conn: &mut Connection) -> ResultCode {
    loop {
        match recv(conn).await {
            Message::Closing { code } => return code,
            Message::Record { .. } => {}
            other => panic!("expected Closing, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------
// A hand-made WebSocket client, to send Hello Auth signatures that the
// real client never would.

struct RawWs {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Upgrades with `X-Mosaic-Authenticate-As: as_key`; returns the
    /// connection and the server's nonce.
    async fn open(addr: SocketAddr, as_key: &PublicKey) -> (RawWs, AuthNonce) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let hello = Hello {
            authenticate_as: Some(*as_key),
            ..Hello::default()
        };
        let mut request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: mosaic2025\r\n"
        );
        for (name, value) in hello.to_headers() {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let end = loop {
            let mut chunk = [0u8; 4096];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let ack = HelloAck::from_headers(|name| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        })
        .unwrap();
        let nonce = ack.client_nonce.expect("the server issued no nonce");
        (
            RawWs {
                tcp,
                buf: buf[end..].to_vec(),
            },
            nonce,
        )
    }

    /// Sends one message as a masked binary frame.
    async fn send(&mut self, message: &Message) {
        let payload = message.encode().unwrap();
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![0x82];
        if payload.len() < 126 {
            frame.push(0x80 | payload.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&frame).await.unwrap();
    }

    async fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(10), self.tcp.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(k)) => self.buf.extend_from_slice(&chunk[..k]),
                Err(_) => panic!("no answer within 10 s"),
            }
        }
        true
    }

    /// The next Mosaic message, or `None` once the connection closes.
    async fn recv(&mut self) -> Option<Message> {
        loop {
            if !self.fill(2).await {
                return None;
            }
            let opcode = self.buf[0] & 0x0f;
            let (len, header) = match self.buf[1] & 0x7f {
                126 => {
                    if !self.fill(4).await {
                        return None;
                    }
                    (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    )
                }
                127 => panic!("unexpectedly long frame"),
                n => (usize::from(n), 2),
            };
            if !self.fill(header + len).await {
                return None;
            }
            let payload: Vec<u8> = self.buf[header..header + len].to_vec();
            self.buf.drain(..header + len);
            match opcode {
                0x2 => return Some(Message::decode(&payload).unwrap()),
                0x8 => return None,
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------
// Hello Auth

#[tokio::test]
async fn hello_auth_with_a_wrong_signature_is_refused() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let addr = server.handle.local_addr();
    let server_key = server.handle.public_key();
    let alice = key(1);
    let mallory = key(6);

    // Signed by another key than the one named.
    let (mut ws, nonce) = RawWs::open(addr, &alice.public()).await;
    let signature = sign_client_authentication(&mallory, &server_key, &nonce);
    ws.send(&Message::HelloAuth { signature }).await;
    assert_eq!(
        ws.recv().await,
        Some(Message::Closing {
            code: ResultCode::UNAUTHORIZED
        })
    );

    // The right key, one bit flipped.
    let (mut ws, nonce) = RawWs::open(addr, &alice.public()).await;
    let mut signature = sign_client_authentication(&alice, &server_key, &nonce);
    signature[10] ^= 1;
    ws.send(&Message::HelloAuth { signature }).await;
    assert_eq!(
        ws.recv().await,
        Some(Message::Closing {
            code: ResultCode::UNAUTHORIZED
        })
    );

    // The right key over another server's key.
    let (mut ws, nonce) = RawWs::open(addr, &alice.public()).await;
    let signature = sign_client_authentication(&alice, &key(8).public(), &nonce);
    ws.send(&Message::HelloAuth { signature }).await;
    assert_eq!(
        ws.recv().await,
        Some(Message::Closing {
            code: ResultCode::UNAUTHORIZED
        })
    );

    // Anything but Hello Auth first.
    let (mut ws, _) = RawWs::open(addr, &alice.public()).await;
    ws.send(&Message::Query {
        query_id: QueryId(1),
        limit: 0,
        filter: by_author(&alice),
    })
    .await;
    assert_eq!(
        ws.recv().await,
        Some(Message::Closing {
            code: ResultCode::REQUIRES_AUTHENTICATION
        })
    );

    // And the right signature is accepted by the same hand-made client.
    let (mut ws, nonce) = RawWs::open(addr, &alice.public()).await;
    let signature = sign_client_authentication(&alice, &server_key, &nonce);
    ws.send(&Message::HelloAuth { signature }).await;
    assert!(matches!(
        ws.recv().await,
        Some(Message::HelloAck {
            code: ResultCode::SUCCESS,
            ..
        })
    ));
}

#[tokio::test]
async fn hello_auth_replayed_from_another_connection_is_refused() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let addr = server.handle.local_addr();
    let alice = key(1);
    let private = rec(&alice, private_kind(), 10, &[]);
    let mut own = client_as(&server, &alice).await;
    assert_eq!(submit(&mut own, &private).await, ResultCode::ACCEPTED);

    // Alice's genuine authentication on one connection...
    let (mut first, nonce) = RawWs::open(addr, &alice.public()).await;
    let signature = sign_client_authentication(&alice, &server.handle.public_key(), &nonce);
    first.send(&Message::HelloAuth { signature }).await;
    assert!(matches!(
        first.recv().await,
        Some(Message::HelloAck {
            code: ResultCode::SUCCESS,
            ..
        })
    ));
    // ...replayed by an eavesdropper on another: that one has its own nonce.
    let (mut second, other_nonce) = RawWs::open(addr, &alice.public()).await;
    assert_ne!(nonce, other_nonce);
    second.send(&Message::HelloAuth { signature }).await;
    assert_eq!(
        second.recv().await,
        Some(Message::Closing {
            code: ResultCode::UNAUTHORIZED
        })
    );
    assert_eq!(second.recv().await, None);
    // The replayed connection never read anything; the genuine one can.
    first
        .send(&Message::Get {
            query_id: QueryId(1),
            references: vec![Reference::Id(private.id())],
        })
        .await;
    assert_eq!(
        first.recv().await,
        Some(Message::Record {
            query_id: QueryId(1),
            record: private
        })
    );
}

// ---------------------------------------------------------------------
// Read access on every path

#[tokio::test]
async fn read_access_holds_on_get_query_subscribe_live_and_ephemeral() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let (alice, bob, carol) = (key(1), key(2), key(3));
    let mut a = client_as(&server, &alice).await;
    let mut b = client_as(&server, &bob).await;
    let mut anon = client(&server).await;

    let public = rec(&alice, public_kind(), 10, &[]);
    let diary = rec(&alice, private_kind(), 11, &[]);
    let to_bob = rec(&alice, tagged_kind(), 12, &[&bob]);
    let to_carol = rec(&alice, tagged_kind(), 13, &[&carol]);
    let replaceable_private = rec(
        &alice,
        kind(4, DuplicateHandling::Replaceable, ReadAccess::AuthorOnly),
        14,
        &[],
    );
    for r in [&public, &diary, &to_bob, &to_carol, &replaceable_private] {
        assert_eq!(submit(&mut a, r).await, ResultCode::ACCEPTED);
    }

    // Query: each reader gets exactly what it may read.
    let (got, code) = query(&mut anon, 1, 0, by_author(&alice)).await;
    assert_eq!(code, ResultCode::SUCCESS);
    assert_eq!(got, vec![public.clone()]);
    let (got, _) = query(&mut b, 1, 0, by_author(&alice)).await;
    assert_eq!(ids(&got), ids(&[public.clone(), to_bob.clone()]));
    let (got, _) = query(&mut a, 1, 0, by_author(&alice)).await;
    assert_eq!(got.len(), 5);

    // Get: a protected id or address is answered as if absent.
    let protected = vec![
        Reference::Id(diary.id()),
        Reference::Id(to_bob.id()),
        Reference::Address(replaceable_private.address()),
    ];
    assert_eq!(
        get(&mut anon, 2, protected.clone()).await,
        (vec![], ResultCode::NOT_FOUND)
    );
    let mut mixed = protected.clone();
    mixed.push(Reference::Id(public.id()));
    assert_eq!(
        get(&mut anon, 3, mixed).await,
        (vec![public.clone()], ResultCode::SUCCESS)
    );
    assert_eq!(
        get(&mut b, 2, protected.clone()).await,
        (vec![to_bob.clone()], ResultCode::SUCCESS)
    );
    let (got, _) = get(&mut a, 2, protected).await;
    assert_eq!(got.len(), 3);

    // Subscribe: the stored phase filters the same way.
    let stored = subscribe(&mut anon, 4, by_author(&alice)).await;
    assert_eq!(stored, vec![public.clone()]);
    let stored = subscribe(&mut b, 4, by_author(&alice)).await;
    assert_eq!(ids(&stored), ids(&[public.clone(), to_bob.clone()]));
    let stored = subscribe(&mut a, 4, by_author(&alice)).await;
    assert_eq!(stored.len(), 5);

    // Live delivery: new protected records reach only their readers.
    let mut writer = client(&server).await;
    let diary2 = rec(&alice, private_kind(), 20, &[]);
    let to_bob2 = rec(&alice, tagged_kind(), 21, &[&bob]);
    let public2 = rec(&alice, public_kind(), 22, &[]);
    for r in [&diary2, &to_bob2, &public2] {
        assert_eq!(submit(&mut writer, r).await, ResultCode::ACCEPTED);
    }
    assert_eq!(next_record(&mut anon).await, public2);
    assert_eq!(next_record(&mut b).await, to_bob2);
    assert_eq!(next_record(&mut b).await, public2);
    assert_eq!(next_record(&mut a).await, diary2);
    assert_eq!(next_record(&mut a).await, to_bob2);
    assert_eq!(next_record(&mut a).await, public2);

    // Ephemeral delivery: the same rules, and nobody allowed means
    // NO_CONSUMERS even with subscribers listening.
    let eph_private = kind(5, DuplicateHandling::Ephemeral, ReadAccess::AuthorOnly);
    let eph_tagged = kind(6, DuplicateHandling::Ephemeral, ReadAccess::AuthorAndTagged);
    let kinds = || {
        FilterBuilder::new()
            .kinds([eph_private, eph_tagged])
            .build()
            .unwrap()
    };
    assert!(subscribe(&mut anon, 5, kinds()).await.is_empty());
    assert!(subscribe(&mut b, 5, kinds()).await.is_empty());
    // Carol's: none of the subscribers may read her author-only record.
    let ping = rec(&carol, eph_private, 30, &[]);
    assert_eq!(submit(&mut writer, &ping).await, ResultCode::NO_CONSUMERS);
    let call = rec(&carol, eph_tagged, 31, &[&bob]);
    assert_eq!(submit(&mut writer, &call).await, ResultCode::ACCEPTED);
    assert_eq!(next_record(&mut b).await, call);
    silent(&mut anon).await;
    silent(&mut b).await;
}

#[tokio::test]
async fn an_anonymous_subscription_never_sees_a_later_author_only_record() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let alice = key(1);
    let mut anon = client(&server).await;
    let everything = || {
        FilterBuilder::new()
            .kinds([public_kind(), private_kind(), tagged_kind()])
            .build()
            .unwrap()
    };
    assert!(subscribe(&mut anon, 1, everything()).await.is_empty());
    let mut a = client_as(&server, &alice).await;
    for t in 0..5u64 {
        let diary = rec(&alice, private_kind(), 100 + t, &[]);
        assert_eq!(submit(&mut a, &diary).await, ResultCode::ACCEPTED);
        // Tagging the anonymous reader is impossible; tagging anyone else
        // is not enough either.
        let note = rec(&alice, tagged_kind(), 200 + t, &[&key(2)]);
        assert_eq!(submit(&mut a, &note).await, ResultCode::ACCEPTED);
    }
    let public = rec(&alice, public_kind(), 300, &[]);
    assert_eq!(submit(&mut a, &public).await, ResultCode::ACCEPTED);
    // The first thing the anonymous subscriber sees is the public record.
    assert_eq!(next_record(&mut anon).await, public);
    silent(&mut anon).await;
    // And a later anonymous subscription's stored phase agrees.
    let mut later = client(&server).await;
    assert_eq!(subscribe(&mut later, 1, everything()).await, vec![public]);
}

#[tokio::test]
async fn a_tagged_user_sees_exactly_the_records_that_tag_them() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let (alice, bob, carol, dave) = (key(1), key(2), key(3), key(4));
    let mut a = client_as(&server, &alice).await;
    let mut b = client_as(&server, &bob).await;
    let mut c = client_as(&server, &carol).await;
    let filter = || FilterBuilder::new().kinds([tagged_kind()]).build().unwrap();
    assert!(subscribe(&mut b, 1, filter()).await.is_empty());

    let to_bob = rec(&alice, tagged_kind(), 10, &[&bob]);
    let to_carol = rec(&alice, tagged_kind(), 11, &[&carol]);
    let to_both = rec(&alice, tagged_kind(), 12, &[&carol, &bob]);
    let to_nobody = rec(&alice, tagged_kind(), 13, &[]);
    let dave_to_bob = rec(&dave, tagged_kind(), 14, &[&bob]);
    for r in [&to_bob, &to_carol, &to_both, &to_nobody, &dave_to_bob] {
        assert_eq!(submit(&mut a, r).await, ResultCode::ACCEPTED);
    }
    // Live: bob receives the three that tag him, in order, and nothing else.
    assert_eq!(next_record(&mut b).await, to_bob);
    assert_eq!(next_record(&mut b).await, to_both);
    assert_eq!(next_record(&mut b).await, dave_to_bob);
    silent(&mut b).await;
    // Stored: the same sets.
    let (got, _) = query(&mut b, 2, 0, filter()).await;
    assert_eq!(
        ids(&got),
        ids(&[to_bob.clone(), to_both.clone(), dave_to_bob.clone()])
    );
    let (got, _) = query(&mut c, 2, 0, filter()).await;
    assert_eq!(ids(&got), ids(&[to_carol.clone(), to_both.clone()]));
    // The author sees her own four, not dave's.
    let (got, _) = query(&mut a, 2, 0, filter()).await;
    assert_eq!(ids(&got), ids(&[to_bob, to_carol, to_both, to_nobody]));
}

// ---------------------------------------------------------------------
// Subkeys and key schedules

#[tokio::test]
async fn a_subkey_authenticates_for_its_master_once_the_schedule_lists_it() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let (alice, phone) = (key(1), key(21));
    let mut a = client_as(&server, &alice).await;
    let diary = rec(&alice, private_kind(), 10, &[]);
    assert_eq!(submit(&mut a, &diary).await, ResultCode::ACCEPTED);
    let from_phone = build(&alice, &phone, public_kind(), 11, &[], true);

    // The schedule is not known yet: the phone is only itself.
    let mut p = client_as(&server, &phone).await;
    let (got, _) = query(&mut p, 1, 0, by_author(&alice)).await;
    assert!(got.is_empty());
    assert_eq!(
        submit(&mut p, &from_phone).await,
        ResultCode::REQUIRES_AUTHENTICATION
    );

    // Alice publishes her schedule; a new phone connection is Alice.
    let s = schedule(&alice, &[(&phone, KeyMarker::ActiveSigningKey, 0)], 5);
    assert_eq!(submit(&mut a, &s).await, ResultCode::ACCEPTED);
    let mut p = client_as(&server, &phone).await;
    let (got, _) = query(&mut p, 1, 0, by_author(&alice)).await;
    assert_eq!(ids(&got), ids(&[diary.clone(), s.clone()]));
    assert_eq!(
        get(&mut p, 2, vec![Reference::Id(diary.id())]).await,
        (vec![diary.clone()], ResultCode::SUCCESS)
    );
    // FROM_AUTHOR from the phone's connection is Alice's.
    assert_eq!(submit(&mut p, &from_phone).await, ResultCode::ACCEPTED);
    // Live author-only records reach the phone too.
    assert_eq!(subscribe(&mut p, 3, by_author(&alice)).await.len(), 3);
    let diary2 = rec(&alice, private_kind(), 12, &[]);
    assert_eq!(submit(&mut a, &diary2).await, ResultCode::ACCEPTED);
    assert_eq!(next_record(&mut p).await, diary2);

    // The schedule survives a restart: it is loaded from the store.
    let TestServer { handle, _dir } = server;
    handle.shutdown().await.unwrap();
    let store = Store::open(_dir.0.join("store"), StoreConfig::default()).unwrap();
    let handle = Server::start_for_tests(
        ServerConfig::default(),
        SecretKey::from_bytes(&[9; 32]),
        std::sync::Arc::new(store),
    )
    .await
    .unwrap();
    let server = TestServer { handle, _dir };
    let mut p = client_as(&server, &phone).await;
    assert_eq!(
        get(&mut p, 1, vec![Reference::Id(diary2.id())]).await,
        (vec![diary2], ResultCode::SUCCESS)
    );
}

#[tokio::test]
async fn a_subkey_not_in_the_schedule_is_only_itself() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let (alice, phone, laptop) = (key(1), key(21), key(22));
    let mut a = client_as(&server, &alice).await;
    let s = schedule(&alice, &[(&phone, KeyMarker::ActiveSigningKey, 0)], 5);
    assert_eq!(submit(&mut a, &s).await, ResultCode::ACCEPTED);
    let diary = rec(&alice, private_kind(), 10, &[]);
    assert_eq!(submit(&mut a, &diary).await, ResultCode::ACCEPTED);

    let mut l = client_as(&server, &laptop).await;
    assert_eq!(
        get(&mut l, 1, vec![Reference::Id(diary.id())]).await,
        (vec![], ResultCode::NOT_FOUND)
    );
    // A record of Alice's signed by a key her schedule does not list is a
    // forgery: refused, whichever connection brings it.
    let forged = build(&alice, &laptop, public_kind(), 11, &[], false);
    assert_eq!(submit(&mut l, &forged).await, ResultCode::UNAUTHORIZED);
    assert_eq!(submit(&mut a, &forged).await, ResultCode::UNAUTHORIZED);
    let forged_from_author = build(&alice, &laptop, public_kind(), 12, &[], true);
    assert_eq!(
        submit(&mut l, &forged_from_author).await,
        ResultCode::UNAUTHORIZED
    );
    // Key schedules and profiles must be signed by the master key.
    let fake = RecordBuilder::new(Kind::KEY_SCHEDULE, ts(20))
        .nonce(KeySchedule::default_nonce())
        .author(alice.public())
        .build(&phone)
        .unwrap();
    assert_eq!(submit(&mut a, &fake).await, ResultCode::INVALID);
    let profile = RecordBuilder::new(Kind::PROFILE, ts(20))
        .nonce(Nonce::from_key(b"profile"))
        .author(alice.public())
        .payload(b"not checked")
        .build(&phone)
        .unwrap();
    assert_eq!(submit(&mut a, &profile).await, ResultCode::INVALID);
}

#[tokio::test]
async fn a_revoked_subkey_is_refused() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let (alice, phone, tablet, watch) = (key(1), key(21), key(23), key(24));
    let now = now_nanos();
    let mut a = client_as(&server, &alice).await;
    let v1 = schedule(
        &alice,
        &[
            (&phone, KeyMarker::ActiveSigningKey, 0),
            (&tablet, KeyMarker::ActiveSigningKey, 0),
            (&watch, KeyMarker::ActiveSigningKey, 0),
        ],
        now - 2 * HOUR,
    );
    assert_eq!(submit(&mut a, &v1).await, ResultCode::ACCEPTED);
    let mut p = client_as(&server, &phone).await;
    assert!(
        subscribe(
            &mut p,
            1,
            FilterBuilder::new()
                .kinds([private_kind()])
                .build()
                .unwrap()
        )
        .await
        .is_empty()
    );
    assert_eq!(
        submit(
            &mut p,
            &build(&alice, &phone, public_kind(), now - HOUR, &[], true)
        )
        .await,
        ResultCode::ACCEPTED
    );

    // The phone is stolen: REVOKED_ALL. The tablet is retired from an hour
    // ago: REVOKED_PAST. The watch will be revoked an hour from now.
    let v2 = schedule(
        &alice,
        &[
            (&phone, KeyMarker::RevokedAll, now - HOUR),
            (&tablet, KeyMarker::RevokedPast, now - HOUR),
            (&watch, KeyMarker::RevokedPast, now + HOUR),
        ],
        now - HOUR,
    );
    assert_eq!(submit(&mut a, &v2).await, ResultCode::ACCEPTED);
    // The phone's open connection is closed at once.
    assert_eq!(closing(&mut p).await, ResultCode::UNAUTHORIZED);
    // It can no longer authenticate...
    assert!(matches!(
        try_client_as(&server, &phone).await,
        Err(NetError::AuthenticationRefused {
            code: ResultCode::UNAUTHORIZED
        })
    ));
    // ...nor sign anything, whatever its timestamp.
    let old = build(&alice, &phone, public_kind(), now - 3 * HOUR, &[], false);
    assert_eq!(submit(&mut a, &old).await, ResultCode::UNAUTHORIZED);
    // REVOKED_PAST in the past: received now, so refused even when
    // timestamped before the revocation.
    let backdated = build(&alice, &tablet, public_kind(), now - 2 * HOUR, &[], false);
    assert_eq!(submit(&mut a, &backdated).await, ResultCode::UNAUTHORIZED);
    // REVOKED_PAST in the future: valid when timestamped before it...
    let before = build(&alice, &watch, public_kind(), now - 10, &[], false);
    assert_eq!(submit(&mut a, &before).await, ResultCode::ACCEPTED);
    // ...invalid when timestamped after it.
    let after = build(&alice, &watch, public_kind(), now + 2 * HOUR, &[], false);
    assert_eq!(submit(&mut a, &after).await, ResultCode::UNAUTHORIZED);
    // A watch connection is not Alice's: its key is not ACTIVE_SIGNING_KEY.
    let mut w = client_as(&server, &watch).await;
    let fa = build(&alice, &watch, public_kind(), now - 20, &[], true);
    assert_eq!(
        submit(&mut w, &fa).await,
        ResultCode::REQUIRES_AUTHENTICATION
    );
}

#[tokio::test]
async fn replaceable_and_versioned_records_across_signers() {
    let server = start_with(ServerConfig::default(), |_| {}).await;
    let (alice, phone, laptop, stranger) = (key(1), key(21), key(22), key(25));
    let mut a = client_as(&server, &alice).await;
    let slot = kind(7, DuplicateHandling::Replaceable, ReadAccess::Everybody);
    let at = |signer: &SecretKey, t: u64| {
        RecordBuilder::new(slot, ts(t))
            .nonce(Nonce::from_key(b"slot"))
            .author(alice.public())
            .payload(&t.to_be_bytes())
            .build(signer)
            .unwrap()
    };

    // No schedule: a subkey cannot write a replaceable record at all.
    assert_eq!(
        submit(&mut a, &at(&phone, 10)).await,
        ResultCode::UNAUTHORIZED
    );
    assert_eq!(submit(&mut a, &at(&alice, 10)).await, ResultCode::ACCEPTED);

    let v1 = schedule(
        &alice,
        &[
            (&phone, KeyMarker::ActiveSigningKey, 0),
            (&laptop, KeyMarker::ActiveSigningKey, 0),
        ],
        5,
    );
    assert_eq!(submit(&mut a, &v1).await, ResultCode::ACCEPTED);
    // Both signers valid: the phone replaces the master's, the laptop the
    // phone's.
    assert_eq!(submit(&mut a, &at(&phone, 20)).await, ResultCode::ACCEPTED);
    assert_eq!(submit(&mut a, &at(&laptop, 30)).await, ResultCode::ACCEPTED);
    // A stranger claiming to be Alice cannot.
    assert_eq!(
        submit(&mut a, &at(&stranger, 40)).await,
        ResultCode::UNAUTHORIZED
    );
    let address = at(&alice, 1).address();
    let (got, _) = get(&mut a, 1, vec![Reference::Address(address)]).await;
    assert_eq!(got, vec![at(&laptop, 30)]);

    // The laptop is revoked: its record may no longer be displaced by the
    // phone, whose word now weighs no more than the laptop's, but the master
    // may.
    let v2 = schedule(
        &alice,
        &[
            (&phone, KeyMarker::ActiveSigningKey, 0),
            (&laptop, KeyMarker::RevokedAll, 25),
        ],
        6,
    );
    assert_eq!(submit(&mut a, &v2).await, ResultCode::ACCEPTED);
    assert_eq!(
        submit(&mut a, &at(&phone, 50)).await,
        ResultCode::UNAUTHORIZED
    );
    assert_eq!(
        submit(&mut a, &at(&laptop, 50)).await,
        ResultCode::UNAUTHORIZED
    );
    assert_eq!(submit(&mut a, &at(&alice, 50)).await, ResultCode::ACCEPTED);
    assert_eq!(submit(&mut a, &at(&phone, 60)).await, ResultCode::ACCEPTED);
    let (got, _) = get(&mut a, 2, vec![Reference::Address(address)]).await;
    assert_eq!(got, vec![at(&phone, 60)]);

    // Versioned: a valid subkey adds a version beside the master's.
    let doc = kind(8, DuplicateHandling::Versioned, ReadAccess::Everybody);
    let version = |signer: &SecretKey, t: u64| {
        RecordBuilder::new(doc, ts(t))
            .nonce(Nonce::from_key(b"doc"))
            .author(alice.public())
            .payload(&t.to_be_bytes())
            .build(signer)
            .unwrap()
    };
    assert_eq!(
        submit(&mut a, &version(&alice, 10)).await,
        ResultCode::ACCEPTED
    );
    assert_eq!(
        submit(&mut a, &version(&phone, 20)).await,
        ResultCode::ACCEPTED
    );
    assert_eq!(
        submit(&mut a, &version(&stranger, 30)).await,
        ResultCode::UNAUTHORIZED
    );
    let (got, _) = query(
        &mut a,
        3,
        0,
        FilterBuilder::new().kinds([doc]).build().unwrap(),
    )
    .await;
    assert_eq!(got.len(), 2);
}

// ---------------------------------------------------------------------
// Roles

fn roles(outbox: bool, inbox: bool, encryption: bool, inbox_public: bool) -> ServerConfig {
    ServerConfig {
        roles: Roles {
            outbox,
            inbox,
            encryption,
            inbox_public,
        },
        ..ServerConfig::default()
    }
}

fn serving(users: Vec<PublicKey>) -> impl FnOnce(&Store) {
    move |store| {
        for user in users {
            store.add_served_user(&user).unwrap();
        }
    }
}

#[tokio::test]
async fn an_outbox_accepts_its_users_records_and_serves_them_to_anyone() {
    let (alice, bob, phone) = (key(1), key(2), key(21));
    let server = start_with(
        roles(true, false, false, false),
        serving(vec![alice.public()]),
    )
    .await;
    let mut anon = client(&server).await;
    let post = rec(&alice, public_kind(), 10, &[]);
    assert_eq!(submit(&mut anon, &post).await, ResultCode::ACCEPTED);
    // Strangers' records, even ones that tag Alice, are not its business.
    let bobs = rec(&bob, public_kind(), 11, &[]);
    assert_eq!(submit(&mut anon, &bobs).await, ResultCode::UNAUTHORIZED);
    let reply = rec(&bob, public_kind(), 12, &[&alice]);
    assert_eq!(submit(&mut anon, &reply).await, ResultCode::UNAUTHORIZED);
    // A subkey-signed record of Alice needs her schedule here.
    let by_phone = build(&alice, &phone, public_kind(), 13, &[], false);
    assert_eq!(submit(&mut anon, &by_phone).await, ResultCode::UNAUTHORIZED);
    let s = schedule(&alice, &[(&phone, KeyMarker::ActiveSigningKey, 0)], 5);
    assert_eq!(submit(&mut anon, &s).await, ResultCode::ACCEPTED);
    assert_eq!(submit(&mut anon, &by_phone).await, ResultCode::ACCEPTED);
    // Anyone reads her public records, without authenticating.
    let mut reader = client(&server).await;
    let (got, _) = query(&mut reader, 1, 0, by_author(&alice)).await;
    assert_eq!(ids(&got), ids(&[post, by_phone, s]));
    // Her private ones stay hers.
    let diary = rec(&alice, private_kind(), 14, &[]);
    assert_eq!(submit(&mut anon, &diary).await, ResultCode::ACCEPTED);
    let (got, _) = get(&mut reader, 2, vec![Reference::Id(diary.id())]).await;
    assert!(got.is_empty());
    // BLOBs only from served users, authenticated.
    let blob = Message::blob_submission(b"a picture".to_vec());
    let hash = mosaic_core::blob_hash(b"a picture");
    let blob_result = |code| Message::BlobSubmissionResult { code, hash };
    anon.send(&blob).await.unwrap();
    assert_eq!(
        recv(&mut anon).await,
        blob_result(ResultCode::REQUIRES_AUTHENTICATION)
    );
    let mut b = client_as(&server, &bob).await;
    b.send(&blob).await.unwrap();
    assert_eq!(recv(&mut b).await, blob_result(ResultCode::UNAUTHORIZED));
    let mut p = client_as(&server, &phone).await;
    p.send(&blob).await.unwrap();
    assert_eq!(recv(&mut p).await, blob_result(ResultCode::ACCEPTED));
}

#[tokio::test]
async fn an_inbox_accepts_records_for_its_users_and_serves_them_to_them() {
    let (alice, bob, carol) = (key(1), key(2), key(3));
    let server = start_with(
        roles(false, true, false, false),
        serving(vec![alice.public()]),
    )
    .await;
    let mut a = client_as(&server, &alice).await;
    assert!(
        subscribe(
            &mut a,
            1,
            FilterBuilder::new().kinds([public_kind()]).build().unwrap()
        )
        .await
        .is_empty()
    );
    let mut anon = client(&server).await;
    // From a stranger, unauthenticated: accepted when it tags Alice.
    let reply = rec(&bob, public_kind(), 10, &[&alice]);
    assert_eq!(submit(&mut anon, &reply).await, ResultCode::ACCEPTED);
    // Delivered live to Alice.
    assert_eq!(next_record(&mut a).await, reply);
    let unrelated = rec(&bob, public_kind(), 11, &[&carol]);
    assert_eq!(
        submit(&mut anon, &unrelated).await,
        ResultCode::UNAUTHORIZED
    );
    // Alice's own posts belong in her outbox, not here.
    let hers = rec(&alice, public_kind(), 12, &[]);
    assert_eq!(submit(&mut a, &hers).await, ResultCode::UNAUTHORIZED);
    // Her key schedule is kept, so that her subkeys work here.
    let s = schedule(&alice, &[(&key(21), KeyMarker::ActiveSigningKey, 0)], 5);
    assert_eq!(submit(&mut a, &s).await, ResultCode::ACCEPTED);

    // Served to Alice (through a subkey too) and to the author; not to
    // others.
    let filter = || FilterBuilder::new().kinds([public_kind()]).build().unwrap();
    let mut phone = client_as(&server, &key(21)).await;
    let (got, _) = query(&mut phone, 2, 0, filter()).await;
    assert_eq!(got, vec![reply.clone()]);
    let mut b = client_as(&server, &bob).await;
    let (got, _) = query(&mut b, 2, 0, filter()).await;
    assert_eq!(got, vec![reply.clone()]);
    let mut c = client_as(&server, &carol).await;
    let (got, _) = query(&mut c, 2, 0, filter()).await;
    assert!(got.is_empty());
    let (got, _) = query(&mut anon, 2, 0, filter()).await;
    assert!(got.is_empty());
    let (got, code) = get(&mut anon, 3, vec![Reference::Id(reply.id())]).await;
    assert_eq!((got.len(), code), (0, ResultCode::NOT_FOUND));

    // A public inbox serves them to anyone.
    let server = start_with(
        roles(false, true, false, true),
        serving(vec![alice.public()]),
    )
    .await;
    let mut anon = client(&server).await;
    assert_eq!(submit(&mut anon, &reply).await, ResultCode::ACCEPTED);
    let (got, _) = query(&mut anon, 1, 0, filter()).await;
    assert_eq!(got, vec![reply]);
}

#[tokio::test]
async fn an_encryption_server_serves_only_the_recipient() {
    let (alice, bob, carol) = (key(1), key(2), key(3));
    let server = start_with(
        roles(false, false, true, true),
        serving(vec![alice.public()]),
    )
    .await;
    let sealed = kind(9, DuplicateHandling::Unique, ReadAccess::AuthorAndTagged);
    let filter = || FilterBuilder::new().kinds([sealed]).build().unwrap();
    let mut a = client_as(&server, &alice).await;
    let mut b = client_as(&server, &bob).await;
    let mut c = client_as(&server, &carol).await;
    let mut anon = client(&server).await;
    assert!(subscribe(&mut a, 1, filter()).await.is_empty());
    assert!(subscribe(&mut b, 1, filter()).await.is_empty());
    assert!(subscribe(&mut anon, 1, filter()).await.is_empty());

    let message = rec(&bob, sealed, 10, &[&alice, &carol]);
    assert_eq!(submit(&mut b, &message).await, ResultCode::ACCEPTED);
    assert_eq!(
        submit(&mut b, &rec(&bob, sealed, 11, &[&carol])).await,
        ResultCode::UNAUTHORIZED
    );
    // Alice only: not the author, not the other tagged key, not anyone,
    // even with `inbox_public` set.
    assert_eq!(next_record(&mut a).await, message);
    silent(&mut b).await;
    silent(&mut anon).await;
    for conn in [&mut b, &mut c, &mut anon] {
        let (got, code) = get(conn, 2, vec![Reference::Id(message.id())]).await;
        assert_eq!((got.len(), code), (0, ResultCode::NOT_FOUND));
    }
    let (got, _) = query(&mut a, 3, 0, filter()).await;
    assert_eq!(got, vec![message]);
}

// ---------------------------------------------------------------------
// Bans

#[tokio::test]
async fn banned_keys_get_the_ban_codes() {
    let (alice, mallory, eve, trent) = (key(1), key(6), key(7), key(8));
    let now = now_nanos();
    let server = start_with(ServerConfig::default(), |store| {
        store.ban_key(&mallory.public(), Ban::Permanent).unwrap();
        store
            .ban_key(&eve.public(), Ban::Until(ts(now + HOUR)))
            .unwrap();
        store
            .ban_key(&trent.public(), Ban::Until(ts(now - HOUR)))
            .unwrap();
    })
    .await;
    let mut anon = client(&server).await;
    // Authored by the banned key, or signed by it on someone's behalf.
    assert_eq!(
        submit(&mut anon, &rec(&mallory, public_kind(), 10, &[])).await,
        ResultCode::PUBKEY_PERM_BANNED
    );
    assert_eq!(
        submit(
            &mut anon,
            &build(&alice, &mallory, public_kind(), 11, &[], false)
        )
        .await,
        ResultCode::PUBKEY_PERM_BANNED
    );
    assert_eq!(
        submit(&mut anon, &rec(&eve, public_kind(), 12, &[])).await,
        ResultCode::PUBKEY_TEMP_BANNED
    );
    // An expired ban no longer counts.
    assert_eq!(
        submit(&mut anon, &rec(&trent, public_kind(), 13, &[])).await,
        ResultCode::ACCEPTED
    );
    // Authenticating as a banned key is refused with its code.
    assert!(matches!(
        try_client_as(&server, &mallory).await,
        Err(NetError::AuthenticationRefused {
            code: ResultCode::PUBKEY_PERM_BANNED
        })
    ));
    assert!(matches!(
        try_client_as(&server, &eve).await,
        Err(NetError::AuthenticationRefused {
            code: ResultCode::PUBKEY_TEMP_BANNED
        })
    ));
    assert!(try_client_as(&server, &trent).await.is_ok());
}

#[tokio::test]
async fn a_subkey_of_a_banned_master_is_banned_too() {
    let (mallory, phone) = (key(6), key(21));
    let dir = TempDir::new();
    {
        // Mallory's schedule is stored before the ban.
        let store = Store::open(dir.0.join("store"), StoreConfig::default()).unwrap();
        let s = schedule(&mallory, &[(&phone, KeyMarker::ActiveSigningKey, 0)], 5);
        store.insert(&s, ts(6)).unwrap();
        store.ban_key(&mallory.public(), Ban::Permanent).unwrap();
    }
    let store = Store::open(dir.0.join("store"), StoreConfig::default()).unwrap();
    let handle = Server::start_for_tests(
        ServerConfig::default(),
        SecretKey::from_bytes(&[9; 32]),
        std::sync::Arc::new(store),
    )
    .await
    .unwrap();
    let server = TestServer { handle, _dir: dir };
    assert!(matches!(
        try_client_as(&server, &phone).await,
        Err(NetError::AuthenticationRefused {
            code: ResultCode::PUBKEY_PERM_BANNED
        })
    ));
}

#[tokio::test]
async fn banned_addresses_get_the_ban_codes() {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let server = start_with(ServerConfig::default(), |store| {
        store.ban_ip(loopback, Ban::Permanent).unwrap();
    })
    .await;
    // Anonymous: the upgrade completes, then Closing with the code.
    let mut anon = client(&server).await;
    assert_eq!(closing(&mut anon).await, ResultCode::IP_PERM_BANNED);
    // Authenticating: the code comes instead of the answer to Hello Auth.
    assert!(matches!(
        try_client_as(&server, &key(1)).await,
        Err(NetError::AuthenticationRefused {
            code: ResultCode::IP_PERM_BANNED
        })
    ));
    // The status page is refused too.
    let mut tcp = TcpStream::connect(server.handle.local_addr())
        .await
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");

    let server = start_with(ServerConfig::default(), |store| {
        let until = ts(now_nanos() + HOUR);
        store.ban_ip(loopback, Ban::Until(until)).unwrap();
    })
    .await;
    let mut anon = client(&server).await;
    assert_eq!(closing(&mut anon).await, ResultCode::IP_TEMP_BANNED);
}
