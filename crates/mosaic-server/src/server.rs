//! [`Server`]: listens, accepts, runs sessions, and shuts down cleanly.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use mosaic_core::{PublicKey, SecretKey};
use mosaic_net::{AcceptConfig, ConnectionConfig, ServerTls};
use mosaic_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::admin::{self, AdminListener};
use crate::committer::{Committer, WriteHealth};
use crate::config::ServerConfig;
use crate::connections::Connections;
use crate::error::ServerError;
use crate::http;
use crate::keyring::KeyRing;
use crate::metrics::{Metrics, RefusalReason};
use crate::policy::Policy;
use crate::rate::Buckets;
use crate::reload::Reloader;
use crate::session;
use crate::status::Status;
use crate::subscriptions::Registry;
use crate::verifier::Verifier;

/// How long sessions get to say goodbye on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Batches of submitted records verified at once (one per core of the
/// machines this is measured on), and the most records in one batch.
const VERIFY_WORKERS: usize = 2;
const VERIFY_BATCH: usize = 256;

/// Committed batches waiting for the fan-out task. When it is full the
/// committer waits before its next commit (answers already sent are not
/// held back).
const FANOUT_QUEUE: usize = 64;

/// Offers each committed record, in commit order, to the live
/// subscriptions; ends when the committer does.
async fn fanout(
    registry: Arc<Registry>,
    mut committed: tokio::sync::mpsc::Receiver<crate::committer::Committed>,
    shared: std::sync::Weak<Shared>,
) {
    while let Some((at, batch)) = committed.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let delivery = shared.config().limits.delivery();
        let metrics = shared.metrics.clone();
        drop(shared);
        metrics.set_fanout_queue(committed.len());
        for (record, received_at) in batch {
            let taken = registry.publish(&record, received_at, delivery);
            let since_commit = at.elapsed();
            for _ in 0..taken {
                metrics.fanout_delivered(since_commit);
            }
        }
    }
}

/// State every session shares.
pub(crate) struct Shared {
    /// The configuration in force; replaced as a whole on reload.
    config: RwLock<Arc<ServerConfig>>,
    pub(crate) key: SecretKey,
    pub(crate) store: Arc<Store>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) committer: Committer,
    pub(crate) tls: Option<ServerTls>,
    pub(crate) started: Instant,
    pub(crate) connections: AtomicUsize,
    pub(crate) per_ip: Mutex<HashMap<IpAddr, usize>>,
    pub(crate) next_id: AtomicU64,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Answers DHT Lookups (D-9) once a DHT node is running.
    pub(crate) dht: Arc<OnceLock<mosaic_dht::Resolver>>,
    /// Whether writes are still allowed (off after a failed commit).
    pub(crate) health: Arc<WriteHealth>,
    /// Bytes of submissions being verified or committed, server-wide.
    pub(crate) submission_bytes: Arc<tokio::sync::Semaphore>,
    /// DHT Lookups running, server-wide.
    pub(crate) dht_lookups: Arc<tokio::sync::Semaphore>,
    /// Write (submission) buckets per IP address and per key.
    pub(crate) ip_writes: Buckets<IpAddr>,
    pub(crate) key_writes: Buckets<PublicKey>,
    /// Read buckets per IP address and per key.
    pub(crate) ip_reads: Buckets<IpAddr>,
    pub(crate) key_reads: Buckets<PublicKey>,
    /// Checks submitted records in batches, off the connections' tasks.
    pub(crate) verifier: Verifier,
    /// What the server counts, served at `/metrics`.
    pub(crate) metrics: Arc<Metrics>,
    /// The live sessions, for bans to reach at once.
    pub(crate) live: Connections,
}

impl Shared {
    /// The configuration in force now. Callers keep the `Arc` for the length
    /// of one decision, so a reload never changes a value half-way through.
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How connections are accepted, from the configuration in force: a
    /// reload applies to the connections accepted after it.
    pub(crate) fn accept_config(&self) -> AcceptConfig {
        let config = self.config();
        let limits = &config.limits;
        AcceptConfig {
            connection: ConnectionConfig {
                max_message_len: limits.max_message_len,
                ping_interval: limits.ping_interval(),
                idle_timeout: limits.idle_timeout(),
                outbound_budget: limits.outbound_budget_bytes,
                write_timeout: limits.write_timeout(),
            },
            handshake_timeout: limits.handshake_timeout(),
            trusted_proxies: config.trusted_proxies.clone(),
            ..AcceptConfig::default()
        }
    }

    /// Puts a new (validated) configuration in force.
    pub(crate) fn set_config(&self, config: ServerConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    /// The metrics in the Prometheus text format, the gauges read now.
    pub(crate) fn metrics_text(&self) -> String {
        self.metrics.set_committer_queue(self.committer.queued());
        self.metrics
            .set_outbound_bytes(self.registry.outbound_bytes());
        self.metrics.encode()
    }

    pub(crate) fn status(&self) -> Status {
        let records = self.store.stats().map(|s| s.records).unwrap_or(0);
        Status {
            server_key: self.key.public().to_server_printable(),
            version: env!("CARGO_PKG_VERSION"),
            protocol: "0.8.0",
            uptime_s: self.started.elapsed().as_secs(),
            records,
            connections: self.connections.load(Ordering::Relaxed),
            subscriptions: self.registry.total(),
            writable: !self.health.is_off(),
            write_fault: self.health.reason(),
        }
    }

    /// Counts a new connection from `ip`; `None` when a limit is reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admission> {
        let config = self.config();
        let limits = &config.limits;
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        let refusal = if self.connections.load(Ordering::Acquire) >= limits.max_connections {
            Some(RefusalReason::MaxConnections)
        } else if *count >= limits.max_connections_per_ip {
            Some(RefusalReason::MaxConnectionsPerIp)
        } else {
            None
        };
        if let Some(reason) = refusal {
            if *count == 0 {
                per_ip.remove(&ip);
            }
            self.metrics.connection_refused(reason);
            return None;
        }
        *count += 1;
        self.connections.fetch_add(1, Ordering::AcqRel);
        self.metrics.connection_opened(self.tls.is_some());
        Some(Admission {
            shared: self.clone(),
            ip,
        })
    }
}

/// A counted connection; uncounted on drop.
pub(crate) struct Admission {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        self.shared.metrics.connection_closed();
        let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// A Mosaic server bound to its port.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use mosaic_core::SecretKey;
/// use mosaic_server::{Server, ServerConfig};
/// use mosaic_store::{Store, StoreConfig};
///
/// let store = Arc::new(Store::open("/var/lib/mosaic", StoreConfig::default())?);
/// let key = SecretKey::generate(&mut rand::rng());
/// let server = Server::bind(ServerConfig::default(), key, store, None).await?;
/// println!("listening on {}", server.url());
/// server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(())
/// # }
/// ```
pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    committer_task: tokio::task::JoinHandle<()>,
    shutdown_tx: watch::Sender<bool>,
    admin: Option<AdminListener>,
}

impl Server {
    /// Checks the configuration and binds the listening socket.
    pub async fn bind(
        config: ServerConfig,
        key: SecretKey,
        store: Arc<Store>,
        tls: Option<ServerTls>,
    ) -> Result<Server, ServerError> {
        config.validate()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let policy = Arc::new(load_policy(&config, store.clone()).await?);
        let metrics = Arc::new(Metrics::new());
        let registry = Arc::new(Registry::new(policy.clone(), metrics.clone()));
        let health = Arc::new(WriteHealth::default());
        let (fanout_tx, fanout_rx) = tokio::sync::mpsc::channel(FANOUT_QUEUE);
        let (committer, committer_task) = Committer::start(
            store.clone(),
            fanout_tx,
            health.clone(),
            metrics.clone(),
            config.limits.max_commit_batch,
        );
        let limits = &config.limits;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let submission_bytes = Arc::new(tokio::sync::Semaphore::new(
            limits
                .submission_bytes_in_flight
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let dht_lookups = Arc::new(tokio::sync::Semaphore::new(limits.dht_lookups_in_flight));
        let shared = Arc::new(Shared {
            config: RwLock::new(Arc::new(config)),
            key,
            store,
            registry,
            policy,
            committer,
            tls,
            started: Instant::now(),
            connections: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutdown,
            dht: Arc::new(OnceLock::new()),
            health,
            verifier: Verifier::start(VERIFY_WORKERS, VERIFY_BATCH),
            submission_bytes,
            dht_lookups,
            ip_writes: Buckets::new(),
            key_writes: Buckets::new(),
            ip_reads: Buckets::new(),
            key_reads: Buckets::new(),
            metrics,
            live: Connections::default(),
        });
        tokio::spawn(fanout(
            shared.registry.clone(),
            fanout_rx,
            Arc::downgrade(&shared),
        ));
        Ok(Server {
            shared,
            listener,
            metrics_listener,
            committer_task,
            shutdown_tx,
            admin: None,
        })
    }

    /// Binds the admin socket at `path` (conventionally
    /// [`ADMIN_SOCKET`](crate::ADMIN_SOCKET) in the data directory), served
    /// by [`run`](Server::run) beside the clients: moderation, statistics
    /// and export for the owner of the process, through [`AdminClient`](crate::AdminClient).
    /// The socket has mode 0600 from its first moment; a stale socket left
    /// by a killed server is replaced; a socket another server answers on
    /// is refused with [`AdminError::InUse`](crate::AdminError::InUse). It
    /// is removed when the server stops.
    pub async fn serve_admin(&mut self, path: impl AsRef<Path>) -> Result<(), ServerError> {
        self.admin = Some(admin::bind(path.as_ref())?);
        Ok(())
    }

    /// Where the admin socket is, when [`serve_admin`](Server::serve_admin)
    /// bound one.
    pub fn admin_path(&self) -> Option<PathBuf> {
        self.admin.as_ref().map(|a| a.path().to_path_buf())
    }

    /// A handle to reload the configuration of this server while it runs
    /// (see [`Reloader::reload`]).
    pub fn reloader(&self) -> Reloader {
        Reloader::new(&self.shared)
    }

    /// Answers DHT Lookup messages (D-9) through `resolver` from now on; until
    /// then they are answered NOT_FOUND. Can be called once, even while the
    /// server runs (through [`Server::dht_slot`]).
    pub fn set_dht(&self, resolver: mosaic_dht::Resolver) {
        let _ = self.shared.dht.set(resolver);
    }

    /// A handle to give the server its DHT resolver later, when the DHT node
    /// has started in the background.
    pub fn dht_slot(&self) -> DhtSlot {
        DhtSlot(self.shared.dht.clone())
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.shared.config().listen)
    }

    /// The address `/metrics` is served on apart, when `metrics_listen` is
    /// set (useful with port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The server's metrics, as `/metrics` serves them.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// The URL clients connect to: `ws://` or `wss://` and the bound address.
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/", self.local_addr())
    }

    /// The server's public key.
    pub fn public_key(&self) -> PublicKey {
        self.shared.key.public()
    }

    /// Serves until `shutdown` completes; then stops accepting, tells every
    /// client Closing SHUTTING_DOWN, finishes the pending commits and
    /// returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Server {
            shared,
            listener,
            metrics_listener,
            committer_task,
            shutdown_tx,
            admin,
        } = self;
        let admin_task = admin.map(|listener| tokio::spawn(admin::serve(listener, shared.clone())));
        info!(addr = %listener.local_addr()?, key = %shared.key.public().to_server_printable(), "serving");
        let metrics_task = metrics_listener.map(|metrics| {
            if let Ok(addr) = metrics.local_addr() {
                info!(%addr, "serving /metrics");
            }
            tokio::spawn(http::serve_metrics(
                shared.clone(),
                metrics,
                shared.shutdown.clone(),
            ))
        });
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let shared = shared.clone();
                        sessions.spawn(session::serve(shared, tcp, peer));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a
                        // little rather than spin.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        info!("shutting down");
        drop(listener);
        let _ = shutdown_tx.send(true);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            debug!("sessions still open after the grace period: aborting them");
            sessions.abort_all();
            while sessions.join_next().await.is_some() {}
        }
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        if let Some(task) = admin_task {
            let _ = task.await;
        }
        // The last handles to the committer go with `shared`: it finishes the
        // queued commits and ends.
        drop(shared);
        let _ = committer_task.await;
        info!("stopped");
        Ok(())
    }

    /// Runs the server in the background, for tests and embedding; the
    /// handle stops it.
    pub fn spawn(self) -> ServerHandle {
        let addr = self.local_addr();
        let metrics_addr = self.metrics_addr();
        let metrics = self.metrics();
        let url = self.url();
        let key = self.public_key();
        let reloader = self.reloader();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = rx.await;
        }));
        ServerHandle {
            addr,
            metrics_addr,
            metrics,
            url,
            key,
            reloader,
            stop: Some(tx),
            task,
        }
    }

    /// Binds `127.0.0.1:0` and runs in the background: the constructor for
    /// tests. `config.listen` is ignored.
    pub async fn start_for_tests(
        mut config: ServerConfig,
        key: SecretKey,
        store: Arc<Store>,
    ) -> Result<ServerHandle, ServerError> {
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        Ok(Server::bind(config, key, store, None).await?.spawn())
    }
}

/// Gives a running server its DHT resolver (see [`Server::dht_slot`]). It
/// holds nothing else of the server, so keeping it does not keep the server
/// alive.
#[derive(Clone)]
pub struct DhtSlot(Arc<OnceLock<mosaic_dht::Resolver>>);

impl DhtSlot {
    /// Answers DHT Lookups through `resolver` from now on.
    pub fn set(&self, resolver: mosaic_dht::Resolver) {
        let _ = self.0.set(resolver);
    }
}

/// Reads the allow-list, the bans and the key schedules from the store.
async fn load_policy(config: &ServerConfig, store: Arc<Store>) -> Result<Policy, ServerError> {
    let roles = config.roles;
    let (moderation, keys) = tokio::task::spawn_blocking(move || {
        store
            .moderation()
            .map(|moderation| (moderation, KeyRing::load(&store)))
    })
    .await
    .map_err(|e| ServerError::Io(std::io::Error::other(e)))??;
    if roles.any() {
        info!(
            outbox = roles.outbox,
            inbox = roles.inbox,
            encryption = roles.encryption,
            inbox_public = roles.inbox_public,
            served_users = moderation.served_users.len(),
            "roles"
        );
        if moderation.served_users.is_empty() {
            warn!("roles are on but no user is served: every submission will be refused");
        }
    }
    if !moderation.banned_keys.is_empty() || !moderation.banned_ips.is_empty() {
        info!(
            keys = moderation.banned_keys.len(),
            ips = moderation.banned_ips.len(),
            "bans loaded"
        );
    }
    Ok(Policy::new(roles, moderation, keys))
}

/// A server running in the background.
pub struct ServerHandle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    url: String,
    key: PublicKey,
    reloader: Reloader,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address `/metrics` is served on apart, when `metrics_listen` is
    /// set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The server's metrics, as `/metrics` serves them.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The `ws://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's key.
    pub fn public_key(&self) -> PublicKey {
        self.key
    }

    /// Reloads the configuration while the server runs (see
    /// [`Reloader::reload`]).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Shuts down as [`Server::run`] does and waits for it.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => Err(ServerError::Io(std::io::Error::other(e))),
        }
    }
}
