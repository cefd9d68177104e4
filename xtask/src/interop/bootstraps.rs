//! `bootstraps.json`: user and server bootstraps, their BEP 44 signatures,
//! and the bootstrap and URL parse cases.
//!
//! Documented differences (SPEC-NOTES section 3): we write server keys as
//! `mosrv0` (and read `mopub0` too), accept only the `mosaic`, `mosaictcp`
//! and `mosaicwss` URL schemes, and enforce the bootstrap limits. Looking up
//! servers by usage returns every server that has the usage, where the
//! reference returns only those whose usage is exactly equal.

use anyhow::{Context, Result, bail};
use mosaic_core::bootstrap::{bep44_sign, bep44_signable, bep44_verify};
use mosaic_core::{
    BootstrapError, PublicKey, SecretKey, ServerBootstrap, ServerUsage, Url, UrlError,
    UserBootstrap, UserBootstrapEntry,
};
use serde_json::Value;

use super::{
    Report, Vectors, array_field, bool_field, hex_field, str_field, u64_field, verdict_ok,
};

const AREA: &str = "bootstraps";

/// Runs every case of the file.
pub fn run(v: &Vectors, r: &mut Report) -> Result<()> {
    let file = v.load("bootstraps.json")?;
    let keys = v.load("keys.json")?;
    for ub in array_field(&file, "user_bootstraps")? {
        let name = str_field(ub, "name")?;
        if let Err(e) = user_bootstrap(ub, name, &keys, r) {
            r.fail(AREA, name, format!("{e:#}"));
        }
    }
    for case in array_field(&file, "user_bootstrap_parse_cases")? {
        let name = format!("user_parse/{}", str_field(case, "name")?);
        if let Err(e) = user_parse_case(case, &name, r) {
            r.fail(AREA, &name, format!("{e:#}"));
        }
    }
    let sb = file
        .get("server_bootstrap")
        .context("missing server_bootstrap")?;
    if let Err(e) = server_bootstrap(sb, &keys, r) {
        r.fail(AREA, "server_bootstrap", format!("{e:#}"));
    }
    for case in array_field(&file, "server_bootstrap_parse_cases")? {
        let name = format!("server_parse/{}", str_field(case, "name")?);
        if let Err(e) = server_parse_case(case, &name, r) {
            r.fail(AREA, &name, format!("{e:#}"));
        }
    }
    for case in array_field(&file, "url_parse_cases")? {
        let input = str_field(case, "input")?;
        let name = format!("url/{input}");
        if let Err(e) = url_case(case, input, &name, r) {
            r.fail(AREA, &name, format!("{e:#}"));
        }
    }
    Ok(())
}

fn public_key(hex_text: &str) -> Result<PublicKey> {
    let bytes: [u8; 32] = hex::decode(hex_text)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a key is 32 bytes"))?;
    Ok(PublicKey::from_bytes(&bytes)?)
}

fn secret_key(keys: &Value, name: &str) -> Result<SecretKey> {
    let entry = array_field(keys, "keys")?
        .iter()
        .find(|k| k.get("name").and_then(Value::as_str) == Some(name))
        .with_context(|| format!("no key {name} in keys.json"))?;
    let bytes: [u8; 32] = hex_field(entry, "secret_key_hex")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a secret key is 32 bytes"))?;
    Ok(SecretKey::from_bytes(&bytes))
}

fn user_bootstrap(ub: &Value, name: &str, keys: &Value, r: &mut Report) -> Result<()> {
    let mut entries = Vec::new();
    for e in array_field(ub, "entries")? {
        let bits = u8::try_from(u64_field(e, "usage_bits")?)?;
        let usage = ServerUsage::from_bits(bits).context("usage bits out of range")?;
        let server = public_key(str_field(e, "server_public_key_hex")?)?;
        entries.push(UserBootstrapEntry { usage, server });
    }
    let ours = UserBootstrap::new(entries.clone())?;
    let spec_text = str_field(ub, "spec_derived_dht_string")?;
    r.check(
        AREA,
        &format!("{name}/to_text"),
        ours.to_text() == spec_text,
        format_args!("ours {:?}", ours.to_text()),
    );
    let parsed = UserBootstrap::parse(spec_text);
    r.check(
        AREA,
        &format!("{name}/parse_spec_text"),
        parsed.as_ref() == Ok(&ours),
        format_args!("{parsed:?}"),
    );
    // The reference writes `mopub0` keys; we read them (documented leniency).
    let parsed = UserBootstrap::parse(str_field(ub, "reference_dht_string")?);
    r.check(
        AREA,
        &format!("{name}/parse_reference_text"),
        parsed.as_ref() == Ok(&ours),
        format_args!("{parsed:?}"),
    );

    for lookup in array_field(ub, "reference_lookup_by_usage")? {
        let label = str_field(lookup, "usage")?;
        let case = format!("{name}/lookup/{label}");
        let bits = u8::try_from(u64_field(lookup, "usage_bits")?)?;
        let usage = ServerUsage::from_bits(bits).context("usage bits out of range")?;
        let reference = array_field(lookup, "reference_get_server_pubkeys")?
            .iter()
            .map(|k| public_key(k.as_str().unwrap_or_default()))
            .collect::<Result<Vec<_>>>()?;
        let expected_equal: Vec<PublicKey> = entries
            .iter()
            .filter(|e| e.usage == usage)
            .map(|e| e.server)
            .collect();
        let expected_contains: Vec<PublicKey> = entries
            .iter()
            .filter(|e| e.usage.contains(usage))
            .map(|e| e.server)
            .collect();
        let got: Vec<PublicKey> = ours.servers_with(usage).collect();
        if reference != expected_equal {
            r.fail(
                AREA,
                &case,
                "the reference's lookup is not what the vector says",
            );
        } else if got != expected_contains {
            r.fail(AREA, &case, format_args!("ours {got:?}"));
        } else if got == reference {
            r.pass(AREA, &case);
        } else {
            r.differs(
                AREA,
                &case,
                "every server having the usage, not only those with exactly that usage",
            );
        }
    }

    let put = ub
        .get("bep44_put_reference")
        .context("missing bep44_put_reference")?;
    let owner = secret_key(keys, str_field(ub, "owner_key")?)?;
    bep44_put(put, &format!("{name}/bep44"), &owner, r)?;
    // The stored value is the reference's text; we read it.
    let value = hex_field(put, "value_hex")?;
    let parsed = UserBootstrap::from_bytes(&value);
    r.check(
        AREA,
        &format!("{name}/bep44/value_parses"),
        parsed.as_ref() == Ok(&ours),
        format_args!("{parsed:?}"),
    );
    Ok(())
}

/// Checks the signable buffer, the signature, and that our signing
/// reproduces it (ed25519 is deterministic).
fn bep44_put(put: &Value, name: &str, owner: &SecretKey, r: &mut Report) -> Result<()> {
    let key = public_key(str_field(put, "public_key_hex")?)?;
    let salt = str_field(put, "salt")?.as_bytes();
    let seq = put
        .get("seq")
        .and_then(Value::as_i64)
        .context("missing seq")?;
    let value = hex_field(put, "value_hex")?;
    let signable = hex_field(put, "signable_hex")?;
    let signature: [u8; 64] = hex_field(put, "signature_hex")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a signature is 64 bytes"))?;

    let ours = bep44_signable(salt, seq, &value);
    r.check(
        AREA,
        &format!("{name}/signable"),
        ours == signable,
        format_args!("ours {}", hex::encode(&ours)),
    );
    let verified = bep44_verify(&key, salt, seq, &value, &signature);
    r.check(
        AREA,
        &format!("{name}/verify"),
        verified.is_ok(),
        format_args!("{verified:?}"),
    );
    let mut tampered = value.clone();
    tampered.push(b'x');
    r.check(
        AREA,
        &format!("{name}/verify_tampered"),
        bep44_verify(&key, salt, seq, &tampered, &signature).is_err()
            && bep44_verify(&key, salt, seq + 1, &value, &signature).is_err(),
        "a changed value or seq still verified",
    );
    r.check(
        AREA,
        &format!("{name}/owner"),
        owner.public() == key,
        "the owner's key is not the signing key",
    );
    let ours = bep44_sign(owner, salt, seq, &value);
    r.check(
        AREA,
        &format!("{name}/sign"),
        ours == signature,
        format_args!("ours {}", hex::encode(ours)),
    );
    Ok(())
}

fn user_parse_case(case: &Value, name: &str, r: &mut Report) -> Result<()> {
    let input = str_field(case, "input")?;
    let spec_valid = bool_field(case, "spec_expected_valid")?;
    let reference_ok = verdict_ok(case, "reference")?;
    let ours = UserBootstrap::parse(input);
    if ours.is_ok() != spec_valid {
        if ours.is_ok() && reference_ok && input.contains(" mopub0") {
            // The vectors disagree with themselves here: `valid_one_line`,
            // also with a `mopub0` key, is marked valid. bootstrap.md writes
            // `mopub0`; we read both forms (see the module docs).
            r.differs(
                AREA,
                name,
                "mopub0 server keys read for compatibility; this case's spec verdict refuses them, valid_one_line accepts them",
            );
        } else {
            r.fail(
                AREA,
                name,
                format_args!("spec valid: {spec_valid}, ours {ours:?}"),
            );
        }
        return Ok(());
    }
    // When both accept, the entries must agree with the reference's.
    if let (Ok(ours), Some(reference)) = (&ours, case.get("reference_entries")) {
        let mut expected = Vec::new();
        for e in reference
            .as_array()
            .context("reference_entries is not an array")?
        {
            expected.push((
                u8::try_from(u64_field(e, "usage_bits")?)?,
                public_key(str_field(e, "server_public_key_hex")?)?,
            ));
        }
        let got: Vec<(u8, PublicKey)> = ours
            .entries()
            .iter()
            .map(|e| (e.usage.bits(), e.server))
            .collect();
        if got != expected {
            r.fail(AREA, name, format_args!("entries differ: ours {got:?}"));
            return Ok(());
        }
    }
    if ours.is_ok() == reference_ok {
        r.pass(AREA, name);
    } else {
        r.differs(
            AREA,
            name,
            format_args!(
                "{} per spec 0.8.0 ({})",
                if spec_valid { "accepted" } else { "refused" },
                match &ours {
                    Ok(_) => "mosrv0 server keys".to_string(),
                    Err(e) => e.to_string(),
                }
            ),
        );
    }
    Ok(())
}

fn server_bootstrap(sb: &Value, keys: &Value, r: &mut Report) -> Result<()> {
    // The reference's URLs are `wss`/`https`, which are not Mosaic URLs.
    for input in array_field(sb, "url_inputs")? {
        let input = input.as_str().context("url input is not a string")?;
        let case = format!("server_bootstrap/url/{input}");
        match Url::parse(input) {
            Err(UrlError::UnknownScheme { .. }) => r.differs(
                AREA,
                &case,
                "wss/https refused: Mosaic URLs use mosaic, mosaictcp or mosaicwss",
            ),
            other => r.fail(AREA, &case, format_args!("ours {other:?}")),
        }
    }
    let text = str_field(sb, "reference_dht_string")?;
    match ServerBootstrap::parse(text) {
        Err(BootstrapError::BadUrl {
            line: 2,
            source: UrlError::UnknownScheme { .. },
        }) => r.differs(
            AREA,
            "server_bootstrap/parse_reference_text",
            "refused: its URLs use wss/https",
        ),
        other => r.fail(
            AREA,
            "server_bootstrap/parse_reference_text",
            format_args!("ours {other:?}"),
        ),
    }
    let put = sb
        .get("bep44_put_reference")
        .context("missing bep44_put_reference")?;
    let owner = secret_key(keys, str_field(sb, "owner_key")?)?;
    bep44_put(put, "server_bootstrap/bep44", &owner, r)
}

/// Whether our refusal or acceptance differs from the reference only by the
/// URL schemes each side knows.
fn scheme_explains(ours: &Result<ServerBootstrap, BootstrapError>, reference_error: &str) -> bool {
    match ours {
        Err(BootstrapError::BadUrl {
            source: UrlError::UnknownScheme { found },
            ..
        }) => found == "wss" || found == "https",
        Ok(b) => reference_error == "BadScheme" && !b.urls().is_empty(),
        Err(_) => false,
    }
}

fn server_parse_case(case: &Value, name: &str, r: &mut Report) -> Result<()> {
    let input = str_field(case, "input")?;
    let reference_ok = verdict_ok(case, "reference")?;
    let reference_error = case
        .get("reference")
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let ours = ServerBootstrap::parse(input);
    if ours.is_ok() == reference_ok {
        r.pass(AREA, name);
    } else if scheme_explains(&ours, reference_error) {
        r.differs(
            AREA,
            name,
            format_args!(
                "{} (Mosaic URL schemes are mosaic, mosaictcp, mosaicwss)",
                if ours.is_ok() { "accepted" } else { "refused" }
            ),
        );
    } else {
        r.fail(
            AREA,
            name,
            format_args!("reference ok: {reference_ok}, ours {ours:?}"),
        );
    }
    Ok(())
}

fn url_case(case: &Value, input: &str, name: &str, r: &mut Report) -> Result<()> {
    let reference_ok = verdict_ok(case, "reference")?;
    let reference_error = case
        .get("reference")
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let ours = Url::parse(input);
    if let Ok(url) = &ours {
        // Our normal form must parse back to the same URL.
        if Url::parse(&url.to_string()).as_ref() != Ok(url) {
            bail!("{url} does not parse back to itself");
        }
    }
    match (&ours, reference_ok) {
        (Ok(url), true) => {
            let display = str_field(case, "reference_display")?;
            r.check(
                AREA,
                name,
                url.to_string() == display,
                format_args!("ours {url}"),
            );
        }
        (Err(_), false) if reference_error != "BadScheme" => r.pass(AREA, name),
        (Err(UrlError::UnknownScheme { .. }), false) => r.pass(AREA, name),
        (Err(UrlError::UnknownScheme { found }), true) if found == "wss" || found == "https" => {
            r.differs(AREA, name, "wss/https refused: not a Mosaic URL scheme")
        }
        (Ok(url), false) if reference_error == "BadScheme" => r.differs(
            AREA,
            name,
            format_args!("accepted as {url}: a spec 0.8.0 scheme"),
        ),
        _ => r.fail(
            AREA,
            name,
            format_args!("reference ok: {reference_ok}, ours {ours:?}"),
        ),
    }
    Ok(())
}
