//! USB receipt printers (and other bulk-endpoint POS devices) through libusb (`rusb`, libusb
//! built from source and linked statically, so no system package is needed).
//!
//! A printer is found either by its interface class (7, USB printer class) or by a configured
//! `VID:PID` list for devices that present a vendor-specific interface. The pure parts (VID:PID
//! parsing, endpoint selection from a [`InterfaceModel`] descriptor model) are separate from
//! the libusb calls so they can be tested without a device. [`list_printers`] never panics: a
//! machine without USB, without permission or without devices gives an empty list or a clear
//! error. [`UsbTransport`] claims the interface (detaching the kernel `usblp` driver when it is
//! bound) and moves bytes over the bulk OUT / IN endpoints.

use std::fmt;
use std::str::FromStr;

/// USB interface class of printers.
pub const PRINTER_CLASS: u8 = 7;

/// A USB vendor and product id, written `04b8:0202`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VidPid {
    pub vendor: u16,
    pub product: u16,
}

impl fmt::Display for VidPid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.product)
    }
}

/// A malformed `VID:PID`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad USB id {0:?}: expected VID:PID in hex, e.g. 04b8:0202")]
pub struct VidPidError(pub String);

impl FromStr for VidPid {
    type Err = VidPidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VidPidError(s.to_owned());
        let (v, p) = s.trim().split_once(':').ok_or_else(bad)?;
        let hex = |x: &str| {
            let x = x.trim();
            let x = x
                .strip_prefix("0x")
                .or_else(|| x.strip_prefix("0X"))
                .unwrap_or(x);
            if x.is_empty() || x.len() > 4 || !x.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u16::from_str_radix(x, 16).ok()
        };
        Ok(VidPid {
            vendor: hex(v).ok_or_else(bad)?,
            product: hex(p).ok_or_else(bad)?,
        })
    }
}

/// Parse a list such as `"04b8:0202, 0519:0001"` (separated by commas and/or whitespace;
/// empty gives an empty list).
pub fn parse_vid_pid_list(s: &str) -> Result<Vec<VidPid>, VidPidError> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(str::parse)
        .collect()
}

/// Endpoint direction, from the host's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointDirection {
    In,
    Out,
}

/// Endpoint transfer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    Control,
    Isochronous,
    Bulk,
    Interrupt,
}

/// One endpoint of an interface descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointModel {
    pub address: u8,
    pub direction: EndpointDirection,
    pub kind: TransferKind,
}

/// One alternate setting of an interface, as read from the configuration descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceModel {
    pub number: u8,
    pub alt_setting: u8,
    pub class: u8,
    pub endpoints: Vec<EndpointModel>,
}

/// The interface and bulk endpoints a driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkEndpoints {
    pub interface: u8,
    pub alt_setting: u8,
    /// Bulk OUT: commands and print data.
    pub out: u8,
    /// Bulk IN: status replies; uni-directional printers have none.
    pub input: Option<u8>,
}

/// Choose the interface and endpoints to use: the first printer-class interface with a bulk
/// OUT endpoint, preferring a bi-directional setting (with bulk IN, so status queries work);
/// when `any_class` is set (a device on the configured VID:PID list) and no printer-class
/// interface fits, the first interface of any class with a bulk OUT endpoint.
pub fn select_endpoints(interfaces: &[InterfaceModel], any_class: bool) -> Option<BulkEndpoints> {
    let candidates = |printer_only: bool| {
        interfaces
            .iter()
            .filter(move |i| !printer_only || i.class == PRINTER_CLASS)
            .filter_map(|i| {
                let bulk = |dir| {
                    i.endpoints
                        .iter()
                        .find(|e| e.kind == TransferKind::Bulk && e.direction == dir)
                        .map(|e| e.address)
                };
                Some(BulkEndpoints {
                    interface: i.number,
                    alt_setting: i.alt_setting,
                    out: bulk(EndpointDirection::Out)?,
                    input: bulk(EndpointDirection::In),
                })
            })
    };
    let best = |printer_only: bool| {
        candidates(printer_only)
            .find(|e| e.input.is_some())
            .or_else(|| candidates(printer_only).next())
    };
    best(true).or_else(|| if any_class { best(false) } else { None })
}

/// A USB device that looks like a printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbPrinterInfo {
    pub id: VidPid,
    pub bus: u8,
    pub address: u8,
    pub endpoints: BulkEndpoints,
    /// Found through the VID:PID list rather than the printer class.
    pub by_id: bool,
}

/// Why USB access failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsbError {
    /// libusb could not start (no USB on this machine, no `/dev/bus/usb`, sandbox).
    #[error("USB unavailable: {0}")]
    Unavailable(String),
    /// The device exists but this user may not open it (udev rule / group missing).
    #[error("no permission to open USB device {0}")]
    Permission(String),
    /// No matching device is plugged in.
    #[error("USB device {0} not found")]
    NotFound(String),
    /// The device has no usable bulk OUT endpoint.
    #[error("USB device {0} has no bulk OUT endpoint")]
    NoEndpoint(String),
    /// Any other libusb error.
    #[error("USB device {device}: {message}")]
    Other { device: String, message: String },
    /// The USB transport was not compiled in (cargo feature `usb` off).
    #[error("USB support is not built in (cargo feature `usb`)")]
    NotBuilt,
}

impl From<UsbError> for std::io::Error {
    fn from(e: UsbError) -> Self {
        use std::io::ErrorKind;
        let kind = match e {
            UsbError::Permission(_) => ErrorKind::PermissionDenied,
            UsbError::NotFound(_) => ErrorKind::NotFound,
            UsbError::Unavailable(_) | UsbError::NotBuilt => ErrorKind::Unsupported,
            UsbError::NoEndpoint(_) => ErrorKind::InvalidInput,
            UsbError::Other { .. } => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(feature = "usb")]
pub use imp::{list_printers, UsbTransport};

#[cfg(not(feature = "usb"))]
/// Without the `usb` feature there is no USB support: always [`UsbError::NotBuilt`].
pub fn list_printers(_ids: &[VidPid]) -> Result<Vec<UsbPrinterInfo>, UsbError> {
    Err(UsbError::NotBuilt)
}

#[cfg(feature = "usb")]
mod imp {
    use std::io;
    use std::time::Duration;

    use rusb::{Context, Device, DeviceHandle, Direction, TransferType, UsbContext};

    use super::{
        select_endpoints, BulkEndpoints, EndpointDirection, EndpointModel, InterfaceModel,
        TransferKind, UsbError, UsbPrinterInfo, VidPid,
    };
    use crate::transport::Transport;

    const MIN_TIMEOUT: Duration = Duration::from_millis(1);

    fn context() -> Result<Context, UsbError> {
        Context::new().map_err(|e| UsbError::Unavailable(e.to_string()))
    }

    fn model(device: &Device<Context>) -> rusb::Result<Vec<InterfaceModel>> {
        let config = device.active_config_descriptor()?;
        let mut out = Vec::new();
        for interface in config.interfaces() {
            for d in interface.descriptors() {
                out.push(InterfaceModel {
                    number: d.interface_number(),
                    alt_setting: d.setting_number(),
                    class: d.class_code(),
                    endpoints: d
                        .endpoint_descriptors()
                        .map(|e| EndpointModel {
                            address: e.address(),
                            direction: match e.direction() {
                                Direction::In => EndpointDirection::In,
                                Direction::Out => EndpointDirection::Out,
                            },
                            kind: match e.transfer_type() {
                                TransferType::Control => TransferKind::Control,
                                TransferType::Isochronous => TransferKind::Isochronous,
                                TransferType::Bulk => TransferKind::Bulk,
                                TransferType::Interrupt => TransferKind::Interrupt,
                            },
                        })
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    fn probe(device: &Device<Context>, ids: &[VidPid]) -> Option<UsbPrinterInfo> {
        let desc = device.device_descriptor().ok()?;
        let id = VidPid {
            vendor: desc.vendor_id(),
            product: desc.product_id(),
        };
        let listed = ids.contains(&id);
        let interfaces = model(device).ok()?;
        let endpoints = select_endpoints(&interfaces, listed)?;
        let by_class = interfaces
            .iter()
            .any(|i| i.class == super::PRINTER_CLASS && i.number == endpoints.interface);
        Some(UsbPrinterInfo {
            id,
            bus: device.bus_number(),
            address: device.address(),
            endpoints,
            by_id: !by_class,
        })
    }

    /// Printer-class devices and devices on the `ids` list that have a bulk OUT endpoint.
    /// Devices whose descriptors cannot be read are skipped; no USB at all is
    /// [`UsbError::Unavailable`].
    pub fn list_printers(ids: &[VidPid]) -> Result<Vec<UsbPrinterInfo>, UsbError> {
        let ctx = context()?;
        let devices = ctx
            .devices()
            .map_err(|e| UsbError::Unavailable(e.to_string()))?;
        Ok(devices.iter().filter_map(|d| probe(&d, ids)).collect())
    }

    fn usb_err(device: &str, e: rusb::Error) -> UsbError {
        match e {
            rusb::Error::Access => UsbError::Permission(device.to_owned()),
            rusb::Error::NoDevice | rusb::Error::NotFound => UsbError::NotFound(device.to_owned()),
            e => UsbError::Other {
                device: device.to_owned(),
                message: e.to_string(),
            },
        }
    }

    fn io_err(device: &str, e: rusb::Error) -> io::Error {
        match e {
            rusb::Error::Timeout => {
                io::Error::new(io::ErrorKind::TimedOut, format!("usb {device}: timeout"))
            }
            rusb::Error::Pipe => io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("usb {device}: endpoint stalled"),
            ),
            e => usb_err(device, e).into(),
        }
    }

    struct Open {
        handle: DeviceHandle<Context>,
        endpoints: BulkEndpoints,
        reattach: bool,
    }

    impl Drop for Open {
        fn drop(&mut self) {
            let iface = self.endpoints.interface;
            let _ = self.handle.release_interface(iface);
            if self.reattach {
                let _ = self.handle.attach_kernel_driver(iface);
            }
        }
    }

    /// A USB printer as a [`Transport`]: the first device matching `id` (or, with no id, the
    /// first printer-class device). Opened lazily, reopened after it was unplugged.
    pub struct UsbTransport {
        id: Option<VidPid>,
        write_timeout: Duration,
        open: Option<Open>,
    }

    impl std::fmt::Debug for UsbTransport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("UsbTransport")
                .field("id", &self.id)
                .field("write_timeout", &self.write_timeout)
                .field("open", &self.open.as_ref().map(|o| o.endpoints))
                .finish()
        }
    }

    impl UsbTransport {
        /// A transport for the device `id` (or any printer-class device); nothing is opened
        /// until first use.
        pub fn new(id: Option<VidPid>, write_timeout: Duration) -> Self {
            Self {
                id,
                write_timeout,
                open: None,
            }
        }

        fn name(&self) -> String {
            self.id
                .map_or_else(|| "printer-class".to_owned(), |id| id.to_string())
        }

        fn connect(&mut self) -> Result<&Open, UsbError> {
            if self.open.is_none() {
                let name = self.name();
                let ctx = context()?;
                let devices = ctx
                    .devices()
                    .map_err(|e| UsbError::Unavailable(e.to_string()))?;
                let ids: Vec<VidPid> = self.id.into_iter().collect();
                let (device, info) = devices
                    .iter()
                    .filter_map(|d| probe(&d, &ids).map(|i| (d, i)))
                    .find(|(_, i)| self.id.is_none_or(|id| id == i.id))
                    .ok_or_else(|| UsbError::NotFound(name.clone()))?;
                let handle = device.open().map_err(|e| usb_err(&name, e))?;
                let iface = info.endpoints.interface;
                let reattach = match handle.kernel_driver_active(iface) {
                    Ok(true) => {
                        handle
                            .detach_kernel_driver(iface)
                            .map_err(|e| usb_err(&name, e))?;
                        true
                    }
                    _ => false,
                };
                let open = Open {
                    handle,
                    endpoints: info.endpoints,
                    reattach,
                };
                open.handle
                    .claim_interface(iface)
                    .map_err(|e| usb_err(&name, e))?;
                if info.endpoints.alt_setting != 0 {
                    open.handle
                        .set_alternate_setting(iface, info.endpoints.alt_setting)
                        .map_err(|e| usb_err(&name, e))?;
                }
                self.open = Some(open);
            }
            self.open
                .as_ref()
                .ok_or_else(|| UsbError::NotFound(self.name()))
        }

        fn after_error(&mut self, e: io::Error) -> io::Error {
            if e.kind() != io::ErrorKind::TimedOut {
                self.open = None;
            }
            e
        }
    }

    impl Transport for UsbTransport {
        fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            let name = self.name();
            let timeout = self.write_timeout.max(MIN_TIMEOUT);
            let open = self.connect()?;
            let mut rest = bytes;
            let mut result = Ok(());
            while !rest.is_empty() {
                match open.handle.write_bulk(open.endpoints.out, rest, timeout) {
                    Ok(0) => {
                        result = Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            format!("usb {name}: device accepted no bytes"),
                        ));
                        break;
                    }
                    Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                    Err(e) => {
                        result = Err(io_err(&name, e));
                        break;
                    }
                }
            }
            result.map_err(|e| self.after_error(e))
        }

        fn read_some(&mut self, buf: &mut [u8], timeout: std::time::Duration) -> io::Result<usize> {
            let name = self.name();
            let open = self.connect()?;
            let Some(ep) = open.endpoints.input else {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("usb {name}: printer has no bulk IN endpoint"),
                ));
            };
            match open.handle.read_bulk(ep, buf, timeout.max(MIN_TIMEOUT)) {
                Ok(n) => Ok(n),
                Err(rusb::Error::Timeout) => Ok(0),
                Err(e) => {
                    let e = io_err(&name, e);
                    Err(self.after_error(e))
                }
            }
        }

        fn reconnect(&mut self) -> io::Result<()> {
            self.open = None;
            self.connect().map(|_| ()).map_err(io::Error::from)
        }

        fn describe(&self) -> String {
            format!("usb://{}", self.name())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EndpointDirection::{In, Out};
    use TransferKind::{Bulk, Interrupt};

    fn ep(address: u8, direction: EndpointDirection, kind: TransferKind) -> EndpointModel {
        EndpointModel {
            address,
            direction,
            kind,
        }
    }

    fn iface(number: u8, alt: u8, class: u8, endpoints: Vec<EndpointModel>) -> InterfaceModel {
        InterfaceModel {
            number,
            alt_setting: alt,
            class,
            endpoints,
        }
    }

    #[test]
    fn vid_pid_parsing() {
        assert_eq!(
            "04b8:0202".parse(),
            Ok(VidPid {
                vendor: 0x04b8,
                product: 0x0202
            })
        );
        assert_eq!(
            " 0x0519:0X0001 ".parse(),
            Ok(VidPid {
                vendor: 0x0519,
                product: 1
            })
        );
        assert_eq!(
            "04B8:0E15".parse::<VidPid>().map(|v| v.to_string()),
            Ok("04b8:0e15".into())
        );
        for bad in [
            "",
            "04b8",
            "04b8:",
            ":0202",
            "04b8:0202:1",
            "1ffff:0001",
            "xyz:0001",
            "+4b8:0202",
            "04b8;0202",
        ] {
            assert!(bad.parse::<VidPid>().is_err(), "{bad}");
        }
        assert_eq!(
            parse_vid_pid_list("04b8:0202, 0519:0001\n1504:0006"),
            Ok(vec![
                VidPid {
                    vendor: 0x04b8,
                    product: 0x0202
                },
                VidPid {
                    vendor: 0x0519,
                    product: 0x0001
                },
                VidPid {
                    vendor: 0x1504,
                    product: 0x0006
                },
            ])
        );
        assert_eq!(parse_vid_pid_list(" , "), Ok(vec![]));
        assert_eq!(
            parse_vid_pid_list("04b8:0202,bogus"),
            Err(VidPidError("bogus".into()))
        );
    }

    #[test]
    fn endpoint_selection() {
        // Typical Epson TM: one printer-class interface, bulk OUT 0x01 and bulk IN 0x82.
        let tm = [iface(
            0,
            0,
            7,
            vec![ep(0x01, Out, Bulk), ep(0x82, In, Bulk)],
        )];
        assert_eq!(
            select_endpoints(&tm, false),
            Some(BulkEndpoints {
                interface: 0,
                alt_setting: 0,
                out: 0x01,
                input: Some(0x82)
            })
        );

        // Uni-directional alt 0 and bi-directional alt 1: the bi-directional one wins.
        let two_alts = [
            iface(0, 0, 7, vec![ep(0x02, Out, Bulk)]),
            iface(0, 1, 7, vec![ep(0x02, Out, Bulk), ep(0x81, In, Bulk)]),
        ];
        assert_eq!(
            select_endpoints(&two_alts, false),
            Some(BulkEndpoints {
                interface: 0,
                alt_setting: 1,
                out: 0x02,
                input: Some(0x81)
            })
        );

        // Uni-directional only.
        let uni = [iface(0, 0, 7, vec![ep(0x01, Out, Bulk)])];
        assert_eq!(select_endpoints(&uni, false).map(|e| e.input), Some(None));

        // Vendor-specific interface: only when the device is on the VID:PID list.
        let vendor = [
            iface(0, 0, 0xFF, vec![ep(0x83, In, Interrupt)]),
            iface(1, 0, 0xFF, vec![ep(0x03, Out, Bulk), ep(0x84, In, Bulk)]),
        ];
        assert_eq!(select_endpoints(&vendor, false), None);
        assert_eq!(
            select_endpoints(&vendor, true),
            Some(BulkEndpoints {
                interface: 1,
                alt_setting: 0,
                out: 0x03,
                input: Some(0x84)
            })
        );

        // A composite device: printer-class interface preferred over the vendor one.
        let composite = [
            iface(0, 0, 0xFF, vec![ep(0x01, Out, Bulk), ep(0x81, In, Bulk)]),
            iface(1, 0, 7, vec![ep(0x02, Out, Bulk)]),
        ];
        assert_eq!(
            select_endpoints(&composite, true).map(|e| e.interface),
            Some(1)
        );

        // Printer class without bulk OUT (broken descriptor), no interfaces at all.
        assert_eq!(
            select_endpoints(&[iface(0, 0, 7, vec![ep(0x81, In, Bulk)])], true),
            None
        );
        assert_eq!(select_endpoints(&[], true), None);
    }

    #[test]
    fn listing_never_panics() {
        // No USB in a container / CI, no permission, or really some devices: all fine, as long
        // as it answers.
        match list_printers(&[VidPid {
            vendor: 0x04b8,
            product: 0x0202,
        }]) {
            Ok(list) => {
                for p in list {
                    assert!(p.endpoints.out & 0x80 == 0, "{p:?}");
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }

    #[cfg(feature = "usb")]
    #[test]
    fn transport_without_device_is_a_clear_error() {
        use crate::transport::Transport;
        let mut t = UsbTransport::new(
            Some(VidPid {
                vendor: 0xdead,
                product: 0xbeef,
            }),
            std::time::Duration::from_millis(100),
        );
        assert_eq!(t.describe(), "usb://dead:beef");
        let e = t.write_all(b"x").err().map(|e| e.to_string());
        assert!(
            e.is_some_and(|e| e.contains("USB")),
            "write to a missing device must fail"
        );
        assert!(t.reconnect().is_err());
        let mut buf = [0u8; 8];
        assert!(t.read_some(&mut buf, std::time::Duration::ZERO).is_err());
    }
}
