//! The schedule shared by ping and the UDP echo client: numbered probes sent every `interval`,
//! each answered or given up after `timeout`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::{min_wake, Rtts};
use crate::time::SimTime;

#[derive(Debug, Clone)]
pub struct Probes {
    count: u32,
    interval: Duration,
    timeout: Duration,
    next_seq: u32,
    next_send: SimTime,
    /// Sequence number → send time, for probes not yet answered or given up.
    waiting: BTreeMap<u32, SimTime>,
    /// Probes in the order sent (and so of their deadlines), for giving up on them in turn; an
    /// entry whose probe was answered is skipped when it comes up.
    order: VecDeque<(SimTime, u32)>,
    pub answered: u32,
    /// Answers whose payload differed from the probe.
    pub corrupt: u32,
    /// Probes the socket refused (its buffer full, for instance while ARP is pending).
    pub send_errors: u32,
    pub rtts: Rtts,
    /// The first [`LOST_KEPT`] probes lost: refused, given up on, or answered corrupt.
    lost: Vec<u32>,
}

/// How many lost probes are named.
pub const LOST_KEPT: usize = 1000;

impl Probes {
    pub fn new(start: SimTime, count: u32, interval: Duration, timeout: Duration) -> Self {
        Probes {
            count,
            interval,
            timeout,
            next_seq: 0,
            next_send: start,
            waiting: BTreeMap::new(),
            order: VecDeque::new(),
            answered: 0,
            corrupt: 0,
            send_errors: 0,
            rtts: Rtts::default(),
            lost: Vec::new(),
        }
    }

    /// The next probe due at `now`, if any.
    pub fn due(&self, now: SimTime) -> Option<u32> {
        (self.next_seq < self.count && self.next_send <= now).then_some(self.next_seq)
    }

    /// Records the due probe as sent, or as refused by the socket. Either way the schedule moves on,
    /// as ping does when `sendmsg` fails: a refused probe counts as lost.
    pub fn sent(&mut self, now: SimTime, ok: bool) {
        if ok {
            self.waiting.insert(self.next_seq, now);
            self.order.push_back((now, self.next_seq));
        } else {
            self.send_errors += 1;
            self.lose(self.next_seq);
        }
        self.next_seq += 1;
        self.next_send = self.next_send + self.interval;
    }

    /// An answer to probe `seq`; `intact` says whether its payload matched.
    pub fn answer(&mut self, now: SimTime, seq: u32, intact: bool) {
        if let Some(sent) = self.waiting.remove(&seq) {
            if intact {
                self.answered += 1;
                self.rtts.add(now - sent);
            } else {
                self.corrupt += 1;
                self.lose(seq);
            }
        }
    }

    /// The probe a 16-bit echo sequence number answers: the oldest one waiting whose low bits
    /// match, so that counts past 65,535 wrap without losing their replies.
    #[must_use]
    pub fn unwrap_seq(&self, seq16: u16) -> Option<u32> {
        let mut n = u32::from(seq16);
        while n < self.next_seq {
            if self.waiting.contains_key(&n) {
                return Some(n);
            }
            n = n.checked_add(0x1_0000)?;
        }
        None
    }

    /// Gives up on probes older than the timeout; returns when the schedule next needs a poll.
    /// Each probe is looked at once here, whatever the number in flight.
    pub fn expire(&mut self, now: SimTime) -> Option<SimTime> {
        while let Some(&(sent, seq)) = self.order.front() {
            if !self.waiting.contains_key(&seq) {
                self.order.pop_front();
            } else if now - sent >= self.timeout {
                self.waiting.remove(&seq);
                self.order.pop_front();
                self.lose(seq);
            } else {
                break;
            }
        }
        let next_send = (self.next_seq < self.count).then_some(self.next_send);
        min_wake(next_send, self.order.front().map(|(t, _)| *t + self.timeout))
    }

    fn lose(&mut self, seq: u32) {
        if self.lost.len() < LOST_KEPT {
            self.lost.push(seq);
        }
    }

    /// The probes lost so far (the first [`LOST_KEPT`]), in order.
    pub fn lost_seqs(&self) -> Vec<u32> {
        let mut v = self.lost.clone();
        v.sort_unstable();
        v
    }

    pub fn done(&self) -> bool {
        self.next_seq >= self.count && self.waiting.is_empty()
    }

    /// Probes sent (including refused ones).
    pub fn sent_count(&self) -> u32 {
        self.next_seq
    }

    /// Lost probes (refused, corrupt or unanswered) in percent of those sent; pending ones are not lost yet.
    pub fn loss_pct(&self) -> f64 {
        let pending = u32::try_from(self.waiting.len()).unwrap_or(u32::MAX);
        let lost = self.next_seq.saturating_sub(self.answered).saturating_sub(pending);
        if self.next_seq == 0 {
            0.0
        } else {
            f64::from(lost) * 100.0 / f64::from(self.next_seq)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_answers_timeouts_and_refusals() {
        let ms = SimTime::from_millis;
        let mut p = Probes::new(ms(0), 3, Duration::from_millis(100), Duration::from_millis(250));
        assert_eq!(p.due(ms(0)), Some(0));
        p.sent(ms(0), true);
        assert_eq!(p.due(ms(50)), None);
        assert_eq!(p.expire(ms(50)), Some(ms(100)));
        p.sent(ms(100), false); // refused: lost, and the schedule moves on
        p.answer(ms(120), 0, true);
        assert_eq!(p.due(ms(200)), Some(2));
        p.sent(ms(200), true);
        assert_eq!(p.expire(ms(300)), Some(ms(450)));
        assert!(!p.done());
        assert_eq!(p.expire(ms(450)), None);
        assert!(p.done());
        assert_eq!((p.sent_count(), p.answered, p.send_errors), (3, 1, 1));
        assert!((p.loss_pct() - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(p.rtts.stats().map(|s| s.min_ms), Some(120.0));
        assert_eq!(p.lost_seqs(), [1, 2], "refused, then given up on");
    }

    #[test]
    fn sequence_numbers_wrap_past_65535() {
        let mut p = Probes::new(SimTime::ZERO, 70_000, Duration::ZERO, Duration::from_secs(1));
        for _ in 0..70_000 {
            p.sent(SimTime::ZERO, true);
        }
        // Low bits 5 match probes 5 and 65541; the oldest waiting is answered first.
        assert_eq!(p.unwrap_seq(5), Some(5));
        p.answer(SimTime::from_millis(1), 5, true);
        assert_eq!(p.unwrap_seq(5), Some(65_541));
        // Probe 69,999 is 4463 + 65,536; 4464 + 65,536 was never sent.
        p.answer(SimTime::from_millis(1), 4463, true);
        assert_eq!(p.unwrap_seq(4463), Some(69_999));
        p.answer(SimTime::from_millis(1), 4464, true);
        assert_eq!(p.unwrap_seq(4464), None);
        assert_eq!(p.answered, 3);
    }
}
