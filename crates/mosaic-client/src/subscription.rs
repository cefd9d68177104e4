//! Live subscriptions across several servers, surviving lost connections.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

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
/// The ids of every record seen are kept for the subscription's life
/// (48 bytes each).
///
/// Dropping the subscription unsubscribes and stops the tasks.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<SubscriptionEvent>,
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

/// What the server tasks share.
struct Shared {
    seen: Mutex<HashSet<Id>>,
    tx: mpsc::UnboundedSender<SubscriptionEvent>,
}

impl Shared {
    fn emit(&self, event: SubscriptionEvent) {
        let _ = self.tx.send(event);
    }

    /// Whether `id` is seen for the first time (and notes it).
    fn first_sight(&self, id: Id) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
    }
}

pub(crate) async fn start(
    client: &Client,
    authors: &[PublicKey],
    filter: &Filter,
    limit: u16,
) -> Result<Subscription, ClientError> {
    let filter = with_authors(filter, authors)?;
    let (tx, rx) = mpsc::unbounded_channel();
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
        let _ = tx.send(SubscriptionEvent::UserUnresolved { user, error });
    }
    let shared = Arc::new(Shared {
        seen: Mutex::new(HashSet::new()),
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

/// Why one subscription on one server ended.
enum Flow {
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
    };
    loop {
        match follow_once(&client, &link, server, &filter, limit, &mut state, &shared).await {
            Flow::Retry(error) => {
                debug!(%server, %error, "subscription interrupted; will retry");
                shared.emit(SubscriptionEvent::Disconnected { server, error });
            }
            Flow::Stop(error) => {
                warn!(%server, %error, "server dropped from the subscription");
                shared.emit(SubscriptionEvent::Dropped { server, error });
                return;
            }
        }
        let delay = backoff.random_delay(state.attempt);
        state.attempt = state.attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

struct FollowState {
    /// The newest record timestamp this server has sent.
    newest: Option<Timestamp>,
    /// Failed attempts since the last success.
    attempt: u32,
}

/// Whether a Query Closed code on a subscription is worth retrying.
fn retryable(code: ResultCode) -> bool {
    code.category() == Some(ResultCategory::ServerError)
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
    shared.emit(SubscriptionEvent::Subscribed {
        server,
        since: state.newest,
    });
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
                return if retryable(code) {
                    Flow::Retry(error)
                } else {
                    Flow::Stop(error)
                };
            }
            Some(QueryEvent::LocallyComplete) => {
                state.attempt = 0;
                shared.emit(SubscriptionEvent::CaughtUp { server });
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
                if !shared.first_sight(record.id()) {
                    continue;
                }
                match client.check_signer(&record).await {
                    Ok(_) => shared.emit(SubscriptionEvent::Record { server, record }),
                    Err(problem) => shared.emit(SubscriptionEvent::Rejected {
                        server,
                        rejected: Rejected {
                            id: record.id(),
                            author: record.author(),
                            signer: record.signing_key(),
                            problem,
                        },
                    }),
                }
            }
        }
    }
}
