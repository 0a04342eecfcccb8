//! A Slint platform without a display: each window is a [`MinimalSoftwareWindow`] that the
//! software renderer draws into a pixel buffer. Tests, the screenshot example, the benchmarks
//! and `pos terminal --headless` use it; the appliance's linuxkms backend and the desktop's
//! winit backend are in [`crate::backend`].
//!
//! Windows are 1280x800 unless [`init_with_size`] asked for another size. The platform has an
//! event loop ([`slint::run_event_loop`]): it runs due timers and the closures other threads
//! send with [`slint::invoke_from_event_loop`], and ends on [`slint::quit_event_loop`]. It
//! draws nothing by itself: call [`render_rgb`] to see a frame.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{EventLoopProxy, Platform, PointerEventButton, WindowAdapter, WindowEvent};
use slint::{EventLoopError, LogicalPosition, PhysicalSize, PlatformError, Rgb8Pixel};

thread_local! {
    static WINDOWS: RefCell<Vec<Rc<MinimalSoftwareWindow>>> = const { RefCell::new(Vec::new()) };
    static SIZE: Cell<(u32, u32)> = const { Cell::new((crate::WIDTH, crate::HEIGHT)) };
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
    static OWNER: Cell<bool> = const { Cell::new(false) };
    static SHARED: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

type Job = Box<dyn FnOnce() + Send>;

/// What other threads hand to the event loop.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    quit: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A job that panicked cannot leave the queue half-changed: take it as it is.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Proxy(Arc<Shared>);

impl EventLoopProxy for Proxy {
    fn quit_event_loop(&self) -> Result<(), EventLoopError> {
        self.0.lock().quit = true;
        self.0.wake.notify_all();
        Ok(())
    }

    fn invoke_from_event_loop(&self, event: Job) -> Result<(), EventLoopError> {
        self.0.lock().jobs.push_back(event);
        self.0.wake.notify_all();
        Ok(())
    }
}

struct HeadlessPlatform {
    start: Instant,
    shared: Arc<Shared>,
    /// Slint keeps one event loop proxy per process (the first platform's): only the first
    /// thread that installs this platform gets `invoke_from_event_loop` jobs and can be quit
    /// from another thread. Test threads after it run without a proxy, as before.
    owns_proxy: bool,
}

/// Whether a headless platform of this process holds Slint's event loop proxy.
static PROXY_CLAIMED: AtomicBool = AtomicBool::new(false);

impl Platform for HeadlessPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, PlatformError> {
        let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
        let (w, h) = SIZE.with(Cell::get);
        window.set_size(PhysicalSize::new(w, h));
        WINDOWS.with(|w| w.borrow_mut().push(window.clone()));
        Ok(window)
    }

    fn duration_since_start(&self) -> Duration {
        self.start.elapsed()
    }

    fn new_event_loop_proxy(&self) -> Option<Box<dyn EventLoopProxy>> {
        self.owns_proxy
            .then(|| Box::new(Proxy(Arc::clone(&self.shared))) as Box<dyn EventLoopProxy>)
    }

    /// Run timers and queued closures until [`slint::quit_event_loop`]; sleep in between
    /// until the next timer is due or another thread sends something.
    fn run_event_loop(&self) -> Result<(), PlatformError> {
        loop {
            slint::platform::update_timers_and_animations();
            let jobs: Vec<Job> = self.shared.lock().jobs.drain(..).collect();
            let ran = !jobs.is_empty();
            for job in jobs {
                job();
            }
            if ran {
                // A job may have started or stopped a timer: look again before sleeping.
                continue;
            }
            let wait = slint::platform::duration_until_next_timer_update()
                .unwrap_or(IDLE_WAIT)
                .min(IDLE_WAIT);
            let mut queue = self.shared.lock();
            if queue.quit {
                queue.quit = false;
                return Ok(());
            }
            if queue.jobs.is_empty() {
                let (mut queue, _) = self
                    .shared
                    .wake
                    .wait_timeout(queue, wait)
                    .unwrap_or_else(PoisonError::into_inner);
                if queue.quit && queue.jobs.is_empty() {
                    queue.quit = false;
                    return Ok(());
                }
            }
        }
    }
}

/// Forget a quit request that arrived after the loop ended (e.g. from hiding the last window),
/// so the next [`slint::run_event_loop`] on this thread runs.
pub(crate) fn clear_quit() {
    if let Some(shared) = SHARED.with(|s| s.borrow().clone()) {
        shared.lock().quit = false;
    }
}

/// Longest sleep of the headless event loop when no timer is due.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// Install the headless platform on this thread (Slint's platform is per thread), with
/// windows of [`crate::WIDTH`] x [`crate::HEIGHT`]. Calling it again is harmless.
pub fn init() -> Result<(), PlatformError> {
    init_with_size(crate::WIDTH, crate::HEIGHT)
}

/// Install the headless platform on this thread with windows of `width` x `height` physical
/// pixels (e.g. 1024x768, or 800x1280 for a portrait screen). Calling it again changes the
/// size of the windows created from then on. The screens are laid out for the size their
/// window is given: call [`crate::backend::apply_size`] with the same size.
pub fn init_with_size(width: u32, height: u32) -> Result<(), PlatformError> {
    SIZE.with(|s| s.set((width.max(1), height.max(1))));
    if INSTALLED.with(Cell::get) {
        return Ok(());
    }
    let owns_proxy = !PROXY_CLAIMED.swap(true, Ordering::SeqCst);
    let shared = Arc::<Shared>::default();
    match slint::platform::set_platform(Box::new(HeadlessPlatform {
        start: Instant::now(),
        shared: Arc::clone(&shared),
        owns_proxy,
    })) {
        Ok(()) => {
            SHARED.with(|s| *s.borrow_mut() = Some(shared));
            INSTALLED.with(|i| i.set(true));
            OWNER.with(|o| o.set(owns_proxy));
            Ok(())
        }
        Err(slint::platform::SetPlatformError::AlreadySet) => {
            // Another platform is installed on this thread: ours was not, nor its proxy.
            if owns_proxy {
                PROXY_CLAIMED.store(false, Ordering::SeqCst);
            }
            Ok(())
        }
        Err(e) => Err(PlatformError::Other(e.to_string())),
    }
}

/// Whether the headless platform is installed on this thread with Slint's event loop proxy,
/// so that [`slint::invoke_from_event_loop`] and [`slint::quit_event_loop`] reach its loop.
pub fn has_event_loop_proxy() -> bool {
    INSTALLED.with(Cell::get) && OWNER.with(Cell::get)
}

/// The window most recently created on this thread (the one of the last component made).
pub fn last_window() -> Option<Rc<MinimalSoftwareWindow>> {
    WINDOWS.with(|w| w.borrow().last().cloned())
}

/// The size of `window` in physical pixels.
pub fn window_size(window: &MinimalSoftwareWindow) -> (u32, u32) {
    let size = slint::platform::WindowAdapter::size(window);
    (size.width.max(1), size.height.max(1))
}

/// Run due timers and animations, then draw the whole window; returns RGB bytes, row by row
/// ([`window_size`] wide and high).
pub fn render_rgb(window: &MinimalSoftwareWindow) -> Vec<u8> {
    let (w, h) = window_size(window);
    let (w, h) = (w as usize, h as usize);
    let mut buffer = vec![Rgb8Pixel::default(); w * h];
    slint::platform::update_timers_and_animations();
    window.request_redraw();
    window.draw_if_needed(|renderer| {
        renderer.render(&mut buffer, w);
    });
    buffer.iter().flat_map(|p| [p.r, p.g, p.b]).collect()
}

/// Draw the window and write it as a PNG file.
pub fn write_png(window: &MinimalSoftwareWindow, path: &Path) -> std::io::Result<()> {
    let (w, h) = window_size(window);
    let rgb = render_rgb(window);
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(&rgb)
        .map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)
}

/// A finger's tap at (x, y) logical pixels: press and release.
pub fn tap(window: &slint::Window, x: f32, y: f32) {
    let position = LogicalPosition::new(x, y);
    let button = PointerEventButton::Left;
    window.dispatch_event(WindowEvent::PointerMoved { position });
    window.dispatch_event(WindowEvent::PointerPressed { position, button });
    window.dispatch_event(WindowEvent::PointerReleased { position, button });
    window.dispatch_event(WindowEvent::PointerExited);
}

/// Text typed on a keyboard, one key at a time.
pub fn type_text(window: &slint::Window, text: &str) {
    for ch in text.chars() {
        let key: slint::SharedString = ch.to_string().into();
        window.dispatch_event(WindowEvent::KeyPressed { text: key.clone() });
        window.dispatch_event(WindowEvent::KeyReleased { text: key });
    }
}
