//! Per-peer request quotas: a token bucket per peer, with time passed in by the caller so the
//! arithmetic is tested without a clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;
use tokio::time::Instant;

/// What a quota check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaDecision {
    /// The request may be served; one token was taken.
    Allowed,
    /// The peer has no token left.
    Exceeded,
    /// Too many peers are tracked to start tracking another one.
    TooManyPeers,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the last whole token was added (or the bucket was created full).
    refilled_at: Instant,
}

/// Token buckets keyed by peer: each holds at most `burst` tokens and gains one per
/// `refill_interval`.
///
/// A bucket is kept while it is not full, even after the peer disconnects, so reconnecting
/// does not reset a spent quota; [`RequestQuotas::prune`] forgets full buckets, which carry
/// no information. At most `max_peers` buckets exist.
#[derive(Debug)]
pub(crate) struct RequestQuotas<K> {
    burst: u32,
    refill_interval: Duration,
    max_peers: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Copy> RequestQuotas<K> {
    pub(crate) fn new(burst: u32, refill_interval: Duration, max_peers: usize) -> Self {
        assert!(burst > 0, "bug: quota burst validated positive");
        assert!(
            !refill_interval.is_zero(),
            "bug: quota refill interval validated positive"
        );
        RequestQuotas {
            burst,
            refill_interval,
            max_peers,
            buckets: HashMap::new(),
        }
    }

    /// Take one token from `peer`'s bucket at time `now`.
    pub(crate) fn try_take(&mut self, peer: K, now: Instant) -> QuotaDecision {
        if !self.buckets.contains_key(&peer) && self.buckets.len() >= self.max_peers {
            self.prune(now);
            if self.buckets.len() >= self.max_peers {
                return QuotaDecision::TooManyPeers;
            }
        }
        let (burst, interval) = (self.burst, self.refill_interval);
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: burst,
            refilled_at: now,
        });
        refill(bucket, burst, interval, now);
        if bucket.tokens == 0 {
            return QuotaDecision::Exceeded;
        }
        bucket.tokens -= 1;
        QuotaDecision::Allowed
    }

    /// Forget buckets that have refilled completely by `now`.
    pub(crate) fn prune(&mut self, now: Instant) {
        let (burst, interval) = (self.burst, self.refill_interval);
        self.buckets.retain(|_, bucket| {
            refill(bucket, burst, interval, now);
            bucket.tokens < burst
        });
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

fn refill(bucket: &mut Bucket, burst: u32, interval: Duration, now: Instant) {
    let elapsed = now.saturating_duration_since(bucket.refilled_at);
    let whole = elapsed.as_nanos() / interval.as_nanos();
    if whole == 0 {
        return;
    }
    let room = u128::from(burst - bucket.tokens);
    if whole >= room {
        bucket.tokens = burst;
        bucket.refilled_at = now;
    } else {
        // `whole < room <= u32::MAX`, so both conversions are exact.
        let added = u32::try_from(whole).expect("bug: whole < room fits u32");
        bucket.tokens += added;
        bucket.refilled_at += interval * added;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_then_one_per_interval() {
        let start = Instant::now();
        let mut quotas = RequestQuotas::new(2, SECOND, 8);
        assert_eq!(quotas.try_take(1u8, start), QuotaDecision::Allowed);
        assert_eq!(quotas.try_take(1u8, start), QuotaDecision::Allowed);
        assert_eq!(quotas.try_take(1u8, start), QuotaDecision::Exceeded);
        // Another peer has its own bucket.
        assert_eq!(quotas.try_take(2u8, start), QuotaDecision::Allowed);
        // Just under one interval: still nothing.
        let almost = start + SECOND - Duration::from_nanos(1);
        assert_eq!(quotas.try_take(1u8, almost), QuotaDecision::Exceeded);
        assert_eq!(quotas.try_take(1u8, start + SECOND), QuotaDecision::Allowed);
        assert_eq!(
            quotas.try_take(1u8, start + SECOND),
            QuotaDecision::Exceeded
        );
    }

    #[test]
    fn partial_intervals_are_not_lost() {
        let start = Instant::now();
        let mut quotas = RequestQuotas::new(3, SECOND, 8);
        for _ in 0..3 {
            assert_eq!(quotas.try_take(0u8, start), QuotaDecision::Allowed);
        }
        // 1.5 s: one token, and the half interval carries over to the next.
        let t = start + SECOND + SECOND / 2;
        assert_eq!(quotas.try_take(0u8, t), QuotaDecision::Allowed);
        assert_eq!(quotas.try_take(0u8, t), QuotaDecision::Exceeded);
        assert_eq!(
            quotas.try_take(0u8, start + 2 * SECOND),
            QuotaDecision::Allowed
        );
    }

    #[test]
    fn tracking_is_bounded_and_full_buckets_are_forgotten() {
        let start = Instant::now();
        let mut quotas = RequestQuotas::new(1, SECOND, 2);
        assert_eq!(quotas.try_take(1u8, start), QuotaDecision::Allowed);
        assert_eq!(quotas.try_take(2u8, start), QuotaDecision::Allowed);
        assert_eq!(quotas.try_take(3u8, start), QuotaDecision::TooManyPeers);
        // Once the first two refill they carry no state and make room.
        assert_eq!(quotas.try_take(3u8, start + SECOND), QuotaDecision::Allowed);
        quotas.prune(start + 2 * SECOND);
        assert_eq!(quotas.tracked(), 0);
    }

    proptest! {
        /// Over any schedule, a peer is never allowed more than `burst + elapsed / interval`
        /// requests, and a peer that waits a full burst of intervals always gets a request.
        #[test]
        fn never_more_than_the_rate_allows(
            burst in 1u32..5,
            steps_ms in proptest::collection::vec(0u64..700, 1..60),
        ) {
            let start = Instant::now();
            let interval = Duration::from_millis(250);
            let mut quotas = RequestQuotas::new(burst, interval, 4);
            let mut now = start;
            let mut allowed = 0u64;
            for step in steps_ms {
                now += Duration::from_millis(step);
                if quotas.try_take(0u8, now) == QuotaDecision::Allowed {
                    allowed += 1;
                }
                let elapsed = now.duration_since(start).as_millis() as u64;
                prop_assert!(allowed <= u64::from(burst) + elapsed / 250);
            }
            let rested = now + interval * burst;
            prop_assert_eq!(quotas.try_take(0u8, rested), QuotaDecision::Allowed);
        }
    }
}
