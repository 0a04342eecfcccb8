//! Backups of a real terminal data dir (staff, catalogue, sales through the engine): made
//! while sales go on, verified, restored equal; damaged, truncated, wrongly keyed and
//! newer-schema backups refused with what is wrong; a failed restore touches nothing.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pos_backup::{
    create, list, restore, verify, BackupError, BackupKey, BackupKind, CreateOptions, KdfParams,
    Secret,
};
use pos_core::sale::ticket::Tender;
use pos_engine::Engine;
use pos_store::{Store, StoreOptions, DB_FILE};
use pos_testkit::{till, COLA_EAN, WATER_EAN8};
use proptest::prelude::*;

fn quiet(_: &str, _: u64, _: u64) {}

fn sell(engine: &mut Engine, n: usize) {
    for _ in 0..n {
        engine.scan(COLA_EAN).unwrap();
        engine.scan(WATER_EAN8).unwrap();
        let due = engine.balance().unwrap().remaining;
        engine.pay(Tender::Cash, due).unwrap();
        engine.complete().unwrap();
    }
}

fn key() -> Secret {
    Secret::Key(BackupKey::from_bytes([7; 32]))
}

fn small() -> CreateOptions {
    CreateOptions {
        chunk_bytes: 4 * 1024,
        kdf: Some(KdfParams::with_cost(64, 1).unwrap()),
        ..CreateOptions::default()
    }
}

/// A copy of a till's data dir after some sales (the till's store closed).
struct Shop {
    dir: PathBuf,
    _keep: tempfile::TempDir,
}

fn shop(sales: usize) -> Shop {
    let mut t = till();
    sell(&mut t.engine, sales);
    let keep = tempfile::tempdir().unwrap();
    // Move the data dir out of the till so the test owns it.
    let dir = t.dir.path().to_owned();
    let copy = keep.path().join("data");
    drop(t.engine);
    copy_dir(&dir, &copy);
    drop(t.dir);
    Shop {
        dir: copy,
        _keep: keep,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn dump(dir: &Path) -> (String, Vec<(String, u64, String)>) {
    let store = Store::open_read_only(dir).unwrap();
    let chains = store
        .verify()
        .unwrap()
        .chains
        .into_iter()
        .map(|c| (c.origin.to_string(), c.last_seq, c.head.to_hex()))
        .collect();
    (store.projection_dump().unwrap(), chains)
}

#[test]
fn a_backup_verifies_and_restores_to_the_same_log_and_projections() {
    let shop = shop(5);
    let out = tempfile::tempdir().unwrap();
    let made = create(&shop.dir, out.path(), &key(), &small(), &mut quiet).unwrap();
    assert!(made.path.to_string_lossy().ends_with("-manual.3pbak"));
    assert_eq!(made.header.device.name, "till-1");
    let listed = list(out.path()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, made.path);

    let report = verify(&made.path, &key(), out.path(), &mut quiet).unwrap();
    let (projections, chains) = dump(&shop.dir);
    let got: Vec<_> = report
        .chains
        .iter()
        .map(|c| (c.origin.clone(), c.seq, c.head.clone()))
        .collect();
    assert_eq!(got, chains);
    assert!(report.manifest.files.iter().any(|f| f.path == "device.key"));
    assert!(
        report.manifest.segments.len() > 3,
        "several segments: {}",
        report.manifest.segments.len()
    );

    // Restore into a new place: same log, same projections.
    let target = out.path().join("restored");
    let restored = restore(&made.path, &key(), &target, &mut quiet).unwrap();
    assert!(restored.previous.is_none());
    assert_eq!(dump(&target), (projections.clone(), chains.clone()));
    // It is a working data dir: the store opens for writing and sells on.
    let mut engine = Engine::new(
        Store::open(&target, StoreOptions::default()).unwrap(),
        pos_testkit::config(),
    );
    engine.login(pos_testkit::c(pos_testkit::CASHIER)).unwrap();
    sell(&mut engine, 1);
    assert!(engine.store().verify().is_ok());
    drop(engine);

    // Restore over it: the current contents are kept as pre-restore, the backup's are back.
    let restored = restore(&made.path, &key(), &target, &mut quiet).unwrap();
    let previous = restored.previous.unwrap();
    assert!(previous.join(DB_FILE).exists());
    assert_ne!(
        dump(&previous).1,
        chains,
        "the kept copy has the extra sale"
    );
    assert_eq!(dump(&target), (projections, chains));
    let leftovers: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".restore") || n == "restore.journal")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_backup_is_made_while_sales_go_on() {
    let mut t = till();
    let dir = t.dir.path().to_owned();
    let out = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let backup = std::thread::spawn(move || {
        let mut made = Vec::new();
        for _ in 0..3 {
            made.push(create(&dir, out.path(), &key(), &small(), &mut quiet).unwrap());
        }
        tx.send(()).unwrap();
        (made, out)
    });
    let mut sold = 0;
    while rx.try_recv().is_err() {
        sell(&mut t.engine, 1);
        sold += 1;
    }
    let (made, out) = backup.join().unwrap();
    assert!(sold > 0);
    let head = t.engine.store().head().0;
    for m in &made {
        let report = verify(&m.path, &key(), out.path(), &mut quiet).unwrap();
        let own = report
            .chains
            .iter()
            .find(|c| c.origin == t.engine.store().identity().id.to_string())
            .unwrap();
        assert!(own.seq <= head);
    }
}

#[test]
fn a_passphrase_opens_its_backup_and_wrong_secrets_are_named() {
    let shop = shop(1);
    let out = tempfile::tempdir().unwrap();
    let pass = Secret::Passphrase("correct horse battery staple".into());
    let made = create(&shop.dir, out.path(), &pass, &small(), &mut quiet).unwrap();
    verify(&made.path, &pass, out.path(), &mut quiet).unwrap();
    let wrong = Secret::Passphrase("correct horse battery stapler".into());
    assert!(matches!(
        verify(&made.path, &wrong, out.path(), &mut quiet),
        Err(BackupError::WrongKey)
    ));
    let err = verify(&made.path, &key(), out.path(), &mut quiet).unwrap_err();
    assert!(err.to_string().contains("passphrase"), "{err}");
    let keyed = create(&shop.dir, out.path(), &key(), &small(), &mut quiet).unwrap();
    let other = Secret::Key(BackupKey::from_bytes([8; 32]));
    let err = verify(&keyed.path, &other, out.path(), &mut quiet).unwrap_err();
    assert!(matches!(err, BackupError::WrongKey), "{err}");
    assert!(
        err.to_string().contains("does not open this backup"),
        "{err}"
    );
}

#[test]
fn a_failed_restore_leaves_the_data_dir_as_it_was() {
    let shop = shop(2);
    let out = tempfile::tempdir().unwrap();
    let made = create(&shop.dir, out.path(), &key(), &small(), &mut quiet).unwrap();
    let before = std::fs::read(shop.dir.join(DB_FILE)).unwrap();
    let mut bytes = std::fs::read(&made.path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let damaged = out.path().join("damaged.3pbak");
    std::fs::write(&damaged, &bytes).unwrap();
    let err = restore(&damaged, &key(), &shop.dir, &mut quiet).unwrap_err();
    assert!(matches!(err, BackupError::Damaged { .. }), "{err}");
    let other = Secret::Key(BackupKey::from_bytes([9; 32]));
    assert!(restore(&made.path, &other, &shop.dir, &mut quiet).is_err());
    assert_eq!(std::fs::read(shop.dir.join(DB_FILE)).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(&shop.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with(".restore") && !n.starts_with("pre-restore")),
        "{names:?}"
    );
}

#[test]
fn a_backup_of_a_newer_schema_is_refused_with_what_to_do() {
    let shop = shop(1);
    let conn = rusqlite::Connection::open(shop.dir.join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", pos_store::schema_version() + 1)
        .unwrap();
    drop(conn);
    let out = tempfile::tempdir().unwrap();
    let made = create(&shop.dir, out.path(), &key(), &small(), &mut quiet).unwrap();
    let err = verify(&made.path, &key(), out.path(), &mut quiet).unwrap_err();
    assert!(matches!(err, BackupError::SchemaTooNew { .. }), "{err}");
    assert!(err.to_string().contains("update pos"), "{err}");
}

/// One small backup and its bytes, made once for the property tests.
fn sample() -> &'static (tempfile::TempDir, Vec<u8>) {
    static SAMPLE: OnceLock<(tempfile::TempDir, Vec<u8>)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let shop = shop(1);
        let out = tempfile::tempdir().unwrap();
        let made = create(&shop.dir, out.path(), &key(), &small(), &mut quiet).unwrap();
        let bytes = std::fs::read(&made.path).unwrap();
        (out, bytes)
    })
}

fn check(bytes: &[u8]) -> Result<(), BackupError> {
    let (out, _) = sample();
    let scratch = tempfile::tempdir_in(out.path()).unwrap();
    let path = scratch.path().join("b.3pbak");
    std::fs::write(&path, bytes).unwrap();
    verify(&path, &key(), scratch.path(), &mut quiet).map(drop)
}

#[test]
fn the_sample_itself_verifies() {
    check(&sample().1).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_single_byte_flip_is_refused(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = sample().1.clone();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        let err = check(&bytes).unwrap_err();
        prop_assert!(
            matches!(err, BackupError::Damaged { .. } | BackupError::Truncated { .. }
                | BackupError::NotABackup | BackupError::UnsupportedVersion(_)
                | BackupError::WrongKey),
            "byte {i}: {err}"
        );
    }

    #[test]
    fn every_truncation_is_refused(at in any::<prop::sample::Index>()) {
        let bytes = &sample().1;
        let cut = at.index(bytes.len());
        let err = check(&bytes[..cut]).unwrap_err();
        prop_assert!(
            matches!(err, BackupError::Truncated { .. } | BackupError::Damaged { .. }
                | BackupError::NotABackup),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn the_kind_is_in_the_name_and_the_header() {
    let shop = shop(1);
    let out = tempfile::tempdir().unwrap();
    let opts = CreateOptions {
        kind: BackupKind::Hourly,
        created_ms: Some(1_767_225_600_000),
        ..small()
    };
    let made = create(&shop.dir, out.path(), &key(), &opts, &mut quiet).unwrap();
    assert_eq!(
        made.path.file_name().unwrap().to_string_lossy(),
        "pos-till-1-20260101T000000.000Z-hourly.3pbak"
    );
    assert_eq!(list(out.path()).unwrap()[0].header.kind, BackupKind::Hourly);
}
