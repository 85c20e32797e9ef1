//! The replica output-buffer limit (`client-output-buffer-limit replica <hard> <soft>
//! <seconds>`), as a pure decision.
//!
//! A ringkv replica has no output buffer: what it is owed is the stretch of backlog between
//! its cursor and the end of the stream, so that lag is what the limit is applied to. Redis'
//! rules: at or over the hard limit, close now; at or over the soft limit continuously for more
//! than the soft seconds, close; dropping under the soft limit restarts the soft clock. A limit
//! of 0 is off. (A cursor the backlog overran is closed regardless, by the caller.)

use crate::config::OutputBufferLimit;

/// Whether a replica owed `lag` bytes must be disconnected now. `soft_since` is the
/// replica's soft-limit clock (unix ms it first went over the soft limit), updated here.
pub fn exceeded(
    lag: u64,
    limit: &OutputBufferLimit,
    soft_since: &mut Option<u64>,
    now_ms: u64,
) -> bool {
    if limit.hard_bytes > 0 && lag >= limit.hard_bytes {
        return true;
    }
    if limit.soft_bytes == 0 || lag < limit.soft_bytes {
        *soft_since = None;
        return false;
    }
    let since = *soft_since.get_or_insert(now_ms);
    now_ms.saturating_sub(since) > limit.soft_seconds * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn replica_default() -> OutputBufferLimit {
        OutputBufferLimit {
            hard_bytes: 256 * MB,
            soft_bytes: 64 * MB,
            soft_seconds: 60,
        }
    }

    #[test]
    fn limits_follow_redis_rules() {
        let limit = replica_default();
        /// (lag, soft clock before, now, expected verdict, soft clock after)
        type Row = (u64, Option<u64>, u64, bool, Option<u64>);
        let table: &[Row] = &[
            (0, None, 1_000, false, None),
            (64 * MB - 1, Some(5), 1_000, false, None),
            (64 * MB, None, 1_000, false, Some(1_000)),
            (64 * MB, Some(1_000), 61_000, false, Some(1_000)),
            (64 * MB, Some(1_000), 61_001, true, Some(1_000)),
            (100 * MB, Some(1_000), 30_000, false, Some(1_000)),
            (256 * MB - 1, None, 1_000, false, Some(1_000)),
            (256 * MB, None, 1_000, true, None),
            (u64::MAX, Some(1), 2, true, Some(1)),
        ];
        for &(lag, before, now, verdict, after) in table {
            let mut clock = before;
            assert_eq!(
                exceeded(lag, &limit, &mut clock, now),
                verdict,
                "lag {lag} clock {before:?} now {now}"
            );
            assert_eq!(clock, after, "lag {lag} clock {before:?} now {now}");
        }
    }

    #[test]
    fn zero_disables_a_limit() {
        let off = OutputBufferLimit::default();
        let mut clock = None;
        assert!(!exceeded(u64::MAX, &off, &mut clock, 10));
        assert_eq!(clock, None);
        let soft_only = OutputBufferLimit {
            hard_bytes: 0,
            soft_bytes: 10,
            soft_seconds: 0,
        };
        assert!(!exceeded(10, &soft_only, &mut clock, 100));
        assert!(exceeded(10, &soft_only, &mut clock, 101));
        let hard_only = OutputBufferLimit {
            hard_bytes: 10,
            soft_bytes: 0,
            soft_seconds: 5,
        };
        let mut clock = None;
        assert!(!exceeded(9, &hard_only, &mut clock, 0));
        assert!(exceeded(10, &hard_only, &mut clock, 0));
    }
}
