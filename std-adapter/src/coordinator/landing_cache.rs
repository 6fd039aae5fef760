//! The landing buffers of dropped read-backs, kept for the next read-backs to land in.
//!
//! A new landing buffer costs a memory allocation and, on a discrete GPU, pinning its pages: on
//! an H200 each read of 1 MiB took about 1.4 ms that way and each read of 64 MiB about 19 ms,
//! while a kept one is reused at once. How many bytes to keep is the application's working set
//! of read-backs, which no fixed number fits: too few and a burst of large read-backs (every
//! texture of a scene, say) makes all but the first few of its buffers anew each time; too many
//! and host memory stays pinned for read-backs that are over. So the cache keeps what read-backs
//! held at once lately: at most the most landing bytes held at once during the current window
//! and the one before it ([`PEAK_WINDOW`] each), and never more than a cap
//! ([`crate::CoordinatorConfig::read_back_cache_bytes`]). A burst that repeats within a window
//! or two finds every buffer it needs; bytes no read-back needed for two windows go back.
//!
//! The buffers themselves are opaque here (`T`): the cache counts bytes and hands out and takes
//! back what the coordinator gives it, and the caller retires what it evicts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long the most bytes held at once counts towards what the cache keeps: it keeps the most
/// of this window and the one before. A second spans dozens of frames at any frame rate, so a
/// read-back made every frame (or every few) keeps its buffers, and a cache nothing used for two
/// seconds is given back.
pub(super) const PEAK_WINDOW: Duration = Duration::from_secs(1);

/// The smallest landing buffer: read-backs smaller than this share its size class.
pub(super) const MIN_LANDING: u64 = 4096;

/// The size class of a landing buffer for `size` bytes: eight classes per power of two, so a
/// buffer is at most an eighth larger than asked for (a texture's 21.3 MiB of levels takes
/// 22 MiB, not the 32 MiB of the next power of two), and at least [`MIN_LANDING`]. `None` past
/// the largest class.
pub(super) fn landing_class(size: u64) -> Option<u64> {
    let size = size.max(MIN_LANDING);
    let step = 1u64 << (63 - size.leading_zeros()).saturating_sub(3);
    size.checked_next_multiple_of(step)
}

/// Kept landing buffers, oldest first, and the counts that say how many bytes to keep.
pub(super) struct LandingCache<T> {
    /// Each buffer with its size, oldest first.
    kept: VecDeque<(u64, T)>,
    /// Bytes of `kept` (kept beside it so that a drop does not sum the list).
    kept_bytes: u64,
    /// Landing bytes the application's read-backs hold now: handed out and not given back.
    held: u64,
    /// The most `held` reached in the current window.
    peak: u64,
    /// The most `held` reached in the window before.
    previous_peak: u64,
    /// When the current window began.
    window_start: Instant,
    /// The most bytes ever kept.
    cap: u64,
}

impl<T> LandingCache<T> {
    /// An empty cache that keeps at most `cap` bytes; its first window starts at `now`.
    pub(super) fn new(cap: u64, now: Instant) -> Self {
        Self {
            kept: VecDeque::new(),
            kept_bytes: 0,
            held: 0,
            peak: 0,
            previous_peak: 0,
            window_start: now,
            cap,
        }
    }

    /// Whether a buffer of `size` bytes may be kept at all: one of a size class within the cap
    /// (a larger read-back gets a buffer of its own size, made and destroyed with it).
    pub(super) fn keeps(&self, size: u64) -> bool {
        size <= self.cap && landing_class(size) == Some(size)
    }

    /// The kept buffer for a read-back of size class `class`: the smallest kept one that holds
    /// it and is at most a quarter larger, oldest first among equals. It counts as held from
    /// here on, as does a new one the caller makes instead ([`LandingCache::hand_out`]).
    pub(super) fn take(&mut self, class: u64, now: Instant) -> Option<T> {
        let fits = |size: u64| size >= class && size - class <= class / 4;
        let mut best: Option<(usize, u64)> = None;
        for (i, &(size, _)) in self.kept.iter().enumerate() {
            if fits(size) && best.is_none_or(|(_, b)| size < b) {
                best = Some((i, size));
                if size == class {
                    break;
                }
            }
        }
        let (i, size) = best?;
        let (_, buffer) = self.kept.remove(i)?;
        self.kept_bytes -= size;
        self.hand_out(size, now);
        Some(buffer)
    }

    /// A new landing buffer of `size` bytes is held by a read-back.
    pub(super) fn hand_out(&mut self, size: u64, now: Instant) {
        self.roll(now);
        self.held += size;
        self.peak = self.peak.max(self.held);
    }

    /// A read-back gave back its landing buffer of `size` bytes: kept when `keep` (the caller's
    /// say: the buffer is still good) and [`LandingCache::keeps`] allow. Returns what the caller
    /// retires: the buffer itself when not kept, and the oldest kept ones past what the cache
    /// keeps now.
    pub(super) fn give_back(&mut self, size: u64, buffer: T, keep: bool, now: Instant) -> Vec<T> {
        self.roll(now);
        self.held = self.held.saturating_sub(size);
        let mut evicted = Vec::new();
        if keep && self.keeps(size) && size <= self.limit() {
            self.kept_bytes += size;
            self.kept.push_back((size, buffer));
        } else {
            evicted.push(buffer);
        }
        self.evict_past_limit(&mut evicted);
        evicted
    }

    /// Starts a new window when the current one is over, and returns the oldest kept buffers
    /// past what the cache keeps then, for the caller to retire.
    pub(super) fn trim(&mut self, now: Instant) -> Vec<T> {
        let mut evicted = Vec::new();
        if self.kept.is_empty() {
            return evicted;
        }
        self.roll(now);
        self.evict_past_limit(&mut evicted);
        evicted
    }

    /// Every kept buffer, for teardown or for room: the cache keeps nothing until the next
    /// read-back gives one back.
    pub(super) fn take_all(&mut self) -> Vec<T> {
        self.kept_bytes = 0;
        self.kept.drain(..).map(|(_, b)| b).collect()
    }

    /// Bytes kept now.
    pub(super) fn kept_bytes(&self) -> u64 {
        self.kept_bytes
    }

    /// The most bytes the cache keeps now: the most held at once in this window and the one
    /// before, within the cap.
    fn limit(&self) -> u64 {
        self.cap.min(self.peak.max(self.previous_peak))
    }

    fn evict_past_limit(&mut self, evicted: &mut Vec<T>) {
        let limit = self.limit();
        while self.kept_bytes > limit {
            let Some((size, oldest)) = self.kept.pop_front() else {
                break;
            };
            self.kept_bytes -= size;
            evicted.push(oldest);
        }
    }

    /// Moves to the window `now` lies in. Every change to `held` rolls first, so when two
    /// windows or more went by since the last roll, `held` stayed as it is through the last
    /// whole one, and that is its peak.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < PEAK_WINDOW {
            return;
        }
        self.previous_peak = if elapsed >= 2 * PEAK_WINDOW {
            self.held
        } else {
            self.peak
        };
        self.peak = self.held;
        self.window_start = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn classes_are_eighths_of_a_power_of_two_from_4_kib() {
        assert_eq!(landing_class(0), Some(4096));
        assert_eq!(landing_class(4096), Some(4096));
        assert_eq!(landing_class(4097), Some(4096 + 512));
        // 2048x2048 RGBA8 with every mip level: 22,369,620 bytes.
        assert_eq!(landing_class(22_369_620), Some(22 * MIB));
        assert_eq!(landing_class(16 * MIB + 1), Some(18 * MIB));
        assert_eq!(landing_class(u64::MAX), None);
        for size in [5000, 70_000, 3 * MIB + 7, 999 * MIB] {
            let class = landing_class(size).unwrap();
            assert!(class >= size && class - size <= size / 8, "{size}: {class}");
        }
    }

    #[test]
    fn a_burst_held_at_once_is_kept_whole_and_found_again() {
        let t = Instant::now();
        let mut cache = LandingCache::new(1 << 30, t);
        for _ in 0..32 {
            cache.hand_out(22 * MIB, t);
        }
        for i in 0..32u32 {
            assert!(cache.give_back(22 * MIB, i, true, t).is_empty());
        }
        assert_eq!(cache.kept_bytes(), 32 * 22 * MIB);
        let again: Vec<u32> = (0..32)
            .map(|_| cache.take(22 * MIB, t).expect("kept"))
            .collect();
        assert_eq!(again, (0..32).collect::<Vec<_>>(), "oldest first");
        assert_eq!(cache.kept_bytes(), 0);
        assert_eq!(cache.take(22 * MIB, t), None);
    }

    #[test]
    fn it_keeps_no_more_than_was_held_at_once_nor_the_cap() {
        let t = Instant::now();
        let mut cache = LandingCache::new(40 * MIB, t);
        // One at a time: the second read-back's buffer finds no room beside the first.
        cache.hand_out(8 * MIB, t);
        assert!(cache.give_back(8 * MIB, 1, true, t).is_empty());
        cache.hand_out(16 * MIB, t);
        assert_eq!(cache.give_back(16 * MIB, 2, true, t), vec![1]);
        assert_eq!(cache.kept_bytes(), 16 * MIB);
        // Three held at once, 48 MiB: the cap keeps 40, so two of 16 MiB, the newest.
        for _ in 0..3 {
            cache.hand_out(16 * MIB, t);
        }
        let mut evicted = Vec::new();
        for i in 3..6 {
            evicted.extend(cache.give_back(16 * MIB, i, true, t));
        }
        assert_eq!(evicted, vec![2, 3]);
        assert_eq!(cache.kept_bytes(), 32 * MIB);
        // Not a size class, or past the cap: never kept.
        cache.hand_out(5000, t);
        assert_eq!(cache.give_back(5000, 7, true, t), vec![7]);
        cache.hand_out(64 * MIB, t);
        assert_eq!(cache.give_back(64 * MIB, 8, true, t), vec![8]);
        // Not kept when the caller says the buffer is no good.
        cache.hand_out(16 * MIB, t);
        assert_eq!(cache.give_back(16 * MIB, 9, false, t), vec![9]);
        assert_eq!(cache.kept_bytes(), 32 * MIB);
    }

    #[test]
    fn a_taken_buffer_holds_the_read_back_and_wastes_at_most_a_quarter() {
        let t = Instant::now();
        let mut cache = LandingCache::new(1 << 30, t);
        for size in [8, 10, 9, 4] {
            cache.hand_out(size * MIB, t);
        }
        for (i, size) in [(0, 8), (1, 10), (2, 9), (3, 4)] {
            assert!(cache.give_back(size * MIB, i, true, t).is_empty());
        }
        // 7 MiB: 8 is the smallest that holds it, within a quarter.
        assert_eq!(cache.take(7 * MIB, t), Some(0));
        // 8 MiB: 9 and 10 both fit; the smaller goes.
        assert_eq!(cache.take(8 * MIB, t), Some(2));
        // 6 MiB: 10 is more than a quarter over, 4 too small.
        assert_eq!(cache.take(6 * MIB, t), None);
        assert_eq!(cache.take(10 * MIB, t), Some(1));
        assert_eq!(cache.kept_bytes(), 4 * MIB);
    }

    #[test]
    fn bytes_no_read_back_needed_for_two_windows_go_back() {
        let t = Instant::now();
        let mut cache = LandingCache::new(1 << 30, t);
        for _ in 0..4 {
            cache.hand_out(16 * MIB, t);
        }
        for i in 0..4 {
            assert!(cache.give_back(16 * MIB, i, true, t).is_empty());
        }
        // Within the window, and in the next one (the previous window's peak still counts).
        assert!(cache.trim(t + PEAK_WINDOW / 2).is_empty());
        assert!(cache.trim(t + PEAK_WINDOW).is_empty());
        assert_eq!(cache.kept_bytes(), 64 * MIB);
        // One read-back of 16 MiB in that window: the window after keeps that much.
        let one = cache.take(16 * MIB, t + PEAK_WINDOW * 3 / 2).expect("kept");
        assert!(
            cache
                .give_back(16 * MIB, one, true, t + PEAK_WINDOW * 3 / 2)
                .is_empty()
        );
        assert_eq!(cache.trim(t + PEAK_WINDOW * 2), vec![1, 2, 3]);
        assert_eq!(cache.kept_bytes(), 16 * MIB);
        // Two whole windows with nothing held: nothing kept.
        assert_eq!(cache.trim(t + PEAK_WINDOW * 4), vec![0]);
        assert_eq!(cache.kept_bytes(), 0);
    }

    #[test]
    fn take_all_empties_the_cache_but_not_what_read_backs_hold() {
        let t = Instant::now();
        let mut cache = LandingCache::new(1 << 30, t);
        cache.hand_out(MIB, t);
        cache.hand_out(MIB, t);
        assert!(cache.give_back(MIB, 1, true, t).is_empty());
        assert_eq!(cache.take_all(), vec![1]);
        assert_eq!(cache.kept_bytes(), 0);
        // The one still held comes back into the room the peak left.
        assert!(cache.give_back(MIB, 2, true, t).is_empty());
        assert_eq!(cache.kept_bytes(), MIB);
    }
}
