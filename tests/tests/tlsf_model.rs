//! The TLSF allocator against the shared shadow model (`memkit_tests::suballocator_model`):
//! random allocate / free / double free / foreign free / reset sequences, in lockstep, over small
//! capacities (so requests collide and fail), capacities that are not a power of two, granules
//! from 1 to 256 bytes, both placement policies, and `max_allocations` small enough to run out.
//! After every op: the model's checks (no overlap, alignment, bounds, statistics, refused frees
//! change nothing), the allocator's own metadata walk, that a success reserves the size rounded
//! to the granule and at most a kept alignment gap and a sliver more (larger gaps stay free), and
//! the exactness of `largest_free_run` (an alignment-1 request up to it must succeed). At the end,
//! everything is freed and the whole capacity must come back in one piece.

use memkit_core::SubAllocator;
use memkit_core::tlsf::{TlsfAllocator, TlsfConfig, TlsfNode};
use memkit_tests::suballocator_model::{AllocatorOp, SubAllocatorModel};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = AllocatorOp> {
    // Mostly alignments a small arena can meet, some of any size.
    let align_log2 = prop_oneof![4 => 0u8..10, 1 => any::<u8>()];
    prop_oneof![
        8 => (any::<u64>(), align_log2)
            .prop_map(|(size, align_log2)| AllocatorOp::Allocate { size, align_log2 }),
        6 => any::<u16>().prop_map(|index| AllocatorOp::Free { index }),
        1 => any::<u16>().prop_map(|index| AllocatorOp::DoubleFree { index }),
        1 => Just(AllocatorOp::ForeignFree),
        1 => Just(AllocatorOp::Reset),
    ]
}

fn tlsf(config: TlsfConfig) -> Result<TlsfAllocator<Vec<TlsfNode>>, String> {
    TlsfAllocator::new(config, vec![TlsfNode::EMPTY; config.storage_len()])
        .map_err(|e| e.to_string())
}

/// Runs `ops` through a TLSF of `config` and the model; requests are drawn below `max_request`.
fn run(config: TlsfConfig, max_request: u64, ops: &[AllocatorOp]) -> Result<(), String> {
    let mut real = tlsf(config)?;
    let mut foreign = tlsf(TlsfConfig::new(4096, 64, 4))?;
    let mut model = SubAllocatorModel::new(config.capacity).with_max_request(max_request);
    for (i, &op) in ops.iter().enumerate() {
        let before = real.stats();
        model
            .step(&mut real, &mut foreign, op)
            .map_err(|e| format!("op {i} {op:?}: {e}"))?;
        real.check_invariants()
            .map_err(|e| format!("op {i} {op:?}: invariant broken: {e}"))?;
        let after = real.stats();
        model
            .check_tlsf_reservation(op, config.granule, &before, &after)
            .map_err(|e| format!("op {i}: {e}"))?;
        model
            .check_largest_free_run(op, config.granule, config.max_allocations, &before, &after)
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

    /// 256 granules of 16 B: requests up to a bit over the capacity, so most collide or fail.
    #[test]
    fn small_arena(ops in prop::collection::vec(op(), 0..300)) {
        let config = TlsfConfig::new(4096, 16, 64);
        prop_assert_eq!(run(config, 4096 + 513, &ops), Ok(()));
    }

    /// Small requests against a capacity that is not a power of two, everything at the bottom
    /// end, then everything at the top end.
    #[test]
    fn both_placements(ops in prop::collection::vec(op(), 0..300), top in any::<bool>()) {
        let config = TlsfConfig::new(1000 * 16, 16, 48)
            .with_small_threshold(if top { u64::MAX } else { 0 });
        prop_assert_eq!(run(config, 1500, &ops), Ok(()));
    }

    /// Three live allocations at most: the limit is reached long before the memory runs out.
    #[test]
    fn allocations_run_out(ops in prop::collection::vec(op(), 0..300)) {
        let config = TlsfConfig::new(100 * 16, 16, 3);
        prop_assert_eq!(run(config, 200, &ops), Ok(()));
    }

    /// Any small configuration: 1-300 granules of 1-256 B, 1-40 live allocations, any small-request
    /// threshold, requests up to twice the capacity or far smaller.
    #[test]
    fn any_small_config(
        units in 1u64..300,
        granule_log2 in 0u32..9,
        max_allocations in 1u32..40,
        threshold_share in 0u64..9,
        request_share in 1u64..17,
        ops in prop::collection::vec(op(), 0..200),
    ) {
        let granule = 1u64 << granule_log2;
        let capacity = units * granule;
        let config = TlsfConfig::new(capacity, granule, max_allocations)
            .with_small_threshold(capacity * threshold_share / 8);
        prop_assert_eq!(run(config, capacity * request_share / 8 + 1, &ops), Ok(()));
    }
}

/// The 2^40 capacity through the model, with large requests and alignments.
#[test]
fn large_capacity_through_the_model() {
    let config = TlsfConfig::new(1 << 40, 256, 64);
    let ops: Vec<AllocatorOp> = (0..if cfg!(miri) { 40 } else { 400u64 })
        .map(|i| {
            let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 7);
            match i % 5 {
                2 | 4 => AllocatorOp::Free { index: x as u16 },
                3 => AllocatorOp::DoubleFree { index: x as u16 },
                _ => AllocatorOp::Allocate {
                    size: x >> 20,
                    align_log2: (x >> 58) as u8,
                },
            }
        })
        .collect();
    assert_eq!(run(config, 1 << 40, &ops), Ok(()));
}

/// `check_live` accepts exactly what `free` would, and changes nothing.
#[test]
fn check_live_follows_free() {
    let config = TlsfConfig::new(1 << 16, 16, 16);
    let (mut real, other) = (tlsf(config).unwrap(), tlsf(config).unwrap());
    assert_eq!(
        memkit_tests::suballocator_model::check_live_contract(&mut real, &other),
        Ok(())
    );
}
