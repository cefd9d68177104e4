//! The server's side of the admin socket: accepts its owner's connections
//! and carries out their requests on the running server.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use mosaic_core::{Id, PublicKey, Timestamp};
use mosaic_store::{Ban, Store, StoreError};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, debug_span, info, warn};

use super::protocol::{
    Envelope, FailureCode, LiveStatus, MAX_LINE, PROTOCOL_VERSION, Request, Response, WireBan,
    WireKind, WireStats,
};
use super::socket::AdminListener;
use crate::now;
use crate::policy::Policy;
use crate::server::Shared;

/// Chunks of an export in flight between the store and the socket.
const EXPORT_CHUNKS: usize = 8;

/// Serves the admin socket until the server shuts down; then ends the
/// admin connections and removes the socket.
pub(crate) async fn serve(listener: AdminListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut connections = JoinSet::new();
    let mut next = 0u64;
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if !listener.is_owner(&stream) {
                        warn!("admin connection from another user refused");
                        continue;
                    }
                    next += 1;
                    let span = debug_span!("admin", id = next);
                    connections.spawn(connection(shared.clone(), stream).instrument(span));
                }
                Err(e) => {
                    warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    debug!(path = %listener.path().display(), "admin socket closed");
}

/// Answers one admin connection's requests in order until it hangs up.
async fn connection(shared: Arc<Shared>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        let n = match (&mut reader).take(MAX_LINE).read_line(&mut line).await {
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "admin connection failed");
                return;
            }
        };
        if n == 0 {
            return;
        }
        if !line.ends_with('\n') && n as u64 >= MAX_LINE {
            let _ = write_line(
                &mut write,
                &failure(FailureCode::Invalid, "request line too long"),
            )
            .await;
            return;
        }
        let request = match serde_json::from_str::<Envelope>(&line) {
            Ok(e) if e.version == PROTOCOL_VERSION => e.request,
            Ok(e) => {
                let message = format!(
                    "admin protocol version {} asked, this server speaks {PROTOCOL_VERSION}; use the `mosaic` of the server's version",
                    e.version
                );
                if write_line(&mut write, &failure(FailureCode::Version, &message))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Err(e) => {
                let message = format!("not a request of admin protocol {PROTOCOL_VERSION}: {e}");
                if write_line(&mut write, &failure(FailureCode::Version, &message))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        debug!(?request, "admin request");
        let written = match request {
            Request::Export => export(&shared, &mut write).await,
            other => {
                let response = answer(&shared, other).await;
                write_line(&mut write, &response).await
            }
        };
        if written.is_err() {
            return;
        }
    }
}

async fn write_line(write: &mut OwnedWriteHalf, value: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.flush().await
}

fn failure(code: FailureCode, message: &str) -> Response {
    Response::Error {
        code,
        message: message.to_owned(),
    }
}

/// A refusal on its way to the client.
struct Failure(FailureCode, String);

impl Failure {
    fn invalid(message: String) -> Failure {
        Failure(FailureCode::Invalid, message)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        warn!(error = %e, "admin request failed in the store");
        Failure(FailureCode::Store, format!("the store failed: {e}"))
    }
}

fn parse_key(text: &str) -> Result<PublicKey, Failure> {
    PublicKey::from_printable(text.trim()).map_err(|e| {
        Failure::invalid(format!(
            "{text:?} is not a public key: {e}; give a key as mopub0..."
        ))
    })
}

fn parse_ban(until: Option<u64>) -> Result<Ban, Failure> {
    let Some(nanos) = until else {
        return Ok(Ban::Permanent);
    };
    let end = Timestamp::from_nanos(nanos)
        .map_err(|e| Failure::invalid(format!("the ban's end {nanos} is not a time: {e}")))?;
    if end <= now() {
        return Err(Failure::invalid(format!(
            "the ban's end {end} is not in the future"
        )));
    }
    Ok(Ban::Until(end))
}

fn wire_ban(target: String, ban: &Ban) -> WireBan {
    WireBan {
        target,
        until: match ban {
            Ban::Permanent => None,
            Ban::Until(t) => Some(t.as_nanos()),
        },
    }
}

/// Runs `work` on the store and the policy in the blocking pool.
async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&Store, &Policy) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Failure> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || work(&shared.store, &shared.policy))
        .await
        .map_err(|_| Failure(FailureCode::ShuttingDown, "the server is stopping".into()))?
        .map_err(Failure::from)
}

/// Adds or removes served users (`change` is the policy's method), each
/// key parsed first; whether each changed anything.
async fn change_users(
    shared: &Arc<Shared>,
    keys: &[String],
    change: fn(&Policy, &Store, PublicKey) -> Result<bool, StoreError>,
) -> Result<Vec<bool>, Failure> {
    let keys = keys
        .iter()
        .map(|k| parse_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    blocking(shared, move |store, policy| {
        keys.iter().map(|k| change(policy, store, *k)).collect()
    })
    .await
}

/// Closes the live connections a ban names, and their subscriptions;
/// returns how many.
pub(crate) fn enforce_bans(shared: &Shared) -> usize {
    // Each closed session ends its subscriptions as it ends, with its
    // delivery task.
    shared.live.enforce(&shared.policy, now()).len()
}

async fn answer(shared: &Arc<Shared>, request: Request) -> Response {
    match run(shared, request).await {
        Ok(response) => response,
        Err(Failure(code, message)) => Response::Error { code, message },
    }
}

async fn run(shared: &Arc<Shared>, request: Request) -> Result<Response, Failure> {
    Ok(match request {
        Request::BanKey { key, until } => {
            let key = parse_key(&key)?;
            let ban = parse_ban(until)?;
            blocking(shared, move |store, policy| policy.ban_key(store, key, ban)).await?;
            let closed = enforce_bans(shared);
            info!(%key, ?ban, closed, "key banned");
            Response::Banned { closed }
        }
        Request::BanIp { ip, until } => {
            let ban = parse_ban(until)?;
            blocking(shared, move |store, policy| policy.ban_ip(store, ip, ban)).await?;
            let closed = enforce_bans(shared);
            info!(%ip, ?ban, closed, "address banned");
            Response::Banned { closed }
        }
        Request::UnbanKey { key } => {
            let key = parse_key(&key)?;
            let was = blocking(shared, move |store, policy| policy.unban_key(store, key)).await?;
            info!(%key, was, "key unbanned");
            Response::Changed { changed: vec![was] }
        }
        Request::UnbanIp { ip } => {
            let was = blocking(shared, move |store, policy| policy.unban_ip(store, ip)).await?;
            info!(%ip, was, "address unbanned");
            Response::Changed { changed: vec![was] }
        }
        Request::Bans => {
            let moderation = shared.policy.moderation();
            Response::Bans {
                keys: moderation
                    .banned_keys
                    .iter()
                    .map(|(k, b)| wire_ban(k.to_printable(), b))
                    .collect(),
                ips: moderation
                    .banned_ips
                    .iter()
                    .map(|(ip, b)| wire_ban(ip.to_string(), b))
                    .collect(),
            }
        }
        Request::Remove { ids } => {
            let ids = ids
                .iter()
                .map(|text| {
                    Id::from_printable(text.trim()).map_err(|e| {
                        Failure::invalid(format!(
                            "{text:?} is not a record id: {e}; give ids as moref0..."
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let changed = blocking(shared, move |store, _| {
                ids.iter().map(|id| store.remove(id)).collect()
            })
            .await?;
            info!(removed = ?changed, "records removed");
            Response::Changed { changed }
        }
        Request::AddUsers { keys } => {
            let changed = change_users(shared, &keys, Policy::add_served_user).await?;
            info!(added = ?changed, "served users added");
            Response::Changed { changed }
        }
        Request::RemoveUsers { keys } => {
            let changed = change_users(shared, &keys, Policy::remove_served_user).await?;
            info!(removed = ?changed, "served users removed");
            Response::Changed { changed }
        }
        Request::Users => Response::Users {
            keys: shared
                .policy
                .moderation()
                .served_users
                .iter()
                .map(PublicKey::to_printable)
                .collect(),
        },
        Request::Stats => {
            let stats = blocking(shared, |store, _| store.stats()).await?;
            let status = shared.status();
            Response::Stats {
                store: WireStats {
                    records: stats.records,
                    record_bytes: stats.record_bytes,
                    kinds: stats
                        .kinds
                        .iter()
                        .map(|k| WireKind {
                            kind: u64::from_be_bytes(k.kind.to_be_bytes()),
                            records: k.records,
                            bytes: k.bytes,
                        })
                        .collect(),
                    blobs: stats.blobs,
                    blob_bytes: stats.blob_bytes,
                    file_bytes: stats.file_bytes,
                },
                live: LiveStatus {
                    server_key: status.server_key,
                    version: status.version.to_owned(),
                    uptime_s: status.uptime_s,
                    connections: status.connections,
                    sessions: shared.live.len(),
                    subscriptions: status.subscriptions,
                },
            }
        }
        // Streamed by `export`.
        Request::Export => return Err(Failure::invalid("export is streamed".into())),
    })
}

/// Hands the export's bytes from the blocking pool to the socket, a chunk
/// at a time; fails (ending the export) when the socket side has gone.
struct ChunkWriter(mpsc::Sender<Vec<u8>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(buf.to_vec())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams every record to the client in the export format, from one
/// snapshot, with at most a few chunks in memory.
async fn export(shared: &Arc<Shared>, write: &mut OwnedWriteHalf) -> std::io::Result<()> {
    write_line(write, &Response::Export).await?;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(EXPORT_CHUNKS);
    let store = shared.store.clone();
    let job = tokio::task::spawn_blocking(move || store.export(ChunkWriter(tx), |_| {}));
    let mut sent = Ok(());
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = write.write_all(&chunk).await {
            sent = Err(e);
            break;
        }
    }
    // Dropping the receiver stops a blocked export.
    drop(rx);
    let outcome = job.await;
    sent?;
    write.write_all(&0u32.to_le_bytes()).await?;
    let trailer = match outcome {
        Ok(Ok(records)) => {
            info!(records, "export through the admin socket done");
            Response::Exported { records }
        }
        Ok(Err(e)) => {
            let Failure(code, message) = Failure::from(e);
            Response::Error { code, message }
        }
        Err(_) => failure(FailureCode::ShuttingDown, "the server is stopping"),
    };
    write_line(write, &trailer).await
}
