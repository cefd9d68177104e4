//! The republisher: refreshes on schedule, never overwrites a newer item,
//! retries when too few nodes store an item, and stops.

use std::time::Duration;

use mosaic_dht::{Dht, DhtConfig, DhtError, RepublishConfig, Republisher};

use crate::support::{client, eventually, secret, server_bootstrap, testnet, user_bootstrap};

/// A schedule in milliseconds instead of hours.
fn quick() -> RepublishConfig {
    RepublishConfig {
        interval: Duration::from_millis(300),
        jitter: Duration::from_millis(100),
        min_stored: 1,
        retry_delay: Duration::from_millis(50),
        max_retry_delay: Duration::from_millis(200),
        max_retries: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_on_schedule_and_stops() {
    let net = testnet().await;
    let dht = client(&net);
    let user = dht
        .publish_user(&secret(30), &user_bootstrap(1))
        .await
        .unwrap()
        .item;
    let server = dht
        .publish_server(&secret(31), &server_bootstrap("s.example"))
        .await
        .unwrap()
        .item;
    let before = dht.queries();
    let handle =
        Republisher::spawn(dht.clone(), vec![user.clone(), server.clone()], quick()).unwrap();
    let status = handle.status();
    assert_eq!(status.len(), 2);
    assert_eq!(
        status[0].refreshed, 0,
        "the first refresh waits one interval"
    );

    let done = eventually(Duration::from_secs(20), || {
        handle.status().iter().all(|s| s.refreshed >= 3)
    })
    .await;
    assert!(done, "{:?}", handle.status());
    let status = handle.stop().await;
    for (s, item) in status.iter().zip([&user, &server]) {
        assert_eq!(
            (s.target, s.key, s.seq),
            (item.target(), *item.key(), item.seq())
        );
        assert!(s.stored_at.is_some_and(|n| n >= 1));
        assert!(s.last_refreshed.is_some());
        assert_eq!(s.failed_attempts, 0);
    }
    // Each refresh reads, then stores: two queries per item and round.
    assert!(dht.queries() >= before + 12, "{} {before}", dht.queries());
    let stopped_at = dht.queries();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        dht.queries(),
        stopped_at,
        "a stopped republisher sends nothing"
    );
    let found = dht.resolve_user(user.key()).await.unwrap().unwrap();
    assert_eq!(found.seq, user.seq());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_bootstrap_is_kept_not_overwritten() {
    let net = testnet().await;
    let (republishing, owner) = (client(&net), client(&net));
    let key = secret(32);
    let old = owner
        .publish_user(&key, &user_bootstrap(1))
        .await
        .unwrap()
        .item;
    let handle = Republisher::spawn(republishing.clone(), vec![old], quick()).unwrap();
    let newer = owner
        .publish_user(&key, &user_bootstrap(2))
        .await
        .unwrap()
        .item;
    assert_eq!(newer.seq(), 2);
    let adopted = eventually(Duration::from_secs(20), || {
        handle.status()[0].seq == 2 && handle.status()[0].refreshed >= 2
    })
    .await;
    assert!(adopted, "{:?}", handle.status());
    drop(handle);
    let found = republishing
        .resolve_user(&key.public())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.seq, found.value), (2, user_bootstrap(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_nodes_means_retries_with_backoff() {
    let net = testnet().await;
    let dht = client(&net);
    let item = dht
        .publish_user(&secret(33), &user_bootstrap(1))
        .await
        .unwrap()
        .item;
    let config = RepublishConfig {
        min_stored: 1000,
        ..quick()
    };
    let handle = Republisher::spawn(dht, vec![item], config).unwrap();
    // One round: the attempt and two retries.
    let retried = eventually(Duration::from_secs(20), || {
        handle.status()[0].failed_attempts >= 3
    })
    .await;
    assert!(retried, "{:?}", handle.status());
    let status = handle.stop().await;
    assert_eq!(status[0].refreshed, 0);
    assert_eq!(status[0].stored_at, None);
}

#[test]
fn a_republisher_needs_a_runtime() {
    let dht = Dht::start(DhtConfig::local(vec!["127.0.0.1:9".into()])).unwrap();
    assert!(matches!(
        Republisher::spawn(dht, vec![], RepublishConfig::default()),
        Err(DhtError::NoRuntime)
    ));
}
