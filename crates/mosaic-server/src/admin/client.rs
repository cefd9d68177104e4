//! [`AdminClient`]: the owner's end of the admin socket.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::path::Path;

use mosaic_core::{HEADER_LEN, Id, Kind, MAX_RECORD_LEN, PublicKey, Timestamp};
use mosaic_store::{Ban, KindStats, StoreStats};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::AdminError;
use super::protocol::{
    Envelope, LiveStatus, MAX_LINE, PROTOCOL_VERSION, Request, Response, WireBan,
};

/// The bans in force on a server (expired temporary bans included until
/// they are lifted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BanList {
    /// Banned keys.
    pub keys: BTreeMap<PublicKey, Ban>,
    /// Banned addresses.
    pub ips: BTreeMap<IpAddr, Ban>,
}

/// What [`AdminClient::stats`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminStats {
    /// The store's counts, as [`Store::stats`](mosaic_store::Store::stats)
    /// gives them.
    pub store: StoreStats,
    /// The server's live state.
    pub live: LiveStatus,
}

/// A connection to a running server's admin socket.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use mosaic_server::AdminClient;
///
/// let mut admin = AdminClient::connect("/var/lib/mosaic/admin.sock").await?;
/// let stats = admin.stats().await?;
/// println!("{} records, {} connections", stats.store.records, stats.live.connections);
/// # Ok(())
/// # }
/// ```
pub struct AdminClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl AdminClient {
    /// Connects to the socket at `path`. [`AdminError::NotRunning`] when no
    /// server answers there (no socket, or a stale one).
    pub async fn connect(path: impl AsRef<Path>) -> Result<AdminClient, AdminError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| AdminError::NotRunning {
                path: path.to_path_buf(),
                source,
            })?;
        let (read, writer) = stream.into_split();
        Ok(AdminClient {
            reader: BufReader::new(read),
            writer,
        })
    }

    async fn send(&mut self, request: Request) -> Result<(), AdminError> {
        let mut line = serde_json::to_vec(&Envelope {
            version: PROTOCOL_VERSION,
            request,
        })?;
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        self.writer.flush().await?;
        Ok(())
    }

    async fn receive(&mut self) -> Result<Response, AdminError> {
        let mut line = String::new();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Err(AdminError::Io(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "the server closed the admin connection",
            )));
        }
        match serde_json::from_str(&line)? {
            Response::Error { code, message } => Err(AdminError::Refused { code, message }),
            response => Ok(response),
        }
    }

    async fn call(&mut self, request: Request) -> Result<Response, AdminError> {
        self.send(request).await?;
        self.receive().await
    }

    async fn changed(
        &mut self,
        request: Request,
        expected: usize,
    ) -> Result<Vec<bool>, AdminError> {
        match self.call(request).await? {
            Response::Changed { changed } if changed.len() == expected => Ok(changed),
            _ => Err(unexpected("a list of changes")),
        }
    }

    async fn banned(&mut self, request: Request) -> Result<usize, AdminError> {
        match self.call(request).await? {
            Response::Banned { closed } => Ok(closed),
            _ => Err(unexpected("a ban")),
        }
    }

    /// Bans a key (a master key, or a subkey) at once: its live
    /// connections (as the key, or through it as a subkey, or through a
    /// subkey of it) get Closing with the ban's code. Returns how many
    /// connections were closed.
    pub async fn ban_key(&mut self, key: &PublicKey, ban: Ban) -> Result<usize, AdminError> {
        self.banned(Request::BanKey {
            key: key.to_printable(),
            until: until(ban),
        })
        .await
    }

    /// Lifts a key's ban; whether it was banned.
    pub async fn unban_key(&mut self, key: &PublicKey) -> Result<bool, AdminError> {
        let request = Request::UnbanKey {
            key: key.to_printable(),
        };
        Ok(self.changed(request, 1).await?[0])
    }

    /// Bans an address at once: its live connections get Closing with the
    /// ban's code. Returns how many were closed.
    pub async fn ban_ip(&mut self, ip: IpAddr, ban: Ban) -> Result<usize, AdminError> {
        self.banned(Request::BanIp {
            ip,
            until: until(ban),
        })
        .await
    }

    /// Lifts an address's ban; whether it was banned.
    pub async fn unban_ip(&mut self, ip: IpAddr) -> Result<bool, AdminError> {
        Ok(self.changed(Request::UnbanIp { ip }, 1).await?[0])
    }

    /// The bans.
    pub async fn bans(&mut self) -> Result<BanList, AdminError> {
        let Response::Bans { keys, ips } = self.call(Request::Bans).await? else {
            return Err(unexpected("the bans"));
        };
        let mut list = BanList::default();
        for entry in keys {
            let key =
                PublicKey::from_printable(&entry.target).map_err(|_| unexpected("a banned key"))?;
            list.keys.insert(key, ban(&entry)?);
        }
        for entry in ips {
            let ip = entry
                .target
                .parse()
                .map_err(|_| unexpected("a banned address"))?;
            list.ips.insert(ip, ban(&entry)?);
        }
        Ok(list)
    }

    /// Removes records by id at once (Get and Query no longer find them);
    /// for each, whether it was stored.
    pub async fn remove(&mut self, ids: &[Id]) -> Result<Vec<bool>, AdminError> {
        let request = Request::Remove {
            ids: ids.iter().map(Id::to_printable).collect(),
        };
        self.changed(request, ids.len()).await
    }

    /// Adds served users; for each, whether it was not served before.
    pub async fn add_users(&mut self, keys: &[PublicKey]) -> Result<Vec<bool>, AdminError> {
        let request = Request::AddUsers {
            keys: keys.iter().map(PublicKey::to_printable).collect(),
        };
        self.changed(request, keys.len()).await
    }

    /// Removes served users; for each, whether it was served.
    pub async fn remove_users(&mut self, keys: &[PublicKey]) -> Result<Vec<bool>, AdminError> {
        let request = Request::RemoveUsers {
            keys: keys.iter().map(PublicKey::to_printable).collect(),
        };
        self.changed(request, keys.len()).await
    }

    /// The served users.
    pub async fn users(&mut self) -> Result<BTreeSet<PublicKey>, AdminError> {
        let Response::Users { keys } = self.call(Request::Users).await? else {
            return Err(unexpected("the served users"));
        };
        keys.iter()
            .map(|k| PublicKey::from_printable(k).map_err(|_| unexpected("a served user")))
            .collect()
    }

    /// The store's counts and the server's live state.
    pub async fn stats(&mut self) -> Result<AdminStats, AdminError> {
        let Response::Stats { store, live } = self.call(Request::Stats).await? else {
            return Err(unexpected("statistics"));
        };
        Ok(AdminStats {
            store: StoreStats {
                records: store.records,
                record_bytes: store.record_bytes,
                kinds: store
                    .kinds
                    .iter()
                    .map(|k| KindStats {
                        kind: Kind::from_be_bytes(k.kind.to_be_bytes()),
                        records: k.records,
                        bytes: k.bytes,
                    })
                    .collect(),
                blobs: store.blobs,
                blob_bytes: store.blob_bytes,
                file_bytes: store.file_bytes,
            },
            live,
        })
    }

    /// Writes every record to `out` in the export format (the same bytes
    /// as [`Store::export`](mosaic_store::Store::export) on the same
    /// records), from one snapshot of the running server's store, record by
    /// record. `progress` is called with the count so far, every 1,024
    /// records and at the end. Returns the number of records.
    pub async fn export(
        &mut self,
        mut out: impl Write,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, AdminError> {
        match self.call(Request::Export).await? {
            Response::Export => {}
            _ => return Err(unexpected("an export")),
        }
        let mut written = 0u64;
        let mut record = Vec::new();
        loop {
            let mut len = [0u8; 4];
            self.reader.read_exact(&mut len).await?;
            let n = u32::from_le_bytes(len) as usize;
            if n == 0 {
                break;
            }
            if !(HEADER_LEN..=MAX_RECORD_LEN).contains(&n) {
                return Err(unexpected("a record frame"));
            }
            record.resize(n, 0);
            self.reader.read_exact(&mut record).await?;
            out.write_all(&len)?;
            out.write_all(&record)?;
            written += 1;
            if written.is_multiple_of(1024) {
                progress(written);
            }
        }
        out.flush()?;
        progress(written);
        match self.receive().await? {
            Response::Exported { records } if records == written => Ok(written),
            _ => Err(unexpected("the end of the export")),
        }
    }
}

fn until(ban: Ban) -> Option<u64> {
    match ban {
        Ban::Permanent => None,
        Ban::Until(t) => Some(t.as_nanos()),
    }
}

fn ban(entry: &WireBan) -> Result<Ban, AdminError> {
    match entry.until {
        None => Ok(Ban::Permanent),
        Some(n) => Timestamp::from_nanos(n)
            .map(Ban::Until)
            .map_err(|_| unexpected("a ban's end")),
    }
}

fn unexpected(what: &'static str) -> AdminError {
    AdminError::Protocol { what }
}
