//! Helpers shared by the integration tests: the vector files, hex, and a
//! seeded generator of random and mutated inputs.

use std::path::PathBuf;

use serde_json::Value;

/// Where the interoperability vectors are: `$MOSAIC_VECTORS`, else
/// `shared/vectors` beside the workspace.
pub fn vectors_dir() -> PathBuf {
    match std::env::var_os("MOSAIC_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    }
}

/// Reads one vector file. A missing directory fails the test with a message
/// saying where the vectors belong.
pub fn load(file: &str) -> Value {
    let dir = vectors_dir();
    assert!(
        dir.is_dir(),
        "the interoperability vectors are missing: {} does not exist. Put the vector \
         files in `shared/vectors` beside the workspace, or set MOSAIC_VECTORS to the \
         directory that holds them.",
        dir.display()
    );
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The array at `key` of a vector file (empty when absent).
pub fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The string at a JSON pointer, if it is a string.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Decodes the hex string at a JSON pointer; panics if it is not hex.
pub fn hex_at(value: &Value, pointer: &str) -> Option<Vec<u8>> {
    str_at(value, pointer).map(|h| hex::decode(h).unwrap_or_else(|e| panic!("{pointer}: {e}")))
}

/// SplitMix64: a small, seeded generator, so every run tests the same inputs.
pub struct Rng(u64);

impl Rng {
    /// A generator that always yields the same sequence for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// Random bytes of a random length below `max_len`, leaning towards
    /// short strings and bytes that matter to the formats.
    pub fn input(&mut self, max_len: usize) -> Vec<u8> {
        let len = match self.below(4) {
            0 => self.below(16),
            1 => self.below(160),
            _ => self.below(max_len),
        };
        match self.below(3) {
            0 => self.bytes(len),
            1 => (0..len)
                .map(|_| INTERESTING[self.below(INTERESTING.len())])
                .collect(),
            _ => (0..len)
                .map(|_| ZBASE32[self.below(ZBASE32.len())])
                .collect(),
        }
    }

    /// `count` mutations of `input`: bit flips, overwritten, inserted and
    /// removed bytes, truncations and extensions, one to three at a time.
    pub fn mutations(&mut self, input: &[u8], count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|_| {
                let mut bytes = input.to_vec();
                for _ in 0..1 + self.below(3) {
                    self.mutate(&mut bytes);
                }
                bytes
            })
            .collect()
    }

    fn mutate(&mut self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self.below(8) {
            0 | 1 if len > 0 => {
                let at = self.below(len);
                bytes[at] ^= 1 << self.below(8);
            }
            2 if len > 0 => {
                let at = self.below(len);
                bytes[at] = INTERESTING[self.below(INTERESTING.len())];
            }
            3 => bytes.truncate(self.below(len + 1)),
            4 if len > 0 => {
                let at = self.below(len);
                let end = (at + 1 + self.below(8)).min(len);
                bytes.drain(at..end);
            }
            5 => {
                let at = self.below(len + 1);
                let n = 1 + self.below(8);
                let extra = self.bytes(n);
                bytes.splice(at..at, extra);
            }
            6 if len > 0 => {
                let at = self.below(len);
                let end = (at + 1 + self.below(16)).min(len);
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => {
                let n = 1 + self.below(8);
                let extra = self.bytes(n);
                bytes.extend_from_slice(&extra);
            }
        }
    }
}

/// Byte values at the edges of the formats' fields.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x0a, 0x20, 0x30, 0x31, 0x37, 0x3a, 0x40, 0x53,
    0x55, 0x7f, 0x80, 0x81, 0x84, 0x85, 0xc0, 0xfe, 0xff,
];

/// The z-base-32 alphabet and a few neighbours, for text-like inputs.
const ZBASE32: &[u8] = b"ybndrfg8ejkmcpqxot1uwisza345h769lv02mopubsec \n:/.";
