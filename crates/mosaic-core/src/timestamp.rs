//! Mosaic timestamps: nanoseconds since 1970 *including leap seconds*
//! (`timestamps.md`, D-11, D-19).
//!
//! A [`Timestamp`] counts the nanoseconds that actually elapsed since
//! 1970-01-01T00:00:00Z: unix time plus the leap seconds elapsed. It travels as
//! a big-endian `u64` and must be below 2^63 (D-19). Leap seconds elapsed at a
//! unix time is IANA's TAI-UTC minus 9 (D-11), read from the table embedded in
//! in `timestamp/leap.rs`; before 1972 a timestamp equals unix time.
//!
//! This module never reads the clock: callers pass the time in, as unix
//! seconds or as a [`SystemTime`].

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod leap;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// Why a value, a time or a text is not a usable [`Timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The value has its top bit set (2^63 ns or more); no id can begin with it
    /// (D-19). Refuse the record or filter that carries it.
    #[error("timestamp {nanos} has its top bit set")]
    TopBitSet {
        /// The value given, in nanoseconds.
        nanos: u64,
    },
    /// A sub-second part of one second or more was given; normalise the time
    /// so that it is below 1 000 000 000 ns.
    #[error("sub-second part {nanos} ns is not below one second")]
    NanosOutOfRange {
        /// The sub-second part given, in nanoseconds.
        nanos: u32,
    },
    /// The time lies after [`Timestamp::MAX`] (2262-04-11T23:46:48Z); it
    /// cannot be expressed, so refuse it.
    #[error("time is after the largest timestamp")]
    Overflow,
    /// The time lies before 1970-01-01T00:00:00Z, which no timestamp can
    /// express; check the clock or the input.
    #[error("time is before the unix epoch")]
    BeforeEpoch,
    /// A byte string of the wrong length was given where 8 bytes belong.
    #[error("a timestamp is 8 bytes, found {found}")]
    WrongLength {
        /// The length given.
        found: usize,
    },
    /// The text is neither integer nanoseconds nor an RFC 3339 date-time;
    /// `position` is the byte offset where it stopped making sense.
    #[error("malformed timestamp text at byte {position}")]
    Malformed {
        /// Byte offset of the first unexpected character (or the end).
        position: usize,
    },
    /// A field of an RFC 3339 text is out of its range (month 13, 31 April,
    /// hour 24, ...); correct the text.
    #[error("{field} {value} is out of range")]
    FieldOutOfRange {
        /// Which field.
        field: DateTimeField,
        /// The value given.
        value: u32,
    },
    /// The text names second 60 of a minute that had no inserted leap second
    /// (according to the embedded table); use second 59 or the next minute.
    #[error("no leap second was inserted just before unix time {unix_seconds}")]
    NotALeapSecond {
        /// The unix time of the minute that would follow the leap second.
        unix_seconds: u64,
    },
}

/// A field of an RFC 3339 date-time, as named by
/// [`TimestampError::FieldOutOfRange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DateTimeField {
    /// The month (1 to 12).
    Month,
    /// The day of the month (1 to 28, 29, 30 or 31).
    Day,
    /// The hour (0 to 23).
    Hour,
    /// The minute (0 to 59).
    Minute,
    /// The second (0 to 60).
    Second,
    /// The hours of a UTC offset (0 to 23).
    OffsetHour,
    /// The minutes of a UTC offset (0 to 59).
    OffsetMinute,
}

impl fmt::Display for DateTimeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DateTimeField::Month => "month",
            DateTimeField::Day => "day of month",
            DateTimeField::Hour => "hour",
            DateTimeField::Minute => "minute",
            DateTimeField::Second => "second",
            DateTimeField::OffsetHour => "offset hour",
            DateTimeField::OffsetMinute => "offset minute",
        })
    }
}

/// A Mosaic timestamp: nanoseconds elapsed since 1970-01-01T00:00:00Z
/// including leap seconds, below 2^63.
///
/// Ordering is chronological. `Display` gives RFC 3339 UTC (an inserted leap
/// second shows as `23:59:60`); `FromStr` takes RFC 3339 or integer
/// nanoseconds.
///
/// ```
/// use mosaic_core::Timestamp;
///
/// # fn main() -> Result<(), mosaic_core::TimestampError> {
/// // The example of `timestamps.md`: 28 leap seconds had elapsed.
/// let t = Timestamp::from_unix(1_732_829_887, 0)?;
/// assert_eq!(t.as_nanos(), 1_732_829_915_000_000_000);
/// assert_eq!(t.to_be_bytes(), 0x180c_3fa0_73be_ce00_u64.to_be_bytes());
/// assert_eq!(t.to_string(), "2024-11-28T21:38:07Z");
/// assert_eq!("2024-11-28T21:38:07Z".parse::<Timestamp>()?, t);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// Length of an encoded timestamp in bytes.
    pub const LEN: usize = 8;

    /// The epoch, 1970-01-01T00:00:00Z.
    pub const ZERO: Timestamp = Timestamp(0);

    /// The largest timestamp, 2^63 - 1 ns (2262-04-11T23:46:48.854775807Z).
    pub const MAX: Timestamp = Timestamp(i64::MAX as u64);

    /// The embedded IANA table: the unix times (seconds, ascending) from which
    /// the leap-second count goes up by one. Entry `i` starts a count of
    /// `i + 1` (D-11).
    pub const LEAP_SECOND_UNIXTIMES: &'static [u64] = &leap::LEAP_SECOND_UNIXTIMES;

    /// The unix time at which the embedded table expires: 2025-12-28T00:00:00Z.
    /// Later times use the last known count (D-11).
    pub const LEAP_TABLE_EXPIRES_UNIX: u64 = leap::LEAP_TABLE_EXPIRES_UNIX;

    /// Wraps a count of nanoseconds, refusing values with the top bit set.
    pub const fn from_nanos(nanos: u64) -> Result<Timestamp, TimestampError> {
        if nanos > Timestamp::MAX.0 {
            Err(TimestampError::TopBitSet { nanos })
        } else {
            Ok(Timestamp(nanos))
        }
    }

    /// The count of nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Decodes the 8-byte big-endian wire form.
    pub const fn from_be_bytes(bytes: [u8; 8]) -> Result<Timestamp, TimestampError> {
        Timestamp::from_nanos(u64::from_be_bytes(bytes))
    }

    /// The 8-byte big-endian wire form.
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// The number of leap seconds elapsed at unix time `seconds`: the number of
    /// table entries `L` with `L <= seconds` (D-11). 0 before 1972, 28 from
    /// 2017 on, and 28 after the table expires.
    pub fn leap_seconds_at_unix(seconds: u64) -> u64 {
        // The table has 28 entries, so the count always fits.
        leap::LEAP_SECOND_UNIXTIMES.partition_point(|&l| l <= seconds) as u64
    }

    /// Whether unix time `seconds` lies after the embedded table's expiry, so
    /// that a leap second IANA announced later could be missing. Conversions
    /// still work then (with the last known count); a server may warn.
    pub const fn leap_table_expired_at(seconds: u64) -> bool {
        seconds > leap::LEAP_TABLE_EXPIRES_UNIX
    }

    /// Converts a unix time (seconds and nanoseconds since 1970, leap seconds
    /// not counted) to a timestamp by adding the leap seconds elapsed.
    ///
    /// Fails if `nanos` is one second or more, or if the result passes
    /// [`Timestamp::MAX`]. [`to_unix`](Self::to_unix) gives back exactly
    /// `(seconds, nanos)`.
    pub fn from_unix(seconds: u64, nanos: u32) -> Result<Timestamp, TimestampError> {
        if u64::from(nanos) >= NANOS_PER_SEC {
            return Err(TimestampError::NanosOutOfRange { nanos });
        }
        let elapsed = seconds
            .checked_add(Timestamp::leap_seconds_at_unix(seconds))
            .ok_or(TimestampError::Overflow)?;
        Timestamp::from_elapsed(elapsed, nanos)
    }

    /// Converts to unix time: `(seconds, nanoseconds)` since 1970 with leap
    /// seconds not counted.
    ///
    /// An instant inside an inserted leap second (`23:59:60` UTC) maps to the
    /// repeated unix second, the one that also stands for the following
    /// `00:00:00` (D-11), keeping its sub-second part. Every other instant maps
    /// back to the unix time it came from.
    pub fn to_unix(self) -> (u64, u32) {
        let (seconds, nanos, _) = self.unix_parts();
        (seconds, nanos)
    }

    /// Whether this instant lies inside an inserted leap second (`23:59:60`
    /// UTC), which unix time cannot tell apart from the next second.
    pub fn is_leap_second(self) -> bool {
        self.unix_parts().2
    }

    /// Converts a [`SystemTime`] (which, like unix time, does not count leap
    /// seconds). Fails before the epoch or after [`Timestamp::MAX`].
    pub fn from_system_time(time: SystemTime) -> Result<Timestamp, TimestampError> {
        let since = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| TimestampError::BeforeEpoch)?;
        Timestamp::from_unix(since.as_secs(), since.subsec_nanos())
    }

    /// Converts to a [`SystemTime`] through [`to_unix`](Self::to_unix).
    pub fn to_system_time(self) -> SystemTime {
        let (seconds, nanos) = self.to_unix();
        // At most about 9.2e9 seconds after the epoch (year 2262), which every
        // platform's `SystemTime` represents.
        UNIX_EPOCH + Duration::new(seconds, nanos)
    }

    /// `self + duration`, or `None` past [`Timestamp::MAX`].
    ///
    /// Timestamps count elapsed time, so this adds exactly `duration` of real
    /// time even across a leap second.
    pub fn checked_add(self, duration: Duration) -> Option<Timestamp> {
        let nanos = u64::try_from(duration.as_nanos()).ok()?;
        Timestamp::from_nanos(self.0.checked_add(nanos)?).ok()
    }

    /// `self - duration`, or `None` before [`Timestamp::ZERO`].
    pub fn checked_sub(self, duration: Duration) -> Option<Timestamp> {
        let nanos = u64::try_from(duration.as_nanos()).ok()?;
        self.0.checked_sub(nanos).map(Timestamp)
    }

    /// `self + duration`, stopping at [`Timestamp::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        self.checked_add(duration).unwrap_or(Timestamp::MAX)
    }

    /// `self - duration`, stopping at [`Timestamp::ZERO`] (for example "ten
    /// minutes before the record was received").
    pub fn saturating_sub(self, duration: Duration) -> Timestamp {
        self.checked_sub(duration).unwrap_or(Timestamp::ZERO)
    }

    /// The time elapsed from `earlier` to `self`, or `None` if `earlier` is
    /// later.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is
    /// later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        self.duration_since(earlier).unwrap_or(Duration::ZERO)
    }

    /// Builds a timestamp from elapsed seconds (leap seconds included) and a
    /// sub-second part below one second.
    fn from_elapsed(seconds: u64, nanos: u32) -> Result<Timestamp, TimestampError> {
        let total = seconds
            .checked_mul(NANOS_PER_SEC)
            .and_then(|n| n.checked_add(u64::from(nanos)))
            .ok_or(TimestampError::Overflow)?;
        if total > Timestamp::MAX.0 {
            return Err(TimestampError::Overflow);
        }
        Ok(Timestamp(total))
    }

    /// Unix seconds, nanoseconds, and whether the instant lies inside an
    /// inserted leap second (then the seconds are the repeated unix second).
    fn unix_parts(self) -> (u64, u32, bool) {
        let elapsed = self.0 / NANOS_PER_SEC;
        // Below one second, so it fits.
        let nanos = (self.0 % NANOS_PER_SEC) as u32;
        let mut count = 0u64;
        for &entry in &leap::LEAP_SECOND_UNIXTIMES {
            // The elapsed second just before `entry` in unix time is the
            // inserted one: unix `entry - 1` maps to `entry - 1 + count` and
            // unix `entry` to `entry + count + 1`.
            let inserted = entry + count;
            if elapsed < inserted {
                return (elapsed - count, nanos, false);
            }
            if elapsed == inserted {
                return (entry, nanos, true);
            }
            count += 1;
        }
        (elapsed - count, nanos, false)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, e.g. `2024-11-28T21:38:07.123Z`; the fraction is
    /// omitted when zero, else given to 3, 6 or 9 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unix, nanos, leap) = self.unix_parts();
        // During a leap second show the previous unix second as `:60`.
        let shown = if leap { unix - 1 } else { unix };
        let (year, month, day) = civil_from_days(shown / SECS_PER_DAY);
        let of_day = shown % SECS_PER_DAY;
        let second = if leap { 60 } else { of_day % 60 };
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{second:02}",
            of_day / 3600,
            of_day / 60 % 60
        )?;
        match nanos {
            0 => {}
            n if n % 1_000_000 == 0 => write!(f, ".{:03}", n / 1_000_000)?,
            n if n % 1_000 == 0 => write!(f, ".{:06}", n / 1_000)?,
            n => write!(f, ".{n:09}")?,
        }
        f.write_str("Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self}, {} ns)", self.0)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    /// Parses integer nanoseconds (ASCII digits only, e.g.
    /// `1732829915000000000`) or an RFC 3339 date-time such as
    /// `2024-11-28T21:38:07.5Z` or `2024-11-28T22:38:07+01:00` (`T` or a space
    /// between date and time, up to 9 fraction digits, `:60` only at an
    /// inserted leap second).
    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            // Only digits, so the sole possible failure is overflow.
            let nanos: u64 = s.parse().map_err(|_| TimestampError::Overflow)?;
            return Timestamp::from_nanos(nanos);
        }
        parse_rfc3339(s)
    }
}

impl TryFrom<&[u8]> for Timestamp {
    type Error = TimestampError;

    /// Decodes exactly 8 big-endian bytes.
    fn try_from(bytes: &[u8]) -> Result<Timestamp, TimestampError> {
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| TimestampError::WrongLength { found: bytes.len() })?;
        Timestamp::from_be_bytes(array)
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // Count from 0000-03-01 so that the leap day ends a year; eras are the
    // 400-year cycles of 146 097 days.
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both below 32 and 13, so they fit.
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = (if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    }) as u32;
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (negative before it).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A position in the text being parsed.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Cursor<'_> {
    fn malformed(&self) -> TimestampError {
        TimestampError::Malformed {
            position: self.position,
        }
    }

    /// Exactly `width` ASCII digits (at most 9).
    fn digits(&mut self, width: usize) -> Result<u32, TimestampError> {
        let mut value = 0u32;
        for _ in 0..width {
            match self.bytes.get(self.position) {
                Some(&b) if b.is_ascii_digit() => {
                    value = value * 10 + u32::from(b - b'0');
                    self.position += 1;
                }
                _ => return Err(self.malformed()),
            }
        }
        Ok(value)
    }

    /// One byte out of `allowed`.
    fn one_of(&mut self, allowed: &[u8]) -> Result<u8, TimestampError> {
        match self.bytes.get(self.position) {
            Some(&b) if allowed.contains(&b) => {
                self.position += 1;
                Ok(b)
            }
            _ => Err(self.malformed()),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }
}

fn check_field(
    field: DateTimeField,
    value: u32,
    low: u32,
    high: u32,
) -> Result<(), TimestampError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(TimestampError::FieldOutOfRange { field, value })
    }
}

/// Parses `YYYY-MM-DD(T|t| )hh:mm:ss[.fraction](Z|z|+hh:mm|-hh:mm)`.
fn parse_rfc3339(s: &str) -> Result<Timestamp, TimestampError> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        position: 0,
    };
    let year = c.digits(4)?;
    c.one_of(b"-")?;
    let month = c.digits(2)?;
    c.one_of(b"-")?;
    let day = c.digits(2)?;
    c.one_of(b"Tt ")?;
    let hour = c.digits(2)?;
    c.one_of(b":")?;
    let minute = c.digits(2)?;
    c.one_of(b":")?;
    let second = c.digits(2)?;
    let mut nanos = 0u32;
    if c.peek() == Some(b'.') {
        c.position += 1;
        let mut count = 0u32;
        while let Some(b) = c.peek().filter(u8::is_ascii_digit) {
            if count == 9 {
                return Err(c.malformed());
            }
            nanos = nanos * 10 + u32::from(b - b'0');
            count += 1;
            c.position += 1;
        }
        if count == 0 {
            return Err(c.malformed());
        }
        nanos *= 10u32.pow(9 - count);
    }
    let offset_seconds: i64 = match c.one_of(b"Zz+-")? {
        b'Z' | b'z' => 0,
        sign => {
            let offset_hour = c.digits(2)?;
            c.one_of(b":")?;
            let offset_minute = c.digits(2)?;
            check_field(DateTimeField::OffsetHour, offset_hour, 0, 23)?;
            check_field(DateTimeField::OffsetMinute, offset_minute, 0, 59)?;
            let magnitude = i64::from(offset_hour * 3600 + offset_minute * 60);
            if sign == b'-' { -magnitude } else { magnitude }
        }
    };
    if c.position != c.bytes.len() {
        return Err(c.malformed());
    }

    check_field(DateTimeField::Month, month, 1, 12)?;
    check_field(DateTimeField::Day, day, 1, days_in_month(year, month))?;
    check_field(DateTimeField::Hour, hour, 0, 23)?;
    check_field(DateTimeField::Minute, minute, 0, 59)?;
    check_field(DateTimeField::Second, second, 0, 60)?;

    // A leap second is counted as second 59 here and checked below.
    let local = days_from_civil(year, month, day) * SECS_PER_DAY as i64
        + i64::from(hour * 3600 + minute * 60 + second.min(59));
    let unix = u64::try_from(local - offset_seconds).map_err(|_| TimestampError::BeforeEpoch)?;
    if second < 60 {
        return Timestamp::from_unix(unix, nanos);
    }
    // `23:59:60` UTC: the unix second after it must start a new count.
    let next = unix + 1;
    let index = leap::LEAP_SECOND_UNIXTIMES
        .iter()
        .position(|&entry| entry == next)
        .ok_or(TimestampError::NotALeapSecond { unix_seconds: next })?;
    // The inserted second comes after the `index` leap seconds before it.
    Timestamp::from_elapsed(next + index as u64, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_SEC;

    fn unix(seconds: u64, nanos: u32) -> Timestamp {
        Timestamp::from_unix(seconds, nanos).unwrap()
    }

    fn nanos(n: u64) -> Timestamp {
        Timestamp::from_nanos(n).unwrap()
    }

    #[test]
    fn spec_example() {
        let t = unix(1_732_829_887, 0);
        assert_eq!(t.as_nanos(), 1_732_829_915_000_000_000);
        assert_eq!(
            t.to_be_bytes(),
            [0x18, 0x0c, 0x3f, 0xa0, 0x73, 0xbe, 0xce, 0x00]
        );
        assert_eq!(Timestamp::from_be_bytes(t.to_be_bytes()), Ok(t));
        assert_eq!(t.to_unix(), (1_732_829_887, 0));
        assert_eq!(Timestamp::leap_seconds_at_unix(1_732_829_887), 28);
        assert_eq!(t.to_string(), "2024-11-28T21:38:07Z");
    }

    #[test]
    fn table_is_ascending_midnights_of_january_or_july() {
        let table = Timestamp::LEAP_SECOND_UNIXTIMES;
        assert_eq!(table.len(), 28);
        assert!(table.windows(2).all(|w| w[0] < w[1]));
        for &entry in table {
            assert_eq!(entry % SECS_PER_DAY, 0);
            let (_, month, day) = civil_from_days(entry / SECS_PER_DAY);
            assert!(month == 1 || month == 7, "{entry}");
            assert_eq!(day, 1);
        }
        assert_eq!(civil_from_days(table[0] / SECS_PER_DAY), (1972, 1, 1));
        assert_eq!(civil_from_days(table[27] / SECS_PER_DAY), (2017, 1, 1));
        assert_eq!(
            civil_from_days(Timestamp::LEAP_TABLE_EXPIRES_UNIX / SECS_PER_DAY),
            (2025, 12, 28)
        );
        assert_eq!(Timestamp::LEAP_TABLE_EXPIRES_UNIX % SECS_PER_DAY, 0);
    }

    #[test]
    fn before_1972_equals_unix_time() {
        for (s, n) in [
            (0, 0),
            (1, 500_000_000),
            (31_535_999, 999_999_999),
            (63_071_999, 999_999_999),
        ] {
            assert_eq!(unix(s, n).as_nanos(), s * S + u64::from(n));
            assert_eq!(unix(s, n).to_unix(), (s, n));
        }
        assert_eq!(Timestamp::leap_seconds_at_unix(63_071_999), 0);
        assert_eq!(Timestamp::leap_seconds_at_unix(63_072_000), 1);
        assert_eq!(unix(63_072_000, 0).as_nanos(), 63_072_001 * S);
    }

    #[test]
    fn every_leap_second() {
        for (index, &entry) in Timestamp::LEAP_SECOND_UNIXTIMES.iter().enumerate() {
            let before = index as u64;
            assert_eq!(Timestamp::leap_seconds_at_unix(entry - 1), before);
            assert_eq!(Timestamp::leap_seconds_at_unix(entry), before + 1);
            // Unix entry - 1 and entry are two elapsed seconds apart.
            let last = unix(entry - 1, 0);
            let first = unix(entry, 0);
            assert_eq!(last.as_nanos(), (entry - 1 + before) * S);
            assert_eq!(first.as_nanos(), (entry + before + 1) * S);
            // The elapsed second between them is the inserted one.
            let inserted = nanos((entry + before) * S);
            let half = nanos((entry + before) * S + S / 2);
            assert!(inserted.is_leap_second() && half.is_leap_second());
            assert!(!last.is_leap_second() && !first.is_leap_second());
            assert_eq!(inserted.to_unix(), (entry, 0));
            assert_eq!(half.to_unix(), (entry, 500_000_000));
            assert_eq!(first.to_unix(), (entry, 0));
            assert_eq!(last.to_unix(), (entry - 1, 0));
            let shown = inserted.to_string();
            assert!(shown.ends_with("T23:59:60Z"), "{shown}");
            assert_eq!(shown.parse::<Timestamp>(), Ok(inserted));
            assert_eq!(half.to_string().parse::<Timestamp>(), Ok(half));
            assert!(last.to_string().ends_with("T23:59:59Z"));
            assert!(first.to_string().ends_with("T00:00:00Z"));
        }
        assert_eq!(nanos(63_072_000 * S).to_string(), "1971-12-31T23:59:60Z");
        assert_eq!(
            nanos(1_483_228_827 * S + 1).to_string(),
            "2016-12-31T23:59:60.000000001Z"
        );
    }

    #[test]
    fn unix_round_trip_is_exact() {
        let mut seconds: Vec<u64> = vec![0, 1, 1_700_000_000, 9_223_372_007];
        for &entry in Timestamp::LEAP_SECOND_UNIXTIMES {
            seconds.extend(entry - 2..=entry + 2);
        }
        for s in seconds {
            for n in [0, 1, 999_999_999] {
                assert_eq!(unix(s, n).to_unix(), (s, n), "{s}.{n}");
            }
        }
    }

    #[test]
    fn timestamp_round_trip_outside_leap_seconds() {
        let mut elapsed: Vec<u64> = vec![0, 9_223_372_035];
        for (index, &entry) in Timestamp::LEAP_SECOND_UNIXTIMES.iter().enumerate() {
            elapsed.extend(entry + index as u64 - 2..=entry + index as u64 + 3);
        }
        for e in elapsed {
            let t = nanos(e * S + 7);
            let (s, n) = t.to_unix();
            if t.is_leap_second() {
                assert_eq!(unix(s, n).as_nanos(), t.as_nanos() + S);
            } else {
                assert_eq!(unix(s, n), t);
            }
        }
    }

    #[test]
    fn after_table_expiry_keeps_the_last_count() {
        let expiry = Timestamp::LEAP_TABLE_EXPIRES_UNIX;
        assert!(!Timestamp::leap_table_expired_at(expiry));
        assert!(Timestamp::leap_table_expired_at(expiry + 1));
        for s in [expiry, expiry + 1, 1_767_225_600, 4_000_000_000] {
            assert_eq!(Timestamp::leap_seconds_at_unix(s), 28);
            assert_eq!(unix(s, 5).as_nanos(), (s + 28) * S + 5);
        }
        assert_eq!(
            unix(1_780_000_000, 123_456_789).as_nanos(),
            1_780_000_028_123_456_789
        );
    }

    #[test]
    fn max_and_top_bit() {
        assert_eq!(Timestamp::MAX.as_nanos(), (1 << 63) - 1);
        assert_eq!(
            Timestamp::from_nanos(1 << 63),
            Err(TimestampError::TopBitSet { nanos: 1 << 63 })
        );
        assert_eq!(
            Timestamp::from_be_bytes([0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(TimestampError::TopBitSet { nanos: 1 << 63 })
        );
        assert!(Timestamp::from_be_bytes([0xff; 8]).is_err());
        assert_eq!(
            Timestamp::from_be_bytes([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(Timestamp::MAX)
        );
        assert_eq!(Timestamp::MAX.to_unix(), (9_223_372_008, 854_775_807));
        assert_eq!(
            Timestamp::from_unix(9_223_372_008, 854_775_807),
            Ok(Timestamp::MAX)
        );
        assert_eq!(
            Timestamp::from_unix(9_223_372_008, 854_775_808),
            Err(TimestampError::Overflow)
        );
        assert_eq!(
            Timestamp::from_unix(9_223_372_009, 0),
            Err(TimestampError::Overflow)
        );
        assert_eq!(
            Timestamp::from_unix(u64::MAX, 0),
            Err(TimestampError::Overflow)
        );
        assert_eq!(
            Timestamp::from_unix(u64::MAX - 10, 0),
            Err(TimestampError::Overflow)
        );
        assert_eq!(Timestamp::MAX.to_string(), "2262-04-11T23:46:48.854775807Z");
        assert_eq!(Timestamp::ZERO.to_string(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn nanos_out_of_range() {
        assert_eq!(
            Timestamp::from_unix(1000, 1_000_000_000),
            Err(TimestampError::NanosOutOfRange {
                nanos: 1_000_000_000
            })
        );
        assert_eq!(
            Timestamp::from_unix(0, u32::MAX),
            Err(TimestampError::NanosOutOfRange { nanos: u32::MAX })
        );
    }

    #[test]
    fn byte_slices() {
        let t = unix(1_750_000_000, 0);
        assert_eq!(Timestamp::try_from(&t.to_be_bytes()[..]), Ok(t));
        assert_eq!(
            Timestamp::try_from(&[0u8; 7][..]),
            Err(TimestampError::WrongLength { found: 7 })
        );
        assert_eq!(
            Timestamp::try_from(&[0u8; 9][..]),
            Err(TimestampError::WrongLength { found: 9 })
        );
    }

    #[test]
    fn system_time() {
        let st = UNIX_EPOCH + Duration::new(1_750_000_000, 250);
        let t = Timestamp::from_system_time(st).unwrap();
        assert_eq!(t.as_nanos(), 1_750_000_028 * S + 250);
        assert_eq!(t.to_system_time(), st);
        assert_eq!(Timestamp::from_system_time(UNIX_EPOCH), Ok(Timestamp::ZERO));
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(
            Timestamp::from_system_time(before),
            Err(TimestampError::BeforeEpoch)
        );
        assert_eq!(
            Timestamp::MAX.to_system_time(),
            UNIX_EPOCH + Duration::new(9_223_372_008, 854_775_807)
        );
    }

    #[test]
    fn arithmetic() {
        let t = unix(1_750_000_000, 0);
        let ten_minutes = Duration::from_secs(600);
        assert_eq!(t.checked_sub(ten_minutes), Some(unix(1_749_999_400, 0)));
        assert_eq!(t.checked_add(ten_minutes), Some(unix(1_750_000_600, 0)));
        assert_eq!(Timestamp::ZERO.checked_sub(Duration::from_nanos(1)), None);
        assert_eq!(Timestamp::MAX.checked_add(Duration::from_nanos(1)), None);
        assert_eq!(Timestamp::ZERO.checked_add(Duration::MAX), None);
        assert_eq!(Timestamp::MAX.checked_sub(Duration::MAX), None);
        assert_eq!(Timestamp::ZERO.saturating_sub(ten_minutes), Timestamp::ZERO);
        assert_eq!(Timestamp::MAX.saturating_add(ten_minutes), Timestamp::MAX);
        assert_eq!(t.saturating_sub(ten_minutes), unix(1_749_999_400, 0));
        assert_eq!(
            t.duration_since(Timestamp::ZERO),
            Some(Duration::from_secs(1_750_000_028))
        );
        assert_eq!(Timestamp::ZERO.duration_since(t), None);
        assert_eq!(Timestamp::ZERO.saturating_duration_since(t), Duration::ZERO);
        // Across a leap second, elapsed time counts it.
        let before = unix(1_483_228_799, 0);
        let after = unix(1_483_228_800, 0);
        assert_eq!(after.duration_since(before), Some(Duration::from_secs(2)));
        assert!(before < after);
    }

    #[test]
    fn display_fraction_digits() {
        let base = 1_732_829_887;
        assert_eq!(
            unix(base, 123_456_789).to_string(),
            "2024-11-28T21:38:07.123456789Z"
        );
        assert_eq!(
            unix(base, 120_000_000).to_string(),
            "2024-11-28T21:38:07.120Z"
        );
        assert_eq!(
            unix(base, 123_456_000).to_string(),
            "2024-11-28T21:38:07.123456Z"
        );
        assert_eq!(unix(base, 1).to_string(), "2024-11-28T21:38:07.000000001Z");
        assert_eq!(unix(951_782_400, 0).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(
            format!("{:?}", unix(base, 0)),
            "Timestamp(2024-11-28T21:38:07Z, 1732829915000000000 ns)"
        );
    }

    #[test]
    fn parse_forms() {
        let t = unix(1_732_829_887, 500_000_000);
        assert_eq!("2024-11-28T21:38:07.5Z".parse(), Ok(t));
        assert_eq!("2024-11-28t21:38:07.500000000z".parse(), Ok(t));
        assert_eq!("2024-11-28 21:38:07.50Z".parse(), Ok(t));
        assert_eq!("2024-11-28T22:38:07.5+01:00".parse(), Ok(t));
        assert_eq!("2024-11-28T16:08:07.5-05:30".parse(), Ok(t));
        assert_eq!("1732829915500000000".parse(), Ok(t));
        assert_eq!("0".parse(), Ok(Timestamp::ZERO));
        assert_eq!("9223372036854775807".parse(), Ok(Timestamp::MAX));
        assert_eq!(
            "9223372036854775808".parse::<Timestamp>(),
            Err(TimestampError::TopBitSet { nanos: 1 << 63 })
        );
        assert_eq!(
            "99999999999999999999".parse::<Timestamp>(),
            Err(TimestampError::Overflow)
        );
        assert_eq!("1970-01-01T00:00:00Z".parse(), Ok(Timestamp::ZERO));
        assert_eq!("1969-12-31T23:00:00-01:00".parse(), Ok(Timestamp::ZERO));
        assert_eq!("2262-04-11T23:46:48.854775807Z".parse(), Ok(Timestamp::MAX));
        assert_eq!(
            "2262-04-11T23:46:48.854775808Z".parse::<Timestamp>(),
            Err(TimestampError::Overflow)
        );
        assert_eq!(
            "9999-12-31T23:59:59Z".parse::<Timestamp>(),
            Err(TimestampError::Overflow)
        );
    }

    #[test]
    fn parse_errors() {
        use DateTimeField as F;
        use TimestampError as E;
        let cases: &[(&str, TimestampError)] = &[
            ("", E::Malformed { position: 0 }),
            ("-1", E::Malformed { position: 0 }),
            ("2024-11-28", E::Malformed { position: 10 }),
            ("2024-11-28T21:38:07", E::Malformed { position: 19 }),
            ("2024-11-28T21:38:07Zx", E::Malformed { position: 20 }),
            ("2024-11-28T21:38:07.Z", E::Malformed { position: 20 }),
            (
                "2024-11-28T21:38:07.1234567891Z",
                E::Malformed { position: 29 },
            ),
            ("2024-11-28T21:38Z", E::Malformed { position: 16 }),
            ("24-11-28T21:38:07Z", E::Malformed { position: 2 }),
            ("2024-11-28T21:38:07+0100", E::Malformed { position: 22 }),
            ("2024-11-28T21:38:07 Z", E::Malformed { position: 19 }),
            (
                "2024-13-01T00:00:00Z",
                E::FieldOutOfRange {
                    field: F::Month,
                    value: 13,
                },
            ),
            (
                "2024-00-01T00:00:00Z",
                E::FieldOutOfRange {
                    field: F::Month,
                    value: 0,
                },
            ),
            (
                "2023-02-29T00:00:00Z",
                E::FieldOutOfRange {
                    field: F::Day,
                    value: 29,
                },
            ),
            (
                "1900-02-29T00:00:00Z",
                E::FieldOutOfRange {
                    field: F::Day,
                    value: 29,
                },
            ),
            (
                "2024-04-31T00:00:00Z",
                E::FieldOutOfRange {
                    field: F::Day,
                    value: 31,
                },
            ),
            (
                "2024-04-00T00:00:00Z",
                E::FieldOutOfRange {
                    field: F::Day,
                    value: 0,
                },
            ),
            (
                "2024-04-01T24:00:00Z",
                E::FieldOutOfRange {
                    field: F::Hour,
                    value: 24,
                },
            ),
            (
                "2024-04-01T00:60:00Z",
                E::FieldOutOfRange {
                    field: F::Minute,
                    value: 60,
                },
            ),
            (
                "2024-04-01T00:00:61Z",
                E::FieldOutOfRange {
                    field: F::Second,
                    value: 61,
                },
            ),
            (
                "2024-04-01T00:00:00+24:00",
                E::FieldOutOfRange {
                    field: F::OffsetHour,
                    value: 24,
                },
            ),
            (
                "2024-04-01T00:00:00+01:60",
                E::FieldOutOfRange {
                    field: F::OffsetMinute,
                    value: 60,
                },
            ),
            ("1969-12-31T23:59:59Z", E::BeforeEpoch),
            ("1970-01-01T00:30:00+01:00", E::BeforeEpoch),
            (
                "2024-11-28T23:59:60Z",
                E::NotALeapSecond {
                    unix_seconds: 1_732_838_400,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Timestamp>(), Err(*expected), "{text}");
        }
        // A leap second written in another zone.
        assert_eq!(
            "2017-01-01T00:59:60+01:00".parse::<Timestamp>(),
            Ok(nanos(1_483_228_827 * S))
        );
        assert_eq!(
            "2016-12-31T22:59:60-01:00".parse::<Timestamp>(),
            Ok(nanos(1_483_228_827 * S))
        );
        assert_eq!(
            "2016-12-31T23:58:60Z".parse::<Timestamp>(),
            Err(E::NotALeapSecond {
                unix_seconds: 1_483_228_740
            })
        );
    }

    #[test]
    fn display_parse_round_trip() {
        let mut values: Vec<u64> = vec![0, 1, 999, 1_000, 1_000_000, Timestamp::MAX.as_nanos()];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            // xorshift, kept below 2^63
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> 1);
        }
        for (index, &entry) in Timestamp::LEAP_SECOND_UNIXTIMES.iter().enumerate() {
            let inserted = (entry + index as u64) * S;
            values.extend([
                inserted - 1,
                inserted,
                inserted + 1,
                inserted + S - 1,
                inserted + S,
            ]);
        }
        for v in values {
            let t = nanos(v);
            assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t), "{t:?}");
            assert_eq!(v.to_string().parse::<Timestamp>(), Ok(t));
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in (0..120_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y as u32, m, d), days as i64);
            assert!((1..=days_in_month(y as u32, m)).contains(&d));
        }
    }
}
