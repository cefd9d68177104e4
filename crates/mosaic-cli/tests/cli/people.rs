//! The user-facing commands (`init`, `profile`, `post`, `reply`, `feed`,
//! `thread`, `watch`, `inbox`, `servers`, `migrate`, `backup`, `restore`)
//! against real `mosaic serve` processes on loopback (plain ws, direct
//! addresses in config.toml) and a private DHT testnet.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{Dir, Run, str_at};

/// A running `mosaic serve --no-dht`, killed on drop.
struct Serve {
    child: Child,
    key: String,
    url: String,
}

impl Serve {
    fn start(dir: &Dir, name: &str) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(["serve", "--no-dht", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path(name))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (key, url) = super::read_banner(&mut lines);
        assert!(
            key.starts_with("mosrv0") && url.starts_with("ws://"),
            "serve did not start"
        );
        // Keep reading: a closed pipe would make its next line fail.
        std::thread::spawn(move || lines.for_each(drop));
        Serve { child, key, url }
    }

    /// `mosrv0...@ws://127.0.0.1:port/`.
    fn reference(&self) -> String {
        format!("{}@{}", self.key, self.url)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private DHT, servers, and a directory holding the users' homes.
struct World {
    dir: Dir,
    dht: String,
    _testnet: mosaic_dht::Testnet,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    fn new(name: &str) -> World {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let testnet = runtime.block_on(mosaic_dht::Testnet::start(5)).unwrap();
        World {
            dir: Dir::new(name),
            dht: testnet.bootstrap_nodes().join(","),
            _testnet: testnet,
            _runtime: runtime,
        }
    }

    fn command(&self, user: &str, args: &[&str], password: Option<&str>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mosaic"));
        command
            .args(args)
            .current_dir(&self.dir.0)
            .env_remove("MOSAIC_PASSWORD")
            .env_remove("MOSAIC_TLS_CA")
            .env_remove("XDG_CONFIG_HOME")
            .env("MOSAIC_HOME", self.dir.path(user))
            .env("MOSAIC_DHT_BOOTSTRAP", &self.dht)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(password) = password {
            command.env("MOSAIC_PASSWORD", password);
        }
        command
    }

    /// Runs `mosaic` as `user` (the password is the user's name).
    fn run(&self, user: &str, args: &[&str]) -> Run {
        let output = self.command(user, args, Some(user)).output().unwrap();
        let run = Run(output);
        assert!(
            !run.stderr().contains("panicked"),
            "mosaic {args:?} panicked: {}",
            run.stderr()
        );
        run
    }

    fn ok(&self, user: &str, args: &[&str]) -> Run {
        let run = self.run(user, args);
        assert_eq!(run.code(), 0, "mosaic {args:?} failed: {}", run.stderr());
        run
    }

    fn json(&self, user: &str, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        self.ok(user, &args).json()
    }

    /// `mosaic init` with a cheap scrypt cost; returns the public key.
    fn init(&self, user: &str, extra: &[&str]) -> String {
        let mut args = vec!["init", "--log-n", "4"];
        args.extend_from_slice(extra);
        let report = self.json(user, &args);
        str_at(&report, "/public_key").to_owned()
    }

    fn ids(&self, user: &str, args: &[&str]) -> Vec<String> {
        self.json(user, args)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| str_at(r, "/id").to_owned())
            .collect()
    }
}

fn stored_on(report: &Value, server: &str, usage: &str) -> bool {
    report["servers"].as_array().unwrap().iter().any(|s| {
        s["server"] == server && s["stored"] == true && s["usage"].as_str().unwrap().contains(usage)
    })
}

#[test]
fn every_new_command_has_help() {
    let dir = Dir::new("people-help");
    for args in [
        &["init", "--help"][..],
        &["profile", "set", "--help"],
        &["profile", "show", "--help"],
        &["post", "--help"],
        &["reply", "--help"],
        &["feed", "--help"],
        &["thread", "--help"],
        &["watch", "--help"],
        &["inbox", "--help"],
        &["servers", "--help"],
        &["servers", "add", "--help"],
        &["servers", "remove", "--help"],
        &["servers", "list", "--help"],
        &["servers", "publish", "--help"],
        &["migrate", "--help"],
        &["backup", "--help"],
        &["restore", "--help"],
    ] {
        let run = dir.ok(args, None);
        assert!(run.stdout().contains("Usage: mosaic"), "{args:?}");
    }
    let init = dir.ok(&["init", "--help"], None).stdout();
    assert!(
        init.contains("MOSAIC_PASSWORD") && init.contains("--dht-bootstrap"),
        "{init}"
    );
    let backup = dir.ok(&["backup", "--help"], None).stdout();
    assert!(backup.contains("mosaic-backup 1"), "{backup}");
}

#[test]
fn posting_reading_replying_and_watching() {
    let world = World::new("people-social");
    let server = Serve::start(&world.dir, "server");
    let srv = server.reference();

    // A: encrypted keys, a subkey, a profile; all published.
    let init = world.json(
        "alice",
        &[
            "init", "--log-n", "4", "--subkey", "--name", "alice", "--server", &srv,
        ],
    );
    let alice = str_at(&init, "/public_key").to_owned();
    assert_eq!(init["encrypted"], true);
    assert_eq!(init["bootstrap"]["seq"], 1);
    assert!(
        stored_on(&init["key_schedule"], &server.key, "outbox"),
        "{init:#}"
    );
    assert!(
        stored_on(&init["profile"], &server.key, "outbox"),
        "{init:#}"
    );
    let home = world.dir.path("alice");
    let identity = std::fs::read_to_string(home.join("identity.key")).unwrap();
    assert!(identity.starts_with("mocryptsec0"), "{identity}");
    assert!(home.join("subkey.key").exists());
    #[cfg(unix)]
    assert_eq!(super::mode(&home.join("identity.key")), 0o600);
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        config.contains(&server.key) && config.contains(&server.url),
        "{config}"
    );

    // B: no encryption, the same server.
    let bob = world.init("bob", &["--no-encrypt", "--server", &srv]);
    let identity = std::fs::read_to_string(world.dir.path("bob/identity.key")).unwrap();
    assert!(identity.starts_with("mosec0"), "{identity}");

    // A posts (signed by the subkey); B reads A's feed and profile by key.
    let first = world.json("alice", &["post", "Hello, Mosaic"]);
    assert_ne!(first["signer"], first["author"]);
    assert!(stored_on(&first, &server.key, "outbox"));
    let first = str_at(&first, "/id").to_owned();
    let second = world.json("alice", &["post", "A second post"]);
    let second = str_at(&second, "/id").to_owned();
    assert_eq!(
        world.ids("bob", &["feed", &alice]),
        vec![second.clone(), first.clone()]
    );
    assert_eq!(
        world.ids("bob", &["feed", &alice, "--limit", "1"]),
        vec![second.clone()]
    );
    let text = world.ok("bob", &["feed", &alice]).stdout();
    assert!(
        text.contains("alice (mopub0") && text.contains("Hello, Mosaic"),
        "{text}"
    );
    let profile = world.json("bob", &["profile", "show", &alice]);
    assert_eq!(profile["name"], "alice");
    world.ok("alice", &["profile", "set", "--about", "Testing"]);
    let profile = world.json("alice", &["profile", "show"]);
    assert_eq!(
        (profile["name"].as_str(), profile["about"].as_str()),
        (Some("alice"), Some("Testing"))
    );

    // B replies; the reply goes to A's inbox, and shows in the thread.
    world
        .run("bob", &["reply", &first, "Welcome"])
        .fails(2, "give --author");
    let reply = world.json("bob", &["reply", &first, "--author", &alice, "Welcome"]);
    assert!(stored_on(&reply, &server.key, "inbox"), "{reply:#}");
    assert_eq!(reply["reply_to"], first.as_str());
    let reply = str_at(&reply, "/id").to_owned();
    assert_eq!(world.ids("alice", &["inbox"]), vec![reply.clone()]);
    let thread = world.json("bob", &["thread", &first, "--author", &alice]);
    assert_eq!(thread["root"]["id"], first.as_str());
    assert_eq!(thread["replies"][0]["id"], reply.as_str());
    assert_eq!(thread["replies"][0]["depth"], 1);
    assert_eq!(thread["replies"][0]["author"], bob.as_str());

    // B watches A; a new post arrives live.
    let mut watch = world
        .command("bob", &["watch", &alice, "--limit", "0", "--json"], None)
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait = |what: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("watch printed no line with {what}"));
        if line.contains(what) {
            break line;
        }
    };
    wait("\"caught_up\"");
    let live = world.json("alice", &["post", "Live"]);
    let line = wait(str_at(&live, "/id"));
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (event["event"].as_str(), event["text"].as_str()),
        (Some("record"), Some("Live"))
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn servers_migrate_backup_and_restore() {
    let world = World::new("people-move");
    let one = Serve::start(&world.dir, "one");
    let two = Serve::start(&world.dir, "two");
    let alice = world.init("alice", &["--server", &one.reference()]);
    // B knows both servers' addresses (there is no server bootstrap here).
    world.init(
        "bob",
        &[
            "--server",
            &one.reference(),
            "--server",
            &format!("inbox:{}", two.reference()),
        ],
    );
    let posts: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|t| str_at(&world.json("alice", &["post", t]), "/id").to_owned())
        .collect();
    let mut expected = posts.clone();
    expected.reverse();
    // B reads A now, and so caches A's bootstrap naming server one.
    assert_eq!(world.ids("bob", &["feed", &alice]), expected);

    // servers add / list / remove, each publishing a new bootstrap.
    let added = world.json(
        "alice",
        &["servers", "add", &two.reference(), "--usage", "inbox"],
    );
    assert_eq!(added["bootstrap"]["seq"], 2);
    assert_eq!(added["servers"][1]["usage"], "inbox");
    let list = world.json("alice", &["servers", "list"]);
    assert_eq!(list["servers"].as_array().unwrap().len(), 2);
    let removed = world.json("alice", &["servers", "remove", &two.key]);
    assert_eq!(removed["bootstrap"]["seq"], 3);
    world
        .run("alice", &["servers", "remove", &two.key])
        .fails(2, "not among the servers");
    world
        .run("alice", &["servers", "remove", &one.key])
        .fails(2, "last server");

    // migrate: everything copied, the new server first, the old one dropped.
    let moved = world.json(
        "alice",
        &["migrate", "--to", &two.reference(), "--drop-old"],
    );
    assert_eq!(moved["records"], 3, "{moved:#}");
    assert_eq!(moved["accepted"], 3);
    assert_eq!(moved["dropped"][0], one.key.as_str());
    assert_eq!(moved["bootstrap"]["seq"], 4);
    let list = world.json("alice", &["servers", "list"]);
    assert_eq!(list["servers"].as_array().unwrap().len(), 1);
    assert_eq!(list["servers"][0]["server"], two.key.as_str());
    // Server one is gone; B's cached bootstrap fails, and B finds A on
    // server two through the DHT.
    drop(one);
    assert_eq!(world.ids("bob", &["feed", &alice]), expected);

    // backup, then restore into another home: same identity, records
    // published again (already there).
    let backup = world.dir.path("alice.backup");
    let backup = backup.to_str().unwrap();
    let report = world.json("alice", &["backup", "--out", backup]);
    assert_eq!(report["records"], 3);
    #[cfg(unix)]
    assert_eq!(super::mode(std::path::Path::new(backup)), 0o600);
    world
        .run("alice", &["backup", "--out", backup])
        .fails(2, "already exists");
    // The password of the restored key is alice's.
    let restored = world
        .command("carol", &["restore", backup, "--json"], Some("alice"))
        .output()
        .unwrap();
    let restored = Run(restored);
    assert_eq!(restored.code(), 0, "{}", restored.stderr());
    let restored = restored.json();
    assert_eq!(restored["public_key"], alice.as_str());
    assert_eq!(restored["servers"][0]["duplicate"], 3, "{restored:#}");
    let again = world
        .command("carol", &["restore", backup], Some("alice"))
        .output()
        .unwrap();
    Run(again).fails(2, "already holds an identity");
    std::fs::write(world.dir.path("bad.backup"), b"not a backup").unwrap();
    world
        .run("dave", &["restore", "bad.backup"])
        .fails(2, "not a mosaic backup");
}

#[test]
fn errors_are_clear() {
    let world = World::new("people-errors");
    // No identity yet.
    world
        .run("nobody", &["post", "hi"])
        .fails(2, "run `mosaic init`");
    world
        .run("nobody", &["servers", "list"])
        .fails(2, "run `mosaic init`");
    world
        .run("nobody", &["inbox"])
        .fails(2, "run `mosaic init`");
    world
        .run("nobody", &["feed", "me"])
        .fails(2, "run `mosaic init`");
    // Bad arguments are usage errors.
    world
        .run("nobody", &["feed", "alice"])
        .fails(2, "not a user key");
    world
        .run("nobody", &["init", "--server", "mosrv0nonsense"])
        .fails(2, "not a server key");
    world
        .run("nobody", &["init", "--server", "sometimes:mosrv0x"])
        .fails(2, "unknown usage");

    let server = Serve::start(&world.dir, "server");
    let alice = world.init("alice", &["--server", &server.reference()]);
    world
        .run("alice", &["init", "--log-n", "4"])
        .fails(2, "already holds an identity");
    // A wrong password.
    let wrong = world
        .command("alice", &["post", "hi"], Some("not alice's"))
        .output()
        .unwrap();
    Run(wrong).fails(2, "wrong password");
    // An unknown user (a valid key nobody published a bootstrap for).
    let stranger = world.init("stranger", &["--no-encrypt"]);
    world
        .run("alice", &["feed", &stranger])
        .fails(2, "unknown user");
    world
        .run("stranger", &["post", "hi"])
        .fails(2, "no outbox server");
    // A record that does not exist.
    let missing = world.json("alice", &["post", "here"]);
    let id = str_at(&missing, "/id");
    world.ok("alice", &["thread", id, "--author", &alice]);
    let other = world.json("stranger", &["servers", "add", &server.reference()]);
    assert_eq!(other["bootstrap"]["seq"], 1);
    world
        .run("alice", &["thread", id, "--author", &stranger])
        .fails(2, "not found");
}

#[test]
fn keys_are_imported() {
    let world = World::new("people-import");
    // An encrypted key file is stored as it is.
    let made = world.dir.json(
        &[
            "key",
            "generate",
            "--encrypt",
            "--log-n",
            "4",
            "--out",
            "erin.key",
        ],
        Some("erin"),
    );
    let erin = world.init("erin", &["--import", "erin.key"]);
    assert_eq!(erin, str_at(&made, "/public_key"));
    assert_eq!(
        std::fs::read_to_string(world.dir.path("erin/identity.key")).unwrap(),
        world.dir.read_text("erin.key")
    );
    // A mosec0 key given on the command line.
    let made = world.dir.json(&["key", "generate", "--print-secret"], None);
    let secret = str_at(&made, "/secret_key");
    let frank = world.init("frank", &["--no-encrypt", "--import", secret]);
    assert_eq!(frank, str_at(&made, "/public_key"));
    world
        .run("grace", &["init", "--import", "no-such.key"])
        .fails(2, "cannot read no-such.key");
    // A wrong password for the key imported.
    let wrong = world
        .command(
            "heidi",
            &["init", "--import", "erin.key"],
            Some("not erin's"),
        )
        .output()
        .unwrap();
    Run(wrong).fails(2, "wrong password");
}
