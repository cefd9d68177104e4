//! Integration tests of `mosaic-core`, one module per area, in one binary.
//!
//! - `batch`: batch validation gives each record the verdict it gets
//!   alone.
//! - `fuzz_targets`: the `mosaic_core::fuzzing` functions over the
//!   interoperability vectors and over seeded random and mutated inputs.
//! - `proptests`: encode-then-decode round trips of built values, and
//!   arbitrary bytes fed to every parser.

#[path = "core/batch.rs"]
mod batch;
#[path = "core/fuzz_targets.rs"]
mod fuzz_targets;
#[path = "core/proptests.rs"]
mod proptests;
#[path = "core/support.rs"]
mod support;
