//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! The steps are formatting, clippy with warnings denied, the tests, the docs
//! with warnings denied, the interoperability vectors, the end-to-end run and
//! a quick benchmark.
//! `.ci/run` calls this and nothing else, so running it locally is running CI.

use std::ffi::OsString;
use std::fmt;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use crate::{bench, cargo, e2e, interop, project_root};

/// Arguments of `cargo xtask ci`.
#[derive(clap::Args)]
pub struct Args {
    /// Skip a step; may be repeated.
    #[arg(long, value_enum, value_name = "STEP")]
    pub skip: Vec<Step>,
    /// Skip the benchmark run (the same as `--skip bench`).
    #[arg(long)]
    pub no_bench: bool,
}

/// One step of the CI run.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Step {
    /// `cargo fmt --all -- --check`.
    Fmt,
    /// `cargo clippy --workspace --all-targets -j2 -- -D warnings`.
    Clippy,
    /// `cargo test --workspace -j2`, which includes the tidy checks.
    Test,
    /// `cargo doc --workspace --no-deps -j2` with `RUSTDOCFLAGS=-D warnings`.
    Doc,
    /// `cargo xtask interop`, run in this process.
    Interop,
    /// `cargo xtask e2e` on the debug build, run in this process.
    E2e,
    /// `cargo xtask bench core --quick`, skipped while that bench does not exist.
    Bench,
}

impl Step {
    /// Every step, in the order they run.
    const ALL: [Step; 7] = [
        Step::Fmt,
        Step::Clippy,
        Step::Test,
        Step::Doc,
        Step::Interop,
        Step::E2e,
        Step::Bench,
    ];

    /// The step's name, as `--skip` spells it.
    fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Test => "test",
            Step::Doc => "doc",
            Step::Interop => "interop",
            Step::E2e => "e2e",
            Step::Bench => "bench",
        }
    }

    /// What the step runs, for its header.
    fn describe(self) -> &'static str {
        match self {
            Step::Fmt => "cargo fmt --all -- --check",
            Step::Clippy => "cargo clippy --workspace --all-targets -j2 -- -D warnings",
            Step::Test => "cargo test --workspace -j2",
            Step::Doc => "RUSTDOCFLAGS='-D warnings' cargo doc --workspace --no-deps -j2",
            Step::Interop => "cargo xtask interop",
            Step::E2e => "cargo xtask e2e --debug (cargo build -j2)",
            Step::Bench => "cargo xtask bench core --quick",
        }
    }
}

/// How one step ended.
enum Outcome {
    Passed,
    Skipped(&'static str),
    Failed(String),
}

/// Runs `cargo xtask ci`.
pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let total = Step::ALL.len();
    let (mut passed, mut skipped) = (0, Vec::new());
    for (index, step) in Step::ALL.into_iter().enumerate() {
        let name = step.name();
        println!("==> ci [{}/{total}] {name}: {}", index + 1, step.describe());
        let skip = args.skip.contains(&step) || (step == Step::Bench && args.no_bench);
        let step_started = Instant::now();
        let outcome = if skip {
            Outcome::Skipped("skipped on request")
        } else {
            run_step(step)?
        };
        let took = Elapsed(step_started.elapsed());
        match outcome {
            Outcome::Passed => {
                passed += 1;
                println!("==> ci: {name} passed in {took}");
            }
            Outcome::Skipped(why) => {
                println!("==> ci: {name} skipped: {why}");
                skipped.push(name);
            }
            Outcome::Failed(why) => {
                println!("==> ci: {name} FAILED after {took}: {why}");
                println!(
                    "ci: {passed} steps passed, step {name} failed ({})",
                    Elapsed(started.elapsed())
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(", skipped: {}", skipped.join(", "))
    };
    println!(
        "ci: {passed} steps passed{skipped} ({})",
        Elapsed(started.elapsed())
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs one step. An error means the step could not be started at all.
fn run_step(step: Step) -> Result<Outcome> {
    match step {
        Step::Fmt => cargo_step(&["fmt", "--all", "--", "--check"], None),
        Step::Clippy => cargo_step(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "-j2",
                "--",
                "-D",
                "warnings",
            ],
            None,
        ),
        Step::Test => cargo_step(&["test", "--workspace", "-j2"], None),
        Step::Doc => {
            let mut flags = std::env::var_os("RUSTDOCFLAGS").unwrap_or_default();
            if !flags.is_empty() {
                flags.push(" ");
            }
            flags.push("-D warnings");
            cargo_step(
                &["doc", "--workspace", "--no-deps", "-j2"],
                Some(("RUSTDOCFLAGS", flags)),
            )
        }
        Step::Interop => interop_step(),
        Step::E2e => Ok(match e2e::run_ci() {
            Ok(code) if code == ExitCode::SUCCESS => Outcome::Passed,
            Ok(_) => Outcome::Failed("some end-to-end steps failed (listed above)".to_owned()),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        }),
        Step::Bench => match bench::one(bench::Target::Core, true) {
            Ok(bench::Outcome::Ran) => Ok(Outcome::Passed),
            Ok(bench::Outcome::NotBuilt) => Ok(Outcome::Skipped(
                "crates/mosaic-core/benches/core.rs does not exist yet",
            )),
            Err(e) => Ok(Outcome::Failed(format!("{e:#}"))),
        },
    }
}

/// Runs `cargo <args>` from the workspace root with its output streamed.
fn cargo_step(args: &[&str], env: Option<(&str, OsString)>) -> Result<Outcome> {
    let mut command = Command::new(cargo());
    command.current_dir(project_root()).args(args);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let status = command
        .status()
        .with_context(|| format!("starting cargo {}", args.join(" ")))?;
    Ok(if status.success() {
        Outcome::Passed
    } else {
        Outcome::Failed(format!("cargo {} exited with {status}", args.join(" ")))
    })
}

/// Runs the interop checks in this process, with their default arguments
/// (vectors from `$MOSAIC_VECTORS` or `../shared/vectors`).
fn interop_step() -> Result<Outcome> {
    /// Parses `interop::Args` from an empty command line, so every field
    /// takes the default `cargo xtask interop` would give it.
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        args: interop::Args,
    }
    let defaults = Defaults::try_parse_from(["interop"]).context("default interop arguments")?;
    Ok(match interop::run(defaults.args) {
        Ok(code) if code == ExitCode::SUCCESS => Outcome::Passed,
        Ok(_) => Outcome::Failed("some vectors failed (listed above)".to_owned()),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    })
}

/// A duration printed as `12.3s` or `4m 05s`.
struct Elapsed(Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs_f64();
        if seconds < 60.0 {
            write!(f, "{seconds:.1}s")
        } else {
            let whole = self.0.as_secs();
            write!(f, "{}m {:02}s", whole / 60, whole % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_prints_seconds_then_minutes() {
        assert_eq!(Elapsed(Duration::from_millis(4_240)).to_string(), "4.2s");
        assert_eq!(Elapsed(Duration::from_secs(59)).to_string(), "59.0s");
        assert_eq!(Elapsed(Duration::from_secs(65)).to_string(), "1m 05s");
        assert_eq!(Elapsed(Duration::from_secs(1_500)).to_string(), "25m 00s");
    }

    #[test]
    fn skip_flags_parse_to_steps() {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: Args,
        }
        let wrap = Wrap::try_parse_from(["ci", "--skip", "doc", "--skip", "fmt", "--no-bench"])
            .expect("valid flags parse");
        assert_eq!(wrap.args.skip, vec![Step::Doc, Step::Fmt]);
        assert!(wrap.args.no_bench);
        assert!(Wrap::try_parse_from(["ci", "--skip", "lint"]).is_err());
    }

    #[test]
    fn step_names_match_their_skip_spelling() {
        use clap::ValueEnum;
        for step in Step::ALL {
            let parsed = Step::from_str(step.name(), false).expect("name parses");
            assert_eq!(parsed, step);
        }
    }
}
