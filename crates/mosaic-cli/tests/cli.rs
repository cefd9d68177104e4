//! Tests of the `mosaic` binary, run as a child process in temporary
//! directories.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// Reads the lines `mosaic serve` prints when it starts, up to its URL:
/// the server's key (`mosaic server mosrv0...`) and URL (`listening on
/// ws://...`), empty when not printed. The rest of the output is left to
/// the caller.
fn read_banner(
    lines: &mut std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) -> (String, String) {
    let (mut key, mut url) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(k) = line.strip_prefix("mosaic server ") {
            key = k.to_owned();
        }
        if let Some(u) = line.strip_prefix("listening on ") {
            url = u.to_owned();
            break;
        }
    }
    (key, url)
}

/// A temporary directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("mosaic-cli-test-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn read_text(&self, name: &str) -> String {
        String::from_utf8(self.read(name)).unwrap()
    }

    /// Runs `mosaic` here, without a password in the environment and with
    /// standard input closed (or fed `stdin`).
    fn run(&self, args: &[&str], password: Option<&str>, stdin: Option<&[u8]>) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mosaic"));
        command
            .args(args)
            .current_dir(&self.0)
            .env_remove("MOSAIC_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(password) = password {
            command.env("MOSAIC_PASSWORD", password);
        }
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().unwrap();
        if let Some(data) = stdin {
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        let run = Run(child.wait_with_output().unwrap());
        assert!(
            !run.stderr().contains("panicked"),
            "mosaic {args:?} panicked: {}",
            run.stderr()
        );
        run
    }

    /// Runs `mosaic` and requires exit status 0.
    fn ok(&self, args: &[&str], password: Option<&str>) -> Run {
        let run = self.run(args, password, None);
        assert_eq!(run.code(), 0, "mosaic {args:?} failed: {}", run.stderr());
        run
    }

    /// Runs `mosaic ... --json` and parses its output.
    fn json(&self, args: &[&str], password: Option<&str>) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        self.ok(&args, password).json()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run(Output);

impl Run {
    fn code(&self) -> i32 {
        self.0.status.code().unwrap()
    }

    fn stdout(&self) -> String {
        String::from_utf8(self.0.stdout.clone()).unwrap()
    }

    fn stderr(&self) -> String {
        String::from_utf8(self.0.stderr.clone()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.0.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }

    /// Requires a failure with `code` whose standard error mentions `words`.
    fn fails(&self, code: i32, words: &str) {
        assert_eq!(self.code(), code, "stderr: {}", self.stderr());
        assert!(
            self.stderr().contains(words),
            "stderr lacks {words:?}: {}",
            self.stderr()
        );
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value:#}"))
}

/// Generates an unencrypted key file and returns its public key.
fn plain_key(dir: &Dir, name: &str) -> String {
    let report = dir.json(&["key", "generate", "--out", name], None);
    str_at(&report, "/public_key").to_owned()
}

/// Generates an encrypted key file (cheap scrypt) and returns its public key.
fn encrypted_key(dir: &Dir, name: &str, password: &str) -> String {
    let report = dir.json(
        &[
            "key",
            "generate",
            "--encrypt",
            "--log-n",
            "4",
            "--out",
            name,
        ],
        Some(password),
    );
    str_at(&report, "/public_key").to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

mod help {
    use super::*;

    #[test]
    fn every_command_has_help() {
        let dir = Dir::new("help");
        for args in [
            &["--help"][..],
            &["help"],
            &["--version"],
            &["key", "--help"],
            &["key", "generate", "--help"],
            &["key", "show", "--help"],
            &["record", "--help"],
            &["record", "create", "--help"],
            &["record", "inspect", "--help"],
            &["record", "verify", "--help"],
            &["help", "record", "create"],
        ] {
            let run = dir.ok(args, None);
            assert!(
                run.stdout().contains("Usage: mosaic") || args == ["--version"],
                "{args:?}: {}",
                run.stdout()
            );
        }
        let top = dir.ok(&["--help"], None).stdout();
        assert!(top.contains("Exit status"), "{top}");
        assert!(top.contains("MOSAIC_PASSWORD"), "{top}");
        let inspect = dir.ok(&["record", "inspect", "--help"], None).stdout();
        assert!(inspect.contains("step_number"), "{inspect}");
    }

    #[test]
    fn no_command_or_a_wrong_one_is_a_usage_error() {
        let dir = Dir::new("usage");
        assert_eq!(dir.run(&[], None, None).code(), 2);
        dir.run(&["frobnicate"], None, None)
            .fails(2, "unrecognized subcommand");
        assert_eq!(dir.run(&["record"], None, None).code(), 2);
    }
}

mod key {
    use super::*;

    #[test]
    fn generate_writes_a_private_plain_key_file() {
        let dir = Dir::new("gen-plain");
        let run = dir.ok(&["key", "generate", "--out", "me.key"], None);
        let text = dir.read_text("me.key");
        assert!(text.starts_with("mosec0") && text.ends_with('\n'), "{text}");
        #[cfg(unix)]
        assert_eq!(mode(&dir.path("me.key")), 0o600);
        let out = run.stdout();
        assert!(out.starts_with("public key: mopub0"), "{out}");
        assert!(!out.contains("mosec0"), "the secret was printed: {out}");

        let shown = dir.json(&["key", "show", "me.key"], None);
        assert_eq!(shown["encrypted"], false);
        assert_eq!(shown["log_n"], Value::Null);
        let public = str_at(&shown, "/public_key");
        assert!(out.contains(public), "{out}");
        assert!(str_at(&shown, "/server_public_key").starts_with("mosrv0"));
        assert!(shown.get("secret_key").is_none());

        let with_secret = dir.json(&["key", "show", "me.key", "--print-secret"], None);
        assert_eq!(str_at(&with_secret, "/secret_key"), text.trim());
        let human = dir.ok(&["key", "show", "me.key"], None).stdout();
        assert!(human.contains("not encrypted"), "{human}");
        assert!(human.contains(public), "{human}");
        assert!(!human.contains("mosec0"), "{human}");
    }

    #[test]
    fn generate_json_reports_the_file() {
        let dir = Dir::new("gen-json");
        let report = dir.json(&["key", "generate", "--out", "k"], None);
        assert!(str_at(&report, "/public_key").starts_with("mopub0"));
        assert_eq!(str_at(&report, "/file"), "k");
        assert_eq!(report["encrypted"], false);
        assert!(report.get("secret_key").is_none());
    }

    #[test]
    fn existing_files_are_kept_unless_forced() {
        let dir = Dir::new("gen-force");
        let first = plain_key(&dir, "k");
        let before = dir.read("k");
        dir.run(&["key", "generate", "--out", "k"], None, None)
            .fails(2, "already exists");
        assert_eq!(dir.read("k"), before);
        let second = dir.json(&["key", "generate", "--out", "k", "--force"], None);
        assert_ne!(str_at(&second, "/public_key"), first);
        assert_ne!(dir.read("k"), before);
        #[cfg(unix)]
        assert_eq!(mode(&dir.path("k")), 0o600);
        let shown = dir.json(&["key", "show", "k"], None);
        assert_eq!(shown["public_key"], second["public_key"]);
    }

    #[test]
    fn generate_needs_somewhere_for_the_secret() {
        let dir = Dir::new("gen-dest");
        dir.run(&["key", "generate"], None, None)
            .fails(2, "--print-secret");
        let report = dir.json(&["key", "generate", "--print-secret"], None);
        let secret = str_at(&report, "/secret_key");
        assert!(secret.starts_with("mosec0"));
        assert_eq!(report["file"], Value::Null);
        // The printed secret is a usable key file.
        std::fs::write(dir.path("k"), format!("{secret}\n")).unwrap();
        let shown = dir.json(&["key", "show", "k"], None);
        assert_eq!(shown["public_key"], report["public_key"]);
    }

    #[test]
    fn encrypted_keys_take_the_password_from_the_environment() {
        let dir = Dir::new("gen-enc");
        let report = dir.json(
            &["key", "generate", "--encrypt", "--log-n", "4", "--out", "k"],
            Some("correct horse"),
        );
        assert_eq!(report["encrypted"], true);
        assert_eq!(report["log_n"], 4);
        let text = dir.read_text("k");
        assert!(text.starts_with("mocryptsec0"), "{text}");
        #[cfg(unix)]
        assert_eq!(mode(&dir.path("k")), 0o600);

        let shown = dir.json(&["key", "show", "k"], Some("correct horse"));
        assert_eq!(shown["public_key"], report["public_key"]);
        assert_eq!(shown["encrypted"], true);
        assert_eq!(shown["log_n"], 4);
        let human = dir
            .ok(&["key", "show", "k"], Some("correct horse"))
            .stdout();
        assert!(human.contains("encrypted, scrypt log_n 4"), "{human}");

        dir.run(&["key", "show", "k"], Some("wrong"), None)
            .fails(2, "wrong password");
    }

    #[test]
    fn encryption_settings_are_checked() {
        let dir = Dir::new("gen-enc-bad");
        dir.run(
            &["key", "generate", "--encrypt", "--out", "k"],
            Some(""),
            None,
        )
        .fails(2, "empty password");
        assert!(!dir.path("k").exists());
        dir.run(
            &[
                "key",
                "generate",
                "--encrypt",
                "--log-n",
                "23",
                "--out",
                "k",
            ],
            Some("pw"),
            None,
        )
        .fails(2, "--log-n");
        dir.run(
            &["key", "generate", "--log-n", "4", "--out", "k"],
            Some("pw"),
            None,
        )
        .fails(2, "--encrypt");
    }

    #[test]
    fn show_refuses_what_is_not_a_key_file() {
        let dir = Dir::new("show-bad");
        dir.run(&["key", "show", "missing.key"], None, None)
            .fails(2, "cannot read missing.key");
        std::fs::write(dir.path("junk"), "hello\n").unwrap();
        dir.run(&["key", "show", "junk"], None, None)
            .fails(2, "not a key file");
        let public = plain_key(&dir, "k");
        std::fs::write(dir.path("pub"), &public).unwrap();
        dir.run(&["key", "show", "pub"], None, None)
            .fails(2, "mopub0");
        std::fs::write(dir.path("bin"), [0xffu8, 0xfe, 0]).unwrap();
        dir.run(&["key", "show", "bin"], None, None)
            .fails(2, "not text");
        std::fs::write(dir.path("cut"), "mosec0abc\n").unwrap();
        dir.run(&["key", "show", "cut"], None, None)
            .fails(2, "damaged");
    }
}

mod record {
    use super::*;

    const NS: &str = "1732829915000000000";

    fn create(dir: &Dir, extra: &[&str], password: Option<&str>) -> Value {
        let mut args = vec!["record", "create"];
        args.extend_from_slice(extra);
        dir.json(&args, password)
    }

    #[test]
    fn create_then_inspect_in_every_format() {
        let dir = Dir::new("formats");
        let public = plain_key(&dir, "me.key");
        let mut ids = Vec::new();
        for (format, file) in [
            ("binary", "r.bin"),
            ("hex", "r.hex"),
            ("printable", "r.txt"),
        ] {
            let made = create(
                &dir,
                &[
                    "--key",
                    "me.key",
                    "--kind",
                    "microblog",
                    "--payload",
                    "Hello, Mosaic!",
                    "--timestamp",
                    NS,
                    "--nonce",
                    "8000000000000001",
                    "--format",
                    format,
                    "--out",
                    file,
                ],
                None,
            );
            assert_eq!(str_at(&made, "/format"), format);
            assert!(str_at(&made, "/id").starts_with("moref0"));
            ids.push(made["id"].clone());

            let seen = dir.json(&["record", "inspect", file], None);
            assert_eq!(seen["valid"], true, "{seen:#}");
            assert_eq!(seen["error"], Value::Null);
            assert_eq!(str_at(&seen, "/encoding"), format);
            assert_eq!(seen["id"], made["id"]);
            assert_eq!(seen["address"], made["address"]);
            assert_eq!(seen["length"], made["length"]);
            assert_eq!(str_at(&seen, "/author"), public);
            assert_eq!(str_at(&seen, "/signing_key"), public);
            assert_eq!(str_at(&seen, "/signed_by"), "author");
            assert_eq!(str_at(&seen, "/kind/name"), "microblog");
            assert_eq!(str_at(&seen, "/kind/value"), "0x000000010001001c");
            assert_eq!(seen["kind"]["printable"], true);
            assert_eq!(str_at(&seen, "/kind/read_access"), "everybody");
            assert_eq!(str_at(&seen, "/payload/text"), "Hello, Mosaic!");
            assert_eq!(seen["payload"]["hex"], Value::Null);
            assert_eq!(str_at(&seen, "/timestamp/rfc3339"), "2024-11-28T21:38:07Z");
            assert_eq!(seen["timestamp"]["ns"].as_u64(), Some(NS.parse().unwrap()));
            assert_eq!(str_at(&seen, "/nonce"), "8000000000000001");
            assert_eq!(seen["tags"], serde_json::json!([]));
        }
        // Same inputs, same record, whatever the encoding.
        assert!(ids.windows(2).all(|w| w[0] == w[1]));
        assert!(dir.read_text("r.txt").starts_with("morecord0"));
        assert_eq!(
            hex::decode(dir.read_text("r.hex").trim()).unwrap(),
            dir.read("r.bin")
        );

        // Standard input works for each encoding too.
        for file in ["r.bin", "r.hex", "r.txt"] {
            let run = dir.run(
                &["record", "inspect", "-", "--json"],
                None,
                Some(&dir.read(file)),
            );
            assert_eq!(run.code(), 0, "{}", run.stderr());
            assert_eq!(run.json()["id"], ids[0]);
        }

        let human = dir.ok(&["record", "inspect", "r.bin"], None).stdout();
        for words in [
            "status:       valid",
            "0x000000010001001c (microblog)",
            "2024-11-28T21:38:07Z (1732829915000000000 ns)",
            "the author's master key",
            "  Hello, Mosaic!",
        ] {
            assert!(human.contains(words), "{words:?} missing from:\n{human}");
        }
    }

    #[test]
    fn create_with_subkey_tags_zstd_and_flags() {
        let dir = Dir::new("subkey");
        let master = plain_key(&dir, "master.key");
        let subkey = encrypted_key(&dir, "sub.key", "pw");
        let notify = plain_key(&dir, "friend.key");
        // The friend's raw key bytes, read from the header of a record they
        // sign (bytes 64..96 hold the author key).
        create(
            &dir,
            &[
                "--key",
                "friend.key",
                "--kind",
                "chat",
                "--payload",
                "x",
                "--out",
                "friend.bin",
            ],
            None,
        );
        let friend_hex = hex::encode(&dir.read("friend.bin")[64..96]);
        let payload = "a subkey-signed reply ".repeat(20);
        let notify_tag = format!("notify:00000000{friend_hex}");
        let url_tag = format!("url:05000000{}", hex::encode("https://example.com/"));
        let made = create(
            &dir,
            &[
                "--key",
                "sub.key",
                "--author-key",
                &master,
                "--kind",
                "reply",
                "--payload",
                &payload,
                "--tag",
                &notify_tag,
                "--tag",
                "0x1234:00ff",
                "--tag",
                &url_tag,
                "--zstd",
                "--from-author",
                "--timestamp",
                "2024-11-28T21:38:07.5Z",
                "--out",
                "reply.bin",
            ],
            Some("pw"),
        );
        let seen = dir.json(&["record", "inspect", "reply.bin"], None);
        assert_eq!(seen["valid"], true, "{seen:#}");
        assert_eq!(seen["id"], made["id"]);
        assert_eq!(str_at(&seen, "/author"), master);
        assert_eq!(str_at(&seen, "/signing_key"), subkey);
        assert_eq!(str_at(&seen, "/signed_by"), "subkey");
        assert_eq!(str_at(&seen, "/kind/name"), "reply");
        assert_eq!(seen["flags"]["zstd"], true);
        assert_eq!(seen["flags"]["from_author"], true);
        assert_eq!(str_at(&seen, "/flags/value"), "0x0000000000000005");
        assert_eq!(
            str_at(&seen, "/timestamp/rfc3339"),
            "2024-11-28T21:38:07.500Z"
        );
        let p = &seen["payload"];
        assert_eq!(p["zstd"], true);
        assert_eq!(
            p["decompressed_length"].as_u64(),
            Some(payload.len() as u64)
        );
        assert!(p["length"].as_u64().unwrap() < payload.len() as u64);
        assert_eq!(str_at(p, "/text"), payload);

        let tags = seen["tags"].as_array().unwrap();
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0]["type"], 1);
        assert_eq!(str_at(&tags[0], "/name"), "notify");
        assert_eq!(str_at(&tags[0], "/meaning/key"), notify);
        assert_eq!(tags[0]["error"], Value::Null);
        assert_eq!(tags[1]["type"], 0x1234);
        assert_eq!(tags[1]["name"], Value::Null);
        assert_eq!(str_at(&tags[1], "/value"), "00ff");
        assert_eq!(str_at(&tags[2], "/name"), "url");
        assert_eq!(tags[2]["meaning"]["offset"], 5);
        assert_eq!(str_at(&tags[2], "/meaning/url"), "https://example.com/");

        let human = dir.ok(&["record", "inspect", "reply.bin"], None).stdout();
        for words in [
            "not the author's key",
            "(zstd, from author)",
            &format!("0x1 (notify): notify {notify}"),
            "0x1234: 2 bytes: 00ff",
            "0x24 (url): at character 5: https://example.com/",
            "zstd-compressed from",
        ] {
            assert!(human.contains(words), "{words:?} missing from:\n{human}");
        }
        dir.ok(&["record", "verify", "reply.bin"], None);
    }

    #[test]
    fn nonce_first_bit_is_forced_with_a_warning() {
        let dir = Dir::new("nonce");
        plain_key(&dir, "k");
        let run = dir.ok(
            &[
                "record",
                "create",
                "--key",
                "k",
                "--kind",
                "blog",
                "--payload",
                "x",
                "--nonce",
                "0011223344556677",
                "--out",
                "r",
            ],
            None,
        );
        assert!(run.stderr().contains("warning"), "{}", run.stderr());
        let seen = dir.json(&["record", "inspect", "r"], None);
        assert_eq!(str_at(&seen, "/nonce"), "8011223344556677");
    }

    #[test]
    fn binary_payloads_and_stdout_output() {
        let dir = Dir::new("binary-payload");
        plain_key(&dir, "k");
        let payload: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        std::fs::write(dir.path("payload"), &payload).unwrap();
        let run = dir.ok(
            &[
                "record",
                "create",
                "--key",
                "k",
                "--kind",
                "profile",
                "--payload-file",
                "payload",
                "--format",
                "hex",
                "--out",
                "-",
            ],
            None,
        );
        // The record goes to standard output, the summary to standard error.
        assert!(run.stderr().contains("id:"), "{}", run.stderr());
        let record_hex = run.stdout();
        let seen = dir
            .run(
                &["record", "inspect", "-", "--json"],
                None,
                Some(record_hex.as_bytes()),
            )
            .json();
        assert_eq!(seen["valid"], true);
        assert_eq!(seen["payload"]["text"], Value::Null);
        assert_eq!(str_at(&seen, "/payload/hex"), hex::encode(&payload));
        std::fs::write(dir.path("r.hex"), &record_hex).unwrap();
        let human = dir.ok(&["record", "inspect", "r.hex"], None).stdout();
        assert!(human.contains("first 256 of 1000 bytes"), "{human}");

        // Payload from standard input.
        let run = dir.run(
            &[
                "record",
                "create",
                "--key",
                "k",
                "--kind",
                "chat",
                "--payload-file",
                "-",
                "--out",
                "chat.bin",
            ],
            None,
            Some("from stdin".as_bytes()),
        );
        assert_eq!(run.code(), 0, "{}", run.stderr());
        let seen = dir.json(&["record", "inspect", "chat.bin"], None);
        assert_eq!(str_at(&seen, "/payload/text"), "from stdin");
    }

    #[test]
    fn verify_accepts_good_records_and_names_the_failed_step() {
        let dir = Dir::new("verify");
        plain_key(&dir, "k");
        let made = create(
            &dir,
            &[
                "--key",
                "k",
                "--kind",
                "microblog",
                "--payload",
                "intact",
                "--out",
                "good.bin",
            ],
            None,
        );
        let id = str_at(&made, "/id");
        let run = dir.ok(&["record", "verify", "good.bin"], None);
        assert_eq!(run.stdout(), format!("OK good.bin {id}\n"));

        let mut bytes = dir.read("good.bin");
        bytes[152] ^= 0x01; // first payload byte: 'i' becomes 'h'
        std::fs::write(dir.path("bad.bin"), &bytes).unwrap();

        let run = dir.run(&["record", "verify", "good.bin", "bad.bin"], None, None);
        assert_eq!(run.code(), 1, "{}", run.stderr());
        let out = run.stdout();
        assert!(out.contains(&format!("OK good.bin {id}\n")), "{out}");
        assert!(out.contains("INVALID bad.bin: step 7 (hash): "), "{out}");

        let run = dir.run(
            &["record", "verify", "--json", "good.bin", "bad.bin"],
            None,
            None,
        );
        assert_eq!(run.code(), 1);
        let verdicts = run.json();
        assert_eq!(str_at(&verdicts, "/0/status"), "ok");
        assert_eq!(str_at(&verdicts, "/0/id"), id);
        assert_eq!(str_at(&verdicts, "/1/status"), "invalid");
        assert_eq!(str_at(&verdicts, "/1/step"), "step 7 (hash)");
        assert_eq!(verdicts[1]["step_number"], 7);
        assert_eq!(verdicts[1]["id"], Value::Null);

        // inspect still shows what it can, and exits 1.
        let run = dir.run(&["record", "inspect", "bad.bin", "--json"], None, None);
        assert_eq!(run.code(), 1);
        let seen = run.json();
        assert_eq!(seen["valid"], false);
        assert_eq!(str_at(&seen, "/error/step"), "step 7 (hash)");
        assert_eq!(seen["error"]["step_number"], 7);
        assert_eq!(str_at(&seen, "/payload/text"), "hntact");
        assert_eq!(seen["id"], made["id"]);
        let run = dir.run(&["record", "inspect", "bad.bin"], None, None);
        assert_eq!(run.code(), 1);
        assert!(
            run.stdout().contains("INVALID at step 7 (hash)"),
            "{}",
            run.stdout()
        );

        // A reserved flag bit breaks the layout: the header is still shown.
        let mut bytes = dir.read("good.bin");
        bytes[136] |= 0x02;
        std::fs::write(dir.path("flags.bin"), &bytes).unwrap();
        let run = dir.run(&["record", "inspect", "flags.bin", "--json"], None, None);
        assert_eq!(run.code(), 1);
        let seen = run.json();
        assert_eq!(seen["error"]["step_number"], 11);
        assert_eq!(seen["flags"]["reserved_bits"], true);
        assert_eq!(seen["payload"], Value::Null);
        assert_eq!(seen["id"], made["id"]);

        // A missing file is an error (2), not an invalid record.
        let run = dir.run(&["record", "verify", "good.bin", "missing.bin"], None, None);
        assert_eq!(run.code(), 2);
        assert!(
            run.stdout().contains("ERROR missing.bin: "),
            "{}",
            run.stdout()
        );
    }

    #[test]
    fn undecodable_input_is_invalid_not_a_crash() {
        let dir = Dir::new("undecodable");
        for (name, contents) in [
            ("odd.hex", &b"abc\n"[..]),
            ("bad.txt", b"morecord0!!!\n"),
            ("empty", b""),
            ("short", &[1u8, 2, 3][..]),
        ] {
            std::fs::write(dir.path(name), contents).unwrap();
            let run = dir.run(&["record", "inspect", name, "--json"], None, None);
            assert_eq!(run.code(), 1, "{name}: {}", run.stderr());
            let seen = run.json();
            assert_eq!(seen["valid"], false, "{name}");
            assert!(seen["error"]["step"].is_string(), "{name}: {seen:#}");
            let run = dir.run(&["record", "verify", name], None, None);
            assert_eq!(run.code(), 1, "{name}");
            assert!(run.stdout().starts_with(&format!("INVALID {name}: ")));
        }
        let key = plain_key(&dir, "k");
        std::fs::write(dir.path("pub"), key).unwrap();
        let run = dir.run(&["record", "inspect", "pub"], None, None);
        assert_eq!(run.code(), 1);
        assert!(run.stdout().contains("not a record"), "{}", run.stdout());
        dir.run(&["record", "inspect", "missing"], None, None)
            .fails(2, "cannot read missing");
    }

    #[test]
    fn bad_arguments_are_explained() {
        let dir = Dir::new("bad-args");
        plain_key(&dir, "k");
        encrypted_key(&dir, "enc", "pw");
        let base = |extra: &[&'static str]| {
            let mut args = vec!["record", "create", "--out", "r"];
            args.extend_from_slice(extra);
            args
        };
        let cases: &[(&[&str], Option<&str>, &str)] = &[
            (
                &["--key", "k", "--kind", "tweet", "--payload", "x"],
                None,
                "microblog",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "0x1000000000000000000",
                    "--payload",
                    "x",
                ],
                None,
                "16 hex digits",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--tag",
                    "notify",
                ],
                None,
                "TYPE:HEX",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--tag",
                    "bogus:00",
                ],
                None,
                "unknown tag type",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--tag",
                    "reply:00",
                ],
                None,
                "60 bytes",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--tag",
                    "7:zz",
                ],
                None,
                "not a hex digit",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--nonce",
                    "80",
                ],
                None,
                "8 bytes",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--timestamp",
                    "soon",
                ],
                None,
                "RFC 3339",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--author-key",
                    "mosec0x",
                ],
                None,
                "mopub0",
            ),
            (&["--key", "k", "--kind", "blog"], None, "--payload"),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--payload-file",
                    "f",
                ],
                None,
                "cannot be used with",
            ),
            (
                &["--key", "nokey", "--kind", "blog", "--payload", "x"],
                None,
                "cannot read nokey",
            ),
            (
                &["--key", "enc", "--kind", "blog", "--payload", "x"],
                Some("nope"),
                "wrong password",
            ),
            (
                &["--key", "k", "--kind", "blog", "--payload-file", "missing"],
                None,
                "cannot read missing",
            ),
            (
                &[
                    "--key",
                    "k",
                    "--kind",
                    "blog",
                    "--payload",
                    "x",
                    "--format",
                    "yaml",
                ],
                None,
                "possible values",
            ),
        ];
        for (extra, password, words) in cases {
            let run = dir.run(&base(extra), *password, None);
            assert_eq!(run.code(), 2, "{extra:?}: {}", run.stderr());
            assert!(
                run.stderr().contains(words),
                "{extra:?}: {words:?} missing from: {}",
                run.stderr()
            );
            assert!(!dir.path("r").exists(), "{extra:?} wrote a record");
        }

        // Non-UTF-8 bytes cannot be the payload of a printable kind.
        std::fs::write(dir.path("bytes"), [0xffu8, 0xfe]).unwrap();
        dir.run(
            &base(&[
                "--key",
                "k",
                "--kind",
                "microblog",
                "--payload-file",
                "bytes",
            ]),
            None,
            None,
        )
        .fails(2, "not UTF-8");
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        let dir = Dir::new("pipe");
        plain_key(&dir, "k");
        let payload = vec![0x5au8; 200_000];
        std::fs::write(dir.path("payload"), &payload).unwrap();
        dir.ok(
            &[
                "record",
                "create",
                "--key",
                "k",
                "--kind",
                "profile",
                "--payload-file",
                "payload",
                "--out",
                "big.bin",
            ],
            None,
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(["record", "inspect", "big.bin", "--json"])
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end at once: the 400 kB of JSON cannot all fit
        // in a pipe buffer, so the write fails with EPIPE.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
    }
}

mod serve {
    //! `mosaic serve` and `mosaic store` against a real server process.

    use std::io::{BufRead, BufReader, Read, Write as _};
    use std::net::TcpStream;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use mosaic_core::{
        FilterBuilder, Kind, Message, Nonce, OwnedRecord, QueryId, RecordBuilder, ResultCode,
        SecretKey, Timestamp,
    };
    use mosaic_net::{ConnectOptions, connect};

    use super::Dir;

    /// A running `mosaic serve`, killed on drop.
    struct Serve {
        child: Child,
        url: String,
        key: String,
    }

    impl Serve {
        fn start(dir: &Dir) -> Serve {
            let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
                .args(["serve", "--no-dht", "--listen", "127.0.0.1:0", "--data"])
                .arg(dir.path("data"))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let (key, url) = super::read_banner(&mut lines);
            assert!(url.starts_with("ws://127.0.0.1:"), "no URL printed");
            assert!(key.starts_with("mosrv0"), "no server key printed");
            Serve { child, url, key }
        }

        fn addr(&self) -> String {
            self.url
                .trim_start_matches("ws://")
                .trim_end_matches('/')
                .to_string()
        }

        fn kill_9(mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        fn terminate(mut self) -> std::process::ExitStatus {
            let pid = self.child.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            let status = self.child.wait().unwrap();
            std::mem::forget(self);
            status
        }
    }

    impl Drop for Serve {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn records(n: u64) -> Vec<OwnedRecord> {
        let key = SecretKey::from_bytes(&[5; 32]);
        (0..n)
            .map(|i| {
                RecordBuilder::new(
                    Kind::MICROBLOG_ROOT,
                    Timestamp::from_nanos(1_000 + i).unwrap(),
                )
                .nonce(Nonce::from_key(&i.to_be_bytes()))
                .payload(b"durable")
                .build(&key)
                .unwrap()
            })
            .collect()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Four connections pipeline submissions into a real `mosaic serve`,
    /// which is killed with SIGKILL in the middle: after a restart, every
    /// record that was answered ACCEPTED is there.
    #[test]
    fn accepted_records_survive_kill_9_under_load() {
        let dir = Dir::new("serve-load");
        let serve = Serve::start(&dir);
        let url = serve.url.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let author = SecretKey::from_bytes(&[6; 32]);
        let batches: Vec<Vec<OwnedRecord>> = (0..4u64)
            .map(|c| {
                (0..1_000u64)
                    .map(|i| {
                        RecordBuilder::new(
                            Kind::MICROBLOG_ROOT,
                            Timestamp::from_nanos(1_000_000 + c * 1_000 + i).unwrap(),
                        )
                        .nonce(Nonce::from_key(&(c * 1_000 + i).to_be_bytes()))
                        .payload(b"under load")
                        .build(&author)
                        .unwrap()
                    })
                    .collect()
            })
            .collect();
        let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                let url = url.clone();
                let accepted = accepted.clone();
                rt.spawn(async move {
                    let conn = connect(&url, &ConnectOptions::default()).await.unwrap();
                    let (sender, mut receiver) = conn.split();
                    let by_prefix: std::collections::HashMap<_, _> = batch
                        .iter()
                        .map(|r| (mosaic_core::IdPrefix::from_id(&r.id()), r.id()))
                        .collect();
                    let writer = tokio::spawn(async move {
                        for r in &batch {
                            if sender
                                .send(&Message::Submission { record: r.clone() })
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    });
                    while let Ok(Some(received)) = receiver.recv().await {
                        if let Ok(Message::SubmissionResult {
                            code: ResultCode::ACCEPTED,
                            id_prefix,
                        }) = received.message
                        {
                            accepted.lock().unwrap().push(by_prefix[&id_prefix]);
                        }
                    }
                    writer.abort();
                })
            })
            .collect();
        // Kill it once a good part is acknowledged, while the rest flows.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while accepted.lock().unwrap().len() < 300 {
            assert!(std::time::Instant::now() < deadline, "too slow to ingest");
            std::thread::sleep(Duration::from_millis(2));
        }
        serve.kill_9();
        for task in tasks {
            rt.block_on(task).unwrap();
        }
        let acknowledged = accepted.lock().unwrap().clone();
        assert!(
            (300..4_000).contains(&acknowledged.len()),
            "killed while submissions were flowing ({} acknowledged)",
            acknowledged.len()
        );

        let serve = Serve::start(&dir);
        let url = serve.url.clone();
        let found = rt.block_on(async {
            let mut conn = connect(&url, &ConnectOptions::default()).await.unwrap();
            let mut found = 0;
            for (q, chunk) in acknowledged.chunks(500).enumerate() {
                conn.send(&Message::Get {
                    query_id: QueryId(q as u16),
                    references: chunk
                        .iter()
                        .map(|id| mosaic_core::Reference::Id(*id))
                        .collect(),
                })
                .await
                .unwrap();
                loop {
                    match conn.recv().await.unwrap().unwrap().message.unwrap() {
                        Message::Record { .. } => found += 1,
                        Message::QueryClosed { .. } => break,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            found
        });
        assert_eq!(
            found,
            acknowledged.len(),
            "every record answered ACCEPTED survived kill -9"
        );
        drop(serve);
    }

    #[test]
    fn accepted_records_survive_kill_9_and_sigterm_is_clean() {
        let dir = Dir::new("serve");
        let serve = Serve::start(&dir);
        let url = serve.url.clone();
        let rt = runtime();
        let sent = records(20);
        rt.block_on(async {
            let mut conn = connect(&url, &ConnectOptions::default()).await.unwrap();
            for r in &sent {
                conn.send(&Message::Submission { record: r.clone() })
                    .await
                    .unwrap();
                let answer = conn.recv().await.unwrap().unwrap().message.unwrap();
                assert!(matches!(
                    answer,
                    Message::SubmissionResult {
                        code: ResultCode::ACCEPTED,
                        ..
                    }
                ));
            }
        });
        // The key file is private.
        assert_eq!(super::mode(&dir.path("data/server.key")) & 0o777, 0o600);
        serve.kill_9();

        let serve = Serve::start(&dir);
        let url = serve.url.clone();
        let got = rt.block_on(async {
            let mut conn = connect(&url, &ConnectOptions::default()).await.unwrap();
            let filter = FilterBuilder::new()
                .authors([SecretKey::from_bytes(&[5; 32]).public()])
                .build()
                .unwrap();
            conn.send(&Message::Query {
                query_id: QueryId(1),
                limit: 0,
                filter,
            })
            .await
            .unwrap();
            let mut got = 0;
            loop {
                match conn.recv().await.unwrap().unwrap().message.unwrap() {
                    Message::Record { .. } => got += 1,
                    Message::QueryClosed { .. } => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            got
        });
        assert_eq!(got, sent.len(), "every ACCEPTED record survived kill -9");

        // The status page.
        let mut tcp = TcpStream::connect(serve.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        let status: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(status["server_key"], serve.key.as_str());
        assert_eq!(status["records"], 20);

        // SIGTERM: a client is told, and the process exits 0.
        let (tx, rx) = std::sync::mpsc::channel();
        let url = serve.url.clone();
        let watcher = std::thread::spawn(move || {
            runtime().block_on(async {
                let mut conn = connect(&url, &ConnectOptions::default()).await.unwrap();
                tx.send(()).unwrap();
                conn.recv().await.unwrap().unwrap().message.unwrap()
            })
        });
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let status = serve.terminate();
        assert!(status.success(), "exit status {status}");
        assert_eq!(
            watcher.join().unwrap(),
            Message::Closing {
                code: ResultCode::SHUTTING_DOWN
            }
        );

        // The store commands on the stopped server's data.
        let data = dir.path("data");
        let data = data.to_str().unwrap();
        let stats = dir.run(&["store", "stats", "--data", data, "--json"], None, None);
        assert_eq!(stats.code(), 0, "{}", stats.stderr());
        assert_eq!(stats.json()["records"], 20);
        let export = dir.run(&["store", "export", "--data", data, "dump.bin"], None, None);
        assert_eq!(export.code(), 0, "{}", export.stderr());
        let other = dir.path("other");
        std::fs::create_dir_all(other.join("store")).unwrap();
        let other = other.to_str().unwrap();
        let import = dir.run(
            &["store", "import", "--data", other, "dump.bin", "--json"],
            None,
            None,
        );
        assert_eq!(import.code(), 0, "{}", import.stderr());
        assert_eq!(import.json()["inserted"], 20);
        let id = sent[3].id().to_printable();
        let removed = dir.run(&["store", "remove", "--data", other, &id], None, None);
        assert_eq!(removed.code(), 0, "{}", removed.stderr());
        let stats = dir.run(&["store", "stats", "--data", other, "--json"], None, None);
        assert_eq!(stats.json()["records"], 19);
        // A store that does not exist is a clear error.
        dir.run(
            &["store", "stats", "--data", "/nonexistent/mosaic"],
            None,
            None,
        )
        .fails(2, "no store in");
    }

    #[test]
    fn log_format_json_writes_one_object_per_line() {
        let dir = Dir::new("serve-json-logs");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(["serve", "--no-dht", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path("data"))
            .args(["--log-format", "json"])
            .env("RUST_LOG", "mosaic=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let serving = value["fields"]["message"] == "serving";
            seen.push(value);
            if serving {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let serving = seen.last().expect("no log line");
        assert_eq!(serving["fields"]["message"], "serving", "{seen:?}");
        assert_eq!(serving["level"], "INFO");
        assert!(
            serving["fields"]["addr"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:")
        );
        assert!(
            serving["fields"]["key"]
                .as_str()
                .unwrap()
                .starts_with("mosrv0")
        );
        assert!(
            serving["target"]
                .as_str()
                .unwrap()
                .starts_with("mosaic_server")
        );
        assert!(serving["timestamp"].is_string());
    }
}

#[path = "cli/people.rs"]
mod people;

#[path = "cli/ops.rs"]
mod ops;
