//! `timestamps.json`: the leap-second table, unix conversions both ways and
//! the 8-byte decoding.
//!
//! Expected values follow the spec reading (D-11): the leap-second count at
//! unix second `s` is the number of table entries `L <= s`, and after the
//! table expires the last count stays. The reference counts from `L + 1` and
//! refuses times after its table's expiry; those cases are listed as
//! differences when we match the spec-derived value.

use anyhow::{Context, Result};
use mosaic_core::{Timestamp, TimestampError};
use serde_json::Value;

use super::{
    Report, Vectors, array_field, bool_field, hex_field, str_field, u64_field, verdict_ok,
};

const AREA: &str = "timestamps";
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Checks every case of `timestamps.json`.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("timestamps.json")?;
    let table = array_field(&file, "leap_second_unixtimes")?
        .iter()
        .map(|x| {
            x.as_u64()
                .context("leap_second_unixtimes holds a non-integer")
        })
        .collect::<Result<Vec<u64>>>()?;
    r.check(
        AREA,
        "leap_second_unixtimes",
        table == Timestamp::LEAP_SECOND_UNIXTIMES,
        format!(
            "embedded table {:?} differs from the vectors' {table:?}",
            Timestamp::LEAP_SECOND_UNIXTIMES
        ),
    );
    let expires = u64_field(&file, "reference_leap_table_expires_unix")?;
    r.check(
        AREA,
        "leap table expiry",
        expires == Timestamp::LEAP_TABLE_EXPIRES_UNIX,
        format!(
            "embedded expiry {} differs from the vectors' {expires}",
            Timestamp::LEAP_TABLE_EXPIRES_UNIX
        ),
    );
    let spec = SpecReading { table };

    for (i, case) in array_field(&file, "from_unixtime")?.iter().enumerate() {
        let name = format!("from_unixtime[{i}] {}", str_field(case, "description")?);
        from_unixtime(r, &name, case)?;
    }
    for (i, case) in array_field(&file, "to_unixtime")?.iter().enumerate() {
        let name = format!("to_unixtime[{i}] {}", str_field(case, "description")?);
        to_unixtime(r, &name, case, &spec)?;
    }
    for (i, case) in array_field(&file, "from_bytes")?.iter().enumerate() {
        let name = format!("from_bytes[{i}] {}", str_field(case, "bytes_hex")?);
        from_bytes(r, &name, case)?;
    }
    Ok(())
}

fn from_unixtime(r: &mut Report, name: &str, case: &Value) -> Result<()> {
    let seconds = u64_field(case, "unix_seconds")?;
    let nanos = u32::try_from(u64_field(case, "unix_nanos")?).context("unix_nanos above u32")?;
    let ours = Timestamp::from_unix(seconds, nanos);
    let reference_ok = verdict_ok(case, "reference")?;
    let Some(expected) = case.get("spec_derived_ns").and_then(Value::as_u64) else {
        // No spec value: the input itself is invalid, and the reference refused it.
        let ok = !reference_ok && ours.is_err();
        r.check(AREA, name, ok, format!("expected a refusal, got {ours:?}"));
        return Ok(());
    };
    let t = match ours {
        Ok(t) if t.as_nanos() == expected => t,
        other => {
            r.fail(AREA, name, format!("expected {expected} ns, got {other:?}"));
            return Ok(());
        }
    };
    if t.to_unix() != (seconds, nanos) {
        r.fail(
            AREA,
            name,
            format!("to_unix gives {:?}, not the input", t.to_unix()),
        );
        return Ok(());
    }
    if !reference_ok {
        r.differs(
            AREA,
            name,
            "after the table expiry the last known count is used (D-11); the reference refuses",
        );
        return Ok(());
    }
    if bool_field(case, "agrees_with_spec_derived")? {
        let bytes = hex_field(case, "reference_bytes_hex")?;
        r.check(
            AREA,
            name,
            bytes == t.to_be_bytes(),
            format!(
                "bytes {} differ from the reference",
                hex::encode(t.to_be_bytes())
            ),
        );
    } else {
        r.differs(
            AREA,
            name,
            "a leap second counts from its table entry L (spec); the reference counts from L + 1",
        );
    }
    Ok(())
}

fn to_unixtime(r: &mut Report, name: &str, case: &Value, spec: &SpecReading) -> Result<()> {
    let nanos = u64_field(case, "timestamp_ns")?;
    let bytes = hex_field(case, "timestamp_bytes_hex")?;
    let t = match Timestamp::from_nanos(nanos) {
        Ok(t) => t,
        Err(e) => {
            r.fail(AREA, name, format!("refused: {e}"));
            return Ok(());
        }
    };
    if bytes != t.to_be_bytes() || Timestamp::try_from(bytes.as_slice()) != Ok(t) {
        r.fail(AREA, name, "8-byte form differs");
        return Ok(());
    }
    let reference = (
        u64_field(case, "reference_unix_seconds")?,
        u32::try_from(u64_field(case, "reference_unix_nanos")?).context("nanos above u32")?,
    );
    let expected = spec.to_unix(nanos);
    let ours = t.to_unix();
    if ours != expected {
        r.fail(
            AREA,
            name,
            format!("expected {expected:?} (spec reading), got {ours:?}"),
        );
    } else if ours == reference {
        r.pass(AREA, name);
    } else {
        r.differs(
            AREA,
            name,
            format!(
                "the second after an inserted leap second is unix {} (spec: counted from L); the reference says {}",
                expected.0, reference.0
            ),
        );
    }
    Ok(())
}

fn from_bytes(r: &mut Report, name: &str, case: &Value) -> Result<()> {
    let bytes: [u8; 8] = hex_field(case, "bytes_hex")?
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("bytes_hex is {} bytes", b.len()))?;
    let ours = Timestamp::from_be_bytes(bytes);
    if verdict_ok(case, "reference")? {
        let expected = u64_field(case, "ns")?;
        r.check(
            AREA,
            name,
            ours.map(Timestamp::as_nanos) == Ok(expected),
            format!("expected {expected} ns, got {ours:?}"),
        );
    } else {
        r.check(
            AREA,
            name,
            matches!(ours, Err(TimestampError::TopBitSet { .. })),
            format!("expected a top-bit refusal (D-19), got {ours:?}"),
        );
    }
    Ok(())
}

/// The spec's conversion, computed from the vectors' own copy of the table
/// (the formula of their `spec_derived_ns`), to judge `to_unixtime` cases.
struct SpecReading {
    table: Vec<u64>,
}

impl SpecReading {
    /// Leap seconds elapsed at unix second `s`: entries `L <= s`.
    fn count(&self, s: u64) -> u64 {
        self.table.iter().filter(|&&l| l <= s).count() as u64
    }

    /// The unix time of a Mosaic timestamp: the `(s, n)` that
    /// `(s + count(s)) * 1e9 + n` maps to it, or, inside an inserted leap
    /// second (the elapsed second `L_j + j`), the repeated unix second `L_j`
    /// with the same fraction (D-11).
    fn to_unix(&self, nanos: u64) -> (u64, u32) {
        let elapsed = nanos / NANOS_PER_SEC;
        let fraction = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(u32::MAX);
        for (j, &l) in self.table.iter().enumerate() {
            if elapsed == l + j as u64 {
                return (l, fraction);
            }
        }
        for k in 0..=self.table.len() as u64 {
            if let Some(s) = elapsed.checked_sub(k)
                && self.count(s) == k
            {
                return (s, fraction);
            }
        }
        // Unreachable for a consistent table; a value no one returns.
        (u64::MAX, fraction)
    }
}
