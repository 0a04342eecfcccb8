//! The trial boot's health verdict. After an update the new slot boots on trial; a systemd
//! oneshot (`pos update health`) watches the role service and either makes the slot permanent
//! (`rauc status mark-good`) or marks it bad and restarts into the previous system.
//!
//! The role service is whichever of the watched units (pos-terminal, pos-hub, and before
//! first-boot setup is done, pos-setup) systemd did not skip for a failed condition. Healthy:
//! every unit that is meant to run is `active`, has not been restarted (`NRestarts=0`), and has
//! stayed active, on the same activation, for `settle` seconds of our own watching. The time is
//! measured by the watcher rather than from systemd's `ActiveEnterTimestampMonotonic`, so no
//! clock of another domain (a container's /proc/uptime, say) has to agree with systemd's.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// The properties `pos update health` asks `systemctl show -p` for.
pub const SHOW_PROPERTIES: &str = "LoadState,ActiveState,SubState,NRestarts,\
ActiveEnterTimestampMonotonic,Result,ConditionResult,ConditionTimestampMonotonic";

/// The default units, in the order they are named in messages.
pub const DEFAULT_UNITS: [&str; 3] = [
    "pos-terminal.service",
    "pos-hub.service",
    "pos-setup.service",
];

/// What `systemctl show` says about one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFacts {
    pub name: String,
    /// loaded, not-found, masked…
    pub load_state: String,
    /// active, activating, deactivating, inactive, failed, reloading.
    pub active_state: String,
    pub sub_state: String,
    pub n_restarts: u32,
    /// µs of CLOCK_MONOTONIC when it last became active; 0 if never. Identifies an activation.
    pub active_enter: u64,
    /// success, exit-code, signal, core-dump, timeout, start-limit-hit…
    pub result: String,
    /// The unit's conditions held when systemd last checked them.
    pub condition_result: bool,
    /// systemd checked the conditions at all (a unit nobody started has not).
    pub condition_checked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`systemctl show {unit}` printed no {property}= line")]
pub struct ShowError {
    unit: String,
    property: &'static str,
}

/// Parses the `KEY=value` lines of `systemctl show -p SHOW_PROPERTIES UNIT`.
pub fn parse_show(unit: &str, text: &str) -> Result<UnitFacts, ShowError> {
    let map: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let need = |property: &'static str| {
        map.get(property).copied().ok_or_else(|| ShowError {
            unit: unit.to_owned(),
            property,
        })
    };
    let number = |property: &'static str| -> u64 {
        // systemd prints "[not set]" or nothing for counters it has not set yet.
        map.get(property).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    Ok(UnitFacts {
        name: unit.to_owned(),
        load_state: map.get("LoadState").copied().unwrap_or("loaded").to_owned(),
        active_state: need("ActiveState")?.to_owned(),
        sub_state: map.get("SubState").copied().unwrap_or("").to_owned(),
        n_restarts: u32::try_from(number("NRestarts")).unwrap_or(u32::MAX),
        active_enter: number("ActiveEnterTimestampMonotonic"),
        result: map.get("Result").copied().unwrap_or("success").to_owned(),
        condition_result: map.get("ConditionResult").copied() == Some("yes"),
        condition_checked: number("ConditionTimestampMonotonic") > 0,
    })
}

/// What the check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The named units have run steadily for the settle time.
    Healthy {
        units: Vec<String>,
    },
    Unhealthy(Problem),
    /// Not decided yet; why, for the log.
    Waiting(Problem),
}

/// Something wrong (or not yet right) with the role service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Failed {
        unit: String,
        result: String,
    },
    Restarted {
        unit: String,
        times: u32,
    },
    NotRunning {
        unit: String,
        state: String,
        waited: Duration,
    },
    Settling {
        unit: String,
        left: Duration,
    },
    NoneToRun {
        units: Vec<String>,
        waited: Duration,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Failed { unit, result } => write!(f, "{unit} failed ({result})"),
            Problem::Restarted { unit, times } => {
                let s = if *times == 1 { "" } else { "s" };
                write!(f, "{unit} crashed and was restarted {times} time{s}")
            }
            Problem::NotRunning {
                unit,
                state,
                waited,
            } => {
                write!(
                    f,
                    "{unit} is not running ({state}) after {} s",
                    waited.as_secs()
                )
            }
            Problem::Settling { unit, left } => {
                write!(
                    f,
                    "{unit} is running; watching it {} s more",
                    left.as_secs()
                )
            }
            Problem::NoneToRun { units, waited } => write!(
                f,
                "none of {} is running after {} s",
                units.join(", "),
                waited.as_secs()
            ),
        }
    }
}

/// Watches the units over time: feed it each observation, it says when it is sure.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    settle: Duration,
    timeout: Duration,
    /// Unit → (its activation, when we first saw it active on that activation).
    active_since: BTreeMap<String, (u64, Duration)>,
}

/// How one unit stands.
enum Standing {
    /// Skipped by its conditions, not installed, or finished its work cleanly: not watched.
    Ignored,
    /// Not started (yet), or on its way up or down.
    Pending(String),
    Active,
    Broken(Problem),
}

fn standing(u: &UnitFacts) -> Standing {
    if u.load_state != "loaded" {
        return Standing::Ignored;
    }
    if u.n_restarts > 0 {
        return Standing::Broken(Problem::Restarted {
            unit: u.name.clone(),
            times: u.n_restarts,
        });
    }
    match u.active_state.as_str() {
        "failed" => Standing::Broken(Problem::Failed {
            unit: u.name.clone(),
            result: u.result.clone(),
        }),
        "active" | "reloading" => Standing::Active,
        "inactive" if u.condition_checked && !u.condition_result => Standing::Ignored,
        // A oneshot that ran and ended well (pos-setup handing over to the role service).
        "inactive" if u.active_enter > 0 && u.result == "success" => Standing::Ignored,
        other => Standing::Pending(format!("{other}/{}", u.sub_state)),
    }
}

impl HealthCheck {
    pub fn new(settle: Duration, timeout: Duration) -> HealthCheck {
        HealthCheck {
            settle,
            timeout,
            active_since: BTreeMap::new(),
        }
    }

    /// One look at the units, `elapsed` after the check started.
    pub fn observe(&mut self, elapsed: Duration, units: &[UnitFacts]) -> Verdict {
        let mut waiting: Option<Problem> = None;
        let mut active = Vec::new();
        for u in units {
            match standing(u) {
                Standing::Broken(p) => return Verdict::Unhealthy(p),
                Standing::Ignored => {
                    self.active_since.remove(&u.name);
                }
                Standing::Pending(state) => {
                    self.active_since.remove(&u.name);
                    waiting.get_or_insert(Problem::NotRunning {
                        unit: u.name.clone(),
                        state,
                        waited: elapsed,
                    });
                }
                Standing::Active => {
                    let since = match self.active_since.get(&u.name) {
                        // The same activation: keep counting from when we first saw it.
                        Some((enter, since)) if *enter == u.active_enter => *since,
                        // New, or restarted under us without NRestarts (by hand): start over.
                        _ => {
                            self.active_since
                                .insert(u.name.clone(), (u.active_enter, elapsed));
                            elapsed
                        }
                    };
                    let steady = elapsed.saturating_sub(since);
                    if steady < self.settle {
                        waiting.get_or_insert(Problem::Settling {
                            unit: u.name.clone(),
                            left: self.settle - steady,
                        });
                    }
                    active.push(u.name.clone());
                }
            }
        }
        let problem = match waiting {
            Some(p) => p,
            None if !active.is_empty() => return Verdict::Healthy { units: active },
            None => Problem::NoneToRun {
                units: units.iter().map(|u| u.name.clone()).collect(),
                waited: elapsed,
            },
        };
        if elapsed >= self.timeout {
            Verdict::Unhealthy(problem)
        } else {
            Verdict::Waiting(problem)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn show(
        unit: &str,
        active: &str,
        sub: &str,
        restarts: u32,
        enter: u64,
        cond: Option<bool>,
    ) -> UnitFacts {
        let (cr, ct) = match cond {
            Some(true) => ("yes", 5_000_000),
            Some(false) => ("no", 5_000_000),
            None => ("no", 0),
        };
        let text = format!(
            "LoadState=loaded\nActiveState={active}\nSubState={sub}\nNRestarts={restarts}\n\
             ActiveEnterTimestampMonotonic={enter}\nResult=success\nConditionResult={cr}\n\
             ConditionTimestampMonotonic={ct}\n"
        );
        parse_show(unit, &text).unwrap()
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn parses_systemctl_show() {
        let text = "LoadState=loaded\nActiveState=failed\nSubState=failed\nNRestarts=3\n\
                    ActiveEnterTimestampMonotonic=12345678\nResult=exit-code\n\
                    ConditionResult=yes\nConditionTimestampMonotonic=1000\n";
        let f = parse_show("pos-hub.service", text).unwrap();
        assert_eq!(f.active_state, "failed");
        assert_eq!(f.n_restarts, 3);
        assert_eq!(f.active_enter, 12_345_678);
        assert_eq!(f.result, "exit-code");
        assert!(f.condition_result && f.condition_checked);
        assert!(parse_show("x", "SubState=dead\n").is_err());
        let unset = parse_show("x", "ActiveState=inactive\nNRestarts=[not set]\n").unwrap();
        assert_eq!(unset.n_restarts, 0);
    }

    #[test]
    fn terminal_steady_for_settle_is_healthy() {
        let mut c = HealthCheck::new(s(10), s(60));
        let units = [
            show(
                "pos-terminal.service",
                "active",
                "running",
                0,
                7_000_000,
                Some(true),
            ),
            show("pos-hub.service", "inactive", "dead", 0, 0, Some(false)),
            show("pos-setup.service", "inactive", "dead", 0, 0, Some(false)),
        ];
        assert!(matches!(
            c.observe(s(0), &units),
            Verdict::Waiting(Problem::Settling { .. })
        ));
        assert!(matches!(c.observe(s(9), &units), Verdict::Waiting(_)));
        assert_eq!(
            c.observe(s(10), &units),
            Verdict::Healthy {
                units: vec!["pos-terminal.service".into()]
            }
        );
    }

    #[test]
    fn settle_zero_decides_at_first_look() {
        let mut c = HealthCheck::new(s(0), s(60));
        let units = [show(
            "pos-hub.service",
            "active",
            "running",
            0,
            1,
            Some(true),
        )];
        assert!(matches!(c.observe(s(0), &units), Verdict::Healthy { .. }));
    }

    #[test]
    fn first_boot_setup_counts() {
        let mut c = HealthCheck::new(s(0), s(60));
        let units = [
            show(
                "pos-terminal.service",
                "inactive",
                "dead",
                0,
                0,
                Some(false),
            ),
            show("pos-hub.service", "inactive", "dead", 0, 0, Some(false)),
            show("pos-setup.service", "active", "running", 0, 9, Some(true)),
        ];
        assert_eq!(
            c.observe(s(0), &units),
            Verdict::Healthy {
                units: vec!["pos-setup.service".into()]
            }
        );
    }

    #[test]
    fn failure_and_restarts_are_unhealthy_at_once() {
        let mut c = HealthCheck::new(s(30), s(300));
        let failed = [show(
            "pos-terminal.service",
            "failed",
            "failed",
            0,
            0,
            Some(true),
        )];
        let v = c.observe(s(1), &failed);
        assert!(matches!(v, Verdict::Unhealthy(Problem::Failed { .. })));
        let restarted = [show(
            "pos-terminal.service",
            "active",
            "running",
            2,
            5,
            Some(true),
        )];
        match c.observe(s(1), &restarted) {
            Verdict::Unhealthy(p) => assert_eq!(
                p.to_string(),
                "pos-terminal.service crashed and was restarted 2 times"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn never_up_is_unhealthy_at_the_timeout() {
        let mut c = HealthCheck::new(s(5), s(20));
        let units = [show(
            "pos-terminal.service",
            "activating",
            "start",
            0,
            0,
            Some(true),
        )];
        assert!(matches!(c.observe(s(19), &units), Verdict::Waiting(_)));
        match c.observe(s(20), &units) {
            Verdict::Unhealthy(p) => assert_eq!(
                p.to_string(),
                "pos-terminal.service is not running (activating/start) after 20 s"
            ),
            other => panic!("{other:?}"),
        }
        let none = [show(
            "pos-hub.service",
            "inactive",
            "dead",
            0,
            0,
            Some(false),
        )];
        let v = HealthCheck::new(s(5), s(20)).observe(s(20), &none);
        assert!(matches!(v, Verdict::Unhealthy(Problem::NoneToRun { .. })));
    }

    #[test]
    fn a_new_activation_restarts_the_settle_clock() {
        let mut c = HealthCheck::new(s(10), s(100));
        let first = [show(
            "pos-hub.service",
            "active",
            "running",
            0,
            100,
            Some(true),
        )];
        let again = [show(
            "pos-hub.service",
            "active",
            "running",
            0,
            200,
            Some(true),
        )];
        assert!(matches!(c.observe(s(0), &first), Verdict::Waiting(_)));
        assert!(matches!(c.observe(s(8), &again), Verdict::Waiting(_)));
        assert!(matches!(c.observe(s(12), &again), Verdict::Waiting(_)));
        assert!(matches!(c.observe(s(18), &again), Verdict::Healthy { .. }));
    }

    #[test]
    fn not_installed_units_are_ignored() {
        let mut gone = show("pos-hub.service", "inactive", "dead", 0, 0, None);
        gone.load_state = "not-found".into();
        let units = [
            gone,
            show(
                "pos-terminal.service",
                "active",
                "running",
                0,
                1,
                Some(true),
            ),
        ];
        assert!(matches!(
            HealthCheck::new(s(0), s(9)).observe(s(0), &units),
            Verdict::Healthy { .. }
        ));
    }

    proptest! {
        /// Healthy never comes before the settle time has passed, nor with a restart or a
        /// failed unit in view; and by the timeout the check has always decided.
        #[test]
        fn verdict_invariants(
            looks in prop::collection::vec((0u8..5, 0u32..2, 0u64..3), 1..30),
            settle in 0u64..10,
            timeout in 5u64..40,
        ) {
            let states = ["active", "activating", "failed", "inactive", "deactivating"];
            let mut c = HealthCheck::new(s(settle), s(timeout));
            for (i, (st, restarts, enter)) in looks.iter().enumerate() {
                let t = s(i as u64 * 2);
                let u = show("pos-terminal.service", states[*st as usize], "x", *restarts, *enter, Some(true));
                let v = c.observe(t, std::slice::from_ref(&u));
                if matches!(v, Verdict::Healthy { .. }) {
                    prop_assert!(t >= s(settle));
                    prop_assert_eq!(u.n_restarts, 0);
                    prop_assert_eq!(u.active_state.as_str(), "active");
                }
                if t >= s(timeout) {
                    prop_assert!(!matches!(v, Verdict::Waiting(_)));
                }
            }
        }
    }
}
