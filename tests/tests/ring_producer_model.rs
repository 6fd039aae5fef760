//! Producer handles (`RingProducer`) and plain grants mixed over one ring, against the byte-ownership
//! harness `memkit_tests::ring_producer_model`: random grant / commit / drop / flush / drain / mark
//! / release sequences over tiny rings (spans run out of bytes, tickets and room, wrap and collide)
//! and a larger one. After every op: no byte handed out while held, every drained range one
//! committed grant with its bytes, in its producer's order; at the end everything drains and comes
//! back.

use memkit_tests::ring_producer_model::{ProducerOp, run_producer_ops};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = ProducerOp> {
    prop_oneof![
        8 => (0u8..3, 0u16..24, prop_oneof![8 => 0u8..3, 1 => any::<u8>()])
            .prop_map(|(who, size, align_log2)| ProducerOp::Grant { who, size, align_log2 }),
        6 => (any::<u8>(), any::<u16>()).prop_map(|(index, len)| ProducerOp::Commit { index, len }),
        1 => any::<u8>().prop_map(|index| ProducerOp::Drop { index }),
        2 => (0u8..2).prop_map(|who| ProducerOp::Flush { who }),
        5 => Just(ProducerOp::Drain),
        3 => Just(ProducerOp::Mark),
        3 => (0u8..3).prop_map(|count| ProducerOp::Release { count }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn producer_handles_keep_ownership_and_order_on_tiny_rings(
        capacity in 1usize..64,
        span_bytes in 1usize..48,
        span_grants in 1usize..=8,
        ops in prop::collection::vec(op(), 1..300),
    ) {
        if let Err(e) = run_producer_ops(capacity, span_bytes, span_grants, &ops) {
            return Err(TestCaseError::fail(e));
        }
    }

    #[test]
    fn producer_handles_keep_ownership_and_order_on_a_larger_ring(
        ops in prop::collection::vec(op(), 1..400),
    ) {
        if let Err(e) = run_producer_ops(1000, 256, 4, &ops) {
            return Err(TestCaseError::fail(e));
        }
    }
}
