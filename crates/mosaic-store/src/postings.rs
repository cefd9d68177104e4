//! Index tables as posting blocks: many index entries per database entry.
//!
//! An index maps a prefix (an author, a kind, a tag...) to the ids of its
//! records. Rather than one database entry per (prefix, id), entries are
//! grouped in blocks of up to [`BLOCK_ENTRIES`]: the key is `prefix | lower
//! bound` (the id the block starts at), the value the block's entries in
//! ascending order, each an id (48 bytes) and, for some indexes, a suffix.
//!
//! Invariant: a block holds only entries whose id is at or above its key's
//! lower bound and below the next block's (of the same prefix). A new entry
//! therefore goes into the block with the greatest lower bound at or below
//! its id (or a new block keyed by its own id); a block that grows past
//! [`BLOCK_ENTRIES`] is split, each new part keyed by its first id. Removing
//! entries keeps the invariant; an empty block is deleted.
//!
//! Records mostly arrive in time order per prefix, so a batch of inserts
//! usually rewrites the last block of each prefix once and appends whole new
//! blocks: far fewer database operations than one per entry.

use std::collections::BTreeSet;

use mosaic_core::Id;
use redb::{ReadOnlyTable, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::error::{Corruption, StoreError};
use crate::layout::{ID_LEN, concat};

/// Most entries in one block.
pub(crate) const BLOCK_ENTRIES: usize = 32;

/// A block table: `prefix | lower bound (48)` -> entries.
pub(crate) type BlockTable<const K: usize> =
    TableDefinition<'static, &'static [u8; K], &'static [u8]>;

/// A block read back: its key and its entries.
type Block<const K: usize> = ([u8; K], Vec<u8>);

/// Checks a block's value: a whole, non-zero number of entries.
fn entries<'v>(value: &'v [u8], entry: usize, table: &'static str) -> Result<&'v [u8], Corruption> {
    if value.is_empty() || entry == 0 || !value.len().is_multiple_of(entry) {
        return Err(Corruption::IndexBlock { table });
    }
    Ok(value)
}

/// One index inside a write transaction. Entries are "flat keys" of `N`
/// bytes: `prefix | id | suffix`, where the block key is `prefix | id` (`K`
/// bytes). New entries are collected and written, sorted, at
/// [`flush`](Self::flush).
pub(crate) struct Postings<'t, const K: usize, const N: usize> {
    table: Table<'t, &'static [u8; K], &'static [u8]>,
    name: &'static str,
    pending: BTreeSet<[u8; N]>,
}

impl<'t, const K: usize, const N: usize> Postings<'t, K, N> {
    const PREFIX: usize = K - ID_LEN;
    const ENTRY: usize = N - Self::PREFIX;

    pub(crate) fn open(
        txn: &'t WriteTransaction,
        def: BlockTable<K>,
        name: &'static str,
    ) -> Result<Postings<'t, K, N>, StoreError> {
        Ok(Postings {
            table: txn.open_table(def)?,
            name,
            pending: BTreeSet::new(),
        })
    }

    pub(crate) fn insert(&mut self, flat: [u8; N]) {
        self.pending.insert(flat);
    }

    /// Removes an entry, pending or stored.
    pub(crate) fn remove(&mut self, flat: &[u8; N]) -> Result<(), StoreError> {
        self.pending.remove(flat);
        let (prefix, rest) = flat.split_at(Self::PREFIX);
        let Some((key, value)) = self.block_at(prefix, &rest[..ID_LEN])? else {
            return Ok(());
        };
        let old = entries(&value, Self::ENTRY, self.name)?;
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
            self.table.insert(&key, kept.as_slice())?;
        }
        Ok(())
    }

    /// Every entry under `prefix`, stored or pending, as flat keys in order.
    pub(crate) fn with_prefix(&self, prefix: &[u8]) -> Result<Vec<[u8; N]>, StoreError> {
        let lo: [u8; K] = concat(&[prefix, &[0u8; ID_LEN]]);
        let hi: [u8; K] = concat(&[prefix, &[0xffu8; ID_LEN]]);
        let mut out = Vec::new();
        for item in self.table.range::<&[u8; K]>(&lo..=&hi)? {
            let (_, value) = item?;
            for e in entries(value.value(), Self::ENTRY, self.name)?.chunks_exact(Self::ENTRY) {
                out.push(concat(&[prefix, e]));
            }
        }
        let flat_lo: [u8; N] = concat(&[prefix, &vec![0u8; Self::ENTRY]]);
        let flat_hi: [u8; N] = concat(&[prefix, &vec![0xffu8; Self::ENTRY]]);
        out.extend(self.pending.range::<[u8; N], _>(flat_lo..=flat_hi).copied());
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The block that holds (or would hold) `id` under `prefix`: the one with
    /// the greatest lower bound at or below it.
    fn block_at(&self, prefix: &[u8], id: &[u8]) -> Result<Option<Block<K>>, StoreError> {
        let lo: [u8; K] = concat(&[prefix, &[0u8; ID_LEN]]);
        let at: [u8; K] = concat(&[prefix, id]);
        let found = self.table.range::<&[u8; K]>(&lo..=&at)?.next_back();
        match found {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item?;
                Ok(Some((*key.value(), value.value().to_vec())))
            }
        }
    }

    /// The lower bound of the first block under `prefix` above `key`.
    fn next_bound(&self, prefix: &[u8], key: &[u8; K]) -> Result<Option<[u8; ID_LEN]>, StoreError> {
        let hi: [u8; K] = concat(&[prefix, &[0xffu8; ID_LEN]]);
        for item in self.table.range::<&[u8; K]>(key..=&hi)? {
            let (next, _) = item?;
            let next = next.value();
            if next != key {
                return Ok(Some(concat(&[&next[Self::PREFIX..]])));
            }
        }
        Ok(None)
    }

    /// Writes the pending entries, block by block.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        let mut iter = pending.into_iter().peekable();
        while let Some(first) = iter.next() {
            let prefix = &first[..Self::PREFIX];
            let id = &first[Self::PREFIX..Self::PREFIX + ID_LEN];
            // The block to fill.
            let (key, old) = match self.block_at(prefix, id)? {
                Some((key, value)) => (key, value),
                None => (concat(&[prefix, id]), Vec::new()),
            };
            if !old.is_empty() {
                entries(&old, Self::ENTRY, self.name)?;
            }
            let mut new: Vec<&[u8]> = Vec::new();
            let first_entry = &first[Self::PREFIX..];
            new.push(first_entry);
            // More entries of this prefix go into the same block as long as
            // they are below the next block's lower bound (looked up only
            // when there is a next entry of the prefix).
            let mut upper: Option<Option<[u8; ID_LEN]>> = None;
            let mut taken: Vec<[u8; N]> = Vec::new();
            while let Some(next) = iter.peek() {
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
                if bound.is_some_and(|u| next[Self::PREFIX..Self::PREFIX + ID_LEN] >= u[..]) {
                    break;
                }
                if let Some(next) = iter.next() {
                    taken.push(next);
                }
            }
            new.extend(taken.iter().map(|t| &t[Self::PREFIX..]));
            let merged = merge(&old, &new, Self::ENTRY);
            // Write back: the first part under the block's key, the rest
            // under their first ids.
            for (i, part) in merged.chunks(BLOCK_ENTRIES * Self::ENTRY).enumerate() {
                let part_key: [u8; K] = if i == 0 {
                    key
                } else {
                    concat(&[prefix, &part[..ID_LEN]])
                };
                self.table.insert(&part_key, part)?;
            }
        }
        Ok(())
    }
}

/// Merges two ascending lists of entries, dropping repeats.
fn merge(old: &[u8], new: &[&[u8]], entry: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(old.len() + new.len() * entry);
    let mut a = old.chunks_exact(entry).peekable();
    let mut b = new.iter().copied().peekable();
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
    out
}

/// A reverse scan of one prefix of a block table: ids from `high` down to
/// `low`, newest first, optionally only entries whose suffix is `suffix`.
pub(crate) struct BlockLane<const K: usize> {
    range: redb::Range<'static, &'static [u8; K], &'static [u8]>,
    name: &'static str,
    entry: usize,
    low: [u8; ID_LEN],
    high: [u8; ID_LEN],
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
        (low, high): (&[u8; ID_LEN], &[u8; ID_LEN]),
        suffix: Option<[u8; 8]>,
    ) -> Result<BlockLane<K>, StoreError> {
        let lo: [u8; K] = concat(&[prefix, &[0u8; ID_LEN]]);
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
    type Item = Result<Id, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if self.left == 0 {
                match self.range.next_back() {
                    None => {
                        self.done = true;
                        return None;
                    }
                    Some(Err(e)) => return Some(Err(e.into())),
                    Some(Ok((_, value))) => match entries(value.value(), self.entry, self.name) {
                        Ok(e) => {
                            self.block = e.to_vec();
                            self.left = e.len() / self.entry;
                        }
                        Err(e) => return Some(Err(e.into())),
                    },
                }
                continue;
            }
            self.left -= 1;
            let at = self.left * self.entry;
            let e = &self.block[at..at + self.entry];
            let id = &e[..ID_LEN];
            if id > &self.high[..] {
                continue;
            }
            if id < &self.low[..] {
                self.done = true;
                return None;
            }
            if let Some(suffix) = &self.suffix
                && e.get(ID_LEN..) != Some(suffix.as_slice())
            {
                continue;
            }
            let id: [u8; ID_LEN] = concat(&[id]);
            return Some(
                Id::from_bytes(&id).map_err(|_| Corruption::IndexKey { table: self.name }.into()),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use redb::{Database, ReadableDatabase};

    use super::*;

    const TABLE: BlockTable<50> = TableDefinition::new("t");

    /// A flat key: prefix (2) | id (48) | suffix (8).
    fn flat(prefix: u8, n: u64, suffix: u8) -> [u8; 58] {
        let mut k = [0u8; 58];
        k[0] = prefix;
        k[2..10].copy_from_slice(&n.to_be_bytes());
        k[10] = (n % 251) as u8;
        k[50..].fill(suffix);
        k
    }

    fn id(n: u64) -> [u8; 48] {
        concat(&[&flat(0, n, 0)[2..50]])
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
        let mut model: BTreeSet<[u8; 58]> = BTreeSet::new();
        // A fixed pseudo-random order, several transactions, two prefixes.
        let mut x: u64 = 12345;
        let mut step = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for round in 0..6 {
            let txn = db.begin_write().unwrap();
            {
                let mut p: Postings<'_, 50, 58> = Postings::open(&txn, TABLE, "t").unwrap();
                for _ in 0..120 {
                    let n = step() % 1000;
                    let k = flat((n % 2) as u8, n, (n % 3) as u8);
                    if step() % 4 == 0 && round > 0 {
                        p.remove(&k).unwrap();
                        model.remove(&k);
                    } else {
                        p.insert(k);
                        model.insert(k);
                    }
                }
                // Entries added and removed within one transaction.
                let gone = flat(1, 2001, 0);
                p.insert(gone);
                p.remove(&gone).unwrap();
                let listed = p.with_prefix(&[1, 0]).unwrap();
                let expected: Vec<_> = model.iter().filter(|k| k[0] == 1).copied().collect();
                let show = |v: &[[u8; 58]]| -> Vec<u64> {
                    v.iter()
                        .map(|k| u64::from_be_bytes(concat(&[&k[2..10]])))
                        .collect()
                };
                assert!(
                    listed == expected,
                    "round {round}: listed {:?}\nexpected {:?}",
                    show(&listed),
                    show(&expected)
                );
                p.flush().unwrap();
            }
            txn.commit().unwrap();
        }
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        // Every block holds 1..=32 whole entries in ascending order, at or
        // above its lower bound.
        for item in table.iter().unwrap() {
            let (key, value) = item.unwrap();
            let v = value.value();
            assert!(!v.is_empty() && v.len() % 56 == 0 && v.len() <= BLOCK_ENTRIES * 56);
            let e: Vec<&[u8]> = v.chunks(56).collect();
            assert!(e.windows(2).all(|w| w[0] < w[1]));
            assert!(e[0][..48] >= key.value()[2..]);
        }
        for prefix in [0u8, 1] {
            for (low, high) in [(0, 2000), (100, 700), (500, 499), (333, 333)] {
                for suffix in [None, Some([2u8; 8])] {
                    let lane = BlockLane::open(
                        &table,
                        "t",
                        &[prefix, 0],
                        56,
                        (&id(low), &id(high)),
                        suffix,
                    )
                    .unwrap();
                    let got: Vec<Id> = lane.map(|r| r.unwrap()).collect();
                    let want: Vec<Id> = model
                        .iter()
                        .rev()
                        .filter(|k| k[0] == prefix)
                        .filter(|k| k[2..50] >= id(low)[..] && k[2..50] <= id(high)[..])
                        .filter(|k| suffix.is_none_or(|s| k[50..] == s))
                        .map(|k| Id::from_bytes(&concat(&[&k[2..50]])).unwrap())
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
        let refs: Vec<&[u8]> = new.iter().map(|n| n.as_slice()).collect();
        let merged = merge(&old, &refs, 2);
        let firsts: Vec<u8> = merged.chunks(2).map(|c| c[0]).collect();
        assert_eq!(firsts, vec![0, 1, 3, 4, 5, 9]);
    }

    #[test]
    fn damaged_blocks_are_reported() {
        assert!(entries(&[0u8; 47], 48, "t").is_err());
        assert!(entries(&[], 48, "t").is_err());
        assert!(entries(&[0u8; 96], 48, "t").is_ok());
    }
}
