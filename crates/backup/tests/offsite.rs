//! Off-site copies against a real OpenSSH server on 127.0.0.1 (Debian's openssh-server; the
//! project's .ci/run installs it): upload, list, download and verify; a changed host key, an
//! unknown client key, a stopped server and a missing directory are refused with what to do.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use pos_backup::offsite::{OffsiteError, SftpTarget};
use pos_backup::{create, verify, BackupKey, CreateOptions, Secret};
use pos_testkit::sshd::{keygen, known_hosts_line, SshServer};

fn quiet(_: &str, _: u64, _: u64) {}

fn sftp_to(server: &SshServer, dir: &str) -> SftpTarget {
    SftpTarget::parse(
        &server.url(dir),
        &server.path("client_key"),
        &server.path("known_hosts"),
    )
    .unwrap()
}

fn backup(out: &Path) -> PathBuf {
    let data = out.join("data");
    std::fs::create_dir(&data).unwrap();
    pos_store::Store::init(&data, pos_core::DeviceRole::Hub, "main", "hub", false).unwrap();
    let key = Secret::Key(BackupKey::from_bytes([3; 32]));
    create(&data, out, &key, &CreateOptions::default(), &mut quiet)
        .unwrap()
        .path
}

#[test]
fn a_backup_goes_off_site_and_comes_back_intact() {
    let server = SshServer::start();
    let local = tempfile::tempdir().unwrap();
    let file = backup(local.path());
    let store = server.path("store");
    let target = sftp_to(&server, &store.display().to_string());

    let remote = target.upload(&file).unwrap();
    assert!(remote.ends_with(".3pbak"), "{remote}");
    // Uploading again replaces it; no .partial is left.
    target.upload(&file).unwrap();
    let listed = target.list().unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        listed,
        vec![(name.clone(), std::fs::metadata(&file).unwrap().len())]
    );
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1);

    let back = tempfile::tempdir().unwrap();
    let fetched = target.download(&name, back.path()).unwrap();
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&file).unwrap()
    );
    let key = Secret::Key(BackupKey::from_bytes([3; 32]));
    verify(&fetched, &key, back.path(), &mut quiet).unwrap();
}

#[test]
fn a_wrong_host_key_an_unknown_box_a_missing_dir_and_a_stopped_server_are_named() {
    let mut server = SshServer::start();
    let local = tempfile::tempdir().unwrap();
    let file = backup(local.path());
    let store = server.path("store").display().to_string();

    // A known_hosts file pinning another key.
    let other = server.path("other_host_key");
    keygen(&other);
    let wrong_hosts = server.path("wrong_known_hosts");
    std::fs::write(&wrong_hosts, known_hosts_line(&other, server.port)).unwrap();
    let mut target = sftp_to(&server, &store);
    target.known_hosts = wrong_hosts;
    let err = target.upload(&file).unwrap_err();
    assert!(matches!(err, OffsiteError::HostKey { .. }), "{err:?}");

    // A box whose key the server does not know.
    let stranger = server.path("stranger_key");
    keygen(&stranger);
    let mut target = sftp_to(&server, &store);
    target.identity = stranger;
    let err = target.upload(&file).unwrap_err();
    assert!(matches!(err, OffsiteError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("authorized_keys"), "{err}");

    // A directory that does not exist on the server.
    let err = sftp_to(&server, "/nonexistent/dir")
        .upload(&file)
        .unwrap_err();
    assert!(matches!(err, OffsiteError::Remote(_)), "{err}");

    // Nothing was left on the server by the failures.
    assert_eq!(std::fs::read_dir(server.path("store")).unwrap().count(), 0);

    // The server stopped.
    let target = sftp_to(&server, &store);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let err = target.upload(&file).unwrap_err();
    assert!(matches!(err, OffsiteError::Unreachable(_)), "{err}");
}
