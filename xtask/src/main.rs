//! Project automation, reached as `cargo xtask ...` (see `.cargo/config.toml`).
//!
//! One module per command: `ci`, `bench` (with `load`), `interop`, `e2e`. The tidy checks in
//! `tidy.rs` are ordinary tests, so `cargo test` runs them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod ci;
mod e2e;
mod interop;
mod load;
#[cfg(test)]
mod tidy;

/// Project automation for the Mosaic workspace.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every check CI runs: fmt, clippy, tests, docs, interop, a small benchmark.
    Ci(ci::Args),
    /// Run a crate's benchmark (`cargo bench` with `harness = false` binaries), or load a server (`bench load`).
    Bench(bench::Args),
    /// Check every interoperability vector in ../shared/vectors (or $MOSAIC_VECTORS).
    Interop(interop::Args),
    /// Build `mosaic` and run the whole system end to end on loopback: a DHT testnet, three servers, two users.
    E2e(e2e::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ci(args) => ci::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Interop(args) => interop::run(args),
        Command::E2e(args) => e2e::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of `xtask/`.
///
/// `cargo run` and `cargo test` set `CARGO_MANIFEST_DIR` at run time too; that
/// value wins over the one compiled in, so a binary built in a target directory
/// shared by several checkouts still works on the checkout it was run from.
pub fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `cargo` that invoked us (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}
