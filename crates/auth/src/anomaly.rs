//! Anomaly flags: patterns that do not break a rule but that a manager or auditor should look at
//! (the classic till frauds: voids and refunds to pocket cash, drawer opened to take cash out).
//!
//! Each rule flags once, when its count first goes above the threshold, so a busy shift raises
//! one flag rather than one per action.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "flag")]
pub enum AnomalyFlag {
    ManyVoids { count: u32 },
    ManyRefunds { count: u32 },
    RefundAfterShiftClose,
    RepeatedPinFailures { count: u32 },
    DrawerOpenedWithoutSale,
}

impl AnomalyFlag {
    /// The `flag` tag, e.g. for filtering `pos audit log`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AnomalyFlag::ManyVoids { .. } => "many_voids",
            AnomalyFlag::ManyRefunds { .. } => "many_refunds",
            AnomalyFlag::RefundAfterShiftClose => "refund_after_shift_close",
            AnomalyFlag::RepeatedPinFailures { .. } => "repeated_pin_failures",
            AnomalyFlag::DrawerOpenedWithoutSale => "drawer_opened_without_sale",
        }
    }
}

/// Thresholds. Voids and refunds count per user per shift.
#[derive(Debug, Clone, Copy)]
pub struct AnomalyRules {
    /// More than this many voids in one shift is flagged (5).
    pub voids_per_shift: u32,
    /// More than this many refunds in one shift is flagged (3).
    pub refunds_per_shift: u32,
    /// This many consecutive PIN failures is flagged (3): below the lockout threshold, so the
    /// manager hears about someone trying PINs before the account locks.
    pub pin_failures: u32,
}

impl Default for AnomalyRules {
    fn default() -> Self {
        AnomalyRules {
            voids_per_shift: 5,
            refunds_per_shift: 3,
            pin_failures: 3,
        }
    }
}

impl AnomalyRules {
    /// After a void; `voids_in_shift` includes it. Flags when the count is `threshold + 1`.
    pub fn after_void(&self, voids_in_shift: u32) -> Option<AnomalyFlag> {
        (Some(voids_in_shift) == self.voids_per_shift.checked_add(1)).then_some(
            AnomalyFlag::ManyVoids {
                count: voids_in_shift,
            },
        )
    }

    /// After a refund; `refunds_in_shift` includes it. A refund with no shift open is always
    /// flagged: cash moving with no shift to account for it.
    pub fn after_refund(&self, refunds_in_shift: u32, shift_open: bool) -> Vec<AnomalyFlag> {
        let mut flags = Vec::new();
        if !shift_open {
            flags.push(AnomalyFlag::RefundAfterShiftClose);
        }
        if Some(refunds_in_shift) == self.refunds_per_shift.checked_add(1) {
            flags.push(AnomalyFlag::ManyRefunds {
                count: refunds_in_shift,
            });
        }
        flags
    }

    /// After a failed PIN login; `consecutive` includes it. Flags when it reaches the threshold
    /// (0 disables the rule).
    pub fn after_pin_failure(&self, consecutive: u32) -> Option<AnomalyFlag> {
        (self.pin_failures > 0 && consecutive == self.pin_failures)
            .then_some(AnomalyFlag::RepeatedPinFailures { count: consecutive })
    }

    /// After the drawer opened: without a sale is always worth a look, even when permitted.
    pub fn drawer_opened(&self, with_sale: bool) -> Option<AnomalyFlag> {
        (!with_sale).then_some(AnomalyFlag::DrawerOpenedWithoutSale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_once_when_first_above() {
        let r = AnomalyRules::default();
        let voids: Vec<_> = (1..=10).filter_map(|n| r.after_void(n)).collect();
        assert_eq!(voids, vec![AnomalyFlag::ManyVoids { count: 6 }]);
        let refunds: Vec<_> = (1..=10).flat_map(|n| r.after_refund(n, true)).collect();
        assert_eq!(refunds, vec![AnomalyFlag::ManyRefunds { count: 4 }]);
        assert_eq!(
            r.after_refund(1, false),
            vec![AnomalyFlag::RefundAfterShiftClose]
        );
        let pins: Vec<_> = (1..=10).filter_map(|n| r.after_pin_failure(n)).collect();
        assert_eq!(pins, vec![AnomalyFlag::RepeatedPinFailures { count: 3 }]);
        assert_eq!(r.drawer_opened(true), None);
        assert_eq!(
            r.drawer_opened(false),
            Some(AnomalyFlag::DrawerOpenedWithoutSale)
        );
    }

    #[test]
    fn extreme_thresholds_do_not_panic() {
        let r = AnomalyRules {
            voids_per_shift: u32::MAX,
            refunds_per_shift: u32::MAX,
            pin_failures: 0,
        };
        assert_eq!(r.after_void(u32::MAX), None);
        assert!(r.after_refund(u32::MAX, true).is_empty());
        assert_eq!(r.after_pin_failure(0), None);
    }

    #[test]
    fn serde_shape() {
        let v = serde_json::to_value(AnomalyFlag::ManyVoids { count: 6 }).unwrap();
        assert_eq!(v, serde_json::json!({"flag": "many_voids", "count": 6}));
        let v = serde_json::to_value(AnomalyFlag::RefundAfterShiftClose).unwrap();
        assert_eq!(v, serde_json::json!({"flag": "refund_after_shift_close"}));
    }
}
