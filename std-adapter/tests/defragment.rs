//! `Coordinator::defragment` on the simulated device: buffers move out of sparsely used blocks
//! with their bytes, the emptied blocks go back to the device once the copies completed, busy
//! buffers and those that must never move stay (and keep their blocks), one pass runs at a
//! time, and a refused call moves nothing and leaks nothing.

use memkit_core::device::DeviceError;
use memkit_dummy::DummyDevice;
use memkit_std::{
    Buffer, Coordinator, CoordinatorConfig, DefragmentationLimits, Error, MemoryUsage, PoolConfig,
};

const MIB: u64 = 1 << 20;

fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A coordinator whose blocks are 4 MiB, so that 1 MiB buffers fill them four at a time.
fn coordinator() -> (Coordinator<DummyDevice>, DummyDevice) {
    let device = DummyDevice::discrete();
    let config = CoordinatorConfig {
        pools: PoolConfig {
            first_block_size: 4 * MIB,
            preferred_block_size: Some(4 * MIB),
            ..PoolConfig::default()
        },
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    (c, device)
}

/// `blocks` blocks of four 1 MiB device-local buffers, each filled with its own pattern (seed =
/// its number), the uploads completed. Returns `(seed, buffer)` per block.
fn filled_blocks(
    c: &Coordinator<DummyDevice>,
    blocks: usize,
) -> Vec<Vec<(u8, Buffer<DummyDevice>)>> {
    filled_blocks_of(c, blocks, MemoryUsage::FAST_DEVICE_ACCESS, 0)
}

/// [`filled_blocks`] for buffers of `usage`, seeds from `first_seed`.
fn filled_blocks_of(
    c: &Coordinator<DummyDevice>,
    blocks: usize,
    usage: MemoryUsage,
    first_seed: u8,
) -> Vec<Vec<(u8, Buffer<DummyDevice>)>> {
    let mut seed = first_seed;
    let mut all = Vec::new();
    for _ in 0..blocks {
        let mut block = Vec::new();
        for _ in 0..4 {
            let buffer = c.create_buffer(MIB, usage).expect("buffer");
            c.upload_to(&buffer, 0, &pattern(MIB, seed))
                .expect("upload");
            block.push((seed, buffer));
            seed += 1;
        }
        let memory = block[0].1.memory().0;
        assert!(
            block.iter().all(|(_, b)| b.memory().0 == memory),
            "four 1 MiB buffers share a 4 MiB block"
        );
        all.push(block);
    }
    c.flush_transfers().expect("flush").wait().expect("uploads");
    all
}

/// Blocks of four 1 MiB buffers, as [`filled_blocks`] makes them, block `i` then keeping its
/// first `counts[i]` (the others dropped and destroyed).
fn blocks_holding(
    c: &Coordinator<DummyDevice>,
    counts: &[usize],
) -> Vec<Vec<(u8, Buffer<DummyDevice>)>> {
    let mut blocks = filled_blocks(c, counts.len());
    for (block, &count) in blocks.iter_mut().zip(counts) {
        block.truncate(count);
    }
    c.maintain().expect("maintain");
    blocks
}

/// Device-local blocks now (the staging ring's host-visible block is in another heap).
fn device_local_blocks(c: &Coordinator<DummyDevice>) -> u32 {
    c.stats().heaps[0].blocks
}

/// Reads every buffer back through the GPU and checks it holds its pattern.
fn assert_contents(c: &Coordinator<DummyDevice>, buffers: &[(u8, Buffer<DummyDevice>)]) {
    let reads: Vec<_> = buffers
        .iter()
        .map(|(seed, b)| (*seed, c.read_back(b, 0, MIB).expect("read back")))
        .collect();
    for (seed, read) in reads {
        assert!(
            read.wait().expect("read") == pattern(MIB, seed),
            "buffer {seed} lost its bytes"
        );
    }
}

#[test]
fn buffers_move_out_of_sparse_blocks_with_their_bytes_and_the_blocks_go_back() {
    let (c, device) = coordinator();
    // The 3 MiB that blocks 0 and 1 hold fit the room of the other three, and no third block
    // fits what is left.
    let blocks = blocks_holding(&c, &[1, 2, 3, 3, 3]);
    assert_eq!(device_local_blocks(&c), 5);
    let mut buffers: Vec<_> = blocks.into_iter().flatten().collect();
    let before: Vec<_> = buffers.iter().map(|(_, b)| (b.raw(), b.memory())).collect();
    let ids: Vec<u64> = buffers.iter().map(|(_, b)| b.id()).collect();
    buffers[0].1.set_label("the lonely one");

    let outcome = c
        .defragment(
            buffers.iter_mut().map(|(_, b)| b),
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");

    // The two sparsest blocks are emptied: their three buffers move, the others stay.
    assert_eq!(outcome.moved, [0, 1, 2]);
    assert_eq!(outcome.bytes_moved, 3 * MIB);
    assert_eq!(outcome.unmovable, 0);
    assert_eq!(
        (outcome.plan.blocks, outcome.plan.block_bytes),
        (2, 8 * MIB)
    );
    for (i, (_, b)) in buffers.iter().enumerate() {
        let moved = outcome.moved.contains(&i);
        assert_eq!(b.raw() != before[i].0, moved, "buffer {i}'s raw buffer");
        assert_eq!(b.memory() != before[i].1, moved, "buffer {i}'s memory");
        assert_eq!(b.id(), ids[i], "a handle keeps its id");
        if moved {
            let old_block = before[i].1.0;
            assert!(
                before.iter().skip(3).all(|(_, m)| m.0 != old_block),
                "buffer {i} came from a block the pass emptied"
            );
            assert!(
                before[3..].iter().any(|(_, m)| m.0 == b.memory().0),
                "buffer {i} moved into a block that stays"
            );
        }
    }
    // The old buffers and blocks stay until the copy completed.
    assert!(device.live_buffers().contains(&before[0].0));
    assert_eq!(device_local_blocks(&c), 5);
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    for (old, _) in &before[..3] {
        assert!(
            !device.live_buffers().contains(old),
            "an old buffer is destroyed once its copy completed"
        );
    }
    assert_eq!(device_local_blocks(&c), 3, "the emptied blocks went back");
    let stats = c.stats();
    assert_eq!(stats.buffers_moved, 3);
    assert_eq!(stats.bytes_moved, 3 * MIB);
    assert_eq!(stats.blocks_released_by_defragmentation, 2);
    assert_eq!(stats.bytes_released_by_defragmentation, 8 * MIB);
    assert_contents(&c, &buffers);
    // Uploads after the move land in the new buffer.
    let fresh = pattern(MIB, 200);
    c.upload_to(&buffers[0].1, 0, &fresh)
        .expect("upload")
        .wait()
        .expect("upload");
    buffers[0].0 = 200;
    assert_contents(&c, &buffers);
    device.assert_no_misuse();
    drop(buffers);
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(
        device.leak_report().memory.len(),
        0,
        "{:?}",
        device.leak_report()
    );
}

/// In device-local memory and in host-cached memory (read-back destinations, which the GPU
/// writes through copies, so they may move too), a block holding one buffer and one holding
/// three, into whose room the one fits: `[local lonely, local x3, cached lonely, cached x3]`,
/// seeds from `first_seed`.
fn sparse_in_two_types(
    c: &Coordinator<DummyDevice>,
    first_seed: u8,
) -> Vec<(u8, Buffer<DummyDevice>)> {
    let mut local = filled_blocks_of(c, 2, MemoryUsage::FAST_DEVICE_ACCESS, first_seed);
    let mut cached = filled_blocks_of(c, 2, MemoryUsage::DOWNLOAD, first_seed + 8);
    for blocks in [&mut local, &mut cached] {
        blocks[0].truncate(1);
        blocks[1].truncate(3);
    }
    c.maintain().expect("maintain");
    local.into_iter().chain(cached).flatten().collect()
}

/// Blocks over every heap.
fn all_blocks(c: &Coordinator<DummyDevice>) -> u32 {
    c.stats().heaps.iter().map(|h| h.blocks).sum()
}

#[test]
fn one_call_empties_blocks_of_every_memory_type() {
    let (c, device) = coordinator();
    let mut buffers = sparse_in_two_types(&c, 0);
    let (local_type, cached_type) = (buffers[0].1.memory_type(), buffers[4].1.memory_type());
    assert_ne!(local_type, cached_type);
    let before = all_blocks(&c);
    let outcome = c
        .defragment(
            buffers.iter_mut().map(|(_, b)| b),
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");
    assert_eq!(outcome.plan.blocks, 2, "one block of each type");
    assert_eq!(outcome.moved, [0, 4], "each type's lonely buffer");
    assert_eq!(outcome.memory_types, [local_type, cached_type]);
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert_eq!(all_blocks(&c), before - 2);
    assert_eq!(buffers[0].1.memory().0, buffers[1].1.memory().0);
    assert_eq!(buffers[4].1.memory().0, buffers[5].1.memory().0);
    assert_contents(&c, &buffers);

    // Restricted to one type, a pass leaves the other's sparse blocks alone.
    let mut more = sparse_in_two_types(&c, 16);
    let before = all_blocks(&c);
    let limits = DefragmentationLimits::UNLIMITED.with_memory_type(cached_type);
    let outcome = c
        .defragment(more.iter_mut().map(|(_, b)| b), &limits)
        .expect("defragment");
    assert_eq!(
        (outcome.plan.blocks, outcome.moved.as_slice()),
        (1, &[4][..])
    );
    assert_eq!(outcome.memory_types, [cached_type]);
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert_eq!(all_blocks(&c), before - 1);
    assert_contents(&c, &more);
    device.assert_no_misuse();
}

#[test]
fn busy_buffers_stay_and_keep_their_blocks() {
    let (c, device) = coordinator();
    let mut blocks = blocks_holding(&c, &[1, 2, 4]);
    // Block 0's buffer has an upload staged behind a grant this thread holds: it cannot be
    // submitted, so the buffer may not move. Block 0 is the sparsest, but a pass that chose it
    // could not empty it: block 1 goes instead, into block 0's room.
    let grant = c.acquire_staging(256).expect("grant");
    let late = pattern(4096, 99);
    c.upload_to(&blocks[0][0].1, 0, &late).expect("staged");
    let [b0, b1, _] = &mut blocks[..] else {
        unreachable!()
    };
    let mut given: Vec<&mut Buffer<DummyDevice>> =
        b0.iter_mut().chain(b1.iter_mut()).map(|(_, b)| b).collect();
    let raws: Vec<_> = given.iter().map(|b| b.raw()).collect();
    let outcome = c
        .defragment(
            given.iter_mut().map(|b| &mut **b),
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");
    assert_eq!(outcome.unmovable, 1);
    assert_eq!(outcome.moved, [1, 2]);
    assert_eq!(outcome.plan.blocks, 1);
    assert_eq!(given[0].raw(), raws[0], "the busy buffer stays");
    assert_ne!(given[1].raw(), raws[1]);
    assert_eq!(given[1].memory().0, given[0].memory().0);
    drop(given);
    drop(grant);
    outcome.ticket.wait().expect("copies");
    c.flush_transfers()
        .expect("flush")
        .wait()
        .expect("late upload");
    assert_eq!(device_local_blocks(&c), 2, "only block 1 went back");
    let mut expected = pattern(MIB, 0);
    expected[..late.len()].copy_from_slice(&late);
    let read = c.read_back(&blocks[0][0].1, 0, MIB).expect("read back");
    assert!(read.wait().expect("read") == expected);
    assert_contents(&c, &blocks[1]);
    device.assert_no_misuse();
}

#[test]
fn buffers_with_a_device_address_or_written_by_the_cpu_never_move() {
    for usage in [
        MemoryUsage::FAST_DEVICE_ACCESS | MemoryUsage::DEVICE_ADDRESS,
        MemoryUsage::HOST_ACCESS,
    ] {
        let (c, device) = coordinator();
        // Alone in its block, with room in the next: only what it is keeps it there.
        let mut kept = c.create_buffer(MIB, usage).expect("buffer");
        let mut others: Vec<_> = (0..7)
            .map(|_| c.create_buffer(MIB, usage).expect("buffer"))
            .collect();
        assert_eq!(others[2].memory().0, kept.memory().0, "{usage:?}");
        assert_ne!(others[3].memory().0, kept.memory().0, "{usage:?}");
        assert_eq!(
            kept.is_direct_write(),
            usage.contains(MemoryUsage::HOST_ACCESS)
        );
        drop(others.drain(..3).collect::<Vec<_>>());
        drop(others.pop());
        c.maintain().expect("maintain");
        let raw = kept.raw();
        let outcome = c
            .defragment([&mut kept], &DefragmentationLimits::UNLIMITED)
            .expect("defragment");
        assert_eq!(
            (outcome.unmovable, outcome.moved.len()),
            (1, 0),
            "{usage:?}"
        );
        assert!(outcome.memory_types.is_empty());
        assert_eq!(kept.raw(), raw);
        drop(others);
        device.assert_no_misuse();
    }
}

#[test]
fn one_pass_runs_until_its_copies_completed() {
    let (c, device) = coordinator();
    // Blocks 0 and 1 hold a buffer each, block 2 two: each pass moves one buffer into it.
    let mut blocks = blocks_holding(&c, &[1, 1, 2, 4]);
    let [b0, b1, ..] = &mut blocks[..] else {
        unreachable!()
    };
    let first = c
        .defragment([&mut b0[0].1], &DefragmentationLimits::UNLIMITED)
        .expect("first pass");
    assert_eq!(first.moved, [0]);
    assert!(!first.ticket.is_complete().expect("poll"));
    assert_eq!(
        c.defragment([&mut b1[0].1], &DefragmentationLimits::UNLIMITED)
            .unwrap_err(),
        Error::DefragmentationRunning
    );
    first.ticket.wait().expect("copies");
    let second = c
        .defragment([&mut b1[0].1], &DefragmentationLimits::UNLIMITED)
        .expect("second pass");
    assert_eq!(second.moved, [0]);
    second.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert_eq!(device_local_blocks(&c), 2);
    assert_eq!(c.stats().blocks_released_by_defragmentation, 2);
    let all: Vec<_> = blocks.into_iter().flatten().collect();
    assert_contents(&c, &all);
    device.assert_no_misuse();
    // Moved buffers still held at the end are found, reported and destroyed like any other.
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, all.len() as u64);
    assert!(all.iter().all(|(_, b)| !b.is_live()));
    let leaks = device.leak_report();
    assert!(
        leaks.memory.is_empty() && leaks.buffers.is_empty(),
        "{leaks:?}"
    );
}

#[test]
fn limits_bound_a_pass_and_a_memory_type_the_device_lacks_is_refused() {
    let (c, _device) = coordinator();
    let mut blocks = blocks_holding(&c, &[1, 1, 4]);
    let limits = DefragmentationLimits::UNLIMITED.with_max_allocations(1);
    let outcome = c
        .defragment(blocks.iter_mut().flatten().map(|(_, b)| b), &limits)
        .expect("defragment");
    assert_eq!((outcome.plan.blocks, outcome.moved.len()), (1, 1));
    outcome.ticket.wait().expect("copies");
    let bad = DefragmentationLimits::UNLIMITED.with_memory_type(99);
    assert!(matches!(
        c.defragment(blocks.iter_mut().flatten().map(|(_, b)| b), &bad),
        Err(Error::Defragmentation(_))
    ));
}

#[test]
fn foreign_buffers_are_refused_before_anything_moves() {
    let (c, _device) = coordinator();
    let (other, _other_device) = coordinator();
    let mut blocks = blocks_holding(&c, &[1, 4]);
    let mut foreign = other
        .create_buffer(64, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let raw = blocks[0][0].1.raw();
    let result = c.defragment(
        [&mut blocks[0][0].1, &mut foreign],
        &DefragmentationLimits::UNLIMITED,
    );
    assert_eq!(result.unwrap_err(), Error::ForeignBuffer);
    assert_eq!(blocks[0][0].1.raw(), raw);
    assert_eq!(c.stats().buffers_moved, 0);
}

#[test]
fn a_refused_submission_moves_nothing_and_leaks_nothing() {
    let (c, device) = coordinator();
    let mut blocks = blocks_holding(&c, &[1, 3]);
    let raw = blocks[0][0].1.raw();
    let live_buffers = device.live_buffers().len();
    let next_submit = device.counters().submit_calls + 1;
    device.fail_submit_call(next_submit, DeviceError::OutOfDeviceMemory);
    let refused = c.defragment([&mut blocks[0][0].1], &DefragmentationLimits::UNLIMITED);
    assert!(matches!(refused, Err(Error::Device(_))), "{refused:?}");
    assert_eq!(blocks[0][0].1.raw(), raw);
    assert_eq!(
        device.live_buffers().len(),
        live_buffers,
        "the new buffer is gone"
    );
    // The pass ended: the next one runs, and moves the buffer.
    let outcome = c
        .defragment([&mut blocks[0][0].1], &DefragmentationLimits::UNLIMITED)
        .expect("defragment");
    assert_eq!(outcome.moved, [0]);
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert_eq!(device_local_blocks(&c), 1);
    let all: Vec<_> = blocks.into_iter().flatten().collect();
    assert_contents(&c, &all);
    device.assert_no_misuse();
}

#[test]
fn a_buffer_dropped_right_after_it_moved_is_destroyed_after_its_copy() {
    let (c, device) = coordinator();
    let mut blocks = blocks_holding(&c, &[1, 3]);
    let (_, mut lonely) = blocks[0].pop().expect("buffer");
    let old = lonely.raw();
    let outcome = c
        .defragment([&mut lonely], &DefragmentationLimits::UNLIMITED)
        .expect("defragment");
    let new = lonely.raw();
    drop(lonely);
    c.maintain().expect("maintain");
    assert!(device.live_buffers().contains(&old));
    assert!(device.live_buffers().contains(&new));
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert!(!device.live_buffers().contains(&old));
    assert!(!device.live_buffers().contains(&new));
    assert_eq!(device_local_blocks(&c), 1);
    device.assert_no_misuse();
    drop(blocks);
    assert_eq!(c.shutdown().leaked_buffers, 0);
}

/// A pass over blocks of one, two and three buffers (it moves three) whose second new buffer
/// the device refuses, as `refuse` plans on it: the device's error, nothing moved, every new
/// place given back (the ones not tried yet too) and every new buffer destroyed; the next pass
/// moves all three with their bytes.
fn a_refused_move_leaves_nothing(refuse: impl Fn(&DummyDevice)) {
    let (c, device) = coordinator();
    let mut blocks = blocks_holding(&c, &[1, 2, 3, 3, 3]);
    let live = c.stats().heaps[0].sub_allocations;
    let raws: Vec<_> = blocks.iter().flatten().map(|(_, b)| b.raw()).collect();
    let buffers_before = device.counters().live_buffers;
    refuse(&device);
    let refused = c.defragment(
        blocks.iter_mut().flatten().map(|(_, b)| b),
        &DefragmentationLimits::UNLIMITED,
    );
    assert!(
        matches!(refused, Err(Error::Device(DeviceError::OutOfDeviceMemory))),
        "{refused:?}"
    );
    let after: Vec<_> = blocks.iter().flatten().map(|(_, b)| b.raw()).collect();
    assert_eq!(after, raws, "nothing moved");
    assert_eq!(
        c.stats().heaps[0].sub_allocations,
        live,
        "every new place is given back, the ones not tried yet too"
    );
    c.maintain().expect("maintain");
    assert_eq!(
        device.counters().live_buffers,
        buffers_before,
        "the new buffers made for the pass are destroyed"
    );
    // The pass ended: the next one moves all three and empties both blocks.
    let outcome = c
        .defragment(
            blocks.iter_mut().flatten().map(|(_, b)| b),
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");
    assert_eq!(outcome.moved, [0, 1, 2]);
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert_eq!(device_local_blocks(&c), 3);
    let all: Vec<_> = blocks.into_iter().flatten().collect();
    assert_contents(&c, &all);
    device.assert_no_misuse();
    drop(all);
    assert_eq!(c.shutdown().leaked_buffers, 0);
    assert!(device.leak_report().is_empty(), "{}", device.leak_report());
}

#[test]
fn a_failed_buffer_creation_gives_back_every_new_place() {
    a_refused_move_leaves_nothing(|device| {
        let second = device.counters().buffer_creation_calls + 2;
        device.fail_buffer_creation_call(second, DeviceError::OutOfDeviceMemory);
    });
}

#[test]
fn a_refused_bind_gives_back_every_new_place_and_its_buffer() {
    // The second new buffer is made, then refused its memory: it is destroyed too.
    a_refused_move_leaves_nothing(|device| {
        let second = device.counters().bind_calls + 2;
        device.fail_bind_call(second, DeviceError::OutOfDeviceMemory);
    });
}
