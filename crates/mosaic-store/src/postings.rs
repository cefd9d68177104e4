//! Index tables as posting blocks: many index entries per database entry.
//!
//! An index maps a prefix (an author, a kind, a tag...) to the short ids of
//! its records. Rather than one database entry per (prefix, record),
//! entries are grouped in blocks of up to [`BLOCK_ENTRIES`]: the key is
//! `prefix | lower bound` (a short id, where the block starts), the value
//! the block's entries in ascending order, each a short id (16 bytes) and,
//! for some indexes, a suffix.
//!
//! Invariant: a block holds only entries whose short id is at or above its
//! key's lower bound and below the next block's (of the same prefix). A new
//! entry therefore goes into the block with the greatest lower bound at or
//! below its short id (or a new block keyed by its own short id); a block
//! that grows past [`BLOCK_ENTRIES`] is split, each new part keyed by its
//! first short id. A split never separates entries with the same short id
//! (the store never gives two records one short id, but this code does not
//! rely on it), so a block holds more than [`BLOCK_ENTRIES`] entries only
//! when entries share one. Removing entries keeps the invariant; an empty
//! block is deleted.
//!
//! A block that holds a single entry whose short id is its lower bound (as
//! each new block of a prefix seen for the first time does) stores only the
//! entry's suffix: an empty value for the indexes without one. The value's
//! length tells the two forms apart, since a suffix is shorter than an
//! entry. Most tag values (a reply's target, say) have one record, so this
//! keeps the tag index small.
//!
//! A transaction collects its new entries in memory and writes them, sorted,
//! at [`Postings::flush`]: records mostly arrive in time order per prefix, so
//! a batch of inserts usually rewrites the last block of each prefix once
//! and appends whole new blocks, far fewer database operations than one per
//! entry.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadOnlyTable, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::error::{Corruption, StoreError};
use crate::layout::{SHORT_LEN, ShortId, concat};

/// Most entries in one block (more only when entries share a short id).
pub(crate) const BLOCK_ENTRIES: usize = 32;

/// A block table: `prefix | lower bound (16)` -> entries.
pub(crate) type BlockTable<const K: usize> =
    TableDefinition<'static, &'static [u8; K], &'static [u8]>;

/// A block read back: its key and its entries.
type Block<const K: usize> = ([u8; K], Vec<u8>);

/// Decodes a block's value into `out`: a whole, non-zero number of entries,
/// or the suffix of a single entry whose short id is the block's lower
/// `bound`.
fn decode_into(
    bound: &[u8],
    value: &[u8],
    entry: usize,
    table: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), Corruption> {
    out.clear();
    if entry < SHORT_LEN || bound.len() != SHORT_LEN {
        return Err(Corruption::IndexBlock { table });
    }
    if value.len() == entry - SHORT_LEN {
        out.extend_from_slice(bound);
        out.extend_from_slice(value);
    } else if !value.is_empty() && value.len().is_multiple_of(entry) {
        out.extend_from_slice(value);
    } else {
        return Err(Corruption::IndexBlock { table });
    }
    Ok(())
}

/// The value that stores `entries` under lower bound `bound`: the suffix
/// alone for a single entry at the bound.
fn encode<'e>(bound: &[u8], entries: &'e [u8], entry: usize) -> &'e [u8] {
    match entries.split_at_checked(SHORT_LEN) {
        Some((short, suffix)) if entries.len() == entry && short == bound => suffix,
        _ => entries,
    }
}

/// A set of 2^16 bits that answers "maybe" or "no" for entries, by two of
/// their short id's hash bytes.
struct Sieve(Vec<u64>);

impl Sieve {
    fn bit(short_hash: &[u8]) -> usize {
        match short_hash {
            [a, b, ..] => usize::from(*a) << 8 | usize::from(*b),
            _ => 0,
        }
    }

    fn new<'e>(shorts: impl Iterator<Item = &'e [u8]>) -> Sieve {
        let mut bits = vec![0u64; 1 << 10];
        for short in shorts {
            let bit = Sieve::bit(short.get(8..).unwrap_or_default());
            bits[bit >> 6] |= 1 << (bit & 63);
        }
        Sieve(bits)
    }

    fn maybe(&self, short: &[u8]) -> bool {
        let bit = Sieve::bit(short.get(8..).unwrap_or_default());
        self.0[bit >> 6] & (1 << (bit & 63)) != 0
    }
}

/// One index inside a write transaction. Entries are "flat keys" of `N`
/// bytes: `prefix | short id | suffix`, where the block key is `prefix |
/// short id` (`K` bytes). New entries are collected and written, sorted, at
/// [`flush`](Self::flush).
pub(crate) struct Postings<'t, const K: usize, const N: usize> {
    table: Table<'t, &'static [u8; K], &'static [u8]>,
    name: &'static str,
    /// Entries added since the last flush, in arrival order, maybe repeated.
    pending: Vec<[u8; N]>,
    /// Entries removed since the last flush, each with the length of
    /// `pending` at its removal: the copies of it added before are dropped
    /// at the flush, those added after are kept.
    removed: Vec<([u8; N], usize)>,
    /// The pending entries added with [`insert_findable`](Self::insert_findable),
    /// which [`with_prefix`](Self::with_prefix) sees before the flush.
    findable: BTreeSet<[u8; N]>,
}

impl<'t, const K: usize, const N: usize> Postings<'t, K, N> {
    const PREFIX: usize = K - SHORT_LEN;
    const ENTRY: usize = N - Self::PREFIX;

    pub(crate) fn open(
        txn: &'t WriteTransaction,
        def: BlockTable<K>,
        name: &'static str,
    ) -> Result<Postings<'t, K, N>, StoreError> {
        Ok(Postings {
            table: txn.open_table(def)?,
            name,
            pending: Vec::new(),
            removed: Vec::new(),
            findable: BTreeSet::new(),
        })
    }

    /// Makes room for `additional` more pending entries.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.pending.reserve(additional);
    }

    /// Adds an entry, written at the next flush.
    pub(crate) fn insert(&mut self, flat: [u8; N]) {
        self.pending.push(flat);
    }

    /// Adds an entry that [`with_prefix`](Self::with_prefix) must see before
    /// the flush.
    pub(crate) fn insert_findable(&mut self, flat: [u8; N]) {
        self.insert(flat);
        self.findable.insert(flat);
    }

    /// Removes an entry, pending or stored.
    pub(crate) fn remove(&mut self, flat: &[u8; N]) -> Result<(), StoreError> {
        self.removed.push((*flat, self.pending.len()));
        self.findable.remove(flat);
        let (prefix, rest) = flat.split_at(Self::PREFIX);
        let Some((key, old)) = self.block_at(prefix, &rest[..SHORT_LEN])? else {
            return Ok(());
        };
        let kept: Vec<u8> = old
            .chunks_exact(Self::ENTRY)
            .filter(|e| *e != rest)
            .flatten()
            .copied()
            .collect();
        if kept.len() == old.len() {
            return Ok(());
        }
        if kept.is_empty() {
            self.table.remove(&key)?;
        } else {
            let value = encode(&key[Self::PREFIX..], &kept, Self::ENTRY);
            self.table.insert(&key, value)?;
        }
        Ok(())
    }

    /// Every entry under `prefix` that is stored or was added with
    /// [`insert_findable`](Self::insert_findable), as flat keys in order.
    pub(crate) fn with_prefix(&self, prefix: &[u8]) -> Result<Vec<[u8; N]>, StoreError> {
        let lo: [u8; K] = concat(&[prefix, &[0u8; SHORT_LEN]]);
        let hi: [u8; K] = concat(&[prefix, &[0xffu8; SHORT_LEN]]);
        let mut out = Vec::new();
        let mut block = Vec::new();
        for item in self.table.range::<&[u8; K]>(&lo..=&hi)? {
            let (key, value) = item?;
            let bound = &key.value()[Self::PREFIX..];
            decode_into(bound, value.value(), Self::ENTRY, self.name, &mut block)?;
            for e in block.chunks_exact(Self::ENTRY) {
                out.push(concat(&[prefix, e]));
            }
        }
        let flat_lo: [u8; N] = concat(&[prefix, &vec![0u8; Self::ENTRY]]);
        let flat_hi: [u8; N] = concat(&[prefix, &vec![0xffu8; Self::ENTRY]]);
        out.extend(
            self.findable
                .range::<[u8; N], _>(flat_lo..=flat_hi)
                .copied(),
        );
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The block that holds (or would hold) `short` under `prefix`: the one
    /// with the greatest lower bound at or below it.
    fn block_at(&self, prefix: &[u8], short: &[u8]) -> Result<Option<Block<K>>, StoreError> {
        let mut entries = Vec::new();
        Ok(self
            .block_into(prefix, short, &mut entries)?
            .map(|key| (key, entries)))
    }

    /// As [`block_at`](Self::block_at), with the entries decoded into
    /// `entries` (emptied when there is no such block).
    fn block_into(
        &self,
        prefix: &[u8],
        short: &[u8],
        entries: &mut Vec<u8>,
    ) -> Result<Option<[u8; K]>, StoreError> {
        let lo: [u8; K] = concat(&[prefix, &[0u8; SHORT_LEN]]);
        let at: [u8; K] = concat(&[prefix, short]);
        let found = self.table.range::<&[u8; K]>(&lo..=&at)?.next_back();
        match found {
            None => {
                entries.clear();
                Ok(None)
            }
            Some(item) => {
                let (key, value) = item?;
                let key = *key.value();
                let bound = &key[Self::PREFIX..];
                decode_into(bound, value.value(), Self::ENTRY, self.name, entries)?;
                Ok(Some(key))
            }
        }
    }

    /// The lower bound of the first block under `prefix` above `key`.
    fn next_bound(&self, prefix: &[u8], key: &[u8; K]) -> Result<Option<ShortId>, StoreError> {
        let hi: [u8; K] = concat(&[prefix, &[0xffu8; SHORT_LEN]]);
        for item in self.table.range::<&[u8; K]>(key..=&hi)? {
            let (next, _) = item?;
            let next = next.value();
            if next != key {
                return Ok(Some(concat(&[&next[Self::PREFIX..]])));
            }
        }
        Ok(None)
    }

    /// Writes the pending entries, block by block, in key order.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        let mut pending = std::mem::take(&mut self.pending);
        let removed = std::mem::take(&mut self.removed);
        self.findable.clear();
        if !removed.is_empty() {
            // Drop the copies added before each entry's last removal.
            let mut last: BTreeMap<[u8; N], usize> = BTreeMap::new();
            for (flat, at) in &removed {
                let seen = last.entry(*flat).or_insert(*at);
                *seen = (*seen).max(*at);
            }
            let sieve = Sieve::new(last.keys().map(|f| &f[Self::PREFIX..]));
            let mut index = 0;
            pending.retain(|e| {
                let added = index;
                index += 1;
                !sieve.maybe(&e[Self::PREFIX..])
                    || last.get(e).is_none_or(|&removal| added >= removal)
            });
        }
        // Most pairs differ in their first 8 bytes: compare those as one
        // number first.
        pending.sort_unstable_by(|a, b| head(a).cmp(&head(b)).then_with(|| a.cmp(b)));
        pending.dedup();
        let mut rest = pending.as_slice();
        let (mut old, mut merged) = (Vec::new(), Vec::new());
        while let Some(first) = rest.first() {
            let prefix = &first[..Self::PREFIX];
            let short = &first[Self::PREFIX..Self::PREFIX + SHORT_LEN];
            // The block to fill.
            let key = match self.block_into(prefix, short, &mut old)? {
                Some(key) => key,
                None => concat(&[prefix, short]),
            };
            // More entries of this prefix go into the same block as long as
            // they are below the next block's lower bound (looked up only
            // when there is a next entry of the prefix).
            let mut taken = 1;
            let mut upper: Option<Option<ShortId>> = None;
            while let Some(next) = rest.get(taken) {
                if next[..Self::PREFIX] != *prefix {
                    break;
                }
                let bound = match upper {
                    Some(bound) => bound,
                    None => {
                        let bound = self.next_bound(prefix, &key)?;
                        upper = Some(bound);
                        bound
                    }
                };
                if bound.is_some_and(|u| next[Self::PREFIX..Self::PREFIX + SHORT_LEN] >= u[..]) {
                    break;
                }
                taken += 1;
            }
            let (group, after) = rest.split_at(taken);
            rest = after;
            merge_into(
                &old,
                group.iter().map(|t| &t[Self::PREFIX..]),
                Self::ENTRY,
                &mut merged,
            );
            // Write back: the first part under the block's key, the rest
            // under their first short ids.
            for (i, part) in split(&merged, Self::ENTRY).into_iter().enumerate() {
                let part_key: [u8; K] = if i == 0 {
                    key
                } else {
                    concat(&[prefix, &part[..SHORT_LEN]])
                };
                let value = encode(&part_key[Self::PREFIX..], part, Self::ENTRY);
                self.table.insert(&part_key, value)?;
            }
        }
        Ok(())
    }
}

/// The first 8 bytes of a flat key, as a number that sorts like them.
fn head<const N: usize>(flat: &[u8; N]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = N.min(8);
    bytes[..n].copy_from_slice(&flat[..n]);
    u64::from_be_bytes(bytes)
}

/// Cuts a block's entries into parts of [`BLOCK_ENTRIES`], except that
/// entries with the same short id stay in one part.
fn split(entries: &[u8], entry: usize) -> Vec<&[u8]> {
    let count = entries.len() / entry;
    let mut parts = Vec::with_capacity(count / BLOCK_ENTRIES + 1);
    let mut start = 0;
    let mut at = BLOCK_ENTRIES.min(count);
    while at < count {
        let short = |i: usize| &entries[i * entry..i * entry + SHORT_LEN];
        if short(at) != short(at - 1) {
            parts.push(&entries[start * entry..at * entry]);
            start = at;
            at = (at + BLOCK_ENTRIES).min(count);
        } else {
            at += 1;
        }
    }
    parts.push(&entries[start * entry..]);
    parts
}

/// Merges two ascending lists of entries into `out`, dropping repeats.
fn merge_into<'e>(
    old: &'e [u8],
    new: impl Iterator<Item = &'e [u8]>,
    entry: usize,
    out: &mut Vec<u8>,
) {
    out.clear();
    let mut a = old.chunks_exact(entry).peekable();
    let mut b = new.peekable();
    let mut last: Option<&[u8]> = None;
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                if x <= y {
                    a.next()
                } else {
                    b.next()
                }
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        if let Some(e) = next
            && last != Some(e)
        {
            out.extend_from_slice(e);
            last = Some(e);
        }
    }
}

/// A reverse scan of one prefix of a block table: short ids from `high`
/// down to `low`, newest first, optionally only entries whose suffix is
/// `suffix`.
pub(crate) struct BlockLane<const K: usize> {
    range: redb::Range<'static, &'static [u8; K], &'static [u8]>,
    name: &'static str,
    entry: usize,
    low: ShortId,
    high: ShortId,
    suffix: Option<[u8; 8]>,
    /// The current block's entries, and how many are left to yield.
    block: Vec<u8>,
    left: usize,
    done: bool,
}

impl<const K: usize> BlockLane<K> {
    pub(crate) fn open(
        table: &ReadOnlyTable<&'static [u8; K], &'static [u8]>,
        name: &'static str,
        prefix: &[u8],
        entry: usize,
        (low, high): (&ShortId, &ShortId),
        suffix: Option<[u8; 8]>,
    ) -> Result<BlockLane<K>, StoreError> {
        let lo: [u8; K] = concat(&[prefix, &[0u8; SHORT_LEN]]);
        let hi: [u8; K] = concat(&[prefix, high]);
        Ok(BlockLane {
            range: table.range::<&[u8; K]>(&lo..=&hi)?,
            name,
            entry,
            low: *low,
            high: *high,
            suffix,
            block: Vec::new(),
            left: 0,
            done: false,
        })
    }
}

impl<const K: usize> Iterator for BlockLane<K> {
    type Item = Result<ShortId, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if self.left == 0 {
                match self.range.next_back() {
                    None => {
                        self.done = true;
                        return None;
                    }
                    Some(Err(e)) => return Some(Err(e.into())),
                    Some(Ok((key, value))) => {
                        let bound = key.value().get(K - SHORT_LEN..).unwrap_or_default();
                        match decode_into(
                            bound,
                            value.value(),
                            self.entry,
                            self.name,
                            &mut self.block,
                        ) {
                            Ok(()) => self.left = self.block.len() / self.entry,
                            Err(e) => return Some(Err(e.into())),
                        }
                    }
                }
                continue;
            }
            self.left -= 1;
            let at = self.left * self.entry;
            let e = &self.block[at..at + self.entry];
            let short = &e[..SHORT_LEN];
            if short > &self.high[..] {
                continue;
            }
            if short < &self.low[..] {
                self.done = true;
                return None;
            }
            if let Some(suffix) = &self.suffix
                && e.get(SHORT_LEN..) != Some(suffix.as_slice())
            {
                continue;
            }
            return Some(Ok(concat(&[short])));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use redb::{Database, ReadableDatabase};

    use super::*;

    const TABLE: BlockTable<18> = TableDefinition::new("t");

    fn decode(
        bound: &[u8],
        value: &[u8],
        entry: usize,
        table: &'static str,
    ) -> Result<Vec<u8>, Corruption> {
        let mut out = vec![0xee; 5];
        decode_into(bound, value, entry, table, &mut out)?;
        Ok(out)
    }

    /// A flat key: prefix (2) | short id (16) | suffix (8). Every third
    /// short id is shared by three entries that differ in their suffix.
    fn flat(prefix: u8, n: u64, suffix: u8) -> [u8; 26] {
        let mut k = [0u8; 26];
        k[0] = prefix;
        k[2..10].copy_from_slice(&n.to_be_bytes());
        k[10] = (n % 251) as u8;
        k[18..].fill(suffix);
        k
    }

    fn short(n: u64) -> ShortId {
        concat(&[&flat(0, n, 0)[2..18]])
    }

    #[test]
    fn blocks_match_a_set_through_inserts_removals_and_scans() {
        let dir = std::env::temp_dir().join(format!(
            "mosaic-store-postings-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Database::create(dir.join("t.redb")).unwrap();
        let mut model: BTreeSet<[u8; 26]> = BTreeSet::new();
        // A fixed pseudo-random order, several transactions, two prefixes;
        // short ids divisible by 7 come with three suffixes, as records
        // whose short ids collide.
        let mut x: u64 = 12345;
        let mut step = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for round in 0..8 {
            let txn = db.begin_write().unwrap();
            {
                let mut p: Postings<'_, 18, 26> = Postings::open(&txn, TABLE, "t").unwrap();
                for i in 0..150 {
                    let n = step() % 1000;
                    let suffix = if n % 7 == 0 { (step() % 3) as u8 } else { 0 };
                    let k = flat((n % 2) as u8, n, suffix);
                    if step() % 4 == 0 && round > 0 {
                        p.remove(&k).unwrap();
                        model.remove(&k);
                    } else {
                        if i % 2 == 0 {
                            p.insert(k);
                        } else {
                            p.insert_findable(k);
                        }
                        model.insert(k);
                    }
                }
                // Entries added and removed within one transaction, and
                // added again.
                let gone = flat(1, 2001, 0);
                p.insert(gone);
                p.remove(&gone).unwrap();
                let back = flat(1, 2003, 0);
                p.insert_findable(back);
                p.remove(&back).unwrap();
                p.insert(back);
                model.insert(back);
                // Stored entries and findable pending ones are listed.
                let listed = p.with_prefix(&[1, 0]).unwrap();
                assert!(!listed.contains(&gone));
                for k in &listed {
                    assert!(model.contains(k), "round {round}: {k:?} listed");
                }
                p.flush().unwrap();
                // After the flush, every entry is stored.
                let listed = p.with_prefix(&[1, 0]).unwrap();
                let expected: Vec<_> = model.iter().filter(|k| k[0] == 1).copied().collect();
                assert!(listed == expected, "round {round}");
                model.remove(&back);
                p.remove(&back).unwrap();
            }
            txn.commit().unwrap();
        }
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        // Every block holds whole entries in ascending order, at or above
        // its lower bound and below the next block's; more than 32 only
        // when short ids repeat at the cut.
        let blocks: Vec<([u8; 18], Vec<u8>)> = table
            .iter()
            .unwrap()
            .map(|item| {
                let (k, v) = item.unwrap();
                let k = *k.value();
                let entries = decode(&k[2..], v.value(), 24, "t").unwrap();
                (k, entries)
            })
            .collect();
        // Single entries at their bound are stored short.
        assert!(
            table
                .iter()
                .unwrap()
                .any(|item| item.unwrap().1.value().len() == 8)
        );
        for (i, (key, v)) in blocks.iter().enumerate() {
            assert!(!v.is_empty() && v.len() % 24 == 0 && v.len() <= (BLOCK_ENTRIES + 2) * 24);
            let e: Vec<&[u8]> = v.chunks(24).collect();
            assert!(e.windows(2).all(|w| w[0] < w[1]));
            assert!(e[0][..16] >= key[2..]);
            if let Some((next, _)) = blocks.get(i + 1)
                && next[..2] == key[..2]
            {
                assert!(e[e.len() - 1][..16] < next[2..]);
            }
        }
        for prefix in [0u8, 1] {
            for (low, high) in [(0, 2000), (100, 700), (500, 499), (333, 333), (77, 77)] {
                for suffix in [None, Some([2u8; 8])] {
                    let lane = BlockLane::open(
                        &table,
                        "t",
                        &[prefix, 0],
                        24,
                        (&short(low), &short(high)),
                        suffix,
                    )
                    .unwrap();
                    let got: Vec<ShortId> = lane.map(|r| r.unwrap()).collect();
                    let want: Vec<ShortId> = model
                        .iter()
                        .rev()
                        .filter(|k| k[0] == prefix)
                        .filter(|k| k[2..18] >= short(low)[..] && k[2..18] <= short(high)[..])
                        .filter(|k| suffix.is_none_or(|s| k[18..] == s))
                        .map(|k| concat(&[&k[2..18]]))
                        .collect();
                    assert_eq!(got, want, "prefix {prefix} {low}..={high} {suffix:?}");
                }
            }
        }
        drop(table);
        drop(txn);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn merge_keeps_order_and_drops_repeats() {
        let old: Vec<u8> = [1u8, 3, 5].iter().flat_map(|&b| [b, 0]).collect();
        let new: Vec<[u8; 2]> = vec![[0, 0], [3, 0], [4, 0], [9, 0]];
        let mut merged = vec![9u8; 3];
        merge_into(&old, new.iter().map(|n| n.as_slice()), 2, &mut merged);
        let firsts: Vec<u8> = merged.chunks(2).map(|c| c[0]).collect();
        assert_eq!(firsts, vec![0, 1, 3, 4, 5, 9]);
    }

    #[test]
    fn splits_keep_equal_short_ids_together() {
        // Entries of 17 bytes: short id, then one suffix byte.
        let entry = |short: u8, suffix: u8| -> [u8; 17] {
            let mut e = [0u8; 17];
            e[0] = short;
            e[16] = suffix;
            e
        };
        let plain: Vec<u8> = (0..70u8).flat_map(|i| entry(i, 0)).collect();
        let parts = split(&plain, 17);
        let sizes: Vec<usize> = parts.iter().map(|p| p.len() / 17).collect();
        assert_eq!(sizes, vec![32, 32, 6]);
        // Short id 31 three times across the first cut.
        let mut shared: Vec<u8> = (0..31u8).flat_map(|i| entry(i, 0)).collect();
        shared.extend((0..3).flat_map(|s| entry(31, s)));
        shared.extend((32..40u8).flat_map(|i| entry(i, 0)));
        let parts = split(&shared, 17);
        let sizes: Vec<usize> = parts.iter().map(|p| p.len() / 17).collect();
        assert_eq!(sizes, vec![34, 8]);
        assert_eq!(parts[1][0], 32);
    }

    #[test]
    fn single_entries_at_the_bound_store_their_suffix_only() {
        let bound = [7u8; 16];
        let mut at_bound = bound.to_vec();
        at_bound.extend_from_slice(&[1, 2]);
        assert_eq!(encode(&bound, &at_bound, 18), &[1, 2]);
        assert_eq!(decode(&bound, &[1, 2], 18, "t").unwrap(), at_bound);
        // Without a suffix: an empty value.
        assert_eq!(encode(&bound, &bound, 16), &[] as &[u8]);
        assert_eq!(decode(&bound, &[], 16, "t").unwrap(), bound.to_vec());
        // Above the bound, or two entries: stored whole.
        let above = [8u8; 16];
        assert_eq!(encode(&bound, &above, 16), &above);
        assert_eq!(decode(&bound, &above, 16, "t").unwrap(), above.to_vec());
        let two = [bound, above].concat();
        assert_eq!(encode(&bound, &two, 16), two.as_slice());
        assert_eq!(decode(&bound, &two, 16, "t").unwrap(), two);
    }

    #[test]
    fn damaged_blocks_are_reported() {
        let bound = [0u8; 16];
        assert!(decode(&bound, &[0u8; 15], 16, "t").is_err());
        assert!(decode(&bound, &[0u8; 3], 18, "t").is_err());
        assert!(decode(&bound, &[], 18, "t").is_err());
        assert!(decode(&bound, &[0u8; 17], 18, "t").is_err());
        assert!(decode(&bound[..8], &[], 16, "t").is_err());
        assert!(decode(&bound, &[0u8; 32], 16, "t").is_ok());
        assert!(decode(&bound, &[0u8; 36], 18, "t").is_ok());
    }
}
