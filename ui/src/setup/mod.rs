//! The appliance's first-boot screen (`pos setup`): welcome, till or branch hub, the form
//! (branch, device name and, for a till, the hub's address and one-time code), a busy state
//! while the work runs, the result, then the login screen of the chosen role.
//!
//! [`rules`] checks the form, [`flow`] is the screens' state machine; both without IO.
//! [`Setup`] draws a [`Flow`] into a [`SetupWindow`] and feeds it taps and keys. It does no
//! work itself: on Enroll it hands the checked [`Request`] to the owner ([`Setup::on_request`])
//! and shows the answer the owner gives back ([`Setup::finished`]). [`run`] is that owner for
//! `pos setup`: the work runs on its own thread, so the screen stays live (busy) meanwhile.

pub mod flow;
pub mod rules;

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use pos_core::DeviceRole;
use slint::{ComponentHandle, PlatformError, SharedString};

use crate::backend::{self, Backend, BackendError, Options};
use crate::locale::{Locale, LocaleError};
use crate::{SetupPage, SetupTr, SetupWindow};

pub use flow::{Failure, Flow, Outcome, Step};
pub use rules::{FieldError, FieldId, Form, Problem, Request};

type RequestHandler = Box<dyn FnMut(Request)>;
type ProceedHandler = Box<dyn FnMut()>;

/// The first-boot window and its state.
pub struct Setup {
    window: SetupWindow,
    flow: RefCell<Flow>,
    on_request: RefCell<Option<RequestHandler>>,
    on_proceed: RefCell<Option<ProceedHandler>>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("flow", &self.flow)
            .finish_non_exhaustive()
    }
}

impl Setup {
    /// The window at its welcome step (on the platform installed on this thread).
    pub fn new() -> Result<Rc<Setup>, PlatformError> {
        let setup = Rc::new(Setup {
            window: SetupWindow::new()?,
            flow: RefCell::new(Flow::new()),
            on_request: RefCell::new(None),
            on_proceed: RefCell::new(None),
        });
        setup.wire();
        setup.show();
        Ok(setup)
    }

    pub fn window(&self) -> &SetupWindow {
        &self.window
    }

    /// Where a checked request goes when someone taps Enroll (or Set up hub). The screen is
    /// busy until [`Setup::finished`] is called with the result.
    pub fn on_request(&self, f: impl FnMut(Request) + 'static) {
        *self.on_request.borrow_mut() = Some(Box::new(f));
    }

    /// What "Continue to login" does once setup is done (e.g. end the event loop).
    pub fn on_proceed(&self, f: impl FnMut() + 'static) {
        *self.on_proceed.borrow_mut() = Some(Box::new(f));
    }

    /// The answer to the request in flight.
    pub fn finished(&self, result: Result<Outcome, Failure>) {
        if let Err(e) = &result {
            tracing::warn!("setup not done: {e}");
        }
        self.flow.borrow_mut().finished(result);
        self.show();
    }

    /// A copy of the state (tests, the caller after the event loop).
    pub fn flow(&self) -> Flow {
        self.flow.borrow().clone()
    }

    pub fn step(&self) -> Step {
        self.flow.borrow().step()
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.flow.borrow().outcome().cloned()
    }

    /// Show the screen in the language of `tag` (e.g. "de-DE"); English when there is no
    /// catalogue for it.
    pub fn set_locale(&self, tag: &str) -> Result<(), LocaleError> {
        let locale = Locale::new(tag)?;
        locale.select_translation();
        self.show();
        Ok(())
    }

    fn page(&self) -> SetupPage<'_> {
        self.window.global::<SetupPage<'_>>()
    }

    fn wire(self: &Rc<Self>) {
        let page = self.page();
        let weak = Rc::downgrade(self);
        page.on_start(with(&weak, |s| s.update(Flow::start)));
        page.on_choose(with_arg(&weak, |s, till: bool| {
            let role = if till {
                DeviceRole::Terminal
            } else {
                DeviceRole::Hub
            };
            s.update(|f| f.choose(role));
        }));
        page.on_back(with(&weak, |s| s.update(Flow::back)));
        page.on_field_tapped(with_arg(&weak, |s, i: i32| {
            if let Some(field) = FieldId::from_index(i) {
                s.update(|f| f.tap_field(field));
            }
        }));
        page.on_shift_tapped(with(&weak, |s| s.update(Flow::toggle_shift)));
        page.on_key(with_arg(&weak, |s, text: SharedString| {
            let request = s.flow.borrow_mut().key(&text);
            s.after(request);
        }));
        page.on_submit(with(&weak, |s| {
            let request = s.flow.borrow_mut().submit();
            s.after(request);
        }));
        page.on_proceed(with(&weak, |s| {
            if s.flow.borrow().proceed() {
                // Taken out while it runs: it may drop or re-enter the window.
                let handler = s.on_proceed.borrow_mut().take();
                if let Some(mut f) = handler {
                    f();
                    *s.on_proceed.borrow_mut() = Some(f);
                }
            }
        }));
    }

    fn update(&self, f: impl FnOnce(&mut Flow)) {
        f(&mut self.flow.borrow_mut());
        self.show();
    }

    /// Draw, then hand a request (if the last tap made one) to the owner.
    fn after(&self, request: Option<Request>) {
        self.show();
        let Some(request) = request else { return };
        let handler = self.on_request.borrow_mut().take();
        match handler {
            Some(mut f) => {
                f(request);
                let mut slot = self.on_request.borrow_mut();
                if slot.is_none() {
                    *slot = Some(f);
                }
            }
            None => self.finished(Err(Failure::Other("nothing carries out the setup".into()))),
        }
    }

    fn tr(&self, key: &str, a: &str, b: &str) -> SharedString {
        self.window
            .global::<SetupTr<'_>>()
            .invoke_text(key.into(), a.into(), b.into())
    }

    /// Put the flow on screen.
    fn show(&self) {
        let flow = self.flow.borrow();
        let page = self.page();
        page.set_step(
            match flow.step() {
                Step::Welcome => "welcome",
                Step::Role => "role",
                Step::Form => "form",
                Step::Busy => "busy",
                Step::Done => "done",
            }
            .into(),
        );
        page.set_terminal(flow.role() == DeviceRole::Terminal);
        let form = flow.form();
        page.set_branch(form.branch.as_str().into());
        page.set_name(form.name.as_str().into());
        page.set_hub(form.hub.as_str().into());
        page.set_code(form.code.as_str().into());
        let error = |field| match flow.error(field) {
            Some(e) => {
                let (key, a) = e.problem.key();
                self.tr(key, &a, "")
            }
            None => SharedString::new(),
        };
        page.set_branch_error(error(FieldId::Branch));
        page.set_name_error(error(FieldId::Name));
        page.set_hub_error(error(FieldId::Hub));
        page.set_code_error(error(FieldId::Code));
        page.set_focus(flow.focus().index());
        page.set_shift(flow.shift());
        let (notice, bad) = match (flow.step(), flow.failure(), flow.request()) {
            (Step::Busy, _, Some(r)) => match &r.hub {
                Some(addr) => (self.tr("busy-terminal", addr, ""), false),
                None => (self.tr("busy-hub", "", ""), false),
            },
            (_, Some(failure), _) => (self.failure_text(failure), true),
            _ => (SharedString::new(), false),
        };
        page.set_notice(notice);
        page.set_notice_bad(bad);
        let (title, text, one_time, warning) = match flow.outcome() {
            Some(Outcome::Enrolled {
                name,
                hub_addr,
                hub_name,
            }) => (
                self.tr("done-terminal", name, hub_addr),
                self.tr("done-terminal-text", hub_name, ""),
                SharedString::new(),
                SharedString::new(),
            ),
            Some(Outcome::Hub {
                name,
                branch,
                admin,
                one_time,
            }) => (
                self.tr("done-hub", name, branch),
                self.tr("done-hub-text", admin, ""),
                one_time.as_str().into(),
                self.tr("done-hub-warning", admin, ""),
            ),
            None => Default::default(),
        };
        page.set_done_title(title);
        page.set_done_text(text);
        page.set_one_time(one_time);
        page.set_warning(warning);
    }

    fn failure_text(&self, failure: &Failure) -> SharedString {
        match failure {
            Failure::Unreachable { addr, .. } => self.tr("fail-unreachable", addr, ""),
            Failure::CodeRefused(_) => self.tr("fail-code", "", ""),
            Failure::WrongHub { addr } => self.tr("fail-wrong-hub", addr, ""),
            Failure::Field(e) => self.tr("fail-other", &e.to_string(), ""),
            Failure::Other(detail) => self.tr("fail-other", detail, ""),
        }
    }
}

/// A callback that reaches the setup while it lives.
fn with(weak: &Weak<Setup>, f: impl Fn(&Setup) + 'static) -> impl Fn() + 'static {
    let weak = weak.clone();
    move || {
        if let Some(s) = weak.upgrade() {
            f(&s);
        }
    }
}

fn with_arg<A>(weak: &Weak<Setup>, f: impl Fn(&Setup, A) + 'static) -> impl Fn(A) + 'static {
    let weak = weak.clone();
    move |a| {
        if let Some(s) = weak.upgrade() {
            f(&s, a);
        }
    }
}

thread_local! {
    /// The setup [`run`] shows on this thread, for the worker's answer.
    static CURRENT: RefCell<Option<Rc<Setup>>> = const { RefCell::new(None) };
}

/// The work behind the Enroll button: runs on a worker thread, may take as long as the hub's
/// timeout.
pub type Perform = Arc<dyn Fn(Request) -> Result<Outcome, Failure> + Send + Sync>;

/// Show the first-boot screen on `backend` (installed here) until setup is done and someone
/// taps Continue (the outcome), or the window is closed or `options.exit_after` passes
/// (`None`). `perform` does the work of each request on its own thread.
pub fn run(
    backend: Backend,
    options: &Options,
    locale: &str,
    perform: Perform,
) -> Result<Option<Outcome>, BackendError> {
    backend::install(backend, options.size)?;
    let platform = |e: PlatformError| BackendError::Platform {
        backend,
        hint: "see `pos terminal --help` for what each backend needs",
        detail: e.to_string().lines().collect::<Vec<_>>().join("; "),
    };
    let setup = Setup::new().map_err(platform)?;
    if let Err(e) = setup.set_locale(locale) {
        tracing::warn!("locale {locale}: {e}");
    }
    let window = setup.window();
    let size = |w: f32, h: f32| {
        window.set_window_width(w);
        window.set_window_height(h);
    };
    match backend {
        Backend::Kms => {
            let w = window.window();
            w.set_fullscreen(true);
            // The panel decides: lay the screen out for its size, whatever --size said.
            let panel = w.size().to_logical(w.scale_factor());
            if panel.width >= 1.0 && panel.height >= 1.0 {
                size(panel.width, panel.height);
            }
        }
        Backend::Winit | Backend::Headless => {
            let (w, h) = (options.size.width as f32, options.size.height as f32);
            size(w, h);
            window.window().set_size(slint::LogicalSize::new(w, h));
        }
    }
    setup.on_request(move |request| {
        let perform = Arc::clone(&perform);
        let spawned = std::thread::Builder::new()
            .name("pos-setup".into())
            .spawn(move || {
                let result = perform(request);
                let sent = slint::invoke_from_event_loop(move || {
                    if let Some(s) = CURRENT.with(|c| c.borrow().clone()) {
                        s.finished(result);
                    }
                });
                if let Err(e) = sent {
                    tracing::error!("the setup screen is gone; its result is lost: {e}");
                }
            });
        if let Err(e) = spawned {
            // Shown on the screen below, through the flow's failure.
            tracing::error!("cannot start the setup worker: {e}");
            if let Some(s) = CURRENT.with(|c| c.borrow().clone()) {
                s.finished(Err(Failure::Other(format!("cannot start a thread: {e}"))));
            }
        }
    });
    setup.on_proceed(|| {
        if let Err(e) = slint::quit_event_loop() {
            tracing::warn!("cannot end the event loop: {e}");
        }
    });
    CURRENT.with(|c| *c.borrow_mut() = Some(Rc::clone(&setup)));
    let stop = slint::Timer::default();
    if let Some(after) = options.exit_after {
        stop.start(slint::TimerMode::SingleShot, after, || {
            if let Err(e) = slint::quit_event_loop() {
                tracing::warn!("cannot end the event loop: {e}");
            }
        });
    }
    let result = setup
        .window()
        .show()
        .and_then(|()| slint::run_event_loop())
        .map_err(platform);
    let _ = setup.window().hide();
    if backend == Backend::Headless {
        crate::headless::clear_quit();
    }
    stop.stop();
    CURRENT.with(|c| c.borrow_mut().take());
    result?;
    let done = setup.flow();
    Ok(done.proceed().then(|| done.outcome().cloned()).flatten())
}
