//! Integration tests of `mosaic-store`, gathered into one binary: one module
//! per area.

mod common;
mod differential;
#[cfg(feature = "fault-injection")]
mod faults;
mod open;
mod resume;
mod semantics;
mod transfer;
