//! Reading: `mosaic feed` (a timeline from users' outboxes), `mosaic thread`
//! (a record and its replies), `mosaic watch` (live) and `mosaic inbox`
//! (what others sent me); and how records are shown, as text or JSON.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use mosaic_client::{Client, SubscriptionEvent};
use mosaic_core::{
    Filter, FilterBuilder, Kind, OwnedRecord, OwnedTag, PublicKey, Record, Reference, ServerUsage,
    TagValue, content,
};
use serde::Serialize;

use crate::Status;
use crate::connect::{NetArgs, Session, explain};
use crate::identity::{Config, Home};
use crate::output::{self, OutputArgs};

/// A user on the command line: `mopub0...`, or `me`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserArg {
    /// This identity.
    Me,
    /// Someone by key.
    Key(PublicKey),
}

/// `mopub0...` or `me`.
pub fn parse_user(s: &str) -> anyhow::Result<UserArg> {
    let s = s.trim();
    if s == "me" {
        return Ok(UserArg::Me);
    }
    PublicKey::from_printable(s)
        .map(UserArg::Key)
        .map_err(|e| anyhow!("{s:?} is not a user key (mopub0..., or `me`): {e}"))
}

impl UserArg {
    /// The key; `me` needs this identity's configuration.
    pub fn resolve(&self, config: Option<&Config>) -> anyhow::Result<PublicKey> {
        match (self, config) {
            (UserArg::Key(key), _) => Ok(*key),
            (UserArg::Me, Some(config)) => Ok(config.public_key),
            (UserArg::Me, None) => bail!("`me` needs an identity: run `mosaic init` first"),
        }
    }
}

/// A kind name for `--kind`.
fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    Kind::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Kind::NAMED.iter().map(|(n, _)| *n).collect();
        anyhow!("unknown kind {s:?}: use one of {}", names.join(", "))
    })
}

/// The kinds a timeline shows by default: posts and replies.
const TIMELINE_KINDS: [Kind; 2] = [Kind::MICROBLOG_ROOT, Kind::REPLY_COMMENT];

/// The configuration, if there is an identity (reading needs none).
pub fn optional_config(home: &Home) -> anyhow::Result<Option<Config>> {
    if home.config_file().exists() {
        home.load_config().map(Some)
    } else {
        Ok(None)
    }
}

/// A record as shown in JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct RecordJson {
    /// `moref0...` of the id.
    pub id: String,
    /// `moref0...` of the address.
    pub address: String,
    /// `mopub0...` of the author.
    pub author: String,
    /// The author as shown to people: the profile's name and the key.
    pub author_name: String,
    /// `mopub0...` of the key that signed it (a subkey, or the author).
    pub signer: String,
    /// The kind's name (`microblog`, `reply`, ...) or its number in hex.
    pub kind: String,
    /// The time it was written (RFC 3339, UTC).
    pub timestamp: String,
    /// The content as plain text (mentions as keys, links as URLs).
    pub text: String,
    /// `moref0...` of the record it replies to, if any.
    pub reply_to: Option<String>,
    /// `moref0...` of the root of its thread, if any.
    pub root: Option<String>,
}

/// Where a record sits in a thread: its first Reply and Root tags.
#[derive(Debug, Default)]
struct ThreadLinks {
    /// The record it replies to.
    reply: Option<Reference>,
    /// The root of its thread.
    root: Option<Reference>,
}

fn thread_links(record: &Record) -> ThreadLinks {
    let mut links = ThreadLinks::default();
    for tag in record.tags() {
        match tag.parse() {
            Ok(TagValue::Reply { reference, .. }) if links.reply.is_none() => {
                links.reply = Some(reference);
            }
            Ok(TagValue::Root { reference, .. }) if links.root.is_none() => {
                links.root = Some(reference);
            }
            _ => {}
        }
    }
    links
}

/// The record as JSON, with `name` for its author.
pub fn record_json(record: &Record, name: &str) -> RecordJson {
    let text = content::render_plain(record)
        .or_else(|_| record.payload_text().map(|t| t.into_owned()))
        .unwrap_or_else(|_| format!("({} bytes, not text)", record.payload().len()));
    let links = thread_links(record);
    let kind = record.kind();
    RecordJson {
        id: record.id().to_printable(),
        address: record.address().to_printable(),
        author: record.author().to_printable(),
        author_name: name.to_owned(),
        signer: record.signing_key().to_printable(),
        kind: kind
            .name()
            .map_or_else(|| format!("{:#018x}", kind.as_u64()), str::to_owned),
        timestamp: record.timestamp().to_string(),
        text,
        reply_to: links.reply.map(|r| r.to_printable()),
        root: links.root.map(|r| r.to_printable()),
    }
}

/// Prints a record for people, indented by `depth` levels.
pub fn print_record(out: &mut impl Write, r: &RecordJson, depth: usize) -> anyhow::Result<()> {
    let pad = "    ".repeat(depth);
    // To the second for people; JSON has the nanoseconds.
    let time = match r.timestamp.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => r.timestamp.clone(),
    };
    let mut head = format!("{pad}{}  {time}", r.author_name);
    if r.kind != "microblog" && r.kind != "reply" {
        head.push_str(&format!("  [{}]", r.kind));
    }
    writeln!(out, "{head}")?;
    for line in r.text.lines() {
        writeln!(out, "{pad}  {line}")?;
    }
    match &r.reply_to {
        Some(parent) => writeln!(out, "{pad}  {}  (reply to {parent})", r.id)?,
        None => writeln!(out, "{pad}  {}", r.id)?,
    }
    writeln!(out)?;
    Ok(())
}

/// Display names, each author's profile fetched once.
#[derive(Default)]
pub struct Names(HashMap<PublicKey, String>);

impl Names {
    /// The name of `author`.
    pub async fn of(&mut self, client: &Client, author: PublicKey) -> String {
        if let Some(name) = self.0.get(&author) {
            return name.clone();
        }
        let name = client.display_name(&author).await;
        self.0.insert(author, name.clone());
        name
    }

    /// Every record as JSON.
    pub async fn json(&mut self, client: &Client, records: &[OwnedRecord]) -> Vec<RecordJson> {
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let name = self.of(client, record.author()).await;
            out.push(record_json(record, &name));
        }
        out
    }
}

/// Prints records: JSON (an array) or text.
fn print_records(json: bool, records: &[RecordJson]) -> anyhow::Result<()> {
    let mut out = output::stdout();
    if json {
        return output::json(&mut out, records);
    }
    if records.is_empty() {
        writeln!(out, "(no records)")?;
    }
    for r in records {
        print_record(&mut out, r, 0)?;
    }
    out.flush()?;
    Ok(())
}

/// Arguments of `mosaic feed`.
#[derive(Debug, Args)]
#[command(after_help = FEED_AFTER_HELP)]
pub struct FeedArgs {
    /// Whose records: mopub0... keys, or `me`.
    #[arg(value_name = "USER", required = true, value_parser = parse_user)]
    users: Vec<UserArg>,
    /// How many records to show, newest first (1 to 65535; servers send
    /// at most their own maximum each).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    limit: u16,
    /// Which kinds of record (microblog, reply, blog, chat, profile, ...);
    /// may be repeated. Default: microblog and reply.
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_kind)]
    kinds: Vec<Kind>,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const FEED_AFTER_HELP: &str = "\
Each user's records come from their outbox servers, found through their user
bootstrap in the DHT (the key is all that is needed). Every record is checked:
its signature, and that its signing key is the author's or a subkey the author
lists. Servers that fail are reported on standard error; the command fails only
when none of a user's servers answers.

With --json: an array of {\"id\", \"address\", \"author\", \"author_name\", \"signer\",
\"kind\", \"timestamp\", \"text\", \"reply_to\", \"root\"}, newest first.";

/// The keys of the users named on the command line, and the kinds to show
/// (the timeline kinds unless some were given): what `feed` and `watch` read.
fn timeline_of(
    users: &[UserArg],
    kinds: &[Kind],
    config: Option<&Config>,
) -> anyhow::Result<(Vec<PublicKey>, Vec<Kind>)> {
    let users = users
        .iter()
        .map(|u| u.resolve(config))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let kinds = if kinds.is_empty() {
        TIMELINE_KINDS.to_vec()
    } else {
        kinds.to_vec()
    };
    Ok((users, kinds))
}

/// Runs `mosaic feed`.
pub fn feed(args: FeedArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let config = optional_config(&home)?;
    let (users, kinds) = timeline_of(&args.users, &args.kinds, config.as_ref())?;
    let session = Session::open(&home, config.as_ref(), &args.net, None)?;
    let records = crate::dht::runtime()?.block_on(async {
        let mut all = Vec::new();
        let mut failures = Vec::new();
        for user in &users {
            let filter = FilterBuilder::new()
                .authors([*user])
                .kinds(kinds.iter().copied())
                .build()?;
            match session.fetch(user, &filter, args.limit).await {
                Ok(report) => {
                    for rejected in &report.rejected {
                        output::warn(format_args!(
                            "left out {}: its signing key is not valid for {} ({})",
                            rejected.id.to_printable(),
                            rejected.author,
                            rejected.problem
                        ));
                    }
                    all.extend(report.records);
                }
                Err(error) if users.len() > 1 => {
                    output::warn(format_args!("{error:#}"));
                    failures.push(error);
                }
                Err(error) => return Err(error),
            }
        }
        if failures.len() == users.len() {
            bail!("none of the users could be read (see above)");
        }
        all.sort_by(|a, b| {
            b.timestamp()
                .cmp(&a.timestamp())
                .then_with(|| b.id().cmp(&a.id()))
        });
        all.dedup_by_key(|r| r.id());
        all.truncate(usize::from(args.limit));
        let mut names = Names::default();
        anyhow::Ok(names.json(&session.client, &all).await)
    })?;
    print_records(args.output.json, &records)?;
    Ok(Status::Success)
}

/// A record named on the command line: `moref0...`, with its author when
/// the reference is an id.
#[derive(Debug, Args)]
pub struct RecordArg {
    /// The record: moref0... (an id with --author, or an address, which
    /// names its author).
    #[arg(value_name = "REF", value_parser = parse_reference)]
    pub reference: Reference,
    /// The record's author (mopub0..., or `me`): needed when REF is an id.
    #[arg(long, value_name = "USER", value_parser = parse_user)]
    pub author: Option<UserArg>,
}

fn parse_reference(s: &str) -> anyhow::Result<Reference> {
    Reference::from_printable(s.trim())
        .map_err(|e| anyhow!("{s:?} is not a record reference (moref0...): {e}"))
}

impl RecordArg {
    /// The author whose outboxes hold the record.
    pub fn author(&self, config: Option<&Config>) -> anyhow::Result<PublicKey> {
        let named = self
            .author
            .as_ref()
            .map(|a| a.resolve(config))
            .transpose()?;
        match (&self.reference, named) {
            (Reference::Address(address), Some(author)) if author != address.author() => bail!(
                "the address {} is by {}, not by --author {author}",
                self.reference.to_printable(),
                address.author()
            ),
            (Reference::Address(address), _) => Ok(address.author()),
            (Reference::Id(_), Some(author)) => Ok(author),
            (Reference::Id(_), None) => bail!(
                "{} is a record id: give --author mopub0... (who wrote it) so that their \
                 servers can be asked",
                self.reference.to_printable()
            ),
        }
    }
}

/// Finds the record `reference` names on `author`'s outboxes (the newest
/// version, for an address).
pub async fn find_record(
    session: &Session,
    author: &PublicKey,
    reference: &Reference,
) -> anyhow::Result<OwnedRecord> {
    let filter = match reference {
        Reference::Id(id) => FilterBuilder::new()
            .authors([*author])
            .timestamps([id.timestamp()])
            .build()?,
        Reference::Address(address) => FilterBuilder::new()
            .authors([*author])
            .kinds([address.kind()])
            .build()?,
    };
    let report = session.fetch(author, &filter, 0).await?;
    report
        .records
        .into_iter()
        .find(|r| match reference {
            Reference::Id(id) => r.id() == *id,
            Reference::Address(address) => r.address() == *address,
        })
        .ok_or_else(|| {
            anyhow!(
                "record {} not found on the outboxes of {author}",
                reference.to_printable()
            )
        })
}

/// Arguments of `mosaic thread`.
#[derive(Debug, Args)]
#[command(after_help = THREAD_AFTER_HELP)]
pub struct ThreadArgs {
    #[command(flatten)]
    record: RecordArg,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const THREAD_AFTER_HELP: &str = "\
The record comes from its author's outboxes; the replies from the author's
inboxes (where replies are delivered) and outboxes, and below each reply its
own replies.

With --json: {\"root\": RECORD, \"replies\": [RECORD with \"depth\" (1 for a direct
reply)]}, each RECORD as in `mosaic feed --json`.";

#[derive(Serialize)]
struct ThreadJson {
    root: RecordJson,
    replies: Vec<ReplyJson>,
}

#[derive(Serialize)]
struct ReplyJson {
    depth: usize,
    #[serde(flatten)]
    record: RecordJson,
}

/// Runs `mosaic thread`.
pub fn thread(args: ThreadArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let config = optional_config(&home)?;
    let author = args.record.author(config.as_ref())?;
    let session = Session::open(&home, config.as_ref(), &args.net, None)?;
    let json = crate::dht::runtime()?.block_on(async {
        let root = find_record(&session, &author, &args.record.reference).await?;
        if let Some(thread_root) = thread_links(&root).root {
            output::warn(format_args!(
                "{} is itself a reply in the thread of {}; showing the replies below it",
                root.id().to_printable(),
                thread_root.to_printable()
            ));
        }
        let replies = replies_to(&session, &author, &root).await?;
        let mut names = Names::default();
        let name = names.of(&session.client, root.author()).await;
        let root_json = record_json(&root, &name);
        let mut ordered = Vec::new();
        for (depth, record) in tree(&root, replies) {
            let name = names.of(&session.client, record.author()).await;
            ordered.push(ReplyJson {
                depth,
                record: record_json(&record, &name),
            });
        }
        anyhow::Ok(ThreadJson {
            root: root_json,
            replies: ordered,
        })
    })?;
    let mut out = output::stdout();
    if args.output.json {
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    print_record(&mut out, &json.root, 0)?;
    for reply in &json.replies {
        print_record(&mut out, &reply.record, reply.depth)?;
    }
    if json.replies.is_empty() {
        writeln!(out, "(no replies found)")?;
    }
    out.flush()?;
    Ok(Status::Success)
}

/// The records in the thread under `root`: those whose Root or Reply tag
/// names it, from `author`'s inboxes and outboxes, each checked (signature,
/// filter, and signing key).
async fn replies_to(
    session: &Session,
    author: &PublicKey,
    root: &Record,
) -> anyhow::Result<Vec<OwnedRecord>> {
    let reference = Reference::Id(root.id());
    let tags = [
        OwnedTag::root(&reference, root.kind()),
        OwnedTag::reply(&reference, root.kind()),
    ];
    let filter = FilterBuilder::new()
        .included_tags(tags.iter().map(|t| &**t))
        .build()?;
    let client = &session.client;
    let bootstrap = client
        .user_bootstrap(author)
        .await
        .map_err(|e| crate::connect::user_error(author, e))?;
    let mut servers: Vec<PublicKey> = Vec::new();
    for server in bootstrap
        .inboxes()
        .take(mosaic_client::SERVERS_PER_USER)
        .chain(bootstrap.outboxes().take(mosaic_client::SERVERS_PER_USER))
    {
        if !servers.contains(&server) {
            servers.push(server);
        }
    }
    let mut found: HashMap<_, OwnedRecord> = HashMap::new();
    let mut answered = 0;
    for server in servers {
        let records = async {
            let link = client.connect_key(&server).await?;
            link.query(&filter, 0).await
        }
        .await;
        match records {
            Ok(records) => {
                answered += 1;
                for record in records {
                    found.entry(record.id()).or_insert(record);
                }
            }
            Err(error) => output::warn(format_args!(
                "{}: {}",
                server.to_server_printable(),
                explain(&error)
            )),
        }
    }
    if answered == 0 {
        bail!("none of {author}'s servers answered the query for replies (see above)");
    }
    let mut replies = Vec::new();
    for record in found.into_values() {
        match client.validate_signer(&record).await {
            Ok(_) => replies.push(record),
            Err(problem) => output::warn(format_args!(
                "left out {}: its signing key is not valid for {} ({problem})",
                record.id().to_printable(),
                record.author()
            )),
        }
    }
    Ok(replies)
}

/// The replies in display order with their depth: each reply under the one
/// it answers, oldest first among siblings; replies to records not found
/// go under the root.
fn tree(root: &Record, replies: Vec<OwnedRecord>) -> Vec<(usize, OwnedRecord)> {
    let ids: HashSet<_> = replies.iter().map(|r| r.id()).collect();
    let mut children: HashMap<mosaic_core::Id, Vec<OwnedRecord>> = HashMap::new();
    for reply in replies {
        let parent = match thread_links(&reply).reply {
            Some(Reference::Id(id)) if ids.contains(&id) && id != reply.id() => id,
            _ => root.id(),
        };
        children.entry(parent).or_default().push(reply);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.timestamp().cmp(&b.timestamp()).then(a.id().cmp(&b.id())));
    }
    let mut out = Vec::new();
    let mut stack: Vec<(usize, OwnedRecord)> = children
        .remove(&root.id())
        .unwrap_or_default()
        .into_iter()
        .rev()
        .map(|r| (1, r))
        .collect();
    while let Some((depth, record)) = stack.pop() {
        if let Some(kids) = children.remove(&record.id()) {
            stack.extend(kids.into_iter().rev().map(|r| (depth + 1, r)));
        }
        out.push((depth, record));
    }
    out
}

/// Arguments of `mosaic watch`.
#[derive(Debug, Args)]
#[command(after_help = WATCH_AFTER_HELP)]
pub struct WatchArgs {
    /// Whose records: mopub0... keys, or `me`.
    #[arg(value_name = "USER", required = true, value_parser = parse_user)]
    users: Vec<UserArg>,
    /// How many stored records each server sends first; 0 for none: only
    /// records timestamped from now on.
    #[arg(long, value_name = "N", default_value_t = 10)]
    limit: u16,
    /// Which kinds of record; may be repeated. Default: microblog and reply.
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_kind)]
    kinds: Vec<Kind>,
    #[command(flatten)]
    net: NetArgs,
    /// Print one JSON object per line: {"event": "record", ...the fields of
    /// `feed --json`...}, {"event": "caught_up", "server"} when a server has
    /// sent what it stored, {"event": "disconnected" or "dropped", "server",
    /// "error"}.
    #[arg(long)]
    json: bool,
}

const WATCH_AFTER_HELP: &str = "\
Subscribes on each user's outboxes and prints each record as it arrives, until
Ctrl-C. Lost connections are opened again (with backoff), and nothing stored
meanwhile is missed. Records are printed once each, in the order they arrive;
status goes to standard error (to standard output as events with --json).";

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum WatchEvent {
    Record(RecordJson),
    Subscribed { server: String },
    CaughtUp { server: String },
    Disconnected { server: String, error: String },
    Dropped { server: String, error: String },
}

/// Runs `mosaic watch`.
pub fn watch(args: WatchArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let config = optional_config(&home)?;
    let (users, kinds) = timeline_of(&args.users, &args.kinds, config.as_ref())?;
    let session = Session::open(&home, config.as_ref(), &args.net, None)?;
    crate::dht::runtime()?.block_on(async {
        let mut filter = FilterBuilder::new().kinds(kinds);
        if args.limit == 0 {
            filter = filter.since(crate::identity::now()?);
        }
        let filter = filter.build()?;
        // An unknown user is an error at once, with what to check.
        for user in &users {
            if let Err(error) = session.client.outboxes(user).await {
                let error = crate::connect::user_error(user, error);
                if users.len() == 1 {
                    return Err(error);
                }
                output::warn(format_args!("{error:#}"));
            }
        }
        let mut subscription = session
            .client
            .subscribe(&users, &filter, args.limit)
            .await
            .map_err(|e| anyhow!("{}", explain(&e)))
            .context("cannot subscribe")?;
        if !args.json {
            status(format_args!(
                "watching {} server(s); Ctrl-C stops",
                subscription.servers().len()
            ));
        }
        let mut names = Names::default();
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let event = tokio::select! {
                _ = &mut ctrl_c => return anyhow::Ok(()),
                event = subscription.next() => event,
            };
            let Some(event) = event else {
                bail!("every server was dropped (see above); nothing more can arrive");
            };
            let shown = match event {
                SubscriptionEvent::Record { record, .. } => {
                    let name = names.of(&session.client, record.author()).await;
                    Some(WatchEvent::Record(record_json(&record, &name)))
                }
                SubscriptionEvent::Subscribed { server, .. } => Some(WatchEvent::Subscribed {
                    server: server.to_server_printable(),
                }),
                SubscriptionEvent::CaughtUp { server } => Some(WatchEvent::CaughtUp {
                    server: server.to_server_printable(),
                }),
                SubscriptionEvent::Disconnected { server, error } => {
                    Some(WatchEvent::Disconnected {
                        server: server.to_server_printable(),
                        error: explain(&error),
                    })
                }
                SubscriptionEvent::Dropped { server, error } => Some(WatchEvent::Dropped {
                    server: server.to_server_printable(),
                    error: explain(&error),
                }),
                SubscriptionEvent::Rejected { rejected, .. } => {
                    output::warn(format_args!(
                        "left out {}: its signing key is not valid for {} ({})",
                        rejected.id.to_printable(),
                        rejected.author,
                        rejected.problem
                    ));
                    None
                }
                SubscriptionEvent::UserUnresolved { user, error } => {
                    output::warn(format_args!(
                        "{:#}",
                        crate::connect::user_error(&user, error)
                    ));
                    None
                }
                _ => None,
            };
            if let Some(event) = shown {
                show_event(args.json, &event)?;
            }
        }
    })?;
    Ok(Status::Success)
}

/// A line about what `watch` is doing, on standard error.
fn status(message: impl std::fmt::Display) {
    // Nothing can be done when standard error is closed.
    let _ = writeln!(std::io::stderr(), "mosaic: {message}");
}

/// Prints one `watch` event, flushed at once.
fn show_event(json: bool, event: &WatchEvent) -> anyhow::Result<()> {
    let mut out = output::stdout();
    if json {
        let line = serde_json::to_string(event).context("writing JSON")?;
        writeln!(out, "{line}")?;
    } else {
        match event {
            WatchEvent::Record(r) => print_record(&mut out, r, 0)?,
            WatchEvent::Subscribed { server } => {
                status(format_args!("subscribed on {server}"));
            }
            WatchEvent::CaughtUp { server } => {
                status(format_args!("{server} sent what it stored; now live"));
            }
            WatchEvent::Disconnected { server, error } => {
                output::warn(format_args!("lost {server} ({error}); will retry"));
            }
            WatchEvent::Dropped { server, error } => {
                output::warn(format_args!("gave up on {server}: {error}"));
            }
        }
    }
    out.flush().context("writing to standard output")
}

/// Arguments of `mosaic inbox`.
#[derive(Debug, Args)]
#[command(after_help = INBOX_AFTER_HELP)]
pub struct InboxArgs {
    /// How many records to show, newest first (1 to 65535; servers send
    /// at most their own maximum each).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    limit: u16,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const INBOX_AFTER_HELP: &str = "\
Asks this identity's inbox servers for the records that tag it (replies,
mentions), authenticated with the master key so that records only the tagged
may read are included (the password is asked, or read from MOSAIC_PASSWORD).

With --json: an array of records as in `mosaic feed --json`, newest first.";

/// Runs `mosaic inbox`.
pub fn inbox(args: InboxArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let config = home.load_config()?;
    let inboxes = config.servers_with(ServerUsage::INBOX);
    if inboxes.is_empty() {
        bail!("this identity has no inbox server: add one with `mosaic servers add --usage inbox`");
    }
    let master = home.master_key(&config)?;
    let me = config.public_key;
    let session = Session::open(&home, Some(&config), &args.net, Some(master))?;
    let records = crate::dht::runtime()?.block_on(async {
        let filter = inbox_filter(&me)?;
        let records = query_servers(&session, &inboxes, &filter, args.limit).await?;
        let mut records: Vec<_> = records.into_iter().take(usize::from(args.limit)).collect();
        records.retain(|r| r.author() != me);
        let mut names = Names::default();
        anyhow::Ok(names.json(&session.client, &records).await)
    })?;
    print_records(args.output.json, &records)?;
    Ok(Status::Success)
}

/// Records that tag `user` (Notify Public Key).
pub fn inbox_filter(user: &PublicKey) -> anyhow::Result<mosaic_core::OwnedFilter> {
    let tag = OwnedTag::notify_public_key(user);
    Ok(FilterBuilder::new().included_tags([&*tag]).build()?)
}

/// Queries each server (the first three), merges the answers newest first
/// and checks every signing key; fails only when none answers.
pub async fn query_servers(
    session: &Session,
    servers: &[PublicKey],
    filter: &Filter,
    limit: u16,
) -> anyhow::Result<Vec<OwnedRecord>> {
    let client = &session.client;
    let mut found: HashMap<_, OwnedRecord> = HashMap::new();
    let mut problems = Vec::new();
    let mut answered = 0;
    for server in servers.iter().take(mosaic_client::SERVERS_PER_USER) {
        let answer = async {
            let link = client.connect_key(server).await?;
            link.query(filter, limit).await
        }
        .await;
        match answer {
            Ok(records) => {
                answered += 1;
                for record in records {
                    found.entry(record.id()).or_insert(record);
                }
            }
            Err(error) => problems.push(format!(
                "{}: {}",
                server.to_server_printable(),
                explain(&error)
            )),
        }
    }
    if answered == 0 {
        bail!("no server answered: {}", problems.join("; "));
    }
    for problem in problems {
        output::warn(problem);
    }
    let mut records = Vec::new();
    for record in found.into_values() {
        match client.validate_signer(&record).await {
            Ok(_) => records.push(record),
            Err(problem) => output::warn(format_args!(
                "left out {}: its signing key is not valid for {} ({problem})",
                record.id().to_printable(),
                record.author()
            )),
        }
    }
    records.sort_by(|a, b| {
        b.timestamp()
            .cmp(&a.timestamp())
            .then_with(|| b.id().cmp(&a.id()))
    });
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{Nonce, OwnedTagSet, RecordBuilder, SecretKey, Timestamp};

    fn post(key: &SecretKey, t: u64, text: &str, tags: &[OwnedTag]) -> OwnedRecord {
        let tags = OwnedTagSet::from_tags(tags.iter()).unwrap();
        let kind = if tags.is_empty() {
            Kind::MICROBLOG_ROOT
        } else {
            Kind::REPLY_COMMENT
        };
        RecordBuilder::new(kind, Timestamp::from_nanos(t).unwrap())
            .nonce(Nonce::from_key(text.as_bytes()))
            .tags(&tags)
            .payload(text.as_bytes())
            .build(key)
            .unwrap()
    }

    fn reply_to(
        key: &SecretKey,
        t: u64,
        text: &str,
        root: &Record,
        parent: &Record,
    ) -> OwnedRecord {
        post(
            key,
            t,
            text,
            &[
                OwnedTag::reply(&Reference::Id(parent.id()), parent.kind()),
                OwnedTag::root(&Reference::Id(root.id()), root.kind()),
            ],
        )
    }

    #[test]
    fn users_and_kinds_parse() {
        let key = SecretKey::from_bytes(&[1; 32]).public();
        assert_eq!(parse_user("me").unwrap(), UserArg::Me);
        assert_eq!(parse_user(&key.to_printable()).unwrap(), UserArg::Key(key));
        assert!(parse_user(&key.to_server_printable()).is_err());
        assert!(UserArg::Me.resolve(None).is_err());
        assert_eq!(parse_kind("reply").unwrap(), Kind::REPLY_COMMENT);
        assert!(
            parse_kind("poem")
                .unwrap_err()
                .to_string()
                .contains("microblog")
        );
    }

    #[test]
    fn records_show_their_thread_links() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let root = post(&alice, 10, "root", &[]);
        let reply = reply_to(&alice, 20, "first\nsecond line", &root, &root);
        let json = record_json(&reply, "alice");
        assert_eq!(json.kind, "reply");
        assert_eq!(json.text, "first\nsecond line");
        assert_eq!(json.reply_to, Some(root.id().to_printable()));
        assert_eq!(json.root, Some(root.id().to_printable()));
        assert_eq!(json.author, alice.public().to_printable());
        let mut out = Vec::new();
        print_record(&mut out, &json, 1).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("    alice  "), "{text}");
        assert!(text.contains("      second line\n"), "{text}");
        assert!(text.contains("(reply to moref0"), "{text}");
        assert_eq!(record_json(&root, "a").reply_to, None);
    }

    #[test]
    fn replies_form_a_tree() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let bob = SecretKey::from_bytes(&[2; 32]);
        let root = post(&alice, 10, "root", &[]);
        let b1 = reply_to(&bob, 20, "b1", &root, &root);
        let a2 = reply_to(&alice, 30, "a2", &root, &b1);
        let b3 = reply_to(&bob, 25, "b3", &root, &root);
        let other = post(&bob, 5, "elsewhere", &[]);
        let orphan = reply_to(&bob, 40, "orphan", &root, &other);
        let order: Vec<(usize, String)> = tree(&root, vec![a2, orphan, b3, b1])
            .into_iter()
            .map(|(d, r)| (d, r.payload_text().unwrap().into_owned()))
            .collect();
        let expected = [(1, "b1"), (2, "a2"), (1, "b3"), (1, "orphan")];
        assert_eq!(
            order,
            expected.map(|(d, t)| (d, t.to_owned())).to_vec(),
            "{order:?}"
        );
    }
}
