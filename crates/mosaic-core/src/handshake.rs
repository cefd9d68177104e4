//! The HELLO exchange (`protocol.md`, `websockets.md`; SPEC-NOTES D-2, D-3, D-4).
//!
//! Over WebSocket the client's HELLO travels in the upgrade request's headers
//! and the server's HELLO ACK in the response's headers; [`Hello`] and
//! [`HelloAck`] convert to and from those headers. [`ServerHandshake`] and
//! [`ClientHandshake`] are the two sides' state machines: they take what the
//! peer sent through `handle_*` methods and say what to answer, with the
//! randomness they need passed in, so `mosaic-net` drives them over real
//! sockets and tests drive them in memory.
//!
//! Authentication is domain separated (D-3, D-4): the server proves its key by
//! signing BLAKE3-XOF64 of `server public key || nonce` under the context
//! `"Mosaic server authentication"`, and a client proves its key by signing the
//! same construction over the server's nonce under `"Mosaic client
//! authentication"`. Neither can be replayed as a record signature, whose
//! context is `"Mosaic"`.

use std::fmt;

use crate::crypto::{CLIENT_AUTH_CONTEXT, SERVER_AUTH_CONTEXT, SignatureError};
use crate::keys::{PublicKey, SecretKey};
use crate::printable::zbase32_encode;

/// The major protocol version of spec 0.8.0.
pub const PROTOCOL_VERSION: u16 = 0;

/// The WebSocket subprotocol every Mosaic upgrade must carry.
pub const WEBSOCKET_SUBPROTOCOL: &str = "mosaic2025";

/// Header names of the WebSocket HELLO and HELLO ACK.
pub mod headers {
    /// Client: comma-separated major versions the client speaks.
    pub const VERSIONS: &str = "X-Mosaic-Versions";
    /// Client: comma-separated features the client asks for.
    pub const FEATURES: &str = "X-Mosaic-Features";
    /// Client: the `mopub0` key the client wants to authenticate as.
    pub const AUTHENTICATE_AS: &str = "X-Mosaic-Authenticate-As";
    /// Client: a nonce the server must sign to prove its key.
    pub const SERVER_AUTHENTICATE_NONCE: &str = "X-Mosaic-Server-Authenticate-Nonce";
    /// Server: the version chosen.
    pub const VERSION: &str = "X-Mosaic-Version";
    /// Server: the features accepted.
    pub const FEATURES_ACCEPTED: &str = "X-Mosaic-Features-Accepted";
    /// Server: base64 of its signature over the client's nonce.
    pub const SERVER_AUTHENTICATION: &str = "X-Mosaic-Server-Authentication";
    /// Server: the nonce the client must sign to authenticate.
    pub const CLIENT_AUTHENTICATE_NONCE: &str = "X-Mosaic-Client-Authenticate-Nonce";
    /// Server: an optional service URL.
    pub const SERVICE_URL: &str = "X-Mosaic-Service-Url";
}

/// Why a HELLO, a HELLO ACK or an authentication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A header value is not valid text for its header.
    #[error("malformed {header} header")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A nonce is not 16 to 64 printable ASCII characters (D-3).
    #[error("a nonce must be 16 to 64 printable ASCII characters, found {len} characters")]
    BadNonce {
        /// Its length in characters.
        len: usize,
    },
    /// The client offers no version this side speaks.
    #[error("no common protocol version (offered {offered:?}, supported {supported:?})")]
    NoCommonVersion {
        /// Versions offered.
        offered: Vec<u16>,
        /// Versions supported here.
        supported: Vec<u16>,
    },
    /// The server chose a version the client did not offer.
    #[error("the server chose version {version}, which was not offered")]
    UnexpectedVersion {
        /// The version chosen.
        version: u16,
    },
    /// The server accepted a feature the client did not ask for.
    #[error("the server accepted feature {feature:?}, which was not requested")]
    UnexpectedFeature {
        /// The feature.
        feature: String,
    },
    /// The client asked the server to prove its key and got no signature.
    #[error("the server did not answer the authentication nonce")]
    ServerAuthenticationMissing,
    /// The server's signature does not verify against the expected key: it is
    /// not the server the client meant to reach.
    #[error("the server could not prove its key: {0}")]
    ServerAuthenticationFailed(SignatureError),
    /// The client's Hello Auth signature does not verify (D-4).
    #[error("the client could not prove its key: {0}")]
    ClientAuthenticationFailed(SignatureError),
    /// The client asked to authenticate but the server sent no nonce.
    #[error("the server sent no nonce for client authentication")]
    ClientNonceMissing,
    /// A step came out of order (for example Hello Auth with no pending
    /// authentication).
    #[error("handshake step out of order: {step}")]
    OutOfOrder {
        /// What arrived.
        step: &'static str,
    },
}

/// A nonce for authentication: 16 to 64 printable ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthNonce(String);

impl AuthNonce {
    /// Checks a nonce received from a peer.
    pub fn new(nonce: &str) -> Result<AuthNonce, HandshakeError> {
        let len = nonce.chars().count();
        if !(16..=64).contains(&len) || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(HandshakeError::BadNonce { len });
        }
        Ok(AuthNonce(nonce.to_string()))
    }

    /// A fresh nonce: 32 z-base-32 characters of 160 random bits.
    pub fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> AuthNonce {
        let mut bytes = [0u8; 20];
        rng.fill_bytes(&mut bytes);
        AuthNonce(zbase32_encode(&bytes))
    }

    /// The nonce text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthNonce({:?})", self.0)
    }
}

fn auth_prehash(server: &PublicKey, nonce: &AuthNonce) -> [u8; 64] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(server.as_bytes());
    hasher.update(nonce.0.as_bytes());
    crate::crypto::xof64(&hasher)
}

/// The server's proof of its key over a client's nonce (D-3).
pub fn sign_server_authentication(server: &SecretKey, nonce: &AuthNonce) -> [u8; 64] {
    server.sign_prehashed(&auth_prehash(&server.public(), nonce), SERVER_AUTH_CONTEXT)
}

/// Checks a server's proof of its key (D-3).
pub fn verify_server_authentication(
    server: &PublicKey,
    nonce: &AuthNonce,
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    server.verify_prehashed(&auth_prehash(server, nonce), SERVER_AUTH_CONTEXT, signature)
}

/// A client's proof of its key over the server's nonce, the body of Hello
/// Auth (D-4). `client` is the key named in `X-Mosaic-Authenticate-As`.
pub fn sign_client_authentication(
    client: &SecretKey,
    server: &PublicKey,
    nonce: &AuthNonce,
) -> [u8; 64] {
    client.sign_prehashed(&auth_prehash(server, nonce), CLIENT_AUTH_CONTEXT)
}

/// Checks a client's proof of its key (D-4).
pub fn verify_client_authentication(
    client: &PublicKey,
    server: &PublicKey,
    nonce: &AuthNonce,
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    client.verify_prehashed(&auth_prehash(server, nonce), CLIENT_AUTH_CONTEXT, signature)
}

/// The client's HELLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Major versions the client speaks (D-2: none given means `[0]`).
    pub versions: Vec<u16>,
    /// Features the client asks for.
    pub features: Vec<String>,
    /// The key the client wants to authenticate as.
    pub authenticate_as: Option<PublicKey>,
    /// A nonce the server must sign to prove its key.
    pub server_nonce: Option<AuthNonce>,
}

impl Default for Hello {
    fn default() -> Hello {
        Hello {
            versions: vec![PROTOCOL_VERSION],
            features: Vec::new(),
            authenticate_as: None,
            server_nonce: None,
        }
    }
}

fn parse_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_versions(value: &str, header: &'static str) -> Result<Vec<u16>, HandshakeError> {
    parse_list(value)
        .map(|v| {
            v.parse::<u16>()
                .map_err(|_| HandshakeError::MalformedHeader { header })
        })
        .collect()
}

fn parse_features(value: &str, header: &'static str) -> Result<Vec<String>, HandshakeError> {
    parse_list(value)
        .map(|f| {
            if f.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                Ok(f.to_string())
            } else {
                Err(HandshakeError::MalformedHeader { header })
            }
        })
        .collect()
}

impl Hello {
    /// The upgrade request headers (besides `Sec-WebSocket-Protocol`).
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![(headers::VERSIONS, join(&self.versions))];
        if !self.features.is_empty() {
            out.push((headers::FEATURES, self.features.join(",")));
        }
        if let Some(key) = &self.authenticate_as {
            out.push((headers::AUTHENTICATE_AS, key.to_printable()));
        }
        if let Some(nonce) = &self.server_nonce {
            out.push((headers::SERVER_AUTHENTICATE_NONCE, nonce.0.clone()));
        }
        out
    }

    /// Reads a HELLO from upgrade request headers; `header(name)` returns a
    /// header's value (case-insensitive name). Missing headers take their
    /// defaults (D-2).
    pub fn from_headers<'a>(
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Hello, HandshakeError> {
        let versions = match header(headers::VERSIONS) {
            Some(v) => parse_versions(v, headers::VERSIONS)?,
            None => vec![PROTOCOL_VERSION],
        };
        let features = match header(headers::FEATURES) {
            Some(v) => parse_features(v, headers::FEATURES)?,
            None => Vec::new(),
        };
        let authenticate_as = match header(headers::AUTHENTICATE_AS) {
            Some(v) => Some(PublicKey::from_printable(v.trim()).map_err(|_| {
                HandshakeError::MalformedHeader {
                    header: headers::AUTHENTICATE_AS,
                }
            })?),
            None => None,
        };
        let server_nonce = match header(headers::SERVER_AUTHENTICATE_NONCE) {
            Some(v) => Some(AuthNonce::new(v.trim())?),
            None => None,
        };
        Ok(Hello {
            versions,
            features,
            authenticate_as,
            server_nonce,
        })
    }
}

/// The server's HELLO ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloAck {
    /// The version chosen.
    pub version: u16,
    /// The features accepted.
    pub features_accepted: Vec<String>,
    /// The server's signature over the client's nonce, if one was given.
    pub server_authentication: Option<[u8; 64]>,
    /// The nonce the client must sign, if it asked to authenticate.
    pub client_nonce: Option<AuthNonce>,
    /// An optional service URL.
    pub service_url: Option<String>,
}

impl HelloAck {
    /// The upgrade response headers (besides `Sec-WebSocket-Protocol`).
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![(headers::VERSION, self.version.to_string())];
        if !self.features_accepted.is_empty() {
            out.push((headers::FEATURES_ACCEPTED, self.features_accepted.join(",")));
        }
        if let Some(sig) = &self.server_authentication {
            out.push((
                headers::SERVER_AUTHENTICATION,
                data_encoding::BASE64.encode(sig),
            ));
        }
        if let Some(nonce) = &self.client_nonce {
            out.push((headers::CLIENT_AUTHENTICATE_NONCE, nonce.0.clone()));
        }
        if let Some(url) = &self.service_url {
            out.push((headers::SERVICE_URL, url.clone()));
        }
        out
    }

    /// Reads a HELLO ACK from upgrade response headers.
    pub fn from_headers<'a>(
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<HelloAck, HandshakeError> {
        let version = match header(headers::VERSION) {
            Some(v) => v
                .trim()
                .parse::<u16>()
                .map_err(|_| HandshakeError::MalformedHeader {
                    header: headers::VERSION,
                })?,
            None => PROTOCOL_VERSION,
        };
        let features_accepted = match header(headers::FEATURES_ACCEPTED) {
            Some(v) => parse_features(v, headers::FEATURES_ACCEPTED)?,
            None => Vec::new(),
        };
        let server_authentication = match header(headers::SERVER_AUTHENTICATION) {
            Some(v) => {
                let bad = || HandshakeError::MalformedHeader {
                    header: headers::SERVER_AUTHENTICATION,
                };
                let bytes = data_encoding::BASE64
                    .decode(v.trim().as_bytes())
                    .map_err(|_| bad())?;
                Some(<[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| bad())?)
            }
            None => None,
        };
        let client_nonce = match header(headers::CLIENT_AUTHENTICATE_NONCE) {
            Some(v) => Some(AuthNonce::new(v.trim())?),
            None => None,
        };
        let service_url = header(headers::SERVICE_URL).map(|v| v.trim().to_string());
        Ok(HelloAck {
            version,
            features_accepted,
            server_authentication,
            client_nonce,
            service_url,
        })
    }
}

fn join(versions: &[u16]) -> String {
    versions
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Where a server-side handshake stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerHandshakeState {
    /// Waiting for the HELLO.
    AwaitingHello,
    /// The HELLO ACK carried a nonce; waiting for Hello Auth.
    AwaitingAuth {
        /// The key the client claims.
        client: PublicKey,
        /// The nonce it must sign.
        nonce: AuthNonce,
    },
    /// Done; messages may flow.
    Established {
        /// The authenticated client key, if any.
        client: Option<PublicKey>,
        /// The version chosen.
        version: u16,
    },
}

/// The server side of the HELLO exchange.
#[derive(Debug)]
pub struct ServerHandshake {
    server: PublicKey,
    supported_versions: Vec<u16>,
    supported_features: Vec<String>,
    version: u16,
    state: ServerHandshakeState,
}

impl ServerHandshake {
    /// A server handshake for `server`'s key, speaking `versions` and offering
    /// `features`.
    pub fn new(server: PublicKey, versions: &[u16], features: &[&str]) -> ServerHandshake {
        ServerHandshake {
            server,
            supported_versions: versions.to_vec(),
            supported_features: features.iter().map(|f| f.to_string()).collect(),
            version: PROTOCOL_VERSION,
            state: ServerHandshakeState::AwaitingHello,
        }
    }

    /// Answers a HELLO. `signer` is the server's secret key (used only when the
    /// client sent a nonce); `client_nonce` is a fresh nonce, used only when
    /// the client asked to authenticate.
    pub fn handle_hello(
        &mut self,
        hello: &Hello,
        signer: &SecretKey,
        client_nonce: AuthNonce,
        service_url: Option<String>,
    ) -> Result<HelloAck, HandshakeError> {
        if self.state != ServerHandshakeState::AwaitingHello {
            return Err(HandshakeError::OutOfOrder { step: "HELLO" });
        }
        let version = hello
            .versions
            .iter()
            .copied()
            .filter(|v| self.supported_versions.contains(v))
            .max()
            .ok_or_else(|| HandshakeError::NoCommonVersion {
                offered: hello.versions.clone(),
                supported: self.supported_versions.clone(),
            })?;
        self.version = version;
        let features_accepted = hello
            .features
            .iter()
            .filter(|f| self.supported_features.contains(f))
            .cloned()
            .collect();
        let server_authentication = hello
            .server_nonce
            .as_ref()
            .map(|nonce| sign_server_authentication(signer, nonce));
        let client_nonce = match hello.authenticate_as {
            Some(client) => {
                self.state = ServerHandshakeState::AwaitingAuth {
                    client,
                    nonce: client_nonce.clone(),
                };
                Some(client_nonce)
            }
            None => {
                self.state = ServerHandshakeState::Established {
                    client: None,
                    version,
                };
                None
            }
        };
        Ok(HelloAck {
            version,
            features_accepted,
            server_authentication,
            client_nonce,
            service_url,
        })
    }

    /// Checks the Hello Auth signature; on success the client is
    /// authenticated as the key it named.
    pub fn handle_hello_auth(&mut self, signature: &[u8; 64]) -> Result<PublicKey, HandshakeError> {
        let ServerHandshakeState::AwaitingAuth { client, nonce } = &self.state else {
            return Err(HandshakeError::OutOfOrder { step: "Hello Auth" });
        };
        let client = *client;
        verify_client_authentication(&client, &self.server, nonce, signature)
            .map_err(HandshakeError::ClientAuthenticationFailed)?;
        self.state = ServerHandshakeState::Established {
            client: Some(client),
            version: self.version,
        };
        Ok(client)
    }

    /// Where the handshake stands.
    pub fn state(&self) -> &ServerHandshakeState {
        &self.state
    }

    /// Whether messages other than Hello Auth may flow.
    pub fn is_established(&self) -> bool {
        matches!(self.state, ServerHandshakeState::Established { .. })
    }
}

/// What a client must do after the HELLO ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientNext {
    /// Nothing: the connection is ready.
    Ready,
    /// Send Hello Auth with this signature as the first message.
    SendHelloAuth([u8; 64]),
}

/// The client side of the HELLO exchange.
#[derive(Debug)]
pub struct ClientHandshake {
    hello: Hello,
    expected_server: Option<PublicKey>,
    version: Option<u16>,
}

impl ClientHandshake {
    /// Starts a handshake. When `expected_server` is given, a nonce is sent
    /// and the server must prove that key.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        mut hello: Hello,
        expected_server: Option<PublicKey>,
        rng: &mut R,
    ) -> ClientHandshake {
        if expected_server.is_some() && hello.server_nonce.is_none() {
            hello.server_nonce = Some(AuthNonce::random(rng));
        }
        ClientHandshake {
            hello,
            expected_server,
            version: None,
        }
    }

    /// The HELLO to send.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Checks the HELLO ACK. `client_key` is the secret of the key named in
    /// `authenticate_as`, needed to answer the server's nonce.
    pub fn handle_hello_ack(
        &mut self,
        ack: &HelloAck,
        client_key: Option<&SecretKey>,
    ) -> Result<ClientNext, HandshakeError> {
        if self.version.is_some() {
            return Err(HandshakeError::OutOfOrder { step: "HELLO ACK" });
        }
        if !self.hello.versions.contains(&ack.version) {
            return Err(HandshakeError::UnexpectedVersion {
                version: ack.version,
            });
        }
        if let Some(f) = ack
            .features_accepted
            .iter()
            .find(|f| !self.hello.features.contains(f))
        {
            return Err(HandshakeError::UnexpectedFeature { feature: f.clone() });
        }
        if let (Some(server), Some(nonce)) = (&self.expected_server, &self.hello.server_nonce) {
            let sig = ack
                .server_authentication
                .ok_or(HandshakeError::ServerAuthenticationMissing)?;
            verify_server_authentication(server, nonce, &sig)
                .map_err(HandshakeError::ServerAuthenticationFailed)?;
        }
        self.version = Some(ack.version);
        match (&self.hello.authenticate_as, client_key) {
            (Some(_), Some(key)) => {
                let nonce = ack
                    .client_nonce
                    .as_ref()
                    .ok_or(HandshakeError::ClientNonceMissing)?;
                let server = self
                    .expected_server
                    .ok_or(HandshakeError::ServerAuthenticationMissing)?;
                Ok(ClientNext::SendHelloAuth(sign_client_authentication(
                    key, &server, nonce,
                )))
            }
            _ => Ok(ClientNext::Ready),
        }
    }

    /// The version agreed, once the HELLO ACK was accepted.
    pub fn version(&self) -> Option<u16> {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct CountingRng(u8);
    impl rand_core::TryRng for CountingRng {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.0 = self.0.wrapping_add(1);
            Ok(u32::from(self.0))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self.0.wrapping_add(1);
            Ok(u64::from(self.0))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for CountingRng {}

    fn headers_of<'a>(list: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| {
            list.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    #[test]
    fn authenticated_handshake_in_memory() {
        let mut rng = CountingRng(0);
        let server_key = SecretKey::from_bytes(&[7; 32]);
        let client_key = SecretKey::from_bytes(&[8; 32]);
        let hello = Hello {
            authenticate_as: Some(client_key.public()),
            features: vec!["sync".into(), "other".into()],
            ..Hello::default()
        };
        let mut client = ClientHandshake::new(hello, Some(server_key.public()), &mut rng);
        let request = client.hello().to_headers();
        let received = Hello::from_headers(headers_of(&request)).unwrap();
        assert_eq!(&received, client.hello());

        let mut server = ServerHandshake::new(server_key.public(), &[0], &["sync"]);
        let ack = server
            .handle_hello(&received, &server_key, AuthNonce::random(&mut rng), None)
            .unwrap();
        assert_eq!(ack.features_accepted, vec!["sync".to_string()]);
        let response = ack.to_headers();
        let ack_received = HelloAck::from_headers(headers_of(&response)).unwrap();
        assert_eq!(ack_received, ack);

        let next = client
            .handle_hello_ack(&ack_received, Some(&client_key))
            .unwrap();
        let ClientNext::SendHelloAuth(sig) = next else {
            panic!("expected Hello Auth");
        };
        assert!(!server.is_established());
        assert_eq!(server.handle_hello_auth(&sig).unwrap(), client_key.public());
        assert!(server.is_established());
        assert!(server.handle_hello_auth(&sig).is_err());
    }

    #[test]
    fn impostors_are_caught() {
        let mut rng = CountingRng(0);
        let server_key = SecretKey::from_bytes(&[7; 32]);
        let impostor = SecretKey::from_bytes(&[9; 32]);
        let mut client =
            ClientHandshake::new(Hello::default(), Some(server_key.public()), &mut rng);
        let mut server = ServerHandshake::new(impostor.public(), &[0], &[]);
        let ack = server
            .handle_hello(client.hello(), &impostor, AuthNonce::random(&mut rng), None)
            .unwrap();
        assert!(matches!(
            client.handle_hello_ack(&ack, None),
            Err(HandshakeError::ServerAuthenticationFailed(_))
        ));

        // A client signature made for another server does not pass.
        let client_key = SecretKey::from_bytes(&[8; 32]);
        let hello = Hello {
            authenticate_as: Some(client_key.public()),
            ..Hello::default()
        };
        let mut server = ServerHandshake::new(server_key.public(), &[0], &[]);
        let ack = server
            .handle_hello(&hello, &server_key, AuthNonce::random(&mut rng), None)
            .unwrap();
        let nonce = ack.client_nonce.clone().unwrap();
        let wrong = sign_client_authentication(&client_key, &impostor.public(), &nonce);
        assert!(matches!(
            server.handle_hello_auth(&wrong),
            Err(HandshakeError::ClientAuthenticationFailed(_))
        ));
        // Nor does a record-context signature over the same bytes.
        let record_sig = client_key.sign(b"anything", crate::RECORD_CONTEXT);
        assert!(server.handle_hello_auth(&record_sig).is_err());
    }

    #[test]
    fn browser_defaults_and_bad_headers() {
        let hello = Hello::from_headers(|_| None).unwrap();
        assert_eq!(hello, Hello::default());
        let mut server = ServerHandshake::new(SecretKey::from_bytes(&[1; 32]).public(), &[0], &[]);
        let mut rng = CountingRng(0);
        let ack = server
            .handle_hello(
                &hello,
                &SecretKey::from_bytes(&[1; 32]),
                AuthNonce::random(&mut rng),
                None,
            )
            .unwrap();
        assert!(ack.client_nonce.is_none() && ack.server_authentication.is_none());
        assert!(server.is_established());

        assert!(matches!(
            Hello::from_headers(|n| (n == headers::VERSIONS).then_some("zero")),
            Err(HandshakeError::MalformedHeader { .. })
        ));
        assert!(matches!(
            Hello::from_headers(|n| (n == headers::SERVER_AUTHENTICATE_NONCE).then_some("short")),
            Err(HandshakeError::BadNonce { len: 5 })
        ));
        assert!(
            Hello::from_headers(|n| (n == headers::AUTHENTICATE_AS).then_some("mopub0xyz"))
                .is_err()
        );
        let mut server = ServerHandshake::new(SecretKey::from_bytes(&[1; 32]).public(), &[0], &[]);
        let future = Hello {
            versions: vec![5, 6],
            ..Hello::default()
        };
        assert!(matches!(
            server.handle_hello(
                &future,
                &SecretKey::from_bytes(&[1; 32]),
                AuthNonce::random(&mut rng),
                None
            ),
            Err(HandshakeError::NoCommonVersion { .. })
        ));
    }
}
