//! Fuzzes protocol messages: see `mosaic_core::fuzzing::fuzz_message`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mosaic_core::fuzzing::fuzz_message(data));
