//! What [`publish`](crate::Client::publish) and
//! [`fetch`](crate::Client::fetch) report, server by server.

use mosaic_core::{Id, KeyScheduleError, OwnedRecord, PublicKey, ResultCode, ServerUsage};

use crate::{ClientError, Misbehaviour};

/// The outcome of a publication, per server.
#[derive(Debug)]
#[non_exhaustive]
pub struct PublishReport {
    /// Each server the record was submitted to, in order: the author's
    /// outboxes first, then the tagged users' inboxes.
    pub per_server: Vec<PublishOutcome>,
    /// Tagged users whose inboxes could not be found, and why.
    pub unreached_users: Vec<(PublicKey, ClientError)>,
}

impl PublishReport {
    /// How many servers hold the record now (answered ACCEPTED or
    /// DUPLICATE).
    pub fn stored_on(&self) -> usize {
        self.per_server.iter().filter(|o| o.is_stored()).count()
    }

    /// The outcome at one server, if the record was submitted there.
    pub fn outcome(&self, server: &PublicKey) -> Option<&PublishOutcome> {
        self.per_server.iter().find(|o| &o.server == server)
    }
}

/// The outcome of a publication at one server.
#[derive(Debug)]
#[non_exhaustive]
pub struct PublishOutcome {
    /// The server.
    pub server: PublicKey,
    /// Why it was chosen: OUTBOX (the author's), INBOX (a tagged user's),
    /// or both.
    pub usage: ServerUsage,
    /// The server's Submission Result, or why there is none.
    pub result: Result<ResultCode, ClientError>,
}

impl PublishOutcome {
    /// Whether the server holds the record (ACCEPTED or DUPLICATE).
    pub fn is_stored(&self) -> bool {
        matches!(self.result, Ok(code) if code == ResultCode::ACCEPTED || code == ResultCode::DUPLICATE)
    }
}

/// The outcome of a fetch: the records, and what each server did.
#[derive(Debug)]
#[non_exhaustive]
pub struct FetchReport {
    /// The records, newest first (ties by id, D-5), each once, every one
    /// verified, matching the filter, and signed by a valid key (`record.md`
    /// step 5).
    pub records: Vec<OwnedRecord>,
    /// What each server queried did, in the bootstrap's order.
    pub per_server: Vec<(PublicKey, ServerOutcome)>,
    /// Records dropped because their signing key is not valid for their
    /// author (step 5). Servers need not check this, so it is not held
    /// against them.
    pub rejected: Vec<Rejected>,
}

impl FetchReport {
    /// The outcome at one server, if it was queried.
    pub fn outcome(&self, server: &PublicKey) -> Option<&ServerOutcome> {
        self.per_server
            .iter()
            .find(|(s, _)| s == server)
            .map(|(_, o)| o)
    }
}

/// What one server did with a query.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerOutcome {
    /// It answered in full (Query Closed SUCCESS).
    Complete {
        /// How many records it sent.
        records: usize,
    },
    /// It closed the query with a failure code (TOO_OPEN, UNAUTHORIZED,
    /// ...). The records it sent before are kept.
    Refused {
        /// The Query Closed code.
        code: ResultCode,
        /// How many records it sent.
        records: usize,
    },
    /// It lied or broke the protocol: everything it sent for this query was
    /// dropped, and this was counted against it.
    Misbehaved {
        /// What it did.
        problem: Misbehaviour,
    },
    /// It could not be reached, the connection was lost, or it did not
    /// answer in time. The records it sent before are kept.
    Failed {
        /// What went wrong.
        error: ClientError,
        /// How many records it sent.
        records: usize,
    },
}

impl ServerOutcome {
    /// Whether the server answered the query in full.
    pub fn is_complete(&self) -> bool {
        matches!(self, ServerOutcome::Complete { .. })
    }
}

/// A record dropped because its signing key is not valid for its author.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejected {
    /// The record's id.
    pub id: Id,
    /// Its author.
    pub author: PublicKey,
    /// The key that signed it.
    pub signer: PublicKey,
    /// Why the signer is not valid.
    pub problem: KeyScheduleError,
}
