//! Faults are told, never hidden: a store that fails (injected through
//! `mosaic-store`'s `fault-injection` feature, on the real store) gives
//! clients TEMPORARY_ERROR or PERSISTENT_ERROR, never SUCCESS or ACCEPTED;
//! after a failed durable commit the server refuses every write until it is
//! restarted; nothing acknowledged is lost.

use mosaic_store::Fault;

use super::*;

async fn status(handle: &ServerHandle) -> serde_json::Value {
    let mut tcp = TcpStream::connect(handle.local_addr()).await.unwrap();
    tcp.write_all(b"GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
}

async fn serve(dir: &TempDir) -> (Arc<Store>, ServerHandle) {
    let store = Arc::new(Store::open(dir.0.join("store"), StoreConfig::default()).unwrap());
    let handle = Server::start_for_tests(
        ServerConfig::default(),
        SecretKey::from_bytes(&[9; 32]),
        store.clone(),
    )
    .await
    .unwrap();
    (store, handle)
}

#[tokio::test]
async fn a_failed_commit_turns_writes_off_and_nothing_acknowledged_is_lost() {
    let dir = TempDir::new();
    let alice = SecretKey::from_bytes(&[11; 32]);
    let records: Vec<OwnedRecord> = (0..13u64)
        .map(|i| record(&alice, MICROBLOG, 7_000_000 + i, b"durable?"))
        .collect();
    let (store, handle) = serve(&dir).await;
    let mut conn = connect(handle.url(), &ConnectOptions::default())
        .await
        .unwrap();
    for r in &records[..10] {
        assert_eq!(submit(&mut conn, r).await, ResultCode::ACCEPTED);
    }
    assert_eq!(status(&handle).await["writable"], true);

    // The disk fails: the commit is refused, and so is every write after
    // it, even once the store would work again.
    store.inject(Fault::FailCommits);
    assert_eq!(
        submit(&mut conn, &records[10]).await,
        ResultCode::PERSISTENT_ERROR
    );
    store.clear_faults();
    assert_eq!(
        submit(&mut conn, &records[11]).await,
        ResultCode::PERSISTENT_ERROR
    );
    let data = b"a blob".to_vec();
    conn.send(&Message::BlobSubmission {
        hash: mosaic_core::blob_hash(&data),
        data,
    })
    .await
    .unwrap();
    assert!(matches!(
        recv(&mut conn).await,
        Message::BlobSubmissionResult { code, .. } if code == ResultCode::PERSISTENT_ERROR
    ));
    let status = status(&handle).await;
    assert_eq!(status["writable"], false);
    assert!(
        status["write_fault"]
            .as_str()
            .is_some_and(|why| why.contains("injected fault")),
        "{status}"
    );
    // Reads go on.
    let (got, code) = query(&mut conn, 1, 0, by_author(&alice)).await;
    assert_eq!((got.len(), code), (10, ResultCode::SUCCESS));

    // Failing reads are told as errors, never as "nothing found".
    store.inject(Fault::FailReads);
    let (got, code) = query(&mut conn, 2, 0, by_author(&alice)).await;
    assert_eq!((got.len(), code), (0, ResultCode::PERSISTENT_ERROR));
    conn.send(&Message::Get {
        query_id: QueryId(3),
        references: vec![Reference::Id(records[0].id())],
    })
    .await
    .unwrap();
    assert_eq!(
        recv(&mut conn).await,
        Message::QueryClosed {
            query_id: QueryId(3),
            code: ResultCode::PERSISTENT_ERROR
        }
    );
    conn.send(&Message::BlobGet { hash: [1; 32] })
        .await
        .unwrap();
    assert!(matches!(
        recv(&mut conn).await,
        Message::BlobResult { code, .. } if code == ResultCode::PERSISTENT_ERROR
    ));
    store.clear_faults();
    drop(conn);
    handle.shutdown().await.unwrap();
    drop(store);

    // After a restart: every acknowledged record, none of the refused.
    let (_store, handle) = serve(&dir).await;
    let mut conn = connect(handle.url(), &ConnectOptions::default())
        .await
        .unwrap();
    let (got, _) = query(&mut conn, 1, 0, by_author(&alice)).await;
    let mut ids: Vec<_> = got.iter().map(|r| r.id()).collect();
    ids.sort();
    let mut want: Vec<_> = records[..10].iter().map(|r| r.id()).collect();
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(submit(&mut conn, &records[12]).await, ResultCode::ACCEPTED);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_commit_of_unknown_outcome_is_never_acknowledged() {
    let dir = TempDir::new();
    let alice = SecretKey::from_bytes(&[12; 32]);
    let (store, handle) = serve(&dir).await;
    let mut conn = connect(handle.url(), &ConnectOptions::default())
        .await
        .unwrap();
    // The data reaches the disk, but the commit reports an error (an fsync
    // that failed after writing, say): the client is told it failed.
    store.inject(Fault::FailCommitsAfterWrite);
    let r = record(&alice, MICROBLOG, 8_000_000, b"unknown");
    assert_eq!(submit(&mut conn, &r).await, ResultCode::PERSISTENT_ERROR);
    store.clear_faults();
    // A transient failure after that is no better: writes stay off.
    let later = record(&alice, MICROBLOG, 8_000_001, b"later");
    assert_eq!(
        submit(&mut conn, &later).await,
        ResultCode::PERSISTENT_ERROR
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_transient_failure_is_a_temporary_error() {
    let dir = TempDir::new();
    let alice = SecretKey::from_bytes(&[13; 32]);
    let (store, handle) = serve(&dir).await;
    let mut conn = connect(handle.url(), &ConnectOptions::default())
        .await
        .unwrap();
    store.inject(Fault::FailCommitsTransiently);
    let r = record(&alice, MICROBLOG, 9_000_000, b"busy");
    assert_eq!(submit(&mut conn, &r).await, ResultCode::TEMPORARY_ERROR);
    store.clear_faults();
    // Its outcome is unknown all the same: writes are off until a restart.
    let next = record(&alice, MICROBLOG, 9_000_001, b"next");
    assert_eq!(submit(&mut conn, &next).await, ResultCode::PERSISTENT_ERROR);
    handle.shutdown().await.unwrap();
}
