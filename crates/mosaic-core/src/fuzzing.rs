//! Fuzzing entry points: each function parses arbitrary bytes and, when they
//! parse, checks that encoding the value gives them back.
//!
//! The targets in the top-level `fuzz/` directory call these functions, one
//! each, and `tests/core.rs` runs them over the interoperability vectors and
//! over seeded random and mutated inputs, so stable CI exercises them too.
//! A broken invariant panics: that is how a fuzzer reports a finding. This
//! module is not part of the API.

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::bootstrap::{BootstrapError, MAX_BOOTSTRAP_LEN};
use crate::printable::{self, Prefix};
use crate::{
    Address, EncryptedSecretKey, Filter, FilterElement, Id, Kind, Nonce, OwnedFilter, OwnedRecord,
    OwnedTag, OwnedTagSet, PublicKey, Record, RecordBuilder, Reference, SecretKey, ServerBootstrap,
    Tag, TagSet, Timestamp, Url, UserBootstrap, blake3_xof64,
};

/// Parses `data` as a record.
///
/// When the layout is valid (checked without the cryptography, which a
/// fuzzer cannot forge), every accessor must work. When the record is fully
/// valid, its printable form must parse back to the same bytes and its id
/// must agree with its contents. The tag-set and tag parsers run on the same
/// bytes.
pub fn fuzz_record(data: &[u8]) {
    let unverified = Record::danger_from_bytes_unverified(data);
    if let Ok(record) = unverified {
        assert_eq!(record.as_bytes(), data);
        assert_eq!(Record::len_from_header(data), Ok(data.len()));
        exercise_record(record);
    }
    if let Ok(record) = Record::from_bytes(data) {
        assert!(
            unverified.is_ok(),
            "a valid record failed the layout-only check"
        );
        assert_eq!(record.as_bytes(), data);
        let printable = record.to_printable();
        let again = OwnedRecord::from_printable(&printable)
            .unwrap_or_else(|e| panic!("a valid record's printable form was refused: {e}"));
        assert_eq!(again.as_bytes(), data);
        assert_eq!(again.to_printable(), printable);
        let owned = OwnedRecord::from_vec(data.to_vec())
            .unwrap_or_else(|e| panic!("OwnedRecord refused a valid record: {e}"));
        assert_eq!(&*owned, record);

        let hash = blake3_xof64(record.signed_bytes());
        assert_eq!(record.id().hash_prefix(), &hash[..40]);
        assert_eq!(record.id().timestamp(), record.timestamp());
        assert_eq!(
            Reference::from_bytes(record.id().as_bytes()),
            Ok(Reference::Id(record.id()))
        );
        let address = record.address();
        assert_eq!(
            Reference::from_bytes(address.as_bytes()),
            Ok(Reference::Address(address))
        );
        assert_eq!(address.author(), record.author());
        assert_eq!(address.kind(), record.kind());
        assert_eq!(address.nonce(), record.nonce());
        assert!(PublicKey::from_bytes(record.author().as_bytes()).is_ok());
        assert!(PublicKey::from_bytes(record.signing_key().as_bytes()).is_ok());
        if record.kind().is_printable() {
            assert!(
                record.payload_text().is_ok(),
                "a valid record of a printable kind has a payload that is not text"
            );
        }
    }
    check_tag_set(data);
    check_tag(data);
}

/// Calls every accessor of a record whose layout has been checked.
fn exercise_record(record: &Record) {
    let tags = record.tags();
    assert_eq!(
        TagSet::from_bytes(tags.as_bytes()).map(TagSet::as_bytes),
        Ok(tags.as_bytes())
    );
    check_tag_set(tags.as_bytes());
    let _ = (
        record.id(),
        record.address(),
        record.nonce(),
        record.kind(),
        record.author(),
        record.signing_key(),
        record.timestamp(),
        record.flags(),
        record.signature(),
        record.len(),
    );
    assert_eq!(
        record.timestamp().to_be_bytes(),
        record.as_bytes()[128..136],
        "the layout check admits only timestamps below 2^63"
    );
    assert_eq!(
        record.signed_bytes().len() + 48 + 64,
        record.len(),
        "the signed section must end where the signature starts"
    );
    let payload = record.payload();
    match record.payload_decompressed() {
        Ok(Cow::Borrowed(plain)) => assert_eq!(plain, payload),
        Ok(Cow::Owned(_)) => assert!(record.flags().is_zstd()),
        Err(_) => assert!(record.flags().is_zstd()),
    }
    let _ = record.payload_text();
    let _ = format!("{record:?}");
}

/// Parses `data` as a tag set; when it parses, its tags laid end to end give
/// it back, and each tag parses on its own.
fn check_tag_set(data: &[u8]) {
    let Ok(set) = TagSet::from_bytes(data) else {
        return;
    };
    let mut joined = Vec::with_capacity(data.len());
    for tag in set {
        assert_eq!(
            Tag::from_bytes(tag.as_bytes()).map(Tag::as_bytes),
            Ok(tag.as_bytes())
        );
        joined.extend_from_slice(tag.as_bytes());
        let _ = tag.parse().map(|value| value.segment_offset());
    }
    assert_eq!(joined, data, "a tag set's tags must cover it exactly");
    let _ = set.notified_keys().count();
    let owned = OwnedTagSet::from_vec(data.to_vec())
        .unwrap_or_else(|e| panic!("OwnedTagSet refused a valid tag set: {e}"));
    assert_eq!(owned.as_bytes(), data);
    let rebuilt = OwnedTagSet::from_tags(set.iter())
        .unwrap_or_else(|e| panic!("a valid tag set's tags could not be collected: {e}"));
    assert_eq!(rebuilt.as_bytes(), data);
    let _ = format!("{set:?}");
}

/// Parses `data` as one tag; when it parses, its type and value re-encode to it.
fn check_tag(data: &[u8]) {
    let Ok(tag) = Tag::from_bytes(data) else {
        return;
    };
    let again = OwnedTag::new(tag.tag_type(), tag.value())
        .unwrap_or_else(|e| panic!("a valid tag's value was refused: {e}"));
    assert_eq!(again.as_bytes(), data);
    let _ = tag.parse();
    let _ = format!("{tag:?}");
}

/// Parses `data` as a filter.
///
/// When it parses, its header and its elements re-encoded give it back, its
/// owned copy and its `with_since` variant parse, and matching it against a
/// few fixed records never panics.
pub fn fuzz_filter(data: &[u8]) {
    let _ = Filter::len_from_header(data);
    let Ok(filter) = Filter::from_bytes(data) else {
        return;
    };
    assert_eq!(Filter::len_from_header(data), Ok(data.len()));
    assert_eq!(filter.as_bytes(), data);
    let mut encoded = data[..8].to_vec();
    for element in filter.elements() {
        encoded.extend_from_slice(&element.as_bytes());
        exercise_element(&element);
    }
    assert_eq!(encoded, data, "the elements must re-encode to the filter");
    assert_eq!(
        filter.is_empty(),
        filter.elements().next().is_none(),
        "a filter is empty exactly when it has no element"
    );
    assert!(filter.effective_elements().count() <= filter.elements().count());

    let _ = (
        filter.is_narrow(),
        filter.authors(),
        filter.signers(),
        filter.kinds(),
        filter.timestamps(),
        filter.included_tags().count(),
        filter.since(),
        filter.until(),
        filter.received_since(),
        filter.received_until(),
    );
    let _ = format!("{filter:?}");

    let owned = OwnedFilter::from_vec(data.to_vec())
        .unwrap_or_else(|e| panic!("OwnedFilter refused a valid filter: {e}"));
    assert_eq!(owned.as_bytes(), data);

    let since = Timestamp::from_nanos(1_700_000_000_000_000_000).unwrap_or(Timestamp::MAX);
    if let Ok(moved) = filter.with_since(since) {
        assert_eq!(moved.since(), Some(since));
        assert_eq!(
            Filter::from_bytes(moved.as_bytes()).map(Filter::as_bytes),
            Ok(moved.as_bytes())
        );
    }

    for record in fixture_records() {
        let judged = filter.matches_record(record);
        for received in [Timestamp::ZERO, since, Timestamp::MAX] {
            // The received-time elements are the only ones `matches_record`
            // does not judge, so a full match implies a record-only match.
            if filter.matches(record, received) {
                assert!(judged, "matches() accepted what matches_record() refused");
            }
            for element in filter.elements() {
                let _ = element.matches(record, received);
            }
        }
    }
}

/// Walks the entries of one element.
fn exercise_element(element: &FilterElement<'_>) {
    let _ = format!("{element:?}");
    let record = fixture_records().first();
    match element {
        FilterElement::Authors(keys) | FilterElement::Signers(keys) => {
            assert_eq!(keys.iter().count(), keys.len());
            assert_eq!(keys.is_empty(), keys.iter().next().is_none());
            for key in keys.iter() {
                assert!(keys.contains(&key));
                assert!(PublicKey::from_bytes(key.as_bytes()).is_ok());
            }
        }
        FilterElement::Kinds(kinds) => {
            assert_eq!(kinds.iter().count(), kinds.len());
            for kind in kinds.iter() {
                assert!(kinds.contains(kind));
            }
        }
        FilterElement::Timestamps(timestamps) => {
            assert_eq!(timestamps.iter().count(), timestamps.len());
            for t in timestamps.iter() {
                assert!(timestamps.contains(t));
            }
        }
        FilterElement::Exclude(prefixes) => {
            assert_eq!(prefixes.iter().count(), prefixes.len());
            for prefix in prefixes.iter() {
                assert_eq!(prefix.len(), 32);
            }
            if let Some(record) = record {
                let _ = prefixes.excludes(record);
            }
        }
        FilterElement::IncludedTags(tags) | FilterElement::ExcludedTags(tags) => {
            for tag in tags.iter() {
                assert!(tags.contains(tag));
                check_tag(tag.as_bytes());
            }
        }
        _ => {}
    }
}

/// A few signed records of different authors, kinds, times and tags, made
/// once, that filters are matched against.
fn fixture_records() -> &'static [OwnedRecord] {
    static RECORDS: OnceLock<Vec<OwnedRecord>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let alice = SecretKey::from_bytes(&[0xa1; 32]);
        let bob = SecretKey::from_bytes(&[0xb0; 32]);
        let mention = OwnedTag::notify_public_key(&bob.public());
        let times = [0, 1_700_000_000_000_000_000, i64::MAX as u64];
        let mut records = Vec::new();
        for (i, nanos) in times.into_iter().enumerate() {
            let Ok(timestamp) = Timestamp::from_nanos(nanos) else {
                panic!("fixture timestamp {nanos} is out of range");
            };
            for (j, (signer, kind)) in [(&alice, Kind::MICROBLOG_ROOT), (&bob, Kind::PROFILE)]
                .into_iter()
                .enumerate()
            {
                let label = [i as u8, j as u8];
                let mut builder = RecordBuilder::new(kind, timestamp)
                    .nonce(Nonce::from_key(&label))
                    .payload(b"fixture");
                if j == 0 {
                    builder = builder.tag(&mention);
                }
                match builder.build(signer) {
                    Ok(record) => records.push(record),
                    Err(e) => panic!("fixture record {label:?} could not be built: {e}"),
                }
            }
        }
        records
    })
}

/// Parses `data` as a user bootstrap, a server bootstrap, and each of its
/// lines as a URL.
///
/// Parsing normalises: user bootstraps may list `mopub0` keys but are
/// written with `mosrv0` keys, and URLs are written in their normal form. So
/// the checks are that the written text parses back to the same value, and
/// for user bootstraps that it differs from the input only in those key
/// prefixes.
pub fn fuzz_bootstrap(data: &[u8]) {
    if let Ok(bootstrap) = UserBootstrap::from_bytes(data) {
        let text = bootstrap.to_text();
        // A valid input is UTF-8, so the lossy conversion is exact here.
        let input = String::from_utf8_lossy(data);
        assert_eq!(text, input.replace(" mopub0", " mosrv0"));
        assert_eq!(UserBootstrap::parse(&text).as_ref(), Ok(&bootstrap));
        assert_eq!(
            UserBootstrap::new(bootstrap.entries().to_vec()).as_ref(),
            Ok(&bootstrap)
        );
        for entry in bootstrap.entries() {
            assert!(!entry.usage.is_empty());
            assert!(
                bootstrap
                    .servers_with(entry.usage)
                    .any(|s| s == entry.server)
            );
        }
    }
    if let Ok(bootstrap) = ServerBootstrap::from_bytes(data) {
        let text = bootstrap.to_text();
        for url in bootstrap.urls() {
            check_url(&url.to_string());
        }
        match ServerBootstrap::parse(&text) {
            Ok(again) => {
                assert_eq!(again, bootstrap);
                assert_eq!(again.to_text(), text);
                assert_eq!(
                    ServerBootstrap::new(bootstrap.urls().to_vec()).as_ref(),
                    Ok(&bootstrap)
                );
            }
            // The normal form of a URL can be longer than the text it was
            // read from (it always ends with `/`, and an IPv6 address may
            // gain digits), so a bootstrap near the limit may not fit once
            // rewritten. Anything else is a bug.
            Err(BootstrapError::TooLong { len }) => {
                assert_eq!(len, text.len());
                assert!(len > MAX_BOOTSTRAP_LEN && len > data.len());
            }
            Err(e) => panic!("a server bootstrap's own text was refused: {e}"),
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_url(text);
        for line in text.split('\n') {
            check_url(line);
        }
    }
}

/// Parses a URL; when it parses, its written form parses to the same URL and
/// is written the same way again.
fn check_url(text: &str) {
    let Ok(url) = Url::parse(text) else {
        return;
    };
    let written = url.to_string();
    let again =
        Url::parse(&written).unwrap_or_else(|e| panic!("{written:?}, a URL's own form: {e}"));
    assert_eq!(again, url);
    assert_eq!(again.to_string(), written);
    let _ = (url.authority(), url.websocket_uri(), url.is_onion());
}

/// Parses `data` (as text, invalid UTF-8 replaced) with every printable
/// parser, both as it is and behind each printable prefix.
///
/// Each printable form is canonical, so whatever parses must encode back to
/// exactly the same text. The kind and timestamp parsers run on the text as
/// well: what they accept must survive a trip through `Display`.
pub fn fuzz_printable(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_printable(&text);
    for prefix in Prefix::ALL {
        check_printable(&format!("{prefix}{text}"));
    }
    if let Ok(kind) = text.parse::<Kind>() {
        assert_eq!(kind.to_string().parse::<Kind>(), Ok(kind));
    }
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        assert_eq!(timestamp.to_string().parse::<Timestamp>(), Ok(timestamp));
        assert_eq!(
            timestamp.as_nanos().to_string().parse::<Timestamp>(),
            Ok(timestamp)
        );
    }
}

/// Every printable parser on one string.
fn check_printable(s: &str) {
    if let Ok(bytes) = printable::zbase32_decode(s) {
        assert_eq!(printable::zbase32_encode(&bytes), s);
        assert_eq!(printable::encoded_len(bytes.len()), s.len());
    }
    for prefix in Prefix::ALL {
        if let Ok(bytes) = printable::decode(prefix, s) {
            assert_eq!(printable::encode(prefix, &bytes), s);
        }
    }
    if let Some(prefix) = Prefix::detect(s) {
        assert!(s.starts_with(prefix.as_str()));
    }
    if let Ok(bytes) = printable::decode_fixed::<32>(Prefix::UserPublicKey, s) {
        assert_eq!(printable::encode(Prefix::UserPublicKey, &bytes), s);
    }
    if let Ok(key) = PublicKey::from_printable(s) {
        assert_eq!(key.to_printable(), s);
    }
    if let Ok(key) = PublicKey::from_server_printable(s) {
        assert_eq!(key.to_server_printable(), s);
    }
    if let Ok(key) = s.parse::<PublicKey>() {
        assert!(key.to_printable() == s || key.to_server_printable() == s);
    }
    if let Ok(key) = SecretKey::from_printable(s) {
        assert_eq!(key.to_printable(), s);
        assert_eq!(
            key.public(),
            SecretKey::from_bytes(&key.to_bytes()).public()
        );
    }
    if let Ok(reference) = Reference::from_printable(s) {
        assert_eq!(reference.to_printable(), s);
    }
    if let Ok(id) = Id::from_printable(s) {
        assert_eq!(id.to_printable(), s);
    }
    if let Ok(address) = Address::from_printable(s) {
        assert_eq!(address.to_printable(), s);
    }
    if let Ok(key) = EncryptedSecretKey::from_printable(s) {
        assert_eq!(key.to_printable(), s);
    }
    if let Ok(record) = OwnedRecord::from_printable(s) {
        assert_eq!(record.to_printable(), s);
    }
}

/// Decodes `data` as a protocol message, owned and borrowed; when it
/// decodes, encoding it gives the input back.
pub fn fuzz_message(data: &[u8]) {
    if let Ok(borrowed) = crate::MessageRef::decode(data) {
        assert_eq!(
            borrowed.encode().ok().as_deref(),
            Some(data),
            "a decoded message must encode to its input"
        );
    }
    if let Ok(message) = crate::Message::decode(data) {
        assert_eq!(
            message.encode().ok().as_deref(),
            Some(data),
            "a decoded message must encode to its input"
        );
    }
}
