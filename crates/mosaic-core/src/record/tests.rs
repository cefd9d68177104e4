//! Unit tests of records: building, validating, and each refusal.

use super::*;
use crate::keys::SecretKey;
use crate::tag::OwnedTag;

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n).unwrap()
}

const MICROBLOG: Kind = Kind::from_u64(0x0000_0001_0001_001c);
const BINARY: Kind = Kind::from_u64(0x0000_0063_0007_0003);

fn sample(payload: &[u8]) -> OwnedRecord {
    let master = SecretKey::from_bytes(&[1; 32]);
    let sub = SecretKey::from_bytes(&[2; 32]);
    RecordBuilder::new(MICROBLOG, ts(1_750_000_000_123_456_789))
        .nonce(Nonce::from_key(b"n"))
        .author(master.public())
        .tag(&OwnedTag::notify_public_key(&sub.public()))
        .payload(payload)
        .build(&sub)
        .unwrap()
}

#[test]
fn built_records_validate_and_read_back() {
    for len in [0usize, 1, 7, 8, 9, 100] {
        let payload = "x".repeat(len);
        let rec = sample(payload.as_bytes());
        let parsed = Record::from_bytes(rec.as_bytes()).unwrap();
        assert_eq!(parsed.payload(), payload.as_bytes());
        assert_eq!(parsed.kind(), MICROBLOG);
        assert_eq!(parsed.timestamp(), ts(1_750_000_000_123_456_789));
        assert_eq!(parsed.id().timestamp(), parsed.timestamp());
        assert_eq!(parsed.tags().iter().count(), 1);
        assert_eq!(parsed.author(), SecretKey::from_bytes(&[1; 32]).public());
        assert_eq!(
            parsed.signing_key(),
            SecretKey::from_bytes(&[2; 32]).public()
        );
        assert_eq!(parsed.len() % 8, 0);
        assert_eq!(parsed.address().author(), parsed.author());
    }
}

#[test]
fn zstd_payloads_round_trip() {
    let text = "Mosaic ".repeat(200);
    let key = SecretKey::from_bytes(&[3; 32]);
    let rec = RecordBuilder::new(MICROBLOG, ts(5))
        .nonce(Nonce::from_key(b"z"))
        .payload(text.as_bytes())
        .zstd(true)
        .build(&key)
        .unwrap();
    assert!(rec.flags().is_zstd());
    assert!(rec.payload().len() < text.len());
    assert_eq!(&*rec.payload_text().unwrap(), text);
    OwnedRecord::from_vec(rec.clone().into_vec()).unwrap();
}

#[test]
fn printable_form_round_trips() {
    let rec = sample(b"hi");
    assert_eq!(
        OwnedRecord::from_printable(&rec.to_printable()).unwrap(),
        rec
    );
}

/// Re-signs `bytes` after a mutation so only the targeted rule is broken.
fn resign(mut bytes: Vec<u8>, key: &SecretKey) -> Vec<u8> {
    let s = Sections::read(&bytes);
    let end = s.signature_at();
    let hash = crypto::blake3_xof64(&bytes[NONCE_AT..end]);
    let sig = key.sign_prehashed(&hash, RECORD_CONTEXT);
    bytes[end..end + 64].copy_from_slice(&sig);
    let t: [u8; 8] = array(&bytes, TIMESTAMP_AT);
    bytes[..8].copy_from_slice(&t);
    bytes[8..48].copy_from_slice(&hash[..40]);
    bytes
}

#[test]
fn each_rule_is_enforced() {
    let sub = SecretKey::from_bytes(&[2; 32]);
    let good = sample(b"payload").into_vec();
    let check = |bytes: Vec<u8>, step: ValidationStep| {
        let err = Record::from_bytes(&bytes).unwrap_err();
        assert_eq!(err.step(), step, "{err}");
    };

    check(good[..151].to_vec(), ValidationStep::Length);
    check(vec![0; MAX_RECORD_LEN + 8], ValidationStep::Length);
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 8]);
    check(longer, ValidationStep::SectionLengths);

    let mut m = good.clone();
    m[160] ^= 1;
    check(m, ValidationStep::Hash);

    let mut m = good.clone();
    m[7] ^= 1;
    check(m, ValidationStep::IdTimestamp);

    let mut m = good.clone();
    let last = m.len() - 20;
    m[last] ^= 1;
    check(m, ValidationStep::Signature);

    for (at, value) in [(136, 0x02u8), (136, 0x08), (137, 0x01), (138, 0x80)] {
        let mut m = good.clone();
        m[at] = value;
        check(resign(m, &sub), ValidationStep::Flags);
    }
    let mut m = good.clone();
    m[136] = 0x40;
    check(resign(m, &sub), ValidationStep::Flags);

    // Flag bytes 3 to 7 are ignored.
    let mut m = good.clone();
    m[139] = 0x01;
    m[143] = 0x80;
    Record::from_bytes(&resign(m, &sub)).unwrap();

    let mut m = good.clone();
    m[48] &= 0x7f;
    check(resign(m, &sub), ValidationStep::Layout);

    let mut m = good.clone();
    m[152] = 3;
    check(resign(m, &sub), ValidationStep::Layout);

    // Small-order author key (the identity point).
    let mut m = good.clone();
    m[64..96].copy_from_slice(&[0; 32]);
    m[64] = 1;
    check(resign(m, &sub), ValidationStep::AuthorKey);

    // A signing key field that is not the signer's.
    let mut m = good.clone();
    m[96..128].copy_from_slice(SecretKey::from_bytes(&[9; 32]).public().as_bytes());
    check(resign(m, &sub), ValidationStep::Signature);
}

#[test]
fn printable_kinds_need_utf8() {
    let key = SecretKey::from_bytes(&[3; 32]);
    let err = RecordBuilder::new(MICROBLOG, ts(1))
        .nonce(Nonce::from_key(b"u"))
        .payload(&[0xff, 0xfe])
        .build(&key)
        .unwrap_err();
    assert_eq!(err, RecordError::PayloadNotUtf8);
    // The same bytes are fine in a binary kind.
    RecordBuilder::new(BINARY, ts(1))
        .nonce(Nonce::from_key(b"u"))
        .payload(&[0xff, 0xfe])
        .build(&key)
        .unwrap();
}

#[test]
fn builder_limits() {
    let key = SecretKey::from_bytes(&[3; 32]);
    assert_eq!(
        RecordBuilder::new(BINARY, ts(1)).build(&key).unwrap_err(),
        RecordError::MissingNonce
    );
    let big = vec![0u8; MAX_RECORD_LEN];
    assert!(matches!(
        RecordBuilder::new(BINARY, ts(1))
            .nonce(Nonce::from_key(b"b"))
            .payload(&big)
            .build(&key),
        Err(RecordError::TooLong { .. })
    ));
    // The largest payload that fits.
    let fits = vec![0u8; MAX_RECORD_LEN - HEADER_LEN - SIGNATURE_LEN];
    let rec = RecordBuilder::new(BINARY, ts(1))
        .nonce(Nonce::from_key(b"b"))
        .payload(&fits)
        .build(&key)
        .unwrap();
    assert_eq!(rec.len(), MAX_RECORD_LEN);
    Record::from_bytes(rec.as_bytes()).unwrap();
}

#[test]
fn zstd_bomb_refused() {
    // 2 MiB of zeros compresses to a few bytes; the record must be refused.
    let key = SecretKey::from_bytes(&[3; 32]);
    let bomb = zstd::bulk::compress(&vec![0u8; 2 * MAX_RECORD_LEN], 3).unwrap();
    let mut rec = RecordBuilder::new(BINARY, ts(1))
        .nonce(Nonce::from_key(b"b"))
        .payload(&bomb)
        .build(&key)
        .unwrap()
        .into_vec();
    rec[136] |= 0x01;
    let rec = resign(rec, &key);
    // An opaque payload is the application's business: the record is valid,
    // but decompressing it is refused.
    let parsed = Record::from_bytes(&rec).unwrap();
    assert_eq!(
        parsed.payload_decompressed().unwrap_err(),
        RecordError::DecompressedTooLarge
    );
    // A printable kind must decompress to UTF-8, so the same payload makes
    // the record invalid.
    let mut printable = rec.clone();
    printable[56..64].copy_from_slice(&MICROBLOG.to_be_bytes());
    let printable = resign(printable, &key);
    assert_eq!(
        Record::from_bytes(&printable).unwrap_err(),
        RecordError::DecompressedTooLarge
    );
    assert_eq!(
        RecordBuilder::new(MICROBLOG, ts(1))
            .nonce(Nonce::from_key(b"b"))
            .precompressed_payload(&bomb)
            .build(&key)
            .unwrap_err(),
        RecordError::DecompressedTooLarge
    );
}

#[test]
fn unverified_parse_still_checks_lengths() {
    let good = sample(b"abc").into_vec();
    let mut forged = good.clone();
    forged[160] ^= 1;
    assert!(Record::danger_from_bytes_unverified(&forged).is_ok());
    assert!(Record::danger_from_bytes_unverified(&good[..160]).is_err());
    assert_eq!(Record::len_from_header(&good).unwrap(), good.len());
}
