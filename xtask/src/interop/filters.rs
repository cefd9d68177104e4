//! `filters.json`: filters encoded byte for byte, parsed, and matched
//! against the records of `records.json`.

use anyhow::{Context, Result};
use mosaic_core::{
    Filter, FilterBuilder, Id, Kind, OwnedRecord, OwnedTag, PublicKey, SecretKey, Timestamp,
};
use serde_json::Value;

use super::{Report, Vectors, array_field, bool_field, hex_field, str_field, verdict_ok};

const AREA: &str = "filters";

/// Runs every case of `filters.json`.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("filters.json")?;
    let keys = v.load("keys.json")?;
    let records = v.load("records.json")?;
    let mut named = Vec::new();
    for rec in array_field(&records, "records")? {
        let bytes = hex_field(&rec["expected"], "record_hex")?;
        named.push((
            str_field(rec, "name")?.to_string(),
            OwnedRecord::from_vec(bytes)?,
        ));
    }

    for case in array_field(&file, "filters")? {
        let name = str_field(case, "name")?;
        let bytes = hex_field(case, "filter_hex")?;
        let filter = match Filter::from_bytes(&bytes) {
            Ok(f) => f,
            Err(e) => {
                r.fail(AREA, name, format!("refused: {e}"));
                continue;
            }
        };
        match build(case, &keys) {
            Ok(Some(built)) => r.check(
                AREA,
                &format!("{name}/encode"),
                built == bytes,
                "our encoding differs from filter_hex",
            ),
            Ok(None) => {}
            Err(e) => r.fail(AREA, &format!("{name}/encode"), format!("{e:#}")),
        }
        r.check(
            AREA,
            &format!("{name}/narrow"),
            filter.is_narrow() == bool_field(case, "reference_is_narrow")?,
            "narrowness differs",
        );
        let ours: Vec<&str> = named
            .iter()
            .filter(|(_, rec)| filter.matches_record(rec))
            .map(|(n, _)| n.as_str())
            .collect();
        let spec: Vec<&str> = array_field(case, "spec_matches")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let agrees = bool_field(case, "reference_agrees_with_spec")?;
        match (ours == spec, agrees) {
            (true, true) => r.pass(AREA, &format!("{name}/matches")),
            (true, false) => r.differs(
                AREA,
                &format!("{name}/matches"),
                "matched per the spec (exclude works; a repeated element: the first counts)",
            ),
            (false, _) => r.fail(
                AREA,
                &format!("{name}/matches"),
                format!("we match {ours:?}, the spec {spec:?}"),
            ),
        }
    }

    for case in array_field(&file, "parse_cases")? {
        let name = format!("parse/{}", str_field(case, "name")?);
        let bytes = hex_field(case, "filter_hex")?;
        let ours = Filter::from_bytes(&bytes);
        let spec = bool_field(case, "spec_expected_valid")?;
        let reference = verdict_ok(case, "reference")?;
        match (ours.is_ok() == spec, reference == spec) {
            (true, true) => r.pass(AREA, &name),
            (true, false) => r.differs(AREA, &name, format!("{ours:?}")),
            (false, _) => r.fail(
                AREA,
                &name,
                format!("got {ours:?}, the spec says valid={spec}"),
            ),
        }
    }
    Ok(())
}

fn key_by_name(keys: &Value, name: &str) -> Result<PublicKey> {
    let hex = keys["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["name"] == name))
        .and_then(|k| k["secret_key_hex"].as_str())
        .with_context(|| format!("no key {name}"))?;
    let seed: [u8; 32] = hex::decode(hex)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("bad seed"))?;
    Ok(SecretKey::from_bytes(&seed).public())
}

/// Builds the filter from its described elements; `None` where the builder
/// cannot express it (a repeated element of a type that counts once).
fn build(case: &Value, keys: &Value) -> Result<Option<Vec<u8>>> {
    let mut b = FilterBuilder::new();
    let mut seen = Vec::new();
    for e in array_field(case, "elements")? {
        let t = str_field(e, "type")?;
        if t != "included_tags" && t != "excluded_tags" && seen.contains(&t) {
            return Ok(None);
        }
        seen.push(t);
        let ts = |field: &str| -> Result<Timestamp> {
            Ok(Timestamp::from_nanos(
                e[field].as_u64().with_context(|| format!("no {field}"))?,
            )?)
        };
        let tags = || -> Result<Vec<OwnedTag>> {
            array_field(e, "tags_hex")?
                .iter()
                .map(|h| {
                    Ok(OwnedTag::from_vec(hex::decode(
                        h.as_str().context("tag")?,
                    )?)?)
                })
                .collect()
        };
        b = match t {
            "author_keys" | "signing_keys" => {
                let ks = array_field(e, "keys")?
                    .iter()
                    .map(|k| key_by_name(keys, k.as_str().unwrap_or_default()))
                    .collect::<Result<Vec<_>>>()?;
                if t == "author_keys" {
                    b.authors(ks)
                } else {
                    b.signers(ks)
                }
            }
            "kinds" => b.kinds(
                array_field(e, "kinds")?
                    .iter()
                    .map(|k| Ok(k.as_str().context("kind")?.parse::<Kind>()?))
                    .collect::<Result<Vec<_>>>()?,
            ),
            "timestamps" => b.timestamps(
                array_field(e, "timestamps_ns")?
                    .iter()
                    .map(|n| Ok(Timestamp::from_nanos(n.as_u64().context("ts")?)?))
                    .collect::<Result<Vec<_>>>()?,
            ),
            "included_tags" => b.included_tags(tags()?.iter().map(|t| &**t)),
            "excluded_tags" => b.excluded_tags(tags()?.iter().map(|t| &**t)),
            "since" => b.since(ts("timestamp_ns")?),
            "until" => b.until(ts("timestamp_ns")?),
            "received_since" => b.received_since(ts("timestamp_ns")?),
            "received_until" => b.received_until(ts("timestamp_ns")?),
            "exclude" => {
                let mut ids = Vec::new();
                for id in array_field(e, "ids")? {
                    let mut full = hex_field(id, "id_prefix_hex")?;
                    full.resize(48, 0);
                    let arr: [u8; 48] = full.try_into().map_err(|_| anyhow::anyhow!("id"))?;
                    ids.push(Id::from_bytes(&arr)?);
                }
                b.exclude(ids)
            }
            other => anyhow::bail!("unknown element type {other}"),
        };
    }
    Ok(Some(b.build()?.into_vec()))
}
