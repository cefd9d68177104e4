//! `mosaic record inspect`: every field of a record, valid or not.
//!
//! The header fields are read straight from the bytes, so a record whose
//! layout is broken still shows them; tags, payload and signature need a
//! sound layout. The result is one [`Inspection`], printed as text or JSON.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use mosaic_core::printable::{self, Prefix};
use mosaic_core::{HEADER_LEN, Kind, Record, RecordError, RecordFlags, Timestamp};
use serde::Serialize;
use serde_json::Value;

use super::describe;
use crate::Status;
use crate::input::{self, RecordEncoding};
use crate::output::{self, OutputArgs};

pub const AFTER_HELP: &str = "\
The input may be the binary record, its hex, or its printable form (morecord0...);
which one is detected. Exit status 1 means the record is invalid: the fields that
could be read are still shown, with the validation step that failed.

With --json, one object:
  file, encoding (\"binary\"|\"hex\"|\"printable\"), length (bytes, or null),
  valid (bool), error (null or {step, step_number, message}),
  id, address (moref0...), kind ({value, name, application_id, application_kind,
  duplicate_handling, read_access, printable, reserved_flags}), author,
  signing_key (mopub0...), signed_by (\"author\"|\"subkey\"), timestamp ({ns,
  rfc3339}), nonce (hex), flags ({value, zstd, from_author, signature_scheme,
  reserved_bits}),
  tags ([{type, name, value (hex), meaning, error}]), payload ({length, zstd,
  decompressed_length, text, hex, error}), signature (hex).
Fields that cannot be read from a damaged record are null. The payload has
\"text\" for printable kinds and \"hex\" (in full; of the decompressed bytes when
they decompress) otherwise.";

/// How many payload bytes the text output shows in hex.
const HEX_SHOWN: usize = 256;

/// Arguments of `record inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The record file (`-` reads standard input).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// Which validation step failed, and why.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// The step, such as `step 7 (hash)`, or `input` when the text could not
    /// be decoded into bytes.
    pub step: String,
    /// The step's number in `record.md`, where it has one.
    pub step_number: Option<u8>,
    /// The error.
    pub message: String,
}

impl Failure {
    /// From a record validation error.
    pub fn from_record_error(error: &RecordError) -> Failure {
        Failure {
            step: error.step().to_string(),
            step_number: error.step().number(),
            message: error.to_string(),
        }
    }

    /// From an input that could not be decoded.
    pub fn input(error: &anyhow::Error) -> Failure {
        Failure {
            step: "input".to_owned(),
            step_number: None,
            message: format!("{error:#}"),
        }
    }
}

#[derive(Serialize)]
struct TimestampInfo {
    ns: u64,
    rfc3339: Option<String>,
}

#[derive(Serialize)]
struct FlagsInfo {
    value: String,
    zstd: bool,
    from_author: bool,
    signature_scheme: u8,
    reserved_bits: bool,
}

#[derive(Serialize)]
struct TagInfo {
    #[serde(rename = "type")]
    tag_type: u16,
    name: Option<&'static str>,
    value: String,
    meaning: Value,
    #[serde(skip)]
    words: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct PayloadInfo {
    length: usize,
    zstd: bool,
    decompressed_length: Option<usize>,
    text: Option<String>,
    hex: Option<String>,
    error: Option<String>,
}

/// Everything `inspect` found.
#[derive(Serialize)]
struct Inspection {
    file: String,
    encoding: RecordEncoding,
    length: Option<usize>,
    valid: bool,
    error: Option<Failure>,
    id: Option<String>,
    address: Option<String>,
    kind: Option<describe::KindInfo>,
    author: Option<String>,
    signing_key: Option<String>,
    signed_by: Option<&'static str>,
    timestamp: Option<TimestampInfo>,
    nonce: Option<String>,
    flags: Option<FlagsInfo>,
    tags: Option<Vec<TagInfo>>,
    payload: Option<PayloadInfo>,
    signature: Option<String>,
    #[serde(skip)]
    kind_value: Option<Kind>,
}

/// The fixed header, read without any check (layout of `record.md`).
struct RawHeader {
    id: [u8; 48],
    address: [u8; 48],
    nonce: [u8; 8],
    kind: Kind,
    author: [u8; 32],
    signing_key: [u8; 32],
    timestamp: u64,
    flags: u64,
}

impl RawHeader {
    fn read(bytes: &[u8]) -> Option<RawHeader> {
        let header = bytes.get(..HEADER_LEN)?;
        let at = |from: usize, to: usize| header.get(from..to);
        Some(RawHeader {
            id: at(0, 48)?.try_into().ok()?,
            address: at(48, 96)?.try_into().ok()?,
            nonce: at(48, 56)?.try_into().ok()?,
            kind: Kind::from_be_bytes(at(56, 64)?.try_into().ok()?),
            author: at(64, 96)?.try_into().ok()?,
            signing_key: at(96, 128)?.try_into().ok()?,
            timestamp: u64::from_be_bytes(at(128, 136)?.try_into().ok()?),
            flags: u64::from_le_bytes(at(136, 144)?.try_into().ok()?),
        })
    }
}

/// Inspects decoded bytes.
fn inspect_bytes(file: String, encoding: RecordEncoding, bytes: &[u8]) -> Inspection {
    let verdict = Record::from_bytes(bytes).map(|_| ());
    let mut inspection = Inspection {
        file,
        encoding,
        length: Some(bytes.len()),
        valid: verdict.is_ok(),
        error: verdict.as_ref().err().map(Failure::from_record_error),
        id: None,
        address: None,
        kind: None,
        author: None,
        signing_key: None,
        signed_by: None,
        timestamp: None,
        nonce: None,
        flags: None,
        tags: None,
        payload: None,
        signature: None,
        kind_value: None,
    };
    if let Some(header) = RawHeader::read(bytes) {
        inspection.id = Some(printable::encode(Prefix::Reference, &header.id));
        inspection.address = Some(printable::encode(Prefix::Reference, &header.address));
        inspection.kind = Some(describe::kind_info(header.kind));
        inspection.kind_value = Some(header.kind);
        inspection.author = Some(printable::encode(Prefix::UserPublicKey, &header.author));
        inspection.signing_key = Some(printable::encode(
            Prefix::UserPublicKey,
            &header.signing_key,
        ));
        inspection.signed_by = Some(if header.author == header.signing_key {
            "author"
        } else {
            "subkey"
        });
        inspection.timestamp = Some(TimestampInfo {
            ns: header.timestamp,
            rfc3339: Timestamp::from_nanos(header.timestamp)
                .ok()
                .map(|t| t.to_string()),
        });
        inspection.nonce = Some(hex::encode(header.nonce));
        let flags = RecordFlags::from_u64(header.flags);
        inspection.flags = Some(FlagsInfo {
            value: format!("{:#018x}", flags.as_u64()),
            zstd: flags.is_zstd(),
            from_author: flags.is_from_author(),
            signature_scheme: flags.signature_scheme(),
            reserved_bits: flags.has_reserved_bits(),
        });
    }
    // The layout checks pass when only keys, hash, signature or content fail:
    // then the sections can be read too.
    if let Ok(record) = Record::danger_from_bytes_unverified(bytes) {
        inspection.tags = Some(tags(record));
        inspection.payload = Some(payload(record));
        inspection.signature = Some(hex::encode(record.signature()));
    }
    inspection
}

fn tags(record: &Record) -> Vec<TagInfo> {
    record
        .tags()
        .iter()
        .map(|tag| {
            let tag_type = tag.tag_type();
            let (words, meaning, error) = match tag.parse() {
                Ok(value) => {
                    let (words, meaning) = describe::tag_meaning(&value);
                    (words, meaning, None)
                }
                Err(e) => (
                    format!("{} bytes: {}", tag.value().len(), hex::encode(tag.value())),
                    Value::Null,
                    Some(e.to_string()),
                ),
            };
            TagInfo {
                tag_type: tag_type.0,
                name: tag_type.name(),
                value: hex::encode(tag.value()),
                meaning,
                words,
                error,
            }
        })
        .collect()
}

fn payload(record: &Record) -> PayloadInfo {
    let stored = record.payload();
    let zstd = record.flags().is_zstd();
    let (content, mut error) = match record.payload_decompressed() {
        Ok(content) => (Some(content), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut info = PayloadInfo {
        length: stored.len(),
        zstd,
        decompressed_length: if zstd {
            content.as_ref().map(|c| c.len())
        } else {
            None
        },
        text: None,
        hex: None,
        error: None,
    };
    let shown: &[u8] = content.as_deref().unwrap_or(stored);
    if record.kind().is_printable() && content.is_some() {
        match std::str::from_utf8(shown) {
            Ok(text) => info.text = Some(text.to_owned()),
            Err(_) => error = Some(RecordError::PayloadNotUtf8.to_string()),
        }
    }
    if info.text.is_none() {
        info.hex = Some(hex::encode(shown));
    }
    info.error = error;
    info
}

/// Runs `record inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<Status> {
    let raw = input::read_source(&args.file)?;
    let file = args.file.display().to_string();
    let (encoding, decoded) = input::decode_record(&raw);
    let inspection = match decoded {
        Ok(bytes) => inspect_bytes(file, encoding, &bytes),
        Err(error) => Inspection {
            file,
            encoding,
            length: None,
            valid: false,
            error: Some(Failure::input(&error)),
            id: None,
            address: None,
            kind: None,
            author: None,
            signing_key: None,
            signed_by: None,
            timestamp: None,
            nonce: None,
            flags: None,
            tags: None,
            payload: None,
            signature: None,
            kind_value: None,
        },
    };
    let mut out = output::stdout();
    if args.output.json {
        output::json(&mut out, &inspection)?;
    } else {
        print_text(&mut out, &inspection)?;
    }
    Ok(if inspection.valid {
        Status::Success
    } else {
        Status::Invalid
    })
}

fn print_text(out: &mut impl Write, i: &Inspection) -> anyhow::Result<()> {
    match i.length {
        Some(len) => writeln!(
            out,
            "file:         {} ({}, {len} bytes)",
            i.file,
            i.encoding.name()
        )?,
        None => writeln!(out, "file:         {} ({})", i.file, i.encoding.name())?,
    }
    match &i.error {
        None => writeln!(out, "status:       valid")?,
        Some(f) => writeln!(out, "status:       INVALID at {}: {}", f.step, f.message)?,
    }
    if let Some(id) = &i.id {
        writeln!(out, "id:           {id}")?;
    }
    if let Some(address) = &i.address {
        writeln!(out, "address:      {address}")?;
    }
    if let Some(kind) = i.kind_value {
        writeln!(out, "kind:         {}", describe::kind_label(kind))?;
        writeln!(out, "              {}", describe::kind_meaning(kind))?;
    }
    if let Some(author) = &i.author {
        writeln!(out, "author:       {author}")?;
    }
    if let (Some(key), Some(by)) = (&i.signing_key, i.signed_by) {
        let note = match by {
            "author" => "the author's master key",
            _ => "not the author's key: valid only if the author's key schedule lists it",
        };
        writeln!(out, "signing key:  {key} ({note})")?;
    }
    if let Some(t) = &i.timestamp {
        match &t.rfc3339 {
            Some(text) => writeln!(out, "timestamp:    {text} ({} ns)", t.ns)?,
            None => writeln!(out, "timestamp:    {} ns (out of range)", t.ns)?,
        }
    }
    if let Some(nonce) = &i.nonce {
        writeln!(out, "nonce:        {nonce}")?;
    }
    if let Some(f) = &i.flags {
        let mut names = Vec::new();
        if f.zstd {
            names.push("zstd".to_owned());
        }
        if f.from_author {
            names.push("from author".to_owned());
        }
        if f.signature_scheme != 0 {
            names.push(format!("signature scheme {}", f.signature_scheme));
        }
        if f.reserved_bits {
            names.push("RESERVED BITS SET".to_owned());
        }
        if names.is_empty() {
            names.push("none".to_owned());
        }
        writeln!(out, "flags:        {} ({})", f.value, names.join(", "))?;
    }
    if let Some(tags) = &i.tags {
        if tags.is_empty() {
            writeln!(out, "tags:         none")?;
        } else {
            writeln!(out, "tags:         {}", tags.len())?;
        }
        for tag in tags {
            let label = mosaic_core::TagType(tag.tag_type).to_string();
            match &tag.error {
                None => writeln!(out, "  {label}: {}", tag.words)?,
                Some(e) => writeln!(out, "  {label}: MALFORMED ({e}): {}", tag.words)?,
            }
        }
    }
    if let Some(p) = &i.payload {
        print_payload(out, p)?;
    }
    if let Some(signature) = &i.signature {
        writeln!(out, "signature:    {signature}")?;
    }
    out.flush()?;
    Ok(())
}

fn print_payload(out: &mut impl Write, p: &PayloadInfo) -> anyhow::Result<()> {
    let mut about = format!("{} bytes", p.length);
    if p.zstd {
        match p.decompressed_length {
            Some(n) => about.push_str(&format!(", zstd-compressed from {n} bytes")),
            None => about.push_str(", zstd-compressed"),
        }
    }
    if let Some(e) = &p.error {
        about.push_str(&format!("; {e}"));
    }
    match (&p.text, &p.hex) {
        (Some(text), _) => {
            writeln!(out, "payload:      {about}, text:")?;
            for line in text.lines() {
                writeln!(out, "  {line}")?;
            }
        }
        (None, Some(hex)) => {
            let bytes = hex.len() / 2;
            if bytes > HEX_SHOWN {
                writeln!(
                    out,
                    "payload:      {about}, hex (first {HEX_SHOWN} of {bytes} bytes; --json shows all):"
                )?;
            } else {
                writeln!(out, "payload:      {about}, hex:")?;
            }
            let shown = hex.get(..HEX_SHOWN * 2).unwrap_or(hex);
            for line in shown.as_bytes().chunks(64) {
                writeln!(out, "  {}", String::from_utf8_lossy(line))?;
            }
        }
        (None, None) => writeln!(out, "payload:      {about}")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{Nonce, RecordBuilder, SecretKey};

    fn record(payload: &[u8], kind: Kind, zstd: bool) -> Vec<u8> {
        RecordBuilder::new(
            kind,
            Timestamp::from_nanos(1_750_000_000_000_000_000).unwrap(),
        )
        .nonce(Nonce::from_key(b"t"))
        .payload(payload)
        .zstd(zstd)
        .build(&SecretKey::from_bytes(&[5; 32]))
        .unwrap()
        .into_vec()
    }

    #[test]
    fn valid_record_shows_every_field() {
        let bytes = record(b"hello\nworld", Kind::MICROBLOG_ROOT, true);
        let i = inspect_bytes("f".into(), RecordEncoding::Binary, &bytes);
        assert!(i.valid);
        assert!(i.error.is_none());
        let p = i.payload.as_ref().unwrap();
        assert_eq!(p.text.as_deref(), Some("hello\nworld"));
        assert_eq!(p.decompressed_length, Some(11));
        assert_eq!(i.signed_by, Some("author"));
        let mut text = Vec::new();
        print_text(&mut text, &i).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("status:       valid"), "{text}");
        assert!(text.contains("  hello\n  world\n"), "{text}");
        assert!(text.contains("(microblog)"), "{text}");
    }

    #[test]
    fn long_binary_payload_is_truncated_in_text_only() {
        let bytes = record(&[0xab; 300], Kind::PROFILE, false);
        let i = inspect_bytes("f".into(), RecordEncoding::Binary, &bytes);
        assert_eq!(i.payload.as_ref().unwrap().hex.as_ref().unwrap().len(), 600);
        let mut text = Vec::new();
        print_text(&mut text, &i).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("first 256 of 300 bytes"), "{text}");
    }

    #[test]
    fn tampered_record_still_shows_fields() {
        let mut bytes = record(b"hello", Kind::MICROBLOG_ROOT, false);
        let at = HEADER_LEN;
        bytes[at] ^= 1;
        let i = inspect_bytes("f".into(), RecordEncoding::Binary, &bytes);
        assert!(!i.valid);
        let f = i.error.as_ref().unwrap();
        assert_eq!(f.step_number, Some(7));
        assert_eq!(f.step, "step 7 (hash)");
        assert!(i.payload.is_some());
        assert!(i.id.is_some());
    }

    #[test]
    fn broken_layout_shows_the_header_only() {
        let mut bytes = record(b"hello", Kind::MICROBLOG_ROOT, false);
        bytes.push(0);
        let i = inspect_bytes("f".into(), RecordEncoding::Binary, &bytes);
        assert_eq!(i.error.as_ref().unwrap().step_number, Some(2));
        assert!(i.kind.is_some());
        assert!(i.payload.is_none());
        let short = inspect_bytes("f".into(), RecordEncoding::Binary, &bytes[..10]);
        assert_eq!(short.error.as_ref().unwrap().step_number, Some(1));
        assert!(short.id.is_none());
    }
}
