//! The buddy allocator against the shared shadow model (`memkit_tests::suballocator_model`):
//! random allocate / free / double free / foreign free / reset sequences, in lockstep, over small
//! capacities (so requests collide and fail), capacities that are not a power of two, and slot
//! tables small enough to run out. After every op: the model's checks (no overlap, alignment,
//! bounds, statistics, refused frees change nothing), the allocator's own metadata walk, and the
//! exactness of `largest_free_run` (an alignment-1 request up to it must succeed). At the end,
//! everything is freed and the whole capacity must come back in one piece.

use memkit_core::SubAllocator;
use memkit_core::buddy::{BuddyAllocator, BuddyConfig};
use memkit_tests::suballocator_model::{AllocatorOp, SubAllocatorModel};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = AllocatorOp> {
    // Mostly small alignments (they can always be met somewhere), some of any size.
    let align_log2 = prop_oneof![4 => 0u8..8, 1 => any::<u8>()];
    prop_oneof![
        8 => (any::<u64>(), align_log2)
            .prop_map(|(size, align_log2)| AllocatorOp::Allocate { size, align_log2 }),
        6 => any::<u16>().prop_map(|index| AllocatorOp::Free { index }),
        1 => any::<u16>().prop_map(|index| AllocatorOp::DoubleFree { index }),
        1 => Just(AllocatorOp::ForeignFree),
        1 => Just(AllocatorOp::Reset),
    ]
}

fn storage(config: BuddyConfig) -> Vec<u64> {
    vec![0; config.try_storage_len().expect("valid config")]
}

/// Runs `ops` through a buddy of `config` and the model; requests are drawn below `max_request`.
fn run(config: BuddyConfig, max_request: u64, ops: &[AllocatorOp]) -> Result<(), String> {
    let mut real = BuddyAllocator::new(config, storage(config)).map_err(|e| e.to_string())?;
    let foreign_config = BuddyConfig::new(4096, 64, 4);
    let mut foreign =
        BuddyAllocator::new(foreign_config, storage(foreign_config)).map_err(|e| e.to_string())?;
    let mut model = SubAllocatorModel::new(config.capacity).with_max_request(max_request);
    for (i, &op) in ops.iter().enumerate() {
        let before = real.stats();
        model
            .step(&mut real, &mut foreign, op)
            .map_err(|e| format!("op {i} {op:?}: {e}"))?;
        real.check_invariants()
            .map_err(|e| format!("op {i} {op:?}: invariant broken: {e}"))?;
        model
            .check_largest_free_run(
                op,
                config.min_block,
                config.max_allocations,
                &before,
                &real.stats(),
            )
            .map_err(|e| format!("op {i}: {e}"))?;
    }
    model
        .drain_and_check_whole(&mut real)
        .map_err(|e| format!("drain: {e}"))?;
    real.check_invariants()
        .map_err(|e| format!("after drain: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    /// 64 units of 64 B: requests up to a bit over the capacity, so most collide or fail.
    #[test]
    fn small_power_of_two(ops in prop::collection::vec(op(), 0..300)) {
        let config = BuddyConfig::new(4096, 64, 64);
        prop_assert_eq!(run(config, 4096 + 513, &ops), Ok(()));
    }

    /// 13 units: top blocks of 8, 4 and 1; requests past the largest block span them.
    #[test]
    fn non_power_of_two(ops in prop::collection::vec(op(), 0..300)) {
        let config = BuddyConfig::new(13 * 256, 256, 32);
        prop_assert_eq!(run(config, 13 * 256 + 300, &ops), Ok(()));
    }

    /// Eight slots: the slot table fills before the memory does.
    #[test]
    fn slots_run_out(ops in prop::collection::vec(op(), 0..300)) {
        let config = BuddyConfig::new(100 * 16, 16, 8);
        prop_assert_eq!(run(config, 200, &ops), Ok(()));
    }

    /// Any small configuration: 1-300 units of 1-256 B, 1-40 slots, any tail precision (exact
    /// included), requests up to the capacity or far smaller.
    #[test]
    fn any_small_config(
        units in 1u64..300,
        min_block_log2 in 0u32..9,
        max_allocations in 1u32..40,
        tail_precision_log2 in prop_oneof![Just(32u32), 0u32..8],
        request_share in 1u64..9,
        ops in prop::collection::vec(op(), 0..200),
    ) {
        let min_block = 1u64 << min_block_log2;
        let capacity = units * min_block;
        let config = BuddyConfig::new(capacity, min_block, max_allocations)
            .with_tail_precision_log2(tail_precision_log2);
        prop_assert_eq!(run(config, capacity * request_share / 8 + 1, &ops), Ok(()));
    }
}

/// The 2^40 capacity through the model, with a coarse unit and large requests.
#[test]
fn large_capacity_through_the_model() {
    let config = BuddyConfig::new(1 << 40, 1 << 24, 64);
    let ops: Vec<AllocatorOp> = (0..200u64)
        .map(|i| {
            let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 7);
            if i % 3 == 2 {
                AllocatorOp::Free { index: x as u16 }
            } else {
                AllocatorOp::Allocate {
                    size: x,
                    align_log2: (x >> 50) as u8,
                }
            }
        })
        .collect();
    assert_eq!(run(config, 1 << 38, &ops), Ok(()));
}

/// `check_live` accepts exactly what `free` would, and changes nothing.
#[test]
fn check_live_follows_free() {
    let config = BuddyConfig::new(1 << 16, 16, 16);
    let buddy = || BuddyAllocator::new(config, storage(config)).unwrap();
    let (mut real, other) = (buddy(), buddy());
    assert_eq!(
        memkit_tests::suballocator_model::check_live_contract(&mut real, &other),
        Ok(())
    );
}
