use super::*;

fn region(src_offset: u64, dst_offset: u64, size: u64) -> BufferCopy {
    BufferCopy {
        src_offset,
        dst_offset,
        size,
    }
}

/// For every destination byte of every command: (dst buffer, dst offset) -> (src buffer, src
/// offset), the meaning of a batch that a split must keep.
fn byte_map(commands: &[CopyCommand<'_, u32>]) -> Vec<(u32, u64, u32, u64)> {
    let mut out: Vec<_> = commands
        .iter()
        .flat_map(|c| {
            c.regions.iter().flat_map(move |r| {
                (0..r.size).map(move |i| (c.dst, r.dst_offset + i, c.src, r.src_offset + i))
            })
        })
        .collect();
    out.sort_unstable();
    out
}

fn parts_of(plan: &SplitPlan<u32>, parts: usize) -> Vec<Vec<CopyCommand<'_, u32>>> {
    (0..parts)
        .map(|p| {
            let mut out = Vec::new();
            plan.part(p, &mut out);
            out
        })
        .collect()
}

fn bytes(commands: &[CopyCommand<'_, u32>]) -> u64 {
    commands
        .iter()
        .flat_map(|c| c.regions)
        .map(|r| r.size)
        .sum()
}

#[test]
fn a_split_keeps_every_byte_where_it_was_going_and_balances_the_parts() {
    let a = [
        region(0, 100, 1000),
        region(1000, 5000, 37),
        region(2000, 0, 90),
    ];
    let b = [region(7, 3, 501)];
    let commands = [
        CopyCommand {
            src: 1,
            dst: 2,
            regions: &a,
        },
        CopyCommand {
            src: 1,
            dst: 3,
            regions: &b,
        },
    ];
    let total = bytes(&commands);
    for parts in 2..=5 {
        let mut plan = SplitPlan::default();
        assert!(plan.plan_with_granule(&commands, parts, 1, 16));
        let split = parts_of(&plan, parts);
        let joined: Vec<CopyCommand<'_, u32>> = split.iter().flatten().copied().collect();
        assert_eq!(byte_map(&joined), byte_map(&commands), "{parts} parts");
        let share = total.div_ceil(parts as u64).div_ceil(16) * 16;
        for (p, part) in split.iter().enumerate() {
            let n = bytes(part);
            if p + 1 < parts {
                assert_eq!(
                    n,
                    share.min(total.saturating_sub(share * p as u64)),
                    "part {p} of {parts}"
                );
            }
            assert!(part.iter().all(|c| !c.regions.is_empty()));
        }
    }
}

#[test]
fn small_or_dependent_batches_are_not_split() {
    let r = [region(0, 0, 4096)];
    let mut plan = SplitPlan::default();
    let one = [CopyCommand {
        src: 1,
        dst: 2,
        regions: &r,
    }];
    assert!(
        !plan.plan_with_granule(&one, 4, 4097, 16),
        "below the threshold"
    );
    assert!(!plan.plan_with_granule(&one, 1, 1, 16), "one part");
    assert!(plan.plan_with_granule(&one, 4, 4096, 16));

    let same_destination = [one[0], one[0]];
    assert!(!plan.plan_with_granule(&same_destination, 2, 1, 16));
    let reads_a_destination = [
        one[0],
        CopyCommand {
            src: 2,
            dst: 3,
            regions: &r,
        },
    ];
    assert!(!plan.plan_with_granule(&reads_a_destination, 2, 1, 16));
    let mut out = Vec::new();
    plan.part(0, &mut out);
    assert!(out.is_empty(), "a refused plan leaves no parts behind");
}

#[test]
fn lanes_hold_at_most_the_maximum() {
    let q = QueueLocation {
        family: 1,
        index: 0,
    };
    let lanes = CopyLanes::new(&[q; MAX_COPY_LANES], 5).unwrap();
    assert_eq!(lanes.queues().len(), MAX_COPY_LANES);
    assert_eq!(lanes.min_split_bytes(), 5);
    assert!(CopyLanes::new(&[q; MAX_COPY_LANES + 1], 5).is_none());
    assert!(CopyLanes::default().queues().is_empty());
}
