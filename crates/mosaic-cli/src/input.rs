//! Reading what people give the command: files or standard input (`-`), hex,
//! the printable `morecord0` form, and passwords.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use anyhow::{Context, bail};
use mosaic_core::printable::{self, Prefix};
use serde::Serialize;
use zeroize::Zeroizing;

/// The environment variable holding the password of encrypted key files.
pub const PASSWORD_VAR: &str = "MOSAIC_PASSWORD";

/// How a record is written out as bytes or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RecordEncoding {
    /// The raw bytes of the record.
    Binary,
    /// Lower-case hex digits and a newline.
    Hex,
    /// The printable form, `morecord0...`, and a newline.
    Printable,
}

impl RecordEncoding {
    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            RecordEncoding::Binary => "binary",
            RecordEncoding::Hex => "hex",
            RecordEncoding::Printable => "printable",
        }
    }

    /// The record's bytes in this encoding.
    pub fn encode(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            RecordEncoding::Binary => bytes.to_vec(),
            RecordEncoding::Hex => format!("{}\n", hex::encode(bytes)).into_bytes(),
            RecordEncoding::Printable => {
                format!("{}\n", printable::encode(Prefix::Record, bytes)).into_bytes()
            }
        }
    }
}

/// Reads a whole file, or standard input when `path` is `-`.
pub fn read_source(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        Ok(buf)
    } else {
        fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Works out how record input is encoded and decodes it.
///
/// Text that starts with `morecord0` (after white space) is the printable
/// form; text of hex digits and white space only is hex; anything else is
/// taken as the binary record. The encoding is returned even when decoding
/// fails, so that the failure can be reported against it.
pub fn decode_record(raw: &[u8]) -> (RecordEncoding, anyhow::Result<Vec<u8>>) {
    let text = std::str::from_utf8(raw).ok().map(str::trim);
    match text {
        Some(text) if text.starts_with(Prefix::Record.as_str()) => (
            RecordEncoding::Printable,
            printable::decode(Prefix::Record, text).context("not a valid morecord0 string"),
        ),
        Some(text) if Prefix::detect(text).is_some() => {
            let found = Prefix::detect(text).map_or("", Prefix::as_str);
            (
                RecordEncoding::Printable,
                Err(anyhow::anyhow!(
                    "this is a {found} string, not a record; records are binary, hex or morecord0"
                )),
            )
        }
        Some(text)
            if !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace()) =>
        {
            (RecordEncoding::Hex, parse_hex(text))
        }
        _ => (RecordEncoding::Binary, Ok(raw.to_vec())),
    }
}

/// Decodes hex digits, ignoring white space between them.
pub fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&digits).map_err(|e| match e {
        hex::FromHexError::OddLength => {
            anyhow::anyhow!(
                "odd number of hex digits ({}): a byte is two digits",
                digits.len()
            )
        }
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            anyhow::anyhow!("{c:?} at position {index} is not a hex digit")
        }
        other => anyhow::Error::new(other),
    })
}

/// The password for `what`: from `MOSAIC_PASSWORD` when set, else asked on
/// the terminal without echo (twice when `confirm` is set).
pub fn password(what: &str, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if let Some(value) = std::env::var_os(PASSWORD_VAR) {
        let Ok(value) = value.into_string() else {
            bail!("{PASSWORD_VAR} is not valid UTF-8");
        };
        return Ok(Zeroizing::new(value));
    }
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .with_context(|| {
                format!("cannot ask for the password of {what} (no terminal?); set {PASSWORD_VAR}")
            })
    };
    let first = ask(format!("Password for {what}: "))?;
    if confirm {
        let second = ask(format!("Password for {what} (again): "))?;
        if *first != *second {
            bail!("the two passwords differ; run the command again");
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_encodings_are_detected() {
        let bytes = vec![0x80u8, 0, 1, 0xff];
        let (enc, out) = decode_record(&bytes);
        assert_eq!(enc, RecordEncoding::Binary);
        assert_eq!(out.unwrap(), bytes);

        let (enc, out) = decode_record(b"  0080 01ff\n");
        assert_eq!(enc, RecordEncoding::Hex);
        assert_eq!(out.unwrap(), vec![0, 0x80, 1, 0xff]);

        let (enc, out) = decode_record(b"abc\n");
        assert_eq!(enc, RecordEncoding::Hex);
        assert!(out.unwrap_err().to_string().contains("odd number"));

        let text = RecordEncoding::Printable.encode(&bytes);
        let (enc, out) = decode_record(&text);
        assert_eq!(enc, RecordEncoding::Printable);
        assert_eq!(out.unwrap(), bytes);

        let (enc, out) = decode_record(b"morecord0!!");
        assert_eq!(enc, RecordEncoding::Printable);
        assert!(out.is_err());

        let key = printable::encode(Prefix::UserPublicKey, &[1; 32]);
        let (_, out) = decode_record(key.as_bytes());
        assert!(out.unwrap_err().to_string().contains("mopub0"));
    }

    #[test]
    fn encodings_round_trip() {
        let bytes = [1u8, 2, 250];
        for enc in [
            RecordEncoding::Binary,
            RecordEncoding::Hex,
            RecordEncoding::Printable,
        ] {
            let (found, out) = decode_record(&enc.encode(&bytes));
            assert_eq!(found, enc);
            assert_eq!(out.unwrap(), bytes);
        }
    }

    #[test]
    fn hex_errors_are_explained() {
        assert_eq!(parse_hex("0a 0B\n").unwrap(), vec![10, 11]);
        assert!(parse_hex("0g").unwrap_err().to_string().contains("'g'"));
    }
}
