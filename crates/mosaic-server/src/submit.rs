//! One submission, from its bytes to its answer: verified in the
//! verification stage (`verifier.rs`), judged by the policy, committed (or,
//! for an ephemeral record, offered to the live subscriptions) and
//! answered. Each submission runs in its own task, so a client can pipeline
//! many and the session reads on.

use std::sync::Arc;

use mosaic_core::{
    IdPrefix, Kind, Message, MessageError, OwnedRecord, PublicKey, ResultCode, Timestamp,
};
use mosaic_net::{Bytes, Sender};
use mosaic_store::InsertOutcome;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, warn};

use crate::error::store_code;
use crate::now;
use crate::server::Shared;

/// The 32 bytes at `[8..40]` of a message: a submitted record's id prefix,
/// or a BLOB's hash (zeros when the message is too short).
pub(crate) fn bytes_8_40(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Some(b) = bytes.get(8..40) {
        out.copy_from_slice(b);
    }
    out
}

/// The id prefix a Submission message's record claims, before the record
/// is checked (zeros when it is no valid prefix), to answer it by.
pub(crate) fn claimed_prefix(frame: &[u8]) -> IdPrefix {
    IdPrefix::from_bytes(&bytes_8_40(frame)).unwrap_or(IdPrefix::ZERO)
}

/// A submitted record, before or after its signature was checked.
pub(crate) enum Submitted {
    /// A whole Submission message whose record is still to be verified.
    Unverified(Bytes),
    /// A record the decoder verified.
    Verified(OwnedRecord),
}

/// What a submission needs of its connection.
pub(crate) struct Writer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sender: Sender,
    /// The key the connection reads and writes as.
    pub(crate) reader: Option<PublicKey>,
}

impl Writer {
    async fn answer(&self, code: ResultCode, id_prefix: IdPrefix) {
        let reply = Message::SubmissionResult { code, id_prefix };
        self.shared.metrics.message_sent(&reply);
        let _ = self.sender.send(&reply).await;
    }

    /// Takes a submission to its answer. `permit` holds its bytes in the
    /// server-wide budget until the commit has answered.
    pub(crate) async fn submit(self, submitted: Submitted, permit: Option<OwnedSemaphorePermit>) {
        let record = match submitted {
            Submitted::Verified(record) => record,
            Submitted::Unverified(frame) => {
                let prefix = claimed_prefix(&frame);
                match self.shared.verifier.verify(frame).await {
                    Some(Ok(record)) => record,
                    Some(Err(e)) => {
                        debug!(error = %e, "invalid record submitted");
                        self.shared.metrics.signature_failed();
                        let code = MessageError::Record(e).result_code();
                        return self.answer(code, prefix).await;
                    }
                    None => return self.answer(ResultCode::SHUTTING_DOWN, prefix).await,
                }
            }
        };
        let prefix = IdPrefix::from_id(&record.id());
        let received_at = now();
        if let Some(code) = self.refuse(&record, received_at).await {
            return self.answer(code, prefix).await;
        }
        // A connection authenticated through a subkey reads and writes as
        // its master (`reader` is the master then).
        if record.flags().is_from_author() && self.reader != Some(record.author()) {
            return self
                .answer(ResultCode::REQUIRES_AUTHENTICATION, prefix)
                .await;
        }
        let record = Arc::new(record);
        if record.kind().duplicate_handling().is_ephemeral() {
            let delivery = self.shared.config().limits.delivery();
            let delivered = self.shared.registry.publish(&record, received_at, delivery);
            let code = if delivered > 0 {
                self.shared.metrics.records_accepted(1);
                ResultCode::ACCEPTED
            } else {
                ResultCode::NO_CONSUMERS
            };
            return self.answer(code, prefix).await;
        }
        let outcome = self
            .shared
            .committer
            .submit(record.clone(), received_at)
            .await;
        // The bytes are no longer in flight once the commit has answered,
        // even if the client is slow to read the answer.
        drop(permit);
        let code = match outcome {
            Ok(InsertOutcome::Inserted | InsertOutcome::Replaced { .. }) => {
                let policy = &self.shared.policy;
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
            Err(failure) => failure.code(),
        };
        drop(record);
        self.answer(code, prefix).await;
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
                Some(store_code(&e))
            }
            Err(_) => Some(ResultCode::TEMPORARY_ERROR),
        }
    }
}
