//! The memory-type pools against the shared model (`memkit_tests::pool_model`) on a memkit-dummy
//! device: the fuzz input picks the preset, the blocks' sub-allocator (TLSF or buddy), the budget
//! mode (within-budget with a tight 96 MiB budget on heap 0, or not) and up to 120 ops
//! (allocations of buffers and images of every usage, some dedicated, frees, replayed frees,
//! trims and budget refreshes), as the proptest `pool_model` does. The model's checks run after
//! every op (placement, binding, patterns through mapped pointers, statistics against the model
//! and the device, object count, budget, no device misuse) and its teardown checks (no leak) at
//! the end.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use memkit_dummy::Preset;
use memkit_tests::pool_model::{Buddy, PoolOp, Tlsf, run};

/// The proptest's workloads run at most 119 ops.
const MAX_OPS: usize = 120;

#[derive(Debug, Arbitrary)]
struct Workload {
    /// Index into `Preset::ALL`, taken modulo its length.
    preset: u8,
    /// TLSF blocks, else buddy blocks.
    tlsf: bool,
    /// Pools in within-budget mode.
    within_budget: bool,
    ops: Vec<PoolOp>,
}

fuzz_target!(|w: Workload| {
    let preset = Preset::ALL[usize::from(w.preset) % Preset::ALL.len()];
    let ops = &w.ops[..w.ops.len().min(MAX_OPS)];
    let result = if w.tlsf {
        run::<Tlsf>(preset, w.within_budget, ops)
    } else {
        run::<Buddy>(preset, w.within_budget, ops)
    };
    if let Err(problem) = result {
        let allocator = if w.tlsf { "tlsf" } else { "buddy" };
        panic!(
            "pools disagree with the model ({allocator}, within_budget {}): {problem}",
            w.within_budget
        );
    }
});
