//! Token-bucket rate limits keyed by client IP or by account.
//!
//! Each key has a bucket of `burst` tokens refilled at `per_second`; a request takes one.
//! Tokens are counted in thousandths so refills are exact integers. Time is passed in, so
//! tests drive the limiter with chosen instants.
//!
//! The number of keys is bounded: when the table is full, buckets that have refilled to
//! full (idle clients) are dropped; if every bucket is busy the table is cleared, which can
//! only ever let more requests through, never lock a client out.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Requests per second, sustained (0: the burst never refills, for tests).
    pub per_second: u32,
    /// Requests at once from a full bucket (at least 1).
    pub burst: u32,
}

const MILLI: u64 = 1_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli_tokens: u64,
    last: Instant,
}

/// A keyed token-bucket limiter; see the module docs.
#[derive(Debug)]
pub struct RateLimiter<K> {
    quota: Quota,
    max_keys: usize,
    buckets: Mutex<BTreeMap<K, Bucket>>,
}

impl<K: Ord + Clone> RateLimiter<K> {
    /// A limiter with `quota` per key, tracking at most `max_keys` keys.
    pub fn new(quota: Quota, max_keys: usize) -> RateLimiter<K> {
        RateLimiter {
            quota: Quota {
                per_second: quota.per_second,
                burst: quota.burst.max(1),
            },
            max_keys: max_keys.max(1),
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    fn capacity(&self) -> u64 {
        u64::from(self.quota.burst) * MILLI
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed_ms = u64::try_from(now.saturating_duration_since(bucket.last).as_millis())
            .unwrap_or(u64::MAX);
        // per_second tokens per 1000 ms = per_second milli-tokens per ms.
        let added = elapsed_ms.saturating_mul(u64::from(self.quota.per_second));
        bucket.milli_tokens = bucket
            .milli_tokens
            .saturating_add(added)
            .min(self.capacity());
        if now > bucket.last {
            bucket.last = now;
        }
    }

    /// Take one token for `key` at `now`; `Err` with how long until one is available.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let capacity = self.capacity();
            buckets.retain(|_, bucket| {
                self.refill(bucket, now);
                bucket.milli_tokens < capacity
            });
            if buckets.len() >= self.max_keys {
                buckets.clear();
            }
        }
        let capacity = self.capacity();
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            milli_tokens: capacity,
            last: now,
        });
        self.refill(bucket, now);
        if bucket.milli_tokens >= MILLI {
            bucket.milli_tokens -= MILLI;
            Ok(())
        } else {
            let missing = MILLI - bucket.milli_tokens;
            let wait_ms = match self.quota.per_second {
                0 => u64::MAX,
                rate => missing.div_ceil(u64::from(rate)),
            };
            Err(Duration::from_millis(wait_ms))
        }
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::new(
            Quota {
                per_second: 10,
                burst: 3,
            },
            16,
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(&1u8, t0), Ok(()));
        }
        assert_eq!(limiter.check(&1u8, t0), Err(Duration::from_millis(100)));
        // Another key has its own bucket.
        assert_eq!(limiter.check(&2u8, t0), Ok(()));
        // 100 ms later one token is back, not two.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(limiter.check(&1u8, t1), Ok(()));
        assert!(limiter.check(&1u8, t1).is_err());
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3_600);
        for _ in 0..3 {
            assert_eq!(limiter.check(&1u8, t2), Ok(()));
        }
        assert!(limiter.check(&1u8, t2).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = RateLimiter::new(
            Quota {
                per_second: 1,
                burst: 1,
            },
            4,
        );
        let t0 = Instant::now();
        for key in 0..100u32 {
            assert_eq!(limiter.check(&key, t0), Ok(()));
            assert!(limiter.tracked() <= 4);
        }
        // Idle buckets are dropped first: a busy key keeps its (empty) bucket.
        let t1 = t0 + Duration::from_secs(10);
        let busy = 1_000u32;
        assert_eq!(limiter.check(&busy, t1), Ok(()));
        for key in 0..3u32 {
            assert_eq!(limiter.check(&key, t1), Ok(()));
        }
        assert!(limiter.check(&busy, t1).is_err());
    }
}
