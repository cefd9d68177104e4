//! `mosaic admin`: a server's allow-list of served users, its bans, and the
//! removal of records. With the server running, through its admin socket
//! (`DIR/admin.sock`), taking effect at once; with it stopped, written to
//! its store (`server_data.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use mosaic_core::{Id, PublicKey, Timestamp};
use mosaic_store::Ban;
use serde::Serialize;

use crate::Status;
use crate::output;
use crate::server_data::ServerData;

const ADMIN_HELP: &str = "\
While the server runs on DIR, the commands go through its admin socket
(DIR/admin.sock, usable only by the user running the server) and take effect
at once: a ban closes the banned key's or address's open connections with
the ban's code, a removed record is gone from the next Get or Query, a new
served user is served from the next submission. With the server stopped,
they are written to its store (DIR/store) and apply from its next start.
The output is the same either way.

The allow-list matters only when roles are turned on in the configuration
([roles] outbox, inbox, encryption); a server with no role on is open.";

/// The `admin` subcommands.
#[derive(Debug, Subcommand)]
#[command(after_help = ADMIN_HELP)]
pub enum AdminCommand {
    /// The allow-list of users the server serves in its roles.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Ban a user key or an IP address (permanently unless --until is given).
    #[command(subcommand)]
    Ban(BanCommand),
    /// Lift the ban of a user key or an IP address.
    #[command(subcommand)]
    Unban(UnbanCommand),
    /// List the bans, with whether each is still in force.
    Bans {
        #[command(flatten)]
        data: AdminData,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove records by id (moref0...), with all their index entries.
    Remove {
        #[command(flatten)]
        data: AdminData,
        /// The ids.
        #[arg(value_name = "ID", required = true)]
        ids: Vec<String>,
    },
}

/// `admin users`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add users (mopub0...) to the allow-list.
    Add {
        #[command(flatten)]
        data: AdminData,
        /// The users' master public keys.
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
    /// Take users (mopub0...) off the allow-list; their records stay.
    Remove {
        #[command(flatten)]
        data: AdminData,
        /// The users' master public keys.
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
    /// List the allow-list.
    List {
        #[command(flatten)]
        data: AdminData,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `admin ban`.
#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// Ban a user key (mopub0..., a master key or a subkey): its submissions,
    /// the records it authors or signs, and connections authenticated as it
    /// (or through its subkeys) get PUBKEY_TEMP_BANNED or PUBKEY_PERM_BANNED;
    /// on a running server its open connections are closed at once.
    Pubkey {
        #[command(flatten)]
        data: AdminData,
        /// The key.
        #[arg(value_name = "KEY")]
        key: String,
        #[command(flatten)]
        length: BanLength,
    },
    /// Ban an IP address: its connections are closed with IP_TEMP_BANNED or
    /// IP_PERM_BANNED (at once on a running server; plain HTTP gets 403).
    Ip {
        #[command(flatten)]
        data: AdminData,
        /// The address (IPv4 or IPv6).
        #[arg(value_name = "ADDR")]
        addr: IpAddr,
        #[command(flatten)]
        length: BanLength,
    },
}

/// `admin unban`.
#[derive(Debug, Subcommand)]
pub enum UnbanCommand {
    /// Lift the ban of a user key (mopub0...).
    Pubkey {
        #[command(flatten)]
        data: AdminData,
        /// The key.
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// Lift the ban of an IP address.
    Ip {
        #[command(flatten)]
        data: AdminData,
        /// The address.
        #[arg(value_name = "ADDR")]
        addr: IpAddr,
    },
}

/// How long a ban lasts.
#[derive(Debug, Args)]
pub struct BanLength {
    /// End the ban at this time (RFC 3339, such as 2030-01-01T00:00:00Z, or
    /// nanoseconds): a temporary ban.
    #[arg(long, value_name = "TIME", value_parser = parse_timestamp, conflicts_with = "permanent")]
    until: Option<Timestamp>,
    /// Ban until lifted with `mosaic admin unban` (the default).
    #[arg(long)]
    permanent: bool,
}

impl BanLength {
    fn ban(&self, now: Timestamp) -> anyhow::Result<Ban> {
        match self.until {
            Some(until) if until <= now => {
                bail!("--until {until} is not in the future")
            }
            Some(until) => Ok(Ban::Until(until)),
            None => Ok(Ban::Permanent),
        }
    }
}

/// The server's data directory.
#[derive(Debug, Args)]
pub struct AdminData {
    /// The server's data directory (its store DIR/store, its admin socket DIR/admin.sock) [default: as `mosaic serve`].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

impl AdminData {
    /// The running server, else its store; `create` makes a store when
    /// there is none (so that the allow-list can be set up before the
    /// first start).
    fn open(&self, create: bool) -> anyhow::Result<ServerData> {
        ServerData::open(self.data.as_deref(), create)
    }
}

/// Says how many open connections a ban closed (on standard error, so that
/// standard output is the same with the server running or stopped).
fn report_closed(closed: usize) {
    if closed > 0 {
        eprintln!("closed {closed} open connection(s) of the running server");
    }
}

/// `--until`: nanoseconds or RFC 3339.
fn parse_timestamp(text: &str) -> anyhow::Result<Timestamp> {
    text.parse()
        .map_err(|e| anyhow!("{e}; give an RFC 3339 time such as 2030-01-01T00:00:00Z"))
}

fn parse_user(text: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_printable(text.trim())
        .map_err(|e| anyhow!("{text}: {e}; give a user's master public key (mopub0...)"))
}

fn now() -> anyhow::Result<Timestamp> {
    Ok(Timestamp::from_system_time(SystemTime::now())?)
}

#[derive(Serialize)]
struct UsersJson {
    served_users: Vec<String>,
}

#[derive(Serialize)]
struct BanJson {
    /// RFC 3339, or `null` for a permanent ban.
    until: Option<String>,
    active: bool,
}

#[derive(Serialize)]
struct BansJson {
    keys: BTreeMap<String, BanJson>,
    ips: BTreeMap<String, BanJson>,
}

fn ban_json(ban: &Ban, now: Timestamp) -> BanJson {
    BanJson {
        until: match ban {
            Ban::Permanent => None,
            Ban::Until(t) => Some(t.to_string()),
        },
        active: ban.is_active_at(now),
    }
}

fn describe(ban: &BanJson) -> String {
    let length = match &ban.until {
        None => "permanent".to_string(),
        Some(t) => format!("until {t}"),
    };
    if ban.active {
        length
    } else {
        format!("{length} (expired)")
    }
}

/// Runs an `admin` subcommand.
pub fn run(command: AdminCommand) -> anyhow::Result<Status> {
    let mut stdout = output::stdout();
    match command {
        AdminCommand::Users(UsersCommand::Add { data, keys }) => {
            let keys = keys
                .iter()
                .map(|k| parse_user(k))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut store = data.open(true)?;
            for key in keys {
                let verb = if store.add_user(&key)? {
                    "added"
                } else {
                    "already served"
                };
                writeln!(stdout, "{verb} {key}")?;
            }
        }
        AdminCommand::Users(UsersCommand::Remove { data, keys }) => {
            let keys = keys
                .iter()
                .map(|k| parse_user(k))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut store = data.open(false)?;
            let mut missing = 0;
            for key in &keys {
                if store.remove_user(key)? {
                    writeln!(stdout, "removed {key}")?;
                } else {
                    missing += 1;
                    writeln!(stdout, "not served {key}")?;
                }
            }
            if missing == keys.len() {
                bail!("none of the keys were on the allow-list");
            }
        }
        AdminCommand::Users(UsersCommand::List { data, json }) => {
            let served = data.open(false)?.users()?;
            let users: Vec<String> = served.iter().map(PublicKey::to_printable).collect();
            if json {
                output::json(
                    &mut stdout,
                    &UsersJson {
                        served_users: users,
                    },
                )?;
            } else {
                for user in users {
                    writeln!(stdout, "{user}")?;
                }
            }
        }
        AdminCommand::Ban(BanCommand::Pubkey { data, key, length }) => {
            let key = parse_user(&key)?;
            let ban = length.ban(now()?)?;
            let closed = data.open(true)?.ban_key(&key, ban)?;
            writeln!(stdout, "banned {key} {}", describe(&ban_json(&ban, now()?)))?;
            report_closed(closed);
        }
        AdminCommand::Ban(BanCommand::Ip { data, addr, length }) => {
            let ban = length.ban(now()?)?;
            let closed = data.open(true)?.ban_ip(addr, ban)?;
            writeln!(
                stdout,
                "banned {addr} {}",
                describe(&ban_json(&ban, now()?))
            )?;
            report_closed(closed);
        }
        AdminCommand::Unban(UnbanCommand::Pubkey { data, key }) => {
            let key = parse_user(&key)?;
            if !data.open(false)?.unban_key(&key)? {
                bail!("{key} is not banned");
            }
            writeln!(stdout, "unbanned {key}")?;
        }
        AdminCommand::Unban(UnbanCommand::Ip { data, addr }) => {
            if !data.open(false)?.unban_ip(addr)? {
                bail!("{addr} is not banned");
            }
            writeln!(stdout, "unbanned {addr}")?;
        }
        AdminCommand::Bans { data, json } => {
            let (banned_keys, banned_ips) = data.open(false)?.bans()?;
            let now = now()?;
            let out = BansJson {
                keys: banned_keys
                    .iter()
                    .map(|(k, b)| (k.to_printable(), ban_json(b, now)))
                    .collect(),
                ips: banned_ips
                    .iter()
                    .map(|(ip, b)| (ip.to_string(), ban_json(b, now)))
                    .collect(),
            };
            if json {
                output::json(&mut stdout, &out)?;
            } else {
                for (what, ban) in out.keys.iter().chain(&out.ips) {
                    writeln!(stdout, "{what} {}", describe(ban))?;
                }
            }
        }
        AdminCommand::Remove { data, ids } => {
            let parsed = ids
                .iter()
                .map(|s| {
                    Id::from_printable(s)
                        .with_context(|| format!("{s} is not a record id (moref0...)"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut store = data.open(false)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::Parser;
    use mosaic_core::{Kind, Nonce, RecordBuilder, SecretKey};
    use mosaic_store::{Store, StoreConfig};

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir()
                .join(format!("mosaic-cli-admin-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Dir(dir)
        }

        fn admin(&self, args: &[&str]) -> anyhow::Result<Status> {
            let mut argv = vec!["mosaic", "admin"];
            argv.extend_from_slice(args);
            argv.extend_from_slice(&["--data", self.0.to_str().unwrap()]);
            crate::run(Cli::try_parse_from(argv)?)
        }

        fn store(&self) -> Store {
            Store::open(self.0.join("store"), StoreConfig::default()).unwrap()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn users_are_added_listed_and_removed_in_the_store() {
        let dir = Dir::new("users");
        let alice = SecretKey::from_bytes(&[1; 32]).public();
        let bob = SecretKey::from_bytes(&[2; 32]).public();
        // Reading needs a store; adding creates it.
        assert!(dir.admin(&["users", "list"]).is_err());
        let (a, b) = (alice.to_printable(), bob.to_printable());
        dir.admin(&["users", "add", &a, &b]).unwrap();
        dir.admin(&["users", "add", &a]).unwrap();
        dir.admin(&["users", "list", "--json"]).unwrap();
        dir.admin(&["users", "remove", &b]).unwrap();
        assert!(dir.admin(&["users", "remove", &b]).is_err());
        assert!(dir.admin(&["users", "add", "mopub0nonsense"]).is_err());
        let served = dir.store().moderation().unwrap().served_users;
        assert_eq!(served.into_iter().collect::<Vec<_>>(), [alice]);
    }

    #[test]
    fn bans_are_written_with_their_length_and_lifted() {
        let dir = Dir::new("bans");
        let mallory = SecretKey::from_bytes(&[6; 32]).public();
        let m = mallory.to_printable();
        dir.admin(&["ban", "pubkey", &m, "--until", "2200-01-01T00:00:00Z"])
            .unwrap();
        dir.admin(&["ban", "ip", "192.0.2.1"]).unwrap();
        dir.admin(&["ban", "ip", "2001:db8::9", "--permanent"])
            .unwrap();
        // A ban that would already be over, and contradictory flags.
        assert!(
            dir.admin(&["ban", "ip", "192.0.2.2", "--until", "2000-01-01T00:00:00Z"])
                .is_err()
        );
        assert!(
            dir.admin(&[
                "ban",
                "ip",
                "192.0.2.2",
                "--until",
                "2200-01-01T00:00:00Z",
                "--permanent"
            ])
            .is_err()
        );
        assert!(dir.admin(&["ban", "ip", "not-an-address"]).is_err());
        dir.admin(&["bans", "--json"]).unwrap();
        {
            let m = dir.store().moderation().unwrap();
            let until: Timestamp = "2200-01-01T00:00:00Z".parse().unwrap();
            assert_eq!(m.banned_keys.get(&mallory), Some(&Ban::Until(until)));
            let ip: IpAddr = "192.0.2.1".parse().unwrap();
            assert_eq!(m.banned_ips.get(&ip), Some(&Ban::Permanent));
            assert_eq!(m.banned_ips.len(), 2);
        }
        dir.admin(&["unban", "pubkey", &m]).unwrap();
        assert!(dir.admin(&["unban", "pubkey", &m]).is_err());
        dir.admin(&["unban", "ip", "192.0.2.1"]).unwrap();
        let m = dir.store().moderation().unwrap();
        assert!(m.banned_keys.is_empty());
        assert_eq!(m.banned_ips.len(), 1);
    }

    #[test]
    fn remove_takes_records_out_of_the_store() {
        let dir = Dir::new("remove");
        let key = SecretKey::from_bytes(&[1; 32]);
        let record = RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(5).unwrap())
            .nonce(Nonce::from_key(b"r"))
            .payload(b"spam")
            .build(&key)
            .unwrap();
        let id = record.id();
        dir.store()
            .insert(&record, Timestamp::from_nanos(6).unwrap())
            .unwrap();
        dir.admin(&["remove", &id.to_printable()]).unwrap();
        assert!(!dir.store().contains(&id).unwrap());
        assert!(dir.admin(&["remove", &id.to_printable()]).is_err());
        assert!(dir.admin(&["remove", "moref0bad"]).is_err());
    }
}
