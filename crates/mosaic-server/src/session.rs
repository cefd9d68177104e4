//! One client connection: the upgrade and HELLO, then every message it
//! sends, answered as `messages.md` and SPEC-NOTES D-5 to D-9 and D-21 say.
//!
//! A session handles its messages in order, except submissions (each one
//! is handed to the committer and answered when durable, so one client can
//! pipeline many submissions into one group commit) and DHT Lookups (which
//! run in the background, a few at a time). Live records reach the client
//! through the connection's delivery task (`subscriptions::pump`).
//!
//! Every cost a client can cause is bounded before it is paid: rate limits
//! per connection, IP address and key are charged before a submitted
//! record's signature is verified; submissions in flight are bounded in
//! bytes server-wide; a Get carries a bounded number of distinct
//! references; a query examines a bounded number of records and reads the
//! store in chunks without holding a read snapshot while it waits for the
//! client; everything sent waits on the connection's outbound budget, and a
//! client that stops reading is disconnected by the write timeout. Whatever
//! a client sends, the worst outcome is that its own connection is closed.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mosaic_core::handshake::{AuthNonce, PROTOCOL_VERSION, ServerHandshake};
use mosaic_core::{
    DhtTarget, Id, Message, MessageError, MessageType, OwnedFilter, OwnedRecord, PublicKey,
    QueryId, Reference, ResultCode,
};
use mosaic_net::{Bytes, Incoming, Received, Receiver, Sender};
use mosaic_store::{BlobOutcome, QueryCursor, StoredRecord};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, debug_span, warn};

use crate::error::store_code;
use crate::keyring::Identity;
use crate::metrics::{LookupOutcome, RateClass, RateScope};
use crate::now;
use crate::rate::TokenBucket;
use crate::server::Shared;
use crate::submit::{Submitted, Writer, bytes_8_40, claimed_prefix};
use crate::subscriptions::{self, ConnLive, OpenError};
use crate::verifier::is_plain_submission;

/// Records read from the store per trip to the blocking pool (each trip
/// opens a fresh snapshot, resumed where the last one stopped).
const QUERY_CHUNK: usize = 512;
/// Bytes read from the store per trip to the blocking pool.
const QUERY_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// Serves one TCP connection to its end.
pub(crate) async fn serve(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr) {
    let id = shared
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let span = debug_span!("conn", id, %peer);
    async move {
        // The settings in force when the connection arrives.
        let accept = shared.accept_config();
        let incoming = match mosaic_net::accept(tcp, peer, shared.tls.as_ref(), &accept).await {
            Ok(incoming) => incoming,
            Err(e) => {
                debug!(error = %e, "request refused");
                return;
            }
        };
        let peer = incoming.peer(); // the client behind a trusted proxy
        let ip_ban = shared.policy.ip_ban(peer.ip(), now());
        let upgrade = match incoming {
            Incoming::Http(request) => return crate::http::answer(&shared, request).await,
            Incoming::Upgrade(upgrade) => upgrade,
        };
        let Some(_admission) = shared.admit(peer.ip()) else {
            let _ = upgrade
                .refuse(503, "too many connections; try again later")
                .await;
            return;
        };
        let mut handshake = ServerHandshake::new(shared.key.public(), &[PROTOCOL_VERSION], &[]);
        let nonce = AuthNonce::random(&mut rand::rng());
        let ack = match handshake.handle_hello(upgrade.hello(), &shared.key, nonce, None) {
            Ok(ack) => ack,
            Err(e) => {
                let _ = upgrade.refuse(400, &e.to_string()).await;
                return;
            }
        };
        let connection = match upgrade.accept(&ack, &accept.connection).await {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let (sender, mut receiver) = connection.split();
        if let Some(code) = ip_ban {
            // The upgrade is completed so that the client learns the code.
            debug!(%code, "banned address");
            sender.close(code).await;
            return;
        }
        debug!("connected");

        // D-4: a client that asked to authenticate sends Hello Auth first.
        let mut reader: Option<PublicKey> = None;
        if ack.client_nonce.is_some() {
            let first = tokio::time::timeout(accept.handshake_timeout, receiver.recv()).await;
            match first {
                Ok(Ok(Some(Received {
                    message: Ok(Message::HelloAuth { signature }),
                    ..
                }))) => match handshake.handle_hello_auth(&signature) {
                    Ok(key) => {
                        let identity = match admit_identity(&shared, key) {
                            Ok(identity) => identity,
                            Err(code) => {
                                debug!(client = %key, %code, "authentication refused");
                                sender.close(code).await;
                                return;
                            }
                        };
                        let ok = Message::HelloAck {
                            code: ResultCode::SUCCESS,
                            version: ack.version,
                            applications: Vec::new(),
                        };
                        if sender.send(&ok).await.is_err() {
                            return;
                        }
                        reader = match identity {
                            Identity::Delegated { subkey, master } => {
                                let keys = &shared.policy.keys;
                                keys.register(id, subkey, master, sender.clone());
                                // A revocation between the two looks is
                                // caught by one of them.
                                if keys.identify(subkey, now()) != identity {
                                    keys.unregister(id);
                                    sender.close(ResultCode::UNAUTHORIZED).await;
                                    return;
                                }
                                debug!(%subkey, %master, "authenticated through a subkey");
                                Some(master)
                            }
                            Identity::Direct(key) => {
                                debug!(client = %key, "authenticated");
                                Some(key)
                            }
                            // Refused by `admit_identity` above.
                            Identity::Revoked => return,
                        };
                    }
                    Err(e) => {
                        debug!(error = %e, "authentication failed");
                        sender.close(ResultCode::UNAUTHORIZED).await;
                        return;
                    }
                },
                Ok(Ok(Some(_))) => {
                    sender.close(ResultCode::REQUIRES_AUTHENTICATION).await;
                    return;
                }
                _ => {
                    sender.close(ResultCode::REQUIRES_AUTHENTICATION).await;
                    return;
                }
            }
        }

        // -- live moderation (connections.rs): from here a ban reaches this connection --
        shared.register_live(id, peer.ip(), reader, &sender);
        let config = shared.config();
        let limits = &config.limits;
        let live = shared.registry.connect(id, sender.clone());
        let pump = tokio::spawn({
            let shared = shared.clone();
            let registry = shared.registry.clone();
            subscriptions::pump(registry, live.clone(), move || {
                shared.config().limits.delivery()
            })
        });
        let mut session = Session {
            writes: TokenBucket::new(limits.submissions_per_second, limits.submission_burst),
            reads: TokenBucket::new(limits.reads_per_second, limits.read_burst),
            dht_lookups: Arc::new(Semaphore::new(limits.dht_lookups_per_connection)),
            tasks: JoinSet::new(),
            shared: shared.clone(),
            ip: peer.ip(),
            live: live.clone(),
            sender: sender.clone(),
            reader,
        };
        drop(config);
        let mut shutdown = shared.shutdown.clone();
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    sender.close(ResultCode::SHUTTING_DOWN).await;
                    break;
                }
                // The writer has ended: the client stopped reading, or the
                // connection was closed from elsewhere (a ban, a revocation).
                _ = sender.closed() => break,
                next = receiver.recv_frame() => match next {
                    Ok(Some(frame)) => {
                        if !session.frame(&receiver, frame).await {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        debug!(error = %e, "connection ended");
                        break;
                    }
                },
            }
        }
        pump.abort();
        if sender.is_stalled() {
            debug!("client not reading: disconnected after the write timeout");
            shared
                .metrics
                .subscription_ended(crate::metrics::SlowReader::NotReading);
        }
        shared.registry.disconnect(&live);
        shared.live.unregister(id);
        shared.policy.keys.unregister(id);
        debug!("disconnected");
    }
    .instrument(span)
    .await
}

/// What a key that passed Hello Auth is admitted as, or the code to close
/// with: UNAUTHORIZED for a subkey its master revoked, a ban code for a
/// banned key (the subkey or the master it stands for).
fn admit_identity(shared: &Shared, proven: PublicKey) -> Result<Identity, ResultCode> {
    let now = now();
    let policy = &shared.policy;
    let identity = policy.keys.identify(proven, now);
    let ban = match identity {
        Identity::Revoked => return Err(ResultCode::UNAUTHORIZED),
        Identity::Direct(key) => policy.key_ban(&key, now),
        Identity::Delegated { subkey, master } => policy
            .key_ban(&subkey, now)
            .or_else(|| policy.key_ban(&master, now)),
    };
    match ban {
        Some(code) => Err(code),
        None => Ok(identity),
    }
}

struct Session {
    shared: Arc<Shared>,
    ip: IpAddr,
    sender: Sender,
    live: Arc<ConnLive>,
    reader: Option<PublicKey>,
    /// This connection's write and read buckets.
    writes: TokenBucket,
    reads: TokenBucket,
    /// DHT Lookups this connection may still start.
    dht_lookups: Arc<Semaphore>,
    /// DHT Lookups running for this connection; aborted when it ends.
    tasks: JoinSet<()>,
}

/// Whether a send failed because the client is gone.
fn gone(result: Result<(), mosaic_net::NetError>) -> bool {
    result.is_err()
}

/// How the stored phase of a query ended.
enum Stored {
    /// Every match was sent (or the limit reached).
    Complete,
    /// The scan budget was spent first.
    BudgetSpent,
    /// The store failed; the code to close with.
    Failed(ResultCode),
}

/// Whether a message type is a write (charged to the write buckets and the
/// server-wide bytes in flight before it is decoded).
fn is_write(ty: u8) -> bool {
    ty == MessageType::SUBMISSION.as_u8() || ty == MessageType::BLOB_SUBMISSION.as_u8()
}

impl Session {
    /// Sends a message to the client (waiting on the outbound budget),
    /// counting it in the metrics.
    async fn send(&self, message: &Message) -> Result<(), mosaic_net::NetError> {
        self.shared.metrics.message_sent(message);
        self.sender.send(message).await
    }

    /// Sends Closing with `code` and closes the connection.
    async fn close(&self, code: ResultCode) {
        self.shared.metrics.message_sent(&Message::Closing { code });
        self.sender.close(code).await
    }

    /// Takes a write token from the connection's, the address's and the
    /// key's buckets; false (counted) when one is empty.
    fn take_write(&mut self) -> bool {
        let config = self.shared.config();
        let l = &config.limits;
        let refused = if !self.writes.try_take() {
            Some(RateScope::Connection)
        } else if !self.shared.ip_writes.try_take(
            self.ip,
            l.ip_submissions_per_second,
            l.ip_submission_burst,
        ) {
            Some(RateScope::Ip)
        } else if !self.reader.is_none_or(|key| {
            self.shared.key_writes.try_take(
                key,
                l.key_submissions_per_second,
                l.key_submission_burst,
            )
        }) {
            Some(RateScope::Key)
        } else {
            None
        };
        self.counted(refused, RateClass::Write)
    }

    /// Takes a read token, as [`Session::take_write`] does.
    fn take_read(&mut self) -> bool {
        let config = self.shared.config();
        let l = &config.limits;
        let refused = if !self.reads.try_take() {
            Some(RateScope::Connection)
        } else if !self
            .shared
            .ip_reads
            .try_take(self.ip, l.ip_reads_per_second, l.ip_read_burst)
        {
            Some(RateScope::Ip)
        } else if !self.reader.is_none_or(|key| {
            self.shared
                .key_reads
                .try_take(key, l.key_reads_per_second, l.key_read_burst)
        }) {
            Some(RateScope::Key)
        } else {
            None
        };
        self.counted(refused, RateClass::Read)
    }

    fn counted(&self, refused: Option<RateScope>, class: RateClass) -> bool {
        match refused {
            Some(scope) => {
                debug!(?scope, ?class, "rate limited");
                self.shared.metrics.rate_limited(scope, class);
                false
            }
            None => true,
        }
    }

    /// Handles one frame; false ends the session. A write is charged to the
    /// rate limits and to the bytes in flight before it is decoded, since
    /// decoding a submission verifies its signature.
    async fn frame(&mut self, receiver: &Receiver, bytes: Bytes) -> bool {
        while self.tasks.try_join_next().is_some() {}
        let ty = bytes.first().copied().unwrap_or(0);
        let mut permit = None;
        if is_write(ty) {
            let refusal = if self.shared.health.is_off() {
                Some(ResultCode::PERSISTENT_ERROR)
            } else if !self.take_write() {
                Some(ResultCode::TOO_FAST)
            } else {
                None
            };
            if let Some(code) = refusal {
                let reply = if ty == MessageType::SUBMISSION.as_u8() {
                    Message::SubmissionResult {
                        code,
                        id_prefix: claimed_prefix(&bytes),
                    }
                } else {
                    Message::BlobSubmissionResult {
                        code,
                        hash: bytes_8_40(&bytes),
                    }
                };
                return !gone(self.send(&reply).await);
            }
            // At most the whole budget, so that it can always be had.
            let cost = bytes
                .len()
                .clamp(1, self.shared.config().limits.submission_bytes_in_flight);
            let cost = u32::try_from(cost).unwrap_or(u32::MAX);
            permit = match self
                .shared
                .submission_bytes
                .clone()
                .acquire_many_owned(cost)
                .await
            {
                Ok(permit) => Some(permit),
                Err(_) => return false,
            };
        }
        if is_plain_submission(&bytes) {
            // Verified in the verification stage, batched with other
            // connections' submissions, off this task.
            self.shared.metrics.submission_received();
            self.submit(Submitted::Unverified(bytes), permit);
            return true;
        }
        match receiver.decode(bytes).await {
            Ok(received) => self.handle(received, permit).await,
            Err(_) => false,
        }
    }

    /// Handles one message; false ends the session.
    async fn handle(&mut self, received: Received, permit: Option<OwnedSemaphorePermit>) -> bool {
        self.shared.metrics.message_received(&received);
        let message = match received.message {
            Ok(message) => message,
            Err(e) => return self.handle_malformed(&received.bytes, e).await,
        };
        let read = matches!(
            message,
            Message::Get { .. }
                | Message::Query { .. }
                | Message::Subscribe { .. }
                | Message::BlobGet { .. }
                | Message::DhtLookup { .. }
        );
        if read && !self.take_read() {
            return self.too_fast(message).await;
        }
        match message {
            Message::Get {
                query_id,
                references,
            } => self.get(query_id, references).await,
            Message::Query {
                query_id,
                limit,
                filter,
            } => self.query(query_id, limit, filter, false).await,
            Message::Subscribe {
                query_id,
                limit,
                filter,
            } => self.query(query_id, limit, filter, true).await,
            Message::Unsubscribe { query_id } => {
                if self
                    .shared
                    .registry
                    .close(&self.live, query_id, ResultCode::SUCCESS)
                {
                    true
                } else {
                    self.closed(query_id, ResultCode::NOT_FOUND).await
                }
            }
            Message::Submission { record } => {
                self.submit(Submitted::Verified(record), permit);
                true
            }
            Message::BlobSubmission { hash, data } => self.put_blob(hash, data, permit).await,
            Message::BlobGet { hash } => self.get_blob(hash).await,
            Message::DhtLookup {
                query_id,
                target,
                public_key,
            } => self.dht_lookup(query_id, target, public_key).await,
            Message::Hello { .. } => {
                // Over WebSocket the HELLO is in the upgrade headers; answer
                // a stray one harmlessly.
                !gone(
                    self.send(&Message::HelloAck {
                        code: ResultCode::SUCCESS,
                        version: PROTOCOL_VERSION,
                        applications: Vec::new(),
                    })
                    .await,
                )
            }
            Message::HelloAuth { .. } => {
                // Only valid as the first message, when a nonce was issued.
                self.close(ResultCode::INVALID).await;
                false
            }
            _ => !gone(self.send(&Message::Unrecognized).await),
        }
    }

    /// Answers a read refused by the rate limits with TOO_FAST, in the
    /// form its type calls for.
    async fn too_fast(&mut self, message: Message) -> bool {
        let code = ResultCode::TOO_FAST;
        let reply = match message {
            Message::Get { query_id, .. }
            | Message::Query { query_id, .. }
            | Message::Subscribe { query_id, .. } => Message::QueryClosed { query_id, code },
            Message::BlobGet { hash } => Message::BlobResult {
                code,
                hash,
                data: Vec::new(),
            },
            Message::DhtLookup {
                query_id,
                target,
                public_key,
            } => dht_refusal(query_id, target, public_key, code),
            _ => return true,
        };
        !gone(self.send(&reply).await)
    }

    /// Answers bytes that did not decode, as precisely as they allow.
    async fn handle_malformed(&mut self, bytes: &[u8], e: MessageError) -> bool {
        debug!(error = %e, "malformed message");
        if matches!(e, MessageError::Record(_)) {
            self.shared.metrics.signature_failed();
        }
        let code = e.result_code();
        let reply = match (bytes.first(), &e) {
            (_, MessageError::UnknownType { .. }) => Some(Message::Unrecognized),
            (Some(0x05), _) => Some(Message::SubmissionResult {
                code,
                id_prefix: claimed_prefix(bytes),
            }),
            (Some(0x01..=0x03), _) if bytes.len() >= 6 => Some(Message::QueryClosed {
                query_id: QueryId(u16::from_le_bytes([bytes[4], bytes[5]])),
                code,
            }),
            (Some(0x07), _) if bytes.len() >= 40 => Some(Message::BlobSubmissionResult {
                code,
                hash: bytes_8_40(bytes),
            }),
            _ => None,
        };
        match reply {
            Some(reply) => !gone(self.send(&reply).await),
            None => {
                self.close(code).await;
                false
            }
        }
    }

    async fn closed(&self, query_id: QueryId, code: ResultCode) -> bool {
        !gone(self.send(&Message::QueryClosed { query_id, code }).await)
    }

    /// Get: each distinct reference looked up once, the records sent in
    /// chunks as they are read (never all collected first).
    async fn get(&mut self, query_id: QueryId, references: Vec<Reference>) -> bool {
        let mut seen = HashSet::with_capacity(references.len());
        let mut references: Vec<Reference> =
            references.into_iter().filter(|r| seen.insert(*r)).collect();
        drop(seen);
        if references.len() > self.shared.config().limits.max_get_references {
            return self.closed(query_id, ResultCode::TOO_LARGE).await;
        }
        let mut found_any = false;
        let mut failure = None;
        // Looked up from the end, so that taking a chunk is a truncation.
        references.reverse();
        while !references.is_empty() && failure.is_none() {
            let store = self.shared.store.clone();
            let policy = self.shared.policy.clone();
            let reader = self.reader;
            let mut rest = std::mem::take(&mut references);
            let step = tokio::task::spawn_blocking(move || {
                let mut chunk: Vec<Arc<OwnedRecord>> = Vec::new();
                let mut bytes = 0;
                while bytes < QUERY_CHUNK_BYTES {
                    let Some(reference) = rest.pop() else { break };
                    let stored = match reference {
                        Reference::Id(id) => store.get(&id),
                        Reference::Address(addr) => store.latest(&addr),
                    };
                    match stored {
                        Ok(Some(StoredRecord {
                            record,
                            received_at,
                        })) if policy.may_serve(&record, received_at, reader.as_ref()) => {
                            bytes += record.len();
                            chunk.push(Arc::new(record));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            warn!(error = %e, "store read failed");
                            return (rest, chunk, Some(store_code(&e)));
                        }
                    }
                }
                (rest, chunk, None)
            })
            .await;
            let Ok((rest, chunk, failed)) = step else {
                failure = Some(ResultCode::TEMPORARY_ERROR);
                break;
            };
            references = rest;
            failure = failed;
            for record in chunk {
                found_any = true;
                if gone(self.sender.send_record(query_id, record).await) {
                    return false;
                }
            }
        }
        let code = match failure {
            Some(code) => code,
            None if found_any => ResultCode::SUCCESS,
            None => ResultCode::NOT_FOUND,
        };
        self.closed(query_id, code).await
    }

    async fn query(
        &mut self,
        query_id: QueryId,
        limit: u16,
        filter: OwnedFilter,
        subscribe: bool,
    ) -> bool {
        let config = self.shared.config();
        let limits = &config.limits;
        let registry = &self.shared.registry;
        let refusal = if registry.is_open(&self.live, query_id) {
            Some(ResultCode::INVALID)
        } else if filter.as_bytes().len() > limits.max_filter_len {
            Some(ResultCode::TOO_LARGE)
        } else if !filter.is_narrow() && !config.allow_open_queries {
            Some(ResultCode::TOO_OPEN)
        } else if subscribe && registry.count(&self.live) >= limits.max_subscriptions_per_connection
        {
            Some(ResultCode::TOO_FAST)
        } else {
            None
        };
        if let Some(code) = refusal {
            return self.closed(query_id, code).await;
        }
        // D-5: LIMIT 0 means the server's maximum.
        let limit = match limit {
            0 => limits.max_query_limit,
            n => n.min(limits.max_query_limit),
        };
        let budget = limits.query_scan_budget;
        drop(config);
        if subscribe
            && registry.open(&self.live, query_id, filter.clone(), self.reader)
                == Err(OpenError::InUse)
        {
            return self.closed(query_id, ResultCode::INVALID).await;
        }
        let Some((sent, ending)) = self
            .stream_stored(query_id, &filter, usize::from(limit), budget)
            .await
        else {
            return false;
        };
        let end_code = match ending {
            Stored::Complete => None,
            Stored::BudgetSpent => Some(ResultCode::TOO_OPEN),
            Stored::Failed(code) => Some(code),
        };
        match (subscribe, end_code) {
            (true, None) => {
                if gone(self.send(&Message::LocallyComplete { query_id }).await) {
                    return false;
                }
                self.shared.registry.activate(&self.live, query_id, &sent);
                true
            }
            (true, Some(code)) => {
                // Query Closed follows the records already sent.
                self.shared.registry.close(&self.live, query_id, code);
                true
            }
            (false, code) => {
                self.closed(query_id, code.unwrap_or(ResultCode::SUCCESS))
                    .await
            }
        }
    }

    /// Sends the stored matches newest first, at most `limit`, examining at
    /// most `budget` records; returns the ids sent and how it ended, or
    /// `None` when the client is gone. The store is read a chunk at a time,
    /// each from a fresh snapshot resumed where the last stopped, so no
    /// snapshot is held while the client reads.
    async fn stream_stored(
        &self,
        query_id: QueryId,
        filter: &OwnedFilter,
        limit: usize,
        budget: u64,
    ) -> Option<(HashSet<Id>, Stored)> {
        let mut sent = HashSet::new();
        let mut cursor: Option<QueryCursor> = None;
        let mut examined: u64 = 0;
        loop {
            if sent.len() >= limit {
                return Some((sent, Stored::Complete));
            }
            let want = (limit - sent.len()).min(QUERY_CHUNK);
            let store = self.shared.store.clone();
            let policy = self.shared.policy.clone();
            let reader = self.reader;
            let owned = filter.clone();
            let left = budget.saturating_sub(examined);
            let step = tokio::task::spawn_blocking(move || {
                let records = match cursor {
                    None => store.query(&owned, want),
                    Some(after) => store.query_after(&owned, want, after),
                };
                let mut records = match records {
                    Ok(records) => records.with_scan_budget(left),
                    Err(e) => {
                        warn!(error = %e, "query failed");
                        return Err(store_code(&e));
                    }
                };
                let mut chunk = Vec::new();
                let mut yielded = 0;
                let mut bytes = 0;
                let mut failed = None;
                while bytes < QUERY_CHUNK_BYTES {
                    match records.next() {
                        Some(Ok(stored)) => {
                            yielded += 1;
                            if policy.may_serve(&stored.record, stored.received_at, reader.as_ref())
                            {
                                bytes += stored.record.len();
                                chunk.push(Arc::new(stored.record));
                            }
                        }
                        Some(Err(mosaic_store::StoreError::Corrupt(e))) => {
                            warn!(error = %e, "damaged record skipped");
                        }
                        Some(Err(e)) => {
                            warn!(error = %e, "query failed");
                            failed = Some(store_code(&e));
                            break;
                        }
                        None => break,
                    }
                }
                let spent = records.budget_exhausted();
                // The store's limit ended the iterator: more may follow.
                let more = yielded == want || bytes >= QUERY_CHUNK_BYTES;
                Ok((
                    chunk,
                    records.examined(),
                    spent,
                    failed,
                    more,
                    records.resume_point(),
                ))
            })
            .await;
            let (chunk, seen, spent, failed, more, resume) = match step {
                Ok(Ok(step)) => step,
                Ok(Err(code)) => return Some((sent, Stored::Failed(code))),
                Err(_) => return Some((sent, Stored::Failed(ResultCode::TEMPORARY_ERROR))),
            };
            examined += seen;
            for record in chunk {
                if sent.len() >= limit {
                    break;
                }
                let id = record.id();
                if gone(self.sender.send_record(query_id, record).await) {
                    return None;
                }
                sent.insert(id);
            }
            if let Some(code) = failed {
                return Some((sent, Stored::Failed(code)));
            }
            if spent {
                return Some((sent, Stored::BudgetSpent));
            }
            match resume {
                Some(next) if more => cursor = Some(next),
                _ => return Some((sent, Stored::Complete)),
            }
        }
    }

    /// Hands a submission to its own task ([`crate::submit`]): verified
    /// (unless the decoder already did), judged, committed and answered
    /// while the session goes on with the client's next messages.
    fn submit(&self, record: Submitted, permit: Option<OwnedSemaphorePermit>) {
        let writer = Writer {
            shared: self.shared.clone(),
            sender: self.sender.clone(),
            reader: self.reader,
        };
        tokio::spawn(writer.submit(record, permit));
    }

    async fn put_blob(
        &mut self,
        hash: [u8; 32],
        data: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> bool {
        let reply = |code| Message::BlobSubmissionResult { code, hash };
        if data.len() > self.shared.config().limits.max_blob_len {
            return !gone(self.send(&reply(ResultCode::TOO_LARGE)).await);
        }
        if let Some(code) = self.shared.policy.refuse_blob(self.reader.as_ref()) {
            return !gone(self.send(&reply(code)).await);
        }
        let store = self.shared.store.clone();
        let outcome = tokio::task::spawn_blocking(move || store.put_blob(&hash, &data)).await;
        drop(permit);
        let code = match outcome {
            Ok(Ok(BlobOutcome::Stored)) => ResultCode::ACCEPTED,
            Ok(Ok(BlobOutcome::Duplicate)) => ResultCode::DUPLICATE,
            Ok(Err(e)) => {
                // A failed durable write: its outcome is unknown.
                self.shared
                    .health
                    .fail(format!("storing a BLOB failed: {e}"));
                store_code(&e)
            }
            Err(_) => ResultCode::TEMPORARY_ERROR,
        };
        !gone(self.send(&reply(code)).await)
    }

    async fn get_blob(&mut self, hash: [u8; 32]) -> bool {
        let store = self.shared.store.clone();
        let found = tokio::task::spawn_blocking(move || store.blob(&hash)).await;
        let (code, data) = match found {
            Ok(Ok(Some(data))) => (ResultCode::SUCCESS, data),
            Ok(Ok(None)) => (ResultCode::NOT_FOUND, Vec::new()),
            Ok(Err(e)) => {
                warn!(error = %e, "BLOB read failed");
                (store_code(&e), Vec::new())
            }
            Err(_) => (ResultCode::TEMPORARY_ERROR, Vec::new()),
        };
        !gone(self.send(&Message::BlobResult { code, hash, data }).await)
    }

    /// DHT Lookup (D-9): answered in the background, at most a few at a
    /// time per connection and server-wide (TOO_FAST beyond), through the
    /// resolver's cache of hits and misses. The client checks the BEP 44
    /// signature itself.
    async fn dht_lookup(&mut self, query_id: QueryId, target: DhtTarget, key: PublicKey) -> bool {
        let Some(resolver) = self.shared.dht.get() else {
            // Without a DHT node every lookup is answered NOT_FOUND.
            self.shared.metrics.dht_lookup(LookupOutcome::Miss);
            let reply = dht_refusal(query_id, target, key, ResultCode::NOT_FOUND);
            return !gone(self.send(&reply).await);
        };
        let permits = self
            .dht_lookups
            .clone()
            .try_acquire_owned()
            .ok()
            .and_then(|mine| {
                let all = self.shared.dht_lookups.clone().try_acquire_owned().ok()?;
                Some((mine, all))
            });
        let Some(permits) = permits else {
            self.shared.metrics.dht_lookup(LookupOutcome::Refused);
            let reply = dht_refusal(query_id, target, key, ResultCode::TOO_FAST);
            return !gone(self.send(&reply).await);
        };
        let resolver = resolver.clone();
        let sender = self.sender.clone();
        let metrics = self.shared.metrics.clone();
        self.tasks.spawn(async move {
            let reply = resolver.answer_lookup(query_id, target, &key).await;
            drop(permits);
            let found =
                matches!(reply, Message::DhtResponse { code, .. } if code == ResultCode::SUCCESS);
            metrics.dht_lookup(if found {
                LookupOutcome::Hit
            } else {
                LookupOutcome::Miss
            });
            metrics.message_sent(&reply);
            let _ = sender.send(&reply).await;
        });
        true
    }
}

/// A DHT Response carrying only a result code.
fn dht_refusal(query_id: QueryId, target: DhtTarget, key: PublicKey, code: ResultCode) -> Message {
    Message::DhtResponse {
        query_id,
        target,
        public_key: key,
        code,
        seq: 0,
        signature: [0; 64],
        value: Vec::new(),
    }
}
