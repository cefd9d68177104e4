//! Running one query on one server and checking what comes back; merging
//! the answers of several servers.

use std::collections::HashMap;
use std::time::Duration;

use mosaic_core::{Filter, FilterBuilder, FilterError, OwnedFilter, OwnedRecord, PublicKey};
use tracing::warn;

use crate::link::{Link, QueryEvent};
use crate::{ClientError, Misbehaviour, ServerOutcome};

/// What one server answered.
pub(crate) struct Answer {
    /// The records kept (none when the server misbehaved).
    pub(crate) records: Vec<OwnedRecord>,
    pub(crate) outcome: ServerOutcome,
}

/// Runs `filter` as a Query on `link`'s server. Every record must match the
/// filter, and there may be no more than `limit` (when not 0); otherwise the
/// server is counted as misbehaving and everything it sent is dropped.
/// `timeout` bounds each wait for the server.
pub(crate) async fn run_query(
    link: &Link,
    filter: &Filter,
    limit: u16,
    timeout: Duration,
) -> Answer {
    let failed = |error, records: Vec<OwnedRecord>| Answer {
        outcome: ServerOutcome::Failed {
            error,
            records: records.len(),
        },
        records,
    };
    let live = match link.connection().await {
        Ok(live) => live,
        Err(error) => return failed(error, Vec::new()),
    };
    let lost = |error, records| {
        link.count_failure();
        failed(error, records)
    };
    let mut route = match live.query(filter, limit, false).await {
        Ok(route) => route,
        Err(error) => return lost(error, Vec::new()),
    };
    let mut records = Vec::new();
    loop {
        let event = match tokio::time::timeout(timeout, route.next()).await {
            Ok(event) => event,
            Err(_) => {
                let error = ClientError::Timeout {
                    server: link.id().clone(),
                };
                return lost(error, records);
            }
        };
        let problem = match event {
            None => return lost(route.lost_error(), records),
            Some(QueryEvent::Closed(code)) => {
                let n = records.len();
                let outcome = if code.is_success() {
                    ServerOutcome::Complete { records: n }
                } else {
                    ServerOutcome::Refused { code, records: n }
                };
                return Answer { records, outcome };
            }
            Some(QueryEvent::LocallyComplete) => continue,
            Some(QueryEvent::Invalid(error)) => Misbehaviour::InvalidRecord { error },
            Some(QueryEvent::Record(record)) => {
                if !filter.matches_record(&record) {
                    Misbehaviour::FilterMismatch { id: record.id() }
                } else if limit != 0 && records.len() >= usize::from(limit) {
                    Misbehaviour::OverLimit { limit }
                } else {
                    records.push(record);
                    continue;
                }
            }
        };
        warn!(server = %link.id(), %problem, "server misbehaved; its answer is dropped");
        link.count_misbehaviour();
        return Answer {
            records: Vec::new(),
            outcome: ServerOutcome::Misbehaved { problem },
        };
    }
}

/// `filter` with an authors element listing `authors`, unless it already
/// has one.
pub(crate) fn with_authors(
    filter: &Filter,
    authors: &[PublicKey],
) -> Result<OwnedFilter, FilterError> {
    if filter.authors().is_some() || authors.is_empty() {
        return Ok(filter.to_owned());
    }
    let element = FilterBuilder::new()
        .authors(authors.iter().copied())
        .build()?;
    let mut bytes = filter.as_bytes().to_vec();
    // Both start with the 8-byte filter header; append the new element.
    bytes.extend_from_slice(element.as_bytes().get(8..).unwrap_or_default());
    let len = u16::try_from(bytes.len()).map_err(|_| FilterError::TooLong { len: bytes.len() })?;
    if let Some(header) = bytes.get_mut(..2) {
        header.copy_from_slice(&len.to_le_bytes());
    }
    OwnedFilter::from_vec(bytes)
}

/// Merges the records of several servers: each id once, newest first, ties
/// by id descending (D-5), at most `limit` (0: all).
pub(crate) fn merge(lists: Vec<Vec<OwnedRecord>>, limit: u16) -> Vec<OwnedRecord> {
    let mut by_id = HashMap::new();
    for record in lists.into_iter().flatten() {
        by_id.entry(record.id()).or_insert(record);
    }
    let mut records: Vec<OwnedRecord> = by_id.into_values().collect();
    records.sort_by(|a, b| {
        b.timestamp()
            .cmp(&a.timestamp())
            .then_with(|| b.id().cmp(&a.id()))
    });
    if limit != 0 {
        records.truncate(usize::from(limit));
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::{Kind, Nonce, RecordBuilder, SecretKey, Timestamp};

    fn record(key: &SecretKey, t: u64, kind: Kind) -> OwnedRecord {
        RecordBuilder::new(kind, Timestamp::from_nanos(t).unwrap())
            .nonce(Nonce::from_key(&t.to_be_bytes()))
            .payload(b"x")
            .build(key)
            .unwrap()
    }

    #[test]
    fn authors_are_added_only_when_absent() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let bob = SecretKey::from_bytes(&[2; 32]);
        let by_kind = FilterBuilder::new()
            .kinds([Kind::MICROBLOG_ROOT])
            .build()
            .unwrap();
        let f = with_authors(&by_kind, &[alice.public()]).unwrap();
        let authors: Vec<_> = f.authors().unwrap().iter().collect();
        assert_eq!(authors, vec![alice.public()]);
        assert!(f.kinds().unwrap().contains(Kind::MICROBLOG_ROOT));
        assert!(f.matches_record(&record(&alice, 5, Kind::MICROBLOG_ROOT)));
        assert!(!f.matches_record(&record(&bob, 5, Kind::MICROBLOG_ROOT)));
        assert!(!f.matches_record(&record(&alice, 5, Kind::BLOG_POST)));

        // An authors element already there is left alone.
        let by_bob = FilterBuilder::new()
            .authors([bob.public()])
            .build()
            .unwrap();
        assert_eq!(with_authors(&by_bob, &[alice.public()]).unwrap(), by_bob);
        // The empty filter gains one.
        let empty = OwnedFilter::empty();
        let f = with_authors(&empty, &[alice.public(), bob.public()]).unwrap();
        assert_eq!(f.authors().unwrap().len(), 2);
        assert!(f.is_narrow());
    }

    #[test]
    fn merge_dedups_and_orders_newest_first() {
        let alice = SecretKey::from_bytes(&[1; 32]);
        let (r1, r2, r3) = (
            record(&alice, 10, Kind::MICROBLOG_ROOT),
            record(&alice, 30, Kind::MICROBLOG_ROOT),
            record(&alice, 20, Kind::MICROBLOG_ROOT),
        );
        let merged = merge(
            vec![
                vec![r2.clone(), r1.clone()],
                vec![r3.clone(), r1.clone()],
                vec![r2.clone()],
            ],
            0,
        );
        assert_eq!(merged, vec![r2.clone(), r3.clone(), r1]);
        assert_eq!(merge(vec![vec![r3.clone()], vec![r2.clone()]], 1), vec![r2]);
    }
}
