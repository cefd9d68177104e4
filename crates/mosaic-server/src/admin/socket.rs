//! Binding the admin socket safely: owner-only from its first moment, a
//! stale socket replaced, a live one refused.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{UnixListener, UnixStream};
use tracing::{info, warn};

use super::AdminError;

/// A bound admin socket, removed from the directory when dropped (if it is
/// still the one this server made).
pub(crate) struct AdminListener {
    pub(crate) listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file, to remove only our own.
    identity: (u64, u64),
    /// The uid owning the socket: this process's.
    pub(crate) uid: u32,
}

impl AdminListener {
    /// Where the socket is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a connecting peer is the socket's owner.
    pub(crate) fn is_owner(&self, stream: &UnixStream) -> bool {
        match stream.peer_cred() {
            Ok(cred) => cred.uid() == self.uid,
            Err(e) => {
                warn!(error = %e, "cannot read the admin peer's credentials: refused");
                false
            }
        }
    }
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the admin socket at `path` (mode 0600). Must be called within a
/// Tokio runtime.
///
/// The socket is bound inside a fresh directory of mode 0700 beside `path`,
/// given mode 0600, and renamed onto `path`; so it is never reachable by
/// anyone else, whatever the umask. A socket already at `path` that nobody
/// answers on (left by a killed server) is replaced; one that answers is
/// refused with [`AdminError::InUse`].
pub(crate) fn bind(path: &Path) -> Result<AdminListener, AdminError> {
    let path = path.to_path_buf();
    let bind_error = |source| AdminError::Bind {
        path: path.clone(),
        source,
    };
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(&path) {
                Ok(_) => return Err(AdminError::InUse { path }),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    info!(path = %path.display(), "replacing a stale admin socket");
                }
                Err(e) => return Err(bind_error(e)),
            }
        }
        Ok(_) => return Err(AdminError::NotASocket { path }),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(bind_error(e)),
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let private = parent.join(format!(
        ".admin.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(bind_error)?;
    let staged = private.join("s");
    let bound = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, &path)?;
        Ok(listener)
    })();
    // The directory is empty once the socket moved out (or failed to).
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    let listener = bound.map_err(bind_error)?;
    let meta = std::fs::symlink_metadata(&path).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let listener = UnixListener::from_std(listener).map_err(bind_error)?;
    info!(path = %path.display(), "admin socket ready");
    Ok(AdminListener {
        listener,
        identity: (meta.dev(), meta.ino()),
        uid: meta.uid(),
        path,
    })
}
