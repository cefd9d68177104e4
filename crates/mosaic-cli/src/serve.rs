//! `mosaic serve`: run a Mosaic server on an embedded store.
//!
//! Everything lives in one data directory (default
//! `$XDG_DATA_HOME/mosaic/server`, else `~/.local/share/mosaic/server`): the
//! store in `store/`, the server's key in `server.key`, generated on first
//! start with mode 0600, and the admin socket `admin.sock` (mode 0600) that
//! `mosaic admin` and `mosaic store` use while the server runs. Settings
//! come from the defaults, then the TOML file given with `--config` (or
//! `$MOSAIC_SERVER_CONFIG`), then the flags. SIGHUP reads the file (and the
//! TLS files) again and puts them in force without dropping a connection.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use mosaic_core::{SecretKey, ServerBootstrap, Url};
use mosaic_dht::{Dht, DhtConfig, RepublishConfig, Republisher, Resolver};
use mosaic_net::ServerTls;
use mosaic_server::{ADMIN_SOCKET, DhtSlot, Reloader, Server, ServerConfig};
use mosaic_store::{Store, StoreConfig};

use crate::Status;
use crate::output;

/// The example configuration shipped with the binary.
pub const EXAMPLE_CONFIG: &str = include_str!("../config.example.toml");

/// Run a Mosaic server.
#[derive(Debug, Args)]
#[command(after_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Data directory holding the store and the server key.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8135].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// TOML configuration file (see `mosaic serve --print-config`).
    #[arg(long, value_name = "FILE", env = "MOSAIC_SERVER_CONFIG")]
    config: Option<PathBuf>,
    /// PEM certificate chain: serve wss (TLS) instead of plain ws.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The public URL of this server (mosaicwss://host:port/).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Do not use the Mainline DHT.
    #[arg(long)]
    no_dht: bool,
    #[command(flatten)]
    dht: crate::dht::DhtArgs,
    /// Answer queries whose filters have no narrow element (D-6).
    #[arg(long)]
    allow_open_queries: bool,
    /// Print the example configuration file and exit.
    #[arg(long)]
    print_config: bool,
    /// How log lines on standard error are written: text, or JSON (one
    /// object per line, for log collectors).
    #[arg(
        long,
        value_name = "FORMAT",
        value_enum,
        default_value_t,
        env = "MOSAIC_LOG_FORMAT"
    )]
    log_format: crate::logging::LogFormat,
}

const SERVE_HELP: &str = "\
The server listens on 127.0.0.1:8135 by default (loopback only). It prints its
key (mosrv0...) and URL on start; `curl http://127.0.0.1:8135/` shows its status.
SIGINT or SIGTERM stop it cleanly: it stops accepting, tells clients it is
shutting down and finishes pending commits.

While it runs, `mosaic admin` and `mosaic store stats|export|remove` reach it
through DIR/admin.sock (mode 0600: only the user running the server).

SIGHUP reloads: the configuration file and the TLS certificate and key are
read again and put in force without dropping connections (limits, roles,
allow_open_queries; the allow-list and the bans are read from the store
again; connection settings apply to connections accepted afterwards). A
changed `listen` is refused; settings fixed at start (public_url,
metrics_listen, max_commit_batch, submission_bytes_in_flight,
dht_lookups_in_flight) keep their old values until a restart, with a
warning. An invalid file is refused with one log line and the old
configuration stays.

Environment:
  MOSAIC_SERVER_CONFIG  the configuration file, when --config is not given
  MOSAIC_LOG_FORMAT     text or json, when --log-format is not given
  RUST_LOG              log filter (default: mosaic=info)

`curl http://127.0.0.1:8135/metrics` shows the metrics in the Prometheus text
format (or on `metrics_listen` alone, when the configuration sets it).";

/// The default data directory.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("mosaic").join("server"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set: give --data DIR")?;
    Ok(PathBuf::from(home)
        .join(".local")
        .join("share")
        .join("mosaic")
        .join("server"))
}

/// Reads the server key, or creates one (mode 0600) on first start.
fn server_key(path: &Path) -> anyhow::Result<SecretKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::from_printable(text.trim())
            .with_context(|| format!("{} does not hold a mosec0 key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate(&mut rand::rng());
            let mut text = key.to_printable();
            text.push('\n');
            output::write_secret_file(path, text.as_bytes(), false)?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Where the configuration comes from, kept to read it again on SIGHUP.
#[derive(Debug, Clone)]
struct ConfigSource {
    file: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    allow_open_queries: bool,
    tls: Option<(PathBuf, PathBuf)>,
}

impl ConfigSource {
    fn new(args: &ServeArgs) -> anyhow::Result<ConfigSource> {
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        Ok(ConfigSource {
            file: args.config.clone(),
            listen: args.listen,
            public_url: args.public_url.clone(),
            allow_open_queries: args.allow_open_queries,
            tls,
        })
    }

    /// The defaults, then the file, then the flags; validated.
    fn config(&self) -> anyhow::Result<ServerConfig> {
        let mut config = match &self.file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                toml::from_str::<ServerConfig>(&text).map_err(|e| {
                    // One line, for the log: where, and what is wrong.
                    let line = e
                        .span()
                        .and_then(|span| text.get(..span.start))
                        .map(|before| before.matches('\n').count() + 1);
                    let at = line.map(|n| format!(", line {n}")).unwrap_or_default();
                    anyhow::anyhow!(
                        "invalid configuration in {}{at}: {}",
                        path.display(),
                        e.message().trim()
                    )
                })?
            }
            None => ServerConfig::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(url) = &self.public_url {
            config.public_url = Some(url.clone());
        }
        if self.allow_open_queries {
            config.allow_open_queries = true;
        }
        config.validate().context("invalid configuration")?;
        Ok(config)
    }

    /// The certificate and key, when TLS is on.
    fn tls(&self) -> anyhow::Result<Option<ServerTls>> {
        let Some((cert, key)) = &self.tls else {
            return Ok(None);
        };
        let cert_pem =
            std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
        let key_pem =
            std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
        Ok(Some(ServerTls::from_pem(
            &cert_pem,
            &key_pem,
            &cert.display().to_string(),
            &key.display().to_string(),
        )?))
    }
}

/// Runs `mosaic serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<Status> {
    if args.print_config {
        print!("{EXAMPLE_CONFIG}");
        return Ok(Status::Success);
    }
    crate::logging::init(args.log_format);
    let source = ConfigSource::new(&args)?;
    let config = source.config()?;
    let data = match &args.data {
        Some(d) => d.clone(),
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let key = server_key(&data.join("server.key"))?;
    let tls = source.tls()?;
    let store_dir = data.join("store");
    let store = Store::open(&store_dir, StoreConfig::default())
        .with_context(|| format!("cannot open the store in {}", store_dir.display()))?;
    let store = Arc::new(store);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let dht = (!args.no_dht).then(|| args.dht.config());
    let public_url = config.public_url.clone();
    let publisher_key = key.clone();
    let result = runtime.block_on(async move {
        let mut server = Server::bind(config, key, store, tls).await?;
        server.serve_admin(data.join(ADMIN_SOCKET)).await?;
        tokio::spawn(reload_on_sighup(source, server.reloader()));
        if let Some(dht) = dht {
            tokio::spawn(start_dht(dht, server.dht_slot(), public_url, publisher_key));
        }
        // Standard output may be a pipe that nobody reads any more: the
        // server goes on regardless. "listening on" comes last, so that a
        // script can wait for it.
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "mosaic server {}",
            server.public_key().to_server_printable()
        );
        let _ = writeln!(out, "data in {}", data.display());
        let _ = writeln!(out, "listening on {}", server.url());
        let _ = out.flush();
        server.run(shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // Background work (the DHT node, the republisher, lookups in flight) must
    // not keep the process alive once the server has stopped.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result?;
    Ok(Status::Success)
}

/// Starts the DHT node in the background: the server answers DHT Lookups
/// through it, and publishes (and keeps alive) its own server bootstrap when
/// it has a public URL. Without network the server goes on without it.
async fn start_dht(config: DhtConfig, slot: DhtSlot, public_url: Option<String>, key: SecretKey) {
    let dht = match tokio::task::spawn_blocking(move || Dht::start(config)).await {
        Ok(Ok(dht)) => dht,
        Ok(Err(e)) => {
            output::warn(format!("the DHT is off: {e}"));
            return;
        }
        Err(_) => return,
    };
    slot.set(Resolver::new(dht.clone()));
    drop(slot);
    let Some(url) = public_url else { return };
    let bootstrap = match Url::parse(&url)
        .map_err(anyhow::Error::from)
        .and_then(|url| Ok(ServerBootstrap::new(vec![url])?))
    {
        Ok(b) => b,
        Err(e) => {
            output::warn(format!("cannot publish the server bootstrap: {e:#}"));
            return;
        }
    };
    match dht.publish_server(&key, &bootstrap).await {
        Ok(report) => {
            tracing::info!(
                seq = report.seq(),
                stored_at = report.stored_at,
                "published the server bootstrap"
            );
            match Republisher::spawn(dht, vec![report.item], RepublishConfig::default()) {
                // The republisher stops when its handle is dropped: keep it
                // for the life of the server.
                Ok(handle) => {
                    let _handle = handle;
                    std::future::pending::<()>().await;
                }
                Err(e) => output::warn(format!("the server bootstrap will not be refreshed: {e}")),
            }
        }
        Err(e) => output::warn(format!("cannot publish the server bootstrap: {e}")),
    }
}

/// Reloads the configuration on each SIGHUP; a refused reload is logged in
/// one line and the server goes on with the configuration it had.
async fn reload_on_sighup(source: ConfigSource, reloader: Reloader) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP cannot be handled: no reload");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            let read = source.config().and_then(|c| Ok((c, source.tls()?)));
            let outcome = match read {
                Ok((config, tls)) => reloader.reload(config, tls).await.map_err(Into::into),
                Err(e) => Err(e),
            };
            match outcome {
                // The server logs what changed and what waits for a restart.
                Ok(_) => {}
                Err(e) => tracing::error!(
                    "configuration reload refused: {e:#}; keeping the current configuration"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (source, reloader);
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_server::DEFAULT_PORT;

    #[test]
    fn configuration_errors_name_the_file_and_line_in_one_line() {
        let path =
            std::env::temp_dir().join(format!("mosaic-serve-conf-{}.toml", std::process::id()));
        let source = ConfigSource {
            file: Some(path.clone()),
            listen: None,
            public_url: None,
            allow_open_queries: false,
            tls: None,
        };
        for text in [
            "[limits]\noutbond_queue = 3\n",
            "[limits]\nmax_query_limit = \"x\"\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let message = format!("{:#}", source.config().unwrap_err());
            assert!(message.contains(".toml, line 2: "), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        std::fs::write(&path, "[limits]\nmax_query_limit = 0\n").unwrap();
        let message = format!("{:#}", source.config().unwrap_err());
        assert!(message.contains("max_query_limit"), "{message}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_example_config_is_the_default() {
        let parsed: ServerConfig = toml::from_str(EXAMPLE_CONFIG).unwrap();
        assert_eq!(parsed, ServerConfig::default());
        assert_eq!(parsed.listen.port(), DEFAULT_PORT);
    }
}
