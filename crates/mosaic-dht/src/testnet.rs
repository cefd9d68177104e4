//! [`Testnet`]: a private Mainline DHT on loopback, for tests, benchmarks
//! and local experiments (`mosaic dht testnet`).
//!
//! The nodes are ordinary mainline nodes in server mode, bound to
//! `127.0.0.1`, each given every other node as its bootstrap list. That
//! list is what `mainline::Testnet` leaves empty, and a node with an empty
//! bootstrap list puts every node that asks it anything into its routing
//! table, read-only clients included: queries then wait a whole request
//! timeout for clients that never answer. With non-empty lists the nodes
//! keep only nodes that answer, as on the public DHT.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use futures_util::future::join_all;
use mainline::async_dht::AsyncDht;

use crate::config::DhtConfig;
use crate::error::{ConfigError, DhtError};

/// Attempts at binding the nodes' ports before giving up (a port found
/// free can be taken by another program before the node binds it).
const BIND_ATTEMPTS: usize = 5;

/// How long a node waits for an answer. Loopback nodes answer at once or
/// not at all; this bounds the wait for a node that stopped.
const NODE_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// A private DHT of nodes bound to `127.0.0.1`. It never contacts the
/// public DHT. The nodes stop when it is dropped.
pub struct Testnet {
    nodes: Vec<AsyncDht>,
    bootstrap: Vec<String>,
}

impl std::fmt::Debug for Testnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testnet")
            .field("bootstrap_nodes", &self.bootstrap)
            .finish()
    }
}

impl Testnet {
    /// Starts `nodes` DHT nodes on loopback and waits until each has asked
    /// all the others for itself, so that their routing tables are filled.
    /// Zero nodes is [`ConfigError::EmptyTestnet`].
    pub async fn start(nodes: usize) -> Result<Testnet, DhtError> {
        if nodes == 0 {
            return Err(ConfigError::EmptyTestnet.into());
        }
        let mut attempt = 1;
        loop {
            match Testnet::bind(nodes) {
                Ok(testnet) => {
                    join_all(testnet.nodes.iter().map(AsyncDht::bootstrapped)).await;
                    return Ok(testnet);
                }
                Err(error)
                    if error.kind() == std::io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Finds free ports and starts a node on each.
    fn bind(count: usize) -> std::io::Result<Testnet> {
        let sockets = (0..count)
            .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let addresses = sockets
            .iter()
            .map(|s| {
                s.local_addr()
                    .map(|a| SocketAddrV4::new(Ipv4Addr::LOCALHOST, a.port()))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        drop(sockets);
        let mut nodes = Vec::with_capacity(count);
        for (i, address) in addresses.iter().enumerate() {
            let others: Vec<SocketAddrV4> = addresses
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, a)| *a)
                .collect();
            let node = mainline::Dht::builder()
                .server_mode()
                .bind_address(Ipv4Addr::LOCALHOST)
                .port(address.port())
                .bootstrap(&others)
                .request_timeout(NODE_REQUEST_TIMEOUT)
                .build()?;
            nodes.push(node.as_async());
        }
        Ok(Testnet {
            nodes,
            bootstrap: addresses.iter().map(ToString::to_string).collect(),
        })
    }

    /// The nodes' addresses, `127.0.0.1:port`: any of them lets a node
    /// join this DHT.
    pub fn bootstrap_nodes(&self) -> &[String] {
        &self.bootstrap
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it has no node (never true: see [`start`](Self::start)).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The configuration of a client of this DHT
    /// ([`DhtConfig::local`] with every node as a bootstrap node).
    pub fn client_config(&self) -> DhtConfig {
        DhtConfig::local(self.bootstrap.clone())
    }
}
