//! One coordinator, many threads at once: producers uploading through every path, a frame loop,
//! an observer reading statistics and flushing, and a "GPU" thread completing submissions at its
//! own pace. Every byte must land where its thread sent it, the statistics must add up exactly,
//! and nothing may leak. Run under ThreadSanitizer by `bash scripts/test.sh tsan`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use memkit_dummy::{DummyDevice, WaitMode};
use memkit_std::{BackPressure, Buffer, Coordinator, CoordinatorConfig, Error, MemoryUsage};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

type Dev = DummyDevice;

fn read(c: &Coordinator<Dev>, b: &Buffer<Dev>) -> Vec<u8> {
    c.device()
        .read_buffer(b.raw(), 0, b.size() as usize)
        .expect("buffer is live")
}

/// A buffer a thread owns and the bytes it last sent to each of its bytes.
struct Owned {
    buffer: Buffer<Dev>,
    model: Vec<u8>,
}

/// What one producer sent, for the totals.
#[derive(Default)]
struct Sent {
    /// Uploads that went through staging (ring, chunks or dedicated staging buffers).
    staged: u64,
    /// Uploads written by the CPU straight into a buffer.
    direct: u64,
    bytes: u64,
}

const BUFFER_SIZE: u64 = 48 << 10;

/// One producer's run: `ops` random operations on its own buffers through every upload path.
fn produce(c: &Coordinator<Dev>, seed: u64, ops: u32) -> (Vec<Owned>, Sent) {
    let mut rng = Rng(seed);
    let mut sent = Sent::default();
    let mut owned: Vec<Owned> = Vec::new();
    // Buffers made by `upload_slice` whose whole content is known.
    let mut slices: Vec<Owned> = Vec::new();
    for _ in 0..2 {
        let buffer = c
            .create_buffer(BUFFER_SIZE, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        // Fresh memory holds whatever it held: give every byte a known value first.
        let model = rng.bytes(BUFFER_SIZE);
        c.upload_to(&buffer, 0, &model).unwrap();
        sent.staged += 1;
        sent.bytes += BUFFER_SIZE;
        owned.push(Owned { buffer, model });
    }
    // A buffer the CPU writes directly (host access): its uploads never go through staging.
    let direct = c.create_buffer(4096, MemoryUsage::HOST_ACCESS).unwrap();
    assert!(direct.is_direct_write());
    let mut direct = Owned {
        model: vec![0; 4096],
        buffer: direct,
    };
    c.upload_to(&direct.buffer, 0, &direct.model).unwrap();
    sent.direct += 1;
    sent.bytes += 4096;

    for _ in 0..ops {
        match rng.below(16) {
            // Small and medium uploads; now and then one larger than a ring grant (chunks, or a
            // dedicated staging buffer).
            0..=5 => {
                let o = &mut owned[rng.below(2) as usize];
                let cap = if rng.below(12) == 0 {
                    BUFFER_SIZE
                } else {
                    2000
                };
                let len = 1 + rng.below(cap);
                let offset = rng.below(BUFFER_SIZE - len + 1);
                let data = rng.bytes(len);
                let ticket = c.queue_transfer(&data, &o.buffer, offset).unwrap();
                o.model[offset as usize..(offset + len) as usize].copy_from_slice(&data);
                sent.staged += 1;
                sent.bytes += len;
                if rng.below(20) == 0 {
                    ticket.wait().unwrap();
                }
            }
            // Written straight into ring memory, then queued.
            6..=8 => {
                let o = &mut owned[rng.below(2) as usize];
                let len = 1 + rng.below(1500);
                let offset = rng.below(BUFFER_SIZE - len + 1);
                let data = rng.bytes(len);
                match c.acquire_staging(len as usize) {
                    Ok(mut grant) => {
                        grant.bytes_mut()[..len as usize].copy_from_slice(&data);
                        c.transfer_and_release(grant, &o.buffer, offset).unwrap();
                    }
                    // Under `BackPressure::DedicatedStaging` a full ring refuses grants rather
                    // than wait: the upload takes a staging buffer of its own instead.
                    Err(Error::StagingFull { .. })
                        if c.config().back_pressure == BackPressure::DedicatedStaging =>
                    {
                        c.queue_transfer(&data, &o.buffer, offset).unwrap();
                    }
                    Err(e) => panic!("acquire_staging: {e}"),
                }
                o.model[offset as usize..(offset + len) as usize].copy_from_slice(&data);
                sent.staged += 1;
                sent.bytes += len;
            }
            // A new buffer with its data; half are dropped at once, while the upload may still
            // be staged (the coordinator keeps them until their copy landed).
            9..=10 => {
                let len = 1 + rng.below(3000);
                let data = rng.bytes(len);
                let (buffer, _ticket) = c.upload_slice(&data).unwrap();
                sent.staged += 1;
                sent.bytes += data.len() as u64;
                if rng.below(2) == 0 {
                    slices.push(Owned {
                        buffer,
                        model: data,
                    });
                }
            }
            11 => {
                let len = 1 + rng.below(512);
                let offset = rng.below(4096 - len + 1);
                let data = rng.bytes(len);
                let ticket = c.upload_to(&direct.buffer, offset, &data).unwrap();
                assert_eq!(ticket.value(), Some(0), "a direct write needs no GPU");
                direct.model[offset as usize..(offset + len) as usize].copy_from_slice(&data);
                sent.direct += 1;
                sent.bytes += len;
            }
            // Replace a buffer: the old one is dropped with copies maybe still in flight.
            12 => {
                let i = rng.below(2) as usize;
                let model = rng.bytes(BUFFER_SIZE);
                let (buffer, _) = c.upload_slice(&model).unwrap();
                owned[i] = Owned { buffer, model };
                sent.staged += 1;
                sent.bytes += BUFFER_SIZE;
            }
            13 => {
                c.flush_transfers().unwrap();
            }
            14 => {
                c.maintain().unwrap();
            }
            _ => {
                // Read while every other thread changes them (checked at the end).
                let s = c.stats();
                assert!(s.ring.high_water_mark <= 64 << 10);
            }
        }
    }
    owned.extend(slices);
    owned.push(direct);
    (owned, sent)
}

/// Frames on one thread: each stages a block of its number into a uniform buffer.
fn frames(c: &Coordinator<Dev>, count: u32) -> Owned {
    let uniforms = c
        .create_buffer(4 * 64, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let mut model = vec![0u8; 4 * 64];
    c.upload_to(&uniforms, 0, &model).unwrap();
    for n in 0..count {
        let frame = c.begin_frame().unwrap();
        let block = frame
            .alloc_slice_fill(16, n.wrapping_mul(0x0101_0101))
            .unwrap();
        let at = u64::from(n % 4) * 64;
        frame
            .stage_slice_for_upload(&*block, &uniforms, at)
            .unwrap();
        model[at as usize..at as usize + 64].copy_from_slice(bytemuck::cast_slice(block));
        c.end_frame(frame).unwrap();
    }
    Owned {
        buffer: uniforms,
        model,
    }
}

/// Runs producers, a frame loop, an observer and (with `gpu_thread`) a GPU thread on one
/// coordinator at once, then checks bytes, totals and leaks.
fn stress(device: DummyDevice, config: CoordinatorConfig, gpu_thread: bool) {
    const PRODUCERS: u64 = 4;
    const OPS: u32 = 250;
    const FRAMES: u32 = 24;
    device.set_panic_on_misuse(true);
    if gpu_thread {
        // Waits block until the GPU thread gets there, as on a real device.
        device.set_wait_mode(WaitMode::Block);
    }
    let c = Arc::new(Coordinator::new(device.clone(), config).unwrap());
    let done = AtomicBool::new(false);
    let (results, framed) = std::thread::scope(|s| {
        if gpu_thread {
            let device = &device;
            let done = &done;
            s.spawn(move || {
                while !done.load(Ordering::Acquire) {
                    if device.complete_next().is_none() {
                        std::thread::yield_now();
                    }
                }
            });
        }
        let observer = {
            let c = Arc::clone(&c);
            let done = &done;
            s.spawn(move || {
                let mut last = c.stats();
                while !done.load(Ordering::Acquire) {
                    let s = c.stats();
                    // Counters only rise.
                    assert!(s.buffers_created >= last.buffers_created);
                    assert!(s.uploads_submitted >= last.uploads_submitted);
                    assert!(s.submissions >= last.submissions);
                    assert!(c.memory_map_json().starts_with('{'));
                    c.flush_transfers().unwrap();
                    c.maintain().unwrap();
                    last = s;
                    std::thread::yield_now();
                }
            })
        };
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|t| {
                let c = Arc::clone(&c);
                s.spawn(move || produce(&c, t + 1, OPS))
            })
            .collect();
        let framer = {
            let c = Arc::clone(&c);
            s.spawn(move || frames(&c, FRAMES))
        };
        let results: Vec<_> = producers.into_iter().map(|p| p.join().unwrap()).collect();
        let framed = framer.join().unwrap();
        done.store(true, Ordering::Release);
        observer.join().unwrap();
        (results, framed)
    });
    // The GPU thread is gone: let waits complete the timeline themselves.
    device.set_wait_mode(WaitMode::Auto);
    c.flush_transfers().unwrap().wait().unwrap();
    // Frees what the last submissions held (dropped buffers, dedicated staging buffers).
    c.maintain().unwrap();

    let mut staged = 0;
    let mut direct = 0;
    let mut bytes = 0;
    let mut buffers = 1; // the frames' uniform buffer
    for (owned, sent) in &results {
        for o in owned {
            assert!(
                read(&c, &o.buffer) == o.model,
                "buffer {} differs from what its thread sent",
                o.buffer.id()
            );
        }
        staged += sent.staged;
        direct += sent.direct;
        bytes += sent.bytes;
        buffers += owned.len() as u64;
    }
    assert_eq!(read(&c, &framed.buffer), framed.model);

    let s = c.stats();
    let frame_uploads = 1 + u64::from(FRAMES);
    let frame_bytes = 4 * 64 + 64 * u64::from(FRAMES);
    assert_eq!(
        s.staged_uploads + s.dedicated_staging_uploads,
        staged + frame_uploads
    );
    assert_eq!(s.uploads_submitted, staged + frame_uploads);
    assert_eq!(s.direct_writes, direct);
    assert_eq!(s.bytes_uploaded, bytes + frame_bytes);
    assert_eq!(s.frames, u64::from(FRAMES));
    assert_eq!(s.buffers_created - s.buffers_destroyed, buffers);

    drop(results);
    drop(framed);
    c.flush_transfers().unwrap().wait().unwrap();
    c.maintain().unwrap();
    let s = c.stats();
    assert_eq!(
        s.buffers_created, s.buffers_destroyed,
        "every dropped buffer freed"
    );
    let c = Arc::into_inner(c).expect("every thread let go of the coordinator");
    assert_eq!(c.shutdown().leaked_buffers, 0);
    let leaks = device.leak_report();
    assert!(leaks.is_empty(), "device objects left: {leaks:?}");
    device.assert_no_misuse();
}

fn small_ring() -> CoordinatorConfig {
    CoordinatorConfig {
        // Small enough to wrap and fill often, so producers wait for room and for each other.
        staging_ring_size: 64 << 10,
        max_ring_upload: 16 << 10,
        eager_submit_bytes: 8 << 10,
        frame_arena_size: 4 << 10,
        direct_writes: false,
        ..Default::default()
    }
}

#[test]
fn producers_frames_and_an_observer_share_one_coordinator_with_a_gpu_thread() {
    stress(DummyDevice::discrete(), small_ring(), true);
}

/// Non-coherent staging memory: drained ranges are flushed under the pools' lock while
/// producers create buffers under it.
#[test]
fn producers_share_one_coordinator_over_non_coherent_staging() {
    stress(DummyDevice::mobile(), small_ring(), false);
}

/// A full ring sends uploads to staging buffers of their own, racing with ring uploads.
#[test]
fn producers_share_one_coordinator_with_dedicated_staging_back_pressure() {
    let config = CoordinatorConfig {
        back_pressure: BackPressure::DedicatedStaging,
        ..small_ring()
    };
    stress(DummyDevice::discrete(), config, true);
}

/// Buffers and tickets outlive their coordinator on other threads, which wait on the tickets,
/// check and drop the buffers while the coordinator shuts down: every wait ends (done or
/// `DeviceLost`), every buffer is dead after teardown, and the device is left with nothing.
#[test]
fn buffers_and_tickets_used_on_other_threads_while_the_coordinator_shuts_down() {
    const HOLDERS: u64 = 4;
    const PER_HOLDER: u64 = 24;
    let device = DummyDevice::discrete();
    device.set_panic_on_misuse(true);
    let c = Coordinator::new(device.clone(), small_ring()).unwrap();
    let mut rng = Rng(7);
    let mut handed: Vec<Vec<_>> = (0..HOLDERS).map(|_| Vec::new()).collect();
    for i in 0..HOLDERS * PER_HOLDER {
        let len = 1 + rng.below(4000);
        let data = rng.bytes(len);
        let (buffer, ticket) = c.upload_slice(&data).unwrap();
        handed[(i % HOLDERS) as usize].push((buffer, ticket));
    }
    let start = std::sync::Barrier::new(HOLDERS as usize + 1);
    let stats = std::thread::scope(|s| {
        for (h, mut held) in handed.into_iter().enumerate() {
            let start = &start;
            s.spawn(move || {
                let mut rng = Rng(100 + h as u64);
                start.wait();
                while !held.is_empty() {
                    let i = rng.below(held.len() as u64) as usize;
                    let (buffer, ticket) = &held[i];
                    match rng.below(3) {
                        0 => match ticket.wait() {
                            Ok(()) | Err(Error::DeviceLost) => {}
                            Err(e) => panic!("wait: {e}"),
                        },
                        1 => {
                            let _ = ticket.is_complete();
                            let _ = buffer.is_live();
                        }
                        _ => drop(held.swap_remove(i)),
                    }
                }
            });
        }
        start.wait();
        c.shutdown()
    });
    assert!(stats.leaked_buffers <= HOLDERS * PER_HOLDER);
    assert_eq!(stats.buffers_created, stats.buffers_destroyed);
    let leaks = device.leak_report();
    assert!(leaks.is_empty(), "device objects left: {leaks:?}");
    device.assert_no_misuse();
}

/// `Buffer::read` on another thread while the coordinator creates and frees buffers and then
/// shuts down: every read returns the bytes the GPU wrote until teardown destroys the buffer,
/// and `BufferDestroyed` after; none touches freed memory (teardown waits for a read under way:
/// without that wait, this test faults on the freed mapping).
#[test]
fn reads_on_another_thread_see_the_bytes_or_a_destroyed_buffer_while_the_coordinator_shuts_down() {
    const SIZE: usize = 16 << 20;
    for round in 0..8 {
        // Freed mappings go back to the host at once (no quarantine): a read of freed memory
        // faults rather than seeing the old bytes.
        let config = memkit_dummy::DeviceConfig::discrete().with_freed_mapping_quarantine(0);
        let device = DummyDevice::new(config).unwrap();
        device.set_panic_on_misuse(true);
        let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).unwrap();
        let buffer = c.create_buffer(SIZE as u64, MemoryUsage::DOWNLOAD).unwrap();
        // Large, so that teardown meets a copy under way; one byte value per round (cheap to
        // build in a debug build), so a read of another round's or of freed bytes differs.
        let data = vec![0x40 + round; SIZE];
        let (memory, base) = buffer.memory();
        device.device_write(memory, base, &data).unwrap();
        let started = std::sync::Barrier::new(2);
        let (reads, stats) = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut out = vec![0; SIZE];
                let mut reads = 0u32;
                started.wait();
                loop {
                    // SAFETY: the simulated GPU's write above is done and visible; nothing
                    // writes the buffer while this thread reads it.
                    match unsafe { buffer.read(0, &mut out) } {
                        Ok(()) => {
                            // A few spots per read keep the loop mostly copying (so teardown
                            // meets a copy under way); the last read is checked whole.
                            let spots = [0, SIZE / 3, SIZE - 1];
                            assert!(spots.iter().all(|&i| out[i] == data[i]), "round {round}");
                            reads += 1;
                        }
                        Err(Error::BufferDestroyed) => {
                            assert!(reads == 0 || out == data, "round {round}: a read differs");
                            return reads;
                        }
                        Err(e) => panic!("round {round}: read: {e}"),
                    }
                }
            });
            started.wait();
            for _ in 0..64 {
                drop(
                    c.create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
                        .unwrap(),
                );
            }
            let stats = c.shutdown();
            (reader.join().expect("reader"), stats)
        });
        assert_eq!(stats.leaked_buffers, 1, "round {round} ({reads} reads)");
        drop(buffer);
        let leaks = device.leak_report();
        assert!(leaks.is_empty(), "device objects left: {leaks:?}");
        device.assert_no_misuse();
    }
}
