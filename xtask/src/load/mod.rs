//! `cargo xtask bench load`: a load tool anyone can point at a Mosaic server.
//!
//! It signs a load of microblog records in advance (outside the timed part),
//! submits it over several connections with a window of submissions in
//! flight on each, and prints records/s, send-to-result latency and the
//! results by code; then it times author queries. Without `--url` it builds
//! and starts a release `mosaic serve` of its own, runs the three ingest
//! shapes of the performance targets on fresh stores, measures the server's
//! CPU time per accepted record, and prints one line per target.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use mosaic_net::{ClientTls, ConnectOptions};
use serde_json::{Value, json};

mod client;
mod records;
mod spawn;
#[cfg(test)]
mod tests;

use client::{IngestReport, IngestShape, QueryReport, quantile_ms};
use records::{Load, Prepared, Shape};

/// The ingest shapes of the targets, run by `--spawn` in this order.
const SPAWN_SHAPES: [IngestShape; 3] = [
    IngestShape {
        connections: 1,
        in_flight: 1,
    },
    IngestShape {
        connections: 10,
        in_flight: 1,
    },
    IngestShape {
        connections: 10,
        in_flight: 50,
    },
];

const LOAD_HELP: &str = "\
The load: --records microblog records (kind microblog root) of --payload bytes,
by --authors authors (record i by author i mod authors), timestamps spread
evenly over the day before now. They are signed on every core before anything
is timed. Record i goes to connection i mod connections; each connection keeps
--in-flight submissions open (1: each waits for its result) and matches the
Submission Results by id prefix.

Printed: records/s (final results per second, first send to last result),
submission latency p50/p99 (send to result), the results by code, the TOO_FAST
answers and the errors; then the latency of --query-authors queries (authors =
one random author of the load, limit 500; send to Query Closed, p50/p99) and
the records per answer. Progress goes to standard error, figures to standard
output; --json prints them as one JSON object.

Rate limits: a server with the default configuration answers TOO_FAST past
1,000 submissions/s (burst 2,000) per connection and 2,000/s (burst 4,000)
per IP address, and past 200 reads/s (burst 1,000) per connection. A record
refused TOO_FAST is sent again after a backoff (10 ms, doubling per refusal of
the same record, at most 1 s); the refusals are counted and printed. To
measure the server rather than its limits, raise them in its [limits]
section (see `mosaic serve --print-config`).

The load runs in a release build of xtask (started with cargo run --release
unless MOSAIC_LOAD_IN_PLACE=1 is set). The clients read lean: received
records are counted, not decoded, and no
signature is checked, so that a client sharing the server's machine is not
measured with it. The verify bound is `Record::from_bytes` (one signature
check each) on the same records in 2 OS threads, on the machine running this
tool; ratios to it mean most when the server runs on the same kind of
machine.

Without --url (or with --spawn) the tool builds a release `mosaic serve`
(cargo build --release -p mosaic-cli), runs the three shapes of the targets
(1 connection waiting, 10 connections waiting, 10 connections x 50 in
flight), each on a fresh server and store with its own third of the records,
then loads the rest into the last server and queries it. The spawned server
has the default configuration but for the rate limits and the connections per
IP (all clients are on 127.0.0.1). Its CPU time (utime + stime from
/proc/PID/stat, before and after each shape) gives the relay CPU per accepted
record, for each shape and for the three together (the target's figure).
Then one line per target measured:
  target NAME: VALUE (goal X) ok|MISSED

Examples:
  cargo xtask bench load
  cargo xtask bench load --records 20000 --authors 200
  cargo xtask bench load --url ws://127.0.0.1:8135/ --connections 10 --in-flight 50
  cargo xtask bench load --url wss://relay.example.com/ --tls-ca ca.pem --json";

/// Arguments of `cargo xtask bench load`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = LOAD_HELP)]
pub struct Args {
    /// The server to load: ws://host:port/, wss://host/ or wss://host:port/. Without it,
    /// a release `mosaic serve` is built and started (as with --spawn).
    #[arg(long, value_name = "URL", conflicts_with = "spawn")]
    pub url: Option<String>,
    /// Build and start a release `mosaic serve` on a temporary data directory
    /// and run the three ingest shapes of the targets against it.
    #[arg(long)]
    pub spawn: bool,
    /// With --spawn: this `mosaic` binary instead of building one.
    #[arg(long, value_name = "FILE")]
    pub bin: Option<PathBuf>,
    /// PEM file of a private CA (or self-signed certificate) to trust for
    /// wss://, besides the Mozilla roots.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Connections submitting at once [default: 10]; with --url only.
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Submissions each connection keeps in flight; 1 waits for each result
    /// before sending the next [default: 1]; with --url only.
    #[arg(long, value_name = "K")]
    pub in_flight: Option<usize>,
    /// Records in the load.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub records: usize,
    /// Distinct authors of the load.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub authors: usize,
    /// Payload bytes per record.
    #[arg(long, value_name = "BYTES", default_value_t = 300)]
    pub payload: usize,
    /// Author queries timed after the load (0: none).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub query_authors: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One ingest run.
#[derive(Debug)]
pub struct Run {
    /// Its shape.
    pub shape: IngestShape,
    /// What it measured.
    pub ingest: IngestReport,
    /// The spawned server's CPU time during the run.
    pub relay_cpu: Option<Duration>,
}

impl Run {
    /// Relay CPU per accepted record, in microseconds.
    fn cpu_per_accepted_us(&self) -> Option<f64> {
        let accepted = self.ingest.count("ACCEPTED");
        self.relay_cpu
            .filter(|_| accepted > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / accepted as f64)
    }
}

/// Everything one invocation measured.
#[derive(Debug)]
pub struct Report {
    /// The server's URL, or how it was started.
    pub server: String,
    /// The load.
    pub load: Shape,
    /// The 2-thread single-verify bound, records/s.
    pub bound: f64,
    /// The ingest runs.
    pub runs: Vec<Run>,
    /// The timed queries, if any.
    pub query: Option<QueryReport>,
}

/// One target of the performance goals.
struct TargetLine {
    name: &'static str,
    value: f64,
    shown: String,
    goal: &'static str,
    ok: bool,
}

impl Report {
    /// Relay CPU per accepted record over every run that measured it, in
    /// microseconds.
    fn cpu_per_accepted_us(&self) -> Option<f64> {
        let (cpu, accepted) = self
            .runs
            .iter()
            .filter_map(|r| r.relay_cpu.map(|c| (c, r.ingest.count("ACCEPTED"))))
            .fold(None, |sum: Option<(Duration, u64)>, (c, a)| {
                let (sc, sa) = sum.unwrap_or_default();
                Some((sc + c, sa + a))
            })?;
        (accepted > 0).then(|| cpu.as_secs_f64() * 1e6 / accepted as f64)
    }

    /// The targets this report measured.
    fn targets(&self) -> Vec<TargetLine> {
        let mut out = Vec::new();
        let rate_of = |shape: IngestShape| {
            self.runs
                .iter()
                .find(|r| r.shape == shape)
                .map(|r| r.ingest.rate())
        };
        if let Some(rate) = rate_of(SPAWN_SHAPES[1]) {
            let ratio = rate / self.bound;
            out.push(TargetLine {
                name: "10 connections, each waiting for its result",
                value: ratio,
                shown: format!("{ratio:.3} of the verify bound"),
                goal: ">= 0.6",
                ok: ratio >= 0.6,
            });
        }
        if let Some(rate) = rate_of(SPAWN_SHAPES[0]) {
            out.push(TargetLine {
                name: "1 connection, waiting",
                value: rate,
                shown: format!("{}/s", thousands(rate)),
                goal: ">= 2,400/s",
                ok: rate >= 2_400.0,
            });
        }
        if let Some(rate) = rate_of(SPAWN_SHAPES[2]) {
            let ratio = rate / self.bound;
            out.push(TargetLine {
                name: "10 connections x 50 in flight",
                value: ratio,
                shown: format!("{ratio:.3} of the verify bound"),
                goal: ">= 1.0",
                ok: ratio >= 1.0,
            });
        }
        if let Some(q) = self.query.as_ref().filter(|q| !q.latencies.is_empty()) {
            let p99 = quantile_ms(&q.latencies, 0.99);
            out.push(TargetLine {
                name: "query author + limit 500, p99",
                value: p99,
                shown: format!("{p99:.2} ms"),
                goal: "<= 0.6 ms",
                ok: p99 <= 0.6,
            });
        }
        if let Some(q) = self
            .query
            .as_ref()
            .filter(|q| !q.latencies.is_empty() && !q.verified.is_empty())
        {
            let server = quantile_ms(&q.latencies, 0.99);
            let verified = quantile_ms(&q.verified, 0.99);
            let ratio = verified / server.max(f64::MIN_POSITIVE);
            out.push(TargetLine {
                name: "the same query through mosaic-client, verifying, p99",
                value: ratio,
                shown: format!("{verified:.2} ms = {ratio:.1}x the lean client's"),
                goal: "<= 2x",
                ok: ratio <= 2.0,
            });
        }
        if let Some(us) = self.cpu_per_accepted_us() {
            out.push(TargetLine {
                name: "relay CPU per accepted record",
                value: us,
                shown: format!("{us:.1} us"),
                goal: "<= 60 us",
                ok: us <= 60.0,
            });
        }
        out
    }

    /// Records that got no final result, over all runs.
    pub fn errors(&self) -> u64 {
        self.runs.iter().map(|r| r.ingest.errors).sum()
    }

    /// The figures as text, one per line.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let l = &self.load;
        s += &format!(
            "load: {} — {} records of {} B payload by {} authors\n",
            self.server,
            thousands(l.records as f64),
            l.payload,
            thousands(l.authors as f64)
        );
        s += &format!(
            "verify bound (Record::from_bytes, 2 threads): {} records/s\n",
            thousands(self.bound)
        );
        for run in &self.runs {
            let i = &run.ingest;
            s += &format!(
                "ingest, {}: {} records in {:.2} s = {} records/s ({:.3} of the verify bound)\n",
                run.shape.describe(),
                thousands(i.records as f64),
                i.elapsed.as_secs_f64(),
                thousands(i.rate()),
                i.rate() / self.bound
            );
            s += &format!(
                "  latency p50/p99: {:.2}/{:.2} ms\n",
                quantile_ms(&i.latencies, 0.5),
                quantile_ms(&i.latencies, 0.99)
            );
            let codes: Vec<String> = i.codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            s += &format!(
                "  results: {}\n",
                if codes.is_empty() {
                    "none".to_owned()
                } else {
                    codes.join(", ")
                }
            );
            s += &format!(
                "  refused TOO_FAST (then retried): {}\n  errors: {}\n",
                i.too_fast, i.errors
            );
            for m in &i.error_messages {
                s += &format!("    {m}\n");
            }
            if let Some(us) = run.cpu_per_accepted_us() {
                s += &format!("  relay CPU per accepted record: {us:.1} us\n");
            }
        }
        if let Some(q) = &self.query {
            let (min, max, mean) = spread(&q.records);
            s += &format!(
                "query author + limit 500: {} queries, p50/p99 {:.2}/{:.2} ms, records per answer {mean:.1} (min {min}, max {max})\n",
                q.latencies.len(),
                quantile_ms(&q.latencies, 0.5),
                quantile_ms(&q.latencies, 0.99)
            );
            for (code, n) in &q.codes {
                s += &format!("  Query Closed {code}: {n}\n");
            }
            if !q.verified.is_empty() {
                s += &format!(
                    "  the same {} queries through mosaic-client (every record verified): p50/p99 {:.2}/{:.2} ms\n",
                    q.verified.len(),
                    quantile_ms(&q.verified, 0.5),
                    quantile_ms(&q.verified, 0.99)
                );
            }
        }
        if let Some(us) = self.cpu_per_accepted_us() {
            s += &format!("relay CPU per accepted record: {us:.1} us\n");
        }
        let refused: u64 = self.runs.iter().map(|r| r.ingest.too_fast).sum();
        if refused > 0 {
            s += &format!(
                "note: the server refused {refused} submissions TOO_FAST: the ingest figures \
                 measure its rate limits (raise them in its [limits] to measure the server)\n"
            );
        }
        for t in self.targets() {
            s += &format!(
                "target {}: {} (goal {}) {}\n",
                t.name,
                t.shown,
                t.goal,
                if t.ok { "ok" } else { "MISSED" }
            );
        }
        s
    }

    /// The figures as one JSON object.
    pub fn json(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|run| {
                let i = &run.ingest;
                json!({
                    "shape": run.shape.describe(),
                    "connections": run.shape.connections,
                    "in_flight": run.shape.in_flight,
                    "records": i.records,
                    "seconds": i.elapsed.as_secs_f64(),
                    "records_per_second": i.rate(),
                    "of_verify_bound": i.rate() / self.bound,
                    "latency_ms": {
                        "p50": quantile_ms(&i.latencies, 0.5),
                        "p99": quantile_ms(&i.latencies, 0.99),
                    },
                    "results": i.codes,
                    "too_fast_refusals": i.too_fast,
                    "errors": i.errors,
                    "error_messages": i.error_messages,
                    "relay_cpu_us_per_accepted": run.cpu_per_accepted_us(),
                })
            })
            .collect();
        let query = self.query.as_ref().map(|q| {
            let (min, max, mean) = spread(&q.records);
            json!({
                "queries": q.latencies.len(),
                "limit": client::QUERY_LIMIT,
                "latency_ms": {
                    "p50": quantile_ms(&q.latencies, 0.5),
                    "p99": quantile_ms(&q.latencies, 0.99),
                },
                "records_per_answer": { "mean": mean, "min": min, "max": max },
                "not_success": q.codes,
                "through_mosaic_client_ms": {
                    "p50": quantile_ms(&q.verified, 0.5),
                    "p99": quantile_ms(&q.verified, 0.99),
                },
            })
        });
        let targets: Vec<Value> = self
            .targets()
            .iter()
            .map(|t| json!({ "name": t.name, "value": t.value, "goal": t.goal, "ok": t.ok }))
            .collect();
        json!({
            "server": self.server,
            "load": {
                "records": self.load.records,
                "authors": self.load.authors,
                "payload_bytes": self.load.payload,
            },
            "verify_bound_per_second": self.bound,
            "runs": runs,
            "query": query,
            "relay_cpu_us_per_accepted": self.cpu_per_accepted_us(),
            "targets": targets,
        })
    }
}

/// Min, max and mean of counts.
fn spread(counts: &[usize]) -> (usize, usize, f64) {
    let min = counts.iter().copied().min().unwrap_or(0);
    let max = counts.iter().copied().max().unwrap_or(0);
    let mean = counts.iter().sum::<usize>() as f64 / counts.len().max(1) as f64;
    (min, max, mean)
}

/// A whole number with thousands separators: 43245.2 -> "43,245".
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Checks the scheme of a server URL, saying what to give instead.
fn check_url(url: &str) -> Result<()> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("ws" | "wss" | "mosaicwss") => Ok(()),
        Some(other) => bail!(
            "--url {url}: the scheme `{other}` is not a Mosaic server's: give ws://host:port/ \
             (plain) or wss://host[:port]/ (TLS)"
        ),
        None => bail!(
            "--url {url}: no scheme: give ws://host:port/ (plain) or wss://host[:port]/ (TLS)"
        ),
    }
}

/// Connection options: the defaults, trusting `--tls-ca` if given.
fn connect_options(args: &Args) -> Result<ConnectOptions> {
    let mut options = ConnectOptions::default();
    if let Some(path) = &args.tls_ca {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read --tls-ca {}", path.display()))?;
        let tls = ClientTls::with_roots(&pem, &path.display().to_string()).with_context(|| {
            format!(
                "--tls-ca {}: give a PEM file of CA certificates",
                path.display()
            )
        })?;
        options.tls = Some(tls);
    }
    Ok(options)
}

/// Set to run the load in the build at hand even when it is unoptimised;
/// the release build started by [`rerun_in_release`] has it set.
const IN_PLACE: &str = "MOSAIC_LOAD_IN_PLACE";

/// Runs `cargo xtask bench load`.
pub fn run(args: Args) -> Result<ExitCode> {
    if cfg!(debug_assertions) && std::env::var_os(IN_PLACE).is_none() {
        return rerun_in_release(&args);
    }
    let report = measure(&args)?;
    let mut out = std::io::stdout();
    if args.json {
        writeln!(out, "{}", report.json())?;
    } else {
        write!(out, "{}", report.text())?;
    }
    out.flush()?;
    let errors = report.errors();
    if errors > 0 {
        eprintln!(
            "load: {errors} errors (records without a result, or answers that matched nothing): \
             see the messages above; the figures are incomplete"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the same command in a release build of xtask: `cargo xtask` is a
/// debug build, and unoptimised clients on the server's cores (and an
/// unoptimised verify bound) would be measured along with the server.
fn rerun_in_release(args: &Args) -> Result<ExitCode> {
    let mut command = std::process::Command::new(crate::cargo());
    command
        .current_dir(crate::project_root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-j",
            "2",
            "-p",
            "xtask",
            "--",
        ])
        .args(["bench", "load"])
        .args(args.to_argv())
        .env(IN_PLACE, "1");
    eprintln!(
        "load: running in a release build of xtask: cargo run --release -p xtask -- bench load ... \
         (set {IN_PLACE}=1 to run this build as it is)"
    );
    let status = command
        .status()
        .context("cannot start cargo run --release -p xtask")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

impl Args {
    /// The command-line flags that give these arguments back (after
    /// `bench load`), so that another build can run the same load.
    fn to_argv(&self) -> Vec<std::ffi::OsString> {
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        let mut flag = |name: &str, value: Option<std::ffi::OsString>| {
            argv.push(name.into());
            if let Some(value) = value {
                argv.push(value);
            }
        };
        if let Some(url) = &self.url {
            flag("--url", Some(url.into()));
        }
        if self.spawn {
            flag("--spawn", None);
        }
        if let Some(bin) = &self.bin {
            flag("--bin", Some(bin.into()));
        }
        if let Some(ca) = &self.tls_ca {
            flag("--tls-ca", Some(ca.into()));
        }
        if let Some(n) = self.connections {
            flag("--connections", Some(n.to_string().into()));
        }
        if let Some(k) = self.in_flight {
            flag("--in-flight", Some(k.to_string().into()));
        }
        flag("--records", Some(self.records.to_string().into()));
        flag("--authors", Some(self.authors.to_string().into()));
        flag("--payload", Some(self.payload.to_string().into()));
        flag(
            "--query-authors",
            Some(self.query_authors.to_string().into()),
        );
        if self.json {
            flag("--json", None);
        }
        argv
    }
}

/// Takes every figure `args` asks for.
pub fn measure(args: &Args) -> Result<Report> {
    if let Some(url) = &args.url {
        check_url(url)?;
    } else if args.connections.is_some() || args.in_flight.is_some() {
        bail!(
            "--connections and --in-flight need --url: with a spawned server the three shapes \
             of the targets run (1 connection, 10, and 10 x 50 in flight)"
        );
    }
    if args.url.is_none() && args.tls_ca.is_some() {
        bail!("--tls-ca needs --url: the spawned server speaks plain ws:// on loopback");
    }
    let shape = Shape {
        records: args.records,
        authors: args.authors,
        payload: args.payload,
    };
    let options = connect_options(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match &args.url {
        Some(url) => {
            // Say so now if the server cannot be reached, before signing.
            runtime.block_on(async {
                let (sender, _) = client::open(url, &options).await?;
                sender.close(mosaic_core::ResultCode::SUCCESS).await;
                anyhow::Ok(())
            })?;
            let ingest = IngestShape {
                connections: args.connections.unwrap_or(10).max(1),
                in_flight: args.in_flight.unwrap_or(1).max(1),
            };
            let load = records::generate(shape, SystemTime::now(), true)?;
            eprintln!("load: measuring the verify bound");
            let bound = records::verify_bound(&load.records)?;
            let authors = load.authors.clone();
            let records = Arc::new(load.records);
            runtime.block_on(async {
                let run = ingest_run(url, &options, records, ingest).await?;
                let query = timed_queries(url, &options, &authors, args.query_authors).await?;
                Ok(Report {
                    server: url.clone(),
                    load: shape,
                    bound,
                    runs: vec![run],
                    query,
                })
            })
        }
        None => spawned(args, shape, &runtime),
    }
}

/// One ingest run with progress on standard error.
pub async fn ingest_run(
    url: &str,
    options: &ConnectOptions,
    records: Arc<Vec<Prepared>>,
    shape: IngestShape,
) -> Result<Run> {
    let done = Arc::new(AtomicU64::new(0));
    let total = records.len();
    let name = shape.describe();
    let ticker = {
        let done = done.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprint!(
                    "\rload: {name}: {}/{total} results",
                    done.load(Ordering::Relaxed)
                );
                let _ = std::io::stderr().flush();
            }
        })
    };
    eprintln!("load: {name}: {total} records");
    let ingest = client::ingest(url, options, records, shape, done).await;
    ticker.abort();
    let ingest = ingest?;
    eprintln!(
        "\rload: {name}: {} records/s                    ",
        thousands(ingest.rate())
    );
    Ok(Run {
        shape,
        ingest,
        relay_cpu: None,
    })
}

/// The timed queries, unless `count` is 0.
async fn timed_queries(
    url: &str,
    options: &ConnectOptions,
    authors: &[mosaic_core::PublicKey],
    count: usize,
) -> Result<Option<QueryReport>> {
    if count == 0 {
        return Ok(None);
    }
    eprintln!(
        "load: {count} author queries, limit {}",
        client::QUERY_LIMIT
    );
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    Ok(Some(
        client::queries(url, options, authors, count, seed).await?,
    ))
}

/// `--spawn`: the three shapes on fresh servers, then the queries.
fn spawned(args: &Args, shape: Shape, runtime: &tokio::runtime::Runtime) -> Result<Report> {
    let bin = match &args.bin {
        Some(bin) => bin.clone(),
        None => spawn::build_release()?,
    };
    anyhow::ensure!(
        bin.is_file(),
        "{} does not exist: build it, or leave out --bin",
        bin.display()
    );
    let Load { records, authors } = records::generate(shape, SystemTime::now(), true)?;
    eprintln!("load: measuring the verify bound");
    let bound = records::verify_bound(&records)?;
    let shares = split(records, SPAWN_SHAPES.len());
    let options = ConnectOptions::default();
    let mut runs = Vec::new();
    let mut last = None;
    for (n, (ingest, share)) in SPAWN_SHAPES.iter().zip(&shares).enumerate() {
        let server = spawn::Spawned::start(&bin, &format!("shape{n}"))?;
        let before = server.cpu_time()?;
        let mut run =
            runtime.block_on(ingest_run(server.url(), &options, share.clone(), *ingest))?;
        run.relay_cpu = Some(server.cpu_time()?.saturating_sub(before));
        runs.push(run);
        if n + 1 < SPAWN_SHAPES.len() {
            server.stop()?;
        } else {
            last = Some(server);
        }
    }
    let query = match last {
        Some(server) if args.query_authors > 0 => {
            let query = runtime.block_on(async {
                eprintln!("load: loading the other shares into the last server (not timed)");
                for share in &shares[..shares.len() - 1] {
                    let fill = client::ingest(
                        server.url(),
                        &options,
                        share.clone(),
                        SPAWN_SHAPES[2],
                        Arc::default(),
                    )
                    .await?;
                    if fill.errors > 0 || fill.count("ACCEPTED") != share.len() as u64 {
                        bail!(
                            "loading the rest of the records for the queries went wrong: {:?} {:?}",
                            fill.codes,
                            fill.error_messages
                        );
                    }
                }
                timed_queries(server.url(), &options, &authors, args.query_authors).await
            })?;
            server.stop()?;
            query
        }
        Some(server) => {
            server.stop()?;
            None
        }
        None => None,
    };
    Ok(Report {
        server: format!("a spawned release `mosaic serve` ({})", bin.display()),
        load: shape,
        bound,
        runs,
        query,
    })
}

/// Splits `records` into `n` contiguous shares of (nearly) equal size.
fn split(records: Vec<Prepared>, n: usize) -> Vec<Arc<Vec<Prepared>>> {
    let size = records.len().div_ceil(n.max(1)).max(1);
    let mut shares = Vec::with_capacity(n);
    let mut rest = records.into_iter();
    for _ in 0..n {
        shares.push(Arc::new(rest.by_ref().take(size).collect()));
    }
    shares
}
