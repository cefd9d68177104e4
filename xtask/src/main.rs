//! Project automation, reached as `cargo xtask ...` (see `.cargo/config.toml`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod interop;

/// Project automation for the Mosaic workspace.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every interoperability vector in ../shared/vectors (or $MOSAIC_VECTORS).
    Interop(interop::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Interop(args) => interop::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
