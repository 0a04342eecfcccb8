//! The hub's manager display (issue 10): a view-model over the hub's [`Store`] that fills the
//! `HubPage` global of `ui/ui/hub/*.slint`. It reads the analytics query API
//! (`Store::dashboard`, `Store::alerts`), the sync status, the accounts and the backups, and
//! writes only through the store's own flows (`set_locked`, `reset_secret`,
//! `create_enroll_code`, `revoke_device`) with the logged-in manager as the actor: the store
//! decides and logs; a refusal is shown as it comes.
//!
//! The display never owns the store: it reaches it through a [`StoreAccess`] (in `pos hub`,
//! `RunningHub::with_store`, a blocking mutex; the calls here are short and made on taps and
//! every [`REFRESH`]).

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use pos_auth::{
    BuiltinRole, CredentialError, Locked, LoginRefusal, Principal, SessionPolicy, Sessions,
};
use pos_core::sale::{Currency, Money};
use pos_store::reports::{Alert, AlertRules, BackupState, Dashboard, Period, Severity};
use pos_store::{AccountError, AccountPolicy, DeviceSyncStatus, PeerStatus, Store, UserSummary};
use slint::{ComponentHandle, ModelRc, PlatformError, SharedString, VecModel};

use crate::locale::Locale;
use crate::{
    AlertRow, BackupRow, ChartBar, DeviceRow, HubChoice, HubPage, HubTr, HubWindow, KpiTile,
    ReportRow, TenderSlice, UserRow,
};
use first_login::{FirstLogin, NotReady, Step};

mod first_login;
pub mod layout;

pub use layout::{DashboardLayout, Kpi, PeriodChoice, Widget};

/// How often the running display re-reads the store.
pub const REFRESH: Duration = Duration::from_secs(2);

/// How the display reaches the hub's store.
pub trait StoreAccess {
    /// Run `f` with the store (blocking until the store is free).
    fn with_store(&self, f: &mut dyn FnMut(&mut Store));
}

/// A store the display holds itself (tests, screenshots, a stopped hub).
impl StoreAccess for RefCell<Store> {
    fn with_store(&self, f: &mut dyn FnMut(&mut Store)) {
        match self.try_borrow_mut() {
            Ok(mut s) => f(&mut s),
            Err(_) => tracing::warn!("the hub's store is busy: skipped"),
        }
    }
}

/// Run `f` on the store behind `access`; None if it was not run.
fn with<R>(access: &dyn StoreAccess, f: impl FnOnce(&mut Store) -> R) -> Option<R> {
    let mut f = Some(f);
    let mut out = None;
    access.with_store(&mut |s| {
        if let Some(f) = f.take() {
            out = Some(f(s));
        }
    });
    out
}

/// A job the firmware runs for the display: its sentence's value, or why it failed.
pub type Job = Box<dyn Fn() -> Result<String, String>>;
/// Verify the newest backup: `(file name, records)`, or why not.
pub type VerifyJob = Box<dyn Fn() -> Result<(String, u64), String>>;
/// Where an exported report goes: a directory (by default the one USB stick's), or why not.
pub type ExportDir = Box<dyn Fn() -> Result<PathBuf, String>>;

/// Work the firmware does for the display (it holds the backup key and the exporters).
/// Each returns the sentence's value on success (a file name, a path) or why not.
#[derive(Default)]
pub struct HubActions {
    /// Verify the newest backup now: `(file name, records)`.
    pub verify_backup: Option<VerifyJob>,
    /// Copy the newest backup to a USB stick: the path written.
    pub export_backup: Option<Job>,
    /// Where the reports browser writes its exports; None: `pos-reports/` on the one USB
    /// stick plugged in ([`usb_export_dir`]).
    pub export_dir: Option<ExportDir>,
}

impl std::fmt::Debug for HubActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubActions")
            .field("verify_backup", &self.verify_backup.is_some())
            .field("export_backup", &self.export_backup.is_some())
            .field("export_dir", &self.export_dir.is_some())
            .finish()
    }
}

/// What the display needs besides the store.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// The hub's data dir: `hub-dashboard.json`, `backup-status.json`.
    pub data_dir: PathBuf,
    /// Where the scheduled backups are written.
    pub backup_dir: PathBuf,
    pub account_policy: AccountPolicy,
    pub alert_rules: AlertRules,
    /// `[hub] offline_alert_min` in milliseconds.
    pub offline_alert_ms: u64,
    pub currency: Currency,
    /// The idle lock (default: 2 minutes without a tap).
    pub session_policy: SessionPolicy,
}

impl HubOptions {
    /// Defaults for a data dir (backups under `DATA_DIR/backups`).
    pub fn new(data_dir: PathBuf) -> HubOptions {
        HubOptions {
            backup_dir: data_dir.join("backups"),
            data_dir,
            account_policy: AccountPolicy::default(),
            alert_rules: AlertRules::default(),
            offline_alert_ms: 10 * 60_000,
            currency: Currency::default(),
            session_policy: SessionPolicy::default(),
        }
    }
}

/// Which page the display shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubScreen {
    Login,
    Dashboard,
    Builder,
    Terminals,
    Alerts,
    Users,
    Devices,
    Backups,
    Reports,
}

impl HubScreen {
    pub const ALL: [HubScreen; 9] = [
        HubScreen::Login,
        HubScreen::Dashboard,
        HubScreen::Builder,
        HubScreen::Terminals,
        HubScreen::Alerts,
        HubScreen::Users,
        HubScreen::Devices,
        HubScreen::Backups,
        HubScreen::Reports,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HubScreen::Login => "login",
            HubScreen::Dashboard => "dashboard",
            HubScreen::Builder => "builder",
            HubScreen::Terminals => "terminals",
            HubScreen::Alerts => "alerts",
            HubScreen::Users => "users",
            HubScreen::Devices => "devices",
            HubScreen::Backups => "backups",
            HubScreen::Reports => "reports",
        }
    }

    fn from_name(name: &str) -> Option<HubScreen> {
        HubScreen::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The reports the browser lists (`pos report NAME`) with their description's key.
pub const REPORTS: [(&str, &str); 10] = [
    ("x", "report-x"),
    ("z", "report-z"),
    ("journal", "report-journal"),
    ("tenders", "report-tenders"),
    ("kpis", "report-kpis"),
    ("products", "report-products"),
    ("cashiers", "report-cashiers"),
    ("tax", "report-tax"),
    ("audit", "report-audit"),
    ("security", "report-security"),
];

/// A sentence of `hub/messages.slint` with up to two values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Msg {
    key: &'static str,
    a: String,
    b: String,
}

impl Msg {
    fn new(key: &'static str) -> Msg {
        Msg {
            key,
            ..Msg::default()
        }
    }

    fn with(key: &'static str, a: impl ToString) -> Msg {
        Msg {
            key,
            a: a.to_string(),
            b: String::new(),
        }
    }

    fn with2(key: &'static str, a: impl ToString, b: impl ToString) -> Msg {
        Msg {
            key,
            a: a.to_string(),
            b: b.to_string(),
        }
    }

    fn text(&self, w: &HubWindow) -> SharedString {
        tr(w, self.key, &self.a, &self.b)
    }
}

fn tr(w: &HubWindow, key: &str, a: &str, b: &str) -> SharedString {
    w.global::<HubTr<'_>>()
        .invoke_text(key.into(), a.into(), b.into())
}

/// A refusal of the store, for the manager.
fn refusal(e: &AccountError) -> Msg {
    match e {
        AccountError::Login(LoginRefusal::UnknownOrWrong { .. }) | AccountError::UnknownUser(_) => {
            Msg::new("err-wrong-login")
        }
        AccountError::Login(LoginRefusal::Locked(_)) => Msg::new("err-locked"),
        AccountError::Login(LoginRefusal::MfaRequired | LoginRefusal::WrongMfaCode) => {
            Msg::new("err-mfa")
        }
        AccountError::Login(LoginRefusal::Inactive) => Msg::new("err-inactive"),
        AccountError::Login(LoginRefusal::MustChangeSecret) => Msg::new("err-must-change"),
        AccountError::Denied(_) => Msg::new("err-permission"),
        AccountError::Credential(e) => weak_secret(e),
        other => Msg::with("err-other", other),
    }
}

/// The store's password/PIN policy refusing a new secret, in the display's words.
fn weak_secret(e: &CredentialError) -> Msg {
    match e {
        CredentialError::Empty => Msg::new("err-new-empty"),
        CredentialError::PinFormat => Msg::new("err-pin-format"),
        CredentialError::PinTooSimple => Msg::new("err-pin-simple"),
        CredentialError::TooShort { min } => Msg::with("err-too-short", min),
        CredentialError::TooLong { max } => Msg::with("err-too-long", max),
        CredentialError::Common => Msg::new("err-common"),
        CredentialError::ContainsName => Msg::new("err-contains-name"),
        CredentialError::Reused => Msg::new("err-reused"),
        other => Msg::with("err-other", other),
    }
}

/// The roles that may look at the hub display.
fn may_look(p: &Principal) -> bool {
    p.active
        && [
            BuiltinRole::Manager,
            BuiltinRole::Admin,
            BuiltinRole::Auditor,
        ]
        .into_iter()
        .any(|r| p.has_role(r))
}

/// What the backups page shows.
#[derive(Debug, Default)]
struct Backups {
    status: pos_backup::job::Status,
    files: Vec<pos_backup::BackupFile>,
    error: Option<String>,
}

struct State {
    access: Rc<dyn StoreAccess>,
    options: HubOptions,
    actions: HubActions,
    now: fn() -> u64,
    screen: HubScreen,
    login_name: String,
    login_secret: String,
    login_totp: String,
    login_field: u8,
    /// A login refused with "must change": the new secret being chosen (the lock screen shows
    /// the change form instead of the login form while this is set).
    first: Option<FirstLogin>,
    shift: bool,
    actor: Option<(Principal, String)>,
    sessions: Sessions,
    session: Option<pos_auth::SessionId>,
    layout: DashboardLayout,
    period: PeriodChoice,
    dashboard: Option<Dashboard>,
    devices: Vec<DeviceSyncStatus>,
    alerts: Vec<Alert>,
    users: Vec<UserSummary>,
    backups: Backups,
    enroll: Option<(String, u64)>,
    notice: Option<(Msg, bool)>,
    clock: Option<String>,
    locale: Locale,
    /// The store could not be reached at the last refresh.
    stopped: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("screen", &self.screen)
            .finish_non_exhaustive()
    }
}

const FIELD_MAX: usize = 128;

fn local_offset_min(at_ms: u64) -> i32 {
    let ms = i64::try_from(at_ms).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| jiff::tz::TimeZone::system().to_offset(t).seconds() / 60)
        .unwrap_or(0)
}

fn local_time(ms: u64, format: &str) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime(format)
                .to_string()
        })
        .unwrap_or_default()
}

fn bytes_text(b: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if b >= 1024 * MB {
        format!(
            "{}.{} GB",
            b / (1024 * MB),
            (b % (1024 * MB)) * 10 / (1024 * MB)
        )
    } else if b >= MB {
        format!("{}.{} MB", b / MB, (b % MB) * 10 / MB)
    } else {
        format!("{} kB", b.div_ceil(1024))
    }
}

impl State {
    fn money(&self, m: Money) -> String {
        self.locale.money(m, &self.options.currency)
    }

    fn now(&self) -> u64 {
        (self.now)()
    }

    /// A number with one decimal as the locale writes it ("43.2" or "43,2").
    fn decimal(&self, tenths: i64) -> String {
        let sign = if tenths < 0 { "-" } else { "" };
        let t = tenths.unsigned_abs();
        // The separator the locale puts in money of two decimals ("1.50" / "1,50").
        let two = Currency {
            minor_digits: 2,
            ..self.options.currency.clone()
        };
        let sep = self
            .locale
            .number(Money(150), &two)
            .chars()
            .find(|c| !c.is_ascii_digit())
            .unwrap_or('.');
        format!("{sign}{}{sep}{}", t / 10, t % 10)
    }

    /// Basis points as a percentage with one decimal ("12.5%").
    fn percent_bp(&self, bp: i64) -> String {
        format!("{}%", self.decimal(bp / 10))
    }

    fn period_of(&self, choice: PeriodChoice) -> Period {
        let now = self.now();
        Period::local_days(now, choice.days(), local_offset_min(now)).unwrap_or(Period {
            from_ms: now,
            to_ms: now,
        })
    }

    fn touch(&mut self) {
        if let Some(id) = self.session {
            let now = self.now();
            self.sessions.touch(id, now);
        }
    }

    fn field(&mut self) -> &mut String {
        if let Some(f) = &mut self.first {
            return f.typing();
        }
        match self.login_field {
            0 => &mut self.login_name,
            1 => &mut self.login_secret,
            _ => &mut self.login_totp,
        }
    }

    fn key(&mut self, text: &str) {
        if self.screen != HubScreen::Login {
            return;
        }
        for ch in text.chars() {
            match ch {
                '\u{8}' | '\u{7f}' => {
                    self.field().pop();
                }
                '\t' => match &mut self.first {
                    Some(f) => f.next_field(),
                    None => self.login_field = (self.login_field + 1) % 3,
                },
                '\r' | '\n' => return self.submit(),
                c if !c.is_control() => {
                    let field = self.field();
                    if field.chars().count() < FIELD_MAX {
                        field.push(c);
                    }
                }
                _ => {}
            }
        }
    }

    /// A tap on a field of the lock screen (login or change form).
    fn focus(&mut self, field: usize) {
        match &mut self.first {
            Some(f) => f.focus(field),
            None => self.login_field = (field % 3) as u8,
        }
    }

    /// "Log in", "Save" or "Confirm": whichever form the lock screen shows.
    fn submit(&mut self) {
        match self.first.as_ref().map(FirstLogin::step) {
            None => self.login(),
            Some(Step::Choose) => self.choose(),
            Some(Step::Enroll { .. } | Step::Code) => self.confirm(),
        }
    }

    /// Back from the change form to the login form, forgetting what was typed. Not offered
    /// once a second factor was enrolled: its secret would never be shown again.
    fn cancel_first(&mut self) {
        if matches!(
            self.first.as_ref().map(FirstLogin::step),
            Some(Step::Choose)
        ) {
            self.first = None;
            self.login_field = 1;
            self.notice = None;
        }
    }

    /// The new secret typed twice goes to the store, which applies the policy and may enroll
    /// the second factor the role needs.
    fn choose(&mut self) {
        let Some(mut first) = self.first.take() else {
            return;
        };
        match first.check() {
            Err(NotReady::Empty) => {
                self.notice = Some((Msg::new("err-new-empty"), true));
                self.first = Some(first);
                return;
            }
            Err(NotReady::Mismatch) => {
                first.retype();
                self.notice = Some((Msg::new("err-mismatch"), true));
                self.first = Some(first);
                return;
            }
            Ok(()) => {}
        }
        let policy = self.options.account_policy.clone();
        let done = with(&*self.access, |s| {
            s.change_secret(
                first.name(),
                first.current(),
                first.new_secret(),
                None,
                &policy,
            )
        });
        match done {
            None => {
                self.notice = Some((Msg::new("hub-stopped"), true));
                self.first = Some(first);
            }
            Some(Err(AccountError::Credential(e))) => {
                first.retype();
                self.notice = Some((weak_secret(&e), true));
                self.first = Some(first);
            }
            // Locked meanwhile, deactivated, or the one-time secret was reset again: the
            // login form says why.
            Some(Err(e)) => {
                self.login_field = 1;
                self.notice = Some((refusal(&e), true));
            }
            Some(Ok(Some(totp))) => {
                first.changed(Some(&totp));
                self.notice = Some((Msg::new("secret-changed-totp"), false));
                self.first = Some(first);
            }
            Some(Ok(None)) => {
                first.changed(None);
                self.first = Some(first);
                self.finish_first();
            }
        }
    }

    /// The code from the app: confirms a new second factor (or proves one enrolled before) by
    /// logging in with the new secret and it.
    fn confirm(&mut self) {
        if self.first.as_ref().is_some_and(|f| f.code().is_empty()) {
            self.notice = Some((Msg::new("err-mfa"), true));
            return;
        }
        self.finish_first();
    }

    /// Log in with the new secret (and the code typed, if any), as a normal login does.
    fn finish_first(&mut self) {
        let Some(mut first) = self.first.take() else {
            return;
        };
        let code = first.code();
        let code = Some(code.as_str()).filter(|c| !c.is_empty());
        let policy = self.options.account_policy.clone();
        let done = with(&*self.access, |s| {
            s.authenticate(first.name(), first.current(), code, &policy)
        });
        match done {
            None => {
                self.notice = Some((Msg::new("hub-stopped"), true));
                self.first = Some(first);
            }
            Some(Err(AccountError::Login(LoginRefusal::MfaRequired))) => {
                first.needs_code();
                self.notice = Some((Msg::new("err-mfa"), true));
                self.first = Some(first);
            }
            Some(Err(AccountError::Login(LoginRefusal::WrongMfaCode))) => {
                first.wrong_code();
                self.notice = Some((Msg::new("err-wrong-code"), true));
                self.first = Some(first);
            }
            Some(Err(e)) => {
                self.login_name = first.name().to_owned();
                self.login_field = 1;
                self.notice = Some((refusal(&e), true));
            }
            // Cashiers change a hub-owned PIN here too (a till cannot), then use it at a till.
            Some(Ok(p)) if !may_look(&p) => {
                self.login_name.clear();
                self.login_field = 0;
                self.notice = Some((Msg::new("secret-changed-till"), false));
            }
            Some(Ok(p)) => self.admit(p, first.name().to_owned()),
        }
    }

    fn login(&mut self) {
        let name = self.login_name.trim().to_owned();
        let secret = std::mem::take(&mut self.login_secret);
        let totp = std::mem::take(&mut self.login_totp);
        let totp = Some(totp.trim()).filter(|t| !t.is_empty());
        let policy = self.options.account_policy.clone();
        let done = with(&*self.access, |s| {
            s.authenticate(&name, &secret, totp, &policy)
        });
        match done {
            None => self.notice = Some((Msg::new("hub-stopped"), true)),
            // The secret was right but is a one-time one: choose one's own now.
            Some(Err(AccountError::Login(LoginRefusal::MustChangeSecret))) => {
                self.first = Some(FirstLogin::new(&name, secret));
                self.notice = Some((Msg::new("err-must-change"), false));
            }
            Some(Err(e)) => {
                self.login_field = 1;
                self.notice = Some((refusal(&e), true));
            }
            Some(Ok(p)) if !may_look(&p) => {
                self.login_field = 0;
                self.notice = Some((Msg::new("err-not-allowed"), true));
            }
            Some(Ok(p)) => self.admit(p, name),
        }
    }

    /// `p` logged in as `name` and may look: the dashboard.
    fn admit(&mut self, p: Principal, name: String) {
        let now = self.now();
        self.session = Some(self.sessions.open(p.user, now));
        self.actor = Some((p, name.clone()));
        self.login_name.clear();
        self.login_field = 0;
        self.first = None;
        self.shift = false;
        self.screen = HubScreen::Dashboard;
        self.period = self.layout.period;
        self.notice = Some((Msg::with("welcome", name), false));
        self.refresh();
    }

    fn lock(&mut self) {
        if let Some(id) = self.session.take() {
            self.sessions.close(id);
        }
        self.actor = None;
        self.screen = HubScreen::Login;
        self.enroll = None;
        self.users.clear();
        self.notice = None;
        self.login_secret.clear();
        self.login_totp.clear();
        self.first = None;
    }

    /// Lock when the session went idle; true if it did.
    fn check_idle(&mut self) -> bool {
        let Some(id) = self.session else {
            return false;
        };
        let now = self.now();
        let policy = self.options.session_policy;
        if self.sessions.state(id, now, &policy) == pos_auth::SessionState::Active {
            return false;
        }
        self.lock();
        self.notice = Some((Msg::new("locked-idle"), false));
        true
    }

    fn open(&mut self, name: &str) {
        if self.actor.is_none() {
            self.screen = HubScreen::Login;
            return;
        }
        if let Some(s) = HubScreen::from_name(name).filter(|s| *s != HubScreen::Login) {
            self.screen = s;
            self.notice = None;
            self.refresh();
        }
    }

    /// Re-read what the current page shows, and the alerts for the side bar.
    fn refresh(&mut self) {
        if self.actor.is_none() {
            return;
        }
        let now = self.now();
        let period = self.period_of(self.period);
        let today = self.period_of(PeriodChoice::Today);
        let rules = self.options.alert_rules.clone();
        let screen = self.screen;
        let status = pos_backup::job::Status::read(&self.options.data_dir);
        let backup = Some(BackupState {
            last_success_ms: status.last_success.as_ref().map(|s| s.at_ms),
            last_failure_ms: status.last_failure.as_ref().map(|f| f.at_ms),
            failures_in_a_row: status.failures_in_a_row,
        });
        type Read = (
            Option<Dashboard>,
            Vec<DeviceSyncStatus>,
            Vec<Alert>,
            Option<Vec<UserSummary>>,
        );
        let read = with(&*self.access, |s| -> Result<Read, pos_store::StoreError> {
            let dashboard = match screen {
                HubScreen::Dashboard | HubScreen::Builder => Some(s.dashboard(period, 8)?),
                _ => None,
            };
            let devices = s.sync_status_at(now, pos_store::ONLINE_WITHIN_MS)?;
            let alerts = s.alerts(&rules, now, today, backup)?;
            let users = match screen {
                HubScreen::Users => Some(s.users()?),
                _ => None,
            };
            Ok((dashboard, devices, alerts, users))
        });
        match read {
            None => self.stopped = true,
            Some(Err(e)) => {
                self.stopped = false;
                self.notice = Some((Msg::with("err-other", e), true));
            }
            Some(Ok((dashboard, devices, alerts, users))) => {
                self.stopped = false;
                if dashboard.is_some() {
                    self.dashboard = dashboard;
                }
                self.devices = devices;
                self.alerts = alerts;
                if let Some(users) = users {
                    self.users = users;
                }
            }
        }
        if screen == HubScreen::Backups {
            self.backups = Backups {
                files: Vec::new(),
                error: None,
                status,
            };
            match pos_backup::list(&self.options.backup_dir) {
                Ok(mut files) => {
                    files.sort_by_key(|f| std::cmp::Reverse(f.header.created_ms));
                    self.backups.files = files;
                }
                Err(e) => self.backups.error = Some(e.to_string()),
            }
        }
    }

    fn actor(&self) -> Option<Principal> {
        self.actor.as_ref().map(|(p, _)| p.clone())
    }

    /// Run a store flow as the logged-in manager; a refusal becomes the notice.
    fn as_actor<R>(
        &mut self,
        f: impl FnOnce(&mut Store, &Principal) -> Result<R, AccountError>,
    ) -> Option<R> {
        let actor = self.actor()?;
        match with(&*self.access, |s| f(s, &actor)) {
            None => {
                self.notice = Some((Msg::new("hub-stopped"), true));
                None
            }
            Some(Err(e)) => {
                self.notice = Some((refusal(&e), true));
                None
            }
            Some(Ok(r)) => Some(r),
        }
    }

    fn user_name(&mut self, index: usize) -> Option<String> {
        let name = self.users.get(index).map(|u| u.name.clone());
        if name.is_none() {
            self.notice = Some((Msg::new("pick-user"), true));
        }
        name
    }

    fn set_locked(&mut self, index: usize, lock: bool) {
        let Some(name) = self.user_name(index) else {
            return;
        };
        let policy = self.options.account_policy.clone();
        if self
            .as_actor(|s, a| s.set_locked(a, &name, lock, &policy))
            .is_some()
        {
            let key = if lock { "user-locked" } else { "user-unlocked" };
            self.refresh();
            self.notice = Some((Msg::with(key, name), false));
        }
    }

    fn reset_secret(&mut self, index: usize) {
        let Some(name) = self.user_name(index) else {
            return;
        };
        let policy = self.options.account_policy.clone();
        if let Some(secret) = self.as_actor(|s, a| s.reset_secret(a, &name, &policy)) {
            self.refresh();
            self.notice = Some((Msg::with2("pin-reset", name, secret), false));
        }
    }

    fn new_enroll_code(&mut self) {
        let ttl = Duration::from_secs(15 * 60);
        if let Some(code) = self.as_actor(|s, a| s.create_enroll_code(a, ttl)) {
            self.enroll = Some((code.code, code.expires_ms));
            self.notice = None;
        }
    }

    fn revoke(&mut self, index: usize) {
        let Some(device) = self.devices.get(index).map(|d| (d.device, d.name.clone())) else {
            self.notice = Some((Msg::new("pick-device"), true));
            return;
        };
        if self
            .as_actor(|s, a| s.revoke_device(a, device.0, "revoked on the hub display"))
            .is_some()
        {
            self.refresh();
            self.notice = Some((Msg::with("revoked", device.1), false));
        }
    }

    fn save_layout(&mut self) {
        self.notice = Some(match self.layout.save(&self.options.data_dir) {
            Ok(()) => (Msg::new("layout-saved"), false),
            Err(e) => (Msg::with("layout-not-saved", e), true),
        });
    }

    fn verify_backup(&mut self) {
        self.notice = Some(match &self.actions.verify_backup {
            None => (Msg::with("not-here", "pos backup verify"), true),
            Some(f) => match f() {
                Ok((file, records)) => (Msg::with2("backup-verified", file, records), false),
                Err(e) => (Msg::with("err-other", e), true),
            },
        });
        self.refresh();
    }

    fn export_backup(&mut self) {
        self.notice = Some(match &self.actions.export_backup {
            None => (Msg::with("not-here", "pos backup export"), true),
            Some(f) => match f() {
                Ok(path) => (Msg::with("backup-exported", path), false),
                Err(e) => (Msg::with("err-other", e), true),
            },
        });
    }

    /// Export report `index` as `format` for the dashboard's period, as `pos report NAME
    /// --format F --out FILE` does: the actor must be allowed to see the report and to export
    /// data (a denial is logged by the store), the export is a `security.report_exported`
    /// record, then the file is written to the export dir.
    fn export_report(&mut self, index: usize, format: &str) {
        use pos_report_export::{Format, ReportKind, Scope};
        let Some(kind) = REPORTS
            .get(index)
            .and_then(|(name, _)| ReportKind::parse(name))
        else {
            return;
        };
        let Some(format) = Format::parse(format) else {
            return;
        };
        let dir = match &self.actions.export_dir {
            Some(f) => f(),
            None => usb_export_dir(),
        };
        let dir = match dir {
            Ok(d) => d,
            Err(e) => {
                self.notice = Some((Msg::with("err-other", e), true));
                return;
            }
        };
        let now = self.now();
        let scope = Scope {
            period: self.period_of(self.period),
            tz: jiff::tz::TimeZone::system(),
            currency: pos_report_export::currency(&self.options.currency.code),
            now_ms: now,
        };
        let day = local_time(scope.period.from_ms, "%Y-%m-%d");
        let file = dir.join(format!("{}-{day}.{}", kind.name(), format.as_str()));
        let file_text = file.display().to_string();
        let period_text = match kind {
            ReportKind::X => "open shifts".to_owned(),
            _ => scope.period_text(),
        };
        let made = self.as_actor(|s, a| {
            s.authorize(a, kind.permission(), None)?;
            s.authorize(a, pos_auth::Permission::ExportData, None)?;
            s.append(vec![pos_report_export::export_event(
                a.user,
                kind,
                format,
                &period_text,
                &file_text,
            )])?;
            Ok(pos_report_export::build(s, kind, &scope)
                .and_then(|doc| pos_report_export::render(&doc, format)))
        });
        let bytes = match made {
            None => return,
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => {
                self.notice = Some((Msg::with("err-other", e), true));
                return;
            }
        };
        self.notice = Some(match std::fs::write(&file, bytes) {
            Ok(()) => (Msg::with2("report-exported", kind.name(), file_text), false),
            Err(e) => (Msg::with("err-other", format!("{file_text}: {e}")), true),
        });
    }
}

/// `pos-reports/` on the one USB stick that is plugged in (created if missing).
pub fn usb_export_dir() -> Result<PathBuf, String> {
    let drives = pos_backup::usb::drives();
    let mount =
        match drives.as_slice() {
            [d] => d.mount.clone(),
            [] => return Err("no USB stick found: plug one in and try again".into()),
            _ => return Err(
                "several USB drives are plugged in: leave one, or use pos report NAME --out FILE"
                    .into(),
            ),
        };
    let dir = mount.join("pos-reports");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The hub display bound to a store.
pub struct Hub {
    window: HubWindow,
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// The display over `access`, showing the lock screen, with the saved dashboard layout
    /// (the default if none was saved; an unreadable file is reported and left alone).
    /// A Slint platform must be set first.
    pub fn new(
        access: Rc<dyn StoreAccess>,
        options: HubOptions,
        actions: HubActions,
    ) -> Result<Hub, PlatformError> {
        let window = HubWindow::new()?;
        let (layout, notice) = match DashboardLayout::load(&options.data_dir) {
            Ok(l) => (l.unwrap_or_default(), None),
            Err(e) => {
                tracing::warn!("{e}");
                (
                    DashboardLayout::default(),
                    Some((Msg::with("layout-not-saved", e), true)),
                )
            }
        };
        let state = State {
            access,
            sessions: Sessions::new(options.session_policy),
            options,
            actions,
            now: pos_store::now_ms,
            screen: HubScreen::Login,
            login_name: String::new(),
            login_secret: String::new(),
            login_totp: String::new(),
            login_field: 0,
            first: None,
            shift: false,
            actor: None,
            session: None,
            period: layout.period,
            layout,
            dashboard: None,
            devices: Vec::new(),
            alerts: Vec::new(),
            users: Vec::new(),
            backups: Backups::default(),
            enroll: None,
            notice,
            clock: None,
            locale: Locale::english(),
            stopped: false,
        };
        let hub = Hub {
            window,
            state: Rc::new(RefCell::new(state)),
        };
        hub.bind();
        hub.refresh();
        Ok(hub)
    }

    fn on<F>(&self, action: F) -> impl Fn() + 'static
    where
        F: Fn(&mut State) + 'static,
    {
        let state = Rc::clone(&self.state);
        let weak = self.window.as_weak();
        move || {
            if let Ok(mut s) = state.try_borrow_mut() {
                s.touch();
                action(&mut s);
                if let Some(w) = weak.upgrade() {
                    show(&s, &w);
                }
            }
        }
    }

    fn on_index<F>(&self, action: F) -> impl Fn(i32) + 'static
    where
        F: Fn(&mut State, usize) + 'static,
    {
        let state = Rc::clone(&self.state);
        let weak = self.window.as_weak();
        move |i: i32| {
            // -1 (nothing picked) becomes an index no list has: "pick one first".
            let i = usize::try_from(i).unwrap_or(usize::MAX);
            if let Ok(mut s) = state.try_borrow_mut() {
                s.touch();
                action(&mut s, i);
                if let Some(w) = weak.upgrade() {
                    show(&s, &w);
                }
            }
        }
    }

    fn on_text<F>(&self, action: F) -> impl Fn(SharedString) + 'static
    where
        F: Fn(&mut State, &str) + 'static,
    {
        let state = Rc::clone(&self.state);
        let weak = self.window.as_weak();
        move |text: SharedString| {
            if let Ok(mut s) = state.try_borrow_mut() {
                s.touch();
                action(&mut s, text.as_str());
                if let Some(w) = weak.upgrade() {
                    show(&s, &w);
                }
            }
        }
    }

    fn bind(&self) {
        let w = &self.window;
        let p = w.global::<HubPage<'_>>();
        w.on_key_text(self.on_text(State::key));
        p.on_login_key(self.on_text(State::key));
        p.on_login_field_tapped(self.on_index(State::focus));
        p.on_login_shift(self.on(|s| s.shift = !s.shift));
        p.on_login_submit(self.on(State::submit));
        p.on_login_cancel(self.on(State::cancel_first));
        p.on_open(self.on_text(State::open));
        p.on_lock(self.on(State::lock));
        p.on_dismiss_error(self.on(|s| s.notice = None));
        p.on_period_picked(self.on_index(|s, i| {
            if let Some(c) = PeriodChoice::ALL.get(i) {
                s.period = *c;
                s.refresh();
            }
        }));
        p.on_widget_toggled(self.on_index(|s, i| {
            if let Some(w) = Widget::ALL.get(i) {
                s.layout.toggle_widget(*w);
            }
        }));
        p.on_kpi_toggled(self.on_index(|s, i| {
            if let Some(k) = Kpi::ALL.get(i) {
                s.layout.toggle_kpi(*k);
            }
        }));
        p.on_default_period_picked(self.on_index(|s, i| {
            if let Some(c) = PeriodChoice::ALL.get(i) {
                s.layout.period = *c;
                s.period = *c;
                s.refresh();
            }
        }));
        p.on_save_layout(self.on(State::save_layout));
        p.on_user_lock(self.on_index(|s, i| s.set_locked(i, true)));
        p.on_user_unlock(self.on_index(|s, i| s.set_locked(i, false)));
        p.on_user_reset(self.on_index(State::reset_secret));
        p.on_new_enroll_code(self.on(State::new_enroll_code));
        p.on_device_revoke(self.on_index(State::revoke));
        p.on_backup_verify(self.on(State::verify_backup));
        p.on_backup_export(self.on(State::export_backup));
        let state = Rc::clone(&self.state);
        let weak = w.as_weak();
        p.on_report_export(move |i, format| {
            let Ok(i) = usize::try_from(i) else { return };
            if let Ok(mut s) = state.try_borrow_mut() {
                s.touch();
                s.export_report(i, format.as_str());
                if let Some(w) = weak.upgrade() {
                    show(&s, &w);
                }
            }
        });
    }

    /// Re-read the store and redraw.
    pub fn refresh(&self) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.refresh();
            show(&s, &self.window);
        }
    }

    /// What a timer calls every [`REFRESH`]: the idle lock, then fresh figures. Returns
    /// whether the display locked for idleness.
    pub fn tick(&self) -> bool {
        let Ok(mut s) = self.state.try_borrow_mut() else {
            return false;
        };
        let locked = s.check_idle();
        if !locked {
            s.refresh();
        }
        show(&s, &self.window);
        locked
    }

    pub fn window(&self) -> &HubWindow {
        &self.window
    }

    pub fn screen(&self) -> Option<HubScreen> {
        self.state.try_borrow().ok().map(|s| s.screen)
    }

    /// The notice line as shown (refusals, confirmations), empty if none.
    pub fn notice(&self) -> String {
        self.window.global::<HubPage<'_>>().get_notice().into()
    }

    /// The layout in use (what the builder shows, saved or not).
    pub fn layout(&self) -> Option<DashboardLayout> {
        self.state.try_borrow().ok().map(|s| s.layout.clone())
    }

    /// Log in with these credentials, as typing them and tapping "Log in" does.
    pub fn log_in(&self, name: &str, secret: &str, totp: Option<&str>) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.login_name = name.to_owned();
            s.login_secret = secret.to_owned();
            s.login_totp = totp.unwrap_or_default().to_owned();
            s.first = None;
            s.login();
            show(&s, &self.window);
        }
    }

    /// Show a fixed clock text (screenshots); `None` shows the local time.
    pub fn set_clock(&self, text: Option<&str>) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.clock = text.map(str::to_owned);
            show(&s, &self.window);
        }
    }

    /// The clock the idle lock and the periods read, in Unix milliseconds (tests).
    pub fn set_time_source(&self, now: fn() -> u64) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.now = now;
        }
    }

    /// Write numbers and money for `tag` (e.g. "de-DE") and show the display in its
    /// language (English where no translation is bundled; the choice is the process's, so a
    /// terminal window beside it follows too).
    pub fn set_locale(&self, tag: &str) -> Result<(), crate::locale::LocaleError> {
        let locale = Locale::new(tag)?;
        locale.select_translation();
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.locale = locale;
            show(&s, &self.window);
        }
        Ok(())
    }

    pub fn set_high_contrast(&self, on: bool) {
        self.window
            .global::<crate::Theme<'_>>()
            .set_high_contrast(on);
    }
}

fn model<T: Clone + 'static>(rows: Vec<T>) -> ModelRc<T> {
    ModelRc::new(VecModel::from(rows))
}

fn choices(keys: impl IntoIterator<Item = (&'static str, bool)>) -> ModelRc<HubChoice> {
    model(
        keys.into_iter()
            .map(|(key, on)| HubChoice {
                key: key.into(),
                on,
            })
            .collect(),
    )
}

fn show(s: &State, w: &HubWindow) {
    let p = w.global::<HubPage<'_>>();
    p.set_screen(s.screen.name().into());
    p.set_clock_text(
        s.clock
            .clone()
            .unwrap_or_else(|| local_time(s.now(), "%H:%M"))
            .into(),
    );
    p.set_user_text(
        s.actor
            .as_ref()
            .map_or_else(String::new, |a| a.1.clone())
            .into(),
    );
    let (notice, bad) = match (&s.notice, s.stopped) {
        (_, true) => (Msg::new("hub-stopped").text(w), true),
        (Some((m, bad)), false) => (m.text(w), *bad),
        (None, false) => (SharedString::new(), false),
    };
    p.set_notice(notice);
    p.set_notice_bad(bad);
    p.set_alert_count(i32::try_from(s.alerts.len()).unwrap_or(i32::MAX));

    // login
    p.set_login_name(s.login_name.as_str().into());
    p.set_login_secret_mask("●".repeat(s.login_secret.chars().count()).into());
    p.set_login_totp(s.login_totp.as_str().into());
    let mask = |t: &str| SharedString::from("●".repeat(t.chars().count()));
    match &s.first {
        None => {
            p.set_login_step("login".into());
            p.set_new_secret_mask("".into());
            p.set_repeat_mask("".into());
            p.set_totp_secret("".into());
            p.set_totp_label("".into());
            p.set_first_name("".into());
        }
        Some(f) => {
            p.set_login_step(f.step().name().into());
            p.set_new_secret_mask(mask(f.new_secret()));
            p.set_repeat_mask(mask(f.repeat()));
            p.set_login_totp(f.code_text().into());
            p.set_totp_secret(f.secret_text().into());
            p.set_totp_label(f.label().into());
            p.set_first_name(f.name().into());
        }
    }
    p.set_login_field(
        s.first
            .as_ref()
            .map_or(i32::from(s.login_field), |f| i32::from(f.field())),
    );
    p.set_shift(s.shift);
    if s.actor.is_none() {
        return;
    }

    // dashboard and builder
    p.set_periods(choices(PeriodChoice::ALL.map(|c| (c.key(), c == s.period))));
    p.set_default_periods(choices(
        PeriodChoice::ALL.map(|c| (c.key(), c == s.layout.period)),
    ));
    p.set_widget_choices(choices(Widget::ALL.map(|x| (x.key(), s.layout.shows(x)))));
    p.set_kpi_choices(choices(
        Kpi::ALL.map(|k| (k.key(), s.layout.kpis.contains(&k))),
    ));
    p.set_show_hours(s.layout.shows(Widget::SalesPerHour));
    p.set_show_tenders(s.layout.shows(Widget::TenderSplit));
    p.set_show_top(s.layout.shows(Widget::TopProducts));
    show_dashboard(s, w, &p);

    // terminals and devices
    let devices: Vec<DeviceRow> = s.devices.iter().map(|d| device_row(s, w, d)).collect();
    p.set_devices(model(devices));
    match &s.enroll {
        Some((code, expires)) => {
            p.set_enroll_code(code.as_str().into());
            p.set_enroll_expires(Msg::with("code-expires", local_time(*expires, "%H:%M")).text(w));
        }
        None => {
            p.set_enroll_code("".into());
            p.set_enroll_expires("".into());
        }
    }

    // alerts
    let alerts: Vec<AlertRow> = s
        .alerts
        .iter()
        .map(|a| AlertRow {
            kind: a.kind.as_str().into(),
            critical: a.severity == Severity::Critical,
            subject: a.subject.as_str().into(),
            // Commands are quoted with backticks, a glyph the display does not embed.
            message: a.message.replace('`', "").into(),
        })
        .collect();
    p.set_alerts(model(alerts));

    // users
    let users: Vec<UserRow> = s
        .users
        .iter()
        .map(|u| {
            let state = match (&u.locked, u.active, u.must_change) {
                (_, false, _) => Msg::new("user-inactive"),
                (Some(Locked::Manually), _, _) => Msg::new("user-manual-lock"),
                (Some(Locked::Until(ms)), _, _) => {
                    Msg::with("user-timed-lock", local_time(*ms, "%Y-%m-%d %H:%M"))
                }
                (None, true, true) => Msg::new("user-must-change"),
                (None, true, false) => Msg::new("user-active"),
            };
            UserRow {
                name: u.name.as_str().into(),
                display_name: u.display_name.as_str().into(),
                roles: u.roles.join(", ").into(),
                state: state.text(w),
                locked: u.locked.is_some() || !u.active,
            }
        })
        .collect();
    p.set_users(model(users));

    show_backups(s, w, &p);

    // reports
    p.set_reports(model(
        REPORTS
            .iter()
            .map(|(name, key)| ReportRow {
                name: (*name).into(),
                key: (*key).into(),
            })
            .collect(),
    ));
    p.set_export_ready(true);
}

fn device_row(s: &State, w: &HubWindow, d: &DeviceSyncStatus) -> DeviceRow {
    let status = match d.status {
        PeerStatus::Online => "st-online",
        PeerStatus::Offline => "st-offline",
        PeerStatus::Revoked => "st-revoked",
        PeerStatus::Held => "st-held",
    };
    let mut alerts = Vec::new();
    if d.offline_alert(s.options.offline_alert_ms) {
        let min = d.out_of_touch_ms.unwrap_or(0) / 60_000;
        alerts.push(Msg::with("offline-alert", min).text(w).to_string());
    }
    if let Some(skew) = d.clock_skew_ms {
        alerts.push(
            Msg::with("clock-alert", format!("{skew} ms"))
                .text(w)
                .to_string(),
        );
    }
    if d.status == PeerStatus::Held {
        alerts.push(Msg::new("held-alert").text(w).to_string());
    }
    DeviceRow {
        name: d.name.as_str().into(),
        role: d.role.to_string().into(),
        status: status.into(),
        online: d.status == PeerStatus::Online,
        seen: d.last_seen_ms.map_or_else(
            || tr(w, "never", "", ""),
            |ms| local_time(ms, "%Y-%m-%d %H:%M:%S").into(),
        ),
        waiting: d
            .waiting
            .map_or_else(|| "-".into(), |n| n.to_string())
            .into(),
        skew: d
            .clock_skew_ms
            .map_or_else(|| "-".into(), |ms| format!("{ms} ms"))
            .into(),
        alert: alerts.join(" · ").into(),
    }
}

fn show_dashboard(s: &State, w: &HubWindow, p: &HubPage<'_>) {
    let Some(d) = &s.dashboard else {
        p.set_tiles(model(Vec::new()));
        p.set_hours(model(Vec::new()));
        p.set_tenders(model(Vec::new()));
        p.set_top(model(Vec::new()));
        return;
    };
    let k = &d.kpis;
    let tiles: Vec<KpiTile> = if s.layout.shows(Widget::Kpis) {
        s.layout
            .kpis
            .iter()
            .map(|kpi| {
                let (value, note) = match kpi {
                    Kpi::NetSales => (s.money(k.net_sales), String::new()),
                    Kpi::Transactions => (k.transactions.to_string(), String::new()),
                    Kpi::AverageBasket => (s.money(k.average_basket), String::new()),
                    Kpi::ItemsPerBasket => {
                        let m = k.items_per_basket_milli;
                        (
                            format!("{}.{}", m / 1000, (m % 1000).abs() / 100),
                            String::new(),
                        )
                    }
                    Kpi::Margin => (
                        s.money(k.gross_margin),
                        Msg::with("note-margin", s.percent_bp(k.margin_bp))
                            .text(w)
                            .into(),
                    ),
                    Kpi::Discounts => (s.money(k.discounts), String::new()),
                    Kpi::Refunds => (
                        s.money(k.refund_value),
                        Msg::with2("note-count", k.refunds, s.percent_bp(k.refund_rate_bp))
                            .text(w)
                            .into(),
                    ),
                    Kpi::Voids => (
                        s.money(Money(k.post_void_value.0 + k.line_void_value.0)),
                        Msg::with2(
                            "note-count",
                            k.post_voids + k.line_voids,
                            s.percent_bp(k.void_rate_bp),
                        )
                        .text(w)
                        .into(),
                    ),
                    Kpi::CashOverShort => (s.money(k.cash_over_short), String::new()),
                };
                KpiTile {
                    key: kpi.key().into(),
                    value: value.into(),
                    note: note.into(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    p.set_tiles(model(tiles));

    // Sales per hour: today by hour of the day; longer periods summed by hour of the day too
    // (when in the day the shop sells), so the chart keeps 24 bars.
    let mut by_hour = [0i64; 24];
    let offset_ms = i64::from(local_offset_min(s.now())) * 60_000;
    for h in &d.hours {
        let local = i64::try_from(h.hour_start_ms).unwrap_or(0) + offset_ms;
        let hour = usize::try_from(local.rem_euclid(86_400_000) / 3_600_000).unwrap_or(0);
        if let Some(slot) = by_hour.get_mut(hour) {
            *slot += h.net_sales.0;
        }
    }
    let peak = by_hour.iter().copied().max().unwrap_or(0).max(1);
    let hours: Vec<ChartBar> = by_hour
        .iter()
        .enumerate()
        .map(|(hour, v)| ChartBar {
            label: if hour % 3 == 0 {
                format!("{hour:02}").into()
            } else {
                SharedString::new()
            },
            value: s.money(Money(*v)).into(),
            fraction: (*v).max(0) as f32 / peak as f32,
        })
        .collect();
    p.set_hours(model(hours));
    let top_value = by_hour.iter().copied().max().unwrap_or(0);
    p.set_hours_peak(if top_value > 0 {
        s.money(Money(top_value)).into()
    } else {
        SharedString::new()
    });

    let total: i64 = d.tenders.iter().map(|t| t.amount.0.max(0)).sum();
    let mut start = 0.0f32;
    let tenders: Vec<TenderSlice> = d
        .tenders
        .iter()
        .map(|t| {
            let fraction = if total > 0 {
                t.amount.0.max(0) as f32 / total as f32
            } else {
                0.0
            };
            let name = match t.tender.as_str() {
                "cash" => tr(w, "tender-cash", "", "").to_string(),
                "card" => tr(w, "tender-card", "", "").to_string(),
                other => other.to_owned(),
            };
            let slice = TenderSlice {
                label: format!("{name} ({})", t.count).into(),
                value: s.money(t.amount).into(),
                start,
                fraction,
            };
            start += fraction;
            slice
        })
        .collect();
    p.set_tenders(model(tenders));

    let best = d
        .top_products
        .iter()
        .map(|r| r.net_sales.0)
        .max()
        .unwrap_or(0)
        .max(1);
    let top: Vec<ChartBar> = d
        .top_products
        .iter()
        .map(|r| ChartBar {
            label: r.name.as_str().into(),
            value: s.money(r.net_sales).into(),
            fraction: r.net_sales.0.max(0) as f32 / best as f32,
        })
        .collect();
    p.set_top(model(top));
}

fn show_backups(s: &State, w: &HubWindow, p: &HubPage<'_>) {
    let b = &s.backups;
    let (summary, ok) = match (&b.status.last_success, &b.status.last_failure) {
        (_, Some(f)) if b.status.failures_in_a_row > 0 => (
            Msg::with2(
                "backup-failing",
                format!("{} ({})", local_time(f.at_ms, "%Y-%m-%d %H:%M"), f.error),
                b.status.failures_in_a_row,
            ),
            false,
        ),
        (Some(ok), _) => (
            Msg::with("backup-ok", local_time(ok.at_ms, "%Y-%m-%d %H:%M")),
            true,
        ),
        (None, _) => (Msg::new("backup-none"), false),
    };
    let summary = match &b.error {
        Some(e) => format!("{} {e}", summary.text(w)).into(),
        None => summary.text(w),
    };
    p.set_backup_summary(summary);
    p.set_backup_ok(ok);
    let rows: Vec<BackupRow> = b
        .files
        .iter()
        .map(|f| {
            let name = f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let verified = match b.status.verified.get(&name) {
                Some(ms) => Msg::with("verified-at", local_time(*ms, "%Y-%m-%d %H:%M")),
                None => Msg::new("not-verified"),
            };
            BackupRow {
                name: name.as_str().into(),
                kind: format!("{:?}", f.header.kind).to_lowercase().into(),
                made: local_time(f.header.created_ms, "%Y-%m-%d %H:%M").into(),
                size: bytes_text(f.bytes).into(),
                verified: verified.text(w),
            }
        })
        .collect();
    p.set_backups(model(rows));
    p.set_restore_command(
        format!(
            "pos backup restore FILE --data-dir {}",
            s.options.data_dir.display()
        )
        .into(),
    );
}

/// Every key the Rust side passes to `HubTr`; a test checks each has a sentence.
#[cfg(test)]
pub(crate) const KEYS: &[&str] = &[
    "kpi-net-sales",
    "kpi-transactions",
    "kpi-average-basket",
    "kpi-items-per-basket",
    "kpi-margin",
    "kpi-discounts",
    "kpi-refunds",
    "kpi-voids",
    "kpi-cash-over-short",
    "note-count",
    "note-margin",
    "tender-cash",
    "tender-card",
    "period-today",
    "period-week",
    "period-month",
    "widget-kpis",
    "widget-hours",
    "widget-tenders",
    "widget-top",
    "st-online",
    "st-offline",
    "st-revoked",
    "st-held",
    "never",
    "offline-alert",
    "clock-alert",
    "held-alert",
    "user-active",
    "user-manual-lock",
    "user-timed-lock",
    "user-inactive",
    "user-must-change",
    "verified-at",
    "not-verified",
    "alert-critical",
    "alert-warning",
    "report-x",
    "report-z",
    "report-journal",
    "report-tenders",
    "report-kpis",
    "report-products",
    "report-cashiers",
    "report-tax",
    "report-audit",
    "report-security",
    "welcome",
    "locked-idle",
    "layout-saved",
    "layout-not-saved",
    "user-locked",
    "user-unlocked",
    "pin-reset",
    "pick-user",
    "pick-device",
    "code-expires",
    "revoked",
    "backup-ok",
    "backup-failing",
    "backup-none",
    "backup-verified",
    "backup-exported",
    "not-here",
    "report-exported",
    "hub-stopped",
    "err-wrong-login",
    "err-locked",
    "err-mfa",
    "err-inactive",
    "err-must-change",
    "err-new-empty",
    "err-mismatch",
    "err-pin-format",
    "err-pin-simple",
    "err-too-short",
    "err-too-long",
    "err-common",
    "err-contains-name",
    "err-reused",
    "err-wrong-code",
    "secret-changed-totp",
    "secret-changed-till",
    "err-not-allowed",
    "err-permission",
    "err-other",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys `Msg::new`/`with`/`with2` and `tr` are given in this module's source.
    fn keys_in_source() -> Vec<String> {
        let source = include_str!("mod.rs");
        let mut keys = Vec::new();
        for call in ["Msg::new(\"", "Msg::with(\"", "Msg::with2(\"", "tr(w, \""] {
            for part in source.split(call).skip(1) {
                if let Some((key, _)) = part.split_once('"') {
                    keys.push(key.to_owned());
                }
            }
        }
        keys
    }

    #[test]
    fn every_key_in_use_is_listed_and_has_a_sentence() {
        let in_source = keys_in_source();
        assert!(in_source.len() > 30, "{in_source:?}");
        for key in in_source {
            assert!(KEYS.contains(&key.as_str()), "{key} is not in KEYS");
        }
        crate::headless::init().unwrap();
        let w = HubWindow::new().unwrap();
        for key in KEYS.iter().chain(layout::Kpi::ALL.map(Kpi::key).iter()) {
            let text = Msg::with2(key, "A", "B").text(&w);
            assert!(
                !text.is_empty() && text != "A",
                "hub/messages.slint has no sentence for {key}"
            );
        }
        for (_, key) in REPORTS {
            assert_ne!(Msg::new(key).text(&w), "", "{key}");
        }
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes_text(1536), "2 kB");
        assert_eq!(bytes_text(5 * 1024 * 1024 + 512 * 1024), "5.5 MB");
    }
}
