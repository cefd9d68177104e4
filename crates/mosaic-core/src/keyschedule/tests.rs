//! Tests of key schedules: layout, attestations, record rules, revocation.

use super::*;
use crate::record::RecordFlags;

fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n; 32])
}

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n).unwrap()
}

const T: u64 = 1_750_000_000_000_000_000;

/// Alice's master (1) with an active subkey (2), a REVOKED_PAST subkey (3),
/// a REVOKED_ALL subkey (4), an OUT_OF_USE subkey (5) and an encryption key.
fn alice_schedule() -> KeySchedule {
    let master = key(1).public();
    let entries = vec![
        KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::ActiveSigningKey, ts(0))
            .unwrap(),
        KeyScheduleEntry::new_attested(&master, &key(3), KeyMarker::RevokedPast, ts(T)).unwrap(),
        KeyScheduleEntry::new_attested(&master, &key(4), KeyMarker::RevokedAll, ts(T)).unwrap(),
        KeyScheduleEntry::new_attested(&master, &key(5), KeyMarker::OutOfUse, ts(T)).unwrap(),
        // The bytes of an ed25519 key, to check that they never sign.
        KeyScheduleEntry::encryption_key(
            EncryptionAlgorithm::X25519,
            key(6).public().to_bytes(),
            KeyMarker::ActiveEncryptionKey,
            ts(0),
        )
        .unwrap(),
    ];
    KeySchedule::new(master, entries).unwrap()
}

/// A master-signed key schedule record with the given tags and payload.
fn raw_record(
    signer: &SecretKey,
    author: PublicKey,
    tags: &OwnedTagSet,
    payload: &[u8],
) -> OwnedRecord {
    RecordBuilder::new(Kind::KEY_SCHEDULE, ts(T + 5))
        .nonce(KeySchedule::default_nonce())
        .author(author)
        .tags(tags)
        .payload(payload)
        .build(signer)
        .unwrap()
}

#[test]
fn record_round_trip() {
    let schedule = alice_schedule();
    let record = schedule
        .build_record(&key(1), ts(T + 5), KeySchedule::default_nonce())
        .unwrap();
    let record = OwnedRecord::from_vec(record.into_vec()).unwrap();
    assert_eq!(record.kind(), Kind::KEY_SCHEDULE);
    assert_eq!(record.signing_key(), key(1).public());
    assert_eq!(record.tags().iter().count(), 5);
    assert_eq!(record.payload().len(), 4 * 152 + 56);
    let back = KeySchedule::from_record(&record).unwrap();
    assert_eq!(back, schedule);
    assert_eq!(back.master(), key(1).public());
    assert_eq!(
        back.active_encryption_keys().collect::<Vec<_>>(),
        vec![(EncryptionAlgorithm::X25519, key(6).public().to_bytes())]
    );
    assert_eq!(
        back.entry(key(3).public().as_bytes()).map(|e| e.marker()),
        Some(KeyMarker::RevokedPast)
    );
}

#[test]
fn compressed_payload_is_read() {
    let schedule = alice_schedule();
    let payload = schedule.to_payload();
    let tags = schedule.subkey_tags().unwrap();
    let record = RecordBuilder::new(Kind::KEY_SCHEDULE, ts(T))
        .nonce(KeySchedule::default_nonce())
        .tags(&tags)
        .payload(&payload)
        .zstd(true)
        .build(&key(1))
        .unwrap();
    assert!(record.flags().contains(RecordFlags::ZSTD));
    assert_eq!(KeySchedule::from_record(&record).unwrap(), schedule);
}

#[test]
fn entry_layout_matches_spec() {
    let master = key(1).public();
    let entry = KeyScheduleEntry::encryption_key(
        EncryptionAlgorithm::X25519,
        [0x77; 32],
        KeyMarker::OutOfUse,
        ts(0x0102_0304_0506_0708),
    )
    .unwrap();
    let payload = KeySchedule::new(master, vec![entry]).unwrap().to_payload();
    assert_eq!(&payload[..8], &[2, 0, 56, 0, 0x4f, 0, 0, 0]);
    assert_eq!(&payload[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&payload[16..24], &[0xd6, 0xda, 0xf0, 0xbd, 0x33, 0, 0, 0]);
    assert_eq!(&payload[24..], &[0x77; 32]);

    let entry =
        KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::RevokedPast, ts(9)).unwrap();
    let payload = KeySchedule::new(master, vec![entry]).unwrap().to_payload();
    assert_eq!(payload.len(), 152);
    assert_eq!(&payload[..8], &[1, 0, 152, 0, 0x41, 0, 0, 0]);
    assert_eq!(&payload[8..16], &9u64.to_be_bytes());
    assert_eq!(&payload[16..24], &[0x2c, 0x28, 0x98, 0xf5, 0x8b, 0, 64, 0]);
    assert_eq!(&payload[24..56], key(2).public().as_bytes());
    assert_eq!(&payload[56..88], master.as_bytes());
    // The signature is the subkey's, over [16:88] of the entry.
    let sig: [u8; 64] = payload[88..152].try_into().unwrap();
    key(2)
        .public()
        .verify(&payload[16..88], RECORD_CONTEXT, &sig)
        .unwrap();
}

#[test]
fn attestation_round_trip_and_length() {
    let att = SubkeyAttestation::new(&key(1).public(), &key(2));
    let bytes = att.to_bytes();
    assert_eq!(SubkeyAttestation::from_bytes(&bytes).unwrap(), att);
    assert_eq!(att.subkey(), key(2).public());
    assert_eq!(att.master(), key(1).public());
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert_eq!(
        SubkeyAttestation::from_bytes(&longer),
        Err(KeyScheduleError::AttestationLength { len: 137 })
    );
    assert!(SubkeyAttestation::from_bytes(&bytes[..100]).is_err());
}

#[test]
fn forged_attestation_refused() {
    let schedule = alice_schedule();
    let mut payload = schedule.to_payload();
    payload[100] ^= 1; // inside the first attestation's signature
    let record = raw_record(
        &key(1),
        key(1).public(),
        &schedule.subkey_tags().unwrap(),
        &payload,
    );
    assert!(matches!(
        KeySchedule::from_record(&record),
        Err(KeyScheduleError::AttestationSignature { subkey, .. }) if subkey == key(2).public()
    ));

    // Claiming someone else's key: a valid-looking attestation that the key
    // never signed (the master signed it instead).
    let master = key(1).public();
    let mut forged = attested_bytes(&key(9).public(), &master).to_vec();
    forged.extend_from_slice(&key(1).sign(&forged, RECORD_CONTEXT));
    assert!(matches!(
        SubkeyAttestation::from_bytes(&forged),
        Err(KeyScheduleError::AttestationSignature { .. })
    ));
}

#[test]
fn subkey_of_another_master_refused() {
    let alice = key(1).public();
    let bob = key(8).public();
    // Bob's subkey attests to Bob; Alice lists it as hers.
    let bobs =
        KeyScheduleEntry::new_attested(&bob, &key(2), KeyMarker::ActiveSigningKey, ts(0)).unwrap();
    assert!(matches!(
        KeySchedule::new(alice, vec![bobs]),
        Err(KeyScheduleError::AttestationMaster { attested, master, .. })
            if attested == bob && master == alice
    ));
    // The same inside a record's payload.
    let payload = KeySchedule::new(bob, vec![bobs]).unwrap().to_payload();
    let tags = OwnedTagSet::from_tags([OwnedTag::subkey(&key(2).public())]).unwrap();
    let record = raw_record(&key(1), alice, &tags, &payload);
    assert!(matches!(
        KeySchedule::from_record(&record),
        Err(KeyScheduleError::AttestationMaster { .. })
    ));
}

#[test]
fn record_rules() {
    let schedule = alice_schedule();
    let payload = schedule.to_payload();
    let tags = schedule.subkey_tags().unwrap();

    // Signed by a subkey on behalf of the master.
    let record = raw_record(&key(2), key(1).public(), &tags, &payload);
    assert!(matches!(
        KeySchedule::from_record(&record),
        Err(KeyScheduleError::NotSignedByMaster { .. })
    ));

    // Another kind.
    let record = RecordBuilder::new(Kind::PROFILE, ts(T))
        .nonce(KeySchedule::default_nonce())
        .tags(&tags)
        .payload(&payload)
        .build(&key(1))
        .unwrap();
    assert!(matches!(
        KeySchedule::from_record(&record),
        Err(KeyScheduleError::WrongKind { kind }) if kind == Kind::PROFILE
    ));

    // A missing subkey tag.
    let fewer = OwnedTagSet::from_tags(tags.iter().skip(1)).unwrap();
    let record = raw_record(&key(1), key(1).public(), &fewer, &payload);
    assert_eq!(
        KeySchedule::from_record(&record),
        Err(KeyScheduleError::MissingSubkeyTag {
            key: key(2).public().to_bytes()
        })
    );

    // An extra subkey tag naming an unlisted key.
    let mut more = tags.clone();
    more.push(&OwnedTag::subkey(&key(9).public())).unwrap();
    let record = raw_record(&key(1), key(1).public(), &more, &payload);
    assert_eq!(
        KeySchedule::from_record(&record),
        Err(KeyScheduleError::UnlistedSubkeyTag {
            key: key(9).public().to_bytes()
        })
    );

    // A malformed subkey tag.
    let mut bad = tags.clone();
    bad.push(&OwnedTag::new(TagType::SUBKEY, &[0; 10]).unwrap())
        .unwrap();
    let record = raw_record(&key(1), key(1).public(), &bad, &payload);
    assert_eq!(
        KeySchedule::from_record(&record),
        Err(KeyScheduleError::MalformedSubkeyTag { len: 10 })
    );

    // Other tag types are fine.
    let mut other = tags.clone();
    other
        .push(&OwnedTag::notify_public_key(&key(8).public()))
        .unwrap();
    let record = raw_record(&key(1), key(1).public(), &other, &payload);
    assert_eq!(KeySchedule::from_record(&record).unwrap(), schedule);

    // Building with the wrong master key.
    assert!(matches!(
        schedule.build_record(&key(8), ts(T), KeySchedule::default_nonce()),
        Err(KeyScheduleError::WrongMaster { .. })
    ));
}

#[test]
fn empty_schedule_is_valid() {
    let schedule = KeySchedule::new(key(1).public(), Vec::new()).unwrap();
    let record = schedule
        .build_record(&key(1), ts(T), KeySchedule::default_nonce())
        .unwrap();
    assert!(record.payload().is_empty());
    assert_eq!(KeySchedule::from_record(&record).unwrap(), schedule);
    assert_eq!(
        schedule.signer_status(&key(2).public(), ts(T), None),
        SignerStatus::Unknown
    );
}

#[test]
fn markers_and_timestamps() {
    let master = key(1).public();
    for marker in KeyMarker::ALL {
        assert_eq!(KeyMarker::from_u16(marker.as_u16()), Some(marker));
    }
    assert_eq!(KeyMarker::from_u16(0x99), None);
    assert_eq!(
        KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::RevokedAll, ts(0)),
        Err(KeyScheduleError::MarkerNeedsTimestamp {
            marker: KeyMarker::RevokedAll
        })
    );
    assert_eq!(
        KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::RevokedPast, ts(0)),
        Err(KeyScheduleError::MarkerNeedsTimestamp {
            marker: KeyMarker::RevokedPast
        })
    );
    // Active markers carry no time: constructors zero it.
    let e = KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::ActiveSigningKey, ts(5))
        .unwrap();
    assert_eq!(e.timestamp(), Timestamp::ZERO);
    let e = KeyScheduleEntry::encryption_key(
        EncryptionAlgorithm::Secp256k1,
        [1; 32],
        KeyMarker::ActiveEncryptionKey,
        ts(12345),
    )
    .unwrap();
    assert_eq!(e.timestamp(), Timestamp::ZERO);
    // Markers must fit the kind of key.
    for marker in [KeyMarker::ActiveEncryptionKey, KeyMarker::ActiveNostrKey] {
        assert_eq!(
            KeyScheduleEntry::new_attested(&master, &key(2), marker, ts(0)),
            Err(KeyScheduleError::MarkerMismatch { marker })
        );
    }
    for marker in [
        KeyMarker::ActiveSigningKey,
        KeyMarker::RevokedAll,
        KeyMarker::RevokedPast,
        KeyMarker::ActiveNostrKey,
    ] {
        assert_eq!(
            KeyScheduleEntry::encryption_key(EncryptionAlgorithm::X25519, [1; 32], marker, ts(T)),
            Err(KeyScheduleError::MarkerMismatch { marker })
        );
    }
    // Revoking keeps the attestation.
    let active =
        KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::ActiveSigningKey, ts(0))
            .unwrap();
    let revoked = active.with_marker(KeyMarker::RevokedAll, ts(T)).unwrap();
    assert_eq!(revoked.attestation(), active.attestation());
    assert_eq!(revoked.timestamp(), ts(T));
}

#[test]
fn duplicates_and_master_refused() {
    let master = key(1).public();
    let a = KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::ActiveSigningKey, ts(0))
        .unwrap();
    let b = a.with_marker(KeyMarker::RevokedAll, ts(T)).unwrap();
    assert_eq!(
        KeySchedule::new(master, vec![a, b]),
        Err(KeyScheduleError::DuplicateKey {
            key: key(2).public().to_bytes()
        })
    );
    let own = KeyScheduleEntry::new_attested(&master, &key(1), KeyMarker::ActiveSigningKey, ts(0))
        .unwrap();
    assert_eq!(
        KeySchedule::new(master, vec![own]),
        Err(KeyScheduleError::MasterListed)
    );
}

/// The payload of a one-entry schedule, for mutation.
fn one_signing_entry() -> Vec<u8> {
    let master = key(1).public();
    let e = KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::OutOfUse, ts(T)).unwrap();
    KeySchedule::new(master, vec![e]).unwrap().to_payload()
}

fn one_encryption_entry() -> Vec<u8> {
    let e = KeyScheduleEntry::encryption_key(
        EncryptionAlgorithm::X25519,
        [3; 32],
        KeyMarker::ActiveEncryptionKey,
        ts(0),
    )
    .unwrap();
    KeySchedule::new(key(1).public(), vec![e])
        .unwrap()
        .to_payload()
}

fn parse(payload: &[u8]) -> Result<KeySchedule, KeyScheduleError> {
    KeySchedule::from_payload(&key(1).public(), payload)
}

#[test]
fn malformed_payloads_refused() {
    let good = one_signing_entry();
    assert!(parse(&good).is_ok());
    let enc = one_encryption_entry();
    assert!(parse(&enc).is_ok());

    let with = |at: usize, byte: u8, base: &[u8]| {
        let mut p = base.to_vec();
        p[at] = byte;
        parse(&p)
    };
    assert_eq!(
        with(0, 3, &good),
        Err(KeyScheduleError::UnknownEntryKind { entry: 0, kind: 3 })
    );
    assert_eq!(
        with(0, 0, &good),
        Err(KeyScheduleError::UnknownEntryKind { entry: 0, kind: 0 })
    );
    assert_eq!(
        with(1, 1, &good),
        Err(KeyScheduleError::ReservedNotZero { entry: 0 })
    );
    assert_eq!(
        with(7, 1, &good),
        Err(KeyScheduleError::ReservedNotZero { entry: 0 })
    );
    assert_eq!(
        with(4, 0x99, &good),
        Err(KeyScheduleError::UnknownMarker {
            entry: 0,
            marker: 0x99
        })
    );
    // Marker is little-endian: 0x4f00 is not OUT_OF_USE.
    let mut p = good.clone();
    p[4] = 0;
    p[5] = 0x4f;
    assert_eq!(
        parse(&p),
        Err(KeyScheduleError::UnknownMarker {
            entry: 0,
            marker: 0x4f00
        })
    );
    assert_eq!(
        with(8, 0x80, &good),
        Err(KeyScheduleError::InvalidTimestamp { entry: 0 })
    );
    assert_eq!(
        with(16, 0, &good),
        Err(KeyScheduleError::BadMagic { entry: 0 })
    );
    assert_eq!(
        with(21, 1, &good),
        Err(KeyScheduleError::UnsupportedAlgorithm {
            entry: 0,
            algorithm: 1
        })
    );
    assert_eq!(
        with(22, 65, &good),
        Err(KeyScheduleError::SignatureLength { entry: 0, len: 65 })
    );
    assert_eq!(
        with(2, 151, &good),
        Err(KeyScheduleError::EntryLength {
            entry: 0,
            len: 151,
            expected: 152
        })
    );
    assert_eq!(
        with(2, 8, &good),
        Err(KeyScheduleError::EntryLength {
            entry: 0,
            len: 8,
            expected: 152
        })
    );
    assert!(matches!(
        with(2, 160, &good),
        Err(KeyScheduleError::Truncated { .. })
    ));
    assert!(matches!(
        parse(&good[..151]),
        Err(KeyScheduleError::Truncated { .. })
    ));
    assert!(matches!(
        parse(&good[..10]),
        Err(KeyScheduleError::Truncated { .. })
    ));
    // A trailing partial entry.
    let mut p = good.clone();
    p.extend_from_slice(&[1, 0]);
    assert!(matches!(
        parse(&p),
        Err(KeyScheduleError::Truncated { entry: 1, .. })
    ));
    // A bad subkey (not on the curve) in the attestation.
    let mut p = good.clone();
    p[24..56].copy_from_slice(&[0xff; 32]);
    assert!(matches!(
        parse(&p),
        Err(KeyScheduleError::InvalidKey { .. })
    ));
    // Encryption data.
    assert_eq!(
        with(16, 0, &enc),
        Err(KeyScheduleError::BadMagic { entry: 0 })
    );
    assert_eq!(
        with(21, 2, &enc),
        Err(KeyScheduleError::UnsupportedAlgorithm {
            entry: 0,
            algorithm: 2
        })
    );
    assert_eq!(
        with(23, 1, &enc),
        Err(KeyScheduleError::ReservedNotZero { entry: 0 })
    );
    // A revocation marker with a zero timestamp.
    let mut p = good.clone();
    p[4] = 0x40;
    p[8..16].copy_from_slice(&[0; 8]);
    assert_eq!(
        parse(&p),
        Err(KeyScheduleError::MarkerNeedsTimestamp {
            marker: KeyMarker::RevokedAll
        })
    );
    // An active encryption marker on a signing key.
    assert_eq!(
        with(4, 1, &good),
        Err(KeyScheduleError::MarkerMismatch {
            marker: KeyMarker::ActiveEncryptionKey
        })
    );
    // A nonzero timestamp on an active key is accepted (SHOULD be zero).
    let mut p = enc.clone();
    p[15] = 1;
    assert_eq!(parse(&p).unwrap().entries()[0].timestamp(), ts(1));
}

#[test]
fn revocation_rules() {
    let s = alice_schedule();
    let status = |n: u8, record: u64, received: Option<u64>| {
        s.signer_status(&key(n).public(), ts(record), received.map(ts))
    };
    assert_eq!(status(1, T, None), SignerStatus::Master);
    assert_eq!(status(2, T + 100, None), SignerStatus::ActiveSubkey);
    assert_eq!(status(9, 0, Some(0)), SignerStatus::Unknown);
    // REVOKED_PAST at T.
    let before = SignerStatus::ReceivedBeforeRevocation { revoked_at: ts(T) };
    let revoked = SignerStatus::Revoked {
        marker: KeyMarker::RevokedPast,
        at: ts(T),
    };
    assert_eq!(status(3, T - 1, Some(T - 1)), before);
    assert!(before.is_valid());
    assert_eq!(status(3, T - 1, Some(T)), revoked);
    assert_eq!(status(3, T, Some(T - 1)), revoked);
    assert_eq!(status(3, T + 1, Some(T - 1)), revoked);
    assert_eq!(status(3, T - 1, None), revoked);
    assert!(!revoked.is_valid());
    // REVOKED_ALL: even old records.
    assert_eq!(
        status(4, 0, Some(0)),
        SignerStatus::Revoked {
            marker: KeyMarker::RevokedAll,
            at: ts(T)
        }
    );
    // OUT_OF_USE at T: by record timestamp, whenever received.
    assert_eq!(
        status(5, T - 1, None),
        SignerStatus::RetiredSubkey { since: ts(T) }
    );
    assert_eq!(
        status(5, T, Some(0)),
        SignerStatus::UsedAfterRetirement { since: ts(T) }
    );
    // An encryption key's bytes never sign.
    assert!(s.entry(key(6).public().as_bytes()).is_some());
    assert_eq!(status(6, 0, Some(0)), SignerStatus::Unknown);

    // OUT_OF_USE without a time keeps every record valid.
    let master = key(1).public();
    let e = KeyScheduleEntry::new_attested(&master, &key(2), KeyMarker::OutOfUse, ts(0)).unwrap();
    let s = KeySchedule::new(master, vec![e]).unwrap();
    assert_eq!(
        s.signer_status(&key(2).public(), ts(T), None),
        SignerStatus::RetiredSubkey { since: ts(0) }
    );
}

fn note_by(signer: &SecretKey, kind: Kind, timestamp: u64) -> OwnedRecord {
    RecordBuilder::new(kind, ts(timestamp))
        .nonce(Nonce::from_key(b"note"))
        .author(key(1).public())
        .payload(b"hi")
        .build(signer)
        .unwrap()
}

#[test]
fn record_signer_validation() {
    let s = alice_schedule();
    let note = Kind::MICROBLOG_ROOT;
    assert_eq!(
        validate_record_signer(&note_by(&key(1), note, T), None, None),
        Ok(SignerStatus::Master)
    );
    assert_eq!(
        validate_record_signer(&note_by(&key(2), note, T), Some(&s), None),
        Ok(SignerStatus::ActiveSubkey)
    );
    assert_eq!(
        validate_record_signer(&note_by(&key(2), note, T), None, None),
        Err(KeyScheduleError::NoSchedule)
    );
    assert_eq!(
        validate_record_signer(&note_by(&key(3), note, T - 5), Some(&s), Some(ts(T - 1))),
        Ok(SignerStatus::ReceivedBeforeRevocation { revoked_at: ts(T) })
    );
    assert!(matches!(
        validate_record_signer(&note_by(&key(3), note, T - 5), Some(&s), Some(ts(T))),
        Err(KeyScheduleError::InvalidSigner {
            status: SignerStatus::Revoked { .. },
            ..
        })
    ));
    assert!(matches!(
        validate_record_signer(&note_by(&key(9), note, T), Some(&s), None),
        Err(KeyScheduleError::InvalidSigner {
            status: SignerStatus::Unknown,
            ..
        })
    ));
    // A schedule of someone else.
    let bob = KeySchedule::new(key(8).public(), Vec::new()).unwrap();
    assert!(matches!(
        validate_record_signer(&note_by(&key(2), note, T), Some(&bob), None),
        Err(KeyScheduleError::ScheduleOfAnotherAuthor { .. })
    ));
    // Profiles and key schedules need the master key, even with a schedule.
    for kind in [Kind::PROFILE, Kind::KEY_SCHEDULE] {
        assert!(matches!(
            validate_record_signer(&note_by(&key(2), kind, T), Some(&s), None),
            Err(KeyScheduleError::NotSignedByMaster { .. })
        ));
    }
}

proptest::proptest! {
    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        if let Ok(s) = parse(&bytes) {
            proptest::prop_assert_eq!(s.to_payload(), bytes);
        }
    }

    #[test]
    fn mutated_payload_never_panics(at in 0usize..208, byte in proptest::prelude::any::<u8>()) {
        let mut p = one_signing_entry();
        p.extend_from_slice(&one_encryption_entry());
        p[at] = byte;
        if let Ok(s) = parse(&p) {
            proptest::prop_assert_eq!(s.to_payload(), p);
        }
    }
}
