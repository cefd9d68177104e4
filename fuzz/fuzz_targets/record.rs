//! Fuzzes records (and the tag sets and tags inside them): see `mosaic_core::fuzzing::fuzz_record`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mosaic_core::fuzzing::fuzz_record(data));
