//! Tests of the load tool: its clients against a real server on loopback,
//! its report, and the pieces of the spawned server's setup.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use clap::Parser;
use mosaic_core::SecretKey;
use mosaic_net::ConnectOptions;
use mosaic_server::{Server, ServerConfig, ServerHandle};
use mosaic_store::{Store, StoreConfig};

use super::client::{self, IngestShape};
use super::records::{self, Shape};
use super::spawn::{self, TempDir};
use super::{Args, Report, Run, check_url, measure, thousands};

/// A server on loopback with `config`, on a fresh store in `dir`.
async fn server(dir: &TempDir, config: ServerConfig) -> ServerHandle {
    let store = Store::open(dir.path().join("store"), StoreConfig::default()).expect("a store");
    Server::start_for_tests(config, SecretKey::from_bytes(&[0x21; 32]), Arc::new(store))
        .await
        .expect("the server starts")
}

fn small(records: usize, authors: usize) -> records::Load {
    records::generate(
        Shape {
            records,
            authors,
            payload: 300,
        },
        SystemTime::now(),
        false,
    )
    .expect("the load signs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_is_accepted_then_duplicate_and_queries_find_it() {
    let dir = TempDir::new("test-accept").expect("a temp dir");
    let handle = server(&dir, ServerConfig::default()).await;
    let url = handle.url().to_owned();
    let options = ConnectOptions::default();
    let load = small(200, 10);
    assert_eq!(load.records.len(), 200);
    assert!(
        load.records.iter().all(|p| p.record.payload().len() == 300),
        "every payload has the asked size"
    );
    let authors = load.authors.clone();
    let shared = Arc::new(load.records);

    let waiting = IngestShape {
        connections: 2,
        in_flight: 1,
    };
    let first = client::ingest(
        &url,
        &options,
        shared.clone(),
        waiting,
        Arc::new(AtomicU64::new(0)),
    )
    .await
    .expect("the first run");
    assert_eq!(first.count("ACCEPTED"), 200, "{:?}", first.codes);
    assert_eq!(first.codes.len(), 1, "{:?}", first.codes);
    assert_eq!(first.errors, 0, "{:?}", first.error_messages);
    assert_eq!(first.latencies.len(), 200);

    let pipelined = IngestShape {
        connections: 10,
        in_flight: 50,
    };
    let second = client::ingest(
        &url,
        &options,
        shared.clone(),
        pipelined,
        Arc::new(AtomicU64::new(0)),
    )
    .await
    .expect("the second run");
    assert_eq!(second.count("DUPLICATE"), 200, "{:?}", second.codes);
    assert_eq!(second.count("ACCEPTED"), 0);
    assert_eq!(second.errors, 0, "{:?}", second.error_messages);

    let queries = client::queries(&url, &options, &authors, 5, 7)
        .await
        .expect("the queries");
    assert_eq!(queries.latencies.len(), 5);
    // 200 records by 10 authors: 20 each.
    assert_eq!(queries.records, vec![20; 5]);
    assert!(queries.codes.is_empty(), "{:?}", queries.codes);

    let bound = records::verify_bound(&shared).expect("the bound");
    assert!(bound > 0.0);
    let report = Report {
        server: url.clone(),
        load: Shape {
            records: 200,
            authors: 10,
            payload: 300,
        },
        bound,
        runs: vec![
            Run {
                shape: waiting,
                ingest: first,
                relay_cpu: None,
            },
            Run {
                shape: pipelined,
                ingest: second,
                relay_cpu: None,
            },
        ],
        query: Some(queries),
    };
    let text = serde_json::to_string(&report.json()).expect("JSON");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the JSON parses");
    assert_eq!(json["runs"][0]["results"]["ACCEPTED"], 200);
    assert_eq!(json["runs"][1]["results"]["DUPLICATE"], 200);
    assert_eq!(json["runs"][1]["in_flight"], 50);
    assert_eq!(json["query"]["records_per_answer"]["min"], 20);
    let targets: Vec<&str> = json["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        targets,
        [
            "10 connections x 50 in flight",
            "query author + limit 500, p99",
            "the same query through mosaic-client, verifying, p99"
        ]
    );
    // mosaic-client ran the same queries, verifying every record.
    assert!(
        json["query"]["through_mosaic_client_ms"]["p99"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let printed = report.text();
    assert!(printed.contains("results: ACCEPTED 200"), "{printed}");
    assert!(printed.contains("results: DUPLICATE 200"), "{printed}");
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("target 10 connections x 50 in flight: ")
                && (l.ends_with(" ok") || l.ends_with(" MISSED"))),
        "{printed}"
    );
    handle.shutdown().await.expect("the server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_fast_answers_are_counted_and_retried() {
    let dir = TempDir::new("test-too-fast").expect("a temp dir");
    let mut config = ServerConfig::default();
    config.limits.submissions_per_second = 500;
    config.limits.submission_burst = 10;
    let handle = server(&dir, config).await;
    let load = small(60, 3);
    let report = client::ingest(
        handle.url(),
        &ConnectOptions::default(),
        Arc::new(load.records),
        IngestShape {
            connections: 1,
            in_flight: 30,
        },
        Arc::new(AtomicU64::new(0)),
    )
    .await
    .expect("the run");
    assert_eq!(report.count("ACCEPTED"), 60, "{:?}", report.codes);
    assert!(
        report.too_fast > 0,
        "a burst of 10 refuses some of 30 in flight"
    );
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    handle.shutdown().await.expect("the server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_says_what_to_do() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let load = small(4, 2);
    let err = client::ingest(
        &format!("ws://127.0.0.1:{port}/"),
        &ConnectOptions::default(),
        Arc::new(load.records),
        IngestShape {
            connections: 1,
            in_flight: 1,
        },
        Arc::new(AtomicU64::new(0)),
    )
    .await
    .expect_err("nothing listens there");
    let message = format!("{err:#}");
    assert!(
        message.contains("is a Mosaic server listening there"),
        "{message}"
    );
}

#[test]
fn urls_without_a_websocket_scheme_are_refused() {
    assert!(check_url("ws://127.0.0.1:8135/").is_ok());
    assert!(check_url("wss://relay.example.com/").is_ok());
    let err = check_url("http://127.0.0.1:8135/").expect_err("http is not a server URL");
    assert!(err.to_string().contains("give ws://"), "{err}");
    let err = check_url("127.0.0.1:8135").expect_err("no scheme");
    assert!(err.to_string().contains("no scheme"), "{err}");
}

/// `cargo xtask bench load ...` as clap sees it.
#[derive(clap::Parser)]
struct Wrap {
    #[command(flatten)]
    args: Args,
}

#[test]
fn the_shape_options_need_a_url() {
    let wrap = Wrap::try_parse_from(["load", "--connections", "5"]).expect("parses");
    let err = measure(&wrap.args).expect_err("no --url");
    assert!(err.to_string().contains("need --url"), "{err}");
    assert!(Wrap::try_parse_from(["load", "--url", "ws://x/", "--spawn"]).is_err());
    let wrap = Wrap::try_parse_from(["load", "--url", "ftp://x/"]).expect("parses");
    let err = measure(&wrap.args).expect_err("a wrong scheme");
    assert!(err.to_string().contains("ftp"), "{err}");
    let defaults = Wrap::try_parse_from(["load"]).expect("parses").args;
    assert_eq!(
        (
            defaults.records,
            defaults.authors,
            defaults.payload,
            defaults.query_authors
        ),
        (100_000, 1_000, 300, 100)
    );
}

#[test]
fn cpu_time_is_read_after_the_command_name() {
    // Field 2 may hold spaces and parentheses; utime 250 and stime 50 ticks.
    let stat = "4242 (mosaic (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
    let cpu = spawn::cpu_from_stat(stat, 100).expect("parses");
    assert_eq!(cpu, std::time::Duration::from_secs(3));
    assert!(spawn::cpu_from_stat("4242 mosaic S 1", 100).is_err());
}

#[test]
fn the_spawned_config_names_only_real_settings() {
    let example = std::fs::read_to_string(
        crate::project_root().join("crates/mosaic-cli/config.example.toml"),
    )
    .expect("the example configuration");
    let settings = example.parse::<toml::Table>().expect("the example parses");
    let ours = spawn::CONFIG
        .parse::<toml::Table>()
        .expect("our config parses");
    for (section, value) in &ours {
        match value {
            toml::Value::Table(table) => {
                let known = settings[section].as_table().expect("a section");
                for key in table.keys() {
                    assert!(
                        known.contains_key(key),
                        "[{section}] {key} is not a setting"
                    );
                }
            }
            _ => assert!(settings.contains_key(section), "{section} is not a setting"),
        }
    }
}

#[test]
fn thousands_are_separated() {
    assert_eq!(thousands(0.0), "0");
    assert_eq!(thousands(999.4), "999");
    assert_eq!(thousands(43_245.2), "43,245");
    assert_eq!(thousands(1_000_000.0), "1,000,000");
}

#[test]
fn arguments_survive_the_trip_to_a_release_build() {
    for given in [
        vec!["load"],
        vec!["load", "--spawn", "--records", "3000", "--authors", "100"],
        vec![
            "load",
            "--url",
            "wss://example.com/",
            "--tls-ca",
            "ca.pem",
            "--connections",
            "3",
            "--in-flight",
            "7",
            "--payload",
            "10",
            "--query-authors",
            "0",
            "--json",
        ],
    ] {
        let args = Wrap::try_parse_from(&given).expect("parses").args;
        let mut argv: Vec<std::ffi::OsString> = vec!["load".into()];
        argv.extend(args.to_argv());
        let again = Wrap::try_parse_from(argv).expect("the flags parse").args;
        assert_eq!(format!("{again:?}"), format!("{args:?}"), "{given:?}");
    }
}
