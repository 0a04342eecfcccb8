//! Off-site copies against a real OpenSSH server on 127.0.0.1 (Debian's openssh-server; the
//! project's .ci/run installs it): upload, list, download and verify; a changed host key, an
//! unknown client key, a stopped server and a missing directory are refused with what to do.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pos_backup::offsite::{OffsiteError, SftpTarget};
use pos_backup::{create, verify, BackupKey, CreateOptions, Secret};

fn quiet(_: &str, _: u64, _: u64) {}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(ok.success());
}

/// An sshd in the foreground on a free port, killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    user: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "this test needs Debian's openssh-server (.ci/run installs it)"
        );
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        std::fs::create_dir(d.join("store")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\n\
             AuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PidFile {0}/sshd.pid\nSubsystem sftp internal-sftp\n",
            d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let pubkey = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let fields: Vec<&str> = pubkey.split_whitespace().collect();
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {} {}\n", fields[0], fields[1]),
        )
        .unwrap();
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        Server {
            child,
            port,
            dir,
            user,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn target(&self, dir: &str) -> SftpTarget {
        SftpTarget::parse(
            &format!("sftp://{}@127.0.0.1:{}{dir}", self.user, self.port),
            &self.path("client_key"),
            &self.path("known_hosts"),
        )
        .unwrap()
    }
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
    let server = Server::start();
    let local = tempfile::tempdir().unwrap();
    let file = backup(local.path());
    let store = server.path("store");
    let target = server.target(&store.display().to_string());

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
    let mut server = Server::start();
    let local = tempfile::tempdir().unwrap();
    let file = backup(local.path());
    let store = server.path("store").display().to_string();

    // A known_hosts file pinning another key.
    let other = server.path("other_host_key");
    keygen(&other);
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let fields: Vec<&str> = pubkey.split_whitespace().collect();
    let wrong_hosts = server.path("wrong_known_hosts");
    std::fs::write(
        &wrong_hosts,
        format!("[127.0.0.1]:{} {} {}\n", server.port, fields[0], fields[1]),
    )
    .unwrap();
    let mut target = server.target(&store);
    target.known_hosts = wrong_hosts;
    let err = target.upload(&file).unwrap_err();
    assert!(matches!(err, OffsiteError::HostKey { .. }), "{err:?}");

    // A box whose key the server does not know.
    let stranger = server.path("stranger_key");
    keygen(&stranger);
    let mut target = server.target(&store);
    target.identity = stranger;
    let err = target.upload(&file).unwrap_err();
    assert!(matches!(err, OffsiteError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("authorized_keys"), "{err}");

    // A directory that does not exist on the server.
    let err = server.target("/nonexistent/dir").upload(&file).unwrap_err();
    assert!(matches!(err, OffsiteError::Remote(_)), "{err}");

    // Nothing was left on the server by the failures.
    assert_eq!(std::fs::read_dir(server.path("store")).unwrap().count(), 0);

    // The server stopped.
    let target = server.target(&store);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let err = target.upload(&file).unwrap_err();
    assert!(matches!(err, OffsiteError::Unreachable(_)), "{err}");
}
