//! [`Client`]: the pool of server connections, and publishing, fetching,
//! key schedules and profiles on top of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use mosaic_core::{
    Filter, FilterBuilder, KeySchedule, KeyScheduleError, Kind, OwnedRecord, Profile, PublicKey,
    Record, Reference, ResultCode, ServerUsage, SignerStatus, TagValue, Timestamp, UserBootstrap,
    validate_record_signer,
};
use tokio::task::JoinSet;
use tracing::debug;

use crate::link::{Link, Target};
use crate::query::{Answer, merge, run_query, with_authors};
use crate::subscription::{self, Subscription};
use crate::{
    BulkOptions, BulkReport, ClientConfig, ClientError, FetchReport, PublishOutcome, PublishReport,
    Rejected, ServerAddress, ServerId, ServerOutcome,
};

/// How many of a user's outbox (or inbox) servers are used: the first three
/// listed, as the spec says.
pub const SERVERS_PER_USER: usize = 3;

/// The shortest time between two fetches of one author's key schedule
/// caused by records signed with keys it does not list.
pub const MIN_KEY_SCHEDULE_REFRESH: Duration = Duration::from_secs(10);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now()).unwrap_or(Timestamp::ZERO)
}

struct Cached<T> {
    at: Instant,
    value: T,
}

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    pool: Mutex<HashMap<Target, Arc<Link>>>,
    schedules: Mutex<HashMap<PublicKey, Cached<Option<KeySchedule>>>>,
    profiles: Mutex<HashMap<PublicKey, Cached<Option<Profile>>>>,
}

/// A Mosaic client: a pool of server connections, shared by every request.
///
/// Cloning is cheap and shares the pool. Servers are found through the
/// configured [`Directory`](crate::Directory): a user's bootstrap names
/// their servers by key, and a server's bootstrap gives its addresses. Every
/// connection to a server known by key requires the server to prove that key
/// (D-3). One connection per server carries all queries, subscriptions and
/// submissions; a lost one is opened again when next needed, and live
/// subscriptions re-open it themselves (see [`Subscription`]).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with `config` (checked first). No connection is opened yet.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                pool: Mutex::new(HashMap::new()),
                schedules: Mutex::new(HashMap::new()),
                profiles: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    pub(crate) fn link(&self, target: Target) -> Arc<Link> {
        let mut pool = lock(&self.inner.pool);
        pool.entry(target.clone())
            .or_insert_with(|| {
                let config = &self.inner.config;
                Arc::new(Link::new(
                    target,
                    config.directory.clone(),
                    config.connect.clone(),
                    config.identity.clone(),
                ))
            })
            .clone()
    }

    pub(crate) fn link_to(&self, server: PublicKey) -> Arc<Link> {
        self.link(Target::Key(server))
    }

    fn server_link(&self, link: Arc<Link>) -> ServerLink {
        ServerLink {
            link,
            request_timeout: self.inner.config.request_timeout,
        }
    }

    /// Connects to a server by address: `ws://host:port/`, `wss://...` or a
    /// Mosaic URL (only `mosaicwss` is supported). With `expected_key`, the
    /// server must prove that key (D-3) or it is refused; without, the
    /// connection is anonymous (authentication needs the server's key).
    pub async fn connect_url(
        &self,
        address: &str,
        expected_key: Option<PublicKey>,
    ) -> Result<ServerLink, ClientError> {
        let address = ServerAddress::parse(address)?;
        let link = self.link(Target::Address {
            address,
            expected: expected_key,
        });
        link.connection().await?;
        Ok(self.server_link(link))
    }

    /// Connects to a server by key: its addresses come from the directory
    /// (its server bootstrap) and are tried in order; the server must prove
    /// the key (D-3). This is the connection that publishing and fetching
    /// use for that server.
    pub async fn connect_key(&self, server: &PublicKey) -> Result<ServerLink, ClientError> {
        let link = self.link_to(*server);
        link.connection().await?;
        Ok(self.server_link(link))
    }

    /// How many times a server (known by key) was caught misbehaving:
    /// records that do not verify or do not match the filter, more records
    /// than asked for. See also [`server_stats`](Self::server_stats).
    pub fn misbehaviour(&self, server: &PublicKey) -> u32 {
        self.server_stats(server).misbehaviour
    }

    /// What this client has seen of a server (known by key) so far.
    pub fn server_stats(&self, server: &PublicKey) -> ServerStats {
        lock(&self.inner.pool)
            .get(&Target::Key(*server))
            .map_or(ServerStats::default(), |l| ServerStats {
                misbehaviour: l.misbehaviour(),
                failures: l.failures(),
            })
    }

    /// The user bootstrap of `user`, from the directory.
    pub async fn user_bootstrap(&self, user: &PublicKey) -> Result<UserBootstrap, ClientError> {
        self.inner
            .config
            .directory
            .user_bootstrap(user)
            .await?
            .ok_or(ClientError::NoUserBootstrap { user: *user })
    }

    /// The first [`SERVERS_PER_USER`] outbox servers of `user`.
    pub async fn outboxes(&self, user: &PublicKey) -> Result<Vec<PublicKey>, ClientError> {
        let bootstrap = self.user_bootstrap(user).await?;
        Ok(bootstrap.outboxes().take(SERVERS_PER_USER).collect())
    }

    /// The first [`SERVERS_PER_USER`] inbox servers of `user`.
    pub async fn inboxes(&self, user: &PublicKey) -> Result<Vec<PublicKey>, ClientError> {
        let bootstrap = self.user_bootstrap(user).await?;
        Ok(bootstrap.inboxes().take(SERVERS_PER_USER).collect())
    }

    /// Publishes a record: to the first three outbox servers of its
    /// author, and, when it tags other users (Notify Public Key tags, or
    /// Reply and Root tags naming a record by address), to the first three
    /// inbox servers of each of them. Each server is sent the record once,
    /// all at once; the report gives each server's answer.
    ///
    /// Fails only when the author's outboxes are unknown.
    pub async fn publish(&self, record: &Record) -> Result<PublishReport, ClientError> {
        let author = record.author();
        let mut targets: Vec<(PublicKey, ServerUsage)> = Vec::new();
        let mut add = |server: PublicKey, usage: ServerUsage| match targets
            .iter_mut()
            .find(|(s, _)| *s == server)
        {
            Some((_, u)) => *u = u.union(usage),
            None => targets.push((server, usage)),
        };
        let outboxes = self.outboxes(&author).await?;
        if outboxes.is_empty() {
            return Err(ClientError::NoServers);
        }
        for server in outboxes {
            add(server, ServerUsage::OUTBOX);
        }
        let mut unreached_users = Vec::new();
        for user in tagged_users(record) {
            match self.inboxes(&user).await {
                Ok(inboxes) if inboxes.is_empty() => {
                    unreached_users.push((user, ClientError::NoServers));
                }
                Ok(inboxes) => {
                    for server in inboxes {
                        add(server, ServerUsage::INBOX);
                    }
                }
                Err(error) => unreached_users.push((user, error)),
            }
        }

        let record = Arc::new(record.to_owned());
        let timeout = self.inner.config.request_timeout;
        let mut tasks = JoinSet::new();
        for (index, (server, _)) in targets.iter().enumerate() {
            let link = self.link_to(*server);
            let record = record.clone();
            tasks.spawn(async move { (index, link.submit(&record, timeout).await) });
        }
        let mut results: Vec<Option<Result<ResultCode, ClientError>>> =
            targets.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, result)) = joined
                && let Some(slot) = results.get_mut(index)
            {
                *slot = Some(result);
            }
        }
        let per_server = targets
            .into_iter()
            .zip(results)
            .map(|((server, usage), result)| PublishOutcome {
                server,
                usage,
                result: result.unwrap_or(Err(ClientError::Disconnected {
                    server: ServerId::Key(server),
                })),
            })
            .collect();
        Ok(PublishReport {
            per_server,
            unreached_users,
        })
    }

    /// Fetches `author`'s records matching `filter` from the first three of
    /// their outbox servers, at most `limit` (0: as many as the servers
    /// allow). The filter gains an authors element naming `author` when it
    /// has none.
    ///
    /// The servers are queried at once; their answers are merged, each
    /// record once, newest first. A server that sends a record that does
    /// not verify or does not match the filter is dropped for this query
    /// (none of its records are used) and counted against it
    /// ([`misbehaviour`](Self::misbehaviour)). Records whose signing key is
    /// not valid for their author (`record.md` step 5: the master key or an
    /// active subkey of the author's key schedule) are left out and listed
    /// in [`FetchReport::rejected`].
    ///
    /// Fails only when the author's outboxes are unknown; a server failing
    /// is reported in [`FetchReport::per_server`].
    pub async fn fetch(
        &self,
        author: &PublicKey,
        filter: &Filter,
        limit: u16,
    ) -> Result<FetchReport, ClientError> {
        let filter = with_authors(filter, &[*author])?;
        let (records, per_server) = self.query_outboxes(author, &filter, limit).await?;
        let mut kept = Vec::with_capacity(records.len());
        let mut rejected = Vec::new();
        for record in records {
            match self.check_signer(&record).await {
                Ok(_) => kept.push(record),
                Err(problem) => {
                    debug!(id = %record.id().to_printable(), %problem, "record refused (step 5)");
                    rejected.push(Rejected {
                        id: record.id(),
                        author: record.author(),
                        signer: record.signing_key(),
                        problem,
                    });
                }
            }
        }
        Ok(FetchReport {
            records: kept,
            per_server,
            rejected,
        })
    }

    /// Queries `author`'s outboxes and merges the answers (no step 5).
    async fn query_outboxes(
        &self,
        author: &PublicKey,
        filter: &Filter,
        limit: u16,
    ) -> Result<(Vec<OwnedRecord>, Vec<(PublicKey, ServerOutcome)>), ClientError> {
        let servers = self.outboxes(author).await?;
        if servers.is_empty() {
            return Err(ClientError::NoServers);
        }
        let filter = Arc::new(filter.to_owned());
        let timeout = self.inner.config.request_timeout;
        let mut tasks = JoinSet::new();
        for (index, server) in servers.iter().enumerate() {
            let link = self.link_to(*server);
            let filter = filter.clone();
            tasks.spawn(async move { (index, run_query(&link, &filter, limit, timeout).await) });
        }
        let mut answers: Vec<Option<Answer>> = servers.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, answer)) = joined
                && let Some(slot) = answers.get_mut(index)
            {
                *slot = Some(answer);
            }
        }
        let mut lists = Vec::new();
        let mut per_server = Vec::new();
        for (server, answer) in servers.into_iter().zip(answers) {
            let answer = answer.unwrap_or_else(|| Answer {
                records: Vec::new(),
                outcome: ServerOutcome::Failed {
                    error: ClientError::Disconnected {
                        server: ServerId::Key(server),
                    },
                    records: 0,
                },
            });
            lists.push(answer.records);
            per_server.push((server, answer.outcome));
        }
        Ok((merge(lists, limit), per_server))
    }

    /// The newest record of `kind` by `author` that `read` accepts.
    async fn newest_of_kind<T>(
        &self,
        author: &PublicKey,
        kind: Kind,
        read: impl Fn(&Record) -> Option<T>,
    ) -> Result<Option<T>, ClientError> {
        let filter = FilterBuilder::new()
            .authors([*author])
            .kinds([kind])
            .build()?;
        let (records, per_server) = self.query_outboxes(author, &filter, 16).await?;
        if let Some(found) = records.iter().find_map(|r| read(r)) {
            return Ok(Some(found));
        }
        if per_server.iter().any(|(_, o)| o.is_complete()) {
            return Ok(None);
        }
        Err(ClientError::NoServerAnswered {
            tried: per_server.len(),
        })
    }

    /// The key schedule of `author`: the newest valid one on their outboxes
    /// (`None` when they publish none), cached for
    /// [`ClientConfig::key_schedule_ttl`].
    pub async fn key_schedule(
        &self,
        author: &PublicKey,
    ) -> Result<Option<KeySchedule>, ClientError> {
        Ok(self.schedule(author, None).await?.0)
    }

    /// The cached key schedule, fetched again when older than the TTL or
    /// than `max_age`; also says whether it was fetched just now.
    async fn schedule(
        &self,
        author: &PublicKey,
        max_age: Option<Duration>,
    ) -> Result<(Option<KeySchedule>, bool), ClientError> {
        let ttl = self.inner.config.key_schedule_ttl;
        let max_age = max_age.map_or(ttl, |m| m.min(ttl));
        if let Some(cached) = lock(&self.inner.schedules).get(author)
            && cached.at.elapsed() < max_age
        {
            return Ok((cached.value.clone(), false));
        }
        let found = self
            .newest_of_kind(author, Kind::KEY_SCHEDULE, |r| {
                KeySchedule::from_record(r).ok()
            })
            .await?;
        lock(&self.inner.schedules).insert(
            *author,
            Cached {
                at: Instant::now(),
                value: found.clone(),
            },
        );
        Ok((found, true))
    }

    /// `record.md` validation step 5, which only clients do: the record's
    /// signing key must be its author's master key, or a signing subkey
    /// that the author's key schedule (fetched from their outboxes and
    /// cached) lists and has not revoked for this record.
    pub async fn validate_signer(&self, record: &Record) -> Result<SignerStatus, KeyScheduleError> {
        self.check_signer(record).await
    }

    pub(crate) async fn check_signer(
        &self,
        record: &Record,
    ) -> Result<SignerStatus, KeyScheduleError> {
        if record.signing_key() == record.author() {
            return validate_record_signer(record, None, Some(now()));
        }
        let author = record.author();
        let (schedule, fresh) = self.schedule(&author, None).await.unwrap_or((None, false));
        let result = validate_record_signer(record, schedule.as_ref(), Some(now()));
        let unknown = matches!(
            result,
            Err(KeyScheduleError::NoSchedule
                | KeyScheduleError::InvalidSigner {
                    status: SignerStatus::Unknown,
                    ..
                })
        );
        if !unknown || fresh {
            return result;
        }
        // The key may be newer than the cached schedule.
        match self.schedule(&author, Some(MIN_KEY_SCHEDULE_REFRESH)).await {
            Ok((schedule, true)) => validate_record_signer(record, schedule.as_ref(), Some(now())),
            _ => result,
        }
    }

    /// The profile of `author`: the newest valid one on their outboxes
    /// (`None` when they publish none), cached for
    /// [`ClientConfig::profile_ttl`].
    pub async fn profile(&self, author: &PublicKey) -> Result<Option<Profile>, ClientError> {
        if let Some(cached) = lock(&self.inner.profiles).get(author)
            && cached.at.elapsed() < self.inner.config.profile_ttl
        {
            return Ok(cached.value.clone());
        }
        let found = self
            .newest_of_kind(author, Kind::PROFILE, |r| Profile::from_record(r).ok())
            .await?;
        lock(&self.inner.profiles).insert(
            *author,
            Cached {
                at: Instant::now(),
                value: found.clone(),
            },
        );
        Ok(found)
    }

    /// How to show `author` to a person: their profile's name with their
    /// key, like `"Alice (mopub0abcdefgh…)"`; the whole key when no profile
    /// can be had. See [`display_name`].
    pub async fn display_name(&self, author: &PublicKey) -> String {
        let profile = self.profile(author).await.ok().flatten();
        display_name(profile.as_ref(), author)
    }

    /// Subscribes to the records of `authors` matching `filter` on the
    /// first three outboxes of each (the filter gains an authors element
    /// when it has none). `limit` bounds the stored records each server
    /// sends first (0: the server's maximum). See [`Subscription`] for
    /// what arrives, and how lost connections are handled.
    pub async fn subscribe(
        &self,
        authors: &[PublicKey],
        filter: &Filter,
        limit: u16,
    ) -> Result<Subscription, ClientError> {
        subscription::start(self, authors, filter, limit).await
    }
}

/// The users a record tags, besides its author: Notify Public Key tags, and
/// the authors of records it replies to or whose thread it is in, when
/// those are named by address.
pub fn tagged_users(record: &Record) -> Vec<PublicKey> {
    let author = record.author();
    let mut users: Vec<PublicKey> = Vec::new();
    for tag in record.tags() {
        let user = match tag.parse() {
            Ok(TagValue::NotifyPublicKey(key)) => key,
            Ok(TagValue::Reply {
                reference: Reference::Address(address),
                ..
            })
            | Ok(TagValue::Root {
                reference: Reference::Address(address),
                ..
            }) => address.author(),
            _ => continue,
        };
        if user != author && !users.contains(&user) {
            users.push(user);
        }
    }
    users
}

/// How to show a user: `"Name (mopub0abcdefgh…)"` with the profile's
/// display name (or its name), else the whole printable key.
pub fn display_name(profile: Option<&Profile>, key: &PublicKey) -> String {
    let printable = key.to_printable();
    match profile {
        Some(profile) => {
            let name = profile
                .display_name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(profile.name());
            let short: String = printable.chars().take(14).collect();
            format!("{name} ({short}…)")
        }
        None => printable,
    }
}

/// What a client has counted against one server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Times it lied or broke the protocol (each time, its answer was
    /// dropped).
    pub misbehaviour: u32,
    /// Times it could not be reached, lost the connection during a request,
    /// or did not answer in time.
    pub failures: u32,
}

/// One server of the pool, for requests to it alone.
///
/// Cheap to clone; clones share the connection, which is opened again when
/// lost.
#[derive(Clone)]
pub struct ServerLink {
    link: Arc<Link>,
    request_timeout: Duration,
}

impl std::fmt::Debug for ServerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLink")
            .field("server", self.link.id())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl ServerLink {
    /// Which server this is.
    pub fn server(&self) -> &ServerId {
        self.link.id()
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.link.current().is_some()
    }

    /// What this client has seen of this server.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            misbehaviour: self.link.misbehaviour(),
            failures: self.link.failures(),
        }
    }

    /// Closes the connection; the next request opens a new one.
    pub fn disconnect(&self) {
        self.link.disconnect()
    }

    /// Submits a record to this server alone and returns its Submission
    /// Result (D-7: ACCEPTED, DUPLICATE, ...).
    pub async fn submit(&self, record: &Record) -> Result<ResultCode, ClientError> {
        self.link.submit(record, self.request_timeout).await
    }

    /// Submits many records to this server alone, in order, several at
    /// once, and returns what became of them. A TOO_FAST or
    /// TEMPORARY_ERROR answer makes it slow down and send the record again;
    /// a lost connection is opened again; neither counts as a failure
    /// unless it persists (see [`BulkOptions`]). A record the server
    /// refuses otherwise is listed in [`BulkReport::refused`] and the
    /// others still go. `progress` is called after each answer with the
    /// counts so far.
    pub async fn submit_many<R: std::borrow::Borrow<Record>>(
        &self,
        records: &[R],
        options: &BulkOptions,
        progress: impl FnMut(&BulkReport),
    ) -> BulkReport {
        crate::bulk::submit_many(&self.link, self.request_timeout, records, options, progress).await
    }

    /// Queries this server alone: the records matching `filter` in the
    /// order sent (newest first), at most `limit` (0: the server's maximum).
    /// A record that does not verify or match gives
    /// [`ClientError::Misbehaved`]; a Query Closed failure gives
    /// [`ClientError::QueryRefused`].
    pub async fn query(
        &self,
        filter: &Filter,
        limit: u16,
    ) -> Result<Vec<OwnedRecord>, ClientError> {
        let answer = run_query(&self.link, filter, limit, self.request_timeout).await;
        let server = self.link.id().clone();
        match answer.outcome {
            ServerOutcome::Complete { .. } => Ok(answer.records),
            ServerOutcome::Refused { code, .. } => Err(ClientError::QueryRefused { server, code }),
            ServerOutcome::Misbehaved { problem } => {
                Err(ClientError::Misbehaved { server, problem })
            }
            ServerOutcome::Failed { error, .. } => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{Address, Id, Nonce, OwnedTag, OwnedTagSet, RecordBuilder, SecretKey};

    #[test]
    fn tagged_users_come_from_notify_and_address_references() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let (bob, carol, dave) = (
            SecretKey::from_bytes(&[2; 32]).public(),
            SecretKey::from_bytes(&[3; 32]).public(),
            SecretKey::from_bytes(&[4; 32]).public(),
        );
        let reply_to = Address::new(Nonce::from_key(b"r"), Kind::MICROBLOG_ROOT, carol);
        let root = Address::new(Nonce::from_key(b"t"), Kind::MICROBLOG_ROOT, dave);
        let by_id = Id::from_bytes(&[0; 48]).unwrap();
        let tags = OwnedTagSet::from_tags([
            OwnedTag::notify_public_key(&bob),
            OwnedTag::notify_public_key(&alice.public()),
            OwnedTag::notify_public_key(&bob),
            OwnedTag::reply(&Reference::Address(reply_to), Kind::MICROBLOG_ROOT),
            OwnedTag::root(&Reference::Address(root), Kind::MICROBLOG_ROOT),
            OwnedTag::reply(&Reference::Id(by_id), Kind::MICROBLOG_ROOT),
        ])
        .unwrap();
        let record = RecordBuilder::new(
            Kind::REPLY_COMMENT,
            Timestamp::from_nanos(1_750_000_000_000_000_000).unwrap(),
        )
        .nonce(Nonce::from_key(b"x"))
        .tags(&tags)
        .payload(b"hi")
        .build(&alice)
        .unwrap();
        assert_eq!(tagged_users(&record), vec![bob, carol, dave]);
    }

    #[test]
    fn display_names_show_the_key() {
        let key = SecretKey::from_bytes(&[1; 32]).public();
        let printable = key.to_printable();
        assert_eq!(display_name(None, &key), printable);
        let mut profile = Profile::new("alice").unwrap();
        let shown = display_name(Some(&profile), &key);
        assert_eq!(shown, format!("alice ({}…)", &printable[..14]));
        assert!(shown.starts_with("alice (mopub0"));
        profile.display_name = Some("Alice".into());
        assert!(display_name(Some(&profile), &key).starts_with("Alice (mopub0"));
    }
}
