//! Bootstraps as they live in the DHT: [`Bootstrap`] (either kind),
//! [`SignedBootstrap`] (a BEP 44 item whose signature and text were
//! checked) and [`Resolved`] (what resolution returns).

use std::time::SystemTime;

use mosaic_core::bootstrap::{
    MAX_BOOTSTRAP_LEN, SERVER_BOOTSTRAP_SALT, USER_BOOTSTRAP_SALT, bep44_sign, bep44_verify,
};
use mosaic_core::{
    BootstrapError, DhtTarget, PublicKey, SecretKey, ServerBootstrap, UserBootstrap,
};

use crate::error::DhtError;

/// The BEP 44 salt of a kind of bootstrap: `mub25` (user) or `msb24`
/// (server).
pub const fn salt(target: DhtTarget) -> &'static [u8] {
    match target {
        DhtTarget::User => USER_BOOTSTRAP_SALT,
        DhtTarget::Server => SERVER_BOOTSTRAP_SALT,
    }
}

/// A key in the printable form that suits the kind of bootstrap:
/// `mopub0...` for a user, `mosrv0...` for a server.
pub fn key_name(target: DhtTarget, key: &PublicKey) -> String {
    match target {
        DhtTarget::User => key.to_printable(),
        DhtTarget::Server => key.to_server_printable(),
    }
}

/// A user or a server bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bootstrap {
    /// Which servers a user uses (salt `mub25`).
    User(UserBootstrap),
    /// Which URLs a server is at (salt `msb24`).
    Server(ServerBootstrap),
}

impl Bootstrap {
    /// Which kind this is.
    pub fn target(&self) -> DhtTarget {
        match self {
            Bootstrap::User(_) => DhtTarget::User,
            Bootstrap::Server(_) => DhtTarget::Server,
        }
    }

    /// The text, as published.
    pub fn to_text(&self) -> String {
        match self {
            Bootstrap::User(b) => b.to_text(),
            Bootstrap::Server(b) => b.to_text(),
        }
    }

    /// Parses a DHT value as the kind of bootstrap `target` names.
    pub fn from_bytes(target: DhtTarget, bytes: &[u8]) -> Result<Bootstrap, BootstrapError> {
        match target {
            DhtTarget::User => UserBootstrap::from_bytes(bytes).map(Bootstrap::User),
            DhtTarget::Server => ServerBootstrap::from_bytes(bytes).map(Bootstrap::Server),
        }
    }

    /// The user bootstrap, if this is one.
    pub fn as_user(&self) -> Option<&UserBootstrap> {
        match self {
            Bootstrap::User(b) => Some(b),
            Bootstrap::Server(_) => None,
        }
    }

    /// The server bootstrap, if this is one.
    pub fn as_server(&self) -> Option<&ServerBootstrap> {
        match self {
            Bootstrap::Server(b) => Some(b),
            Bootstrap::User(_) => None,
        }
    }
}

impl From<UserBootstrap> for Bootstrap {
    fn from(b: UserBootstrap) -> Bootstrap {
        Bootstrap::User(b)
    }
}

impl From<ServerBootstrap> for Bootstrap {
    fn from(b: ServerBootstrap) -> Bootstrap {
        Bootstrap::Server(b)
    }
}

/// A BEP 44 mutable item holding a bootstrap, checked: its signature
/// verifies for the key, the salt of its kind, its sequence number and its
/// text, and the text is a valid bootstrap of that kind.
///
/// It is what the DHT stores, what the cache keeps and what a server
/// relays in a DHT Response: anyone can check it, and anyone can put it
/// back into the DHT without the secret key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBootstrap {
    key: PublicKey,
    seq: i64,
    signature: [u8; 64],
    value: Vec<u8>,
    bootstrap: Bootstrap,
}

impl SignedBootstrap {
    /// Checks an item: the signature first (a mismatch is
    /// [`DhtError::BadSignature`]), then the text (an invalid or oversize
    /// text is [`DhtError::Malformed`]).
    pub fn verify(
        target: DhtTarget,
        key: PublicKey,
        seq: i64,
        signature: [u8; 64],
        value: Vec<u8>,
    ) -> Result<SignedBootstrap, DhtError> {
        if bep44_verify(&key, salt(target), seq, &value, &signature).is_err() {
            return Err(DhtError::BadSignature {
                key: key_name(target, &key),
            });
        }
        let bootstrap =
            Bootstrap::from_bytes(target, &value).map_err(|reason| DhtError::Malformed {
                key: key_name(target, &key),
                reason,
            })?;
        Ok(SignedBootstrap {
            key,
            seq,
            signature,
            value,
            bootstrap,
        })
    }

    /// Signs a bootstrap's text with the master key at sequence `seq`.
    pub fn sign(secret: &SecretKey, seq: i64, bootstrap: Bootstrap) -> SignedBootstrap {
        let value = bootstrap.to_text().into_bytes();
        let signature = bep44_sign(secret, salt(bootstrap.target()), seq, &value);
        SignedBootstrap {
            key: secret.public(),
            seq,
            signature,
            value,
            bootstrap,
        }
    }

    /// The kind of bootstrap.
    pub fn target(&self) -> DhtTarget {
        self.bootstrap.target()
    }

    /// The master key that signed it.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The BEP 44 sequence number.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// The BEP 44 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The text exactly as signed (URLs in it may not be in their
    /// normalised form).
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The parsed bootstrap.
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// The key in the printable form of its kind (`mopub0...` or
    /// `mosrv0...`).
    pub fn key_name(&self) -> String {
        key_name(self.target(), &self.key)
    }

    /// The result of resolution for this item.
    pub fn into_resolved(self, fetched_at: SystemTime, stale: bool) -> Resolved<Bootstrap> {
        Resolved {
            value: self.bootstrap,
            seq: self.seq,
            signature: self.signature,
            text: self.value,
            fetched_at,
            stale,
        }
    }
}

/// Checks the length and the kind of a bootstrap text about to be
/// published, before anything is sent: [`DhtError::TooLarge`] or
/// [`DhtError::Invalid`].
pub fn check_text(target: DhtTarget, text: &[u8]) -> Result<Bootstrap, DhtError> {
    if text.len() > MAX_BOOTSTRAP_LEN {
        return Err(DhtError::TooLarge { len: text.len() });
    }
    Bootstrap::from_bytes(target, text).map_err(DhtError::Invalid)
}

/// A resolved bootstrap: the most recent valid item found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<T> {
    /// The parsed bootstrap.
    pub value: T,
    /// Its BEP 44 sequence number.
    pub seq: i64,
    /// Its BEP 44 signature, checked.
    pub signature: [u8; 64],
    /// The text exactly as signed.
    pub text: Vec<u8>,
    /// When the DHT last gave (or confirmed) it.
    pub fetched_at: SystemTime,
    /// `true` when the DHT gave no valid answer this time and the value is
    /// an older cached one (still authentic, perhaps out of date).
    pub stale: bool,
}

impl<T> Resolved<T> {
    /// The same result with another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Resolved<U> {
        Resolved {
            value: f(self.value),
            seq: self.seq,
            signature: self.signature,
            text: self.text,
            fetched_at: self.fetched_at,
            stale: self.stale,
        }
    }
}

impl Resolved<Bootstrap> {
    /// The user bootstrap, if this is one.
    pub fn into_user(self) -> Option<Resolved<UserBootstrap>> {
        transpose(self.map(|v| match v {
            Bootstrap::User(b) => Some(b),
            Bootstrap::Server(_) => None,
        }))
    }

    /// The server bootstrap, if this is one.
    pub fn into_server(self) -> Option<Resolved<ServerBootstrap>> {
        transpose(self.map(|v| match v {
            Bootstrap::Server(b) => Some(b),
            Bootstrap::User(_) => None,
        }))
    }
}

/// Moves an `Option` out of a resolved value.
fn transpose<T>(r: Resolved<Option<T>>) -> Option<Resolved<T>> {
    let Resolved {
        value,
        seq,
        signature,
        text,
        fetched_at,
        stale,
    } = r;
    value.map(|value| Resolved {
        value,
        seq,
        signature,
        text,
        fetched_at,
        stale,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mosaic_core::{ServerUsage, Url, UserBootstrapEntry};

    pub(crate) fn secret(n: u8) -> SecretKey {
        SecretKey::from_bytes(&[n; 32])
    }

    pub(crate) fn user_bootstrap(server: u8) -> UserBootstrap {
        UserBootstrap::new(vec![UserBootstrapEntry {
            usage: ServerUsage::ALL,
            server: secret(server).public(),
        }])
        .unwrap()
    }

    pub(crate) fn server_bootstrap(host: &str) -> ServerBootstrap {
        ServerBootstrap::new(vec![Url::parse(&format!("mosaic://{host}")).unwrap()]).unwrap()
    }

    #[test]
    fn salts_and_key_names() {
        assert_eq!(salt(DhtTarget::User), b"mub25");
        assert_eq!(salt(DhtTarget::Server), b"msb24");
        let key = secret(1).public();
        assert!(key_name(DhtTarget::User, &key).starts_with("mopub0"));
        assert!(key_name(DhtTarget::Server, &key).starts_with("mosrv0"));
    }

    #[test]
    fn signed_round_trip() {
        let s = secret(1);
        let item = SignedBootstrap::sign(&s, 3, user_bootstrap(9).into());
        assert_eq!(item.target(), DhtTarget::User);
        assert_eq!(item.seq(), 3);
        assert_eq!(item.key(), &s.public());
        let again = SignedBootstrap::verify(
            DhtTarget::User,
            s.public(),
            3,
            *item.signature(),
            item.value().to_vec(),
        )
        .unwrap();
        assert_eq!(again, item);
        let resolved = again.into_resolved(SystemTime::UNIX_EPOCH, false);
        assert_eq!(resolved.seq, 3);
        assert_eq!(resolved.clone().into_server(), None);
        assert_eq!(resolved.into_user().unwrap().value, user_bootstrap(9));
    }

    #[test]
    fn tampering_is_detected() {
        let s = secret(1);
        let item = SignedBootstrap::sign(&s, 3, server_bootstrap("a.example").into());
        let verify = |target, key, seq, sig, value: &[u8]| {
            SignedBootstrap::verify(target, key, seq, sig, value.to_vec())
        };
        let sig = *item.signature();
        let bad = |r: Result<SignedBootstrap, DhtError>| matches!(r, Err(DhtError::BadSignature { key }) if key.starts_with("mosrv0"));
        // Another text, sequence, key, signature or salt.
        assert!(bad(verify(
            DhtTarget::Server,
            s.public(),
            3,
            sig,
            b"S\nmosaic://b.example/"
        )));
        assert!(bad(verify(
            DhtTarget::Server,
            s.public(),
            4,
            sig,
            item.value()
        )));
        assert!(bad(verify(
            DhtTarget::Server,
            secret(2).public(),
            3,
            sig,
            item.value()
        )));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(bad(verify(
            DhtTarget::Server,
            s.public(),
            3,
            flipped,
            item.value()
        )));
        assert!(matches!(
            verify(DhtTarget::User, s.public(), 3, sig, item.value()),
            Err(DhtError::BadSignature { key }) if key.starts_with("mopub0")
        ));
        assert!(verify(DhtTarget::Server, s.public(), 3, sig, item.value()).is_ok());
    }

    #[test]
    fn malformed_text_names_the_key() {
        let s = secret(1);
        for (text, reason) in [
            (
                &b"S\nmosaic://a "[..],
                BootstrapError::TrailingWhitespace { line: 2 },
            ),
            (&b"U\n7 x"[..], BootstrapError::BadHeader { expected: 'S' }),
            (&[b'S'; 984][..], BootstrapError::TooLong { len: 984 }),
        ] {
            let sig = bep44_sign(&s, SERVER_BOOTSTRAP_SALT, 1, text);
            match SignedBootstrap::verify(DhtTarget::Server, s.public(), 1, sig, text.to_vec()) {
                Err(DhtError::Malformed { key, reason: r }) => {
                    assert_eq!(key, s.public().to_server_printable());
                    assert_eq!(r, reason);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn texts_are_checked_before_publishing() {
        assert!(matches!(
            check_text(DhtTarget::Server, &[b'a'; 984]),
            Err(DhtError::TooLarge { len: 984 })
        ));
        assert!(matches!(
            check_text(DhtTarget::User, b"S\nmosaic://a"),
            Err(DhtError::Invalid(BootstrapError::BadHeader {
                expected: 'U'
            }))
        ));
        assert_eq!(
            check_text(DhtTarget::Server, b"S\nmosaic://a").unwrap(),
            Bootstrap::Server(server_bootstrap("a"))
        );
    }
}
