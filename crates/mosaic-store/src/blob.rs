//! BLOBs (D-18): opaque data stored and fetched by its BLAKE3-256 hash.

use mosaic_core::blake3_xof64;
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use crate::error::{Corruption, StoreError};
use crate::layout::{BLOBS, KindCounts, META, decode_counts_named, encode_counts};
use crate::store::Store;

/// The `meta` entry holding the BLOB count and bytes.
const META_BLOB_COUNTS: &str = "blob_counts";

/// What happened to a submitted BLOB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobOutcome {
    /// The BLOB is new and now stored (durably, once the call returns).
    Stored,
    /// A BLOB with this hash is already stored; nothing changed.
    Duplicate,
}

/// The BLAKE3-256 hash of `data`: the first 32 bytes of its extended output.
pub fn blob_hash(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&blake3_xof64(data)[..32]);
    out
}

/// The number and total bytes of stored BLOBs.
pub(crate) fn counts(txn: &ReadTransaction) -> Result<(u64, u64), StoreError> {
    let blobs = txn.open_table(BLOBS)?.len()?;
    let meta = txn.open_table(META)?;
    let bytes = match meta.get(META_BLOB_COUNTS)? {
        Some(v) => decode_counts_named(META_BLOB_COUNTS, v.value())?.bytes,
        None => 0,
    };
    Ok((blobs, bytes))
}

impl Store {
    /// Stores a BLOB under its hash, in one durable commit. The data must
    /// hash to `hash` ([`StoreError::BlobHashMismatch`] otherwise, INVALID
    /// on the wire) and be no longer than
    /// [`StoreConfig::max_blob_len`](crate::StoreConfig::max_blob_len)
    /// ([`StoreError::BlobTooLarge`], TOO_LARGE).
    pub fn put_blob(&self, hash: &[u8; 32], data: &[u8]) -> Result<BlobOutcome, StoreError> {
        let len = data.len() as u64;
        if len > self.config().max_blob_len {
            return Err(StoreError::BlobTooLarge {
                len,
                max: self.config().max_blob_len,
            });
        }
        let actual = blob_hash(data);
        if &actual != hash {
            return Err(StoreError::BlobHashMismatch {
                claimed: *hash,
                actual,
            });
        }
        let txn = self.begin_write()?;
        {
            let mut blobs = txn.open_table(BLOBS)?;
            if blobs.get(hash)?.is_some() {
                drop(blobs);
                self.abort(txn)?;
                return Ok(BlobOutcome::Duplicate);
            }
            blobs.insert(hash, data)?;
            update_counts(&txn, 1, len)?;
        }
        self.commit(txn)?;
        tracing::debug!(hash = %crate::error::hex(hash), len, "BLOB stored");
        Ok(BlobOutcome::Stored)
    }

    /// The BLOB with this hash. Its hash is checked on the way out, so
    /// damaged data is an error ([`Corruption::Blob`]), never served.
    pub fn blob(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.begin_read()?;
        let blobs = txn.open_table(BLOBS)?;
        let Some(value) = blobs.get(hash)? else {
            return Ok(None);
        };
        let data = value.value();
        if &blob_hash(data) != hash {
            return Err(Corruption::Blob { hash: *hash }.into());
        }
        Ok(Some(data.to_vec()))
    }

    /// Removes a BLOB, in one durable commit. Returns whether it was stored.
    pub fn remove_blob(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let txn = self.begin_write()?;
        let removed = {
            let mut blobs = txn.open_table(BLOBS)?;
            let len = blobs.remove(hash)?.map(|v| v.value().len() as u64);
            drop(blobs);
            if let Some(len) = len {
                update_counts(&txn, -1, len)?;
            }
            len.is_some()
        };
        if removed {
            self.commit(txn)?;
        } else {
            self.abort(txn)?;
        }
        Ok(removed)
    }
}

fn update_counts(txn: &redb::WriteTransaction, delta: i64, len: u64) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    let mut counts = match meta.get(META_BLOB_COUNTS)? {
        Some(v) => decode_counts_named(META_BLOB_COUNTS, v.value())?,
        None => KindCounts::default(),
    };
    counts.records = counts.records.saturating_add_signed(delta);
    counts.bytes = if delta >= 0 {
        counts.bytes.saturating_add(len)
    } else {
        counts.bytes.saturating_sub(len)
    };
    meta.insert(META_BLOB_COUNTS, encode_counts(&counts).as_slice())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_hash_is_blake3_256() {
        // BLAKE3 of the empty input (its published test vector).
        let expected = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        assert_eq!(crate::error::hex(&blob_hash(b"")), expected);
    }
}
