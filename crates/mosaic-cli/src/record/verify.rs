//! `mosaic record verify`: check records, one line each.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use mosaic_core::Record;
use serde::Serialize;

use super::inspect::Failure;
use crate::Status;
use crate::input;
use crate::output::{self, OutputArgs};

pub const AFTER_HELP: &str = "\
Each file may be binary, hex or printable (morecord0...). One line per file:
  OK <file> <id>
  INVALID <file>: <step>: <error>
  ERROR <file>: <error>          (the file could not be read)
Exit status: 0 if every record is valid, 1 if one is invalid, 2 if a file could
not be read.

With --json, an array with one object per file: {\"file\": \"FILE\",
\"status\": \"ok\"|\"invalid\"|\"error\", \"id\": \"moref0...\" or null, \"step\":
\"step 7 (hash)\" or null, \"step_number\": 7 or null, \"error\": message or null}.";

/// Arguments of `record verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The record files (`-` reads standard input).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

/// What was found in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    /// A valid record.
    Ok,
    /// An invalid record, or input that is no record at all.
    Invalid,
    /// The file could not be read.
    Error,
}

/// The verdict on one file.
#[derive(Serialize)]
struct Verdict {
    file: String,
    status: Outcome,
    id: Option<String>,
    step: Option<String>,
    step_number: Option<u8>,
    error: Option<String>,
}

fn verify_one(path: &std::path::Path) -> Verdict {
    let file = path.display().to_string();
    let mut verdict = Verdict {
        file,
        status: Outcome::Ok,
        id: None,
        step: None,
        step_number: None,
        error: None,
    };
    let raw = match input::read_source(path) {
        Ok(raw) => raw,
        Err(e) => {
            verdict.status = Outcome::Error;
            verdict.error = Some(format!("{e:#}"));
            return verdict;
        }
    };
    let failure = match input::decode_record(&raw).1 {
        Err(e) => Failure::input(&e),
        Ok(bytes) => match Record::from_bytes(&bytes) {
            Ok(record) => {
                verdict.id = Some(record.id().to_string());
                return verdict;
            }
            Err(e) => Failure::from_record_error(&e),
        },
    };
    verdict.status = Outcome::Invalid;
    verdict.step = Some(failure.step);
    verdict.step_number = failure.step_number;
    verdict.error = Some(failure.message);
    verdict
}

/// Runs `record verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<Status> {
    let verdicts: Vec<Verdict> = args.files.iter().map(|f| verify_one(f)).collect();
    let mut out = output::stdout();
    if args.output.json {
        output::json(&mut out, &verdicts)?;
    } else {
        for v in &verdicts {
            match (v.status, &v.id, &v.step, &v.error) {
                (Outcome::Ok, Some(id), _, _) => writeln!(out, "OK {} {id}", v.file)?,
                (Outcome::Invalid, _, Some(step), Some(error)) => {
                    writeln!(out, "INVALID {}: {step}: {error}", v.file)?;
                }
                (_, _, _, error) => writeln!(
                    out,
                    "ERROR {}: {}",
                    v.file,
                    error.as_deref().unwrap_or("unknown")
                )?,
            }
        }
        out.flush()?;
    }
    if verdicts.iter().any(|v| v.status == Outcome::Error) {
        anyhow::bail!("some files could not be read");
    }
    Ok(if verdicts.iter().all(|v| v.status == Outcome::Ok) {
        Status::Success
    } else {
        Status::Invalid
    })
}
