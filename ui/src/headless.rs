//! A Slint platform without a display: each window is a [`MinimalSoftwareWindow`] that the
//! software renderer draws into a pixel buffer. Tests and the screenshot bin use it; the
//! appliance's linuxkms backend and the desktop's winit backend are separate.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, PointerEventButton, WindowAdapter, WindowEvent};
use slint::{LogicalPosition, PhysicalSize, PlatformError, Rgb8Pixel};

thread_local! {
    static WINDOWS: RefCell<Vec<Rc<MinimalSoftwareWindow>>> = const { RefCell::new(Vec::new()) };
}

struct HeadlessPlatform {
    start: Instant,
}

impl Platform for HeadlessPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, PlatformError> {
        let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
        window.set_size(PhysicalSize::new(crate::WIDTH, crate::HEIGHT));
        WINDOWS.with(|w| w.borrow_mut().push(window.clone()));
        Ok(window)
    }

    fn duration_since_start(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Install the headless platform on this thread (Slint's platform is per thread). Calling it
/// again is harmless.
pub fn init() -> Result<(), PlatformError> {
    match slint::platform::set_platform(Box::new(HeadlessPlatform {
        start: Instant::now(),
    })) {
        Ok(()) | Err(slint::platform::SetPlatformError::AlreadySet) => Ok(()),
        Err(e) => Err(PlatformError::Other(e.to_string())),
    }
}

/// The window most recently created on this thread (the one of the last component made).
pub fn last_window() -> Option<Rc<MinimalSoftwareWindow>> {
    WINDOWS.with(|w| w.borrow().last().cloned())
}

/// Run due timers and animations, then draw the whole window; returns RGB bytes, row by row.
pub fn render_rgb(window: &MinimalSoftwareWindow) -> Vec<u8> {
    let (w, h) = (crate::WIDTH as usize, crate::HEIGHT as usize);
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
    let rgb = render_rgb(window);
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), crate::WIDTH, crate::HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
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
