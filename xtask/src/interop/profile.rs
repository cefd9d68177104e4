//! `profile.json`: profiles, spec-style CBOR, and record r10.
//!
//! The reference encodes profiles with integer map keys; spec 0.8.0 asks for
//! snake_case text keys (SPEC-NOTES section 3). Our reader refuses the
//! reference's encodings (documented differences), reads the spec-style
//! cases the reference refuses, and writes the same fields with text keys.

use anyhow::{Context, Result};
use mosaic_core::{Profile, ProfileError, Record};
use serde_json::Value;

use super::{Report, Vectors, array_field, hex_field, str_field, verdict_ok};

const AREA: &str = "profile";

/// Runs every case of `profile.json`.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("profile.json")?;
    let records = v.load("records.json")?;

    for case in array_field(&file, "profiles")? {
        let name = str_field(case, "name")?;
        if let Err(e) = check_profile(case, name, r) {
            r.fail(AREA, name, format!("{e:#}"));
        }
    }

    for case in array_field(&file, "spec_style_decode_cases")? {
        let name = format!("spec_style/{}", str_field(case, "name")?);
        let bytes = hex_field(case, "cbor_hex")?;
        match Profile::from_payload(&bytes) {
            Ok(p) => {
                // Our encoder writes the same bytes back when they are in
                // our deterministic order; at least the map reads the same.
                let again = Profile::from_payload(&p.to_payload());
                if again.as_ref() != Ok(&p) {
                    r.fail(AREA, &name, format!("round trip gave {again:?}"));
                } else if verdict_ok(case, "reference_decode")? {
                    r.pass(AREA, &name);
                } else {
                    r.differs(
                        AREA,
                        &name,
                        "text-keyed CBOR per profile.md: we read it, the reference expects integer keys",
                    );
                }
            }
            Err(e) => r.fail(AREA, &name, format!("spec-style profile refused: {e}")),
        }
    }
    // The three-field case, field by field.
    if let Some(case) = array_field(&file, "spec_style_decode_cases")?
        .iter()
        .find(|c| c["name"] == "spec_text_keys_three_fields")
    {
        let p = Profile::from_payload(&hex_field(case, "cbor_hex")?);
        r.check(
            AREA,
            "spec_style/spec_text_keys_three_fields/fields",
            p.as_ref().is_ok_and(|p| {
                p.name() == "alice"
                    && p.display_name.as_deref() == Some("Alice ✨")
                    && p.bot == Some(false)
                    && p.extra().is_empty()
            }),
            format!("{p:?}"),
        );
    }

    let r10_name = str_field(&file, "record_in_records_json")?;
    let r10 = array_field(&records, "records")?
        .iter()
        .find(|c| c["name"] == r10_name)
        .with_context(|| format!("record {r10_name} not in records.json"))?;
    let expected = r10.get("expected").context("missing expected")?;
    let bytes = hex_field(expected, "record_hex")?;
    let record = Record::from_bytes(&bytes)?;
    r.check(
        AREA,
        &format!("{r10_name}/nonce"),
        record.nonce() == Profile::default_nonce(),
        "the profile nonce convention differs",
    );
    match Profile::from_record(record) {
        Err(ProfileError::NonTextKey { .. }) => r.differs(
            AREA,
            &format!("{r10_name}/from_record"),
            "master-signed profile record, but its payload has integer keys: refused",
        ),
        other => r.fail(
            AREA,
            &format!("{r10_name}/from_record"),
            format!("expected a refusal of integer keys, got {other:?}"),
        ),
    }
    Ok(())
}

fn opt_str<'a>(fields: &'a Value, key: &str) -> Option<&'a str> {
    fields.get(key).and_then(Value::as_str)
}

fn check_profile(case: &Value, name: &str, r: &mut Report) -> Result<()> {
    let fields = case.get("fields").context("missing fields")?;
    let reference = hex_field(case, "reference_cbor_hex")?;

    // The reference's integer-keyed CBOR is not a spec profile.
    match Profile::from_payload(&reference) {
        Err(ProfileError::NonTextKey { index: 0 }) => r.differs(
            AREA,
            &format!("{name}/decode_reference"),
            "integer map keys refused; profile.md asks for snake_case text keys",
        ),
        other => r.fail(
            AREA,
            &format!("{name}/decode_reference"),
            format!("expected a refusal of integer keys, got {other:?}"),
        ),
    }

    // The same fields, the spec's way. The reference's avatar and banner
    // are bytes; profile.md makes them URLs, so they are left out here.
    let built = Profile::new(str_field(fields, "name")?).map(|mut p| {
        p.display_name = opt_str(fields, "display_name").map(str::to_owned);
        p.about = opt_str(fields, "about").map(str::to_owned);
        p.website = opt_str(fields, "website").map(str::to_owned);
        p.lud16 = opt_str(fields, "lud16").map(str::to_owned);
        p.org = fields.get("org").and_then(Value::as_bool);
        p.bot = fields.get("bot").and_then(Value::as_bool);
        p
    });
    let name = format!("{name}/spec_encoding");
    match built {
        Ok(p) => {
            let back = Profile::from_payload(&p.to_payload());
            r.check(AREA, &name, back.as_ref() == Ok(&p), format!("{back:?}"));
        }
        // profile.md: the name is for `@name` mentions; an empty one is
        // refused (the reference accepts it).
        Err(ProfileError::EmptyName) if str_field(fields, "name")?.is_empty() => {
            r.differs(AREA, &name, "an empty name is refused")
        }
        Err(e) => r.fail(AREA, &name, e),
    }
    Ok(())
}
