//! The report definitions: which Store queries and which events make each report.
//!
//! Aggregated reports (key figures, tenders, tax, products, cashiers) read the analytics tables
//! (`Store::kpis`, `tender_totals`, ...), which share the Z report's definitions, so a period of
//! whole shifts gives the same totals as their Z reports. The Z, journal, audit and security
//! reports list records of the event log in the period (`shift.closed`, `sale.*`, `shift.*`,
//! `security.*`), with the envelope's actor, approver and reason.

use std::collections::{BTreeMap, HashMap};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use pos_audit::Event;
use pos_core::sale::events as sev;
use pos_core::sale::{Currency, Money};
use pos_core::{DeviceId, Hlc, UserId};
use pos_store::reports::{HourRow, Kpis, Period, DAY_MS};
use pos_store::{LogFilter, Store};

use crate::document::{Cell, Chart, Document, Section, Table};
use crate::{ExportError, ReportKind};

/// What a report covers and how it writes times and money.
#[derive(Debug, Clone)]
pub struct Scope {
    pub period: Period,
    /// Local time of the shop: times are written in it and days are its days.
    pub tz: TimeZone,
    pub currency: Currency,
    /// When the report is made (Unix ms): the X report's "now".
    pub now_ms: u64,
}

/// The currency `code` with its ISO 4217 minor digits (2 unless listed).
pub fn currency(code: &str) -> Currency {
    let minor_digits = match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    };
    Currency {
        code: code.to_owned(),
        minor_digits,
    }
}

impl Scope {
    /// `ms` in local time, to the minute.
    pub fn local(&self, ms: u64) -> String {
        self.local_fmt(ms, "%Y-%m-%d %H:%M")
    }

    /// `ms` in local time, to the second (records of the log).
    pub fn local_secs(&self, ms: u64) -> String {
        self.local_fmt(ms, "%Y-%m-%d %H:%M:%S")
    }

    fn local_fmt(&self, ms: u64, fmt: &str) -> String {
        match i64::try_from(ms)
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        {
            Some(ts) => ts
                .to_zoned_datetime(self.tz.clone())
                .strftime(fmt)
                .to_string(),
            None => "(end of time)".to_owned(),
        }
    }

    /// Minutes east of UTC at the start of the period (for local days).
    pub fn utc_offset_min(&self) -> i32 {
        let at = i64::try_from(self.period.from_ms)
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        (self.tz.to_offset(at).seconds() / 60).clamp(-1080, 1080)
    }

    /// The period as the report states it (local time, end excluded).
    pub fn period_text(&self) -> String {
        let p = self.period;
        if p == Period::all() {
            return "everything recorded".to_owned();
        }
        let zone = self.local_fmt(p.from_ms, "%:z");
        format!(
            "{} to {} (local time, UTC{zone}; end excluded)",
            self.local(p.from_ms),
            self.local(p.to_ms)
        )
    }

    fn contains(&self, hlc: Hlc) -> bool {
        let ms = hlc.wall_ms();
        ms >= self.period.from_ms && ms < self.period.to_ms
    }
}

/// Names of the people and devices a report mentions.
struct Names {
    users: HashMap<UserId, String>,
    devices: HashMap<DeviceId, String>,
}

impl Names {
    fn load(store: &Store) -> Result<Names, ExportError> {
        Ok(Names {
            users: store
                .users()?
                .into_iter()
                .map(|u| (u.user, u.name))
                .collect(),
            devices: store.device_names()?.into_iter().collect(),
        })
    }

    fn user(&self, id: Option<UserId>) -> String {
        match id {
            None => String::new(),
            Some(id) => self
                .users
                .get(&id)
                .cloned()
                .unwrap_or_else(|| id.to_string()),
        }
    }

    fn device(&self, id: DeviceId) -> String {
        self.devices
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

/// Read report `kind` for `scope` from `store`.
pub fn build(store: &Store, kind: ReportKind, scope: &Scope) -> Result<Document, ExportError> {
    let names = Names::load(store)?;
    let identity = store.identity();
    let period = if kind == ReportKind::X {
        format!("open shifts at {}", scope.local(scope.now_ms))
    } else {
        scope.period_text()
    };
    let meta = vec![
        ("period".to_owned(), period),
        (
            "device".to_owned(),
            format!(
                "{} ({}, {})",
                identity.name,
                identity.role.as_str(),
                identity.id
            ),
        ),
        ("branch".to_owned(), identity.branch.clone()),
        ("currency".to_owned(), scope.currency.code.clone()),
        (
            "generated".to_owned(),
            scope.local_fmt(scope.now_ms, "%Y-%m-%d %H:%M:%S %:z"),
        ),
    ];
    let sections = match kind {
        ReportKind::X => x_report(store, scope, &names)?,
        ReportKind::Z => z_reports(store, scope, &names)?,
        ReportKind::Journal => journal(store, scope, &names)?,
        ReportKind::Tenders => tenders(store, scope)?,
        ReportKind::Kpis => key_figures(store, scope)?,
        ReportKind::Products => products(store, scope)?,
        ReportKind::Cashiers => cashiers(store, scope)?,
        ReportKind::Tax => tax(store, scope)?,
        ReportKind::Audit => audit(store, scope, &names)?,
        ReportKind::Security => security(store, scope, &names)?,
    };
    Ok(Document {
        name: kind.name().to_owned(),
        title: kind.title().to_owned(),
        meta,
        currency: scope.currency.clone(),
        sections,
    })
}

const NO_SALES: &str = "No sales in this period.";

/// Events of `kinds` (`module.kind`) in the period, oldest first.
fn events_in(store: &Store, scope: &Scope, kinds: &[&str]) -> Result<Vec<Event>, ExportError> {
    let mut out = Vec::new();
    for kind in kinds {
        let filter = LogFilter {
            kind: Some((*kind).to_owned()),
            since: Some(Hlc::from_parts(scope.period.from_ms, 0)),
            limit: None,
        };
        out.extend(
            store
                .events(&filter)?
                .into_iter()
                .filter(|e| scope.contains(e.hlc)),
        );
    }
    out.sort_by_key(|e| (e.hlc, e.origin, e.seq));
    Ok(out)
}

fn payload<T: serde::de::DeserializeOwned>(e: &Event) -> Option<T> {
    serde_json::from_slice(&e.payload).ok()
}

fn money_sum<'a>(values: impl IntoIterator<Item = &'a Money>) -> i64 {
    values.into_iter().map(|m| m.0).sum()
}

fn x_report(store: &Store, scope: &Scope, names: &Names) -> Result<Vec<Section>, ExportError> {
    let mut table = Table::new(&[
        "Terminal",
        "Opened",
        "Sales",
        "Net",
        "Discounts",
        "Refunds",
        "Post-voids",
        "Line voids",
        "No-sales",
        "Cash expected",
    ]);
    let mut tenders: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (device, name) in store.device_names()? {
        let Some(shift) = store.open_shift(device)? else {
            continue;
        };
        let r = store.shift_report(shift.id)?;
        for (k, v) in &r.tenders {
            let t = tenders.entry(k.clone()).or_default();
            t.0 += v.count as i64;
            t.1 += v.value.0;
        }
        let expected = r.drawer.expected().map(|m| m.0).unwrap_or(0);
        table.row(vec![
            Cell::Text(name),
            Cell::Text(format!(
                "{} by {}",
                scope.local(shift.opened.wall_ms()),
                names.user(shift.cashier)
            )),
            Cell::Int(r.sales_count as i64),
            Cell::Money(r.net.0),
            Cell::Money(r.discounts.0),
            Cell::Money(r.refunds.value.0),
            Cell::Money(r.post_voids.value.0),
            Cell::Int(r.voids.count as i64),
            Cell::Int(r.no_sales as i64),
            Cell::Money(expected),
        ]);
    }
    let mut section = Section::new("Open shifts");
    if table.rows.is_empty() {
        section = section.note("No shift is open.");
    }
    let mut t2 = Table::new(&["Tender", "Count", "Amount"]);
    for (k, (n, v)) in &tenders {
        t2.row(vec![Cell::text(k), Cell::Int(*n), Cell::Money(*v)]);
    }
    t2.total = Some(vec![
        Cell::text("Total"),
        Cell::Int(tenders.values().map(|t| t.0).sum()),
        Cell::Money(tenders.values().map(|t| t.1).sum()),
    ]);
    Ok(vec![
        section.table(table),
        Section::new("Tenders of the open shifts").table(t2),
    ])
}

fn z_reports(store: &Store, scope: &Scope, names: &Names) -> Result<Vec<Section>, ExportError> {
    let closes = events_in(store, scope, &["shift.closed"])?;
    let mut table = Table::new(&[
        "Z",
        "Terminal",
        "Closed",
        "Sales",
        "Gross",
        "Net",
        "Discounts",
        "Refunds",
        "Post-voids",
        "Line voids",
        "No-sales",
        "Counted",
        "Expected",
        "Over/short",
    ]);
    let mut tenders: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut taxes: BTreeMap<(String, u32), (String, i64, i64, i64)> = BTreeMap::new();
    let mut sums = [0i64; 11];
    for e in &closes {
        let Some(z) = payload::<sev::ShiftClosed>(e) else {
            continue;
        };
        let r = &z.report;
        for (k, v) in &r.tenders {
            let t = tenders.entry(k.clone()).or_default();
            t.0 += v.count as i64;
            t.1 += v.value.0;
        }
        for t in &r.taxes {
            let s = taxes
                .entry((t.class.clone(), t.rate_bp))
                .or_insert_with(|| (t.name.clone(), 0, 0, 0));
            s.1 += t.net.0;
            s.2 += t.tax.0;
            s.3 += t.gross.0;
        }
        let values = [
            r.sales_count as i64,
            r.gross.0,
            r.net.0,
            r.discounts.0,
            r.refunds.value.0,
            r.post_voids.value.0,
            r.voids.count as i64,
            r.no_sales as i64,
            z.counted.0,
            z.expected.0,
            z.over_short.0,
        ];
        for (s, v) in sums.iter_mut().zip(values) {
            *s += v;
        }
        let mut row = vec![
            Cell::Int(z.z_number as i64),
            Cell::Text(names.device(e.origin)),
            Cell::Text(scope.local_secs(e.hlc.wall_ms())),
        ];
        row.extend(values.iter().enumerate().map(|(i, v)| match i {
            0 | 6 | 7 => Cell::Int(*v),
            _ => Cell::Money(*v),
        }));
        table.row(row);
    }
    let mut total = vec![
        Cell::text("Total"),
        Cell::Text(format!("{} shifts", closes.len())),
        Cell::Empty,
    ];
    total.extend(sums.iter().enumerate().map(|(i, v)| match i {
        0 | 6 | 7 => Cell::Int(*v),
        _ => Cell::Money(*v),
    }));
    table.total = Some(total);
    let mut first = Section::new("Shifts closed");
    if closes.is_empty() {
        first = first.note("No shift was closed in this period.");
    }
    let mut t = Table::new(&["Tender", "Count", "Amount"]);
    for (k, (n, v)) in &tenders {
        t.row(vec![Cell::text(k), Cell::Int(*n), Cell::Money(*v)]);
    }
    t.total = Some(vec![
        Cell::text("Total"),
        Cell::Int(tenders.values().map(|t| t.0).sum()),
        Cell::Money(tenders.values().map(|t| t.1).sum()),
    ]);
    let mut tx = Table::new(&["Class", "Name", "Rate", "Net", "Tax", "Gross"]);
    for ((class, rate), (name, net, tax, gross)) in &taxes {
        tx.row(vec![
            Cell::text(class),
            Cell::text(name),
            Cell::Percent(i64::from(*rate)),
            Cell::Money(*net),
            Cell::Money(*tax),
            Cell::Money(*gross),
        ]);
    }
    tx.total = Some(vec![
        Cell::text("Total"),
        Cell::Empty,
        Cell::Empty,
        Cell::Money(taxes.values().map(|t| t.1).sum()),
        Cell::Money(taxes.values().map(|t| t.2).sum()),
        Cell::Money(taxes.values().map(|t| t.3).sum()),
    ]);
    Ok(vec![
        first.table(table),
        Section::new("Tenders of these shifts").table(t),
        Section::new("Taxes of these shifts").table(tx),
    ])
}

fn journal(store: &Store, scope: &Scope, names: &Names) -> Result<Vec<Section>, ExportError> {
    let events = events_in(
        store,
        scope,
        &["sale.completed", "sale.refunded", "sale.post_voided"],
    )?;
    let mut table = Table::new(&[
        "Time", "Terminal", "Type", "Number", "Cashier", "Approver", "Reason", "Lines", "Tenders",
        "Amount",
    ]);
    let (mut sales, mut amount) = (0i64, 0i64);
    for e in &events {
        let (kind, number, lines, tenders, value) = match e.kind.as_str() {
            sev::SaleCompleted::KIND => {
                let Some(s) = payload::<sev::SaleCompleted>(e) else {
                    continue;
                };
                sales += 1;
                let mut keys: Vec<&str> = s.sale.payments.iter().map(|p| p.tender.key()).collect();
                keys.dedup();
                (
                    "sale",
                    s.receipt.to_string(),
                    s.sale.lines.len() as i64,
                    keys.join(" + "),
                    s.sale.totals.due.0,
                )
            }
            sev::Refunded::KIND => {
                let Some(r) = payload::<sev::Refunded>(e) else {
                    continue;
                };
                let number = match r.original {
                    Some(o) => format!("R{} (of {o})", r.refund),
                    None => format!("R{} (no receipt)", r.refund),
                };
                (
                    "refund",
                    number,
                    r.plan.lines.len() as i64,
                    r.tender.key().to_owned(),
                    -r.plan.total.0,
                )
            }
            _ => {
                let Some(v) = payload::<sev::PostVoided>(e) else {
                    continue;
                };
                (
                    "post-void",
                    v.receipt.to_string(),
                    0,
                    String::new(),
                    -v.total.0,
                )
            }
        };
        amount += value;
        table.row(vec![
            Cell::Text(scope.local_secs(e.hlc.wall_ms())),
            Cell::Text(names.device(e.origin)),
            Cell::text(kind),
            Cell::Text(number),
            Cell::Text(names.user(e.actor)),
            Cell::Text(names.user(e.approver)),
            Cell::Text(e.reason.clone().unwrap_or_default()),
            Cell::Int(lines),
            Cell::Text(tenders),
            Cell::Money(value),
        ]);
    }
    table.total = Some(vec![
        Cell::text("Total"),
        Cell::Empty,
        Cell::Text(format!("{sales} sales")),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Money(amount),
    ]);
    let mut s = Section::new("Sales, refunds and post-voids");
    if sales == 0 {
        s = s.note(NO_SALES);
    }
    Ok(vec![s
        .note("Amount: what the sale was due; refunds and post-voids negative. Total = net sales.")
        .table(table)])
}

fn tenders(store: &Store, scope: &Scope) -> Result<Vec<Section>, ExportError> {
    let rows = store.tender_totals(scope.period)?;
    let mut t = Table::new(&["Tender", "Count", "Amount"]);
    for r in &rows {
        t.row(vec![
            Cell::text(&r.tender),
            Cell::Int(r.count),
            Cell::Money(r.amount.0),
        ]);
    }
    t.total = Some(vec![
        Cell::text("Total"),
        Cell::Int(rows.iter().map(|r| r.count).sum()),
        Cell::Money(money_sum(rows.iter().map(|r| &r.amount))),
    ]);
    let mut s = Section::new("Payments by tender")
        .note("Net of change given, refunds paid out and post-voided receipts.");
    if rows.is_empty() {
        s = s.note(NO_SALES);
    }
    Ok(vec![s.table(t)])
}

fn kpi_table(k: &Kpis) -> Table {
    let mut t = Table::new(&["Figure", "Value"]);
    let rows: [(&str, Cell); 24] = [
        ("Sales (receipts)", Cell::Int(k.sales_count)),
        ("Transactions", Cell::Int(k.transactions)),
        ("Gross sales", Cell::Money(k.gross_sales.0)),
        ("Net sales", Cell::Money(k.net_sales.0)),
        ("Average basket", Cell::Money(k.average_basket.0)),
        ("Items per basket", Cell::Qty(k.items_per_basket_milli)),
        ("Discounts", Cell::Money(k.discounts.0)),
        ("Cash rounding", Cell::Money(k.rounding.0)),
        ("Refunds (count)", Cell::Int(k.refunds)),
        ("Refunds (value)", Cell::Money(k.refund_value.0)),
        ("Refund rate", Cell::Percent(k.refund_rate_bp)),
        ("Post-voids (count)", Cell::Int(k.post_voids)),
        ("Post-voids (value)", Cell::Money(k.post_void_value.0)),
        ("Line voids (count)", Cell::Int(k.line_voids)),
        ("Line voids (value)", Cell::Money(k.line_void_value.0)),
        ("Void rate", Cell::Percent(k.void_rate_bp)),
        ("Net sales without tax", Cell::Money(k.net_ex_tax.0)),
        ("Cost of goods", Cell::Money(k.cost_of_goods.0)),
        ("Gross margin", Cell::Money(k.gross_margin.0)),
        ("Margin", Cell::Percent(k.margin_bp)),
        ("Sales of uncosted products", Cell::Money(k.uncosted_net.0)),
        ("No-sales", Cell::Int(k.no_sales)),
        ("Shift closes", Cell::Int(k.closes)),
        (
            "Cash over (+) / short (-)",
            Cell::Money(k.cash_over_short.0),
        ),
    ];
    for (name, value) in rows {
        t.row(vec![Cell::text(name), value]);
    }
    t
}

fn key_figures(store: &Store, scope: &Scope) -> Result<Vec<Section>, ExportError> {
    let p = scope.period;
    let k = store.kpis(p)?;
    let mut first = Section::new("Key figures");
    if k.sales_count == 0 {
        first = first.note(NO_SALES);
    }
    let mut sections = vec![first.table(kpi_table(&k))];

    // Hours for up to two days, local days beyond.
    let short = p.to_ms.saturating_sub(p.from_ms) <= 2 * DAY_MS;
    let (title, bars, rows) = if short {
        let hours = HourRow::fill(&store.sales_by_hour(p)?, p.from_ms, p.to_ms);
        let mut t = Table::new(&["Hour", "Transactions", "Items", "Net sales"]);
        let mut bars = Vec::new();
        for h in &hours {
            bars.push((scope.local_fmt(h.hour_start_ms, "%H"), h.net_sales.0));
            if h.transactions != 0 || h.net_sales.0 != 0 {
                t.row(vec![
                    Cell::Text(scope.local(h.hour_start_ms)),
                    Cell::Int(h.transactions),
                    Cell::Qty(h.items_milli),
                    Cell::Money(h.net_sales.0),
                ]);
            }
        }
        t.total = Some(vec![
            Cell::text("Total"),
            Cell::Int(hours.iter().map(|h| h.transactions).sum()),
            Cell::Qty(hours.iter().map(|h| h.items_milli).sum()),
            Cell::Money(money_sum(hours.iter().map(|h| &h.net_sales))),
        ]);
        ("Net sales per hour", bars, t)
    } else {
        let days = store.sales_by_day(p, scope.utc_offset_min())?;
        let mut t = Table::new(&["Day", "Transactions", "Average basket", "Net sales"]);
        let mut bars = Vec::new();
        for d in &days {
            // The local day's date: noon of the day avoids any DST edge.
            let date = scope.local_fmt(d.day_start_ms + DAY_MS / 2, "%Y-%m-%d");
            bars.push((
                scope.local_fmt(d.day_start_ms + DAY_MS / 2, "%m-%d"),
                d.kpis.net_sales.0,
            ));
            t.row(vec![
                Cell::Text(date),
                Cell::Int(d.kpis.transactions),
                Cell::Money(d.kpis.average_basket.0),
                Cell::Money(d.kpis.net_sales.0),
            ]);
        }
        t.total = Some(vec![
            Cell::text("Total"),
            Cell::Int(days.iter().map(|d| d.kpis.transactions).sum()),
            Cell::Money(k.average_basket.0),
            Cell::Money(days.iter().map(|d| d.kpis.net_sales.0).sum()),
        ]);
        ("Net sales per day", bars, t)
    };
    let mut s = Section::new(title);
    s.chart = Some(Chart {
        title: format!("{title} ({})", scope.currency.code),
        bars,
        money: true,
    });
    sections.push(s.table(rows));

    let terminals = store.terminal_performance(p)?;
    let mut t = Table::new(&[
        "Terminal",
        "Transactions",
        "Net sales",
        "Average basket",
        "Refunds",
        "Post-voids",
        "Over/short",
    ]);
    for r in &terminals {
        t.row(vec![
            Cell::text(&r.name),
            Cell::Int(r.kpis.transactions),
            Cell::Money(r.kpis.net_sales.0),
            Cell::Money(r.kpis.average_basket.0),
            Cell::Money(r.kpis.refund_value.0),
            Cell::Money(r.kpis.post_void_value.0),
            Cell::Money(r.kpis.cash_over_short.0),
        ]);
    }
    t.total = Some(vec![
        Cell::text("Total"),
        Cell::Int(terminals.iter().map(|r| r.kpis.transactions).sum()),
        Cell::Money(terminals.iter().map(|r| r.kpis.net_sales.0).sum()),
        Cell::Money(k.average_basket.0),
        Cell::Money(terminals.iter().map(|r| r.kpis.refund_value.0).sum()),
        Cell::Money(terminals.iter().map(|r| r.kpis.post_void_value.0).sum()),
        Cell::Money(terminals.iter().map(|r| r.kpis.cash_over_short.0).sum()),
    ]);
    sections.push(Section::new("By terminal").table(t));
    Ok(sections)
}

fn products(store: &Store, scope: &Scope) -> Result<Vec<Section>, ExportError> {
    let rows = store.product_performance(scope.period)?;
    let mut t = Table::new(&[
        "SKU",
        "Name",
        "Category",
        "Sold",
        "Refunded",
        "Net sales",
        "Net without tax",
        "Cost",
        "Margin",
    ]);
    let opt = |m: Option<Money>| m.map_or(Cell::Empty, |m| Cell::Money(m.0));
    for r in &rows {
        t.row(vec![
            Cell::text(&r.sku),
            Cell::text(&r.name),
            Cell::Text(r.category.clone().unwrap_or_default()),
            Cell::Qty(r.qty_milli),
            Cell::Qty(r.refund_qty_milli),
            Cell::Money(r.net_sales.0),
            Cell::Money(r.net_ex_tax.0),
            opt(r.cost),
            opt(r.margin),
        ]);
    }
    t.total = Some(vec![
        Cell::text("Total"),
        Cell::Text(format!("{} products", rows.len())),
        Cell::Empty,
        Cell::Qty(rows.iter().map(|r| r.qty_milli).sum()),
        Cell::Qty(rows.iter().map(|r| r.refund_qty_milli).sum()),
        Cell::Money(money_sum(rows.iter().map(|r| &r.net_sales))),
        Cell::Money(money_sum(rows.iter().map(|r| &r.net_ex_tax))),
        Cell::Money(rows.iter().filter_map(|r| r.cost).map(|m| m.0).sum()),
        Cell::Money(rows.iter().filter_map(|r| r.margin).map(|m| m.0).sum()),
    ]);
    let mut first = Section::new("Products")
        .note("Cost and category from the current catalogue; margin = net without tax - cost.");
    if rows.is_empty() {
        first = first.note(NO_SALES);
    }
    let cats = store.category_sales(scope.period)?;
    let mut c = Table::new(&[
        "Category",
        "Sold",
        "Net sales",
        "Net without tax",
        "Cost",
        "Margin",
    ]);
    for r in &cats {
        c.row(vec![
            Cell::Text(r.category.clone().unwrap_or_else(|| "(none)".to_owned())),
            Cell::Qty(r.qty_milli),
            Cell::Money(r.net_sales.0),
            Cell::Money(r.net_ex_tax.0),
            Cell::Money(r.cost.0),
            Cell::Money(r.margin.0),
        ]);
    }
    c.total = Some(vec![
        Cell::text("Total"),
        Cell::Qty(cats.iter().map(|r| r.qty_milli).sum()),
        Cell::Money(money_sum(cats.iter().map(|r| &r.net_sales))),
        Cell::Money(money_sum(cats.iter().map(|r| &r.net_ex_tax))),
        Cell::Money(money_sum(cats.iter().map(|r| &r.cost))),
        Cell::Money(money_sum(cats.iter().map(|r| &r.margin))),
    ]);
    Ok(vec![first.table(t), Section::new("Categories").table(c)])
}

fn cashiers(store: &Store, scope: &Scope) -> Result<Vec<Section>, ExportError> {
    let rows = store.cashier_performance(scope.period)?;
    let mut t = Table::new(&[
        "Cashier",
        "Sales",
        "Net sales",
        "Average basket",
        "Line voids",
        "Void value",
        "Post-voids",
        "Refunds",
        "Refund value",
        "Void rate",
        "Refund rate",
        "Discounts",
        "Over/short",
    ]);
    for r in &rows {
        t.row(vec![
            Cell::text(&r.name),
            Cell::Int(r.sales),
            Cell::Money(r.net_sales.0),
            Cell::Money(r.average_basket.0),
            Cell::Int(r.line_voids),
            Cell::Money(r.line_void_value.0 + r.post_void_value.0),
            Cell::Int(r.post_voids),
            Cell::Int(r.refunds),
            Cell::Money(r.refund_value.0),
            Cell::Percent(r.void_rate_bp),
            Cell::Percent(r.refund_rate_bp),
            Cell::Money(r.discounts.0),
            Cell::Money(r.cash_over_short.0),
        ]);
    }
    t.total = Some(vec![
        Cell::text("Total"),
        Cell::Int(rows.iter().map(|r| r.sales).sum()),
        Cell::Money(money_sum(rows.iter().map(|r| &r.net_sales))),
        Cell::Empty,
        Cell::Int(rows.iter().map(|r| r.line_voids).sum()),
        Cell::Money(
            rows.iter()
                .map(|r| r.line_void_value.0 + r.post_void_value.0)
                .sum(),
        ),
        Cell::Int(rows.iter().map(|r| r.post_voids).sum()),
        Cell::Int(rows.iter().map(|r| r.refunds).sum()),
        Cell::Money(money_sum(rows.iter().map(|r| &r.refund_value))),
        Cell::Empty,
        Cell::Empty,
        Cell::Money(money_sum(rows.iter().map(|r| &r.discounts))),
        Cell::Money(money_sum(rows.iter().map(|r| &r.cash_over_short))),
    ]);
    let mut s = Section::new("Cashiers")
        .note("Refunds and voids count for the person they happened with (as on the Z report).");
    if rows.is_empty() {
        s = s.note(NO_SALES);
    }
    Ok(vec![s.table(t)])
}

fn tax(store: &Store, scope: &Scope) -> Result<Vec<Section>, ExportError> {
    let rows = store.tax_by_rate(scope.period)?;
    let mut t = Table::new(&["Class", "Name", "Rate", "Net", "Tax", "Gross"]);
    for r in &rows {
        t.row(vec![
            Cell::text(&r.class),
            Cell::text(&r.name),
            Cell::Percent(i64::from(r.rate_bp)),
            Cell::Money(r.net.0),
            Cell::Money(r.tax.0),
            Cell::Money(r.gross.0),
        ]);
    }
    t.total = Some(vec![
        Cell::text("Total"),
        Cell::Empty,
        Cell::Empty,
        Cell::Money(money_sum(rows.iter().map(|r| &r.net))),
        Cell::Money(money_sum(rows.iter().map(|r| &r.tax))),
        Cell::Money(money_sum(rows.iter().map(|r| &r.gross))),
    ]);
    let mut s = Section::new("Tax per rate")
        .note("Sales less refunds and post-voids, per tax class and rate.");
    if rows.is_empty() {
        s = s.note(NO_SALES);
    }
    Ok(vec![s.table(t)])
}

fn audit(store: &Store, scope: &Scope, names: &Names) -> Result<Vec<Section>, ExportError> {
    let events = events_in(
        store,
        scope,
        &[
            "sale.line_voided",
            "sale.post_voided",
            "sale.refunded",
            "sale.discount_given",
            "sale.price_overridden",
            "shift.no_sale",
            "shift.cash_moved",
        ],
    )?;
    let mut t = Table::new(&[
        "Time",
        "Terminal",
        "Action",
        "Detail",
        "Requester",
        "Approver",
        "Reason",
        "Amount",
    ]);
    let mut counts: BTreeMap<&'static str, (i64, i64)> = BTreeMap::new();
    for e in &events {
        let (action, detail, amount): (&'static str, String, Option<i64>) = match e.kind.as_str() {
            sev::LineVoided::KIND => match payload::<sev::LineVoided>(e) {
                Some(v) => (
                    "line void",
                    format!("{} x {} ({})", v.quantity, v.name, v.sku),
                    Some(v.amount.0),
                ),
                None => ("line void", String::new(), None),
            },
            sev::PostVoided::KIND => match payload::<sev::PostVoided>(e) {
                Some(v) => (
                    "post-void",
                    format!("receipt {}", v.receipt),
                    Some(v.total.0),
                ),
                None => ("post-void", String::new(), None),
            },
            sev::Refunded::KIND => match payload::<sev::Refunded>(e) {
                Some(r) => (
                    "refund",
                    match r.original {
                        Some(o) => {
                            format!("refund {} of receipt {o}, {}", r.refund, r.tender.key())
                        }
                        None => format!("refund {} without receipt, {}", r.refund, r.tender.key()),
                    },
                    Some(r.plan.total.0),
                ),
                None => ("refund", String::new(), None),
            },
            sev::DiscountGiven::KIND => match payload::<sev::DiscountGiven>(e) {
                Some(d) => (
                    "discount",
                    match d.line {
                        Some(l) => format!("line {l}"),
                        None => "whole ticket".to_owned(),
                    },
                    Some(d.amount.0),
                ),
                None => ("discount", String::new(), None),
            },
            sev::PriceOverridden::KIND => match payload::<sev::PriceOverridden>(e) {
                Some(p) => (
                    "price override",
                    format!(
                        "{} line {}: {} -> {}",
                        p.sku,
                        p.line,
                        p.before.format(&scope.currency),
                        p.after.format(&scope.currency)
                    ),
                    Some(p.after.0 - p.before.0),
                ),
                None => ("price override", String::new(), None),
            },
            sev::NoSale::KIND => ("no-sale", "drawer opened".to_owned(), None),
            _ => match payload::<sev::CashMoved>(e) {
                Some(m) => (
                    if m.paid_in { "paid in" } else { "paid out" },
                    String::new(),
                    Some(m.amount.0),
                ),
                None => ("cash move", String::new(), None),
            },
        };
        let c = counts.entry(action).or_default();
        c.0 += 1;
        c.1 += amount.unwrap_or(0);
        t.row(vec![
            Cell::Text(scope.local_secs(e.hlc.wall_ms())),
            Cell::Text(names.device(e.origin)),
            Cell::text(action),
            Cell::Text(detail),
            Cell::Text(names.user(e.actor)),
            Cell::Text(names.user(e.approver)),
            Cell::Text(e.reason.clone().unwrap_or_default()),
            amount.map_or(Cell::Empty, Cell::Money),
        ]);
    }
    let mut summary = Table::new(&["Action", "Count", "Amount"]);
    for (action, (n, v)) in &counts {
        summary.row(vec![Cell::text(*action), Cell::Int(*n), Cell::Money(*v)]);
    }
    summary.total = Some(vec![
        Cell::text("Total"),
        Cell::Int(counts.values().map(|c| c.0).sum()),
        Cell::Empty,
    ]);
    let mut s = Section::new("Summary");
    if events.is_empty() {
        s = s.note("No sensitive action in this period.");
    }
    Ok(vec![
        s.table(summary),
        Section::new("Sensitive actions")
            .note("Requester: who asked; approver: who approved with their own credentials.")
            .table(t),
    ])
}

/// A security event in words: who it is about and what happened.
fn security_detail(e: &Event, scope: &Scope, names: &Names) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap_or_default();
    let user = |field: &str| -> String {
        v.get(field)
            .and_then(|u| serde_json::from_value::<UserId>(u.clone()).ok())
            .map(|u| names.user(Some(u)))
            .unwrap_or_default()
    };
    let s = |field: &str| -> String {
        match v.get(field) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) if !other.is_null() => other.to_string(),
            _ => String::new(),
        }
    };
    match e.kind.as_str() {
        "login_failed" => {
            let who = match user("user") {
                u if u.is_empty() => s("name"),
                u => u,
            };
            (who, s("reason").replace('_', " "))
        }
        "user_locked" => (
            user("user"),
            match v.get("until_ms").and_then(|u| u.as_u64()) {
                Some(ms) => format!("locked until {}", scope.local(ms)),
                None => "locked by hand".to_owned(),
            },
        ),
        "user_unlocked" => (user("user"), "unlocked".to_owned()),
        "permission_denied" => (
            user("user"),
            format!("{} denied ({})", s("permission"), s("reason")),
        ),
        "anomaly" => (user("user"), format!("anomaly: {}", s("flag"))),
        "forced_logout" => (user("user"), "forced logout".to_owned()),
        "export" => (
            names.user(e.actor),
            format!("exported {} to {}", s("what"), s("destination")),
        ),
        "report_exported" => (
            names.user(e.actor),
            format!(
                "report {} as {} ({}) to {}",
                s("report"),
                s("format"),
                s("period"),
                s("file")
            ),
        ),
        _ => (
            names.user(e.actor),
            String::from_utf8_lossy(&e.payload)
                .chars()
                .take(120)
                .collect(),
        ),
    }
}

fn security(store: &Store, scope: &Scope, names: &Names) -> Result<Vec<Section>, ExportError> {
    let all = events_in(store, scope, &["security"])?;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut t = Table::new(&["Time", "Device", "Event", "User", "Detail"]);
    for e in &all {
        *counts.entry(e.kind.clone()).or_default() += 1;
        // Successful logins and the approvals of sensitive actions are counted, not listed:
        // the audit report lists the actions themselves.
        if matches!(e.kind.as_str(), "login_succeeded" | "approval_used") {
            continue;
        }
        let (user, detail) = security_detail(e, scope, names);
        t.row(vec![
            Cell::Text(scope.local_secs(e.hlc.wall_ms())),
            Cell::Text(names.device(e.origin)),
            Cell::Text(e.kind.replace('_', " ")),
            Cell::Text(user),
            Cell::Text(detail),
        ]);
    }
    let mut summary = Table::new(&["Event", "Count"]);
    for (kind, n) in &counts {
        summary.row(vec![Cell::Text(kind.replace('_', " ")), Cell::Int(*n)]);
    }
    summary.total = Some(vec![Cell::text("Total"), Cell::Int(counts.values().sum())]);
    let mut s = Section::new("Summary");
    if all.is_empty() {
        s = s.note("No security event in this period.");
    }
    let mut list = Section::new("Events");
    if t.rows.is_empty() {
        list = list.note("No failed login, lockout, denial, anomaly or export in this period.");
    }
    Ok(vec![s.table(summary), list.table(t)])
}
