//! The real client address behind a reverse proxy: the PROXY protocol
//! (version 1, text, and version 2, binary) ahead of TLS and HTTP, and the
//! `X-Forwarded-For` header of the request, both believed only from the
//! addresses an operator lists as trusted proxies ([`IpRange`]).
//!
//! A PROXY header from any other peer is refused (the connection is closed),
//! and so is a malformed one; `X-Forwarded-For` from any other peer is
//! ignored. Every read is bounded in size here and in time by the caller's
//! handshake timeout.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::error::NetError;

/// The first bytes of a PROXY protocol version 1 header.
const V1_SIGNATURE: &[u8] = b"PROXY ";
/// The first bytes of a PROXY protocol version 2 header.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 header, CRLF included (the protocol's own bound).
const V1_MAX_LEN: usize = 107;
/// The fixed part of a version 2 header.
const V2_FIXED_LEN: usize = 16;

/// An IP address range in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or one
/// address (`192.0.2.7`, `::1`): the form trusted proxies are listed in.
///
/// IPv4 addresses seen as IPv4-mapped IPv6 addresses (a server listening on
/// `[::]`) match IPv4 ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

/// Why a text is not an [`IpRange`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpRangeError {
    /// The address part is not an IP address.
    #[error("{text:?} is not an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8")]
    Address {
        /// The text given.
        text: String,
    },
    /// The prefix length is not a number up to the address's bit count.
    #[error("{text:?} has a prefix length above {max} or not a number")]
    Prefix {
        /// The text given.
        text: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// Bits are set below the prefix, which usually means a typo.
    #[error("{text:?} has bits set below its prefix length: write {network} instead")]
    HostBits {
        /// The text given.
        text: String,
        /// The range it most likely means.
        network: String,
    },
}

impl IpRange {
    /// The range of `prefix` leading bits of `network`; refused when
    /// `prefix` exceeds the address's bit count or bits below it are set.
    pub fn new(network: IpAddr, prefix: u8) -> Result<IpRange, IpRangeError> {
        let network = network.to_canonical();
        let max = max_prefix(network);
        if prefix > max {
            return Err(IpRangeError::Prefix {
                text: format!("{network}/{prefix}"),
                max,
            });
        }
        let range = IpRange { network, prefix };
        let masked = range.masked(network);
        if masked != network {
            return Err(IpRangeError::HostBits {
                text: format!("{network}/{prefix}"),
                network: IpRange {
                    network: masked,
                    prefix,
                }
                .to_string(),
            });
        }
        Ok(range)
    }

    /// The range holding exactly `addr`.
    pub fn single(addr: IpAddr) -> IpRange {
        let addr = addr.to_canonical();
        IpRange {
            network: addr,
            prefix: max_prefix(addr),
        }
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && self.masked(ip) == self.network
    }

    /// `ip` with the bits below the prefix cleared.
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    fn from_str(text: &str) -> Result<IpRange, IpRangeError> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| IpRangeError::Address {
            text: text.to_string(),
        })?;
        let Some(prefix) = prefix else {
            return Ok(IpRange::single(addr));
        };
        let max = max_prefix(addr.to_canonical());
        let prefix: u8 =
            prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| IpRangeError::Prefix {
                    text: text.to_string(),
                    max,
                })?;
        IpRange::new(addr, prefix).map_err(|e| match e {
            IpRangeError::HostBits { network, .. } => IpRangeError::HostBits {
                text: text.to_string(),
                network,
            },
            other => other,
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == max_prefix(self.network) {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

/// Why a PROXY protocol header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// A PROXY header came from a peer that is not a trusted proxy; list the
    /// proxy's address among the trusted proxies if it is one.
    #[error("a PROXY protocol header from {peer}, which is not a trusted proxy")]
    Untrusted {
        /// The peer that sent it.
        peer: IpAddr,
    },
    /// The header does not follow the PROXY protocol.
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    /// The header is longer than the server accepts.
    #[error("PROXY protocol header longer than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// Whether `ip` is in one of `trusted`.
pub(crate) fn is_trusted(trusted: &[IpRange], ip: IpAddr) -> bool {
    trusted.iter().any(|range| range.contains(ip))
}

/// What the first bytes of a connection turned out to be.
enum Start {
    /// Not a PROXY header (or not yet known).
    Other,
    /// Perhaps a PROXY header: more bytes are needed to tell.
    Undecided,
    /// A version 1 header.
    V1,
    /// A version 2 header.
    V2,
}

fn classify(buf: &[u8]) -> Start {
    if buf.starts_with(V1_SIGNATURE) {
        return Start::V1;
    }
    if buf.starts_with(V2_SIGNATURE) {
        return Start::V2;
    }
    let prefix_of = |sig: &[u8]| sig.starts_with(buf);
    if prefix_of(V1_SIGNATURE) || prefix_of(V2_SIGNATURE) {
        Start::Undecided
    } else {
        Start::Other
    }
}

/// Reads the start of a connection from `peer`: when it is a PROXY header
/// and `peer` is trusted, returns the client address it carries (`None` for
/// a header that names none, such as `PROXY UNKNOWN` or a version 2 LOCAL
/// command) and the bytes read past it; when it is not a PROXY header,
/// returns `None` and every byte read, to be read again.
pub(crate) async fn read_proxy_header<R: AsyncRead + Unpin>(
    io: &mut R,
    peer: SocketAddr,
    trusted: &[IpRange],
    max_len: usize,
) -> Result<(Option<SocketAddr>, Vec<u8>), NetError> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        match classify(&buf) {
            Start::Other => return Ok((None, buf)),
            Start::Undecided => {}
            Start::V1 | Start::V2 if !is_trusted(trusted, peer.ip()) => {
                return Err(NetError::Proxy(ProxyError::Untrusted {
                    peer: peer.ip().to_canonical(),
                }));
            }
            Start::V1 => {
                if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
                    let source = parse_v1(&buf[..end])?;
                    return Ok((source, buf.split_off(end + 2)));
                }
                if buf.len() >= V1_MAX_LEN {
                    return Err(NetError::Proxy(ProxyError::Malformed(
                        "a version 1 header without CRLF in its first 107 bytes",
                    )));
                }
            }
            Start::V2 => {
                if buf.len() >= V2_FIXED_LEN {
                    let len = V2_FIXED_LEN + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
                    if len > max_len {
                        return Err(NetError::Proxy(ProxyError::TooLarge { limit: max_len }));
                    }
                    if buf.len() >= len {
                        let source = parse_v2(&buf[..len])?;
                        return Ok((source, buf.split_off(len)));
                    }
                }
            }
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return match classify(&buf) {
                Start::V1 | Start::V2 => Err(NetError::Proxy(ProxyError::Malformed(
                    "the connection closed inside the header",
                ))),
                // Not a PROXY header: whoever reads next sees the end.
                _ => Ok((None, buf)),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Parses `PROXY TCP4|TCP6|UNKNOWN src dst sport dport` (CRLF removed).
fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, NetError> {
    let bad = |why| NetError::Proxy(ProxyError::Malformed(why));
    let line =
        std::str::from_utf8(line).map_err(|_| bad("a version 1 header that is not ASCII"))?;
    let mut fields = line.split(' ');
    let _proxy = fields.next();
    let protocol = fields.next().ok_or(bad("no protocol"))?;
    let ipv4 = match protocol {
        "TCP4" => true,
        "TCP6" => false,
        // The proxy does not know the client: the peer stands for it.
        "UNKNOWN" => return Ok(None),
        _ => return Err(bad("a protocol other than TCP4, TCP6 and UNKNOWN")),
    };
    let mut next = || fields.next().ok_or(bad("too few fields"));
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(bad("too many fields"));
    }
    let address = |text: &str| -> Result<IpAddr, NetError> {
        if ipv4 {
            text.parse::<Ipv4Addr>().map(IpAddr::V4)
        } else {
            text.parse::<Ipv6Addr>().map(IpAddr::V6)
        }
        .map_err(|_| bad("an address that does not match the protocol"))
    };
    let port = |text: &str| -> Result<u16, NetError> {
        if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a port that is not a number up to 65535"));
        }
        text.parse().map_err(|_| bad("a port above 65535"))
    };
    let source = address(src)?;
    address(dst)?;
    let source_port = port(sport)?;
    port(dport)?;
    Ok(Some(SocketAddr::new(source.to_canonical(), source_port)))
}

/// Parses a whole version 2 header (signature, fixed part, addresses and
/// TLVs, which are skipped).
fn parse_v2(header: &[u8]) -> Result<Option<SocketAddr>, NetError> {
    let bad = |why| NetError::Proxy(ProxyError::Malformed(why));
    let version_command = header[12];
    if version_command >> 4 != 2 {
        return Err(bad("a version 2 signature with another version"));
    }
    match version_command & 0x0F {
        // LOCAL: the proxy's own connection (a health check); the peer is
        // the proxy.
        0 => return Ok(None),
        1 => {}
        _ => return Err(bad("an unknown command")),
    }
    let family = header[13] >> 4;
    let body = &header[V2_FIXED_LEN..];
    match family {
        // UNSPEC or a Unix socket: no IP address to take.
        0 | 3 => Ok(None),
        1 => {
            let a = body
                .get(..12)
                .ok_or(bad("an IPv4 block shorter than 12 bytes"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let port = u16::from_be_bytes([a[8], a[9]]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        2 => {
            let a = body
                .get(..36)
                .ok_or(bad("an IPv6 block shorter than 36 bytes"))?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = IpAddr::V6(Ipv6Addr::from(octets)).to_canonical();
            let port = u16::from_be_bytes([a[32], a[33]]);
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(bad("an unknown address family")),
    }
}

/// The client address `X-Forwarded-For` names, for a request whose
/// (immediate or PROXY-given) peer is `peer`: walking the header from the
/// right, the first address that is not a trusted proxy. Used only when
/// `peer` itself is trusted; an entry that is not an address stops the walk
/// at the last trusted hop. The port of a forwarded address is unknown (0).
pub(crate) fn forwarded_for<'a>(
    values: impl Iterator<Item = &'a str>,
    peer: SocketAddr,
    trusted: &[IpRange],
) -> SocketAddr {
    let entries: Vec<&str> = values.flat_map(|v| v.split(',')).map(str::trim).collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded(entry) else {
            return client;
        };
        client = SocketAddr::new(ip, 0);
        if !is_trusted(trusted, ip) {
            return client;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// A stream that first gives back bytes already read from it.
pub(crate) struct Prefixed<T> {
    prefix: Vec<u8>,
    pos: usize,
    inner: T,
}

impl<T> Prefixed<T> {
    pub(crate) fn new(prefix: Vec<u8>, inner: T) -> Prefixed<T> {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ranges_parse_match_and_print() {
        let r: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.200.3.4".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!r.contains("::1".parse().unwrap()));
        assert_eq!(r.to_string(), "10.0.0.0/8");
        let one: IpRange = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        assert_eq!(one.to_string(), "192.0.2.7");
        let v6: IpRange = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fdab::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(!all.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(
            "10.0.0.1/8".parse::<IpRange>(),
            Err(IpRangeError::HostBits {
                text: "10.0.0.1/8".into(),
                network: "10.0.0.0/8".into()
            })
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<IpRange>(),
            Err(IpRangeError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<IpRange>(),
            Err(IpRangeError::Prefix { .. })
        ));
        assert!(matches!(
            "proxy.example".parse::<IpRange>(),
            Err(IpRangeError::Address { .. })
        ));
    }

    async fn read(
        bytes: &[u8],
        peer: &str,
        trusted: &[&str],
    ) -> Result<(Option<SocketAddr>, Vec<u8>), NetError> {
        let mut io: &[u8] = bytes;
        read_proxy_header(&mut io, peer.parse().unwrap(), &ranges(trusted), 16 * 1024).await
    }

    #[tokio::test]
    async fn v1_headers() {
        let (source, rest) = read(
            b"PROXY TCP4 203.0.113.9 10.0.0.1 4711 443\r\nGET / HTTP/1.1\r\n",
            "10.0.0.2:5000",
            &["10.0.0.0/8"],
        )
        .await
        .unwrap();
        assert_eq!(source, Some("203.0.113.9:4711".parse().unwrap()));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        let (source, _) = read(
            b"PROXY TCP6 2001:db8::9 2001:db8::1 1 2\r\n",
            "10.0.0.2:5000",
            &["10.0.0.2"],
        )
        .await
        .unwrap();
        assert_eq!(source, Some("[2001:db8::9]:1".parse().unwrap()));
        let (source, rest) = read(b"PROXY UNKNOWN\r\nx", "10.0.0.2:5000", &["10.0.0.2"])
            .await
            .unwrap();
        assert_eq!((source, rest), (None, b"x".to_vec()));
        for bad in [
            &b"PROXY TCP4 203.0.113.9 10.0.0.1 4711\r\n"[..],
            b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.9 10.0.0.1 99999 2\r\n",
            b"PROXY TCP4 203.0.113.9 10.0.0.1 +1 2\r\n",
            b"PROXY TCP5 203.0.113.9 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.9 10.0.0.1 1 2 3\r\n",
            b"PROXY TCP4 \xff\r\n",
            b"PROXY TCP4 203.0.113.9 10.0.0.1 1 2",
        ] {
            assert!(
                matches!(
                    read(bad, "10.0.0.2:5000", &["10.0.0.2"]).await,
                    Err(NetError::Proxy(ProxyError::Malformed(_)))
                ),
                "{bad:?}"
            );
        }
        let long = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(
            read(&long, "10.0.0.2:5000", &["10.0.0.2"]).await,
            Err(NetError::Proxy(ProxyError::Malformed(_)))
        ));
        assert!(matches!(
            read(
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
                "10.0.0.3:1",
                &["10.0.0.2"]
            )
            .await,
            Err(NetError::Proxy(ProxyError::Untrusted { .. }))
        ));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[tokio::test]
    async fn v2_headers() {
        let mut body = vec![198, 51, 100, 7, 10, 0, 0, 1];
        body.extend_from_slice(&4711u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        body.extend_from_slice(&[0x04, 0, 1, 0]); // a TLV, skipped
        let mut bytes = v2(1, 0x11, &body);
        bytes.extend_from_slice(b"\x16\x03\x01");
        let (source, rest) = read(&bytes, "[::1]:9", &["::1"]).await.unwrap();
        assert_eq!(source, Some("198.51.100.7:4711".parse().unwrap()));
        assert_eq!(rest, b"\x16\x03\x01");
        let mut body6 = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        body6.extend_from_slice(&[0; 16]);
        body6.extend_from_slice(&[0, 80, 1, 187]);
        let (source, _) = read(&v2(1, 0x21, &body6), "[::1]:9", &["::1"])
            .await
            .unwrap();
        assert_eq!(source, Some("[2001:db8::7]:80".parse().unwrap()));
        let (source, _) = read(&v2(0, 0x00, &[]), "[::1]:9", &["::1"]).await.unwrap();
        assert_eq!(source, None);
        for bad in [
            v2(1, 0x11, &body[..8]),
            v2(1, 0x21, &body6[..20]),
            v2(5, 0x11, &body),
            v2(1, 0x51, &body),
            [V2_SIGNATURE, &[0x11, 0x11, 0, 0]].concat(),
            v2(1, 0x11, &body)[..20].to_vec(),
        ] {
            assert!(
                matches!(
                    read(&bad, "[::1]:9", &["::1"]).await,
                    Err(NetError::Proxy(ProxyError::Malformed(_)))
                ),
                "{bad:?}"
            );
        }
        let huge = [V2_SIGNATURE, &[0x21, 0x11, 0xff, 0xff]].concat();
        assert!(matches!(
            read(&huge, "[::1]:9", &["::1"]).await,
            Err(NetError::Proxy(ProxyError::TooLarge { .. }))
        ));
        assert!(matches!(
            read(&v2(1, 0x11, &body), "[::2]:9", &["::1"]).await,
            Err(NetError::Proxy(ProxyError::Untrusted { .. }))
        ));
    }

    #[tokio::test]
    async fn other_starts_are_given_back_whole() {
        for start in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00",
            b"P",
            b"\r\n\r\nGET",
        ] {
            let (source, rest) = read(start, "10.0.0.2:1", &["10.0.0.2"]).await.unwrap();
            assert_eq!((source, rest.as_slice()), (None, start));
        }
    }

    #[test]
    fn forwarded_for_takes_the_rightmost_untrusted_address() {
        let trusted = ranges(&["10.0.0.0/8"]);
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let ip = |values: &[&str]| forwarded_for(values.iter().copied(), peer, &trusted);
        assert_eq!(ip(&["203.0.113.9"]), "203.0.113.9:0".parse().unwrap());
        // A client-supplied entry on the left is not believed.
        assert_eq!(
            ip(&["198.51.100.1, 203.0.113.9, 10.1.1.1"]),
            "203.0.113.9:0".parse().unwrap()
        );
        // Several headers read as one list.
        assert_eq!(
            ip(&["198.51.100.1", "203.0.113.9:4711"]),
            "203.0.113.9:0".parse().unwrap()
        );
        assert_eq!(
            ip(&["[2001:db8::1]:80"]),
            "[2001:db8::1]:0".parse().unwrap()
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(ip(&["203.0.113.9, unknown"]), peer);
        assert_eq!(ip(&["unknown, 10.3.3.3"]), "10.3.3.3:0".parse().unwrap());
        assert_eq!(ip(&[]), peer);
        // All trusted: the leftmost.
        assert_eq!(ip(&["10.9.9.9, 10.3.3.3"]), "10.9.9.9:0".parse().unwrap());
    }
}
