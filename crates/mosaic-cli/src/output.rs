//! Writing results: JSON or human text on standard output, warnings on
//! standard error, and files (secret key files with owner-only permissions).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// The `--json` flag shared by every command whose output is data.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArgs {
    /// Print one JSON value on standard output instead of text for people.
    #[arg(long)]
    pub json: bool,
}

/// Standard output, locked for the whole command.
pub fn stdout() -> io::StdoutLock<'static> {
    io::stdout().lock()
}

/// Writes `value` as pretty-printed JSON and a newline.
pub fn json<T: Serialize + ?Sized>(out: &mut impl Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).context("writing JSON to standard output")?;
    writeln!(out).context("writing to standard output")?;
    out.flush().context("writing to standard output")
}

/// Prints a warning on standard error.
pub fn warn(message: impl std::fmt::Display) {
    // A closed standard error leaves nowhere to report anything.
    let _ = writeln!(io::stderr(), "mosaic: warning: {message}");
}

/// Whether the error comes from writing to a closed pipe, which ends the
/// command successfully (as in `mosaic record inspect r | head -3`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    })
}

/// Writes a file that holds a secret: created with mode 0600 on Unix, and
/// never over an existing file unless `force` is set (then the old file is
/// replaced atomically).
pub fn write_secret_file(path: &Path, contents: &[u8], force: bool) -> anyhow::Result<()> {
    if !force {
        let mut file = create_private(path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} already exists; choose another file, or give --force to replace it",
                    path.display()
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
            }
        })?;
        return finish(&mut file, contents).with_context(|| format!("writing {}", path.display()));
    }
    // Write beside the target, then rename over it, so the old key stays
    // whole until the new one is on disk.
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let written = create_private(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))
        .and_then(|mut file| {
            finish(&mut file, contents).with_context(|| format!("writing {}", temporary.display()))
        })
        .and_then(|()| {
            fs::rename(&temporary, path)
                .with_context(|| format!("cannot replace {}", path.display()))
        });
    if written.is_err() {
        // Best effort: the error above is the one worth reporting.
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn create_private(path: &Path) -> io::Result<fs::File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn finish(file: &mut fs::File, contents: &[u8]) -> io::Result<()> {
    file.write_all(contents)?;
    file.sync_all()
}

/// Writes `contents` to `path`, or to standard output when `path` is `-`.
pub fn write_file_or_stdout(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if path == Path::new("-") {
        let mut out = stdout();
        out.write_all(contents)
            .and_then(|()| out.flush())
            .context("writing to standard output")
    } else {
        fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pipe_is_found_in_the_chain() {
        let pipe = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("x");
        assert!(is_broken_pipe(&pipe));
        let other = anyhow::Error::new(io::Error::from(io::ErrorKind::NotFound)).context("x");
        assert!(!is_broken_pipe(&other));
        assert!(!is_broken_pipe(&anyhow::anyhow!("plain")));
    }
}
