//! The on-disk layout: table definitions, key encodings and value encodings.
//!
//! `docs/STORE.md` describes the same layout in prose; keep the two in step,
//! and bump [`FORMAT_VERSION`] on any change to what is written.
//!
//! Every index entry is a prefix and the 48-byte record id (its "flat
//! key"), and ids begin with the big-endian timestamp, so within one prefix
//! the entries sort by (timestamp, id): a reverse scan yields records newest
//! first (D-5), and `since`/`until` become the bounds of the scan. The index
//! tables store these entries in blocks (`postings.rs`).

use mosaic_core::{Id, Kind, Record, Tag, Timestamp};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::error::Corruption;
use crate::postings::BlockTable;

/// The version of this layout, recorded in the `meta` table under
/// [`META_FORMAT_VERSION`]. A store of another version is refused.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The `meta` entry holding the format version.
pub(crate) const META_FORMAT_VERSION: &str = "format_version";

/// Length of a record id.
pub(crate) const ID_LEN: usize = 48;
/// How many bytes of a tag's value its index key keeps (with the 2-byte
/// type, 22 bytes in all).
pub(crate) const TAG_VALUE_PREFIX: usize = 20;

/// Named store-wide entries, postcard-encoded: the format version and the
/// BLOB counts. (Moderation data has its own tables: `moderation.rs`.)
pub(crate) const META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("meta");
/// id (48) -> postcard([`RecordMeta`]) followed by the record's exact bytes.
pub(crate) const RECORDS: TableDefinition<'static, &'static [u8; ID_LEN], &'static [u8]> =
    TableDefinition::new("records");
/// The index tables hold blocks of entries (see `postings.rs`): the key is
/// `prefix | lower bound (48)`, the value up to 32 entries in ascending
/// order. The entry layout of each index is its "flat key" below, less the
/// prefix.
///
/// signing key (32) | id (48); entries: id.
pub(crate) const BY_SIGNER: BlockTable<80> = TableDefinition::new("by_signer");
/// kind (8, big-endian) | id (48); entries: id.
pub(crate) const BY_KIND: BlockTable<56> = TableDefinition::new("by_kind");
/// tag type (2, big-endian) | value prefix (20, zero-padded) | id (48);
/// entries: id.
pub(crate) const BY_TAG: BlockTable<70> = TableDefinition::new("by_tag");
/// author key (32) | kind (8, big-endian) | id (48) | nonce (8); entries:
/// id and nonce. It answers author queries (one range per kind of the
/// author), author and kind queries, and address lookups (an address is a
/// nonce, a kind and an author; its records are those of the author and
/// kind whose entry ends with its nonce).
pub(crate) const BY_AUTHOR_KIND: BlockTable<88> = TableDefinition::new("by_author_kind");
/// kind (8, big-endian) -> postcard([`KindCounts`]).
pub(crate) const KIND_STATS: TableDefinition<'static, &'static [u8; 8], &'static [u8]> =
    TableDefinition::new("kind_stats");
/// BLAKE3-256 hash (32) -> the BLOB's bytes.
pub(crate) const BLOBS: TableDefinition<'static, &'static [u8; 32], &'static [u8]> =
    TableDefinition::new("blobs");

/// Names of the tables above, for error messages.
pub(crate) mod names {
    pub(crate) const RECORDS: &str = "records";
    pub(crate) const BY_SIGNER: &str = "by_signer";
    pub(crate) const BY_KIND: &str = "by_kind";
    pub(crate) const BY_TAG: &str = "by_tag";
    pub(crate) const BY_AUTHOR_KIND: &str = "by_author_kind";
}

/// What the store keeps about a record besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordMeta {
    /// When the server received the record, in nanoseconds (a [`Timestamp`]).
    pub(crate) received_at: u64,
}

/// Record count and bytes of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct KindCounts {
    /// How many records.
    pub(crate) records: u64,
    /// Their total length in bytes.
    pub(crate) bytes: u64,
}

/// Concatenates `parts` into a fixed-size key. The parts' lengths add up to
/// `N` at every call site; extra bytes would be dropped, never cause a panic.
pub(crate) fn concat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    for part in parts {
        let end = at + part.len();
        if let Some(dst) = out.get_mut(at..end) {
            dst.copy_from_slice(part);
        }
        at = end;
    }
    debug_assert_eq!(at, N, "key parts must fill the key exactly");
    out
}

/// The 22-byte tag prefix of an index key: type (big-endian) and the first
/// 20 bytes of the value, zero-padded.
pub(crate) fn tag_prefix(tag: &Tag) -> [u8; 2 + TAG_VALUE_PREFIX] {
    let mut out = [0u8; 2 + TAG_VALUE_PREFIX];
    out[..2].copy_from_slice(&tag.tag_type().0.to_be_bytes());
    let value = tag.value();
    let n = value.len().min(TAG_VALUE_PREFIX);
    out[2..2 + n].copy_from_slice(&value[..n]);
    out
}

/// The tag-index prefixes of a record, without repeats.
pub(crate) fn tag_prefixes(record: &Record) -> Vec<[u8; 2 + TAG_VALUE_PREFIX]> {
    let mut prefixes: Vec<_> = record.tags().iter().map(tag_prefix).collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    prefixes
}

/// The id at byte `at` of an index key.
pub(crate) fn id_at(key: &[u8], at: usize, table: &'static str) -> Result<Id, Corruption> {
    let bytes: &[u8; ID_LEN] = key
        .get(at..at + ID_LEN)
        .and_then(|t| t.try_into().ok())
        .ok_or(Corruption::IndexKey { table })?;
    Id::from_bytes(bytes).map_err(|_| Corruption::IndexKey { table })
}

/// The id at the end of an index key.
pub(crate) fn id_at_end(key: &[u8], table: &'static str) -> Result<Id, Corruption> {
    let at = key
        .len()
        .checked_sub(ID_LEN)
        .ok_or(Corruption::IndexKey { table })?;
    id_at(key, at, table)
}

/// The `by_author_kind` entry of a record, as a flat key (prefix, id, nonce).
pub(crate) fn author_kind_key(record: &Record) -> [u8; 96] {
    concat(&[
        record.author().as_bytes(),
        &record.kind().to_be_bytes(),
        record.id().as_bytes(),
        &record.nonce().to_bytes(),
    ])
}

/// The lowest id at or after `since`.
pub(crate) fn lowest_id(since: Option<Timestamp>) -> [u8; ID_LEN] {
    let mut id = [0u8; ID_LEN];
    if let Some(t) = since {
        id[..8].copy_from_slice(&t.to_be_bytes());
    }
    id
}

/// The highest id at or before `until`.
pub(crate) fn highest_id(until: Option<Timestamp>) -> [u8; ID_LEN] {
    let mut id = [0xff; ID_LEN];
    id[..8].copy_from_slice(&until.unwrap_or(Timestamp::MAX).to_be_bytes());
    id
}

/// Encodes a stored record: its metadata, then its exact bytes.
pub(crate) fn encode_record(record: &Record, received_at: Timestamp) -> Vec<u8> {
    let meta = RecordMeta {
        received_at: received_at.as_nanos(),
    };
    // A struct of one u64 encodes in at most 10 bytes.
    let mut buf = [0u8; 16];
    let head: &[u8] = postcard::to_slice(&meta, &mut buf).map_or(&[], |b| &*b);
    let mut out = Vec::with_capacity(head.len() + record.len());
    out.extend_from_slice(head);
    out.extend_from_slice(record.as_bytes());
    out
}

/// Decodes a stored record read back under `key`: the layout is checked
/// (never the signature, which was checked before it was stored).
pub(crate) fn decode_record<'a>(
    key: &[u8; ID_LEN],
    value: &'a [u8],
) -> Result<(&'a Record, Timestamp), Corruption> {
    let key_id = Id::from_bytes(key).map_err(|_| Corruption::IndexKey {
        table: names::RECORDS,
    })?;
    let (meta, bytes) = postcard::take_from_bytes::<RecordMeta>(value)
        .map_err(|_| Corruption::RecordMeta { id: key_id })?;
    let received_at = Timestamp::from_nanos(meta.received_at)
        .map_err(|_| Corruption::RecordMeta { id: key_id })?;
    let record = Record::danger_from_bytes_unverified(bytes)
        .map_err(|error| Corruption::Record { id: key_id, error })?;
    if record.id() != key_id {
        return Err(Corruption::RecordKey {
            key: key_id,
            id: record.id(),
        });
    }
    Ok((record, received_at))
}

/// Encodes per-kind counts.
pub(crate) fn encode_counts(counts: &KindCounts) -> Vec<u8> {
    postcard::to_allocvec(counts).unwrap_or_default()
}

/// Decodes per-kind counts.
pub(crate) fn decode_counts(kind: Kind, value: &[u8]) -> Result<KindCounts, Corruption> {
    postcard::from_bytes(value).map_err(|_| Corruption::KindStats { kind })
}

/// Decodes counts kept in the `meta` table under `name`.
pub(crate) fn decode_counts_named(
    name: &'static str,
    value: &[u8],
) -> Result<KindCounts, Corruption> {
    postcard::from_bytes(value).map_err(|_| Corruption::Meta { name })
}

#[cfg(test)]
mod tests {
    use mosaic_core::{Kind, Nonce, OwnedTag, RecordBuilder, SecretKey, TagType};

    use super::*;

    fn record(ts: u64) -> mosaic_core::OwnedRecord {
        let key = SecretKey::from_bytes(&[3u8; 32]);
        let tag = OwnedTag::new(TagType(0x1234), &[9u8; 30]).unwrap();
        RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(ts).unwrap())
            .nonce(Nonce::from_key(b"n"))
            .tag(&tag)
            .tag(&tag)
            .payload(b"hello")
            .build(&key)
            .unwrap()
    }

    #[test]
    fn records_round_trip_with_their_received_time() {
        let r = record(1_000);
        let at = Timestamp::from_nanos(123_456_789).unwrap();
        let value = encode_record(&r, at);
        assert!(value.ends_with(r.as_bytes()));
        let (back, received) = decode_record(r.id().as_bytes(), &value).unwrap();
        assert_eq!(back.as_bytes(), r.as_bytes());
        assert_eq!(received, at);
    }

    #[test]
    fn damaged_records_are_errors() {
        let r = record(1_000);
        let value = encode_record(&r, Timestamp::ZERO);
        let id = r.id();
        // Cut short.
        assert!(matches!(
            decode_record(id.as_bytes(), &value[..value.len() - 8]),
            Err(Corruption::Record { .. })
        ));
        // Metadata cut off entirely.
        assert!(matches!(
            decode_record(id.as_bytes(), &[]),
            Err(Corruption::RecordMeta { .. })
        ));
        // Metadata with a timestamp of 2^63 or more.
        let mut bad = postcard::to_allocvec(&RecordMeta {
            received_at: u64::MAX,
        })
        .unwrap();
        bad.extend_from_slice(r.as_bytes());
        assert!(matches!(
            decode_record(id.as_bytes(), &bad),
            Err(Corruption::RecordMeta { .. })
        ));
        // Stored under another key.
        let other = record(2_000);
        assert!(matches!(
            decode_record(other.id().as_bytes(), &value),
            Err(Corruption::RecordKey { .. })
        ));
        // A key that is an address, not an id.
        assert!(matches!(
            decode_record(&[0xff; 48], &value),
            Err(Corruption::IndexKey { .. })
        ));
    }

    #[test]
    fn tag_prefixes_are_type_then_twenty_value_bytes_without_repeats() {
        let r = record(5);
        let prefixes = tag_prefixes(&r);
        assert_eq!(prefixes.len(), 1);
        assert_eq!(&prefixes[0][..2], &[0x12, 0x34]);
        assert_eq!(&prefixes[0][2..], &[9u8; 20]);
        let short = OwnedTag::new(TagType(1), b"ab").unwrap();
        let p = tag_prefix(&short);
        assert_eq!(&p[..4], &[0, 1, b'a', b'b']);
        assert!(p[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn id_bounds_follow_timestamps() {
        let t = Timestamp::from_nanos(0x0102_0304_0506_0708).unwrap();
        assert_eq!(&lowest_id(Some(t))[..8], &t.to_be_bytes());
        assert!(lowest_id(Some(t))[8..].iter().all(|&b| b == 0));
        assert_eq!(&highest_id(Some(t))[..8], &t.to_be_bytes());
        assert!(highest_id(Some(t))[8..].iter().all(|&b| b == 0xff));
        assert_eq!(lowest_id(None), [0u8; 48]);
        assert_eq!(&highest_id(None)[..8], &Timestamp::MAX.to_be_bytes());
    }

    #[test]
    fn index_keys_end_with_ids() {
        let r = record(77);
        let key: [u8; 80] = concat(&[r.author().as_bytes(), r.id().as_bytes()]);
        assert_eq!(id_at_end(&key, "t").unwrap(), r.id());
        assert!(id_at_end(&key[..40], "t").is_err());
        let mut bad = key;
        bad[32] |= 0x80;
        assert_eq!(
            id_at_end(&bad, "t"),
            Err(Corruption::IndexKey { table: "t" })
        );
    }

    #[test]
    fn counts_round_trip_and_damage_is_reported() {
        let c = KindCounts {
            records: 3,
            bytes: 999,
        };
        let kind = Kind::MICROBLOG_ROOT;
        assert_eq!(decode_counts(kind, &encode_counts(&c)).unwrap(), c);
        assert_eq!(
            decode_counts(kind, &[0xff]),
            Err(Corruption::KindStats { kind })
        );
    }
}
