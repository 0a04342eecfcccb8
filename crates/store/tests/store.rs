//! The store's promises: atomic commits, rebuild == live, one owner per data dir, identity
//! safety, and clear errors on damaged files or a full disk.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pos_audit::EventDraft;
use pos_core::payloads::{SettingChanged, StockMoved};
use pos_core::DeviceRole;
use pos_store::{LogFilter, Store, StoreError, StoreOptions, VerifyError, DB_FILE};
use proptest::prelude::*;

fn tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fn terminal(dir: &Path) -> Store {
    Store::init(dir, DeviceRole::Terminal, "main", "till-1", false)
        .unwrap()
        .0
}

fn stock(item: &str, quantity: i64) -> EventDraft {
    EventDraft::json(
        StockMoved::MODULE,
        StockMoved::KIND,
        &StockMoved {
            item: item.into(),
            quantity,
            cause: None,
            reference: None,
        },
    )
}

fn setting(key: &str, value: i64) -> EventDraft {
    EventDraft::json(
        SettingChanged::MODULE,
        SettingChanged::KIND,
        &SettingChanged {
            key: key.into(),
            before: None,
            after: value.into(),
        },
    )
}

#[derive(Debug, Clone)]
enum Op {
    Stock(u8, i64),
    Setting(u8, i64),
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, -5000i64..5000).prop_map(|(i, q)| Op::Stock(i, q)),
        2 => (0u8..3, any::<i64>()).prop_map(|(k, v)| Op::Setting(k, v)),
        1 => Just(Op::Checkpoint),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn rebuild_gives_the_live_projections(batches in proptest::collection::vec(proptest::collection::vec(op(), 1..10), 1..12)) {
        let dir = tempdir();
        let mut store = terminal(dir.path());
        let mut expected_stock = std::collections::BTreeMap::<String, i64>::new();
        for batch in batches {
            let mut drafts = Vec::new();
            for op in batch {
                match op {
                    Op::Stock(i, q) => {
                        *expected_stock.entry(format!("item-{i}")).or_default() += q;
                        drafts.push(stock(&format!("item-{i}"), q));
                    }
                    Op::Setting(k, v) => drafts.push(setting(&format!("key-{k}"), v)),
                    Op::Checkpoint => { store.checkpoint().unwrap(); }
                }
            }
            if !drafts.is_empty() { store.append(drafts).unwrap(); }
        }
        let live = store.projection_dump().unwrap();
        let levels: std::collections::BTreeMap<String, i64> = store.stock_levels().unwrap().into_iter().collect();
        prop_assert_eq!(levels, expected_stock);
        let replayed = store.rebuild().unwrap();
        prop_assert_eq!(replayed, store.head().0);
        prop_assert_eq!(store.projection_dump().unwrap(), live);
        prop_assert!(store.verify().is_ok());
    }
}

#[test]
fn a_refused_event_rolls_back_the_whole_commit() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    store.append(vec![stock("a", 5)]).unwrap();
    let before = (store.head(), store.projection_dump().unwrap());
    let mut bad = stock("b", 1);
    bad.payload = br#"{"item": "b", "quantity": "lots"}"#.to_vec();
    let err = store
        .append(vec![stock("a", 1), bad, stock("c", 1)])
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected { .. }), "{err}");
    assert!(
        err.to_string().contains("stock.moved event refused"),
        "{err}"
    );
    assert_eq!((store.head(), store.projection_dump().unwrap()), before);
    // The next commit continues the chain where it was.
    let c = store.append(vec![stock("a", 1)]).unwrap();
    assert_eq!(c.first_seq, before.0 .0 + 1);
    assert!(store.verify().is_ok());
}

#[test]
fn an_invalid_draft_is_refused_before_touching_the_database() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let mut draft = stock("a", 1);
    draft.module = "Stock Module".into();
    assert!(matches!(
        store.append(vec![draft]),
        Err(StoreError::InvalidEvent(_))
    ));
    assert_eq!(store.head().0, 1);
}

#[test]
fn a_second_owner_of_a_data_dir_is_refused() {
    let dir = tempdir();
    let store = terminal(dir.path());
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains("in use by another pos process"),
        "{err}"
    );
    // Readers need no ownership: an auditor can verify beside the running service.
    assert!(Store::open_read_only(dir.path()).unwrap().verify().is_ok());
    drop(store);
    Store::open(dir.path(), StoreOptions::default()).unwrap();
}

#[test]
fn init_refuses_an_existing_identity_and_force_moves_it_aside() {
    let dir = tempdir();
    let mut first = terminal(dir.path());
    first.append(vec![stock("a", 7)]).unwrap();
    let old_id = first.device_id();
    drop(first);

    let err = Store::init(dir.path(), DeviceRole::Hub, "main", "hub", false).unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyInitialized { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&old_id.to_string()));

    let (new, report) = Store::init(dir.path(), DeviceRole::Hub, "main", "hub", true).unwrap();
    assert_ne!(new.device_id(), old_id);
    drop(new);
    // The old identity and its data are intact in the moved-aside folder.
    let aside = report.moved_aside.expect("moved aside");
    assert!(aside.join("device.key").exists());
    let old = Store::open(&aside, StoreOptions::default()).unwrap();
    assert_eq!(old.device_id(), old_id);
    assert_eq!(old.stock_levels().unwrap(), vec![("a".to_string(), 7)]);
    assert!(old.verify().is_ok());
}

#[test]
fn key_files_and_the_data_dir_are_private() {
    let dir = tempdir();
    let data = dir.path().join("pos");
    drop(terminal(&data));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("device.key")), 0o600);
    assert_eq!(mode(&data.join("device.pub")), 0o600);
    assert_eq!(mode(&data), 0o700);
}

#[test]
fn a_missing_or_empty_data_dir_says_to_run_init() {
    let dir = tempdir();
    let missing = dir.path().join("nope");
    let err = Store::open(&missing, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::NoDataDir(_)));
    assert!(err.to_string().contains("pos init"), "{err}");
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::NotInitialized(_)), "{err}");
}

#[test]
fn a_garbage_database_file_is_reported_as_damaged() {
    let dir = tempdir();
    drop(terminal(dir.path()));
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("pos backup restore"), "{err}");
}

#[test]
fn a_truncated_database_file_never_panics_and_is_reported() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    for i in 0..200 {
        store
            .append(vec![stock(&format!("item-{i}"), 1); 5])
            .unwrap();
    }
    drop(store);
    let path = dir.path().join(DB_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    match Store::open(dir.path(), StoreOptions::default()) {
        Err(e) => assert!(matches!(e, StoreError::Corrupt { .. }), "{e}"),
        Ok(store) => match store.verify() {
            Err(VerifyError::Store(StoreError::Corrupt { .. })) | Err(VerifyError::Tampered(_)) => {
            }
            other => panic!("a truncated database must not verify: {other:?}"),
        },
    }
}

#[test]
fn a_full_disk_loses_nothing_committed() {
    let dir = tempdir();
    drop(terminal(dir.path()));
    let small = StoreOptions {
        max_size_bytes: Some(256 * 1024),
        ..StoreOptions::default()
    };
    let mut store = Store::open(dir.path(), small.clone()).unwrap();
    let mut committed = 0;
    let err = loop {
        match store.append(vec![stock("a", 1); 20]) {
            Ok(c) => committed = c.last_seq,
            Err(e) => break e,
        }
        assert!(committed < 100_000, "the size limit never hit");
    };
    assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("nothing was lost"), "{err}");
    assert_eq!(store.head().0, committed);
    drop(store);

    let mut store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.head().0, committed);
    assert!(store.verify().is_ok());
    assert_eq!(
        store.stock_levels().unwrap(),
        vec![("a".to_string(), (committed as i64 - 1))]
    );
    store.append(vec![stock("a", 1)]).unwrap();
    assert!(store.verify().is_ok());
}

#[test]
fn a_newer_schema_is_refused_with_a_hint() {
    let dir = tempdir();
    drop(terminal(dir.path()));
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("update the firmware"), "{err}");
}

#[test]
fn a_database_from_another_device_is_refused() {
    let (a, b) = (tempdir(), tempdir());
    drop(terminal(a.path()));
    drop(terminal(b.path()));
    std::fs::copy(b.path().join(DB_FILE), a.path().join(DB_FILE)).unwrap();
    let err = Store::open(a.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::IdentityMismatch { .. }), "{err}");
}

#[test]
fn the_audit_log_filters_by_kind_and_time() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    store.append(vec![stock("a", 1), setting("k", 1)]).unwrap();
    let all = store.events(&LogFilter::default()).unwrap();
    assert_eq!(all.len(), 3);
    let only = |kind: &str| {
        store
            .events(&LogFilter {
                kind: Some(kind.into()),
                ..LogFilter::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(only("stock.moved"), 1);
    assert_eq!(only("settings"), 1);
    assert_eq!(only("registered"), 1);
    assert_eq!(only("nothing"), 0);
    let later = store
        .events(&LogFilter {
            since: Some(all[2].hlc),
            ..LogFilter::default()
        })
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(
        store
            .events(&LogFilter {
                limit: Some(2),
                ..LogFilter::default()
            })
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn checkpoints_are_signed_every_interval_and_on_demand() {
    let dir = tempdir();
    drop(terminal(dir.path()));
    let mut store = Store::open(
        dir.path(),
        StoreOptions {
            checkpoint_every: 10,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store.append(vec![stock("a", 1); 25]).unwrap();
    let cp = store.checkpoint().unwrap().unwrap();
    assert_eq!(cp.seq, 26);
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let seqs: Vec<i64> = conn
        .prepare("SELECT seq FROM checkpoints ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // seq 1 at init (on demand), 10 and 20 by interval, 26 on demand.
    assert_eq!(seqs, vec![1, 10, 20, 26]);
}

#[test]
fn the_device_registry_records_enrolment_and_revocation() {
    use pos_core::payloads::{DeviceRegistered, DeviceRevoked};
    use pos_core::DeviceId;
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let other = DeviceId::new_v7();
    store
        .append(vec![EventDraft::json(
            DeviceRegistered::MODULE,
            DeviceRegistered::KIND,
            &DeviceRegistered {
                device: other,
                role: DeviceRole::Terminal,
                branch: "main".into(),
                name: "till-2".into(),
                public_key: "11".repeat(32),
                cert_fingerprint: None,
            },
        )])
        .unwrap();
    let revoke = || {
        EventDraft::json(
            DeviceRevoked::MODULE,
            DeviceRevoked::KIND,
            &DeviceRevoked {
                device: other,
                reason: "stolen".into(),
            },
        )
    };
    store.append(vec![revoke()]).unwrap();
    let devices = store.devices().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].device, store.device_id());
    assert!(devices[0].revoked.is_none());
    assert_eq!(devices[1].name, "till-2");
    assert!(devices[1].revoked.is_some_and(|r| r >= devices[1].enrolled));
    // Revoking twice is refused, and nothing of that commit is kept.
    let head = store.head();
    assert!(matches!(
        store.append(vec![revoke()]),
        Err(StoreError::Rejected { .. })
    ));
    assert_eq!(store.head(), head);
}
