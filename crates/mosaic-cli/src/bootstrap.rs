//! `mosaic bootstrap ...`: publish a user's or a server's bootstrap in the
//! Mainline DHT, and show the bootstraps of a key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use mosaic_core::{
    DhtTarget, PublicKey, ServerBootstrap, ServerUsage, Url, UserBootstrap, UserBootstrapEntry,
};
use mosaic_dht::{Bootstrap, Dht, DhtError, PublishReport, Resolved, Resolver};
use serde::Serialize;

use crate::Status;
use crate::dht::{self, DhtArgs};
use crate::key;
use crate::output::{self, OutputArgs};

/// The `bootstrap` commands.
#[derive(Debug, Subcommand)]
pub enum BootstrapCommand {
    /// Publish the servers a user uses, signed by the user's master key.
    #[command(after_help = PUBLISH_USER_AFTER_HELP)]
    PublishUser(PublishUserArgs),
    /// Publish the URLs a server is at, signed by the server's key.
    #[command(after_help = PUBLISH_SERVER_AFTER_HELP)]
    PublishServer(PublishServerArgs),
    /// Show the user and server bootstraps of a key found in the DHT.
    #[command(after_help = SHOW_AFTER_HELP)]
    Show(ShowArgs),
}

const PUBLISH_USER_AFTER_HELP: &str = "\
USAGE is the usage digit 1 to 7 (outbox 1 + inbox 2 + encryption 4), or names
joined by '+': outbox, inbox, encryption. List servers most preferred first.

The current bootstrap is read first; the new one gets the next sequence number
and is stored only if nobody published in between (otherwise: read it again).

With --json: {\"public_key\", \"seq\", \"previous_seq\", \"stored_at\", \"text\"}.

Example:
  mosaic bootstrap publish-user --key me.key --server outbox+inbox:mosrv0... --server 4:mosrv0...";

const PUBLISH_SERVER_AFTER_HELP: &str = "\
URLs use the schemes mosaic (QUIC), mosaictcp or mosaicwss; list them most
preferred first.

With --json: {\"public_key\" (mosrv0), \"seq\", \"previous_seq\", \"stored_at\", \"text\"}.

Example:
  mosaic bootstrap publish-server --key server.key --url mosaicwss://relay.example";

const SHOW_AFTER_HELP: &str = "\
KEY is mopub0... or mosrv0... (the same key). Answers are cached for 30 minutes in
$XDG_CACHE_HOME/mosaic (see --no-cache); a cached answer the DHT could not confirm
is marked stale.

With --json: {\"public_key\", \"server_public_key\", \"user\": null or {\"seq\",
\"stale\", \"fetched_at\" (Unix seconds), \"text\", \"entries\": [{\"usage\",
\"outbox\", \"inbox\", \"encryption\", \"server\"}]}, \"server\": null or {\"seq\",
\"stale\", \"fetched_at\", \"text\", \"urls\"}}.";

/// Arguments of `bootstrap publish-user`.
#[derive(Debug, Args)]
pub struct PublishUserArgs {
    /// The user's master key file (mosec0 or mocryptsec0).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A server the user uses, as USAGE:MOSRV0 (most preferred first; 1 to 16).
    #[arg(long = "server", value_name = "USAGE:MOSRV0", required = true, value_parser = parse_entry)]
    servers: Vec<UserBootstrapEntry>,
    #[command(flatten)]
    dht: DhtArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Arguments of `bootstrap publish-server`.
#[derive(Debug, Args)]
pub struct PublishServerArgs {
    /// The server's key file (mosec0 or mocryptsec0).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A URL the server is at (most preferred first).
    #[arg(long = "url", value_name = "URL", required = true, value_parser = parse_url)]
    urls: Vec<Url>,
    #[command(flatten)]
    dht: DhtArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Arguments of `bootstrap show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The key: mopub0... or mosrv0....
    #[arg(value_name = "KEY", value_parser = parse_key)]
    key: PublicKey,
    /// Neither read nor write the cache: ask the DHT.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    dht: DhtArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs a `bootstrap` command.
pub fn run(command: BootstrapCommand) -> anyhow::Result<Status> {
    match command {
        BootstrapCommand::PublishUser(args) => {
            let bootstrap = UserBootstrap::new(args.servers)
                .context("not a valid user bootstrap; nothing was published")?;
            publish_command(&args.key, bootstrap.into(), &args.dht, args.output)
        }
        BootstrapCommand::PublishServer(args) => {
            let bootstrap = ServerBootstrap::new(args.urls)
                .context("not a valid server bootstrap; nothing was published")?;
            publish_command(&args.key, bootstrap.into(), &args.dht, args.output)
        }
        BootstrapCommand::Show(args) => show_command(args),
    }
}

/// `USAGE:MOSRV0`: a usage digit or names, a colon, a server key.
fn parse_entry(s: &str) -> anyhow::Result<UserBootstrapEntry> {
    let (usage, key) = s
        .split_once(':')
        .ok_or_else(|| anyhow!("{s:?} is not USAGE:MOSRV0 (for instance 3:mosrv0...)"))?;
    let usage = parse_usage(usage)?;
    let server = PublicKey::from_any_printable(key)
        .map_err(|e| anyhow!("{key:?} is not a server key (mosrv0...): {e}"))?;
    Ok(UserBootstrapEntry { usage, server })
}

/// A usage digit `1` to `7`, or `outbox`, `inbox`, `encryption` joined by
/// `+`.
fn parse_usage(s: &str) -> anyhow::Result<ServerUsage> {
    let mut chars = s.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return ServerUsage::from_char(c)
            .ok_or_else(|| anyhow!("the usage digit must be 1 to 7, not {c:?}"));
    }
    let mut usage = ServerUsage::NONE;
    for name in s.split('+') {
        usage = usage
            | match name.trim().to_ascii_lowercase().as_str() {
                "outbox" => ServerUsage::OUTBOX,
                "inbox" => ServerUsage::INBOX,
                "encryption" => ServerUsage::ENCRYPTION,
                other => {
                    bail!(
                        "unknown usage {other:?}: use outbox, inbox, encryption or a digit 1 to 7"
                    );
                }
            };
    }
    Ok(usage)
}

fn parse_url(s: &str) -> anyhow::Result<Url> {
    Url::parse(s).map_err(|e| anyhow!("{s:?} is not a Mosaic URL: {e}"))
}

fn parse_key(s: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_any_printable(s.trim())
        .map_err(|e| anyhow!("{s:?} is not a public key (mopub0... or mosrv0...): {e}"))
}

#[derive(Serialize)]
struct PublishJson {
    public_key: String,
    seq: i64,
    previous_seq: Option<i64>,
    stored_at: usize,
    text: String,
}

fn publish_command(
    key_file: &Path,
    bootstrap: Bootstrap,
    dht_args: &DhtArgs,
    output: OutputArgs,
) -> anyhow::Result<Status> {
    let secret = key::load(key_file)?.secret;
    let config = dht_args.config();
    let cache_file = dht_args.cache_file();
    let report = dht::runtime()?.block_on(async {
        let dht = Dht::start(config.clone()).context("cannot start the DHT node")?;
        publish(&dht, &secret, &bootstrap).await
    })?;
    // The new item answers the next `show` at once.
    let mut cache = dht::load_cache(cache_file.as_deref(), &config);
    cache.insert(report.item.clone(), SystemTime::now());
    dht::save_cache(cache_file.as_deref(), &cache);

    let public_key = report.item.key_name();
    let text = String::from_utf8_lossy(report.item.value()).into_owned();
    let mut out = output::stdout();
    if output.json {
        let json = PublishJson {
            public_key,
            seq: report.seq(),
            previous_seq: report.previous_seq,
            stored_at: report.stored_at,
            text,
        };
        output::json(&mut out, &json)?;
    } else {
        let kind = kind_name(report.item.target());
        let previous = report
            .previous_seq
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        writeln!(out, "published the {kind} bootstrap of {public_key}")?;
        writeln!(
            out,
            "sequence {} (previous: {previous}), stored at {} DHT nodes",
            report.seq(),
            report.stored_at
        )?;
        writeln!(out, "{}", indent(&text))?;
        out.flush()?;
    }
    Ok(Status::Success)
}

/// Publishes, with messages that say what to do on the failures people
/// meet.
async fn publish(
    dht: &Dht,
    secret: &mosaic_core::SecretKey,
    bootstrap: &Bootstrap,
) -> anyhow::Result<PublishReport> {
    let kind = kind_name(bootstrap.target());
    dht.publish(secret, bootstrap).await.map_err(|error| {
        let hint = match &error {
            DhtError::Conflict { .. } => {
                "; someone else published it meanwhile: check it with `mosaic bootstrap show`, then publish again"
            }
            DhtError::Timeout | DhtError::NoNodes => {
                "; check the network or --dht-bootstrap"
            }
            _ => "",
        };
        anyhow::Error::new(error).context(format!("cannot publish the {kind} bootstrap{hint}"))
    })
}

fn kind_name(target: DhtTarget) -> &'static str {
    match target {
        DhtTarget::User => "user",
        DhtTarget::Server => "server",
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Both bootstraps of a key, each found, absent or failed.
struct Found {
    user: Result<Option<Resolved<UserBootstrap>>, DhtError>,
    server: Result<Option<Resolved<ServerBootstrap>>, DhtError>,
}

/// Resolves both kinds at once.
async fn resolve_both(resolver: &Resolver, key: &PublicKey) -> Found {
    let (user, server) = tokio::join!(resolver.resolve_user(key), resolver.resolve_server(key));
    Found { user, server }
}

#[derive(Serialize)]
struct ShowJson {
    public_key: String,
    server_public_key: String,
    user: Option<UserJson>,
    server: Option<ServerJson>,
}

#[derive(Serialize)]
struct UserJson {
    seq: i64,
    stale: bool,
    fetched_at: u64,
    text: String,
    entries: Vec<EntryJson>,
}

#[derive(Serialize)]
struct EntryJson {
    usage: String,
    outbox: bool,
    inbox: bool,
    encryption: bool,
    server: String,
}

#[derive(Serialize)]
struct ServerJson {
    seq: i64,
    stale: bool,
    fetched_at: u64,
    text: String,
    urls: Vec<String>,
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn show_command(args: ShowArgs) -> anyhow::Result<Status> {
    let config = args.dht.config();
    let cache_file = if args.no_cache {
        None
    } else {
        args.dht.cache_file()
    };
    let cache = dht::load_cache(cache_file.as_deref(), &config);
    let (found, cache) = dht::runtime()?.block_on(async {
        let dht = Dht::start(config.clone()).context("cannot start the DHT node")?;
        let resolver = Resolver::with_cache(dht, cache);
        let found = resolve_both(&resolver, &args.key).await;
        let cache = resolver.cache().clone();
        anyhow::Ok((found, cache))
    })?;
    dht::save_cache(cache_file.as_deref(), &cache);

    let key = &args.key;
    let (user, server) = match (found.user, found.server) {
        (Ok(None), Ok(None)) => bail!(
            "no user or server bootstrap found for {} ({}) on the DHT",
            key.to_printable(),
            key.to_server_printable()
        ),
        (Err(user), Err(_)) | (Err(user), Ok(None)) => {
            return Err(anyhow::Error::new(user).context(format!(
                "cannot look up the bootstraps of {}",
                key.to_printable()
            )));
        }
        (Ok(None), Err(server)) => {
            return Err(anyhow::Error::new(server).context(format!(
                "cannot look up the bootstraps of {}",
                key.to_printable()
            )));
        }
        (user, server) => (warn_failed(user, "user"), warn_failed(server, "server")),
    };

    let mut out = output::stdout();
    if args.output.json {
        let json = ShowJson {
            public_key: key.to_printable(),
            server_public_key: key.to_server_printable(),
            user: user.map(|r| UserJson {
                seq: r.seq,
                stale: r.stale,
                fetched_at: unix_seconds(r.fetched_at),
                text: String::from_utf8_lossy(&r.text).into_owned(),
                entries: r
                    .value
                    .entries()
                    .iter()
                    .map(|e| EntryJson {
                        usage: e.usage.to_char().to_string(),
                        outbox: e.usage.contains(ServerUsage::OUTBOX),
                        inbox: e.usage.contains(ServerUsage::INBOX),
                        encryption: e.usage.contains(ServerUsage::ENCRYPTION),
                        server: e.server.to_server_printable(),
                    })
                    .collect(),
            }),
            server: server.map(|r| ServerJson {
                seq: r.seq,
                stale: r.stale,
                fetched_at: unix_seconds(r.fetched_at),
                text: String::from_utf8_lossy(&r.text).into_owned(),
                urls: r.value.urls().iter().map(ToString::to_string).collect(),
            }),
        };
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    writeln!(
        out,
        "key: {} ({})",
        key.to_printable(),
        key.to_server_printable()
    )?;
    match user {
        Some(r) => {
            writeln!(out, "user bootstrap: {}", describe(&r))?;
            writeln!(out, "{}", indent(&String::from_utf8_lossy(&r.text)))?;
            for e in r.value.entries() {
                writeln!(
                    out,
                    "  {:<26} {}",
                    usage_names(e.usage),
                    e.server.to_server_printable()
                )?;
            }
        }
        None => writeln!(out, "user bootstrap: none")?,
    }
    match server {
        Some(r) => {
            writeln!(out, "server bootstrap: {}", describe(&r))?;
            writeln!(out, "{}", indent(&String::from_utf8_lossy(&r.text)))?;
            for url in r.value.urls() {
                writeln!(out, "  {url}")?;
            }
        }
        None => writeln!(out, "server bootstrap: none")?,
    }
    out.flush()?;
    Ok(Status::Success)
}

/// The found value; a failure becomes a warning (the other kind was found).
fn warn_failed<T>(outcome: Result<Option<T>, DhtError>, kind: &str) -> Option<T> {
    outcome.unwrap_or_else(|error| {
        output::warn(format_args!("cannot look up the {kind} bootstrap: {error}"));
        None
    })
}

fn describe<T>(r: &Resolved<T>) -> String {
    let age = SystemTime::now()
        .duration_since(r.fetched_at)
        .map_or(0, |d| d.as_secs());
    format!(
        "sequence {}, fetched {age} s ago{}",
        r.seq,
        if r.stale {
            " (stale: the DHT did not confirm it)"
        } else {
            ""
        }
    )
}

/// `outbox, inbox, encryption` for a usage.
fn usage_names(usage: ServerUsage) -> String {
    [
        (ServerUsage::OUTBOX, "outbox"),
        (ServerUsage::INBOX, "inbox"),
        (ServerUsage::ENCRYPTION, "encryption"),
    ]
    .iter()
    .filter(|(u, _)| usage.contains(*u))
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::SecretKey;
    use mosaic_dht::Testnet;

    #[test]
    fn usages_parse() {
        let both = ServerUsage::OUTBOX | ServerUsage::INBOX;
        assert_eq!(parse_usage("3").unwrap(), both);
        assert_eq!(parse_usage("outbox+Inbox").unwrap(), both);
        assert_eq!(parse_usage("encryption").unwrap(), ServerUsage::ENCRYPTION);
        assert!(parse_usage("0").is_err());
        assert!(parse_usage("8").is_err());
        assert!(parse_usage("out").is_err());
        assert!(parse_usage("").is_err());
        assert_eq!(usage_names(ServerUsage::ALL), "outbox, inbox, encryption");
    }

    #[test]
    fn entries_parse() {
        let key = SecretKey::from_bytes(&[3; 32]).public();
        let entry = parse_entry(&format!("5:{}", key.to_server_printable())).unwrap();
        assert_eq!(entry.usage, ServerUsage::OUTBOX | ServerUsage::ENCRYPTION);
        assert_eq!(entry.server, key);
        assert!(parse_entry(&key.to_server_printable()).is_err());
        assert!(parse_entry("3:mosrv0nonsense").is_err());
        assert!(parse_key(&key.to_printable()).is_ok());
        assert!(parse_url("wss://x").is_err());
    }

    #[test]
    fn publish_then_show_on_a_testnet() {
        let runtime = dht::runtime().unwrap();
        runtime.block_on(async {
            let testnet = Testnet::start(6).await.unwrap();
            let dht = Dht::start(testnet.client_config()).unwrap();
            let secret = SecretKey::from_bytes(&[9; 32]);
            let server =
                ServerBootstrap::new(vec![parse_url("mosaic://a.example").unwrap()]).unwrap();
            let report = publish(&dht, &secret, &server.clone().into())
                .await
                .unwrap();
            assert_eq!(report.seq(), 1);

            let resolver = Resolver::new(Dht::start(testnet.client_config()).unwrap());
            let found = resolve_both(&resolver, &secret.public()).await;
            assert_eq!(found.server.unwrap().unwrap().value, server);
            assert!(found.user.unwrap().is_none());

            // A DHT that does not answer: the message says what to check.
            let dead =
                Dht::start(mosaic_dht::DhtConfig::local(vec!["127.0.0.1:9".into()])).unwrap();
            let error = publish(&dead, &secret, &server.into()).await.unwrap_err();
            assert!(
                format!("{error:#}").contains("check the network or --dht-bootstrap"),
                "{error:#}"
            );
        });
    }
}
