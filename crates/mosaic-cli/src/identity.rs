//! A user's identity on this machine: the config directory, its files,
//! the keys in it, and `mosaic init`, which creates them.
//!
//! The directory is `$MOSAIC_HOME` when set (two users on one machine, tests),
//! else `$XDG_CONFIG_HOME/mosaic`, else `~/.config/mosaic`. It holds:
//!
//! - `identity.key`: the master secret key, `mocryptsec0...` (encrypted with
//!   a password, the default) or `mosec0...` (`--no-encrypt`); mode 0600.
//! - `subkey.key`: an optional signing subkey, protected the same way. When
//!   present, posts are signed with it and the master key stays locked.
//! - `config.toml`: the public keys, the servers used (with their usage and
//!   optionally a direct address), the DHT bootstrap nodes and a trusted CA
//!   file. `mosaic servers` edits it.
//! - `dht-cache` (`dht-cache-<hash>` for a private DHT): bootstraps
//!   resolved through the DHT, kept for 30 minutes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::Args;
use mosaic_core::printable::Prefix;
use mosaic_core::{
    EncryptedKeyError, EncryptedSecretKey, KeyMarker, KeySchedule, KeyScheduleEntry, Profile,
    PublicKey, SecretKey, ServerUsage, Timestamp, UserBootstrap, UserBootstrapEntry,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Status;
use crate::connect::{NetArgs, Session, outcome_json, print_outcomes};
use crate::input;
use crate::output::{self, OutputArgs};
use crate::servers::{self, ServerChoice, ServerRef};

/// The environment variable naming the config directory.
pub const HOME_VAR: &str = "MOSAIC_HOME";

/// The default scrypt cost of the stored keys: 2^18 rounds, 256 MiB.
const DEFAULT_LOG_N: u8 = 18;

const CONFIG_HEADER: &str = "\
# The configuration of `mosaic`, written by `mosaic init` and `mosaic servers`.
# public_key: this identity; subkey: the signing subkey, if any.
# [[servers]]: the servers used, most preferred first: key (mosrv0), usage
# (outbox, inbox, encryption, joined with +), and optionally address (a
# ws://, wss:// or mosaicwss:// address used instead of the server bootstrap).
# dht_bootstrap: DHT nodes to join (empty: the public Mainline DHT).
# tls_ca: a PEM file of certificates to trust for wss, besides the usual roots.
";

/// The config directory and the files in it.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// `$MOSAIC_HOME`, else `$XDG_CONFIG_HOME/mosaic`, else
    /// `$HOME/.config/mosaic`.
    pub fn locate() -> anyhow::Result<Home> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let dir = home_dir(
            var(HOME_VAR).map(PathBuf::from),
            var("XDG_CONFIG_HOME").map(PathBuf::from),
            var("HOME").map(PathBuf::from),
        )
        .context("cannot tell where the config directory is: set MOSAIC_HOME or HOME")?;
        Ok(Home { dir })
    }

    /// A home in `dir`.
    #[cfg(test)]
    pub fn at(dir: PathBuf) -> Home {
        Home { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The master key file.
    pub fn identity_file(&self) -> PathBuf {
        self.dir.join("identity.key")
    }

    /// The subkey file.
    pub fn subkey_file(&self) -> PathBuf {
        self.dir.join("subkey.key")
    }

    /// The configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The DHT cache for the DHT joined through `nodes`: `dht-cache` for
    /// the public DHT, `dht-cache-<hash of the nodes>` for a private one, so
    /// that answers of a testnet never mix with the public DHT's.
    pub fn dht_cache_file(&self, nodes: &[String]) -> PathBuf {
        if nodes.is_empty() {
            return self.dir.join("dht-cache");
        }
        let mut nodes = nodes.to_vec();
        nodes.sort();
        nodes.dedup();
        let hash = mosaic_core::blake3_xof64(nodes.join(",").as_bytes());
        self.dir
            .join(format!("dht-cache-{}", hex::encode(&hash[..6])))
    }

    /// Creates the directory (mode 0700) if it does not exist.
    pub fn create(&self) -> anyhow::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&self.dir)
            .with_context(|| format!("cannot create the config directory {}", self.dir.display()))
    }

    /// Whether an identity was created here.
    pub fn has_identity(&self) -> bool {
        self.identity_file().exists() || self.config_file().exists()
    }

    /// Reads `config.toml`; a home without one has no identity yet.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let path = self.config_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no identity in {} yet: run `mosaic init` first (or set {HOME_VAR} to the \
                 directory that holds one)",
                self.dir.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        Config::from_toml(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))
    }

    /// Writes `config.toml` (through a temporary file, so a crash leaves
    /// the old one).
    pub fn save_config(&self, config: &Config) -> anyhow::Result<()> {
        let path = self.config_file();
        let temporary = self
            .dir
            .join(format!(".config.toml.{}.tmp", std::process::id()));
        std::fs::write(&temporary, config.to_toml())
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("cannot replace {}", path.display()))
    }

    /// The master key, decrypted (the password comes from `MOSAIC_PASSWORD`
    /// or the terminal). It must be the key `config` names.
    pub fn master_key(&self, config: &Config) -> anyhow::Result<SecretKey> {
        let path = self.identity_file();
        if !path.exists() {
            bail!(
                "no identity key in {}: run `mosaic init`, or `mosaic restore` a backup",
                self.dir.display()
            );
        }
        let key = read_key_file(&path)?.open(&path.display().to_string())?;
        if key.public() != config.public_key {
            bail!(
                "{} holds the key {}, but config.toml is for {}: restore the matching files",
                path.display(),
                key.public(),
                config.public_key
            );
        }
        Ok(key)
    }

    /// The key that signs day-to-day records, and the author it signs for:
    /// the subkey when there is one, else the master key.
    pub fn signing_key(&self, config: &Config) -> anyhow::Result<(SecretKey, PublicKey)> {
        let Some(subkey) = config.subkey else {
            return Ok((self.master_key(config)?, config.public_key));
        };
        let path = self.subkey_file();
        if !path.exists() {
            bail!(
                "config.toml names the subkey {subkey}, but {} is missing: restore it from a \
                 backup, or remove the `subkey` line to sign with the master key",
                path.display()
            );
        }
        let key = read_key_file(&path)?.open(&path.display().to_string())?;
        if key.public() != subkey {
            bail!(
                "{} holds the key {}, but config.toml names the subkey {subkey}",
                path.display(),
                key.public()
            );
        }
        Ok((key, config.public_key))
    }
}

/// `$MOSAIC_HOME`, else `$XDG_CONFIG_HOME/mosaic`, else `$HOME/.config/mosaic`
/// (relative XDG and HOME values are ignored, as the XDG rules ask).
fn home_dir(
    mosaic_home: Option<PathBuf>,
    xdg_config_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(dir) = mosaic_home {
        return Some(dir);
    }
    let base = xdg_config_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.filter(|p| p.is_absolute()).map(|h| h.join(".config")))?;
    Some(base.join("mosaic"))
}

/// A secret key as stored: plain or encrypted.
pub enum StoredKey {
    /// `mosec0...`.
    Plain(SecretKey),
    /// `mocryptsec0...`.
    Encrypted(EncryptedSecretKey),
}

impl StoredKey {
    /// Reads `mosec0...` or `mocryptsec0...` text; `what` names its source
    /// in errors.
    pub fn parse(text: &str, what: &str) -> anyhow::Result<StoredKey> {
        let text = text.trim();
        match Prefix::detect(text) {
            Some(Prefix::SecretKey) => Ok(StoredKey::Plain(
                SecretKey::from_printable(text)
                    .with_context(|| format!("{what} holds a damaged mosec0 key"))?,
            )),
            Some(Prefix::EncryptedSecretKey) => Ok(StoredKey::Encrypted(
                EncryptedSecretKey::from_printable(text)
                    .with_context(|| format!("{what} holds a damaged mocryptsec0 key"))?,
            )),
            Some(other) => {
                bail!("{what} holds a {other} string; a secret key is mosec0... or mocryptsec0...")
            }
            None => bail!("{what} is not a secret key: expected a mosec0 or mocryptsec0 string"),
        }
    }

    /// The key, decrypted with the password if it is encrypted.
    pub fn open(self, what: &str) -> anyhow::Result<SecretKey> {
        self.open_with_password(what).map(|(key, _)| key)
    }

    /// The key and, when it was encrypted, the password that opened it.
    fn open_with_password(
        self,
        what: &str,
    ) -> anyhow::Result<(SecretKey, Option<Zeroizing<String>>)> {
        match self {
            StoredKey::Plain(key) => Ok((key, None)),
            StoredKey::Encrypted(encrypted) => {
                let password = input::password(what, false)?;
                let key = encrypted.decrypt(&password).map_err(|e| match e {
                    EncryptedKeyError::WrongPassword => anyhow::anyhow!(
                        "wrong password for {what} (check {} or what was typed)",
                        input::PASSWORD_VAR
                    ),
                    other => anyhow::Error::new(other).context(format!("cannot decrypt {what}")),
                })?;
                Ok((key, Some(password)))
            }
        }
    }
}

fn read_key_file(path: &Path) -> anyhow::Result<StoredKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    StoredKey::parse(&text, &path.display().to_string())
}

/// The configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The identity's public key.
    pub public_key: PublicKey,
    /// The signing subkey, if any.
    pub subkey: Option<PublicKey>,
    /// The servers used, most preferred first.
    pub servers: Vec<ServerChoice>,
    /// DHT nodes to join through (empty: the public DHT).
    pub dht_bootstrap: Vec<String>,
    /// A PEM file of certificates to trust for `wss`.
    pub tls_ca: Option<PathBuf>,
}

/// `config.toml` as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subkey: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dht_bootstrap: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls_ca: Option<PathBuf>,
    #[serde(default)]
    servers: Vec<ServerLine>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerLine {
    key: String,
    usage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
}

impl Config {
    /// A configuration for `public_key` with nothing else set.
    pub fn new(public_key: PublicKey) -> Config {
        Config {
            public_key,
            subkey: None,
            servers: Vec::new(),
            dht_bootstrap: Vec::new(),
            tls_ca: None,
        }
    }

    /// Reads the TOML text.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let file: ConfigFile = toml::from_str(text)?;
        let key = |s: &str, what: &str| {
            PublicKey::from_any_printable(s.trim())
                .with_context(|| format!("{what} {s:?} is not a public key"))
        };
        let mut servers = Vec::new();
        for line in &file.servers {
            let server = key(&line.key, "server key")?;
            let address = line
                .address
                .as_deref()
                .map(servers::parse_address)
                .transpose()?;
            servers.push(ServerChoice {
                server: ServerRef {
                    key: server,
                    address,
                },
                usage: servers::parse_usage(&line.usage)?,
            });
        }
        Ok(Config {
            public_key: key(&file.public_key, "public_key")?,
            subkey: file
                .subkey
                .as_deref()
                .map(|s| key(s, "subkey"))
                .transpose()?,
            servers,
            dht_bootstrap: file.dht_bootstrap,
            tls_ca: file.tls_ca,
        })
    }

    /// The TOML text, with a header explaining it.
    pub fn to_toml(&self) -> String {
        let file = ConfigFile {
            public_key: self.public_key.to_printable(),
            subkey: self.subkey.map(|k| k.to_printable()),
            dht_bootstrap: self.dht_bootstrap.clone(),
            tls_ca: self.tls_ca.clone(),
            servers: self
                .servers
                .iter()
                .map(|c| ServerLine {
                    key: c.server.key.to_server_printable(),
                    usage: servers::usage_name(c.usage),
                    address: c.server.address.as_ref().map(ToString::to_string),
                })
                .collect(),
        };
        // Serialising plain strings and lists cannot fail.
        let body = toml::to_string(&file).unwrap_or_default();
        format!("{CONFIG_HEADER}\n{body}")
    }

    /// The user bootstrap the servers make (`None` with no servers).
    pub fn bootstrap(&self) -> anyhow::Result<Option<UserBootstrap>> {
        if self.servers.is_empty() {
            return Ok(None);
        }
        let entries = self
            .servers
            .iter()
            .map(|c| UserBootstrapEntry {
                usage: c.usage,
                server: c.server.key,
            })
            .collect();
        Ok(Some(UserBootstrap::new(entries).context(
            "the servers in config.toml do not make a valid user bootstrap",
        )?))
    }

    /// The servers with a usage, in order.
    pub fn servers_with(&self, usage: ServerUsage) -> Vec<PublicKey> {
        self.servers
            .iter()
            .filter(|c| c.usage.contains(usage))
            .map(|c| c.server.key)
            .collect()
    }
}

/// Arguments of `mosaic init`.
#[derive(Debug, Args)]
#[command(after_help = INIT_AFTER_HELP)]
pub struct InitArgs {
    /// Use an existing master key instead of a new one: a key file, or the
    /// mosec0... / mocryptsec0... string itself.
    #[arg(long, value_name = "FILE|KEY")]
    import: Option<String>,
    /// Also create a signing subkey, listed in a key schedule record: day to
    /// day records are signed with it, and the master key is needed only
    /// for the profile, the key schedule and the bootstrap.
    #[arg(long)]
    subkey: bool,
    /// A server to use: SERVER, or USAGE:SERVER; most preferred first. SERVER is
    /// mosrv0... (found through its server bootstrap in the DHT), optionally
    /// followed by @ADDRESS (ws://host:port/, wss://... or mosaicwss://...)
    /// to connect there directly. USAGE is outbox, inbox or both (the
    /// default).
    #[arg(long = "server", value_name = "[USAGE:]SERVER", value_parser = servers::parse_choice)]
    servers: Vec<ServerChoice>,
    /// Also publish a profile with this name (letters, digits, ASCII).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Store the keys unencrypted (mosec0): anyone who can read the files
    /// has the identity.
    #[arg(long)]
    no_encrypt: bool,
    /// scrypt cost of the key encryption: 2^N rounds using 2^N KiB of
    /// memory, 1 to 22. Each step up doubles the work of guessing the
    /// password, and the time every command that needs a key takes.
    /// Ignored with --no-encrypt.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_LOG_N,
        value_parser = clap::value_parser!(u8).range(1..=22)
    )]
    log_n: u8,
    /// Replace an identity that exists already (its keys are lost unless
    /// backed up: see `mosaic backup`).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

const INIT_AFTER_HELP: &str = "\
The keys go to the config directory: $MOSAIC_HOME, else $XDG_CONFIG_HOME/mosaic,
else ~/.config/mosaic. They are encrypted with a password (from MOSAIC_PASSWORD,
or asked twice on the terminal) unless --no-encrypt is given.

With --server, the user bootstrap (which servers this key uses) is published to
the DHT, and the key schedule (with --subkey) and the profile (with --name) are
published to the outboxes. The --dht-bootstrap and --tls-ca given are saved in
config.toml for the commands that follow.

With --json: {\"public_key\", \"home\", \"encrypted\", \"subkey\", \"servers\":
[{\"server\", \"usage\", \"address\"}], \"bootstrap\": null or {\"seq\",
\"stored_at\"}, \"key_schedule\" and \"profile\": null or {\"id\", \"servers\"}}.

Examples:
  mosaic init --server mosrv0...
  mosaic init --subkey --name alice --server both:mosrv0...@mosaicwss://relay.example/
  mosaic init --import old.key --server mosrv0... --server inbox:mosrv0...";

#[derive(Serialize)]
struct InitJson {
    public_key: String,
    home: PathBuf,
    encrypted: bool,
    imported: bool,
    subkey: Option<String>,
    servers: Vec<servers::ServerJson>,
    bootstrap: Option<servers::BootstrapJson>,
    key_schedule: Option<PublishedJson>,
    profile: Option<PublishedJson>,
}

/// A record published: its id and each server's answer.
#[derive(Serialize)]
pub struct PublishedJson {
    /// `moref0...`.
    pub id: String,
    /// Each server's outcome.
    pub servers: Vec<crate::connect::OutcomeJson>,
}

/// Runs `mosaic init`.
pub fn init(args: InitArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    if home.has_identity() && !args.force {
        let which = home
            .load_config()
            .map(|c| format!(" ({})", c.public_key))
            .unwrap_or_default();
        bail!(
            "{} already holds an identity{which}; give --force to replace it (its keys are \
             lost unless backed up), or set {HOME_VAR} to another directory",
            home.dir().display()
        );
    }
    if let Some(name) = &args.name {
        Profile::new(name.clone()).context("not a valid profile name")?;
    }

    // The keys, and how they are stored.
    let imported = args.import.is_some();
    let (master, kept_text, password) = match &args.import {
        Some(source) => {
            let imported = import_key(source)?;
            (imported.key, imported.encrypted_text, imported.password)
        }
        None => (SecretKey::generate(&mut rand::rng()), None, None),
    };
    let password = if args.no_encrypt {
        None
    } else {
        match password {
            Some(p) => Some(p),
            None => {
                let p = input::password("the new identity", true)?;
                if p.is_empty() {
                    bail!("an empty password protects nothing; choose one, or give --no-encrypt");
                }
                Some(p)
            }
        }
    };
    let store = |key: &SecretKey| -> anyhow::Result<Zeroizing<String>> {
        Ok(Zeroizing::new(match &password {
            Some(p) => EncryptedSecretKey::encrypt(key, p, args.log_n, &mut rand::rng())
                .context("cannot encrypt the key")?
                .to_printable(),
            None => key.to_printable(),
        }))
    };
    let master_text = match kept_text.filter(|_| password.is_some()) {
        Some(text) => text,
        None => store(&master)?,
    };
    let subkey = args.subkey.then(|| SecretKey::generate(&mut rand::rng()));

    let mut config = Config::new(master.public());
    config.subkey = subkey.as_ref().map(SecretKey::public);
    config.servers = args.servers.clone();
    config.dht_bootstrap = args.net.dht.bootstrap.clone();
    config.tls_ca = args
        .net
        .tls_ca
        .as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    config.bootstrap()?;

    home.create()?;
    let line = |text: &str| Zeroizing::new(format!("{text}\n"));
    output::write_secret_file(
        &home.identity_file(),
        line(&master_text).as_bytes(),
        args.force,
    )?;
    match &subkey {
        Some(subkey) => {
            let text = store(subkey)?;
            output::write_secret_file(&home.subkey_file(), line(&text).as_bytes(), args.force)?;
        }
        None => {
            if args.force {
                let _ = std::fs::remove_file(home.subkey_file());
            }
        }
    }
    home.save_config(&config)?;

    // Publishing: the bootstrap first (others find the servers through it),
    // then the key schedule (which makes subkey signatures valid) and the
    // profile.
    let mut report = InitJson {
        public_key: master.public().to_printable(),
        home: home.dir().to_path_buf(),
        encrypted: password.is_some(),
        imported,
        subkey: subkey.as_ref().map(|k| k.public().to_printable()),
        servers: config
            .servers
            .iter()
            .map(servers::ServerJson::from)
            .collect(),
        bootstrap: None,
        key_schedule: None,
        profile: None,
    };
    if let Some(bootstrap) = config.bootstrap()? {
        let session = Session::open(&home, Some(&config), &args.net, Some(master.clone()))?;
        let (published, schedule, profile) =
            crate::dht::runtime()?.block_on(async {
                let published = session
                    .publish_bootstrap(&master, &bootstrap)
                    .await
                    .context(
                        "the identity is saved, but its bootstrap was not published: run \
                          `mosaic servers publish` to try again",
                    )?;
                let now = now()?;
                let schedule =
                    match &subkey {
                        Some(subkey) => {
                            let entry = KeyScheduleEntry::new_attested(
                                &master.public(),
                                subkey,
                                KeyMarker::ActiveSigningKey,
                                Timestamp::ZERO,
                            )?;
                            let record = KeySchedule::new(master.public(), vec![entry])?
                                .build_record(&master, now, KeySchedule::default_nonce())?;
                            Some(publish_record(&session, &record, "key schedule").await?)
                        }
                        None => None,
                    };
                let profile = match &args.name {
                    Some(name) => {
                        let record = Profile::new(name.clone())?.build_record(
                            &master,
                            now,
                            Profile::default_nonce(),
                        )?;
                        Some(publish_record(&session, &record, "profile").await?)
                    }
                    None => None,
                };
                anyhow::Ok((published, schedule, profile))
            })?;
        report.bootstrap = Some(published);
        report.key_schedule = schedule;
        report.profile = profile;
    }

    let mut out = output::stdout();
    if args.output.json {
        output::json(&mut out, &report)?;
        return Ok(Status::Success);
    }
    let how = if report.encrypted {
        "encrypted"
    } else {
        "not encrypted"
    };
    writeln!(
        out,
        "identity: {} ({})",
        report.public_key,
        if imported { "imported" } else { "new" }
    )?;
    writeln!(out, "stored in {} ({how})", home.dir().display())?;
    if let Some(subkey) = &report.subkey {
        writeln!(out, "subkey:   {subkey}")?;
    }
    if config.servers.is_empty() {
        writeln!(
            out,
            "no servers yet: add one with `mosaic servers add mosrv0...` so others can find you"
        )?;
    }
    for server in &report.servers {
        writeln!(out, "server:   {} ({})", server.server, server.usage)?;
    }
    if let Some(b) = &report.bootstrap {
        writeln!(
            out,
            "bootstrap published: sequence {}, stored at {} DHT nodes",
            b.seq, b.stored_at
        )?;
    }
    for (what, published) in [
        ("key schedule", &report.key_schedule),
        ("profile", &report.profile),
    ] {
        if let Some(p) = published {
            writeln!(out, "{what}: {}", p.id)?;
            print_outcomes(&mut out, &p.servers)?;
        }
    }
    out.flush()?;
    Ok(Status::Success)
}

/// Publishes one of the identity's records; an error when no server took it.
async fn publish_record(
    session: &Session,
    record: &mosaic_core::Record,
    what: &str,
) -> anyhow::Result<PublishedJson> {
    let report = session.client.publish(record).await.with_context(|| {
        format!("cannot publish the {what}: the identity is saved; try again later")
    })?;
    let servers: Vec<_> = report.per_server.iter().map(outcome_json).collect();
    if report.stored_on() == 0 {
        bail!(
            "no server stored the {what}: {}",
            crate::connect::outcome_summary(&servers)
        );
    }
    Ok(PublishedJson {
        id: record.id().to_printable(),
        servers,
    })
}

/// The current time as a Mosaic timestamp.
pub fn now() -> anyhow::Result<Timestamp> {
    Timestamp::from_system_time(SystemTime::now()).context("the system clock is out of range")
}

/// A key to import.
struct Imported {
    key: SecretKey,
    /// Its text, when it was encrypted (stored as it is).
    encrypted_text: Option<Zeroizing<String>>,
    /// The password that opened it.
    password: Option<Zeroizing<String>>,
}

/// Reads the key to import: a file, or the key itself.
fn import_key(source: &str) -> anyhow::Result<Imported> {
    let trimmed = source.trim();
    let (text, what) = if Prefix::detect(trimmed).is_some() {
        (
            Zeroizing::new(trimmed.to_owned()),
            "the key given".to_owned(),
        )
    } else {
        let path = Path::new(source);
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read {source} (--import takes a key file, or a mosec0/mocryptsec0 key)")
        })?;
        (Zeroizing::new(text), path.display().to_string())
    };
    let stored = StoredKey::parse(&text, &what)?;
    let encrypted = matches!(stored, StoredKey::Encrypted(_));
    let (key, password) = stored.open_with_password(&what)?;
    Ok(Imported {
        key,
        encrypted_text: encrypted.then(|| Zeroizing::new(text.trim().to_owned())),
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_locations() {
        let abs = |p: &str| Some(PathBuf::from(p));
        assert_eq!(home_dir(abs("/m"), abs("/x"), abs("/h")), abs("/m"));
        assert_eq!(home_dir(None, abs("/x"), abs("/h")), abs("/x/mosaic"));
        assert_eq!(home_dir(None, None, abs("/h")), abs("/h/.config/mosaic"));
        assert_eq!(
            home_dir(None, abs("relative"), abs("/h")),
            abs("/h/.config/mosaic")
        );
        assert_eq!(home_dir(None, None, None), None);
        let home = Home::at(PathBuf::from("/m"));
        assert_eq!(home.dht_cache_file(&[]), PathBuf::from("/m/dht-cache"));
        let a = home.dht_cache_file(&["127.0.0.1:1".into(), "127.0.0.1:2".into()]);
        let b = home.dht_cache_file(&["127.0.0.1:2".into(), "127.0.0.1:1".into()]);
        assert_eq!(a, b);
        assert_ne!(a, home.dht_cache_file(&["127.0.0.1:3".into()]));
    }

    #[test]
    fn config_round_trips_and_is_checked() {
        let me = SecretKey::from_bytes(&[1; 32]).public();
        let server = SecretKey::from_bytes(&[2; 32]).public();
        let mut config = Config::new(me);
        config.subkey = Some(SecretKey::from_bytes(&[3; 32]).public());
        config.servers = vec![
            servers::parse_choice(&format!(
                "{}@ws://127.0.0.1:9/",
                server.to_server_printable()
            ))
            .unwrap(),
            servers::parse_choice(&format!(
                "inbox:{}",
                SecretKey::from_bytes(&[4; 32])
                    .public()
                    .to_server_printable()
            ))
            .unwrap(),
        ];
        config.dht_bootstrap = vec!["127.0.0.1:5".into()];
        config.tls_ca = Some(PathBuf::from("/ca.pem"));
        let text = config.to_toml();
        assert!(text.starts_with("# The configuration"), "{text}");
        assert_eq!(Config::from_toml(&text).unwrap(), config);
        let bootstrap = config.bootstrap().unwrap().unwrap();
        assert_eq!(bootstrap.outboxes().collect::<Vec<_>>(), vec![server]);
        assert_eq!(config.servers_with(ServerUsage::INBOX).len(), 2);
        assert!(Config::new(me).bootstrap().unwrap().is_none());

        assert!(Config::from_toml("public_key = \"mopub0x\"").is_err());
        assert!(Config::from_toml(&format!("public_key = \"{me}\"\ntypo = 1")).is_err());
        let bad_usage = format!(
            "public_key = \"{me}\"\n[[servers]]\nkey = \"{}\"\nusage = \"sometimes\"",
            server.to_server_printable()
        );
        assert!(Config::from_toml(&bad_usage).is_err());
    }

    #[test]
    fn stored_keys_parse_and_open() {
        let key = SecretKey::from_bytes(&[9; 32]);
        let plain = StoredKey::parse(&format!(" {}\n", key.to_printable()), "k").unwrap();
        assert_eq!(plain.open("k").unwrap(), key);
        let public = key.public().to_printable();
        let err = StoredKey::parse(&public, "k").err().unwrap().to_string();
        assert!(err.contains("mopub0"), "{err}");
        assert!(StoredKey::parse("hello", "k").is_err());
        assert!(StoredKey::parse("mosec0xyz", "k").is_err());
    }
}
