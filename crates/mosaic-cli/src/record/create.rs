//! `mosaic record create`: lay out and sign a record.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use clap::{ArgGroup, Args};
use mosaic_core::{Kind, Nonce, OwnedTag, PublicKey, RecordBuilder, Timestamp};
use serde::Serialize;

use super::describe;
use crate::Status;
use crate::input::{self, RecordEncoding};
use crate::key;
use crate::output::{self, OutputArgs};

pub const AFTER_HELP: &str = "\
Prints the new record's id and address (moref0...). With --out -, the record goes
to standard output and this summary to standard error.

With --json: {\"id\": \"moref0...\", \"address\": \"moref0...\", \"file\": \"FILE\",
\"format\": \"binary\"|\"hex\"|\"printable\", \"length\": BYTES}.

Tags: --tag TYPE:HEX, where TYPE is a core tag name (notify, reply, root,
nostr-sister, subkey, user-mention, server-mention, quote, url, image, video) or a
number (4660 or 0x1234), and HEX is the raw value. Core tags are checked against
their layout; for example a notify tag is 4 zero bytes then the 32-byte key:
  --tag notify:00000000<64 hex digits>

Examples:
  mosaic record create --key me.key --kind microblog --payload 'Hello' --out hello.rec
  mosaic record create --key sub.key --author-key mopub0... --kind chat \\
      --payload-file msg.txt --zstd --format printable --out -";

/// Arguments of `record create`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("payload_source")
        .required(true)
        .args(["payload", "payload_file"])
))]
pub struct CreateArgs {
    /// Key file to sign with (mosec0 or mocryptsec0): the author's master key,
    /// or a subkey together with --author-key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The kind: a name (key-schedule, profile, microblog, reply, blog, chat)
    /// or up to 16 hex digits, such as 0x000000010001001c.
    #[arg(long, value_name = "KIND", value_parser = describe::parse_kind)]
    kind: Kind,
    /// The payload, as text.
    #[arg(long, value_name = "TEXT")]
    payload: Option<String>,
    /// Read the payload from FILE (`-` reads standard input), as bytes.
    #[arg(long, value_name = "FILE")]
    payload_file: Option<PathBuf>,
    /// The author's master public key (mopub0...), when --key is a subkey.
    /// Defaults to the public key of --key.
    #[arg(long, value_name = "PUBKEY", value_parser = describe::parse_user_key)]
    author_key: Option<PublicKey>,
    /// Add a tag (repeatable, kept in order): TYPE is a core tag name or a
    /// number (decimal or 0x-hex), HEX the raw value.
    #[arg(long = "tag", value_name = "TYPE:HEX", value_parser = describe::parse_tag)]
    tags: Vec<OwnedTag>,
    /// The timestamp: nanoseconds since 1970 (leap seconds counted) or an
    /// RFC 3339 time. Defaults to now.
    #[arg(long, value_name = "TIME", value_parser = describe::parse_timestamp)]
    timestamp: Option<Timestamp>,
    /// The address nonce: 8 bytes in hex. Its first bit must be 1 and is
    /// forced on, with a warning. Defaults to random bytes.
    #[arg(long, value_name = "HEX", value_parser = describe::parse_nonce)]
    nonce: Option<[u8; 8]>,
    /// Compress the payload with zstd (and set the ZSTD flag).
    #[arg(long)]
    zstd: bool,
    /// Set the FROM_AUTHOR flag: servers accept the record only from its
    /// authenticated author.
    #[arg(long)]
    from_author: bool,
    /// Where to write the record (`-` is standard output). An existing file
    /// is replaced.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// How to write the record.
    #[arg(long, value_enum, default_value_t = RecordEncoding::Binary)]
    format: RecordEncoding,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Serialize)]
struct Created<'a> {
    id: String,
    address: String,
    file: &'a Path,
    format: RecordEncoding,
    length: usize,
}

/// Runs `record create`.
pub fn run(args: CreateArgs) -> anyhow::Result<Status> {
    let payload = match (&args.payload, &args.payload_file) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(path)) => input::read_source(path)?,
        // clap requires one of the two.
        (None, None) => Vec::new(),
    };
    let timestamp = match args.timestamp {
        Some(t) => t,
        None => Timestamp::from_system_time(SystemTime::now())
            .context("the system clock is outside the range of Mosaic timestamps")?,
    };
    let nonce = match args.nonce {
        Some(bytes) => {
            if bytes[0] & 0x80 == 0 {
                output::warn(format!(
                    "the nonce's first bit must be 1; using {}",
                    hex::encode(Nonce::from_bytes_forced(bytes).to_bytes())
                ));
            }
            Nonce::from_bytes_forced(bytes)
        }
        None => Nonce::random(&mut rand::rng()),
    };
    let signer = key::load(&args.key)?;

    let mut builder = RecordBuilder::new(args.kind, timestamp)
        .nonce(nonce)
        .payload(&payload)
        .zstd(args.zstd)
        .from_author(args.from_author);
    if let Some(author) = args.author_key {
        builder = builder.author(author);
    }
    for tag in &args.tags {
        builder = builder.tag(tag);
    }
    let record = builder
        .build(&signer.secret)
        .context("cannot build the record")?;

    output::write_file_or_stdout(&args.out, &args.format.encode(record.as_bytes()))?;

    let created = Created {
        id: record.id().to_string(),
        address: record.address().to_string(),
        file: &args.out,
        format: args.format,
        length: record.len(),
    };
    let mut summary: Box<dyn Write> = if args.out == Path::new("-") {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(output::stdout())
    };
    if args.output.json {
        output::json(&mut summary, &created)?;
    } else {
        writeln!(summary, "id:      {}", created.id)?;
        writeln!(summary, "address: {}", created.address)?;
        writeln!(
            summary,
            "wrote {} ({}, {} bytes)",
            args.out.display(),
            args.format.name(),
            created.length
        )?;
        summary.flush()?;
    }
    Ok(Status::Success)
}
