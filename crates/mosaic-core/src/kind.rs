//! Record kinds: application id, application-specific kind and handling flags
//! (`kind.md`, `kinds.md`, D-16).
//!
//! A [`Kind`] is a `u64` sent big-endian: the application id in the high 4
//! bytes, the application's own kind in the next 2 and [`KindFlags`] in the
//! low 2. The flags tell a server how to treat the record without knowing the
//! application: [`DuplicateHandling`], [`ReadAccess`] and whether the content
//! is printable.

use std::fmt;
use std::str::FromStr;

/// Why text or bytes are not a [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KindError {
    /// The text is empty (or only `0x`); give hex digits or a registry name.
    #[error("empty kind")]
    Empty,
    /// More than 16 hex digits were given; a kind is 8 bytes.
    #[error("a kind is at most 16 hex digits, found {digits}")]
    TooLong {
        /// The number of digits given.
        digits: usize,
    },
    /// A character that is not a hex digit, at byte offset `position`, after a
    /// `0x` prefix; remove it.
    #[error("not a hex digit at byte {position}")]
    InvalidHexDigit {
        /// Byte offset of the offending character.
        position: usize,
    },
    /// The text is neither hex nor a name in [`Kind::NAMED`]; see that table
    /// for the names known.
    #[error("unknown kind name")]
    UnknownName,
    /// A byte string of the wrong length was given where 8 bytes belong.
    #[error("a kind is 8 bytes, found {found}")]
    WrongLength {
        /// The length given.
        found: usize,
    },
}

/// What a server does with several records at one address (flag bits 0-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DuplicateHandling {
    /// `00`: records should have unique addresses; if several share one, all
    /// are kept, as for [`Versioned`](Self::Versioned).
    Unique,
    /// `01`: served to current subscribers only, never stored.
    Ephemeral,
    /// `10`: only the record with the latest timestamp at an address is served.
    Replaceable,
    /// `11`: all records at an address are kept, as a version history.
    Versioned,
}

impl DuplicateHandling {
    /// The two-bit value.
    pub const fn bits(self) -> u16 {
        match self {
            DuplicateHandling::Unique => 0,
            DuplicateHandling::Ephemeral => 1,
            DuplicateHandling::Replaceable => 2,
            DuplicateHandling::Versioned => 3,
        }
    }

    /// The variant of the low two bits of `bits`.
    pub const fn from_bits(bits: u16) -> DuplicateHandling {
        match bits & 0b11 {
            0 => DuplicateHandling::Unique,
            1 => DuplicateHandling::Ephemeral,
            2 => DuplicateHandling::Replaceable,
            _ => DuplicateHandling::Versioned,
        }
    }

    /// `Unique`.
    pub const fn is_unique(self) -> bool {
        matches!(self, DuplicateHandling::Unique)
    }

    /// `Ephemeral`: the record is relayed but not stored.
    pub const fn is_ephemeral(self) -> bool {
        matches!(self, DuplicateHandling::Ephemeral)
    }

    /// `Replaceable`: a newer record at the address replaces older ones.
    pub const fn is_replaceable(self) -> bool {
        matches!(self, DuplicateHandling::Replaceable)
    }

    /// `Versioned`.
    pub const fn is_versioned(self) -> bool {
        matches!(self, DuplicateHandling::Versioned)
    }
}

impl fmt::Display for DuplicateHandling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DuplicateHandling::Unique => "unique",
            DuplicateHandling::Ephemeral => "ephemeral",
            DuplicateHandling::Replaceable => "replaceable",
            DuplicateHandling::Versioned => "versioned",
        })
    }
}

/// Who a server may serve the record to (flag bits 2-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadAccess {
    /// `00`: only the author.
    AuthorOnly,
    /// `01`: the author and the keys tagged in the record (the Notify Public
    /// Key tags, D-8).
    AuthorAndTagged,
    /// `10`: reserved by the spec; no meaning is defined yet.
    Reserved,
    /// `11`: anybody.
    Everybody,
}

impl ReadAccess {
    /// The two-bit value.
    pub const fn bits(self) -> u16 {
        match self {
            ReadAccess::AuthorOnly => 0,
            ReadAccess::AuthorAndTagged => 1,
            ReadAccess::Reserved => 2,
            ReadAccess::Everybody => 3,
        }
    }

    /// The variant of the low two bits of `bits`.
    pub const fn from_bits(bits: u16) -> ReadAccess {
        match bits & 0b11 {
            0 => ReadAccess::AuthorOnly,
            1 => ReadAccess::AuthorAndTagged,
            2 => ReadAccess::Reserved,
            _ => ReadAccess::Everybody,
        }
    }

    /// `AuthorOnly`.
    pub const fn is_author_only(self) -> bool {
        matches!(self, ReadAccess::AuthorOnly)
    }

    /// `AuthorAndTagged`.
    pub const fn is_author_and_tagged(self) -> bool {
        matches!(self, ReadAccess::AuthorAndTagged)
    }

    /// `Reserved`.
    pub const fn is_reserved(self) -> bool {
        matches!(self, ReadAccess::Reserved)
    }

    /// `Everybody`: the record is public.
    pub const fn is_everybody(self) -> bool {
        matches!(self, ReadAccess::Everybody)
    }
}

impl fmt::Display for ReadAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadAccess::AuthorOnly => "author only",
            ReadAccess::AuthorAndTagged => "author and tagged",
            ReadAccess::Reserved => "reserved",
            ReadAccess::Everybody => "everybody",
        })
    }
}

/// The low 16 bits of a [`Kind`]: bits 0-1 [`DuplicateHandling`], bits 2-3
/// [`ReadAccess`], bit 4 printable; bits 5-15 are reserved and must be 0.
///
/// Any 16-bit value can be held, so a kind read off the wire keeps its bits;
/// [`has_reserved_bits`](Self::has_reserved_bits) lets record validation
/// decide about reserved ones.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KindFlags(u16);

impl KindFlags {
    /// Bit 4: the content is human-readable UTF-8.
    pub const PRINTABLE: u16 = 1 << 4;

    /// Bits 5-15, reserved (must be 0).
    pub const RESERVED_MASK: u16 = 0xffe0;

    /// Wraps 16 bits as they are, reserved bits included.
    pub const fn from_bits(bits: u16) -> KindFlags {
        KindFlags(bits)
    }

    /// The 16 bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Flags from their three parts, with no reserved bit set.
    pub const fn from_parts(
        duplicate_handling: DuplicateHandling,
        read_access: ReadAccess,
        printable: bool,
    ) -> KindFlags {
        let printable = if printable { KindFlags::PRINTABLE } else { 0 };
        KindFlags(duplicate_handling.bits() | (read_access.bits() << 2) | printable)
    }

    /// Bits 0-1.
    pub const fn duplicate_handling(self) -> DuplicateHandling {
        DuplicateHandling::from_bits(self.0)
    }

    /// Bits 2-3.
    pub const fn read_access(self) -> ReadAccess {
        ReadAccess::from_bits(self.0 >> 2)
    }

    /// Bit 4: whether the content is human-readable UTF-8.
    pub const fn is_printable(self) -> bool {
        self.0 & KindFlags::PRINTABLE != 0
    }

    /// Whether any of bits 5-15 is set, which `kind.md` forbids.
    pub const fn has_reserved_bits(self) -> bool {
        self.0 & KindFlags::RESERVED_MASK != 0
    }
}

impl Default for KindFlags {
    /// Unique, readable by everybody, printable (`0x001c`): the flags of a
    /// typical social-media post, and the reference library's default.
    fn default() -> KindFlags {
        KindFlags::from_parts(DuplicateHandling::Unique, ReadAccess::Everybody, true)
    }
}

impl fmt::Debug for KindFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KindFlags({:#06x}: {}, {}, {}",
            self.0,
            self.duplicate_handling(),
            self.read_access(),
            if self.is_printable() {
                "printable"
            } else {
                "not printable"
            }
        )?;
        if self.has_reserved_bits() {
            f.write_str(", reserved bits set")?;
        }
        f.write_str(")")
    }
}

/// The kind of a record: application id (4 bytes), application-specific kind
/// (2 bytes) and [`KindFlags`] (2 bytes), big-endian on the wire.
///
/// `Display` is `0x` and 16 hex digits; `FromStr` takes hex (with or without
/// `0x`) or a name from [`Kind::NAMED`].
///
/// ```
/// use mosaic_core::{DuplicateHandling, Kind, ReadAccess};
///
/// # fn main() -> Result<(), mosaic_core::KindError> {
/// let kind: Kind = "microblog".parse()?;
/// assert_eq!(kind, Kind::MICROBLOG_ROOT);
/// assert_eq!(kind.to_string(), "0x000000010001001c");
/// assert_eq!(kind.duplicate_handling(), DuplicateHandling::Unique);
/// assert_eq!(kind.read_access(), ReadAccess::Everybody);
/// assert!(kind.is_printable());
/// assert_eq!("0x000000000001000e".parse::<Kind>()?, Kind::KEY_SCHEDULE);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(u64);

impl Kind {
    /// Length of an encoded kind in bytes.
    pub const LEN: usize = 8;

    /// Application id of Mosaic Core.
    pub const APP_CORE: u32 = 0;

    /// Application id of Mosaic Social Media.
    pub const APP_SOCIAL_MEDIA: u32 = 1;

    /// Core kind 1, the key schedule (`keyschedule.md`): replaceable, readable
    /// by everybody, not printable (D-16).
    pub const KEY_SCHEDULE: Kind = Kind(0x0000_0000_0001_000e);

    /// Core kind 2, the profile (`profile.md`): replaceable, readable by
    /// everybody, not printable.
    pub const PROFILE: Kind = Kind(0x0000_0000_0002_000e);

    /// Social media kind 1, a microblog root post (`microblog.md`): unique,
    /// readable by everybody, printable.
    pub const MICROBLOG_ROOT: Kind = Kind(0x0000_0001_0001_001c);

    /// Social media kind 2, a reply or comment (`reply_comment.md`): unique,
    /// readable by everybody, printable.
    pub const REPLY_COMMENT: Kind = Kind(0x0000_0001_0002_001c);

    /// Social media kind 3, a blog post (`blog.md`): unique, readable by
    /// everybody, printable.
    pub const BLOG_POST: Kind = Kind(0x0000_0001_0003_001c);

    /// Social media kind 4, a chat message (`chat.md`): unique, readable by
    /// everybody, printable.
    pub const CHAT_MESSAGE: Kind = Kind(0x0000_0001_0004_001c);

    /// The registry of `kinds.md`, with the short names used on the command
    /// line.
    pub const NAMED: &'static [(&'static str, Kind)] = &[
        ("key-schedule", Kind::KEY_SCHEDULE),
        ("profile", Kind::PROFILE),
        ("microblog", Kind::MICROBLOG_ROOT),
        ("reply", Kind::REPLY_COMMENT),
        ("blog", Kind::BLOG_POST),
        ("chat", Kind::CHAT_MESSAGE),
    ];

    /// Wraps a `u64`. Every value is a kind.
    pub const fn from_u64(value: u64) -> Kind {
        Kind(value)
    }

    /// The kind as a `u64`.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Decodes the 8-byte big-endian wire form.
    pub const fn from_be_bytes(bytes: [u8; 8]) -> Kind {
        Kind(u64::from_be_bytes(bytes))
    }

    /// The 8-byte big-endian wire form.
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// A kind from its three parts.
    pub const fn from_parts(application_id: u32, application_kind: u16, flags: KindFlags) -> Kind {
        Kind(((application_id as u64) << 32) | ((application_kind as u64) << 16) | flags.0 as u64)
    }

    /// The application id (high 4 bytes).
    pub const fn application_id(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The application-specific kind (bytes 4-5).
    pub const fn application_kind(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The flags (low 2 bytes).
    pub const fn flags(self) -> KindFlags {
        KindFlags(self.0 as u16)
    }

    /// How a server treats several records at one address.
    pub const fn duplicate_handling(self) -> DuplicateHandling {
        self.flags().duplicate_handling()
    }

    /// Who a server may serve the record to.
    pub const fn read_access(self) -> ReadAccess {
        self.flags().read_access()
    }

    /// Whether the content is human-readable UTF-8.
    pub const fn is_printable(self) -> bool {
        self.flags().is_printable()
    }

    /// Whether any reserved flag bit (5-15) is set, which `kind.md` forbids.
    pub const fn has_reserved_flags(self) -> bool {
        self.flags().has_reserved_bits()
    }

    /// The kind registered under `name` in [`Kind::NAMED`] (ASCII case does
    /// not matter).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::NAMED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, kind)| kind)
    }

    /// The registry name of this kind, if it has one.
    pub fn name(self) -> Option<&'static str> {
        Kind::NAMED
            .iter()
            .find(|&&(_, kind)| kind == self)
            .map(|&(n, _)| n)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Kind({self} {name})"),
            None => write!(f, "Kind({self})"),
        }
    }
}

impl FromStr for Kind {
    type Err = KindError;

    /// Parses a registry name (`microblog`), `0x` and 1 to 16 hex digits, or
    /// 1 to 16 hex digits alone. A registry name wins over bare hex.
    fn from_str(s: &str) -> Result<Kind, KindError> {
        if let Some(kind) = Kind::from_name(s) {
            return Ok(kind);
        }
        let (digits, start, prefixed) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
        {
            Some(rest) => (rest, 2, true),
            None => (s, 0, false),
        };
        if digits.is_empty() {
            return Err(KindError::Empty);
        }
        if let Some(offset) = digits.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(if prefixed {
                KindError::InvalidHexDigit {
                    position: start + offset,
                }
            } else {
                KindError::UnknownName
            });
        }
        if digits.len() > 16 {
            return Err(KindError::TooLong {
                digits: digits.len(),
            });
        }
        u64::from_str_radix(digits, 16)
            .map(Kind)
            .map_err(|_| KindError::InvalidHexDigit { position: start })
    }
}

impl TryFrom<&[u8]> for Kind {
    type Error = KindError;

    /// Decodes exactly 8 big-endian bytes.
    fn try_from(bytes: &[u8]) -> Result<Kind, KindError> {
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| KindError::WrongLength { found: bytes.len() })?;
        Ok(Kind::from_be_bytes(array))
    }
}

impl From<u64> for Kind {
    fn from(value: u64) -> Kind {
        Kind(value)
    }
}

impl From<Kind> for u64 {
    fn from(kind: Kind) -> u64 {
        kind.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DuplicateHandling as D;
    use ReadAccess as R;

    #[test]
    fn registry_values() {
        let expect = [
            (Kind::KEY_SCHEDULE, 0, 1, D::Replaceable, false),
            (Kind::PROFILE, 0, 2, D::Replaceable, false),
            (Kind::MICROBLOG_ROOT, 1, 1, D::Unique, true),
            (Kind::REPLY_COMMENT, 1, 2, D::Unique, true),
            (Kind::BLOG_POST, 1, 3, D::Unique, true),
            (Kind::CHAT_MESSAGE, 1, 4, D::Unique, true),
        ];
        for (kind, app, app_kind, dup, printable) in expect {
            assert_eq!(kind.application_id(), app);
            assert_eq!(kind.application_kind(), app_kind);
            assert_eq!(kind.duplicate_handling(), dup);
            assert_eq!(kind.read_access(), R::Everybody);
            assert_eq!(kind.is_printable(), printable);
            assert!(!kind.has_reserved_flags());
            assert_eq!(
                Kind::from_parts(
                    app,
                    app_kind,
                    KindFlags::from_parts(dup, R::Everybody, printable)
                ),
                kind
            );
        }
        assert_eq!(Kind::KEY_SCHEDULE.as_u64(), 0x0000_0000_0001_000e);
        assert_eq!(Kind::MICROBLOG_ROOT.as_u64(), 0x0000_0001_0001_001c);
        assert_eq!(Kind::NAMED.len(), expect.len());
    }

    #[test]
    fn names() {
        for &(name, kind) in Kind::NAMED {
            assert_eq!(Kind::from_name(name), Some(kind));
            assert_eq!(kind.name(), Some(name));
            assert_eq!(name.parse::<Kind>(), Ok(kind));
        }
        assert_eq!(Kind::from_name("MicroBlog"), Some(Kind::MICROBLOG_ROOT));
        assert_eq!(Kind::from_name("micro"), None);
        assert_eq!(Kind::from_u64(0x0000_0063_0001_001c).name(), None);
        assert_eq!(
            format!("{:?}", Kind::BLOG_POST),
            "Kind(0x000000010003001c blog)"
        );
        assert_eq!(
            format!("{:?}", Kind::from_u64(5)),
            "Kind(0x0000000000000005)"
        );
    }

    #[test]
    fn bytes() {
        let kind = Kind::from_u64(0x1234_5678_9abc_001e);
        assert_eq!(
            kind.to_be_bytes(),
            [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x00, 0x1e]
        );
        assert_eq!(Kind::from_be_bytes(kind.to_be_bytes()), kind);
        assert_eq!(Kind::try_from(&kind.to_be_bytes()[..]), Ok(kind));
        assert_eq!(
            Kind::try_from(&[0u8; 7][..]),
            Err(KindError::WrongLength { found: 7 })
        );
        assert_eq!(kind.application_id(), 0x1234_5678);
        assert_eq!(kind.application_kind(), 0x9abc);
        assert_eq!(kind.flags().bits(), 0x001e);
        assert_eq!(u64::from(kind), 0x1234_5678_9abc_001e);
        assert_eq!(Kind::from(7u64), Kind::from_u64(7));
    }

    #[test]
    fn flag_bits() {
        let all = [D::Unique, D::Ephemeral, D::Replaceable, D::Versioned];
        let reads = [R::AuthorOnly, R::AuthorAndTagged, R::Reserved, R::Everybody];
        for (i, d) in all.into_iter().enumerate() {
            assert_eq!(usize::from(d.bits()), i);
            assert_eq!(D::from_bits(d.bits()), d);
            for (j, r) in reads.into_iter().enumerate() {
                assert_eq!(usize::from(r.bits()), j);
                for printable in [false, true] {
                    let flags = KindFlags::from_parts(d, r, printable);
                    assert_eq!(
                        usize::from(flags.bits()),
                        i | (j << 2) | (usize::from(printable) << 4)
                    );
                    assert_eq!(flags.duplicate_handling(), d);
                    assert_eq!(flags.read_access(), r);
                    assert_eq!(flags.is_printable(), printable);
                    assert!(!flags.has_reserved_bits());
                }
            }
        }
        assert!(D::Ephemeral.is_ephemeral() && !D::Unique.is_ephemeral());
        assert!(
            D::Replaceable.is_replaceable() && D::Versioned.is_versioned() && D::Unique.is_unique()
        );
        assert!(R::Everybody.is_everybody() && !R::AuthorOnly.is_everybody());
        assert!(R::AuthorOnly.is_author_only() && R::AuthorAndTagged.is_author_and_tagged());
        assert!(R::Reserved.is_reserved());
    }

    #[test]
    fn reserved_bits() {
        for bit in 5..16 {
            let flags = KindFlags::from_bits(1 << bit);
            assert!(flags.has_reserved_bits(), "bit {bit}");
            assert!(Kind::from_parts(99, 1, flags).has_reserved_flags());
        }
        for bit in 0..5 {
            assert!(
                !KindFlags::from_bits(1 << bit).has_reserved_bits(),
                "bit {bit}"
            );
        }
        let kind = Kind::from_u64(0x0000_0063_0006_800e);
        assert!(kind.has_reserved_flags());
        assert_eq!(kind.duplicate_handling(), D::Replaceable);
        assert_eq!(kind.read_access(), R::Everybody);
        assert!(!kind.is_printable());
    }

    #[test]
    fn default_flags() {
        assert_eq!(KindFlags::default().bits(), 0x1c);
        assert_eq!(
            format!("{:?}", KindFlags::default()),
            "KindFlags(0x001c: unique, everybody, printable)"
        );
        assert_eq!(
            format!("{:?}", KindFlags::from_bits(0x8002)),
            "KindFlags(0x8002: replaceable, author only, not printable, reserved bits set)"
        );
    }

    #[test]
    fn display_and_parse() {
        for value in [
            0,
            1,
            0x1c,
            0x0000_0001_0004_001c,
            u64::MAX,
            0xdead_beef_ffff_0000,
        ] {
            let kind = Kind::from_u64(value);
            let text = kind.to_string();
            assert_eq!(text.len(), 18);
            assert!(text.starts_with("0x"));
            assert_eq!(text.parse::<Kind>(), Ok(kind));
            assert_eq!(text[2..].parse::<Kind>(), Ok(kind));
        }
        assert_eq!(Kind::KEY_SCHEDULE.to_string(), "0x000000000001000e");
        assert_eq!("1c".parse::<Kind>(), Ok(Kind::from_u64(0x1c)));
        assert_eq!("0X1C".parse::<Kind>(), Ok(Kind::from_u64(0x1c)));
        assert_eq!("".parse::<Kind>(), Err(KindError::Empty));
        assert_eq!("0x".parse::<Kind>(), Err(KindError::Empty));
        assert_eq!(
            "0x1g".parse::<Kind>(),
            Err(KindError::InvalidHexDigit { position: 3 })
        );
        assert_eq!(
            "0x+1".parse::<Kind>(),
            Err(KindError::InvalidHexDigit { position: 2 })
        );
        assert_eq!("nonsense".parse::<Kind>(), Err(KindError::UnknownName));
        assert_eq!(" 1c".parse::<Kind>(), Err(KindError::UnknownName));
        assert_eq!(
            "0x00000000000000001".parse::<Kind>(),
            Err(KindError::TooLong { digits: 17 })
        );
    }
}
