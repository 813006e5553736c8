//! Simulated time. The core never reads a clock: every step is given a [`SimTime`] by its caller,
//! which is either a virtual clock that jumps to the next event or a wall clock at the edge.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// Nanoseconds since the start of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    #[must_use]
    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    #[must_use]
    pub const fn from_micros(us: u64) -> Self {
        SimTime(us.saturating_mul(1_000))
    }
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        SimTime(ms.saturating_mul(1_000_000))
    }
    #[must_use]
    pub fn from_duration(d: Duration) -> Self {
        SimTime(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    #[must_use]
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }
    #[must_use]
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        SimTime(self.0.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
    }

    /// smoltcp counts in microseconds; round down so that a deadline is never reported late.
    #[must_use]
    pub fn to_smoltcp(self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(i64::try_from(self.0 / 1_000).unwrap_or(i64::MAX))
    }

    /// A smoltcp instant back in nanoseconds; negative instants clamp to zero.
    #[must_use]
    pub fn from_smoltcp(i: smoltcp::time::Instant) -> Self {
        SimTime::from_micros(u64::try_from(i.total_micros()).unwrap_or(0))
    }
}

impl Add<Duration> for SimTime {
    type Output = SimTime;
    fn add(self, d: Duration) -> SimTime {
        self.saturating_add(d)
    }
}

impl Sub for SimTime {
    type Output = Duration;
    fn sub(self, rhs: SimTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoltcp_round_trip_truncates_to_micros() {
        let t = SimTime::from_nanos(1_234_567_891);
        assert_eq!(t.to_smoltcp().total_micros(), 1_234_567);
        assert_eq!(SimTime::from_smoltcp(t.to_smoltcp()), SimTime::from_nanos(1_234_567_000));
    }

    #[test]
    fn negative_smoltcp_instant_clamps_to_zero() {
        assert_eq!(SimTime::from_smoltcp(smoltcp::time::Instant::from_micros(-5)), SimTime::ZERO);
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(SimTime::MAX + Duration::from_secs(1), SimTime::MAX);
        assert_eq!(SimTime::ZERO - SimTime::from_millis(5), Duration::ZERO);
        assert_eq!(SimTime::from_millis(1500) - SimTime::from_millis(500), Duration::from_secs(1));
        assert_eq!(format!("{}", SimTime::from_millis(1500)), "1.500s");
    }
}
