//! `invalid_records.json`: each mutated record must be refused (or, where
//! the spec says so, accepted).

use anyhow::Result;
use mosaic_core::Record;

use super::{Report, Vectors, array_field, bool_field, hex_field, str_field, verdict_ok};

const AREA: &str = "invalid_records";

/// Runs every case of `invalid_records.json`.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("invalid_records.json")?;
    for case in array_field(&file, "cases")? {
        let name = str_field(case, "name")?;
        let bytes = hex_field(case, "record_hex")?;
        let ours = Record::from_bytes(&bytes);
        let spec = bool_field(case, "spec_expected_valid")?;
        let reference = verdict_ok(case, "reference_from_vec")?;
        match (&ours, spec) {
            (Ok(_), true) | (Err(_), false) if reference == spec => r.pass(AREA, name),
            (Ok(_), true) | (Err(_), false) => r.differs(
                AREA,
                name,
                match &ours {
                    Ok(_) => "accepted, as the spec requires".to_string(),
                    Err(e) => format!("refused at {}: {e}", e.step()),
                },
            ),
            (Ok(_), false) => r.fail(AREA, name, "accepted, but the spec says invalid"),
            (Err(e), true) => r.fail(
                AREA,
                name,
                format!("refused ({e}), but the spec says valid"),
            ),
        }
    }
    Ok(())
}
