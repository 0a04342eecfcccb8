//! Where the terminal UI is shown: which Slint platform runs it, at which size, and the small
//! run loop around [`Terminal`] (the idle-lock tick, a scanner on another thread).
//!
//! Backends, each a cargo feature of this crate:
//!
//! | backend    | feature   | for                                                            |
//! |------------|-----------|----------------------------------------------------------------|
//! | `winit`    | `desktop` | a window on X11 or Wayland (demo, development), software-drawn |
//! | `kms`      | `kms`     | the appliance: full screen on DRM/KMS, no compositor, libinput |
//! | `headless` | always    | no display: the state machine runs, nothing is drawn           |
//!
//! [`choose`] picks one: the explicit choice if given, else `winit` when `DISPLAY` or
//! `WAYLAND_DISPLAY` is set, else `kms` when a `/dev/dri/card*` exists, else an error that
//! says so ([`BackendError::NoDisplay`]); the caller decides whether to fall back to headless.
//! Both graphical backends use Slint's software renderer: no OpenGL, no GPU driver needed.

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use pos_engine::Till;
use slint::{ComponentHandle, EventLoopError, PlatformError};

use crate::{headless, Terminal};

/// A Slint platform the terminal can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A desktop window through winit (X11 or Wayland); feature `desktop`.
    Winit,
    /// Full screen through Linux DRM/KMS with libinput; feature `kms`.
    Kms,
    /// No display at all ([`crate::headless`]).
    Headless,
}

impl Backend {
    /// Every backend, in the order `--backend` lists them.
    pub const ALL: [Backend; 3] = [Backend::Winit, Backend::Kms, Backend::Headless];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Winit => "winit",
            Backend::Kms => "kms",
            Backend::Headless => "headless",
        }
    }

    /// The cargo feature of `pos-ui` (and of `pos`) that builds it in.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Backend::Winit => Some("desktop"),
            Backend::Kms => Some("kms"),
            Backend::Headless => None,
        }
    }

    /// Whether this build contains the backend.
    pub fn is_built(self) -> bool {
        match self {
            Backend::Winit => cfg!(feature = "desktop"),
            Backend::Kms => cfg!(all(feature = "kms", target_os = "linux")),
            Backend::Headless => true,
        }
    }

    /// The backends this build contains.
    pub fn built() -> Vec<Backend> {
        Backend::ALL.into_iter().filter(|b| b.is_built()).collect()
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Backend, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "winit" | "desktop" | "x11" | "wayland" => Ok(Backend::Winit),
            "kms" | "linuxkms" | "drm" => Ok(Backend::Kms),
            "headless" | "none" => Ok(Backend::Headless),
            other => Err(format!(
                "unknown backend `{other}`; choose winit (a desktop window), kms (full screen \
                 on the appliance) or headless (no display)"
            )),
        }
    }
}

/// The size of the terminal's screen in logical pixels; the layouts are made for
/// [`ScreenSize::SUPPORTED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScreenSize {
    pub width: u32,
    pub height: u32,
}

impl ScreenSize {
    /// 1280x800 landscape (10.1" terminals): the default.
    pub const LANDSCAPE: ScreenSize = ScreenSize {
        width: crate::WIDTH,
        height: crate::HEIGHT,
    };
    /// 1024x768 (4:3, 15" terminals).
    pub const LANDSCAPE_4_3: ScreenSize = ScreenSize {
        width: 1024,
        height: 768,
    };
    /// 800x1280 portrait (a landscape panel turned, or kiosk screens).
    pub const PORTRAIT: ScreenSize = ScreenSize {
        width: 800,
        height: 1280,
    };
    /// The sizes `--size` accepts.
    pub const SUPPORTED: [ScreenSize; 3] = [
        ScreenSize::LANDSCAPE,
        ScreenSize::LANDSCAPE_4_3,
        ScreenSize::PORTRAIT,
    ];
}

impl Default for ScreenSize {
    fn default() -> Self {
        ScreenSize::LANDSCAPE
    }
}

impl fmt::Display for ScreenSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl FromStr for ScreenSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ScreenSize, String> {
        let supported = || {
            ScreenSize::SUPPORTED
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let parsed = s
            .trim()
            .split_once(['x', 'X'])
            .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
            .map(|(width, height)| ScreenSize { width, height });
        match parsed {
            Some(size) if ScreenSize::SUPPORTED.contains(&size) => Ok(size),
            Some(size) => Err(format!(
                "the screens are laid out for {} only, not {size}",
                supported()
            )),
            None => Err(format!(
                "`{s}` is not a size like 1280x800; choose one of {}",
                supported()
            )),
        }
    }
}

/// What the machine offers to show a window on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `DISPLAY` or `WAYLAND_DISPLAY` is set: a display server runs.
    pub display_server: bool,
    /// The first DRM card device (`/dev/dri/card*`), if any.
    pub drm_card: Option<PathBuf>,
}

impl Environment {
    /// Look at the environment variables and `/dev/dri`.
    pub fn detect() -> Environment {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let drm_card = std::fs::read_dir("/dev/dri").ok().and_then(|dir| {
            let mut cards: Vec<PathBuf> = dir
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("card"))
                .map(|e| e.path())
                .collect();
            cards.sort();
            cards.into_iter().next()
        });
        Environment {
            display_server: set("DISPLAY") || set("WAYLAND_DISPLAY"),
            drm_card,
        }
    }
}

/// Why the terminal UI could not be shown. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    #[error(
        "the {backend} backend is not part of this build (hint: build with `--features {feature}`; \
         this build has: {built})"
    )]
    NotBuilt {
        backend: Backend,
        feature: &'static str,
        built: String,
    },
    #[error(
        "no display found (DISPLAY/WAYLAND_DISPLAY unset{drm}) (hint: run with --headless, or \
         choose --backend winit or --backend kms)"
    )]
    NoDisplay { drm: &'static str },
    /// Slint's own words are in `detail` (several lines joined by "; ").
    #[error("cannot start the {backend} backend: {detail} (hint: {hint})")]
    Platform {
        backend: Backend,
        hint: &'static str,
        detail: String,
    },
    #[error("the UI event loop is not running: {0}")]
    EventLoop(#[from] EventLoopError),
}

/// Pick the backend: `explicit` if given (and built), else a window when a display server
/// runs, else KMS when a DRM card exists; otherwise [`BackendError::NoDisplay`].
pub fn choose(explicit: Option<Backend>, env: &Environment) -> Result<Backend, BackendError> {
    let built = |b: Backend| -> Result<Backend, BackendError> {
        match b.feature() {
            Some(feature) if !b.is_built() => Err(BackendError::NotBuilt {
                backend: b,
                feature,
                built: Backend::built()
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            _ => Ok(b),
        }
    };
    if let Some(b) = explicit {
        return built(b);
    }
    if env.display_server {
        return built(Backend::Winit);
    }
    if env.drm_card.is_some() {
        return built(Backend::Kms);
    }
    Err(BackendError::NoDisplay {
        drm: if cfg!(feature = "kms") {
            " and no /dev/dri/card*"
        } else {
            ""
        },
    })
}

fn platform_error(backend: Backend, source: &PlatformError) -> BackendError {
    let text = source.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    BackendError::Platform {
        backend,
        hint: hint(backend),
        detail: lines.join("; "),
    }
}

fn hint(backend: Backend) -> &'static str {
    match backend {
        Backend::Winit => {
            "check that DISPLAY or WAYLAND_DISPLAY names a running display server this user may \
             open, or use --headless"
        }
        Backend::Kms => {
            "needs /dev/dri/card* and /dev/input/* (root, or the video and input groups), and \
             no desktop holding the display; SLINT_KMS_ROTATION=90 turns the picture"
        }
        Backend::Headless => "the headless platform needs no display",
    }
}

/// Install `backend` as this thread's Slint platform, with windows of `size` where the
/// backend lets the program choose (winit, headless; KMS is always the whole screen).
pub fn install(backend: Backend, size: ScreenSize) -> Result<(), BackendError> {
    let platform_error = |source: PlatformError| platform_error(backend, &source);
    choose(Some(backend), &Environment::default())?;
    match backend {
        Backend::Headless => headless::init_with_size(size.width, size.height),
        Backend::Winit => slint::BackendSelector::new()
            .backend_name("winit".into())
            .renderer_name("software".into())
            .select(),
        Backend::Kms => slint::BackendSelector::new()
            .backend_name("linuxkms".into())
            .renderer_name("software".into())
            .select(),
    }
    .map_err(platform_error)
}

/// Lay the window out for `size` (logical pixels) and ask the platform for that size. The
/// headless platform makes windows of the size given to [`headless::init_with_size`]; give
/// the same size here.
pub fn apply_size(window: &crate::AppWindow, size: ScreenSize) {
    window.set_window_width(size.width as f32);
    window.set_window_height(size.height as f32);
    window.window().set_size(slint::LogicalSize::new(
        size.width as f32,
        size.height as f32,
    ));
}

/// [`apply_size`] for the hub's manager display.
pub fn apply_hub_size(window: &crate::HubWindow, size: ScreenSize) {
    window.set_window_width(size.width as f32);
    window.set_window_height(size.height as f32);
    window.window().set_size(slint::LogicalSize::new(
        size.width as f32,
        size.height as f32,
    ));
}

/// How to run the terminal.
#[derive(Debug, Clone)]
pub struct Options {
    /// `None`: [`choose`] from the environment.
    pub backend: Option<Backend>,
    pub size: ScreenSize,
    /// Quit by itself after this long (tests, unattended runs).
    pub exit_after: Option<Duration>,
    /// How often [`Terminal::tick`] runs (idle lock, clock).
    pub tick: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: None,
            size: ScreenSize::default(),
            exit_after: None,
            tick: Duration::from_secs(1),
        }
    }
}

thread_local! {
    /// The terminal [`run_terminal`] is running on this thread, for [`Remote`].
    static CURRENT: RefCell<Option<Rc<Terminal>>> = const { RefCell::new(None) };
}

/// A handle other threads (a scanner reader, a device watcher, a signal handler) use to reach
/// the terminal on the UI thread: each call queues a closure with
/// [`slint::invoke_from_event_loop`]. Cheap to clone, `Send`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Remote {
    _private: (),
}

impl Remote {
    /// Run `f` with the terminal on the UI thread (nothing happens if it has closed).
    pub fn with_terminal(
        &self,
        f: impl FnOnce(&Terminal) + Send + 'static,
    ) -> Result<(), BackendError> {
        slint::invoke_from_event_loop(move || {
            let terminal = CURRENT.with(|c| c.borrow().clone());
            if let Some(t) = terminal {
                f(&t);
            }
        })?;
        Ok(())
    }

    /// A barcode read by a scanner: [`Terminal::scan`] on the UI thread.
    pub fn scan(&self, code: String) -> Result<(), BackendError> {
        self.with_terminal(move |t| {
            if !t.scan(&code) {
                tracing::debug!("scan {code} did not become a line");
            }
        })
    }

    /// The drawer's and the scanner's state for the status bar.
    pub fn set_device_status(&self, drawer: String, scanner: String) -> Result<(), BackendError> {
        self.with_terminal(move |t| t.set_device_status(&drawer, &scanner))
    }

    /// The printer's state for the status bar.
    pub fn set_printer_status(&self, text: String, ok: bool) -> Result<(), BackendError> {
        self.with_terminal(move |t| t.set_printer_status(&text, ok))
    }

    /// End the event loop: [`run_terminal`] returns.
    pub fn quit(&self) -> Result<(), BackendError> {
        slint::quit_event_loop()?;
        Ok(())
    }
}

/// Show the terminal UI over `till` and run it until the window is closed, [`Remote::quit`]
/// or `options.exit_after`. `setup` runs on the UI thread once the terminal exists and
/// before the event loop starts: wire devices there (give a [`Remote`] to their threads).
/// Returns the backend it ran on.
pub fn run_terminal(
    till: Till,
    options: &Options,
    setup: impl FnOnce(&Terminal, Remote),
) -> Result<Backend, BackendError> {
    let backend = choose(options.backend, &Environment::detect())?;
    install(backend, options.size)?;
    run_installed(backend, till, options, setup)?;
    Ok(backend)
}

/// [`run_terminal`] on a platform already installed with [`install`] (e.g. after a caller
/// fell back to headless).
pub fn run_installed(
    backend: Backend,
    till: Till,
    options: &Options,
    setup: impl FnOnce(&Terminal, Remote),
) -> Result<(), BackendError> {
    let platform_error = |source: PlatformError| platform_error(backend, &source);
    let terminal = Rc::new(Terminal::new(till).map_err(platform_error)?);
    match backend {
        Backend::Winit => apply_size(terminal.window(), options.size),
        Backend::Kms => {
            let window = terminal.window().window();
            window.set_fullscreen(true);
            // The panel decides: lay the screens out for its size, whatever --size said.
            let panel = window.size().to_logical(window.scale_factor());
            if panel.width >= 1.0 && panel.height >= 1.0 {
                let app = terminal.window();
                app.set_window_width(panel.width);
                app.set_window_height(panel.height);
                tracing::info!("full screen {}x{}", panel.width, panel.height);
            }
        }
        Backend::Headless => {
            apply_size(terminal.window(), options.size);
            tracing::info!(
                size = %options.size,
                "terminal running headless: no window, the state machine only"
            );
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some(Rc::clone(&terminal)));

    let tick = slint::Timer::default();
    let weak = Rc::downgrade(&terminal);
    tick.start(slint::TimerMode::Repeated, options.tick, move || {
        if let Some(t) = weak.upgrade() {
            if t.tick() {
                tracing::info!("screen locked after inactivity");
            }
        }
    });
    let stop = slint::Timer::default();
    if let Some(after) = options.exit_after {
        stop.start(slint::TimerMode::SingleShot, after, move || {
            tracing::info!("--exit-after reached: closing the terminal");
            if let Err(e) = slint::quit_event_loop() {
                tracing::warn!("cannot end the event loop: {e}");
            }
        });
    }
    setup(&terminal, Remote::default());

    let result = terminal
        .window()
        .show()
        .and_then(|()| slint::run_event_loop())
        .map_err(platform_error);
    let _ = terminal.window().hide();
    if backend == Backend::Headless {
        // Hiding the last window asks the loop to quit; it has already ended.
        headless::clear_quit();
    }
    tick.stop();
    stop.stop();
    CURRENT.with(|c| c.borrow_mut().take());
    result
}

/// Show the hub's manager display over `access` on `backend` (installed here) until the
/// window is closed, [`slint::quit_event_loop`] (callable from any thread) or
/// `options.exit_after`. The display re-reads the store every [`crate::hub::REFRESH`] and
/// locks itself after the session policy's idle time. `setup` runs on the UI thread before
/// the event loop starts.
pub fn run_hub(
    backend: Backend,
    access: Rc<dyn crate::hub::StoreAccess>,
    hub_options: crate::hub::HubOptions,
    actions: crate::hub::HubActions,
    options: &Options,
    setup: impl FnOnce(&crate::hub::Hub),
) -> Result<(), BackendError> {
    install(backend, options.size)?;
    let platform_error = |source: PlatformError| platform_error(backend, &source);
    let hub = Rc::new(crate::hub::Hub::new(access, hub_options, actions).map_err(platform_error)?);
    match backend {
        Backend::Kms => {
            let window = hub.window().window();
            window.set_fullscreen(true);
            let panel = window.size().to_logical(window.scale_factor());
            if panel.width >= 1.0 && panel.height >= 1.0 {
                hub.window().set_window_width(panel.width);
                hub.window().set_window_height(panel.height);
            }
        }
        Backend::Winit | Backend::Headless => apply_hub_size(hub.window(), options.size),
    }
    let tick = slint::Timer::default();
    let weak = Rc::downgrade(&hub);
    tick.start(slint::TimerMode::Repeated, crate::hub::REFRESH, move || {
        if let Some(h) = weak.upgrade() {
            if h.tick() {
                tracing::info!("hub display locked after inactivity");
            }
        }
    });
    let stop = slint::Timer::default();
    if let Some(after) = options.exit_after {
        stop.start(slint::TimerMode::SingleShot, after, move || {
            if let Err(e) = slint::quit_event_loop() {
                tracing::warn!("cannot end the event loop: {e}");
            }
        });
    }
    setup(&hub);
    let result = hub
        .window()
        .show()
        .and_then(|()| slint::run_event_loop())
        .map_err(platform_error);
    let _ = hub.window().hide();
    if backend == Backend::Headless {
        headless::clear_quit();
    }
    tick.stop();
    stop.stop();
    result
}

/// The hub's manager display as a second window beside a terminal's (`pos demo`): opened
/// on the terminal's event loop from [`run_installed`]'s `setup`, placed to the right of the
/// terminal's window, re-read every [`crate::hub::REFRESH`]. Closing either window ends the
/// event loop. Dropping it closes the display.
pub struct HubBeside {
    hub: Rc<crate::hub::Hub>,
    _tick: slint::Timer,
}

impl fmt::Debug for HubBeside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubBeside").finish_non_exhaustive()
    }
}

impl HubBeside {
    pub fn open(
        terminal: &Terminal,
        access: Rc<dyn crate::hub::StoreAccess>,
        hub_options: crate::hub::HubOptions,
        actions: crate::hub::HubActions,
        size: ScreenSize,
    ) -> Result<HubBeside, BackendError> {
        let hub = Rc::new(
            crate::hub::Hub::new(access, hub_options, actions)
                .map_err(|e| platform_error(Backend::Winit, &e))?,
        );
        apply_hub_size(hub.window(), size);
        let beside = terminal.window().window();
        let at = beside.position().to_logical(beside.scale_factor());
        let width = beside.size().to_logical(beside.scale_factor()).width;
        hub.window()
            .window()
            .set_position(slint::LogicalPosition::new(at.x + width + 16.0, at.y));
        for w in [terminal.window().window(), hub.window().window()] {
            w.on_close_requested(|| {
                if let Err(e) = slint::quit_event_loop() {
                    tracing::warn!("cannot end the event loop: {e}");
                }
                slint::CloseRequestResponse::HideWindow
            });
        }
        let tick = slint::Timer::default();
        let weak = Rc::downgrade(&hub);
        tick.start(slint::TimerMode::Repeated, crate::hub::REFRESH, move || {
            if let Some(h) = weak.upgrade() {
                h.tick();
            }
        });
        hub.window()
            .show()
            .map_err(|e| platform_error(Backend::Winit, &e))?;
        Ok(HubBeside { hub, _tick: tick })
    }

    pub fn hub(&self) -> &crate::hub::Hub {
        &self.hub
    }
}

impl Drop for HubBeside {
    fn drop(&mut self) {
        let _ = self.hub.window().hide();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_only_the_laid_out_ones() {
        assert_eq!("1280x800".parse(), Ok(ScreenSize::LANDSCAPE));
        assert_eq!(" 1024X768 ".parse(), Ok(ScreenSize::LANDSCAPE_4_3));
        assert_eq!("800x1280".parse(), Ok(ScreenSize::PORTRAIT));
        let odd = "640x480".parse::<ScreenSize>().unwrap_err();
        assert!(odd.contains("1280x800, 1024x768, 800x1280"), "{odd}");
        assert!("big"
            .parse::<ScreenSize>()
            .unwrap_err()
            .contains("like 1280x800"));
        assert_eq!(ScreenSize::PORTRAIT.to_string(), "800x1280");
    }

    #[test]
    fn backend_names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse(), Ok(b));
        }
        assert!("qt".parse::<Backend>().unwrap_err().contains("winit"));
    }

    #[test]
    fn choice_follows_the_environment() {
        let none = Environment::default();
        let x11 = Environment {
            display_server: true,
            drm_card: Some("/dev/dri/card0".into()),
        };
        let console = Environment {
            display_server: false,
            drm_card: Some("/dev/dri/card0".into()),
        };
        assert_eq!(
            choose(Some(Backend::Headless), &x11).unwrap(),
            Backend::Headless
        );
        let err = choose(None, &none).unwrap_err().to_string();
        assert!(err.contains("DISPLAY/WAYLAND_DISPLAY unset"), "{err}");
        match choose(None, &x11) {
            Ok(b) => assert_eq!(b, Backend::Winit),
            Err(e) => assert!(!Backend::Winit.is_built(), "{e}"),
        }
        match choose(None, &console) {
            Ok(b) => assert_eq!(b, Backend::Kms),
            Err(e) => {
                assert!(!Backend::Kms.is_built());
                assert!(e.to_string().contains("--features kms"), "{e}");
            }
        }
    }
}
