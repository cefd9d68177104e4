//! `records.json`: records built byte for byte, parsed back, and tag sets.

use anyhow::{Context, Result};
use mosaic_core::{
    Address, Id, Kind, Nonce, PublicKey, Record, RecordBuilder, RecordFlags, Reference, SecretKey,
    TagSet, Timestamp, blake3_xof64,
};
use serde_json::Value;

use super::{
    Report, Vectors, array_field, bool_field, hex_field, str_field, u64_field, verdict_ok,
};

const AREA: &str = "records";

/// Runs every case of `records.json`.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("records.json")?;
    for case in array_field(&file, "records")? {
        let name = str_field(case, "name")?;
        if let Err(e) = check_record(case, name, r) {
            r.fail(AREA, name, format!("{e:#}"));
        }
    }
    for case in array_field(&file, "tag_set_parse_cases")? {
        let name = format!("tag_set/{}", str_field(case, "name")?);
        let bytes = hex_field(case, "hex")?;
        let ours = TagSet::from_bytes(&bytes).is_ok();
        let spec = bool_field(case, "spec_expected_valid")?;
        let reference = verdict_ok(case, "reference")?;
        if ours != spec {
            r.fail(AREA, &name, format!("we say valid={ours}, the spec {spec}"));
        } else if reference != spec {
            r.differs(
                AREA,
                &name,
                "the reference refuses an empty tag set; an empty set is valid",
            );
        } else {
            r.pass(AREA, &name);
        }
    }
    for (i, case) in array_field(&file, "moref0_decoding")?.iter().enumerate() {
        let name = format!("moref0[{i}]");
        let input = str_field(case, "input")?;
        let bytes = hex_field(case, "bytes_hex")?;
        let reference = Reference::from_printable(input);
        r.check(
            AREA,
            &format!("{name}/reference"),
            reference.as_ref().ok().map(|x| x.as_bytes().to_vec()) == Some(bytes.clone())
                && verdict_ok(case, "reference_Reference_from_printable")?,
            format!("{reference:?}"),
        );
        r.check(
            AREA,
            &format!("{name}/id"),
            Id::from_printable(input).is_ok() == verdict_ok(case, "reference_Id_from_printable")?,
            "id verdict differs",
        );
        r.check(
            AREA,
            &format!("{name}/address"),
            Address::from_printable(input).is_ok()
                == verdict_ok(case, "reference_Address_from_printable")?,
            "address verdict differs",
        );
    }
    Ok(())
}

fn key32(v: &Value, field: &str) -> Result<[u8; 32]> {
    hex_field(v, field)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("{field} is not 32 bytes"))
}

fn check_record(case: &Value, name: &str, r: &mut Report) -> Result<()> {
    let inputs = case.get("inputs").context("missing inputs")?;
    let expected = case.get("expected").context("missing expected")?;
    let record_hex = hex_field(expected, "record_hex")?;

    // Build it from the inputs and compare byte for byte.
    let signer = SecretKey::from_bytes(&key32(inputs, "signing_secret_key_hex")?);
    let author = PublicKey::from_bytes(&key32(inputs, "author_public_key_hex")?)?;
    let kind_text = str_field(inputs, "kind")?;
    let kind = Kind::from_u64(u64::from_str_radix(kind_text.trim_start_matches("0x"), 16)?);
    let timestamp = Timestamp::from_nanos(u64_field(inputs, "timestamp_ns")?)?;
    let nonce_bytes: [u8; 8] = hex_field(expected, "nonce_hex")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("nonce_hex is not 8 bytes"))?;
    let nonce = Nonce::from_bytes(nonce_bytes).context("nonce without its first bit")?;
    if let Some(key) = inputs["nonce"].get("key_utf8").and_then(Value::as_str) {
        r.check(
            AREA,
            &format!("{name}/deterministic-nonce"),
            Nonce::from_key(key.as_bytes()) == nonce,
            "Nonce::from_key differs",
        );
    }
    let flags = RecordFlags::from_u64(u64_field(inputs, "flags")?);
    let tags = hex_field(inputs, "tag_set_hex")?;
    let tags = TagSet::from_bytes(&tags)?;
    let payload = hex_field(inputs, "payload_hex")?;
    let mut builder = RecordBuilder::new(kind, timestamp)
        .nonce(nonce)
        .author(author)
        .tags(tags)
        .from_author(flags.is_from_author());
    builder = if flags.is_zstd() {
        builder.precompressed_payload(&payload)
    } else {
        builder.payload(&payload)
    };
    let built = builder.build(&signer)?;
    r.check(
        AREA,
        &format!("{name}/build"),
        built.as_bytes() == record_hex.as_slice(),
        "built bytes differ from record_hex",
    );

    // Parse the reference's bytes and read every field back.
    let rec = Record::from_bytes(&record_hex)?;
    let checks: [(&str, bool); 12] = [
        (
            "id",
            rec.id().as_bytes().as_slice() == hex_field(expected, "id_hex")?.as_slice(),
        ),
        (
            "id_printable",
            rec.id().to_printable() == str_field(expected, "id_printable")?,
        ),
        (
            "address",
            rec.address().as_bytes().as_slice() == hex_field(expected, "address_hex")?.as_slice(),
        ),
        (
            "address_printable",
            rec.address().to_printable() == str_field(expected, "address_printable")?,
        ),
        ("kind", rec.kind() == kind),
        ("timestamp", rec.timestamp() == timestamp),
        ("author", rec.author() == author),
        ("signing_key", rec.signing_key() == signer.public()),
        ("flags", rec.flags() == flags),
        ("payload", rec.payload() == payload.as_slice()),
        (
            "signing_hash",
            blake3_xof64(rec.signed_bytes()).as_slice()
                == hex_field(expected, "signing_hash_hex")?.as_slice(),
        ),
        (
            "signature",
            rec.signature().as_slice() == hex_field(expected, "signature_hex")?.as_slice(),
        ),
    ];
    for (field, ok) in checks {
        r.check(
            AREA,
            &format!("{name}/{field}"),
            ok,
            format!("{field} differs"),
        );
    }
    if let Some(text) = inputs["notes"]
        .get("payload_decompressed_utf8")
        .and_then(Value::as_str)
    {
        let ours = rec.payload_text()?;
        r.check(
            AREA,
            &format!("{name}/decompressed"),
            ours == text,
            "decompressed payload differs",
        );
    }
    Ok(())
}
