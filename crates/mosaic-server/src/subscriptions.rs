//! Live subscriptions and their delivery (SPEC-NOTES D-21).
//!
//! [`Registry`] indexes every open subscription by what its filter narrows
//! on (an author, a signer, a timestamp, a tag or a kind), so that offering
//! a new record costs in proportion to the subscriptions it may match, not
//! to all of them. A record that matches, and that the subscriber may read,
//! is put in that subscription's queue: a pointer to the record, which every
//! subscriber shares, encoded for the wire only as it is written.
//!
//! Each connection has one delivery task ([`pump`]) that moves queued
//! records to the connection's sender, one subscription after another,
//! while the connection's outbound budget (bytes) allows. Nothing is ever
//! dropped in silence: a subscription whose queue is not drained within the
//! grace time, or grows past its bound, is ended with Query Closed
//! TEMPORARY_ERROR, after which the client re-subscribes with `since`; a
//! client that reads nothing at all is disconnected by the sender's write
//! timeout. Each subscription receives each matching record once, in the
//! order records were offered (commit order).
//!
//! A subscription starts *pending*: while its stored matches are being
//! sent, new records queue without being delivered, so that they follow
//! Locally Complete. [`Registry::activate`] drops from the queue what the
//! stored phase already sent and makes the subscription live.
//!
//! Locks: the index is behind one `RwLock`, taken for reading to offer a
//! record and for writing only to open or end a subscription; each
//! subscription's queue has its own mutex. No lock is held across an await.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use mosaic_core::{
    FilterElement, Id, Message, OwnedFilter, OwnedRecord, PublicKey, QueryId, ResultCode, Timestamp,
};
use mosaic_net::{NetError, Sender};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::debug;

use crate::metrics::{Metrics, SlowReader};
use crate::policy::Policy;

/// A record as published to subscribers.
pub(crate) type Published = Arc<OwnedRecord>;

/// What a subscription is indexed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IndexKey {
    Author(PublicKey),
    Signer(PublicKey),
    Timestamp(Timestamp),
    Tag(Box<[u8]>),
    Kind(u64),
}

/// The keys a filter's subscription is indexed under: those of the one
/// narrow element that is likely the most selective. Every record the filter
/// matches has one of them, since a filter matches only records that pass
/// each of its elements. Empty means "offer every record".
fn index_keys(filter: &OwnedFilter) -> Vec<IndexKey> {
    let mut best: Option<(u8, Vec<IndexKey>)> = None;
    for element in filter.effective_elements() {
        let (rank, keys): (u8, Vec<IndexKey>) = match element {
            FilterElement::Authors(k) => (0, k.iter().map(IndexKey::Author).collect()),
            FilterElement::Signers(k) => (1, k.iter().map(IndexKey::Signer).collect()),
            FilterElement::Timestamps(t) => (2, t.iter().map(IndexKey::Timestamp).collect()),
            FilterElement::IncludedTags(t) => (
                3,
                t.iter()
                    .map(|tag| IndexKey::Tag(tag.as_bytes().into()))
                    .collect(),
            ),
            FilterElement::Kinds(k) => (4, k.iter().map(|k| IndexKey::Kind(k.as_u64())).collect()),
            _ => continue,
        };
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((rank, keys));
        }
    }
    best.map(|(_, keys)| keys).unwrap_or_default()
}

/// Settings of live delivery, from the limits in force.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    /// Bytes of records one subscription may have waiting.
    pub(crate) queue_bytes: usize,
    /// How long its oldest waiting record may wait.
    pub(crate) grace: Duration,
}

struct Queued {
    record: Published,
    since: Instant,
}

#[derive(Default)]
struct SubState {
    live: bool,
    ended: bool,
    queue: VecDeque<Queued>,
    bytes: usize,
}

/// One open subscription.
pub(crate) struct Sub {
    id: u64,
    query_id: QueryId,
    filter: OwnedFilter,
    reader: Option<PublicKey>,
    keys: Vec<IndexKey>,
    conn: Arc<ConnLive>,
    state: Mutex<SubState>,
}

impl Sub {
    fn state(&self) -> MutexGuard<'_, SubState> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The live side of one connection: its subscriptions and its sender.
pub(crate) struct ConnLive {
    id: u64,
    sender: Sender,
    subs: Mutex<HashMap<QueryId, Arc<Sub>>>,
    wake: Notify,
}

impl ConnLive {
    fn subs(&self) -> MutexGuard<'_, HashMap<QueryId, Arc<Sub>>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Index {
    by_key: HashMap<IndexKey, HashMap<u64, Arc<Sub>>>,
    everything: HashMap<u64, Arc<Sub>>,
}

/// Every open subscription of the server.
pub(crate) struct Registry {
    index: RwLock<Index>,
    policy: Arc<Policy>,
    next_id: AtomicU64,
    total: AtomicUsize,
    metrics: Arc<Metrics>,
    /// The live side of every connection, for the bytes queued for clients.
    conns: Mutex<HashMap<u64, std::sync::Weak<ConnLive>>>,
}

/// What [`Registry::open`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The connection has a subscription with this query id open.
    InUse,
}

impl Registry {
    /// An empty registry that delivers only what `policy` lets each
    /// subscriber read.
    pub(crate) fn new(policy: Arc<Policy>, metrics: Arc<Metrics>) -> Registry {
        Registry {
            index: RwLock::new(Index::default()),
            policy,
            next_id: AtomicU64::new(1),
            total: AtomicUsize::new(0),
            metrics,
            conns: Mutex::new(HashMap::new()),
        }
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<u64, std::sync::Weak<ConnLive>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes queued for clients, all connections together.
    pub(crate) fn outbound_bytes(&self) -> usize {
        self.conns()
            .values()
            .filter_map(std::sync::Weak::upgrade)
            .map(|conn| conn.sender.queued_bytes())
            .sum()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The live side of a new connection; run [`pump`] on it.
    pub(crate) fn connect(&self, id: u64, sender: Sender) -> Arc<ConnLive> {
        let conn = Arc::new(ConnLive {
            id,
            sender,
            subs: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        });
        self.conns().insert(id, Arc::downgrade(&conn));
        conn
    }

    /// Opens a pending subscription.
    pub(crate) fn open(
        &self,
        conn: &Arc<ConnLive>,
        query_id: QueryId,
        filter: OwnedFilter,
        reader: Option<PublicKey>,
    ) -> Result<(), OpenError> {
        let mut subs = conn.subs();
        if subs.contains_key(&query_id) {
            return Err(OpenError::InUse);
        }
        let sub = Arc::new(Sub {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            query_id,
            keys: index_keys(&filter),
            filter,
            reader,
            conn: conn.clone(),
            state: Mutex::new(SubState::default()),
        });
        {
            let mut index = self.write();
            if sub.keys.is_empty() {
                index.everything.insert(sub.id, sub.clone());
            } else {
                for key in &sub.keys {
                    index
                        .by_key
                        .entry(key.clone())
                        .or_default()
                        .insert(sub.id, sub.clone());
                }
            }
        }
        subs.insert(query_id, sub);
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn unindex(&self, sub: &Sub) {
        let mut index = self.write();
        if sub.keys.is_empty() {
            index.everything.remove(&sub.id);
        }
        for key in &sub.keys {
            if let Some(bucket) = index.by_key.get_mut(key) {
                bucket.remove(&sub.id);
                if bucket.is_empty() {
                    index.by_key.remove(key);
                }
            }
        }
    }

    /// Ends a subscription: no record of it is sent after this, and when
    /// `code` is given, Query Closed with it follows whatever of the
    /// subscription's records are already queued for the client.
    fn end(&self, sub: &Arc<Sub>, code: Option<ResultCode>) {
        {
            let mut state = sub.state();
            if state.ended {
                return;
            }
            state.ended = true;
            state.queue.clear();
            state.bytes = 0;
            if let Some(code) = code {
                // Under the subscription's lock, so that no record of it can
                // be queued after the Query Closed.
                let closed = Message::QueryClosed {
                    query_id: sub.query_id,
                    code,
                };
                if sub.conn.sender.send_control(&closed).is_ok() {
                    self.metrics.message_sent(&closed);
                }
            }
        }
        sub.conn.subs().remove(&sub.query_id);
        self.unindex(sub);
        self.total.fetch_sub(1, Ordering::Relaxed);
    }

    /// Makes a pending subscription live: drops from its queue the records
    /// whose ids are in `already_sent`, and lets the rest be delivered.
    pub(crate) fn activate(&self, conn: &ConnLive, query_id: QueryId, already_sent: &HashSet<Id>) {
        let Some(sub) = conn.subs().get(&query_id).cloned() else {
            return;
        };
        let mut state = sub.state();
        let now = Instant::now();
        state
            .queue
            .retain(|q| !already_sent.contains(&q.record.id()));
        for q in &mut state.queue {
            // The grace time runs from now: the client could not read these
            // before Locally Complete.
            q.since = now;
        }
        state.bytes = state.queue.iter().map(|q| q.record.len()).sum();
        state.live = true;
        let wake = !state.queue.is_empty();
        drop(state);
        if wake {
            conn.wake.notify_one();
        }
    }

    /// Closes a subscription at the client's request (Unsubscribe) or after
    /// its stored phase ends it; `code` is sent in Query Closed after its
    /// queued records. Whether it was open.
    pub(crate) fn close(&self, conn: &ConnLive, query_id: QueryId, code: ResultCode) -> bool {
        let Some(sub) = conn.subs().get(&query_id).cloned() else {
            return false;
        };
        self.end(&sub, Some(code));
        true
    }

    /// Closes every subscription of a connection, silently, and forgets it.
    pub(crate) fn disconnect(&self, conn: &ConnLive) {
        self.conns().remove(&conn.id);
        let subs: Vec<Arc<Sub>> = conn.subs().values().cloned().collect();
        for sub in subs {
            self.end(&sub, None);
        }
    }

    /// How many subscriptions a connection has open.
    pub(crate) fn count(&self, conn: &ConnLive) -> usize {
        conn.subs().len()
    }

    /// Whether a connection has this query id open.
    pub(crate) fn is_open(&self, conn: &ConnLive, query_id: QueryId) -> bool {
        conn.subs().contains_key(&query_id)
    }

    /// How many subscriptions are open on the whole server.
    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Offers a newly accepted (or ephemeral) record to every subscription
    /// that matches it and whose reader may read it; returns how many took
    /// it. Never waits on a client.
    pub(crate) fn publish(
        &self,
        record: &Published,
        received_at: Timestamp,
        delivery: Delivery,
    ) -> usize {
        let mut taken = 0;
        let mut overflowed = Vec::new();
        {
            let index = self.read();
            let mut offered: HashSet<u64> = HashSet::new();
            let mut offer = |sub: &Arc<Sub>| {
                if !offered.insert(sub.id)
                    || !sub.filter.matches(record, received_at)
                    || !self
                        .policy
                        .may_serve(record, received_at, sub.reader.as_ref())
                {
                    return;
                }
                let mut state = sub.state();
                if state.ended {
                    return;
                }
                if state.bytes + record.len() > delivery.queue_bytes && !state.queue.is_empty() {
                    overflowed.push(sub.clone());
                    return;
                }
                state.bytes += record.len();
                state.queue.push_back(Queued {
                    record: record.clone(),
                    since: Instant::now(),
                });
                taken += 1;
                if state.live {
                    sub.conn.wake.notify_one();
                }
            };
            let mut bucket = |key: IndexKey| {
                if let Some(subs) = index.by_key.get(&key) {
                    subs.values().for_each(&mut offer);
                }
            };
            bucket(IndexKey::Author(record.author()));
            bucket(IndexKey::Signer(record.signing_key()));
            bucket(IndexKey::Timestamp(record.timestamp()));
            bucket(IndexKey::Kind(record.kind().as_u64()));
            for tag in record.tags().iter() {
                bucket(IndexKey::Tag(tag.as_bytes().into()));
            }
            index.everything.values().for_each(&mut offer);
        }
        for sub in overflowed {
            debug!(
                conn = sub.conn.id,
                query = %sub.query_id,
                "subscription queue over its bound: ended (TEMPORARY_ERROR)"
            );
            self.metrics.subscription_ended(SlowReader::SlowReader);
            self.end(&sub, Some(ResultCode::TEMPORARY_ERROR));
        }
        taken
    }

    /// Ends the live subscriptions of `conn` whose oldest queued record has
    /// waited longer than `grace`; returns when the next one would be due.
    fn end_stale(&self, conn: &ConnLive, grace: Duration) -> Option<Instant> {
        let now = Instant::now();
        let subs: Vec<Arc<Sub>> = conn.subs().values().cloned().collect();
        let mut next: Option<Instant> = None;
        for sub in subs {
            let head = {
                let state = sub.state();
                match state.queue.front() {
                    Some(q) if state.live && !state.ended => q.since,
                    _ => continue,
                }
            };
            let due = head + grace;
            if due <= now {
                debug!(
                    conn = conn.id,
                    query = %sub.query_id,
                    "subscriber not reading within the grace time: subscription ended (TEMPORARY_ERROR)"
                );
                self.metrics.subscription_ended(SlowReader::SlowReader);
                self.end(&sub, Some(ResultCode::TEMPORARY_ERROR));
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }
}

/// Takes the next record of each live subscription of `conn` that has one,
/// in turn, so that one busy subscription does not starve the others.
fn next_round(conn: &ConnLive) -> Vec<Arc<Sub>> {
    let mut round: Vec<Arc<Sub>> = conn
        .subs()
        .values()
        .filter(|sub| {
            let state = sub.state();
            state.live && !state.ended && !state.queue.is_empty()
        })
        .cloned()
        .collect();
    // Oldest waiting first.
    round.sort_by_key(|sub| sub.state().queue.front().map(|q| q.since));
    round
}

/// Moves one queued record of `sub` to the sender, if the budget has room:
/// `Ok(true)` when one was moved or there was none to move, `Ok(false)`
/// when the budget is spent.
fn move_one(sub: &Sub) -> Result<bool, NetError> {
    let mut state = sub.state();
    if state.ended {
        return Ok(true);
    }
    let Some(q) = state.queue.front() else {
        return Ok(true);
    };
    match sub
        .conn
        .sender
        .try_send_record(sub.query_id, q.record.clone())
    {
        Ok(()) => {
            let len = q.record.len();
            state.queue.pop_front();
            state.bytes = state.bytes.saturating_sub(len);
            Ok(true)
        }
        Err(NetError::QueueFull) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Delivers the live records of one connection until it closes.
pub(crate) async fn pump(
    registry: Arc<Registry>,
    conn: Arc<ConnLive>,
    delivery: impl Fn() -> Delivery,
) {
    loop {
        let round = next_round(&conn);
        if round.is_empty() {
            tokio::select! {
                _ = conn.wake.notified() => continue,
                _ = conn.sender.closed() => return,
            }
        }
        for sub in round {
            loop {
                match move_one(&sub) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(_) => return,
                }
                // The budget is spent: wait for room, but no longer than
                // the oldest waiting record's grace time.
                let grace = delivery().grace;
                let due = registry
                    .end_stale(&conn, grace)
                    .unwrap_or_else(|| Instant::now() + grace);
                let want = sub.state().queue.front().map_or(1, |q| q.record.len() + 8);
                tokio::select! {
                    ready = conn.sender.ready(want) => if ready.is_err() { return },
                    _ = tokio::time::sleep_until(due) => {}
                }
            }
        }
    }
}
