//! The first login of an account whose secret must be changed (the hub's first `admin` with
//! its one-time password, anyone after "reset PIN"): on the appliance there is no shell, so
//! the hub display is where people choose their own secret. This is the screen's state
//! machine, no IO: the store (`Store::change_secret`, `Store::authenticate`) decides; this only
//! holds what was typed and which step is shown.
//!
//! Choose (new + repeat) → the store changes it → Enroll (a TOTP secret the store just
//! enrolled, shown once, confirmed with a code from the app) or Code (an authenticator that
//! was already enrolled) when the role needs a second factor → logged in.

use pos_auth::TotpSecret;

/// The issuer authenticator apps show beside the account (as `pos user passwd` writes it).
pub(crate) const ISSUER: &str = "3PlugPOS";

/// Which part of the first login the screen shows.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The new secret, typed twice.
    Choose,
    /// The second factor the store just enrolled (base32), shown until a code confirms it.
    Enroll { secret: String },
    /// The role needs the authenticator code of an app that was enrolled before.
    Code,
}

// The enrolled secret never reaches a log line.
impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Step {
    /// The name `HubPage.login-step` knows.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Step::Choose => "choose",
            Step::Enroll { .. } => "enroll",
            Step::Code => "code",
        }
    }
}

/// Why the two entries do not go to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// A field is empty.
    Empty,
    /// The repeat differs from the first entry.
    Mismatch,
}

/// The first login under way: the name, the secret that was proven (the one-time one until the
/// store changed it, then the new one: the login at the end needs it), what is being typed.
#[derive(Clone)]
pub(crate) struct FirstLogin {
    name: String,
    current: String,
    new: String,
    repeat: String,
    code: String,
    /// 0: the new secret, 1: its repeat (the code steps have one field).
    field: u8,
    step: Step,
}

// Secrets never reach a log line.
impl std::fmt::Debug for FirstLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstLogin")
            .field("name", &self.name)
            .field("step", &self.step.name())
            .finish_non_exhaustive()
    }
}

impl FirstLogin {
    /// `name` proved `current` and was told it must be changed.
    pub(crate) fn new(name: &str, current: String) -> FirstLogin {
        FirstLogin {
            name: name.to_owned(),
            current,
            new: String::new(),
            repeat: String::new(),
            code: String::new(),
            field: 0,
            step: Step::Choose,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn step(&self) -> &Step {
        &self.step
    }

    /// The secret the store knows now (the one-time one before the change, the new one after).
    pub(crate) fn current(&self) -> &str {
        &self.current
    }

    pub(crate) fn new_secret(&self) -> &str {
        &self.new
    }

    pub(crate) fn repeat(&self) -> &str {
        &self.repeat
    }

    /// The code as typed, without spaces (apps show "123 456").
    pub(crate) fn code(&self) -> String {
        self.code.chars().filter(|c| !c.is_whitespace()).collect()
    }

    /// The code as shown.
    pub(crate) fn code_text(&self) -> &str {
        &self.code
    }

    pub(crate) fn field(&self) -> u8 {
        self.field
    }

    /// A tap on a field (the code steps have only one).
    pub(crate) fn focus(&mut self, field: usize) {
        self.field = u8::from(self.step == Step::Choose && field % 2 == 1);
    }

    /// Tab: the other field.
    pub(crate) fn next_field(&mut self) {
        self.focus(usize::from(self.field) + 1);
    }

    /// The field keys go into.
    pub(crate) fn typing(&mut self) -> &mut String {
        match (&self.step, self.field) {
            (Step::Choose, 0) => &mut self.new,
            (Step::Choose, _) => &mut self.repeat,
            _ => &mut self.code,
        }
    }

    /// Whether the entries may go to the store: both typed and the same. The rules of a good
    /// secret (length, common passwords, PIN format) are the store's, not repeated here.
    pub(crate) fn check(&self) -> Result<(), NotReady> {
        if self.new.is_empty() || self.repeat.is_empty() {
            Err(NotReady::Empty)
        } else if self.new != self.repeat {
            Err(NotReady::Mismatch)
        } else {
            Ok(())
        }
    }

    /// The entries were refused (differ, or the store's policy): both are typed again.
    pub(crate) fn retype(&mut self) {
        self.new.clear();
        self.repeat.clear();
        self.field = 0;
    }

    /// The store changed the secret, and enrolled `enrolled` if the role needs a second factor
    /// that was not set up yet: from now on the new secret is the one to prove.
    pub(crate) fn changed(&mut self, enrolled: Option<&TotpSecret>) {
        self.current = std::mem::take(&mut self.new);
        self.repeat.clear();
        self.code.clear();
        self.field = 0;
        if let Some(totp) = enrolled {
            self.step = Step::Enroll {
                secret: totp.to_base32(),
            };
        }
    }

    /// The login after the change asks for a code of an authenticator enrolled before.
    pub(crate) fn needs_code(&mut self) {
        if self.step == Step::Choose {
            self.step = Step::Code;
        }
        self.code.clear();
    }

    /// A wrong code: typed again, the step (and the secret shown) stays.
    pub(crate) fn wrong_code(&mut self) {
        self.code.clear();
    }

    /// The enrolled secret grouped in fours, as people copy it into an app; empty otherwise.
    pub(crate) fn secret_text(&self) -> String {
        match &self.step {
            Step::Enroll { secret } => group4(secret),
            _ => String::new(),
        }
    }

    /// The account as the app lists it (the label of the otpauth URI `pos user passwd` prints).
    pub(crate) fn label(&self) -> String {
        format!("{ISSUER}: {}", self.name)
    }
}

/// `ABCDEFGHIJ` as `ABCD EFGH IJ`.
pub(crate) fn group4(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(f: &mut FirstLogin, text: &str) {
        f.typing().push_str(text);
    }

    #[test]
    fn both_entries_must_be_typed_and_equal() {
        let mut f = FirstLogin::new("admin", "one-time".into());
        assert_eq!(f.step(), &Step::Choose);
        assert_eq!(f.check(), Err(NotReady::Empty));
        typed(&mut f, "Quiet-Otter-Lamp-42");
        assert_eq!(f.check(), Err(NotReady::Empty));
        f.next_field();
        assert_eq!(f.field(), 1);
        typed(&mut f, "Quiet-Otter-Lamp-43");
        assert_eq!(f.check(), Err(NotReady::Mismatch));
        f.retype();
        assert_eq!((f.new_secret(), f.repeat(), f.field()), ("", "", 0));
        typed(&mut f, "Quiet-Otter-Lamp-42");
        f.focus(1);
        typed(&mut f, "Quiet-Otter-Lamp-42");
        assert_eq!(f.check(), Ok(()));
        assert_eq!(f.current(), "one-time");
    }

    #[test]
    fn a_change_with_a_new_second_factor_shows_it_until_confirmed() {
        let mut f = FirstLogin::new("admin", "one-time".into());
        typed(&mut f, "Quiet-Otter-Lamp-42");
        let totp = TotpSecret::from_bytes(&[0u8; 20]).unwrap();
        f.changed(Some(&totp));
        assert_eq!(f.current(), "Quiet-Otter-Lamp-42");
        assert_eq!(f.step().name(), "enroll");
        assert_eq!(f.secret_text(), group4(&totp.to_base32()));
        assert_eq!(f.label(), "3PlugPOS: admin");
        // The code step has one field: a tap on the "second" one stays on it.
        f.focus(1);
        assert_eq!(f.field(), 0);
        typed(&mut f, "123 456");
        assert_eq!(f.code(), "123456");
        f.wrong_code();
        assert_eq!(f.code(), "");
        assert_eq!(f.step().name(), "enroll");
        // needs_code never hides a secret that is being shown.
        f.needs_code();
        assert_eq!(f.step().name(), "enroll");
    }

    #[test]
    fn a_change_without_a_new_factor_may_still_need_a_code() {
        let mut f = FirstLogin::new("maria", "one-time".into());
        typed(&mut f, "Quiet-Otter-Lamp-42");
        f.changed(None);
        assert_eq!(f.step(), &Step::Choose);
        f.needs_code();
        assert_eq!(f.step(), &Step::Code);
        assert_eq!(f.secret_text(), "");
        assert!(!format!("{f:?}").contains("Otter"), "{f:?}");
    }

    #[test]
    fn secrets_are_grouped_in_fours() {
        assert_eq!(group4("ABCDEFGHIJ"), "ABCD EFGH IJ");
        assert_eq!(group4("ABCD"), "ABCD");
        assert_eq!(group4(""), "");
    }
}
