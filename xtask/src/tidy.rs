//! Tidy checks over the whole workspace, run as ordinary tests so that a plain
//! `cargo test` runs them.
//!
//! They check the layering of the crates, that every Rust file opens with a
//! `//!` line, that `docs/ARCHITECTURE.md` has a heading for every crate, and
//! that no error type carries prose in a `String`. Each failure message names
//! the file and says what to change.

use std::fs;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::project_root;

/// The crates of ours each crate may depend on, in any dependency section
/// (normal, dev and build). Dependencies point down only; see
/// `docs/ARCHITECTURE.md`.
const LAYERS: &[(&str, &[&str])] = &[
    ("mosaic-core", &[]),
    ("mosaic-net", &["mosaic-core"]),
    ("mosaic-dht", &["mosaic-core"]),
    ("mosaic-store", &["mosaic-core"]),
    (
        "mosaic-server",
        &["mosaic-core", "mosaic-net", "mosaic-dht", "mosaic-store"],
    ),
    (
        "mosaic-client",
        &["mosaic-core", "mosaic-net", "mosaic-dht", "mosaic-store"],
    ),
    (
        "mosaic-cli",
        &[
            "mosaic-core",
            "mosaic-net",
            "mosaic-dht",
            "mosaic-store",
            "mosaic-server",
            "mosaic-client",
        ],
    ),
];

/// Extra edges allowed in `[dev-dependencies]` only: integration tests that
/// need a crate of the same layer as a fixture. None of these may close a
/// cycle (the other crate never depends back, in any section).
const DEV_ONLY_LAYERS: &[(&str, &[&str])] = &[
    // The client's integration tests run against real servers on loopback.
    ("mosaic-client", &["mosaic-server"]),
];

/// The only crate (besides xtask) that may depend on `anyhow`.
const ANYHOW_USER: &str = "mosaic-cli";

/// Crates that do IO; `mosaic-core` depends on none of them.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "redb",
    "mainline",
    "tokio-tungstenite",
    "socket2",
];

/// Crates only one of ours may name in `[dependencies]` or
/// `[build-dependencies]`: everything else reaches them through that crate.
/// Dev-dependencies are exempt, so tests can set up fixtures.
const OWNERS: &[(&str, &str)] = &[
    ("redb", "mosaic-store"),
    ("mainline", "mosaic-dht"),
    ("tokio-tungstenite", "mosaic-net"),
];

/// The kind of a dependency section.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Normal,
    Dev,
    Build,
}

/// One dependency as declared in a manifest.
#[derive(Debug)]
struct Dep {
    /// The section it appears in, as written in the manifest, e.g. `[dev-dependencies]`.
    section: String,
    kind: Kind,
    /// The package name (after `package = ...` renames).
    name: String,
    /// Whether it is a path dependency (directly or through the workspace).
    path: bool,
}

/// Every dependency of a manifest, including `[target.'cfg(...)'.*]` sections.
/// `workspace` is the root's `[workspace.dependencies]` table.
fn dependencies(manifest: &Table, workspace: &Table) -> Vec<Dep> {
    let mut out = Vec::new();
    collect(manifest, "", workspace, &mut out);
    if let Some(Value::Table(targets)) = manifest.get("target") {
        for (cfg, table) in targets {
            if let Value::Table(table) = table {
                collect(table, &format!("target.'{cfg}'."), workspace, &mut out);
            }
        }
    }
    out
}

fn collect(table: &Table, prefix: &str, workspace: &Table, out: &mut Vec<Dep>) {
    const SECTIONS: &[(&str, Kind)] = &[
        ("dependencies", Kind::Normal),
        ("dev-dependencies", Kind::Dev),
        ("dev_dependencies", Kind::Dev),
        ("build-dependencies", Kind::Build),
        ("build_dependencies", Kind::Build),
    ];
    for &(section, kind) in SECTIONS {
        let Some(Value::Table(deps)) = table.get(section) else {
            continue;
        };
        for (key, spec) in deps {
            let mut name = key.clone();
            let mut path = false;
            if let Value::Table(spec) = spec {
                if let Some(Value::String(package)) = spec.get("package") {
                    name = package.clone();
                }
                path |= spec.contains_key("path");
                if spec.get("workspace") == Some(&Value::Boolean(true))
                    && let Some(Value::Table(inherited)) = workspace.get(key)
                {
                    if let Some(Value::String(package)) = inherited.get("package") {
                        name = package.clone();
                    }
                    path |= inherited.contains_key("path");
                }
            }
            out.push(Dep {
                section: format!("[{prefix}{section}]"),
                kind,
                name,
                path,
            });
        }
    }
}

/// What is wrong with the manifest of `crates/<dir>`. `ours` lists the
/// package names of every crate in the workspace.
fn layering_problems(dir: &str, manifest: &Table, workspace: &Table, ours: &[&str]) -> Vec<String> {
    let file = format!("crates/{dir}/Cargo.toml");
    let mut problems = Vec::new();
    let package = manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str);
    if package != Some(dir) {
        problems.push(format!(
            "{file}: the package name must equal the directory name `{dir}`; rename one of them"
        ));
    }
    if manifest
        .get("lints")
        .and_then(|l| l.get("workspace"))
        .and_then(Value::as_bool)
        != Some(true)
    {
        problems.push(format!(
            "{file}: add `[lints]` with `workspace = true` so the workspace lints apply"
        ));
    }
    let Some(&(_, allowed)) = LAYERS.iter().find(|(name, _)| *name == dir) else {
        problems.push(format!(
            "{file}: `{dir}` has no layer: add it to LAYERS in xtask/src/tidy.rs \
             and a heading ### `crates/{dir}` to docs/ARCHITECTURE.md"
        ));
        return problems;
    };
    for dep in dependencies(manifest, workspace) {
        let name = dep.name.as_str();
        let section = &dep.section;
        let dev_only = dep.kind == Kind::Dev
            && DEV_ONLY_LAYERS
                .iter()
                .any(|(krate, extra)| *krate == dir && extra.contains(&name));
        if (dep.path || ours.contains(&name)) && !allowed.contains(&name) && !dev_only {
            let may = if allowed.is_empty() {
                "no crate of ours".to_owned()
            } else {
                allowed.join(", ")
            };
            problems.push(format!(
                "{file}: {section} has the edge {dir} -> {name}, which the layering forbids \
                 ({dir} may depend on {may}; dependencies point down only, see docs/ARCHITECTURE.md): \
                 remove it, or move the code it needs into a lower crate"
            ));
        }
        if name == "anyhow" && dir != ANYHOW_USER {
            problems.push(format!(
                "{file}: {section} lists anyhow, which only {ANYHOW_USER} and xtask may use: \
                 remove it and return the crate's own `Error` enum (thiserror) instead"
            ));
        }
        if dir == "mosaic-core" && IO_CRATES.contains(&name) {
            problems.push(format!(
                "{file}: {section} lists {name}, an IO crate; mosaic-core does no IO: \
                 remove it and move the IO into mosaic-net, mosaic-dht or mosaic-store"
            ));
        } else if dep.kind != Kind::Dev
            && let Some(&(_, owner)) = OWNERS.iter().find(|(krate, _)| *krate == name)
            && owner != dir
        {
            problems.push(format!(
                "{file}: {section} lists {name}, which only {owner} may depend on: \
                 remove it and go through {owner}'s API instead"
            ));
        }
    }
    problems
}

/// Whether a Rust file opens (after blank lines) with a `//!` line.
fn opens_with_module_doc(text: &str) -> bool {
    text.lines()
        .find(|line| !line.trim().is_empty())
        .is_some_and(|line| line.starts_with("//!"))
}

/// What is missing from or stale in `docs/ARCHITECTURE.md`, given the
/// directories in `crates/`.
fn architecture_problems(doc: &str, crate_dirs: &[&str]) -> Vec<String> {
    let headings: Vec<&str> = doc
        .lines()
        .filter(|line| line.trim_start().starts_with('#'))
        .collect();
    let mut problems = Vec::new();
    let mut expected: Vec<String> = crate_dirs.iter().map(|d| format!("crates/{d}")).collect();
    expected.push("xtask".to_owned());
    for path in &expected {
        let needle = format!("`{path}`");
        if !headings.iter().any(|h| h.contains(&needle)) {
            problems.push(format!(
                "docs/ARCHITECTURE.md: no heading for {path}: add `### {needle}` to the Code map \
                 with a few lines on what it is for"
            ));
        }
    }
    for heading in &headings {
        let mut rest = *heading;
        while let Some(at) = rest.find("`crates/") {
            let after = &rest[at + "`crates/".len()..];
            let name = after.split(['`', '/']).next().unwrap_or_default();
            if !crate_dirs.contains(&name) {
                problems.push(format!(
                    "docs/ARCHITECTURE.md: the heading `{}` names crates/{name}, which does not exist: \
                     remove or rename it",
                    heading.trim()
                ));
            }
            rest = after;
        }
    }
    problems
}

/// Error variants that carry prose rather than data, and `Result<_, String>`,
/// with their 1-based line numbers.
fn string_error_problems(text: &str) -> Vec<(usize, String)> {
    const CATCH_ALL: &[&str] = &["Other", "General", "Custom", "Message", "Msg"];
    let mut problems = Vec::new();
    // Indentation of the `enum ...Error` whose body we are in, if any.
    let mut in_error_enum: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let code = line.trim_start();
        let indent = line.len() - code.len();
        if code.starts_with("//") {
            continue;
        }
        if let Some(enum_indent) = in_error_enum {
            if indent == enum_indent && code.starts_with('}') {
                in_error_enum = None;
            } else if code.contains("(String)") {
                problems.push((
                    number,
                    "an error variant carries a bare `String`: give the failure its own variant \
                     whose fields are data (a typed value, or a named field such as \
                     `{ scheme: String }`), never prose"
                        .to_owned(),
                ));
            }
        } else if let Some(name) = enum_name(code)
            && name.ends_with("Error")
        {
            in_error_enum = Some(indent);
        }
        for variant in CATCH_ALL {
            if in_error_enum.is_none() && code.contains(&format!("{variant}(String)")) {
                problems.push((
                    number,
                    format!(
                        "`{variant}(String)` is a catch-all carrying prose: replace it with \
                         variants that name each failure and carry data"
                    ),
                ));
            }
        }
        for error in result_error_types(code) {
            if matches!(
                error,
                "String" | "std::string::String" | "&str" | "&'static str"
            ) {
                problems.push((
                    number,
                    format!(
                        "`Result<_, {error}>`: return the crate's `Error` enum (or a narrower \
                         thiserror enum that converts into it) instead"
                    ),
                ));
            }
        }
    }
    problems
}

/// The name declared by a line like `pub enum FooError {`.
fn enum_name(code: &str) -> Option<&str> {
    let at = code.find("enum ")?;
    let before = &code[..at];
    if !before.split_whitespace().all(|w| w.starts_with("pub")) {
        return None;
    }
    let after = &code[at + "enum ".len()..];
    after
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .filter(|name| !name.is_empty())
}

/// The error type of every two-argument `Result<T, E>` on a line.
fn result_error_types(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("Result<") {
        let args = &rest[at + "Result<".len()..];
        let bytes = args.as_bytes();
        let mut depth = 0usize;
        let mut comma = None;
        for (i, &byte) in bytes.iter().enumerate() {
            match byte {
                b'<' | b'(' | b'[' => depth += 1,
                b'>' if i > 0 && bytes[i - 1] == b'-' => {}
                b'>' | b')' | b']' if depth > 0 => depth -= 1,
                b'>' => {
                    if let Some(c) = comma {
                        found.push(args[c + 1..i].trim());
                    }
                    break;
                }
                b',' if depth == 0 && comma.is_none() => comma = Some(i),
                _ => {}
            }
        }
        rest = args;
    }
    found
}

/// The directories in `crates/`, sorted.
fn crate_dirs(root: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = fs::read_dir(root.join("crates"))
        .expect("crates/ is readable")
        .map(|entry| entry.expect("crates/ entry is readable"))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    dirs.sort();
    dirs
}

/// Every `.rs` file under `dir`, skipping `target` and hidden directories.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry is readable").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn parse_toml(path: &Path) -> Table {
    read(path)
        .parse()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn assert_none(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "tidy: {what}: {} problem(s):\n{}\n",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn layering() {
    let root = project_root();
    let root_manifest = parse_toml(&root.join("Cargo.toml"));
    let empty = Table::new();
    let workspace = root_manifest.get("workspace").and_then(Value::as_table);
    let workspace_deps = workspace
        .and_then(|w| w.get("dependencies"))
        .and_then(Value::as_table)
        .unwrap_or(&empty);
    let members: Vec<&str> = workspace
        .and_then(|w| w.get("members"))
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    let dirs = crate_dirs(&root);
    let mut ours: Vec<&str> = dirs.iter().map(String::as_str).collect();
    ours.push("xtask");
    let mut problems = Vec::new();
    for dir in &dirs {
        let member = format!("crates/{dir}");
        if !members.contains(&member.as_str()) {
            problems.push(format!(
                "Cargo.toml: add \"{member}\" to [workspace] members"
            ));
        }
        let manifest = root.join(&member).join("Cargo.toml");
        if !manifest.is_file() {
            problems.push(format!(
                "{member}: has no Cargo.toml; every directory in crates/ is one crate"
            ));
            continue;
        }
        problems.extend(layering_problems(
            dir,
            &parse_toml(&manifest),
            workspace_deps,
            &ours,
        ));
    }
    let xtask = parse_toml(&root.join("xtask/Cargo.toml"));
    if xtask
        .get("lints")
        .and_then(|l| l.get("workspace"))
        .and_then(Value::as_bool)
        != Some(true)
    {
        problems.push(
            "xtask/Cargo.toml: add `[lints]` with `workspace = true` so the workspace lints apply"
                .to_owned(),
        );
    }
    assert_none("layering", &problems);
}

#[test]
fn every_rust_file_opens_with_module_docs() {
    let root = project_root();
    let mut problems = Vec::new();
    for top in ["crates", "xtask", "tests"] {
        for file in rust_files(&root.join(top)) {
            if !opens_with_module_doc(&read(&file)) {
                problems.push(format!(
                    "{}: the first line must be a `//!` comment saying what the file is for; add one",
                    relative(&root, &file)
                ));
            }
        }
    }
    assert_none("module docs", &problems);
}

#[test]
fn architecture_has_a_heading_per_crate() {
    let root = project_root();
    let dirs = crate_dirs(&root);
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let doc = read(&root.join("docs/ARCHITECTURE.md"));
    assert_none("docs/ARCHITECTURE.md", &architecture_problems(&doc, &dirs));
}

#[test]
fn no_string_errors() {
    let root = project_root();
    let mut problems = Vec::new();
    for dir in crate_dirs(&root) {
        for file in rust_files(&root.join("crates").join(dir).join("src")) {
            for (line, what) in string_error_problems(&read(&file)) {
                problems.push(format!("{}:{line}: {what}", relative(&root, &file)));
            }
        }
    }
    assert_none("string errors", &problems);
}

mod tests {
    use super::*;

    const OURS: &[&str] = &[
        "mosaic-core",
        "mosaic-net",
        "mosaic-dht",
        "mosaic-store",
        "mosaic-server",
        "mosaic-client",
        "mosaic-cli",
        "xtask",
    ];

    fn workspace() -> Table {
        r#"
        mosaic-core = { path = "crates/mosaic-core" }
        mosaic-store = { path = "crates/mosaic-store" }
        storage = { path = "crates/mosaic-store", package = "mosaic-store" }
        anyhow = "1"
        redb = "4"
        tokio = "1"
        "#
        .parse()
        .expect("valid TOML")
    }

    fn problems(dir: &str, manifest: &str) -> Vec<String> {
        let manifest: Table = manifest.parse().expect("valid TOML");
        layering_problems(dir, &manifest, &workspace(), OURS)
    }

    fn manifest(name: &str, rest: &str) -> String {
        format!("[package]\nname = \"{name}\"\n[lints]\nworkspace = true\n{rest}")
    }

    #[test]
    fn allowed_edges_pass() {
        let text = manifest(
            "mosaic-server",
            "[dependencies]\nmosaic-core.workspace = true\nmosaic-store.workspace = true\n",
        );
        assert_eq!(problems("mosaic-server", &text), Vec::<String>::new());
        let text = manifest("mosaic-cli", "[dependencies]\nanyhow.workspace = true\n");
        assert_eq!(problems("mosaic-cli", &text), Vec::<String>::new());
        let text = manifest(
            "mosaic-server",
            "[dev-dependencies]\nredb.workspace = true\n",
        );
        assert_eq!(problems("mosaic-server", &text), Vec::<String>::new());
    }

    #[test]
    fn dev_only_edges_pass_only_in_dev_dependencies() {
        let text = manifest(
            "mosaic-client",
            "[dev-dependencies]\nmosaic-server.workspace = true\n",
        );
        assert_eq!(problems("mosaic-client", &text), Vec::<String>::new());
        let text = manifest(
            "mosaic-client",
            "[dependencies]\nmosaic-server.workspace = true\n",
        );
        let found = problems("mosaic-client", &text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("mosaic-client -> mosaic-server"),
            "{found:?}"
        );
        let text = manifest(
            "mosaic-server",
            "[dev-dependencies]\nmosaic-client.workspace = true\n",
        );
        assert_eq!(problems("mosaic-server", &text).len(), 1);
    }

    #[test]
    fn sideways_edge_in_dev_dependencies_is_named() {
        let text = manifest(
            "mosaic-net",
            "[dev-dependencies]\nmosaic-store.workspace = true\n",
        );
        let found = problems("mosaic-net", &text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("mosaic-net -> mosaic-store"), "{found:?}");
        assert!(found[0].contains("[dev-dependencies]"), "{found:?}");
    }

    #[test]
    fn renamed_and_target_specific_edges_are_found() {
        let text = manifest(
            "mosaic-core",
            "[target.'cfg(unix)'.build-dependencies]\nstorage.workspace = true\n",
        );
        let found = problems("mosaic-core", &text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("mosaic-core -> mosaic-store"),
            "{found:?}"
        );
        assert!(found[0].contains("cfg(unix)"), "{found:?}");
        let text = manifest(
            "mosaic-dht",
            "[dependencies]\nlocal = { path = \"../x\" }\n",
        );
        assert!(problems("mosaic-dht", &text)[0].contains("mosaic-dht -> local"));
    }

    #[test]
    fn anyhow_outside_the_cli_fails() {
        let text = manifest(
            "mosaic-store",
            "[dev-dependencies]\nanyhow.workspace = true\n",
        );
        let found = problems("mosaic-store", &text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("anyhow"), "{found:?}");
    }

    #[test]
    fn io_in_core_and_owned_crates_elsewhere_fail() {
        let text = manifest("mosaic-core", "[dependencies]\ntokio.workspace = true\n");
        assert!(problems("mosaic-core", &text)[0].contains("mosaic-core does no IO"));
        let text = manifest("mosaic-server", "[dependencies]\nredb.workspace = true\n");
        assert!(problems("mosaic-server", &text)[0].contains("only mosaic-store"));
        let text = manifest("mosaic-store", "[dependencies]\nredb.workspace = true\n");
        assert_eq!(problems("mosaic-store", &text), Vec::<String>::new());
    }

    #[test]
    fn unknown_crate_name_and_lints_are_reported() {
        let found = problems("mosaic-extra", &manifest("mosaic-extra", ""));
        assert!(found[0].contains("add it to LAYERS"), "{found:?}");
        let found = problems("mosaic-net", "[package]\nname = \"net\"\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("must equal the directory name"),
            "{found:?}"
        );
        assert!(found[1].contains("workspace = true"), "{found:?}");
    }

    #[test]
    fn module_docs_must_come_first() {
        assert!(opens_with_module_doc("//! Does things.\nfn f() {}\n"));
        assert!(opens_with_module_doc("\n\n//! Does things.\n"));
        assert!(!opens_with_module_doc("use std::fs;\n//! Late.\n"));
        assert!(!opens_with_module_doc("/// Item doc.\nfn f() {}\n"));
        assert!(!opens_with_module_doc(""));
    }

    #[test]
    fn architecture_headings_are_checked_both_ways() {
        let doc = "# Architecture\n### `crates/mosaic-core`\ntext `crates/mosaic-net`\n### `xtask`\n### `crates/mosaic-gone`\n";
        let found = architecture_problems(doc, &["mosaic-core", "mosaic-net"]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("no heading for crates/mosaic-net"),
            "{found:?}"
        );
        assert!(
            found[1].contains("crates/mosaic-gone, which does not exist"),
            "{found:?}"
        );
        let doc = "### `crates/mosaic-core`\n### `xtask`\n";
        assert_eq!(
            architecture_problems(doc, &["mosaic-core"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn string_errors_are_found() {
        let text = "\
/// Errors.
pub enum UrlError {
    /// Fine: data with a name.
    Scheme { scheme: String },
    Bad(String),
}
pub enum Segment {
    Text(String),
    Other(String),
}
fn f() -> Result<u8, String> { todo!() }
// fn g() -> Result<u8, String>
";
        let found = string_error_problems(text);
        let lines: Vec<usize> = found.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, vec![5, 9, 11], "{found:?}");
    }

    #[test]
    fn result_error_types_respect_nesting() {
        assert_eq!(
            result_error_types("fn f() -> Result<u8, String>"),
            vec!["String"]
        );
        assert_eq!(
            result_error_types("Result<(u8, String), Error> and io::Result<Vec<u8>>"),
            vec!["Error"]
        );
        assert_eq!(
            result_error_types("Result<HashMap<String, String>, crate::Error>"),
            vec!["crate::Error"]
        );
        assert_eq!(
            result_error_types("Result<Box<dyn Fn(u8) -> u8>, &'static str>"),
            vec!["&'static str"]
        );
    }
}
