//! TOTP window, replay and format rules (the RFC 6238 vectors are a unit test in src/totp.rs,
//! where the 8-digit variant is reachable).
#![allow(clippy::unwrap_used)]

use pos_auth::{totp_code, verify_totp, TotpError, TotpSecret};
use proptest::prelude::*;

const T: u64 = 1_700_000_015; // inside step 56_666_667
const STEP: u64 = T / 30;

fn secret() -> TotpSecret {
    TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap()
}

#[test]
fn current_code_is_accepted_and_returns_its_step() {
    let s = secret();
    assert_eq!(verify_totp(&s, &totp_code(&s, T), T, None), Ok(STEP));
    // The RFC example secret at t=59, 6 digits.
    assert_eq!(totp_code(&s, 59), "287082");
}

#[test]
fn one_step_of_skew_is_accepted_two_are_refused() {
    let s = secret();
    assert_eq!(
        verify_totp(&s, &totp_code(&s, T - 30), T, None),
        Ok(STEP - 1)
    );
    assert_eq!(
        verify_totp(&s, &totp_code(&s, T + 30), T, None),
        Ok(STEP + 1)
    );
    assert_eq!(
        verify_totp(&s, &totp_code(&s, T - 60), T, None),
        Err(TotpError::Wrong)
    );
    assert_eq!(
        verify_totp(&s, &totp_code(&s, T + 60), T, None),
        Err(TotpError::Wrong)
    );
}

#[test]
fn a_used_code_cannot_be_replayed() {
    let s = secret();
    let code = totp_code(&s, T);
    let step = verify_totp(&s, &code, T, None).unwrap();
    assert_eq!(
        verify_totp(&s, &code, T, Some(step)),
        Err(TotpError::Replayed)
    );
    // Nor can an older code once a newer one was used.
    assert_eq!(
        verify_totp(&s, &totp_code(&s, T - 30), T, Some(step)),
        Err(TotpError::Replayed)
    );
    // The next step's code is fine.
    assert_eq!(
        verify_totp(&s, &totp_code(&s, T + 30), T + 30, Some(step)),
        Ok(step + 1)
    );
}

#[test]
fn badly_formed_codes_are_format_errors() {
    let s = secret();
    for bad in ["", "12345", "1234567", "abcdef", "12345６", "１２３４５６"] {
        assert_eq!(
            verify_totp(&s, bad, T, None),
            Err(TotpError::Format),
            "{bad:?}"
        );
    }
    let spaced = {
        let c = totp_code(&s, T);
        format!(" {} {} ", &c[..3], &c[3..])
    };
    assert_eq!(verify_totp(&s, &spaced, T, None), Ok(STEP));
}

#[test]
fn time_zero_and_the_far_future_do_not_panic() {
    let s = secret();
    assert_eq!(verify_totp(&s, &totp_code(&s, 0), 0, None), Ok(0));
    let _ = verify_totp(&s, "123456", u64::MAX, None);
    let _ = totp_code(&s, u64::MAX);
}

#[test]
fn enrollment_uri_and_generated_secrets() {
    let s = TotpSecret::generate();
    let b32 = s.to_base32();
    assert_eq!(b32.len(), 32, "160 bits");
    let uri = s.otpauth_uri("admin", "3PlugPOS");
    assert!(uri.starts_with("otpauth://totp/3PlugPOS:admin?secret="));
    assert!(uri.contains(&b32));
    assert_ne!(TotpSecret::generate().to_base32(), b32);
    assert!(!format!("{s:?}").contains(&b32));
    assert!(TotpSecret::from_base32("SHORT").is_err());
}

proptest! {
    #[test]
    fn any_input_is_handled(code in any::<String>(), t in any::<u64>(), last in any::<Option<u64>>(), b32 in any::<String>()) {
        let _ = verify_totp(&secret(), &code, t, last);
        let _ = TotpSecret::from_base32(&b32);
    }

    #[test]
    fn a_code_verifies_within_its_window(t in 60u64..4_000_000_000, skew in -1i64..=1) {
        let s = secret();
        let at = t.checked_add_signed(skew * 30).unwrap();
        prop_assert_eq!(verify_totp(&s, &totp_code(&s, at), t, None), Ok(at / 30));
    }
}
