//! `mosaic dht ...`: a private DHT for experiments; and what every command
//! that uses the DHT shares: the `--dht-bootstrap` option, the runtime and
//! the resolution cache file.
//!
//! The cache lives in `$XDG_CACHE_HOME/mosaic/` (or `~/.cache/mosaic/`):
//! `dht-cache` for the public DHT, `dht-cache-<hash>` for a private DHT
//! named by its bootstrap nodes, so that answers from a testnet never mix
//! with answers from the public DHT.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use mosaic_dht::{Cache, DhtConfig, Testnet};

use crate::Status;
use crate::output;

/// The `dht` commands.
#[derive(Debug, Subcommand)]
pub enum DhtCommand {
    /// Run a private Mainline DHT on loopback until Ctrl-C, and print the
    /// `--dht-bootstrap` argument that joins it.
    #[command(after_help = TESTNET_AFTER_HELP)]
    Testnet(TestnetArgs),
}

const TESTNET_AFTER_HELP: &str = "\
The nodes listen on 127.0.0.1 only and never contact the public DHT. The first
line printed is the option to give other mosaic commands, for instance:

  mosaic dht testnet --nodes 10
  mosaic bootstrap show mopub0... --dht-bootstrap 127.0.0.1:41234,127.0.0.1:41235";

/// Arguments of `dht testnet`.
#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// How many DHT nodes to run.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u16).range(1..=1000)
    )]
    nodes: u16,
}

/// The `--dht-bootstrap` option of every command that uses the DHT.
#[derive(Debug, Clone, Args)]
pub struct DhtArgs {
    /// DHT nodes to join through, as HOST:PORT, separated by commas or given
    /// more than once (a private DHT, such as `mosaic dht testnet`). Default:
    /// the public Mainline DHT's routers.
    #[arg(
        long = "dht-bootstrap",
        value_name = "HOST:PORT",
        value_delimiter = ',',
        env = "MOSAIC_DHT_BOOTSTRAP"
    )]
    pub bootstrap: Vec<String>,
}

impl DhtArgs {
    /// The DHT node's configuration: the public DHT, or a private one on
    /// loopback (bound to 127.0.0.1, short timeouts), or another private
    /// one.
    pub fn config(&self) -> DhtConfig {
        if self.bootstrap.is_empty() {
            DhtConfig::default()
        } else if self.bootstrap.iter().all(|node| is_loopback(node)) {
            DhtConfig::local(self.bootstrap.clone())
        } else {
            DhtConfig {
                bootstrap_nodes: self.bootstrap.clone(),
                ..DhtConfig::default()
            }
        }
    }

    /// The cache file for this DHT, if a cache directory is known.
    pub fn cache_file(&self) -> Option<PathBuf> {
        let dir = cache_dir(
            std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )?;
        Some(dir.join(cache_file_name(&self.bootstrap)))
    }
}

/// Whether a `host:port` names this machine.
fn is_loopback(node: &str) -> bool {
    let host = node.rsplit_once(':').map_or(node, |(host, _)| host);
    host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `$XDG_CACHE_HOME/mosaic`, else `$HOME/.cache/mosaic` (relative values
/// are ignored, as the XDG rules ask).
fn cache_dir(xdg_cache_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    let base = xdg_cache_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.filter(|p| p.is_absolute()).map(|h| h.join(".cache")))?;
    Some(base.join("mosaic"))
}

/// `dht-cache` for the public DHT, `dht-cache-<hash of the nodes>` for a
/// private one.
fn cache_file_name(bootstrap: &[String]) -> String {
    if bootstrap.is_empty() {
        return "dht-cache".to_owned();
    }
    let mut nodes = bootstrap.to_vec();
    nodes.sort();
    nodes.dedup();
    let hash = mosaic_core::blake3_xof64(nodes.join(",").as_bytes());
    format!("dht-cache-{}", hex::encode(&hash[..6]))
}

/// Reads a cache file; a missing file is an empty cache, a damaged one is
/// a warning and an empty cache.
pub fn load_cache(path: Option<&Path>, config: &DhtConfig) -> Cache {
    let Some(path) = path else {
        return Cache::new(config.cache);
    };
    match std::fs::read(path) {
        Ok(bytes) => Cache::load(&bytes, config.cache).unwrap_or_else(|error| {
            output::warn(format_args!(
                "ignoring the DHT cache {}: {error}",
                path.display()
            ));
            Cache::new(config.cache)
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Cache::new(config.cache),
        Err(error) => {
            output::warn(format_args!(
                "cannot read the DHT cache {}: {error}",
                path.display()
            ));
            Cache::new(config.cache)
        }
    }
}

/// Writes a cache file (through a temporary file, so that a crash leaves
/// the old one). A failure is only a warning: the cache is an optimisation.
pub fn save_cache(path: Option<&Path>, cache: &Cache) {
    let Some(path) = path else {
        return;
    };
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, cache.to_bytes())?;
        std::fs::rename(&temporary, path)
    };
    if let Err(error) = write() {
        output::warn(format_args!(
            "cannot save the DHT cache {}: {error}",
            path.display()
        ));
    }
}

/// A runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a `dht` command.
pub fn run(command: DhtCommand) -> anyhow::Result<Status> {
    match command {
        DhtCommand::Testnet(args) => testnet(args),
    }
}

/// The `--dht-bootstrap` line for a testnet's nodes.
fn bootstrap_line(testnet: &Testnet) -> String {
    format!("--dht-bootstrap {}", testnet.bootstrap_nodes().join(","))
}

fn testnet(args: TestnetArgs) -> anyhow::Result<Status> {
    runtime()?.block_on(async {
        let testnet = Testnet::start(usize::from(args.nodes))
            .await
            .context("cannot start the DHT testnet")?;
        let mut out = output::stdout();
        writeln!(out, "{}", bootstrap_line(&testnet))?;
        out.flush()?;
        drop(out);
        output::warn(format_args!(
            "running a private DHT of {} nodes on 127.0.0.1; Ctrl-C stops it",
            testnet.len()
        ));
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        drop(testnet);
        Ok(Status::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_locations() {
        let abs = |p: &str| Some(PathBuf::from(p));
        assert_eq!(
            cache_dir(abs("/x/cache"), abs("/home/u")),
            abs("/x/cache/mosaic")
        );
        assert_eq!(
            cache_dir(None, abs("/home/u")),
            abs("/home/u/.cache/mosaic")
        );
        assert_eq!(
            cache_dir(abs("relative"), abs("/home/u")),
            abs("/home/u/.cache/mosaic")
        );
        assert_eq!(cache_dir(None, None), None);
        assert_eq!(cache_file_name(&[]), "dht-cache");
        let a = cache_file_name(&["127.0.0.1:1".into(), "127.0.0.1:2".into()]);
        let b = cache_file_name(&["127.0.0.1:2".into(), "127.0.0.1:1".into()]);
        let c = cache_file_name(&["127.0.0.1:3".into()]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("dht-cache-") && a.len() == "dht-cache-".len() + 12);
    }

    #[test]
    fn configurations() {
        let args = |nodes: &[&str]| DhtArgs {
            bootstrap: nodes.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(args(&[]).config(), DhtConfig::default());
        let local = args(&["127.0.0.1:5000", "localhost:5001"]).config();
        assert_eq!(local.bind_address, Some(std::net::Ipv4Addr::LOCALHOST));
        let private = args(&["127.0.0.1:5000", "dht.example:6881"]).config();
        assert_eq!(private.bind_address, None);
        assert_eq!(private.bootstrap_nodes.len(), 2);
        assert!(is_loopback("127.1.2.3:9"));
        assert!(!is_loopback("10.0.0.1:9"));
    }

    #[test]
    fn cache_files_round_trip_and_damage_is_tolerated() {
        let dir = std::env::temp_dir().join(format!("mosaic-cli-dht-{}", std::process::id()));
        let path = dir.join("sub").join("dht-cache");
        let config = DhtConfig::default();
        assert!(load_cache(Some(&path), &config).is_empty());
        let mut cache = Cache::new(config.cache);
        let secret = mosaic_core::SecretKey::from_bytes(&[1; 32]);
        let bootstrap = mosaic_core::ServerBootstrap::parse("S\nmosaic://a.example/").unwrap();
        cache.insert(
            mosaic_dht::SignedBootstrap::sign(&secret, 1, bootstrap.into()),
            std::time::SystemTime::now(),
        );
        save_cache(Some(&path), &cache);
        assert_eq!(load_cache(Some(&path), &config).len(), 1);
        std::fs::write(&path, b"damaged").unwrap();
        assert!(load_cache(Some(&path), &config).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn testnet_line() {
        let testnet = runtime().unwrap().block_on(Testnet::start(2)).unwrap();
        let line = bootstrap_line(&testnet);
        let nodes = line.strip_prefix("--dht-bootstrap ").unwrap();
        assert_eq!(nodes.split(',').count(), 2);
        assert!(nodes.split(',').all(is_loopback));
    }
}
