//! TEMPORARY STUB (replaced by the real module before commit).
#![allow(missing_docs, dead_code)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(u64);
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("top bit")]
    TopBitSet,
}
impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);
    pub const MAX: Timestamp = Timestamp(i64::MAX as u64);
    pub fn from_nanos(n: u64) -> Result<Timestamp, TimestampError> {
        if n >> 63 != 0 {
            Err(TimestampError::TopBitSet)
        } else {
            Ok(Timestamp(n))
        }
    }
    pub fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
    pub fn from_be_bytes(b: [u8; 8]) -> Result<Timestamp, TimestampError> {
        Timestamp::from_nanos(u64::from_be_bytes(b))
    }
}
impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
