//! Defragmentation passes on the mock device, with both sub-allocators.
#![allow(
    unsafe_code,
    reason = "frees through the unsafe `MemoryPools::free`; no GPU"
)]

use std::vec::Vec;

use super::super::tests::mock::{MIB, MockDevice};
use super::super::tests::pools::{Buddy, Pools, TestStorage, Tlsf, config, pools_with, req};
use crate::pool::*;
use crate::usage::MemoryUsage as U;

/// Runs a test on both sub-allocators.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod tlsf { $( #[test] fn $name() { super::$name::<super::Tlsf>() } )* }
        mod buddy { $( #[test] fn $name() { super::$name::<super::Buddy>() } )* }
    };
}

both!(
    a_pass_empties_the_sparsest_block_into_the_fullest_with_room,
    a_pass_chooses_only_what_the_other_blocks_can_take,
    an_allocation_without_room_stays_and_no_block_is_made,
    allocations_during_a_pass_avoid_the_blocks_being_emptied,
    limits_bound_a_pass,
    a_pass_chooses_no_block_the_caller_cannot_empty,
    bad_calls_are_refused_and_change_nothing,
);

/// Blocks of 4 MiB only, so that 1 MiB allocations fill them four at a time.
fn four_mib_blocks() -> PoolConfig {
    PoolConfig {
        first_block_size: 4 * MIB,
        preferred_block_size: Some(4 * MIB),
        ..config()
    }
}

/// Pools with device-local blocks of 4 MiB, block `i` holding `counts[i]` live 1 MiB
/// allocations (returned per block, in block order), at the block's lowest offsets.
fn blocks_holding<'d, A: TestStorage>(
    dev: &'d MockDevice,
    counts: &[usize],
) -> (Pools<'d, A>, Vec<Vec<DeviceAllocation<u32>>>) {
    let mut p = pools_with::<A>(dev, four_mib_blocks(), 8, 4);
    let objects_before = dev.live_objects();
    // Every block filled first (the room a free leaves would take the next block's share).
    let mut blocks: Vec<Vec<_>> = counts
        .iter()
        .map(|_| {
            (0..4)
                .map(|_| p.allocate(&req(MIB, MIB, U::empty())).unwrap())
                .collect()
        })
        .collect();
    for (block, &count) in blocks.iter_mut().zip(counts) {
        assert!(
            block.iter().all(|a| a.memory() == block[0].memory()),
            "{block:?}"
        );
        block.sort_by_key(DeviceAllocation::offset);
        for a in block.drain(count..) {
            // SAFETY: no GPU.
            unsafe { p.free(a).unwrap() };
        }
    }
    assert_eq!(dev.live_objects() - objects_before, counts.len());
    (p, blocks)
}

/// Asks where every allocation of `blocks` goes; returns the moves as (block, old, new).
fn relocate_all<A: TestStorage>(
    p: &mut Pools<'_, A>,
    blocks: &mut [Vec<DeviceAllocation<u32>>],
) -> Vec<(usize, DeviceAllocation<u32>, DeviceAllocation<u32>)> {
    let mut moves = Vec::new();
    for (i, block) in blocks.iter_mut().enumerate() {
        let mut kept = Vec::new();
        for a in block.drain(..) {
            match p.relocate(&a, MIB).unwrap() {
                Relocation::Stay => kept.push(a),
                Relocation::Move(new) => moves.push((i, a, new)),
            }
        }
        *block = kept;
    }
    moves
}

fn a_pass_empties_the_sparsest_block_into_the_fullest_with_room<A: TestStorage>() {
    let dev = MockDevice::discrete();
    // Blocks hold 1, 2, 3 and 4 MiB: the first is the sparsest, and the third (1 MiB free) is
    // the fullest with room.
    let (mut p, mut blocks) = blocks_holding::<A>(&dev, &[1, 2, 3, 4]);
    let memories: Vec<u32> = blocks.iter().map(|b| b[0].memory()).collect();
    let plan = p.begin_defragmentation(&DefragmentationLimits::UNLIMITED);
    assert_eq!(
        plan,
        Ok(DefragmentationPlan {
            blocks: 1,
            block_bytes: 4 * MIB,
            allocations: 1,
            bytes: MIB,
        })
    );
    assert!(p.is_defragmenting());
    let moves = relocate_all(&mut p, &mut blocks);
    assert_eq!(moves.len(), 1);
    let (from, old, new) = &moves[0];
    assert_eq!(*from, 0);
    assert_eq!(
        new.memory(),
        memories[2],
        "into the fullest block with room"
    );
    assert_eq!((new.size(), new.offset() % MIB), (MIB, 0));
    assert_eq!(new.memory_type(), old.memory_type());
    // The old range stays allocated until the caller frees it: both are live now.
    assert_eq!(p.total_stats().sub_allocations, 1 + 2 + 3 + 4 + 1);
    assert_eq!(dev.live_objects(), 4);
    let (_, old, new) = moves.into_iter().next().unwrap();
    // SAFETY: no GPU.
    unsafe { p.free(old).unwrap() };
    // The emptied block went back at once, though the pools keep one empty block otherwise.
    assert_eq!(dev.live_objects(), 3);
    assert_eq!(p.total_stats().blocks, 3);
    assert_eq!(p.total_stats().empty_blocks, 0);
    let report = p.end_defragmentation();
    assert_eq!(
        report,
        DefragmentationReport {
            plan: plan.unwrap(),
            moves: 1,
            bytes_moved: MIB,
            no_room: 0,
            blocks_released: 1,
            bytes_released: 4 * MIB,
        }
    );
    assert!(!p.is_defragmenting());
    blocks[2].push(new);
    for a in blocks.into_iter().flatten() {
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }
}

fn a_pass_chooses_only_what_the_other_blocks_can_take<A: TestStorage>() {
    let dev = MockDevice::discrete();
    // 1 + 1 MiB in the two sparse blocks, and 1 MiB of room elsewhere: only one can go.
    let (mut p, mut blocks) = blocks_holding::<A>(&dev, &[1, 1, 3, 4]);
    let plan = p
        .begin_defragmentation(&DefragmentationLimits::UNLIMITED)
        .unwrap();
    assert_eq!((plan.blocks, plan.allocations), (1, 1));
    let moves = relocate_all(&mut p, &mut blocks);
    assert_eq!(moves.len(), 1);
    for (_, old, new) in moves {
        // SAFETY: no GPU.
        unsafe { p.free(old).unwrap() };
        blocks[2].push(new);
    }
    assert_eq!(dev.live_objects(), 3);
    // A second pass has nowhere to move the other one to: it chooses nothing.
    assert_eq!(p.end_defragmentation().blocks_released, 1);
    let plan = p
        .begin_defragmentation(&DefragmentationLimits::UNLIMITED)
        .unwrap();
    assert_eq!(plan, DefragmentationPlan::default());
    assert!(relocate_all(&mut p, &mut blocks).is_empty());
    assert_eq!(p.end_defragmentation().moves, 0);
    // Blocks emptied by other frees, after the pass, are the empty-block cache's again.
    for a in blocks.into_iter().flatten() {
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }
    assert_eq!(dev.live_objects(), 1);
}

fn an_allocation_without_room_stays_and_no_block_is_made<A: TestStorage>() {
    let dev = MockDevice::discrete();
    let (mut p, mut blocks) = blocks_holding::<A>(&dev, &[1, 4]);
    // Make 1 MiB of room in the second block, at offset 1 MiB: enough bytes for the first
    // block's allocation, but not at the 2 MiB alignment asked below.
    let second = blocks[1].remove(1);
    assert_eq!(second.offset(), MIB);
    // SAFETY: no GPU.
    unsafe { p.free(second).unwrap() };
    let plan = p
        .begin_defragmentation(&DefragmentationLimits::UNLIMITED)
        .unwrap();
    assert_eq!(plan.blocks, 1);
    let objects_made = dev.allocations();
    let a = blocks[0].pop().unwrap();
    assert_eq!(p.relocate(&a, 2 * MIB), Ok(Relocation::Stay));
    assert_eq!(
        dev.allocations(),
        objects_made,
        "a pass never makes a block"
    );
    let report = p.end_defragmentation();
    assert_eq!((report.moves, report.no_room), (0, 1));
    assert_eq!(report.blocks_released, 0);
    // SAFETY: no GPU.
    unsafe { p.free(a).unwrap() };
    for a in blocks.into_iter().flatten() {
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }
}

fn allocations_during_a_pass_avoid_the_blocks_being_emptied<A: TestStorage>() {
    let dev = MockDevice::discrete();
    let (mut p, mut blocks) = blocks_holding::<A>(&dev, &[1, 3]);
    let (sparse, full) = (blocks[0][0].memory(), blocks[1][0].memory());
    // Make the sparse block the one the set tries first (its hint): fill the other, so that
    // the next allocation takes the slow path to the sparse one; then free both.
    let filler = p.allocate(&req(MIB, MIB, U::empty())).unwrap();
    assert_eq!(filler.memory(), full);
    let hinted = p.allocate(&req(MIB, MIB, U::empty())).unwrap();
    assert_eq!(hinted.memory(), sparse);
    // SAFETY: no GPU.
    unsafe {
        p.free(filler).unwrap();
        p.free(hinted).unwrap();
    }
    let plan = p
        .begin_defragmentation(&DefragmentationLimits::UNLIMITED)
        .unwrap();
    assert_eq!(plan.blocks, 1);
    // The first allocation of the pass does not go to the hint, which is being emptied, but
    // takes the room of the block that stays...
    let first = p.allocate(&req(MIB, MIB, U::empty())).unwrap();
    assert_eq!(first.memory(), full);
    // ...and the next one, with no room left but in the block being emptied, goes there
    // rather than into a new memory object.
    let objects_made = dev.allocations();
    let second = p.allocate(&req(MIB, MIB, U::empty())).unwrap();
    assert_eq!(second.memory(), sparse);
    assert_eq!(dev.allocations(), objects_made);
    // Neither it nor the block's older allocation has anywhere to go now.
    assert_eq!(p.relocate(&second, MIB), Ok(Relocation::Stay));
    assert_eq!(p.relocate(&blocks[0][0], MIB), Ok(Relocation::Stay));
    let report = p.end_defragmentation();
    assert_eq!((report.moves, report.no_room), (0, 2));
    blocks[1].push(first);
    blocks[0].push(second);
    for a in blocks.into_iter().flatten() {
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }
    assert_eq!(dev.live_objects(), 1);
}

fn a_pass_chooses_no_block_the_caller_cannot_empty<A: TestStorage>() {
    let dev = MockDevice::discrete();
    // Blocks hold 1, 2 and 3 MiB: the first is the sparsest, but the caller cannot move what it
    // holds, so the second goes instead: into the third block's room, and the first's.
    let (mut p, mut blocks) = blocks_holding::<A>(&dev, &[1, 2, 3]);
    let pinned = blocks[0][0].raw().slot;
    let mut asked = Vec::new();
    let plan = p
        .begin_defragmentation_where(&DefragmentationLimits::UNLIMITED, |slot| {
            asked.push(slot);
            slot != pinned
        })
        .unwrap();
    assert!(asked.contains(&pinned), "{asked:?}");
    assert_eq!((plan.blocks, plan.allocations, plan.bytes), (1, 2, 2 * MIB));
    assert_eq!(p.relocate(&blocks[0][0], MIB), Ok(Relocation::Stay));
    let moves = relocate_all(&mut p, &mut blocks);
    assert_eq!(
        moves.iter().map(|(from, _, _)| *from).collect::<Vec<_>>(),
        [1, 1]
    );
    let targets: Vec<u32> = moves.iter().map(|(_, _, new)| new.memory()).collect();
    assert_eq!(targets, [blocks[2][0].memory(), blocks[0][0].memory()]);
    for (_, old, new) in moves {
        // SAFETY: no GPU.
        unsafe { p.free(old).unwrap() };
        blocks[2].push(new);
    }
    assert_eq!(p.end_defragmentation().blocks_released, 1);
    assert_eq!(dev.live_objects(), 2);
    // Refusing every block chooses nothing.
    let plan = p
        .begin_defragmentation_where(&DefragmentationLimits::UNLIMITED, |_| false)
        .unwrap();
    assert_eq!(plan, DefragmentationPlan::default());
    let _ = p.end_defragmentation();
    for a in blocks.into_iter().flatten() {
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }
}

fn limits_bound_a_pass<A: TestStorage>() {
    let dev = MockDevice::discrete();
    // 1, 1, 2, 2 MiB held: the two sparsest fit the others' room, the third does not.
    let (mut p, blocks) = blocks_holding::<A>(&dev, &[1, 1, 2, 2]);
    let cases = [
        (DefragmentationLimits::UNLIMITED, 2),
        (DefragmentationLimits::UNLIMITED.with_max_allocations(1), 1),
        (DefragmentationLimits::UNLIMITED.with_max_bytes(2 * MIB), 2),
        (
            DefragmentationLimits::UNLIMITED.with_max_bytes(2 * MIB - 1),
            1,
        ),
        (DefragmentationLimits::UNLIMITED.with_max_bytes(0), 0),
        (DefragmentationLimits::default().with_memory_type(0), 2),
        (DefragmentationLimits::UNLIMITED.with_memory_type(1), 0),
    ];
    for (limits, chosen) in cases {
        let plan = p.begin_defragmentation(&limits).unwrap();
        assert_eq!(plan.blocks, chosen, "{limits:?}");
        assert_eq!(plan.allocations, chosen, "{limits:?}");
        assert_eq!(plan.bytes, u64::from(chosen) * MIB, "{limits:?}");
        assert_eq!(p.end_defragmentation().plan, plan);
    }
    for a in blocks.into_iter().flatten() {
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }
}

fn bad_calls_are_refused_and_change_nothing<A: TestStorage>() {
    let dev = MockDevice::discrete();
    let (mut p, mut blocks) = blocks_holding::<A>(&dev, &[1, 3]);
    let (mut other, other_blocks) = blocks_holding::<A>(&dev, &[1]);
    let dedicated = p
        .allocate(&req(MIB, 1, U::empty()).with_dedicated())
        .unwrap();
    let freed = blocks[1].pop().unwrap();
    let stale = DeviceAllocation::from_raw(*freed.raw());
    // SAFETY: no GPU.
    unsafe { p.free(freed).unwrap() };
    // Outside a pass nothing moves, and there is no pass to end.
    assert_eq!(p.relocate(&blocks[0][0], MIB), Ok(Relocation::Stay));
    assert_eq!(p.end_defragmentation(), DefragmentationReport::default());
    assert_eq!(
        p.begin_defragmentation(&DefragmentationLimits::UNLIMITED.with_memory_type(3)),
        Err(DefragmentationError::NoSuchMemoryType)
    );
    assert!(!p.is_defragmenting());
    let plan = p
        .begin_defragmentation(&DefragmentationLimits::UNLIMITED)
        .unwrap();
    assert_eq!(plan.blocks, 1);
    assert_eq!(
        p.begin_defragmentation(&DefragmentationLimits::UNLIMITED),
        Err(DefragmentationError::PassRunning)
    );
    let stats = p.total_stats();
    let sparse = &blocks[0][0];
    assert_eq!(
        p.relocate(sparse, 3),
        Err(DefragmentationError::AlignmentNotPowerOfTwo)
    );
    assert_eq!(
        p.relocate(sparse, 0),
        Err(DefragmentationError::AlignmentNotPowerOfTwo)
    );
    assert_eq!(
        p.relocate(&stale, MIB),
        Err(DefragmentationError::StaleAllocation)
    );
    assert_eq!(
        p.relocate(&other_blocks[0][0], MIB),
        Err(DefragmentationError::ForeignAllocation)
    );
    // A handle naming this pools' block but another memory object is not ours.
    let mut forged = *sparse.raw();
    forged.memory = forged.memory.wrapping_add(100);
    assert_eq!(
        p.relocate(&DeviceAllocation::from_raw(forged), MIB),
        Err(DefragmentationError::ForeignAllocation)
    );
    assert_eq!(p.relocate(&dedicated, MIB), Ok(Relocation::Stay));
    assert_eq!(p.total_stats(), stats, "refusals changed nothing");
    // The pass is still good for the allocation it chose.
    let moves = relocate_all(&mut p, &mut blocks);
    assert_eq!(moves.len(), 1);
    assert!(p.end_defragmentation().moves == 1);
    for (_, old, new) in moves {
        // SAFETY: no GPU.
        unsafe {
            p.free(old).unwrap();
            p.free(new).unwrap();
        }
    }
    // SAFETY: no GPU.
    unsafe { p.free(dedicated).unwrap() };
    for a in blocks.into_iter().flatten() {
        // SAFETY: no GPU.
        unsafe { p.free(a).unwrap() };
    }
    for a in other_blocks.into_iter().flatten() {
        // SAFETY: no GPU.
        unsafe { other.free(a).unwrap() };
    }
}
