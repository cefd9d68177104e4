//! Unit tests of protocol messages: every type round trips, exact layouts,
//! framing, and each refusal.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::keys::{KeyError, SecretKey};
use crate::kind::Kind;
use crate::record::{RecordBuilder, RecordError};
use crate::reference::{Address, Nonce};
use crate::timestamp::Timestamp;

const MICROBLOG: Kind = Kind::from_u64(0x0000_0001_0001_001c);

/// Two valid records, built once.
fn records() -> &'static [OwnedRecord; 2] {
    static RECORDS: OnceLock<[OwnedRecord; 2]> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let key = SecretKey::from_bytes(&[9; 32]);
        let build = |payload: &[u8], nanos: u64| {
            RecordBuilder::new(MICROBLOG, Timestamp::from_nanos(nanos).unwrap())
                .nonce(Nonce::from_key(payload))
                .payload(payload)
                .build(&key)
                .unwrap()
        };
        [
            build(b"", 1_750_000_000_000_000_000),
            build(b"Hello, Mosaic!", 1_750_000_001_000_000_000),
        ]
    })
}

fn key(seed: u8) -> PublicKey {
    SecretKey::from_bytes(&[seed; 32]).public()
}

/// A filter with one kinds element.
fn kinds_filter() -> OwnedFilter {
    let mut bytes = vec![24, 0, 0, 0, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&MICROBLOG.to_be_bytes());
    OwnedFilter::from_vec(bytes).unwrap()
}

/// A filter with one since element.
fn since_filter(nanos: u64) -> OwnedFilter {
    let mut bytes = vec![24, 0, 0, 0, 0, 0, 0, 0, 0x80, 2, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&nanos.to_be_bytes());
    OwnedFilter::from_vec(bytes).unwrap()
}

fn address() -> Address {
    Address::new(Nonce::from_key(b"slot"), MICROBLOG, key(3))
}

/// The identity point: a valid encoding of a small-order key.
const SMALL_ORDER_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    k[0] = 1;
    k
};

/// One message of every type.
fn samples() -> Vec<Message> {
    let [r0, r1] = records().clone();
    let blob = b"Hello BLOB".to_vec();
    vec![
        Message::Hello {
            max_version: 0,
            applications: vec![0, 1, 99],
        },
        Message::HelloAuth {
            signature: [0x5a; 64],
        },
        Message::Get {
            query_id: QueryId(0x3412),
            references: vec![Reference::Id(r0.id()), Reference::Address(address())],
        },
        Message::Query {
            query_id: QueryId(7),
            limit: 50,
            filter: kinds_filter(),
        },
        Message::Subscribe {
            query_id: QueryId(8),
            limit: 0,
            filter: since_filter(1_750_000_000_000_000_000),
        },
        Message::Unsubscribe {
            query_id: QueryId(8),
        },
        Message::Submission { record: r1.clone() },
        Message::DhtLookup {
            query_id: QueryId(9),
            target: DhtTarget::Server,
            public_key: key(4),
        },
        Message::blob_submission(blob.clone()),
        Message::BlobGet {
            hash: blob_hash(&blob),
        },
        Message::HelloAck {
            code: ResultCode::SUCCESS,
            version: 0,
            applications: vec![0, 1],
        },
        Message::Record {
            query_id: QueryId(7),
            record: r0.clone(),
        },
        Message::LocallyComplete {
            query_id: QueryId(8),
        },
        Message::QueryClosed {
            query_id: QueryId(7),
            code: ResultCode::TOO_OPEN,
        },
        Message::submission_result(ResultCode::ACCEPTED, &r1.id()),
        Message::DhtResponse {
            query_id: QueryId(9),
            target: DhtTarget::User,
            public_key: key(4),
            code: ResultCode::SUCCESS,
            seq: 3,
            signature: [0x33; 64],
            value: b"U\n1 mosrv0x".to_vec(),
        },
        Message::BlobSubmissionResult {
            code: ResultCode::ACCEPTED,
            hash: blob_hash(&blob),
        },
        Message::blob_found(blob),
        Message::Unrecognized,
        Message::Closing {
            code: ResultCode::SHUTTING_DOWN,
        },
    ]
}

fn encode(m: &Message) -> Vec<u8> {
    m.encode().unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

#[test]
fn every_type_round_trips() {
    let samples = samples();
    let types: BTreeSet<MessageType> = samples.iter().map(Message::message_type).collect();
    assert_eq!(types, MessageType::ALL.into_iter().collect());
    for m in &samples {
        let bytes = encode(m);
        assert_eq!(bytes.len(), m.encoded_len(), "{m:?}");
        assert_eq!(bytes[0], m.message_type().as_u8());
        assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(m));
        let borrowed = MessageRef::decode(&bytes).unwrap();
        assert_eq!(borrowed, m.as_message_ref());
        assert_eq!(borrowed.encode().unwrap(), bytes);
        assert_eq!(borrowed.into_owned(), *m);
        let mut out = vec![0xAA];
        m.encode_into(&mut out).unwrap();
        assert_eq!(out[1..], bytes[..]);
    }
}

#[test]
fn layouts_are_exact() {
    let cases: [(Message, &str); 11] = [
        (
            Message::Hello {
                max_version: 1,
                applications: vec![1],
            },
            "10 0c0000 0000 0100 01000000",
        ),
        (
            Message::HelloAck {
                code: ResultCode::SUCCESS,
                version: 0,
                applications: vec![0, 1],
            },
            "90 100000 01 00 0000 00000000 01000000",
        ),
        (
            Message::Unsubscribe {
                query_id: QueryId::from_bytes([0x12, 0x34]),
            },
            "04 080000 1234 0000",
        ),
        (
            Message::LocallyComplete {
                query_id: QueryId(0x3412),
            },
            "81 080000 1234 0000",
        ),
        (
            Message::QueryClosed {
                query_id: QueryId(0x3412),
                code: ResultCode::TOO_OPEN,
            },
            "82 080000 1234 25 00",
        ),
        (
            Message::Closing {
                code: ResultCode::SHUTTING_DOWN,
            },
            "fe 40 000000000000",
        ),
        (Message::Unrecognized, "f0 080000 00000000"),
        (
            Message::BlobGet { hash: [0xab; 32] },
            &format!("08 00000000000000 {}", "ab".repeat(32)),
        ),
        (
            Message::BlobSubmissionResult {
                code: ResultCode::ACCEPTED,
                hash: [0xab; 32],
            },
            &format!("85 02 000000000000 {}", "ab".repeat(32)),
        ),
        (
            Message::HelloAuth {
                signature: [0x5a; 64],
            },
            &format!("11 480000 00000000 {}", "5a".repeat(64)),
        ),
        (
            Message::BlobResult {
                code: ResultCode::NOT_FOUND,
                hash: [0xab; 32],
                data: vec![],
            },
            &format!("86 10 000000000000 {}", "ab".repeat(32)),
        ),
    ];
    for (m, expected) in cases {
        assert_eq!(encode(&m), hex(expected), "{m:?}");
        assert_eq!(Message::decode(&hex(expected)), Ok(m));
    }

    let blob = b"Hello BLOB";
    let hash = blob_hash(blob);
    assert_eq!(
        encode(&Message::blob_submission(blob.to_vec())),
        [&hex("07 00 0a0000000000")[..], &hash, blob].concat()
    );
    assert_eq!(
        encode(&Message::blob_found(blob.to_vec())),
        [&hex("86 01 0a0000000000")[..], &hash, blob].concat()
    );

    let pk = key(4);
    let lookup = Message::DhtLookup {
        query_id: QueryId(0x0201),
        target: DhtTarget::User,
        public_key: pk,
    };
    assert_eq!(
        encode(&lookup),
        [&hex("06 280000 01 00 0102")[..], pk.as_bytes()].concat()
    );
    let not_found = Message::DhtResponse {
        query_id: QueryId(0x0201),
        target: DhtTarget::Server,
        public_key: pk,
        code: ResultCode::NOT_FOUND,
        seq: 0,
        signature: [0; 64],
        value: vec![],
    };
    assert_eq!(
        encode(&not_found),
        [&hex("84 700000 10 02 0102")[..], pk.as_bytes(), &[0; 72]].concat()
    );
    let found = Message::DhtResponse {
        query_id: QueryId(0x0201),
        target: DhtTarget::User,
        public_key: pk,
        code: ResultCode::SUCCESS,
        seq: -2,
        signature: [7; 64],
        value: b"U".to_vec(),
    };
    assert_eq!(
        encode(&found),
        [
            &hex("84 710000 01 01 0102")[..],
            pk.as_bytes(),
            &hex("feffffffffffffff"),
            &[7; 64],
            b"U"
        ]
        .concat()
    );

    let record = &records()[1];
    let submission = encode(&Message::Submission {
        record: record.clone(),
    });
    let len = (8 + record.len()) as u32;
    assert_eq!(submission[..4], [0x05, len as u8, (len >> 8) as u8, 0]);
    assert_eq!(submission[4..8], [0; 4]);
    assert_eq!(&submission[8..], record.as_bytes());
    let result = encode(&Message::submission_result(
        ResultCode::DUPLICATE,
        &record.id(),
    ));
    assert_eq!(result[..8], hex("83 280000 03 000000")[..]);
    assert_eq!(result[8..], record.id().as_bytes()[..32]);
}

#[test]
fn message_type_table() {
    for byte in 0..=255u8 {
        let known = MessageType::ALL.iter().any(|t| t.as_u8() == byte);
        assert_eq!(MessageType::from_u8(byte).is_some(), known, "{byte:#x}");
        if !known {
            assert_eq!(frame_len(&[byte]), Err(MessageError::UnknownType { byte }));
            assert_eq!(
                Message::decode(&[byte, 8, 0, 0, 0, 0, 0, 0]),
                Err(MessageError::UnknownType { byte })
            );
        }
    }
    let both: Vec<_> = MessageType::ALL
        .into_iter()
        .filter(|t| t.is_from_client() && t.is_from_server())
        .collect();
    assert_eq!(both, [MessageType::UNRECOGNIZED]);
    assert!(MessageType::HELLO_AUTH.is_from_client());
    assert!(!MessageType::HELLO_AUTH.is_from_server());
    assert!(MessageType::CLOSING.is_from_server());
    assert!(!MessageType::CLOSING.is_from_client());
    assert_eq!(
        MessageType::BLOB_SUBMISSION_RESULT.name(),
        "BLOB Submission Result"
    );
    let with_codes = MessageType::ALL
        .into_iter()
        .filter(|t| t.has_result_code())
        .count();
    assert_eq!(with_codes, 7);
    for m in samples() {
        assert_eq!(m.is_from_client(), m.message_type().is_from_client());
        assert_eq!(m.is_from_server(), m.message_type().is_from_server());
        assert!(m.encoded_len() >= m.message_type().min_len());
    }
}

/// How many bytes `frame_len` needs before it can tell the length.
fn header_needed(ty: MessageType) -> usize {
    match framing::framing(ty) {
        framing::Framing::Fixed(_) => 1,
        framing::Framing::Length24 { .. } => 4,
        framing::Framing::Data48 => 8,
    }
}

#[test]
fn frame_len_on_partial_headers() {
    assert_eq!(frame_len(&[]), Ok(None));
    for m in samples() {
        let bytes = encode(&m);
        let needed = header_needed(m.message_type());
        for k in 1..=8 {
            let expected = if k < needed { None } else { Some(bytes.len()) };
            assert_eq!(frame_len(&bytes[..k]), Ok(expected), "{m:?} with {k} bytes");
        }
        // A whole buffer with more behind it: only the header is read.
        let mut stream = bytes.clone();
        stream.extend_from_slice(&encode(&Message::Unrecognized));
        assert_eq!(frame_len(&stream), Ok(Some(bytes.len())));
        // Decoding fewer bytes than the header needs is too short.
        if needed > 1 {
            assert_eq!(
                Message::decode(&bytes[..needed - 1]),
                Err(MessageError::TooShort {
                    len: needed - 1,
                    min: m.message_type().min_len(),
                })
            );
        }
    }
}

#[test]
fn frame_len_refuses_bad_lengths_early() {
    let max = MAX_MESSAGE_LEN as u32;
    let over = (max + 1).to_le_bytes();
    assert_eq!(
        frame_len(&[0x05, over[0], over[1], over[2]]),
        Err(MessageError::TooLong {
            len: u64::from(max + 1)
        })
    );
    let at = max.to_le_bytes();
    assert_eq!(
        frame_len(&[0x80, at[0], at[1], at[2]]),
        Ok(Some(MAX_MESSAGE_LEN))
    );
    assert_eq!(
        frame_len(&[0xff, 0xff, 0xff, 0xff]),
        Err(MessageError::UnknownType { byte: 0xff })
    );
    assert_eq!(
        frame_len(&[0x01, 0xff, 0xff, 0xff]),
        Err(MessageError::TooLong { len: 0xff_ffff })
    );
    // Below the type's minimum.
    assert_eq!(
        frame_len(&[0x02, 8, 0, 0]),
        Err(MessageError::TooShort { len: 8, min: 16 })
    );
    assert_eq!(
        frame_len(&[0x05, 16, 0, 0]),
        Err(MessageError::TooShort { len: 16, min: 224 })
    );
    // Not a length the type allows.
    for (header, ty) in [
        ([0x04, 16, 0, 0], MessageType::UNSUBSCRIBE),
        ([0x11, 80, 0, 0], MessageType::HELLO_AUTH),
        ([0x01, 48, 0, 0], MessageType::GET),
        ([0x10, 10, 0, 0], MessageType::HELLO),
        ([0x02, 20, 0, 0], MessageType::QUERY),
    ] {
        assert_eq!(
            frame_len(&header),
            Err(MessageError::InvalidLength {
                message_type: ty,
                len: usize::from(header[1]),
            })
        );
    }
    assert_eq!(
        Message::decode(&hex("04 100000 0100 0000 0000000000000000")),
        Err(MessageError::InvalidLength {
            message_type: MessageType::UNSUBSCRIBE,
            len: 16,
        })
    );
    // BLOB messages: 40 + the u48 data length, which may be huge.
    let data_max = (MAX_MESSAGE_LEN - 40) as u64;
    let ok = data_max.to_le_bytes();
    assert_eq!(
        frame_len(&[0x07, 0, ok[0], ok[1], ok[2], ok[3], ok[4], ok[5]]),
        Ok(Some(MAX_MESSAGE_LEN))
    );
    let over = (data_max + 1).to_le_bytes();
    assert_eq!(
        frame_len(&[
            0x86, 1, over[0], over[1], over[2], over[3], over[4], over[5]
        ]),
        Err(MessageError::TooLong {
            len: MAX_MESSAGE_LEN as u64 + 1
        })
    );
    assert_eq!(
        frame_len(&[0x07, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Err(MessageError::TooLong {
            len: (1u64 << 48) - 1 + 40
        })
    );
}

#[test]
fn oversize_messages_are_not_encoded() {
    let refs = vec![Reference::Address(address()); (MAX_MESSAGE_LEN - 8) / 48 + 1];
    let get = Message::Get {
        query_id: QueryId(1),
        references: refs,
    };
    let len = get.encoded_len() as u64;
    let mut out = vec![1, 2, 3];
    assert_eq!(
        get.encode_into(&mut out),
        Err(MessageError::TooLong { len })
    );
    assert_eq!(out, [1, 2, 3]);

    let biggest = Message::blob_submission(vec![0x42; MAX_MESSAGE_LEN - 40]);
    let bytes = encode(&biggest);
    assert_eq!(bytes.len(), MAX_MESSAGE_LEN);
    assert_eq!(Message::decode(&bytes), Ok(biggest));
    let too_big = Message::blob_submission(vec![0x42; MAX_MESSAGE_LEN - 39]);
    assert_eq!(
        too_big.encode(),
        Err(MessageError::TooLong {
            len: MAX_MESSAGE_LEN as u64 + 1
        })
    );
    let hello = Message::Hello {
        max_version: 0,
        applications: vec![0; MAX_MESSAGE_LEN / 4],
    };
    assert!(matches!(hello.encode(), Err(MessageError::TooLong { .. })));
}

#[test]
fn trailing_and_missing_bytes_are_refused() {
    for m in samples() {
        let bytes = encode(&m);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Message::decode(&longer),
            Err(MessageError::LengthMismatch {
                declared: bytes.len(),
                actual: bytes.len() + 1,
            }),
            "{m:?}"
        );
        let shorter = &bytes[..bytes.len() - 1];
        assert_eq!(
            Message::decode(shorter),
            Err(MessageError::LengthMismatch {
                declared: bytes.len(),
                actual: bytes.len() - 1,
            }),
            "{m:?}"
        );
    }
    assert_eq!(
        Message::decode(&[]),
        Err(MessageError::TooShort { len: 0, min: 8 })
    );
}

/// The offsets each layout reserves as zero.
fn reserved_offsets(ty: MessageType) -> Vec<usize> {
    match ty {
        MessageType::HELLO => vec![4, 5],
        MessageType::HELLO_AUTH | MessageType::SUBMISSION | MessageType::UNRECOGNIZED => {
            vec![4, 5, 6, 7]
        }
        MessageType::GET
        | MessageType::UNSUBSCRIBE
        | MessageType::RECORD
        | MessageType::LOCALLY_COMPLETE => vec![6, 7],
        MessageType::DHT_LOOKUP | MessageType::HELLO_ACK => vec![5],
        MessageType::BLOB_SUBMISSION => vec![1],
        MessageType::BLOB_GET => (1..8).collect(),
        MessageType::QUERY_CLOSED => vec![7],
        MessageType::SUBMISSION_RESULT => vec![5, 6, 7],
        MessageType::BLOB_SUBMISSION_RESULT | MessageType::CLOSING => (2..8).collect(),
        _ => vec![],
    }
}

#[test]
fn reserved_bytes_must_be_zero() {
    let mut checked = 0;
    for m in samples() {
        let bytes = encode(&m);
        for offset in reserved_offsets(m.message_type()) {
            let mut bad = bytes.clone();
            bad[offset] = 1;
            assert_eq!(
                Message::decode(&bad),
                Err(MessageError::ReservedNotZero { offset }),
                "{m:?} at {offset}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 48);
}

#[test]
fn embedded_content_is_validated() {
    // A record whose payload was altered: its hash no longer matches.
    let mut submission = encode(&Message::Submission {
        record: records()[1].clone(),
    });
    let at = 8 + crate::record::HEADER_LEN;
    submission[at] ^= 1;
    assert_eq!(
        Message::decode(&submission),
        Err(MessageError::Record(RecordError::HashMismatch))
    );
    let mut record_msg = encode(&Message::Record {
        query_id: QueryId(1),
        record: records()[0].clone(),
    });
    let sig_at = record_msg.len() - 1;
    record_msg[sig_at] ^= 0x55;
    assert!(matches!(
        Message::decode(&record_msg),
        Err(MessageError::Record(RecordError::Signature(_)))
    ));

    // A filter whose own length disagrees with the message's.
    let mut query = encode(&Message::Query {
        query_id: QueryId(1),
        limit: 0,
        filter: kinds_filter(),
    });
    query[8] = 16;
    assert!(matches!(
        Message::decode(&query),
        Err(MessageError::Filter(_))
    ));

    // An address whose author key is of small order.
    let mut get = encode(&Message::Get {
        query_id: QueryId(1),
        references: vec![Reference::Address(address())],
    });
    get[8 + 16..8 + 48].copy_from_slice(&SMALL_ORDER_KEY);
    assert_eq!(
        Message::decode(&get),
        Err(MessageError::Reference(ReferenceError::AuthorKey(
            KeyError::SmallOrder
        )))
    );

    // An id prefix that starts with a 1 bit.
    let mut result = encode(&Message::submission_result(
        ResultCode::ACCEPTED,
        &records()[0].id(),
    ));
    result[8] |= 0x80;
    assert_eq!(
        Message::decode(&result),
        Err(MessageError::Reference(ReferenceError::NotAnId))
    );
    assert_eq!(
        IdPrefix::from_bytes(&[0x80; 32]),
        Err(ReferenceError::NotAnId)
    );
    let prefix = IdPrefix::from_id(&records()[0].id());
    assert!(prefix.is_prefix_of(&records()[0].id()));
    assert!(!prefix.is_prefix_of(&records()[1].id()));

    // DHT keys and targets.
    let lookup = Message::DhtLookup {
        query_id: QueryId(1),
        target: DhtTarget::User,
        public_key: key(1),
    };
    let mut bad_key = encode(&lookup);
    bad_key[8..40].copy_from_slice(&SMALL_ORDER_KEY);
    assert_eq!(
        Message::decode(&bad_key),
        Err(MessageError::Key(KeyError::SmallOrder))
    );
    let mut bad_target = encode(&lookup);
    bad_target[4] = 3;
    assert_eq!(
        Message::decode(&bad_target),
        Err(MessageError::UnknownDhtTarget { byte: 3 })
    );
    let mut response = encode(&samples()[15]);
    assert_eq!(response[0], 0x84);
    response[5] = 0;
    assert_eq!(
        Message::decode(&response),
        Err(MessageError::UnknownDhtTarget { byte: 0 })
    );
}

#[test]
fn blob_hashes_are_checked() {
    let mut bytes = encode(&Message::blob_submission(b"Hello BLOB".to_vec()));
    let claimed: [u8; 32] = bytes[8..40].try_into().unwrap();
    bytes[40] ^= 1;
    assert_eq!(
        Message::decode(&bytes),
        Err(MessageError::BlobHashMismatch { claimed })
    );
    let wrong = Message::BlobSubmission {
        hash: [0; 32],
        data: b"x".to_vec(),
    };
    assert_eq!(
        wrong.encode(),
        Err(MessageError::BlobHashMismatch { claimed: [0; 32] })
    );
    let wrong_result = Message::BlobResult {
        code: ResultCode::SUCCESS,
        hash: [1; 32],
        data: vec![],
    };
    assert_eq!(
        wrong_result.encode(),
        Err(MessageError::BlobHashMismatch { claimed: [1; 32] })
    );
    // An empty BLOB is a BLOB.
    let empty = Message::blob_found(vec![]);
    assert_eq!(Message::decode(&encode(&empty)), Ok(empty));
}

#[test]
fn failed_results_carry_nothing() {
    let mismatch = |message_type, code| MessageError::ResultPayloadMismatch { message_type, code };
    let blob = Message::BlobResult {
        code: ResultCode::NOT_FOUND,
        hash: blob_hash(b"x"),
        data: b"x".to_vec(),
    };
    assert_eq!(
        blob.encode(),
        Err(mismatch(MessageType::BLOB_RESULT, ResultCode::NOT_FOUND))
    );
    let mut bytes = encode(&Message::blob_found(b"x".to_vec()));
    bytes[1] = ResultCode::NOT_FOUND.as_u8();
    assert_eq!(
        Message::decode(&bytes),
        Err(mismatch(MessageType::BLOB_RESULT, ResultCode::NOT_FOUND))
    );

    let failed = Message::DhtResponse {
        query_id: QueryId(1),
        target: DhtTarget::User,
        public_key: key(1),
        code: ResultCode::NOT_FOUND,
        seq: 0,
        signature: [0; 64],
        value: vec![],
    };
    assert_eq!(Message::decode(&encode(&failed)), Ok(failed.clone()));
    let mut bytes = encode(&failed);
    for (offset, name) in [(40, "seq"), (48, "signature")] {
        let mut bad = bytes.clone();
        bad[offset] = 1;
        assert_eq!(
            Message::decode(&bad),
            Err(mismatch(MessageType::DHT_RESPONSE, ResultCode::NOT_FOUND)),
            "{name}"
        );
    }
    bytes.push(b'U');
    bytes[1] += 1;
    assert_eq!(
        Message::decode(&bytes),
        Err(mismatch(MessageType::DHT_RESPONSE, ResultCode::NOT_FOUND))
    );
    let Message::DhtResponse {
        query_id,
        target,
        public_key,
        code,
        signature,
        value,
        ..
    } = failed
    else {
        unreachable!()
    };
    let with_seq = Message::DhtResponse {
        query_id,
        target,
        public_key,
        code,
        seq: 5,
        signature,
        value,
    };
    assert_eq!(
        with_seq.encode(),
        Err(mismatch(MessageType::DHT_RESPONSE, ResultCode::NOT_FOUND))
    );
}

#[test]
fn unknown_result_codes_are_kept() {
    for code in [0u8, 5, 200] {
        let closing = hex(&format!("fe {code:02x} 000000000000"));
        assert_eq!(
            Message::decode(&closing),
            Ok(Message::Closing {
                code: ResultCode::from_u8(code)
            })
        );
    }
}

#[test]
fn errors_map_to_result_codes() {
    let too_large = [
        MessageError::TooLong { len: 1 << 30 },
        MessageError::Record(RecordError::TooLong { len: 1 << 21 }),
        MessageError::Record(RecordError::DecompressedTooLarge),
    ];
    for e in too_large {
        assert_eq!(e.result_code(), ResultCode::TOO_LARGE, "{e}");
    }
    let invalid = [
        MessageError::UnknownType { byte: 0x42 },
        MessageError::TooShort { len: 3, min: 8 },
        MessageError::LengthMismatch {
            declared: 8,
            actual: 9,
        },
        MessageError::InvalidLength {
            message_type: MessageType::GET,
            len: 9,
        },
        MessageError::ReservedNotZero { offset: 5 },
        MessageError::UnknownDhtTarget { byte: 9 },
        MessageError::BlobHashMismatch { claimed: [0; 32] },
        MessageError::ResultPayloadMismatch {
            message_type: MessageType::BLOB_RESULT,
            code: ResultCode::NOT_FOUND,
        },
        MessageError::Record(RecordError::HashMismatch),
        MessageError::Reference(ReferenceError::NotAnId),
        MessageError::Key(KeyError::SmallOrder),
    ];
    for e in invalid {
        assert_eq!(e.result_code(), ResultCode::INVALID, "{e}");
    }
    let e = crate::Error::from(MessageError::ReservedNotZero { offset: 5 });
    assert_eq!(e.to_string(), "reserved byte at offset 5 is not zero");
}

fn arb_code() -> impl Strategy<Value = ResultCode> {
    any::<u8>().prop_map(ResultCode::from_u8)
}

fn arb_reference() -> impl Strategy<Value = Reference> {
    prop_oneof![
        prop::array::uniform32(any::<u8>()).prop_map(|b| {
            let mut bytes = [0u8; 48];
            bytes[..32].copy_from_slice(&b);
            bytes[0] &= 0x7f;
            Reference::from_bytes(&bytes).unwrap()
        }),
        (any::<[u8; 8]>(), any::<u64>(), 0u8..4).prop_map(|(nonce, kind, k)| {
            Reference::Address(Address::new(
                Nonce::from_bytes_forced(nonce),
                Kind::from_u64(kind),
                key(k),
            ))
        }),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let qid = any::<u16>().prop_map(QueryId);
    let target = prop_oneof![Just(DhtTarget::User), Just(DhtTarget::Server)];
    let filter = prop_oneof![
        Just(kinds_filter()),
        (0..i64::MAX as u64).prop_map(since_filter),
    ];
    let record = (0usize..2).prop_map(|i| records()[i].clone());
    let data = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (any::<u16>(), prop::collection::vec(any::<u32>(), 0..8)).prop_map(
            |(max_version, applications)| Message::Hello {
                max_version,
                applications
            }
        ),
        prop::array::uniform32(any::<u8>()).prop_map(|half| {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&half);
            signature[32..].copy_from_slice(&half);
            Message::HelloAuth { signature }
        }),
        (qid.clone(), prop::collection::vec(arb_reference(), 0..4)).prop_map(
            |(query_id, references)| Message::Get {
                query_id,
                references
            }
        ),
        (qid.clone(), any::<u16>(), filter.clone()).prop_map(|(query_id, limit, filter)| {
            Message::Query {
                query_id,
                limit,
                filter,
            }
        }),
        (qid.clone(), any::<u16>(), filter).prop_map(|(query_id, limit, filter)| {
            Message::Subscribe {
                query_id,
                limit,
                filter,
            }
        }),
        qid.clone()
            .prop_map(|query_id| Message::Unsubscribe { query_id }),
        record
            .clone()
            .prop_map(|record| Message::Submission { record }),
        (qid.clone(), target.clone(), 0u8..4).prop_map(|(query_id, target, k)| {
            Message::DhtLookup {
                query_id,
                target,
                public_key: key(k),
            }
        }),
        data.clone().prop_map(Message::blob_submission),
        any::<[u8; 32]>().prop_map(|hash| Message::BlobGet { hash }),
        (
            arb_code(),
            any::<u16>(),
            prop::collection::vec(any::<u32>(), 0..8)
        )
            .prop_map(|(code, version, applications)| Message::HelloAck {
                code,
                version,
                applications
            }),
        (qid.clone(), record.clone())
            .prop_map(|(query_id, record)| Message::Record { query_id, record }),
        qid.clone()
            .prop_map(|query_id| Message::LocallyComplete { query_id }),
        (qid.clone(), arb_code())
            .prop_map(|(query_id, code)| Message::QueryClosed { query_id, code }),
        (arb_code(), record).prop_map(|(code, r)| Message::submission_result(code, &r.id())),
        (
            qid,
            target,
            0u8..4,
            arb_code(),
            any::<i64>(),
            any::<[u8; 32]>(),
            data.clone()
        )
            .prop_map(|(query_id, target, k, code, seq, half, value)| {
                let (seq, signature, value) = if code.is_success() {
                    let mut signature = [0u8; 64];
                    signature[..32].copy_from_slice(&half);
                    (seq, signature, value)
                } else {
                    (0, [0; 64], Vec::new())
                };
                Message::DhtResponse {
                    query_id,
                    target,
                    public_key: key(k),
                    code,
                    seq,
                    signature,
                    value,
                }
            }),
        (arb_code(), any::<[u8; 32]>())
            .prop_map(|(code, hash)| Message::BlobSubmissionResult { code, hash }),
        (arb_code(), any::<[u8; 32]>(), data).prop_map(|(code, hash, data)| {
            if code.is_success() {
                Message::BlobResult {
                    code,
                    hash: blob_hash(&data),
                    data,
                }
            } else {
                Message::BlobResult {
                    code,
                    hash,
                    data: Vec::new(),
                }
            }
        }),
        Just(Message::Unrecognized),
        arb_code().prop_map(|code| Message::Closing { code }),
    ]
}

proptest! {
    #[test]
    fn generated_messages_round_trip(m in arb_message()) {
        let bytes = m.encode().unwrap();
        prop_assert_eq!(bytes.len(), m.encoded_len());
        prop_assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
        prop_assert_eq!(Message::decode(&bytes), Ok(m));
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = frame_len(&bytes);
        if let Ok(m) = Message::decode(&bytes) {
            // Whatever decodes is canonical: it encodes to the same bytes.
            prop_assert_eq!(m.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn decode_never_panics_on_plausible_headers(
        ty in prop::sample::select(MessageType::ALL.to_vec()),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        // A known type and a length field that agrees with the bytes, so
        // that decoding gets past framing.
        let mut bytes = vec![ty.as_u8()];
        bytes.extend_from_slice(&body);
        let len = bytes.len();
        if len >= 8 {
            match framing::framing(ty) {
                framing::Framing::Length24 { .. } => {
                    bytes[1..4].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
                }
                framing::Framing::Data48 if len >= 40 => {
                    bytes[2..8].copy_from_slice(&((len - 40) as u64).to_le_bytes()[..6]);
                }
                _ => {}
            }
        }
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        index in 0usize..20,
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut bytes = encode(&samples()[index]);
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.encode().unwrap(), bytes);
        }
    }
}
