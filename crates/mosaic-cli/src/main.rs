//! The `mosaic` command: for people (identity, posting, reading, servers,
//! migration, backups), for operators (`serve`, `store`, `admin`), and tools
//! (keys, records, bootstraps, a private DHT).
//!
//! This file is glue: it parses the command line, hands each command group to
//! its module (`key.rs`, `record/`, `serve.rs`), and turns the outcome into an exit code.
//! Errors are printed with their whole chain (`{:#}`); a closed standard
//! output (`mosaic record inspect r | head`) counts as success.

mod admin;
mod backup;
mod bootstrap;
mod connect;
mod dht;
mod feed;
mod identity;
mod input;
mod key;
mod logging;
mod migrate;
mod output;
mod post;
mod profile;
mod record;
mod serve;
mod server_data;
mod servers;
mod store;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status when every check passed.
const EXIT_OK: u8 = 0;
/// Exit status when a record was read and found invalid.
const EXIT_INVALID: u8 = 1;
/// Exit status on any other error: bad arguments, unreadable files, wrong
/// passwords. (clap uses 2 for usage errors too.)
const EXIT_ERROR: u8 = 2;

const AFTER_HELP: &str = "\
Exit status:
  0  success (for `record inspect` and `record verify`: every record is valid)
  1  a record was read and is invalid
  2  an error: bad arguments, a file that cannot be read or written, a wrong password

Environment:
  MOSAIC_PASSWORD  the password of encrypted key files (mocryptsec0); when unset,
                   it is asked on the terminal without echo";

/// Mosaic: keys and signed records of the Mosaic protocol (spec 0.8.0).
#[derive(Debug, Parser)]
#[command(
    name = "mosaic",
    version,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
enum Command {
    /// Generate master keys and show key files.
    #[command(subcommand, arg_required_else_help = true)]
    Key(key::KeyCommand),
    /// Create, inspect and verify records.
    #[command(subcommand, arg_required_else_help = true)]
    Record(record::RecordCommand),
    /// Run a Mosaic server on an embedded store (no other set-up needed).
    Serve(serve::ServeArgs),
    /// Look after a server's store: stats, export, import, remove.
    #[command(subcommand, arg_required_else_help = true)]
    Store(store::StoreCommand),
    /// Publish and show bootstraps (which servers a key uses) in the DHT.
    #[command(subcommand, arg_required_else_help = true)]
    Bootstrap(bootstrap::BootstrapCommand),
    /// Run a private Mainline DHT for experiments.
    #[command(subcommand, arg_required_else_help = true)]
    Dht(dht::DhtCommand),
    /// Administer a server: the allow-list of served users, bans, removals.
    #[command(subcommand, arg_required_else_help = true)]
    Admin(admin::AdminCommand),
    /// Create (or import) your identity, choose servers, publish the bootstrap.
    Init(identity::InitArgs),
    /// Set or show a profile.
    #[command(subcommand, arg_required_else_help = true)]
    Profile(profile::ProfileCommand),
    /// Publish a post.
    Post(post::PostArgs),
    /// Reply to a record.
    Reply(post::ReplyArgs),
    /// Read users' recent records, newest first.
    Feed(feed::FeedArgs),
    /// Show a record and its replies.
    Thread(feed::ThreadArgs),
    /// Print users' records live as they are published.
    Watch(feed::WatchArgs),
    /// Show the records others sent to you (replies, mentions).
    Inbox(feed::InboxArgs),
    /// List, add and remove your servers; publish your bootstrap again.
    #[command(subcommand, arg_required_else_help = true)]
    Servers(servers::ServersCommand),
    /// Copy all your records to a new server and make it your first outbox.
    Migrate(migrate::MigrateArgs),
    /// Write your keys, configuration and records to one file.
    Backup(backup::BackupArgs),
    /// Restore a backup and publish it again.
    Restore(backup::RestoreArgs),
}

/// What a command found, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything asked for was done, and every record checked was valid.
    Success,
    /// At least one record checked was invalid.
    Invalid,
}

fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.command {
        Command::Key(command) => key::run(command),
        Command::Record(command) => record::run(command),
        Command::Serve(args) => serve::run(args),
        Command::Store(command) => store::run(command),
        Command::Bootstrap(command) => bootstrap::run(command),
        Command::Dht(command) => dht::run(command),
        Command::Admin(command) => admin::run(command),
        Command::Init(args) => identity::init(args),
        Command::Profile(command) => profile::run(command),
        Command::Post(args) => post::post(args),
        Command::Reply(args) => post::reply(args),
        Command::Feed(args) => feed::feed(args),
        Command::Thread(args) => feed::thread(args),
        Command::Watch(args) => feed::watch(args),
        Command::Inbox(args) => feed::inbox(args),
        Command::Servers(command) => servers::run(command),
        Command::Migrate(args) => migrate::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Status::Success) => ExitCode::from(EXIT_OK),
        Ok(Status::Invalid) => ExitCode::from(EXIT_INVALID),
        Err(error) if output::is_broken_pipe(&error) => ExitCode::from(EXIT_OK),
        Err(error) => {
            // Nothing more can be done if standard error is closed too.
            let _ = writeln!(io::stderr(), "mosaic: error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
