//! The Mosaic signature construction (`cryptography.md`, `record.md`).
//!
//! Records are signed with RFC 8032 Ed25519ph, context `"Mosaic"`, where the
//! 64-byte prehash is BLAKE3 (unkeyed, `finalize_xof`, 64 bytes) of the signed
//! bytes. Signing is deterministic. Verification is strict and *cofactored*:
//! the public key must be canonical and not of small order, `R` must be
//! canonical, `s` must be below the group order `L`, and
//! `[8][s]B == [8]R + [8][k]A` must hold.
//!
//! The same construction with another context signs the transport
//! authentication challenges (SPEC-NOTES D-3, D-4), so that a signature made
//! for one purpose can never pass for another.

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

/// The context of record signatures.
pub const RECORD_CONTEXT: &[u8] = b"Mosaic";
/// The context of a server's proof of its key over WebSocket (D-3).
pub const SERVER_AUTH_CONTEXT: &[u8] = b"Mosaic server authentication";
/// The context of a client's proof of its key over WebSocket (D-4).
pub const CLIENT_AUTH_CONTEXT: &[u8] = b"Mosaic client authentication";

/// RFC 8032 `dom2` prefix for Ed25519ph.
const DOM2_PREFIX: &[u8] = b"SigEd25519 no Ed25519 collisions";

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// `R` is not the canonical encoding of a curve point.
    #[error("signature R is not a canonical curve point")]
    InvalidR,
    /// `s` is not below the group order.
    #[error("signature s is not below the group order")]
    NonCanonicalS,
    /// The signer's public key is not a valid, strong key.
    #[error("the signing public key is invalid")]
    InvalidPublicKey,
    /// The equation does not hold: the signature is not by this key over
    /// these bytes.
    #[error("signature does not match the signed data and key")]
    Mismatch,
}

/// BLAKE3 of `data` extended to 64 bytes with `finalize_xof`: the Ed25519ph
/// prehash of Mosaic signatures.
pub fn blake3_xof64(data: &[u8]) -> [u8; 64] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(data);
    xof64(&hasher)
}

/// The first 64 bytes of a BLAKE3 hasher's extendable output.
pub(crate) fn xof64(hasher: &blake3::Hasher) -> [u8; 64] {
    let mut out = [0u8; 64];
    hasher.finalize_xof().fill(&mut out);
    out
}

/// Context length must fit one byte.
fn dom2(h: &mut Sha512, context: &[u8]) {
    debug_assert!(context.len() <= 255);
    h.update(DOM2_PREFIX);
    h.update([1u8, context.len() as u8]);
    h.update(context);
}

fn hash_to_scalar(h: Sha512) -> Scalar {
    let wide: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// The secret scalar and nonce prefix expanded from a 32-byte seed.
pub(crate) struct Expanded {
    scalar: Scalar,
    prefix: [u8; 32],
}

impl Drop for Expanded {
    fn drop(&mut self) {
        self.scalar.zeroize();
        self.prefix.zeroize();
    }
}

impl Expanded {
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Expanded {
        let mut h: [u8; 64] = Sha512::digest(seed).into();
        let mut lower = [0u8; 32];
        lower.copy_from_slice(&h[..32]);
        lower[0] &= 248;
        lower[31] &= 127;
        lower[31] |= 64;
        let scalar = Scalar::from_bytes_mod_order(lower);
        let mut prefix = [0u8; 32];
        prefix.copy_from_slice(&h[32..]);
        lower.zeroize();
        h.zeroize();
        Expanded { scalar, prefix }
    }

    pub(crate) fn public_point(&self) -> EdwardsPoint {
        &self.scalar * ED25519_BASEPOINT_TABLE
    }
}

/// Signs a 64-byte prehash with Ed25519ph under `context`.
pub(crate) fn sign_prehashed(
    key: &Expanded,
    public: &[u8; 32],
    prehash: &[u8; 64],
    context: &[u8],
) -> [u8; 64] {
    let mut h = Sha512::new();
    dom2(&mut h, context);
    h.update(key.prefix);
    h.update(prehash);
    let r = hash_to_scalar(h);
    let big_r = (&r * ED25519_BASEPOINT_TABLE).compress();

    let mut h = Sha512::new();
    dom2(&mut h, context);
    h.update(big_r.as_bytes());
    h.update(public);
    h.update(prehash);
    let k = hash_to_scalar(h);

    let s = k * key.scalar + r;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// Decompresses a public key, requiring the canonical encoding and a point
/// that is not of small order.
pub(crate) fn decompress_public(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let point = CompressedEdwardsY(*bytes).decompress()?;
    if !is_canonical_encoding(bytes) || point.is_small_order() {
        return None;
    }
    Some(point)
}

/// Whether 32 bytes that decompress to a point are that point's canonical
/// encoding, i.e. whether compressing the point again gives the same bytes.
///
/// Decompression reads y from the low 255 bits (reducing it mod p) and
/// gives x the sign of bit 255, which it cannot do for x = 0. So the
/// encoding is canonical unless y >= p, or the sign bit is set while x = 0,
/// which happens exactly for y = 1 and y = p - 1. Checking the bytes costs
/// nothing, where compressing the point costs a field inversion.
pub(crate) fn is_canonical_encoding(bytes: &[u8; 32]) -> bool {
    // p = 2^255 - 19: y >= p when bits 8..255 are all ones and the low byte
    // is at least 0xed; p - 1 has the same high bits and low byte 0xec.
    let high_all_ones = bytes[1..31].iter().all(|&b| b == 0xff) && bytes[31] & 0x7f == 0x7f;
    if high_all_ones && bytes[0] >= 0xed {
        return false;
    }
    if bytes[31] & 0x80 != 0 {
        let y_is_one = bytes[0] == 1 && bytes[1..31].iter().all(|&b| b == 0) && bytes[31] == 0x80;
        let y_is_minus_one = high_all_ones && bytes[0] == 0xec;
        if y_is_one || y_is_minus_one {
            return false;
        }
    }
    true
}

/// Verifies an Ed25519ph signature over a 64-byte prehash, cofactored and
/// strict. `point` must come from [`decompress_public`] of `public`.
pub(crate) fn verify_prehashed(
    public: &[u8; 32],
    point: &EdwardsPoint,
    prehash: &[u8; 64],
    context: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    PreparedSignature::new(public, point, prehash, context, signature)?.verify()
}

/// A signature whose encodings passed the strict checks (`s < L`, `R` a
/// canonical point), with its challenge `k` computed: everything the
/// equation needs, so that the single check and the batch check share every
/// step before it.
pub(crate) struct PreparedSignature {
    r_bytes: [u8; 32],
    big_r: EdwardsPoint,
    s: Scalar,
    public: [u8; 32],
    point: EdwardsPoint,
    prehash: [u8; 64],
    k: Scalar,
}

impl PreparedSignature {
    /// Checks the encodings of `signature`, in the order of the single check
    /// (`s`, then `R`), and computes the challenge
    /// `k = SHA-512(dom2(1, context) || R || A || prehash) mod L`. `point`
    /// must come from [`decompress_public`] of `public`.
    pub(crate) fn new(
        public: &[u8; 32],
        point: &EdwardsPoint,
        prehash: &[u8; 64],
        context: &[u8],
        signature: &[u8; 64],
    ) -> Result<PreparedSignature, SignatureError> {
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&signature[..32]);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&signature[32..]);

        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
            .ok_or(SignatureError::NonCanonicalS)?;
        let big_r = CompressedEdwardsY(r_bytes)
            .decompress()
            .ok_or(SignatureError::InvalidR)?;
        if !is_canonical_encoding(&r_bytes) {
            return Err(SignatureError::InvalidR);
        }

        let mut h = Sha512::new();
        dom2(&mut h, context);
        h.update(r_bytes);
        h.update(public);
        h.update(prehash);
        let k = hash_to_scalar(h);
        Ok(PreparedSignature {
            r_bytes,
            big_r,
            s,
            public: *public,
            point: *point,
            prehash: *prehash,
            k,
        })
    }

    /// The single check: `[8]([s]B - [k]A - R)` is the identity.
    pub(crate) fn verify(&self) -> Result<(), SignatureError> {
        // R' = [s]B - [k]A; the signature holds when [8](R' - R) is the identity.
        let minus_a = -self.point;
        let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &minus_a, &self.s);
        if (r_prime - self.big_r).mul_by_cofactor().is_identity() {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// At or below this many signatures, a batch whose equation fails is settled
/// by single checks rather than split again.
const SINGLE_CHECKS_UP_TO: usize = 4;

/// Verifies prepared signatures together, with exactly the verdicts that
/// [`PreparedSignature::verify`] gives each alone: `true` where it holds.
///
/// The batch equation, with a weight `z_i` of 128 bits per signature, is
///
/// ```text
/// [8]( [sum z_i s_i]B - sum [z_i]R_i - sum [z_i k_i]A_i ) == identity
/// ```
///
/// computed as one variable-time multiscalar multiplication, in which
/// signatures by the same key share one point. If every signature holds
/// alone, each `[8]([s_i]B - R_i - [k_i]A_i)` is the identity, and so is any
/// combination of them: a batch of good signatures always passes (whatever
/// torsion their `R` or `A` carry, since `[8]` removes it). If some
/// signature `j` fails alone, its term `E_j = [8](...)` is a point of the
/// prime-order subgroup other than the identity, and for any fixed values of
/// the other terms at most one value of `z_j` mod `L` makes the sum vanish:
/// a bad batch passes with probability at most `2^-128` over `z_j`.
///
/// This crate has no randomness source, so the weights are derived (see
/// [`batch_weights`]) from a BLAKE3 hash of every input of the batch: each
/// `R`, `A`, `s` and prehash, the context and each position. The weights
/// are fixed only once every input is, and changing any input (or the
/// order) draws all of them anew. Treating BLAKE3 as a random function, each
/// batch an attacker tries passes with a bad signature with probability at
/// most `2^-128` (times the number of equations checked on it, below `2n`),
/// so forging a pass takes about `2^128` hash evaluations: the Fiat-Shamir
/// argument on which Ed25519's own challenge rests. Records of other
/// senders in the same batch do not help, since they are hashed too. And
/// the verdicts are reproducible: the same batch gives the same answer
/// everywhere.
///
/// A failing batch is split in halves, each checked again with the same
/// weights, down to [`SINGLE_CHECKS_UP_TO`] signatures, which are checked one
/// by one; so every verdict `false` comes from the single check itself.
pub(crate) fn verify_batch(items: &[PreparedSignature], context: &[u8]) -> Vec<bool> {
    match items {
        [] => Vec::new(),
        // One signature costs what the single check costs.
        [one] => vec![one.verify().is_ok()],
        _ => {
            let weights = batch_weights(items, context);
            let mut verdicts = vec![false; items.len()];
            settle(items, &weights, &mut verdicts);
            verdicts
        }
    }
}

/// Settles the verdicts of `items` (aligned with `weights` and `verdicts`):
/// all true when their equation holds, else half by half, and by single
/// checks once a half is small.
fn settle(items: &[PreparedSignature], weights: &[Scalar], verdicts: &mut [bool]) {
    if batch_equation_holds(items, weights) {
        verdicts.fill(true);
        return;
    }
    let half = items.len() / 2;
    let (items_l, items_r) = items.split_at(half);
    let (weights_l, weights_r) = weights.split_at(half);
    let (verdicts_l, verdicts_r) = verdicts.split_at_mut(half);
    for (items, weights, verdicts) in [
        (items_l, weights_l, verdicts_l),
        (items_r, weights_r, verdicts_r),
    ] {
        if items.len() <= SINGLE_CHECKS_UP_TO {
            for (item, verdict) in items.iter().zip(verdicts.iter_mut()) {
                *verdict = item.verify().is_ok();
            }
        } else {
            settle(items, weights, verdicts);
        }
    }
}

/// Whether `[8]([sum z_i s_i]B - sum [z_i]R_i - sum [z_i k_i]A_i)` is the
/// identity, with the keys shared among signatures by the same key.
///
/// It computes the negation, `sum [z_i]R_i + sum [z_i k_i]A_i -
/// [sum z_i s_i]B`, which is the identity exactly when the other is: so the
/// scalars of the `R_i` are the weights themselves, 128 bits long, whose
/// upper halves cost the multiplication no additions.
fn batch_equation_holds(items: &[PreparedSignature], weights: &[Scalar]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::traits::VartimeMultiscalarMul;
    use std::collections::HashMap;

    let mut scalars = Vec::with_capacity(1 + 2 * items.len());
    let mut points = Vec::with_capacity(1 + 2 * items.len());
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    let mut b_scalar = Scalar::ZERO;
    let mut key_scalars: Vec<Scalar> = Vec::new();
    let mut key_points: Vec<EdwardsPoint> = Vec::new();
    let mut key_at: HashMap<[u8; 32], usize> = HashMap::with_capacity(items.len());
    for (item, z) in items.iter().zip(weights) {
        b_scalar += z * item.s;
        scalars.push(*z);
        points.push(item.big_r);
        let zk = z * item.k;
        match key_at.get(&item.public) {
            Some(&at) => key_scalars[at] += zk,
            None => {
                key_at.insert(item.public, key_points.len());
                key_scalars.push(zk);
                key_points.push(item.point);
            }
        }
    }
    scalars[0] = -b_scalar;
    scalars.extend(key_scalars);
    points.extend(key_points);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// The 128-bit weights of a batch: the extendable output of a BLAKE3 hash
/// (in key-derivation mode, under a context string of its own) of the
/// number of signatures, the context, and for each signature in order its
/// position, `R`, `A`, `s` and prehash; 16 bytes of output per signature.
fn batch_weights(items: &[PreparedSignature], context: &[u8]) -> Vec<Scalar> {
    let mut h = blake3::Hasher::new_derive_key("Mosaic cofactored Ed25519ph batch weights v1");
    h.update(&(items.len() as u64).to_le_bytes());
    h.update(&(context.len() as u64).to_le_bytes());
    h.update(context);
    for (i, item) in items.iter().enumerate() {
        h.update(&(i as u64).to_le_bytes());
        h.update(&item.r_bytes);
        h.update(&item.public);
        h.update(item.s.as_bytes());
        h.update(&item.prehash);
    }
    let mut xof = h.finalize_xof();
    items
        .iter()
        .map(|_| {
            let mut wide = [0u8; 32];
            xof.fill(&mut wide[..16]);
            Scalar::from_bytes_mod_order(wide)
        })
        .collect()
}

trait IsIdentity {
    fn is_identity(&self) -> bool;
}

impl IsIdentity for EdwardsPoint {
    fn is_identity(&self) -> bool {
        use curve25519_dalek::traits::Identity;
        *self == EdwardsPoint::identity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc8032_ed25519ph_test_vector() {
        // RFC 8032 section 7.3, "TEST abc": Ed25519ph with no context, where
        // the prehash is SHA-512("abc"). An empty context is allowed by dom2.
        let seed = hex32("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
        let public = hex32("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf");
        let key = Expanded::from_seed(&seed);
        assert_eq!(key.public_point().compress().to_bytes(), public);
        let prehash: [u8; 64] = Sha512::digest(b"abc").into();
        let sig = sign_prehashed(&key, &public, &prehash, b"");
        let expected = "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406";
        assert_eq!(hex(&sig), expected);
        let point = decompress_public(&public).unwrap();
        verify_prehashed(&public, &point, &prehash, b"", &sig).unwrap();
        assert_eq!(
            verify_prehashed(&public, &point, &prehash, b"Mosaic", &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_high_s() {
        let seed = [7u8; 32];
        let key = Expanded::from_seed(&seed);
        let public = key.public_point().compress().to_bytes();
        let point = decompress_public(&public).unwrap();
        let prehash = blake3_xof64(b"data");
        let mut sig = sign_prehashed(&key, &public, &prehash, RECORD_CONTEXT);
        sig[63] |= 0xf0;
        assert_eq!(
            verify_prehashed(&public, &point, &prehash, RECORD_CONTEXT, &sig),
            Err(SignatureError::NonCanonicalS)
        );
    }

    /// A signature that holds only under the cofactored rule: a point of
    /// order 8 added to `R`, and when `mixed_key`, to the key as well.
    fn torsion_signature(i: u8, mixed_key: bool) -> PreparedSignature {
        let t = CompressedEdwardsY(hex32(
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        ))
        .decompress()
        .unwrap();
        let key = Expanded::from_seed(&[i; 32]);
        let mut a = key.public_point();
        if mixed_key {
            a += t;
        }
        let public = a.compress().to_bytes();
        let point = decompress_public(&public).unwrap();
        let prehash = blake3_xof64(&[i]);
        let r = Scalar::from(1000 + u64::from(i));
        let big_r = (&r * ED25519_BASEPOINT_TABLE + t).compress();
        let mut h = Sha512::new();
        dom2(&mut h, RECORD_CONTEXT);
        h.update(big_r.as_bytes());
        h.update(public);
        h.update(prehash);
        let s = r + hash_to_scalar(h) * key.scalar;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(big_r.as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        PreparedSignature::new(&public, &point, &prehash, RECORD_CONTEXT, &sig).unwrap()
    }

    #[test]
    fn the_batch_equation_is_cofactored() {
        let items: Vec<PreparedSignature> = (0..12u8)
            .map(|i| torsion_signature(i, i % 3 == 0))
            .collect();
        for item in &items {
            item.verify().unwrap();
            // Without the cofactor the equation fails: the torsion is there.
            let minus_a = -item.point;
            let r_prime =
                EdwardsPoint::vartime_double_scalar_mul_basepoint(&item.k, &minus_a, &item.s);
            assert!(!(r_prime - item.big_r).is_identity());
        }
        // The equation itself holds, with no fall back to single checks.
        let weights = batch_weights(&items, RECORD_CONTEXT);
        assert!(batch_equation_holds(&items, &weights));
        assert!(
            verify_batch(&items, RECORD_CONTEXT)
                .into_iter()
                .all(|ok| ok)
        );
    }

    #[test]
    fn a_bad_signature_fails_the_batch_equation_and_is_found() {
        let mut items: Vec<PreparedSignature> =
            (0..9u8).map(|i| torsion_signature(i, false)).collect();
        // Sign another prehash: the signature names this one.
        items[5].prehash = blake3_xof64(b"another");
        let sig = {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&items[5].r_bytes);
            sig[32..].copy_from_slice(items[5].s.as_bytes());
            sig
        };
        let (public, point, prehash) = (items[5].public, items[5].point, items[5].prehash);
        items[5] = PreparedSignature::new(&public, &point, &prehash, RECORD_CONTEXT, &sig).unwrap();
        let weights = batch_weights(&items, RECORD_CONTEXT);
        assert!(!batch_equation_holds(&items, &weights));
        let verdicts = verify_batch(&items, RECORD_CONTEXT);
        assert_eq!(verdicts, (0..9).map(|i| i != 5).collect::<Vec<_>>());
    }

    #[test]
    fn batch_weights_depend_on_every_input() {
        let items: Vec<PreparedSignature> = (0..4u8).map(|i| torsion_signature(i, false)).collect();
        let base = batch_weights(&items, RECORD_CONTEXT);
        assert_eq!(base, batch_weights(&items, RECORD_CONTEXT), "deterministic");
        assert!(
            base.iter().all(|z| z.as_bytes()[16..] == [0u8; 16]),
            "128 bits"
        );
        assert_ne!(base[0], base[1]);
        assert_ne!(base, batch_weights(&items, SERVER_AUTH_CONTEXT));
        assert_ne!(base[..3], batch_weights(&items[..3], RECORD_CONTEXT)[..]);
        let mut changed: Vec<PreparedSignature> =
            (0..4u8).map(|i| torsion_signature(i, false)).collect();
        changed[3].prehash[63] ^= 1;
        assert!(
            batch_weights(&changed, RECORD_CONTEXT)
                .iter()
                .zip(&base)
                .all(|(a, b)| a != b)
        );
        let mut swapped: Vec<PreparedSignature> =
            (0..4u8).map(|i| torsion_signature(i, false)).collect();
        swapped.swap(0, 1);
        assert_ne!(batch_weights(&swapped, RECORD_CONTEXT)[2], base[2]);
    }

    /// The reference check: compress the decompressed point again.
    fn canonical_by_compression(bytes: &[u8; 32]) -> Option<bool> {
        let point = CompressedEdwardsY(*bytes).decompress()?;
        Some(point.compress().to_bytes() == *bytes)
    }

    #[test]
    fn byte_check_of_canonical_encodings_agrees_with_compression() {
        let mut cases: Vec<[u8; 32]> = Vec::new();
        // y from 0 to 63.
        for low in 0..64u8 {
            let mut b = [0u8; 32];
            b[0] = low;
            cases.push(b);
        }
        // y = 2^255 - 1 - m: every value from p - 64 up to 2^255 - 1.
        for m in 0..83u8 {
            let mut b = [0xffu8; 32];
            b[31] = 0x7f;
            b[0] = 0xff - m;
            cases.push(b);
        }
        // Public keys and points of the group, and pseudo-random bytes.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..400u32 {
            let key = Expanded::from_seed(&[i as u8; 32]);
            cases.push(key.public_point().compress().to_bytes());
            let mut b = [0u8; 32];
            for chunk in b.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes());
            }
            cases.push(b);
        }
        let with_signs: Vec<[u8; 32]> = cases
            .iter()
            .flat_map(|b| {
                let mut set = *b;
                set[31] |= 0x80;
                let mut clear = *b;
                clear[31] &= 0x7f;
                [set, clear]
            })
            .collect();
        let (mut canonical, mut non_canonical) = (0, 0);
        for bytes in &with_signs {
            if let Some(expected) = canonical_by_compression(bytes) {
                assert_eq!(is_canonical_encoding(bytes), expected, "{}", hex(bytes));
                if expected {
                    canonical += 1;
                } else {
                    non_canonical += 1;
                }
            }
        }
        // y = 1 and y = p - 1 with the sign bit, and y = p + 1, at least.
        assert!(
            non_canonical >= 3,
            "only {non_canonical} non-canonical cases"
        );
        assert!(canonical > 400, "only {canonical} canonical cases");
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
