//! `pos setup` as the appliance's systemd units run it: a hub provisioned from a file (its
//! first admin's one-time password on stdout), `is-role` as an ExecCondition, a second boot
//! that finds it set up, a bad provision file refused naming the field with nothing created,
//! and a till provisioned against the real running hub (a refused code first, which leaves it
//! not set up, then the right one).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

#[path = "../../tests/pos/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{after, show, Env, ADMIN_PASSWORD};

fn provision_file(env: &Env, name: &str, text: &str) -> PathBuf {
    let path = env.config.with_file_name(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn setup(env: &Env, data: &Path, file: &Path) -> std::process::Output {
    env.run(
        data,
        &[
            "setup",
            "--provision",
            file.to_str().unwrap(),
            "--timeout-s",
            "10",
        ],
        "",
    )
}

/// The exit code of `pos setup is-role ROLE`; it never prints anything.
fn is_role(env: &Env, data: &Path, role: &str) -> Option<i32> {
    let out = env.run(data, &["setup", "is-role", role], "");
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );
    out.status.code()
}

#[test]
fn a_hub_and_a_till_are_provisioned_from_files() {
    let env = Env::new();
    let empty = env.config.with_file_name("empty");
    assert_eq!(is_role(&env, &empty, "terminal"), Some(1));
    assert_eq!(is_role(&env, &empty, "hub"), Some(1));

    // The hub: its first admin's one-time password goes to the journal.
    let hub_file = provision_file(
        &env,
        "hub.toml",
        "# the branch hub\nrole = \"hub\"\nbranch = \"main\"\nname = \"hub\"\n",
    );
    let out = setup(&env, &env.hub, &hub_file);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains("Set up as hub \"hub\" of branch \"main\""),
        "{stdout}"
    );
    assert!(stdout.contains("WARNING"), "{stdout}");
    let one_time = after(&stdout, "One-time password (shown once):").to_owned();
    assert!(!one_time.is_empty());
    assert_eq!(is_role(&env, &env.hub, "hub"), Some(0));
    assert_eq!(is_role(&env, &env.hub, "terminal"), Some(1));
    // Every boot after the first.
    let again = env.ok(
        &env.hub,
        &["setup", "--provision", hub_file.to_str().unwrap()],
        "",
    );
    assert_eq!(again.trim(), "already set up as hub hub");
    // The password works (once): the admin sets a real one and makes enrollment codes.
    env.ok(
        &env.hub,
        &["user", "passwd", "admin"],
        &format!("{one_time}\n{ADMIN_PASSWORD}\n"),
    );
    let codes = env.enroll_codes(1);
    let (hub, addr) = env.start_hub();

    // A till with a code the hub does not know: refused, and not set up.
    let till = env.config.with_file_name("till");
    let wrong = provision_file(
        &env,
        "wrong.toml",
        &format!(
            "role = \"terminal\"\nbranch = \"main\"\nname = \"till-1\"\nhub = \"{addr}\"\n\
             code = \"7KQ2-MX9D-4T8R-B3ZF\"\n"
        ),
    );
    let out = setup(&env, &till, &wrong);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        show(&out).contains("ask the manager for a new code"),
        "{}",
        show(&out)
    );
    assert_eq!(is_role(&env, &till, "terminal"), Some(1));
    let first_id = support::device_id(&till);

    // The right code: enrolled, with the same identity (its key never reached the hub).
    let right = provision_file(
        &env,
        "till.toml",
        &format!(
            "role = \"terminal\"\nbranch = \"main\"\nname = \"till-1\"\nhub = \"{addr}\"\n\
             code = \"{}\"\n",
            codes[0].to_lowercase()
        ),
    );
    let out = setup(&env, &till, &right);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(&format!("Enrolled as till-1 with hub {addr}")),
        "{stdout}"
    );
    assert_eq!(support::device_id(&till), first_id);
    assert!(till.join("tls").is_dir());
    assert_eq!(is_role(&env, &till, "terminal"), Some(0));
    assert_eq!(is_role(&env, &till, "hub"), Some(1));
    let again = env.ok(&till, &["setup"], "");
    assert_eq!(again.trim(), "already set up as terminal till-1");
    let (status, stderr) = hub.stop(Duration::from_secs(20));
    assert!(status.success(), "{stderr}");
    let devices = env.devices();
    assert!(devices.iter().any(|d| d["name"] == "till-1"), "{devices:?}");
}

#[test]
fn a_bad_provision_file_names_the_field_and_creates_nothing() {
    let env = Env::new();
    let data = env.config.with_file_name("box");
    for (text, field) in [
        (
            "role = \"terminal\"\nbranch = \"main\"\nname = \"till-1\"\nhub = \"10.0.0.2:99999\"\ncode = \"7KQ2-MX9D-4T8R-B3ZF\"\n",
            "field `hub`",
        ),
        ("role = \"till\"\nbranch = \"main\"\nname = \"t\"\n", "field `role`"),
        ("role = \"hub\"\nbranch = \"main\"\n", "field `name` is missing"),
        ("role = \"hub\"\nbranch = \"main\"\nname = \"hub\"\npassword = \"x\"\n", "unknown field `password`"),
    ] {
        let file = provision_file(&env, "bad.toml", text);
        let out = setup(&env, &data, &file);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(field), "{field}: {stderr}");
        assert!(stderr.contains("bad.toml"), "{stderr}");
        assert!(!data.exists(), "{text}: something was created");
        assert_eq!(is_role(&env, &data, "hub"), Some(1));
    }
}

#[test]
fn the_screen_closed_before_the_end_sets_nothing_up() {
    let env = Env::new();
    let data = env.config.with_file_name("box");
    // No provision file at the given path: the screen shows (headless here) and is closed.
    let missing = env.config.with_file_name("nowhere.toml");
    let out = env.run(
        &data,
        &[
            "setup",
            "--provision",
            missing.to_str().unwrap(),
            "--headless",
            "--exit-after-ms",
            "300",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        show(&out).contains("closed before setup was done"),
        "{}",
        show(&out)
    );
    assert!(!data.exists());
    let help = env.ok(&data, &["setup", "--help"], "");
    assert!(help.contains("role = \"terminal\""), "{help}");
    assert!(help.contains("is-role"), "{help}");
}
