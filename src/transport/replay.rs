//! A sliding replay window for the counters of datagrams (as in RFC 6479 and WireGuard): a bitmap
//! of the counters seen behind the newest one, kept in a ring of 64-bit blocks, so that a datagram
//! that arrives twice, or too late, is refused, while datagrams that overtake each other within
//! the window are all accepted. Fixed size, no allocation per packet.

/// Blocks of 64 counters in the ring; one block is the margin that lets the window slide a block
/// at a time.
const BLOCKS: usize = 64;
const BLOCK_BITS: u64 = 64;

/// How many counters behind the newest one the window remembers: a counter at least this far
/// behind the newest accepted one is too old.
pub const WINDOW: u64 = (BLOCKS as u64 - 1) * BLOCK_BITS;

/// The largest counter a sender uses and a window accepts. It stays clear of `u64::MAX`, which
/// the Noise protocol reserves; a session that gets this far needs a new handshake.
pub const MAX_COUNTER: u64 = u64::MAX - (1 << 13);

/// The counters seen so far, as a window behind the newest one.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// The newest counter marked, plus one; 0 while none has been.
    next: u64,
    /// Bit `c % 64` of block `(c / 64) % BLOCKS` is set once counter `c` has been seen.
    bits: [u64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow { next: 0, bits: [0; BLOCKS] }
    }
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow").field("next", &self.next).finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// Whether a datagram with this counter would be accepted: not past [`MAX_COUNTER`], not
    /// seen before, and not [`WINDOW`] or more behind the newest one. Changes nothing: mark the
    /// counter only once its datagram has proved genuine.
    #[must_use]
    pub fn check(&self, counter: u64) -> bool {
        if counter > MAX_COUNTER {
            return false;
        }
        if counter >= self.next {
            return true;
        }
        // `next` is at least 1 here, and the newest is `next - 1 >= counter`.
        if self.next - 1 - counter >= WINDOW {
            return false;
        }
        let (block, bit) = Self::slot(counter);
        self.bits[block] & bit == 0
    }

    /// Records a counter as seen; a newer one than any before slides the window forward. A
    /// counter that [`check`](Self::check) refuses is left alone.
    pub fn mark(&mut self, counter: u64) {
        if !self.check(counter) {
            return;
        }
        if counter >= self.next {
            // Clear the blocks the window slides over, at most the whole ring.
            let new_block = counter / BLOCK_BITS;
            if self.next > 0 {
                let old_block = (self.next - 1) / BLOCK_BITS;
                let clear = (new_block - old_block).min(BLOCKS as u64);
                for i in 1..=clear {
                    self.bits[((old_block + i) % BLOCKS as u64) as usize] = 0;
                }
            }
            self.next = counter + 1;
        }
        let (block, bit) = Self::slot(counter);
        self.bits[block] |= bit;
    }

    /// The newest counter marked, if any.
    #[must_use]
    pub fn newest(&self) -> Option<u64> {
        self.next.checked_sub(1)
    }

    fn slot(counter: u64) -> (usize, u64) {
        (((counter / BLOCK_BITS) % BLOCKS as u64) as usize, 1 << (counter % BLOCK_BITS))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn accept(w: &mut ReplayWindow, c: u64) -> bool {
        let ok = w.check(c);
        if ok {
            w.mark(c);
        }
        ok
    }

    #[test]
    fn counters_in_order_are_accepted_once() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.newest(), None);
        for c in 0..5000 {
            assert!(accept(&mut w, c), "counter {c}");
            assert!(!w.check(c), "counter {c} again");
        }
        assert_eq!(w.newest(), Some(4999));
        assert!(!accept(&mut w, 4000), "a duplicate inside the window");
    }

    #[test]
    fn datagrams_that_overtake_each_other_within_the_window_are_accepted() {
        let mut w = ReplayWindow::default();
        assert!(accept(&mut w, 100));
        assert!(accept(&mut w, 98));
        assert!(accept(&mut w, 99));
        assert!(accept(&mut w, 0));
        assert!(!accept(&mut w, 99));
        let top = 10 * WINDOW;
        assert!(accept(&mut w, top));
        // WINDOW - 1 behind the newest is still inside the window; WINDOW behind is not.
        assert!(accept(&mut w, top - (WINDOW - 1)));
        assert!(!w.check(top - WINDOW), "exactly WINDOW behind is too old");
        assert!(!accept(&mut w, 100), "seen, and now too old as well");
        assert!(accept(&mut w, top - 1));
        assert_eq!(w.newest(), Some(top));
    }

    #[test]
    fn a_jump_far_ahead_forgets_everything_behind_the_window() {
        let mut w = ReplayWindow::default();
        for c in 0..200 {
            assert!(accept(&mut w, c));
        }
        let far = 1_000_000;
        assert!(accept(&mut w, far));
        assert!(!w.check(199), "too old after the jump");
        // The slots the old counters used are free for their namesakes in the new window.
        for c in (far - WINDOW + 1)..far {
            assert!(w.check(c), "counter {c} is new");
        }
        assert!(accept(&mut w, far - 64));
        assert!(!w.check(far - 64));
    }

    #[test]
    fn sliding_a_block_at_a_time_clears_only_the_new_blocks() {
        let mut w = ReplayWindow::default();
        assert!(accept(&mut w, 10));
        assert!(accept(&mut w, 10 + 64));
        assert!(accept(&mut w, 10 + 128));
        assert!(!w.check(10));
        assert!(!w.check(74));
        assert!(w.check(11));
        assert!(w.check(75));
    }

    #[test]
    fn counters_past_the_limit_are_refused() {
        let mut w = ReplayWindow::default();
        assert!(!w.check(u64::MAX));
        assert!(!w.check(MAX_COUNTER + 1));
        w.mark(u64::MAX);
        assert_eq!(w.newest(), None, "a refused counter is not marked");
        assert!(accept(&mut w, MAX_COUNTER));
        assert!(!w.check(MAX_COUNTER));
        assert!(accept(&mut w, MAX_COUNTER - 1));
        assert!(!w.check(0));
    }

    #[test]
    fn mark_without_check_keeps_the_rules() {
        let mut w = ReplayWindow::default();
        w.mark(10_000);
        w.mark(1);
        assert!(!w.check(1) && w.check(9_999) && !w.check(10_000));
        assert!(w.check(10_000 - WINDOW + 1));
        assert!(!w.check(10_000 - WINDOW));
    }

    /// The window as a plain set: what it should accept, checked against the bitmap.
    #[derive(Default)]
    struct Model {
        seen: HashSet<u64>,
        newest: Option<u64>,
    }

    impl Model {
        fn check(&self, c: u64) -> bool {
            if c > MAX_COUNTER || self.seen.contains(&c) {
                return false;
            }
            match self.newest {
                Some(n) if c <= n => n - c < WINDOW,
                _ => true,
            }
        }

        fn mark(&mut self, c: u64) {
            self.seen.insert(c);
            self.newest = Some(self.newest.map_or(c, |n| n.max(c)));
        }
    }

    proptest::proptest! {
        /// Counters that wander around a moving base, with jumps (now and then to the very end of
        /// the counters): the window answers as the set does.
        #[test]
        fn the_window_agrees_with_a_set(steps in proptest::collection::vec((0u8..64, 0u64..6000), 1..400)) {
            let (mut w, mut model) = (ReplayWindow::default(), Model::default());
            let mut base = 0u64;
            for (kind, n) in steps {
                let c = match kind {
                    0 if n < 600 => MAX_COUNTER - n,
                    0 => base + n,
                    1..=9 => { base += n * 3; base }
                    10..=19 => base.saturating_sub(n),
                    20..=39 => base.saturating_sub(n % 70),
                    40..=49 => base + n % 100,
                    _ => base + n,
                };
                let want = model.check(c);
                proptest::prop_assert_eq!(w.check(c), want, "counter {}", c);
                if want {
                    w.mark(c);
                    model.mark(c);
                    if c < MAX_COUNTER / 2 {
                        base = base.max(c);
                    }
                }
            }
        }
    }
}
