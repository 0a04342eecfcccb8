//! `pos report NAME [--from D --to D] [--format table|csv|pdf] [--out FILE] --as ACTOR`.
//!
//! The actor's secret (and TOTP code) comes from stdin as for `pos user`. Every report needs
//! its permission (`view_reports`, or `audit_read` for the audit and security reports), and an
//! export (CSV or PDF, or any `--out FILE`) also `export_data`; both go through
//! `Store::authorize`, which logs a denial. An export is recorded as `security.report_exported`
//! before anything is written, so no export goes unlogged. With the hub running (it owns the
//! data dir) the check and the record go through its control socket and the report is read
//! beside it with a read-only store.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};
use pos_auth::{Permission, Principal};
use pos_core::DeviceRole;
use pos_report_export::{build, currency, render, Format, ReportKind, Scope};
use pos_store::reports::Period;
use pos_store::{now_ms, Store, StoreError};

use crate::cmd::hub_control::{self, Actor, Reply, Request};
use crate::cmd::user::{authenticate, refused};
use crate::context::{CheckFailed, Context};
use crate::secrets::SecretInput;

#[derive(Debug, Args)]
#[command(after_help = "\
Reports: pos report list. Dates: YYYY-MM-DD, today, yesterday, this-week, this-month (local \
time); --from is the start of its day (week, month), --to the end of its one, so --from \
2026-11-01 --to 2026-11-30 is all of November. Without dates: today. Only --from: until now.

The actor's secret, then their TOTP code if they use one, are read from standard input. An \
export (csv, pdf or --out) needs export_data and is recorded in the security log.")]
pub struct ReportArgs {
    /// The report (`list` names them all).
    pub name: String,
    /// First day of the period.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day of the period (included).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The user asking (needs view_reports, audit_read for audit/security).
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Table,
    Csv,
    Pdf,
}

impl FormatArg {
    fn format(self) -> Format {
        match self {
            FormatArg::Table => Format::Table,
            FormatArg::Csv => Format::Csv,
            FormatArg::Pdf => Format::Pdf,
        }
    }
}

pub fn run(ctx: &Context, args: ReportArgs) -> anyhow::Result<()> {
    if args.name == "list" {
        for kind in ReportKind::ALL {
            println!(
                "{:<9} {:<13} {}",
                kind.name(),
                kind.permission().as_str(),
                kind.describe()
            );
        }
        return Ok(());
    }
    let Some(kind) = ReportKind::parse(&args.name) else {
        bail!(
            "there is no report `{}`; `pos report list` names them",
            args.name
        );
    };
    let Some(actor) = args.actor.as_deref() else {
        bail!("say who asks: --as ACTOR (their secret on standard input)");
    };
    let format = args.format.format();
    if format == Format::Pdf && args.out.is_none() && std::io::stdout().is_terminal() {
        bail!("a PDF is not for the terminal: give --out FILE");
    }
    let tz = TimeZone::system();
    let now = Timestamp::now();
    let period = parse_period(
        args.from.as_deref(),
        args.to.as_deref(),
        &now.to_zoned_datetime(tz.clone()),
    )?;
    let scope = Scope {
        period,
        tz,
        currency: currency(&ctx.config.sale.currency),
        now_ms: now_ms(),
    };
    let exported = format != Format::Table || args.out.is_some();
    let file = args
        .out
        .as_ref()
        .map_or_else(|| "-".to_owned(), |p| p.display().to_string());
    let period_text = if kind == ReportKind::X {
        "open shifts".to_owned()
    } else {
        scope.period_text()
    };

    let identity = Store::read_identity(&ctx.data_dir)
        .with_context(|| format!("cannot read data dir {}", ctx.data_dir.display()))?;
    let mut input = SecretInput::from_stdin()?;
    let bytes = match Store::open(&ctx.data_dir, ctx.store_options()) {
        Ok(mut store) => {
            let who = authenticate(&mut store, actor, &mut input, ctx)?;
            allow(&mut store, &who, kind, exported)?;
            if exported {
                store
                    .append(vec![pos_report_export::export_event(
                        who.user,
                        kind,
                        format,
                        &period_text,
                        &file,
                    )])
                    .context("cannot record the export in the security log")?;
            }
            let doc = build(&store, kind, &scope)?;
            render(&doc, format)?
        }
        Err(StoreError::Locked { .. }) if identity.role == DeviceRole::Hub => {
            let request = Request::Report {
                actor: Actor::from_input(actor, &mut input)?,
                report: kind.name().to_owned(),
                export: exported.then(|| hub_control::ReportExport {
                    format: format.as_str().to_owned(),
                    period: period_text.clone(),
                    file: file.clone(),
                }),
            };
            match hub_control::call(&ctx.data_dir, &request)? {
                Reply::Allowed => {}
                Reply::Refused(why) => return Err(CheckFailed(why).into()),
                Reply::Failed(why) => bail!("the hub could not check the request: {why}"),
                other => bail!("unexpected answer from the hub: {other:?}"),
            }
            let store = Store::open_read_only(&ctx.data_dir)
                .with_context(|| format!("cannot read data dir {}", ctx.data_dir.display()))?;
            let doc = build(&store, kind, &scope)?;
            render(&doc, format)?
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))
        }
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| {
                format!(
                    "cannot write {} (the export is already in the security log)",
                    path.display()
                )
            })?;
            eprintln!(
                "{} written to {} ({} bytes)",
                kind.title(),
                path.display(),
                bytes.len()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    Ok(())
}

/// May `who` see `kind` (and export it)? A denial is logged by `Store::authorize`.
pub(crate) fn allow(
    store: &mut Store,
    who: &Principal,
    kind: ReportKind,
    exported: bool,
) -> anyhow::Result<()> {
    store
        .authorize(who, kind.permission(), None)
        .map_err(refused)?;
    if exported {
        store
            .authorize(who, Permission::ExportData, None)
            .map_err(refused)?;
    }
    Ok(())
}

/// One of the accepted date words, as the local days [start, end) it stands for.
fn days_of(text: &str, now: &ZonedDateTime) -> anyhow::Result<(Date, Date)> {
    let today = now.date();
    let next = |d: Date| d.tomorrow().map_err(anyhow::Error::from);
    Ok(match text.trim() {
        "today" => (today, next(today)?),
        "yesterday" => (today.yesterday()?, today),
        "this-week" => {
            let monday = today.checked_sub(
                jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())),
            )?;
            (monday, monday.checked_add(jiff::Span::new().days(7))?)
        }
        "this-month" => (today.first_of_month(), next(today.last_of_month())?),
        other => match other.parse::<Date>() {
            Ok(d) => (d, next(d)?),
            Err(_) => bail!(
                "cannot read `{other}` as a date: use YYYY-MM-DD, today, yesterday, this-week or \
                 this-month"
            ),
        },
    })
}

fn start_ms(date: Date, tz: &TimeZone) -> anyhow::Result<u64> {
    let ms = date
        .to_zoned_datetime(tz.clone())?
        .timestamp()
        .as_millisecond();
    u64::try_from(ms).map_err(|_| anyhow::anyhow!("{date} is before 1970"))
}

/// `--from`/`--to` as a period: the start of --from's days to the end of --to's.
pub(crate) fn parse_period(
    from: Option<&str>,
    to: Option<&str>,
    now: &ZonedDateTime,
) -> anyhow::Result<Period> {
    let tz = now.time_zone();
    let from_days = from.map(|f| days_of(f, now)).transpose()?;
    let to_days = to.map(|t| days_of(t, now)).transpose()?;
    let (start, end) = match (from_days, to_days) {
        (None, None) => days_of("today", now)?,
        (Some((a, _)), None) => (a, days_of("today", now)?.1.max(a)),
        (None, Some((a, b))) => (a, b),
        (Some((a, _)), Some((_, b))) => (a, b),
    };
    if let (Some(f), Some(t)) = (from, to) {
        if start >= end {
            bail!("--from {f} is after --to {t}: give the earlier date first");
        }
    }
    let from_ms = start_ms(start, tz)?;
    let to_ms = start_ms(end, tz)?;
    Period::new(from_ms, to_ms).map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> ZonedDateTime {
        s.parse().unwrap()
    }

    #[test]
    fn periods_read_as_local_days() {
        let now = at("2026-11-25T15:00:00+01:00[Europe/Berlin]");
        let p = parse_period(None, None, &now).unwrap();
        assert_eq!(p.to_ms - p.from_ms, 86_400_000);
        let day = parse_period(Some("2026-11-01"), Some("2026-11-30"), &now).unwrap();
        assert_eq!(
            day,
            parse_period(Some("this-month"), Some("this-month"), &now).unwrap()
        );
        assert_eq!(day.to_ms - day.from_ms, 30 * 86_400_000);
        let week = parse_period(Some("this-week"), None, &now).unwrap();
        assert_eq!(week.to_ms - week.from_ms, 3 * 86_400_000); // Monday to Wednesday
        let y = parse_period(Some("yesterday"), Some("yesterday"), &now).unwrap();
        assert_eq!(y.to_ms, p.from_ms);
        // Across the change to summer time: a 23-hour day.
        let dst = parse_period(Some("2026-03-29"), Some("2026-03-29"), &now).unwrap();
        assert_eq!(dst.to_ms - dst.from_ms, 23 * 3_600_000);
        assert!(parse_period(Some("2026-11-30"), Some("2026-11-01"), &now)
            .unwrap_err()
            .to_string()
            .contains("after --to"));
        assert!(parse_period(Some("31/12/2026"), None, &now)
            .unwrap_err()
            .to_string()
            .contains("YYYY-MM-DD"));
        // Only --to: that day.
        let t = parse_period(None, Some("2026-11-02"), &now).unwrap();
        assert_eq!(t.to_ms - t.from_ms, 86_400_000);
        // A huge range is fine.
        assert!(parse_period(Some("1990-01-01"), Some("2100-12-31"), &now).is_ok());
    }
}
