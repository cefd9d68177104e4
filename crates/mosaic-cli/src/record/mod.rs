//! `mosaic record ...`: create, inspect and verify records.

mod create;
mod describe;
mod inspect;
mod verify;

use clap::Subcommand;

use crate::Status;

/// The `record` commands.
#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Create and sign a record.
    #[command(after_help = create::AFTER_HELP)]
    Create(create::CreateArgs),
    /// Show every field of a record, and whether it is valid.
    #[command(after_help = inspect::AFTER_HELP)]
    Inspect(inspect::InspectArgs),
    /// Check records; exit 0 only if all of them are valid.
    #[command(after_help = verify::AFTER_HELP)]
    Verify(verify::VerifyArgs),
}

/// Runs a `record` command.
pub fn run(command: RecordCommand) -> anyhow::Result<Status> {
    match command {
        RecordCommand::Create(args) => create::run(args),
        RecordCommand::Inspect(args) => inspect::run(args),
        RecordCommand::Verify(args) => verify::run(args),
    }
}
