//! The transfer scheduler against the byte model: random uploads (overlapping included) applied
//! through the scheduler's plans must leave the destinations identical, byte for byte, to the
//! uploads applied directly in issue order; every plan's ranges disjoint and aligned, and never
//! more regions than visible pieces (never more than uploads when nothing overlaps).

use memkit_tests::transfer_model::{
    BUFFER_SIZE, SourcePlacement, TransferWorkload, UploadOp, run_workload,
};
use proptest::prelude::*;

fn placement() -> impl Strategy<Value = SourcePlacement> {
    prop_oneof![
        3 => Just(SourcePlacement::Next),
        2 => Just(SourcePlacement::Congruent),
        1 => any::<u8>().prop_map(SourcePlacement::Gap),
    ]
}

fn op(buffers: u8) -> impl Strategy<Value = UploadOp> {
    (0..buffers, any::<u16>(), any::<u16>(), placement()).prop_map(
        |(buffer, dst_offset, size, source)| UploadOp {
            buffer,
            dst_offset,
            size,
            source,
        },
    )
}

fn workload(buffers: u8, max_ops: usize) -> impl Strategy<Value = TransferWorkload> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(op(buffers), 0..max_ops),
    )
        .prop_map(
            |(copy_alignment_log2, max_regions, queue_capacity, ops)| TransferWorkload {
                copy_alignment_log2,
                max_regions,
                queue_capacity,
                ops,
            },
        )
}

/// Uploads that tile a buffer in order, staged back to back: no overlaps, everything contiguous.
fn tiling(sizes: &[u16]) -> TransferWorkload {
    let mut ops = Vec::new();
    let mut dst = 0u64;
    for &s in sizes {
        let size = 1 + u64::from(s) % 48;
        if dst + size > BUFFER_SIZE {
            break;
        }
        // `size % 8 != 7` keeps the model's size formula at `1 + size % 64`.
        let raw = (size - 1) as u16;
        if raw % 8 == 7 {
            break;
        }
        ops.push(UploadOp {
            buffer: 0,
            dst_offset: dst as u16,
            size: raw,
            source: SourcePlacement::Next,
        });
        dst += size;
    }
    TransferWorkload {
        copy_alignment_log2: 0,
        max_regions: 15,
        queue_capacity: 63,
        ops,
    }
}

/// `PROPTEST_CASES` when set (deeper runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn plans_write_what_direct_uploads_write(w in workload(4, 200)) {
        let result = run_workload(&w);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    #[test]
    fn one_buffer_heavy_overlap(w in workload(1, 120)) {
        let result = run_workload(&w);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

proptest! {
    #[test]
    fn contiguous_uploads_become_one_region(sizes in prop::collection::vec(any::<u16>(), 1..40)) {
        let w = tiling(&sizes);
        let summary = run_workload(&w).map_err(TestCaseError::fail)?;
        if !w.ops.is_empty() {
            prop_assert_eq!(summary.copy_regions, 1, "{:?}", summary);
            prop_assert_eq!(summary.bytes_overwritten, 0);
        }
    }
}

/// The random workloads do exercise overlaps, full queues, alignment edges and batch splits.
#[test]
fn workloads_exercise_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = workload(4, 200);
    let (mut overwritten, mut full, mut unaligned) = (0, 0, 0);
    for _ in 0..64 {
        let w = strategy.new_tree(&mut runner).unwrap().current();
        let s = run_workload(&w).unwrap();
        overwritten += s.bytes_overwritten;
        full += s.queue_full;
        unaligned += s.unaligned_writes;
    }
    assert!(
        overwritten > 0 && full > 0 && unaligned > 0,
        "{overwritten} {full} {unaligned}"
    );
}
