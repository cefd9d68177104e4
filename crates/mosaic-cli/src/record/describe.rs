//! Words for record fields: kinds, flags and tags, explained for people and
//! given as JSON values for scripts; and the parsers for the values people
//! type for them.

use anyhow::{anyhow, bail};
use mosaic_core::{Kind, OwnedTag, PublicKey, Reference, TagType, TagValue, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

/// The core tag types, for looking types up by name.
const CORE_TAG_TYPES: &[TagType] = &[
    TagType::NOTIFY_PUBLIC_KEY,
    TagType::REPLY,
    TagType::ROOT,
    TagType::NOSTR_SISTER,
    TagType::SUBKEY,
    TagType::USER_MENTION,
    TagType::SERVER_MENTION,
    TagType::QUOTE,
    TagType::URL,
    TagType::IMAGE,
    TagType::VIDEO,
];

/// The registry names of kinds, comma-separated.
pub fn kind_names() -> String {
    Kind::NAMED
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names of the core tag types, comma-separated.
pub fn tag_names() -> String {
    CORE_TAG_TYPES
        .iter()
        .filter_map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--kind`: a registry name or hex.
pub fn parse_kind(text: &str) -> anyhow::Result<Kind> {
    let kind: Kind = text.parse().map_err(|e| {
        anyhow!(
            "{e}; give a kind name ({}) or up to 16 hex digits such as 0x000000010001001c",
            kind_names()
        )
    })?;
    if kind.has_reserved_flags() {
        bail!(
            "kind {kind} sets reserved flag bits (5 to 15 of the low 16 bits); \
             records of this kind would be refused"
        );
    }
    Ok(kind)
}

/// `--author-key`: a user public key, `mopub0...`.
pub fn parse_user_key(text: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_printable(text.trim())
        .map_err(|e| anyhow!("{e}; give the author's master public key (mopub0...)"))
}

/// `--timestamp`: nanoseconds or RFC 3339.
pub fn parse_timestamp(text: &str) -> anyhow::Result<Timestamp> {
    text.parse().map_err(|e| {
        anyhow!(
            "{e}; give nanoseconds since 1970 (such as 1732829915000000000) or an \
             RFC 3339 time (such as 2024-11-28T21:38:07Z)"
        )
    })
}

/// `--nonce`: 8 bytes in hex (the first bit is checked later, with a warning).
pub fn parse_nonce(text: &str) -> anyhow::Result<[u8; 8]> {
    let bytes = crate::input::parse_hex(text)?;
    <[u8; 8]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow!("a nonce is 8 bytes (16 hex digits), found {}", bytes.len()))
}

/// A tag type: a core name, a decimal number or `0x` and hex.
fn parse_tag_type(text: &str) -> anyhow::Result<TagType> {
    if let Some(&t) = CORE_TAG_TYPES
        .iter()
        .find(|t| t.name().is_some_and(|n| n.eq_ignore_ascii_case(text)))
    {
        return Ok(t);
    }
    let number = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(digits) => u16::from_str_radix(digits, 16),
        None => text.parse::<u16>(),
    };
    number.map(TagType).map_err(|_| {
        anyhow!(
            "unknown tag type {text:?}: give a number from 1 to 65535 (decimal or 0x-hex) \
             or a core tag name ({})",
            tag_names()
        )
    })
}

/// `--tag TYPE:HEX`. Core tag types are checked against their layout.
pub fn parse_tag(text: &str) -> anyhow::Result<OwnedTag> {
    let Some((type_text, value_text)) = text.split_once(':') else {
        bail!("expected TYPE:HEX, such as notify:00000000<64 hex digits of a key> or 0x1234:00ff");
    };
    let tag_type = parse_tag_type(type_text.trim())?;
    if tag_type == TagType::PADDING {
        bail!("tag type 0 marks padding and is not a tag; use a type from 1 to 65535");
    }
    let value = crate::input::parse_hex(value_text)?;
    let tag = OwnedTag::new(tag_type, &value)?;
    if let Err(e) = tag.parse() {
        let layout = expected_layout(tag_type).unwrap_or("");
        bail!("{e}; its value is {layout}");
    }
    Ok(tag)
}

/// What a core tag's value holds, for error messages.
pub fn expected_layout(tag_type: TagType) -> Option<&'static str> {
    Some(match tag_type {
        TagType::NOTIFY_PUBLIC_KEY | TagType::SUBKEY => {
            "4 zero bytes then a 32-byte public key (36 bytes)"
        }
        TagType::REPLY | TagType::ROOT => {
            "4 zero bytes, the 8-byte kind, then a 48-byte id or address (60 bytes)"
        }
        TagType::NOSTR_SISTER => "4 zero bytes then a 32-byte nostr event id (36 bytes)",
        TagType::USER_MENTION | TagType::SERVER_MENTION => {
            "a 4-byte little-endian character offset then a 32-byte public key (36 bytes)"
        }
        TagType::QUOTE => {
            "a 4-byte little-endian character offset, the 8-byte kind, then a 48-byte id \
             or address (60 bytes)"
        }
        TagType::URL | TagType::IMAGE | TagType::VIDEO => {
            "a 4-byte little-endian character offset then a UTF-8 URL"
        }
        _ => return None,
    })
}

/// A kind with its registry name: `0x000000010001001c (microblog)`.
pub fn kind_label(kind: Kind) -> String {
    match kind.name() {
        Some(name) => format!("{kind} ({name})"),
        None => kind.to_string(),
    }
}

/// What a kind's parts and flags mean, in words.
pub fn kind_meaning(kind: Kind) -> String {
    let mut text = format!(
        "application {}, kind {}: {}, read by {}, {}",
        kind.application_id(),
        kind.application_kind(),
        kind.duplicate_handling(),
        kind.read_access(),
        if kind.is_printable() {
            "printable"
        } else {
            "not printable"
        }
    );
    if kind.has_reserved_flags() {
        text.push_str(", RESERVED FLAG BITS SET");
    }
    text
}

/// A kind, for JSON output.
#[derive(Debug, Serialize)]
pub struct KindInfo {
    value: String,
    name: Option<&'static str>,
    application_id: u32,
    application_kind: u16,
    duplicate_handling: String,
    read_access: String,
    printable: bool,
    reserved_flags: bool,
}

/// The kind, for JSON output.
pub fn kind_info(kind: Kind) -> KindInfo {
    KindInfo {
        value: kind.to_string(),
        name: kind.name(),
        application_id: kind.application_id(),
        application_kind: kind.application_kind(),
        duplicate_handling: kind.duplicate_handling().to_string(),
        read_access: kind.read_access().to_string(),
        printable: kind.is_printable(),
        reserved_flags: kind.has_reserved_flags(),
    }
}

fn reference_json(reference: &Reference) -> Value {
    let form = match reference {
        Reference::Id(_) => "id",
        Reference::Address(_) => "address",
    };
    json!({ "type": form, "value": reference.to_string() })
}

fn reference_words(reference: &Reference) -> String {
    match reference {
        Reference::Id(_) => format!("id {reference}"),
        Reference::Address(_) => format!("address {reference}"),
    }
}

/// A parsed tag in words, and as a JSON object.
pub fn tag_meaning(value: &TagValue<'_>) -> (String, Value) {
    match *value {
        TagValue::NotifyPublicKey(key) => {
            (format!("notify {key}"), json!({ "key": key.to_string() }))
        }
        TagValue::Subkey(key) => (format!("subkey {key}"), json!({ "key": key.to_string() })),
        TagValue::Reply { kind, reference } | TagValue::Root { kind, reference } => (
            format!(
                "{}, of kind {}",
                reference_words(&reference),
                kind_label(kind)
            ),
            json!({ "kind": kind_info(kind), "reference": reference_json(&reference) }),
        ),
        TagValue::NostrSister(id) => (
            format!("nostr event {}", hex::encode(id)),
            json!({ "nostr_id": hex::encode(id) }),
        ),
        TagValue::UserMention { offset, key } => (
            format!("at character {offset}: user {key}"),
            json!({ "offset": offset, "key": key.to_string() }),
        ),
        TagValue::ServerMention { offset, key } => (
            format!(
                "at character {offset}: server {}",
                key.to_server_printable()
            ),
            json!({ "offset": offset, "key": key.to_server_printable() }),
        ),
        TagValue::Quote {
            offset,
            kind,
            reference,
        } => (
            format!(
                "at character {offset}: quotes {}, of kind {}",
                reference_words(&reference),
                kind_label(kind)
            ),
            json!({
                "offset": offset,
                "kind": kind_info(kind),
                "reference": reference_json(&reference),
            }),
        ),
        TagValue::Url { offset, url }
        | TagValue::Image { offset, url }
        | TagValue::Video { offset, url } => (
            format!("at character {offset}: {url}"),
            json!({ "offset": offset, "url": url }),
        ),
        TagValue::Other { value, .. } => (
            format!("{} bytes: {}", value.len(), hex::encode(value)),
            Value::Null,
        ),
        // Types added to the core later are shown raw.
        _ => ("(not interpreted)".to_owned(), Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name_and_hex() {
        assert_eq!(parse_kind("microblog").unwrap(), Kind::MICROBLOG_ROOT);
        assert_eq!(
            parse_kind("0x000000010001001c").unwrap(),
            Kind::MICROBLOG_ROOT
        );
        let e = parse_kind("nonsense").unwrap_err().to_string();
        assert!(e.contains("microblog"), "{e}");
        let e = parse_kind("0x0000000100010020").unwrap_err().to_string();
        assert!(e.contains("reserved"), "{e}");
    }

    #[test]
    fn tags_parse_by_name_and_number() {
        let key = mosaic_core::SecretKey::from_bytes(&[4; 32]).public();
        let text = format!("notify:00000000{}", hex::encode(key.as_bytes()));
        let tag = parse_tag(&text).unwrap();
        assert_eq!(tag.parse().unwrap(), TagValue::NotifyPublicKey(key));
        let tag = parse_tag("0x1234:00ff").unwrap();
        assert_eq!(tag.tag_type(), TagType(0x1234));
        assert_eq!(tag.value(), &[0, 0xff]);
        assert_eq!(parse_tag("4660:").unwrap().tag_type(), TagType(0x1234));
        assert_eq!(parse_tag("URL:00000000").unwrap().tag_type(), TagType::URL);
    }

    #[test]
    fn bad_tags_are_explained() {
        let e = parse_tag("notify").unwrap_err().to_string();
        assert!(e.contains("TYPE:HEX"), "{e}");
        let e = parse_tag("bogus:00").unwrap_err().to_string();
        assert!(e.contains("unknown tag type"), "{e}");
        let e = parse_tag("0:00").unwrap_err().to_string();
        assert!(e.contains("padding"), "{e}");
        let e = parse_tag("reply:0011").unwrap_err().to_string();
        assert!(e.contains("60 bytes"), "{e}");
        let e = parse_tag("70000:00").unwrap_err().to_string();
        assert!(e.contains("unknown tag type"), "{e}");
        assert!(parse_tag("1:0g").is_err());
    }

    #[test]
    fn nonces_are_eight_bytes() {
        assert_eq!(parse_nonce("8000000000000001").unwrap()[7], 1);
        assert!(parse_nonce("80").is_err());
    }

    #[test]
    fn kind_meaning_names_the_flags() {
        let m = kind_meaning(Kind::MICROBLOG_ROOT);
        assert_eq!(
            m,
            "application 1, kind 1: unique, read by everybody, printable"
        );
        assert_eq!(
            kind_label(Kind::MICROBLOG_ROOT),
            "0x000000010001001c (microblog)"
        );
    }
}
