//! The first-boot screens as a state machine without IO: Welcome → Role → Form → Busy →
//! Done, with the form's editing (focus, on-screen keys, shift) and what each failure leaves
//! on screen. The view-model (`super::Setup`) draws a [`Flow`] and feeds it taps; tests drive
//! it directly.

use pos_core::DeviceRole;

use super::rules::{self, FieldError, FieldId, Form, Request};

/// Longest text a field takes from the keyboard: a little over the longest valid value, so a
/// too-long value can still be seen and named, but a stuck key does not grow it forever.
const MAX_TYPED: usize = rules::MAX_ADDRESS + 8;

/// Which screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// "This box is new": one button to start.
    Welcome,
    /// Till or branch hub.
    Role,
    /// Branch, name and, for a till, the hub's address and code.
    Form,
    /// The request is being carried out (enrolling with the hub, creating the hub).
    Busy,
    /// Done: what happened and a button to the login screen.
    Done,
}

/// What a finished setup made of this box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A till enrolled with its hub.
    Enrolled {
        name: String,
        /// The address it enrolled at (`host:port`).
        hub_addr: String,
        /// The hub's own name.
        hub_name: String,
    },
    /// This box is the branch hub; its first admin has a one-time password.
    Hub {
        name: String,
        branch: String,
        admin: String,
        one_time: String,
    },
}

/// Why a request was not carried out. Each kind says something different to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Nothing answered at the address (no route, refused, timed out).
    #[error("no answer from the hub at {addr}: {detail}")]
    Unreachable { addr: String, detail: String },
    /// The hub said no to the code: wrong, used, expired or too many tries.
    #[error("the hub refused the code: {0}")]
    CodeRefused(String),
    /// Something answered, but not the hub that made the code.
    #[error("the answer at {addr} is not from the hub that made this code")]
    WrongHub { addr: String },
    /// The lower layer refused one field (e.g. a code the hub's parser reads differently).
    #[error("{0}")]
    Field(FieldError),
    /// Anything else, in the words of the layer below.
    #[error("{0}")]
    Other(String),
}

/// The first-boot screens' state.
#[derive(Debug, Clone)]
pub struct Flow {
    step: Step,
    role: DeviceRole,
    form: Form,
    focus: FieldId,
    shift: bool,
    errors: Vec<FieldError>,
    failure: Option<Failure>,
    /// The request being carried out, or the last one.
    request: Option<Request>,
    outcome: Option<Outcome>,
}

impl Default for Flow {
    fn default() -> Self {
        Flow::new()
    }
}

/// The name a device of `role` gets unless someone types another.
pub fn default_name(role: DeviceRole) -> &'static str {
    match role {
        DeviceRole::Terminal => "till-1",
        DeviceRole::Hub => "hub",
    }
}

impl Flow {
    pub fn new() -> Flow {
        Flow {
            step: Step::Welcome,
            role: DeviceRole::Terminal,
            form: Form {
                branch: "main".into(),
                ..Form::default()
            },
            focus: FieldId::Branch,
            shift: false,
            errors: Vec::new(),
            failure: None,
            request: None,
            outcome: None,
        }
    }

    pub fn step(&self) -> Step {
        self.step
    }
    pub fn role(&self) -> DeviceRole {
        self.role
    }
    pub fn form(&self) -> &Form {
        &self.form
    }
    pub fn focus(&self) -> FieldId {
        self.focus
    }
    pub fn shift(&self) -> bool {
        self.shift
    }
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }
    pub fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The problem of `field`, if the last try found one.
    pub fn error(&self, field: FieldId) -> Option<&FieldError> {
        self.errors.iter().find(|e| e.field == field)
    }

    /// Welcome → Role.
    pub fn start(&mut self) {
        if self.step == Step::Welcome {
            self.step = Step::Role;
        }
    }

    /// Role → Form for `role`. The name is filled with the role's default unless someone
    /// typed their own.
    pub fn choose(&mut self, role: DeviceRole) {
        if self.step != Step::Role {
            return;
        }
        let untouched = self.form.name.is_empty()
            || [DeviceRole::Terminal, DeviceRole::Hub]
                .iter()
                .any(|r| self.form.name == default_name(*r));
        if untouched {
            self.form.name = default_name(role).into();
        }
        if self.role != role {
            self.errors.clear();
            self.failure = None;
        }
        self.role = role;
        self.focus = FieldId::Branch;
        self.step = Step::Form;
    }

    /// One screen back (Form → Role → Welcome); never while busy or when done.
    pub fn back(&mut self) {
        self.step = match self.step {
            Step::Form => Step::Role,
            Step::Role | Step::Welcome => Step::Welcome,
            other => other,
        };
    }

    /// Put the cursor in `field` (only a field the role has).
    pub fn tap_field(&mut self, field: FieldId) {
        if self.step == Step::Form && FieldId::for_role(self.role).contains(&field) {
            self.focus = field;
        }
    }

    pub fn toggle_shift(&mut self) {
        self.shift = !self.shift;
    }

    /// A key from the on-screen keyboard or a hardware keyboard: text is typed into the field
    /// with the cursor; backspace ("\u{8}", or Delete "\u{7f}") removes the last character;
    /// Tab moves to the next field; Enter moves on too and, in the last field, submits (the
    /// request is returned then). Other control and function keys are ignored.
    pub fn key(&mut self, text: &str) -> Option<Request> {
        if self.step != Step::Form {
            return None;
        }
        match text {
            "\u{8}" | "\u{7f}" => {
                self.form.get_mut(self.focus).pop();
                self.edited();
            }
            "\t" => self.next_field(),
            "\n" | "\r" => {
                let fields = FieldId::for_role(self.role);
                if fields.last() == Some(&self.focus) {
                    return self.submit();
                }
                self.next_field();
            }
            _ => {
                // Keys without text (arrows, F-keys) arrive as control or private-use chars.
                let typed: String = text
                    .chars()
                    .filter(|c| !c.is_control() && !('\u{e000}'..='\u{f8ff}').contains(c))
                    .collect();
                if typed.is_empty() {
                    return None;
                }
                // Codes are shown as the hub shows them, whatever case the keys sent.
                let typed = match self.focus {
                    FieldId::Code => typed.to_uppercase(),
                    _ => typed,
                };
                let field = self.form.get_mut(self.focus);
                if field.chars().count() + typed.chars().count() <= MAX_TYPED {
                    field.push_str(&typed);
                }
                self.edited();
            }
        }
        None
    }

    fn next_field(&mut self) {
        let fields = FieldId::for_role(self.role);
        let at = fields.iter().position(|f| *f == self.focus).unwrap_or(0);
        self.focus = fields[(at + 1) % fields.len()];
    }

    /// Typing in a field clears what was said about it: the mark is about the old value.
    fn edited(&mut self) {
        let focus = self.focus;
        self.errors.retain(|e| e.field != focus);
    }

    /// Enroll / set up: the checked request (Form → Busy), or the problems marked on their
    /// fields (the cursor goes to the first) and nothing to do.
    pub fn submit(&mut self) -> Option<Request> {
        if self.step != Step::Form {
            return None;
        }
        self.failure = None;
        match rules::validate(self.role, &self.form) {
            Ok(request) => {
                self.errors.clear();
                self.step = Step::Busy;
                self.request = Some(request.clone());
                Some(request)
            }
            Err(errors) => {
                if let Some(first) = errors.first() {
                    self.focus = first.field;
                }
                self.errors = errors;
                None
            }
        }
    }

    /// The request ended: Busy → Done, or back to the form with what went wrong and every
    /// value as it was typed.
    pub fn finished(&mut self, result: Result<Outcome, Failure>) {
        if self.step != Step::Busy {
            return;
        }
        match result {
            Ok(outcome) => {
                self.outcome = Some(outcome);
                self.step = Step::Done;
            }
            Err(Failure::Field(error)) => {
                self.focus = error.field;
                self.errors = vec![error];
                self.step = Step::Form;
            }
            Err(failure) => {
                // A refused code is spent or wrong: the cursor waits in it for the new one.
                if matches!(failure, Failure::CodeRefused(_)) {
                    self.focus = FieldId::Code;
                }
                self.failure = Some(failure);
                self.step = Step::Form;
            }
        }
    }

    /// "Continue to login": true when setup is done and the screen may close.
    pub fn proceed(&self) -> bool {
        self.step == Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::rules::Problem;

    fn type_in(flow: &mut Flow, text: &str) {
        for c in text.chars() {
            assert_eq!(flow.key(&c.to_string()), None);
        }
    }

    fn at_till_form() -> Flow {
        let mut flow = Flow::new();
        flow.start();
        flow.choose(DeviceRole::Terminal);
        flow
    }

    fn enrolled() -> Outcome {
        Outcome::Enrolled {
            name: "till-1".into(),
            hub_addr: "10.0.0.2:7443".into(),
            hub_name: "hub".into(),
        }
    }

    #[test]
    fn welcome_role_form_busy_done() {
        let mut flow = Flow::new();
        assert_eq!(flow.step(), Step::Welcome);
        // Nothing happens out of order.
        flow.choose(DeviceRole::Hub);
        assert_eq!(flow.submit(), None);
        assert_eq!(flow.step(), Step::Welcome);
        flow.start();
        assert_eq!(flow.step(), Step::Role);
        flow.choose(DeviceRole::Terminal);
        assert_eq!(flow.step(), Step::Form);
        assert_eq!(flow.form().branch, "main");
        assert_eq!(flow.form().name, "till-1");
        flow.tap_field(FieldId::Hub);
        type_in(&mut flow, "10.0.0.2");
        flow.tap_field(FieldId::Code);
        type_in(&mut flow, "7KQ2MX9D4T8RB3ZF");
        assert!(!flow.proceed());
        let request = flow.submit().unwrap();
        assert_eq!(request.hub.as_deref(), Some("10.0.0.2:7443"));
        assert_eq!(flow.step(), Step::Busy);
        // Busy: no typing, no second request, no way back.
        assert_eq!(flow.key("x"), None);
        assert_eq!(flow.submit(), None);
        flow.back();
        assert_eq!(flow.step(), Step::Busy);
        flow.finished(Ok(enrolled()));
        assert_eq!(flow.step(), Step::Done);
        assert_eq!(flow.outcome(), Some(&enrolled()));
        assert!(flow.proceed());
        // A late second answer changes nothing.
        flow.finished(Err(Failure::Other("late".into())));
        assert_eq!(flow.step(), Step::Done);
    }

    #[test]
    fn wrong_formats_are_marked_on_their_fields_and_cleared_by_typing() {
        let mut flow = at_till_form();
        flow.tap_field(FieldId::Hub);
        type_in(&mut flow, "10.0.0.2:x");
        assert_eq!(flow.submit(), None);
        assert_eq!(flow.step(), Step::Form);
        assert_eq!(flow.error(FieldId::Hub).unwrap().problem, Problem::BadPort);
        assert_eq!(flow.error(FieldId::Code).unwrap().problem, Problem::Empty);
        assert!(flow.error(FieldId::Branch).is_none());
        // The cursor goes to the first problem; typing there clears only its mark.
        assert_eq!(flow.focus(), FieldId::Hub);
        flow.key("\u{8}");
        assert_eq!(flow.form().hub, "10.0.0.2:");
        assert!(flow.error(FieldId::Hub).is_none());
        assert!(flow.error(FieldId::Code).is_some());
    }

    #[test]
    fn failures_keep_every_value_and_say_what_went_wrong() {
        let mut flow = at_till_form();
        flow.tap_field(FieldId::Hub);
        type_in(&mut flow, "10.0.0.9:7443");
        flow.tap_field(FieldId::Code);
        type_in(&mut flow, "7KQ2-MX9D-4T8R-B3ZF");
        let before = flow.form().clone();
        flow.submit().unwrap();
        flow.finished(Err(Failure::Unreachable {
            addr: "10.0.0.9:7443".into(),
            detail: "connection refused".into(),
        }));
        assert_eq!(flow.step(), Step::Form);
        assert_eq!(flow.form(), &before);
        assert!(matches!(flow.failure(), Some(Failure::Unreachable { .. })));
        // Trying again clears the old failure; a refused code puts the cursor in the code.
        flow.tap_field(FieldId::Branch);
        flow.submit().unwrap();
        assert_eq!(flow.failure(), None);
        flow.finished(Err(Failure::CodeRefused("expired".into())));
        assert_eq!(flow.focus(), FieldId::Code);
        assert_eq!(flow.form(), &before);
        // A field the lower layer refused is marked like a format problem.
        flow.submit().unwrap();
        flow.finished(Err(Failure::Field(FieldError {
            field: FieldId::Name,
            problem: Problem::BadCharacters,
        })));
        assert_eq!(flow.focus(), FieldId::Name);
        assert!(flow.error(FieldId::Name).is_some());
        assert_eq!(flow.failure(), None);
    }

    #[test]
    fn keys_move_type_and_submit() {
        let mut flow = Flow::new();
        flow.start();
        flow.choose(DeviceRole::Hub);
        assert_eq!(flow.form().name, "hub");
        // A hub has two fields: Tab cycles between them, the till's are out of reach.
        flow.key("\t");
        assert_eq!(flow.focus(), FieldId::Name);
        flow.key("\t");
        assert_eq!(flow.focus(), FieldId::Branch);
        flow.tap_field(FieldId::Code);
        assert_eq!(flow.focus(), FieldId::Branch);
        // Backspace empties, arrows and control keys type nothing.
        for _ in 0..4 {
            flow.key("\u{8}");
        }
        assert_eq!(flow.form().branch, "");
        flow.key("\u{f702}");
        flow.key("\u{1b}");
        type_in(&mut flow, "Süd");
        assert_eq!(flow.form().branch, "Süd");
        // Enter moves on, and in the last field submits.
        assert_eq!(flow.key("\n"), None);
        assert_eq!(flow.focus(), FieldId::Name);
        let request = flow.key("\r").unwrap();
        assert_eq!(request.role, DeviceRole::Hub);
        assert_eq!(request.branch, "Süd");
        assert_eq!(flow.step(), Step::Busy);
    }

    #[test]
    fn typing_is_bounded() {
        let mut flow = at_till_form();
        flow.tap_field(FieldId::Hub);
        for _ in 0..1000 {
            flow.key("a");
        }
        assert_eq!(flow.form().hub.len(), MAX_TYPED);
    }

    #[test]
    fn back_and_a_role_change_keep_typed_names() {
        let mut flow = at_till_form();
        flow.back();
        assert_eq!(flow.step(), Step::Role);
        flow.choose(DeviceRole::Hub);
        assert_eq!(flow.form().name, "hub");
        flow.tap_field(FieldId::Name);
        type_in(&mut flow, "-north");
        flow.back();
        flow.choose(DeviceRole::Terminal);
        assert_eq!(flow.form().name, "hub-north");
        flow.back();
        flow.back();
        assert_eq!(flow.step(), Step::Welcome);
    }
}
