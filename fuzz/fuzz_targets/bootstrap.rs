//! Fuzzes user and server bootstraps and URLs: see `mosaic_core::fuzzing::fuzz_bootstrap`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mosaic_core::fuzzing::fuzz_bootstrap(data));
