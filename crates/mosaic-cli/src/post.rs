//! Writing: `mosaic post` and `mosaic reply`.
//!
//! Records are signed with the subkey when the identity has one (else the
//! master key) and published to this identity's first three outboxes; a
//! reply also goes to the inboxes of the users it notifies.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use clap::Args;
use mosaic_core::{Kind, Nonce, OwnedRecord, OwnedTag, OwnedTagSet, RecordBuilder, Reference};
use serde::Serialize;

use crate::Status;
use crate::connect::{
    NetArgs, OutcomeJson, Session, outcome_json, outcome_summary, print_outcomes,
};
use crate::feed::{RecordArg, find_record};
use crate::identity::{self, Home};
use crate::output::{self, OutputArgs};

/// Arguments of `mosaic post`.
#[derive(Debug, Args)]
#[command(after_help = POST_AFTER_HELP)]
pub struct PostArgs {
    /// The text (`-` reads it from standard input).
    #[arg(value_name = "TEXT")]
    text: String,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const POST_AFTER_HELP: &str = "\
Prints the record's id (moref0...) and each server's answer. An encrypted key
needs its password (MOSAIC_PASSWORD, or asked on the terminal).

With --json: {\"id\", \"address\", \"author\", \"signer\", \"timestamp\", \"reply_to\",
\"servers\": [{\"server\", \"usage\", \"stored\", \"result\"}]}.

Examples:
  mosaic post \"Hello, Mosaic\"
  fortune | mosaic post -";

/// Arguments of `mosaic reply`.
#[derive(Debug, Args)]
#[command(after_help = REPLY_AFTER_HELP)]
pub struct ReplyArgs {
    #[command(flatten)]
    record: RecordArg,
    /// The text (`-` reads it from standard input).
    #[arg(value_name = "TEXT")]
    text: String,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const REPLY_AFTER_HELP: &str = "\
The record replied to is fetched from its author's outboxes (REF is its id, with
--author, or its address). The reply names it and the root of its thread, and
notifies its author: it is published to this identity's outboxes and to the
author's inboxes.

With --json: as `mosaic post --json`.

Example:
  mosaic reply moref0... --author mopub0... \"Welcome!\"";

#[derive(Serialize)]
struct PostJson {
    id: String,
    address: String,
    author: String,
    signer: String,
    timestamp: String,
    reply_to: Option<String>,
    servers: Vec<OutcomeJson>,
}

fn read_text(text: &str) -> anyhow::Result<String> {
    let text = if text == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("cannot read the text from standard input")?;
        buf.trim_end().to_owned()
    } else {
        text.to_owned()
    };
    if text.trim().is_empty() {
        bail!("the text is empty: nothing to post");
    }
    Ok(text)
}

/// Runs `mosaic post`.
pub fn post(args: PostArgs) -> anyhow::Result<Status> {
    let text = read_text(&args.text)?;
    publish(&args.net, args.output, text, None)
}

/// Runs `mosaic reply`.
pub fn reply(args: ReplyArgs) -> anyhow::Result<Status> {
    let text = read_text(&args.text)?;
    publish(&args.net, args.output, text, Some(&args.record))
}

/// The tags of a reply to `parent`: Reply, Root (the parent's root, or the
/// parent itself), and Notify Public Key for the parent's author unless it
/// is `me`.
fn reply_tags(parent: &OwnedRecord, me: &mosaic_core::PublicKey) -> anyhow::Result<OwnedTagSet> {
    let reference = Reference::Id(parent.id());
    let mut tags = vec![OwnedTag::reply(&reference, parent.kind())];
    let root = parent.tags().iter().find_map(|tag| match tag.parse() {
        Ok(mosaic_core::TagValue::Root { reference, kind }) => Some((reference, kind)),
        _ => None,
    });
    tags.push(match root {
        Some((reference, kind)) => OwnedTag::root(&reference, kind),
        None => OwnedTag::root(&reference, parent.kind()),
    });
    if parent.author() != *me {
        tags.push(OwnedTag::notify_public_key(&parent.author()));
    }
    Ok(OwnedTagSet::from_tags(tags.iter())?)
}

fn publish(
    net: &NetArgs,
    output: OutputArgs,
    text: String,
    parent: Option<&RecordArg>,
) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let config = home.load_config()?;
    if config
        .servers_with(mosaic_core::ServerUsage::OUTBOX)
        .is_empty()
    {
        bail!(
            "this identity has no outbox server to publish to: add one with `mosaic servers \
             add mosrv0...`"
        );
    }
    let parent_author = parent.map(|p| p.author(Some(&config))).transpose()?;
    let (signer, author) = home.signing_key(&config)?;
    let session = Session::open(&home, Some(&config), net, Some(signer.clone()))?;
    let (record, report) = crate::dht::runtime()?.block_on(async {
        let tags = match (parent, parent_author) {
            (Some(parent), Some(parent_author)) => {
                let found = find_record(&session, &parent_author, &parent.reference).await?;
                Some(reply_tags(&found, &author)?)
            }
            _ => None,
        };
        let kind = if tags.is_some() {
            Kind::REPLY_COMMENT
        } else {
            Kind::MICROBLOG_ROOT
        };
        let mut builder = RecordBuilder::new(kind, identity::now()?)
            .nonce(Nonce::random(&mut rand::rng()))
            .author(author)
            .payload(text.as_bytes());
        if let Some(tags) = &tags {
            builder = builder.tags(tags);
        }
        let record = builder.build(&signer).context("cannot build the record")?;
        let report = session
            .client
            .publish(&record)
            .await
            .map_err(|e| anyhow::anyhow!("{}", crate::connect::explain(&e)))
            .context("cannot publish")?;
        anyhow::Ok((record, report))
    })?;
    for (user, error) in &report.unreached_users {
        output::warn(format_args!(
            "{user} was not notified: {}",
            crate::connect::explain(error)
        ));
    }
    let servers: Vec<OutcomeJson> = report.per_server.iter().map(outcome_json).collect();
    if !report
        .per_server
        .iter()
        .any(|o| o.is_stored() && o.usage.contains(mosaic_core::ServerUsage::OUTBOX))
    {
        bail!(
            "none of this identity's outboxes stored the record: {}",
            outcome_summary(&servers)
        );
    }
    let reply_to = crate::feed::record_json(&record, "").reply_to;
    let json = PostJson {
        id: record.id().to_printable(),
        address: record.address().to_printable(),
        author: record.author().to_printable(),
        signer: record.signing_key().to_printable(),
        timestamp: record.timestamp().to_string(),
        reply_to,
        servers,
    };
    let mut out = output::stdout();
    if output.json {
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    match &json.reply_to {
        Some(parent) => writeln!(out, "replied to {parent}: {}", json.id)?,
        None => writeln!(out, "posted {}", json.id)?,
    }
    print_outcomes(&mut out, &json.servers)?;
    out.flush()?;
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{SecretKey, TagValue, Timestamp};

    fn record(key: &SecretKey, kind: Kind, tags: &OwnedTagSet) -> OwnedRecord {
        RecordBuilder::new(kind, Timestamp::from_nanos(7).unwrap())
            .nonce(Nonce::from_key(b"n"))
            .tags(tags)
            .payload(b"x")
            .build(key)
            .unwrap()
    }

    #[test]
    fn replies_name_parent_root_and_author() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let bob = SecretKey::from_bytes(&[2; 32]);
        let root = record(&alice, Kind::MICROBLOG_ROOT, &OwnedTagSet::new());
        let tags = reply_tags(&root, &bob.public()).unwrap();
        let values: Vec<TagValue<'_>> = tags.iter().map(|t| t.parse().unwrap()).collect();
        let root_ref = Reference::Id(root.id());
        assert_eq!(
            values,
            vec![
                TagValue::Reply {
                    kind: Kind::MICROBLOG_ROOT,
                    reference: root_ref
                },
                TagValue::Root {
                    kind: Kind::MICROBLOG_ROOT,
                    reference: root_ref
                },
                TagValue::NotifyPublicKey(alice.public()),
            ]
        );
        // A reply to a reply keeps the thread's root; replying to oneself
        // notifies nobody.
        let first = record(&bob, Kind::REPLY_COMMENT, &tags);
        let tags = reply_tags(&first, &bob.public()).unwrap();
        let values: Vec<TagValue<'_>> = tags.iter().map(|t| t.parse().unwrap()).collect();
        assert_eq!(values.len(), 2);
        assert_eq!(
            values[1],
            TagValue::Root {
                kind: Kind::MICROBLOG_ROOT,
                reference: root_ref
            }
        );
    }

    #[test]
    fn empty_text_is_refused() {
        assert!(read_text("  ").is_err());
        assert_eq!(read_text("hi").unwrap(), "hi");
    }
}
