//! [`StoreConfig`]: the settings a store is opened with.

use std::time::Duration;

/// How a [`Store`](crate::Store) is opened.
///
/// Build it from [`Default`] and change the fields you need:
///
/// ```
/// let mut config = mosaic_store::StoreConfig::default();
/// config.max_blob_len = 4 * 1024 * 1024;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The largest BLOB [`Store::put_blob`](crate::Store::put_blob) accepts, in
    /// bytes (D-18 makes it configuration). Default: 16 MiB. A BLOB is held in
    /// memory whole while it is checked and written, so a larger limit costs
    /// that much memory per concurrent upload.
    pub max_blob_len: u64,
    /// Memory the database engine may use to cache pages, in bytes. Default:
    /// 256 MiB. Queries on a warm cache touch no disk; a cache smaller than
    /// the indexes makes queries read from disk.
    pub cache_bytes: usize,
    /// Makes recovery after a crash nearly instant, at some cost per commit:
    /// each commit also saves the allocator state and is written in two
    /// phases. Without it, the first open after a crash walks the whole file.
    /// Measured on a 1,000,000-record store (1.1 GB): reopening after a
    /// SIGKILL takes 16 ms with it and 2.1 s without (the walk grows with
    /// the file); single-record commits run at about 130 per second with it
    /// and 300 without, and bulk inserts about 25% slower with it.
    /// Default: `true`.
    pub quick_repair: bool,
    /// How many records [`Store::import`](crate::Store::import) commits in one
    /// durable transaction (0 is taken as 1). Default: 100,000. A transaction
    /// rewrites each index page it touches once, so larger batches import
    /// faster, up to the point where the pages one transaction changes no
    /// longer fit the engine's write buffer (half of `cache_bytes`): they are
    /// then written out early and read back at the commit. With the default
    /// cache, that point lies beyond 100,000 records of typical size (about
    /// 500 bytes). An interrupted import loses at most one batch (importing
    /// again skips what is already stored).
    pub import_batch: usize,
    /// The most record bytes one import transaction holds: a batch ends at
    /// `import_batch` records or at this many bytes, whichever comes first.
    /// Default: 64 MiB. An import holds one batch in memory, with about 200
    /// bytes of index entries per record.
    pub import_batch_bytes: u64,
    /// Record writes are made durable in the write-ahead log (one
    /// `fdatasync` per batch) and applied to the database without waiting
    /// for the disk; a checkpoint makes the database durable and starts
    /// the log over once this many records were logged since the last one.
    /// Default: 20,000. A batch of at least this many records skips the log
    /// and commits durably in the database directly (an import does so).
    pub checkpoint_records: u64,
    /// A checkpoint also follows the first logged write made this long
    /// after the last one. Default: 1 s. The log holds what was written
    /// since the last checkpoint, and opening after a crash replays it.
    pub checkpoint_interval: Duration,
    /// A checkpoint also follows once the log holds this many bytes; a
    /// batch of this many record bytes or more skips the log, as a batch of
    /// `checkpoint_records` does. Default: 32 MiB. The log is read whole
    /// when the store opens.
    pub checkpoint_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            max_blob_len: 16 * 1024 * 1024,
            cache_bytes: 256 * 1024 * 1024,
            quick_repair: true,
            import_batch: 100_000,
            import_batch_bytes: 64 * 1024 * 1024,
            checkpoint_records: 20_000,
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_bytes: 32 * 1024 * 1024,
        }
    }
}
