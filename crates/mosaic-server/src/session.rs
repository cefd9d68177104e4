//! One client connection: the upgrade and HELLO, then every message it
//! sends, answered as `messages.md` and SPEC-NOTES D-5 to D-9 say.
//!
//! A session handles its messages in order, except submissions: each one is
//! handed to the committer and answered when durable, so one client can
//! pipeline many submissions into one group commit. Whatever a client sends,
//! the worst outcome is that its own connection is closed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use mosaic_core::handshake::{AuthNonce, PROTOCOL_VERSION, ServerHandshake};
use mosaic_core::{
    DhtTarget, Filter, Id, IdPrefix, Kind, Message, MessageError, MessageRef, OwnedFilter,
    OwnedRecord, PublicKey, QueryId, Reference, ResultCode, Timestamp,
};
use mosaic_net::{Incoming, Received, Sender};
use mosaic_store::{BlobOutcome, InsertOutcome, Records, StoredRecord};
use tokio::net::TcpStream;
use tracing::{Instrument, debug, debug_span, warn};

use crate::committer::CommitFailure;
use crate::keyring::Identity;
use crate::rate::TokenBucket;
use crate::server::Shared;

/// Records read from the store per trip to the blocking pool.
const QUERY_CHUNK: usize = 64;
/// Bytes read from the store per trip to the blocking pool.
const QUERY_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// Serves one TCP connection to its end.
pub(crate) async fn serve(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr) {
    let id = shared
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let span = debug_span!("conn", id, %peer);
    async move {
        let incoming =
            match mosaic_net::accept(tcp, peer, shared.tls.as_ref(), &shared.accept).await {
                Ok(incoming) => incoming,
                Err(e) => {
                    debug!(error = %e, "request refused");
                    return;
                }
            };
        let ip_ban = shared.policy.ip_ban(peer.ip(), now());
        let upgrade = match incoming {
            Incoming::Http(request) => {
                let (status, body) = if ip_ban.is_some() {
                    (403, b"{\"error\":\"banned\"}".to_vec())
                } else if request.method != "GET" {
                    (405, b"{\"error\":\"method not allowed\"}".to_vec())
                } else if request.path == "/" || request.path.starts_with("/?") {
                    let status = shared.status();
                    let body = serde_json::to_vec(&status).unwrap_or_default();
                    (200, body)
                } else {
                    (404, b"{\"error\":\"not found\"}".to_vec())
                };
                let _ = request.respond(status, "application/json", &body).await;
                return;
            }
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
        let connection = match upgrade.accept(&ack, &shared.accept.connection).await {
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
            let first =
                tokio::time::timeout(shared.accept.handshake_timeout, receiver.recv()).await;
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
        let mut session = Session {
            bucket: TokenBucket::new(
                shared.config().limits.submissions_per_second,
                shared.config().limits.submission_burst,
            ),
            shared: shared.clone(),
            conn: id,
            sender: sender.clone(),
            reader,
        };
        let mut shutdown = shared.shutdown.clone();
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    sender.close(ResultCode::SHUTTING_DOWN).await;
                    break;
                }
                next = receiver.recv() => match next {
                    Ok(Some(received)) => {
                        if !session.handle(received).await {
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
        shared.registry.close_all(id);
        shared.live.unregister(id); // -- live moderation (connections.rs) --
        shared.policy.keys.unregister(id);
        debug!("disconnected");
    }
    .instrument(span)
    .await
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now()).unwrap_or(Timestamp::ZERO)
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
    conn: u64,
    sender: Sender,
    reader: Option<PublicKey>,
    bucket: TokenBucket,
}

/// Whether a send failed because the client is gone.
fn gone(result: Result<(), mosaic_net::NetError>) -> bool {
    result.is_err()
}

impl Session {
    /// Handles one message; false ends the session.
    async fn handle(&mut self, received: Received) -> bool {
        let message = match received.message {
            Ok(message) => message,
            Err(e) => return self.handle_malformed(&received.bytes, e).await,
        };
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
                let code = if self.shared.registry.close(self.conn, query_id) {
                    ResultCode::SUCCESS
                } else {
                    ResultCode::NOT_FOUND
                };
                !gone(
                    self.sender
                        .send(&Message::QueryClosed { query_id, code })
                        .await,
                )
            }
            Message::Submission { record } => self.submit(record).await,
            Message::BlobSubmission { hash, data } => self.put_blob(hash, data).await,
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
                    self.sender
                        .send(&Message::HelloAck {
                            code: ResultCode::SUCCESS,
                            version: PROTOCOL_VERSION,
                            applications: Vec::new(),
                        })
                        .await,
                )
            }
            Message::HelloAuth { .. } => {
                // Only valid as the first message, when a nonce was issued.
                self.sender.close(ResultCode::INVALID).await;
                false
            }
            _ => !gone(self.sender.send(&Message::Unrecognized).await),
        }
    }

    /// Answers bytes that did not decode, as precisely as they allow.
    async fn handle_malformed(&mut self, bytes: &[u8], e: MessageError) -> bool {
        debug!(error = %e, "malformed message");
        let code = e.result_code();
        let reply = match (bytes.first(), &e) {
            (_, MessageError::UnknownType { .. }) => Some(Message::Unrecognized),
            (Some(0x05), _) => {
                let prefix = bytes
                    .get(8..40)
                    .and_then(|b| <&[u8; 32]>::try_from(b).ok())
                    .and_then(|b| IdPrefix::from_bytes(b).ok())
                    .unwrap_or(IdPrefix::ZERO);
                Some(Message::SubmissionResult {
                    code,
                    id_prefix: prefix,
                })
            }
            (Some(0x01..=0x03), _) if bytes.len() >= 6 => Some(Message::QueryClosed {
                query_id: QueryId(u16::from_le_bytes([bytes[4], bytes[5]])),
                code,
            }),
            (Some(0x07), _) if bytes.len() >= 40 => {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&bytes[8..40]);
                Some(Message::BlobSubmissionResult { code, hash })
            }
            _ => None,
        };
        match reply {
            Some(reply) => !gone(self.sender.send(&reply).await),
            None => {
                self.sender.close(code).await;
                false
            }
        }
    }

    async fn get(&mut self, query_id: QueryId, references: Vec<Reference>) -> bool {
        let store = self.shared.store.clone();
        let policy = self.shared.policy.clone();
        let reader = self.reader;
        let found = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for reference in references {
                let stored = match reference {
                    Reference::Id(id) => store.get(&id),
                    Reference::Address(addr) => store.latest(&addr),
                };
                match stored {
                    Ok(Some(StoredRecord {
                        record,
                        received_at,
                    })) if policy.may_serve(&record, received_at, reader.as_ref()) => {
                        found.push(record)
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "store read failed"),
                }
            }
            found
        })
        .await
        .unwrap_or_default();
        let code = if found.is_empty() {
            ResultCode::NOT_FOUND
        } else {
            ResultCode::SUCCESS
        };
        for record in &found {
            if gone(self.send_record(query_id, record).await) {
                return false;
            }
        }
        !gone(
            self.sender
                .send(&Message::QueryClosed { query_id, code })
                .await,
        )
    }

    async fn send_record(
        &self,
        query_id: QueryId,
        record: &OwnedRecord,
    ) -> Result<(), mosaic_net::NetError> {
        let bytes = MessageRef::Record {
            query_id,
            record: record.as_ref(),
        }
        .encode()?;
        self.sender.send_encoded(bytes).await
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
        let refuse = |code| Message::QueryClosed { query_id, code };
        let refusal = if self.shared.registry.is_open(self.conn, query_id) {
            Some(ResultCode::INVALID)
        } else if filter.as_bytes().len() > limits.max_filter_len {
            Some(ResultCode::TOO_LARGE)
        } else if !filter.is_narrow() && !config.allow_open_queries {
            Some(ResultCode::TOO_OPEN)
        } else if subscribe
            && self.shared.registry.count(self.conn) >= limits.max_subscriptions_per_connection
        {
            Some(ResultCode::TOO_FAST)
        } else {
            None
        };
        if let Some(code) = refusal {
            return !gone(self.sender.send(&refuse(code)).await);
        }
        // D-5: LIMIT 0 means the server's maximum.
        let limit = match limit {
            0 => limits.max_query_limit,
            n => n.min(limits.max_query_limit),
        };
        if subscribe {
            self.shared.registry.open(
                self.conn,
                query_id,
                filter.clone(),
                self.sender.clone(),
                self.reader,
            );
        }
        let sent = match self
            .stream_stored(query_id, &filter, usize::from(limit))
            .await
        {
            Some(sent) => sent,
            None => return false,
        };
        if subscribe {
            if gone(
                self.sender
                    .send(&Message::LocallyComplete { query_id })
                    .await,
            ) {
                return false;
            }
            self.shared.registry.activate(self.conn, query_id, &sent);
            true
        } else {
            !gone(
                self.sender
                    .send(&Message::QueryClosed {
                        query_id,
                        code: ResultCode::SUCCESS,
                    })
                    .await,
            )
        }
    }

    /// Sends the stored matches newest first, at most `limit`; returns the
    /// ids sent, or `None` when the client is gone.
    async fn stream_stored(
        &self,
        query_id: QueryId,
        filter: &Filter,
        limit: usize,
    ) -> Option<HashSet<Id>> {
        let mut sent = HashSet::new();
        let store = self.shared.store.clone();
        let owned = filter.to_owned();
        let opened = tokio::task::spawn_blocking(move || store.query(&owned, usize::MAX)).await;
        let mut records: Records = match opened {
            Ok(Ok(records)) => records,
            Ok(Err(e)) => {
                warn!(error = %e, "query failed");
                return Some(sent);
            }
            Err(_) => return Some(sent),
        };
        let reader = self.reader;
        loop {
            let want = limit - sent.len();
            let policy = self.shared.policy.clone();
            let step = tokio::task::spawn_blocking(move || {
                let mut chunk = Vec::new();
                let mut bytes = 0;
                let mut done = false;
                while chunk.len() < want.min(QUERY_CHUNK) && bytes < QUERY_CHUNK_BYTES {
                    match records.next() {
                        Some(Ok(stored)) => {
                            if policy.may_serve(&stored.record, stored.received_at, reader.as_ref())
                            {
                                bytes += stored.record.len();
                                chunk.push(stored.record);
                            }
                        }
                        Some(Err(e)) => warn!(error = %e, "damaged record skipped"),
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
                (records, chunk, done)
            })
            .await;
            let Ok((rest, chunk, done)) = step else {
                return Some(sent);
            };
            records = rest;
            for record in &chunk {
                if gone(self.send_record(query_id, record).await) {
                    return None;
                }
                sent.insert(record.id());
            }
            if done || sent.len() >= limit {
                return Some(sent);
            }
        }
    }

    async fn submit(&mut self, record: OwnedRecord) -> bool {
        let id = record.id();
        let reply = move |code| Message::submission_result(code, &id);
        if !self.bucket.try_take() {
            return !gone(self.sender.send(&reply(ResultCode::TOO_FAST)).await);
        }
        let received_at = now();
        if let Some(code) = self.refuse(&record, received_at).await {
            return !gone(self.sender.send(&reply(code)).await);
        }
        // A connection authenticated through a subkey reads and writes as
        // its master (`self.reader` is the master then).
        if record.flags().is_from_author() && self.reader != Some(record.author()) {
            return !gone(
                self.sender
                    .send(&reply(ResultCode::REQUIRES_AUTHENTICATION))
                    .await,
            );
        }
        let record = Arc::new(record);
        if record.kind().duplicate_handling().is_ephemeral() {
            let delivered = self.shared.registry.publish(&record, received_at);
            let code = if delivered > 0 {
                ResultCode::ACCEPTED
            } else {
                ResultCode::NO_CONSUMERS
            };
            return !gone(self.sender.send(&reply(code)).await);
        }
        let committer = self.shared.committer.clone();
        let policy = self.shared.policy.clone();
        let sender = self.sender.clone();
        tokio::spawn(async move {
            let code = match committer.submit(record.clone(), received_at).await {
                Ok(InsertOutcome::Inserted | InsertOutcome::Replaced { .. }) => {
                    if record.kind() == Kind::KEY_SCHEDULE
                        && let Some(master) = policy.keys.offer(&record)
                    {
                        policy.keys.revalidate(&master);
                    }
                    ResultCode::ACCEPTED
                }
                Ok(InsertOutcome::Duplicate | InsertOutcome::Superseded { .. }) => {
                    ResultCode::DUPLICATE
                }
                Ok(InsertOutcome::Ephemeral) => ResultCode::NO_CONSUMERS,
                Err(CommitFailure::Store) => ResultCode::TEMPORARY_ERROR,
                Err(CommitFailure::ShuttingDown) => ResultCode::SHUTTING_DOWN,
            };
            let _ = sender.send(&reply(code)).await;
        });
        true
    }

    /// Why a submission received at `received_at` is refused, if it is:
    /// the rules of [`Policy::refuse_submission`](crate::policy::Policy),
    /// then, for a replaceable or versioned record signed by a subkey, the
    /// records already at its address.
    async fn refuse(&self, record: &OwnedRecord, received_at: Timestamp) -> Option<ResultCode> {
        let policy = &self.shared.policy;
        if let Some(code) = policy.refuse_submission(record, received_at) {
            return Some(code);
        }
        let duplicates = record.kind().duplicate_handling();
        if record.signing_key() == record.author()
            || !(duplicates.is_replaceable() || duplicates.is_versioned())
        {
            return None;
        }
        let store = self.shared.store.clone();
        let policy = policy.clone();
        let address = record.address();
        let signer = record.signing_key();
        let allowed = tokio::task::spawn_blocking(move || {
            for old in store.versions(&address)? {
                if !policy.may_displace(&old?, &signer) {
                    return Ok(false);
                }
            }
            Ok::<_, mosaic_store::StoreError>(true)
        })
        .await;
        match allowed {
            Ok(Ok(true)) => None,
            Ok(Ok(false)) => Some(ResultCode::UNAUTHORIZED),
            Ok(Err(e)) => {
                warn!(error = %e, "cannot read the records at an address");
                Some(ResultCode::TEMPORARY_ERROR)
            }
            Err(_) => Some(ResultCode::TEMPORARY_ERROR),
        }
    }

    async fn put_blob(&mut self, hash: [u8; 32], data: Vec<u8>) -> bool {
        let reply = |code| Message::BlobSubmissionResult { code, hash };
        if data.len() > self.shared.config().limits.max_blob_len {
            return !gone(self.sender.send(&reply(ResultCode::TOO_LARGE)).await);
        }
        if !self.bucket.try_take() {
            return !gone(self.sender.send(&reply(ResultCode::TOO_FAST)).await);
        }
        if let Some(code) = self.shared.policy.refuse_blob(self.reader.as_ref()) {
            return !gone(self.sender.send(&reply(code)).await);
        }
        let store = self.shared.store.clone();
        let outcome = tokio::task::spawn_blocking(move || store.put_blob(&hash, &data)).await;
        let code = match outcome {
            Ok(Ok(BlobOutcome::Stored)) => ResultCode::ACCEPTED,
            Ok(Ok(BlobOutcome::Duplicate)) => ResultCode::DUPLICATE,
            Ok(Err(e)) => {
                warn!(error = %e, "BLOB refused");
                ResultCode::INVALID
            }
            Err(_) => ResultCode::TEMPORARY_ERROR,
        };
        !gone(self.sender.send(&reply(code)).await)
    }

    async fn get_blob(&mut self, hash: [u8; 32]) -> bool {
        let store = self.shared.store.clone();
        let found = tokio::task::spawn_blocking(move || store.blob(&hash)).await;
        let reply = match found {
            Ok(Ok(Some(data))) => Message::BlobResult {
                code: ResultCode::SUCCESS,
                hash,
                data,
            },
            Ok(Ok(None)) => Message::BlobResult {
                code: ResultCode::NOT_FOUND,
                hash,
                data: Vec::new(),
            },
            _ => Message::BlobResult {
                code: ResultCode::TEMPORARY_ERROR,
                hash,
                data: Vec::new(),
            },
        };
        !gone(self.sender.send(&reply).await)
    }

    async fn dht_lookup(&mut self, query_id: QueryId, target: DhtTarget, key: PublicKey) -> bool {
        if let Some(resolver) = self.shared.dht.get() {
            // A lookup can take seconds: answer it in the background, so the
            // connection's other queries go on. The client checks the BEP 44
            // signature itself (D-9).
            let resolver = resolver.clone();
            let sender = self.sender.clone();
            tokio::spawn(async move {
                let reply = resolver.answer_lookup(query_id, target, &key).await;
                let _ = sender.send(&reply).await;
            });
            return true;
        }
        // Without a DHT node every lookup is answered NOT_FOUND.
        let reply = Message::DhtResponse {
            query_id,
            target,
            public_key: key,
            code: ResultCode::NOT_FOUND,
            seq: 0,
            signature: [0; 64],
            value: Vec::new(),
        };
        !gone(self.sender.send(&reply).await)
    }
}
