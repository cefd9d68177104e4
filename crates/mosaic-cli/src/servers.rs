//! `mosaic servers ...`: the servers this identity uses (config.toml) and
//! its user bootstrap in the DHT; and how servers are written on the
//! command line.
//!
//! A server is `mosrv0...` (its addresses come from its server bootstrap in
//! the DHT), optionally followed by `@ADDRESS` to connect to it directly
//! (`ws://127.0.0.1:8135/`, `wss://...` or `mosaicwss://...`). Where a usage
//! goes with it, it is written first: `inbox:mosrv0...`.

use std::io::Write;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use mosaic_client::ServerAddress;
use mosaic_core::{PublicKey, ServerUsage};
use serde::Serialize;

use crate::Status;
use crate::connect::{NetArgs, Session};
use crate::identity::{Config, Home};
use crate::output::{self, OutputArgs};

/// A server: its key, and where to reach it when not through the DHT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRef {
    /// The server's key.
    pub key: PublicKey,
    /// A direct address, used instead of the server bootstrap.
    pub address: Option<ServerAddress>,
}

impl std::fmt::Display for ServerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key.to_server_printable())?;
        match &self.address {
            Some(address) => write!(f, "@{address}"),
            None => Ok(()),
        }
    }
}

/// A server and what the identity uses it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerChoice {
    /// The server.
    pub server: ServerRef,
    /// Outbox, inbox, or both.
    pub usage: ServerUsage,
}

/// `mosrv0...` or `mosrv0...@ADDRESS`.
pub fn parse_server(s: &str) -> anyhow::Result<ServerRef> {
    let s = s.trim();
    let (key, address) = match s.split_once('@') {
        Some((key, address)) => (key, Some(parse_address(address)?)),
        None => (s, None),
    };
    let key = PublicKey::from_any_printable(key).map_err(|e| {
        anyhow!("{key:?} is not a server key (mosrv0..., optionally @ws://host:port/): {e}")
    })?;
    Ok(ServerRef { key, address })
}

/// A direct address: `ws://...`, `wss://...` or a Mosaic URL.
pub fn parse_address(s: &str) -> anyhow::Result<ServerAddress> {
    ServerAddress::parse(s.trim()).map_err(|e| {
        anyhow!("{e} (use ws://host:port/, wss://host:port/ or mosaicwss://host:port/)")
    })
}

/// `[USAGE:]SERVER`; the usage defaults to outbox and inbox.
pub fn parse_choice(s: &str) -> anyhow::Result<ServerChoice> {
    let s = s.trim();
    let starts_with_key = ["mosrv0", "mopub0"].iter().any(|p| s.starts_with(p));
    let (usage, server) = match s.split_once(':') {
        Some((usage, server)) if !starts_with_key => (parse_usage(usage)?, server),
        _ => (ServerUsage::OUTBOX | ServerUsage::INBOX, s),
    };
    Ok(ServerChoice {
        server: parse_server(server)?,
        usage,
    })
}

/// `outbox`, `inbox`, `both` (outbox and inbox), `encryption`, joined with
/// `+`, or a usage digit 1 to 7.
pub fn parse_usage(s: &str) -> anyhow::Result<ServerUsage> {
    let s = s.trim();
    let mut chars = s.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && c.is_ascii_digit()
    {
        return ServerUsage::from_char(c)
            .ok_or_else(|| anyhow!("the usage digit must be 1 to 7, not {c:?}"));
    }
    let mut usage = ServerUsage::NONE;
    for name in s.split('+') {
        usage = usage
            | match name.trim().to_ascii_lowercase().as_str() {
                "outbox" => ServerUsage::OUTBOX,
                "inbox" => ServerUsage::INBOX,
                "both" => ServerUsage::OUTBOX | ServerUsage::INBOX,
                "encryption" => ServerUsage::ENCRYPTION,
                other => bail!(
                    "unknown usage {other:?}: use outbox, inbox, both or encryption (joined \
                     with +)"
                ),
            };
    }
    Ok(usage)
}

/// `outbox+inbox` and so on.
pub fn usage_name(usage: ServerUsage) -> String {
    [
        (ServerUsage::OUTBOX, "outbox"),
        (ServerUsage::INBOX, "inbox"),
        (ServerUsage::ENCRYPTION, "encryption"),
    ]
    .iter()
    .filter(|(u, _)| usage.contains(*u))
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join("+")
}

/// A server in JSON output.
#[derive(Debug, Serialize)]
pub struct ServerJson {
    /// `mosrv0...`.
    pub server: String,
    /// `outbox+inbox` and so on.
    pub usage: String,
    /// The direct address, if any.
    pub address: Option<String>,
}

impl From<&ServerChoice> for ServerJson {
    fn from(c: &ServerChoice) -> ServerJson {
        ServerJson {
            server: c.server.key.to_server_printable(),
            usage: usage_name(c.usage),
            address: c.server.address.as_ref().map(ToString::to_string),
        }
    }
}

/// A bootstrap published, in JSON output.
#[derive(Debug, Serialize)]
pub struct BootstrapJson {
    /// The sequence number published.
    pub seq: i64,
    /// The one replaced, if any.
    pub previous_seq: Option<i64>,
    /// How many DHT nodes stored it.
    pub stored_at: usize,
    /// Its text.
    pub text: String,
}

/// The `servers` commands.
#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// List the servers this identity uses.
    #[command(after_help = LIST_AFTER_HELP)]
    List(ListArgs),
    /// Add a server (or change its usage or address), then publish the
    /// bootstrap.
    #[command(after_help = ADD_AFTER_HELP)]
    Add(AddArgs),
    /// Stop using a server, then publish the bootstrap.
    Remove(RemoveArgs),
    /// Publish the user bootstrap again (after editing config.toml, or to
    /// keep it alive: DHT nodes forget items after a few hours).
    Publish(PublishArgs),
}

const LIST_AFTER_HELP: &str = "\
With --json: {\"public_key\", \"servers\": [{\"server\", \"usage\", \"address\"}]}.";

const ADD_AFTER_HELP: &str = "\
SERVER is mosrv0..., optionally with @ADDRESS (ws://host:port/, wss://... or
mosaicwss://...) to connect there instead of looking the server up in the DHT.
Records already published stay where they are: to move them, use `mosaic migrate`.

With --json: {\"servers\": [...], \"bootstrap\": null or {\"seq\", \"previous_seq\",
\"stored_at\", \"text\"}}.

Examples:
  mosaic servers add mosrv0...
  mosaic servers add --usage inbox --first mosrv0...@mosaicwss://relay.example/";

/// Arguments of `servers list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    output: OutputArgs,
}

/// Arguments of `servers add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The server: mosrv0..., or mosrv0...@ADDRESS.
    #[arg(value_name = "SERVER", value_parser = parse_server)]
    server: ServerRef,
    /// What to use it for: outbox, inbox or both.
    #[arg(long, value_name = "USAGE", default_value = "both", value_parser = parse_usage)]
    usage: ServerUsage,
    /// Put it first (most preferred) instead of last.
    #[arg(long)]
    first: bool,
    /// Only change config.toml; publish later with `mosaic servers publish`.
    #[arg(long)]
    no_publish: bool,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Arguments of `servers remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The server: mosrv0....
    #[arg(value_name = "SERVER", value_parser = parse_server)]
    server: ServerRef,
    /// Only change config.toml; publish later with `mosaic servers publish`.
    #[arg(long)]
    no_publish: bool,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Arguments of `servers publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs a `servers` command.
pub fn run(command: ServersCommand) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let mut config = home.load_config()?;
    match command {
        ServersCommand::List(args) => {
            let mut out = output::stdout();
            if args.output.json {
                #[derive(Serialize)]
                struct ListJson {
                    public_key: String,
                    servers: Vec<ServerJson>,
                }
                let json = ListJson {
                    public_key: config.public_key.to_printable(),
                    servers: config.servers.iter().map(ServerJson::from).collect(),
                };
                output::json(&mut out, &json)?;
                return Ok(Status::Success);
            }
            if config.servers.is_empty() {
                writeln!(
                    out,
                    "no servers: add one with `mosaic servers add mosrv0...`"
                )?;
            }
            for c in &config.servers {
                writeln!(out, "{:<13} {}", usage_name(c.usage), c.server)?;
            }
            out.flush()?;
            Ok(Status::Success)
        }
        ServersCommand::Add(args) => {
            let choice = ServerChoice {
                server: args.server,
                usage: args.usage,
            };
            let position = config
                .servers
                .iter()
                .position(|c| c.server.key == choice.server.key);
            match position {
                Some(i) if !args.first => {
                    if let Some(existing) = config.servers.get_mut(i) {
                        existing.usage = choice.usage;
                        if choice.server.address.is_some() {
                            existing.server.address = choice.server.address;
                        }
                    }
                }
                _ => {
                    if let Some(i) = position {
                        let existing = config.servers.remove(i);
                        let address = choice.server.address.clone().or(existing.server.address);
                        config.servers.insert(
                            0,
                            ServerChoice {
                                server: ServerRef {
                                    key: choice.server.key,
                                    address,
                                },
                                usage: choice.usage,
                            },
                        );
                    } else if args.first {
                        config.servers.insert(0, choice);
                    } else {
                        config.servers.push(choice);
                    }
                }
            }
            finish_edit(&home, &config, &args.net, args.no_publish, args.output)
        }
        ServersCommand::Remove(args) => {
            let before = config.servers.len();
            config.servers.retain(|c| c.server.key != args.server.key);
            if config.servers.len() == before {
                bail!(
                    "{} is not among the servers of this identity (see `mosaic servers list`)",
                    args.server.key.to_server_printable()
                );
            }
            if config.servers.is_empty() && !args.no_publish {
                bail!(
                    "that is the last server: a bootstrap lists at least one; add another \
                     first (`mosaic servers add`)"
                );
            }
            finish_edit(&home, &config, &args.net, args.no_publish, args.output)
        }
        ServersCommand::Publish(args) => finish_edit(&home, &config, &args.net, false, args.output),
    }
}

/// Saves the configuration, publishes its bootstrap unless told not to,
/// and reports.
fn finish_edit(
    home: &Home,
    config: &Config,
    net: &NetArgs,
    no_publish: bool,
    output: OutputArgs,
) -> anyhow::Result<Status> {
    let bootstrap = config.bootstrap()?;
    home.save_config(config)?;
    let published = match bootstrap {
        Some(bootstrap) if !no_publish => {
            let master = home.master_key(config)?;
            let session = Session::open(home, Some(config), net, None)?;
            let published =
                crate::dht::runtime()?.block_on(async {
                    session.publish_bootstrap(&master, &bootstrap).await.context(
                    "config.toml is saved, but the bootstrap was not published: run `mosaic \
                     servers publish` to try again",
                )
                })?;
            Some(published)
        }
        Some(_) => None,
        None if no_publish => None,
        None => bail!("no servers to publish: add one with `mosaic servers add mosrv0...`"),
    };
    let mut out = output::stdout();
    if output.json {
        #[derive(Serialize)]
        struct EditJson {
            servers: Vec<ServerJson>,
            bootstrap: Option<BootstrapJson>,
        }
        let json = EditJson {
            servers: config.servers.iter().map(ServerJson::from).collect(),
            bootstrap: published,
        };
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    for c in &config.servers {
        writeln!(out, "{:<13} {}", usage_name(c.usage), c.server)?;
    }
    match published {
        Some(b) => writeln!(
            out,
            "bootstrap published: sequence {} (previous: {}), stored at {} DHT nodes",
            b.seq,
            b.previous_seq
                .map_or_else(|| "none".to_owned(), |s| s.to_string()),
            b.stored_at
        )?,
        None => writeln!(
            out,
            "config.toml saved; publish with `mosaic servers publish`"
        )?,
    }
    out.flush()?;
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::SecretKey;

    #[test]
    fn servers_and_usages_parse() {
        let key = SecretKey::from_bytes(&[3; 32]).public();
        let srv = key.to_server_printable();
        let plain = parse_server(&srv).unwrap();
        assert_eq!(plain, ServerRef { key, address: None });
        assert_eq!(plain.to_string(), srv);
        let direct = parse_server(&format!("{srv}@ws://127.0.0.1:9/")).unwrap();
        assert_eq!(
            direct.address,
            Some(ServerAddress::WebSocket("ws://127.0.0.1:9/".into()))
        );
        assert_eq!(direct.to_string(), format!("{srv}@ws://127.0.0.1:9/"));
        assert!(parse_server(&format!("{srv}@http://x/")).is_err());
        assert!(parse_server("mosrv0nonsense").is_err());

        let both = ServerUsage::OUTBOX | ServerUsage::INBOX;
        assert_eq!(parse_choice(&srv).unwrap().usage, both);
        let c = parse_choice(&format!("inbox:{srv}@mosaicwss://localhost:9/")).unwrap();
        assert_eq!(c.usage, ServerUsage::INBOX);
        assert!(c.server.address.is_some());
        // A key with an address holds colons: no usage is read from it.
        let c = parse_choice(&format!("{srv}@ws://127.0.0.1:9/")).unwrap();
        assert_eq!(c.usage, both);
        assert!(parse_choice(&format!("sometimes:{srv}")).is_err());

        assert_eq!(parse_usage("both").unwrap(), both);
        assert_eq!(parse_usage("outbox+Inbox").unwrap(), both);
        assert_eq!(parse_usage("3").unwrap(), both);
        assert!(parse_usage("0").is_err());
        assert!(parse_usage("").is_err());
        assert_eq!(usage_name(both), "outbox+inbox");
        assert_eq!(
            parse_usage(&usage_name(ServerUsage::ALL)).unwrap(),
            ServerUsage::ALL
        );
    }
}
