//! `pos user` and `pos login` as a real process: first-run admin with a one-time password and a
//! forced change that enrols TOTP, a cashier with a one-time PIN, lockout and unlock, unknown
//! roles, hostile standard input, and no secret in any output or in `pos audit log`.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pos_auth::{totp_code, TotpSecret};

const ADMIN_PASSWORD: &str = "Tangerine-Velvet-Harbor-93";
const ALICE_PIN: &str = "48151623";
const WRONG_PIN: &str = "86420975";

#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Config file of the tests that need other `[auth]` rules, next to the data dir.
const CONFIG_FILE: &str = "pos.toml";

/// Run `pos ARGS --data-dir DATA` with `stdin` piped in, with `--config` when the data dir's
/// parent holds a [`CONFIG_FILE`]. `trace` turns on every log line (POS_LOG=trace), so that the
/// outputs searched for secrets include the logs.
fn pos_with(data: &Path, args: &[&str], stdin: &[u8], trace: bool) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pos"));
    cmd.args(args).arg("--data-dir").arg(data);
    let config = data.with_file_name(CONFIG_FILE);
    if config.is_file() {
        cmd.arg("--config").arg(config);
    }
    cmd.env_remove("POS_DATA_DIR")
        .env_remove("POS_CONFIG")
        .env_remove("POS_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if trace {
        cmd.env("POS_LOG", "trace");
    }
    let mut child = cmd.spawn().expect("run pos");
    let mut input = child.stdin.take().unwrap();
    // pos may stop reading early (a refused line): a broken pipe is its business, not ours.
    match input.write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let out = Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

fn pos(data: &Path, args: &[&str], stdin: &str) -> Out {
    pos_with(data, args, stdin.as_bytes(), true)
}

fn lines(items: &[&str]) -> String {
    items.iter().map(|l| format!("{l}\n")).collect()
}

/// The value after `prefix` on the first stdout line that contains it.
fn after(out: &Out, prefix: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.split_once(prefix).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no `{prefix}` in {out:?}"))
}

/// Whether `secret` occurs in `text`; an all-digit secret only where it stands alone (not inside
/// a longer run of letters and digits such as a timestamp or a hash).
fn leaks(text: &str, secret: &str) -> bool {
    let (hay, needle) = (text.as_bytes(), secret.as_bytes());
    let numeric = needle.iter().all(u8::is_ascii_digit);
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .any(|(i, _)| {
            let alnum = |j: Option<usize>| {
                j.and_then(|j| hay.get(j))
                    .is_some_and(u8::is_ascii_alphanumeric)
            };
            !numeric || (!alnum(i.checked_sub(1)) && !alnum(Some(i + needle.len())))
        })
}

/// `pos init --role hub`: returns the first admin's one-time password.
fn init(data: &Path) -> String {
    let out = pos(data, &["init", "--role", "hub"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("First admin user: admin"), "{out:?}");
    let one_time = after(&out, "One-time password (shown once):");
    assert_eq!(one_time.chars().count(), 16, "{one_time:?}");
    one_time
}

/// `pos user passwd admin` from the one-time password: returns the enrolled TOTP secret.
fn first_password_change(data: &Path, one_time: &str) -> (Out, TotpSecret) {
    let out = pos(
        data,
        &["user", "passwd", "admin"],
        &lines(&[one_time, ADMIN_PASSWORD]),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Secret changed for admin"), "{out:?}");
    let uri = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("otpauth://totp/"))
        .unwrap_or_else(|| panic!("no otpauth URI in {out:?}"))
        .to_owned();
    let base32 = after(&out, "secret:");
    assert!(uri.contains(&format!("secret={base32}&")), "{uri}");
    assert!(
        uri.contains("digits=6") && uri.contains("period=30"),
        "{uri}"
    );
    let secret = TotpSecret::from_base32(&base32).unwrap();
    (out, secret)
}

/// The admin's authenticator app, as the tests use it: each code is for a step the store has not
/// seen yet (it refuses a replayed step) and that it accepts (its clock's step, or one either
/// side). Waits for the next 30-s step only when all usable steps are spent.
#[derive(Debug)]
struct Authenticator {
    secret: TotpSecret,
    last_step: Option<u64>,
}

impl Authenticator {
    fn new(secret: TotpSecret) -> Self {
        Authenticator {
            secret,
            last_step: None,
        }
    }

    fn code(&mut self) -> String {
        loop {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let step = now.as_secs() / 30;
            let into_step = now.as_secs_f64() - (step * 30) as f64;
            // The previous step is accepted only while the store's clock is in this one: use it
            // only with 20 s to spare. The next step stays accepted until the one after.
            let mut usable = Vec::new();
            if into_step < 10.0 {
                usable.push(step - 1);
            }
            usable.extend([step, step + 1]);
            if let Some(s) = usable
                .into_iter()
                .find(|s| self.last_step.is_none_or(|last| *s > last))
            {
                self.last_step = Some(s);
                return totp_code(&self.secret, s * 30);
            }
            std::thread::sleep(Duration::from_secs_f64(30.0 - into_step + 0.2));
        }
    }

    /// stdin for `--as admin`: the password, then a fresh code.
    fn actor_input(&mut self) -> String {
        lines(&[ADMIN_PASSWORD, &self.code()])
    }
}

#[test]
fn first_admin_enrols_totp_then_manages_a_cashier_and_no_secret_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pos");
    let d = data.as_path();
    // Locks that outlast the test, even if it waits for a fresh TOTP step: only an unlock ends
    // them here.
    std::fs::write(
        dir.path().join(CONFIG_FILE),
        "[auth]\nlockout_base_s = 3600\nlockout_max_s = 3600\n",
    )
    .unwrap();
    // Every output that is not meant to show a secret.
    let mut outputs: Vec<Out> = Vec::new();

    let one_time = init(d);

    // The one-time password must be changed before anything else.
    let out = pos(d, &["login", "--user", "admin"], &lines(&[&one_time]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("must be changed"), "{out:?}");
    assert!(out.stderr.contains("pos user passwd admin"), "{out:?}");
    assert!(!out.stdout.contains("OK logged in"), "{out:?}");
    outputs.push(out);

    // A weak new password is refused, and nothing changes.
    let out = pos(
        d,
        &["user", "passwd", "admin"],
        &lines(&[&one_time, "password"]),
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("too short"), "{out:?}");
    outputs.push(out);

    let (passwd_out, totp) = first_password_change(d, &one_time);
    assert!(!leaks(&passwd_out.all(), ADMIN_PASSWORD));
    assert!(!leaks(&passwd_out.all(), &one_time));
    let totp_base32 = totp.to_base32();
    let mut app = Authenticator::new(totp);

    // Password alone is not enough; password and code log in.
    let out = pos(d, &["login", "--user", "admin"], &lines(&[ADMIN_PASSWORD]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("authenticator code is required"),
        "{out:?}"
    );
    outputs.push(out);
    let code = app.code();
    let out = pos(
        d,
        &["login", "--user", "admin"],
        &lines(&[ADMIN_PASSWORD, &code]),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("OK logged in as admin"), "{out:?}");
    outputs.push(out);
    // The same code again is a replay.
    let out = pos(
        d,
        &["login", "--user", "admin"],
        &lines(&[ADMIN_PASSWORD, &code]),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("wrong authenticator code"), "{out:?}");
    outputs.push(out);
    // The one-time password is gone.
    let out = pos(d, &["login", "--user", "admin"], &lines(&[&one_time]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("wrong user name or secret"), "{out:?}");
    outputs.push(out);

    // The admin creates a cashier, who gets a one-time PIN.
    let out = pos(
        d,
        &["user", "add", "alice", "--role", "cashier", "--as", "admin"],
        &app.actor_input(),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Created user alice"), "{out:?}");
    let pin = after(
        &out,
        "One-time secret (shown once, must be changed at first use):",
    );
    assert_eq!(pin.len(), 6, "{pin:?}");
    assert!(pin.bytes().all(|b| b.is_ascii_digit()), "{pin:?}");
    assert!(!leaks(&out.all(), ADMIN_PASSWORD));

    let out = pos(d, &["user", "list"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let alice = out
        .stdout
        .lines()
        .find(|l| l.starts_with("alice "))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(alice.contains("cashier"), "{alice}");
    assert!(alice.contains("must change secret"), "{alice}");
    let admin = out
        .stdout
        .lines()
        .find(|l| l.starts_with("admin "))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(admin.contains(" active "), "{admin}");
    outputs.push(out);

    let out = pos(d, &["user", "list", "--json"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let users: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(users.len(), 2);
    for u in &users {
        let mut keys: Vec<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "active",
                "credentials",
                "display_name",
                "id",
                "locked",
                "must_change",
                "name",
                "roles"
            ]
        );
    }
    let alice = users.iter().find(|u| u["name"] == "alice").unwrap();
    assert_eq!(alice["roles"], serde_json::json!(["cashier"]));
    assert_eq!(alice["credentials"], serde_json::json!(["pin"]));
    assert_eq!(alice["must_change"], true);
    assert_eq!(alice["locked"], serde_json::Value::Null);
    let admin = users.iter().find(|u| u["name"] == "admin").unwrap();
    assert_eq!(
        admin["credentials"],
        serde_json::json!(["password", "totp"])
    );
    assert_eq!(admin["must_change"], false);
    for forbidden in ["verifier", "secret", "argon2", &totp_base32] {
        assert!(!out.stdout.contains(forbidden), "{forbidden}: {out:?}");
    }
    outputs.push(out);

    // Five wrong PINs lock alice; then even the right one is refused with the lock's end.
    for i in 1..=5 {
        let out = pos(d, &["login", "--user", "alice"], &lines(&[WRONG_PIN]));
        assert_eq!(out.code, Some(1), "attempt {i}: {out:?}");
        assert!(out.stderr.contains("wrong user name or secret"), "{out:?}");
        if i == 5 {
            assert!(out.stderr.contains("now locked"), "{out:?}");
        }
        outputs.push(out);
    }
    for secret in [WRONG_PIN, pin.as_str()] {
        let out = pos(d, &["login", "--user", "alice"], &lines(&[secret]));
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains("locked until"), "{out:?}");
        outputs.push(out);
    }
    let out = pos(d, &["user", "list"], "");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("alice ") && l.contains("locked until")),
        "{out:?}"
    );
    outputs.push(out);

    // Only someone else with user administration unlocks: the admin does.
    let out = pos(
        d,
        &["user", "unlock", "alice", "--as", "admin"],
        &app.actor_input(),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Unlocked alice"), "{out:?}");
    outputs.push(out);
    let out = pos(d, &["login", "--user", "alice"], &lines(&[&pin]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("must be changed"), "{out:?}");
    assert!(!out.stderr.contains("locked"), "{out:?}");
    outputs.push(out);

    // Alice chooses her PIN: a trivial one is refused, a good one works.
    let out = pos(d, &["user", "passwd", "alice"], &lines(&[&pin, "1234"]));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("too easy to guess"), "{out:?}");
    outputs.push(out);
    let out = pos(d, &["user", "passwd", "alice"], &lines(&[&pin, ALICE_PIN]));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("otpauth://"), "{out:?}");
    outputs.push(out);
    let out = pos(d, &["login", "--user", "alice"], &lines(&[ALICE_PIN]));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("OK logged in as alice (cashier)"),
        "{out:?}"
    );
    outputs.push(out);

    // The audit trail has the credential changes, never a secret nor a verifier.
    let text = pos(d, &["audit", "log"], "");
    assert_eq!(text.code, Some(0), "{text:?}");
    assert!(text.stdout.contains("user.credential_set"), "{text:?}");
    assert!(text.stdout.contains("security.user_locked"), "{text:?}");
    let json = pos(d, &["audit", "log", "--json"], "");
    assert_eq!(json.code, Some(0), "{json:?}");
    let records: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let credential_sets: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["module"] == "user" && r["kind"] == "credential_set")
        .collect();
    // admin: one-time, new password, TOTP; alice: one-time PIN, new PIN.
    assert_eq!(credential_sets.len(), 5, "{json:?}");
    for r in &credential_sets {
        assert_eq!(r["payload"]["verifier"], "[redacted]", "{r}");
    }
    for out in [&text, &json] {
        assert!(!out.all().contains("$argon2id$"), "{out:?}");
        for secret in [
            one_time.as_str(),
            ADMIN_PASSWORD,
            &totp_base32,
            &pin,
            ALICE_PIN,
            WRONG_PIN,
        ] {
            assert!(!leaks(&out.all(), secret), "{secret} in {out:?}");
        }
    }
    outputs.push(text);
    outputs.push(json);

    // No output (logs at TRACE included) shows a secret it was not meant to show.
    for out in &outputs {
        let all = out.all();
        for secret in [
            one_time.as_str(),
            ADMIN_PASSWORD,
            &totp_base32,
            ALICE_PIN,
            WRONG_PIN,
        ] {
            assert!(!leaks(&all, secret), "{secret} in {out:?}");
        }
    }
}

#[test]
fn unknown_roles_duplicates_and_wrong_actor_secrets_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pos");
    let d = data.as_path();
    let one_time = init(d);
    let (_, totp) = first_password_change(d, &one_time);
    let mut app = Authenticator::new(totp);

    // A wrong actor secret is a refusal (exit 1), and nothing is created.
    let out = pos(
        d,
        &["user", "add", "bob", "--role", "cashier", "--as", "admin"],
        &lines(&["Not-The-Admin-Password-1", ""]),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("wrong user name or secret"), "{out:?}");

    let out = pos(
        d,
        &["user", "add", "bob", "--role", "wizard", "--as", "admin"],
        &app.actor_input(),
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("unknown role `wizard`"), "{out:?}");
    assert!(
        out.stderr
            .contains("cashier, supervisor, manager, accountant, auditor, admin, technician"),
        "{out:?}"
    );

    let out = pos(
        d,
        &["user", "add", "ADMIN", "--role", "manager", "--as", "admin"],
        &app.actor_input(),
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("already exists"), "{out:?}");

    let out = pos(d, &["user", "list", "--json"], "");
    let users: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = users.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin"]);
}

#[test]
fn hostile_standard_input_is_a_one_line_error_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pos");
    let d = data.as_path();
    init(d);

    let mut huge = vec![b'x'; 5000];
    huge.push(b'\n');
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("a 5000-byte line", huge, "longer than 1024 bytes"),
        (
            "invalid UTF-8",
            b"\xff\xfe\xc3\x28pass\n".to_vec(),
            "not valid UTF-8",
        ),
        (
            "empty input",
            Vec::new(),
            "Secret expected on standard input",
        ),
        (
            "an empty line",
            b"\n".to_vec(),
            "Secret expected on standard input",
        ),
        (
            "a NUL byte and no newline",
            b"\0".repeat(2000),
            "longer than 1024 bytes",
        ),
    ];
    for (what, stdin, message) in cases {
        let out = pos_with(d, &["login", "--user", "admin"], &stdin, false);
        assert_eq!(out.code, Some(2), "{what}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{what}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{what}: {out:?}");
        assert!(out.stderr.contains(message), "{what}: {out:?}");
        assert!(out.stdout.is_empty(), "{what}: {out:?}");
    }

    // Hostile names are refused like any unknown user: exit 1, one line.
    let long_name = "n".repeat(5000);
    for name in [long_name.as_str(), "", "ad\u{1b}[2Jmin"] {
        let out = pos_with(d, &["login", "--user", name], b"whatever-secret\n", false);
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert!(out.stderr.contains("wrong user name or secret"), "{out:?}");
    }

    // None of the unreadable inputs reached the store as a login attempt.
    let out = pos(
        d,
        &["audit", "log", "--json", "--kind", "security.login_failed"],
        "",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let failed: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(failed.len(), 3, "{out:?}");
    for f in &failed {
        assert_eq!(f["payload"]["reason"], "unknown_user", "{f}");
        assert!(
            f["payload"]["name"].as_str().unwrap().chars().count() <= 64,
            "{f}"
        );
    }
    let out = pos(d, &["user", "list", "--json"], "");
    let users: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(users[0]["name"], "admin");
    assert_eq!(users[0]["locked"], serde_json::Value::Null);
}
