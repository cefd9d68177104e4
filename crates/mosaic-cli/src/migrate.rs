//! `mosaic migrate --to SERVER`: copy all of this identity's records to a
//! new server, make it the first outbox, and publish the bootstrap; and the
//! helpers `backup` and `restore` share with it (fetching everything, page
//! by page, and submitting many records with a progress bar).

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mosaic_client::{BulkOptions, ServerLink};
use mosaic_core::{FilterBuilder, OwnedRecord, PublicKey, ServerUsage, Timestamp};
use serde::Serialize;

use crate::Status;
use crate::connect::{NetArgs, Session, explain};
use crate::feed::query_servers;
use crate::identity::Home;
use crate::output::{self, OutputArgs};
use crate::servers::{self, BootstrapJson, ServerChoice, ServerRef, parse_server, parse_usage};

/// Records asked for per query while fetching everything.
const PAGE: u16 = 500;

/// Arguments of `mosaic migrate`.
#[derive(Debug, Args)]
#[command(after_help = MIGRATE_AFTER_HELP)]
pub struct MigrateArgs {
    /// The new server: mosrv0..., or mosrv0...@ADDRESS.
    #[arg(long, value_name = "SERVER", value_parser = parse_server)]
    to: ServerRef,
    /// What the new server is used for: outbox, inbox or both.
    #[arg(long, value_name = "USAGE", default_value = "both", value_parser = parse_usage)]
    usage: ServerUsage,
    /// Stop using the old servers whose every use the new one takes over
    /// (for instance, all outbox+inbox servers when moving to a `both`).
    #[arg(long)]
    drop_old: bool,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const MIGRATE_AFTER_HELP: &str = "\
Every record of this identity is fetched from its current outboxes (page by page)
and submitted to the new server, oldest first and several at a time (waiting out
the server's rate limit), with a progress bar; when the new server is an inbox,
the records in the current inboxes that tag this identity are copied too. Only when every record is stored there does config.toml change: the
new server becomes the first, and the user bootstrap is published to the DHT.
Running it again is harmless (records already there count as duplicates).

The master key is needed (its password is asked, or read from MOSAIC_PASSWORD):
it authenticates the fetches, so records only the author may read are copied too,
and it signs the bootstrap.

With --json: {\"to\", \"usage\", \"records\", \"inbox_records\", \"accepted\",
\"duplicate\", \"dropped\": [mosrv0...], \"servers\": [...], \"bootstrap\": {\"seq\", ...}}.

Example:
  mosaic migrate --to mosrv0... --drop-old";

/// How many records a server took.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Copied {
    /// Stored anew.
    pub accepted: usize,
    /// Already there.
    pub duplicate: usize,
}

/// Where [`fetch_everything`] reads from.
pub enum Source<'a> {
    /// A user's records on their outboxes.
    Outboxes(&'a PublicKey),
    /// The records tagging a user on these servers (their inboxes).
    Tagging(&'a PublicKey, &'a [PublicKey]),
}

/// Every record of `source`, fetched page by page (newest first, then with
/// `until` moved to the oldest seen) until a page brings nothing new.
pub async fn fetch_everything(
    session: &Session,
    source: Source<'_>,
) -> anyhow::Result<Vec<OwnedRecord>> {
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    let mut until: Option<Timestamp> = None;
    loop {
        let page = match &source {
            Source::Outboxes(user) => {
                let mut filter = FilterBuilder::new().authors([**user]);
                if let Some(until) = until {
                    filter = filter.until(until);
                }
                session.fetch(user, &filter.build()?, PAGE).await?.records
            }
            Source::Tagging(user, servers) => {
                let tag = mosaic_core::OwnedTag::notify_public_key(user);
                let mut filter = FilterBuilder::new().included_tags([&*tag]);
                if let Some(until) = until {
                    filter = filter.until(until);
                }
                query_servers(session, servers, &filter.build()?, PAGE).await?
            }
        };
        let mut new = 0;
        for record in page {
            if seen.insert(record.id()) {
                until = Some(until.map_or(record.timestamp(), |u| u.min(record.timestamp())));
                all.push(record);
                new += 1;
            }
        }
        if new == 0 {
            break;
        }
    }
    all.sort_by(|a, b| a.timestamp().cmp(&b.timestamp()).then(a.id().cmp(&b.id())));
    Ok(all)
}

/// A progress bar on standard error (drawn only on a terminal).
pub fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} records ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Submits `records` to one server, several at a time, waiting out
/// TOO_FAST and retrying lost connections (see
/// [`ServerLink::submit_many`]), with the progress on `bar`. Fails, saying
/// how many were stored, when a record is refused or the server stays
/// unreachable or keeps refusing.
pub async fn submit_all(
    link: &ServerLink,
    records: &[OwnedRecord],
    bar: &ProgressBar,
) -> anyhow::Result<Copied> {
    let report = link
        .submit_many(records, &BulkOptions::default(), |report| {
            bar.set_position(report.answered() as u64)
        })
        .await;
    bar.finish_and_clear();
    if report.retried > 0 {
        tracing::debug!(
            retried = report.retried,
            pauses = report.pauses,
            "submissions sent again after TOO_FAST or a lost connection"
        );
    }
    let stored = report.stored();
    if let Some(error) = &report.stopped {
        bail!("{} after {stored} records were stored", explain(error));
    }
    if let Some((id, code)) = report.refused.first() {
        bail!(
            "{} refused record {} ({code}){}; {stored} records were stored",
            link.server(),
            id.to_printable(),
            match report.refused.len() {
                1 => String::new(),
                n => format!(" and {} others", n - 1),
            }
        );
    }
    Ok(Copied {
        accepted: report.accepted,
        duplicate: report.duplicate,
    })
}

#[derive(Serialize)]
struct MigrateJson {
    to: String,
    usage: String,
    records: usize,
    inbox_records: usize,
    accepted: usize,
    duplicate: usize,
    dropped: Vec<String>,
    servers: Vec<servers::ServerJson>,
    bootstrap: BootstrapJson,
}

/// Runs `mosaic migrate`.
pub fn run(args: MigrateArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let mut config = home.load_config()?;
    if args.usage.is_empty() {
        bail!("--usage must name at least one use");
    }
    let me = config.public_key;
    let old_outboxes = config.servers_with(ServerUsage::OUTBOX);
    if old_outboxes.is_empty() {
        bail!(
            "this identity has no outbox to copy from; add the new server with `mosaic servers add`"
        );
    }
    let old_inboxes: Vec<PublicKey> = config
        .servers_with(ServerUsage::INBOX)
        .into_iter()
        .filter(|s| *s != args.to.key)
        .collect();
    let master = home.master_key(&config)?;
    let session = Session::open(&home, Some(&config), &args.net, Some(master.clone()))?;
    session.add_server(&args.to);
    let runtime = crate::dht::runtime()?;
    let (records, inbox_records, copied) = runtime.block_on(async {
        let mut records = fetch_everything(&session, Source::Outboxes(&me))
            .await
            .context("cannot fetch this identity's records; nothing was changed")?;
        let inbox_records = if args.usage.contains(ServerUsage::INBOX) && !old_inboxes.is_empty() {
            match fetch_everything(&session, Source::Tagging(&me, &old_inboxes)).await {
                Ok(found) => found,
                Err(error) => {
                    output::warn(format_args!("the inbox records are not copied: {error:#}"));
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let inbox_count = inbox_records.len();
        let mine: HashSet<_> = records.iter().map(|r| r.id()).collect();
        records.extend(
            inbox_records
                .into_iter()
                .filter(|r| !mine.contains(&r.id())),
        );
        records.sort_by(|a, b| a.timestamp().cmp(&b.timestamp()).then(a.id().cmp(&b.id())));
        let link = session
            .client
            .connect_key(&args.to.key)
            .await
            .map_err(|e| anyhow::anyhow!("{}", explain(&e)))
            .context("cannot reach the new server; nothing was changed")?;
        let bar = progress(records.len(), "copying");
        if args.output.json {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let copied = submit_all(&link, &records, &bar)
            .await
            .context("not every record was copied, so nothing was changed; run migrate again")?;
        anyhow::Ok((records.len() - inbox_count, inbox_count, copied))
    })?;

    // The new server first; the old ones it replaces out, if asked.
    let existing = config
        .servers
        .iter()
        .position(|c| c.server.key == args.to.key)
        .map(|i| config.servers.remove(i));
    let address = args
        .to
        .address
        .clone()
        .or_else(|| existing.and_then(|c| c.server.address));
    let mut dropped = Vec::new();
    if args.drop_old {
        config.servers.retain(|c| {
            let replaced = args.usage.contains(c.usage);
            if replaced {
                dropped.push(c.server.key.to_server_printable());
            }
            !replaced
        });
    }
    config.servers.insert(
        0,
        ServerChoice {
            server: ServerRef {
                key: args.to.key,
                address,
            },
            usage: args.usage,
        },
    );
    let bootstrap = config
        .bootstrap()?
        .context("the new configuration lists no server")?;
    home.save_config(&config)?;
    let published = runtime
        .block_on(session.publish_bootstrap(&master, &bootstrap))
        .context(
            "the records are copied and config.toml is saved, but the bootstrap was not \
             published: run `mosaic servers publish`",
        )?;
    drop(session);

    let json = MigrateJson {
        to: args.to.key.to_server_printable(),
        usage: servers::usage_name(args.usage),
        records,
        inbox_records,
        accepted: copied.accepted,
        duplicate: copied.duplicate,
        dropped,
        servers: config
            .servers
            .iter()
            .map(servers::ServerJson::from)
            .collect(),
        bootstrap: published,
    };
    let mut out = output::stdout();
    if args.output.json {
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    writeln!(
        out,
        "copied {} records to {} ({} new, {} already there), {} of them from the inboxes",
        json.records + json.inbox_records,
        json.to,
        json.accepted,
        json.duplicate,
        json.inbox_records
    )?;
    for server in &json.dropped {
        writeln!(out, "stopped using {server}")?;
    }
    for s in &json.servers {
        writeln!(out, "{:<13} {}", s.usage, s.server)?;
    }
    writeln!(
        out,
        "bootstrap published: sequence {}, stored at {} DHT nodes",
        json.bootstrap.seq, json.bootstrap.stored_at
    )?;
    out.flush()?;
    Ok(Status::Success)
}
