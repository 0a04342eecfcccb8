//! In-memory enrollment book and device directory: for tests, and the reference for the
//! store's implementation (same rules).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use pos_core::DeviceId;

use crate::enroll::{
    CodeKey, EnrollError, EnrollRefused, EnrolledDevice, EnrollmentBook, EnrollmentCode,
};
use crate::pki::Fingerprint;
use crate::tls::{CertStatus, DeviceDirectory};

/// Failed attempts after which every outstanding code is void.
pub const DEFAULT_MAX_FAILED_ATTEMPTS: u32 = 5;

#[derive(Debug)]
struct Code {
    key: CodeKey,
    expires: SystemTime,
    used: bool,
}

#[derive(Debug, Clone)]
struct Device {
    record: EnrolledDevice,
    revoked: bool,
}

#[derive(Debug, Default)]
struct State {
    codes: Vec<Code>,
    failures: u32,
    devices: HashMap<DeviceId, Device>,
}

/// Codes and devices in memory.
#[derive(Debug)]
pub struct MemoryDirectory {
    state: Mutex<State>,
    max_failures: u32,
}

impl Default for MemoryDirectory {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FAILED_ATTEMPTS)
    }
}

impl MemoryDirectory {
    pub fn new(max_failures: u32) -> Self {
        MemoryDirectory {
            state: Mutex::new(State::default()),
            max_failures: max_failures.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is one step).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new code valid for `ttl` from `now`; only its key is kept.
    pub fn issue_code(
        &self,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<EnrollmentCode, EnrollError> {
        let code = EnrollmentCode::generate()?;
        self.add_code(code.key(), now + ttl);
        Ok(code)
    }

    pub fn add_code(&self, key: CodeKey, expires: SystemTime) {
        let mut s = self.state();
        s.codes.push(Code {
            key,
            expires,
            used: false,
        });
        s.failures = 0;
    }

    /// Register a device without enrollment (tests that make certificates directly).
    pub fn add_device(&self, record: EnrolledDevice) {
        self.state().devices.insert(
            record.device,
            Device {
                record,
                revoked: false,
            },
        );
    }

    /// Revoke a device: its certificate is refused from the next handshake on. `false` if
    /// the device is unknown.
    pub fn revoke(&self, device: DeviceId) -> bool {
        match self.state().devices.get_mut(&device) {
            Some(d) => {
                d.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Every device and whether it is revoked.
    pub fn devices(&self) -> Vec<(EnrolledDevice, bool)> {
        self.state()
            .devices
            .values()
            .map(|d| (d.record.clone(), d.revoked))
            .collect()
    }

    pub fn device(&self, device: DeviceId) -> Option<EnrolledDevice> {
        self.state().devices.get(&device).map(|d| d.record.clone())
    }
}

impl EnrollmentBook for MemoryDirectory {
    fn enroll(
        &self,
        device: &EnrolledDevice,
        matches: &mut dyn FnMut(&CodeKey) -> bool,
        now: SystemTime,
    ) -> Result<(), EnrollRefused> {
        let mut s = self.state();
        // Every code is offered, so the time taken does not depend on which one matched.
        let mut found = None;
        for (i, c) in s.codes.iter().enumerate() {
            if matches(&c.key) {
                found = Some(i);
            }
        }
        let Some(i) = found else {
            s.failures += 1;
            if s.failures >= self.max_failures {
                s.failures = 0;
                for c in &mut s.codes {
                    c.used = true;
                }
                return Err(EnrollRefused::TooManyAttempts);
            }
            return Err(EnrollRefused::NoMatch);
        };
        if s.codes[i].used {
            return Err(EnrollRefused::Used);
        }
        if now >= s.codes[i].expires {
            return Err(EnrollRefused::Expired);
        }
        if let Some(known) = s.devices.get(&device.device) {
            if known.revoked {
                return Err(EnrollRefused::Revoked(device.device));
            }
            if known.record.audit_key != device.audit_key {
                return Err(EnrollRefused::IdTaken(device.device));
            }
        }
        s.codes[i].used = true;
        s.failures = 0;
        // A re-enrollment supersedes the previous certificate.
        s.devices.insert(
            device.device,
            Device {
                record: device.clone(),
                revoked: false,
            },
        );
        Ok(())
    }
}

impl DeviceDirectory for MemoryDirectory {
    fn certificate_status(&self, device: DeviceId, fingerprint: &Fingerprint) -> CertStatus {
        match self.state().devices.get(&device) {
            Some(d) if d.revoked => CertStatus::Revoked,
            Some(d) if d.record.cert_fingerprint == *fingerprint => CertStatus::Active,
            _ => CertStatus::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pki::Fingerprint;

    fn device(seed: u8) -> EnrolledDevice {
        EnrolledDevice {
            device: DeviceId::from_bytes([seed; 16]),
            name: format!("Till {seed}"),
            audit_key: pos_audit::DeviceKey::from_seed([seed; 32]).public(),
            cert_fingerprint: Fingerprint::of(&[seed]),
            cert_serial: "01".into(),
            cert_not_after: SystemTime::now(),
            enrolled_at: SystemTime::now(),
            peer_addr: None,
        }
    }

    #[test]
    fn a_code_works_once_and_not_after_expiry() {
        let book = MemoryDirectory::default();
        let t0 = SystemTime::now();
        let key = book.issue_code(t0, Duration::from_secs(600)).unwrap().key();
        let mut is = |k: &CodeKey| *k == key;
        assert_eq!(book.enroll(&device(1), &mut is, t0), Ok(()));
        assert_eq!(
            book.enroll(&device(2), &mut is, t0),
            Err(EnrollRefused::Used)
        );
        let late = book.issue_code(t0, Duration::from_secs(600)).unwrap().key();
        let mut is_late = |k: &CodeKey| *k == late;
        let after = t0 + Duration::from_secs(601);
        assert_eq!(
            book.enroll(&device(3), &mut is_late, after),
            Err(EnrollRefused::Expired)
        );
        let d1 = device(1);
        assert_eq!(
            book.certificate_status(d1.device, &d1.cert_fingerprint),
            CertStatus::Active
        );
        assert!(book.device(device(3).device).is_none());
    }

    #[test]
    fn failed_attempts_void_every_open_code() {
        let book = MemoryDirectory::new(3);
        let t0 = SystemTime::now();
        let key = book.issue_code(t0, Duration::from_secs(600)).unwrap().key();
        let mut never = |_: &CodeKey| false;
        let d = device(1);
        assert_eq!(book.enroll(&d, &mut never, t0), Err(EnrollRefused::NoMatch));
        assert_eq!(book.enroll(&d, &mut never, t0), Err(EnrollRefused::NoMatch));
        assert_eq!(
            book.enroll(&d, &mut never, t0),
            Err(EnrollRefused::TooManyAttempts)
        );
        let mut is = |k: &CodeKey| *k == key;
        assert_eq!(book.enroll(&d, &mut is, t0), Err(EnrollRefused::Used));
    }

    #[test]
    fn revoked_or_taken_ids_do_not_enroll_and_keep_the_code() {
        let book = MemoryDirectory::default();
        let t0 = SystemTime::now();
        book.add_device(device(1));
        assert!(book.revoke(device(1).device));
        let key = book.issue_code(t0, Duration::from_secs(600)).unwrap().key();
        let mut is = |k: &CodeKey| *k == key;
        assert_eq!(
            book.enroll(&device(1), &mut is, t0),
            Err(EnrollRefused::Revoked(device(1).device))
        );
        book.add_device(device(2));
        let impostor = EnrolledDevice {
            audit_key: pos_audit::DeviceKey::from_seed([99; 32]).public(),
            ..device(2)
        };
        assert_eq!(
            book.enroll(&impostor, &mut is, t0),
            Err(EnrollRefused::IdTaken(impostor.device))
        );
        assert_eq!(book.enroll(&device(3), &mut is, t0), Ok(()));
        let d1 = device(1);
        assert_eq!(
            book.certificate_status(d1.device, &d1.cert_fingerprint),
            CertStatus::Revoked
        );
    }
}
