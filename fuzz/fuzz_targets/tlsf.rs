//! The TLSF allocator against the shared shadow model (`memkit_tests::suballocator_model`): an
//! arbitrary small configuration (capacity, granule, `max_allocations`, placement threshold) and
//! op sequence (allocate, free, double free, foreign free, reset), the model's checks and the
//! allocator's own metadata walk after every op, and at the end everything freed and the whole
//! capacity allocatable again in one piece.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use memkit_core::SubAllocator;
use memkit_core::tlsf::{TlsfAllocator, TlsfConfig, TlsfNode};
use memkit_tests::suballocator_model::{AllocatorOp, SubAllocatorModel};

/// A small configuration, so requests collide, fail and run `max_allocations` out.
#[derive(Debug, Arbitrary)]
struct Workload {
    /// Granules, 1..=1024 (not necessarily a power of two).
    units: u16,
    /// log2 of the granule, 0..=12.
    granule_log2: u8,
    /// Live allocations at most, 1..=64.
    max_allocations: u8,
    /// Requests below `capacity * (small_eighths % 10) / 8` go to the top end of a block.
    small_eighths: u8,
    /// Requests are drawn below `capacity * (request_eighths % 16 + 1) / 8`.
    request_eighths: u8,
    ops: Vec<AllocatorOp>,
}

fn tlsf(config: TlsfConfig) -> TlsfAllocator<Vec<TlsfNode>> {
    TlsfAllocator::new(config, vec![TlsfNode::EMPTY; config.storage_len()]).expect("valid config")
}

fuzz_target!(|w: Workload| {
    let granule = 1u64 << (w.granule_log2 % 13);
    let capacity = (u64::from(w.units % 1024) + 1) * granule;
    let config = TlsfConfig::new(capacity, granule, u32::from(w.max_allocations % 64) + 1)
        .with_small_threshold(capacity * u64::from(w.small_eighths % 10) / 8);
    let mut real = tlsf(config);
    let mut foreign = tlsf(TlsfConfig::new(4096, 64, 4));
    let max_request = capacity * (u64::from(w.request_eighths % 16) + 1) / 8 + 1;
    let mut model = SubAllocatorModel::new(capacity).with_max_request(max_request);
    for (i, &op) in w.ops.iter().enumerate() {
        let before = real.stats();
        if let Err(problem) = model.step(&mut real, &mut foreign, op) {
            panic!("op {i} {op:?} on {config:?}: {problem}");
        }
        if let Err(problem) = real.check_invariants() {
            panic!("op {i} {op:?} on {config:?}: invariant broken: {problem}");
        }
        let after = real.stats();
        if let Err(problem) = model.check_tlsf_reservation(op, granule, &before, &after) {
            panic!("op {i} on {config:?}: {problem}");
        }
        if let Err(problem) =
            model.check_largest_free_run(op, granule, config.max_allocations, &before, &after)
        {
            panic!("op {i} on {config:?}: {problem}");
        }
    }
    if let Err(problem) = model.drain_and_check_whole(&mut real) {
        panic!("drain on {config:?}: {problem}");
    }
    if let Err(problem) = real.check_invariants() {
        panic!("after drain on {config:?}: {problem}");
    }
});
