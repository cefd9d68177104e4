//! The cache in front of resolution: fresh answers without traffic,
//! background rechecks, stale answers when the DHT is gone, and a cache
//! saved to bytes and loaded again.

use std::sync::Arc;
use std::time::Duration;

use mosaic_core::DhtTarget;
use mosaic_dht::{Cache, CachePolicy, Dht, DhtConfig, Resolver};

use crate::support::{
    ManualClock, client, eventually, secret, server_bootstrap, stop, testnet, user_bootstrap,
};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_answers_a_second_resolve_without_traffic() {
    let net = testnet().await;
    let key = secret(20);
    client(&net)
        .publish_user(&key, &user_bootstrap(1))
        .await
        .unwrap();

    let resolver = Resolver::new(client(&net));
    let first = resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(resolver.dht().queries(), 1);
    let second = resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(
        resolver.dht().queries(),
        1,
        "the second answer came from the cache"
    );
    assert_eq!(first, second);
    assert_eq!(second.value, user_bootstrap(1));
    // Another kind for the same key is another entry: a query.
    assert_eq!(resolver.resolve_server(&key.public()).await.unwrap(), None);
    assert_eq!(resolver.dht().queries(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_values_are_rechecked_as_they_age() {
    let net = testnet().await;
    let key = secret(21);
    let publisher = client(&net);
    publisher
        .publish_user(&key, &user_bootstrap(1))
        .await
        .unwrap();

    let clock = Arc::new(ManualClock::new());
    let dht = client(&net);
    let resolver = Resolver::with_clock(
        dht.clone(),
        Cache::new(CachePolicy::default()),
        clock.clone(),
    );
    resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(dht.queries(), 1);

    // Fresh for 30 minutes: no traffic.
    clock.advance(29 * MINUTE);
    resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(dht.queries(), 1);

    // Meanwhile the owner publishes a new bootstrap.
    publisher
        .publish_user(&key, &user_bootstrap(2))
        .await
        .unwrap();

    // Between 30 and 60 minutes: the cached value at once, a recheck in
    // the background.
    clock.advance(11 * MINUTE);
    let served = resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!((served.seq, served.stale), (1, false));
    let refreshed = eventually(Duration::from_secs(10), || {
        resolver
            .cache()
            .get(DhtTarget::User, &key.public())
            .is_some_and(|e| e.item.seq() == 2)
    })
    .await;
    assert!(refreshed, "the background recheck did not update the cache");
    assert_eq!(dht.queries(), 2);
    let served = resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!((served.seq, served.value), (2, user_bootstrap(2)));
    assert_eq!(dht.queries(), 2, "the refreshed entry is fresh again");

    // After an hour: asked first.
    clock.advance(61 * MINUTE);
    let served = resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!((served.seq, served.stale), (2, false));
    assert_eq!(dht.queries(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_values_are_served_when_the_dht_does_not_answer() {
    let net = testnet().await;
    let key = secret(22);
    client(&net)
        .publish_server(&key, &server_bootstrap("a.example"))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new());
    let resolver = Resolver::with_clock(
        client(&net),
        Cache::new(CachePolicy::default()),
        clock.clone(),
    );
    let fresh = resolver
        .resolve_server(&key.public())
        .await
        .unwrap()
        .unwrap();
    assert!(!fresh.stale);

    stop(net).await;
    clock.advance(2 * 60 * MINUTE);
    let stale = resolver
        .resolve_server(&key.public())
        .await
        .unwrap()
        .unwrap();
    assert!(stale.stale);
    assert_eq!(stale.value, server_bootstrap("a.example"));
    assert_eq!(stale.fetched_at, fresh.fetched_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_cache_spares_the_next_run_a_cold_start() {
    let net = testnet().await;
    let key = secret(23);
    client(&net)
        .publish_user(&key, &user_bootstrap(4))
        .await
        .unwrap();
    let resolver = Resolver::new(client(&net));
    resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    let bytes = resolver.cache().to_bytes();
    drop(resolver);
    drop(net);

    // The next run: no DHT at all, yet the answer is there, without traffic.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = DhtConfig::local(vec![format!("127.0.0.1:{port}")]);
    let cache = Cache::load(&bytes, config.cache).unwrap();
    let resolver = Resolver::with_cache(Dht::start(config).unwrap(), cache);
    let found = resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(found.value, user_bootstrap(4));
    assert!(!found.stale);
    assert_eq!(resolver.dht().queries(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_are_cached_for_a_minute() {
    let net = testnet().await;
    let key = secret(24);
    let clock = Arc::new(ManualClock::new());
    let dht = client(&net);
    let resolver = Resolver::with_clock(
        dht.clone(),
        Cache::new(CachePolicy::default()),
        clock.clone(),
    );
    assert_eq!(resolver.resolve_user(&key.public()).await.unwrap(), None);
    assert_eq!(dht.queries(), 1);
    // A flood of lookups of the unknown key, one after another: no query.
    for _ in 0..50 {
        assert_eq!(resolver.resolve_user(&key.public()).await.unwrap(), None);
    }
    assert_eq!(dht.queries(), 1, "the miss came from the cache");
    // The other kind of the same key is another miss.
    assert_eq!(resolver.resolve_server(&key.public()).await.unwrap(), None);
    assert_eq!(dht.queries(), 2);

    // The key's owner publishes; the miss still holds for its minute.
    client(&net)
        .publish_user(&key, &user_bootstrap(5))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(59));
    assert_eq!(resolver.resolve_user(&key.public()).await.unwrap(), None);
    assert_eq!(dht.queries(), 2);
    // After it, the DHT is asked again and the bootstrap found.
    clock.advance(Duration::from_secs(2));
    let found = resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(found.value, user_bootstrap(5));
    assert_eq!(dht.queries(), 3);
    // ... and it is cached as a hit now.
    resolver.resolve_user(&key.public()).await.unwrap().unwrap();
    assert_eq!(dht.queries(), 3);

    // A resolver with the miss cache off asks every time.
    let uncached = Resolver::with_clock(
        client(&net),
        Cache::new(CachePolicy {
            miss_ttl: Duration::ZERO,
            ..CachePolicy::default()
        }),
        clock.clone(),
    );
    let unknown = secret(25).public();
    assert_eq!(uncached.resolve_user(&unknown).await.unwrap(), None);
    assert_eq!(uncached.resolve_user(&unknown).await.unwrap(), None);
    assert_eq!(uncached.dht().queries(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_of_one_key_share_one_query() {
    let net = testnet().await;
    let (known, unknown) = (secret(26), secret(27).public());
    client(&net)
        .publish_server(&known, &server_bootstrap("b.example"))
        .await
        .unwrap();
    let resolver = Resolver::new(client(&net));

    // Many lookups of a known key at once, as a server gets DHT Lookups:
    // one DHT query, the same answer for all.
    let known_key = known.public();
    let lookups = (0..40).map(|_| resolver.lookup_raw(DhtTarget::Server, &known_key));
    let answers = futures_util::future::join_all(lookups).await;
    assert_eq!(resolver.dht().queries(), 1);
    let first = answers[0].as_ref().unwrap().clone().unwrap();
    assert_eq!(first.seq(), 1);
    for answer in &answers {
        assert_eq!(answer.as_ref().unwrap().as_ref(), Some(&first));
    }

    // Many lookups of an unknown key at once: one query, all NOT_FOUND,
    // and the miss is cached for the next ones.
    let lookups = (0..40).map(|_| resolver.lookup_raw(DhtTarget::User, &unknown));
    let answers = futures_util::future::join_all(lookups).await;
    assert_eq!(resolver.dht().queries(), 2);
    assert!(answers.iter().all(|a| matches!(a, Ok(None))));
    assert!(
        resolver
            .lookup_raw(DhtTarget::User, &unknown)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(resolver.dht().queries(), 2);

    // Lookups from several tasks at once share too.
    let other = secret(28).public();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let resolver = resolver.clone();
            tokio::spawn(async move { resolver.lookup_raw(DhtTarget::User, &other).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_none());
    }
    // Each task either joined the one query or found its miss cached.
    assert_eq!(resolver.dht().queries(), 3);
}
