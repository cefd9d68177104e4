//! Live subscriptions: which connection wants which new records.
//!
//! A subscription starts *pending*: while its stored matches are being sent,
//! newly accepted records are buffered, so that they follow Locally Complete
//! in order. [`Registry::activate`] flushes the buffer (skipping records the
//! stored phase already sent) and makes the subscription live. Delivery never
//! waits: a client whose outbound queue is full is cut off, so one slow
//! reader cannot hold up the others or grow the server's memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use mosaic_core::{Id, MessageRef, OwnedFilter, OwnedRecord, PublicKey, QueryId, Timestamp};
use mosaic_net::{NetError, Sender};
use tracing::{debug, warn};

use crate::policy::Policy;

/// Records buffered for a pending subscription before the client counts as
/// too slow.
const PENDING_BUFFER: usize = 4096;

/// A record as published to subscribers.
pub(crate) type Published = Arc<OwnedRecord>;

struct Subscription {
    filter: OwnedFilter,
    sender: Sender,
    reader: Option<PublicKey>,
    pending: Option<Vec<(Published, Timestamp)>>,
}

/// Every open subscription, by connection and query id.
pub(crate) struct Registry {
    subs: Mutex<HashMap<(u64, QueryId), Subscription>>,
    policy: Arc<Policy>,
}

fn deliver(sender: &Sender, query_id: QueryId, record: &OwnedRecord) -> Result<(), NetError> {
    let bytes = MessageRef::Record {
        query_id,
        record: record.as_ref(),
    }
    .encode()?;
    sender.try_send_encoded(bytes)
}

impl Registry {
    /// An empty registry that delivers only what `policy` lets each
    /// subscriber read.
    pub(crate) fn new(policy: Arc<Policy>) -> Registry {
        Registry {
            subs: Mutex::new(HashMap::new()),
            policy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(u64, QueryId), Subscription>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (each operation is a single insert, remove or push).
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a pending subscription. Fails if the connection already has
    /// this query id open.
    pub(crate) fn open(
        &self,
        conn: u64,
        query_id: QueryId,
        filter: OwnedFilter,
        sender: Sender,
        reader: Option<PublicKey>,
    ) -> bool {
        let mut subs = self.lock();
        if subs.contains_key(&(conn, query_id)) {
            return false;
        }
        subs.insert(
            (conn, query_id),
            Subscription {
                filter,
                sender,
                reader,
                pending: Some(Vec::new()),
            },
        );
        true
    }

    /// Makes a pending subscription live: sends what was buffered, except
    /// records whose ids are in `already_sent`.
    pub(crate) fn activate(&self, conn: u64, query_id: QueryId, already_sent: &HashSet<Id>) {
        let mut subs = self.lock();
        let Some(sub) = subs.get_mut(&(conn, query_id)) else {
            return;
        };
        let buffered = sub.pending.take().unwrap_or_default();
        for (record, _) in buffered {
            if already_sent.contains(&record.id()) {
                continue;
            }
            if deliver(&sub.sender, query_id, &record).is_err() {
                sub.sender.abort();
                break;
            }
        }
    }

    /// Closes a subscription; whether it was open.
    pub(crate) fn close(&self, conn: u64, query_id: QueryId) -> bool {
        self.lock().remove(&(conn, query_id)).is_some()
    }

    /// Closes every subscription of a connection.
    pub(crate) fn close_all(&self, conn: u64) {
        self.lock().retain(|(c, _), _| *c != conn);
    }

    /// How many subscriptions a connection has open.
    pub(crate) fn count(&self, conn: u64) -> usize {
        self.lock().keys().filter(|(c, _)| *c == conn).count()
    }

    /// How many subscriptions are open on the whole server.
    pub(crate) fn total(&self) -> usize {
        self.lock().len()
    }

    /// Whether a connection has this query id open.
    pub(crate) fn is_open(&self, conn: u64, query_id: QueryId) -> bool {
        self.lock().contains_key(&(conn, query_id))
    }

    /// Offers a newly accepted (or ephemeral) record to every subscription
    /// that may read it and matches it; returns how many took it.
    pub(crate) fn publish(&self, record: &Published, received_at: Timestamp) -> usize {
        let mut delivered = 0;
        let mut cut_off = Vec::new();
        let mut subs = self.lock();
        for (&(conn, query_id), sub) in subs.iter_mut() {
            if !sub.filter.matches(record, received_at)
                || !self
                    .policy
                    .may_serve(record, received_at, sub.reader.as_ref())
            {
                continue;
            }
            match &mut sub.pending {
                Some(buffer) => {
                    if buffer.len() >= PENDING_BUFFER {
                        cut_off.push((conn, query_id));
                    } else {
                        buffer.push((record.clone(), received_at));
                        delivered += 1;
                    }
                }
                None => match deliver(&sub.sender, query_id, record) {
                    Ok(()) => delivered += 1,
                    Err(NetError::QueueFull) => {
                        warn!(conn, "subscriber not reading: cut off");
                        cut_off.push((conn, query_id));
                    }
                    Err(e) => {
                        debug!(conn, error = %e, "subscriber gone");
                        cut_off.push((conn, query_id));
                    }
                },
            }
        }
        for key in cut_off {
            if let Some(sub) = subs.remove(&key) {
                sub.sender.abort();
            }
        }
        delivered
    }
}
