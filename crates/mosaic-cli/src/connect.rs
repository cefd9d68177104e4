//! What the commands that talk to servers share: the `--dht-bootstrap` and
//! `--tls-ca` options, the directory that finds servers, a [`Session`]
//! holding the client, and the reporting of per-server outcomes.
//!
//! Where servers are found, in order: this identity's own servers come from
//! config.toml (with their direct addresses, when given); everyone else's
//! bootstraps come from the DHT, through a cache file in the config
//! directory. The DHT node is started only when a lookup needs it.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, anyhow};
use clap::Args;
use mosaic_client::{
    Client, ClientConfig, ClientError, ConnectProblem, Directory, DirectoryFuture, FetchReport,
    PublishOutcome, ServerAddress, ServerOutcome,
};
use mosaic_core::{DhtTarget, Filter, PublicKey, SecretKey, ServerBootstrap, UserBootstrap};
use mosaic_dht::{Bootstrap, Dht, DhtConfig, DhtError, Resolver};
use mosaic_net::{ClientTls, ConnectOptions};
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::dht::{self, DhtArgs};
use crate::identity::{Config, Home};
use crate::servers::{BootstrapJson, ServerRef, usage_name};

/// The options of every command that talks to servers.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    #[command(flatten)]
    pub dht: DhtArgs,
    /// A PEM file of certificates to trust for wss, besides the usual roots
    /// (a private CA, or a server's self-signed certificate). Default: the
    /// one in config.toml.
    #[arg(long, value_name = "FILE", env = "MOSAIC_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

/// Finds servers: this identity's from its configuration, the rest through
/// the DHT (started on first need).
struct CliDirectory {
    me: Option<(PublicKey, UserBootstrap)>,
    addresses: Mutex<HashMap<PublicKey, Vec<ServerAddress>>>,
    dht_config: DhtConfig,
    cache: Mutex<Option<mosaic_dht::Cache>>,
    resolver: OnceCell<Resolver>,
}

impl CliDirectory {
    /// The resolver, starting the DHT node on first use.
    async fn resolver(&self) -> Result<&Resolver, DhtError> {
        self.resolver
            .get_or_try_init(|| async {
                let dht = Dht::start(self.dht_config.clone())?;
                let cache = self
                    .cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .unwrap_or_else(|| mosaic_dht::Cache::new(self.dht_config.cache));
                Ok(Resolver::with_cache(dht, cache))
            })
            .await
    }

    fn direct(&self, server: &PublicKey) -> Option<Vec<ServerAddress>> {
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(server)
            .cloned()
    }
}

fn directory_error(e: DhtError) -> ClientError {
    ClientError::Directory(Box::new(e))
}

impl Directory for CliDirectory {
    fn user_bootstrap<'a>(
        &'a self,
        user: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<UserBootstrap>> {
        Box::pin(async move {
            if let Some((me, bootstrap)) = &self.me
                && me == user
            {
                return Ok(Some(bootstrap.clone()));
            }
            let resolver = self.resolver().await.map_err(directory_error)?;
            let found = resolver.resolve_user(user).await.map_err(directory_error)?;
            Ok(found.map(|r| r.value))
        })
    }

    fn server_bootstrap<'a>(
        &'a self,
        server: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<ServerBootstrap>> {
        Box::pin(async move {
            let resolver = self.resolver().await.map_err(directory_error)?;
            let found = resolver
                .resolve_server(server)
                .await
                .map_err(directory_error)?;
            Ok(found.map(|r| r.value))
        })
    }

    fn server_addresses<'a>(
        &'a self,
        server: &'a PublicKey,
    ) -> DirectoryFuture<'a, Option<Vec<ServerAddress>>> {
        Box::pin(async move {
            if let Some(direct) = self.direct(server) {
                return Ok(Some(direct));
            }
            Ok(self
                .server_bootstrap(server)
                .await?
                .map(|b| b.urls().iter().cloned().map(ServerAddress::Url).collect()))
        })
    }
}

/// A client for one command, with the directory behind it. Dropping it
/// saves the DHT cache.
pub struct Session {
    /// The client.
    pub client: Client,
    directory: Arc<CliDirectory>,
    cache_file: PathBuf,
}

impl Session {
    /// A session for `home`. `config` gives this identity's servers (none
    /// before `init`); `identity` is the key to authenticate as, if any.
    /// The DHT nodes are those given on the command line (or in
    /// `MOSAIC_DHT_BOOTSTRAP`), else config.toml's, else the public DHT.
    pub fn open(
        home: &Home,
        config: Option<&Config>,
        net: &NetArgs,
        identity: Option<SecretKey>,
    ) -> anyhow::Result<Session> {
        let nodes = match (&net.dht.bootstrap, config) {
            (given, _) if !given.is_empty() => given.clone(),
            (_, Some(config)) => config.dht_bootstrap.clone(),
            _ => Vec::new(),
        };
        let dht_args = DhtArgs {
            bootstrap: nodes.clone(),
        };
        let dht_config = dht_args.config();
        let cache_file = home.dht_cache_file(&nodes);
        let cache = dht::load_cache(Some(&cache_file), &dht_config);

        let mut addresses = HashMap::new();
        let mut me = None;
        if let Some(config) = config {
            for choice in &config.servers {
                add_direct(&mut addresses, &choice.server);
            }
            if let Some(bootstrap) = config.bootstrap()? {
                me = Some((config.public_key, bootstrap));
            }
        }
        let tls_ca = net
            .tls_ca
            .clone()
            .or_else(|| config.and_then(|c| c.tls_ca.clone()));
        let tls = match &tls_ca {
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("cannot read the TLS certificates in {}", path.display())
                })?;
                Some(
                    ClientTls::with_roots(&pem, &path.display().to_string()).with_context(
                        || format!("cannot trust the certificates in {}", path.display()),
                    )?,
                )
            }
            None => None,
        };
        let directory = Arc::new(CliDirectory {
            me,
            addresses: Mutex::new(addresses),
            dht_config,
            cache: Mutex::new(Some(cache)),
            resolver: OnceCell::new(),
        });
        let client = Client::new(ClientConfig {
            identity,
            directory: directory.clone(),
            connect: ConnectOptions {
                tls,
                ..ConnectOptions::default()
            },
            ..ClientConfig::default()
        })
        .context("cannot set up the client")?;
        Ok(Session {
            client,
            directory,
            cache_file,
        })
    }

    /// Connects to `server` at its direct address, when it has one, from
    /// now on.
    pub fn add_server(&self, server: &ServerRef) {
        let mut addresses = self
            .directory
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        add_direct(&mut addresses, server);
    }

    /// Drops `user`'s cached user bootstrap, so that the next lookup asks
    /// the DHT. Whether there was one.
    pub fn forget_user(&self, user: &PublicKey) -> bool {
        match self.directory.resolver.get() {
            Some(resolver) => resolver.cache().remove(DhtTarget::User, user).is_some(),
            None => false,
        }
    }

    /// Publishes this identity's user bootstrap, signed by `master`.
    pub async fn publish_bootstrap(
        &self,
        master: &SecretKey,
        bootstrap: &UserBootstrap,
    ) -> anyhow::Result<BootstrapJson> {
        let resolver = self
            .directory
            .resolver()
            .await
            .context("cannot start the DHT node")?;
        let report = resolver
            .dht()
            .publish(master, &Bootstrap::User(bootstrap.clone()))
            .await
            .map_err(|error| {
                let hint = match &error {
                    DhtError::Conflict { .. } => {
                        "; it was published elsewhere meanwhile: run the command again"
                    }
                    DhtError::Timeout | DhtError::NoNodes => {
                        "; check the network or --dht-bootstrap"
                    }
                    _ => "",
                };
                anyhow::Error::new(error)
                    .context(format!("cannot publish the user bootstrap{hint}"))
            })?;
        resolver.remember(report.item.clone());
        Ok(BootstrapJson {
            seq: report.seq(),
            previous_seq: report.previous_seq,
            stored_at: report.stored_at,
            text: String::from_utf8_lossy(report.item.value()).into_owned(),
        })
    }

    /// Fetches `user`'s records from their outboxes. When no outbox
    /// answers and the bootstrap came from the cache, it is looked up in
    /// the DHT again (the user may have moved) and the fetch is retried.
    /// Errors say what to check; servers that failed while another
    /// answered are reported as warnings.
    pub async fn fetch(
        &self,
        user: &PublicKey,
        filter: &Filter,
        limit: u16,
    ) -> anyhow::Result<FetchReport> {
        let first = self.client.fetch(user, filter, limit).await;
        let answered = matches!(&first, Ok(r) if r.per_server.iter().any(|(_, o)| o.is_complete()));
        let report = if !answered && self.forget_user(user) {
            self.client.fetch(user, filter, limit).await
        } else {
            first
        };
        let report = report.map_err(|e| user_error(user, e))?;
        check_answers(user, &report.per_server)?;
        Ok(report)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(resolver) = self.directory.resolver.get() {
            let cache = resolver.cache().clone();
            dht::save_cache(Some(&self.cache_file), &cache);
        }
    }
}

fn add_direct(addresses: &mut HashMap<PublicKey, Vec<ServerAddress>>, server: &ServerRef) {
    if let Some(address) = &server.address {
        addresses.insert(server.key, vec![address.clone()]);
    }
}

/// An error about reaching `user`, saying what to check.
pub fn user_error(user: &PublicKey, error: ClientError) -> anyhow::Error {
    match error {
        ClientError::NoUserBootstrap { .. } => anyhow!(
            "unknown user {user}: no user bootstrap found in the DHT (check the key, and that \
             they published one with `mosaic init --server ...`)"
        ),
        ClientError::NoServers => anyhow!("{user}'s bootstrap lists no outbox server"),
        ClientError::Directory(e) => anyhow!(
            "cannot look up {user} in the DHT: {}; check the network or --dht-bootstrap",
            chain(&*e)
        ),
        other => anyhow!("{}", explain(&other)).context(format!("cannot reach {user}'s servers")),
    }
}

/// Fails when no server answered in full; warns about the ones that failed
/// while others answered.
pub fn check_answers(
    user: &PublicKey,
    per_server: &[(PublicKey, ServerOutcome)],
) -> anyhow::Result<()> {
    let problems: Vec<String> = per_server
        .iter()
        .filter_map(|(server, outcome)| {
            outcome_problem(outcome).map(|p| format!("{}: {p}", server.to_server_printable()))
        })
        .collect();
    if per_server.iter().any(|(_, o)| o.is_complete()) {
        for problem in problems {
            crate::output::warn(problem);
        }
        return Ok(());
    }
    Err(anyhow!(
        "none of {user}'s {} outbox server(s) answered: {}",
        per_server.len(),
        problems.join("; ")
    ))
}

fn outcome_problem(outcome: &ServerOutcome) -> Option<String> {
    match outcome {
        ServerOutcome::Complete { .. } => None,
        ServerOutcome::Refused { code, .. } => Some(format!("refused the query: {code}")),
        ServerOutcome::Misbehaved { problem } => Some(format!("misbehaved: {problem}")),
        ServerOutcome::Failed { error, .. } => Some(explain(error)),
        _ => Some("did not answer".to_owned()),
    }
}

/// An error and its causes, on one line.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// A client error with what was tried, on one line.
pub fn explain(error: &ClientError) -> String {
    match error {
        ClientError::Unreachable { server, attempts } => {
            let tried: Vec<String> = attempts
                .iter()
                .map(|a| match &a.problem {
                    ConnectProblem::Net(e) => format!("{}: {}", a.address, chain(e)),
                    other => format!("{}: {other}", a.address),
                })
                .collect();
            if tried.is_empty() {
                format!("cannot reach {server}: no address known")
            } else {
                format!("cannot reach {server} ({})", tried.join("; "))
            }
        }
        ClientError::NoServerAddress { server } => format!(
            "no address known for {}: it published no server bootstrap (give its address as \
             mosrv0...@ws://host:port/)",
            server.to_server_printable()
        ),
        other => chain(other),
    }
}

/// One server's answer to a submission, in JSON output.
#[derive(Debug, Serialize)]
pub struct OutcomeJson {
    /// `mosrv0...`.
    pub server: String,
    /// `outbox`, `inbox` or both: why it was sent there.
    pub usage: String,
    /// Whether the server holds the record now (ACCEPTED or DUPLICATE).
    pub stored: bool,
    /// The result code's name, or the error.
    pub result: String,
}

/// One outcome of a publication as JSON.
pub fn outcome_json(outcome: &PublishOutcome) -> OutcomeJson {
    OutcomeJson {
        server: outcome.server.to_server_printable(),
        usage: usage_name(outcome.usage),
        stored: outcome.is_stored(),
        result: match &outcome.result {
            Ok(code) => code.name().map_or_else(|| code.to_string(), str::to_owned),
            Err(error) => explain(error),
        },
    }
}

/// Why no server stored a record, on one line.
pub fn outcome_summary(outcomes: &[OutcomeJson]) -> String {
    outcomes
        .iter()
        .map(|o| format!("{}: {}", o.server, o.result))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Prints one line per server.
pub fn print_outcomes(out: &mut impl Write, outcomes: &[OutcomeJson]) -> anyhow::Result<()> {
    for o in outcomes {
        writeln!(out, "  {} ({}): {}", o.server, o.usage, o.result)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_client::{ConnectAttempt, ServerId};
    use mosaic_core::ServerUsage;

    fn key(n: u8) -> PublicKey {
        SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn answers_are_checked_and_explained() {
        let (user, a, b) = (key(1), key(2), key(3));
        let timeout = || ServerOutcome::Failed {
            error: ClientError::Timeout {
                server: ServerId::Key(a),
            },
            records: 0,
        };
        let error = check_answers(&user, &[(a, timeout())])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("none of") && error.contains("did not answer in time"),
            "{error}"
        );
        let complete = ServerOutcome::Complete { records: 2 };
        assert!(check_answers(&user, &[(a, timeout()), (b, complete)]).is_ok());

        let unknown = user_error(&user, ClientError::NoUserBootstrap { user });
        assert!(
            unknown.to_string().starts_with("unknown user mopub0"),
            "{unknown}"
        );
        let unreachable = ClientError::Unreachable {
            server: ServerId::Key(a),
            attempts: vec![ConnectAttempt {
                address: "ws://127.0.0.1:9/".into(),
                problem: ConnectProblem::KeyNotProven,
            }],
        };
        let text = explain(&unreachable);
        assert!(
            text.contains("ws://127.0.0.1:9/: the server could not prove its key"),
            "{text}"
        );
        let nowhere = ClientError::Unreachable {
            server: ServerId::Key(a),
            attempts: Vec::new(),
        };
        assert!(explain(&nowhere).contains("no address known"));
    }

    #[test]
    fn own_servers_need_no_dht() {
        let dir = std::env::temp_dir().join(format!("mosaic-cli-connect-{}", std::process::id()));
        let home = Home::at(dir.clone());
        let me = key(1);
        let server = crate::servers::parse_server(&format!(
            "{}@ws://127.0.0.1:9/",
            key(2).to_server_printable()
        ))
        .unwrap();
        let mut config = Config::new(me);
        config.servers = vec![crate::servers::ServerChoice {
            server: server.clone(),
            usage: ServerUsage::OUTBOX,
        }];
        // A DHT that cannot answer: nothing below may need it.
        let net = NetArgs {
            dht: DhtArgs {
                bootstrap: vec!["127.0.0.1:9".into()],
            },
            tls_ca: None,
        };
        let session = Session::open(&home, Some(&config), &net, None).unwrap();
        let runtime = dht::runtime().unwrap();
        let directory = session.directory.clone();
        let (mine, addresses) = runtime.block_on(async {
            (
                directory.user_bootstrap(&me).await.unwrap(),
                directory.server_addresses(&server.key).await.unwrap(),
            )
        });
        assert_eq!(mine, config.bootstrap().unwrap());
        assert_eq!(addresses, Some(vec![server.address.clone().unwrap()]));
        assert!(directory.resolver.get().is_none(), "the DHT was started");
        assert!(!session.forget_user(&key(5)));
        // A trusted CA file that does not exist is a clear error.
        let missing = NetArgs {
            tls_ca: Some(dir.join("no-such.pem")),
            ..net
        };
        let error = Session::open(&home, Some(&config), &missing, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("cannot read the TLS certificates"),
            "{error}"
        );
        drop(session);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
