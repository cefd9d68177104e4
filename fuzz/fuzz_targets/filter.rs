//! Fuzzes filters: see `mosaic_core::fuzzing::fuzz_filter`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mosaic_core::fuzzing::fuzz_filter(data));
