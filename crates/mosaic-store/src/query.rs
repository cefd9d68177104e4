//! Queries: the planner that picks an index, and [`Records`], the iterator
//! that streams matches newest first.
//!
//! Every index entry is a prefix and a record's short id, the start of its
//! id, which begins with the timestamp, so one index prefix scanned in
//! reverse yields its records in D-5 order (timestamp descending, then id
//! descending), and a filter's `since` and `until` bound the scan. When the
//! chosen element lists several keys, one scan ("lane") per key is opened
//! and the lanes are merged on the short id with a heap. Each short id is
//! looked up in the records table, which is keyed by it, and every candidate
//! is checked against the whole filter ([`Filter::matches`]), which applies
//! the wide elements and any narrow element the index did not answer.

use std::collections::BinaryHeap;
use std::fmt;

use mosaic_core::{Address, Filter, Kind, OwnedFilter, OwnedRecord, PublicKey, Timestamp};
use redb::{ReadOnlyTable, ReadTransaction};

use crate::error::{Corruption, StoreError};
use crate::layout::{
    self, AUTHOR_KIND_ENTRY, AUTHOR_KIND_PREFIX, BY_AUTHOR_KIND, BY_KIND, BY_SIGNER, BY_TAG,
    RECORDS, SHORT_LEN, ShortId, TAG_VALUE_PREFIX, concat, decode_record, names,
};
use crate::postings::BlockLane;

/// A stored record and when the store received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record, exactly as submitted.
    pub record: OwnedRecord,
    /// When it was received, as the caller said on insert.
    pub received_at: Timestamp,
}

/// Estimated candidates per listed timestamp.
const TIMESTAMP_COST: u64 = 1;
/// Estimated candidates per listed tag.
const TAG_COST: u64 = 64;
/// Estimated candidates per listed author or signer.
const KEY_COST: u64 = 1024;
/// Most lanes an author-and-kind plan opens.
const MAX_PAIRS: usize = 256;

/// Which index answers a query, and with which keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Every record, newest first (a filter with no narrow element).
    Scan,
    /// The records table, one lane per timestamp.
    Timestamps(Vec<Timestamp>),
    /// The tag index, one lane per tag prefix of one included-tags element.
    Tags(Vec<[u8; 2 + TAG_VALUE_PREFIX]>),
    /// The author-and-kind index, one lane per (author, kind) pair.
    AuthorKinds(Vec<(PublicKey, Kind)>),
    /// The author-and-kind index, one lane per kind of each author.
    Authors(Vec<PublicKey>),
    /// The signer index, one lane per key.
    Signers(Vec<PublicKey>),
    /// The kind index, one lane per kind.
    Kinds(Vec<Kind>),
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Picks the narrowest index for `filter`: a filter with a narrow element
/// is always answered from an index, one without is a scan. `kind_count`
/// gives the exact number of stored records of a kind; the other element
/// types are estimated from how many keys they list. Ties go to the earlier
/// of: timestamps, tags, authors, signers, kinds.
pub(crate) fn plan(filter: &Filter, kind_count: impl Fn(Kind) -> u64) -> Plan {
    let mut options: Vec<(u64, Plan)> = Vec::new();
    if let Some(t) = filter.timestamps() {
        let ts = sorted(t.iter().collect());
        options.push((ts.len() as u64 * TIMESTAMP_COST, Plan::Timestamps(ts)));
    }
    let narrowest_tags = filter
        .included_tags()
        .map(|list| sorted(list.iter().map(layout::tag_prefix).collect::<Vec<_>>()))
        .min_by_key(Vec::len);
    if let Some(prefixes) = narrowest_tags {
        options.push((prefixes.len() as u64 * TAG_COST, Plan::Tags(prefixes)));
    }
    let authors = filter
        .authors()
        .map(|keys| sorted(keys.iter().collect::<Vec<_>>()));
    let kinds = filter
        .kinds()
        .map(|kinds| sorted(kinds.iter().collect::<Vec<_>>()));
    let author_cost = authors.as_ref().map(|a| a.len() as u64 * KEY_COST);
    let kind_cost = kinds.as_ref().map(|kinds| {
        kinds
            .iter()
            .fold(0u64, |sum, &k| sum.saturating_add(kind_count(k)))
    });
    if let (Some(a), Some(k), Some(ac), Some(kc)) = (&authors, &kinds, author_cost, kind_cost)
        && a.len() * k.len() <= MAX_PAIRS
    {
        // Narrower than either alone: ties go to it.
        let pairs = a
            .iter()
            .flat_map(|&author| k.iter().map(move |&kind| (author, kind)))
            .collect();
        options.push((ac.min(kc), Plan::AuthorKinds(pairs)));
    }
    if let (Some(keys), Some(cost)) = (authors, author_cost) {
        options.push((cost, Plan::Authors(keys)));
    }
    if let Some(keys) = filter.signers() {
        let keys = sorted(keys.iter().collect());
        options.push((keys.len() as u64 * KEY_COST, Plan::Signers(keys)));
    }
    if let (Some(kinds), Some(cost)) = (kinds, kind_cost) {
        options.push((cost, Plan::Kinds(kinds)));
    }
    let mut best: Option<usize> = None;
    for (i, (cost, _)) in options.iter().enumerate() {
        if best.is_none_or(|b| *cost < options[b].0) {
            best = Some(i);
        }
    }
    match best {
        Some(i) => options.swap_remove(i).1,
        None => Plan::Scan,
    }
}

/// One reverse scan of an index prefix, yielding short ids newest first.
type Lane = Box<dyn Iterator<Item = Result<ShortId, StoreError>> + Send>;

/// The range of the records table a scan reads, in reverse.
type RecordRange = redb::Range<'static, &'static ShortId, &'static [u8]>;

/// Opens one lane over a block table (see `postings.rs`).
fn block_lane<const K: usize>(
    table: &ReadOnlyTable<&'static [u8; K], &'static [u8]>,
    name: &'static str,
    prefix: &[u8],
    entry: usize,
    bounds: (&ShortId, &ShortId),
    suffix: Option<[u8; 8]>,
) -> Result<Lane, StoreError> {
    Ok(Box::new(BlockLane::open(
        table, name, prefix, entry, bounds, suffix,
    )?))
}

/// The kinds an author has records of, found by skipping from one kind to
/// the next in `by_author_kind` (one range lookup per kind).
fn kinds_of(
    table: &ReadOnlyTable<&'static [u8; AUTHOR_KEY], &'static [u8]>,
    author: &PublicKey,
) -> Result<Vec<Kind>, StoreError> {
    let high: [u8; AUTHOR_KEY] = concat(&[author.as_bytes(), &[0xffu8; 8 + SHORT_LEN]]);
    let mut kinds = Vec::new();
    let mut next_kind = Some(0u64);
    while let Some(from) = next_kind {
        let low: [u8; AUTHOR_KEY] =
            concat(&[author.as_bytes(), &from.to_be_bytes(), &[0u8; SHORT_LEN]]);
        let Some(item) = table.range::<&[u8; AUTHOR_KEY]>(&low..=&high)?.next() else {
            break;
        };
        let (key, _) = item?;
        let kind = u64::from_be_bytes(concat(&[key.value().get(32..40).unwrap_or(&[0xff; 8])]));
        kinds.push(Kind::from_u64(kind));
        next_kind = kind.checked_add(1);
    }
    Ok(kinds)
}

/// One lane of `by_author_kind` per kind the author has records of.
fn author_lanes(
    table: &ReadOnlyTable<&'static [u8; AUTHOR_KEY], &'static [u8]>,
    author: &PublicKey,
    bounds: (&ShortId, &ShortId),
) -> Result<Vec<Lane>, StoreError> {
    kinds_of(table, author)?
        .into_iter()
        .map(|kind| {
            let prefix: [u8; AUTHOR_KIND_PREFIX] =
                concat(&[author.as_bytes(), &kind.to_be_bytes()]);
            block_lane(
                table,
                names::BY_AUTHOR_KIND,
                &prefix,
                AUTHOR_KIND_ENTRY,
                bounds,
                None,
            )
        })
        .collect()
}

/// Length of a `by_author_kind` block key.
const AUTHOR_KEY: usize = AUTHOR_KIND_PREFIX + SHORT_LEN;

/// Merges lanes into one stream of distinct short ids, newest first.
struct Merge {
    lanes: Vec<Lane>,
    /// The next short id of each lane that has one.
    heap: BinaryHeap<(ShortId, usize)>,
    /// Lanes whose next short id has not been read yet.
    to_pull: Vec<usize>,
    last: Option<ShortId>,
}

impl Merge {
    fn new(lanes: Vec<Lane>) -> Merge {
        let to_pull = (0..lanes.len()).collect();
        Merge {
            lanes,
            heap: BinaryHeap::new(),
            to_pull,
            last: None,
        }
    }
}

impl Iterator for Merge {
    type Item = Result<ShortId, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            while let Some(i) = self.to_pull.pop() {
                match self.lanes.get_mut(i).and_then(Iterator::next) {
                    Some(Ok(id)) => self.heap.push((id, i)),
                    Some(Err(e)) => {
                        // Read this lane again on the next call.
                        self.to_pull.push(i);
                        return Some(Err(e));
                    }
                    None => {}
                }
            }
            let (id, lane) = self.heap.pop()?;
            self.to_pull.push(lane);
            // A record found through two tags of one element comes twice.
            if self.last != Some(id) {
                self.last = Some(id);
                return Some(Ok(id));
            }
        }
    }
}

enum Source {
    /// Ranges of the records table, each in reverse, the last range first.
    Scan(Vec<RecordRange>),
    /// Short ids from an index, looked up in the records table.
    Index {
        merge: Merge,
        /// The index the short ids come from, for errors.
        table: &'static str,
    },
}

/// The records a query or a version lookup finds, newest first (D-5),
/// streamed from a consistent snapshot of the store.
///
/// The iterator holds a read snapshot: writes go on meanwhile and are not
/// seen. Drop it when done, since the space that later writes free cannot
/// be reused while an older snapshot is alive.
///
/// An item is an error when data read back is damaged
/// ([`StoreError::Corrupt`]; the iterator goes on with the next record) or
/// when the database fails (the iterator then ends).
///
/// Two controls bound what one iterator does. A scan budget
/// ([`with_scan_budget`](Self::with_scan_budget)) caps the candidates it
/// reads, so that a filter that is narrow but matches little cannot read a
/// whole index in one call of [`next`](Iterator::next). A resume point
/// ([`resume_point`](Self::resume_point)) lets the caller drop the
/// iterator, and with it the snapshot, and continue later with
/// [`Store::query_after`](crate::Store::query_after).
pub struct Records {
    records: ReadOnlyTable<&'static ShortId, &'static [u8]>,
    source: Source,
    filter: Option<OwnedFilter>,
    /// For a version lookup: the address every record must have.
    address: Option<Address>,
    remaining: usize,
    /// Candidates read from the records table so far.
    examined: u64,
    /// Most candidates to read.
    budget: u64,
    /// Whether the iterator stopped because of the budget.
    exhausted: bool,
    /// The short id of the last candidate read.
    position: Option<ShortId>,
}

/// Where a query stopped: the place in D-5 order (timestamp descending,
/// then id descending) just after the last record it examined. Pass it to
/// [`Store::query_after`](crate::Store::query_after) to go on from there.
///
/// It is a position, not a snapshot: it names no stored state and stays
/// valid whatever is written or removed meanwhile. It can be used with any
/// filter, though only the query it came from makes sense.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryCursor(ShortId);

impl QueryCursor {
    /// The greatest short id strictly after the cursor in D-5 order (that
    /// is, below it), or `None` when nothing can follow it.
    fn next_high(&self) -> Option<ShortId> {
        u128::from_be_bytes(self.0)
            .checked_sub(1)
            .map(u128::to_be_bytes)
    }
}

impl fmt::Debug for QueryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryCursor({})", crate::error::hex(&self.0))
    }
}

impl Records {
    /// Builds the iterator that answers `filter` from `txn`, strictly
    /// after `after` when given.
    pub(crate) fn query(
        txn: &ReadTransaction,
        filter: &Filter,
        limit: usize,
        plan: Plan,
        after: Option<QueryCursor>,
    ) -> Result<Records, StoreError> {
        let records = txn.open_table(RECORDS)?;
        let low = layout::lowest_short(filter.since());
        let high = layout::highest_short(filter.until());
        let high = match after {
            None => Some(high),
            Some(cursor) => cursor.next_high().map(|next| next.min(high)),
        };
        let source = match high {
            Some(high) if low <= high => Self::source(txn, &records, &plan, &low, &high)?,
            _ => Source::Scan(Vec::new()),
        };
        Ok(Records::new(
            records,
            source,
            Some(filter.to_owned()),
            None,
            limit,
        ))
    }

    fn new(
        records: ReadOnlyTable<&'static ShortId, &'static [u8]>,
        source: Source,
        filter: Option<OwnedFilter>,
        address: Option<Address>,
        limit: usize,
    ) -> Records {
        Records {
            records,
            source,
            filter,
            address,
            remaining: limit,
            examined: 0,
            budget: u64::MAX,
            exhausted: false,
            position: None,
        }
    }

    /// Makes the iterator end once it has read `max_examined` candidates
    /// from the records table, matching or not; it reads no more than
    /// that in all. [`budget_exhausted`](Self::budget_exhausted) then says
    /// so, and [`resume_point`](Self::resume_point) says where to go on.
    /// The records already yielded stay valid. Without a budget (the
    /// default), an iterator reads as many candidates as it takes to find
    /// `limit` matches. A budget of 0 yields nothing.
    #[must_use]
    pub fn with_scan_budget(mut self, max_examined: u64) -> Records {
        self.budget = max_examined;
        self
    }

    /// How many candidates the iterator has read from the records table,
    /// whether or not they matched the filter.
    pub fn examined(&self) -> u64 {
        self.examined
    }

    /// Whether the iterator ended because it read as many candidates as its
    /// scan budget allows. More matches may follow: continue with
    /// [`Store::query_after`](crate::Store::query_after) from
    /// [`resume_point`](Self::resume_point) (when the budget ran out on
    /// the last candidate there is, that finds nothing).
    pub fn budget_exhausted(&self) -> bool {
        self.exhausted
    }

    /// The position just after the last record yielded, or further on when
    /// candidates after it were read and did not match the filter (or were
    /// damaged, and yielded as errors); `None` before any candidate was
    /// read. [`Store::query_after`](crate::Store::query_after) from it
    /// continues exactly where this iterator stopped, without reading again
    /// the candidates this one passed over.
    pub fn resume_point(&self) -> Option<QueryCursor> {
        self.position.map(QueryCursor)
    }

    fn source(
        txn: &ReadTransaction,
        records: &ReadOnlyTable<&'static ShortId, &'static [u8]>,
        plan: &Plan,
        low: &ShortId,
        high: &ShortId,
    ) -> Result<Source, StoreError> {
        let (lanes, table) = match plan {
            Plan::Scan => {
                return Ok(Source::Scan(vec![records.range::<&ShortId>(low..=high)?]));
            }
            Plan::Timestamps(ts) => {
                // Distinct timestamps, ascending: read from the last range.
                let mut ranges = Vec::with_capacity(ts.len());
                for t in ts {
                    let lo = layout::lowest_short(Some(*t)).max(*low);
                    let hi = layout::highest_short(Some(*t)).min(*high);
                    if lo <= hi {
                        ranges.push(records.range::<&ShortId>(&lo..=&hi)?);
                    }
                }
                return Ok(Source::Scan(ranges));
            }
            Plan::Tags(prefixes) => {
                let table = txn.open_table(BY_TAG)?;
                let lanes = prefixes
                    .iter()
                    .map(|p| block_lane(&table, names::BY_TAG, p, SHORT_LEN, (low, high), None))
                    .collect::<Result<_, _>>()?;
                (lanes, names::BY_TAG)
            }
            Plan::Authors(keys) => {
                let table = txn.open_table(BY_AUTHOR_KIND)?;
                let mut lanes = Vec::new();
                for key in keys {
                    lanes.extend(author_lanes(&table, key, (low, high))?);
                }
                (lanes, names::BY_AUTHOR_KIND)
            }
            Plan::AuthorKinds(pairs) => {
                let table = txn.open_table(BY_AUTHOR_KIND)?;
                let lanes = pairs
                    .iter()
                    .map(|(a, k)| {
                        let prefix: [u8; AUTHOR_KIND_PREFIX] =
                            concat(&[a.as_bytes(), &k.to_be_bytes()]);
                        block_lane(
                            &table,
                            names::BY_AUTHOR_KIND,
                            &prefix,
                            AUTHOR_KIND_ENTRY,
                            (low, high),
                            None,
                        )
                    })
                    .collect::<Result<_, _>>()?;
                (lanes, names::BY_AUTHOR_KIND)
            }
            Plan::Signers(keys) => {
                // A record signed by its author has no `by_signer` entry:
                // its author's lanes of `by_author_kind` find it (and the
                // filter drops those of the author signed by other keys).
                let table = txn.open_table(BY_SIGNER)?;
                let by_author = txn.open_table(BY_AUTHOR_KIND)?;
                let mut lanes = Vec::new();
                for key in keys {
                    lanes.push(block_lane(
                        &table,
                        names::BY_SIGNER,
                        key.as_bytes(),
                        SHORT_LEN,
                        (low, high),
                        None,
                    )?);
                    lanes.extend(author_lanes(&by_author, key, (low, high))?);
                }
                (lanes, names::BY_SIGNER)
            }
            Plan::Kinds(kinds) => {
                let table = txn.open_table(BY_KIND)?;
                let lanes = kinds
                    .iter()
                    .map(|k| {
                        block_lane(
                            &table,
                            names::BY_KIND,
                            &k.to_be_bytes(),
                            SHORT_LEN,
                            (low, high),
                            None,
                        )
                    })
                    .collect::<Result<_, _>>()?;
                (lanes, names::BY_KIND)
            }
        };
        Ok(Source::Index {
            merge: Merge::new(lanes),
            table,
        })
    }

    /// Every record stored at `address`, newest first.
    pub(crate) fn versions(
        txn: &ReadTransaction,
        address: &mosaic_core::Address,
    ) -> Result<Records, StoreError> {
        let records = txn.open_table(RECORDS)?;
        let table = txn.open_table(BY_AUTHOR_KIND)?;
        let prefix: [u8; AUTHOR_KIND_PREFIX] =
            concat(&[address.author().as_bytes(), &address.kind().to_be_bytes()]);
        let lane = block_lane(
            &table,
            names::BY_AUTHOR_KIND,
            &prefix,
            AUTHOR_KIND_ENTRY,
            (&[0u8; SHORT_LEN], &[0xffu8; SHORT_LEN]),
            Some(address.nonce().to_bytes()),
        )?;
        let source = Source::Index {
            merge: Merge::new(vec![lane]),
            table: names::BY_AUTHOR_KIND,
        };
        Ok(Records::new(
            records,
            source,
            None,
            Some(*address),
            usize::MAX,
        ))
    }

    /// Decodes a stored record and, when it passes the filter (or is at
    /// the address), copies it out.
    fn admit(
        filter: Option<&OwnedFilter>,
        address: Option<&Address>,
        key: &ShortId,
        value: &[u8],
    ) -> Result<Option<StoredRecord>, StoreError> {
        let (record, received_at) = decode_record(key, value)?;
        if filter.is_some_and(|f| !f.matches(record, received_at))
            || address.is_some_and(|a| record.address() != *a)
        {
            return Ok(None);
        }
        Ok(Some(StoredRecord {
            record: record.to_owned(),
            received_at,
        }))
    }

    /// The next candidate, decoded and checked: `Ok(None)` when it does not
    /// pass the filter.
    fn candidate(&mut self) -> Option<Result<Option<StoredRecord>, StoreError>> {
        let filter = self.filter.as_ref();
        let address = self.address.as_ref();
        match &mut self.source {
            Source::Scan(ranges) => loop {
                let range = ranges.last_mut()?;
                match range.next_back() {
                    Some(Ok((key, value))) => {
                        let key = *key.value();
                        self.examined += 1;
                        self.position = Some(key);
                        return Some(Self::admit(filter, address, &key, value.value()));
                    }
                    Some(Err(e)) => return Some(Err(e.into())),
                    None => {
                        ranges.pop();
                    }
                }
            },
            Source::Index { merge, table } => {
                let short = match merge.next()? {
                    Ok(short) => short,
                    Err(e) => return Some(Err(e)),
                };
                let found = match self.records.get(&short) {
                    Err(e) => return Some(Err(e.into())),
                    Ok(found) => found,
                };
                self.examined += 1;
                self.position = Some(short);
                Some(match found {
                    None => Err(Corruption::DanglingIndex {
                        table,
                        id_prefix: short,
                    }
                    .into()),
                    Some(value) => Self::admit(filter, address, &short, value.value()),
                })
            }
        }
    }
}

impl Iterator for Records {
    type Item = Result<StoredRecord, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.remaining > 0 {
            if self.examined >= self.budget {
                self.exhausted = true;
                return None;
            }
            match self.candidate() {
                None => self.remaining = 0,
                Some(Ok(None)) => {}
                Some(Ok(Some(found))) => {
                    self.remaining -= 1;
                    return Some(Ok(found));
                }
                Some(Err(e)) => {
                    if !matches!(e, StoreError::Corrupt(_)) {
                        self.remaining = 0;
                    }
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Scan(_) => names::RECORDS,
            Source::Index { table, .. } => table,
        };
        f.debug_struct("Records")
            .field("source", &source)
            .field("filter", &self.filter)
            .field("remaining", &self.remaining)
            .field("examined", &self.examined)
            .field("budget_exhausted", &self.exhausted)
            .field("resume_point", &self.resume_point())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use mosaic_core::{FilterBuilder, OwnedTag, SecretKey, TagType};

    use super::*;

    fn key(n: u8) -> PublicKey {
        SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn planner_prefers_timestamps_then_tags_then_keys() {
        let tag = OwnedTag::new(TagType(7), b"abc").unwrap();
        let t = Timestamp::from_nanos(5).unwrap();
        let f = FilterBuilder::new()
            .authors([key(1)])
            .kinds([Kind::MICROBLOG_ROOT])
            .included_tags([&*tag])
            .timestamps([t, t])
            .build()
            .unwrap();
        assert_eq!(plan(&f, |_| 1_000_000), Plan::Timestamps(vec![t]));

        let f = FilterBuilder::new()
            .authors([key(1)])
            .included_tags([&*tag])
            .build()
            .unwrap();
        assert!(matches!(plan(&f, |_| 0), Plan::Tags(p) if p.len() == 1));

        let f = FilterBuilder::new()
            .authors([key(2), key(1), key(2)])
            .signers([key(3), key(4), key(5)])
            .build()
            .unwrap();
        let Plan::Authors(keys) = plan(&f, |_| 0) else {
            panic!("authors expected");
        };
        assert_eq!(keys.len(), 2, "duplicate keys are merged");
    }

    #[test]
    fn planner_uses_exact_kind_counts() {
        let f = FilterBuilder::new()
            .signers([key(1)])
            .kinds([Kind::MICROBLOG_ROOT, Kind::BLOG_POST])
            .build()
            .unwrap();
        // Rare kinds beat one signer.
        assert!(matches!(plan(&f, |_| 10), Plan::Kinds(k) if k.len() == 2));
        // Common kinds lose to one signer.
        assert!(matches!(plan(&f, |_| 500_000), Plan::Signers(_)));
        // A kind with no record at all answers at once.
        assert!(matches!(plan(&f, |_| 0), Plan::Kinds(_)));
    }

    #[test]
    fn planner_pairs_authors_with_kinds() {
        let f = FilterBuilder::new()
            .authors([key(1), key(2)])
            .kinds([Kind::MICROBLOG_ROOT, Kind::BLOG_POST, Kind::BLOG_POST])
            .build()
            .unwrap();
        let Plan::AuthorKinds(pairs) = plan(&f, |_| 500_000) else {
            panic!("author-and-kind expected");
        };
        assert_eq!(pairs.len(), 4);
        // Too many pairs: one of the two alone.
        let many: Vec<PublicKey> = (0..20).map(key).collect();
        let kinds: Vec<Kind> = (0..20)
            .map(|i| Kind::from_parts(5, i, mosaic_core::KindFlags::default()))
            .collect();
        let f = FilterBuilder::new()
            .authors(many)
            .kinds(kinds)
            .build()
            .unwrap();
        assert!(matches!(plan(&f, |_| 1), Plan::Kinds(_)));
    }

    #[test]
    fn open_filters_scan() {
        let f = FilterBuilder::new()
            .since(Timestamp::from_nanos(1).unwrap())
            .build()
            .unwrap();
        assert_eq!(plan(&f, |_| 0), Plan::Scan);
        assert_eq!(plan(&OwnedFilter::empty(), |_| 0), Plan::Scan);
    }

    #[test]
    fn merge_yields_distinct_ids_newest_first_and_survives_errors() {
        let id = |t: u8| -> ShortId { [t; SHORT_LEN] };
        let lane = |ts: Vec<u8>| -> Lane { Box::new(ts.into_iter().map(move |t| Ok(id(t)))) };
        let failing: Lane = Box::new(
            vec![
                Ok(id(9)),
                Err(StoreError::Corrupt(Corruption::IndexBlock { table: "t" })),
                Ok(id(2)),
            ]
            .into_iter(),
        );
        let merge = Merge::new(vec![lane(vec![8, 5, 3]), lane(vec![7, 5, 1]), failing]);
        let out: Vec<Result<u8, ()>> = merge.map(|r| r.map(|id| id[0]).map_err(|_| ())).collect();
        assert_eq!(
            out,
            vec![Ok(9), Err(()), Ok(8), Ok(7), Ok(5), Ok(3), Ok(2), Ok(1)]
        );
    }
}
