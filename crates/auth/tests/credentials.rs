//! Password and PIN policy, argon2id hashing, generated secrets.
#![allow(clippy::unwrap_used)]

use pos_auth::{
    check_password, check_pin, generate_one_time_password, generate_pin, hash_secret,
    verify_secret, CredentialError, PasswordPolicy, ARGON2_ITERATIONS, ARGON2_LANES,
    ARGON2_MEMORY_KIB,
};
use proptest::prelude::*;

fn check(password: &str) -> Result<(), CredentialError> {
    check_password(password, "anna", &PasswordPolicy::default(), &[])
}

#[test]
fn length_limits() {
    assert_eq!(check(""), Err(CredentialError::Empty));
    assert_eq!(
        check("violet-oak7"),
        Err(CredentialError::TooShort { min: 12 })
    );
    assert_eq!(check("violet-oak-7"), Ok(()));
    // Counted in characters, not bytes: 11 two-byte characters are too short.
    assert_eq!(
        check(&"é".repeat(11)),
        Err(CredentialError::TooShort { min: 12 })
    );
    assert_eq!(check(&"ab3é".repeat(32)), Ok(()));
    assert_eq!(
        check(&"ab3é".repeat(32 + 1)),
        Err(CredentialError::TooLong { max: 128 })
    );
    assert_eq!(
        check(&"x".repeat(1_000_000)),
        Err(CredentialError::TooLong { max: 128 })
    );
}

#[test]
fn common_passwords_and_their_variants_are_refused() {
    for common in [
        "123456789012",
        "qwertyuiop123",
        "QWERTYUIOP123",
        "Qwerty-Uiop!",
        "Password123456",
        "P@ssw0rd-2024!",
        "PASSWORD!!!!!!",
        "LetMeIn!!2024",
        "l e t m e i n 9 9 9",
        "Cashier123456",
        "STORE-1234-5678",
        "manager2024!!",
        "CorrectHorseBatteryStaple",
        "aaaaaaaaaaaaaaaa",
        "abababababababab",
    ] {
        assert_eq!(check(common), Err(CredentialError::Common), "{common}");
    }
}

#[test]
fn the_user_name_is_refused_inside_the_password() {
    assert_eq!(check("violet-ANNA-oak"), Err(CredentialError::ContainsName));
    assert_eq!(
        check_password(
            "hannah-violet-oak",
            "Hannah ",
            &PasswordPolicy::default(),
            &[]
        ),
        Err(CredentialError::ContainsName)
    );
    // Names shorter than 3 characters would refuse too much.
    assert_eq!(
        check_password("al-violet-oak-7", "al", &PasswordPolicy::default(), &[]),
        Ok(())
    );
}

#[test]
fn each_of_the_last_n_passwords_is_refused() {
    let policy = PasswordPolicy::default();
    let old: Vec<String> = (0..policy.history)
        .map(|i| format!("violet-oak-number-{i}"))
        .collect();
    let verifiers: Vec<String> = old.iter().map(|p| hash_secret(p).unwrap()).collect();
    for p in &old {
        assert_eq!(
            check_password(p, "anna", &policy, &verifiers),
            Err(CredentialError::Reused),
            "{p}"
        );
    }
    assert_eq!(
        check_password("a-completely-new-one", "anna", &policy, &verifiers),
        Ok(())
    );
    // A malformed verifier in the history does not block a change.
    assert_eq!(
        check_password("a-completely-new-one", "anna", &policy, &["garbage".into()]),
        Ok(())
    );
}

#[test]
fn errors_never_contain_the_secret() {
    let secret = "Password123456";
    for e in [
        check(secret).unwrap_err(),
        check("violet-ANNA-oak").unwrap_err(),
        check_pin("1234").unwrap_err(),
        check_pin("12x4").unwrap_err(),
    ] {
        let text = format!("{e} {e:?}");
        assert!(!text.contains(secret) && !text.contains("1234") && !text.contains("ANNA"));
    }
}

#[test]
fn hashes_are_argon2id_with_the_production_parameters_and_fresh_salts() {
    let a = hash_secret("violet-oak-7").unwrap();
    let b = hash_secret("violet-oak-7").unwrap();
    let prefix =
        format!("$argon2id$v=19$m={ARGON2_MEMORY_KIB},t={ARGON2_ITERATIONS},p={ARGON2_LANES}$");
    assert!(a.starts_with(&prefix), "{a}");
    assert_ne!(a, b, "salts must differ");
    assert!(verify_secret("violet-oak-7", &a));
    assert!(verify_secret("violet-oak-7", &b));
    assert!(!verify_secret("violet-oak-8", &a));
    assert!(!verify_secret("", &a));
    assert!(!verify_secret("violet-oak-7", "garbage"));
    // Non-ASCII secrets work; absurdly long ones are refused rather than hashed.
    let h = hash_secret("ünïcødé-pässwörd-€").unwrap();
    assert!(verify_secret("ünïcødé-pässwörd-€", &h));
    assert_eq!(
        hash_secret(&"x".repeat(100_000)),
        Err(CredentialError::TooLong { max: 512 })
    );
    assert!(!verify_secret(&"x".repeat(100_000), &a));
}

#[test]
fn generated_pins_have_the_requested_length() {
    for (asked, got) in [(0, 4), (4, 4), (6, 6), (8, 8), (100, 8)] {
        assert_eq!(generate_pin(asked).len(), got);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_one_time_passwords_always_pass(name in "[a-zA-Z0-9._ -]{0,20}") {
        let otp = generate_one_time_password();
        prop_assert_eq!(otp.chars().count(), 16);
        prop_assert!(!otp.chars().any(|c| "0O1lI".contains(c)), "{}", otp);
        prop_assume!(!otp.to_lowercase().contains(&name.trim().to_lowercase()) || name.trim().chars().count() < 3);
        prop_assert_eq!(check_password(&otp, &name, &PasswordPolicy::default(), &[]), Ok(()));
    }

    #[test]
    fn generated_pins_always_pass(len in 0usize..20) {
        let pin = generate_pin(len);
        prop_assert_eq!(check_pin(&pin), Ok(()));
        prop_assert_eq!(pin.len(), len.clamp(4, 8));
    }

    #[test]
    fn checks_never_panic(s in any::<String>(), name in any::<String>()) {
        let _ = check_pin(&s);
        let _ = pos_auth::check_badge(&s);
        let _ = check_password(&s, &name, &PasswordPolicy::default(), &[]);
        let _ = check_password(&s, &name, &PasswordPolicy { min_length: 0, history: 0 }, &[]);
    }
}
