//! Property tests: values built from arbitrary parts decode to what was
//! encoded, and arbitrary bytes or text never make a parser panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use mosaic_core::fuzzing::{fuzz_bootstrap, fuzz_filter, fuzz_printable, fuzz_record};
use mosaic_core::printable::{self, Prefix};
use mosaic_core::{
    Address, EncryptedSecretKey, Filter, FilterBuilder, FilterElement, Id, Kind, Nonce,
    OwnedRecord, OwnedTag, PublicKey, Record, RecordBuilder, Reference, SecretKey, ServerBootstrap,
    ServerUsage, Tag, TagSet, TagType, Timestamp, Url, UserBootstrap, UserBootstrapEntry,
};
use proptest::collection::{hash_set, vec};
use proptest::prelude::*;

/// Cases per property: enough to find layout slips, few enough that the
/// suite stays fast (signing and verifying dominate).
const CASES: u32 = 256;
/// Cases for the properties that sign one or more records per case.
const SIGNING_CASES: u32 = 96;

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        Just(0u64),
        Just(i64::MAX as u64),
        0..=i64::MAX as u64,
        1_500_000_000_000_000_000..1_900_000_000_000_000_000u64,
    ]
    .prop_map(|nanos| Timestamp::from_nanos(nanos).expect("below 2^63"))
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        any::<u64>().prop_map(Kind::from_u64),
        prop::sample::select(Kind::NAMED.iter().map(|&(_, k)| k).collect::<Vec<_>>()),
    ]
}

fn tag() -> impl Strategy<Value = OwnedTag> {
    (any::<u16>(), vec(any::<u8>(), 0..48))
        .prop_map(|(t, value)| OwnedTag::new(TagType(t), &value).expect("short value"))
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(|seed| SecretKey::from_bytes(&seed).public())
}

fn id() -> impl Strategy<Value = Id> {
    any::<[u8; 48]>().prop_map(|mut bytes| {
        bytes[0] &= 0x7f;
        Id::from_bytes(&bytes).expect("first bit is 0")
    })
}

/// The parts of a record.
#[derive(Debug, Clone)]
struct RecordParts {
    kind: Kind,
    timestamp: Timestamp,
    nonce: [u8; 8],
    signer: [u8; 32],
    subkey_of: Option<[u8; 32]>,
    tags: Vec<OwnedTag>,
    payload: Vec<u8>,
    zstd: bool,
    from_author: bool,
}

fn record_parts() -> impl Strategy<Value = RecordParts> {
    (
        kind(),
        timestamp(),
        any::<[u8; 8]>(),
        any::<[u8; 32]>(),
        proptest::option::of(any::<[u8; 32]>()),
        vec(tag(), 0..5),
        prop_oneof![
            vec(any::<u8>(), 0..600),
            ".{0,200}".prop_map(String::into_bytes),
        ],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(kind, timestamp, nonce, signer, subkey_of, tags, payload, zstd, from_author)| {
                // Printable kinds carry text.
                let payload = if kind.is_printable() {
                    String::from_utf8_lossy(&payload).into_owned().into_bytes()
                } else {
                    payload
                };
                RecordParts {
                    kind,
                    timestamp,
                    nonce,
                    signer,
                    subkey_of,
                    tags,
                    payload,
                    zstd,
                    from_author,
                }
            },
        )
}

fn build(parts: &RecordParts) -> OwnedRecord {
    let signer = SecretKey::from_bytes(&parts.signer);
    let mut builder = RecordBuilder::new(parts.kind, parts.timestamp)
        .nonce(Nonce::from_bytes_forced(parts.nonce))
        .payload(&parts.payload)
        .zstd(parts.zstd)
        .from_author(parts.from_author);
    if let Some(master) = parts.subkey_of {
        builder = builder.author(SecretKey::from_bytes(&master).public());
    }
    for tag in &parts.tags {
        builder = builder.tag(tag);
    }
    builder
        .build(&signer)
        .expect("the parts make a valid record")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(SIGNING_CASES))]

    #[test]
    fn built_records_decode_to_their_parts(parts in record_parts()) {
        let built = build(&parts);
        let record = Record::from_bytes(built.as_bytes()).expect("a built record is valid");
        let signer = SecretKey::from_bytes(&parts.signer).public();
        let author = parts
            .subkey_of
            .map_or(signer, |master| SecretKey::from_bytes(&master).public());
        prop_assert_eq!(record.kind(), parts.kind);
        prop_assert_eq!(record.timestamp(), parts.timestamp);
        prop_assert_eq!(record.id().timestamp(), parts.timestamp);
        prop_assert_eq!(record.nonce(), Nonce::from_bytes_forced(parts.nonce));
        prop_assert_eq!(record.author(), author);
        prop_assert_eq!(record.signing_key(), signer);
        prop_assert_eq!(record.address(), Address::new(record.nonce(), parts.kind, author));
        prop_assert_eq!(record.flags().is_zstd(), parts.zstd);
        prop_assert_eq!(record.flags().is_from_author(), parts.from_author);
        let tags: Vec<Vec<u8>> = record.tags().iter().map(|t| t.as_bytes().to_vec()).collect();
        let expected: Vec<Vec<u8>> = parts.tags.iter().map(|t| t.as_bytes().to_vec()).collect();
        prop_assert_eq!(tags, expected);
        prop_assert_eq!(&*record.payload_decompressed().expect("decompresses"), &parts.payload[..]);
        if !parts.zstd {
            prop_assert_eq!(record.payload(), &parts.payload[..]);
        }
        prop_assert_eq!(record.len() % 8, 0);
        let printed = OwnedRecord::from_printable(&record.to_printable()).expect("printable parses");
        prop_assert_eq!(&printed, &built);
        fuzz_record(built.as_bytes());
    }

    #[test]
    fn any_single_bit_flip_of_a_record_is_refused(
        parts in record_parts(),
        at in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let built = build(&parts);
        let mut bytes = built.into_vec();
        let at = at.index(bytes.len());
        // Flag bytes 3 to 7 are ignored by the reader, but they are signed,
        // so flipping them breaks the hash like any other signed byte.
        bytes[at] ^= 1 << bit;
        prop_assert!(
            Record::from_bytes(&bytes).is_err(),
            "flipping bit {} of byte {} went unnoticed", bit, at
        );
    }

    #[test]
    fn built_filters_match_what_they_say(
        signer in any::<[u8; 32]>(),
        other in any::<[u8; 32]>(),
        record_time in timestamp(),
        since in timestamp(),
        record_kind in kind(),
        filter_kind in kind(),
    ) {
        let signer = SecretKey::from_bytes(&signer);
        let other = SecretKey::from_bytes(&other).public();
        let record = RecordBuilder::new(record_kind, record_time)
            .nonce(Nonce::from_key(b"p"))
            .build(&signer)
            .expect("valid record");
        let filter = FilterBuilder::new()
            .authors([other, signer.public()])
            .kinds([filter_kind])
            .since(since)
            .build()
            .expect("small filter");
        prop_assert_eq!(
            filter.matches_record(&record),
            record_kind == filter_kind && record_time >= since
        );
        let strangers = FilterBuilder::new().authors([other]).build().expect("small filter");
        prop_assert_eq!(strangers.matches_record(&record), other == signer.public());
    }
}

/// The parts of a filter.
#[derive(Debug, Clone)]
struct FilterParts {
    authors: Option<Vec<PublicKey>>,
    signers: Option<Vec<PublicKey>>,
    kinds: Option<Vec<Kind>>,
    timestamps: Option<Vec<Timestamp>>,
    included: Vec<Vec<OwnedTag>>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    received_since: Option<Timestamp>,
    received_until: Option<Timestamp>,
    exclude: Option<Vec<Id>>,
    excluded: Vec<Vec<OwnedTag>>,
}

fn filter_parts() -> impl Strategy<Value = FilterParts> {
    use proptest::option::of;
    (
        (
            of(vec(public_key(), 0..3)),
            of(vec(public_key(), 0..3)),
            of(vec(kind(), 0..6)),
            of(vec(timestamp(), 0..6)),
            vec(vec(tag(), 0..4), 0..3),
        ),
        (
            of(timestamp()),
            of(timestamp()),
            of(timestamp()),
            of(timestamp()),
            of(vec(id(), 0..4)),
            vec(vec(tag(), 0..4), 0..3),
        ),
    )
        .prop_map(
            |(
                (authors, signers, kinds, timestamps, included),
                (since, until, received_since, received_until, exclude, excluded),
            )| FilterParts {
                authors,
                signers,
                kinds,
                timestamps,
                included,
                since,
                until,
                received_since,
                received_until,
                exclude,
                excluded,
            },
        )
}

fn tag_lists(lists: &[Vec<OwnedTag>]) -> Vec<Vec<Vec<u8>>> {
    lists
        .iter()
        .map(|list| list.iter().map(|t| t.as_bytes().to_vec()).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn built_filters_decode_to_their_parts(parts in filter_parts()) {
        let mut builder = FilterBuilder::new();
        if let Some(keys) = &parts.authors {
            builder = builder.authors(keys.iter().copied());
        }
        if let Some(keys) = &parts.signers {
            builder = builder.signers(keys.iter().copied());
        }
        if let Some(kinds) = &parts.kinds {
            builder = builder.kinds(kinds.iter().copied());
        }
        if let Some(timestamps) = &parts.timestamps {
            builder = builder.timestamps(timestamps.iter().copied());
        }
        for list in &parts.included {
            builder = builder.included_tags(list.iter().map(|t| &**t));
        }
        for list in &parts.excluded {
            builder = builder.excluded_tags(list.iter().map(|t| &**t));
        }
        if let Some(t) = parts.since {
            builder = builder.since(t);
        }
        if let Some(t) = parts.until {
            builder = builder.until(t);
        }
        if let Some(t) = parts.received_since {
            builder = builder.received_since(t);
        }
        if let Some(t) = parts.received_until {
            builder = builder.received_until(t);
        }
        if let Some(ids) = &parts.exclude {
            builder = builder.exclude(ids.iter().copied());
        }
        let built = builder.build().expect("small filter");
        let filter = Filter::from_bytes(built.as_bytes()).expect("a built filter is valid");

        prop_assert_eq!(filter.authors().map(|k| k.iter().collect::<Vec<_>>()), parts.authors.clone());
        prop_assert_eq!(filter.signers().map(|k| k.iter().collect::<Vec<_>>()), parts.signers.clone());
        prop_assert_eq!(filter.kinds().map(|k| k.iter().collect::<Vec<_>>()), parts.kinds.clone());
        prop_assert_eq!(
            filter.timestamps().map(|t| t.iter().collect::<Vec<_>>()),
            parts.timestamps.clone()
        );
        prop_assert_eq!(filter.since(), parts.since);
        prop_assert_eq!(filter.until(), parts.until);
        prop_assert_eq!(filter.received_since(), parts.received_since);
        prop_assert_eq!(filter.received_until(), parts.received_until);
        let included: Vec<Vec<Vec<u8>>> = filter
            .included_tags()
            .map(|l| l.iter().map(|t| t.as_bytes().to_vec()).collect())
            .collect();
        prop_assert_eq!(included, tag_lists(&parts.included));
        let mut excluded = Vec::new();
        let mut exclude = None;
        for element in filter.elements() {
            match element {
                FilterElement::ExcludedTags(l) => {
                    excluded.push(l.iter().map(|t| t.as_bytes().to_vec()).collect::<Vec<_>>());
                }
                FilterElement::Exclude(p) => {
                    exclude = Some(p.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
                }
                _ => {}
            }
        }
        prop_assert_eq!(excluded, tag_lists(&parts.excluded));
        prop_assert_eq!(
            exclude,
            parts.exclude.as_ref().map(|ids| ids.iter().map(|id| id.as_bytes()[..32].to_vec()).collect())
        );
        let narrow = parts.authors.is_some()
            || parts.signers.is_some()
            || parts.kinds.is_some()
            || parts.timestamps.is_some()
            || !parts.included.is_empty();
        prop_assert_eq!(filter.is_narrow(), narrow);
        fuzz_filter(built.as_bytes());
    }

    #[test]
    fn user_bootstraps_round_trip(
        servers in hash_set(any::<[u8; 32]>(), 1..=16),
        usages in vec(1..=7u8, 16),
    ) {
        let entries: Vec<UserBootstrapEntry> = servers
            .iter()
            .zip(&usages)
            .map(|(seed, &bits)| UserBootstrapEntry {
                usage: ServerUsage::from_bits(bits).expect("1 to 7"),
                server: SecretKey::from_bytes(seed).public(),
            })
            .collect();
        let bootstrap = UserBootstrap::new(entries.clone()).expect("valid entries");
        let text = bootstrap.to_text();
        prop_assert!(text.len() <= 983);
        prop_assert_eq!(UserBootstrap::parse(&text), Ok(bootstrap.clone()));
        prop_assert_eq!(UserBootstrap::from_bytes(text.as_bytes()), Ok(bootstrap.clone()));
        // The user-key form of the same servers reads the same.
        let user_form = text.replace(" mosrv0", " mopub0");
        prop_assert_eq!(UserBootstrap::parse(&user_form), Ok(bootstrap.clone()));
        prop_assert_eq!(bootstrap.entries(), &entries[..]);
        fuzz_bootstrap(text.as_bytes());
        fuzz_bootstrap(user_form.as_bytes());
    }

    #[test]
    fn server_bootstraps_round_trip(urls in vec(url_text(), 1..8)) {
        let parsed: Vec<Url> = urls
            .iter()
            .map(|u| Url::parse(u).unwrap_or_else(|e| panic!("{u}: {e}")))
            .collect();
        for (text, url) in urls.iter().zip(&parsed) {
            let written = url.to_string();
            prop_assert_eq!(Url::parse(&written), Ok(url.clone()), "{} as {}", text, written);
        }
        let mut unique: Vec<Url> = Vec::new();
        let mut unique_text: Vec<&str> = Vec::new();
        for (text, url) in urls.iter().zip(parsed) {
            if !unique.contains(&url) {
                unique.push(url);
                unique_text.push(text);
            }
        }
        let bootstrap = ServerBootstrap::new(unique.clone()).expect("few short URLs");
        let text = bootstrap.to_text();
        prop_assert_eq!(ServerBootstrap::parse(&text), Ok(bootstrap.clone()));
        prop_assert_eq!(bootstrap.urls(), &unique[..]);
        // The URLs as given, before normalisation, read the same.
        let raw = format!("S\n{}", unique_text.join("\n"));
        prop_assert_eq!(ServerBootstrap::parse(&raw), Ok(bootstrap.clone()));
        fuzz_bootstrap(text.as_bytes());
        fuzz_bootstrap(raw.as_bytes());
    }
}

/// Text of a valid Mosaic URL, in assorted spellings.
fn url_text() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        (
            vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 0..3),
            "[a-z][a-z0-9]{0,5}"
        )
            .prop_map(|(mut labels, last)| {
                labels.push(last);
                labels.join(".")
            }),
        any::<[u8; 4]>().prop_map(|b| Ipv4Addr::from(b).to_string()),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", Ipv6Addr::from(s))),
    ];
    (
        prop::sample::select(vec![
            "mosaic",
            "mosaictcp",
            "mosaicwss",
            "MOSAIC",
            "MosaicWSS",
        ]),
        host,
        proptest::option::of(1..=u16::MAX),
        prop::sample::select(vec!["", "/", "/?q=1", "#f"]),
        any::<bool>(),
    )
        .prop_map(|(scheme, host, port, tail, upper)| {
            let host = if upper {
                host.to_ascii_uppercase()
            } else {
                host
            };
            match port {
                Some(port) => format!("{scheme}://{host}:{port}{tail}"),
                None => format!("{scheme}://{host}{tail}"),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn zbase32_round_trips(bytes in vec(any::<u8>(), 0..120)) {
        let text = printable::zbase32_encode(&bytes);
        prop_assert_eq!(text.len(), printable::encoded_len(bytes.len()));
        prop_assert_eq!(printable::zbase32_decode(&text), Ok(bytes.clone()));
        for prefix in Prefix::ALL {
            let full = printable::encode(prefix, &bytes);
            prop_assert_eq!(Prefix::detect(&full), Some(prefix));
            prop_assert_eq!(printable::decode(prefix, &full), Ok(bytes.clone()));
        }
        fuzz_printable(text.as_bytes());
    }

    #[test]
    fn typed_printables_round_trip(
        seed in any::<[u8; 32]>(),
        id in id(),
        nonce in any::<[u8; 8]>(),
        kind in kind(),
        log_n in 1..=22u8,
        body in any::<[u8; 56]>(),
    ) {
        let secret = SecretKey::from_bytes(&seed);
        let public = secret.public();
        prop_assert_eq!(SecretKey::from_printable(&secret.to_printable()), Ok(secret.clone()));
        prop_assert_eq!(PublicKey::from_printable(&public.to_printable()), Ok(public));
        prop_assert_eq!(
            PublicKey::from_server_printable(&public.to_server_printable()),
            Ok(public)
        );
        prop_assert_eq!(public.to_server_printable().parse::<PublicKey>(), Ok(public));
        prop_assert!(PublicKey::from_server_printable(&public.to_printable()).is_err());
        prop_assert!(PublicKey::from_printable(&secret.to_printable()).is_err());

        let address = Address::new(Nonce::from_bytes_forced(nonce), kind, public);
        for reference in [Reference::Id(id), Reference::Address(address)] {
            let text = reference.to_printable();
            prop_assert_eq!(Reference::from_printable(&text), Ok(reference));
            prop_assert_eq!(Reference::from_bytes(reference.as_bytes()), Ok(reference));
            fuzz_printable(text.as_bytes());
        }
        prop_assert_eq!(Id::from_printable(&id.to_printable()), Ok(id));
        prop_assert_eq!(Address::from_printable(&address.to_printable()), Ok(address));
        prop_assert!(Id::from_printable(&address.to_printable()).is_err());
        prop_assert!(Address::from_printable(&id.to_printable()).is_err());

        let mut bytes = vec![1, log_n];
        bytes.extend_from_slice(&body);
        let encrypted = EncryptedSecretKey::from_bytes(&bytes).expect("version 1, log_n in range");
        let text = encrypted.to_printable();
        prop_assert_eq!(EncryptedSecretKey::from_printable(&text), Ok(encrypted.clone()));
        for text in [secret.to_printable(), public.to_printable(), public.to_server_printable(), text] {
            fuzz_printable(text.as_bytes());
        }
    }

    #[test]
    fn timestamps_and_kinds_round_trip_through_text(t in timestamp(), k in any::<u64>()) {
        prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        prop_assert_eq!(t.as_nanos().to_string().parse::<Timestamp>(), Ok(t));
        prop_assert_eq!(Timestamp::try_from(&t.to_be_bytes()[..]), Ok(t));
        let kind = Kind::from_u64(k);
        prop_assert_eq!(kind.to_string().parse::<Kind>(), Ok(kind));
        prop_assert_eq!(Kind::try_from(&kind.to_be_bytes()[..]), Ok(kind));
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_parser(bytes in vec(any::<u8>(), 0..1200)) {
        fuzz_record(&bytes);
        fuzz_filter(&bytes);
        fuzz_bootstrap(&bytes);
        fuzz_printable(&bytes);
        let _ = Record::len_from_header(&bytes);
        let _ = Record::danger_from_bytes_unverified(&bytes);
        let _ = TagSet::from_bytes(&bytes);
        let _ = Tag::from_bytes(&bytes);
        let _ = Filter::len_from_header(&bytes);
        let _ = EncryptedSecretKey::from_bytes(&bytes);
        let _ = Reference::from_slice(&bytes);
        let _ = PublicKey::try_from(&bytes[..]);
        let _ = Timestamp::try_from(&bytes[..]);
        let _ = Kind::try_from(&bytes[..]);
    }

    #[test]
    fn arbitrary_text_never_panics_a_parser(text in any::<String>()) {
        fuzz_bootstrap(text.as_bytes());
        fuzz_printable(text.as_bytes());
        let _ = Url::parse(&text);
        let _ = text.parse::<Kind>();
        let _ = text.parse::<Timestamp>();
        let _ = text.parse::<PublicKey>();
        let _ = text.parse::<SecretKey>();
        let _ = text.parse::<EncryptedSecretKey>();
    }

    #[test]
    fn date_like_text_parses_or_is_refused_cleanly(
        text in "[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}[T t]?[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\\.[0-9]{0,11})?(Z|z|[+-][0-9]{1,2}:[0-9]{1,2})?"
    ) {
        if let Ok(t) = text.parse::<Timestamp>() {
            prop_assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        }
        fuzz_printable(text.as_bytes());
    }

    #[test]
    fn url_like_text_parses_or_is_refused_cleanly(
        text in "[a-zA-Z]{0,10}://[a-zA-Z0-9.:@\\[\\]-]{0,40}(/[a-z?#=]{0,6})?"
    ) {
        fuzz_bootstrap(text.as_bytes());
        fuzz_bootstrap(format!("S\n{text}").as_bytes());
    }
}
