//! Integration tests of the client against real servers on loopback (and a
//! few small fake servers that lie or drop the connection).
//!
//! Servers listen on `ws://127.0.0.1:port/`, which is not a Mosaic URL: a
//! `StaticDirectory` maps each server key to that address, so the client
//! still reaches every server by key and checks its proof (D-3).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mosaic_client::{
    Backoff, BulkOptions, Client, ClientConfig, ClientError, ConnectProblem, Misbehaviour,
    ServerAddress, ServerId, ServerOutcome, StaticDirectory, Subscription, SubscriptionEvent,
};
use mosaic_core::handshake::{AuthNonce, PROTOCOL_VERSION, ServerHandshake};
use mosaic_core::{
    FilterBuilder, KeyMarker, KeySchedule, KeyScheduleEntry, KeyScheduleError, Kind, Message,
    Nonce, OwnedFilter, OwnedRecord, OwnedTag, OwnedTagSet, Profile, PublicKey, RecordBuilder,
    ResultCode, SecretKey, ServerUsage, SignerStatus, Timestamp, UserBootstrap, UserBootstrapEntry,
};
use mosaic_net::{AcceptConfig, Incoming, accept};
use mosaic_server::{Server, ServerConfig, ServerHandle};
use mosaic_store::{Store, StoreConfig};
use tokio::net::TcpListener;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mosaic-client-test-{}-{}",
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

/// Opens the store in `dir`, waiting for a server that just stopped to let
/// go of it.
async fn open_store(dir: &TempDir) -> Store {
    let mut config = StoreConfig::default();
    config.cache_bytes = 8 * 1024 * 1024;
    for _ in 0..100 {
        match Store::open(dir.0.join("store"), config.clone()) {
            Ok(store) => return store,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the store cannot be opened again");
}

/// A real server on loopback, with its own store.
struct TestServer {
    handle: ServerHandle,
    key: SecretKey,
    dir: TempDir,
}

impl TestServer {
    async fn start(seed: u8) -> TestServer {
        TestServer::start_with(seed, ServerConfig::default()).await
    }

    async fn start_with(seed: u8, config: ServerConfig) -> TestServer {
        let dir = TempDir::new();
        let store = Arc::new(open_store(&dir).await);
        let key = SecretKey::from_bytes(&[seed; 32]);
        let handle = Server::start_for_tests(config, key.clone(), store)
            .await
            .unwrap();
        TestServer { handle, key, dir }
    }

    fn public(&self) -> PublicKey {
        self.key.public()
    }

    fn address(&self) -> ServerAddress {
        ServerAddress::parse(self.handle.url()).unwrap()
    }

    /// Stops the server; its store stays on disk.
    async fn stop(self) -> Stopped {
        let addr = self.handle.local_addr();
        self.handle.shutdown().await.unwrap();
        Stopped {
            addr,
            key: self.key,
            dir: self.dir,
        }
    }
}

/// A stopped server: its address, key and store, to start it again.
struct Stopped {
    addr: SocketAddr,
    key: SecretKey,
    dir: TempDir,
}

impl Stopped {
    /// Writes a record into the store while the server is down.
    async fn insert(&self, record: &OwnedRecord) {
        let store = open_store(&self.dir).await;
        store
            .insert(record, Timestamp::from_nanos(T0).unwrap())
            .unwrap();
    }

    /// Starts the server again on the same port, key and store.
    async fn restart(self) -> TestServer {
        let store = Arc::new(open_store(&self.dir).await);
        let config = ServerConfig {
            listen: self.addr,
            ..ServerConfig::default()
        };
        let mut bound = None;
        for _ in 0..100 {
            match Server::bind(config.clone(), self.key.clone(), store.clone(), None).await {
                Ok(server) => {
                    bound = Some(server);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let handle = bound.expect("the port cannot be bound again").spawn();
        TestServer {
            handle,
            key: self.key,
            dir: self.dir,
        }
    }
}

const T0: u64 = 1_750_000_000_000_000_000;
const SECOND: u64 = 1_000_000_000;

fn key(seed: u8) -> SecretKey {
    SecretKey::from_bytes(&[seed; 32])
}

fn post(author: &SecretKey, seconds: u64, text: &str) -> OwnedRecord {
    post_by(author, author, seconds, text)
}

/// A microblog post by `author`, signed by `signer`.
fn post_by(author: &SecretKey, signer: &SecretKey, seconds: u64, text: &str) -> OwnedRecord {
    let t = T0 + seconds * SECOND;
    RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(t).unwrap())
        .nonce(Nonce::from_key(text.as_bytes()))
        .author(author.public())
        .payload(text.as_bytes())
        .build(signer)
        .unwrap()
}

fn microblog() -> OwnedFilter {
    FilterBuilder::new()
        .kinds([Kind::MICROBLOG_ROOT])
        .build()
        .unwrap()
}

fn bootstrap(entries: &[(PublicKey, ServerUsage)]) -> UserBootstrap {
    UserBootstrap::new(
        entries
            .iter()
            .map(|&(server, usage)| UserBootstrapEntry { usage, server })
            .collect(),
    )
    .unwrap()
}

fn client_with(directory: &Arc<StaticDirectory>, identity: Option<SecretKey>) -> Client {
    Client::new(ClientConfig {
        identity,
        directory: directory.clone(),
        request_timeout: Duration::from_secs(5),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(300),
            jitter: 0.3,
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

fn ids(records: &[OwnedRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.payload_text().unwrap().into_owned())
        .collect()
}

/// A client that publishes a record to a user's outbox servers, fetches it
/// back merged and de-duplicated, newest first; a record tagging another
/// user reaches that user's inbox too.
#[tokio::test]
async fn publish_and_fetch_across_outboxes_and_inboxes() {
    let servers = [
        TestServer::start(11).await,
        TestServer::start(12).await,
        TestServer::start(13).await,
        TestServer::start(14).await,
    ];
    let bob_inbox = TestServer::start(15).await;
    let (alice, bob) = (key(1), key(2));
    let directory = Arc::new(StaticDirectory::new());
    for s in servers.iter().chain([&bob_inbox]) {
        directory.set_server_addresses(s.public(), vec![s.address()]);
    }
    // Four outboxes: only the first three are used.
    let outboxes: Vec<_> = servers
        .iter()
        .map(|s| (s.public(), ServerUsage::OUTBOX))
        .collect();
    directory.set_user(alice.public(), bootstrap(&outboxes));
    directory.set_user(
        bob.public(),
        bootstrap(&[(bob_inbox.public(), ServerUsage::INBOX)]),
    );
    let client = client_with(&directory, None);

    let r1 = post(&alice, 1, "one");
    let report = client.publish(&r1).await.unwrap();
    assert_eq!(report.per_server.len(), 3);
    assert_eq!(report.stored_on(), 3);
    for (outcome, server) in report.per_server.iter().zip(&servers) {
        assert_eq!(outcome.server, server.public());
        assert_eq!(outcome.usage, ServerUsage::OUTBOX);
        assert_eq!(outcome.result.as_ref().unwrap(), &ResultCode::ACCEPTED);
    }
    assert!(report.outcome(&servers[3].public()).is_none());

    // Records that only one outbox holds.
    let r2 = post(&alice, 2, "two");
    let r3 = post(&alice, 3, "three");
    let s0 = client.connect_key(&servers[0].public()).await.unwrap();
    assert_eq!(s0.server(), &ServerId::Key(servers[0].public()));
    assert_eq!(s0.submit(&r2).await.unwrap(), ResultCode::ACCEPTED);
    let s1 = client.connect_key(&servers[1].public()).await.unwrap();
    assert_eq!(s1.submit(&r3).await.unwrap(), ResultCode::ACCEPTED);

    // Submissions are pipelined on one connection, each answer matched to
    // its record by id prefix.
    let batch: Vec<OwnedRecord> = (0..20u64)
        .map(|i| {
            RecordBuilder::new(Kind::BLOG_POST, Timestamp::from_nanos(T0 + i).unwrap())
                .nonce(Nonce::from_key(&i.to_be_bytes()))
                .payload(b"batch")
                .build(&alice)
                .unwrap()
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, record) in batch.iter().cloned().enumerate() {
        let link = s0.clone();
        tasks.spawn(async move {
            // Every other record is sent twice, one right after the other.
            let first = link.submit(&record).await.unwrap();
            let second = if i % 2 == 0 {
                Some(link.submit(&record).await.unwrap())
            } else {
                None
            };
            (first, second)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (first, second) = joined.unwrap();
        assert_eq!(first, ResultCode::ACCEPTED);
        assert!(second.is_none_or(|c| c == ResultCode::DUPLICATE));
    }
    let blogs = FilterBuilder::new()
        .authors([alice.public()])
        .kinds([Kind::BLOG_POST])
        .build()
        .unwrap();
    assert_eq!(s0.query(&blogs, 0).await.unwrap().len(), 20);

    // A record that tags Bob goes to his inbox as well.
    let tags = OwnedTagSet::from_tags([OwnedTag::notify_public_key(&bob.public())]).unwrap();
    let r4 = RecordBuilder::new(
        Kind::MICROBLOG_ROOT,
        Timestamp::from_nanos(T0 + 4 * SECOND).unwrap(),
    )
    .nonce(Nonce::from_key(b"four"))
    .tags(&tags)
    .payload(b"four")
    .build(&alice)
    .unwrap();
    let report = client.publish(&r4).await.unwrap();
    assert_eq!(report.per_server.len(), 4);
    assert_eq!(report.stored_on(), 4);
    let inbox = report.outcome(&bob_inbox.public()).unwrap();
    assert_eq!(inbox.usage, ServerUsage::INBOX);
    assert!(report.unreached_users.is_empty());

    // Fetch: merged, each record once, newest first.
    let fetched = client
        .fetch(&alice.public(), &microblog(), 0)
        .await
        .unwrap();
    assert_eq!(ids(&fetched.records), ["four", "three", "two", "one"]);
    assert_eq!(fetched.per_server.len(), 3);
    assert!(fetched.per_server.iter().all(|(_, o)| o.is_complete()));
    assert!(matches!(
        fetched.outcome(&servers[0].public()),
        Some(ServerOutcome::Complete { records: 3 })
    ));
    assert!(fetched.rejected.is_empty());
    let newest_two = client
        .fetch(&alice.public(), &microblog(), 2)
        .await
        .unwrap();
    assert_eq!(ids(&newest_two.records), ["four", "three"]);

    // The fourth outbox got nothing; Bob's inbox got only the tagged record.
    let by_alice = FilterBuilder::new()
        .authors([alice.public()])
        .build()
        .unwrap();
    let fourth = client.connect_key(&servers[3].public()).await.unwrap();
    assert!(fourth.query(&by_alice, 0).await.unwrap().is_empty());
    let inbox = client.connect_key(&bob_inbox.public()).await.unwrap();
    assert_eq!(ids(&inbox.query(&by_alice, 0).await.unwrap()), ["four"]);

    // Publishing again is harmless.
    let again = client.publish(&r1).await.unwrap();
    assert!(
        again
            .per_server
            .iter()
            .all(|o| o.result.as_ref().unwrap() == &ResultCode::DUPLICATE)
    );
    assert_eq!(again.stored_on(), 3);

    // Profiles: fetched from the outboxes, shown with the key.
    assert!(client.profile(&alice.public()).await.unwrap().is_none());
    let carol = key(3);
    directory.set_user(carol.public(), bootstrap(&outboxes));
    let profile = Profile::new("carol").unwrap();
    let record = profile
        .build_record(
            &carol,
            Timestamp::from_nanos(T0).unwrap(),
            Profile::default_nonce(),
        )
        .unwrap();
    assert_eq!(client.publish(&record).await.unwrap().stored_on(), 3);
    assert_eq!(
        client.profile(&carol.public()).await.unwrap().as_ref(),
        Some(&profile)
    );
    let shown = client.display_name(&carol.public()).await;
    assert!(shown.starts_with("carol (mopub0"), "{shown}");
    assert_eq!(
        client.display_name(&alice.public()).await,
        alice.public().to_printable()
    );

    // A user without a bootstrap cannot be published for or fetched.
    let nobody = key(9);
    assert!(matches!(
        client.publish(&post(&nobody, 1, "lost")).await,
        Err(ClientError::NoUserBootstrap { user }) if user == nobody.public()
    ));
    assert!(matches!(
        client.fetch(&nobody.public(), &microblog(), 0).await,
        Err(ClientError::NoUserBootstrap { .. })
    ));
}

/// Connecting by key through the directory: unsupported transports are
/// skipped, and a server that cannot prove the expected key is refused.
/// An identity authenticates (D-4), which FROM_AUTHOR records need.
#[tokio::test]
async fn connect_by_key_requires_the_key_proof() {
    let server = TestServer::start(21).await;
    let directory = Arc::new(StaticDirectory::new());
    let quic = ServerAddress::parse("mosaic://127.0.0.1:1/").unwrap();
    directory.set_server_addresses(server.public(), vec![quic.clone(), server.address()]);
    let client = client_with(&directory, None);
    let link = client.connect_key(&server.public()).await.unwrap();
    assert!(link.is_connected());
    assert_eq!(link.server(), &ServerId::Key(server.public()));

    // Another key at the same address: the server cannot prove it.
    let impostor = key(22).public();
    directory.set_server_addresses(impostor, vec![server.address()]);
    match client.connect_key(&impostor).await {
        Err(ClientError::Unreachable {
            server: s,
            attempts,
        }) => {
            assert_eq!(s, ServerId::Key(impostor));
            assert_eq!(attempts.len(), 1);
            assert!(matches!(attempts[0].problem, ConnectProblem::KeyNotProven));
        }
        other => panic!("expected the server to be refused, got {other:?}"),
    }
    match client
        .connect_url(server.handle.url(), Some(impostor))
        .await
    {
        Err(ClientError::Unreachable { attempts, .. }) => {
            assert!(matches!(attempts[0].problem, ConnectProblem::KeyNotProven));
        }
        other => panic!("expected the server to be refused, got {other:?}"),
    }
    // By address alone, or with the right key, it is accepted.
    let anonymous = client.connect_url(server.handle.url(), None).await.unwrap();
    assert_eq!(
        anonymous.server(),
        &ServerId::Address(server.handle.url().to_owned())
    );
    client
        .connect_url(server.handle.url(), Some(server.public()))
        .await
        .unwrap();

    // Only unsupported transports, or no address at all.
    let elsewhere = key(23).public();
    directory.set_server_addresses(elsewhere, vec![quic]);
    match client.connect_key(&elsewhere).await {
        Err(ClientError::Unreachable { attempts, .. }) => assert!(matches!(
            attempts[0].problem,
            ConnectProblem::UnsupportedTransport { .. }
        )),
        other => panic!("expected no usable address, got {other:?}"),
    }
    assert!(matches!(
        client.connect_key(&key(24).public()).await,
        Err(ClientError::NoServerAddress { .. })
    ));

    // A FROM_AUTHOR record needs its author authenticated.
    let alice = key(1);
    directory.set_user(
        alice.public(),
        bootstrap(&[(server.public(), ServerUsage::ALL)]),
    );
    let signed = RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(T0).unwrap())
        .nonce(Nonce::from_key(b"mine"))
        .from_author(true)
        .payload(b"mine")
        .build(&alice)
        .unwrap();
    let report = client.publish(&signed).await.unwrap();
    assert_eq!(
        report.per_server[0].result.as_ref().unwrap(),
        &ResultCode::REQUIRES_AUTHENTICATION
    );
    let as_alice = client_with(&directory, Some(alice.clone()));
    let report = as_alice.publish(&signed).await.unwrap();
    assert_eq!(
        report.per_server[0].result.as_ref().unwrap(),
        &ResultCode::ACCEPTED
    );
}

/// What a fake server answers to every Query and Subscribe.
#[derive(Clone)]
enum Answer {
    /// A record, as it is.
    Record(OwnedRecord),
    /// A record whose signature is damaged.
    Damaged(OwnedRecord),
}

/// How a fake server ends its answer.
#[derive(Clone, Copy)]
enum Ending {
    /// Query Closed SUCCESS (Locally Complete for a subscription).
    Close,
    /// Drops the connection.
    Drop,
}

/// A fake server with a real key and handshake, answering every query with
/// `answers` and then `ending`.
async fn spawn_fake(key: SecretKey, answers: Vec<Answer>, ending: Ending) -> ServerAddress {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            let (key, answers) = (key.clone(), answers.clone());
            tokio::spawn(async move {
                let config = AcceptConfig::default();
                let Ok(Incoming::Upgrade(upgrade)) = accept(tcp, peer, None, &config).await else {
                    return;
                };
                let mut handshake = ServerHandshake::new(key.public(), &[PROTOCOL_VERSION], &[]);
                let nonce = AuthNonce::random(&mut rand::rng());
                let ack = handshake
                    .handle_hello(upgrade.hello(), &key, nonce, None)
                    .unwrap();
                let Ok(conn) = upgrade.accept(&ack, &config.connection).await else {
                    return;
                };
                let (sender, mut receiver) = conn.split();
                while let Ok(Some(received)) = receiver.recv().await {
                    let (query_id, subscribe) = match received.message {
                        Ok(Message::Query { query_id, .. }) => (query_id, false),
                        Ok(Message::Subscribe { query_id, .. }) => (query_id, true),
                        _ => continue,
                    };
                    for answer in &answers {
                        let (record, damaged) = match answer {
                            Answer::Record(r) => (r, false),
                            Answer::Damaged(r) => (r, true),
                        };
                        let mut bytes = Message::Record {
                            query_id,
                            record: record.clone(),
                        }
                        .encode()
                        .unwrap();
                        if damaged {
                            // The last byte belongs to the signature.
                            *bytes.last_mut().unwrap() ^= 0x01;
                        }
                        sender.send_encoded(bytes).await.unwrap();
                    }
                    match ending {
                        Ending::Close => {
                            let end = if subscribe {
                                Message::LocallyComplete { query_id }
                            } else {
                                Message::QueryClosed {
                                    query_id,
                                    code: ResultCode::SUCCESS,
                                }
                            };
                            sender.send(&end).await.unwrap();
                        }
                        Ending::Drop => {
                            // Once what was sent is written, the connection
                            // drops without a word.
                            sender.ready(sender.budget()).await.unwrap();
                            sender.abort();
                            return;
                        }
                    }
                }
            });
        }
    });
    ServerAddress::parse(&format!("ws://{addr}/")).unwrap()
}

/// Servers that lie (records of another author, of another kind, or that
/// do not verify) are dropped for the query, reported and counted; the
/// truthful server's records still come back. So do they when a server
/// drops the connection mid-query.
#[tokio::test]
async fn lying_and_dropping_servers_are_reported() {
    let honest = TestServer::start(31).await;
    let (alice, mallory) = (key(1), key(6));
    let good = post(&alice, 1, "good");
    let only_on_liar = post(&alice, 2, "only on a liar");
    let blog = RecordBuilder::new(Kind::BLOG_POST, Timestamp::from_nanos(T0).unwrap())
        .nonce(Nonce::from_key(b"blog"))
        .payload(b"blog")
        .build(&alice)
        .unwrap();

    let liars = [
        (key(32), Answer::Record(post(&mallory, 3, "not alice's"))),
        (key(33), Answer::Record(blog)),
        (key(34), Answer::Damaged(post(&alice, 4, "damaged"))),
    ];
    let directory = Arc::new(StaticDirectory::new());
    directory.set_server_addresses(honest.public(), vec![honest.address()]);
    let mut liar_keys = Vec::new();
    for (liar, bad) in &liars {
        let answers = vec![Answer::Record(only_on_liar.clone()), bad.clone()];
        let address = spawn_fake(liar.clone(), answers, Ending::Close).await;
        directory.set_server_addresses(liar.public(), vec![address]);
        liar_keys.push(liar.public());
    }
    let client = client_with(&directory, None);
    let honest_link = client.connect_key(&honest.public()).await.unwrap();
    assert_eq!(
        honest_link.submit(&good).await.unwrap(),
        ResultCode::ACCEPTED
    );

    for (i, liar) in liar_keys.iter().enumerate() {
        directory.set_user(
            alice.public(),
            bootstrap(&[
                (*liar, ServerUsage::OUTBOX),
                (honest.public(), ServerUsage::OUTBOX),
            ]),
        );
        let report = client
            .fetch(&alice.public(), &microblog(), 0)
            .await
            .unwrap();
        // The liar's true record is dropped along with its lie.
        assert_eq!(ids(&report.records), ["good"], "liar {i}");
        assert!(report.outcome(&honest.public()).unwrap().is_complete());
        let problem = match report.outcome(liar) {
            Some(ServerOutcome::Misbehaved { problem }) => problem.clone(),
            other => panic!("liar {i} not reported: {other:?}"),
        };
        match i {
            0 | 1 => assert!(
                matches!(problem, Misbehaviour::FilterMismatch { .. }),
                "{problem:?}"
            ),
            _ => assert!(
                matches!(problem, Misbehaviour::InvalidRecord { .. }),
                "{problem:?}"
            ),
        }
        assert_eq!(client.misbehaviour(liar), 1);
    }
    assert_eq!(client.misbehaviour(&honest.public()), 0);

    // A subscription drops a lying server too, and keeps the honest one.
    let mut sub = client
        .subscribe(&[alice.public()], &microblog(), 0)
        .await
        .unwrap();
    let mut dropped = false;
    let mut records = Vec::new();
    let mut caught_up = false;
    while !(dropped && caught_up) {
        match next_event(&mut sub).await {
            SubscriptionEvent::Dropped { server, error } => {
                assert_eq!(server, liar_keys[2]);
                assert!(matches!(error, ClientError::Misbehaved { .. }));
                dropped = true;
            }
            SubscriptionEvent::CaughtUp { server } => {
                assert_eq!(server, honest.public());
                caught_up = true;
            }
            SubscriptionEvent::Record { server, record } => {
                records.push(record);
                // The liar's true record may arrive before its lie.
                assert!(server == honest.public() || server == liar_keys[2]);
            }
            _ => {}
        }
    }
    assert!(ids(&records).contains(&"good".to_owned()));
    assert_eq!(client.misbehaviour(&liar_keys[2]), 2);
    drop(sub);

    // A server that drops the connection mid-query.
    let dropper = key(35);
    let address = spawn_fake(
        dropper.clone(),
        vec![Answer::Record(only_on_liar.clone())],
        Ending::Drop,
    )
    .await;
    directory.set_server_addresses(dropper.public(), vec![address]);
    directory.set_user(
        alice.public(),
        bootstrap(&[
            (dropper.public(), ServerUsage::OUTBOX),
            (honest.public(), ServerUsage::OUTBOX),
        ]),
    );
    let report = client
        .fetch(&alice.public(), &microblog(), 0)
        .await
        .unwrap();
    match report.outcome(&dropper.public()) {
        Some(ServerOutcome::Failed { error, records }) => {
            assert!(
                matches!(error, ClientError::Disconnected { .. }),
                "{error:?}"
            );
            // What it sent before dropping verified, so it is kept.
            assert_eq!(*records, 1);
        }
        other => panic!("the dropped connection is not reported: {other:?}"),
    }
    assert!(report.outcome(&honest.public()).unwrap().is_complete());
    assert_eq!(ids(&report.records), ["only on a liar", "good"]);
    let stats = client.server_stats(&dropper.public());
    assert_eq!((stats.misbehaviour, stats.failures), (0, 1));

    // A server that cannot be reached at all.
    let gone = key(36).public();
    directory.set_server_addresses(
        gone,
        vec![ServerAddress::parse("ws://127.0.0.1:1/").unwrap()],
    );
    directory.set_user(
        alice.public(),
        bootstrap(&[
            (gone, ServerUsage::OUTBOX),
            (honest.public(), ServerUsage::OUTBOX),
        ]),
    );
    let report = client
        .fetch(&alice.public(), &microblog(), 0)
        .await
        .unwrap();
    assert!(matches!(
        report.outcome(&gone),
        Some(ServerOutcome::Failed {
            error: ClientError::Unreachable { .. },
            records: 0
        })
    ));
    assert_eq!(ids(&report.records), ["good"]);
    assert_eq!(client.server_stats(&gone).failures, 1);
    let honest_stats = client.server_stats(&honest.public());
    assert_eq!((honest_stats.misbehaviour, honest_stats.failures), (0, 0));
    assert_eq!(honest_link.stats(), honest_stats);
}

async fn next_event(sub: &mut Subscription) -> SubscriptionEvent {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no subscription event within 10 s")
        .expect("the subscription ended")
}

/// Collects the records a subscription delivers while waiting for events.
struct Watch {
    sub: Subscription,
    records: Vec<OwnedRecord>,
}

impl Watch {
    /// Waits for an event that `wanted` accepts, keeping the records seen
    /// meanwhile.
    async fn until(&mut self, wanted: impl Fn(&SubscriptionEvent) -> bool) -> SubscriptionEvent {
        loop {
            let event = next_event(&mut self.sub).await;
            if let SubscriptionEvent::Record { record, .. } = &event {
                self.records.push(record.clone());
            }
            if wanted(&event) {
                return event;
            }
        }
    }

    /// Waits for the record with this text.
    async fn record(&mut self, text: &str) {
        self.until(|e| {
            matches!(e, SubscriptionEvent::Record { record, .. }
                if record.payload_text().unwrap() == text)
        })
        .await;
    }

    /// Keeps the records that arrive within `period`.
    async fn quiet(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.sub.next()).await {
            if let SubscriptionEvent::Record { record, .. } = event {
                self.records.push(record);
            }
        }
    }
}

/// A live subscription survives a server going down and coming back on
/// the same port: it reconnects, re-subscribes with `since` moved to the
/// newest record seen, and every record arrives exactly once, including
/// one the server received while the client was away.
#[tokio::test]
async fn subscription_survives_a_server_restart() {
    let first = TestServer::start(41).await;
    let second = TestServer::start(42).await;
    let alice = key(1);
    let directory = Arc::new(StaticDirectory::new());
    for s in [&first, &second] {
        directory.set_server_addresses(s.public(), vec![s.address()]);
    }
    directory.set_user(
        alice.public(),
        bootstrap(&[
            (first.public(), ServerUsage::OUTBOX),
            (second.public(), ServerUsage::OUTBOX),
        ]),
    );
    let client = client_with(&directory, None);
    let (first_key, second_key) = (first.public(), second.public());

    let r0 = post(&alice, 1, "before");
    assert_eq!(client.publish(&r0).await.unwrap().stored_on(), 2);
    let sub = client
        .subscribe(&[alice.public()], &microblog(), 0)
        .await
        .unwrap();
    assert_eq!(sub.servers(), [first_key, second_key]);
    let mut watch = Watch {
        sub,
        records: Vec::new(),
    };
    let mut caught_up = Vec::new();
    while caught_up.len() < 2 {
        if let SubscriptionEvent::CaughtUp { server } = watch
            .until(|e| matches!(e, SubscriptionEvent::CaughtUp { .. }))
            .await
            && !caught_up.contains(&server)
        {
            caught_up.push(server);
        }
    }

    let r1 = post(&alice, 10, "live");
    assert_eq!(client.publish(&r1).await.unwrap().stored_on(), 2);
    watch.record("live").await;

    // The first server goes down.
    let stopped = first.stop().await;
    watch
        .until(
            |e| matches!(e, SubscriptionEvent::Disconnected { server, .. } if *server == first_key),
        )
        .await;
    let r2 = post(&alice, 20, "while down");
    let report = client.publish(&r2).await.unwrap();
    assert!(report.outcome(&first_key).unwrap().result.is_err());
    assert!(report.outcome(&second_key).unwrap().is_stored());
    watch.record("while down").await;
    // It receives a record while the client is away.
    let r3 = post(&alice, 30, "missed by nobody");
    stopped.insert(&r3).await;

    // It comes back on the same port.
    let first = stopped.restart().await;
    let since = watch
        .until(
            |e| matches!(e, SubscriptionEvent::Subscribed { server, .. } if *server == first_key),
        )
        .await;
    assert!(matches!(
        since,
        SubscriptionEvent::Subscribed { since: Some(t), .. } if t == r1.timestamp()
    ));
    watch
        .until(|e| matches!(e, SubscriptionEvent::CaughtUp { server } if *server == first_key))
        .await;
    let r4 = post(&alice, 40, "after");
    assert_eq!(client.publish(&r4).await.unwrap().stored_on(), 2);
    watch.record("after").await;
    watch.quiet(Duration::from_millis(500)).await;

    let mut got = ids(&watch.records);
    got.sort();
    let mut expected = vec!["before", "live", "while down", "missed by nobody", "after"];
    expected.sort();
    assert_eq!(got, expected, "every record exactly once");
    drop(watch);
    first.handle.shutdown().await.unwrap();
    second.handle.shutdown().await.unwrap();
}

/// An application that stops reading its subscription stops the
/// connection in turn; the real server ends the subscription with Query
/// Closed TEMPORARY_ERROR once the grace time passes (D-21), and when the
/// application reads again the client resumes from the newest record it
/// had: every record arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_reader_resumes_after_temporary_error_with_nothing_missing() {
    let mut config = ServerConfig::default();
    config.limits.outbound_budget_bytes = 64 * 1024;
    config.limits.slow_reader_grace_secs = 1;
    let server = TestServer::start_with(43, config).await;
    let alice = key(2);
    let directory = Arc::new(StaticDirectory::new());
    directory.set_server_addresses(server.public(), vec![server.address()]);
    directory.set_user(
        alice.public(),
        bootstrap(&[(server.public(), ServerUsage::OUTBOX)]),
    );
    let client = client_with(&directory, None);
    let sub = client
        .subscribe(&[alice.public()], &microblog(), 1)
        .await
        .unwrap();
    let mut watch = Watch {
        sub,
        records: Vec::new(),
    };
    watch
        .until(|e| matches!(e, SubscriptionEvent::CaughtUp { .. }))
        .await;

    // While the application reads nothing, more arrives than the client's
    // buffers, the kernel's and the server's budget hold together.
    let filler = "x".repeat(60_000);
    let records: Vec<OwnedRecord> = (0..400u64)
        .map(|i| post(&alice, 100 + i, &format!("{i:03} {filler}")))
        .collect();
    let mut writer = mosaic_net::connect(server.handle.url(), &Default::default())
        .await
        .unwrap();
    for r in &records {
        writer
            .send(&Message::Submission { record: r.clone() })
            .await
            .unwrap();
        match writer.recv().await.unwrap().unwrap().message.unwrap() {
            Message::SubmissionResult { code, .. } => assert_eq!(code, ResultCode::ACCEPTED),
            other => panic!("unexpected {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The application reads again.
    let interrupted = watch
        .until(|e| matches!(e, SubscriptionEvent::Interrupted { .. }))
        .await;
    assert!(matches!(
        interrupted,
        SubscriptionEvent::Interrupted { code, .. } if code == ResultCode::TEMPORARY_ERROR
    ));
    while watch.records.len() < records.len() {
        watch
            .until(|e| matches!(e, SubscriptionEvent::Record { .. }))
            .await;
    }
    watch.quiet(Duration::from_millis(300)).await;
    let mut got: Vec<_> = watch.records.iter().map(|r| r.id()).collect();
    got.sort();
    let mut want: Vec<_> = records.iter().map(|r| r.id()).collect();
    want.sort();
    assert_eq!(got.len(), want.len(), "no record twice");
    assert_eq!(got, want, "every record");
    drop(watch);
    server.handle.shutdown().await.unwrap();
}

/// Accepts one connection on `listener` as a server with `key` (a real
/// handshake), for a scripted server.
async fn accept_one(listener: &TcpListener, key: &SecretKey) -> mosaic_net::Connection {
    let (tcp, peer) = listener.accept().await.unwrap();
    let config = AcceptConfig::default();
    let Ok(Incoming::Upgrade(upgrade)) = accept(tcp, peer, None, &config).await else {
        panic!("not a Mosaic connection");
    };
    let mut handshake = ServerHandshake::new(key.public(), &[PROTOCOL_VERSION], &[]);
    let nonce = AuthNonce::random(&mut rand::rng());
    let ack = handshake
        .handle_hello(upgrade.hello(), key, nonce, None)
        .unwrap();
    upgrade.accept(&ack, &config.connection).await.unwrap()
}

/// The next Subscribe on a scripted server's connection: its query id and
/// its filter's `since`.
async fn next_subscribe(
    receiver: &mut mosaic_net::Receiver,
) -> (mosaic_core::QueryId, Option<Timestamp>) {
    loop {
        let received = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await
            .expect("no Subscribe within 10 s")
            .unwrap()
            .expect("the client closed the connection");
        if let Ok(Message::Subscribe {
            query_id, filter, ..
        }) = received.message
        {
            return (query_id, filter.since());
        }
    }
}

/// A server that ends a live subscription with Query Closed
/// TEMPORARY_ERROR (as one does with a client that fell behind), then
/// closes the connection with Closing SHUTTING_DOWN: the client subscribes
/// again each time with `since` = the newest record that server sent, and
/// the application gets every record exactly once, although the server
/// sends again the records at `since`.
#[tokio::test]
async fn a_subscription_ended_by_the_server_resumes_without_gap_or_repeat() {
    let (alice, server_key) = (key(1), key(61));
    let r: Vec<OwnedRecord> = [
        (1, "r1"),
        (2, "r2"),
        (3, "r3"),
        (4, "r4 live"),
        (4, "r4b same time, after the cut"),
        (5, "r5 stored while cut"),
        (6, "r6 live"),
        (7, "r7 after reconnecting"),
    ]
    .iter()
    .map(|&(t, text)| post(&alice, t, text))
    .collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address =
        ServerAddress::parse(&format!("ws://{}/", listener.local_addr().unwrap())).unwrap();
    let (sinces_tx, mut sinces) = tokio::sync::mpsc::unbounded_channel();
    let script = {
        let (r, server_key) = (r.clone(), server_key.clone());
        tokio::spawn(async move {
            let record = |query_id, i: usize| Message::Record {
                query_id,
                record: r[i].clone(),
            };
            // First connection.
            let (sender, mut receiver) = accept_one(&listener, &server_key).await.split();
            let (q1, since) = next_subscribe(&mut receiver).await;
            sinces_tx.send(since).unwrap();
            for i in [2, 1, 0] {
                sender.send(&record(q1, i)).await.unwrap();
            }
            sender
                .send(&Message::LocallyComplete { query_id: q1 })
                .await
                .unwrap();
            sender.send(&record(q1, 3)).await.unwrap();
            sender
                .send(&Message::QueryClosed {
                    query_id: q1,
                    code: ResultCode::TEMPORARY_ERROR,
                })
                .await
                .unwrap();
            // The re-subscription: the records at `since` come again.
            let (q2, since) = next_subscribe(&mut receiver).await;
            sinces_tx.send(since).unwrap();
            for i in [5, 4, 3] {
                sender.send(&record(q2, i)).await.unwrap();
            }
            sender
                .send(&Message::LocallyComplete { query_id: q2 })
                .await
                .unwrap();
            sender.send(&record(q2, 6)).await.unwrap();
            sender.close(ResultCode::SHUTTING_DOWN).await;
            sender.closed().await;
            drop(receiver);
            // Second connection, after the client reconnects.
            let (sender, mut receiver) = accept_one(&listener, &server_key).await.split();
            let (q3, since) = next_subscribe(&mut receiver).await;
            sinces_tx.send(since).unwrap();
            for i in [7, 6] {
                sender.send(&record(q3, i)).await.unwrap();
            }
            sender
                .send(&Message::LocallyComplete { query_id: q3 })
                .await
                .unwrap();
            // Stay up until the client goes.
            while let Ok(Some(_)) = receiver.recv().await {}
        })
    };

    let directory = Arc::new(StaticDirectory::new());
    directory.set_server_addresses(server_key.public(), vec![address]);
    directory.set_user(
        alice.public(),
        bootstrap(&[(server_key.public(), ServerUsage::OUTBOX)]),
    );
    let client = client_with(&directory, None);
    let sub = client
        .subscribe(&[alice.public()], &microblog(), 0)
        .await
        .unwrap();
    let mut watch = Watch {
        sub,
        records: Vec::new(),
    };
    let interrupted = watch
        .until(|e| matches!(e, SubscriptionEvent::Interrupted { .. }))
        .await;
    assert!(matches!(
        interrupted,
        SubscriptionEvent::Interrupted {
            code: ResultCode::TEMPORARY_ERROR,
            ..
        }
    ));
    let resumed = watch
        .until(|e| matches!(e, SubscriptionEvent::Subscribed { .. }))
        .await;
    assert!(matches!(
        resumed,
        SubscriptionEvent::Subscribed { since: Some(t), .. } if t == r[3].timestamp()
    ));
    watch
        .until(|e| matches!(e, SubscriptionEvent::Disconnected { .. }))
        .await;
    watch.record("r7 after reconnecting").await;
    watch
        .until(|e| matches!(e, SubscriptionEvent::CaughtUp { .. }))
        .await;
    watch.quiet(Duration::from_millis(300)).await;

    let mut got = ids(&watch.records);
    got.sort();
    let mut expected = ids(&r);
    expected.sort();
    assert_eq!(got, expected, "every record exactly once");
    let mut asked = Vec::new();
    while let Ok(since) = sinces.try_recv() {
        asked.push(since);
    }
    assert_eq!(
        asked,
        [None, Some(r[3].timestamp()), Some(r[6].timestamp())],
        "the `since` of each subscription"
    );
    drop(watch);
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), script)
        .await
        .expect("the client did not close its connection")
        .unwrap();
}

/// Hundreds of records to a server whose rate limit is tiny: submitted
/// several at a time, TOO_FAST waited out and sent again, never reported
/// as a failure; every record is stored, progress is reported along the
/// way, and a record the server refuses for another reason is listed while
/// the rest go on.
#[tokio::test]
async fn submit_many_waits_out_a_tiny_rate_limit() {
    let mut config = ServerConfig::default();
    config.limits.submissions_per_second = 20;
    config.limits.submission_burst = 5;
    let server = TestServer::start_with(62, config).await;
    let alice = key(1);
    let directory = Arc::new(StaticDirectory::new());
    directory.set_server_addresses(server.public(), vec![server.address()]);
    let client = client_with(&directory, None);
    let link = client.connect_key(&server.public()).await.unwrap();

    let mut records: Vec<OwnedRecord> = (0..200)
        .map(|i| post(&alice, i, &format!("record {i}")))
        .collect();
    // Needs its author authenticated: refused, the others still go.
    let refused = RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(T0).unwrap())
        .nonce(Nonce::from_key(b"authors only"))
        .from_author(true)
        .payload(b"authors only")
        .build(&alice)
        .unwrap();
    records.insert(100, refused.clone());

    let mut seen = Vec::new();
    let report = link
        .submit_many(&records, &BulkOptions::default(), |r| {
            seen.push(r.answered())
        })
        .await;
    assert!(report.stopped.is_none(), "{:?}", report.stopped);
    assert_eq!(report.total, 201);
    assert_eq!((report.accepted, report.duplicate), (200, 0));
    assert_eq!(
        report.refused,
        [(refused.id(), ResultCode::REQUIRES_AUTHENTICATION)]
    );
    assert!(!report.is_complete());
    // The limit was hit, and waited out.
    assert!(report.pauses > 0 && report.retried > 0, "{report:?}");
    // Progress went up to every record, never back.
    assert_eq!(seen.last(), Some(&201));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    assert!(seen.len() >= 201);

    // They are all there.
    let stored = link.query(&microblog(), 0).await.unwrap();
    assert_eq!(stored.len(), 200);

    // Again: each one a duplicate, still through the limit.
    let again = link
        .submit_many(&records[..50], &BulkOptions::default(), |_| {})
        .await;
    assert!(again.is_complete(), "{again:?}");
    assert_eq!((again.accepted, again.duplicate), (0, 50));
    drop(link);
    drop(client);
    server.handle.shutdown().await.unwrap();
}

/// Step 5: a record signed by a subkey the author's key schedule does not
/// list is refused; one signed by an active subkey is accepted.
#[tokio::test]
async fn signers_are_checked_against_the_key_schedule() {
    let server = TestServer::start(51).await;
    let (alice, device, stranger) = (key(1), key(7), key(8));
    let directory = Arc::new(StaticDirectory::new());
    directory.set_server_addresses(server.public(), vec![server.address()]);
    directory.set_user(
        alice.public(),
        bootstrap(&[(server.public(), ServerUsage::ALL)]),
    );
    let client = client_with(&directory, None);

    // Posted before the server holds Alice's key schedule, a record signed
    // by a key she never listed is stored (a server that knows the schedule
    // refuses it, see mosaic-server's auth tests); the client must still
    // refuse to show it.
    let by_device = post_by(&alice, &device, 1, "from my phone");
    let by_stranger = post_by(&alice, &stranger, 2, "not from alice");
    for r in [&by_device, &by_stranger] {
        assert_eq!(client.publish(r).await.unwrap().stored_on(), 1);
    }

    let entry = KeyScheduleEntry::new_attested(
        &alice.public(),
        &device,
        KeyMarker::ActiveSigningKey,
        Timestamp::ZERO,
    )
    .unwrap();
    let schedule = KeySchedule::new(alice.public(), vec![entry]).unwrap();
    let record = schedule
        .build_record(
            &alice,
            Timestamp::from_nanos(T0).unwrap(),
            KeySchedule::default_nonce(),
        )
        .unwrap();
    assert_eq!(client.publish(&record).await.unwrap().stored_on(), 1);
    let by_master = post(&alice, 3, "from my desk");
    assert_eq!(client.publish(&by_master).await.unwrap().stored_on(), 1);

    let report = client
        .fetch(&alice.public(), &microblog(), 0)
        .await
        .unwrap();
    assert_eq!(ids(&report.records), ["from my desk", "from my phone"]);
    assert_eq!(report.rejected.len(), 1);
    let rejected = &report.rejected[0];
    assert_eq!(rejected.id, by_stranger.id());
    assert_eq!(rejected.signer, stranger.public());
    assert!(matches!(
        rejected.problem,
        KeyScheduleError::InvalidSigner {
            status: SignerStatus::Unknown,
            ..
        }
    ));
    // Not the server's fault.
    assert!(report.outcome(&server.public()).unwrap().is_complete());
    assert_eq!(client.misbehaviour(&server.public()), 0);

    assert_eq!(
        client.key_schedule(&alice.public()).await.unwrap(),
        Some(schedule)
    );
    assert_eq!(
        client.validate_signer(&by_device).await,
        Ok(SignerStatus::ActiveSubkey)
    );
    assert_eq!(
        client.validate_signer(&by_master).await,
        Ok(SignerStatus::Master)
    );

    // A subscription refuses the same record.
    let mut sub = client
        .subscribe(&[alice.public()], &microblog(), 0)
        .await
        .unwrap();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    loop {
        match next_event(&mut sub).await {
            SubscriptionEvent::Record { record, .. } => accepted.push(record),
            SubscriptionEvent::Rejected { rejected, .. } => refused.push(rejected.id),
            SubscriptionEvent::CaughtUp { .. } => break,
            _ => {}
        }
    }
    assert_eq!(ids(&accepted), ["from my desk", "from my phone"]);
    assert_eq!(refused, [by_stranger.id()]);
}

#[tokio::test]
async fn the_dht_directory_resolves_published_bootstraps() {
    use mosaic_client::{DhtDirectory, Directory};
    use mosaic_core::{ServerUsage, UserBootstrap, UserBootstrapEntry};
    use mosaic_dht::{Dht, Resolver, Testnet};

    let testnet = Testnet::start(8).await.unwrap();
    let dht = Dht::start(testnet.client_config()).unwrap();
    let alice = mosaic_core::SecretKey::from_bytes(&[21; 32]);
    let server = mosaic_core::SecretKey::from_bytes(&[22; 32]).public();
    let bootstrap = UserBootstrap::new(vec![UserBootstrapEntry {
        usage: ServerUsage::OUTBOX,
        server,
    }])
    .unwrap();
    dht.publish_user(&alice, &bootstrap).await.unwrap();
    let directory = DhtDirectory::new(Resolver::new(Dht::start(testnet.client_config()).unwrap()));
    assert_eq!(
        directory.user_bootstrap(&alice.public()).await.unwrap(),
        Some(bootstrap)
    );
    assert_eq!(directory.server_bootstrap(&server).await.unwrap(), None);
}
