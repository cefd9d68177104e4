//! Export and import of all records as a stream of length-prefixed records.
//!
//! The stream is a sequence of frames, `length (u32, little-endian) |
//! record bytes`, with no header: two exports concatenated are one export.
//! Received-at times are not exported; an import sets one for all.

use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::time::Instant;

use mosaic_core::{HEADER_LEN, MAX_RECORD_LEN, OwnedRecord, RecordError, Timestamp};
use redb::ReadableTable;

use crate::error::StoreError;
use crate::layout::{RECORDS, decode_record};
use crate::store::Store;
use crate::write::InsertOutcome;

/// How often (in records) an export reports progress.
const EXPORT_PROGRESS_EVERY: u64 = 1024;
/// Below this many records a batch is validated on the calling thread.
const PARALLEL_MIN: usize = 256;
/// Most threads an import validates on.
const MAX_THREADS: usize = 8;
/// Records whose signatures are verified together, on one thread.
const VERIFY_BATCH: usize = 64;

/// What an import did, record by record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Records read from the stream.
    pub read: u64,
    /// Stored as new.
    pub inserted: u64,
    /// Stored, retiring an older replaceable record.
    pub replaced: u64,
    /// Already stored.
    pub duplicates: u64,
    /// Replaceable and older than the stored record at their address.
    pub superseded: u64,
    /// Of an ephemeral kind, so not stored.
    pub ephemeral: u64,
    /// Failed validation and skipped (each is logged at `warn`).
    pub invalid: u64,
}

impl ImportReport {
    fn count(&mut self, outcome: InsertOutcome) {
        match outcome {
            InsertOutcome::Inserted => self.inserted += 1,
            InsertOutcome::Replaced { .. } => self.replaced += 1,
            InsertOutcome::Duplicate => self.duplicates += 1,
            InsertOutcome::Superseded { .. } => self.superseded += 1,
            InsertOutcome::Ephemeral => self.ephemeral += 1,
        }
    }
}

impl Store {
    /// Writes every record, oldest first, as `length (u32 LE) | bytes`
    /// frames, from one consistent snapshot. `progress` is called with the
    /// number of records written so far, every 1,024 records and at the
    /// end. Returns the number of records written.
    ///
    /// A damaged record stops the export with [`StoreError::Corrupt`],
    /// naming it, so that a backup never silently misses a record.
    pub fn export(
        &self,
        writer: impl Write,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, StoreError> {
        let started = Instant::now();
        let txn = self.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let mut out = BufWriter::with_capacity(1 << 16, writer);
        let mut written = 0u64;
        for item in table.iter()? {
            let (key, value) = item?;
            let (record, _) = decode_record(key.value(), value.value())?;
            // A record is at most 1 MiB.
            let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
            out.write_all(&len.to_le_bytes())?;
            out.write_all(record.as_bytes())?;
            written += 1;
            if written.is_multiple_of(EXPORT_PROGRESS_EVERY) {
                progress(written);
            }
        }
        out.flush()?;
        progress(written);
        tracing::info!(
            records = written,
            took_ms = started.elapsed().as_millis() as u64,
            "export done"
        );
        Ok(written)
    }

    /// Reads a stream written by [`export`](Self::export), validates every
    /// record fully (signature included) and stores the valid ones as
    /// received at `received_at`, in batches of
    /// [`StoreConfig::import_batch`](crate::StoreConfig::import_batch)
    /// records or
    /// [`import_batch_bytes`](crate::StoreConfig::import_batch_bytes), each
    /// committed durably in one transaction: a batch is stored whole or not
    /// at all. `progress` is called with the number of records read so far
    /// after each commit.
    ///
    /// Invalid records are skipped and counted. A stream that is cut short
    /// or holds an impossible length stops the import with
    /// [`StoreError::ImportTruncated`] or [`StoreError::ImportFrame`]; the
    /// batches committed before stay, and importing the stream again skips
    /// them as duplicates.
    pub fn import(
        &self,
        reader: impl Read,
        received_at: Timestamp,
        mut progress: impl FnMut(u64),
    ) -> Result<ImportReport, StoreError> {
        let started = Instant::now();
        let mut reader = BufReader::with_capacity(1 << 16, reader);
        let batch_len = self.config().import_batch.max(1);
        let batch_bytes = self.config().import_batch_bytes;
        let mut report = ImportReport::default();
        let mut offset = 0u64;
        let mut frames = Vec::with_capacity(batch_len.min(65_536));
        let mut bytes = 0u64;
        loop {
            let frame = read_frame(&mut reader, &mut offset)?;
            let end = frame.is_none();
            if let Some((_, record)) = &frame {
                bytes += record.len() as u64;
            }
            frames.extend(frame);
            if frames.len() >= batch_len || bytes >= batch_bytes || (end && !frames.is_empty()) {
                self.import_frames(std::mem::take(&mut frames), received_at, &mut report)?;
                bytes = 0;
                progress(report.read);
            }
            if end {
                break;
            }
        }
        tracing::info!(
            read = report.read,
            inserted = report.inserted,
            invalid = report.invalid,
            took_ms = started.elapsed().as_millis() as u64,
            "import done"
        );
        Ok(report)
    }

    fn import_frames(
        &self,
        frames: Vec<(u64, Vec<u8>)>,
        received_at: Timestamp,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        report.read += frames.len() as u64;
        let mut valid = Vec::with_capacity(frames.len());
        for checked in validate(frames) {
            match checked {
                Ok(record) => valid.push((record, received_at)),
                Err((offset, error)) => {
                    report.invalid += 1;
                    tracing::warn!(offset, %error, "import: invalid record skipped");
                }
            }
        }
        for outcome in self.insert_batch(valid)? {
            report.count(outcome);
        }
        Ok(())
    }
}

/// Reads one frame: `None` at a clean end of the stream.
fn read_frame(
    reader: &mut impl Read,
    offset: &mut u64,
) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let at = *offset;
    let mut len_bytes = [0u8; 4];
    match read_full(reader, &mut len_bytes)? {
        0 => return Ok(None),
        4 => {}
        _ => return Err(StoreError::ImportTruncated { offset: at }),
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    if !(HEADER_LEN..=MAX_RECORD_LEN).contains(&len) {
        return Err(StoreError::ImportFrame {
            offset: at,
            len: len as u64,
        });
    }
    let mut bytes = vec![0u8; len];
    if read_full(reader, &mut bytes)? != len {
        return Err(StoreError::ImportTruncated { offset: at });
    }
    *offset += 4 + len as u64;
    Ok(Some((at, bytes)))
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, StoreError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

type Checked = Result<OwnedRecord, (u64, RecordError)>;

/// Validates frames fully, their signatures checked together in batches of
/// [`VERIFY_BATCH`], keeping their order.
fn check(frames: Vec<(u64, Vec<u8>)>) -> Vec<Checked> {
    let mut out = Vec::with_capacity(frames.len());
    let mut rest = frames.into_iter();
    loop {
        let (offsets, batch): (Vec<u64>, Vec<Vec<u8>>) = rest.by_ref().take(VERIFY_BATCH).unzip();
        if batch.is_empty() {
            return out;
        }
        let verdicts = OwnedRecord::from_vec_batch(batch);
        out.extend(
            offsets
                .into_iter()
                .zip(verdicts)
                .map(|(offset, verdict)| verdict.map_err(|e| (offset, e))),
        );
    }
}

/// Validates frames fully, on several threads when there are many (each
/// verifying its share in batches), keeping their order.
fn validate(frames: Vec<(u64, Vec<u8>)>) -> Vec<Checked> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads <= 1 || frames.len() < PARALLEL_MIN {
        return check(frames);
    }
    let per_thread = frames.len().div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    let mut rest = frames.into_iter();
    loop {
        let chunk: Vec<_> = rest.by_ref().take(per_thread).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || check(chunk)))
            .collect();
        let mut out = Vec::new();
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                // Validation does not panic; if it did, pass the panic on.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_to_a_clean_end() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        stream.extend_from_slice(&[7u8; HEADER_LEN]);
        let mut r = &stream[..];
        let mut offset = 0;
        let (at, bytes) = read_frame(&mut r, &mut offset).unwrap().unwrap();
        assert_eq!((at, bytes.len()), (0, HEADER_LEN));
        assert_eq!(offset, 4 + HEADER_LEN as u64);
        assert!(read_frame(&mut r, &mut offset).unwrap().is_none());
    }

    #[test]
    fn short_and_impossible_frames_are_errors() {
        let mut offset = 0;
        let mut r: &[u8] = &[1, 0];
        assert!(matches!(
            read_frame(&mut r, &mut offset),
            Err(StoreError::ImportTruncated { offset: 0 })
        ));
        let mut r: &[u8] = &[8, 0, 0, 0, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut r, &mut offset),
            Err(StoreError::ImportFrame { offset: 0, len: 8 })
        ));
        let too_long = (MAX_RECORD_LEN as u32 + 1).to_le_bytes();
        let mut r: &[u8] = &too_long;
        assert!(matches!(
            read_frame(&mut r, &mut offset),
            Err(StoreError::ImportFrame { .. })
        ));
        let mut cut = (200u32).to_le_bytes().to_vec();
        cut.extend_from_slice(&[0u8; 100]);
        let mut r = &cut[..];
        assert!(matches!(
            read_frame(&mut r, &mut offset),
            Err(StoreError::ImportTruncated { offset: 0 })
        ));
    }

    #[test]
    fn batched_validation_gives_each_record_its_own_verdict() {
        use mosaic_core::{Kind, Nonce, Record, RecordBuilder, SecretKey};
        let keys: Vec<SecretKey> = (0..5u8).map(|i| SecretKey::from_bytes(&[i; 32])).collect();
        let at = Timestamp::from_nanos(1_750_000_000_000_000_000).unwrap();
        // Enough records for several threads, each with several batches.
        let frames: Vec<(u64, Vec<u8>)> = (0..PARALLEL_MIN as u64 + 200)
            .map(|i| {
                let mut bytes = RecordBuilder::new(Kind::MICROBLOG_ROOT, at)
                    .nonce(Nonce::from_key(&i.to_le_bytes()))
                    .payload(format!("record {i}").as_bytes())
                    .build(&keys[i as usize % keys.len()])
                    .unwrap()
                    .into_vec();
                let len = bytes.len();
                match i % 97 {
                    // A signature that does not hold, one whose s is out
                    // of range, and a changed payload.
                    3 => bytes[len - 40] ^= 1,
                    50 => bytes[len - 1] |= 0xf0,
                    70 => bytes[HEADER_LEN] ^= 1,
                    _ => {}
                }
                (i * 1000, bytes)
            })
            .collect();
        let expected: Vec<_> = frames
            .iter()
            .map(|(offset, bytes)| {
                Record::from_bytes(bytes)
                    .map(|r| r.to_owned())
                    .map_err(|e| (*offset, e))
            })
            .collect();
        assert_eq!(expected.iter().filter(|v| v.is_err()).count(), 14);
        assert_eq!(validate(frames), expected);
    }

    #[test]
    fn validation_keeps_order_across_threads() {
        let frames: Vec<_> = (0..1000u64).map(|i| (i, vec![0u8; 10])).collect();
        let out = validate(frames);
        assert_eq!(out.len(), 1000);
        for (i, r) in out.iter().enumerate() {
            assert!(matches!(r, Err((at, _)) if *at == i as u64));
        }
    }
}
