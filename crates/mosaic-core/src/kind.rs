//! TEMPORARY STUB (replaced by the real module before commit).
#![allow(missing_docs, dead_code)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Kind(u64);
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateHandling {
    Unique,
    Ephemeral,
    Replaceable,
    Versioned,
}
impl Kind {
    pub const MICROBLOG_ROOT: Kind = Kind(0x0000_0001_0001_001c);
    pub const KEY_SCHEDULE: Kind = Kind(0x0000_0000_0001_000e);
    pub const PROFILE: Kind = Kind(0x0000_0000_0002_000e);
    pub const fn from_u64(v: u64) -> Kind {
        Kind(v)
    }
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
    pub fn is_printable(self) -> bool {
        self.0 & 0x10 != 0
    }
    pub fn has_reserved_flags(self) -> bool {
        self.0 & 0xffe0 != 0
    }
}
impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:016x}", self.0)
    }
}
