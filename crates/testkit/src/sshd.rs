//! A real OpenSSH server on 127.0.0.1 for the off-site backup tests (Debian's openssh-server;
//! `.ci/run` installs it): its own host key, one authorized client key, a pinned known_hosts
//! file, an empty `store/` directory; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Make an ed25519 key pair at `path` (and `path.pub`) with ssh-keygen.
pub fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(ok.success(), "ssh-keygen failed");
}

/// A known_hosts line pinning `host_key` (its `.pub`) for 127.0.0.1:`port`.
pub fn known_hosts_line(host_key: &Path, port: u16) -> String {
    let pubkey =
        std::fs::read_to_string(host_key.with_extension("pub")).expect("the host key's .pub file");
    let fields: Vec<&str> = pubkey.split_whitespace().collect();
    format!("[127.0.0.1]:{port} {} {}\n", fields[0], fields[1])
}

/// The running sshd.
#[derive(Debug)]
pub struct SshServer {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The user the client logs in as (the one running the tests).
    pub user: String,
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SshServer {
    pub fn start() -> SshServer {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "this test needs Debian's openssh-server (.ci/run installs it)"
        );
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (tests run as root)");
        let dir = tempfile::tempdir().expect("a temp dir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("copy");
        std::fs::create_dir(d.join("store")).expect("mkdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\n\
             AuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PidFile {0}/sshd.pid\nSubsystem sftp internal-sftp\n",
            d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("write sshd_config");
        std::fs::write(
            d.join("known_hosts"),
            known_hosts_line(&d.join("host_key"), port),
        )
        .expect("write known_hosts");
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let user = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .expect("id -un");
        SshServer {
            child,
            port,
            dir,
            user,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `[backup] offsite` address of `dir` on this server.
    pub fn url(&self, dir: &str) -> String {
        format!("sftp://{}@127.0.0.1:{}{dir}", self.user, self.port)
    }
}
