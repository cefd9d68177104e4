//! Bootstraps (`bootstrap.md`): which URLs a server is at ([`ServerBootstrap`])
//! and which servers a user uses ([`UserBootstrap`]), as published in the
//! Mainline DHT, plus the BEP 44 signing that protects them there.
//!
//! A bootstrap is UTF-8 text of at most [`MAX_BOOTSTRAP_LEN`] bytes, lines
//! separated by a single LF, with no trailing whitespace on any line and no
//! empty line (so no LF at the end either).
//!
//! A **server bootstrap** is the line `S`, then one [`Url`] per line, most
//! preferred first. It lists at least one URL and no URL twice (compared
//! after normalisation, so `mosaic://h` and `mosaic://h:1320` are the same).
//! The spec lets a server list as many URLs as fit in 983 bytes, so no count
//! limit applies. URLs are written in their normalised form.
//!
//! A **user bootstrap** is the line `U`, then at most
//! [`MAX_BOOTSTRAP_ENTRIES`] lines `<usage> <server key>`, most preferred
//! first, separated by one space. The usage character is `0x30 | bits`, the
//! bits being outbox (1), inbox (2) and encryption (4): `1` to `7`; `0`
//! (no usage) and every other character are refused. Server keys are written
//! in the server form `mosrv0...` (SPEC-NOTES section 1). For compatibility
//! with bootstraps already published in the user-key form, `mopub0...` keys
//! are accepted when parsing (`bootstrap.md` writes its own example that
//! way); the bytes of the key are the same. A server may be listed only
//! once, its usages combined in one character. A user bootstrap need not
//! list an outbox and an inbox to be read: the spec's minimums are the
//! user's duty, and a partial list is still useful to a reader.
//!
//! Bootstraps are stored as BEP 44 mutable items signed by the owner's
//! master key with the salt [`SERVER_BOOTSTRAP_SALT`] or
//! [`USER_BOOTSTRAP_SALT`]. [`bep44_signable`], [`bep44_sign`] and
//! [`bep44_verify`] let a client check a DHT answer relayed by a server
//! itself (SPEC-NOTES D-9).
//!
//! ```
//! use mosaic_core::{SecretKey, ServerUsage, UserBootstrap, UserBootstrapEntry};
//! use mosaic_core::bootstrap::{USER_BOOTSTRAP_SALT, bep44_sign, bep44_verify};
//!
//! # fn main() -> Result<(), mosaic_core::Error> {
//! let server = SecretKey::from_bytes(&[1; 32]).public();
//! let user = SecretKey::from_bytes(&[2; 32]);
//! let bootstrap = UserBootstrap::new(vec![UserBootstrapEntry {
//!     usage: ServerUsage::OUTBOX.union(ServerUsage::INBOX),
//!     server,
//! }])?;
//! let text = bootstrap.to_text();
//! assert!(text.starts_with("U\n3 mosrv0"));
//!
//! let signature = bep44_sign(&user, USER_BOOTSTRAP_SALT, 1, text.as_bytes());
//! bep44_verify(&user.public(), USER_BOOTSTRAP_SALT, 1, text.as_bytes(), &signature)?;
//! let read = UserBootstrap::from_bytes(text.as_bytes())?;
//! assert_eq!(read.outboxes().collect::<Vec<_>>(), vec![server]);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer;
use zeroize::Zeroizing;

use crate::crypto::SignatureError;
use crate::keys::{KeyError, PublicKey, SecretKey};
use crate::url::{Url, UrlError};

/// BEP 44 salt of user bootstraps.
pub const USER_BOOTSTRAP_SALT: &[u8] = b"mub25";
/// BEP 44 salt of server bootstraps.
pub const SERVER_BOOTSTRAP_SALT: &[u8] = b"msb24";
/// Longest bootstrap text, in bytes: what a 1000-byte DHT item leaves after
/// the bencoding and the salt.
pub const MAX_BOOTSTRAP_LEN: usize = 983;
/// Most entries in a user bootstrap (16 lines of 61 bytes fit in 983).
pub const MAX_BOOTSTRAP_ENTRIES: usize = 16;

/// Header line of a server bootstrap.
const SERVER_HEADER: &str = "S";
/// Header line of a user bootstrap.
const USER_HEADER: &str = "U";

/// Why a bootstrap was refused. Lines are numbered from 1, the header being
/// line 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The text is longer than 983 bytes and cannot be stored in the DHT.
    /// List fewer entries (or shorter URLs).
    #[error("a bootstrap is at most 983 bytes, this one is {len}")]
    TooLong {
        /// The length in bytes.
        len: usize,
    },
    /// The bytes are not UTF-8; the DHT value is not a bootstrap.
    #[error("a bootstrap is UTF-8 text; invalid bytes at offset {valid_up_to}")]
    NotUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A line ends with whitespace (a space, a tab, a CR), or the text ends
    /// with a line feed. The publisher's software is at fault.
    #[error("line {line} ends with whitespace")]
    TrailingWhitespace {
        /// The line.
        line: usize,
    },
    /// A line is empty.
    #[error("line {line} is empty")]
    EmptyLine {
        /// The line.
        line: usize,
    },
    /// The first line is not the header this kind of bootstrap starts with
    /// (`S` or `U`); the text may be the other kind, fetched with the wrong
    /// salt.
    #[error("the first line must be {expected:?}")]
    BadHeader {
        /// The header required.
        expected: char,
    },
    /// There is no entry after the header; a bootstrap lists at least one.
    #[error("the bootstrap lists nothing")]
    Empty,
    /// A usage character is not `1` to `7`, or an entry given to
    /// [`UserBootstrap::new`] has no usage.
    #[error("line {line}: the server usage must be a character from 1 to 7")]
    BadUsage {
        /// The line.
        line: usize,
    },
    /// A user bootstrap line is not `<usage> <key>` with a single space.
    #[error("line {line} is not a usage character, a space and a server key")]
    MalformedLine {
        /// The line.
        line: usize,
    },
    /// A server key is malformed or not a valid key.
    #[error("line {line}: {source}")]
    BadKey {
        /// The line.
        line: usize,
        /// What is wrong with the key.
        source: KeyError,
    },
    /// A URL is not a valid Mosaic URL.
    #[error("line {line}: {source}")]
    BadUrl {
        /// The line.
        line: usize,
        /// What is wrong with the URL.
        source: UrlError,
    },
    /// A user bootstrap has more than 16 entries. Drop the least preferred.
    #[error("a user bootstrap lists at most 16 servers, found {count}")]
    TooManyEntries {
        /// The number of entries.
        count: usize,
    },
    /// A server or URL appears a second time. Combine a server's usages in
    /// one character instead.
    #[error("line {line} repeats an earlier entry")]
    Duplicate {
        /// The line of the repetition.
        line: usize,
    },
}

/// A server's list of URLs, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerBootstrap {
    urls: Vec<Url>,
}

impl ServerBootstrap {
    /// Checks and wraps a list of URLs: at least one, no repetition, and
    /// text of at most 983 bytes.
    pub fn new(urls: Vec<Url>) -> Result<ServerBootstrap, BootstrapError> {
        if urls.is_empty() {
            return Err(BootstrapError::Empty);
        }
        if let Some(line) = first_duplicate(&urls) {
            return Err(BootstrapError::Duplicate { line });
        }
        let bootstrap = ServerBootstrap { urls };
        let len = bootstrap.to_text().len();
        if len > MAX_BOOTSTRAP_LEN {
            return Err(BootstrapError::TooLong { len });
        }
        Ok(bootstrap)
    }

    /// The URLs, most preferred first.
    pub fn urls(&self) -> &[Url] {
        &self.urls
    }

    /// The bootstrap text, as stored in the DHT.
    pub fn to_text(&self) -> String {
        let mut text = String::from(SERVER_HEADER);
        for url in &self.urls {
            text.push('\n');
            text.push_str(&url.to_string());
        }
        text
    }

    /// Parses bootstrap text. URLs are normalised, so
    /// [`to_text`](Self::to_text) may differ from the input.
    pub fn parse(text: &str) -> Result<ServerBootstrap, BootstrapError> {
        let lines = split_lines(text, SERVER_HEADER)?;
        let mut urls = Vec::with_capacity(lines.len());
        for (line, content) in lines {
            let url =
                Url::parse(content).map_err(|source| BootstrapError::BadUrl { line, source })?;
            if urls.contains(&url) {
                return Err(BootstrapError::Duplicate { line });
            }
            urls.push(url);
        }
        Ok(ServerBootstrap { urls })
    }

    /// Parses a DHT value, which may not be UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Result<ServerBootstrap, BootstrapError> {
        ServerBootstrap::parse(to_str(bytes)?)
    }
}

impl fmt::Display for ServerBootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for ServerBootstrap {
    type Err = BootstrapError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServerBootstrap::parse(s)
    }
}

/// How a user uses a server: a set of outbox, inbox and encryption.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServerUsage(u8);

impl ServerUsage {
    /// No usage. Not allowed in a bootstrap entry.
    pub const NONE: ServerUsage = ServerUsage(0);
    /// The user publishes here (bit 0).
    pub const OUTBOX: ServerUsage = ServerUsage(1);
    /// The user receives records that mention them here (bit 1).
    pub const INBOX: ServerUsage = ServerUsage(2);
    /// The user receives encrypted messages here (bit 2).
    pub const ENCRYPTION: ServerUsage = ServerUsage(4);
    /// Every usage.
    pub const ALL: ServerUsage = ServerUsage(7);

    /// The usage with these bits; `None` if a bit above 2 is set.
    pub const fn from_bits(bits: u8) -> Option<ServerUsage> {
        if bits & !Self::ALL.0 == 0 {
            Some(ServerUsage(bits))
        } else {
            None
        }
    }

    /// The bits: outbox 1, inbox 2, encryption 4.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every usage in `other` is in `self`.
    pub const fn contains(self, other: ServerUsage) -> bool {
        self.0 & other.0 == other.0
    }

    /// The usages of both.
    #[must_use]
    pub const fn union(self, other: ServerUsage) -> ServerUsage {
        ServerUsage(self.0 | other.0)
    }

    /// Whether there is no usage.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bootstrap character, `'0'` to `'7'`.
    pub const fn to_char(self) -> char {
        (0x30 | self.0) as char
    }

    /// The usage a bootstrap character stands for: `'1'` to `'7'`.
    pub const fn from_char(c: char) -> Option<ServerUsage> {
        match c {
            '1'..='7' => Some(ServerUsage(c as u8 - 0x30)),
            _ => None,
        }
    }
}

impl std::ops::BitOr for ServerUsage {
    type Output = ServerUsage;
    fn bitor(self, rhs: ServerUsage) -> ServerUsage {
        self.union(rhs)
    }
}

impl fmt::Debug for ServerUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (ServerUsage::OUTBOX, "OUTBOX"),
            (ServerUsage::INBOX, "INBOX"),
            (ServerUsage::ENCRYPTION, "ENCRYPTION"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(u, _)| self.contains(*u))
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("ServerUsage(NONE)")
        } else {
            write!(f, "ServerUsage({})", set.join(" | "))
        }
    }
}

/// One server of a user bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserBootstrapEntry {
    /// How the user uses the server (never empty in a [`UserBootstrap`]).
    pub usage: ServerUsage,
    /// The server's public key.
    pub server: PublicKey,
}

/// The servers a user uses, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserBootstrap {
    entries: Vec<UserBootstrapEntry>,
}

impl UserBootstrap {
    /// Checks and wraps a list of entries: 1 to 16, each with a usage, no
    /// server twice. (16 entries always fit in 983 bytes.)
    pub fn new(entries: Vec<UserBootstrapEntry>) -> Result<UserBootstrap, BootstrapError> {
        if entries.len() > MAX_BOOTSTRAP_ENTRIES {
            return Err(BootstrapError::TooManyEntries {
                count: entries.len(),
            });
        }
        if entries.is_empty() {
            return Err(BootstrapError::Empty);
        }
        if let Some(i) = entries.iter().position(|e| e.usage.is_empty()) {
            return Err(BootstrapError::BadUsage { line: i + 2 });
        }
        let servers: Vec<PublicKey> = entries.iter().map(|e| e.server).collect();
        if let Some(line) = first_duplicate(&servers) {
            return Err(BootstrapError::Duplicate { line });
        }
        Ok(UserBootstrap { entries })
    }

    /// The entries, most preferred first.
    pub fn entries(&self) -> &[UserBootstrapEntry] {
        &self.entries
    }

    /// The servers whose usage includes every usage in `usage`, most
    /// preferred first. A server listed as `3` (outbox and inbox) is among
    /// the outboxes and among the inboxes.
    pub fn servers_with(&self, usage: ServerUsage) -> impl Iterator<Item = PublicKey> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.usage.contains(usage))
            .map(|e| e.server)
    }

    /// The outbox servers, most preferred first.
    pub fn outboxes(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.servers_with(ServerUsage::OUTBOX)
    }

    /// The inbox servers, most preferred first.
    pub fn inboxes(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.servers_with(ServerUsage::INBOX)
    }

    /// The encryption servers, most preferred first.
    pub fn encryption_servers(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.servers_with(ServerUsage::ENCRYPTION)
    }

    /// The bootstrap text, as stored in the DHT, with `mosrv0` keys.
    pub fn to_text(&self) -> String {
        let mut text = String::from(USER_HEADER);
        for entry in &self.entries {
            text.push('\n');
            text.push(entry.usage.to_char());
            text.push(' ');
            text.push_str(&entry.server.to_server_printable());
        }
        text
    }

    /// Parses bootstrap text. Keys may be `mosrv0` or `mopub0`.
    pub fn parse(text: &str) -> Result<UserBootstrap, BootstrapError> {
        let lines = split_lines(text, USER_HEADER)?;
        if lines.len() > MAX_BOOTSTRAP_ENTRIES {
            return Err(BootstrapError::TooManyEntries { count: lines.len() });
        }
        let mut entries: Vec<UserBootstrapEntry> = Vec::with_capacity(lines.len());
        for (line, content) in lines {
            let (usage, key) = content
                .split_once(' ')
                .ok_or(BootstrapError::MalformedLine { line })?;
            let mut chars = usage.chars();
            let usage = match (chars.next(), chars.next()) {
                (Some(c), None) => ServerUsage::from_char(c),
                _ => None,
            }
            .ok_or(BootstrapError::BadUsage { line })?;
            let server = PublicKey::from_any_printable(key)
                .map_err(|source| BootstrapError::BadKey { line, source })?;
            if entries.iter().any(|e| e.server == server) {
                return Err(BootstrapError::Duplicate { line });
            }
            entries.push(UserBootstrapEntry { usage, server });
        }
        Ok(UserBootstrap { entries })
    }

    /// Parses a DHT value, which may not be UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Result<UserBootstrap, BootstrapError> {
        UserBootstrap::parse(to_str(bytes)?)
    }
}

impl fmt::Display for UserBootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for UserBootstrap {
    type Err = BootstrapError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserBootstrap::parse(s)
    }
}

/// Checks the length, then UTF-8.
fn to_str(bytes: &[u8]) -> Result<&str, BootstrapError> {
    if bytes.len() > MAX_BOOTSTRAP_LEN {
        return Err(BootstrapError::TooLong { len: bytes.len() });
    }
    std::str::from_utf8(bytes).map_err(|e| BootstrapError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// Checks the length, the whitespace rules and the header; returns the
/// entry lines with their line numbers (at least one).
fn split_lines<'a>(text: &'a str, header: &str) -> Result<Vec<(usize, &'a str)>, BootstrapError> {
    if text.len() > MAX_BOOTSTRAP_LEN {
        return Err(BootstrapError::TooLong { len: text.len() });
    }
    if let Some(stripped) = text.strip_suffix('\n') {
        // The final LF belongs to the last line: whitespace at its end.
        return Err(BootstrapError::TrailingWhitespace {
            line: stripped.split('\n').count(),
        });
    }
    let mut lines = Vec::new();
    for (i, content) in text.split('\n').enumerate() {
        let line = i + 1;
        if content.is_empty() {
            return Err(BootstrapError::EmptyLine { line });
        }
        if content.ends_with(char::is_whitespace) {
            return Err(BootstrapError::TrailingWhitespace { line });
        }
        if line == 1 {
            if content != header {
                return Err(BootstrapError::BadHeader {
                    expected: header.chars().next().unwrap_or('?'),
                });
            }
        } else {
            lines.push((line, content));
        }
    }
    if lines.is_empty() {
        return Err(BootstrapError::Empty);
    }
    Ok(lines)
}

/// The line (numbered from 1 with the header as line 1) of the first entry
/// equal to an earlier one.
fn first_duplicate<T: PartialEq>(items: &[T]) -> Option<usize> {
    (1..items.len())
        .find(|&i| items[..i].contains(&items[i]))
        .map(|i| i + 2)
}

/// The bytes a BEP 44 mutable item's signature covers: the bencoded `salt`
/// (left out when empty), `seq` and `v` entries, without the dictionary's
/// `d`/`e`: `4:salt<len>:<salt>3:seqi<seq>e1:v<len>:<value>`.
pub fn bep44_signable(salt: &[u8], seq: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(salt.len() + value.len() + 40);
    if !salt.is_empty() {
        out.extend_from_slice(b"4:salt");
        out.extend_from_slice(salt.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(salt);
    }
    out.extend_from_slice(b"3:seqi");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b"e1:v");
    out.extend_from_slice(value.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(value);
    out
}

/// Signs a BEP 44 mutable item: plain RFC 8032 ed25519 over
/// [`bep44_signable`]. Deterministic.
pub fn bep44_sign(key: &SecretKey, salt: &[u8], seq: i64, value: &[u8]) -> [u8; 64] {
    let seed = Zeroizing::new(key.to_bytes());
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    signing.sign(&bep44_signable(salt, seq, value)).to_bytes()
}

/// Verifies a BEP 44 mutable item's signature: plain RFC 8032 ed25519 over
/// [`bep44_signable`], strict (`s` below the group order, no small-order
/// `R`).
pub fn bep44_verify(
    key: &PublicKey,
    salt: &[u8],
    seq: i64,
    value: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes())
        .map_err(|_| SignatureError::InvalidPublicKey)?;
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    verifying
        .verify_strict(&bep44_signable(salt, seq, value), &signature)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        SecretKey::from_bytes(&[n; 32]).public()
    }

    fn entry(bits: u8, n: u8) -> UserBootstrapEntry {
        UserBootstrapEntry {
            usage: ServerUsage::from_bits(bits).unwrap(),
            server: key(n),
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn server_bootstrap_round_trip() {
        let text = "S\nmosaicwss://example.com/\nmosaictcp://203.0.113.1/\nmosaic://203.0.113.2:5198/\nmosaic://[2001:db8::2]/";
        let b = ServerBootstrap::parse(text).unwrap();
        assert_eq!(b.urls().len(), 4);
        assert_eq!(b.urls()[2], url("mosaic://203.0.113.2:5198"));
        assert_eq!(b.to_text(), text);
        assert_eq!(b.to_string(), text);
        assert_eq!(text.parse::<ServerBootstrap>().unwrap(), b);
        assert_eq!(ServerBootstrap::from_bytes(text.as_bytes()).unwrap(), b);
        assert_eq!(ServerBootstrap::new(b.urls().to_vec()).unwrap(), b);
    }

    #[test]
    fn server_urls_are_normalised() {
        let b = ServerBootstrap::parse("S\nMOSAIC://Example.com:1320\nmosaicwss://u@x.onion?q")
            .unwrap();
        assert_eq!(
            b.to_text(),
            "S\nmosaic://example.com/\nmosaicwss://x.onion/"
        );
    }

    #[test]
    fn server_bootstrap_errors() {
        assert_eq!(ServerBootstrap::parse("S"), Err(BootstrapError::Empty));
        assert_eq!(ServerBootstrap::new(vec![]), Err(BootstrapError::Empty));
        assert_eq!(
            ServerBootstrap::parse("U\nmosaic://a"),
            Err(BootstrapError::BadHeader { expected: 'S' })
        );
        assert_eq!(
            ServerBootstrap::parse("S \nmosaic://a"),
            Err(BootstrapError::TrailingWhitespace { line: 1 })
        );
        assert_eq!(
            ServerBootstrap::parse("S\nmosaic://a\n"),
            Err(BootstrapError::TrailingWhitespace { line: 2 })
        );
        assert_eq!(
            ServerBootstrap::parse("S\nmosaic://a\r\nmosaic://b"),
            Err(BootstrapError::TrailingWhitespace { line: 2 })
        );
        assert_eq!(
            ServerBootstrap::parse("S\n\nmosaic://a"),
            Err(BootstrapError::EmptyLine { line: 2 })
        );
        assert_eq!(
            ServerBootstrap::parse("S\nwss://example.com"),
            Err(BootstrapError::BadUrl {
                line: 2,
                source: UrlError::UnknownScheme {
                    found: "wss".into()
                }
            })
        );
        assert_eq!(
            ServerBootstrap::parse("S\nmosaic://a\n mosaic://b"),
            Err(BootstrapError::BadUrl {
                line: 3,
                source: UrlError::InvalidCharacter {
                    index: 0,
                    character: ' '
                }
            })
        );
        assert_eq!(
            ServerBootstrap::parse("S\nmosaic://a\nmosaic://b\nmosaic://a:1320/"),
            Err(BootstrapError::Duplicate { line: 4 })
        );
        assert_eq!(
            ServerBootstrap::new(vec![url("mosaic://a"), url("mosaic://a/")]),
            Err(BootstrapError::Duplicate { line: 3 })
        );
        assert_eq!(
            ServerBootstrap::from_bytes(b"S\nmosaic://\xff"),
            Err(BootstrapError::NotUtf8 { valid_up_to: 11 })
        );
    }

    /// Distinct URLs whose server bootstrap text (as written) is `len` bytes.
    fn urls_with_text_len(len: usize) -> Vec<Url> {
        // Each line is "\nmosaic://" + host + "/": 11 bytes plus the host.
        let mut urls = Vec::new();
        let mut used = 1;
        while len - used > 74 {
            urls.push(url(&format!(
                "mosaic://h{:02}{}",
                urls.len(),
                "a".repeat(47)
            )));
            used += 61;
        }
        urls.push(url(&format!("mosaic://z{}", "b".repeat(len - used - 12))));
        urls
    }

    #[test]
    fn server_bootstrap_length_limit() {
        let b = ServerBootstrap::new(urls_with_text_len(983)).unwrap();
        let text = b.to_text();
        assert_eq!(text.len(), 983);
        assert_eq!(ServerBootstrap::parse(&text).unwrap(), b);
        assert_eq!(ServerBootstrap::from_bytes(text.as_bytes()).unwrap(), b);

        let urls = urls_with_text_len(984);
        let text = format!(
            "S\n{}",
            urls.iter()
                .map(Url::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(text.len(), 984);
        let too_long = Err(BootstrapError::TooLong { len: 984 });
        assert_eq!(ServerBootstrap::new(urls), too_long);
        assert_eq!(ServerBootstrap::parse(&text), too_long);
        assert_eq!(ServerBootstrap::from_bytes(text.as_bytes()), too_long);
    }

    #[test]
    fn server_bootstrap_has_no_count_limit() {
        let urls: Vec<Url> = (0..40).map(|i| url(&format!("mosaic://h{i}"))).collect();
        let b = ServerBootstrap::new(urls).unwrap();
        assert_eq!(
            ServerBootstrap::parse(&b.to_text()).unwrap().urls().len(),
            40
        );
    }

    #[test]
    fn server_usage() {
        let both = ServerUsage::OUTBOX | ServerUsage::INBOX;
        assert_eq!(both.bits(), 3);
        assert!(both.contains(ServerUsage::OUTBOX));
        assert!(both.contains(ServerUsage::INBOX));
        assert!(!both.contains(ServerUsage::ENCRYPTION));
        assert!(ServerUsage::ALL.contains(both));
        assert!(ServerUsage::NONE.is_empty());
        assert!(!both.is_empty());
        assert_eq!(both.to_char(), '3');
        assert_eq!(ServerUsage::from_char('7'), Some(ServerUsage::ALL));
        for c in ['0', '8', '9', 'A', ' ', 'é'] {
            assert_eq!(ServerUsage::from_char(c), None, "{c}");
        }
        assert_eq!(ServerUsage::from_bits(8), None);
        assert_eq!(format!("{both:?}"), "ServerUsage(OUTBOX | INBOX)");
        assert_eq!(format!("{:?}", ServerUsage::NONE), "ServerUsage(NONE)");
    }

    #[test]
    fn user_bootstrap_round_trip_and_lookup() {
        let b =
            UserBootstrap::new(vec![entry(3, 1), entry(1, 2), entry(2, 3), entry(6, 4)]).unwrap();
        let text = b.to_text();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "U");
        assert_eq!(lines[1], format!("3 {}", key(1).to_server_printable()));
        assert_eq!(lines[4], format!("6 {}", key(4).to_server_printable()));
        assert_eq!(UserBootstrap::parse(&text).unwrap(), b);
        assert_eq!(text.parse::<UserBootstrap>().unwrap(), b);
        assert_eq!(UserBootstrap::from_bytes(text.as_bytes()).unwrap(), b);
        assert_eq!(b.to_string(), text);
        assert_eq!(b.entries()[3], entry(6, 4));

        assert_eq!(b.outboxes().collect::<Vec<_>>(), vec![key(1), key(2)]);
        assert_eq!(
            b.inboxes().collect::<Vec<_>>(),
            vec![key(1), key(3), key(4)]
        );
        assert_eq!(b.encryption_servers().collect::<Vec<_>>(), vec![key(4)]);
        assert_eq!(
            b.servers_with(ServerUsage::OUTBOX | ServerUsage::INBOX)
                .collect::<Vec<_>>(),
            vec![key(1)]
        );
        assert_eq!(b.servers_with(ServerUsage::NONE).count(), 4);
    }

    #[test]
    fn user_bootstrap_accepts_mopub0_keys() {
        let text = format!("U\n7 {}", key(1).to_printable());
        let b = UserBootstrap::parse(&text).unwrap();
        assert_eq!(b.entries(), &[entry(7, 1)]);
        assert_eq!(
            b.to_text(),
            format!("U\n7 {}", key(1).to_server_printable())
        );
    }

    #[test]
    fn user_bootstrap_errors() {
        let k = key(1).to_server_printable();
        let parse = |s: &str| UserBootstrap::parse(s);
        assert_eq!(parse("U"), Err(BootstrapError::Empty));
        assert_eq!(UserBootstrap::new(vec![]), Err(BootstrapError::Empty));
        assert_eq!(
            parse(&format!("3 {k}")),
            Err(BootstrapError::BadHeader { expected: 'U' })
        );
        assert_eq!(
            parse("S\nmosaic://a"),
            Err(BootstrapError::BadHeader { expected: 'U' })
        );
        for bad in ['0', '8', '9', 'A'] {
            assert_eq!(
                parse(&format!("U\n{bad} {k}")),
                Err(BootstrapError::BadUsage { line: 2 }),
                "{bad}"
            );
        }
        assert_eq!(
            parse(&format!("U\n33 {k}")),
            Err(BootstrapError::BadUsage { line: 2 })
        );
        assert_eq!(
            parse(&format!("U\n {k}")),
            Err(BootstrapError::BadUsage { line: 2 })
        );
        assert_eq!(
            parse(&format!("U\n3\t{k}")),
            Err(BootstrapError::MalformedLine { line: 2 })
        );
        assert_eq!(
            parse("U\n3"),
            Err(BootstrapError::MalformedLine { line: 2 })
        );
        assert!(matches!(
            parse(&format!("U\n3  {k}")),
            Err(BootstrapError::BadKey {
                line: 2,
                source: KeyError::Printable(_)
            })
        ));
        assert!(matches!(
            parse(&format!("U\n3 {}", &k[..50])),
            Err(BootstrapError::BadKey { line: 2, .. })
        ));
        let secret = SecretKey::from_bytes(&[1; 32]).to_printable();
        assert!(matches!(
            parse(&format!("U\n3 {secret}")),
            Err(BootstrapError::BadKey { line: 2, .. })
        ));
        // A small-order point is not a key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = crate::printable::encode(crate::printable::Prefix::ServerPublicKey, &identity);
        assert_eq!(
            parse(&format!("U\n3 {weak}")),
            Err(BootstrapError::BadKey {
                line: 2,
                source: KeyError::SmallOrder
            })
        );
        assert_eq!(
            parse(&format!("U\n3 {k} ")),
            Err(BootstrapError::TrailingWhitespace { line: 2 })
        );
        assert_eq!(
            parse(&format!("U\n3 {k}\n")),
            Err(BootstrapError::TrailingWhitespace { line: 2 })
        );
        assert_eq!(
            parse(&format!("U\n\n3 {k}")),
            Err(BootstrapError::EmptyLine { line: 2 })
        );
        assert_eq!(
            parse(&format!(
                "U\n3 {k}\n1 {}\n4 {k}",
                key(2).to_server_printable()
            )),
            Err(BootstrapError::Duplicate { line: 4 })
        );
        assert_eq!(
            UserBootstrap::new(vec![entry(1, 1), entry(2, 1)]),
            Err(BootstrapError::Duplicate { line: 3 })
        );
        assert_eq!(
            UserBootstrap::new(vec![entry(1, 1), entry(0, 2)]),
            Err(BootstrapError::BadUsage { line: 3 })
        );
        assert_eq!(
            UserBootstrap::from_bytes(b"U\n3 \xc3"),
            Err(BootstrapError::NotUtf8 { valid_up_to: 4 })
        );
    }

    #[test]
    fn user_bootstrap_entry_limit() {
        let sixteen: Vec<UserBootstrapEntry> = (1..=16).map(|n| entry(7, n)).collect();
        let b = UserBootstrap::new(sixteen.clone()).unwrap();
        let text = b.to_text();
        assert_eq!(text.len(), 1 + 16 * 61);
        assert_eq!(UserBootstrap::parse(&text).unwrap(), b);

        let mut seventeen = sixteen;
        seventeen.push(entry(7, 17));
        assert_eq!(
            UserBootstrap::new(seventeen.clone()),
            Err(BootstrapError::TooManyEntries { count: 17 })
        );
        // Seventeen lines cannot fit in 983 bytes: the length refuses them.
        let long = format!("{text}\n7 {}", key(17).to_server_printable());
        assert_eq!(
            UserBootstrap::parse(&long),
            Err(BootstrapError::TooLong { len: 1 + 17 * 61 })
        );
        assert_eq!(
            UserBootstrap::from_bytes(&[b'U'; 984]),
            Err(BootstrapError::TooLong { len: 984 })
        );
    }

    #[test]
    fn bep44_signable_layout() {
        assert_eq!(
            bep44_signable(b"foobar", 4, b"Hello World!"),
            b"4:salt6:foobar3:seqi4e1:v12:Hello World!".to_vec()
        );
        assert_eq!(
            bep44_signable(b"", 1, b"Hello World!"),
            b"3:seqi1e1:v12:Hello World!".to_vec()
        );
        assert_eq!(
            bep44_signable(b"s", -3, b""),
            b"4:salt1:s3:seqi-3e1:v0:".to_vec()
        );
    }

    #[test]
    fn bep44_sign_and_verify() {
        let sk = SecretKey::from_bytes(&[5; 32]);
        let pk = sk.public();
        let sig = bep44_sign(&sk, USER_BOOTSTRAP_SALT, 7, b"U\n7 x");
        assert_eq!(sig, bep44_sign(&sk, USER_BOOTSTRAP_SALT, 7, b"U\n7 x"));
        bep44_verify(&pk, USER_BOOTSTRAP_SALT, 7, b"U\n7 x", &sig).unwrap();
        let mismatch = Err(SignatureError::Mismatch);
        assert_eq!(
            bep44_verify(&pk, SERVER_BOOTSTRAP_SALT, 7, b"U\n7 x", &sig),
            mismatch
        );
        assert_eq!(
            bep44_verify(&pk, USER_BOOTSTRAP_SALT, 8, b"U\n7 x", &sig),
            mismatch
        );
        assert_eq!(
            bep44_verify(&pk, USER_BOOTSTRAP_SALT, 7, b"U\n7 y", &sig),
            mismatch
        );
        assert_eq!(
            bep44_verify(&key(6), USER_BOOTSTRAP_SALT, 7, b"U\n7 x", &sig),
            mismatch
        );
        // s pushed above the group order is refused.
        let mut high = sig;
        high[63] |= 0xf0;
        assert_eq!(
            bep44_verify(&pk, USER_BOOTSTRAP_SALT, 7, b"U\n7 x", &high),
            mismatch
        );
        // Not the Mosaic record construction: a record signature of the
        // same bytes does not pass.
        let record_sig = sk.sign(
            &bep44_signable(USER_BOOTSTRAP_SALT, 7, b"U\n7 x"),
            crate::RECORD_CONTEXT,
        );
        assert_eq!(
            bep44_verify(&pk, USER_BOOTSTRAP_SALT, 7, b"U\n7 x", &record_sig),
            mismatch
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_err_and_round_trip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1100)) {
            if let Ok(b) = UserBootstrap::from_bytes(&bytes) {
                proptest::prop_assert_eq!(UserBootstrap::parse(&b.to_text()), Ok(b));
            }
            if let Ok(b) = ServerBootstrap::from_bytes(&bytes) {
                proptest::prop_assert_eq!(ServerBootstrap::parse(&b.to_text()), Ok(b));
            }
        }

        #[test]
        fn bootstrap_like_text_round_trips(
            lines in proptest::collection::vec("[0-9A ][ \t]?(mosaic://[a-z.]{1,8}|mosrv0[a-z0-9]{0,52})", 0..4),
            header in "[SU ]",
        ) {
            let text = format!("{header}\n{}", lines.join("\n"));
            if let Ok(b) = UserBootstrap::parse(&text) {
                proptest::prop_assert_eq!(UserBootstrap::parse(&b.to_text()), Ok(b));
            }
            let urls: Vec<&str> = lines.iter().filter_map(|l| l.get(1..)).collect();
            let text = format!("S\n{}", urls.join("\n"));
            if let Ok(b) = ServerBootstrap::parse(&text) {
                proptest::prop_assert_eq!(ServerBootstrap::parse(&b.to_text()), Ok(b));
            }
        }
    }
}
