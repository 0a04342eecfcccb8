//! The hub and a terminal as real processes: `pos init --role hub`, `pos hub enroll-code`,
//! `pos hub` on a free port, `pos enroll` from a terminal's data dir, `pos terminal` syncing its
//! log to the hub (seen in `pos hub devices list --json` and the hub's `pos audit verify`), and a
//! revoked terminal refused.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "Branch-Keeper-4471";

struct Env {
    _dir: tempfile::TempDir,
    config: PathBuf,
    hub: PathBuf,
    till: PathBuf,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // No TOTP for the admin, so the test can act as the admin with a password only.
        let config = dir.path().join("pos.toml");
        std::fs::write(&config, "[auth]\nmfa_roles = []\n").unwrap();
        let hub = dir.path().join("hub");
        // `pos demo` makes the terminal, enrolled with the demo's own hub (so this test
        // enrolls it here with --force), which gave it the staff and catalogue `--sim-sales`
        // sells with.
        let till = dir.path().join("demo").join("terminal-1");
        Env {
            config,
            hub,
            till,
            _dir: dir,
        }
    }

    fn pos(&self, data: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pos"));
        c.env_remove("POS_DATA_DIR")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("POS_CONFIG", &self.config)
            .env("POS_LOG", "info")
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

    fn actor(&self) -> String {
        format!("{ADMIN_PASSWORD}\n\n")
    }

    /// Start `pos hub` on a free port: the child and its address.
    fn start_hub(&self) -> (Hub, String) {
        let mut child = self
            .pos(&self.hub)
            .args(["hub", "--headless", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("hub listening on ")
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        (Hub(Some(child)), addr)
    }

    fn devices(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&self.hub, &["hub", "devices", "list", "--json"], "");
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
        .trim()
}

/// A running hub, killed if the test fails before stopping it.
struct Hub(Option<Child>);

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stop(mut hub: Hub) -> String {
    let mut child = hub.0.take().unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the hub still runs after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(status.code(), Some(0), "{stderr}");
    stderr
}

fn terminal_row(devices: &[serde_json::Value], name: &str) -> serde_json::Value {
    devices
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {devices:?}"))
        .clone()
}

#[test]
fn a_terminal_enrolls_syncs_its_log_to_the_hub_and_is_refused_once_revoked() {
    let env = Env::new();
    // The hub, its admin with a real password.
    let init = env.ok(&env.hub, &["init", "--role", "hub", "--name", "hub"], "");
    let one_time = after(&init, "One-time password (shown once):").to_owned();
    env.ok(
        &env.hub,
        &["user", "passwd", "admin"],
        &format!("{one_time}\n{ADMIN_PASSWORD}\n"),
    );
    // A code, made while the hub is stopped.
    let out = env.ok(
        &env.hub,
        &["hub", "enroll-code", "--as", "admin", "--ttl-min", "10"],
        &env.actor(),
    );
    let code = after(&out, "Enrollment code:").to_owned();
    assert_eq!(code.len(), 19, "{out}");

    let (hub, addr) = env.start_hub();
    // While the hub runs, it makes codes through its control socket; a wrong secret there is
    // refused like anywhere else (exit 1).
    let out = env.ok(
        &env.hub,
        &["hub", "enroll-code", "--as", "admin"],
        &env.actor(),
    );
    let second_code = after(&out, "Enrollment code:").to_owned();
    assert_eq!(second_code.len(), 19, "{out}");
    assert_ne!(second_code, code);
    let out = env.run(
        &env.hub,
        &["hub", "enroll-code", "--as", "admin"],
        "Wrong-Password-123\n\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("refused"), "{}", show(&out));

    // The terminal enrolls; a wrong code and a second enrollment are refused.
    let demo = env.till.parent().unwrap().to_path_buf();
    // With the default config (the demo enrols the admin's second factor itself).
    let out = env
        .pos(&demo)
        .env_remove("POS_CONFIG")
        .args(["demo", "--headless", "--sales", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // Each command on the other kind of data dir says what it needs.
    let out = env.run(
        &env.till,
        &["hub", "--headless", "--listen", "127.0.0.1:0"],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("not a hub's"), "{}", show(&out));
    // A terminal not enrolled yet (the demo's are, with the demo's own hub) says how to.
    let fresh = demo.join("fresh");
    env.ok(
        &fresh,
        &["init", "--role", "terminal", "--name", "fresh"],
        "",
    );
    let out = env.run(
        &fresh,
        &[
            "terminal",
            "--headless",
            "--exit-after-ms",
            "100",
            "--hub",
            &addr,
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("pos enroll"), "{}", show(&out));
    // The demo enrolled its terminals with its own hub: moving to this hub takes --force.
    let out = env.run(&env.till, &["enroll", "--hub", &addr, "--code", &code], "");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("--force"), "{}", show(&out));
    let out = env.run(
        &env.till,
        &[
            "enroll",
            "--force",
            "--hub",
            &addr,
            "--code",
            "AAAA-BBBB-CCCC-DDDD",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("new code"), "{}", show(&out));
    let out = env.ok(
        &env.till,
        &["enroll", "--force", "--hub", &addr, "--code", &code],
        "",
    );
    assert!(out.contains("Enrolled with hub \"hub\""), "{out}");
    let out = env.run(&env.till, &["enroll", "--hub", &addr, "--code", &code], "");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("--force"), "{}", show(&out));

    // The terminal sells while it runs, and syncs its log.
    let out = env.run(
        &env.till,
        &[
            "terminal",
            "--headless",
            "--exit-after-ms",
            "4000",
            "--hub",
            &addr,
            "--sim-sales",
            "5",
            "--sim-rate",
            "10",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(show(&out).contains("sync online"), "{}", show(&out));
    assert_eq!(
        show(&out).matches("simulated sale receipt=").count(),
        5,
        "{}",
        show(&out)
    );
    // The terminal's own chain: the highest seq of its own records in its log.
    let log = env.ok(&env.till, &["audit", "log"], "");
    let own_head = log
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "till-1")?;
            words.get(at + 1)?.parse::<u64>().ok()
        })
        .max()
        .unwrap();
    let sales = log.lines().filter(|l| l.contains("sale.completed")).count();
    // The demo's day sold two, the run five.
    assert_eq!(sales, 2 + 5, "{log}");
    // With the demo hub's cashier and products already there, --sim-sales created nothing:
    // no user or catalogue record of the terminal's own.
    assert!(
        !show(&out).contains("created on this terminal"),
        "{}",
        show(&out)
    );
    let json = env.ok(&env.till, &["audit", "log", "--json"], "");
    for line in json.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if ["user", "catalogue"].contains(&r["module"].as_str().unwrap()) {
            assert_ne!(r["device"], "till-1", "{r}");
        }
    }
    env.ok(&env.till, &["audit", "verify"], "");
    let row = terminal_row(&env.devices(), "till-1");
    assert_eq!(row["role"], "terminal", "{row}");
    assert!(row["last_seen_ms"].as_u64().is_some(), "{row}");
    let stored = row["stored_seq"].as_u64().unwrap();
    // Everything the terminal wrote, the sales included, is stored at the hub.
    assert_eq!(stored, own_head, "{row} vs {log}");
    // Known from the terminal's Hello, and nothing of it is missing.
    assert_eq!(row["waiting"].as_u64(), Some(0), "{row}");
    // Revoked while the hub runs (control socket): the terminal's next handshake is refused.
    let id = row["id"].as_str().unwrap().to_owned();
    let out = env.ok(
        &env.hub,
        &[
            "hub", "devices", "revoke", &id, "--as", "admin", "--reason", "stolen",
        ],
        &env.actor(),
    );
    assert!(out.contains("Revoked device"), "{out}");
    assert_eq!(terminal_row(&env.devices(), "till-1")["status"], "revoked");
    let hub_log = stop(hub);
    assert!(hub_log.contains("terminal connected"), "{hub_log}");
    assert!(hub_log.contains("device revoked"), "{hub_log}");
    // The hub's log, with the terminal's chain in it, verifies.
    env.ok(&env.hub, &["audit", "verify"], "");
    // With the hub stopped, the code made while it ran is still good once; the socket is gone.
    assert!(!env.hub.join("hub.sock").exists());
    let (hub, addr) = env.start_hub();
    let till2 = env.till.parent().unwrap().join("till-2");
    env.ok(
        &till2,
        &["init", "--role", "terminal", "--name", "till-2"],
        "",
    );
    let out = env.ok(
        &till2,
        &["enroll", "--hub", &addr, "--code", &second_code],
        "",
    );
    assert!(out.contains("Enrolled with hub \"hub\""), "{out}");
    let out = env.run(
        &env.till,
        &[
            "terminal",
            "--headless",
            "--exit-after-ms",
            "2500",
            "--hub",
            &addr,
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!show(&out).contains("sync online"), "{}", show(&out));
    let hub_log = stop(hub);
    assert!(!hub_log.contains("terminal connected"), "{hub_log}");
}

/// The hub owns the catalogue: a CSV import checks every row (a bad file saves nothing and
/// names its lines), works beside the running hub (control socket), and the products reach an
/// enrolled terminal at its next sync; the terminal itself refuses an import.
#[test]
fn the_hub_imports_a_catalogue_and_terminals_receive_it() {
    let env = Env::new();
    let init = env.ok(&env.hub, &["init", "--role", "hub", "--name", "hub"], "");
    let one_time = after(&init, "One-time password (shown once):").to_owned();
    env.ok(
        &env.hub,
        &["user", "passwd", "admin"],
        &format!("{one_time}\n{ADMIN_PASSWORD}\n"),
    );
    let dir = env.hub.parent().unwrap().to_path_buf();
    let csv = dir.join("products.csv");
    let file = csv.to_str().unwrap();

    // A bad file: every problem named by line, nothing saved.
    std::fs::write(
        &csv,
        "sku,name,price,tax_class,category,barcodes\n\
         BRD1,Sourdough loaf,3.90,B,Bakery,4006381333931\n\
         MLK1,Milk 1l,one euro,A,Dairy,\n\
         BRD1,Rye loaf,4.10,B,Bakery,\n\
         EGG6,,2.20,A,Dairy,\n",
    )
    .unwrap();
    let out = env.run(
        &env.hub,
        &["catalogue", "import", file, "--as", "admin"],
        &env.actor(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = show(&out);
    for line in [
        "line 3: price",
        "line 4: SKU BRD1 is also on line 2",
        "line 5",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(env
        .ok(&env.hub, &["catalogue", "list"], "")
        .contains("No products"));

    // A good one: dry run, then saved; the same file again changes nothing.
    std::fs::write(
        &csv,
        "sku,name,price,tax_class,category,barcodes,unit,quick_key\n\
         BRD1,Sourdough loaf,3.90,B,Bakery,4006381333931,,1\n\
         MLK1,Milk 1l,1.15,A,Dairy,,,\n\
         APL1,Apples,2.49,A,Fruit,,kg,\n",
    )
    .unwrap();
    let out = env.ok(
        &env.hub,
        &["catalogue", "import", file, "--as", "admin", "--dry-run"],
        "",
    );
    assert!(out.contains("3 rows OK: 3 new"), "{out}");
    let out = env.ok(
        &env.hub,
        &["catalogue", "import", file, "--as", "admin"],
        &env.actor(),
    );
    assert!(out.contains("Saved 3 of 3"), "{out}");
    let out = env.ok(
        &env.hub,
        &["catalogue", "import", file, "--as", "admin"],
        &env.actor(),
    );
    assert!(out.contains("Saved 0 of 3"), "{out}");
    let list = env.ok(&env.hub, &["catalogue", "list"], "");
    assert!(
        list.contains("Sourdough loaf") && list.contains("2.49/kg"),
        "{list}"
    );

    // A terminal enrolls; a price change is imported while the hub runs.
    let code = after(
        &env.ok(
            &env.hub,
            &["hub", "enroll-code", "--as", "admin"],
            &env.actor(),
        ),
        "Enrollment code:",
    )
    .to_owned();
    let (hub, addr) = env.start_hub();
    let till = dir.join("till");
    env.ok(
        &till,
        &["init", "--role", "terminal", "--name", "till-1"],
        "",
    );
    env.ok(&till, &["enroll", "--hub", &addr, "--code", &code], "");
    std::fs::write(&csv, "sku,name,price,tax_class\nMLK1,Milk 1l,1.25,A\n").unwrap();
    let out = env.ok(
        &env.hub,
        &["catalogue", "import", file, "--as", "admin"],
        &env.actor(),
    );
    assert!(out.contains("Saved 1 of 1"), "{out}");
    let out = env.run(
        &till,
        &["catalogue", "import", file, "--as", "admin"],
        "x\n\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        show(&out).contains("import the file on the hub"),
        "{}",
        show(&out)
    );

    // The terminal's next sync brings the products with the new price.
    let out = env.run(
        &till,
        &[
            "terminal",
            "--headless",
            "--exit-after-ms",
            "3000",
            "--hub",
            &addr,
        ],
        "",
    );
    assert!(show(&out).contains("sync online"), "{}", show(&out));
    let products: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&till, &["catalogue", "list", "--json"], "")).unwrap();
    let milk = products.iter().find(|p| p["sku"] == "MLK1").unwrap();
    assert_eq!(milk["price"], 125, "{milk}");
    assert_eq!(products.len(), 3, "{products:?}");
    let hub_log = stop(hub);
    assert!(hub_log.contains("catalogue imported"), "{hub_log}");
    env.ok(&till, &["audit", "verify"], "");
}
