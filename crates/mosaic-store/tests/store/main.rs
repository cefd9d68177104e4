//! Integration tests of `mosaic-store`, gathered into one binary: one module
//! per area.

mod common;
mod differential;
mod open;
mod semantics;
mod transfer;
