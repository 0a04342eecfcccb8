//! Child process for the print-queue crash test: `print_worker DATA_DIR PRINTER_ADDR` prints
//! every waiting receipt to the (simulated) network printer, then exits 0. The parent kills it
//! with SIGKILL at random moments and starts it again.

use std::process::ExitCode;
use std::time::Duration;

use pos_drivers::escpos::{CodePage, Layout, PaperWidth};
use pos_drivers::printer::EscPosPrinter;
use pos_drivers::transport::{TcpTimeouts, TcpTransport};
use pos_engine::{Engine, EngineConfig, PrintProgress};
use pos_store::{Store, StoreOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(addr)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: print_worker DATA_DIR PRINTER_ADDR");
        return ExitCode::from(2);
    };
    match run(dir, addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("print_worker: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(dir: &str, addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(std::path::Path::new(dir), StoreOptions::default())?;
    let mut engine = Engine::new(store, EngineConfig::default());
    let transport = TcpTransport::new(
        addr.to_owned(),
        TcpTimeouts {
            connect: Duration::from_secs(2),
            write: Duration::from_secs(2),
        },
    );
    let mut printer = EscPosPrinter::new(transport);
    let layout = Layout {
        width: PaperWidth::Mm58,
        code_page: CodePage::Cp437,
        kick_drawer: None,
        cut: true,
        logo: None,
        barcode: false,
    };
    loop {
        match engine.print_next(&mut printer, &layout)? {
            PrintProgress::Idle => return Ok(()),
            PrintProgress::Printed { receipt, copy } => println!("PRINTED {receipt} {copy}"),
            PrintProgress::Waiting { problem, .. } => return Err(problem.into()),
        }
    }
}
