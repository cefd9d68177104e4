//! `mosaic backup --out FILE` and `mosaic restore FILE`: an identity, its
//! configuration and all its records in one file, and back.
//!
//! The file format (version 1): the 16 bytes `mosaic-backup 1\n`, then
//! entries until the end of the file, each `type (u8) | length (u32 LE) |
//! bytes`. Types: 1 the `identity.key` file as it is (so an encrypted key
//! stays encrypted), 2 the `subkey.key` file, 3 `config.toml`, 4 one record.
//! Exactly one identity and one configuration; records are checked when
//! read. Unknown types are refused, so a later version is never half read.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use mosaic_core::{OwnedRecord, ServerUsage};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::Status;
use crate::connect::{NetArgs, Session, explain};
use crate::identity::{Config, Home};
use crate::migrate::{Copied, Source, fetch_everything, progress, submit_all};
use crate::output::{self, OutputArgs};

/// The first bytes of a backup file.
const MAGIC: &[u8; 16] = b"mosaic-backup 1\n";

const IDENTITY: u8 = 1;
const SUBKEY: u8 = 2;
const CONFIG: u8 = 3;
const RECORD: u8 = 4;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    /// The `identity.key` text.
    pub identity: Zeroizing<String>,
    /// The `subkey.key` text, if any.
    pub subkey: Option<Zeroizing<String>>,
    /// The `config.toml` text.
    pub config: String,
    /// The records, oldest first.
    pub records: Vec<OwnedRecord>,
}

impl Backup {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(MAGIC.to_vec());
        let mut put = |kind: u8, bytes: &[u8]| {
            out.push(kind);
            // A record is at most 1 MiB and a key file a few dozen bytes.
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        put(IDENTITY, self.identity.as_bytes());
        if let Some(subkey) = &self.subkey {
            put(SUBKEY, subkey.as_bytes());
        }
        put(CONFIG, self.config.as_bytes());
        for record in &self.records {
            put(RECORD, record.as_bytes());
        }
        out
    }

    /// Reads a backup file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Backup> {
        let Some(mut rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            bail!("not a mosaic backup (it does not start with {MAGIC:?})");
        };
        let (mut identity, mut subkey, mut config) = (None, None, None);
        let mut records = Vec::new();
        while let Some((&kind, after)) = rest.split_first() {
            let (len, after) = after
                .split_first_chunk::<4>()
                .context("the backup is truncated (an entry header is cut short)")?;
            let len = u32::from_le_bytes(*len) as usize;
            if after.len() < len {
                bail!("the backup is truncated (an entry of {len} bytes is cut short)");
            }
            let (data, after) = after.split_at(len);
            rest = after;
            let text = || {
                std::str::from_utf8(data)
                    .map(str::to_owned)
                    .context("the backup holds a key or configuration that is not text")
            };
            match kind {
                IDENTITY if identity.is_none() => identity = Some(Zeroizing::new(text()?)),
                SUBKEY if subkey.is_none() => subkey = Some(Zeroizing::new(text()?)),
                CONFIG if config.is_none() => config = Some(text()?),
                IDENTITY | SUBKEY | CONFIG => bail!("the backup holds entry type {kind} twice"),
                RECORD => records.push(
                    OwnedRecord::from_vec(data.to_vec())
                        .context("the backup holds an invalid record")?,
                ),
                other => bail!(
                    "the backup holds an entry of unknown type {other}: it was made by a newer \
                     version of mosaic"
                ),
            }
        }
        Ok(Backup {
            identity: identity.context("the backup holds no identity key")?,
            subkey,
            config: config.context("the backup holds no config.toml")?,
            records,
        })
    }
}

/// Arguments of `mosaic backup`.
#[derive(Debug, Args)]
#[command(after_help = BACKUP_AFTER_HELP)]
pub struct BackupArgs {
    /// The file to write (mode 0600: it holds the keys).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const BACKUP_AFTER_HELP: &str = "\
The file holds the keys as stored (encrypted unless `init --no-encrypt` was
used), config.toml, and every record of this identity fetched from its outboxes
(authenticated with the master key, so that records only the author may read are
included). Format: `mosaic-backup 1\\n`, then entries `type u8 | length u32 LE |
bytes` (1 identity.key, 2 subkey.key, 3 config.toml, 4 a record).

With --json: {\"file\", \"public_key\", \"records\", \"bytes\"}.";

/// Arguments of `mosaic restore`.
#[derive(Debug, Args)]
#[command(after_help = RESTORE_AFTER_HELP)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Replace an identity that exists in the config directory.
    #[arg(long)]
    force: bool,
    /// Only restore the files: publish neither the bootstrap nor the
    /// records.
    #[arg(long)]
    no_publish: bool,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const RESTORE_AFTER_HELP: &str = "\
Writes the keys and config.toml into the config directory, then publishes the
user bootstrap to the DHT and submits every record to the first three outboxes
(a record already there counts as a duplicate). The master key's password is
needed to publish.

With --json: {\"public_key\", \"home\", \"records\", \"bootstrap\": null or {\"seq\",
...}, \"servers\": [{\"server\", \"accepted\", \"duplicate\"}]}.";

/// Runs `mosaic backup`.
pub fn backup(args: BackupArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let config = home.load_config()?;
    let master = home.master_key(&config)?;
    let read = |path: &Path| -> anyhow::Result<Zeroizing<String>> {
        Ok(Zeroizing::new(std::fs::read_to_string(path).with_context(
            || format!("cannot read {}", path.display()),
        )?))
    };
    let identity = read(&home.identity_file())?;
    let subkey = if config.subkey.is_some() {
        Some(read(&home.subkey_file())?)
    } else {
        None
    };
    let config_text = std::fs::read_to_string(home.config_file())
        .with_context(|| format!("cannot read {}", home.config_file().display()))?;
    let records = if config.servers_with(ServerUsage::OUTBOX).is_empty() {
        output::warn("this identity has no outbox: the backup holds no records");
        Vec::new()
    } else {
        let session = Session::open(&home, Some(&config), &args.net, Some(master))?;
        crate::dht::runtime()?
            .block_on(fetch_everything(
                &session,
                Source::Outboxes(&config.public_key),
            ))
            .context("cannot fetch the records; no backup was written")?
    };
    let backup = Backup {
        identity,
        subkey,
        config: config_text,
        records,
    };
    let bytes = backup.to_bytes();
    output::write_secret_file(&args.out, &bytes, args.force)?;

    let mut out = output::stdout();
    if args.output.json {
        #[derive(Serialize)]
        struct BackupJson<'a> {
            file: &'a Path,
            public_key: String,
            records: usize,
            bytes: usize,
        }
        let json = BackupJson {
            file: &args.out,
            public_key: config.public_key.to_printable(),
            records: backup.records.len(),
            bytes: bytes.len(),
        };
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    writeln!(
        out,
        "backed up {} with {} records to {} ({} bytes)",
        config.public_key,
        backup.records.len(),
        args.out.display(),
        bytes.len()
    )?;
    out.flush()?;
    Ok(Status::Success)
}

#[derive(Serialize)]
struct RestoredServer {
    server: String,
    #[serde(flatten)]
    copied: Option<Copied>,
    error: Option<String>,
}

/// Runs `mosaic restore`.
pub fn restore(args: RestoreArgs) -> anyhow::Result<Status> {
    let bytes = Zeroizing::new(
        std::fs::read(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?,
    );
    let backup = Backup::from_bytes(&bytes)
        .with_context(|| format!("cannot restore {}", args.file.display()))?;
    let config =
        Config::from_toml(&backup.config).context("the backup's config.toml is invalid")?;
    crate::identity::StoredKey::parse(&backup.identity, "the backup's identity key")?;
    let home = Home::locate()?;
    if home.has_identity() && !args.force {
        bail!(
            "{} already holds an identity; give --force to replace it, or set MOSAIC_HOME to \
             another directory",
            home.dir().display()
        );
    }
    home.create()?;
    let line = |text: &str| Zeroizing::new(format!("{}\n", text.trim_end()));
    output::write_secret_file(
        &home.identity_file(),
        line(&backup.identity).as_bytes(),
        args.force,
    )?;
    match &backup.subkey {
        Some(subkey) => {
            output::write_secret_file(&home.subkey_file(), line(subkey).as_bytes(), args.force)?
        }
        None if args.force => {
            let _ = std::fs::remove_file(home.subkey_file());
        }
        None => {}
    }
    home.save_config(&config)?;

    let mut bootstrap = None;
    let mut per_server = Vec::new();
    if !args.no_publish
        && let Some(user_bootstrap) = config.bootstrap()?
    {
        let master = home.master_key(&config)?;
        let session = Session::open(&home, Some(&config), &args.net, Some(master.clone()))?;
        let runtime = crate::dht::runtime()?;
        bootstrap = Some(
            runtime
                .block_on(session.publish_bootstrap(&master, &user_bootstrap))
                .context(
                    "the files are restored, but the bootstrap was not published: run `mosaic \
                     servers publish`",
                )?,
        );
        let outboxes = config.servers_with(ServerUsage::OUTBOX);
        for server in outboxes.iter().take(mosaic_client::SERVERS_PER_USER) {
            let outcome = runtime.block_on(async {
                let link = session
                    .client
                    .connect_key(server)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", explain(&e)))?;
                let bar = progress(
                    backup.records.len(),
                    &format!("to {}", server.to_server_printable()),
                );
                if args.output.json {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
                }
                submit_all(&link, &backup.records, &bar).await
            });
            per_server.push(match outcome {
                Ok(copied) => RestoredServer {
                    server: server.to_server_printable(),
                    copied: Some(copied),
                    error: None,
                },
                Err(error) => {
                    output::warn(format_args!("{}: {error:#}", server.to_server_printable()));
                    RestoredServer {
                        server: server.to_server_printable(),
                        copied: None,
                        error: Some(format!("{error:#}")),
                    }
                }
            });
        }
        if !backup.records.is_empty() && per_server.iter().all(|s| s.copied.is_none()) {
            bail!(
                "the files are restored and the bootstrap published, but no outbox took the \
                 records (see above): run `mosaic restore --force` again later"
            );
        }
    }

    let mut out = output::stdout();
    if args.output.json {
        #[derive(Serialize)]
        struct RestoreJson<'a> {
            public_key: String,
            home: &'a Path,
            records: usize,
            bootstrap: Option<crate::servers::BootstrapJson>,
            servers: Vec<RestoredServer>,
        }
        let json = RestoreJson {
            public_key: config.public_key.to_printable(),
            home: home.dir(),
            records: backup.records.len(),
            bootstrap,
            servers: per_server,
        };
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    writeln!(
        out,
        "restored {} into {} ({} records in the backup)",
        config.public_key,
        home.dir().display(),
        backup.records.len()
    )?;
    if let Some(b) = &bootstrap {
        writeln!(out, "bootstrap published: sequence {}", b.seq)?;
    }
    for s in &per_server {
        match (&s.copied, &s.error) {
            (Some(c), _) => writeln!(
                out,
                "  {}: {} new, {} already there",
                s.server, c.accepted, c.duplicate
            )?,
            (None, Some(e)) => writeln!(out, "  {}: failed: {e}", s.server)?,
            (None, None) => {}
        }
    }
    out.flush()?;
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{Kind, Nonce, RecordBuilder, SecretKey, Timestamp};

    fn sample() -> Backup {
        let key = SecretKey::from_bytes(&[4; 32]);
        let record = RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(5).unwrap())
            .nonce(Nonce::from_key(b"r"))
            .payload(b"hello")
            .build(&key)
            .unwrap();
        Backup {
            identity: Zeroizing::new(key.to_printable()),
            subkey: None,
            config: format!("public_key = \"{}\"\n", key.public()),
            records: vec![record.clone(), record],
        }
    }

    #[test]
    fn backups_round_trip() {
        let backup = sample();
        let bytes = backup.to_bytes();
        assert!(bytes.starts_with(b"mosaic-backup 1\n"));
        assert_eq!(Backup::from_bytes(&bytes).unwrap(), backup);
        let mut with_subkey = sample();
        with_subkey.subkey = Some(Zeroizing::new("mosec0abc".into()));
        with_subkey.records.clear();
        assert_eq!(
            Backup::from_bytes(&with_subkey.to_bytes()).unwrap(),
            with_subkey
        );
    }

    #[test]
    fn damaged_backups_are_refused() {
        let bytes = sample().to_bytes();
        let err = |b: &[u8]| format!("{:#}", Backup::from_bytes(b).unwrap_err());
        assert!(err(b"hello").contains("not a mosaic backup"));
        // Cut anywhere inside the last record: truncated.
        assert!(err(&bytes[..bytes.len() - 1]).contains("truncated"));
        assert!(err(&bytes[..bytes.len() - 3]).contains("truncated"));
        // A damaged record.
        let mut bad = bytes.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(err(&bad).contains("invalid record"));
        // An unknown entry type.
        let mut newer = bytes.to_vec();
        newer.extend_from_slice(&[9, 0, 0, 0, 0]);
        assert!(err(&newer).contains("unknown type 9"));
        // A second identity.
        let mut twice = bytes.to_vec();
        twice.extend_from_slice(&[1, 1, 0, 0, 0, b'x']);
        assert!(err(&twice).contains("twice"));
        // Nothing but the header.
        assert!(err(MAGIC).contains("no identity"));
    }
}
