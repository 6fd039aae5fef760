use super::*;
use crate::pool_model::MIB;
use crate::workloads::SplitMix64;

#[test]
fn every_size_code_round_trips_to_its_size() {
    for code in 0..=u16::MAX {
        let size = size_of_code(code);
        assert!((1..=160 * MIB).contains(&size), "code {code:#x}: {size}");
        assert_eq!(
            size_of_code(code_of_size(size)),
            size,
            "code {code:#x}: {size}"
        );
    }
}

#[test]
fn sizes_round_up_to_the_nearest_code() {
    let mut sizes: Vec<u64> = (0..=u16::MAX).map(size_of_code).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut rng = SplitMix64::new(7);
    let probes = (0..2000).map(|_| rng.range_inclusive(0, 170 * MIB)).chain([
        0,
        1,
        4095,
        4096,
        4097,
        MIB - 1,
        MIB,
        MIB + 1,
        144 * MIB,
        160 * MIB,
    ]);
    for size in probes {
        let want = sizes
            .iter()
            .copied()
            .find(|&s| s >= size)
            .unwrap_or(160 * MIB);
        assert_eq!(size_of_code(code_of_size(size)), want, "size {size}");
    }
    for exact in [
        4096,
        512 * 1024,
        2 * MIB,
        2 * MIB - 1,
        16 * MIB,
        128 * MIB,
        160 * MIB,
    ] {
        assert_eq!(size_of_code(code_of_size(exact)), exact);
    }
}

#[test]
fn every_op_kind_usage_and_flag_is_reachable_and_round_trips() {
    let mut seen = std::collections::BTreeSet::new();
    for p in 0..=u8::MAX {
        let inputs: [&[u8]; 5] = [
            &[p, 0, p, 0x6a, 0x01],
            &[p, 8, p],
            &[p, 14, p],
            &[p, 15],
            &[p, 16],
        ];
        for input in inputs {
            let w = PoolWorkload::decode(input);
            assert_eq!(w.ops.len(), 1);
            assert_eq!(PoolWorkload::decode(&w.encode()), w, "{w:?}");
            if let PoolOp::Allocate {
                usage,
                optimal,
                dedicated,
                ..
            } = w.ops[0]
            {
                seen.insert((usage, optimal, dedicated));
            }
        }
    }
    assert_eq!(seen.len(), USAGES.len() * 4, "{seen:?}");
}

#[test]
fn random_bytes_decode_to_long_workloads_that_re_encode_exactly() {
    let mut rng = SplitMix64::new(11);
    for len in [0, 1, 2, 3, 17, 100, 400, 2000] {
        let w = PoolWorkload::decode(&rng.bytes(len));
        // About 2.8 bytes an op on average.
        if len == 100 {
            assert!(w.ops.len() >= 25, "{} ops from 100 bytes", w.ops.len());
        }
        assert!(w.ops.len() <= MAX_OPS);
        assert_eq!(PoolWorkload::decode(&w.encode()), w);
    }
}

#[test]
fn header_picks_preset_allocator_and_budget_mode() {
    for (i, &preset) in Preset::ALL.iter().enumerate() {
        for bits in 0..4u8 {
            let w = PoolWorkload::decode(&[((i as u8) << 2) | bits]);
            assert_eq!(
                (w.preset, w.tlsf, w.within_budget),
                (preset, bits & 1 == 1, bits & 2 == 2)
            );
            assert!(w.ops.is_empty());
        }
    }
}

#[test]
fn a_truncated_op_reads_zeros() {
    let w = PoolWorkload::decode(&[0, 0, 7]);
    assert_eq!(
        w.ops,
        [PoolOp::Allocate {
            size: 1,
            usage: 0,
            optimal: true,
            dedicated: false
        }]
    );
}
