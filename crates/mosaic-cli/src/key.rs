//! `mosaic key ...`: generate master keys and show key files.
//!
//! A key file is text: one `mosec0...` (a plain secret key) or
//! `mocryptsec0...` (a password-encrypted one) string and a newline.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mosaic_core::printable::Prefix;
use mosaic_core::{EncryptedKeyError, EncryptedSecretKey, SecretKey};
use rand::TryRng;
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use crate::Status;
use crate::input;
use crate::output::{self, OutputArgs};

/// The default scrypt cost of encrypted key files: 2^18 rounds, 256 MiB.
const DEFAULT_LOG_N: u8 = 18;

/// The `key` commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a new master key with the operating system's random number
    /// generator.
    #[command(after_help = GENERATE_AFTER_HELP)]
    Generate(GenerateArgs),
    /// Show the public key of a key file, and how the file is protected.
    #[command(after_help = SHOW_AFTER_HELP)]
    Show(ShowArgs),
}

const GENERATE_AFTER_HELP: &str = "\
The secret key goes to the --out file (created with mode 0600); it is printed only
when --print-secret is given. The public key (mopub0...) is always printed.

With --json: {\"public_key\": \"mopub0...\", \"server_public_key\": \"mosrv0...\",
\"file\": \"FILE\" or null, \"encrypted\": bool, \"log_n\": N or null}, plus
\"secret_key\" with --print-secret.

Examples:
  mosaic key generate --out me.key
  MOSAIC_PASSWORD=... mosaic key generate --encrypt --out me.key";

const SHOW_AFTER_HELP: &str = "\
An encrypted file (mocryptsec0) is opened with the password from MOSAIC_PASSWORD,
or asked on the terminal: the public key is not stored in it.

With --json: {\"file\": \"FILE\", \"encrypted\": bool, \"log_n\": N or null,
\"public_key\": \"mopub0...\", \"server_public_key\": \"mosrv0...\"}, plus
\"secret_key\" (mosec0...) with --print-secret.";

/// Arguments of `key generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write the secret key to FILE, with mode 0600. An existing file is never
    /// replaced unless --force is given.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace the --out file if it exists.
    #[arg(long, requires = "out")]
    force: bool,
    /// Encrypt the secret key with a password (mocryptsec0): from
    /// MOSAIC_PASSWORD, or asked twice on the terminal.
    #[arg(long)]
    encrypt: bool,
    /// scrypt cost of --encrypt: 2^N rounds, using 2^N KiB of memory, 1 to 22.
    /// Each step up doubles the time an attacker needs per guess, and the
    /// time to open the key.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_LOG_N,
        value_parser = clap::value_parser!(u8).range(1..=22),
        requires = "encrypt"
    )]
    log_n: u8,
    /// Also print the secret key (encrypted with --encrypt) on standard output.
    /// Needed when no --out is given.
    #[arg(long)]
    print_secret: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Arguments of `key show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The key file (`-` reads standard input).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Also print the secret key (mosec0..., decrypted) on standard output.
    #[arg(long)]
    print_secret: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs a `key` command.
pub fn run(command: KeyCommand) -> anyhow::Result<Status> {
    match command {
        KeyCommand::Generate(args) => generate(args),
        KeyCommand::Show(args) => show(args),
    }
}

/// A secret key read from a key file.
pub struct KeyFile {
    /// The key.
    pub secret: SecretKey,
    /// The scrypt cost when the file was encrypted.
    pub log_n: Option<u8>,
}

/// Reads a key file, asking for the password if it is encrypted.
pub fn load(path: &Path) -> anyhow::Result<KeyFile> {
    let raw = Zeroizing::new(input::read_source(path)?);
    let name = path.display();
    let text = std::str::from_utf8(&raw)
        .map(str::trim)
        .map_err(|_| anyhow::anyhow!("{name} is not a key file: it is not text"))?;
    match Prefix::detect(text) {
        Some(Prefix::SecretKey) => {
            let secret = SecretKey::from_printable(text)
                .with_context(|| format!("{name} holds a damaged mosec0 key"))?;
            Ok(KeyFile {
                secret,
                log_n: None,
            })
        }
        Some(Prefix::EncryptedSecretKey) => {
            let encrypted = EncryptedSecretKey::from_printable(text)
                .with_context(|| format!("{name} holds a damaged mocryptsec0 key"))?;
            let password = input::password(&name.to_string(), false)?;
            let secret = encrypted.decrypt(&password).map_err(|e| match e {
                EncryptedKeyError::WrongPassword => anyhow::anyhow!(
                    "wrong password for {name} (check {} or what was typed)",
                    input::PASSWORD_VAR
                ),
                other => anyhow::Error::new(other).context(format!("cannot decrypt {name}")),
            })?;
            Ok(KeyFile {
                secret,
                log_n: Some(encrypted.log_n()),
            })
        }
        Some(other) => bail!(
            "{name} holds a {other} string; a key file holds a secret key (mosec0 or mocryptsec0)"
        ),
        None => bail!(
            "{name} is not a key file: expected a mosec0 or mocryptsec0 string \
             (made by `mosaic key generate`)"
        ),
    }
}

/// A new key from the operating system's random number generator.
fn generate_key() -> anyhow::Result<SecretKey> {
    let mut seed = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut seed)
        .context("the operating system's random number generator failed")?;
    let key = SecretKey::from_bytes(&seed);
    seed.zeroize();
    Ok(key)
}

#[derive(Serialize)]
struct GenerateReport<'a> {
    public_key: String,
    server_public_key: String,
    file: Option<&'a Path>,
    encrypted: bool,
    log_n: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<&'a str>,
}

fn generate(args: GenerateArgs) -> anyhow::Result<Status> {
    if args.out.is_none() && !args.print_secret {
        bail!(
            "the new secret key must go somewhere: give --out FILE to save it, \
             or --print-secret to print it on standard output"
        );
    }
    let key = generate_key()?;
    let stored = if args.encrypt {
        let password = input::password("the new key", true)?;
        if password.is_empty() {
            bail!("an empty password protects nothing; choose one, or leave out --encrypt");
        }
        let encrypted = EncryptedSecretKey::encrypt(&key, &password, args.log_n, &mut rand::rng())
            .context("cannot encrypt the key")?;
        Zeroizing::new(encrypted.to_printable())
    } else {
        Zeroizing::new(key.to_printable())
    };
    if let Some(path) = &args.out {
        let contents = Zeroizing::new(format!("{}\n", *stored));
        output::write_secret_file(path, contents.as_bytes(), args.force)?;
    }
    let public = key.public();
    let log_n = args.encrypt.then_some(args.log_n);
    let mut out = output::stdout();
    if args.output.json {
        let report = GenerateReport {
            public_key: public.to_printable(),
            server_public_key: public.to_server_printable(),
            file: args.out.as_deref(),
            encrypted: args.encrypt,
            log_n,
            secret_key: args.print_secret.then_some(stored.as_str()),
        };
        output::json(&mut out, &report)?;
    } else {
        writeln!(out, "public key: {public}")?;
        if let Some(path) = &args.out {
            writeln!(
                out,
                "key file:   {} ({})",
                path.display(),
                protection(log_n)
            )?;
        }
        if args.print_secret {
            writeln!(out, "secret key: {}", *stored)?;
        }
        out.flush()?;
    }
    Ok(Status::Success)
}

fn protection(log_n: Option<u8>) -> String {
    match log_n {
        Some(n) => format!("encrypted, scrypt log_n {n}"),
        None => "not encrypted".to_owned(),
    }
}

#[derive(Serialize)]
struct ShowReport<'a> {
    file: &'a Path,
    encrypted: bool,
    log_n: Option<u8>,
    public_key: String,
    server_public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<&'a str>,
}

fn show(args: ShowArgs) -> anyhow::Result<Status> {
    let key = load(&args.file)?;
    let public = key.secret.public();
    let secret = Zeroizing::new(key.secret.to_printable());
    let mut out = output::stdout();
    if args.output.json {
        let report = ShowReport {
            file: &args.file,
            encrypted: key.log_n.is_some(),
            log_n: key.log_n,
            public_key: public.to_printable(),
            server_public_key: public.to_server_printable(),
            secret_key: args.print_secret.then_some(secret.as_str()),
        };
        output::json(&mut out, &report)?;
    } else {
        writeln!(out, "file:              {}", args.file.display())?;
        writeln!(out, "protection:        {}", protection(key.log_n))?;
        writeln!(out, "public key:        {public}")?;
        writeln!(out, "server public key: {}", public.to_server_printable())?;
        if args.print_secret {
            writeln!(out, "secret key:        {}", *secret)?;
        }
        out.flush()?;
    }
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn protection_is_described() {
        assert_eq!(protection(None), "not encrypted");
        assert_eq!(protection(Some(18)), "encrypted, scrypt log_n 18");
    }
}
