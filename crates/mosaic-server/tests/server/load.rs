//! The server under load (SPEC-NOTES D-21 and the limits of `Limits`): live
//! delivery to many subscriptions through a burst, slow and silent readers,
//! bounded Gets and queries, rate limits charged before verification.

use std::collections::{HashMap, HashSet};

use mosaic_core::{FilterBuilder, Id};

use super::*;

fn microblog_since(t: u64) -> OwnedFilter {
    FilterBuilder::new()
        .kinds([MICROBLOG])
        .since(Timestamp::from_nanos(t).unwrap())
        .build()
        .unwrap()
}

/// The next message, or `None` after `secs` seconds of silence or at the end.
async fn recv_within(conn: &mut Connection, secs: u64) -> Option<Message> {
    match tokio::time::timeout(Duration::from_secs(secs), conn.recv()).await {
        Ok(Ok(Some(received))) => Some(received.message.expect("a message that decodes")),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => panic!("the connection failed: {e}"),
        Err(_) => panic!("nothing within {secs} s"),
    }
}

/// Sends `records` on `conn` without waiting, then collects every answer.
async fn submit_all(mut conn: Connection, records: Vec<OwnedRecord>) -> Vec<ResultCode> {
    for r in &records {
        conn.send(&Message::Submission { record: r.clone() })
            .await
            .unwrap();
    }
    let mut codes = Vec::new();
    while codes.len() < records.len() {
        match recv(&mut conn).await {
            Message::SubmissionResult { code, .. } => codes.push(code),
            other => panic!("expected a Submission Result, got {other:?}"),
        }
    }
    codes
}

/// The scenario: one connection with 30 subscriptions, then three
/// writers submit 800 records each at once. The subscriber reads as fast as
/// it can and must get every record on every subscription, once each, and
/// every subscription in the same (commit) order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_thirty_subscriptions_whole() {
    let server = start(ServerConfig::default()).await;
    let writers: Vec<SecretKey> = (1..=3u8).map(|i| SecretKey::from_bytes(&[i; 32])).collect();
    let base = 1_700_000_000_000_000_000u64;
    let mut reader = client(&server).await;
    for q in 0..30u16 {
        let filter = match q % 3 {
            0 => microblog_since(base),
            1 => FilterBuilder::new()
                .authors(writers.iter().map(|k| k.public()))
                .build()
                .unwrap(),
            _ => FilterBuilder::new()
                .kinds([MICROBLOG])
                .authors(writers.iter().map(|k| k.public()))
                .build()
                .unwrap(),
        };
        reader
            .send(&Message::Subscribe {
                query_id: QueryId(q),
                limit: 10,
                filter,
            })
            .await
            .unwrap();
        assert_eq!(
            recv(&mut reader).await,
            Message::LocallyComplete {
                query_id: QueryId(q)
            }
        );
    }
    let payload = vec![b'p'; 300];
    let mut jobs = Vec::new();
    let mut all = HashSet::new();
    for (w, key) in writers.iter().enumerate() {
        let records: Vec<OwnedRecord> = (0..800u64)
            .map(|i| record(key, MICROBLOG, base + (w as u64) * 10_000 + i, &payload))
            .collect();
        all.extend(records.iter().map(|r| r.id()));
        let conn = client(&server).await;
        jobs.push(tokio::spawn(submit_all(conn, records)));
    }
    // Read as fast as loopback allows: records are taken apart, not
    // verified (a debug build checks signatures far slower than a server
    // sends them; the server's own tests check what it stores).
    let (reader_tx, mut reader_rx) = reader.split();
    let mut got: HashMap<u16, Vec<Id>> = HashMap::new();
    let expected = all.len();
    let mut delivered = 0;
    while delivered < expected * 30 {
        let frame =
            match tokio::time::timeout(Duration::from_secs(30), reader_rx.recv_frame()).await {
                Ok(Ok(Some(frame))) => frame,
                other => panic!("after {delivered} deliveries: {other:?}"),
            };
        if frame[0] != 0x80 {
            panic!(
                "after {delivered} deliveries: {:?}",
                Message::decode(&frame)
            );
        }
        let query_id = u16::from_le_bytes([frame[4], frame[5]]);
        let id = Id::from_bytes(&frame[8..56].try_into().unwrap()).unwrap();
        got.entry(query_id).or_default().push(id);
        delivered += 1;
    }
    for job in jobs {
        let codes = job.await.unwrap();
        assert!(
            codes.iter().all(|c| *c == ResultCode::ACCEPTED),
            "{codes:?}"
        );
    }
    let first = got[&0].clone();
    assert_eq!(first.len(), expected);
    assert_eq!(
        first.iter().collect::<HashSet<_>>().len(),
        expected,
        "no duplicate"
    );
    assert_eq!(first.iter().copied().collect::<HashSet<_>>(), all);
    for q in 0..30u16 {
        assert_eq!(got[&q], first, "subscription {q} saw another order");
    }
    // Nothing more, nothing closed: the connection is still in service.
    reader_tx
        .send(&Message::Query {
            query_id: QueryId(99),
            limit: 5,
            filter: by_author(&writers[0]),
        })
        .await
        .unwrap();
    let mut answered = 0;
    loop {
        match reader_rx.recv().await.unwrap().unwrap().message.unwrap() {
            Message::Record {
                query_id: QueryId(99),
                ..
            } => answered += 1,
            Message::QueryClosed { query_id, code } => {
                assert_eq!(
                    (query_id, code, answered),
                    (QueryId(99), ResultCode::SUCCESS, 5)
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A reader that pauses past the grace time loses its subscription with
/// Query Closed TEMPORARY_ERROR, never silently: what it got before, plus a
/// re-subscription from the newest timestamp it saw, is everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_pauses_gets_temporary_error_and_can_resume() {
    let mut config = ServerConfig::default();
    config.limits.outbound_budget_bytes = 64 * 1024;
    config.limits.slow_reader_grace_secs = 1;
    let server = start(config).await;
    let alice = SecretKey::from_bytes(&[4; 32]);
    let mut lazy = client(&server).await;
    lazy.send(&Message::Subscribe {
        query_id: QueryId(1),
        limit: 1,
        filter: by_author(&alice),
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut lazy).await,
        Message::LocallyComplete {
            query_id: QueryId(1)
        }
    );
    // More than the kernel's socket buffers and the budget can hold.
    let payload = vec![b'x'; 60_000];
    let records: Vec<OwnedRecord> = (0..400u64)
        .map(|i| record(&alice, MICROBLOG, 1_000_000 + i, &payload))
        .collect();
    let mut writer = client(&server).await;
    for r in &records {
        assert_eq!(submit(&mut writer, r).await, ResultCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut seen = Vec::new();
    loop {
        match recv_within(&mut lazy, 10).await {
            Some(Message::Record { record, .. }) => seen.push(record),
            Some(Message::QueryClosed { query_id, code }) => {
                assert_eq!(query_id, QueryId(1));
                assert_eq!(code, ResultCode::TEMPORARY_ERROR);
                break;
            }
            other => panic!("expected records then Query Closed, got {other:?}"),
        }
    }
    assert!(seen.len() < records.len(), "the reader was not slow enough");
    // In order, with no gap: a prefix of what was committed.
    assert_eq!(seen[..], records[..seen.len()]);
    // The client re-subscribes from the newest timestamp it saw.
    let since = seen.last().map_or(0, |r| r.timestamp().as_nanos());
    let filter = FilterBuilder::new()
        .authors([alice.public()])
        .since(Timestamp::from_nanos(since).unwrap())
        .build()
        .unwrap();
    let (rest, code) = query(&mut lazy, 2, 500, filter).await;
    assert_eq!(code, ResultCode::SUCCESS);
    let mut all: Vec<Id> = seen.iter().map(|r| r.id()).collect();
    let mut known: HashSet<Id> = all.iter().copied().collect();
    for r in rest.into_iter().rev() {
        if known.insert(r.id()) {
            all.push(r.id());
        }
    }
    let want: Vec<Id> = records.iter().map(|r| r.id()).collect();
    assert_eq!(all, want, "nothing missing, nothing doubled");
}

/// A client that sends a Query and reads nothing is disconnected by the
/// write timeout; other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected() {
    let mut config = ServerConfig::default();
    config.limits.write_timeout_secs = 1;
    config.limits.outbound_budget_bytes = 64 * 1024;
    let server = start(config).await;
    let alice = SecretKey::from_bytes(&[5; 32]);
    let payload = vec![b'y'; 200_000];
    let mut writer = client(&server).await;
    let records: Vec<OwnedRecord> = (0..100u64)
        .map(|i| record(&alice, MICROBLOG, 2_000_000 + i, &payload))
        .collect();
    for r in &records {
        assert_eq!(submit(&mut writer, r).await, ResultCode::ACCEPTED);
    }
    let mut silent = client(&server).await;
    silent
        .send(&Message::Query {
            query_id: QueryId(1),
            limit: 100,
            filter: by_author(&alice),
        })
        .await
        .unwrap();
    // While it does not read, the others are served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (got, code) = query(&mut writer, 2, 3, by_author(&alice)).await;
    assert_eq!((got.len(), code), (3, ResultCode::SUCCESS));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Whatever the kernel buffered arrives, then the connection ends before
    // the whole answer (and without its Query Closed).
    let mut records_read = 0;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), silent.recv()).await {
            Ok(Ok(Some(received))) => match received.message {
                Ok(Message::Record { .. }) => records_read += 1,
                Ok(Message::Closing { .. }) => {}
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => panic!("undecodable: {e}"),
            },
            Ok(Ok(None)) | Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    assert!(ended, "the connection was not closed");
    assert!(records_read < 100, "it was not disconnected early");
    let (got, _) = query(&mut writer, 3, 1, by_author(&alice)).await;
    assert_eq!(got.len(), 1);
}

/// Get: duplicates are looked up once, too many distinct references are
/// refused with TOO_LARGE.
#[tokio::test]
async fn gets_are_deduplicated_and_bounded() {
    let server = start(ServerConfig::default()).await;
    let alice = SecretKey::from_bytes(&[6; 32]);
    let big = record(&alice, MICROBLOG, 3_000_000, &vec![b'z'; 500_000]);
    let mut conn = client(&server).await;
    assert_eq!(submit(&mut conn, &big).await, ResultCode::ACCEPTED);
    // 20,000 references to one large record: one record comes back.
    conn.send(&Message::Get {
        query_id: QueryId(1),
        references: vec![Reference::Id(big.id()); 20_000],
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut conn).await,
        Message::Record {
            query_id: QueryId(1),
            record: big.clone()
        }
    );
    assert_eq!(
        recv(&mut conn).await,
        Message::QueryClosed {
            query_id: QueryId(1),
            code: ResultCode::SUCCESS
        }
    );
    // 1,001 distinct references: over the default maximum.
    let references: Vec<Reference> = (0..1_001u64)
        .map(|i| Reference::Id(record(&alice, MICROBLOG, 4_000_000 + i, b"-").id()))
        .collect();
    conn.send(&Message::Get {
        query_id: QueryId(2),
        references,
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut conn).await,
        Message::QueryClosed {
            query_id: QueryId(2),
            code: ResultCode::TOO_LARGE
        }
    );
}

/// A narrow but unselective filter stops at the scan budget with TOO_OPEN,
/// after what it found; records the reader may not see count too.
#[tokio::test]
async fn queries_stop_at_the_scan_budget() {
    let mut config = ServerConfig::default();
    config.limits.query_scan_budget = 50;
    let server = start(config).await;
    let alice = SecretKey::from_bytes(&[7; 32]);
    let mut conn = client(&server).await;
    let private = kind(DuplicateHandling::Unique, ReadAccess::AuthorOnly);
    for i in 0..120u64 {
        let kind = if i < 100 { private } else { MICROBLOG };
        let r = record(&alice, kind, 5_000_000 + i, b"scan");
        assert_eq!(submit(&mut conn, &r).await, ResultCode::ACCEPTED);
    }
    // Newest first: the 20 public records, then 100 the reader may not see.
    let (got, code) = query(&mut conn, 1, 0, by_author(&alice)).await;
    assert_eq!(code, ResultCode::TOO_OPEN);
    assert_eq!(got.len(), 20, "what was found before the budget ran out");
    // A subscription ends the same way, after its stored records.
    conn.send(&Message::Subscribe {
        query_id: QueryId(2),
        limit: 0,
        filter: by_author(&alice),
    })
    .await
    .unwrap();
    let mut records = 0;
    loop {
        match recv(&mut conn).await {
            Message::Record { .. } => records += 1,
            Message::QueryClosed { query_id, code } => {
                assert_eq!((query_id, code), (QueryId(2), ResultCode::TOO_OPEN));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(records, 20);
    // Within the budget, the same filter with a limit is answered fully.
    let (got, code) = query(&mut conn, 3, 10, by_author(&alice)).await;
    assert_eq!((got.len(), code), (10, ResultCode::SUCCESS));
}

/// Rate limits are charged before a submitted record is verified: past the
/// burst, even forged records are answered TOO_FAST, not INVALID. Reads
/// have their own buckets.
#[tokio::test]
async fn rate_limits_come_before_verification() {
    let mut config = ServerConfig::default();
    config.limits.submissions_per_second = 1;
    config.limits.submission_burst = 5;
    config.limits.reads_per_second = 1;
    config.limits.read_burst = 3;
    let server = start(config).await;
    let alice = SecretKey::from_bytes(&[8; 32]);
    let mut conn = client(&server).await;
    let mut codes = Vec::new();
    for i in 0..8u64 {
        let good = record(&alice, MICROBLOG, 6_000_000 + i, b"forged");
        let mut bytes = Message::Submission { record: good }.encode().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // the signature no longer verifies
        conn.sender().send_encoded(bytes).await.unwrap();
        match recv(&mut conn).await {
            Message::SubmissionResult { code, .. } => codes.push(code),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(&codes[..5], &[ResultCode::INVALID; 5]);
    assert_eq!(&codes[5..], &[ResultCode::TOO_FAST; 3]);
    let mut read_codes = Vec::new();
    for q in 0..5u16 {
        read_codes.push(query(&mut conn, q, 1, by_author(&alice)).await.1);
    }
    assert_eq!(
        read_codes,
        [
            ResultCode::SUCCESS,
            ResultCode::SUCCESS,
            ResultCode::SUCCESS,
            ResultCode::TOO_FAST,
            ResultCode::TOO_FAST
        ]
    );
}
