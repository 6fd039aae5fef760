//! A frame's transient memory (`Frame::transient_slice`): constants the host writes and the
//! application's draws read in place. The simulated device stands for the application's queue:
//! the test declares each slice read by the frame's GPU work until the frame's timeline value
//! (`DummyDevice::application_reads`), so bytes written again before the application's timeline
//! got there are recorded as a misuse, and each slice's bytes are compared while it is read.

use std::time::Duration;

use memkit_core::device::{DeviceError, InvalidArgument};
use memkit_dummy::{DummyBuffer, DummyDevice, DummyTimeline, MisuseKind, Preset};
use memkit_std::{Coordinator, CoordinatorConfig, Error, Frame, TransientSlice};

fn coordinator_over(device: &DummyDevice, chunk: u64) -> Coordinator<DummyDevice> {
    let config = CoordinatorConfig {
        transient_chunk_size: chunk,
        ..CoordinatorConfig::default()
    };
    Coordinator::new(device.clone(), config).expect("coordinator")
}

/// A simulated discrete GPU, a coordinator over it with transient chunks of `chunk` bytes, and
/// a timeline of the device standing for the application's queue.
fn with_timeline(chunk: u64) -> (DummyDevice, Coordinator<DummyDevice>, DummyTimeline) {
    let device = DummyDevice::discrete();
    let c = coordinator_over(&device, chunk);
    let timeline = device.create_external_timeline();
    (device, c, timeline)
}

/// Frame `n`'s constants: 64 bytes that say which frame and draw they belong to.
fn constants(frame: u64, draw: u64) -> [u64; 8] {
    [
        frame,
        draw,
        frame ^ draw,
        7,
        11,
        13,
        frame * 1000 + draw,
        u64::MAX - draw,
    ]
}

/// A slice as the test remembers it, to read it back later.
struct Written {
    buffer: DummyBuffer,
    offset: u64,
    bytes: Vec<u8>,
}

/// Runs frame `n` (its GPU work done at value `n + 1` of `timeline`): `draws` slices of
/// constants, each declared read by the application until then.
fn frame(
    c: &Coordinator<DummyDevice>,
    device: &DummyDevice,
    timeline: DummyTimeline,
    n: u64,
    draws: u64,
) -> Vec<Written> {
    let frame = begun(c, timeline, n + 1);
    let written = (0..draws)
        .map(|draw| {
            let data = constants(n, draw);
            let slice = frame.transient(&data).expect("transient");
            read_until(device, &slice, &data, timeline, n + 1)
        })
        .collect();
    c.end_frame(frame).expect("end");
    written
}

/// A frame begun on `c` whose GPU work is done once `timeline` reaches `until`.
fn begun(
    c: &Coordinator<DummyDevice>,
    timeline: DummyTimeline,
    until: u64,
) -> Frame<'_, DummyDevice> {
    let frame = c.begin_frame().expect("frame");
    // SAFETY: the timeline is the device's and outlives the coordinator; the test signals it.
    unsafe { frame.gpu_done_at(timeline, until) }.expect("our timeline");
    frame
}

/// `slice`, holding `data`, declared read by the application until `timeline` reaches `until`.
fn read_until(
    device: &DummyDevice,
    slice: &TransientSlice<'_, DummyDevice>,
    data: &[u64; 8],
    timeline: DummyTimeline,
    until: u64,
) -> Written {
    device
        .application_reads(
            slice.buffer(),
            slice.offset(),
            slice.size(),
            timeline,
            until,
        )
        .expect("inside the buffer");
    Written {
        buffer: slice.buffer(),
        offset: slice.offset(),
        bytes: bytemuck::bytes_of(data).to_vec(),
    }
}

fn assert_still_holds(device: &DummyDevice, written: &[Written], what: &str) {
    for (i, w) in written.iter().enumerate() {
        let now = device
            .read_buffer(w.buffer, w.offset, w.bytes.len())
            .expect("live");
        assert_eq!(now, w.bytes, "{what}: slice {i} changed");
    }
}

#[test]
fn slices_hold_their_bytes_at_binding_offsets_and_never_overlap() {
    let (device, c, timeline) = with_timeline(64 << 10);
    let frame = begun(&c, timeline, 1);
    let mut slices = Vec::new();
    for i in 0..300u32 {
        let len = 1 + (i as usize * 37) % 700;
        let data: Vec<u8> = (0..len).map(|b| (b as u32 * 31 + i) as u8).collect();
        let slice = frame.transient_slice(&data).unwrap();
        assert_eq!(slice.size(), len as u64);
        slices.push((slice.buffer(), slice.offset(), data));
    }
    let index: Vec<u32> = (0..1000).collect();
    let indices = frame.transient_slice(&index).unwrap();
    // A slice borrows its frame: what the draws bind is taken before the frame ends.
    let (index_buffer, index_offset) = (indices.buffer(), indices.offset());
    c.end_frame(frame).unwrap();

    let alignment = device.limits().min_buffer_offset_alignment;
    assert_eq!(alignment, 256, "the discrete preset's");
    for (buffer, offset, data) in &slices {
        assert_eq!(offset % alignment, 0, "a binding offset");
        assert_eq!(
            &device.read_buffer(*buffer, *offset, data.len()).unwrap(),
            data
        );
    }
    let index_bytes: &[u8] = bytemuck::cast_slice(&index);
    assert_eq!(
        device
            .read_buffer(index_buffer, index_offset, index_bytes.len())
            .unwrap(),
        index_bytes
    );
    // No two slices share a byte.
    let mut ranges: Vec<_> = slices
        .iter()
        .map(|(b, o, d)| (*b, *o, *o + d.len() as u64))
        .collect();
    ranges.sort();
    for pair in ranges.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[0].2 <= pair[1].1,
            "{pair:?} overlap"
        );
    }
    let stats = c.stats();
    assert_eq!(stats.transient_slices, 301);
    let bytes: u64 = slices.iter().map(|s| s.2.len() as u64).sum::<u64>() + 4000;
    assert_eq!(stats.transient_bytes, bytes);
    // 64 KiB chunks, about a quarter lost to alignment: a few chunks, not one per slice.
    let chunks = stats.transient_chunks;
    assert!((2..=6).contains(&chunks), "{chunks} chunks");
    assert_eq!(stats.transient_chunk_bytes, chunks * (64 << 10));
    device.signal_external(timeline, 1).unwrap();
    device.assert_no_misuse();
}

#[test]
fn a_frames_memory_is_written_again_only_once_the_applications_work_for_it_is_done() {
    let (device, c, timeline) = with_timeline(4096);
    // Six frames whose GPU work has not finished: each goes on in the chunk the one before
    // left open, and takes new ones.
    let frames: Vec<Vec<Written>> = (0..6)
        .map(|n| frame(&c, &device, timeline, n, 40))
        .collect();
    for (n, written) in frames.iter().enumerate() {
        assert_still_holds(&device, written, &format!("frame {n} while its work runs"));
    }
    let held = c.stats().transient_chunks;
    // 40 slices of 64 bytes at 256-byte offsets: 16 per 4 KiB chunk, 2.5 chunks a frame.
    assert_eq!(held, 6 * 40 * 256 / 4096);
    device.assert_no_misuse();

    // The application finished frames 0-3: their chunks are written again, and no more are made.
    device.signal_external(timeline, 4).unwrap();
    let created = c.stats().buffers_created;
    let later: Vec<Vec<Written>> = (6..10)
        .map(|n| frame(&c, &device, timeline, n, 40))
        .collect();
    assert_eq!(c.stats().buffers_created, created, "chunks were reused");
    assert_eq!(c.stats().transient_chunks, held);
    // Frames 4 and 5 still run: their slices kept their bytes.
    assert_still_holds(&device, &frames[4], "frame 4");
    assert_still_holds(&device, &frames[5], "frame 5");
    for (n, written) in later.iter().enumerate() {
        assert_still_holds(&device, written, &format!("frame {}", n + 6));
    }
    device.signal_external(timeline, 10).unwrap();
    device.assert_no_misuse();
}

#[test]
fn without_gpu_done_at_a_frame_hands_out_no_transient_memory() {
    let device = DummyDevice::discrete();
    let c = coordinator_over(&device, 4096);
    let frame = c.begin_frame().unwrap();
    assert_eq!(
        frame.transient(&[1u32; 4]).unwrap_err(),
        Error::FrameGpuDoneUnknown
    );
    let timeline = device.create_external_timeline();
    // SAFETY: as in `frame`.
    unsafe { frame.gpu_done_at(timeline, 1) }.unwrap();
    assert_eq!(
        frame.transient_slice::<u32>(&[]).unwrap_err(),
        Error::ZeroSize
    );
    c.end_frame(frame).unwrap();
    let stats = c.stats();
    assert_eq!(
        (stats.transient_slices, stats.transient_chunks),
        (0, 0),
        "nothing was made"
    );
}

#[test]
fn a_timeline_of_another_device_is_refused() {
    let device = DummyDevice::discrete();
    let c = coordinator_over(&device, 4096);
    let foreign = DummyDevice::discrete().create_external_timeline();
    let frame = c.begin_frame().unwrap();
    // SAFETY: refused before it is kept.
    let refused = unsafe { frame.gpu_done_at(foreign, 1) };
    assert_eq!(
        refused,
        Err(Error::Device(DeviceError::InvalidArgument(
            InvalidArgument::UnknownTimeline
        )))
    );
    assert_eq!(
        frame.transient(&1u64).unwrap_err(),
        Error::FrameGpuDoneUnknown
    );
}

#[test]
fn a_slice_larger_than_a_chunk_gets_one_of_its_own_destroyed_once_read() {
    let (device, c, timeline) = with_timeline(4096);
    let frame = begun(&c, timeline, 1);
    let small = frame.transient_slice(&[5u8; 100]).unwrap();
    let big_data: Vec<u16> = (0..10_000).collect();
    let big = frame.transient_slice(&big_data).unwrap();
    let after = frame.transient_slice(&[6u8; 100]).unwrap();
    assert_ne!(big.buffer(), small.buffer());
    assert_eq!(big.offset(), 0);
    // The chunk being filled stays the same around the large slice.
    assert_eq!(after.buffer(), small.buffer());
    assert_eq!(
        device.read_buffer(big.buffer(), 0, 20_000).unwrap(),
        bytemuck::cast_slice::<u16, u8>(&big_data)
    );
    let big_buffer = big.buffer();
    c.end_frame(frame).unwrap();
    assert_eq!(c.stats().transient_chunk_bytes, 4096 + 20_000);

    device.signal_external(timeline, 1).unwrap();
    c.maintain().unwrap();
    assert_eq!(c.stats().transient_chunk_bytes, 4096, "the large one went");
    assert!(!device.live_buffers().contains(&big_buffer));
    device.assert_no_misuse();
}

#[test]
fn a_dropped_frame_keeps_its_memory_until_its_work_is_done() {
    let (device, c, timeline) = with_timeline(4096);
    let cancelled = begun(&c, timeline, 1);
    let slice = cancelled.transient(&constants(0, 0)).unwrap();
    let (buffer, offset) = (slice.buffer(), slice.offset());
    device
        .application_reads(buffer, offset, 64, timeline, 1)
        .unwrap();
    drop(cancelled);
    let next = frame(&c, &device, timeline, 1, 16);
    // The next frame goes on after it in the chunk it left open.
    assert!(
        next.iter()
            .all(|w| w.buffer != buffer || w.offset >= offset + 64),
        "the next frame wrote over the dropped frame's slice"
    );
    assert_eq!(next[0].buffer, buffer, "the open chunk was filled on");
    assert_eq!(
        device.read_buffer(buffer, offset, 64).unwrap(),
        bytemuck::bytes_of(&constants(0, 0))
    );
    device.signal_external(timeline, 2).unwrap();
    device.assert_no_misuse();
}

#[test]
fn non_coherent_memory_is_flushed_for_the_gpu() {
    // The mobile preset's host-visible memory is not coherent: without a flush the device
    // reads stale bytes.
    let device = DummyDevice::new(Preset::Mobile.config()).unwrap();
    let c = coordinator_over(&device, 64 << 10);
    let timeline = device.create_external_timeline();
    let written = frame(&c, &device, timeline, 0, 50);
    assert_still_holds(&device, &written, "mobile");
    device.signal_external(timeline, 1).unwrap();
    device.assert_no_misuse();
}

#[test]
fn steady_frames_settle_on_a_few_chunks() {
    let (device, c, timeline) = with_timeline(4096);
    // The application's work for a frame is done two frames later, as with triple buffering.
    for n in 0..200u64 {
        if n >= 2 {
            device.signal_external(timeline, n - 1).unwrap();
        }
        frame(&c, &device, timeline, n, 20);
    }
    let stats = c.stats();
    // Two chunks a frame (20 slices of 256 bytes), three frames running: the chunks made at the
    // start, never more.
    assert!(
        stats.transient_chunks <= 2 * 4,
        "{} chunks held",
        stats.transient_chunks
    );
    assert!(
        stats.buffers_created <= 2 * 4 + 1,
        "{}",
        stats.buffers_created
    );
    device.signal_external(timeline, 200).unwrap();
    device.assert_no_misuse();
}

#[test]
fn teardown_waits_for_the_applications_work_then_frees_every_chunk() {
    let (device, c, timeline) = with_timeline(4096);
    for n in 0..3 {
        frame(&c, &device, timeline, n, 20);
    }
    let signaller = {
        let device = device.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            device.signal_external(timeline, 3).unwrap();
        })
    };
    let stats = c.shutdown();
    signaller.join().unwrap();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(stats.transient_chunks, 0);
    // Destroyed only after the application's timeline got there.
    device.assert_no_misuse();
    assert!(device.live_buffers().is_empty());
    assert!(
        device.leak_report().is_empty(),
        "{:?}",
        device.leak_report()
    );
}

#[test]
fn a_lost_device_refuses_transient_memory_and_frees_it_at_teardown() {
    let (device, c, timeline) = with_timeline(4096);
    frame(&c, &device, timeline, 0, 4);
    let frame = begun(&c, timeline, 2);
    device.lose_device();
    // Writing host memory asks nothing of the device: the coordinator refuses once it learnt
    // of the loss (any call that reaches the device).
    assert_eq!(c.maintain(), Err(Error::DeviceLost));
    assert_eq!(frame.transient(&1u64).unwrap_err(), Error::DeviceLost);
    drop(frame);
    // The timeline is never signalled: the loss means the GPU reads nothing any more.
    let stats = c.shutdown();
    assert_eq!(stats.transient_chunks, 0);
    assert!(device.live_buffers().is_empty());
    let misuses: Vec<MisuseKind> = device.misuse_kinds();
    assert!(misuses.is_empty(), "{misuses:?}");
}

#[test]
fn a_chunk_frames_shared_waits_for_every_one_of_them() {
    // Two frames on different timelines (say, work on two queues) share the chunk the first
    // left open: it is written again only once both are done, whichever finishes first.
    let device = DummyDevice::discrete();
    let c = coordinator_over(&device, 4096);
    let (first, second) = (
        device.create_external_timeline(),
        device.create_external_timeline(),
    );
    let early = frame(&c, &device, first, 0, 1);
    // 16 slices fill the 4 KiB chunk and take another: the shared chunk is retired.
    let later = frame(&c, &device, second, 0, 20);
    assert_eq!(
        later[0].buffer, early[0].buffer,
        "the open chunk was shared"
    );
    device.signal_external(second, 1).unwrap();
    // Frames on the second timeline only: they may reuse what it alone read, never the
    // shared chunk while the first frame's work runs.
    for n in 1..8 {
        let written = frame(&c, &device, second, n, 20);
        device.signal_external(second, n + 1).unwrap();
        assert!(
            written.iter().all(|w| w.buffer != early[0].buffer),
            "frame {n} wrote into the chunk the first timeline's frame still reads"
        );
    }
    assert_still_holds(&device, &early, "the first timeline's frame");
    device.signal_external(first, 1).unwrap();
    device.assert_no_misuse();
}

#[test]
fn transient_with_writes_in_place_and_may_take_other_slices_meanwhile() {
    for preset in Preset::ALL {
        let device = DummyDevice::new(preset.config()).unwrap();
        let c = coordinator_over(&device, 64 << 10);
        let timeline = device.create_external_timeline();
        let frame = begun(&c, timeline, 1);
        let mut inner = None;
        let outer = frame
            .transient_with::<[u64; 8]>(100, |blocks| {
                assert_eq!(blocks.len(), 100);
                for (draw, block) in blocks.iter_mut().enumerate() {
                    *block = constants(0, draw as u64);
                    if draw == 50 {
                        // The frame is free to use while the slice is being written.
                        let slice = frame.transient(&constants(1, 0)).expect("nested");
                        inner = Some((slice.buffer(), slice.offset()));
                    }
                }
            })
            .expect("transient_with");
        let (inner_buffer, inner_offset) = inner.expect("the closure ran");
        assert_eq!(outer.size(), 100 * 64);
        let apart = inner_buffer != outer.buffer()
            || inner_offset >= outer.offset() + outer.size()
            || inner_offset + 64 <= outer.offset();
        assert!(
            apart,
            "{preset}: the nested slice lies in the one being written"
        );
        // What the device sees: on non-coherent memory (mobile), only after the flush that
        // follows the closure.
        let want: Vec<u8> = (0..100)
            .flat_map(|d| bytemuck::bytes_of(&constants(0, d)).to_vec())
            .collect();
        let got = device
            .read_buffer(outer.buffer(), outer.offset(), want.len())
            .unwrap();
        assert!(got == want, "{preset}: the blocks written in place");
        let got = device.read_buffer(inner_buffer, inner_offset, 64).unwrap();
        assert_eq!(got, bytemuck::bytes_of(&constants(1, 0)), "{preset}");
        c.end_frame(frame).unwrap();
        // Counted when the frame ended.
        assert_eq!(c.stats().transient_slices, 2);
        device.signal_external(timeline, 1).unwrap();
        device.assert_no_misuse();
    }
}

#[test]
fn transient_with_refuses_bad_counts_without_calling_the_writer() {
    let (device, c, timeline) = with_timeline(4096);
    let frame = c.begin_frame().unwrap();
    let never = |_: &mut [u32]| panic!("the writer ran");
    assert_eq!(
        frame.transient_with(4, never).unwrap_err(),
        Error::FrameGpuDoneUnknown
    );
    // SAFETY: as in `frame`.
    unsafe { frame.gpu_done_at(timeline, 1) }.unwrap();
    assert_eq!(frame.transient_with(0, never).unwrap_err(), Error::ZeroSize);
    assert_eq!(
        frame
            .transient_with(0, |_: &mut [()]| panic!("the writer ran"))
            .unwrap_err(),
        Error::ZeroSize
    );
    // More bytes than a `u64` counts: refused as too large for device memory.
    let refused = frame.transient_with(usize::MAX, |_: &mut [u64]| panic!("the writer ran"));
    assert!(matches!(refused, Err(Error::Memory(_))), "{refused:?}");
    c.end_frame(frame).unwrap();
    device.signal_external(timeline, 1).unwrap();
    assert_eq!(c.stats().transient_slices, 0);
    device.assert_no_misuse();
}

/// Writes `draws` slices of frame `n`'s constants through `writer`, each declared read by the
/// application until value `n + 1`; `job` tells the jobs' constants apart.
fn write_job(
    writer: &mut memkit_std::TransientWriter<'_, DummyDevice>,
    device: &DummyDevice,
    timeline: DummyTimeline,
    n: u64,
    job: u64,
    draws: u64,
) -> Vec<Written> {
    (0..draws)
        .map(|draw| {
            let data = constants(n, job << 32 | draw);
            let slice = writer.transient(&data).expect("transient");
            read_until(device, &slice, &data, timeline, n + 1)
        })
        .collect()
}

fn assert_disjoint(written: &[Written]) {
    let mut ranges: Vec<_> = written
        .iter()
        .map(|w| (w.buffer, w.offset, w.offset + w.bytes.len() as u64))
        .collect();
    ranges.sort();
    for pair in ranges.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[0].2 <= pair[1].1,
            "{pair:?} overlap"
        );
    }
}

#[test]
fn writers_on_several_threads_fill_one_frame_apart() {
    const JOBS: u64 = 6;
    const DRAWS: u64 = 300;
    let (device, c, timeline) = with_timeline(16 << 10);
    let mut all = Vec::new();
    for n in 0..4u64 {
        if n >= 2 {
            device.signal_external(timeline, n - 1).unwrap();
        }
        let frame = begun(&c, timeline, n + 1);
        // The frame's own slices, while the jobs write theirs.
        let own_data = constants(n, 1 << 40);
        let mut written = std::thread::scope(|scope| {
            let jobs: Vec<_> = (0..JOBS)
                .map(|job| {
                    let mut writer = frame.transient_writer();
                    let device = &device;
                    scope.spawn(move || write_job(&mut writer, device, timeline, n, job, DRAWS))
                })
                .collect();
            jobs.into_iter()
                .flat_map(|job| job.join().unwrap())
                .collect::<Vec<_>>()
        });
        let own = frame.transient(&own_data).unwrap();
        written.push(Written {
            buffer: own.buffer(),
            offset: own.offset(),
            bytes: bytemuck::bytes_of(&own_data).to_vec(),
        });
        c.end_frame(frame).unwrap();
        assert_eq!(written.len() as u64, JOBS * DRAWS + 1);
        assert_still_holds(&device, &written, &format!("frame {n}"));
        assert_disjoint(&written);
        all.push(written);
    }
    // The two frames whose work has not finished kept every byte.
    assert_still_holds(&device, &all[2], "frame 2");
    assert_still_holds(&device, &all[3], "frame 3");
    let stats = c.stats();
    assert_eq!(stats.transient_slices, 4 * (JOBS * DRAWS + 1));
    assert_eq!(stats.transient_bytes, 4 * (JOBS * DRAWS + 1) * 64);
    // 1800 slices at 256-byte offsets are 28 chunks of 16 KiB; each job's last chunk partly
    // filled: at most one more per job, per frame in flight.
    let per_frame = (JOBS * DRAWS * 256).div_ceil(16 << 10) + JOBS;
    assert!(
        stats.transient_chunks <= 3 * per_frame,
        "{} chunks",
        stats.transient_chunks
    );
    device.signal_external(timeline, 4).unwrap();
    device.assert_no_misuse();
}

#[test]
fn a_writers_rest_goes_to_the_frames_next_writer() {
    let (device, c, timeline) = with_timeline(4096);
    let frame = begun(&c, timeline, 1);
    let mut first = frame.transient_writer();
    let a = first.transient(&constants(0, 0)).unwrap();
    // A second writer at the same time fills a chunk of its own.
    let mut second = frame.transient_writer();
    let b = second.transient(&constants(0, 1)).unwrap();
    assert_ne!(a.buffer(), b.buffer());
    drop(first);
    drop(second);
    // The next writer and the frame itself go on in those chunks, after what was written.
    let mut third = frame.transient_writer();
    let c3 = third.transient(&constants(0, 2)).unwrap();
    let own = frame.transient(&constants(0, 3)).unwrap();
    let mut taken = [(a.buffer(), a.offset()), (b.buffer(), b.offset())];
    taken.sort();
    let mut now = [(c3.buffer(), c3.offset()), (own.buffer(), own.offset())];
    now.sort();
    assert_eq!(
        [now[0].0, now[1].0],
        [taken[0].0, taken[1].0],
        "the writers' chunks were filled on"
    );
    assert_eq!([now[0].1, now[1].1], [256, 256], "after their first slices");
    drop(third);
    c.end_frame(frame).unwrap();
    assert_eq!(c.stats().transient_chunks, 2);
    device.signal_external(timeline, 1).unwrap();
}

#[test]
fn a_leaked_writers_chunk_is_written_again_only_after_the_frames_work() {
    let (device, c, timeline) = with_timeline(4096);
    let first = begun(&c, timeline, 1);
    let mut writer = first.transient_writer();
    let leaked = write_job(&mut writer, &device, timeline, 0, 1, 3);
    std::mem::forget(writer);
    c.end_frame(first).unwrap();
    // Later frames (their work done at once) never touch the leaked writer's chunk meanwhile.
    for n in 1..6 {
        let written = frame(&c, &device, timeline, n, 20);
        assert!(
            written.iter().all(|w| w.buffer != leaked[0].buffer),
            "frame {n} wrote into the chunk frame 0 still reads"
        );
    }
    assert_still_holds(&device, &leaked, "the leaked writer's slices");
    device.assert_no_misuse();
    // Once frame 0's work is done, its chunk is taken back like any other: kept for reuse (a
    // frame that needs every chunk held writes into it) or destroyed, never held for nothing.
    device.signal_external(timeline, 6).unwrap();
    c.maintain().unwrap();
    let held = c.stats().transient_chunks;
    let written = frame(&c, &device, timeline, 6, 16 * held);
    assert_eq!(c.stats().transient_chunks, held + 1, "one chunk more");
    let leaked_buffer = leaked[0].buffer;
    assert!(
        written.iter().any(|w| w.buffer == leaked_buffer)
            || !device.live_buffers().contains(&leaked_buffer),
        "the leaked writer's chunk is held and never used"
    );
    device.signal_external(timeline, 7).unwrap();
    device.assert_no_misuse();
}

#[test]
fn a_writer_refuses_what_the_frame_refuses() {
    let device = DummyDevice::discrete();
    let c = coordinator_over(&device, 4096);
    let frame = c.begin_frame().unwrap();
    let mut writer = frame.transient_writer();
    assert_eq!(
        writer.transient(&1u64).unwrap_err(),
        Error::FrameGpuDoneUnknown
    );
    drop(writer);
    let timeline = device.create_external_timeline();
    // SAFETY: as in `frame`.
    unsafe { frame.gpu_done_at(timeline, 1) }.unwrap();
    let mut writer = frame.transient_writer();
    assert_eq!(
        writer.transient_slice::<u32>(&[]).unwrap_err(),
        Error::ZeroSize
    );
    let mut called = false;
    assert_eq!(
        writer
            .transient_with::<u32>(0, |_| called = true)
            .unwrap_err(),
        Error::ZeroSize
    );
    assert!(!called);
    let values = writer
        .transient_with::<u32>(100, |v| {
            for (i, v) in v.iter_mut().enumerate() {
                *v = i as u32 * 3;
            }
        })
        .unwrap();
    let expected: Vec<u32> = (0..100).map(|i| i * 3).collect();
    assert_eq!(
        device
            .read_buffer(values.buffer(), values.offset(), 400)
            .unwrap(),
        bytemuck::cast_slice::<u32, u8>(&expected)
    );
    drop(writer);
    c.end_frame(frame).unwrap();
    assert_eq!(c.stats().transient_slices, 1);
    device.signal_external(timeline, 1).unwrap();
    device.assert_no_misuse();
}
