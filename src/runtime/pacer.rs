//! The one clock: virtual time, paced against the wall clock at a speed factor.
//!
//! Every event runs at its own simulated time. Pacing only decides when, in real time, the driver
//! may run it: never before `anchor_wall + (t - anchor_sim) / speed`. A run that falls behind runs
//! late, and computes the same thing. At speed `max` nothing waits: that is virtual time.

use std::time::{Duration, Instant};

use crate::time::SimTime;

/// How fast simulated time runs against real time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as the CPU allows (virtual time).
    Max,
    /// This many simulated seconds per real second.
    Factor(f64),
}

impl Speed {
    pub const MIN_FACTOR: f64 = 0.01;
    pub const MAX_FACTOR: f64 = 1000.0;

    /// `1`, `0.5`, `10x`, `max`.
    pub fn parse(s: &str) -> Result<Speed, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let f: f64 = t
            .strip_suffix(['x', 'X'])
            .unwrap_or(t)
            .parse()
            .map_err(|_| format!("`{s}` is not a speed (a factor such as 1, 0.5 or 10, or `max`)"))?;
        if !(Self::MIN_FACTOR..=Self::MAX_FACTOR).contains(&f) {
            return Err(format!("speed {f} is out of range 0.01 to 1000 (or `max`)"));
        }
        Ok(Speed::Factor(f))
    }

    #[must_use]
    pub fn is_max(self) -> bool {
        self == Speed::Max
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Max => write!(f, "max"),
            Speed::Factor(x) => write!(f, "{x}x"),
        }
    }
}

/// When an event is due on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Now; `late` says how far behind the wall clock it is.
    Now { late: Duration },
    /// After this long.
    In(Duration),
}

/// Maps simulated time to the wall clock and back.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: Speed,
    anchor_wall: Instant,
    anchor_sim: SimTime,
    paused: bool,
}

impl Pacer {
    #[must_use]
    pub fn new(speed: Speed, now: Instant) -> Self {
        Pacer { speed, anchor_wall: now, anchor_sim: SimTime::ZERO, paused: false }
    }

    #[must_use]
    pub fn speed(&self) -> Speed {
        self.speed
    }

    #[must_use]
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Whether simulated time `t` is due on the wall clock at `wall`: how late it is, or how long
    /// is left. At speed `max` everything is due at once.
    #[must_use]
    pub fn due(&self, t: SimTime, wall: Instant) -> Due {
        match self.speed {
            Speed::Max => Due::Now { late: Duration::ZERO },
            Speed::Factor(f) => {
                let ahead = (t - self.anchor_sim).as_secs_f64() / f;
                let left = ahead - wall.saturating_duration_since(self.anchor_wall).as_secs_f64();
                if left <= 0.0 {
                    Due::Now { late: Duration::try_from_secs_f64(-left).unwrap_or(Duration::MAX) }
                } else {
                    Due::In(Duration::try_from_secs_f64(left).unwrap_or(Duration::MAX))
                }
            }
        }
    }

    /// The simulated time the wall clock says it is at `wall`, for a frame that arrives from
    /// outside then; the driver clamps it to the lab's own time.
    #[must_use]
    pub fn sim_at(&self, wall: Instant) -> SimTime {
        match self.speed {
            _ if self.paused => self.anchor_sim,
            Speed::Max => self.anchor_sim,
            Speed::Factor(f) => {
                let ran = wall.saturating_duration_since(self.anchor_wall).as_secs_f64() * f;
                self.anchor_sim + Duration::try_from_secs_f64(ran).unwrap_or(Duration::MAX)
            }
        }
    }

    /// Re-anchors at the lab's current time, so that a change of speed or a pause does not make
    /// the lab catch up or jump.
    fn anchor(&mut self, sim_now: SimTime, wall: Instant) {
        self.anchor_sim = sim_now;
        self.anchor_wall = wall;
    }

    pub fn set_speed(&mut self, speed: Speed, sim_now: SimTime, wall: Instant) {
        self.anchor(sim_now, wall);
        self.speed = speed;
    }

    pub fn pause(&mut self, sim_now: SimTime, wall: Instant) {
        self.anchor(sim_now, wall);
        self.paused = true;
    }

    pub fn resume(&mut self, sim_now: SimTime, wall: Instant) {
        self.anchor(sim_now, wall);
        self.paused = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse_with_their_range() {
        assert_eq!(Speed::parse("max"), Ok(Speed::Max));
        assert_eq!(Speed::parse("2"), Ok(Speed::Factor(2.0)));
        assert_eq!(Speed::parse("0.5x"), Ok(Speed::Factor(0.5)));
        assert!(Speed::parse("0").unwrap_err().contains("out of range"));
        assert!(Speed::parse("5000").unwrap_err().contains("out of range"));
        assert!(Speed::parse("fast").unwrap_err().contains("not a speed"));
    }

    #[test]
    fn pacing_maps_both_ways_and_re_anchors() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Speed::Factor(2.0), t0);
        // At 2x, one simulated second is due half a second in.
        assert_eq!(p.due(SimTime::from_millis(1000), t0), Due::In(Duration::from_millis(500)));
        assert_eq!(
            p.due(SimTime::from_millis(1000), t0 + Duration::from_millis(600)),
            Due::Now { late: Duration::from_millis(100) }
        );
        assert_eq!(p.sim_at(t0 + Duration::from_millis(500)), SimTime::from_millis(1000));
        // Paused at 1 s simulated, 3 s wall: no catching up afterwards.
        let t3 = t0 + Duration::from_secs(3);
        p.pause(SimTime::from_millis(1000), t3);
        assert_eq!(p.sim_at(t3 + Duration::from_secs(10)), SimTime::from_millis(1000));
        p.resume(SimTime::from_millis(1000), t3 + Duration::from_secs(10));
        assert_eq!(
            p.due(SimTime::from_millis(1200), t3 + Duration::from_secs(10)),
            Due::In(Duration::from_millis(100))
        );
        p.set_speed(Speed::Max, SimTime::from_millis(1200), t3);
        assert_eq!(p.due(SimTime::MAX, t3), Due::Now { late: Duration::ZERO });
    }
}
