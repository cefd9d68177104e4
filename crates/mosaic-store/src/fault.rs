//! Fault injection (feature `fault-injection`): making a real store fail on
//! command, so that its callers' error paths can be tested.
//!
//! The faults act where transactions begin and end, on the real database:
//! there is no mock backend. A failed call returns an ordinary
//! [`StoreError::Io`] whose message says the fault was injected.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::StoreError;
use crate::store::Store;

/// A failure to inject into a [`Store`] with [`Store::inject`]. Each stays
/// in force until [`Store::clear_faults`]; several can be in force at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// Every following write (`insert`, `insert_batch`, `remove`,
    /// `remove_batch`, `put_blob`, `remove_blob`, the moderation writes,
    /// `import`) fails before anything is written: nothing changes on
    /// disk. The error is an I/O error of kind
    /// [`Other`](std::io::ErrorKind::Other), so it is not
    /// [transient](StoreError::is_transient).
    FailCommits,
    /// As [`FailCommits`](Self::FailCommits), with an I/O error of kind
    /// [`TimedOut`](std::io::ErrorKind::TimedOut), which is
    /// [transient](StoreError::is_transient): a disk that is slow for a
    /// while.
    FailCommitsTransiently,
    /// Every following write runs its transaction to the end, committing
    /// it durably (or dropping it when it has nothing to store), and then
    /// reports an I/O error of kind [`Other`](std::io::ErrorKind::Other).
    /// This models an `fsync` error whose outcome the caller cannot know:
    /// the write did happen.
    FailCommitsAfterWrite,
    /// Every following read (`get`, `contains`, `latest`, `versions`,
    /// `query`, `query_after`, `blob`, `stats`, `moderation`, `export`)
    /// fails before reading, with an I/O error of kind
    /// [`Other`](std::io::ErrorKind::Other). Iterators opened before keep
    /// working.
    FailReads,
}

impl Fault {
    fn bit(self) -> u8 {
        match self {
            Fault::FailCommits => 1,
            Fault::FailCommitsTransiently => 2,
            Fault::FailCommitsAfterWrite => 4,
            Fault::FailReads => 8,
        }
    }

    fn error(self) -> StoreError {
        let (kind, what) = match self {
            Fault::FailCommits => (std::io::ErrorKind::Other, "writes fail"),
            Fault::FailCommitsTransiently => {
                (std::io::ErrorKind::TimedOut, "writes fail transiently")
            }
            Fault::FailCommitsAfterWrite => {
                (std::io::ErrorKind::Other, "writes fail after their commit")
            }
            Fault::FailReads => (std::io::ErrorKind::Other, "reads fail"),
        };
        StoreError::Io(std::io::Error::new(
            kind,
            format!("injected fault: {what}; call Store::clear_faults to end it"),
        ))
    }
}

/// The faults in force in one store.
#[derive(Debug, Default)]
pub(crate) struct Faults(AtomicU8);

impl Faults {
    fn check(&self, faults: &[Fault]) -> Result<(), StoreError> {
        let set = self.0.load(Ordering::SeqCst);
        match faults.iter().find(|f| set & f.bit() != 0) {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }

    /// Called before a write transaction begins.
    pub(crate) fn before_write(&self) -> Result<(), StoreError> {
        self.check(&[Fault::FailCommits, Fault::FailCommitsTransiently])
    }

    /// Called after a write transaction committed or was dropped.
    pub(crate) fn after_write(&self) -> Result<(), StoreError> {
        self.check(&[Fault::FailCommitsAfterWrite])
    }

    /// Called before a read transaction begins.
    pub(crate) fn before_read(&self) -> Result<(), StoreError> {
        self.check(&[Fault::FailReads])
    }
}

impl Store {
    /// Puts `fault` in force: the store's following calls fail as it
    /// describes, until [`clear_faults`](Self::clear_faults). Calls
    /// already running are not affected.
    pub fn inject(&self, fault: Fault) {
        self.faults.0.fetch_or(fault.bit(), Ordering::SeqCst);
    }

    /// Ends every injected fault: the store works normally again.
    pub fn clear_faults(&self) {
        self.faults.0.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests;
