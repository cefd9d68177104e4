//! Result codes (`messages.md`, "Result Codes"), shared by every message that
//! carries one.

use std::fmt;

/// A one-byte result code.
///
/// Any byte is representable: a peer may send a code this version does not
/// know, and the byte is kept (see [`is_known`](Self::is_known)). The named
/// constants are every code spec 0.8.0 defines.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResultCode(u8);

/// The groups `messages.md` sorts the known result codes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCategory {
    /// The request succeeded (codes 1 to 4).
    Success,
    /// The request was understood but could not be met (code 16).
    Failure,
    /// The client did something wrong (codes 32 to 39).
    UserError,
    /// The client is refused service (codes 48 to 51).
    UserRejection,
    /// The server failed (codes 64 to 67).
    ServerError,
}

impl ResultCode {
    /// 0: not defined; peers should not send it.
    pub const UNDEFINED: ResultCode = ResultCode(0);
    /// 1: generic success.
    pub const SUCCESS: ResultCode = ResultCode(1);
    /// 2: a submission was accepted.
    pub const ACCEPTED: ResultCode = ResultCode(2);
    /// 3: the submitted record duplicates one already held.
    pub const DUPLICATE: ResultCode = ResultCode(3);
    /// 4: an ephemeral record had no consumers.
    pub const NO_CONSUMERS: ResultCode = ResultCode(4);
    /// 16: the record or BLOB was not found.
    pub const NOT_FOUND: ResultCode = ResultCode(16);
    /// 32: the request requires authentication.
    pub const REQUIRES_AUTHENTICATION: ResultCode = ResultCode(32);
    /// 33: the key is not authorized for the action.
    pub const UNAUTHORIZED: ResultCode = ResultCode(33);
    /// 36: the request was invalid.
    pub const INVALID: ResultCode = ResultCode(36);
    /// 37: a query was too open, potentially matching too many records.
    pub const TOO_OPEN: ResultCode = ResultCode(37);
    /// 38: the submission was too large.
    pub const TOO_LARGE: ResultCode = ResultCode(38);
    /// 39: requests come too fast from this client, or of this type.
    pub const TOO_FAST: ResultCode = ResultCode(39);
    /// 48: the IP address is temporarily banned.
    pub const IP_TEMP_BANNED: ResultCode = ResultCode(48);
    /// 49: the IP address is permanently banned.
    pub const IP_PERM_BANNED: ResultCode = ResultCode(49);
    /// 50: the public key is temporarily banned.
    pub const PUBKEY_TEMP_BANNED: ResultCode = ResultCode(50);
    /// 51: the public key is permanently banned.
    pub const PUBKEY_PERM_BANNED: ResultCode = ResultCode(51);
    /// 64: the server is shutting down.
    pub const SHUTTING_DOWN: ResultCode = ResultCode(64);
    /// 65: a temporary server error.
    pub const TEMPORARY_ERROR: ResultCode = ResultCode(65);
    /// 66: a persistent server error.
    pub const PERSISTENT_ERROR: ResultCode = ResultCode(66);
    /// 67: a general server error.
    pub const GENERAL_ERROR: ResultCode = ResultCode(67);

    /// Every code spec 0.8.0 names, [`UNDEFINED`](Self::UNDEFINED) included.
    pub const KNOWN: [ResultCode; 20] = [
        ResultCode::UNDEFINED,
        ResultCode::SUCCESS,
        ResultCode::ACCEPTED,
        ResultCode::DUPLICATE,
        ResultCode::NO_CONSUMERS,
        ResultCode::NOT_FOUND,
        ResultCode::REQUIRES_AUTHENTICATION,
        ResultCode::UNAUTHORIZED,
        ResultCode::INVALID,
        ResultCode::TOO_OPEN,
        ResultCode::TOO_LARGE,
        ResultCode::TOO_FAST,
        ResultCode::IP_TEMP_BANNED,
        ResultCode::IP_PERM_BANNED,
        ResultCode::PUBKEY_TEMP_BANNED,
        ResultCode::PUBKEY_PERM_BANNED,
        ResultCode::SHUTTING_DOWN,
        ResultCode::TEMPORARY_ERROR,
        ResultCode::PERSISTENT_ERROR,
        ResultCode::GENERAL_ERROR,
    ];

    /// Wraps a byte, known or not.
    pub const fn from_u8(byte: u8) -> ResultCode {
        ResultCode(byte)
    }

    /// The byte.
    pub const fn as_u8(self) -> u8 {
        self.0
    }

    /// The spec's name of a known code (`"SUCCESS"`, `"SHUTTING_DOWN"`, ...),
    /// with the spec's spaces written as underscores; `None` for a code this
    /// version does not know.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "UNDEFINED",
            1 => "SUCCESS",
            2 => "ACCEPTED",
            3 => "DUPLICATE",
            4 => "NO_CONSUMERS",
            16 => "NOT_FOUND",
            32 => "REQUIRES_AUTHENTICATION",
            33 => "UNAUTHORIZED",
            36 => "INVALID",
            37 => "TOO_OPEN",
            38 => "TOO_LARGE",
            39 => "TOO_FAST",
            48 => "IP_TEMP_BANNED",
            49 => "IP_PERM_BANNED",
            50 => "PUBKEY_TEMP_BANNED",
            51 => "PUBKEY_PERM_BANNED",
            64 => "SHUTTING_DOWN",
            65 => "TEMPORARY_ERROR",
            66 => "PERSISTENT_ERROR",
            67 => "GENERAL_ERROR",
            _ => return None,
        })
    }

    /// Whether spec 0.8.0 names this code.
    pub const fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// The group of a known code; `None` for [`UNDEFINED`](Self::UNDEFINED)
    /// and for codes this version does not know.
    pub const fn category(self) -> Option<ResultCategory> {
        Some(match self.0 {
            1..=4 => ResultCategory::Success,
            16 => ResultCategory::Failure,
            32 | 33 | 36..=39 => ResultCategory::UserError,
            48..=51 => ResultCategory::UserRejection,
            64..=67 => ResultCategory::ServerError,
            _ => return None,
        })
    }

    /// Whether this is one of the success codes (1 to 4).
    pub const fn is_success(self) -> bool {
        matches!(self.category(), Some(ResultCategory::Success))
    }
}

impl From<u8> for ResultCode {
    fn from(byte: u8) -> ResultCode {
        ResultCode(byte)
    }
}

impl From<ResultCode> for u8 {
    fn from(code: ResultCode) -> u8 {
        code.0
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "unknown result code ({})", self.0),
        }
    }
}

impl fmt::Debug for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "ResultCode::{name}"),
            None => write!(f, "ResultCode({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_names_and_groups() {
        for code in ResultCode::KNOWN {
            assert!(code.is_known());
            assert_eq!(ResultCode::from_u8(code.as_u8()), code);
            assert_eq!(code.category().is_none(), code == ResultCode::UNDEFINED);
        }
        assert_eq!(ResultCode::SHUTTING_DOWN.name(), Some("SHUTTING_DOWN"));
        assert_eq!(
            ResultCode::SHUTTING_DOWN.category(),
            Some(ResultCategory::ServerError)
        );
        assert_eq!(
            ResultCode::NOT_FOUND.category(),
            Some(ResultCategory::Failure)
        );
        assert_eq!(
            ResultCode::PUBKEY_PERM_BANNED.category(),
            Some(ResultCategory::UserRejection)
        );
        assert_eq!(
            ResultCode::TOO_OPEN.category(),
            Some(ResultCategory::UserError)
        );
        let successes: Vec<u8> = (0..=255u8)
            .filter(|&b| ResultCode::from_u8(b).is_success())
            .collect();
        assert_eq!(successes, [1, 2, 3, 4]);
    }

    #[test]
    fn unknown_codes_keep_their_byte() {
        let code = ResultCode::from_u8(5);
        assert!(!code.is_known());
        assert!(!code.is_success());
        assert_eq!(code.category(), None);
        assert_eq!(u8::from(code), 5);
        assert_eq!(code.to_string(), "unknown result code (5)");
        assert_eq!(format!("{code:?}"), "ResultCode(5)");
        assert_eq!(ResultCode::SUCCESS.to_string(), "SUCCESS (1)");
        assert_eq!(
            (0..=255u8)
                .filter(|&b| ResultCode::from_u8(b).is_known())
                .count(),
            20
        );
    }
}
