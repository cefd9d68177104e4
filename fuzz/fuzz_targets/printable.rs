//! Fuzzes printable (z-base-32) forms, kinds and timestamps: see `mosaic_core::fuzzing::fuzz_printable`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mosaic_core::fuzzing::fuzz_printable(data));
