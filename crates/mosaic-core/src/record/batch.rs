//! Batch validation of records: the verdicts of [`Record::from_bytes`] for
//! many records, with their signatures checked together.
//!
//! Each record goes through the steps before the signature equation alone
//! (layout, keys, hash, id timestamp, the encodings of `R` and `s`); one that
//! fails there gets its error without entering the batch. The signatures of
//! the others are checked by one cofactored batch equation with 128-bit
//! weights derived from a hash of the whole batch (the reasoning is on
//! `crypto::verify_batch`). A batch whose equation fails is split until the
//! bad signatures are found, so every record gets exactly the `Ok` or the
//! error, variant and all, that [`Record::from_bytes`] gives it alone.
//!
//! The interface is a function over a slice rather than a builder: a caller
//! that gathers records over time (a server's ingest stage) collects the
//! byte slices itself and calls it once per batch, and the verdicts come
//! back in the order of the input.

use super::{OwnedRecord, Record, RecordError, finish, prepare};
use crate::crypto::{self, RECORD_CONTEXT, SignatureError};

impl Record {
    /// Fully validates each of `items` as [`Record::from_bytes`] does, and
    /// returns one verdict per item, in order: the same `Ok`, or the same
    /// error, that [`Record::from_bytes`] gives that item alone.
    ///
    /// The signatures are verified together, which costs less per record
    /// the more records there are (batches of 64 to 256 gain most); a batch
    /// of one costs what [`Record::from_bytes`] costs. Records by the same
    /// key are cheaper still together. A batch holding bad signatures is
    /// split until they are found, which costs more than checking them one
    /// by one: send the batches that arrive, not ones known to be bad.
    ///
    /// ```
    /// use mosaic_core::{Kind, Nonce, Record, RecordBuilder, RecordError, SecretKey, Timestamp};
    ///
    /// # fn main() -> Result<(), mosaic_core::Error> {
    /// let secret = SecretKey::from_bytes(&[7u8; 32]);
    /// let at = Timestamp::from_nanos(1_750_000_000_000_000_000)?;
    /// let good = RecordBuilder::new(Kind::MICROBLOG_ROOT, at)
    ///     .nonce(Nonce::from_key(b"hello"))
    ///     .payload(b"Hello, Mosaic!")
    ///     .build(&secret)?;
    /// let mut bad = good.as_bytes().to_vec();
    /// bad[152] ^= 1; // the first byte of the payload: the hash no longer matches
    /// let verdicts = Record::from_bytes_batch(&[good.as_bytes(), &bad]);
    /// assert_eq!(verdicts[0].as_ref().map(|r| r.author()), Ok(secret.public()));
    /// assert_eq!(verdicts[1], Err(RecordError::HashMismatch));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_bytes_batch<'a>(items: &[&'a [u8]]) -> Vec<Result<&'a Record, RecordError>> {
        let mut verdicts = Vec::with_capacity(items.len());
        let mut prepared = Vec::with_capacity(items.len());
        let mut positions = Vec::with_capacity(items.len());
        for (at, bytes) in items.iter().enumerate() {
            match prepare(bytes) {
                Ok(signature) => {
                    prepared.push(signature);
                    positions.push(at);
                    // The verdict of a signature that does not hold; replaced
                    // below for those that do.
                    verdicts.push(Err(RecordError::Signature(SignatureError::Mismatch)));
                }
                Err(error) => verdicts.push(Err(error)),
            }
        }
        let holds = crypto::verify_batch(&prepared, RECORD_CONTEXT);
        for (at, holds) in positions.into_iter().zip(holds) {
            if holds {
                verdicts[at] = finish(items[at]);
            }
        }
        verdicts
    }
}

impl OwnedRecord {
    /// Like [`Record::from_bytes_batch`], taking ownership of each valid
    /// record's bytes. The bytes of invalid records are dropped.
    pub fn from_vec_batch(items: Vec<Vec<u8>>) -> Vec<Result<OwnedRecord, RecordError>> {
        let slices: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        let verdicts: Vec<Result<(), RecordError>> = Record::from_bytes_batch(&slices)
            .into_iter()
            .map(|verdict| verdict.map(|_| ()))
            .collect();
        drop(slices);
        items
            .into_iter()
            .zip(verdicts)
            .map(|(bytes, verdict)| verdict.map(|()| OwnedRecord(bytes)))
            .collect()
    }
}
