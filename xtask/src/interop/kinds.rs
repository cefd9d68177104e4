//! `kinds.json`: decomposing kinds into their parts, building them from parts,
//! the default flags and the registry constants.

use anyhow::{Result, bail};
use mosaic_core::{DuplicateHandling, Kind, KindFlags, ReadAccess};
use serde_json::Value;

use super::{Report, Vectors, array_field, bool_field, hex_field, str_field, u64_field};

const AREA: &str = "kinds";

/// Checks every case of `kinds.json`.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("kinds.json")?;
    let default = u64_field(&file, "default_kind_flags")?;
    let ours = KindFlags::default();
    r.check(
        AREA,
        "default_kind_flags",
        u64::from(ours.bits()) == default,
        format!("expected {default:#06x}, got {ours:?}"),
    );

    for (i, case) in array_field(&file, "decompose")?.iter().enumerate() {
        let description = str_field(case, "description")?;
        let name = format!("decompose[{i}] {description}");
        let mut wrong = decompose(case)?;
        if let Some(constant) = description.strip_prefix("Kind::") {
            match registry_constant(constant) {
                Some(kind) => {
                    let expected = str_field(case, "kind_hex")?;
                    if kind.to_string() != expected {
                        wrong.push(format!("Kind::{constant} is {kind}, expected {expected}"));
                    }
                }
                // Not in the kinds.md registry (the reference's example kind).
                None if constant == "EXAMPLE" => {}
                None => wrong.push(format!("no constant Kind::{constant}")),
            }
        }
        report(r, &name, wrong);
    }

    for (i, case) in array_field(&file, "from_parts")?.iter().enumerate() {
        let name = format!("from_parts[{i}] {}", str_field(case, "kind_hex")?);
        let wrong = from_parts(case)?;
        report(r, &name, wrong);
    }
    Ok(())
}

fn report(r: &mut Report, name: &str, wrong: Vec<String>) {
    if wrong.is_empty() {
        r.pass(AREA, name);
    } else {
        r.fail(AREA, name, wrong.join("; "));
    }
}

/// Every accessor of the kind against the vector; returns the mismatches.
fn decompose(case: &Value) -> Result<Vec<String>> {
    let mut wrong = Vec::new();
    let text = str_field(case, "kind_hex")?;
    let value = u64_field(case, "kind_u64")?;
    let kind = match text.parse::<Kind>() {
        Ok(kind) => kind,
        Err(e) => return Ok(vec![format!("{text} does not parse: {e}")]),
    };
    if kind.as_u64() != value {
        wrong.push(format!("{text} parses to {}", kind.as_u64()));
    }
    if kind.to_string() != text {
        wrong.push(format!("displays as {kind}"));
    }
    let bytes = hex_field(case, "bytes_hex")?;
    if bytes != kind.to_be_bytes() || Kind::try_from(bytes.as_slice()) != Ok(kind) {
        wrong.push(format!("bytes {}", hex::encode(kind.to_be_bytes())));
    }
    let app = u64_field(case, "application_id")?;
    if u64::from(kind.application_id()) != app {
        wrong.push(format!("application id {}", kind.application_id()));
    }
    let app_kind = u64_field(case, "application_specific_kind")?;
    if u64::from(kind.application_kind()) != app_kind {
        wrong.push(format!("application kind {}", kind.application_kind()));
    }
    let flags = u64_field(case, "flags")?;
    if u64::from(kind.flags().bits()) != flags {
        wrong.push(format!("flags {:?}", kind.flags()));
    }
    wrong.extend(flag_parts(case, kind.flags())?);
    if kind.has_reserved_flags() != bool_field(case, "reserved_flag_bits_set")? {
        wrong.push(format!("has_reserved_flags {}", kind.has_reserved_flags()));
    }
    if kind.duplicate_handling() != kind.flags().duplicate_handling()
        || kind.read_access() != kind.flags().read_access()
        || kind.is_printable() != kind.flags().is_printable()
    {
        wrong.push("kind and flag accessors disagree".to_owned());
    }
    let rebuilt = Kind::from_parts(kind.application_id(), kind.application_kind(), kind.flags());
    if rebuilt != kind {
        wrong.push(format!("from_parts of its own parts gives {rebuilt}"));
    }
    Ok(wrong)
}

/// `Kind::from_parts(app, app_kind, KindFlags::from_parts(..))` against the vector.
fn from_parts(case: &Value) -> Result<Vec<String>> {
    let mut wrong = Vec::new();
    let app = u32::try_from(u64_field(case, "application_id")?)?;
    let app_kind = u16::try_from(u64_field(case, "application_specific_kind")?)?;
    let flags = KindFlags::from_parts(
        duplicate_handling(str_field(case, "duplicate_handling")?)?,
        read_access(str_field(case, "read_access")?)?,
        bool_field(case, "content_is_printable")?,
    );
    if u64::from(flags.bits()) != u64_field(case, "flags")? {
        wrong.push(format!("flags {flags:?}"));
    }
    wrong.extend(flag_parts(case, flags)?);
    let kind = Kind::from_parts(app, app_kind, flags);
    let expected = str_field(case, "kind_hex")?;
    if kind.to_string() != expected {
        wrong.push(format!("kind {kind}"));
    }
    if kind.has_reserved_flags() {
        wrong.push("reserved flag bits set".to_owned());
    }
    Ok(wrong)
}

/// Duplicate handling, read access and printable against the vector.
fn flag_parts(case: &Value, flags: KindFlags) -> Result<Vec<String>> {
    let mut wrong = Vec::new();
    let dup = duplicate_handling(str_field(case, "duplicate_handling")?)?;
    if flags.duplicate_handling() != dup {
        wrong.push(format!(
            "duplicate handling {:?}",
            flags.duplicate_handling()
        ));
    }
    let read = read_access(str_field(case, "read_access")?)?;
    if flags.read_access() != read {
        wrong.push(format!("read access {:?}", flags.read_access()));
    }
    if flags.is_printable() != bool_field(case, "content_is_printable")? {
        wrong.push(format!("printable {}", flags.is_printable()));
    }
    Ok(wrong)
}

fn duplicate_handling(name: &str) -> Result<DuplicateHandling> {
    Ok(match name {
        "Unique" => DuplicateHandling::Unique,
        "Ephemeral" => DuplicateHandling::Ephemeral,
        "Replaceable" => DuplicateHandling::Replaceable,
        "Versioned" => DuplicateHandling::Versioned,
        other => bail!("unknown duplicate handling {other}"),
    })
}

fn read_access(name: &str) -> Result<ReadAccess> {
    Ok(match name {
        "AuthorOnly" => ReadAccess::AuthorOnly,
        "AuthorAndTagged" => ReadAccess::AuthorAndTagged,
        "Reserved" => ReadAccess::Reserved,
        "Everybody" => ReadAccess::Everybody,
        other => bail!("unknown read access {other}"),
    })
}

fn registry_constant(name: &str) -> Option<Kind> {
    Some(match name {
        "KEY_SCHEDULE" => Kind::KEY_SCHEDULE,
        "PROFILE" => Kind::PROFILE,
        "MICROBLOG_ROOT" => Kind::MICROBLOG_ROOT,
        "REPLY_COMMENT" => Kind::REPLY_COMMENT,
        "BLOG_POST" => Kind::BLOG_POST,
        "CHAT_MESSAGE" => Kind::CHAT_MESSAGE,
        _ => return None,
    })
}
