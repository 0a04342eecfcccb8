//! The parked-tickets screen: the tickets put aside on this terminal (the engine's list), one
//! resumed onto the sale screen, or the open ticket parked to serve someone else.

use super::msg::Msg;
use pos_core::sale::Ticket;
use pos_core::{Hlc, TicketId};
use slint::{ComponentHandle, ModelRc, VecModel};

use super::{Screen, State, Terminal};
use crate::{AppWindow, ParkedPage, ParkedRow};

impl State {
    fn park_ticket(&mut self) {
        match self.engine_mut().park() {
            Ok(_) => {
                self.balance = None;
                self.amount.clear();
                self.hint = Msg::new("parked-done");
            }
            Err(e) => self.fail(e),
        }
    }

    fn resume_ticket(&mut self, id: &str) {
        let Ok(id) = id.parse::<TicketId>() else {
            return;
        };
        match self.engine_mut().resume(id) {
            Ok(()) => {
                self.balance = None;
                self.amount.clear();
                self.screen = Screen::Sale;
                self.hint = Msg::new("resumed");
            }
            Err(e) => self.fail(e),
        }
    }

    /// When the ticket was started (its id is a UUIDv7), in the receipts' time format.
    fn ticket_time(&self, t: &Ticket) -> String {
        let Some(ts) = t.id().as_uuid().get_timestamp() else {
            return String::new();
        };
        let (secs, nanos) = ts.to_unix();
        let ms = secs
            .saturating_mul(1000)
            .saturating_add(u64::from(nanos / 1_000_000));
        (self.engine().config().time_format)(Hlc::from_parts(ms, 0))
    }

    fn parked_row(&self, t: &Ticket) -> ParkedRow {
        let live: Vec<&str> = t
            .lines()
            .iter()
            .filter(|l| !l.voided)
            .map(|l| l.name.as_str())
            .collect();
        let total = t
            .totals()
            .map_or_else(|e| e.to_string(), |x| self.big_money(x.due));
        ParkedRow {
            id: t.id().to_string().into(),
            time: self.ticket_time(t).into(),
            lines: i32::try_from(live.len()).unwrap_or(i32::MAX),
            items: live.join(", ").into(),
            total: total.into(),
        }
    }
}

pub(super) fn bind_parked(t: &Terminal) {
    let g = t.window.global::<ParkedPage<'_>>();
    g.on_park(t.on(State::park_ticket));
    g.on_resume(t.on_text(State::resume_ticket));
    g.on_back_to_sale(t.on(|s| s.screen = Screen::Sale));
}

pub(super) fn show_parked(s: &State, w: &AppWindow) {
    if s.screen != Screen::Parked {
        return;
    }
    let g = w.global::<ParkedPage<'_>>();
    let rows: Vec<ParkedRow> = match s.engine().parked() {
        Ok(tickets) => tickets.iter().map(|t| s.parked_row(t)).collect(),
        Err(e) => {
            tracing::warn!("parked tickets: {e}");
            Vec::new()
        }
    };
    g.set_tickets(ModelRc::new(VecModel::from(rows)));
    let open = s.engine().ticket().filter(|t| !t.is_empty());
    let lines = open.map_or(0, |t| t.lines().iter().filter(|l| !l.voided).count());
    g.set_open_lines(i32::try_from(lines).unwrap_or(i32::MAX));
    let total = open.and_then(|t| t.totals().ok()).map(|x| x.due);
    g.set_open_total(total.map_or_else(String::new, |m| s.big_money(m)).into());
}
