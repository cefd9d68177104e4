//! Batch validation gives every record exactly the verdict of validating it
//! alone: batches mixing valid records (torsion components included) with
//! every kind of record the single check refuses, in random positions and
//! sizes, and the records of the interoperability vectors in one batch.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use mosaic_core::{
    KeyError, Kind, Nonce, OwnedRecord, RECORD_CONTEXT, Record, RecordBuilder, RecordError,
    SERVER_AUTH_CONTEXT, SecretKey, SignatureError, Timestamp, blake3_xof64,
};
use proptest::collection::vec;
use proptest::prelude::*;
use sha2::{Digest, Sha512};

use crate::support::{array, hex_at, load};

/// Cases of the batch property; each signs and checks dozens of records.
const BATCH_CASES: u32 = 40;
/// Where the signed bytes start in a record.
const SIGNED_AT: usize = 48;

/// Non-canonical encodings of points that decompress: y = 1 and y = p - 1
/// with the sign bit set, and y = p + 1 and y = p (read as 1 and 0).
const NON_CANONICAL: [&str; 4] = [
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

/// Canonical encodings of small-order points: the identity, the point of
/// order 2, two of order 4 and two of order 8.
const SMALL_ORDER: [&str; 6] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
];

/// The fixed signers most records come from, so that a batch holds several
/// records by one key.
const SEEDS: [[u8; 32]; 3] = [[0x51; 32], [0x52; 32], [0x53; 32]];

fn bytes32(hex_text: &str) -> [u8; 32] {
    let bytes = hex::decode(hex_text).expect("hex constant");
    bytes.try_into().expect("32 bytes")
}

/// A point of order 8, for torsion components.
fn torsion_point(which: usize) -> EdwardsPoint {
    let point = CompressedEdwardsY(bytes32(SMALL_ORDER[4 + which % 2]))
        .decompress()
        .expect("a point");
    assert!(point.mul_by_cofactor().is_identity(), "small order");
    assert!(!(point + point + point + point).is_identity(), "order 8");
    point
}

/// The secret scalar of an Ed25519 seed (RFC 8032 section 5.1.5).
fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h: [u8; 64] = Sha512::digest(seed).into();
    let mut lower = [0u8; 32];
    lower.copy_from_slice(&h[..32]);
    lower[0] &= 248;
    lower[31] &= 127;
    lower[31] |= 64;
    Scalar::from_bytes_mod_order(lower)
}

/// Signs a prehash with Ed25519ph by hand, so that the signature can carry
/// what no honest signer makes: a torsion component in `R`, or any context.
fn sign_by_hand(
    secret: &Scalar,
    public: &[u8; 32],
    prehash: &[u8; 64],
    context: &[u8],
    nonce: u64,
    r_torsion: Option<EdwardsPoint>,
) -> [u8; 64] {
    let mut wide = [0u8; 64];
    wide[..8].copy_from_slice(&nonce.to_le_bytes());
    wide[8..40].copy_from_slice(&secret.to_bytes());
    let r: [u8; 64] = Sha512::digest(wide).into();
    let r = Scalar::from_bytes_mod_order_wide(&r);
    let mut big_r = ED25519_BASEPOINT_POINT * r;
    if let Some(t) = r_torsion {
        big_r += t;
    }
    let r_bytes = big_r.compress().to_bytes();
    let mut h = Sha512::new();
    h.update(b"SigEd25519 no Ed25519 collisions");
    h.update([1u8, context.len() as u8]);
    h.update(context);
    h.update(r_bytes);
    h.update(public);
    h.update(prehash);
    let k: [u8; 64] = h.finalize().into();
    let k = Scalar::from_bytes_mod_order_wide(&k);
    let s = r + k * secret;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// Writes the hash of the record's signed bytes into its id, then a
/// signature by hand over it, as a valid record has them.
fn reseal(
    bytes: &mut [u8],
    secret: &Scalar,
    context: &[u8],
    nonce: u64,
    r_torsion: Option<EdwardsPoint>,
) {
    let end = bytes.len() - 64;
    let hash = blake3_xof64(&bytes[SIGNED_AT..end]);
    bytes[8..48].copy_from_slice(&hash[..40]);
    let public: [u8; 32] = bytes[96..128].try_into().expect("32 bytes");
    let sig = sign_by_hand(secret, &public, &hash, context, nonce, r_torsion);
    bytes[end..].copy_from_slice(&sig);
}

/// What to do to a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// Nothing: valid.
    Valid,
    /// Signed again with a point of order 8 added to `R`: valid under the
    /// cofactored rule.
    TorsionR,
    /// Signed by a key with a torsion component (`[a]B + T`, not of small
    /// order): valid under the cofactored rule.
    MixedOrderKey,
    /// `R` replaced by a non-canonical encoding.
    NonCanonicalR,
    /// The signing key replaced by a non-canonical encoding.
    NonCanonicalSigningKey,
    /// The author key replaced by a non-canonical encoding.
    NonCanonicalAuthor,
    /// The signing key replaced by a small-order point.
    SmallOrderSigningKey,
    /// The author key replaced by a small-order point.
    SmallOrderAuthor,
    /// `s` replaced by `s + L`.
    HighS,
    /// Signed with the server authentication context instead of `"Mosaic"`.
    OtherContext,
    /// Signed by another key than the one it names.
    WrongSigner,
    /// One bit of the signed bytes flipped.
    FlippedSignedBit,
    /// One bit of the signature flipped.
    FlippedSignatureBit,
    /// A printable kind whose payload is not UTF-8, correctly signed: the
    /// signature holds, the content check refuses it.
    BadContent,
    /// The same with a signature that does not hold: the signature error
    /// comes first.
    BadContentBadSignature,
}

const FLAVOURS: [Flavour; 15] = [
    Flavour::Valid,
    Flavour::TorsionR,
    Flavour::MixedOrderKey,
    Flavour::NonCanonicalR,
    Flavour::NonCanonicalSigningKey,
    Flavour::NonCanonicalAuthor,
    Flavour::SmallOrderSigningKey,
    Flavour::SmallOrderAuthor,
    Flavour::HighS,
    Flavour::OtherContext,
    Flavour::WrongSigner,
    Flavour::FlippedSignedBit,
    Flavour::FlippedSignatureBit,
    Flavour::BadContent,
    Flavour::BadContentBadSignature,
];

/// One record of a batch: who signs it, what it says, and how it is spoiled.
#[derive(Debug, Clone)]
struct Item {
    /// Index into `SEEDS`, or a seed of its own when out of range.
    signer: usize,
    own_seed: [u8; 32],
    printable: bool,
    nonce: [u8; 8],
    payload: String,
    flavour: Flavour,
    /// Picks positions, bits and encodings.
    choice: u64,
}

fn item(flavours: &'static [Flavour]) -> impl Strategy<Value = Item> {
    (
        0..4usize,
        any::<[u8; 32]>(),
        any::<bool>(),
        any::<[u8; 8]>(),
        "[a-z ]{1,40}",
        prop::sample::select(flavours),
        any::<u64>(),
    )
        .prop_map(
            |(signer, own_seed, printable, nonce, payload, flavour, choice)| Item {
                signer,
                own_seed,
                printable,
                nonce,
                payload,
                flavour,
                choice,
            },
        )
}

fn make(item: &Item) -> Vec<u8> {
    let seed = SEEDS.get(item.signer).copied().unwrap_or(item.own_seed);
    let secret = SecretKey::from_bytes(&seed);
    let scalar = secret_scalar(&seed);
    let needs_printable = matches!(
        item.flavour,
        Flavour::BadContent | Flavour::BadContentBadSignature
    );
    let kind = if item.printable || needs_printable {
        Kind::MICROBLOG_ROOT
    } else {
        Kind::from_u64(0x0000_0001_0009_0000)
    };
    let at =
        Timestamp::from_nanos(1_750_000_000_000_000_000 + (item.choice >> 40)).expect("below 2^63");
    let record = RecordBuilder::new(kind, at)
        .nonce(Nonce::from_bytes_forced(item.nonce))
        .payload(item.payload.as_bytes())
        .build(&secret)
        .expect("a valid record");
    let payload_at = record.payload().as_ptr() as usize - record.as_bytes().as_ptr() as usize;
    let mut bytes = record.into_vec();
    let len = bytes.len();
    let sig_at = len - 64;
    let c = item.choice as usize;
    match item.flavour {
        Flavour::Valid => {}
        Flavour::TorsionR => reseal(
            &mut bytes,
            &scalar,
            RECORD_CONTEXT,
            item.choice,
            Some(torsion_point(c)),
        ),
        Flavour::MixedOrderKey => {
            let key = (ED25519_BASEPOINT_POINT * scalar + torsion_point(c))
                .compress()
                .to_bytes();
            bytes[64..96].copy_from_slice(&key);
            bytes[96..128].copy_from_slice(&key);
            reseal(&mut bytes, &scalar, RECORD_CONTEXT, item.choice, None);
        }
        Flavour::NonCanonicalR => {
            bytes[sig_at..sig_at + 32].copy_from_slice(&bytes32(NON_CANONICAL[c % 4]));
        }
        Flavour::NonCanonicalSigningKey => {
            bytes[96..128].copy_from_slice(&bytes32(NON_CANONICAL[c % 4]));
        }
        Flavour::NonCanonicalAuthor => {
            bytes[64..96].copy_from_slice(&bytes32(NON_CANONICAL[c % 4]));
        }
        Flavour::SmallOrderSigningKey => {
            bytes[96..128].copy_from_slice(&bytes32(SMALL_ORDER[c % 6]));
        }
        Flavour::SmallOrderAuthor => {
            bytes[64..96].copy_from_slice(&bytes32(SMALL_ORDER[c % 6]));
        }
        Flavour::HighS => {
            let s: [u8; 32] = bytes[sig_at + 32..].try_into().expect("32 bytes");
            // s + L, added by hand: L = 2^252 + 27742317777372353535851937790883648493.
            let l = bytes32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
            let mut carry = 0u16;
            for i in 0..32 {
                let sum = u16::from(s[i]) + u16::from(l[i]) + carry;
                bytes[sig_at + 32 + i] = sum as u8;
                carry = sum >> 8;
            }
        }
        Flavour::OtherContext => {
            reseal(&mut bytes, &scalar, SERVER_AUTH_CONTEXT, item.choice, None);
        }
        Flavour::WrongSigner => {
            let other = secret_scalar(&[0x99; 32]);
            reseal(&mut bytes, &other, RECORD_CONTEXT, item.choice, None);
        }
        Flavour::FlippedSignedBit => {
            let at = SIGNED_AT + c % (sig_at - SIGNED_AT);
            bytes[at] ^= 1 << ((c >> 32) % 8);
        }
        Flavour::FlippedSignatureBit => {
            let at = sig_at + c % 64;
            bytes[at] ^= 1 << ((c >> 32) % 8);
        }
        Flavour::BadContent | Flavour::BadContentBadSignature => {
            bytes[payload_at] = 0xff;
            let context = if item.flavour == Flavour::BadContent {
                RECORD_CONTEXT
            } else {
                SERVER_AUTH_CONTEXT
            };
            reseal(&mut bytes, &scalar, context, item.choice, None);
        }
    }
    bytes
}

/// The error the single check must give each spoiled record (`None` where
/// the flip's effect depends on the bit).
fn expected(flavour: Flavour) -> Option<Result<(), RecordError>> {
    let sig = |e| Some(Err(RecordError::Signature(e)));
    match flavour {
        Flavour::Valid | Flavour::TorsionR | Flavour::MixedOrderKey => Some(Ok(())),
        Flavour::NonCanonicalR => sig(SignatureError::InvalidR),
        Flavour::HighS => sig(SignatureError::NonCanonicalS),
        Flavour::OtherContext | Flavour::WrongSigner | Flavour::BadContentBadSignature => {
            sig(SignatureError::Mismatch)
        }
        Flavour::NonCanonicalSigningKey => {
            Some(Err(RecordError::SigningKey(KeyError::NonCanonical)))
        }
        Flavour::NonCanonicalAuthor => Some(Err(RecordError::AuthorKey(KeyError::NonCanonical))),
        Flavour::SmallOrderSigningKey => Some(Err(RecordError::SigningKey(KeyError::SmallOrder))),
        Flavour::SmallOrderAuthor => Some(Err(RecordError::AuthorKey(KeyError::SmallOrder))),
        Flavour::BadContent => Some(Err(RecordError::PayloadNotUtf8)),
        Flavour::FlippedSignedBit | Flavour::FlippedSignatureBit => None,
    }
}

/// Asserts that the batch verdicts are the single verdicts, item by item,
/// through both batch functions.
fn assert_batch_matches_single(records: &[Vec<u8>]) -> Vec<Result<(), RecordError>> {
    let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let batch = Record::from_bytes_batch(&slices);
    assert_eq!(batch.len(), records.len());
    let mut singles = Vec::with_capacity(records.len());
    for (i, (bytes, verdict)) in slices.iter().zip(&batch).enumerate() {
        let single = Record::from_bytes(bytes);
        assert_eq!(verdict, &single, "record {i} of {}", records.len());
        if let Ok(record) = verdict {
            assert_eq!(record.as_bytes().as_ptr(), bytes.as_ptr(), "record {i}");
        }
        singles.push(single.map(|_| ()));
    }
    let owned = OwnedRecord::from_vec_batch(records.to_vec());
    for (i, (verdict, single)) in owned.iter().zip(&singles).enumerate() {
        assert_eq!(&verdict.as_ref().map(|_| ()).map_err(Clone::clone), single);
        if let Ok(record) = verdict {
            assert_eq!(record.as_bytes(), &records[i][..]);
        }
    }
    singles
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(BATCH_CASES))]

    #[test]
    fn batch_verdicts_are_the_single_verdicts(items in vec(item(&FLAVOURS), 0..72)) {
        let records: Vec<Vec<u8>> = items.iter().map(make).collect();
        let singles = assert_batch_matches_single(&records);
        for (item, single) in items.iter().zip(&singles) {
            if let Some(expected) = expected(item.flavour) {
                prop_assert_eq!(single, &expected, "{:?}", item);
            }
        }
    }

    #[test]
    fn batches_of_valid_records_with_torsion_are_valid(
        items in vec(item(&FLAVOURS[..3]), 1..40),
    ) {
        let records: Vec<Vec<u8>> = items.iter().map(make).collect();
        let singles = assert_batch_matches_single(&records);
        prop_assert!(singles.iter().all(Result::is_ok));
    }
}

/// Deterministic items: `n` records over the fixed signers, spoiled where
/// `spoil` says.
fn items(n: usize, spoil: impl Fn(usize) -> Flavour) -> Vec<Item> {
    (0..n)
        .map(|i| Item {
            signer: i % 5,
            own_seed: [i as u8; 32],
            printable: i % 3 == 0,
            nonce: (0x8000_0000_0000_0000u64 | i as u64).to_be_bytes(),
            payload: format!("record {i}"),
            flavour: spoil(i),
            choice: (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        })
        .collect()
}

#[test]
fn large_batches_find_every_bad_signature() {
    // Above 190 points the multiplication switches algorithm; cover both.
    for n in [2, 3, 5, 8, 64, 256, 300] {
        let valid: Vec<Vec<u8>> = items(n, |i| FLAVOURS[i % 3]).iter().map(make).collect();
        assert!(
            assert_batch_matches_single(&valid)
                .iter()
                .all(Result::is_ok)
        );

        // One bad signature, first, last and in the middle.
        for bad in [0, n / 2, n - 1] {
            let spoiled: Vec<Vec<u8>> = items(n, |i| {
                if i == bad {
                    Flavour::WrongSigner
                } else {
                    FLAVOURS[i % 3]
                }
            })
            .iter()
            .map(make)
            .collect();
            let verdicts = assert_batch_matches_single(&spoiled);
            assert_eq!(verdicts.iter().filter(|v| v.is_err()).count(), 1);
        }

        // Every kind, spread out.
        let mixed: Vec<Vec<u8>> = items(n, |i| FLAVOURS[(i * 7) % FLAVOURS.len()])
            .iter()
            .map(make)
            .collect();
        assert_batch_matches_single(&mixed);
    }
}

#[test]
fn a_batch_of_nothing_has_no_verdicts() {
    assert!(Record::from_bytes_batch(&[]).is_empty());
    assert!(OwnedRecord::from_vec_batch(Vec::new()).is_empty());
}

#[test]
fn vector_records_verify_in_one_batch_as_alone() {
    let records = load("records.json");
    let invalid = load("invalid_records.json");
    let mut inputs: Vec<Vec<u8>> = array(&records, "records")
        .iter()
        .filter_map(|case| hex_at(case, "/expected/record_hex"))
        .collect();
    let valid = inputs.len();
    inputs.extend(
        array(&invalid, "cases")
            .iter()
            .filter_map(|case| hex_at(case, "/record_hex")),
    );
    assert!(valid >= 15, "records.json lists 15 records");
    assert!(inputs.len() > valid, "invalid_records.json lists cases");
    let verdicts = assert_batch_matches_single(&inputs);
    let accepted = verdicts.iter().filter(|v| v.is_ok()).count();
    assert!(accepted >= valid, "only {accepted} vector records verified");
    assert!(accepted < inputs.len(), "every invalid record was accepted");
    // And each valid record again, inside a batch of the others in reverse.
    let mut reversed = inputs.clone();
    reversed.reverse();
    assert_batch_matches_single(&reversed);
}
