//! Fault injection through the public API, with the feature
//! `fault-injection` on (`cargo test -p mosaic-store --features
//! fault-injection`); the crate's unit tests cover each fault in detail.

use mosaic_core::DuplicateHandling;
use mosaic_store::{Fault, Store, StoreConfig, StoreError};

use crate::common::{Spec, TempDir, kind, secret, ts};

#[test]
fn injected_faults_fail_calls_until_cleared() {
    let dir = TempDir::new("faults");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let record = Spec::new(kind(DuplicateHandling::Unique, 1), ts(1), b"f").sign(&secret(1));
    store.inject(Fault::FailCommits);
    store.inject(Fault::FailReads);
    let write = store.insert(&record, ts(2)).unwrap_err();
    assert!(matches!(write, StoreError::Io(_)), "{write:?}");
    assert!(!write.is_transient());
    assert!(write.to_string().contains("injected fault"), "{write}");
    assert!(matches!(store.get(&record.id()), Err(StoreError::Io(_))));
    store.clear_faults();
    assert!(store.get(&record.id()).unwrap().is_none());
    store.inject(Fault::FailCommitsTransiently);
    assert!(store.insert(&record, ts(2)).unwrap_err().is_transient());
    store.clear_faults();
    assert!(store.insert(&record, ts(2)).unwrap().is_stored());
}
