//! Live subscriptions across several servers, surviving lost connections
//! and subscriptions a server ends for a while.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use mosaic_core::{
    Filter, Id, OwnedFilter, OwnedRecord, PublicKey, ResultCategory, ResultCode, Timestamp,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::link::{Link, QueryEvent};
use crate::query::with_authors;
use crate::{Client, ClientError, Misbehaviour, Rejected, ServerId};

/// Something that happened to a [`Subscription`].
#[derive(Debug)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// A record, seen for the first time (records are de-duplicated across
    /// servers and reconnections). It verifies, matches the filter and is
    /// signed by a valid key (`record.md` step 5).
    Record {
        /// The server it came from first.
        server: PublicKey,
        /// The record.
        record: OwnedRecord,
    },
    /// The subscription was opened on a server: at first, and again after
    /// each reconnection, with `since` moved to the newest record that
    /// server had sent.
    Subscribed {
        /// The server.
        server: PublicKey,
        /// The `since` sent, if it was moved.
        since: Option<Timestamp>,
    },
    /// A server has sent every stored match (Locally Complete); what
    /// follows from it is new.
    CaughtUp {
        /// The server.
        server: PublicKey,
    },
    /// A server ended the subscription for a while (Query Closed
    /// TEMPORARY_ERROR, as a server does when the client fell behind, or
    /// TOO_FAST): it is subscribed to again on the same connection after a
    /// short backoff with jitter, with `since` moved to the newest record
    /// it had sent, so nothing is missed and nothing repeated. A
    /// [`Subscribed`](Self::Subscribed) event follows.
    Interrupted {
        /// The server.
        server: PublicKey,
        /// The Query Closed code.
        code: ResultCode,
    },
    /// A server could not be reached or its connection was lost; it will
    /// be tried again after a backoff.
    Disconnected {
        /// The server.
        server: PublicKey,
        /// What went wrong.
        error: ClientError,
    },
    /// A server is no longer followed: it misbehaved (sent a record that
    /// does not verify or match the filter; this is counted against it) or
    /// refused the subscription (TOO_OPEN, UNAUTHORIZED, ...).
    Dropped {
        /// The server.
        server: PublicKey,
        /// Why.
        error: ClientError,
    },
    /// A record was refused because its signing key is not valid for its
    /// author (step 5).
    Rejected {
        /// The server it came from.
        server: PublicKey,
        /// The record and why.
        rejected: Rejected,
    },
    /// An author's outboxes could not be found: nothing of theirs will
    /// arrive (unless they share servers with another author).
    UserUnresolved {
        /// The author.
        user: PublicKey,
        /// Why.
        error: ClientError,
    },
}

/// A live subscription to some authors' records on their outboxes.
///
/// Each server is followed by its own task. When a connection is lost, the
/// task reconnects after a backoff with jitter
/// ([`ClientConfig::backoff`](crate::ClientConfig::backoff)) and subscribes
/// again with `since` moved to the newest record that server had sent (a
/// record of exactly that time comes again and is dropped as already seen),
/// so nothing it stores is missed and nothing is repeated. On reconnection
/// the server's maximum is asked for (LIMIT 0); a server that received more
/// than that many records while the client was away sends only the newest.
///
/// A server may end the subscription without closing the connection: Query
/// Closed TEMPORARY_ERROR (it does so when the client falls behind) or
/// TOO_FAST. Then the subscription is opened again on that server the same
/// way, with `since` moved, after a short backoff with jitter that grows
/// while the server keeps ending it soon after each re-subscription
/// ([`SubscriptionEvent::Interrupted`]). Other server errors (SHUTTING_DOWN,
/// PERSISTENT_ERROR, GENERAL_ERROR) are retried like a lost connection;
/// any other code gives the server up ([`SubscriptionEvent::Dropped`]).
///
/// Repeats are recognised by id. The ids remembered are bounded by
/// [`ClientConfig::subscription_memory`](crate::ClientConfig::subscription_memory):
/// beyond it, the ids of the records with the oldest timestamps are
/// forgotten first, while the newest ones (those a server sends again
/// after a re-subscription with `since`) are kept.
///
/// Read it steadily: a few dozen events wait for the application, and
/// beyond them the connections it subscribes on stop reading from their
/// servers (so the client's memory stays bounded). A server ends a
/// subscription that stays behind with TEMPORARY_ERROR; it is resumed as
/// above once the application reads again, with nothing missed.
///
/// Dropping the subscription unsubscribes and stops the tasks.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<SubscriptionEvent>,
    tasks: Vec<JoinHandle<()>>,
    servers: Vec<PublicKey>,
}

impl Subscription {
    /// The next event; `None` once every server has been dropped.
    pub async fn next(&mut self) -> Option<SubscriptionEvent> {
        self.rx.recv().await
    }

    /// The next record, skipping the other events; `None` once every
    /// server has been dropped.
    pub async fn next_record(&mut self) -> Option<OwnedRecord> {
        loop {
            if let SubscriptionEvent::Record { record, .. } = self.rx.recv().await? {
                return Some(record);
            }
        }
    }

    /// The servers followed.
    pub fn servers(&self) -> &[PublicKey] {
        &self.servers
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The ids of the records delivered, newest timestamps kept first, at
/// most `capacity`.
struct Seen {
    ids: BTreeSet<(Timestamp, Id)>,
    capacity: usize,
}

impl Seen {
    fn new(capacity: usize) -> Seen {
        Seen {
            ids: BTreeSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether the record is seen for the first time (and notes it),
    /// forgetting the oldest ids beyond the capacity.
    fn first_sight(&mut self, timestamp: Timestamp, id: Id) -> bool {
        if !self.ids.insert((timestamp, id)) {
            return false;
        }
        while self.ids.len() > self.capacity {
            self.ids.pop_first();
        }
        true
    }
}

/// What the server tasks share.
struct Shared {
    seen: Mutex<Seen>,
    tx: mpsc::Sender<SubscriptionEvent>,
}

impl Shared {
    /// Hands an event to the application, waiting while it is
    /// [`EVENT_BUFFER`] events behind (and so, in turn, the connection).
    async fn emit(&self, event: SubscriptionEvent) {
        let _ = self.tx.send(event).await;
    }

    /// Whether the record is seen for the first time (and notes it).
    fn first_sight(&self, timestamp: Timestamp, id: Id) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_sight(timestamp, id)
    }
}

pub(crate) async fn start(
    client: &Client,
    authors: &[PublicKey],
    filter: &Filter,
    limit: u16,
) -> Result<Subscription, ClientError> {
    let filter = with_authors(filter, authors)?;
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    let mut servers: Vec<PublicKey> = Vec::new();
    let mut unresolved = Vec::new();
    for user in authors {
        match client.outboxes(user).await {
            Ok(outboxes) => {
                for server in outboxes {
                    if !servers.contains(&server) {
                        servers.push(server);
                    }
                }
            }
            Err(error) => {
                debug!(%user, %error, "author's outboxes unknown");
                unresolved.push((*user, error));
            }
        }
    }
    if servers.is_empty() {
        return Err(unresolved
            .into_iter()
            .next()
            .map_or(ClientError::NoServers, |(_, error)| error));
    }
    for (user, error) in unresolved {
        let _ = tx
            .send(SubscriptionEvent::UserUnresolved { user, error })
            .await;
    }
    let shared = Arc::new(Shared {
        seen: Mutex::new(Seen::new(client.config().subscription_memory)),
        tx,
    });
    let tasks = servers
        .iter()
        .map(|server| {
            tokio::spawn(follow(
                client.clone(),
                *server,
                filter.clone(),
                limit,
                shared.clone(),
            ))
        })
        .collect();
    Ok(Subscription { rx, tasks, servers })
}

/// Events a subscription may have waiting for the application. An
/// application that stops reading stops, in turn, the connections it
/// subscribes on (see [`ROUTE_BUFFER`](crate::link::ROUTE_BUFFER)); the
/// servers end the subscriptions that stay behind with TEMPORARY_ERROR, and
/// this subscription resumes from the newest record once the application
/// reads again, so nothing is missed and memory stays bounded.
const EVENT_BUFFER: usize = 64;

/// Why one subscription on one server ended.
enum Flow {
    /// The server ended it for a while: subscribe again after a short
    /// backoff.
    Resume(ResultCode),
    /// Try again after a backoff.
    Retry(ClientError),
    /// Give the server up.
    Stop(ClientError),
}

/// Follows one server until it is given up.
async fn follow(
    client: Client,
    server: PublicKey,
    filter: OwnedFilter,
    limit: u16,
    shared: Arc<Shared>,
) {
    let link = client.link_to(server);
    let backoff = client.config().backoff;
    let mut state = FollowState {
        newest: None,
        attempt: 0,
        ended: 0,
        subscribed_at: None,
    };
    loop {
        let delay = match follow_once(&client, &link, server, &filter, limit, &mut state, &shared)
            .await
        {
            Flow::Resume(code) => {
                debug!(%server, %code, since = ?state.newest, "subscription ended by the server; resuming");
                shared
                    .emit(SubscriptionEvent::Interrupted { server, code })
                    .await;
                // A subscription that lasted resets the backoff.
                if state
                    .subscribed_at
                    .is_some_and(|at| at.elapsed() >= backoff.max)
                {
                    state.ended = 0;
                }
                let delay = backoff.random_delay(state.ended);
                state.ended = state.ended.saturating_add(1);
                delay
            }
            Flow::Retry(error) => {
                debug!(%server, %error, "subscription interrupted; will retry");
                shared
                    .emit(SubscriptionEvent::Disconnected { server, error })
                    .await;
                let delay = backoff.random_delay(state.attempt);
                state.attempt = state.attempt.saturating_add(1);
                delay
            }
            Flow::Stop(error) => {
                warn!(%server, %error, "server dropped from the subscription");
                shared
                    .emit(SubscriptionEvent::Dropped { server, error })
                    .await;
                return;
            }
        };
        tokio::time::sleep(delay).await;
    }
}

struct FollowState {
    /// The newest record timestamp this server has sent.
    newest: Option<Timestamp>,
    /// Failed attempts since the last success.
    attempt: u32,
    /// Times in a row the server ended the subscription soon after it
    /// was opened.
    ended: u32,
    /// When the subscription was last opened.
    subscribed_at: Option<Instant>,
}

/// What a Query Closed on a live subscription leads to.
fn on_closed(code: ResultCode) -> Closed {
    if code == ResultCode::TEMPORARY_ERROR || code == ResultCode::TOO_FAST {
        Closed::Resume
    } else if code.category() == Some(ResultCategory::ServerError) {
        Closed::Retry
    } else {
        Closed::Stop
    }
}

enum Closed {
    Resume,
    Retry,
    Stop,
}

async fn follow_once(
    client: &Client,
    link: &Link,
    server: PublicKey,
    filter: &Filter,
    limit: u16,
    state: &mut FollowState,
    shared: &Shared,
) -> Flow {
    let live = match link.connection().await {
        Ok(live) => live,
        Err(error) => return Flow::Retry(error),
    };
    let (asked, limit) = match state.newest {
        Some(since) => match filter.with_since(since) {
            Ok(f) => (f, 0),
            Err(error) => return Flow::Stop(error.into()),
        },
        None => (filter.to_owned(), limit),
    };
    let mut route = match live.query(&asked, limit, true).await {
        Ok(route) => route,
        Err(error) => {
            link.count_failure();
            return Flow::Retry(error);
        }
    };
    state.subscribed_at = Some(Instant::now());
    shared
        .emit(SubscriptionEvent::Subscribed {
            server,
            since: state.newest,
        })
        .await;
    let misbehaved = |problem: Misbehaviour| {
        link.count_misbehaviour();
        Flow::Stop(ClientError::Misbehaved {
            server: ServerId::Key(server),
            problem,
        })
    };
    loop {
        match route.next().await {
            None => {
                link.count_failure();
                return Flow::Retry(route.lost_error());
            }
            Some(QueryEvent::Closed(code)) => {
                let error = ClientError::QueryRefused {
                    server: ServerId::Key(server),
                    code,
                };
                return match on_closed(code) {
                    Closed::Resume => Flow::Resume(code),
                    Closed::Retry => Flow::Retry(error),
                    Closed::Stop => Flow::Stop(error),
                };
            }
            Some(QueryEvent::LocallyComplete) => {
                state.attempt = 0;
                shared.emit(SubscriptionEvent::CaughtUp { server }).await;
            }
            Some(QueryEvent::Invalid(error)) => {
                return misbehaved(Misbehaviour::InvalidRecord { error });
            }
            Some(QueryEvent::Record(record)) => {
                if !asked.matches_record(&record) {
                    return misbehaved(Misbehaviour::FilterMismatch { id: record.id() });
                }
                let t = record.timestamp();
                state.newest = Some(state.newest.map_or(t, |n| n.max(t)));
                if !shared.first_sight(t, record.id()) {
                    continue;
                }
                match client.check_signer(&record).await {
                    Ok(_) => {
                        shared
                            .emit(SubscriptionEvent::Record { server, record })
                            .await
                    }
                    Err(problem) => {
                        shared
                            .emit(SubscriptionEvent::Rejected {
                                server,
                                rejected: Rejected {
                                    id: record.id(),
                                    author: record.author(),
                                    signer: record.signing_key(),
                                    problem,
                                },
                            })
                            .await
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id::from_bytes(&[n; 48]).unwrap()
    }

    fn at(n: u64) -> Timestamp {
        Timestamp::from_nanos(n).unwrap()
    }

    #[test]
    fn the_ids_remembered_are_bounded_and_the_newest_kept() {
        let mut seen = Seen::new(3);
        assert!(seen.first_sight(at(10), id(1)));
        assert!(!seen.first_sight(at(10), id(1)));
        assert!(seen.first_sight(at(30), id(3)));
        assert!(seen.first_sight(at(20), id(2)));
        // A fourth: the oldest timestamp (10) is forgotten.
        assert!(seen.first_sight(at(40), id(4)));
        assert_eq!(seen.ids.len(), 3);
        for (t, n) in [(20, 2), (30, 3), (40, 4)] {
            assert!(!seen.first_sight(at(t), id(n)), "{n} was forgotten");
        }
        assert!(seen.first_sight(at(10), id(1)), "1 was remembered");
        assert_eq!(seen.ids.len(), 3);
    }

    #[test]
    fn query_closed_codes() {
        assert!(matches!(
            on_closed(ResultCode::TEMPORARY_ERROR),
            Closed::Resume
        ));
        assert!(matches!(on_closed(ResultCode::TOO_FAST), Closed::Resume));
        assert!(matches!(
            on_closed(ResultCode::SHUTTING_DOWN),
            Closed::Retry
        ));
        assert!(matches!(
            on_closed(ResultCode::PERSISTENT_ERROR),
            Closed::Retry
        ));
        assert!(matches!(on_closed(ResultCode::TOO_OPEN), Closed::Stop));
        assert!(matches!(on_closed(ResultCode::UNAUTHORIZED), Closed::Stop));
    }
}
