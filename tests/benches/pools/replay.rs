//! What the pool benchmarks share: their traces, replaying a trace through an allocator's
//! allocate and free, and the median they quote.

use std::time::Instant;

use memkit_tests::workloads::{
    ChurnConfig, GameFrameConfig, Trace, TraceOp, game_frame, small_object_churn,
};

/// The game-frame trace (1000 frames, 200 with `quick`) and the churn trace (20 000
/// replacements, 5000 with `quick`), seeded.
pub fn traces(quick: bool) -> [Trace; 2] {
    let game = game_frame(
        1,
        &GameFrameConfig {
            frames: if quick { 200 } else { 1000 },
            ..GameFrameConfig::default()
        },
    );
    let churn = small_object_churn(
        2,
        &ChurnConfig {
            steps: if quick { 5_000 } else { 20_000 },
            ..ChurnConfig::default()
        },
    );
    [game, churn]
}

/// Replays a trace through `alloc` / `free` with a handle table indexed by id; returns (seconds,
/// failed allocations). A refused allocation is counted and its later free skipped.
pub fn replay_with<H>(
    trace: &Trace,
    mut alloc: impl FnMut(u64, u64) -> Option<H>,
    mut free: impl FnMut(H),
) -> (f64, u64) {
    let mut table: Vec<Option<H>> = (0..trace.ids).map(|_| None).collect();
    let mut failed = 0;
    let start = Instant::now();
    for op in &trace.ops {
        match *op {
            TraceOp::Alloc { id, size, align } => match alloc(size, align) {
                Some(h) => table[id as usize] = Some(h),
                None => failed += 1,
            },
            TraceOp::Free { id } => {
                if let Some(h) = table[id as usize].take() {
                    free(h);
                }
            }
        }
    }
    (start.elapsed().as_secs_f64(), failed)
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}
