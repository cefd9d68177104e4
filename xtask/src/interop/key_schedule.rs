//! `key_schedule.json`: markers, the reference's `KeySchedule::new` cases and
//! record r11.
//!
//! The reference writes a 48-byte-entry payload that is not spec 0.8.0's
//! (SPEC-NOTES section 3: "spec layout with subkey attestations"), so its
//! payloads and record r11 must be refused by our reader: they count as
//! documented differences. Markers and the normalisation rules of
//! `KeySchedule::new` are judged against the spec.

use anyhow::{Context, Result, anyhow};
use mosaic_core::{
    EncryptionAlgorithm, KeyMarker, KeySchedule, KeyScheduleEntry, KeyScheduleError, PublicKey,
    Record, SecretKey, Timestamp,
};
use serde_json::Value;

use super::{
    Report, Vectors, array_field, bool_field, hex_field, str_field, u64_field, verdict_ok,
};

const AREA: &str = "key_schedule";

/// Runs every case of `key_schedule.json`.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("key_schedule.json")?;
    let keys = v.load("keys.json")?;
    let records = v.load("records.json")?;
    let master = secret(&keys, str_field(&file, "signer")?)?;

    for case in array_field(&file, "markers")? {
        check_marker(case, r)?;
    }

    // The reference's payload, read as spec 0.8.0 entries.
    let name = "reference_payload";
    let payload = hex_field(&file, "reference_payload_hex")?;
    match KeySchedule::from_payload(&master.public(), &payload) {
        Err(KeyScheduleError::UnknownEntryKind { entry: 0, kind: 0 }) => r.differs(
            AREA,
            name,
            "reference 48-byte entries (no attestations) are not the spec 0.8.0 layout; refused at entry kind 0",
        ),
        other => r.fail(AREA, name, format!("expected a refusal, got {other:?}")),
    }

    // Record r11 carries that payload.
    let r11_name = str_field(&file, "record_in_records_json")?;
    let r11 = array_field(&records, "records")?
        .iter()
        .find(|c| c["name"] == r11_name)
        .with_context(|| format!("record {r11_name} not in records.json"))?;
    let bytes = hex_field(
        r11.get("expected").context("missing expected")?,
        "record_hex",
    )?;
    let record = Record::from_bytes(&bytes)?;
    let name = format!("{r11_name}/from_record");
    match KeySchedule::from_record(record) {
        Err(KeyScheduleError::UnknownEntryKind { .. }) => r.differs(
            AREA,
            &name,
            "record valid, but its payload is the reference's non-spec layout: KeySchedule::from_record refuses it",
        ),
        other => r.fail(AREA, &name, format!("expected a refusal, got {other:?}")),
    }
    // The same keys and markers, written the spec's way, read back.
    let name = format!("{r11_name}/spec_layout");
    match spec_schedule(&keys, &master, array_field(&file, "entries")?) {
        Ok(schedule) => {
            let rebuilt = schedule.build_record(&master, record.timestamp(), record.nonce())?;
            let back = KeySchedule::from_record(&rebuilt);
            r.check(
                AREA,
                &name,
                back.as_ref() == Ok(&schedule) && rebuilt.tags() == record.tags(),
                format!("{back:?}"),
            );
        }
        Err(e) => r.fail(AREA, &name, format!("{e:#}")),
    }

    for case in array_field(&file, "keyschedule_new_cases")? {
        let name = format!("new/{}", str_field(case, "name")?);
        if let Err(e) = check_new_case(case, &name, &keys, &master, r) {
            r.fail(AREA, &name, format!("{e:#}"));
        }
    }
    Ok(())
}

fn check_marker(case: &Value, r: &mut Report) -> Result<()> {
    let value = u64_field(case, "marker")?;
    let name = format!("marker/{}", str_field(case, "name")?);
    let Some(marker) = u16::try_from(value).ok().and_then(KeyMarker::from_u16) else {
        r.fail(AREA, &name, format!("marker {value:#x} is not one of ours"));
        return Ok(());
    };
    // The reference's names are the spec's in CamelCase.
    let camel: String = marker
        .spec_name()
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_string() + &c.as_str().to_lowercase())
                .unwrap_or_default()
        })
        .collect();
    r.check(
        AREA,
        &name,
        camel == str_field(case, "name")?
            && marker.requires_timestamp() == bool_field(case, "requires_a_timestamp")?
            && marker.uses_timestamp() == bool_field(case, "uses_a_timestamp")?,
        format!(
            "ours: {} requires={} uses={}",
            marker.spec_name(),
            marker.requires_timestamp(),
            marker.uses_timestamp()
        ),
    );
    Ok(())
}

fn secret(keys: &Value, name: &str) -> Result<SecretKey> {
    let key = array_field(keys, "keys")?
        .iter()
        .find(|k| k["name"] == name)
        .with_context(|| format!("key {name} not in keys.json"))?;
    let seed: [u8; 32] = hex_field(key, "secret_key_hex")?
        .try_into()
        .map_err(|_| anyhow!("secret_key_hex of {name} is not 32 bytes"))?;
    Ok(SecretKey::from_bytes(&seed))
}

/// One reference entry (`key_name`, `marker`, `timestamp_ns`) as ours: a
/// signing subkey attested with its secret key from `keys.json`.
fn spec_entry(keys: &Value, master: &SecretKey, entry: &Value) -> Result<KeyScheduleEntry> {
    let subkey = secret(keys, str_field(entry, "key_name")?)?;
    let public = PublicKey::try_from(hex_field(entry, "public_key_hex")?.as_slice())?;
    anyhow::ensure!(
        subkey.public() == public,
        "key_name and public_key_hex differ"
    );
    let value = u16::try_from(u64_field(entry, "marker")?)?;
    let marker = KeyMarker::from_u16(value).with_context(|| format!("marker {value:#x}"))?;
    let timestamp = Timestamp::from_nanos(u64_field(entry, "timestamp_ns")?)?;
    Ok(KeyScheduleEntry::new_attested(
        &master.public(),
        &subkey,
        marker,
        timestamp,
    )?)
}

fn spec_schedule(keys: &Value, master: &SecretKey, entries: &[Value]) -> Result<KeySchedule> {
    let entries = entries
        .iter()
        .map(|e| spec_entry(keys, master, e))
        .collect::<Result<Vec<_>>>()?;
    Ok(KeySchedule::new(master.public(), entries)?)
}

fn check_new_case(
    case: &Value,
    name: &str,
    keys: &Value,
    master: &SecretKey,
    r: &mut Report,
) -> Result<()> {
    let entries = array_field(case, "entries")?;
    let reference_ok = verdict_ok(case, "reference")?;
    let [entry] = entries else {
        anyhow::bail!("expected one entry");
    };
    let value = u64_field(entry, "marker")?;
    let Some(marker) = u16::try_from(value).ok().and_then(KeyMarker::from_u16) else {
        // An undefined marker: both refuse.
        r.check(
            AREA,
            name,
            !reference_ok,
            "the reference accepts an undefined marker",
        );
        return Ok(());
    };
    let timestamp = Timestamp::from_nanos(u64_field(entry, "timestamp_ns")?)?;
    let subkey = secret(keys, str_field(entry, "key_name")?)?;
    // Ours, by the kind of key the marker is for.
    let ours = match marker {
        KeyMarker::ActiveEncryptionKey => KeyScheduleEntry::encryption_key(
            EncryptionAlgorithm::X25519,
            subkey.public().to_bytes(),
            marker,
            timestamp,
        ),
        _ => KeyScheduleEntry::new_attested(&master.public(), &subkey, marker, timestamp),
    };
    match (&ours, reference_ok) {
        (Ok(entry), true) => {
            let normalized = array_field(case, "normalized_entries")?
                .first()
                .context("no normalized entry")?;
            let same = entry.marker() == marker
                && entry.timestamp().as_nanos() == u64_field(normalized, "timestamp_ns")?
                && entry.key_bytes().as_slice() == hex_field(normalized, "public_key_hex")?;
            r.check(
                AREA,
                &format!("{name}/normalized"),
                same,
                format!("{entry:?}"),
            );
            // Our payload is the spec layout, not the reference's bytes.
            let schedule = KeySchedule::new(master.public(), vec![*entry])?;
            let back = KeySchedule::from_payload(&master.public(), &schedule.to_payload());
            if back.as_ref() == Ok(&schedule)
                && schedule.to_payload() != hex_field(case, "reference_payload_hex")?
            {
                r.differs(
                    AREA,
                    &format!("{name}/payload"),
                    "spec 0.8.0 entry layout (56-byte encryption key data), not the reference's 48-byte entries",
                );
            } else {
                r.fail(AREA, &format!("{name}/payload"), format!("{back:?}"));
            }
        }
        (Err(_), false) => r.pass(AREA, name),
        (Err(KeyScheduleError::MarkerMismatch { .. }), true)
            if marker == KeyMarker::ActiveNostrKey =>
        {
            r.differs(
                AREA,
                name,
                "ACTIVE_NOSTR_KEY needs a secp256k1 attestation, and secp256k1 is TBD in cryptography.md: refused",
            )
        }
        (Ok(_), false) => r.fail(AREA, name, "we accept what the reference refuses"),
        (Err(e), true) => r.fail(AREA, name, format!("we refuse: {e}")),
    }
    Ok(())
}
