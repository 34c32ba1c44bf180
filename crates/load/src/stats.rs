//! Quantiles of recorded samples (exact, by nearest rank over the sorted samples: a run
//! records at most a few million latencies, so sorting them once costs less than any
//! approximation would save).

use serde::Serialize;

/// The nearest-rank `q`-quantile (`0 < q <= 1`) of `sorted` (ascending): the smallest
/// sample such that at least `q` of all samples are at or below it.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    assert!(q > 0.0 && q <= 1.0, "bug: quantile {q} outside (0, 1]");
    if sorted.is_empty() {
        return None;
    }
    debug_assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "bug: unsorted samples"
    );
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A summary of latencies recorded in microseconds, reported in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
}

impl LatencySummary {
    /// Summarise samples in microseconds (sorts them).
    pub fn from_micros(samples: &mut [u64]) -> LatencySummary {
        samples.sort_unstable();
        let ms = |us: Option<u64>| us.map_or(0.0, |us| us as f64 / 1_000.0);
        let total: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        LatencySummary {
            count: samples.len() as u64,
            p50_ms: ms(quantile(samples, 0.5)),
            p99_ms: ms(quantile(samples, 0.99)),
            p999_ms: ms(quantile(samples, 0.999)),
            max_ms: ms(samples.last().copied()),
            mean_ms: if samples.is_empty() {
                0.0
            } else {
                total as f64 / samples.len() as f64 / 1_000.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nearest_rank_on_known_samples() {
        let s: Vec<u64> = (1..=1_000).collect();
        assert_eq!(quantile(&s, 0.5), Some(500));
        assert_eq!(quantile(&s, 0.99), Some(990));
        assert_eq!(quantile(&s, 0.999), Some(999));
        assert_eq!(quantile(&s, 1.0), Some(1_000));
        assert_eq!(quantile(&[7], 0.5), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
        // Ten samples: the 99th percentile is the largest, the median the fifth.
        let ten: Vec<u64> = (10..20).collect();
        assert_eq!(quantile(&ten, 0.99), Some(19));
        assert_eq!(quantile(&ten, 0.5), Some(14));
        let mut us = vec![3_000, 1_000, 2_000];
        let summary = LatencySummary::from_micros(&mut us);
        assert_eq!(summary.count, 3);
        assert_eq!(summary.p50_ms, 2.0);
        assert_eq!(summary.max_ms, 3.0);
        assert_eq!(summary.mean_ms, 2.0);
        assert_eq!(
            LatencySummary::from_micros(&mut []),
            LatencySummary::default()
        );
    }

    proptest! {
        #[test]
        fn a_quantile_is_a_sample_with_enough_mass_at_or_below(
            mut samples in proptest::collection::vec(0u64..10_000, 1..300),
            q in 0.001f64..=1.0,
        ) {
            samples.sort_unstable();
            let v = quantile(&samples, q).unwrap();
            prop_assert!(samples.contains(&v));
            let at_or_below = samples.iter().filter(|&&s| s <= v).count() as f64;
            let below = samples.iter().filter(|&&s| s < v).count() as f64;
            let n = samples.len() as f64;
            prop_assert!(at_or_below >= q * n - 1e-9);
            prop_assert!(below < q * n + 1e-9);
        }
    }
}
