//! Publishing and resolving both kinds of bootstrap, sequence numbers and
//! compare-and-swap, and what never reaches the network.

use std::net::UdpSocket;

use mosaic_core::{BootstrapError, DhtTarget};
use mosaic_dht::{Bootstrap, Dht, DhtConfig, DhtError, SignedBootstrap};

use crate::support::{client, secret, server_bootstrap, testnet, user_bootstrap};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_resolve_a_user_bootstrap() {
    let net = testnet().await;
    let (alice, bob) = (client(&net), client(&net));
    let key = secret(1);
    let report = alice.publish_user(&key, &user_bootstrap(2)).await.unwrap();
    assert_eq!(report.seq(), 1);
    assert_eq!(report.previous_seq, None);
    assert!(report.stored_at > 0, "{report:?}");

    let found = bob.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(found.value, user_bootstrap(2));
    assert_eq!(found.seq, 1);
    assert_eq!(found.text, user_bootstrap(2).to_text().into_bytes());
    assert!(!found.stale);
    // The same key has no server bootstrap: another salt, another item.
    assert_eq!(bob.resolve_server(&key.public()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_resolve_a_server_bootstrap() {
    let net = testnet().await;
    let (server, client) = (client(&net), client(&net));
    let key = secret(3);
    let bootstrap = server_bootstrap("relay.example");
    let report = server.publish_server(&key, &bootstrap).await.unwrap();
    assert_eq!(report.seq(), 1);
    let found = client.resolve_server(&key.public()).await.unwrap().unwrap();
    assert_eq!(found.value, bootstrap);
    assert_eq!(client.resolve_user(&key.public()).await.unwrap(), None);
    let raw = client
        .lookup_raw(DhtTarget::Server, &key.public())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw, report.item);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_numbers_increase() {
    let net = testnet().await;
    let (alice, bob) = (client(&net), client(&net));
    let key = secret(4);
    let first = alice.publish_user(&key, &user_bootstrap(5)).await.unwrap();
    assert_eq!(first.seq(), 1);
    let second = alice.publish_user(&key, &user_bootstrap(6)).await.unwrap();
    assert_eq!(second.seq(), 2);
    assert_eq!(second.previous_seq, Some(1));
    // The same text again is the same item again: no new sequence number.
    let again = bob.publish_user(&key, &user_bootstrap(6)).await.unwrap();
    assert_eq!(again.seq(), 2);
    assert_eq!(again.item, second.item);
    let third = bob.publish_user(&key, &user_bootstrap(7)).await.unwrap();
    assert_eq!(third.seq(), 3);
    let found = alice.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!((found.seq, found.value), (3, user_bootstrap(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_sequence_does_not_win() {
    let net = testnet().await;
    let (alice, bob) = (client(&net), client(&net));
    let key = secret(8);
    let old = alice
        .publish_user(&key, &user_bootstrap(1))
        .await
        .unwrap()
        .item;
    let new = alice
        .publish_user(&key, &user_bootstrap(2))
        .await
        .unwrap()
        .item;
    assert_eq!((old.seq(), new.seq()), (1, 2));

    // Storing the old item again keeps the newer one alive instead.
    let report = bob.refresh(&old).await.unwrap();
    assert_eq!(report.item, new);
    assert_eq!(report.previous_seq, Some(2));
    let found = bob.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!((found.seq, found.value), (2, user_bootstrap(2)));

    // An item signed with a lower sequence number is refused by the nodes.
    let older = SignedBootstrap::sign(&key, 1, user_bootstrap(3).into());
    let err = bob
        .publish_after(&key, older.bootstrap(), Some(0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DhtError::Conflict {
                expected_seq: Some(0),
                found_seq: Some(2)
            }
        ),
        "{err:?}"
    );
    let found = alice.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!((found.seq, found.value), (2, user_bootstrap(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_cannot_overwrite_each_other_silently() {
    let net = testnet().await;
    let (alice, bob) = (client(&net), client(&net));
    let key = secret(9);
    alice.publish_user(&key, &user_bootstrap(1)).await.unwrap();
    // Alice reads seq 1 and edits; meanwhile Bob publishes seq 2.
    let read = alice.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(read.seq, 1);
    bob.publish_user(&key, &user_bootstrap(2)).await.unwrap();
    let err = alice
        .publish_after(&key, &Bootstrap::User(user_bootstrap(3)), Some(read.seq))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DhtError::Conflict {
                expected_seq: Some(1),
                found_seq: Some(2)
            }
        ),
        "{err:?}"
    );
    let found = alice.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!((found.seq, found.value), (2, user_bootstrap(2)));
    // Read again, then publish: it succeeds on top of Bob's.
    let report = alice.publish_user(&key, &user_bootstrap(3)).await.unwrap();
    assert_eq!((report.previous_seq, report.seq()), (Some(2), 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_invalid_bootstraps_never_reach_the_network() {
    let net = testnet().await;
    let dht = client(&net);
    let key = secret(10);
    let long = vec![b'S'; 984];
    assert!(matches!(
        dht.publish_text(&key, DhtTarget::Server, &long).await,
        Err(DhtError::TooLarge { len: 984 })
    ));
    assert!(matches!(
        dht.publish_text(&key, DhtTarget::User, b"S\nmosaic://a.example")
            .await,
        Err(DhtError::Invalid(BootstrapError::BadHeader {
            expected: 'U'
        }))
    ));
    assert!(matches!(
        dht.publish_text(&key, DhtTarget::Server, b"S\nmosaic://a.example\n")
            .await,
        Err(DhtError::Invalid(BootstrapError::TrailingWhitespace {
            line: 2
        }))
    ));
    assert!(matches!(
        dht.publish_text(&key, DhtTarget::User, b"U\n0 x").await,
        Err(DhtError::Invalid(BootstrapError::BadUsage { line: 2 }))
    ));
    assert_eq!(dht.queries(), 0, "nothing may be sent");
    assert_eq!(dht.resolve_server(&key.public()).await.unwrap(), None);
    assert_eq!(dht.queries(), 1);
    // A valid text is published in its normalised form.
    let report = dht
        .publish_text(&key, DhtTarget::Server, b"S\nMOSAICWSS://A.example:443/")
        .await
        .unwrap();
    assert_eq!(report.item.value(), b"S\nmosaicwss://a.example/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dht_that_does_not_answer_is_an_error() {
    // A port nobody listens on: the socket is closed again at once.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dht = Dht::start(DhtConfig::local(vec![format!("127.0.0.1:{port}")])).unwrap();
    let key = secret(11);
    let err = dht.resolve_user(&key.public()).await.unwrap_err();
    assert!(
        matches!(err, DhtError::Timeout | DhtError::NoNodes),
        "{err:?}"
    );
    let err = dht
        .publish_user(&key, &user_bootstrap(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DhtError::Timeout | DhtError::NoNodes),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    assert!(matches!(
        Dht::start(DhtConfig::local(vec!["nowhere".into()])),
        Err(DhtError::Config(_))
    ));
    assert!(matches!(
        mosaic_dht::Testnet::start(0).await,
        Err(DhtError::Config(mosaic_dht::ConfigError::EmptyTestnet))
    ));
}
