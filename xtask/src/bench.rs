//! `cargo xtask bench`: runs the `harness = false` benchmark of one crate, or
//! all; `cargo xtask bench load` loads a Mosaic server (see [`crate::load`]).
//!
//! The benchmark of crate `mosaic-<t>` is `crates/mosaic-<t>/benches/<t>.rs`,
//! declared in its `Cargo.toml` as `[[bench]] name = "<t>", harness = false`.
//! It prints its own figures. With `--quick` the environment variable
//! `MOSAIC_BENCH_QUICK=1` tells it to shrink its sizes, as CI does.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::{cargo, project_root};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark to run.
    #[command(subcommand)]
    pub which: Which,
}

/// What `cargo xtask bench` runs.
#[derive(clap::Subcommand)]
pub enum Which {
    /// `crates/mosaic-core/benches/core.rs`.
    Core(Quick),
    /// `crates/mosaic-store/benches/store.rs`.
    Store(Quick),
    /// `crates/mosaic-server/benches/server.rs`, then `bench load --spawn`
    /// (the issue-style load against a spawned release server, with the
    /// performance targets); `--quick` runs both small.
    Server(Quick),
    /// `crates/mosaic-dht/benches/dht.rs`.
    Dht(Quick),
    /// Every crate benchmark that exists, skipping those not built yet.
    All(Quick),
    /// Load a Mosaic server (given by --url, or a spawned release `mosaic
    /// serve`): records/s, latency, results by code, query latency, and the
    /// performance targets.
    Load(Box<crate::load::Args>),
}

/// The option of a crate benchmark.
#[derive(clap::Args)]
pub struct Quick {
    /// Small sizes, for checking that the benchmark still works (sets MOSAIC_BENCH_QUICK=1).
    #[arg(long)]
    pub quick: bool,
}

/// A benchmark target: one crate's bench, or all of them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// `crates/mosaic-core/benches/core.rs`.
    Core,
    /// `crates/mosaic-store/benches/store.rs`.
    Store,
    /// `crates/mosaic-server/benches/server.rs`.
    Server,
    /// `crates/mosaic-dht/benches/dht.rs`.
    Dht,
    /// Every benchmark that exists, skipping those not built yet.
    All,
}

impl Target {
    /// The single targets, in the order `all` runs them.
    const EACH: [Target; 4] = [Target::Core, Target::Store, Target::Server, Target::Dht];

    /// The short name: the bench name and the crate name after `mosaic-`.
    fn name(self) -> &'static str {
        match self {
            Target::Core => "core",
            Target::Store => "store",
            Target::Server => "server",
            Target::Dht => "dht",
            Target::All => "all",
        }
    }
}

/// What happened to one benchmark.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// The benchmark ran and exited successfully.
    Ran,
    /// Its bench file does not exist yet; nothing was run.
    NotBuilt,
}

/// Runs `cargo xtask bench`.
pub fn run(args: Args) -> Result<ExitCode> {
    let (target, quick) = match args.which {
        Which::Core(q) => (Target::Core, q.quick),
        Which::Store(q) => (Target::Store, q.quick),
        Which::Server(q) => (Target::Server, q.quick),
        Which::Dht(q) => (Target::Dht, q.quick),
        Which::All(q) => (Target::All, q.quick),
        Which::Load(args) => return crate::load::run(*args),
    };
    if target != Target::All {
        let outcome = one(target, quick)?;
        if target == Target::Server && outcome == Outcome::Ran {
            return crate::load::run(spawned_load(quick));
        }
        return Ok(match outcome {
            Outcome::Ran => ExitCode::SUCCESS,
            Outcome::NotBuilt => ExitCode::FAILURE,
        });
    }
    let mut ran = 0;
    for target in Target::EACH {
        if one(target, quick)? == Outcome::Ran {
            ran += 1;
        }
    }
    println!("bench: {ran} of {} benchmarks ran", Target::EACH.len());
    Ok(ExitCode::SUCCESS)
}

/// The load `cargo xtask bench server` runs after the server's benchmark:
/// the defaults of `bench load --spawn`, or 3,000 records with `--quick`.
fn spawned_load(quick: bool) -> crate::load::Args {
    crate::load::Args {
        url: None,
        spawn: true,
        bin: None,
        tls_ca: None,
        connections: None,
        in_flight: None,
        records: if quick { 3_000 } else { 100_000 },
        authors: if quick { 100 } else { 1_000 },
        payload: 300,
        query_authors: if quick { 20 } else { 100 },
        json: false,
    }
}

/// Runs one target's benchmark (`cargo bench -p mosaic-<t> --bench <t> -j2`),
/// or reports that it is not built yet. A failing benchmark is an error.
pub fn one(target: Target, quick: bool) -> Result<Outcome> {
    let name = target.name();
    let file = format!("crates/mosaic-{name}/benches/{name}.rs");
    if !project_root().join(&file).is_file() {
        println!("bench {name}: not built yet (no {file}), skipped");
        return Ok(Outcome::NotBuilt);
    }
    let package = format!("mosaic-{name}");
    let mut command = Command::new(cargo());
    command.current_dir(project_root()).args([
        "bench",
        "-p",
        package.as_str(),
        "--bench",
        name,
        "-j2",
    ]);
    if quick {
        command.env("MOSAIC_BENCH_QUICK", "1");
    }
    println!(
        "bench {name}: cargo bench -p {package} --bench {name} -j2{}",
        if quick { " (MOSAIC_BENCH_QUICK=1)" } else { "" }
    );
    let status = command
        .status()
        .with_context(|| format!("starting cargo bench for {package}"))?;
    if !status.success() {
        bail!("bench {name} failed ({status})");
    }
    Ok(Outcome::Ran)
}
