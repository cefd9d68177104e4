//! Unit tests of filters: encoding, parsing, refusals and matching.

use super::*;
use crate::keys::SecretKey;
use crate::kind::Kind;
use crate::record::{OwnedRecord, RecordBuilder};
use crate::reference::Nonce;
use crate::tag::OwnedTag;

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n).unwrap()
}

fn record(signer: &SecretKey, kind: Kind, t: u64, tags: &[OwnedTag]) -> OwnedRecord {
    let mut b = RecordBuilder::new(kind, ts(t)).nonce(Nonce::from_key(&t.to_be_bytes()));
    for tag in tags {
        b = b.tag(tag);
    }
    b.build(signer).unwrap()
}

#[test]
fn built_filters_parse_back() {
    let a = SecretKey::from_bytes(&[1; 32]).public();
    let b = SecretKey::from_bytes(&[2; 32]).public();
    let tag = OwnedTag::notify_public_key(&b);
    let url = OwnedTag::url(3, "https://example.com/x").unwrap();
    let f = FilterBuilder::new()
        .authors([a, b])
        .signers([a])
        .kinds([Kind::MICROBLOG_ROOT, Kind::PROFILE])
        .timestamps([ts(5)])
        .included_tags([&*tag, &*url])
        .since(ts(1))
        .until(ts(9))
        .received_since(ts(2))
        .received_until(ts(8))
        .exclude([crate::Id::from_bytes(&[0x11; 48]).unwrap()])
        .excluded_tags([&*url])
        .build()
        .unwrap();
    let parsed = Filter::from_bytes(f.as_bytes()).unwrap();
    assert_eq!(parsed.elements().count(), 11);
    assert_eq!(
        parsed.authors().unwrap().iter().collect::<Vec<_>>(),
        vec![a, b]
    );
    assert_eq!(parsed.kinds().unwrap().len(), 2);
    assert_eq!(parsed.since(), Some(ts(1)));
    assert_eq!(parsed.until(), Some(ts(9)));
    assert_eq!(parsed.received_since(), Some(ts(2)));
    assert_eq!(parsed.received_until(), Some(ts(8)));
    assert_eq!(parsed.included_tags().next().unwrap().iter().count(), 2);
    assert!(parsed.is_narrow());
    // Re-encoding each element gives the same bytes.
    let mut again = parsed.as_bytes()[..8].to_vec();
    for e in parsed.elements() {
        again.extend_from_slice(&e.as_bytes());
    }
    assert_eq!(again, parsed.as_bytes());
}

#[test]
fn refusals() {
    let key = SecretKey::from_bytes(&[1; 32]).public();
    let good = FilterBuilder::new()
        .authors([key])
        .build()
        .unwrap()
        .into_vec();
    let check = |bytes: &[u8], pred: fn(&FilterError) -> bool| {
        let err = Filter::from_bytes(bytes).unwrap_err();
        assert!(pred(&err), "unexpected {err:?}");
    };
    check(&good[..4], |e| matches!(e, FilterError::TooShort { .. }));
    check(&good[..40], |e| {
        matches!(e, FilterError::LengthMismatch { .. })
    });
    let mut m = good.clone();
    m[4] = 1;
    check(&m, |e| {
        matches!(e, FilterError::ReservedNotZero { offset: 4 })
    });
    let mut m = good.clone();
    m[9] = 0;
    check(&m, |e| {
        matches!(e, FilterError::ZeroLengthElement { offset: 8 })
    });
    let mut m = good.clone();
    m[9] = 9;
    check(&m, |e| matches!(e, FilterError::ElementOverrun { .. }));
    let mut m = good.clone();
    m[8] = 0x06;
    check(&m, |e| {
        matches!(
            e,
            FilterError::UnknownElement {
                element_type: 6,
                ..
            }
        )
    });
    let mut m = good.clone();
    m[12] = 1;
    check(&m, |e| {
        matches!(e, FilterError::ReservedNotZero { offset: 12 })
    });
    let mut m = good.clone();
    m[16..48].copy_from_slice(&[0; 32]);
    m[16] = 1;
    check(&m, |e| matches!(e, FilterError::InvalidKey { offset: 16 }));
    // An element of 3 words cannot hold whole keys.
    let mut m = good[..32].to_vec();
    m[0] = 32;
    m[9] = 3;
    check(&m, |e| matches!(e, FilterError::BadElementLength { .. }));
    // A since of 3 words, and a since with the top bit set.
    check(
        &[
            24, 0, 0, 0, 0, 0, 0, 0, 0x80, 2, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0,
        ],
        |e| matches!(e, FilterError::TimestampOutOfRange { offset: 16 }),
    );
    // An exclude listing an address prefix.
    let mut x = vec![48, 0, 0, 0, 0, 0, 0, 0, 0x84, 5, 0, 0, 0, 0, 0, 0];
    x.extend_from_slice(&[0xff; 32]);
    check(&x, |e| {
        matches!(e, FilterError::ExcludeNotAnId { offset: 16 })
    });
    // Tag padding must be zero.
    let tag = OwnedTag::url(0, "abc").unwrap(); // 11 bytes, padded to 16
    let mut t = FilterBuilder::new()
        .included_tags([&*tag])
        .build()
        .unwrap()
        .into_vec();
    let last = t.len() - 1;
    t[last] = 1;
    check(&t, |e| matches!(e, FilterError::BadPadding { .. }));
}

#[test]
fn matching() {
    let alice = SecretKey::from_bytes(&[1; 32]);
    let bob = SecretKey::from_bytes(&[2; 32]);
    let notify_bob = OwnedTag::notify_public_key(&bob.public());
    let r1 = record(
        &alice,
        Kind::MICROBLOG_ROOT,
        100,
        std::slice::from_ref(&notify_bob),
    );
    let r2 = record(&alice, Kind::PROFILE, 200, &[]);
    let r3 = record(&bob, Kind::MICROBLOG_ROOT, 300, &[]);
    let all = [&r1, &r2, &r3];
    let run = |f: &OwnedFilter, received: u64| -> Vec<u64> {
        all.iter()
            .filter(|r| f.matches(r, ts(received)))
            .map(|r| r.timestamp().as_nanos())
            .collect()
    };
    let f = FilterBuilder::new()
        .authors([alice.public()])
        .build()
        .unwrap();
    assert_eq!(run(&f, 0), [100, 200]);
    let f = FilterBuilder::new()
        .kinds([Kind::MICROBLOG_ROOT])
        .build()
        .unwrap();
    assert_eq!(run(&f, 0), [100, 300]);
    let f = FilterBuilder::new()
        .since(ts(200))
        .until(ts(300))
        .build()
        .unwrap();
    assert_eq!(run(&f, 0), [200, 300]);
    let f = FilterBuilder::new()
        .timestamps([ts(300), ts(100)])
        .build()
        .unwrap();
    assert_eq!(run(&f, 0), [100, 300]);
    let f = FilterBuilder::new()
        .included_tags([&*notify_bob])
        .build()
        .unwrap();
    assert_eq!(run(&f, 0), [100]);
    let f = FilterBuilder::new()
        .excluded_tags([&*notify_bob])
        .build()
        .unwrap();
    assert_eq!(run(&f, 0), [200, 300]);
    let f = FilterBuilder::new().exclude([r2.id()]).build().unwrap();
    assert_eq!(run(&f, 0), [100, 300]);
    let f = FilterBuilder::new().received_since(ts(50)).build().unwrap();
    assert_eq!(run(&f, 49), Vec::<u64>::new());
    assert_eq!(run(&f, 50), [100, 200, 300]);
    let f = FilterBuilder::new().received_until(ts(50)).build().unwrap();
    assert_eq!(run(&f, 51), Vec::<u64>::new());
    assert!(f.matches_record(&r1));
    let f = FilterBuilder::new()
        .signers([bob.public()])
        .build()
        .unwrap();
    assert_eq!(run(&f, 0), [300]);
    assert_eq!(run(&OwnedFilter::empty(), 0), [100, 200, 300]);
    assert!(!OwnedFilter::empty().is_narrow());
}

#[test]
fn repeated_unique_elements_first_counts() {
    let alice = SecretKey::from_bytes(&[1; 32]);
    let r = record(&alice, Kind::MICROBLOG_ROOT, 100, &[]);
    let a = FilterBuilder::new()
        .kinds([Kind::MICROBLOG_ROOT])
        .build()
        .unwrap();
    let b = FilterBuilder::new().kinds([Kind::PROFILE]).build().unwrap();
    let mut both = a.as_bytes().to_vec();
    both.extend_from_slice(&b.as_bytes()[8..]);
    let len = both.len() as u16;
    both[..2].copy_from_slice(&len.to_le_bytes());
    let f = Filter::from_bytes(&both).unwrap();
    assert!(f.matches(&r, Timestamp::ZERO));
    assert_eq!(f.effective_elements().count(), 1);
}

#[test]
fn with_since_replaces_since() {
    let f = FilterBuilder::new()
        .kinds([Kind::MICROBLOG_ROOT])
        .since(ts(5))
        .build()
        .unwrap();
    let g = f.with_since(ts(7)).unwrap();
    assert_eq!(g.since(), Some(ts(7)));
    assert_eq!(g.kinds().unwrap().len(), 1);
    assert_eq!(g.elements().count(), 2);
}

#[test]
fn builder_limits() {
    let keys: Vec<_> = (0..64u8)
        .map(|i| SecretKey::from_bytes(&[i; 32]).public())
        .collect();
    assert!(matches!(
        FilterBuilder::new().authors(keys.clone()).build(),
        Err(FilterError::TooManyEntries {
            count: 64,
            max: 63,
            ..
        })
    ));
    FilterBuilder::new()
        .authors(keys[..63].to_vec())
        .build()
        .unwrap();
}
