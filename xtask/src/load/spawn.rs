//! A release `mosaic serve` of our own for the load: built, started on a
//! fresh data directory with the rate limits raised, measured (CPU time from
//! `/proc/PID/stat`) and stopped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::{cargo, e2e, project_root};

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The configuration of the spawned server: the defaults, except the limits
/// that would measure the rate limiter instead of the server. Every client
/// is on 127.0.0.1, so the per-IP limits count the whole load.
pub const CONFIG: &str = "\
allow_open_queries = false

[limits]
max_connections_per_ip = 1000
submissions_per_second = 1000000
submission_burst = 1000000
ip_submissions_per_second = 1000000
ip_submission_burst = 1000000
key_submissions_per_second = 1000000
key_submission_burst = 1000000
reads_per_second = 1000000
read_burst = 1000000
ip_reads_per_second = 1000000
ip_read_burst = 1000000
key_reads_per_second = 1000000
key_read_burst = 1000000
";

/// Builds the release `mosaic` (`cargo build --release -p mosaic-cli --bin
/// mosaic -j 2`) and returns its path.
pub fn build_release() -> Result<PathBuf> {
    let args = [
        "build",
        "--release",
        "-p",
        "mosaic-cli",
        "--bin",
        "mosaic",
        "-j",
        "2",
    ];
    eprintln!("load: building the server: cargo {}", args.join(" "));
    let status = Command::new(cargo())
        .current_dir(project_root())
        .args(args)
        .status()
        .context("cannot start cargo build")?;
    ensure!(status.success(), "cargo build failed ({status})");
    Ok(e2e::target_dir()?.join("release").join("mosaic"))
}

/// A fresh directory under the system's temporary directory, removed on
/// drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `mosaic-load-PID-LABEL`, emptied first.
    pub fn new(label: &str) -> Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("mosaic-load-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `mosaic serve`, stopped when dropped.
pub struct Spawned {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Spawned {
    /// Starts `bin serve` on a fresh data directory named after `label`,
    /// listening on a free loopback port, with [`CONFIG`].
    pub fn start(bin: &Path, label: &str) -> Result<Spawned> {
        let dir = TempDir::new(label)?;
        let config = dir.path().join("config.toml");
        std::fs::write(&config, CONFIG)
            .with_context(|| format!("cannot write {}", config.display()))?;
        let log = dir.path().join("server.log");
        let stderr =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--no-dht"])
            .env("RUST_LOG", "warn")
            .env_remove("MOSAIC_SERVER_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the server's standard output is not a pipe"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout)
                .lines()
                .map_while(std::io::Result::ok)
            {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut spawned = Spawned {
            child,
            url: String::new(),
            log,
            _dir: dir,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => spawned.url = url,
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "{} did not start listening within {} s; its log:\n{}",
                bin.display(),
                START_TIMEOUT.as_secs(),
                std::fs::read_to_string(&spawned.log).unwrap_or_default()
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!(
                "{} exited before it listened (is it an older build? leave out --bin to build \
                 the current one); its log:\n{}",
                bin.display(),
                std::fs::read_to_string(&spawned.log).unwrap_or_default()
            ),
        }
        Ok(spawned)
    }

    /// The URL it listens on.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// CPU time it has used so far (user and system), from
    /// `/proc/PID/stat`.
    pub fn cpu_time(&self) -> Result<Duration> {
        let path = format!("/proc/{}/stat", self.child.id());
        let stat = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {path}: the CPU figure needs Linux's /proc"))?;
        cpu_from_stat(&stat, clock_ticks()).with_context(|| format!("{path} does not parse"))
    }

    /// Stops it with SIGTERM (as an operator would), killing it if it does
    /// not exit in time.
    pub fn stop(mut self) -> Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!(
            "the server did not stop within {} s of SIGTERM and was killed",
            STOP_TIMEOUT.as_secs()
        )
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 when that fails, which
/// is what Linux uses everywhere).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// utime + stime of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces, so fields are counted after the last
/// `)`: utime and stime are fields 14 and 15.
pub fn cpu_from_stat(stat: &str, ticks_per_second: u64) -> Result<Duration> {
    let after = stat
        .rfind(')')
        .map(|at| &stat[at + 1..])
        .ok_or_else(|| anyhow!("no `)` after the command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .ok_or_else(|| anyhow!("field {n} is missing"))?
            .parse()
            .with_context(|| format!("field {n} is not a number"))
    };
    let ticks = field(14)? + field(15)?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second as f64,
    ))
}
