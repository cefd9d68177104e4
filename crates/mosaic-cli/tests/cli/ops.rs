//! Operating a running `mosaic serve`: `mosaic admin` and `mosaic store`
//! through its admin socket and offline on its stopped store, with the same
//! output; SIGHUP reloads.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mosaic_core::{
    FilterBuilder, Kind, Message, Nonce, OwnedRecord, QueryId, RecordBuilder, ResultCode,
    SecretKey, Timestamp,
};
use mosaic_net::{ConnectOptions, Connection, connect};
use mosaic_store::{Store, StoreConfig};

use super::Dir;

/// A running `mosaic serve --no-dht` whose log lines are collected; killed
/// on drop.
struct Serve {
    child: Child,
    url: String,
    key: String,
    log: mpsc::Receiver<String>,
}

impl Serve {
    fn start(data: &Path, config: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(["serve", "--no-dht", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "mosaic=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (key, url) = super::read_banner(&mut lines);
        assert!(url.starts_with("ws://"), "serve did not start");
        std::thread::spawn(move || lines.for_each(drop));
        Serve {
            child,
            url,
            key,
            log,
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for a log line containing `words`; returns it.
    fn wait_for_log(&self, words: &str) -> String {
        loop {
            match self.log.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains(words) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {words:?}: {e}"),
            }
        }
    }

    /// SIGTERM, and waits for a clean exit.
    fn stop(mut self) {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit status {status}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn author() -> SecretKey {
    SecretKey::from_bytes(&[5; 32])
}

fn post(key: &SecretKey, i: u64) -> OwnedRecord {
    RecordBuilder::new(
        Kind::MICROBLOG_ROOT,
        Timestamp::from_nanos(1_000 + i).unwrap(),
    )
    .nonce(Nonce::from_key(&i.to_be_bytes()))
    .payload(b"operated")
    .build(key)
    .unwrap()
}

/// A data directory whose store holds `n` records of [`author`].
fn data_with(dir: &Dir, n: u64) -> PathBuf {
    let data = dir.path("data");
    let store = Store::open(data.join("store"), StoreConfig::default()).unwrap();
    for i in 0..n {
        store
            .insert(&post(&author(), i), Timestamp::from_nanos(9_000).unwrap())
            .unwrap();
    }
    data
}

async fn recv(conn: &mut Connection) -> Message {
    tokio::time::timeout(Duration::from_secs(10), conn.recv())
        .await
        .expect("no answer within 10 s")
        .unwrap()
        .expect("connection closed")
        .message
        .unwrap()
}

/// How many records a query of the author's records returns.
async fn count(conn: &mut Connection, id: u16) -> usize {
    let filter = FilterBuilder::new()
        .authors([author().public()])
        .build()
        .unwrap();
    conn.send(&Message::Query {
        query_id: QueryId(id),
        limit: 0,
        filter,
    })
    .await
    .unwrap();
    let mut n = 0;
    loop {
        match recv(conn).await {
            Message::Record { .. } => n += 1,
            Message::QueryClosed { .. } => return n,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn submit(conn: &mut Connection, record: &OwnedRecord) -> ResultCode {
    conn.send(&Message::Submission {
        record: record.clone(),
    })
    .await
    .unwrap();
    match recv(conn).await {
        Message::SubmissionResult { code, .. } => code,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn admin_and_store_commands_work_live_and_offline_alike() {
    let dir = Dir::new("ops");
    let data = data_with(&dir, 3);
    let d = data.to_str().unwrap().to_owned();
    let config = dir.path("server.toml");
    std::fs::write(&config, "[roles]\noutbox = true\n").unwrap();
    let serve = Serve::start(&data, &config);
    assert_eq!(super::mode(&data.join("admin.sock")), 0o600);

    // The store is held by the server: these go through its socket.
    let stats = dir.json(&["store", "stats", "--data", &d], None);
    assert_eq!(stats["records"], 3);
    let alice = SecretKey::from_bytes(&[1; 32]);
    let (a, mallory) = (
        alice.public().to_printable(),
        SecretKey::from_bytes(&[6; 32]),
    );
    let added = dir.ok(&["admin", "users", "add", &a, "--data", &d], None);
    assert_eq!(added.stdout(), format!("added {a}\n"));

    let rt = runtime();
    let server_key = mosaic_core::PublicKey::from_server_printable(&serve.key).unwrap();
    let options = |key: &SecretKey| ConnectOptions {
        client_key: Some(key.clone()),
        expected_server: Some(server_key),
        ..ConnectOptions::default()
    };
    let mut spammer = rt
        .block_on(connect(&serve.url, &options(&mallory)))
        .unwrap();
    let mut conn = rt
        .block_on(connect(&serve.url, &ConnectOptions::default()))
        .unwrap();
    // The outbox role takes the new served user's records at once.
    let hers = post(&alice, 50);
    assert_eq!(rt.block_on(submit(&mut conn, &hers)), ResultCode::ACCEPTED);

    // A live ban closes the banned key's connection at once.
    let m = mallory.public().to_printable();
    let banned = dir.ok(&["admin", "ban", "pubkey", &m, "--data", &d], None);
    assert_eq!(banned.stdout(), format!("banned {m} permanent\n"));
    assert!(banned.stderr().contains("closed 1 open connection"));
    assert_eq!(
        rt.block_on(recv(&mut spammer)),
        Message::Closing {
            code: ResultCode::PUBKEY_PERM_BANNED
        }
    );
    dir.ok(&["admin", "ban", "ip", "192.0.2.9", "--data", &d], None);

    // A removal takes effect for the next query.
    let id = hers.id().to_printable();
    let removed = dir.ok(&["admin", "remove", &id, "--data", &d], None);
    assert_eq!(removed.stdout(), format!("removed {id}\n"));
    assert_eq!(
        rt.block_on(submit(&mut conn, &post(&alice, 51))),
        ResultCode::ACCEPTED
    );

    let live_bans = dir.json(&["admin", "bans", "--data", &d], None);
    let live_users = dir.json(&["admin", "users", "list", "--data", &d], None);
    let live_stats = dir.json(&["store", "stats", "--data", &d], None);
    assert_eq!(live_stats["records"], 4);
    dir.ok(&["store", "export", "--data", &d, "live.bin"], None);
    // An import needs the server stopped, and says so.
    dir.run(&["store", "import", "--data", &d, "live.bin"], None, None)
        .fails(2, "stop it to import");
    drop((spammer, conn));
    serve.stop();
    assert!(!data.join("admin.sock").exists());

    // Offline: the same answers, byte for byte.
    assert_eq!(dir.json(&["admin", "bans", "--data", &d], None), live_bans);
    assert_eq!(
        dir.json(&["admin", "users", "list", "--data", &d], None),
        live_users
    );
    let offline_stats = dir.json(&["store", "stats", "--data", &d], None);
    assert_eq!(offline_stats["records"], live_stats["records"]);
    assert_eq!(offline_stats["kinds"], live_stats["kinds"]);
    dir.ok(&["store", "export", "--data", &d, "offline.bin"], None);
    assert_eq!(dir.read("live.bin"), dir.read("offline.bin"));

    // A stale socket (a killed server's) is not mistaken for a server.
    drop(std::os::unix::net::UnixListener::bind(data.join("admin.sock")).unwrap());
    assert_eq!(dir.json(&["admin", "bans", "--data", &d], None), live_bans);
    // A store held by another process, with no server answering: a clear
    // error saying what to do.
    let held = Store::open(data.join("store"), StoreConfig::default()).unwrap();
    dir.run(&["admin", "bans", "--data", &d], None, None)
        .fails(2, "in use by another process");
    dir.run(&["store", "stats", "--data", &d], None, None)
        .fails(2, "stop it and run this command again");
    drop(held);
}

#[test]
fn sighup_reloads_the_configuration_and_keeps_it_when_broken() {
    let dir = Dir::new("reload");
    let data = data_with(&dir, 5);
    let config = dir.path("server.toml");
    std::fs::write(&config, "[limits]\nmax_query_limit = 500\n").unwrap();
    let serve = Serve::start(&data, &config);
    let rt = runtime();
    let mut conn = rt
        .block_on(connect(&serve.url, &ConnectOptions::default()))
        .unwrap();
    assert_eq!(rt.block_on(count(&mut conn, 1)), 5);

    // A lower limit takes effect on the same, still open, connection.
    std::fs::write(&config, "[limits]\nmax_query_limit = 2\n").unwrap();
    serve.signal("-HUP");
    serve.wait_for_log("configuration reloaded");
    assert_eq!(rt.block_on(count(&mut conn, 2)), 2);

    // A broken file is refused in one line, and the server goes on with
    // the configuration it had.
    std::fs::write(&config, "[limits]\nmax_query_limit = \"many\"\n").unwrap();
    serve.signal("-HUP");
    let line = serve.wait_for_log("configuration reload refused");
    assert!(line.contains("keeping the current configuration"), "{line}");
    assert!(line.contains("server.toml, line 2"), "{line}");
    assert_eq!(rt.block_on(count(&mut conn, 3)), 2);
    // So is an invalid value.
    std::fs::write(&config, "[limits]\nmax_query_limit = 0\n").unwrap();
    serve.signal("-HUP");
    let line = serve.wait_for_log("configuration reload refused");
    assert!(line.contains("max_query_limit"), "{line}");
    assert_eq!(rt.block_on(count(&mut conn, 4)), 2);
    // And a new connection is served as before.
    let mut other = rt
        .block_on(connect(&serve.url, &ConnectOptions::default()))
        .unwrap();
    assert_eq!(rt.block_on(count(&mut other, 5)), 2);
    assert!(!serve.key.is_empty());
    drop((conn, other));
    serve.stop();
}
