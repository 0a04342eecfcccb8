//! In-memory enrollment book and device directory: for tests, and the reference for the
//! store's implementation (same rules).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use pos_core::DeviceId;

use crate::enroll::{
    CodeKey, EnrollError, EnrollRefused, EnrolledDevice, EnrollmentBook, EnrollmentCode,
    RedeemError,
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
    fn redeem(
        &self,
        matches: &mut dyn FnMut(&CodeKey) -> bool,
        now: SystemTime,
    ) -> Result<(), RedeemError> {
        let mut s = self.state();
        if let Some(code) = s.codes.iter_mut().find(|c| matches(&c.key)) {
            if code.used {
                return Err(RedeemError::Used);
            }
            if now >= code.expires {
                return Err(RedeemError::Expired);
            }
            code.used = true;
            return Ok(());
        }
        s.failures += 1;
        if s.failures >= self.max_failures {
            for c in &mut s.codes {
                c.used = true;
            }
            return Err(RedeemError::TooManyAttempts);
        }
        Err(RedeemError::NoMatch)
    }

    fn enroll(&self, device: &EnrolledDevice) -> Result<(), EnrollRefused> {
        let mut s = self.state();
        if let Some(known) = s.devices.get(&device.device) {
            if known.revoked {
                return Err(EnrollRefused::Revoked(device.device));
            }
            if known.record.audit_key != device.audit_key {
                return Err(EnrollRefused::IdTaken(device.device));
            }
        }
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

    #[test]
    fn a_code_works_once_and_not_after_expiry() {
        let book = MemoryDirectory::default();
        let t0 = SystemTime::now();
        let code = book.issue_code(t0, Duration::from_secs(600)).unwrap();
        let key = code.key();
        let mut is = |k: &CodeKey| *k == key;
        assert_eq!(book.redeem(&mut is, t0), Ok(()));
        assert_eq!(book.redeem(&mut is, t0), Err(RedeemError::Used));
        let late = book.issue_code(t0, Duration::from_secs(600)).unwrap().key();
        let mut is_late = |k: &CodeKey| *k == late;
        let after = t0 + Duration::from_secs(601);
        assert_eq!(book.redeem(&mut is_late, after), Err(RedeemError::Expired));
    }

    #[test]
    fn failed_attempts_void_every_open_code() {
        let book = MemoryDirectory::new(3);
        let t0 = SystemTime::now();
        let key = book.issue_code(t0, Duration::from_secs(600)).unwrap().key();
        let mut never = |_: &CodeKey| false;
        assert_eq!(book.redeem(&mut never, t0), Err(RedeemError::NoMatch));
        assert_eq!(book.redeem(&mut never, t0), Err(RedeemError::NoMatch));
        assert_eq!(
            book.redeem(&mut never, t0),
            Err(RedeemError::TooManyAttempts)
        );
        let mut is = |k: &CodeKey| *k == key;
        assert_eq!(book.redeem(&mut is, t0), Err(RedeemError::Used));
    }
}
