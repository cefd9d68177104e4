//! DHT Lookup answers built from real testnet answers: an honest relay's
//! answer verifies, and a relay that alters the text, the signature, the
//! sequence number or the key is caught by the client.

use mosaic_core::{DhtTarget, Message, QueryId, ResultCode};
use mosaic_dht::{DhtError, Resolver, dht_response, verify_dht_response};

use crate::support::{client, secret, server_bootstrap, testnet, user_bootstrap};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_answer_verifies_and_lies_are_caught() {
    let net = testnet().await;
    let key = secret(40);
    client(&net)
        .publish_user(&key, &user_bootstrap(1))
        .await
        .unwrap();

    // The server side: looked up on the DHT, sent over the wire.
    let server = Resolver::new(client(&net));
    let answer = server
        .answer_lookup(QueryId(5), DhtTarget::User, &key.public())
        .await;
    let wire = answer.encode().unwrap();

    // The client side.
    let received = Message::decode(&wire).unwrap();
    let checked = verify_dht_response(&received, &key.public(), DhtTarget::User)
        .unwrap()
        .unwrap();
    assert_eq!(checked.bootstrap().as_user(), Some(&user_bootstrap(1)));
    assert_eq!(checked.seq(), 1);

    // A lying server: each alteration, made on the wire form, is caught.
    let Message::DhtResponse {
        query_id,
        target,
        public_key,
        code,
        seq,
        signature,
        value,
    } = received
    else {
        panic!("not a DHT Response: {received:?}");
    };
    let lie = |seq: i64, signature: [u8; 64], value: Vec<u8>| {
        let message = Message::DhtResponse {
            query_id,
            target,
            public_key,
            code,
            seq,
            signature,
            value,
        };
        let wire = message.encode().unwrap();
        verify_dht_response(
            &Message::decode(&wire).unwrap(),
            &key.public(),
            DhtTarget::User,
        )
    };
    let other_server = secret(66).public().to_server_printable();
    let altered_text = format!("U\n7 {other_server}").into_bytes();
    let mut altered_signature = signature;
    altered_signature[63] ^= 0x01;
    for outcome in [
        lie(seq, signature, altered_text),
        lie(seq + 1, signature, value.clone()),
        lie(seq, altered_signature, value.clone()),
    ] {
        assert!(
            matches!(outcome, Err(DhtError::BadSignature { .. })),
            "{outcome:?}"
        );
    }
    // The honest parts put back together still verify.
    assert!(lie(seq, signature, value).unwrap().is_some());

    // Another key's real item, relayed as this key's.
    let other = secret(41);
    client(&net)
        .publish_user(&other, &user_bootstrap(2))
        .await
        .unwrap();
    let item = server
        .lookup_raw(DhtTarget::User, &other.public())
        .await
        .unwrap()
        .unwrap();
    let mut swapped = item.to_dht_response(QueryId(6));
    if let Message::DhtResponse { public_key, .. } = &mut swapped {
        *public_key = key.public();
    }
    assert!(matches!(
        verify_dht_response(&swapped, &key.public(), DhtTarget::User),
        Err(DhtError::BadSignature { .. })
    ));
    // Relayed honestly, but not the key asked for.
    assert!(matches!(
        verify_dht_response(
            &item.to_dht_response(QueryId(6)),
            &key.public(),
            DhtTarget::User
        ),
        Err(DhtError::WrongKey { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_and_server_bootstraps_are_relayed() {
    let net = testnet().await;
    let key = secret(42);
    client(&net)
        .publish_server(&key, &server_bootstrap("srv.example"))
        .await
        .unwrap();
    let server = Resolver::new(client(&net));

    let answer = server
        .answer_lookup(QueryId(1), DhtTarget::Server, &key.public())
        .await;
    let checked = verify_dht_response(&answer, &key.public(), DhtTarget::Server)
        .unwrap()
        .unwrap();
    assert_eq!(
        checked.bootstrap().as_server(),
        Some(&server_bootstrap("srv.example"))
    );

    let missing = server
        .answer_lookup(QueryId(2), DhtTarget::User, &key.public())
        .await;
    assert!(
        matches!(&missing, Message::DhtResponse { code, .. } if *code == ResultCode::NOT_FOUND)
    );
    let wire = missing.encode().unwrap();
    assert_eq!(
        verify_dht_response(
            &Message::decode(&wire).unwrap(),
            &key.public(),
            DhtTarget::User
        )
        .unwrap(),
        None
    );
    // The helper gives the same answer from a lookup's outcome.
    let outcome = server.lookup_raw(DhtTarget::Server, &key.public()).await;
    assert_eq!(
        dht_response(QueryId(1), DhtTarget::Server, key.public(), &outcome),
        answer
    );
}
