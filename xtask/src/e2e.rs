//! `cargo xtask e2e`: the whole system, end to end, on loopback only.
//!
//! It builds the `mosaic` binary, then drives it as child processes: a
//! private DHT testnet (`mosaic dht testnet`), three servers (`mosaic serve`
//! with TLS for `localhost`, each publishing its server bootstrap), and two
//! users, each with their own `MOSAIC_HOME`. User A publishes a bootstrap
//! naming server 1, a profile and posts; user B, knowing only A's key,
//! reads A's feed and profile, replies (the reply reaches A's inbox) and
//! watches A live; A migrates to server 2, server 1 is stopped, and B still
//! reads A's whole feed by key alone.
//!
//! Each step prints `e2e: <step>: ok` or `e2e: <step>: FAILED (reason)`,
//! then `e2e: N passed, M failed`. Every child is killed on every path (a
//! guard owns them). The temporary directory (keys, server data, logs) is
//! removed after a clean run and kept, with its path printed, after a
//! failure or with `--keep`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;

use crate::{cargo, project_root};

/// Arguments of `cargo xtask e2e`.
#[derive(clap::Args)]
pub struct Args {
    /// Build and run the debug binary instead of the release one.
    #[arg(long)]
    pub debug: bool,
    /// Run this `mosaic` binary instead of building one.
    #[arg(long, value_name = "FILE", conflicts_with = "debug")]
    pub bin: Option<PathBuf>,
    /// Keep the temporary directory (keys, server data, logs) afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// How long one short command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to start and publish its bootstrap.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How soon B must see A's new post.
const LIVE_WITHIN: Duration = Duration::from_secs(1);
/// The scrypt cost of the users' keys: small, since these keys protect
/// nothing and every command opens one.
const LOG_N: &str = "12";

/// Runs `cargo xtask e2e`.
pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let bin = match &args.bin {
        Some(bin) => bin.clone(),
        None => build(if args.debug { "debug" } else { "release" })?,
    };
    ensure!(
        bin.is_file(),
        "{} does not exist: build it, or leave out --bin",
        bin.display()
    );
    scenario(&bin, args.keep, started.elapsed())
}

/// What CI runs: the debug binary (mostly built by the test step already),
/// built with two jobs.
pub fn run_ci() -> Result<ExitCode> {
    let started = Instant::now();
    let bin = build_with("debug", &["-j2"])?;
    scenario(&bin, false, started.elapsed())
}

/// Builds `mosaic` in `profile` and returns its path.
fn build(profile: &str) -> Result<PathBuf> {
    build_with(profile, &[])
}

fn build_with(profile: &str, extra: &[&str]) -> Result<PathBuf> {
    let mut args = vec!["build", "-p", "mosaic-cli", "--bin", "mosaic"];
    if profile == "release" {
        args.push("--release");
    }
    args.extend_from_slice(extra);
    println!("e2e: building: cargo {}", args.join(" "));
    let status = Command::new(cargo())
        .current_dir(project_root())
        .args(&args)
        .status()
        .context("starting cargo build")?;
    ensure!(status.success(), "cargo build failed ({status})");
    Ok(target_dir()?.join(profile).join("mosaic"))
}

/// The workspace's target directory, as cargo reports it.
pub fn target_dir() -> Result<PathBuf> {
    let output = Command::new(cargo())
        .current_dir(project_root())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .context("starting cargo metadata")?;
    ensure!(output.status.success(), "cargo metadata failed");
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("reading cargo metadata's output")?;
    metadata
        .get("target_directory")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .context("cargo metadata gave no target_directory")
}

/// Counts steps and prints one line each.
struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    /// Runs a step; `None` when it failed. The closure may return a note
    /// for the `ok` line.
    fn step<T>(&mut self, name: &str, f: impl FnOnce() -> Result<(T, String)>) -> Option<T> {
        let started = Instant::now();
        match f() {
            Ok((value, note)) => {
                self.passed += 1;
                let took = started.elapsed().as_secs_f64();
                if note.is_empty() {
                    println!("e2e: {name}: ok ({took:.1}s)");
                } else {
                    println!("e2e: {name}: ok ({note}; {took:.1}s)");
                }
                Some(value)
            }
            Err(error) => {
                self.failed += 1;
                println!("e2e: {name}: FAILED ({error:#})");
                None
            }
        }
    }
}

/// The steps, in order (for the count of those not run after a failure).
const STEPS: usize = 16;

fn scenario(bin: &Path, keep: bool, build_time: Duration) -> Result<ExitCode> {
    let started = Instant::now();
    let bin = std::path::absolute(bin).unwrap_or_else(|_| bin.to_path_buf());
    // Unique per run, even for runs started at once on one machine.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("mosaic-e2e-{}-{nanos}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut world = World {
        bin,
        dir: dir.clone(),
        procs: Vec::new(),
        dht: String::new(),
        ca: dir.join("localhost.pem"),
    };
    let mut report = Report {
        passed: 0,
        failed: 0,
    };
    let completed = steps(&mut world, &mut report).is_some();
    // Stop every child before reporting (and before removing their files).
    drop(world);
    let not_run = STEPS.saturating_sub(report.passed + report.failed);
    let tail = if completed || not_run == 0 {
        String::new()
    } else {
        format!(" ({not_run} not run)")
    };
    println!(
        "e2e: build {:.1}s, scenario {:.1}s",
        build_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "e2e: {} passed, {} failed{tail}",
        report.passed, report.failed
    );
    let success = report.failed == 0 && completed;
    if success && !keep {
        let _ = fs::remove_dir_all(&dir);
    } else {
        println!("e2e: keys, server data and logs are in {}", dir.display());
    }
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A user of the scenario.
struct User {
    name: &'static str,
    home: PathBuf,
    password: &'static str,
    key: String,
}

/// A server of the scenario.
struct ServerProc {
    key: String,
    proc: usize,
}

fn steps(w: &mut World, r: &mut Report) -> Option<()> {
    r.step("start a private DHT testnet", || {
        let index = w.spawn("dht-testnet", &["dht", "testnet", "--nodes", "8"])?;
        let line = w.procs[index].wait_for(START_TIMEOUT, |stream, line| {
            stream == Stream::Out && line.starts_with("--dht-bootstrap ")
        })?;
        w.dht = line
            .trim_start_matches("--dht-bootstrap ")
            .trim()
            .to_owned();
        Ok(((), format!("nodes {}", w.dht)))
    })?;
    r.step("make a TLS certificate for localhost", || {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .context("cannot make the certificate")?;
        fs::write(&w.ca, cert.cert.pem()).context("cannot write the certificate")?;
        fs::write(
            w.dir.join("localhost.key"),
            cert.signing_key.serialize_pem(),
        )
        .context("cannot write the key")?;
        Ok(((), String::new()))
    })?;
    let servers = r.step("start three servers (wss, bootstraps in the DHT)", || {
        let mut servers = Vec::new();
        for n in 1..=3 {
            servers.push(w.start_server(n)?);
        }
        let keys: Vec<&str> = servers.iter().map(|s| short(&s.key)).collect();
        let note = keys.join(", ");
        Ok((servers, note))
    })?;
    let mut alice = User {
        name: "alice",
        home: w.dir.join("alice"),
        password: "alice's password",
        key: String::new(),
    };
    let mut bob = User {
        name: "bob",
        home: w.dir.join("bob"),
        password: "bob's password",
        key: String::new(),
    };
    let (s1, s2, s3) = (&servers[0], &servers[1], &servers[2]);
    r.step(
        "create user A (with a subkey), bootstrap naming server 1",
        || {
            let json = w.mosaic(
                &alice,
                &["init", "--subkey", "--log-n", LOG_N, "--server", &s1.key],
            )?;
            alice.key = string(&json, "/public_key")?;
            let seq = json.pointer("/bootstrap/seq").and_then(Value::as_i64);
            ensure!(seq == Some(1), "the bootstrap was not published: {json}");
            ensure!(
                json.pointer("/key_schedule/id").is_some(),
                "no key schedule published: {json}"
            );
            Ok(((), format!("A = {}", short(&alice.key))))
        },
    )?;
    r.step("create user B, bootstrap naming server 3", || {
        let json = w.mosaic(
            &bob,
            &[
                "init", "--log-n", LOG_N, "--name", "bob", "--server", &s3.key,
            ],
        )?;
        bob.key = string(&json, "/public_key")?;
        Ok(((), format!("B = {}", short(&bob.key))))
    })?;
    r.step("A publishes a profile", || {
        let json = w.mosaic(
            &alice,
            &[
                "profile",
                "set",
                "--name",
                "alice",
                "--about",
                "Testing Mosaic end to end",
            ],
        )?;
        ensure!(stored_anywhere(&json), "no server stored it: {json}");
        Ok(((), String::new()))
    })?;
    let mut posts = r.step("A posts three times", || {
        let mut ids = Vec::new();
        for text in ["Hello, Mosaic", "A second post", "And a third"] {
            let json = w.mosaic(&alice, &["post", text])?;
            ensure!(stored_anywhere(&json), "no server stored {text:?}: {json}");
            ids.push(string(&json, "/id")?);
        }
        Ok((ids, String::new()))
    })?;
    r.step("B reads A's feed, knowing only A's key", || {
        let got = w.feed_ids(&bob, &alice.key)?;
        let expected: Vec<String> = posts.iter().rev().cloned().collect();
        ensure!(
            got == expected,
            "expected {expected:?} (newest first), got {got:?}"
        );
        Ok(((), format!("{} posts, newest first", got.len())))
    });
    r.step("B reads A's profile", || {
        let json = w.mosaic(&bob, &["profile", "show", &alice.key])?;
        let name = string(&json, "/name")?;
        ensure!(name == "alice", "the name is {name:?}");
        Ok(((), String::new()))
    });
    let reply = r.step("B replies to A's first post", || {
        let json = w.mosaic(
            &bob,
            &[
                "reply",
                &posts[0],
                "--author",
                &alice.key,
                "Welcome, alice!",
            ],
        )?;
        let to_inbox = json
            .get("servers")
            .and_then(Value::as_array)
            .is_some_and(|servers| {
                servers.iter().any(|s| {
                    s["server"] == s1.key.as_str()
                        && s["usage"].as_str().is_some_and(|u| u.contains("inbox"))
                        && s["stored"] == true
                })
            });
        ensure!(
            to_inbox,
            "server 1 (A's inbox) did not store the reply: {json}"
        );
        Ok((string(&json, "/id")?, String::new()))
    })?;
    r.step("the reply reaches A's inbox", || {
        let json = w.mosaic(&alice, &["inbox"])?;
        let ids = ids(&json)?;
        ensure!(ids.contains(&reply), "A's inbox holds {ids:?}, not {reply}");
        Ok(((), String::new()))
    });
    r.step(
        "B watches A live and sees a new post within a second",
        || {
            let watch = w.spawn_as(
                &bob,
                "watch",
                &["watch", &alice.key, "--limit", "0", "--json"],
            )?;
            w.procs[watch].wait_for(COMMAND_TIMEOUT, |stream, line| {
                stream == Stream::Out && line.contains("\"caught_up\"")
            })?;
            let before = Instant::now();
            let json = w.mosaic(&alice, &["post", "Live from the e2e"])?;
            let stored = Instant::now();
            let id = string(&json, "/id")?;
            let seen = w.procs[watch].wait_for(Duration::from_secs(10), |stream, line| {
                stream == Stream::Out && line.contains(&id)
            });
            let seen_at = Instant::now();
            w.procs[watch].kill();
            seen?;
            let late = seen_at.saturating_duration_since(stored);
            ensure!(
                late <= LIVE_WITHIN,
                "seen {} ms after the post was stored",
                late.as_millis()
            );
            posts.push(id);
            Ok((
                (),
                format!(
                    "seen {} ms after `mosaic post` started, {} ms after it returned",
                    seen_at.duration_since(before).as_millis(),
                    late.as_millis()
                ),
            ))
        },
    )?;
    r.step("A migrates to server 2", || {
        let json = w.mosaic(&alice, &["migrate", "--to", &s2.key, "--drop-old"])?;
        let records = json.get("records").and_then(Value::as_u64).unwrap_or(0);
        // Key schedule, profile and the four posts.
        ensure!(records == 6, "{records} records copied, expected 6: {json}");
        let first = json.pointer("/servers/0/server").and_then(Value::as_str);
        ensure!(
            first == Some(s2.key.as_str()),
            "server 2 is not first: {json}"
        );
        let seq = json.pointer("/bootstrap/seq").and_then(Value::as_i64);
        ensure!(seq == Some(2), "bootstrap sequence {seq:?}, expected 2");
        let inbox = json
            .get("inbox_records")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(((), format!("{records} records and {inbox} from the inbox")))
    })?;
    r.step("server 1 is stopped", || {
        w.procs[s1.proc].kill();
        Ok(((), String::new()))
    })?;
    r.step("B still reads A's complete feed, by key alone", || {
        let got: HashSet<String> = w.feed_ids(&bob, &alice.key)?.into_iter().collect();
        let expected: HashSet<String> = posts.iter().cloned().collect();
        ensure!(got == expected, "expected {expected:?}, got {got:?}");
        Ok(((), format!("{} posts from server 2", got.len())))
    });
    r.step("B reads the thread, the reply moved with A", || {
        let json = w.mosaic(&bob, &["thread", &posts[0], "--author", &alice.key])?;
        let replies: Vec<&str> = json
            .get("replies")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|r| r["id"].as_str()).collect())
            .unwrap_or_default();
        ensure!(replies == [reply.as_str()], "the replies are {replies:?}");
        Ok(((), String::new()))
    });
    Some(())
}

/// Whether a publication's JSON says some server stored the record.
fn stored_anywhere(json: &Value) -> bool {
    json.get("servers")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s["stored"] == true))
}

/// The string at `pointer`.
fn string(json: &Value, pointer: &str) -> Result<String> {
    json.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no {pointer} in {json}"))
}

/// The ids of a list of records.
fn ids(json: &Value) -> Result<Vec<String>> {
    json.as_array()
        .ok_or_else(|| anyhow!("not a list of records: {json}"))?
        .iter()
        .map(|r| string(r, "/id"))
        .collect()
}

/// The start of a key, for the report.
fn short(key: &str) -> &str {
    key.get(..14).unwrap_or(key)
}

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A long-running child: its output lines arrive on a channel and go to a
/// log file. Killed when dropped.
struct Proc {
    name: String,
    child: Child,
    lines: Receiver<(Stream, String)>,
    log: PathBuf,
}

impl Proc {
    /// Waits for a line that `wanted` accepts.
    fn wait_for(
        &mut self,
        timeout: Duration,
        mut wanted: impl FnMut(Stream, &str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((stream, line)) if wanted(stream, &line) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => bail!(
                    "{} did not print what was expected within {}s (log: {})",
                    self.name,
                    timeout.as_secs(),
                    self.log.display()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    bail!(
                        "{} exited ({status}); its log: {}{}",
                        self.name,
                        self.log.display(),
                        tail(&self.log)
                    );
                }
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return " (empty)".to_owned();
    }
    let start = lines.len().saturating_sub(8);
    lines
        .get(start..)
        .map(|l| format!("\n    {}", l.join("\n    ")))
        .unwrap_or_default()
}

/// Everything the scenario started; dropping it kills every child.
struct World {
    bin: PathBuf,
    dir: PathBuf,
    procs: Vec<Proc>,
    dht: String,
    ca: PathBuf,
}

impl World {
    /// A `mosaic` command with a clean environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(args).current_dir(&self.dir);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MOSAIC_") {
                command.env_remove(name);
            }
        }
        command
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if !self.dht.is_empty() {
            command.env("MOSAIC_DHT_BOOTSTRAP", &self.dht);
        }
        command
    }

    /// The command as `user`.
    fn command_as(&self, user: &User, args: &[&str]) -> Command {
        let mut command = self.command(args);
        command
            .env("MOSAIC_HOME", &user.home)
            .env("MOSAIC_PASSWORD", user.password)
            .env("MOSAIC_TLS_CA", &self.ca);
        command
    }

    /// Starts a long-running child named `name`.
    fn spawn(&mut self, name: &str, args: &[&str]) -> Result<usize> {
        let command = self.command(args);
        self.start(name, command)
    }

    /// Starts a long-running child as `user`.
    fn spawn_as(&mut self, user: &User, name: &str, args: &[&str]) -> Result<usize> {
        let command = self.command_as(user, args);
        self.start(&format!("{}-{name}", user.name), command)
    }

    fn start(&mut self, name: &str, mut command: Command) -> Result<usize> {
        let log = self.dir.join(format!("{name}.log"));
        let file = Arc::new(Mutex::new(
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?,
        ));
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        let (tx, rx) = mpsc::channel();
        let pipes: [(Stream, Option<Box<dyn Read + Send>>); 2] = [
            (
                Stream::Out,
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                Stream::Err,
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ];
        for (stream, pipe) in pipes {
            let Some(pipe) = pipe else { continue };
            let (tx, file) = (tx.clone(), file.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(std::io::Result::ok) {
                    if let Ok(mut f) = file.lock() {
                        let _ = writeln!(f, "{line}");
                    }
                    if tx.send((stream, line)).is_err() {
                        // Nobody waits any more; keep draining into the log.
                        continue;
                    }
                }
            });
        }
        self.procs.push(Proc {
            name: name.to_owned(),
            child,
            lines: rx,
            log,
        });
        Ok(self.procs.len() - 1)
    }

    /// Starts server `n` on a free port, with TLS and a public URL, and
    /// waits until it has published its server bootstrap.
    fn start_server(&mut self, n: usize) -> Result<ServerProc> {
        let port = free_port()?;
        let data = self.dir.join(format!("server{n}"));
        let (listen, url) = (
            format!("127.0.0.1:{port}"),
            format!("mosaicwss://localhost:{port}/"),
        );
        let (cert, key) = (self.ca.clone(), self.dir.join("localhost.key"));
        let args = [
            "serve",
            "--data",
            path_str(&data)?,
            "--listen",
            &listen,
            "--tls-cert",
            path_str(&cert)?,
            "--tls-key",
            path_str(&key)?,
            "--public-url",
            &url,
        ];
        let mut command = self.command(&args);
        // The publication of the server bootstrap is logged at info.
        command.env("RUST_LOG", "mosaic=info,warn");
        let proc = self.start(&format!("server{n}"), command)?;
        let p = &mut self.procs[proc];
        let line = p.wait_for(START_TIMEOUT, |stream, line| {
            stream == Stream::Out && line.starts_with("mosaic server ")
        })?;
        let key = line.trim_start_matches("mosaic server ").trim().to_owned();
        p.wait_for(START_TIMEOUT, |stream, line| {
            stream == Stream::Err && line.contains("published the server bootstrap")
        })?;
        Ok(ServerProc { key, proc })
    }

    /// Runs `mosaic ARGS --json` as `user` and parses what it prints.
    fn mosaic(&self, user: &User, args: &[&str]) -> Result<Value> {
        let mut args = args.to_vec();
        args.push("--json");
        let command = self.command_as(user, &args);
        let output = run_with_timeout(command, COMMAND_TIMEOUT)
            .with_context(|| format!("mosaic {}", args.join(" ")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!(
                "`mosaic {}` as {} exited with {}: {}",
                args.join(" "),
                user.name,
                output.status,
                stderr.trim()
            );
        }
        serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "`mosaic {}` printed no JSON: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// The ids in `user`'s view of `author`'s feed.
    fn feed_ids(&self, user: &User, author: &str) -> Result<Vec<String>> {
        ids(&self.mosaic(user, &["feed", author, "--limit", "50"])?)
    }
}

/// A path as UTF-8, for a command line.
fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| anyhow!("{} is not UTF-8", path.display()))
}

/// A TCP port free on 127.0.0.1 now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs a command to its end, killing it after `timeout`.
fn run_with_timeout(mut command: Command, timeout: Duration) -> Result<Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start mosaic")?;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("did not finish within {}s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_time_out_and_report() {
        let mut sleep = Command::new("sleep");
        sleep.arg("5");
        let error = run_with_timeout(sleep, Duration::from_millis(100)).unwrap_err();
        assert!(error.to_string().contains("did not finish"), "{error}");
        let mut echo = Command::new("echo");
        echo.arg("hi");
        let output = run_with_timeout(echo, Duration::from_secs(10)).unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, b"hi\n");
    }

    #[test]
    fn steps_are_counted() {
        let mut r = Report {
            passed: 0,
            failed: 0,
        };
        assert_eq!(r.step("one", || Ok((1, String::new()))), Some(1));
        assert_eq!(
            r.step("two", || -> Result<((), String)> { bail!("no") }),
            None
        );
        assert_eq!((r.passed, r.failed), (1, 1));
        assert_eq!(short("mopub0abcdefghijklmnop"), "mopub0abcdefgh");
        assert_eq!(short("x"), "x");
    }
}
