//! `mosaic store`: look after a server's record store. `stats`, `export` and
//! `remove` go through the admin socket of a server running on the data
//! directory, or open the store of a stopped one (`server_data.rs`);
//! `import` needs the server stopped.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mosaic_core::{Id, Timestamp};
use mosaic_store::Store;
use serde::Serialize;

use crate::Status;
use crate::output;
use crate::server_data::ServerData;

const STORE_HELP: &str = "\
stats, export and remove work on a running server too, through its admin
socket (DIR/admin.sock, usable only by the user running the server): the
export is one consistent snapshot, byte for byte what the same command
writes once the server is stopped. import needs the server stopped.";

/// The `store` subcommands.
#[derive(Debug, Subcommand)]
#[command(after_help = STORE_HELP)]
pub enum StoreCommand {
    /// Show what the store holds: records, bytes, counts per kind.
    Stats {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every record to FILE (or - for stdout) as length-prefixed records.
    Export {
        #[command(flatten)]
        data: DataArg,
        /// Where to write.
        #[arg(value_name = "FILE")]
        out: PathBuf,
    },
    /// Read records from FILE (or - for stdin), validate each, and store them (server stopped).
    Import {
        #[command(flatten)]
        data: DataArg,
        /// What to read (a file written by `mosaic store export`).
        #[arg(value_name = "FILE")]
        input: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove records by id (moref0...), with all their index entries.
    Remove {
        #[command(flatten)]
        data: DataArg,
        /// The ids.
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
    },
}

/// The server's data directory.
#[derive(Debug, Args)]
pub struct DataArg {
    /// The server's data directory (its store DIR/store, its admin socket DIR/admin.sock) [default: as `mosaic serve`].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

impl DataArg {
    /// The running server, else its store.
    fn open(&self) -> anyhow::Result<ServerData> {
        ServerData::open(self.data.as_deref(), false)
    }

    /// The store itself, for an import: the server must be stopped.
    fn open_store(&self) -> anyhow::Result<Store> {
        match self.open()? {
            ServerData::Offline(store) => Ok(store),
            ServerData::Live { .. } => bail!(
                "a server is running on this data directory: stop it to import, \
                 or submit the records to it over the network (as `mosaic restore` does)"
            ),
        }
    }
}

#[derive(Serialize)]
struct KindJson {
    kind: String,
    name: Option<&'static str>,
    records: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct StatsJson {
    records: u64,
    record_bytes: u64,
    blobs: u64,
    blob_bytes: u64,
    file_bytes: u64,
    kinds: Vec<KindJson>,
}

#[derive(Serialize)]
struct ImportJson {
    read: u64,
    inserted: u64,
    replaced: u64,
    duplicates: u64,
    superseded: u64,
    ephemeral: u64,
    invalid: u64,
}

fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} records ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs a `store` subcommand.
pub fn run(command: StoreCommand) -> anyhow::Result<Status> {
    match command {
        StoreCommand::Stats { data, json } => {
            let stats = data.open()?.stats()?;
            let out = StatsJson {
                records: stats.records,
                record_bytes: stats.record_bytes,
                blobs: stats.blobs,
                blob_bytes: stats.blob_bytes,
                file_bytes: stats.file_bytes,
                kinds: stats
                    .kinds
                    .iter()
                    .map(|k| KindJson {
                        kind: k.kind.to_string(),
                        name: k.kind.name(),
                        records: k.records,
                        bytes: k.bytes,
                    })
                    .collect(),
            };
            let mut stdout = output::stdout();
            if json {
                output::json(&mut stdout, &out)?;
            } else {
                writeln!(
                    stdout,
                    "records:  {} ({} bytes)",
                    out.records, out.record_bytes
                )?;
                writeln!(stdout, "blobs:    {} ({} bytes)", out.blobs, out.blob_bytes)?;
                writeln!(stdout, "on disk:  {} bytes", out.file_bytes)?;
                for k in &out.kinds {
                    writeln!(
                        stdout,
                        "  {} {:<14} {:>10} records {:>14} bytes",
                        k.kind,
                        k.name.unwrap_or(""),
                        k.records,
                        k.bytes
                    )?;
                }
            }
        }
        StoreCommand::Export { data, out } => {
            let mut store = data.open()?;
            let total = store.stats()?.records;
            let progress = bar(Some(total), "exporting");
            let written = if out.as_os_str() == "-" {
                store.export(io::stdout().lock(), |n| progress.set_position(n))?
            } else {
                let file = File::create(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                let n = store.export(&file, |n| progress.set_position(n))?;
                file.sync_all()
                    .with_context(|| format!("cannot write {}", out.display()))?;
                n
            };
            progress.finish_and_clear();
            eprintln!("exported {written} records");
        }
        StoreCommand::Import { data, input, json } => {
            let store = data.open_store()?;
            let received_at = Timestamp::from_system_time(SystemTime::now())?;
            let progress = bar(None, "importing");
            let report = if input.as_os_str() == "-" {
                store.import(io::stdin().lock(), received_at, |n| {
                    progress.set_position(n)
                })?
            } else {
                let file = File::open(&input)
                    .with_context(|| format!("cannot open {}", input.display()))?;
                store.import(file, received_at, |n| progress.set_position(n))?
            };
            progress.finish_and_clear();
            let out = ImportJson {
                read: report.read,
                inserted: report.inserted,
                replaced: report.replaced,
                duplicates: report.duplicates,
                superseded: report.superseded,
                ephemeral: report.ephemeral,
                invalid: report.invalid,
            };
            let mut stdout = output::stdout();
            if json {
                output::json(&mut stdout, &out)?;
            } else {
                writeln!(
                    stdout,
                    "read {}: {} stored, {} replaced older ones, {} already there, {} superseded, {} ephemeral (not stored), {} invalid (skipped)",
                    out.read,
                    out.inserted,
                    out.replaced,
                    out.duplicates,
                    out.superseded,
                    out.ephemeral,
                    out.invalid
                )?;
            }
            if report.invalid > 0 {
                return Ok(Status::Invalid);
            }
        }
        StoreCommand::Remove { data, ids } => {
            let parsed = ids
                .iter()
                .map(|s| {
                    Id::from_printable(s)
                        .with_context(|| format!("{s} is not a record id (moref0...)"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut store = data.open()?;
            let mut stdout = output::stdout();
            let mut missing = 0;
            for (id, text) in parsed.iter().zip(&ids) {
                if store.remove(id)? {
                    writeln!(stdout, "removed {text}")?;
                } else {
                    missing += 1;
                    writeln!(stdout, "not stored {text}")?;
                }
            }
            if missing == ids.len() {
                bail!("none of the ids were stored");
            }
        }
    }
    Ok(Status::Success)
}
