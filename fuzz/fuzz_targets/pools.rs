//! The memory-type pools against the shared model (`memkit_tests::pool_model`) on a memkit-dummy
//! device: the input, in the model's compact encoding (`PoolWorkload::decode`: every byte string
//! is a workload, an op takes one to four bytes), picks the preset, the blocks' sub-allocator
//! (TLSF or buddy), the budget mode (within-budget with a tight 96 MiB budget on heap 0, or not)
//! and up to 120 ops (allocations of buffers and images of every usage, some dedicated, frees,
//! replayed frees, trims and budget refreshes), as the proptest `pool_model` does. The model's
//! checks run after every op (placement, binding, patterns through mapped pointers, statistics
//! against the model and the device, object count, budget, no device misuse) and its teardown
//! checks (no leak) at the end.
//!
//! Seeds: `fuzz/seeds/pools/` holds long workloads (`memkit_tests::pool_model::fuzz_seeds`) that
//! reach full blocks, refusals, dedicated objects, emptied and trimmed blocks and stale handles;
//! CI's smoke run reads them after its own corpus directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memkit_tests::pool_model::PoolWorkload;

fuzz_target!(|data: &[u8]| {
    let w = PoolWorkload::decode(data);
    if let Err(problem) = w.run() {
        let allocator = if w.tlsf { "tlsf" } else { "buddy" };
        panic!(
            "pools disagree with the model ({allocator}, within_budget {}): {problem}",
            w.within_budget
        );
    }
});
