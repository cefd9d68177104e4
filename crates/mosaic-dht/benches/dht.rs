//! Publish and resolve latency on a private 50-node loopback DHT.
//!
//! One client publishes the user bootstraps of fresh keys (a read, then a
//! store), then updates each once (sequence 2); a second client, which has
//! published nothing, resolves each key. Prints p50, p90 and the maximum
//! of each, and how many nodes stored the items. `MOSAIC_BENCH_QUICK=1`
//! uses a smaller network and fewer keys.

use std::time::{Duration, Instant};

use mosaic_core::{SecretKey, ServerUsage, UserBootstrap, UserBootstrapEntry};
use mosaic_dht::{Dht, Testnet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::var_os("MOSAIC_BENCH_QUICK").is_some_and(|v| v == "1");
    let (nodes, keys) = if quick { (10, 5) } else { (50, 40) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(nodes, keys))
}

async fn run(nodes: usize, keys: u8) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let testnet = Testnet::start(nodes).await?;
    println!(
        "dht: {nodes}-node loopback testnet up in {:.0?}, {keys} keys",
        started.elapsed()
    );
    let publisher = Dht::start(testnet.client_config())?;
    let reader = Dht::start(testnet.client_config())?;

    let secrets: Vec<SecretKey> = (1..=keys)
        .map(|n| SecretKey::from_bytes(&[n; 32]))
        .collect();
    let mut publish = Vec::new();
    let mut update = Vec::new();
    let mut resolve = Vec::new();
    let mut stored = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let first = bootstrap(i, 0);
        let t = Instant::now();
        let report = publisher.publish_user(secret, &first).await?;
        publish.push(t.elapsed());
        stored.push(report.stored_at);

        let second = bootstrap(i, 1);
        let t = Instant::now();
        let report = publisher.publish_user(secret, &second).await?;
        update.push(t.elapsed());
        stored.push(report.stored_at);
        assert_eq!(report.seq(), 2);
    }
    for (i, secret) in secrets.iter().enumerate() {
        let t = Instant::now();
        let found = reader.resolve_user(&secret.public()).await?;
        resolve.push(t.elapsed());
        let found = found.ok_or("a published bootstrap was not found")?;
        assert_eq!(found.value, bootstrap(i, 1));
        assert_eq!(found.seq, 2);
    }
    report("publish (new key)", &mut publish);
    report("publish (update) ", &mut update);
    report("resolve          ", &mut resolve);
    stored.sort_unstable();
    println!(
        "dht: stored at {} to {} nodes (median {})",
        stored.first().unwrap_or(&0),
        stored.last().unwrap_or(&0),
        stored.get(stored.len() / 2).unwrap_or(&0)
    );
    println!(
        "dht: {} queries by the publisher, {} by the reader",
        publisher.queries(),
        reader.queries()
    );
    Ok(())
}

/// A user bootstrap that differs per key and version.
fn bootstrap(key: usize, version: u8) -> UserBootstrap {
    let server = SecretKey::from_bytes(&[200u8.wrapping_add(version); 32]).public();
    let usage = ServerUsage::from_bits(1 + (key % 7) as u8).unwrap_or(ServerUsage::ALL);
    UserBootstrap::new(vec![UserBootstrapEntry { usage, server }]).unwrap_or_else(|e| panic!("{e}"))
}

/// Prints p50, p90 and the maximum.
fn report(what: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let at = |p: usize| {
        samples
            .get(samples.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "dht: {what} p50 {:>7.1} ms  p90 {:>7.1} ms  max {:>7.1} ms  (n={})",
        ms(at(50)),
        ms(at(90)),
        ms(at(100)),
        samples.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
