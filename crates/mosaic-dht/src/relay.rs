//! DHT Lookup and DHT Response (SPEC-NOTES D-9): a server looks a
//! bootstrap up for a client that cannot reach the DHT, and the client
//! checks the answer itself, trusting no server.
//!
//! The server side is [`dht_response`] (or
//! [`Resolver::answer_lookup`](crate::Resolver::answer_lookup), which
//! looks the key up first); the client side is [`verify_dht_response`].

use mosaic_core::{DhtTarget, Message, PublicKey, QueryId, ResultCode};

use crate::error::DhtError;
use crate::signed::SignedBootstrap;

impl SignedBootstrap {
    /// The DHT Response (SUCCESS) carrying this item.
    pub fn to_dht_response(&self, query_id: QueryId) -> Message {
        Message::DhtResponse {
            query_id,
            target: self.target(),
            public_key: *self.key(),
            code: ResultCode::SUCCESS,
            seq: self.seq(),
            signature: *self.signature(),
            value: self.value().to_vec(),
        }
    }
}

/// The result code a server answers a DHT Lookup with when looking the key
/// up failed: TEMPORARY_ERROR when the DHT did not answer (asking again
/// later may work), PERSISTENT_ERROR when the key's bootstrap is malformed,
/// GENERAL_ERROR otherwise.
pub fn lookup_failure_code(error: &DhtError) -> ResultCode {
    match error {
        DhtError::Timeout | DhtError::NoNodes => ResultCode::TEMPORARY_ERROR,
        DhtError::Malformed { .. } => ResultCode::PERSISTENT_ERROR,
        _ => ResultCode::GENERAL_ERROR,
    }
}

/// The DHT Response a server sends for the outcome of
/// [`Resolver::lookup_raw`](crate::Resolver::lookup_raw) (or
/// [`Dht::lookup_raw`](crate::Dht::lookup_raw)): SUCCESS with the item's
/// sequence number, signature and text; NOT_FOUND, or a failure code from
/// [`lookup_failure_code`], with zeros and no text.
pub fn dht_response(
    query_id: QueryId,
    target: DhtTarget,
    public_key: PublicKey,
    outcome: &Result<Option<SignedBootstrap>, DhtError>,
) -> Message {
    let code = match outcome {
        Ok(Some(item)) if item.target() == target && *item.key() == public_key => {
            return item.to_dht_response(query_id);
        }
        Ok(Some(_)) => ResultCode::GENERAL_ERROR,
        Ok(None) => ResultCode::NOT_FOUND,
        Err(error) => lookup_failure_code(error),
    };
    Message::DhtResponse {
        query_id,
        target,
        public_key,
        code,
        seq: 0,
        signature: [0; 64],
        value: Vec::new(),
    }
}

/// Checks a DHT Response from a server, for the key and kind looked up.
///
/// The response must be about `expected_key` and `expected_target`. On
/// SUCCESS, the BEP 44 signature must verify for the key, the salt of the
/// kind, the sequence number and the text, and the text must be a valid
/// bootstrap of that kind: then the checked item is returned. NOT_FOUND
/// gives `Ok(None)` (a server can hide a bootstrap, but cannot forge or
/// alter one). Any other code is [`DhtError::LookupFailed`].
///
/// A server can still relay an older item than the newest; compare the
/// sequence number with one seen before when that matters.
pub fn verify_dht_response(
    response: &Message,
    expected_key: &PublicKey,
    expected_target: DhtTarget,
) -> Result<Option<SignedBootstrap>, DhtError> {
    let Message::DhtResponse {
        target,
        public_key,
        code,
        seq,
        signature,
        value,
        ..
    } = response
    else {
        return Err(DhtError::NotDhtResponse);
    };
    if public_key != expected_key {
        return Err(DhtError::WrongKey {
            expected: expected_key.to_printable(),
            found: public_key.to_printable(),
        });
    }
    if *target != expected_target {
        return Err(DhtError::WrongTarget {
            expected: expected_target,
            found: *target,
        });
    }
    match *code {
        ResultCode::SUCCESS => {
            SignedBootstrap::verify(*target, *public_key, *seq, *signature, value.clone()).map(Some)
        }
        ResultCode::NOT_FOUND => Ok(None),
        code => Err(DhtError::LookupFailed { code }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed::tests::{secret, server_bootstrap, user_bootstrap};
    use mosaic_core::BootstrapError;

    #[test]
    fn responses_round_trip_through_the_codec() {
        let item = SignedBootstrap::sign(&secret(1), 12, user_bootstrap(2).into());
        let key = secret(1).public();
        let message = dht_response(QueryId(7), DhtTarget::User, key, &Ok(Some(item.clone())));
        let bytes = message.encode().unwrap();
        let decoded = Message::decode(&bytes).unwrap();
        assert_eq!(
            verify_dht_response(&decoded, &key, DhtTarget::User).unwrap(),
            Some(item)
        );

        let not_found = dht_response(QueryId(8), DhtTarget::Server, key, &Ok(None));
        let decoded = Message::decode(&not_found.encode().unwrap()).unwrap();
        assert_eq!(
            verify_dht_response(&decoded, &key, DhtTarget::Server).unwrap(),
            None
        );

        let failed = dht_response(QueryId(9), DhtTarget::User, key, &Err(DhtError::Timeout));
        let decoded = Message::decode(&failed.encode().unwrap()).unwrap();
        assert!(matches!(
            verify_dht_response(&decoded, &key, DhtTarget::User),
            Err(DhtError::LookupFailed { code }) if code == ResultCode::TEMPORARY_ERROR
        ));
    }

    #[test]
    fn failure_codes() {
        assert_eq!(
            lookup_failure_code(&DhtError::NoNodes),
            ResultCode::TEMPORARY_ERROR
        );
        assert_eq!(
            lookup_failure_code(&DhtError::Malformed {
                key: String::new(),
                reason: BootstrapError::Empty
            }),
            ResultCode::PERSISTENT_ERROR
        );
        assert_eq!(
            lookup_failure_code(&DhtError::NotStored),
            ResultCode::GENERAL_ERROR
        );
        // An item of another key is never sent as the answer.
        let other = SignedBootstrap::sign(&secret(2), 1, user_bootstrap(2).into());
        let message = dht_response(
            QueryId(1),
            DhtTarget::User,
            secret(1).public(),
            &Ok(Some(other)),
        );
        assert!(matches!(
            message,
            Message::DhtResponse { code, .. } if code == ResultCode::GENERAL_ERROR
        ));
    }

    #[test]
    fn lies_are_caught() {
        let s = secret(1);
        let key = s.public();
        let item = SignedBootstrap::sign(&s, 4, server_bootstrap("a.example").into());
        let honest = item.to_dht_response(QueryId(3));
        assert!(verify_dht_response(&honest, &key, DhtTarget::Server).is_ok());

        type Alteration<'a> = &'a dyn Fn(&mut i64, &mut [u8; 64], &mut Vec<u8>);
        let alter = |f: Alteration<'_>| {
            let mut m = honest.clone();
            if let Message::DhtResponse {
                seq,
                signature,
                value,
                ..
            } = &mut m
            {
                f(seq, signature, value);
            }
            verify_dht_response(&m, &key, DhtTarget::Server)
        };
        let bad_signature = |r: Result<Option<SignedBootstrap>, DhtError>| {
            matches!(r, Err(DhtError::BadSignature { .. }))
        };
        assert!(bad_signature(alter(&|_, _, v| {
            *v = b"S\nmosaic://evil.example/".to_vec()
        })));
        assert!(bad_signature(alter(&|s, _, _| *s = 5)));
        assert!(bad_signature(alter(&|_, sig, _| sig[0] ^= 0x80)));
        assert!(bad_signature(alter(&|_, sig, _| *sig = [0; 64])));

        // Another key or kind than the one asked for.
        assert!(matches!(
            verify_dht_response(&honest, &secret(2).public(), DhtTarget::Server),
            Err(DhtError::WrongKey { .. })
        ));
        assert!(matches!(
            verify_dht_response(&honest, &key, DhtTarget::User),
            Err(DhtError::WrongTarget {
                expected: DhtTarget::User,
                found: DhtTarget::Server
            })
        ));
        // A valid signature by another key, presented as this key's.
        let other = SignedBootstrap::sign(&secret(2), 4, server_bootstrap("b.example").into());
        let mut swapped = other.to_dht_response(QueryId(3));
        if let Message::DhtResponse { public_key, .. } = &mut swapped {
            *public_key = key;
        }
        assert!(bad_signature(verify_dht_response(
            &swapped,
            &key,
            DhtTarget::Server
        )));
        // Not a DHT Response at all.
        assert!(matches!(
            verify_dht_response(
                &Message::DhtLookup {
                    query_id: QueryId(3),
                    target: DhtTarget::Server,
                    public_key: key
                },
                &key,
                DhtTarget::Server
            ),
            Err(DhtError::NotDhtResponse)
        ));
    }
}
