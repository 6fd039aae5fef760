//! The buddy allocator against the shared shadow model (`memkit_tests::suballocator_model`): an
//! arbitrary small configuration and op sequence (allocate, free, double free, foreign free,
//! reset), the model's checks and the allocator's own metadata walk after every op, and at the end
//! everything freed and the whole capacity allocatable again in one piece.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use memkit_core::SubAllocator;
use memkit_core::buddy::{BuddyAllocator, BuddyConfig};
use memkit_tests::suballocator_model::{AllocatorOp, SubAllocatorModel};

/// A small configuration, so requests collide, fail and run the slot table out.
#[derive(Debug, Arbitrary)]
struct Workload {
    /// Units, 1..=1024 (not necessarily a power of two).
    units: u16,
    /// log2 of the unit, 0..=12.
    min_block_log2: u8,
    /// Slots, 1..=64.
    max_allocations: u8,
    /// Tail precision: `% 9`, where 8 means exact sizes.
    tail_precision: u8,
    /// Requests are drawn below `capacity * (request_eighths % 16 + 1) / 8`.
    request_eighths: u8,
    ops: Vec<AllocatorOp>,
}

fn storage(config: BuddyConfig) -> Vec<u64> {
    vec![0; config.try_storage_len().expect("valid config")]
}

fuzz_target!(|w: Workload| {
    let units = u64::from(w.units % 1024) + 1;
    let min_block = 1u64 << (w.min_block_log2 % 13);
    let capacity = units * min_block;
    let precision = match w.tail_precision % 9 {
        8 => 32,
        p => u32::from(p),
    };
    let config = BuddyConfig::new(capacity, min_block, u32::from(w.max_allocations % 64) + 1)
        .with_tail_precision_log2(precision);
    let mut real = BuddyAllocator::new(config, storage(config)).expect("valid config");
    let foreign_config = BuddyConfig::new(4096, 64, 4);
    let mut foreign =
        BuddyAllocator::new(foreign_config, storage(foreign_config)).expect("valid config");
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
        if let Err(problem) =
            model.check_largest_free_run(op, min_block, config.max_allocations, &before, &after)
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
