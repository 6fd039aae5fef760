//! The staging ring against its sequential model (`memkit_tests::ring_model`): random grant /
//! commit / drop / drain / mark / release sequences, in lockstep, over tiny rings (so grants wrap,
//! collide and fail) and a larger one. After every op: the same answers from the ring and the
//! model (offsets, errors and their wait hints, drained ranges, bytes released, statistics), and
//! the harness's byte-ownership map (no overlap, nothing reused before its value completed, every
//! committed byte drained once, in order, untouched).

use memkit_tests::ring_model::{RingOp, run_ring_ops, run_ring_ops_with};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = RingOp> {
    prop_oneof![
        8 => (any::<u16>(), prop_oneof![6 => 0u8..4, 1 => any::<u8>()])
            .prop_map(|(size, align_log2)| RingOp::Grant { size, align_log2 }),
        6 => (any::<u8>(), any::<u16>()).prop_map(|(index, len)| RingOp::Commit { index, len }),
        2 => any::<u8>().prop_map(|index| RingOp::Drop { index }),
        5 => Just(RingOp::Drain),
        3 => prop_oneof![8 => 0u8..3, 1 => Just(255u8)].prop_map(|advance| RingOp::Mark { advance }),
        3 => (0u8..3).prop_map(|count| RingOp::Release { count }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ring_matches_its_model_on_tiny_rings(
        capacity in 1usize..40,
        working_set in prop_oneof![
            2 => Just(None),
            1 => Just(Some(usize::MAX)),
            2 => (1usize..40).prop_map(Some),
        ],
        ops in prop::collection::vec(op(), 1..300),
    ) {
        if let Err(e) = run_ring_ops_with(capacity, working_set, &ops) {
            return Err(TestCaseError::fail(e));
        }
    }

    #[test]
    fn ring_matches_its_model_on_a_larger_ring(ops in prop::collection::vec(op(), 1..400)) {
        if let Err(e) = run_ring_ops(1000, &ops) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// A fixed workload long enough to see every interesting case at least once: if one stops
/// happening (a change makes the ring never wrap, say), the property tests above lose their teeth.
#[test]
fn the_model_workload_reaches_wraps_full_rings_and_restarts() {
    let mut ops = Vec::new();
    for i in 0..4000u32 {
        ops.push(RingOp::Grant {
            size: (i * 7 % 13) as u16,
            align_log2: (i % 3) as u8,
        });
        if i % 3 != 2 {
            ops.push(RingOp::Commit {
                index: i as u8,
                len: 20,
            });
        } else {
            ops.push(RingOp::Drop { index: 0 });
        }
        if i % 2 == 0 {
            ops.push(RingOp::Drain);
        }
        if i % 3 == 0 {
            ops.push(RingOp::Mark { advance: 1 });
        }
        if i % 4 == 0 {
            ops.push(RingOp::Release { count: 2 });
        }
    }
    let summary = run_ring_ops(30, &ops).unwrap();
    assert!(summary.grants > 1000, "{summary:?}");
    assert!(summary.full > 100, "{summary:?}");
    assert!(summary.drained > 300, "{summary:?}");
    assert!(summary.wasted_wrap_bytes > 0, "{summary:?}");
    assert!(summary.laps > 0, "{summary:?}");
    assert!(summary.early_wraps > 0, "{summary:?}");
}
