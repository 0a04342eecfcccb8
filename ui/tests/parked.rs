//! The parked-tickets screen through the real engine: the open ticket parked, listed with its
//! lines and total, resumed onto the sale screen with its lines back.

#![allow(clippy::unwrap_used)]

mod support;

use pos_engine::EngineError;
use pos_ui::{ParkedPage, Screen, Terminal};
use slint::{ComponentHandle, Model};
use support::*;

fn open_parked(t: &Terminal) {
    t.window().invoke_open_screen("parked".into());
    assert_eq!(t.screen(), Some(Screen::Parked));
    assert_eq!(t.window().get_screen(), "parked");
}

fn names(t: &Terminal) -> Vec<String> {
    t.with_engine(|e| {
        e.ticket()
            .map(|t| t.lines().iter().map(|l| l.name.clone()).collect())
            .unwrap_or_default()
    })
    .unwrap()
}

#[test]
fn park_list_and_resume_brings_the_lines_back() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<ParkedPage<'_>>();
    log_in(t, CASHIER);
    for code in [COLA_EAN, WATER_EAN8, BANANA_PLU] {
        assert!(t.scan(code), "{}", w.get_error_text());
    }
    let lines = names(t);
    let due = t.with_engine(|e| e.balance().unwrap().due).unwrap();

    open_parked(t);
    assert_eq!(g.get_tickets().row_count(), 0, "nothing parked yet");
    assert_eq!(g.get_open_lines(), 3);
    assert_eq!(g.get_open_total(), eur(due));

    g.invoke_park();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(t.with_engine(|e| e.ticket().is_none()).unwrap());
    let parked = t.with_engine(|e| e.parked().unwrap()).unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(g.get_tickets().row_count(), 1);
    let row = g.get_tickets().row_data(0).unwrap();
    assert_eq!(row.id, parked[0].id().to_string());
    assert_eq!(row.lines, 3);
    assert_eq!(row.total, eur(due));
    assert_eq!(row.items, lines.join(", "));
    assert!(!row.time.is_empty());
    assert_eq!(g.get_open_lines(), 0);
    assert_eq!(
        t.with_engine(|e| events(e.store(), "sale.ticket_parked").len()),
        Some(1)
    );

    // Serve someone else meanwhile: a scan goes to a new ticket on the sale screen.
    assert!(t.scan(CAKE_PLU));
    assert_eq!(t.screen(), Some(Screen::Sale));
    assert_eq!(w.get_lines().row_count(), 1);
    w.invoke_pay_clicked();
    w.invoke_tender_cash();
    w.invoke_complete_sale();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());

    open_parked(t);
    g.invoke_resume(row.id.clone());
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert_eq!(t.screen(), Some(Screen::Sale));
    assert_eq!(names(t), lines);
    let shown: Vec<String> = w.get_lines().iter().map(|l| l.name.to_string()).collect();
    assert_eq!(shown, lines);
    assert_eq!(t.with_engine(|e| e.balance().unwrap().due), Some(due));
    assert!(t.with_engine(|e| e.parked().unwrap().is_empty()).unwrap());
    open_parked(t);
    assert_eq!(g.get_tickets().row_count(), 0);
}

#[test]
fn resume_over_an_open_ticket_is_the_engines_refusal() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<ParkedPage<'_>>();
    log_in(t, CASHIER);
    assert!(t.scan(COLA_EAN));
    open_parked(t);
    g.invoke_park();
    let id = g.get_tickets().row_data(0).unwrap().id;

    assert!(t.scan(WATER_EAN8));
    open_parked(t);
    g.invoke_resume(id);
    assert!(w.get_error_visible());
    assert_eq!(w.get_error_text(), t.refusal_text(&EngineError::TicketOpen));
    assert_eq!(t.screen(), Some(Screen::Parked));
    assert_eq!(names(t), ["Water 1l"]);
    assert_eq!(g.get_tickets().row_count(), 1);

    // A garbled id changes nothing.
    w.invoke_dismiss_error();
    g.invoke_resume("not-a-ticket".into());
    assert!(!w.get_error_visible());
    assert_eq!(names(t), ["Water 1l"]);
}

#[test]
fn nothing_to_park_is_the_engines_refusal() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<ParkedPage<'_>>();
    log_in(t, CASHIER);
    open_parked(t);
    assert_eq!(g.get_open_lines(), 0);
    g.invoke_park();
    assert!(w.get_error_visible());
    assert_eq!(w.get_error_text(), t.refusal_text(&EngineError::NoTicket));
    g.invoke_back_to_sale();
    assert_eq!(t.screen(), Some(Screen::Sale));
}

#[test]
fn the_parked_screen_draws_at_every_screen_size() {
    for size in pos_ui::backend::ScreenSize::SUPPORTED {
        let rig = sized_rig(size);
        let t = &rig.terminal;
        let w = t.window();
        let g = w.global::<ParkedPage<'_>>();
        t.set_clock(Some("09:41"));
        log_in(t, CASHIER);
        open_parked(t);
        let mut frames = vec![draw("parked-empty", size)];
        for codes in [
            &[COLA_EAN, WATER_EAN8][..],
            &[CAKE_PLU],
            &[BANANA_PLU, COLA_EAN],
        ] {
            for code in codes {
                assert!(t.scan(code));
            }
            open_parked(t);
            g.invoke_park();
        }
        assert!(t.scan(WATER_EAN8));
        open_parked(t);
        assert_eq!(g.get_tickets().row_count(), 3);
        frames.push(draw("parked", size));
        for (i, frame) in frames.iter().enumerate() {
            assert!(
                frame.chunks(3).any(|p| p != &frame[..3]),
                "frame {i} at {size} is flat"
            );
        }
        assert_ne!(frames[0], frames[1]);
    }
}
