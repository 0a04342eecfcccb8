//! Timing that resists a noisy machine: value and baseline are measured in interleaved rounds
//! (so a burst of load from another process hits both alike) and each is summarised by its
//! median (so a few slow outliers do not move it).

use std::time::{Duration, Instant};

use anyhow::Result;

/// The median of `xs` (mean of the middle two for an even count); `None` when empty.
/// NaNs sort last and so only matter when they are the majority.
pub fn median(xs: &[f64]) -> Option<f64> {
    quantile(xs, 0.5)
}

/// The `q` quantile (0..=1) by linear interpolation between the closest ranks.
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// Durations of one side of a comparison, in seconds.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn median(&self) -> f64 {
        median(&self.0).unwrap_or(f64::NAN)
    }
    pub fn quantile(&self, q: f64) -> f64 {
        quantile(&self.0, q).unwrap_or(f64::NAN)
    }
    /// "median m (p10 a .. p90 b)" of the samples scaled by `scale`, for the notes.
    pub fn spread(&self, scale: impl Fn(f64) -> f64) -> String {
        format!(
            "median {} (p10 {} .. p90 {})",
            crate::figure::group(scale(self.median())),
            crate::figure::group(scale(self.quantile(0.1))),
            crate::figure::group(scale(self.quantile(0.9))),
        )
    }
}

/// A warning when either side's samples spread so widely (p90 > 4 x p10) that the median may
/// land on either of two modes, e.g. IO wake-ups waiting for a CPU on a saturated machine.
pub fn noise_warning(value: &Samples, baseline: &Samples) -> Option<String> {
    let noisy = |s: &Samples| s.quantile(0.9) > 4.0 * s.quantile(0.1);
    (noisy(value) || noisy(baseline)).then(|| {
        "WARNING: very noisy samples (p90 > 4 x p10): the machine is busy and the median may \
         flip between modes; re-run when it is quieter before trusting this ratio"
            .to_owned()
    })
}

/// Time `f`; only the closure's own run is measured.
pub fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed(), out))
}

/// Run `warmup` unrecorded then `rounds` recorded rounds of `a` (the value) and `b` (the
/// baseline), interleaved. Each closure does its own setup and returns the duration of just the
/// measured part. Within a round the order alternates (A B, then B A, ...) so neither side
/// always runs right after the other, e.g. just after its fsync.
pub fn interleaved(
    warmup: usize,
    rounds: usize,
    mut a: impl FnMut() -> Result<Duration>,
    mut b: impl FnMut() -> Result<Duration>,
) -> Result<(Samples, Samples)> {
    let (mut sa, mut sb) = (Samples::default(), Samples::default());
    for i in 0..warmup + rounds {
        let (da, db) = if i % 2 == 0 {
            let da = a()?;
            (da, b()?)
        } else {
            let db = b()?;
            (a()?, db)
        };
        if i >= warmup {
            sa.0.push(da.as_secs_f64());
            sb.0.push(db.as_secs_f64());
        }
    }
    Ok((sa, sb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        // One huge outlier (a stall) does not move it.
        assert_eq!(median(&[1.0, 1.1, 0.9, 1000.0, 1.0]), Some(1.0));
    }

    #[test]
    fn wide_spread_is_flagged() {
        let calm = Samples(vec![1.0, 1.1, 1.2, 1.3, 1.0, 1.1, 1.2, 1.3, 1.0, 1.1]);
        let busy = Samples(vec![1.0, 1.1, 1.2, 8.0, 8.1, 8.2, 1.0, 8.3, 1.0, 9.0]);
        assert!(noise_warning(&calm, &calm).is_none());
        assert!(noise_warning(&calm, &busy).is_some());
    }

    #[test]
    fn quantiles_interpolate() {
        let xs: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(quantile(&xs, 0.1), Some(1.0));
        assert_eq!(quantile(&xs, 0.95), Some(9.5));
        assert_eq!(quantile(&xs, 2.0), Some(10.0));
    }

    #[test]
    fn interleaving_alternates_and_skips_warmup() {
        let order = std::cell::RefCell::new(String::new());
        let mut n = 0u64;
        let (a, b) = interleaved(
            1,
            3,
            || {
                order.borrow_mut().push('A');
                n += 1;
                Ok(Duration::from_secs(n))
            },
            || {
                order.borrow_mut().push('B');
                Ok(Duration::from_secs(100))
            },
        )
        .unwrap();
        assert_eq!(order.into_inner(), "ABBAABBA");
        assert_eq!(a.0, vec![2.0, 3.0, 4.0]);
        assert_eq!(b.0.len(), 3);
        assert_eq!(a.median(), 3.0);
    }
}
