//! Mosaic server URLs (`url.md`): [`Url`], [`Scheme`] and [`Host`].
//!
//! The rules, and the normal form URLs are displayed in, are on [`Url`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest DNS name, in characters, without a trailing dot.
const MAX_DOMAIN_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;
/// How much of a refused piece of input an error keeps.
const MAX_FOUND_LEN: usize = 64;

/// Why a string is not a Mosaic URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// A character that has no place in a URL: a space, a control character
    /// or anything outside ASCII. Internationalised names must be given in
    /// their `xn--` form.
    #[error("character {character:?} at byte {index} is not allowed in a URL")]
    InvalidCharacter {
        /// Byte offset of the character in the input.
        index: usize,
        /// The character.
        character: char,
    },
    /// There is no `scheme://` at the start. Write the URL in full, such as
    /// `mosaic://203.0.113.1`.
    #[error("missing scheme: a Mosaic URL starts with mosaic://, mosaictcp:// or mosaicwss://")]
    MissingScheme,
    /// The scheme is not `mosaic`, `mosaictcp` or `mosaicwss`. A `wss://`
    /// address of a Mosaic server is written `mosaicwss://`.
    #[error("unknown scheme {found:?}: expected mosaic, mosaictcp or mosaicwss")]
    UnknownScheme {
        /// The scheme given (at most 64 characters).
        found: String,
    },
    /// The URL has no host.
    #[error("the URL has no host")]
    MissingHost,
    /// The host is neither a valid DNS name, nor an IPv4 address, nor an IPv6
    /// address in brackets.
    #[error("invalid host {found:?}")]
    InvalidHost {
        /// The host given (at most 64 characters).
        found: String,
    },
    /// The port is not a number from 1 to 65535. Leave it out to use the
    /// scheme's default.
    #[error("invalid port {found:?}: expected a number from 1 to 65535")]
    InvalidPort {
        /// The port given (at most 64 characters).
        found: String,
    },
    /// The path is not `/`. Mosaic servers live at the root path only.
    #[error("path {found:?} is not allowed: a Mosaic URL has the root path / only")]
    PathNotRoot {
        /// The path given (at most 64 characters).
        found: String,
    },
    /// A Tor `.onion` host with the `mosaic` (QUIC) scheme: QUIC cannot cross
    /// Tor. Use `mosaictcp` or `mosaicwss` for onion services.
    #[error("a .onion host cannot be reached over QUIC: use mosaictcp or mosaicwss")]
    OnionOverQuic,
}

/// The transport a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// `mosaic`: Mosaic over QUIC, default port 1320 (udp).
    Quic,
    /// `mosaictcp`: Mosaic over TCP with TLS, default port 1320.
    Tcp,
    /// `mosaicwss`: Mosaic over WebSocket with TLS, default port 443.
    WebSocket,
}

impl Scheme {
    /// Every scheme.
    pub const ALL: [Scheme; 3] = [Scheme::Quic, Scheme::Tcp, Scheme::WebSocket];

    /// The scheme as written in a URL, such as `"mosaictcp"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Quic => "mosaic",
            Scheme::Tcp => "mosaictcp",
            Scheme::WebSocket => "mosaicwss",
        }
    }

    /// The port used when a URL gives none.
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Quic | Scheme::Tcp => 1320,
            Scheme::WebSocket => 443,
        }
    }

    /// The scheme named `s`, ignoring ASCII case.
    fn from_name(s: &str) -> Option<Scheme> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The host of a URL.
///
/// Displayed as it is written in a URL: IPv6 addresses in brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// A DNS name, lowercase (possibly a Tor `.onion` name).
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address.
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Whether this is a Tor onion service name (`*.onion`).
    pub fn is_onion(&self) -> bool {
        match self {
            Host::Domain(name) => name.ends_with(".onion"),
            Host::Ipv4(_) | Host::Ipv6(_) => false,
        }
    }

    /// The address, when the host is an IP address.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A valid, normalised Mosaic server URL.
///
/// A Mosaic URL is `scheme://host[:port][/]`:
///
/// - **Scheme**, one of `mosaic` (QUIC, default port 1320 udp), `mosaictcp`
///   (TCP with TLS, default 1320) and `mosaicwss` (WebSocket over TLS, default
///   443), matched without regard to case. No other scheme is a Mosaic URL:
///   `wss`, `https` and plain-text `ws` are refused. A WebSocket client that
///   needs the `wss://` form of a `mosaicwss` URL gets it from
///   [`Url::websocket_uri`].
/// - **Host**, a DNS name (ASCII letters, digits and hyphens in dot-separated
///   labels of 1 to 63 characters, at most 253 in all; internationalised names
///   must be given in their `xn--` form), an IPv4 address, or an IPv6 address
///   in brackets. Names are lowercased. A name whose last label is all digits
///   must be a valid IPv4 address. Tor `.onion` names are allowed, but not
///   with `mosaic`: QUIC cannot cross Tor.
/// - **Port**, optional; the scheme's default applies when it is absent.
///   Port 0 is refused.
/// - **Path**, exactly `/`; an empty path means `/`, any other is refused.
/// - **User, password, query and fragment** are not part of a Mosaic URL; the
///   spec says to ignore and prune them, so they are dropped without error.
///
/// Parsing normalises: the [`Display`](std::fmt::Display) form is
/// `scheme://host[:port]/` with the scheme and name in lowercase, the IPv6
/// address in its RFC 5952 form and the port left out when it is the
/// scheme's default. Parsing the displayed form gives back an equal `Url`.
///
/// ```
/// use mosaic_core::{Host, Scheme, Url};
///
/// # fn main() -> Result<(), mosaic_core::Error> {
/// let url: Url = "MosaicWSS://user@Example.COM:443/?x=1#top".parse()?;
/// assert_eq!(url.scheme(), Scheme::WebSocket);
/// assert_eq!(url.host(), &Host::Domain("example.com".into()));
/// assert_eq!(url.port(), 443);
/// assert_eq!(url.to_string(), "mosaicwss://example.com/");
/// assert_eq!(url.websocket_uri().as_deref(), Some("wss://example.com/"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Url {
    scheme: Scheme,
    host: Host,
    port: u16,
}

impl Url {
    /// Parses and normalises a URL; see [`Url`] for what is accepted.
    pub fn parse(input: &str) -> Result<Url, UrlError> {
        if let Some((index, character)) = input.char_indices().find(|(_, c)| !c.is_ascii_graphic())
        {
            return Err(UrlError::InvalidCharacter { index, character });
        }
        let (scheme_text, rest) = input.split_once("://").ok_or(UrlError::MissingScheme)?;
        if scheme_text.is_empty() {
            return Err(UrlError::MissingScheme);
        }
        let scheme = Scheme::from_name(scheme_text).ok_or_else(|| UrlError::UnknownScheme {
            found: truncated(scheme_text),
        })?;

        // The authority runs to the first '/', '?' or '#'.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(authority_end);
        // The path runs from a '/' to the query or fragment, which are pruned.
        let path = after.find(['?', '#']).map_or(after, |end| &after[..end]);
        if !path.is_empty() && path != "/" {
            return Err(UrlError::PathNotRoot {
                found: truncated(path),
            });
        }

        // Any user and password end at the last '@'; they are pruned.
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let (host, port_text) = split_host_port(host_port)?;
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let host = parse_host(host)?;
        let port = match port_text {
            None => scheme.default_port(),
            Some(p) => parse_port(p)?,
        };
        if scheme == Scheme::Quic && host.is_onion() {
            return Err(UrlError::OnionOverQuic);
        }
        Ok(Url { scheme, host, port })
    }

    /// The transport.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port: the one given, else the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the host is a Tor onion service name.
    pub fn is_onion(&self) -> bool {
        self.host.is_onion()
    }

    /// `host:port` with the effective port, IPv6 in brackets: what a
    /// transport connects to.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// For a `mosaicwss` URL, the `wss://host[:port]/` URI that a WebSocket
    /// client opens (the port left out when it is 443); `None` for the other
    /// schemes.
    pub fn websocket_uri(&self) -> Option<String> {
        match self.scheme {
            Scheme::WebSocket if self.port == 443 => Some(format!("wss://{}/", self.host)),
            Scheme::WebSocket => Some(format!("wss://{}:{}/", self.host, self.port)),
            Scheme::Quic | Scheme::Tcp => None,
        }
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the port is `None` when absent.
fn split_host_port(host_port: &str) -> Result<(&str, Option<&str>), UrlError> {
    if let Some(bracketed) = host_port.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid_host(host_port))?;
        let host = &host_port[..inside.len() + 2];
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(invalid_host(host_port)),
            },
        };
    }
    match host_port.split_once(':') {
        None => Ok((host_port, None)),
        // A second ':' means an IPv6 address without its brackets.
        Some((_, port)) if port.contains(':') => Err(invalid_host(host_port)),
        Some((host, port)) => Ok((host, Some(port))),
    }
}

fn parse_host(host: &str) -> Result<Host, UrlError> {
    if let Some(inside) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inside
            .parse::<Ipv6Addr>()
            .map(Host::Ipv6)
            .map_err(|_| invalid_host(host));
    }
    let name = host.to_ascii_lowercase();
    let last_label = name.rsplit('.').next().unwrap_or("");
    if !last_label.is_empty() && last_label.bytes().all(|b| b.is_ascii_digit()) {
        return name
            .parse::<Ipv4Addr>()
            .map(Host::Ipv4)
            .map_err(|_| invalid_host(host));
    }
    if name.len() > MAX_DOMAIN_LEN || !name.split('.').all(valid_label) {
        return Err(invalid_host(host));
    }
    Ok(Host::Domain(name))
}

/// A DNS label: 1 to 63 letters, digits and hyphens, not starting or ending
/// with a hyphen (already lowercase).
fn valid_label(label: &str) -> bool {
    (1..=MAX_LABEL_LEN).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn parse_port(text: &str) -> Result<u16, UrlError> {
    let invalid = || UrlError::InvalidPort {
        found: truncated(text),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid()),
        Ok(port) => Ok(port),
    }
}

fn invalid_host(host: &str) -> UrlError {
    UrlError::InvalidHost {
        found: truncated(host),
    }
}

fn truncated(s: &str) -> String {
    s.chars().take(MAX_FOUND_LEN).collect()
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        f.write_str("/")
    }
}

impl FromStr for Url {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Url::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, display: &str) -> Url {
        let url = Url::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(url.to_string(), display, "{input}");
        assert_eq!(Url::parse(display).unwrap(), url, "{display}");
        url
    }

    fn err(input: &str) -> UrlError {
        Url::parse(input).expect_err(input)
    }

    #[test]
    fn schemes_and_default_ports() {
        let u = ok("mosaic://203.0.113.2:5198", "mosaic://203.0.113.2:5198/");
        assert_eq!(u.scheme(), Scheme::Quic);
        assert_eq!(u.host(), &Host::Ipv4(Ipv4Addr::new(203, 0, 113, 2)));
        assert_eq!(u.port(), 5198);
        let u = ok("mosaictcp://203.0.113.1", "mosaictcp://203.0.113.1/");
        assert_eq!((u.scheme(), u.port()), (Scheme::Tcp, 1320));
        let u = ok("mosaicwss://example.com", "mosaicwss://example.com/");
        assert_eq!((u.scheme(), u.port()), (Scheme::WebSocket, 443));
        let u = ok("mosaic://example.com", "mosaic://example.com/");
        assert_eq!(u.port(), 1320);
        // The default port is left out of the normalised form.
        assert_eq!(
            Url::parse("mosaic://example.com:1320/").unwrap(),
            Url::parse("mosaic://example.com").unwrap()
        );
        ok(
            "mosaicwss://example.com:1320",
            "mosaicwss://example.com:1320/",
        );
        ok(
            "mosaictcp://example.com:443",
            "mosaictcp://example.com:443/",
        );
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_name(s.as_str()), Some(s));
        }
    }

    #[test]
    fn case_is_normalised() {
        let u = ok(
            "MOSAICTCP://Relay.Example.COM:8443",
            "mosaictcp://relay.example.com:8443/",
        );
        assert_eq!(u.host(), &Host::Domain("relay.example.com".into()));
        ok("mosaic://[2001:DB8::1]", "mosaic://[2001:db8::1]/");
    }

    #[test]
    fn ipv6_hosts() {
        let u = ok(
            "mosaic://[2001:db8::2]:5198",
            "mosaic://[2001:db8::2]:5198/",
        );
        assert_eq!(u.host(), &Host::Ipv6("2001:db8::2".parse().unwrap()));
        assert_eq!(u.authority(), "[2001:db8::2]:5198");
        assert_eq!(u.host().ip(), Some("2001:db8::2".parse().unwrap()));
        ok("mosaic://[::1]", "mosaic://[::1]/");
        ok("mosaic://[0:0:0:0:0:0:0:1]:9/", "mosaic://[::1]:9/");
        // The spec's own example has two "::" and is not an address.
        assert!(matches!(
            err("mosaic://[2001::130F::09C0:876A:130B]"),
            UrlError::InvalidHost { .. }
        ));
        assert!(matches!(err("mosaic://[::1"), UrlError::InvalidHost { .. }));
        assert!(matches!(
            err("mosaic://[::1]x"),
            UrlError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("mosaic://[1.2.3.4]"),
            UrlError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("mosaic://[fe80::1%25eth0]"),
            UrlError::InvalidHost { .. }
        ));
        assert_eq!(
            err("mosaic://2001:db8::1"),
            UrlError::InvalidHost {
                found: "2001:db8::1".into()
            }
        );
    }

    #[test]
    fn ipv4_and_numeric_hosts() {
        let u = ok("mosaic://127.0.0.1:4433", "mosaic://127.0.0.1:4433/");
        assert_eq!(u.host().ip(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(u.authority(), "127.0.0.1:4433");
        for bad in ["256.1.1.1", "1.2.3", "01.2.3.4", "example.123", "1.2.3.4.5"] {
            assert!(
                matches!(
                    err(&format!("mosaic://{bad}")),
                    UrlError::InvalidHost { .. }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn domain_rules() {
        ok("mosaic://localhost", "mosaic://localhost/");
        ok(
            "mosaic://xn--bcher-kva.example",
            "mosaic://xn--bcher-kva.example/",
        );
        ok("mosaic://a-b.c0", "mosaic://a-b.c0/");
        let label63 = "a".repeat(63);
        ok(
            &format!("mosaic://{label63}.com"),
            &format!("mosaic://{label63}.com/"),
        );
        // 4 labels of 63 plus 3 dots = 255 characters: too long; 253 is fine.
        let long = [label63.as_str(); 4].join(".");
        assert!(matches!(
            err(&format!("mosaic://{long}")),
            UrlError::InvalidHost { .. }
        ));
        let max = format!("{}.{}", [label63.as_str(); 3].join("."), "a".repeat(61));
        assert_eq!(max.len(), 253);
        ok(&format!("mosaic://{max}"), &format!("mosaic://{max}/"));
        for bad in [
            &format!("{}.com", "a".repeat(64)),
            "-a.com",
            "a-.com",
            "a..com",
            ".a.com",
            "example.com.",
            "under_score.com",
            "ex%41mple.com",
        ] {
            assert!(
                matches!(
                    err(&format!("mosaic://{bad}")),
                    UrlError::InvalidHost { .. }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn onion_hosts() {
        let u = ok(
            "mosaicwss://myserverlk23lkjsefo8u.onion",
            "mosaicwss://myserverlk23lkjsefo8u.onion/",
        );
        assert!(u.is_onion());
        ok("mosaictcp://abc.onion:99", "mosaictcp://abc.onion:99/");
        assert_eq!(err("mosaic://abc.onion"), UrlError::OnionOverQuic);
        assert_eq!(err("mosaic://ABC.ONION:1320"), UrlError::OnionOverQuic);
        assert!(!Url::parse("mosaic://onion.example").unwrap().is_onion());
    }

    #[test]
    fn pruned_components() {
        ok("mosaic://user:pass@example.com", "mosaic://example.com/");
        ok("mosaic://user@example.com:9/", "mosaic://example.com:9/");
        ok("mosaic://a@b@example.com", "mosaic://example.com/");
        ok("mosaic://example.com?q=1", "mosaic://example.com/");
        ok("mosaic://example.com/?q=1#f", "mosaic://example.com/");
        ok("mosaic://example.com#frag", "mosaic://example.com/");
        ok("mosaic://example.com/#/not/a/path", "mosaic://example.com/");
    }

    #[test]
    fn path_must_be_root() {
        assert_eq!(
            err("mosaic://example.com/some/path?q=1"),
            UrlError::PathNotRoot {
                found: "/some/path".into()
            }
        );
        assert!(matches!(
            err("mosaic://example.com//"),
            UrlError::PathNotRoot { .. }
        ));
        assert!(matches!(
            err("mosaic://example.com/x"),
            UrlError::PathNotRoot { .. }
        ));
    }

    #[test]
    fn ports() {
        ok("mosaic://example.com:65535", "mosaic://example.com:65535/");
        ok("mosaic://example.com:01", "mosaic://example.com:1/");
        for bad in ["0", "65536", "", "-1", "+1", "12a", "99999999999999999999"] {
            assert_eq!(
                err(&format!("mosaic://example.com:{bad}")),
                UrlError::InvalidPort { found: bad.into() },
                "{bad}"
            );
        }
        assert!(matches!(
            err("mosaic://[::1]:0"),
            UrlError::InvalidPort { .. }
        ));
    }

    #[test]
    fn schemes_refused() {
        assert_eq!(err("example.com"), UrlError::MissingScheme);
        assert_eq!(err("://example.com"), UrlError::MissingScheme);
        assert_eq!(err("mosaic:example.com"), UrlError::MissingScheme);
        for bad in ["wss", "https", "ws", "http", "mosaicws", "mosaicquic"] {
            assert_eq!(
                err(&format!("{bad}://example.com")),
                UrlError::UnknownScheme { found: bad.into() }
            );
        }
        let long = "x".repeat(100);
        assert_eq!(
            err(&format!("{long}://example.com")),
            UrlError::UnknownScheme {
                found: "x".repeat(64)
            }
        );
    }

    #[test]
    fn missing_host_and_characters() {
        assert_eq!(err("mosaic://"), UrlError::MissingHost);
        assert_eq!(err("mosaic:///"), UrlError::MissingHost);
        assert_eq!(err("mosaic://:1320"), UrlError::MissingHost);
        assert_eq!(err("mosaic://user@"), UrlError::MissingHost);
        assert_eq!(
            err("mosaic://exa mple.com"),
            UrlError::InvalidCharacter {
                index: 12,
                character: ' '
            }
        );
        assert_eq!(
            err("mosaic://example.com\n"),
            UrlError::InvalidCharacter {
                index: 20,
                character: '\n'
            }
        );
        assert_eq!(
            err("mosaic://bücher.example"),
            UrlError::InvalidCharacter {
                index: 10,
                character: 'ü'
            }
        );
        assert!(matches!(err(""), UrlError::MissingScheme));
    }

    #[test]
    fn websocket_uri() {
        let u = Url::parse("mosaicwss://example.com:8443").unwrap();
        assert_eq!(
            u.websocket_uri().as_deref(),
            Some("wss://example.com:8443/")
        );
        let u = Url::parse("mosaicwss://[::1]").unwrap();
        assert_eq!(u.websocket_uri().as_deref(), Some("wss://[::1]/"));
        assert_eq!(
            Url::parse("mosaic://example.com").unwrap().websocket_uri(),
            None
        );
        assert_eq!(
            Url::parse("mosaictcp://example.com")
                .unwrap()
                .websocket_uri(),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_and_round_trips(s in "\\PC{0,48}") {
            if let Ok(url) = Url::parse(&s) {
                proptest::prop_assert_eq!(Url::parse(&url.to_string()), Ok(url));
            }
        }

        #[test]
        fn url_like_text_round_trips(
            s in "(mosaic|MOSAICTCP|mosaicwss|wss)://([a-zA-Z0-9@-]{0,6}[.:]?){0,4}(\\[[0-9a-f:.]{0,12}\\])?(:[0-9]{0,6})?(/|//)?([?#].{0,4})?"
        ) {
            if let Ok(url) = Url::parse(&s) {
                proptest::prop_assert_eq!(Url::parse(&url.to_string()), Ok(url));
            }
        }
    }
}
