//! Seeded allocation workloads: deterministic op traces that the sub-allocator benchmark
//! (`benches/allocators.rs`) replays through memkit and its peers, and that property tests and the
//! pools benchmark can replay too. The same seed gives the same trace on every machine, so figures
//! from two runs (or two allocators in one run) describe the same work.
//!
//! Three workloads, each in a 1 GiB arena by default:
//! - [`game_frame`]: sizes log-uniform 256 B-4 MiB with rare 16-64 MiB ones; most allocations die
//!   within a few frames, some live long, a few live until the end;
//! - [`small_object_churn`]: 64 B-64 KiB objects, about 10 000 live, each step frees a random live
//!   object and allocates a new one;
//! - [`fragmentation_probe`]: fill 90% of the arena with 256 B-1 MiB allocations, free a random
//!   half, then place 256 KiB-4 MiB blocks until the first one fails.
//!
//! Alignments are powers of two from 16 B up to 64 KiB, but never above the size rounded down to a
//! power of two: a GPU resource that asks for 64 KiB alignment (a texture) is itself that large.

use std::vec::Vec;

/// A small, fast, seedable PRNG (SplitMix64). Good enough for workload shapes; not for security.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, n)`; `0` when `n` is `0`. (Multiply-shift: the bias is below
    /// 2^-32 for the ranges used here.)
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Fills `out` with random bytes: test data that no stale buffer holds by chance.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = std::vec![0; len];
        self.fill(&mut out);
        out
    }

    /// A uniform value in `[lo, hi]`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + self.below(hi - lo + 1)
    }

    /// A uniform value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        // The top 53 bits make every value exactly representable.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A value whose logarithm is uniform over `[ln lo, ln hi]`, rounded to an integer in
    /// `[lo, hi]`.
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(0 < lo && lo <= hi);
        let (ln_lo, ln_hi) = ((lo as f64).ln(), (hi as f64).ln());
        let value = (ln_lo + self.unit() * (ln_hi - ln_lo)).exp() as u64;
        value.clamp(lo, hi)
    }

    /// A power-of-two alignment `2^k`, `k` uniform in `[log2 min, log2 max']`, where `max'` is
    /// `max` capped at `size` rounded down to a power of two (and never below `min`).
    pub fn alignment_for(&mut self, size: u64, min: u64, max: u64) -> u64 {
        debug_assert!(min.is_power_of_two() && max.is_power_of_two() && min <= max);
        let size_floor = 1u64 << (63 - size.max(1).leading_zeros());
        let cap = max.min(size_floor).max(min);
        let (lo, hi) = (min.trailing_zeros(), cap.trailing_zeros());
        1u64 << self.range_inclusive(u64::from(lo), u64::from(hi))
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// One step of a trace. Ids are dense, `0..Trace::ids`, each allocated at most once; a `Free`
/// always names an id allocated earlier in the trace (if that allocation failed, replaying the
/// free is a no-op).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceOp {
    /// Allocate `size` bytes at an offset that is a multiple of `align` (a power of two).
    Alloc {
        /// The allocation's id.
        id: u32,
        /// Requested bytes (never zero).
        size: u64,
        /// Requested alignment in bytes.
        align: u64,
    },
    /// Free the allocation made under `id`.
    Free {
        /// The allocation's id.
        id: u32,
    },
}

/// A replayable op sequence over an arena of `capacity` bytes. It ends with every allocation
/// freed, so one allocator can replay it again and again.
#[derive(Clone, Debug)]
pub struct Trace {
    /// A short name for reports.
    pub name: &'static str,
    /// The arena size the trace was shaped for.
    pub capacity: u64,
    /// The ops, in order.
    pub ops: Vec<TraceOp>,
    /// Number of ids used (`0..ids`).
    pub ids: u32,
}

/// What a trace asks for if every allocation succeeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceSummary {
    /// Allocations.
    pub allocations: u64,
    /// Frees.
    pub frees: u64,
    /// Highest sum of live requested bytes.
    pub peak_live_bytes: u64,
    /// Highest number of live allocations.
    pub peak_live_count: u64,
    /// Largest single request.
    pub largest_request: u64,
}

impl Trace {
    /// Counts and peaks of the trace, assuming every allocation succeeds.
    pub fn summary(&self) -> TraceSummary {
        let mut sizes = std::vec![0u64; self.ids as usize];
        let mut summary = TraceSummary::default();
        let (mut live_bytes, mut live_count) = (0u64, 0u64);
        for op in &self.ops {
            match *op {
                TraceOp::Alloc { id, size, .. } => {
                    sizes[id as usize] = size;
                    summary.allocations += 1;
                    summary.largest_request = summary.largest_request.max(size);
                    live_bytes += size;
                    live_count += 1;
                    summary.peak_live_bytes = summary.peak_live_bytes.max(live_bytes);
                    summary.peak_live_count = summary.peak_live_count.max(live_count);
                }
                TraceOp::Free { id } => {
                    summary.frees += 1;
                    live_bytes -= sizes[id as usize];
                    live_count -= 1;
                }
            }
        }
        summary
    }
}

/// The shape of the [`game_frame`] workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GameFrameConfig {
    /// Arena size in bytes.
    pub capacity: u64,
    /// Frames simulated.
    pub frames: u32,
    /// Allocations made per frame.
    pub allocations_per_frame: u32,
    /// Share of allocations 16-64 MiB large (the rest are 256 B-4 MiB).
    pub huge_share: f64,
    /// Share of allocations that live `long_lifetime` frames.
    pub long_share: f64,
    /// Share of allocations that live until the end of the trace.
    pub forever_share: f64,
    /// Lifetime range in frames of a short-lived allocation (the rest).
    pub short_lifetime: (u32, u32),
    /// Lifetime range in frames of a long-lived allocation.
    pub long_lifetime: (u32, u32),
}

impl Default for GameFrameConfig {
    fn default() -> Self {
        Self {
            capacity: 1 << 30,
            frames: 2_000,
            allocations_per_frame: 50,
            huge_share: 0.001,
            long_share: 0.06,
            forever_share: 0.002,
            short_lifetime: (1, 4),
            long_lifetime: (30, 600),
        }
    }
}

/// Sizes and alignments of the game-frame mix: 256 B-4 MiB log-uniform, or 16-64 MiB with
/// probability `huge_share`; alignment 16 B-64 KiB (see the module docs).
fn game_frame_request(rng: &mut SplitMix64, huge_share: f64) -> (u64, u64) {
    let size = if rng.chance(huge_share) {
        rng.log_uniform(16 << 20, 64 << 20)
    } else {
        rng.log_uniform(256, 4 << 20)
    };
    (size, rng.alignment_for(size, 16, 64 << 10))
}

/// A game's per-frame allocation pattern. Each frame first frees what expires in it, then makes
/// `allocations_per_frame` allocations, each short-lived, long-lived or permanent; the trace ends
/// by freeing everything still live, oldest first.
pub fn game_frame(seed: u64, config: &GameFrameConfig) -> Trace {
    let mut rng = SplitMix64::new(seed);
    let frames = config.frames as usize;
    // expiring[f]: ids to free at the start of frame f; index `frames` means "at the end".
    let mut expiring: Vec<Vec<u32>> = std::vec![Vec::new(); frames + 1];
    let total = config.frames as usize * config.allocations_per_frame as usize;
    let mut ops = Vec::with_capacity(total * 2);
    let mut next_id = 0u32;
    for frame in 0..frames {
        for id in core::mem::take(&mut expiring[frame]) {
            ops.push(TraceOp::Free { id });
        }
        for _ in 0..config.allocations_per_frame {
            let (size, align) = game_frame_request(&mut rng, config.huge_share);
            let id = next_id;
            next_id += 1;
            ops.push(TraceOp::Alloc { id, size, align });
            let class = rng.unit();
            let lifetime = if class < config.forever_share {
                usize::MAX
            } else if class < config.forever_share + config.long_share {
                let (lo, hi) = config.long_lifetime;
                rng.range_inclusive(u64::from(lo), u64::from(hi)) as usize
            } else {
                let (lo, hi) = config.short_lifetime;
                rng.range_inclusive(u64::from(lo), u64::from(hi)) as usize
            };
            let due = frame.saturating_add(lifetime).min(frames);
            expiring[due].push(id);
        }
    }
    let mut rest: Vec<u32> = expiring.into_iter().flatten().collect();
    rest.sort_unstable();
    ops.extend(rest.into_iter().map(|id| TraceOp::Free { id }));
    Trace {
        name: "game-frame",
        capacity: config.capacity,
        ops,
        ids: next_id,
    }
}

/// The shape of the [`small_object_churn`] workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChurnConfig {
    /// Arena size in bytes.
    pub capacity: u64,
    /// Live objects at steady state.
    pub live: u32,
    /// Replacement steps (one free and one allocation each) after the ramp-up.
    pub steps: u32,
    /// Smallest and largest object size in bytes (log-uniform).
    pub size_range: (u64, u64),
    /// Largest alignment (alignments run from 16 B up to this, capped at the size).
    pub max_align: u64,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        Self {
            capacity: 1 << 30,
            live: 10_000,
            steps: 100_000,
            size_range: (64, 64 << 10),
            max_align: 256,
        }
    }
}

/// Small objects replaced at random: allocate `live` objects, then `steps` times free a random
/// live one and allocate a new one, then free everything in random order.
pub fn small_object_churn(seed: u64, config: &ChurnConfig) -> Trace {
    let mut rng = SplitMix64::new(seed);
    let (lo, hi) = config.size_range;
    let mut ops = Vec::with_capacity(2 * (config.live + config.steps) as usize);
    let mut live: Vec<u32> = Vec::with_capacity(config.live as usize);
    let mut next_id = 0u32;
    let mut alloc = |rng: &mut SplitMix64, ops: &mut Vec<TraceOp>| {
        let size = rng.log_uniform(lo, hi);
        let align = rng.alignment_for(size, 16, config.max_align);
        let id = next_id;
        next_id += 1;
        ops.push(TraceOp::Alloc { id, size, align });
        id
    };
    for _ in 0..config.live {
        let id = alloc(&mut rng, &mut ops);
        live.push(id);
    }
    for _ in 0..config.steps {
        if !live.is_empty() {
            let victim = rng.below(live.len() as u64) as usize;
            ops.push(TraceOp::Free {
                id: live.swap_remove(victim),
            });
        }
        let id = alloc(&mut rng, &mut ops);
        live.push(id);
    }
    rng.shuffle(&mut live);
    ops.extend(live.into_iter().map(|id| TraceOp::Free { id }));
    Trace {
        name: "churn",
        capacity: config.capacity,
        ops,
        ids: next_id,
    }
}

/// The shape of the [`fragmentation_probe`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeConfig {
    /// Arena size in bytes.
    pub capacity: u64,
    /// Requested bytes to fill, as a share of the capacity.
    pub fill_share: f64,
    /// Size range of the fill allocations (log-uniform). The default, 256 B-1 MiB, leaves holes
    /// mostly smaller than the probe blocks once the random half is freed, so the probe measures
    /// how well an allocator keeps large runs free.
    pub fill_size_range: (u64, u64),
    /// Size range of the probe blocks (log-uniform).
    pub probe_size_range: (u64, u64),
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            capacity: 1 << 30,
            fill_share: 0.9,
            fill_size_range: (256, 1 << 20),
            probe_size_range: (256 << 10, 4 << 20),
        }
    }
}

/// A fragmentation probe: `fill` allocates (`fill_size_range`, log-uniform, by default 256 B-1 MiB;
/// alignments 16 B-64 KiB as in the module docs) until the requested bytes reach `fill_share` of
/// the arena; `free` frees a random half of those
/// ids; then the probe blocks in `probe` are placed in order until the first failure. The share of
/// free bytes placed is what the probe measures.
#[derive(Clone, Debug)]
pub struct FragmentationProbe {
    /// Arena size in bytes.
    pub capacity: u64,
    /// The fill: id `i` is `fill[i]` as (size, align).
    pub fill: Vec<(u64, u64)>,
    /// Fill ids to free, in order (half of them).
    pub free: Vec<u32>,
    /// Probe blocks as (size, align), enough to cover the whole arena.
    pub probe: Vec<(u64, u64)>,
}

/// Builds the probe's three phases from `seed`.
pub fn fragmentation_probe(seed: u64, config: &ProbeConfig) -> FragmentationProbe {
    let mut rng = SplitMix64::new(seed);
    let target = (config.capacity as f64 * config.fill_share) as u64;
    let mut fill = Vec::new();
    let mut filled = 0u64;
    while filled < target {
        let size = rng.log_uniform(config.fill_size_range.0, config.fill_size_range.1);
        let align = rng.alignment_for(size, 16, 64 << 10);
        // The last fill request is cut to land exactly on the target; its alignment shrinks
        // with it, as the module's alignment rule says.
        let size = size.min(target - filled);
        let size_floor = 1u64 << (63 - size.leading_zeros());
        fill.push((size, align.min(size_floor).max(16)));
        filled += size;
    }
    let mut free: Vec<u32> = (0..fill.len() as u32).collect();
    rng.shuffle(&mut free);
    free.truncate(fill.len() / 2);
    let (lo, hi) = config.probe_size_range;
    let mut probe = Vec::new();
    let mut covered = 0u64;
    while covered < config.capacity {
        let size = rng.log_uniform(lo, hi);
        probe.push((size, rng.alignment_for(size, 16, 64 << 10)));
        covered += size;
    }
    FragmentationProbe {
        capacity: config.capacity,
        fill,
        free,
        probe,
    }
}

#[cfg(test)]
mod tests;
