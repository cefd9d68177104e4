//! `mosaic-server`: not built yet.
//!
//! This crate is a placeholder in the workspace's layering (see
//! `docs/ARCHITECTURE.md`). It exports nothing; its issue has not been
//! implemented yet.
