//! The IANA leap-second table that Mosaic timestamps are built on (`timestamps.md`, D-11).
//!
//! Source: the IANA `leap-seconds.list`
//! (<https://data.iana.org/time-zones/data/leap-seconds.list>). Its first column is
//! an NTP time; subtracting 2 208 988 800 gives the unix time below. Its last column
//! is TAI-UTC; TAI-UTC minus 9 is the number of leap seconds elapsed from that
//! instant on, so the first entry (1972-01-01, TAI-UTC 10) already counts as one
//! (D-11) and the count after the last entry is 28.
//!
//! When IANA publishes a new list, append its new entries here and move
//! [`LEAP_TABLE_EXPIRES_UNIX`] to the new list's expiry date.

/// The unix times (seconds) at which the leap-second count goes up by one,
/// ascending. Entry `i` is the instant from which `i + 1` leap seconds have
/// elapsed; the inserted second is the one just before it (`23:59:60` UTC).
pub(crate) const LEAP_SECOND_UNIXTIMES: [u64; 28] = [
    63_072_000,    // 1972-01-01  NTP 2272060800  TAI-UTC 10
    78_796_800,    // 1972-07-01  NTP 2287785600  TAI-UTC 11
    94_694_400,    // 1973-01-01  NTP 2303683200  TAI-UTC 12
    126_230_400,   // 1974-01-01  NTP 2335219200  TAI-UTC 13
    157_766_400,   // 1975-01-01  NTP 2366755200  TAI-UTC 14
    189_302_400,   // 1976-01-01  NTP 2398291200  TAI-UTC 15
    220_924_800,   // 1977-01-01  NTP 2429913600  TAI-UTC 16
    252_460_800,   // 1978-01-01  NTP 2461449600  TAI-UTC 17
    283_996_800,   // 1979-01-01  NTP 2492985600  TAI-UTC 18
    315_532_800,   // 1980-01-01  NTP 2524521600  TAI-UTC 19
    362_793_600,   // 1981-07-01  NTP 2571782400  TAI-UTC 20
    394_329_600,   // 1982-07-01  NTP 2603318400  TAI-UTC 21
    425_865_600,   // 1983-07-01  NTP 2634854400  TAI-UTC 22
    489_024_000,   // 1985-07-01  NTP 2698012800  TAI-UTC 23
    567_993_600,   // 1988-01-01  NTP 2776982400  TAI-UTC 24
    631_152_000,   // 1990-01-01  NTP 2840140800  TAI-UTC 25
    662_688_000,   // 1991-01-01  NTP 2871676800  TAI-UTC 26
    709_948_800,   // 1992-07-01  NTP 2918937600  TAI-UTC 27
    741_484_800,   // 1993-07-01  NTP 2950473600  TAI-UTC 28
    773_020_800,   // 1994-07-01  NTP 2982009600  TAI-UTC 29
    820_454_400,   // 1996-01-01  NTP 3029443200  TAI-UTC 30
    867_715_200,   // 1997-07-01  NTP 3076704000  TAI-UTC 31
    915_148_800,   // 1999-01-01  NTP 3124137600  TAI-UTC 32
    1_136_073_600, // 2006-01-01  NTP 3345062400  TAI-UTC 33
    1_230_768_000, // 2009-01-01  NTP 3439756800  TAI-UTC 34
    1_341_100_800, // 2012-07-01  NTP 3550089600  TAI-UTC 35
    1_435_708_800, // 2015-07-01  NTP 3644697600  TAI-UTC 36
    1_483_228_800, // 2017-01-01  NTP 3692217600  TAI-UTC 37
];

/// The expiry of the table above, as a unix time: 2025-12-28T00:00:00Z (NTP
/// 3 975 868 800, the `#@` line of the IANA list).
///
/// Until then IANA guarantees no further leap second. After it, this crate keeps
/// using the last known count (28) rather than failing (D-11); a server may
/// warn its operator when its clock passes this instant (see
/// [`Timestamp::leap_table_expired_at`](crate::Timestamp::leap_table_expired_at)).
pub(crate) const LEAP_TABLE_EXPIRES_UNIX: u64 = 1_766_880_000;
