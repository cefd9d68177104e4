//! Operations on a running server: live bans through the admin socket, the
//! socket itself (owner only, one server, stale sockets replaced), record
//! removal, the allow-list, statistics and export, and configuration
//! reload.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mosaic_core::{KeyMarker, Message, QueryId, Reference, ResultCode, SecretKey, Timestamp};
use mosaic_net::{ConnectOptions, Connection, NetError, connect};
use mosaic_server::{
    ADMIN_SOCKET, AdminClient, AdminError, FailureCode, ReloadError, Roles, Server, ServerConfig,
    ServerError,
};
use mosaic_store::{Ban, Store, StoreConfig};

use super::auth::{closing, key, schedule, ts};
use super::{
    MICROBLOG, TempDir, TestServer, by_author, client, client_as, query, record, recv, submit,
};

/// Starts a server with its admin socket in its data directory, on a store
/// prepared by `setup`.
async fn start_admin(
    mut config: ServerConfig,
    setup: impl FnOnce(&Store),
) -> (TestServer, PathBuf) {
    let dir = TempDir::new();
    let store = Store::open(dir.0.join("store"), StoreConfig::default()).unwrap();
    setup(&store);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut server = Server::bind(
        config,
        SecretKey::from_bytes(&[9; 32]),
        Arc::new(store),
        None,
    )
    .await
    .unwrap();
    let socket = dir.0.join(ADMIN_SOCKET);
    server.serve_admin(&socket).await.unwrap();
    assert_eq!(server.admin_path(), Some(socket.clone()));
    let handle = server.spawn();
    (TestServer { handle, _dir: dir }, socket)
}

fn now_nanos() -> u64 {
    Timestamp::from_system_time(SystemTime::now())
        .unwrap()
        .as_nanos()
}

/// Reads until the connection ends; the messages seen on the way.
async fn drain(conn: &mut Connection) -> Vec<Message> {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), conn.recv()).await {
            Ok(Ok(Some(received))) => seen.extend(received.message.ok()),
            Ok(Ok(None)) | Ok(Err(_)) => return seen,
            Err(_) => panic!("the connection did not end within 10 s; saw {seen:?}"),
        }
    }
}

async fn subscribe(conn: &mut Connection, id: u16, filter: mosaic_core::OwnedFilter) {
    conn.send(&Message::Subscribe {
        query_id: QueryId(id),
        limit: 0,
        filter,
    })
    .await
    .unwrap();
    assert_eq!(
        recv(conn).await,
        Message::LocallyComplete {
            query_id: QueryId(id)
        }
    );
}

async fn try_client_as(server: &TestServer, key: &SecretKey) -> Result<Connection, NetError> {
    let options = ConnectOptions {
        client_key: Some(key.clone()),
        expected_server: Some(server.handle.public_key()),
        ..ConnectOptions::default()
    };
    connect(server.handle.url(), &options).await
}

#[tokio::test]
async fn a_key_ban_closes_its_live_connections_and_their_subscriptions() {
    let (alice, phone, bob) = (key(1), key(21), key(2));
    let (server, socket) = start_admin(ServerConfig::default(), |store| {
        let s = schedule(&alice, &[(&phone, KeyMarker::ActiveSigningKey, 0)], 5);
        store.insert(&s, ts(6)).unwrap();
    })
    .await;
    // Alice, directly and through her phone's subkey, each subscribed.
    let mut direct = client_as(&server, &alice).await;
    subscribe(&mut direct, 1, by_author(&bob)).await;
    let mut delegated = client_as(&server, &phone).await;
    subscribe(&mut delegated, 2, by_author(&bob)).await;
    let mut bystander = client_as(&server, &bob).await;
    subscribe(&mut bystander, 3, by_author(&bob)).await;

    let mut admin = AdminClient::connect(&socket).await.unwrap();
    assert_eq!(admin.stats().await.unwrap().live.subscriptions, 3);
    let closed = admin
        .ban_key(&alice.public(), Ban::Permanent)
        .await
        .unwrap();
    assert_eq!(closed, 2);
    for conn in [&mut direct, &mut delegated] {
        let seen = drain(conn).await;
        assert_eq!(
            seen,
            [Message::Closing {
                code: ResultCode::PUBKEY_PERM_BANNED
            }]
        );
    }
    // Their subscriptions ended; the bystander's goes on and gets records.
    assert_eq!(admin.stats().await.unwrap().live.subscriptions, 1);
    let mut writer = client(&server).await;
    let r = record(&bob, MICROBLOG, 77, b"still delivered");
    assert_eq!(submit(&mut writer, &r).await, ResultCode::ACCEPTED);
    assert_eq!(
        recv(&mut bystander).await,
        Message::Record {
            query_id: QueryId(3),
            record: r
        }
    );
    // New connections of the key, or through its subkey, are refused.
    for k in [&alice, &phone] {
        assert!(matches!(
            try_client_as(&server, k).await,
            Err(NetError::AuthenticationRefused {
                code: ResultCode::PUBKEY_PERM_BANNED
            })
        ));
    }
    // Listed, then lifted.
    let bans = admin.bans().await.unwrap();
    assert_eq!(bans.keys.get(&alice.public()), Some(&Ban::Permanent));
    assert!(admin.unban_key(&alice.public()).await.unwrap());
    assert!(!admin.unban_key(&alice.public()).await.unwrap());
    assert!(try_client_as(&server, &alice).await.is_ok());
}

#[tokio::test]
async fn a_subkey_ban_closes_only_that_subkey() {
    let (alice, phone) = (key(1), key(21));
    let (server, socket) = start_admin(ServerConfig::default(), |store| {
        let s = schedule(&alice, &[(&phone, KeyMarker::ActiveSigningKey, 0)], 5);
        store.insert(&s, ts(6)).unwrap();
    })
    .await;
    let mut direct = client_as(&server, &alice).await;
    let mut delegated = client_as(&server, &phone).await;
    let mut admin = AdminClient::connect(&socket).await.unwrap();
    let until = Timestamp::from_nanos(now_nanos() + 3_600_000_000_000).unwrap();
    let closed = admin
        .ban_key(&phone.public(), Ban::Until(until))
        .await
        .unwrap();
    assert_eq!(closed, 1);
    assert_eq!(
        closing(&mut delegated).await,
        ResultCode::PUBKEY_TEMP_BANNED
    );
    // The master's own connection is untouched.
    let (_, code) = query(&mut direct, 9, 0, by_author(&alice)).await;
    assert_eq!(code, ResultCode::SUCCESS);
}

#[tokio::test]
async fn an_address_ban_closes_live_connections_until_it_ends() {
    let (server, socket) = start_admin(ServerConfig::default(), |_| {}).await;
    let alice = key(1);
    let mut anonymous = client(&server).await;
    subscribe(&mut anonymous, 1, by_author(&alice)).await;
    let mut authenticated = client_as(&server, &alice).await;

    let mut admin = AdminClient::connect(&socket).await.unwrap();
    // A ban already over is refused, with a reason.
    let past = Timestamp::from_nanos(now_nanos() - 1_000).unwrap();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match admin.ban_ip(loopback, Ban::Until(past)).await {
        Err(AdminError::Refused {
            code: FailureCode::Invalid,
            message,
        }) => assert!(message.contains("not in the future"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let end = now_nanos() + 2_000_000_000;
    let closed = admin
        .ban_ip(loopback, Ban::Until(Timestamp::from_nanos(end).unwrap()))
        .await
        .unwrap();
    assert_eq!(closed, 2);
    for conn in [&mut anonymous, &mut authenticated] {
        assert_eq!(
            drain(conn).await,
            [Message::Closing {
                code: ResultCode::IP_TEMP_BANNED
            }]
        );
    }
    assert_eq!(admin.stats().await.unwrap().live.subscriptions, 0);
    // A new connection from the address is told the code.
    let mut again = client(&server).await;
    assert_eq!(closing(&mut again).await, ResultCode::IP_TEMP_BANNED);

    // Once the ban has ended, the address is served again.
    while now_nanos() <= end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut after = client(&server).await;
    let (_, code) = query(&mut after, 2, 0, by_author(&alice)).await;
    assert_eq!(code, ResultCode::SUCCESS);
    // The expired ban is still listed until lifted.
    let bans = admin.bans().await.unwrap();
    assert!(bans.ips.contains_key(&loopback));
    assert!(admin.unban_ip(loopback).await.unwrap());
    assert!(admin.bans().await.unwrap().ips.is_empty());
}

#[tokio::test]
async fn the_socket_serves_users_removal_stats_and_export() {
    let config = ServerConfig {
        roles: Roles {
            outbox: true,
            ..Roles::default()
        },
        ..ServerConfig::default()
    };
    let (server, socket) = start_admin(config, |_| {}).await;
    let alice = key(1);
    let mut conn = client(&server).await;
    let first = record(&alice, MICROBLOG, 1_000, b"before");
    assert_eq!(submit(&mut conn, &first).await, ResultCode::UNAUTHORIZED);

    let mut admin = AdminClient::connect(&socket).await.unwrap();
    assert_eq!(admin.add_users(&[alice.public()]).await.unwrap(), [true]);
    assert_eq!(admin.add_users(&[alice.public()]).await.unwrap(), [false]);
    assert!(admin.users().await.unwrap().contains(&alice.public()));
    // The outbox role takes her records at once.
    let records: Vec<_> = (0..5u64)
        .map(|i| record(&alice, MICROBLOG, 2_000 + i, b"hers"))
        .collect();
    for r in &records {
        assert_eq!(submit(&mut conn, r).await, ResultCode::ACCEPTED);
    }
    let stats = admin.stats().await.unwrap();
    assert_eq!(stats.store.records, 5);
    assert_eq!(stats.store.kinds.len(), 1);
    assert_eq!(stats.live.connections, 1);
    assert_eq!(stats.live.sessions, 1);
    assert_eq!(
        stats.live.server_key,
        server.handle.public_key().to_server_printable()
    );

    // Removal: gone from Get and Query at once.
    let gone = records[2].id();
    let missing = record(&alice, MICROBLOG, 9_999, b"never stored").id();
    assert_eq!(admin.remove(&[gone, missing]).await.unwrap(), [true, false]);
    conn.send(&Message::Get {
        query_id: QueryId(5),
        references: vec![Reference::Id(gone)],
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut conn).await,
        Message::QueryClosed {
            query_id: QueryId(5),
            code: ResultCode::NOT_FOUND
        }
    );
    let (found, _) = query(&mut conn, 6, 0, by_author(&alice)).await;
    assert_eq!(found.len(), 4);
    assert!(found.iter().all(|r| r.id() != gone));

    // Export through the socket, while the server runs.
    let mut live = Vec::new();
    let mut last = 0;
    let n = admin.export(&mut live, |n| last = n).await.unwrap();
    assert_eq!((n, last), (4, 4));
    // Several requests share one connection; a bad one is refused with a
    // reason and the connection goes on.
    let bad = admin.remove_users(&[key(3).public()]).await.unwrap();
    assert_eq!(bad, [false]);
    assert_eq!(admin.remove_users(&[alice.public()]).await.unwrap(), [true]);
    assert_eq!(
        submit(&mut conn, &record(&alice, MICROBLOG, 3_000, b"after")).await,
        ResultCode::UNAUTHORIZED
    );
    drop(admin);
    drop(conn);

    // The same bytes as an offline export of the stopped server's store.
    let TestServer { handle, _dir } = server;
    handle.shutdown().await.unwrap();
    assert!(!socket.exists(), "the socket is removed on shutdown");
    let store = Store::open(_dir.0.join("store"), StoreConfig::default()).unwrap();
    let mut offline = Vec::new();
    assert_eq!(store.export(&mut offline, |_| {}).unwrap(), 4);
    assert_eq!(live, offline);
    // The allow-list change was written to the store.
    assert!(store.moderation().unwrap().served_users.is_empty());
}

#[tokio::test]
async fn the_socket_is_private_and_belongs_to_one_server() {
    let (server, socket) = start_admin(ServerConfig::default(), |_| {}).await;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // No staging directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(socket.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".admin"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A second server may not take over a socket that answers.
    let other = TempDir::new();
    let store = Arc::new(Store::open(other.0.join("store"), StoreConfig::default()).unwrap());
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServerConfig::default()
    };
    let mut second = Server::bind(config.clone(), key(8), store.clone(), None)
        .await
        .unwrap();
    assert!(matches!(
        second.serve_admin(&socket).await,
        Err(ServerError::Admin(AdminError::InUse { .. }))
    ));
    // Nor replace a file that is not a socket.
    let file = other.0.join("not-a-socket");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        second.serve_admin(&file).await,
        Err(ServerError::Admin(AdminError::NotASocket { .. }))
    ));
    // A stale socket (its server killed) is replaced.
    let stale = other.0.join(ADMIN_SOCKET);
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    assert!(matches!(
        AdminClient::connect(&stale).await,
        Err(AdminError::NotRunning { .. })
    ));
    second.serve_admin(&stale).await.unwrap();
    let second = second.spawn();
    let mut admin = AdminClient::connect(&stale).await.unwrap();
    assert_eq!(admin.stats().await.unwrap().store.records, 0);
    second.shutdown().await.unwrap();
    server.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn reload_changes_limits_and_refuses_what_cannot_change() {
    let alice = key(1);
    let (server, socket) = start_admin(ServerConfig::default(), |store| {
        for i in 0..5u64 {
            store
                .insert(&record(&alice, MICROBLOG, 100 + i, b"r"), ts(1_000))
                .unwrap();
        }
    })
    .await;
    let mut conn = client(&server).await;
    let (found, _) = query(&mut conn, 1, 0, by_author(&alice)).await;
    assert_eq!(found.len(), 5);

    let reloader = server.handle.reloader();
    let base = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServerConfig::default()
    };
    let mut lower = base.clone();
    lower.limits.max_query_limit = 2;
    lower.limits.max_commit_batch = 7;
    let report = reloader.reload(lower.clone(), None).await.unwrap();
    assert_eq!(report.kept_until_restart, ["limits.max_commit_batch"]);
    assert!(!report.tls_replaced);
    // The same connection, still open, gets the new limit.
    let (found, _) = query(&mut conn, 2, 0, by_author(&alice)).await;
    assert_eq!(found.len(), 2);

    // Refused, with nothing changed.
    let mut moved = lower.clone();
    moved.listen = SocketAddr::from(([127, 0, 0, 1], 1));
    assert!(matches!(
        reloader.reload(moved, None).await,
        Err(ReloadError::Fixed {
            field: "listen",
            ..
        })
    ));
    let mut invalid = base.clone();
    invalid.limits.max_query_limit = 0;
    let refused = reloader.reload(invalid, None).await.unwrap_err();
    assert!(refused.to_string().contains("max_query_limit"), "{refused}");
    let (found, _) = query(&mut conn, 3, 0, by_author(&alice)).await;
    assert_eq!(found.len(), 2);

    // Roles and the store's bans come back with a reload.
    let mut roles = lower.clone();
    roles.roles.outbox = true;
    reloader.reload(roles, None).await.unwrap();
    assert_eq!(
        submit(&mut conn, &record(&alice, MICROBLOG, 500, b"x")).await,
        ResultCode::UNAUTHORIZED
    );
    let mut admin = AdminClient::connect(&socket).await.unwrap();
    admin.add_users(&[alice.public()]).await.unwrap();
    assert_eq!(
        submit(&mut conn, &record(&alice, MICROBLOG, 501, b"x")).await,
        ResultCode::ACCEPTED
    );
    let TestServer { handle, _dir } = server;
    handle.shutdown().await.unwrap();
    assert!(matches!(
        reloader.reload(base, None).await,
        Err(ReloadError::Stopped)
    ));
}

#[tokio::test]
async fn reload_replaces_the_tls_certificate_for_new_connections() {
    use mosaic_net::{ClientTls, ServerTls};
    let pem = || {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    };
    let ((cert1, key1), (cert2, key2)) = (pem(), pem());
    let tls = |cert: &str, key: &str| {
        ServerTls::from_pem(cert.as_bytes(), key.as_bytes(), "cert", "key").unwrap()
    };
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.0.join("store"), StoreConfig::default()).unwrap());
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServerConfig::default()
    };
    let server = Server::bind(config.clone(), key(9), store, Some(tls(&cert1, &key1)))
        .await
        .unwrap();
    let handle = server.spawn();
    let url = format!("wss://localhost:{}/", handle.local_addr().port());
    let trusting = |cert: &str| ConnectOptions {
        tls: Some(ClientTls::with_roots(cert.as_bytes(), "cert").unwrap()),
        timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    let mut old = connect(&url, &trusting(&cert1)).await.unwrap();
    let report = handle
        .reloader()
        .reload(config.clone(), Some(tls(&cert2, &key2)))
        .await
        .unwrap();
    assert!(report.tls_replaced);
    let mut new = connect(&url, &trusting(&cert2)).await.unwrap();
    assert!(connect(&url, &trusting(&cert1)).await.is_err());
    for conn in [&mut old, &mut new] {
        let (_, code) = query(conn, 1, 0, by_author(&key(1))).await;
        assert_eq!(code, ResultCode::SUCCESS);
    }
    handle.shutdown().await.unwrap();

    // A plain server cannot be given a certificate.
    let (plain, _) = start_admin(ServerConfig::default(), |_| {}).await;
    assert!(matches!(
        plain
            .handle
            .reloader()
            .reload(config, Some(tls(&cert1, &key1)))
            .await,
        Err(ReloadError::Fixed { field: "TLS", .. })
    ));
}
