//! Helpers shared by the tests: testnets, clients, keys, bootstraps and a
//! clock the tests move by hand.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use mosaic_core::{
    SecretKey, ServerBootstrap, ServerUsage, Url, UserBootstrap, UserBootstrapEntry,
};
use mosaic_dht::{Clock, Dht, Testnet};

/// Nodes in each test's DHT.
pub const NODES: usize = 10;

/// A fresh private DHT.
pub async fn testnet() -> Testnet {
    Testnet::start(NODES).await.unwrap()
}

/// A client of a private DHT.
pub fn client(testnet: &Testnet) -> Dht {
    Dht::start(testnet.client_config()).unwrap()
}

/// Stops a private DHT and waits until its nodes have closed their
/// sockets (a node notices it was dropped at its next tick).
pub async fn stop(testnet: Testnet) {
    let addresses = testnet.bootstrap_nodes().to_vec();
    drop(testnet);
    let closed = eventually(Duration::from_secs(5), || {
        addresses
            .iter()
            .all(|a| std::net::UdpSocket::bind(a.as_str()).is_ok())
    })
    .await;
    assert!(closed, "the testnet's nodes did not stop");
}

/// A master key.
pub fn secret(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n; 32])
}

/// A user bootstrap listing server `n` for everything.
pub fn user_bootstrap(n: u8) -> UserBootstrap {
    UserBootstrap::new(vec![UserBootstrapEntry {
        usage: ServerUsage::ALL,
        server: secret(n).public(),
    }])
    .unwrap()
}

/// A server bootstrap with one URL.
pub fn server_bootstrap(host: &str) -> ServerBootstrap {
    ServerBootstrap::new(vec![Url::parse(&format!("mosaicwss://{host}")).unwrap()]).unwrap()
}

/// Waits until `done` holds, checking every 20 ms, for at most `limit`.
pub async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

/// A clock moved by hand.
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock at a fixed time.
    pub fn new() -> ManualClock {
        ManualClock(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000),
        ))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}
