//! `encrypted_secret_keys.json`: decrypting the reference's `mocryptsec0`
//! strings, the wrong-password check and malformed printables.

use anyhow::Result;
use mosaic_core::printable::{self, Prefix};
use mosaic_core::{EncryptedKeyError, EncryptedSecretKey};
use serde_json::Value;

use super::{Report, Vectors, array_field, hex_field, str_field, u64_field, verdict_ok};

const AREA: &str = "encrypted_secret_keys";

/// Runs every case of the file.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("encrypted_secret_keys.json")?;
    for example in array_field(&file, "examples")? {
        let name = str_field(example, "key_name")?;
        if let Err(e) = check_example(example, name, r) {
            r.fail(AREA, name, format!("{e:#}"));
        }
    }
    log_n_0(&file, r)?;
    for case in array_field(&file, "printable_parse_cases")? {
        let name = format!("parse/{}", str_field(case, "name")?);
        let ours = str_field(case, "input")?.parse::<EncryptedSecretKey>();
        let reference_ok = verdict_ok(case, "reference")?;
        let expected_kind = case
            .get("reference")
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let same_kind = match (&ours, expected_kind) {
            (
                Err(EncryptedKeyError::UnsupportedVersion { .. }),
                "UnsupportedEncryptedSecretKeyVersion",
            ) => true,
            (Err(EncryptedKeyError::LogNOutOfRange { .. }), "ExcessiveScryptLogNParameter") => true,
            (Err(EncryptedKeyError::WrongLength { .. }), "BadEncryptedSecretKey") => true,
            (Err(EncryptedKeyError::Printable(_)), "InvalidPrintable") => true,
            (Ok(_), _) => reference_ok,
            _ => false,
        };
        r.check(
            AREA,
            &name,
            ours.is_ok() == reference_ok && same_kind,
            format_args!("reference {expected_kind}, ours {ours:?}"),
        );
    }
    Ok(())
}

fn check_example(example: &Value, name: &str, r: &mut Report) -> Result<()> {
    let text = str_field(example, "mocryptsec0")?;
    let password = str_field(example, "password")?;
    let expected_secret = hex_field(example, "secret_key_hex")?;
    let decoded = example
        .get("decoded")
        .ok_or_else(|| anyhow::anyhow!("missing decoded"))?;

    let key = match text.parse::<EncryptedSecretKey>() {
        Ok(k) => k,
        Err(e) => {
            r.fail(AREA, &format!("{name}/parse"), e);
            return Ok(());
        }
    };
    let bytes = key.as_bytes();
    let fields_match = u64::from(bytes[0]) == u64_field(decoded, "version")?
        && u64::from(key.log_n()) == u64_field(decoded, "log_n")?
        && u64::from(key.log_n()) == u64_field(example, "log_n")?
        && bytes[2..18] == hex_field(decoded, "salt_hex")?[..]
        && bytes[18..58] == hex_field(decoded, "xor_output_hex")?[..];
    r.check(
        AREA,
        &format!("{name}/decoded"),
        fields_match,
        format_args!("parsed bytes {}", hex::encode(bytes)),
    );
    r.check(
        AREA,
        &format!("{name}/printable_roundtrip"),
        key.to_printable() == text,
        key.to_printable(),
    );

    match key.decrypt(password) {
        Ok(secret) => r.check(
            AREA,
            &format!("{name}/decrypt"),
            secret.to_bytes()[..] == expected_secret[..],
            "decrypted to a different secret key",
        ),
        Err(e) => r.fail(AREA, &format!("{name}/decrypt"), e),
    }

    let reference_refuses = !verdict_ok(example, "wrong_password")?;
    let ours = key.decrypt("wrong password");
    r.check(
        AREA,
        &format!("{name}/wrong_password"),
        reference_refuses && matches!(ours, Err(EncryptedKeyError::WrongPassword)),
        format_args!("ours {:?}", ours.map(|k| k.public())),
    );
    Ok(())
}

/// The reference encrypts and decrypts with log_n 0; we refuse it
/// (SPEC-NOTES D-17 and section 3).
fn log_n_0(file: &Value, r: &mut Report) -> Result<()> {
    let name = "log_n_0_roundtrip";
    let reference_ok = verdict_ok(file, name)?;
    let example = array_field(file, "examples")?
        .first()
        .ok_or_else(|| anyhow::anyhow!("no examples"))?;
    let mut bytes = printable::decode(
        Prefix::EncryptedSecretKey,
        str_field(example, "mocryptsec0")?,
    )?;
    if let Some(log_n) = bytes.get_mut(1) {
        *log_n = 0;
    }
    let ours = EncryptedSecretKey::from_bytes(&bytes);
    if matches!(ours, Err(EncryptedKeyError::LogNOutOfRange { found: 0 })) {
        if reference_ok {
            r.differs(
                AREA,
                name,
                "log_n 0 refused (spec 0.8.0: log_n 1..=22, D-17)",
            );
        } else {
            r.pass(AREA, name);
        }
    } else {
        r.fail(AREA, name, format_args!("log_n 0 not refused: {ours:?}"));
    }
    Ok(())
}
