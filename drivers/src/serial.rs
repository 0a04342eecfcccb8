//! Serial ports (RS-232, USB-serial adapters, USB CDC-ACM) as a [`Transport`], through the
//! `serialport` crate built without libudev.
//!
//! The port is opened lazily and dropped on any I/O error that means the device went away
//! (unplugged adapter, hung-up line); the next call opens the path again, so a scanner or
//! display that is unplugged and plugged back in works again without restarting the service.
//! Use a stable path (`/dev/serial/by-id/...`) so the re-plugged device is found under the same
//! name.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use serialport::{ClearBuffer, DataBits, FlowControl, Parity, SerialPort, StopBits};

use crate::transport::Transport;

/// The shortest timeout handed to the OS (a zero timeout would mean "wait forever" to some).
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// How to open a serial device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConfig {
    /// Device path, e.g. `/dev/ttyUSB0`, `/dev/ttyACM0` or a `/dev/serial/by-id/` link.
    pub path: String,
    /// Line speed, e.g. 9600 (most drawers, displays, scanners) or 115200.
    pub baud: u32,
    /// Longest a write may block (a device holding CTS low must not hang the till).
    pub write_timeout: Duration,
    /// RTS/CTS hardware flow control. Off by default: many POS peripherals do not wire it.
    pub hardware_flow_control: bool,
}

impl SerialConfig {
    /// 8N1 at `baud`, 2 s write timeout, no flow control.
    pub fn new(path: impl Into<String>, baud: u32) -> Self {
        Self {
            path: path.into(),
            baud,
            write_timeout: Duration::from_secs(2),
            hardware_flow_control: false,
        }
    }
}

/// A modem-status input line of a serial port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModemLine {
    /// Clear To Send.
    Cts,
    /// Data Carrier Detect.
    Dcd,
    /// Data Set Ready.
    Dsr,
    /// Ring Indicator.
    Ri,
}

/// A serial device as a [`Transport`]. See the module documentation.
pub struct SerialTransport {
    config: SerialConfig,
    port: Option<Box<dyn SerialPort>>,
}

impl fmt::Debug for SerialTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialTransport")
            .field("config", &self.config)
            .field("open", &self.port.is_some())
            .finish()
    }
}

impl SerialTransport {
    /// A transport for `config`; nothing is opened until first use.
    pub fn new(config: SerialConfig) -> Self {
        Self { config, port: None }
    }

    /// Open now, so configuration errors (wrong path, no permission) show at start-up.
    pub fn open(config: SerialConfig) -> io::Result<Self> {
        let mut t = Self::new(config);
        t.connect()?;
        Ok(t)
    }

    /// The configuration in use.
    pub fn config(&self) -> &SerialConfig {
        &self.config
    }

    /// Whether the port is currently open.
    pub fn is_open(&self) -> bool {
        self.port.is_some()
    }

    /// Close the port; the next use opens it again.
    pub fn close(&mut self) {
        self.port = None;
    }

    fn connect(&mut self) -> io::Result<&mut Box<dyn SerialPort>> {
        if self.port.is_none() {
            let flow = if self.config.hardware_flow_control {
                FlowControl::Hardware
            } else {
                FlowControl::None
            };
            let port = serialport::new(&self.config.path, self.config.baud)
                .data_bits(DataBits::Eight)
                .parity(Parity::None)
                .stop_bits(StopBits::One)
                .flow_control(flow)
                .timeout(self.config.write_timeout.max(MIN_TIMEOUT))
                .open()
                .map_err(|e| port_error(&self.config.path, e))?;
            // Stale bytes from before (a half scan, a display echo) are not ours.
            let _ = port.clear(ClearBuffer::Input);
            self.port = Some(port);
        }
        self.port
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "serial port not open"))
    }

    /// Read a modem-status line (CTS, DCD, DSR, RI). Pseudo-terminals and some adapters do not
    /// support this and return an error.
    pub fn modem_line(&mut self, line: ModemLine) -> io::Result<bool> {
        let path = self.config.path.clone();
        let port = self.connect()?;
        let r = match line {
            ModemLine::Cts => port.read_clear_to_send(),
            ModemLine::Dcd => port.read_carrier_detect(),
            ModemLine::Dsr => port.read_data_set_ready(),
            ModemLine::Ri => port.read_ring_indicator(),
        };
        r.map_err(|e| port_error(&path, e))
    }

    /// Drop the port after an error that means the device is gone or unusable.
    fn after_error(&mut self, e: io::Error) -> io::Error {
        if !matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ) {
            self.port = None;
        }
        e
    }
}

fn port_error(path: &str, e: serialport::Error) -> io::Error {
    let kind = match e.kind() {
        serialport::ErrorKind::NoDevice => io::ErrorKind::NotFound,
        serialport::ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
        serialport::ErrorKind::Io(kind) => kind,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("serial {path}: {}", e.description))
}

impl Transport for SerialTransport {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let port = self.connect()?;
        let r = port.write_all(bytes).and_then(|()| port.flush());
        r.map_err(|e| self.after_error(e))
    }

    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let write_timeout = self.config.write_timeout.max(MIN_TIMEOUT);
        let path = self.config.path.clone();
        let port = self.connect()?;
        if timeout.is_zero() {
            let ready = port.bytes_to_read().map_err(|e| port_error(&path, e));
            match ready {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(self.after_error(e)),
            }
        }
        let set = port
            .set_timeout(timeout.max(MIN_TIMEOUT))
            .map_err(|e| port_error(&path, e));
        if let Err(e) = set {
            return Err(self.after_error(e));
        }
        let r = port.read(buf);
        // Writes keep their own bound.
        let _ = port.set_timeout(write_timeout);
        match r {
            Ok(0) => Err(self.after_error(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("serial {path}: device closed"),
            ))),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) => Err(self.after_error(e)),
        }
    }

    fn reconnect(&mut self) -> io::Result<()> {
        self.port = None;
        self.connect().map(|_| ())
    }

    fn describe(&self) -> String {
        format!("serial://{}@{}", self.config.path, self.config.baud)
    }
}
