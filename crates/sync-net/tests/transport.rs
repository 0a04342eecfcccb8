//! Real TLS on 127.0.0.1: enrollment, sync both ways, refusals at the handshake, hostile
//! clients, reconnection. Storage is in memory over real signed chains.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pos_core::DeviceId;
use pos_sync_net::enroll::{RefusalReason, DEVICE_KEY_FILE, HUB_RECORD_FILE};
use pos_sync_net::pki::{Fingerprint, TlsKey, Validity};
use pos_sync_net::{EnrollError, EnrolledDevice, HubNames, HubPki, Notice};
use rustls::pki_types::ServerName;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connect with `config`, then read: the first thing the hub says (or the error).
async fn handshake_then_read(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> String {
    handshake_send_read(addr, config, name, b"").await
}

/// Connect with `config`, send `bytes`, then read.
async fn handshake_send_read(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
    bytes: &[u8],
) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = match tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    {
        Ok(t) => t,
        Err(e) => return e.to_string(),
    };
    if !bytes.is_empty() && tls.write_all(bytes).await.is_err() {
        return "write failed".into();
    }
    let mut buf = [0u8; 256];
    match tokio::time::timeout(PATIENCE, tls.read(&mut buf))
        .await
        .expect("the hub answers or closes")
    {
        Ok(0) => "eof".into(),
        Ok(n) => format!("data {:?}", &buf[..n]),
        Err(e) => e.to_string(),
    }
}

/// Read until the peer closes; what it sent.
async fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out))
        .await
        .expect("the hub closes the connection");
    out
}

fn record(device: DeviceId, fingerprint: Fingerprint, not_after: SystemTime) -> EnrolledDevice {
    EnrolledDevice {
        device,
        name: "made by the test".into(),
        audit_key: MemTerminal::audit_key(device.as_bytes()[0]).public(),
        cert_fingerprint: fingerprint,
        cert_serial: "01".into(),
        cert_not_after: not_after,
        enrolled_at: SystemTime::now(),
        peer_addr: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_then_sync_both_ways() {
    let hub = Hub::start(120).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tls");
    let tls = hub.enroll(1, &dir).await;

    // What enrollment left on disk.
    let mode = std::fs::metadata(dir.join(DEVICE_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(tls.hub.hub, hub_id());
    assert_eq!(tls.hub.server_name, hub.pki.server_name());
    assert_eq!(tls.hub.ca_fingerprint, hub.pki.ca_fingerprint().to_hex());
    assert_eq!(tls.hub.audit_key().unwrap(), hub.storage.audit_key());
    assert!(dir.join(HUB_RECORD_FILE).exists());
    let enrolled = hub.directory.device(DeviceId::from_bytes([1; 16])).unwrap();
    assert_eq!(enrolled.audit_key, MemTerminal::audit_key(1).public());
    assert_eq!(enrolled.name, "Till 1");
    assert_eq!(
        enrolled.cert_fingerprint.to_hex(),
        tls.hub.device_cert_fingerprint
    );

    let terminal = MemTerminal::new(1, 250);
    let device = terminal.device();
    let client = start_terminal(&tls, hub.addr, 1, terminal.clone());

    // Terminal → hub: the whole chain, verified, stored once, acked.
    hub.storage.wait_stored(device, 250).await;
    assert_eq!(hub.storage.verify_copy(device, enrolled.audit_key), 250);
    let s = wait_status(&client, "all acked", |s| s.acked == 250).await;
    assert_eq!(s.waiting, 0);
    assert!(s.online);
    assert_eq!(terminal.db.lock().unwrap().acked, 250);

    // Hub → terminal: master data up to the hub's head; unsubscribed modules arrive redacted.
    terminal.wait_master(120).await;
    {
        let db = terminal.db.lock().unwrap();
        assert!(!db.hub_events.is_empty());
        assert!(db
            .hub_events
            .iter()
            .all(|e| e.module == "catalogue" || e.module == "user"));
    }

    // Live: new sales go up, new master data comes down.
    let head = terminal.append(30);
    client.appended(head);
    hub.storage.wait_stored(device, head).await;
    wait_status(&client, "new records acked", |s| {
        s.acked == head && s.waiting == 0
    })
    .await;
    let master = hub.storage.append_master(10);
    hub.handle.own_head_changed(master);
    terminal.wait_master(master).await;
    assert_eq!(hub.storage.verify_copy(device, enrolled.audit_key), head);

    client.shutdown().await;
    hub.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_at_the_handshake() {
    let hub = Hub::start(0).await;
    let other = HubPki::in_memory(DeviceId::from_bytes([77; 16]), &HubNames::default()).unwrap();
    let key = TlsKey::generate().unwrap();
    let device = DeviceId::from_bytes([2; 16]);
    let cert = other
        .issue_device_cert(
            device,
            &key.public(),
            Validity::days_from(SystemTime::now(), 30),
        )
        .unwrap();
    // Even if the hub's records named this fingerprint, the chain is not the hub's CA.
    hub.directory
        .add_device(record(device, cert.fingerprint, cert.validity.not_after));
    let config =
        pos_sync_net::tls::terminal_client_config(hub.pki.ca_cert(), cert.der.clone(), &key)
            .unwrap();
    let answer = handshake_then_read(hub.addr, config, hub.pki.server_name()).await;
    assert!(answer.contains("UnknownCA"), "{answer}");
    assert!(!hub.storage.asked_about(device), "no frame was read");
    hub.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_refused_at_the_handshake() {
    captured_logs();
    let hub = Hub::start(5).await;
    let tmp = tempfile::tempdir().unwrap();
    let tls = hub.enroll(3, tmp.path()).await;
    let terminal = MemTerminal::new(3, 20);
    let device = terminal.device();
    let client = start_terminal(&tls, hub.addr, 3, terminal.clone());
    wait_status(&client, "synced", |s| s.acked == 20).await;

    assert!(hub.directory.revoke(device));
    assert!(hub.handle.disconnect(device, "revoked"));
    let asked_before = hub
        .storage
        .db
        .lock()
        .unwrap()
        .origin_state_calls
        .iter()
        .filter(|d| **d == device)
        .count();

    // The client keeps trying; each attempt meets a TLS alert.
    let s = wait_status(&client, "refused as revoked", |s| {
        !s.online
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("CertificateRevoked"))
    })
    .await;
    assert!(s.failed_attempts >= 1);
    let answer =
        handshake_then_read(hub.addr, tls.client_config().unwrap(), &tls.hub.server_name).await;
    assert!(answer.contains("CertificateRevoked"), "{answer}");
    wait_log(&["refused a revoked device", &device.to_string()]).await;
    client.shutdown().await;
    let asked_after = hub
        .storage
        .db
        .lock()
        .unwrap()
        .origin_state_calls
        .iter()
        .filter(|d| **d == device)
        .count();
    assert_eq!(
        asked_before, asked_after,
        "no revoked session reached storage"
    );

    // A revoked device cannot enroll again either.
    let err = pos_sync_net::enroll(&hub.enroll_request(hub.code(), 3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EnrollError::Refused {
                reason: RefusalReason::DeviceRevoked,
                ..
            }
        ),
        "{err}"
    );
    hub.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused_at_the_handshake() {
    let hub = Hub::start(0).await;
    let key = TlsKey::generate().unwrap();
    let device = DeviceId::from_bytes([4; 16]);
    let now = SystemTime::now();
    let expired = Validity {
        not_before: now - Duration::from_secs(10 * 86_400),
        not_after: now - Duration::from_secs(86_400),
    };
    let cert = hub
        .pki
        .issue_device_cert(device, &key.public(), expired)
        .unwrap();
    hub.directory
        .add_device(record(device, cert.fingerprint, cert.validity.not_after));
    let config =
        pos_sync_net::tls::terminal_client_config(hub.pki.ca_cert(), cert.der.clone(), &key)
            .unwrap();
    let answer = handshake_then_read(hub.addr, config, hub.pki.server_name()).await;
    assert!(answer.contains("CertificateExpired"), "{answer}");
    assert!(!hub.storage.asked_about(device));

    // The same key with a valid certificate the hub knows gets in.
    let fresh = hub
        .pki
        .issue_device_cert(device, &key.public(), Validity::days_from(now, 1))
        .unwrap();
    hub.directory
        .add_device(record(device, fresh.fingerprint, fresh.validity.not_after));
    let config =
        pos_sync_net::tls::terminal_client_config(hub.pki.ca_cert(), fresh.der.clone(), &key)
            .unwrap();
    let tcp = TcpStream::connect(hub.addr).await.unwrap();
    let name = ServerName::try_from(hub.pki.server_name().to_owned()).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    // Say nothing: the hub waits for the Hello (no alert); our own close ends it.
    tls.shutdown().await.unwrap();
    hub.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_certificate_is_refused() {
    let hub = Hub::start(0).await;
    let tmp = tempfile::tempdir().unwrap();
    let first = hub.enroll(5, &tmp.path().join("a")).await;
    let second = hub.enroll(5, &tmp.path().join("b")).await;
    assert_ne!(
        first.hub.device_cert_fingerprint,
        second.hub.device_cert_fingerprint
    );
    let answer = handshake_then_read(
        hub.addr,
        first.client_config().unwrap(),
        &first.hub.server_name,
    )
    .await;
    assert!(answer.contains("AccessDenied"), "{answer}");
    hub.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_hostile_clients_do_not_disturb_a_good_one() {
    captured_logs();
    let hub = Hub::start(30).await;
    let tmp = tempfile::tempdir().unwrap();
    let good_tls = hub.enroll(6, &tmp.path().join("good")).await;
    let hostile_tls = hub.enroll(7, &tmp.path().join("hostile")).await;

    // A silent TCP client: dropped after the handshake timeout.
    let mut silent = TcpStream::connect(hub.addr).await.unwrap();
    // An HTTP client: gets no HTTP, only (at most) a TLS alert, and is closed.
    let mut http = TcpStream::connect(hub.addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();
    // Random garbage.
    let mut garbage = TcpStream::connect(hub.addr).await.unwrap();
    garbage.write_all(&[0x3c; 300]).await.unwrap();

    // Meanwhile a good terminal syncs.
    let terminal = MemTerminal::new(6, 300);
    let device = terminal.device();
    let client = start_terminal(&good_tls, hub.addr, 6, terminal.clone());

    // An enrolled but hostile peer sends a broken frame after TLS: only it is closed.
    let tcp = TcpStream::connect(hub.addr).await.unwrap();
    let name = ServerName::try_from(hostile_tls.hub.server_name.clone()).unwrap();
    let mut hostile = tokio_rustls::TlsConnector::from(hostile_tls.client_config().unwrap())
        .connect(name, tcp)
        .await
        .unwrap();
    hostile
        .write_all(b"3P\x63\x01\xff\xff\xff\xffnonsense")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, hostile.read_to_end(&mut answer))
        .await
        .expect("the hub closes the hostile connection");
    // It was told why (a Close frame) before the hub hung up.
    assert!(answer.starts_with(b"3P"), "{answer:?}");

    // An anonymous client that speaks sync instead of enrollment.
    let anon = handshake_send_read(
        hub.addr,
        anonymous_config(&hub.pki),
        hub.pki.server_name(),
        b"3P\x01\x01\x00\x00\x00\x10hello, i am a till",
    )
    .await;
    assert!(anon == "eof" || anon.contains("close"), "{anon}");

    // Each refusal is logged with its reason.
    let hostile_id = DeviceId::from_bytes([7; 16]).to_string();
    wait_log(&["closed by the hub: protocol violation", &hostile_id]).await;
    wait_log(&["enrollment refused", "not an enrollment frame"]).await;
    let http_addr = http.local_addr().unwrap().to_string();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let http_answer = read_all(&mut http).await;
    assert!(!http_answer.starts_with(b"HTTP"), "{http_answer:?}");
    assert!(
        http_answer.is_empty() || http_answer[0] == 0x15,
        "only a TLS alert record: {http_answer:?}"
    );
    let garbage_answer = read_all(&mut garbage).await;
    assert!(garbage_answer.is_empty() || garbage_answer[0] == 0x15);
    assert!(read_all(&mut silent).await.is_empty());
    wait_log(&["TLS handshake failed", &http_addr]).await;
    wait_log(&["TLS handshake did not complete", &silent_addr]).await;

    hub.storage.wait_stored(device, 300).await;
    terminal.wait_master(30).await;
    assert_eq!(
        hub.storage
            .verify_copy(device, MemTerminal::audit_key(6).public()),
        300
    );
    client.shutdown().await;
    hub.handle.shutdown().await;
    if std::env::var_os("POS_SHOW_LOGS").is_some() {
        eprintln!("{}", captured_logs());
    }
}

/// A client that trusts the hub but shows no certificate, and then speaks sync.
fn anonymous_config(pki: &HubPki) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_cert().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(pos_sync_net::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![pos_sync_net::tls::ALPN.to_vec()];
    Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_reused_code_is_refused() {
    let hub = Hub::start(0).await;
    let code = hub.code();
    let wrong = pos_sync_net::EnrollmentCode::parse("0000-0000-0000-0000").unwrap();
    let err = pos_sync_net::enroll(&hub.enroll_request(wrong, 10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EnrollError::Refused {
                reason: RefusalReason::CodeRefused,
                ..
            }
        ),
        "{err}"
    );
    assert!(hub
        .directory
        .device(DeviceId::from_bytes([10; 16]))
        .is_none());

    pos_sync_net::enroll(&hub.enroll_request(code.clone(), 11))
        .await
        .unwrap();
    let err = pos_sync_net::enroll(&hub.enroll_request(code, 12))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EnrollError::Refused {
                reason: RefusalReason::CodeRefused,
                ..
            }
        ),
        "{err}"
    );
    assert!(hub
        .directory
        .device(DeviceId::from_bytes([12; 16]))
        .is_none());
    hub.handle.shutdown().await;
}

/// A man in the middle: terminates the terminal's TLS with its own certificate and relays the
/// bytes to the real hub over its own TLS connection.
async fn relay(hub: &Hub) -> SocketAddr {
    let impostor =
        Arc::new(HubPki::in_memory(DeviceId::from_bytes([66; 16]), &HubNames::default()).unwrap());
    let directory = Arc::new(pos_sync_net::memory::MemoryDirectory::default());
    let server = pos_sync_net::tls::hub_server_config(&impostor, directory).unwrap();
    let upstream = anonymous_config(&hub.pki);
    let name = ServerName::try_from(hub.pki.server_name().to_owned()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hub_addr = hub.addr;
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut down = tokio_rustls::TlsAcceptor::from(server)
            .accept(tcp)
            .await
            .unwrap();
        let up = TcpStream::connect(hub_addr).await.unwrap();
        let mut up = tokio_rustls::TlsConnector::from(upstream)
            .connect(name, up)
            .await
            .unwrap();
        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_enrollment_is_refused_and_the_code_still_works() {
    captured_logs();
    let hub = Hub::start(0).await;
    let code = hub.code();
    let middle = relay(&hub).await;
    let mut req = hub.enroll_request(code.clone(), 13);
    req.hub_addr = middle.to_string();
    let err = pos_sync_net::enroll(&req).await.unwrap_err();
    assert!(
        matches!(
            err,
            EnrollError::Refused {
                reason: RefusalReason::CodeRefused,
                ..
            }
        ),
        "{err}"
    );
    assert!(hub
        .directory
        .device(DeviceId::from_bytes([13; 16]))
        .is_none());

    // The relay learned nothing it could use; the terminal enrolls directly with its code.
    let enrollment = pos_sync_net::enroll(&hub.enroll_request(code, 13))
        .await
        .unwrap();
    assert_eq!(
        enrollment.hub.ca_fingerprint,
        hub.pki.ca_fingerprint().to_hex()
    );
    hub.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_hub_without_the_code_gets_nothing_pinned() {
    let hub = Hub::start(0).await;
    let impostor = Hub::start(0).await;
    // The impostor issues its own code: the terminal's proof (with the real code) fails there.
    let _ = impostor.code();
    let mut req = hub.enroll_request(hub.code(), 14);
    req.hub_addr = impostor.addr.to_string();
    let err = pos_sync_net::enroll(&req).await.unwrap_err();
    assert!(matches!(err, EnrollError::Refused { .. }), "{err}");
    hub.handle.shutdown().await;
    impostor.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_reconnects_after_the_hub_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let hub_tls = tmp.path().join("hub-tls");
    let pki = HubPki::load_or_create(&hub_tls, hub_id(), &HubNames::default()).unwrap();
    let hub = Hub::start_with(Arc::new(pki), 10).await;
    let tls = hub.enroll(15, &tmp.path().join("terminal-tls")).await;
    let terminal = MemTerminal::new(15, 40);
    let device = terminal.device();
    let client = start_terminal(&tls, hub.addr, 15, terminal.clone());
    wait_status(&client, "synced", |s| s.acked == 40 && s.online).await;

    let Hub {
        pki: old_pki,
        directory,
        storage,
        handle,
        addr,
    } = hub;
    handle.shutdown().await;
    wait_status(&client, "offline", |s| !s.online).await;
    // Selling goes on while the hub is down.
    let head = terminal.append(25);
    client.appended(head);
    let s = wait_status(&client, "waiting", |s| s.waiting == 25).await;
    assert!(!s.online);

    // Same data dir, same port, a new server certificate: the pinned CA still vouches for it.
    let pki = HubPki::load_or_create(&hub_tls, hub_id(), &HubNames::default()).unwrap();
    assert_eq!(pki.ca_fingerprint(), old_pki.ca_fingerprint());
    assert_ne!(pki.server_fingerprint(), old_pki.server_fingerprint());
    let hub = Hub::serve(Arc::new(pki), directory, storage, addr).await;
    hub.storage.wait_stored(device, head).await;
    wait_status(&client, "caught up", |s| s.online && s.waiting == 0).await;
    assert_eq!(
        hub.storage
            .verify_copy(device, MemTerminal::audit_key(15).public()),
        head
    );
    client.shutdown().await;
    hub.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_on_the_hub_loses_nothing_and_sync_resumes_when_space_is_back() {
    use std::sync::atomic::Ordering;
    let hub = Hub::start(0).await;
    let tmp = tempfile::tempdir().unwrap();
    let tls = hub.enroll(16, &tmp.path().join("tls")).await;
    let terminal = MemTerminal::new(16, 20);
    let device = terminal.device();
    hub.storage.disk_full.store(true, Ordering::SeqCst);
    let client = start_terminal(&tls, hub.addr, 16, terminal.clone());
    // The hub cannot store: nothing is acked, the terminal keeps everything in its outbox and
    // sells on; the connection is closed and retried with backoff.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while hub.storage.refused_stores.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub never tried to store twice"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let head = terminal.append(10);
    client.appended(head);
    let s = wait_status(&client, "everything waiting", |s| s.waiting == head).await;
    assert_eq!(s.acked, 0);
    assert_eq!(terminal.db.lock().unwrap().acked, 0);
    assert!(hub
        .storage
        .db
        .lock()
        .unwrap()
        .notices
        .iter()
        .any(|(d, n)| *d == device
            && matches!(n, Notice::Closed { detail, .. } if detail.contains("disk is full"))));
    // Space is back: the next attempt stores every record exactly once.
    hub.storage.disk_full.store(false, Ordering::SeqCst);
    hub.storage.wait_stored(device, head).await;
    wait_status(&client, "caught up", |s| s.online && s.waiting == 0).await;
    assert_eq!(
        hub.storage
            .verify_copy(device, MemTerminal::audit_key(16).public()),
        head
    );
    client.shutdown().await;
    hub.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_at_once() {
    captured_logs();
    let hub = Hub::start_configured(pos_sync_net::HubServerConfig {
        max_connections: 2,
        // The two silent clients below hold their slots for the whole test.
        handshake_timeout: PATIENCE * 2,
        ..hub_config()
    })
    .await;
    let a = TcpStream::connect(hub.addr).await.unwrap();
    let b = TcpStream::connect(hub.addr).await.unwrap();
    // The hub must have taken both before the third arrives: wait until it holds them.
    let mut third;
    loop {
        third = TcpStream::connect(hub.addr).await.unwrap();
        let local = third.local_addr().unwrap().to_string();
        let mut buf = [0u8; 1];
        // A refused connection is closed without a byte; an accepted one waits for a
        // ClientHello (and would time out here).
        let read = tokio::time::timeout(Duration::from_secs(2), third.read(&mut buf)).await;
        if matches!(read, Ok(Ok(0))) {
            wait_log(&["refused a connection: 2 connections are open", &local]).await;
            break;
        }
    }
    drop((a, b));
    hub.handle.shutdown().await;
}
