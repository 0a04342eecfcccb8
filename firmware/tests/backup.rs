//! `pos backup ...` as the real binary: keygen, create with a key file and with a passphrase
//! on stdin, list, verify (a flipped byte, a cut file, a wrong key and a wrong passphrase
//! refused with exit 1), prune, export to and import from a directory standing in for a USB
//! stick, and restore (scripted with --yes, refused while `pos terminal` holds the data dir).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

const PASSPHRASE: &str = "correct horse battery staple";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
}

impl Env {
    /// A terminal data dir made by `pos init`; `config` is the config file's text.
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("pos.toml");
        std::fs::write(&config_path, config).unwrap();
        let data = dir.path().join("till");
        let env = Env {
            config: config_path,
            data,
            dir,
        };
        env.ok(
            &env.data,
            &["init", "--role", "terminal", "--name", "till-1"],
            "",
        );
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn backups(&self) -> PathBuf {
        self.data.join("backups")
    }

    fn pos(&self, data: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pos"));
        c.env_remove("POS_DATA_DIR")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("POS_CONFIG", &self.config)
            .arg("--data-dir")
            .arg(data);
        c
    }

    fn run(&self, data: &Path, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .pos(data)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, data: &Path, args: &[&str], stdin: &str) -> String {
        let out = self.run(data, args, stdin);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Exit code `code`; stderr returned.
    fn fails(&self, data: &Path, args: &[&str], stdin: &str, code: i32) -> String {
        let out = self.run(data, args, stdin);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", show(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn keygen(&self, name: &str) -> String {
        let key = self.path(name);
        self.ok(
            &self.data,
            &["backup", "keygen", "--out", key.to_str().unwrap()],
            "",
        );
        key.to_str().unwrap().to_owned()
    }

    /// `pos backup create` with a key file; the new file's path.
    fn create(&self, key: &str, kind: &str) -> PathBuf {
        let out = self.ok(
            &self.data,
            &["backup", "create", "--kind", kind, "--key-file", key],
            "",
        );
        assert!(out.contains("Verified"), "{out}");
        PathBuf::from(after(&out, "Backup written: ").split(" (").next().unwrap())
    }

    fn list_json(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&self.data, &["backup", "list", "--json"], "");
        serde_json::from_str(&out).unwrap()
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn after<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn keygen_create_list_verify_and_bad_copies_refused() {
    let env = Env::new("");
    let key = env.keygen("backup.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let err = env.fails(&env.data, &["backup", "keygen", "--out", &key], "", 2);
    assert!(err.contains("refusing to overwrite"), "{err}");

    // With a key file, then with a passphrase on stdin.
    let with_key = env.create(&key, "manual");
    let out = env.ok(
        &env.data,
        &["backup", "create", "--kind", "daily"],
        &format!("{PASSPHRASE}\n"),
    );
    assert!(out.contains("Verified"), "{out}");
    let err = env.fails(&env.data, &["backup", "create"], "short\n", 2);
    assert!(err.contains("at least 8 characters"), "{err}");

    let list = env.list_json();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["kind"], "daily");
    assert_eq!(list[0]["key"], "passphrase");
    assert_eq!(list[1]["kind"], "manual");
    assert_eq!(list[1]["device"], "till-1");
    assert_eq!(list[1]["file"], with_key.to_str().unwrap());
    let text = env.ok(&env.data, &["backup", "list"], "");
    assert!(text.contains("till-1") && text.contains("manual"), "{text}");
    // --verify: the key file for one, the passphrase (asked once) for the other.
    let text = env.ok(
        &env.data,
        &["backup", "list", "--verify", "--key-file", &key],
        &format!("{PASSPHRASE}\n"),
    );
    assert_eq!(text.matches("verified").count(), 2, "{text}");

    let out = env.ok(
        &env.data,
        &[
            "backup",
            "verify",
            with_key.to_str().unwrap(),
            "--key-file",
            &key,
        ],
        "",
    );
    assert!(out.starts_with("OK "), "{out}");
    assert!(out.contains("till-1") && out.contains("records"), "{out}");
    let out = env.ok(
        &env.data,
        &["backup", "verify", "--latest"],
        &format!("{PASSPHRASE}\n"),
    );
    assert!(out.contains("daily"), "{out}");

    // A flipped byte in a copy: exit 1, the offset named.
    let bytes = std::fs::read(&with_key).unwrap();
    let flipped = env.path("flipped.3pbak");
    let mut damaged = bytes.clone();
    let at = bytes.len() / 2;
    damaged[at] ^= 0x01;
    std::fs::write(&flipped, &damaged).unwrap();
    let err = env.fails(
        &env.data,
        &[
            "backup",
            "verify",
            flipped.to_str().unwrap(),
            "--key-file",
            &key,
        ],
        "",
        1,
    );
    assert!(err.contains("damaged at byte"), "{err}");
    // A cut file.
    let cut = env.path("cut.3pbak");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let err = env.fails(
        &env.data,
        &[
            "backup",
            "verify",
            cut.to_str().unwrap(),
            "--key-file",
            &key,
        ],
        "",
        1,
    );
    assert!(err.contains("incomplete"), "{err}");
    // Another key, a wrong passphrase.
    let other = env.keygen("other.key");
    let err = env.fails(
        &env.data,
        &[
            "backup",
            "verify",
            with_key.to_str().unwrap(),
            "--key-file",
            &other,
        ],
        "",
        1,
    );
    assert!(err.contains("does not open"), "{err}");
    let err = env.fails(
        &env.data,
        &["backup", "verify", "--latest"],
        "not the passphrase\n",
        1,
    );
    assert!(err.contains("does not open"), "{err}");
    // The listed backups are untouched by all this.
    assert_eq!(env.list_json().len(), 2);
}

#[test]
fn prune_keeps_the_newest_and_manual_and_removes_stale_partials() {
    // Keep nothing by the calendar: only the rules "never the newest, never manual" keep.
    let env = Env::new("[backup]\nkeep_hourly = 0\nkeep_daily = 0\nkeep_monthly = 0\n");
    let key = env.keygen("backup.key");
    // Another device's backup in the same dir (imported from a stick): never pruned here.
    let other = env.path("other");
    env.ok(
        &other,
        &["init", "--role", "terminal", "--name", "till-2"],
        "",
    );
    env.ok(
        &other,
        &[
            "backup",
            "create",
            "--kind",
            "hourly",
            "--key-file",
            &key,
            "--to",
            env.backups().to_str().unwrap(),
        ],
        "",
    );
    let manual = env.create(&key, "manual");
    let old = env.create(&key, "hourly");
    let older = env.create(&key, "hourly");
    let newest = env.create(&key, "hourly");
    let stale = env.backups().join("pos-till-1-x-hourly.3pbak.partial");
    std::fs::write(&stale, b"cut short").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    let fresh = env.backups().join("pos-till-1-y-hourly.3pbak.partial");
    std::fs::write(&fresh, b"being written").unwrap();

    let out = env.ok(&env.data, &["backup", "prune", "--dry-run"], "");
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(names(&env.backups()).len(), 7);

    let out = env.ok(&env.data, &["backup", "prune"], "");
    assert!(
        out.contains("2 kept, 2 removed, 1 stale unfinished file(s) removed, 1 of other"),
        "{out}"
    );
    assert_eq!(names(&env.backups()).len(), 4, "{out}");
    assert!(manual.exists() && newest.exists(), "{out}");
    assert!(!old.exists() && !older.exists(), "{out}");
    assert!(!stale.exists() && fresh.exists(), "{out}");
}

#[test]
fn export_and_import_through_a_stick() {
    let env = Env::new("");
    let key = env.keygen("backup.key");
    env.create(&key, "manual");
    let newest = env.create(&key, "daily");
    let stick = env.path("stick");
    std::fs::create_dir(&stick).unwrap();
    let out = env.ok(
        &env.data,
        &[
            "backup",
            "export",
            "--to",
            stick.to_str().unwrap(),
            "--latest",
        ],
        "",
    );
    assert!(out.contains("read back and compared"), "{out}");
    let on_stick = stick.join("pos-backups");
    let name = newest.file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(names(&on_stick), vec![name.clone()]);
    assert_eq!(
        std::fs::read(on_stick.join(&name)).unwrap(),
        std::fs::read(&newest).unwrap()
    );
    // Again: already there, nothing doubled.
    let out = env.ok(
        &env.data,
        &["backup", "export", "--to", stick.to_str().unwrap()],
        "",
    );
    assert!(out.contains("already there"), "{out}");
    assert_eq!(names(&on_stick).len(), 1);
    // A stick that is not mounted.
    let err = env.fails(
        &env.data,
        &[
            "backup",
            "export",
            "--to",
            env.path("nowhere").to_str().unwrap(),
        ],
        "",
        2,
    );
    assert!(err.contains("is the drive mounted"), "{err}");

    // Import into another device's backup dir, then it verifies there.
    let other = env.path("other");
    env.ok(
        &other,
        &["init", "--role", "terminal", "--name", "till-2"],
        "",
    );
    let out = env.ok(
        &other,
        &["backup", "import", "--from", stick.to_str().unwrap()],
        "",
    );
    assert!(out.contains("1 backup(s)"), "{out}");
    let imported = other.join("backups").join(&name);
    assert_eq!(
        std::fs::read(&imported).unwrap(),
        std::fs::read(&newest).unwrap()
    );
    env.ok(
        &other,
        &[
            "backup",
            "verify",
            imported.to_str().unwrap(),
            "--key-file",
            &key,
        ],
        "",
    );
    let err = env.fails(
        &other,
        &[
            "backup",
            "import",
            "--from",
            env.path("empty").to_str().unwrap(),
        ],
        "",
        2,
    );
    assert!(err.contains("is not a directory"), "{err}");
}

#[test]
fn restore_with_yes_keeps_the_old_data_and_is_refused_while_the_service_runs() {
    let env = Env::new("");
    let key = env.keygen("backup.key");
    let backup = env.create(&key, "manual");
    let file = backup.to_str().unwrap();

    // Not a terminal and no --yes: refused, saying what to pass.
    let err = env.fails(&env.data, &["backup", "restore", file], "", 2);
    assert!(err.contains("--yes"), "{err}");
    let err = env.fails(&env.data, &["backup", "restore", "--yes"], "", 2);
    assert!(err.contains("FILE"), "{err}");

    // While `pos terminal` holds the data dir: refused, nothing changed.
    let mut terminal = env
        .pos(&env.data)
        .args(["terminal", "--headless", "--exit-after-ms", "30000"])
        .env("POS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(terminal.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("the terminal ended early").unwrap();
        if line.contains("running headless") {
            break;
        }
    }
    let err = env.fails(
        &env.data,
        &["backup", "restore", file, "--yes", "--key-file", &key],
        "",
        2,
    );
    terminal.kill().unwrap();
    terminal.wait().unwrap();
    assert!(
        err.contains("stop the pos service") || err.contains("Stop the pos service"),
        "{err}"
    );
    assert!(
        !names(&env.data)
            .iter()
            .any(|n| n.starts_with("pre-restore")),
        "{:?}",
        names(&env.data)
    );

    // A wrong key: exit 1, nothing changed.
    let other = env.keygen("other.key");
    let err = env.fails(
        &env.data,
        &["backup", "restore", file, "--yes", "--key-file", &other],
        "",
        1,
    );
    assert!(err.contains("does not open"), "{err}");
    assert!(!names(&env.data)
        .iter()
        .any(|n| n.starts_with("pre-restore")));

    // Scripted restore.
    let out = env.ok(
        &env.data,
        &["backup", "restore", file, "--yes", "--key-file", &key],
        "",
    );
    assert!(out.contains("Restored"), "{out}");
    assert!(out.contains("start the pos service"), "{out}");
    let kept: Vec<String> = names(&env.data)
        .into_iter()
        .filter(|n| n.starts_with("pre-restore"))
        .collect();
    assert_eq!(kept.len(), 1, "{out}");
    assert!(env.data.join(&kept[0]).join("pos.db").exists());
    let out = env.ok(&env.data, &["audit", "verify"], "");
    assert!(out.starts_with("OK"), "{out}");

    // Into a new, empty data dir.
    let fresh = env.path("fresh");
    let out = env.ok(
        &fresh,
        &["backup", "restore", file, "--yes", "--key-file", &key],
        "",
    );
    assert!(out.contains("nothing was kept aside"), "{out}");
    env.ok(&fresh, &["audit", "verify"], "");
    // Nothing to resume.
    let out = env.ok(&fresh, &["backup", "restore", "--resume"], "");
    assert!(out.contains("nothing to do"), "{out}");
}

#[test]
fn a_backup_of_a_newer_schema_is_refused_and_changes_nothing() {
    let env = Env::new("");
    let key = env.keygen("backup.key");
    // The database says it has a schema this pos does not know (as if made by a newer pos).
    let conn = rusqlite::Connection::open(env.data.join("pos.db")).unwrap();
    conn.pragma_update(None, "user_version", 9999).unwrap();
    drop(conn);
    let err = env.fails(&env.data, &["backup", "create", "--key-file", &key], "", 1);
    assert!(err.contains("newer than this version of pos"), "{err}");
    assert!(err.contains("moved aside"), "{err}");
    // Not listed, so never chosen.
    assert!(env.list_json().is_empty());
    let aside = names(&env.backups())
        .into_iter()
        .find(|n| n.ends_with(".failed"))
        .unwrap();
    let aside = env.backups().join(aside);
    let file = aside.to_str().unwrap();
    let err = env.fails(
        &env.data,
        &["backup", "verify", file, "--key-file", &key],
        "",
        1,
    );
    assert!(err.contains("update pos"), "{err}");
    let fresh = env.path("fresh");
    let err = env.fails(
        &fresh,
        &["backup", "restore", file, "--yes", "--key-file", &key],
        "",
        1,
    );
    assert!(err.contains("update pos"), "{err}");
    assert!(
        names(&fresh).iter().all(|n| n == "pos.lock"),
        "{:?}",
        names(&fresh)
    );
}

/// The wizard on a pseudo-terminal: the list, a choice, the check, the typed device name.
#[test]
fn the_guided_restore_asks_checks_and_restores() {
    use std::io::Read as _;
    use std::sync::{Arc, Mutex};

    let env = Env::new("");
    let key = env.keygen("backup.key");
    env.create(&key, "manual");
    env.create(&key, "daily");

    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = env.pos(&env.data);
    cmd.args(["backup", "restore", "--key-file", &key])
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave));
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // our copies of the slave: the master reads EOF (EIO) once the child is gone
    let mut master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let collector = {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let wait_for = |text: &str, from: usize| -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let s = seen.lock().unwrap().clone();
            if let Some(i) = s[from.min(s.len())..].find(text) {
                return from + i + text.len();
            }
            assert!(std::time::Instant::now() < deadline, "no {text:?} in:\n{s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let at = wait_for("Which backup?", 0);
    {
        let s = seen.lock().unwrap().clone();
        assert!(s.contains("daily") && s.contains("manual"), "{s}");
        assert!(s.contains("not checked yet"), "{s}");
    }
    master.write_all(b"7\n").unwrap();
    let at = wait_for("Type a number from 1 to 2", at);
    master.write_all(b"2\n").unwrap();
    let at = wait_for("Type the device name", at);
    {
        let s = seen.lock().unwrap().clone();
        assert!(s.contains("verified:") && s.contains("records"), "{s}");
        assert!(s.contains("pre-restore"), "{s}");
    }
    master.write_all(b"till-1\n").unwrap();
    let status = child.wait().unwrap();
    wait_for("start the pos service", at);
    drop(master);
    let out = seen.lock().unwrap().clone();
    assert!(status.success(), "{out}");
    assert!(out.contains("Restored"), "{out}");
    assert!(
        names(&env.data)
            .iter()
            .any(|n| n.starts_with("pre-restore")),
        "{out}"
    );
    env.ok(&env.data, &["audit", "verify"], "");
    let _ = collector;
}

/// `pos backup offsite push|list|get` against a real sshd on 127.0.0.1: the newest backup goes
/// over, is listed, comes back byte-equal into another box's backup dir and verifies there;
/// a server with another host key is refused with what to check.
#[test]
fn offsite_push_list_get_through_a_real_sftp_server() {
    let server = pos_testkit::sshd::SshServer::start();
    let store = server.path("store").display().to_string();
    let config = format!(
        "[backup]\noffsite = \"{}\"\noffsite_identity = \"{}\"\noffsite_known_hosts = \"{}\"\n",
        server.url(&store),
        server.path("client_key").display(),
        server.path("known_hosts").display()
    );
    let env = Env::new(&config);
    let key = env.keygen("backup.key");
    let made = env.create(&key, "manual");
    let name = made.file_name().unwrap().to_string_lossy().into_owned();

    let out = env.ok(&env.data, &["backup", "offsite", "push"], "");
    assert!(out.contains(&format!("Copied {name}")), "{out}");
    let out = env.ok(&env.data, &["backup", "offsite", "list"], "");
    assert!(out.contains(&name), "{out}");

    // Another box (a replacement) fetches it and checks it with the key.
    let other = env.path("replacement");
    env.ok(
        &other,
        &["init", "--role", "terminal", "--name", "till-9"],
        "",
    );
    let out = env.ok(&other, &["backup", "offsite", "get", &name], "");
    assert!(out.contains("pos backup restore"), "{out}");
    let fetched = other.join("backups").join(&name);
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&made).unwrap()
    );
    env.ok(
        &other,
        &[
            "backup",
            "verify",
            fetched.to_str().unwrap(),
            "--key-file",
            &key,
        ],
        "",
    );

    // A known_hosts that pins another key: refused, nothing copied.
    let other_key = server.path("other_host_key");
    pos_testkit::sshd::keygen(&other_key);
    std::fs::write(
        server.path("known_hosts"),
        pos_testkit::sshd::known_hosts_line(&other_key, server.port),
    )
    .unwrap();
    let err = env.fails(&env.data, &["backup", "offsite", "list"], "", 2);
    assert!(err.contains("host key"), "{err}");
}
