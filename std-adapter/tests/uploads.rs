//! End to end on the simulated device: bytes land where they were sent, in issue order, and
//! nothing is reused or freed while the GPU may still read it.

use std::sync::Arc;
use std::time::Duration;

use memkit_dummy::DummyDevice;
use memkit_std::{BackPressure, Coordinator, CoordinatorConfig, Error, MemoryUsage};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn read(c: &Coordinator<DummyDevice>, b: &memkit_std::Buffer<DummyDevice>) -> Vec<u8> {
    c.device()
        .read_buffer(b.raw(), 0, b.size() as usize)
        .expect("buffer is live")
}

#[test]
fn upload_slice_and_upload_to_land_byte_for_byte() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let data: Vec<u32> = (0..1000).collect();
    let (buffer, ticket) = c.upload_slice(&data).unwrap();
    ticket.wait().unwrap();
    assert_eq!(read(&c, &buffer), bytemuck::cast_slice::<u32, u8>(&data));

    let t = c.upload_to(&buffer, 8, &[0xAAu8; 16]).unwrap();
    assert!(!t.is_complete().unwrap(), "staged, not submitted");
    assert_eq!(t.value(), None);
    let flushed = c.flush_transfers().unwrap();
    assert!(t.value().is_some());
    flushed.wait().unwrap();
    assert!(t.is_complete().unwrap());
    let mut expected = bytemuck::cast_slice::<u32, u8>(&data).to_vec();
    expected[8..24].fill(0xAA);
    assert_eq!(read(&c, &buffer), expected);

    // A timeout too long for a deadline (here, one a staged upload must submit first) waits
    // without one.
    let staged = c.upload_to(&buffer, 0, &[0x55u8; 4]).unwrap();
    assert_eq!(staged.value(), None);
    assert!(staged.wait_timeout(Duration::MAX).unwrap());
    assert!(staged.is_complete().unwrap());
    expected[..4].fill(0x55);
    assert_eq!(read(&c, &buffer), expected);
    c.device().assert_no_misuse();
}

#[test]
fn later_write_wins_and_adjacent_uploads_merge_into_one_region() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let b = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    for i in 0..64u8 {
        c.upload_to(&b, u64::from(i) * 64, &[i; 64]).unwrap();
    }
    c.upload_to(&b, 100, &[0xFFu8; 50]).unwrap();
    c.flush_transfers().unwrap().wait().unwrap();
    let bytes = read(&c, &b);
    for (i, byte) in bytes.iter().enumerate() {
        let want = if (100..150).contains(&i) {
            0xFF
        } else {
            (i / 64) as u8
        };
        assert_eq!(*byte, want, "byte {i}");
    }
    let s = c.stats();
    assert_eq!(s.staged_uploads, 65);
    assert!(
        s.regions_after_merge <= 3,
        "64 adjacent uploads merge: {} regions",
        s.regions_after_merge
    );
    assert_eq!(c.device().counters().submissions, 1);
}

#[test]
fn bad_input_gets_typed_errors() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let other = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let b = c
        .create_buffer(64, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let foreign = other
        .create_buffer(64, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    assert_eq!(
        c.create_buffer(0, MemoryUsage::empty()).unwrap_err(),
        Error::ZeroSize
    );
    assert_eq!(c.upload_to::<u8>(&b, 0, &[]).unwrap_err(), Error::ZeroSize);
    assert_eq!(
        c.upload_to(&b, 60, &[0u8; 8]).unwrap_err(),
        Error::OutOfBounds {
            offset: 60,
            size: 8,
            buffer_size: 64
        }
    );
    assert_eq!(
        c.upload_to(&b, u64::MAX, &[0u8; 8]).unwrap_err(),
        Error::OutOfBounds {
            offset: u64::MAX,
            size: 8,
            buffer_size: 64
        }
    );
    assert_eq!(
        c.upload_to(&foreign, 0, &[0u8; 8]).unwrap_err(),
        Error::ForeignBuffer
    );
    let frame = c.begin_frame().unwrap();
    assert_eq!(c.begin_frame().err(), Some(Error::FrameInProgress));
    c.end_frame(frame).unwrap();
}

/// Settings that need absurd host memory (or none at all) are refused with a typed error before
/// the device sees a single call, and the frame arena refuses requests it cannot hold.
#[test]
fn absurd_settings_and_arena_requests_get_typed_errors_and_leave_nothing() {
    let refused = |config: CoordinatorConfig| {
        let device = DummyDevice::discrete();
        let err = Coordinator::new(device.clone(), config).err();
        assert!(device.live_buffers().is_empty() && device.live_memory().is_empty());
        err
    };
    let invalid = Some(Error::Config(memkit_core::ConfigError::InvalidParameter));
    let base = CoordinatorConfig::default();
    for config in [
        CoordinatorConfig {
            staging_ring_size: 0,
            ..base
        },
        // A ring this small would move uploads a byte or two per copy.
        CoordinatorConfig {
            staging_ring_size: memkit_std::MIN_STAGING_RING_SIZE - 1,
            ..base
        },
        CoordinatorConfig {
            max_blocks: u32::MAX,
            ..base
        },
        CoordinatorConfig {
            max_dedicated: u32::MAX,
            ..base
        },
        CoordinatorConfig {
            max_pending_uploads: u32::MAX,
            ..base
        },
        // 128 block slots of 2^30 allocations each: 64 GiB of metadata per slot.
        CoordinatorConfig {
            pools: memkit_std::PoolConfig {
                max_allocations_per_block: 1 << 30,
                ..base.pools
            },
            ..base
        },
    ] {
        assert_eq!(refused(config), invalid, "{config:?}");
    }
    // All but the metadata total are caught without a device.
    assert_eq!(
        CoordinatorConfig {
            max_blocks: u32::MAX,
            ..base
        }
        .validate()
        .err(),
        invalid
    );
    // The limits themselves are fine (built with tiny blocks, so the test stays light).
    let at_limits = CoordinatorConfig {
        max_blocks: memkit_std::MAX_POOL_SLOTS,
        max_dedicated: memkit_std::MAX_POOL_SLOTS,
        max_pending_uploads: memkit_std::MAX_PENDING_UPLOADS,
        ..base
    };
    assert_eq!(at_limits.validate(), Ok(()));
    let smallest_ring = CoordinatorConfig {
        staging_ring_size: memkit_std::MIN_STAGING_RING_SIZE,
        ..base
    };
    assert_eq!(smallest_ring.validate(), Ok(()));
    let slots_at_limits = CoordinatorConfig {
        max_pending_uploads: base.max_pending_uploads,
        pools: memkit_std::PoolConfig {
            max_allocations_per_block: 1,
            ..base.pools
        },
        ..at_limits
    };
    assert!(Coordinator::new(DummyDevice::discrete(), slots_at_limits).is_ok());
    let huge_arena = CoordinatorConfig {
        frame_arena_size: usize::MAX,
        ..base
    };
    assert_eq!(
        refused(huge_arena),
        Some(Error::HostOutOfMemory {
            bytes: usize::MAX as u64
        })
    );

    let c = Coordinator::new(DummyDevice::discrete(), base).unwrap();
    let frame = c.begin_frame().unwrap();
    assert_eq!(
        frame.alloc_slice_fill(usize::MAX, 0u32).unwrap_err(),
        Error::HostOutOfMemory { bytes: u64::MAX }
    );
    assert_eq!(
        frame.alloc_slice_fill(1 << 60, 0u8).unwrap_err(),
        Error::HostOutOfMemory { bytes: 1 << 60 }
    );
    // The arena still serves what it can.
    assert_eq!(frame.alloc_slice_fill(4, 7u32).unwrap(), &[7u32; 4]);
    assert_eq!(frame.alloc_slice(&[1u16, 2, 3]).unwrap(), &[1u16, 2, 3]);
    c.end_frame(frame).unwrap();
}

/// Runs `test` on a thread of its own and fails if it does not finish within `limit`: a test
/// of something that used to wait forever fails instead of hanging the suite.
fn within<T: Send + 'static>(limit: Duration, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(test()).unwrap());
    finished
        .recv_timeout(limit)
        .expect("did not finish: it waited forever")
}

/// A coordinator with a 4 KiB staging ring and `held_room_timeout`, and a 64 KiB buffer whose
/// uploads are staged.
fn small_ring(
    held_room_timeout: Duration,
) -> (Coordinator<DummyDevice>, memkit_std::Buffer<DummyDevice>) {
    let config = CoordinatorConfig {
        staging_ring_size: 4096,
        held_room_timeout,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let b = c
        .create_buffer(1 << 16, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    (c, b)
}

/// A grant held across uploads on the same thread keeps the ring from ever draining past it:
/// the upload that needs that room fails after `held_room_timeout` instead of waiting forever,
/// and once the grant is transferred everything lands.
#[test]
fn upload_behind_a_grant_held_by_its_own_thread_fails_instead_of_hanging() {
    within(Duration::from_secs(30), || {
        let (c, b) = small_ring(Duration::from_millis(50));
        let mut held = c.acquire_staging(1024).unwrap();
        held.bytes_mut().fill(0xAB);
        let mut landed = 0;
        let refused = loop {
            match c.upload_to(&b, 1024 * (landed + 1), &[landed as u8 + 1; 1024]) {
                Ok(_) => landed += 1,
                Err(e) => break e,
            }
            assert!(landed < 64, "the ring never filled");
        };
        assert_eq!(refused, Error::StagingFull { wait_for: None });
        assert!(landed >= 1);
        c.transfer_and_release(held, &b, 0).unwrap();
        c.upload_to(&b, 1024 * (landed + 1), &[0xCDu8; 1024])
            .unwrap();
        c.flush_transfers().unwrap().wait().unwrap();
        let bytes = read(&c, &b);
        assert_eq!(bytes[..1024], [0xAB; 1024]);
        for i in 0..landed {
            let at = 1024 * (i + 1) as usize;
            assert_eq!(bytes[at..at + 1024], [i as u8 + 1; 1024]);
        }
        let at = 1024 * (landed + 1) as usize;
        assert_eq!(bytes[at..at + 1024], [0xCDu8; 1024]);
        c.device().assert_no_misuse();
    });
}

/// An upload cut into chunks fails, if at all, before its first chunk: once that is staged, a
/// chunk that finds room held by another thread's grant past the limit (here 200 ms, four times
/// it) sends the rest of the upload through staging memory of its own, and the whole upload
/// lands, after the grant's bytes it was staged behind.
#[test]
fn chunked_upload_past_the_limit_finishes_through_staging_of_its_own() {
    within(Duration::from_secs(60), || {
        let config = CoordinatorConfig {
            staging_ring_size: 4096,
            held_room_timeout: Duration::from_millis(50),
            ..CoordinatorConfig::default()
        };
        let c = Arc::new(Coordinator::new(DummyDevice::discrete(), config).unwrap());
        let b = Arc::new(
            c.create_buffer(1 << 16, MemoryUsage::FAST_DEVICE_ACCESS)
                .unwrap(),
        );
        let (granted, go) = std::sync::mpsc::channel();
        let writer = {
            let (c, b) = (Arc::clone(&c), Arc::clone(&b));
            std::thread::spawn(move || {
                let mut grant = c.acquire_staging(2048).unwrap();
                granted.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                grant.bytes_mut().fill(7);
                // Overlaps the upload's first 1 KiB: the upload, issued later, must win there.
                c.transfer_and_release(grant, &b, 1024).unwrap();
            })
        };
        go.recv().unwrap();
        // 8 KiB through a 4 KiB ring, in 2 KiB chunks: the first fits beside the held grant,
        // the second waits behind it.
        c.upload_to(&b, 2048, &[9u8; 8192]).unwrap();
        assert_eq!(c.stats().dedicated_staging_uploads, 1);
        writer.join().unwrap();
        c.flush_transfers().unwrap().wait().unwrap();
        let bytes = read(&c, &b);
        assert_eq!(bytes[1024..2048], [7u8; 1024]);
        assert_eq!(bytes[2048..2048 + 8192], [9u8; 8192]);
        c.device().assert_no_misuse();
    });
}

/// The same with the grant held by the uploading thread itself, which can write it only after
/// the upload returns: the rest of the upload used to wait for that room forever.
#[test]
fn chunked_upload_behind_a_grant_held_by_its_own_thread_returns() {
    within(Duration::from_secs(30), || {
        let (c, b) = small_ring(Duration::from_millis(20));
        let mut held = c.acquire_staging(1024).unwrap();
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 13 % 251) as u8).collect();
        c.upload_to(&b, 4096, &data).unwrap();
        held.bytes_mut().fill(0xAB);
        c.transfer_and_release(held, &b, 0).unwrap();
        c.flush_transfers().unwrap().wait().unwrap();
        let bytes = read(&c, &b);
        assert_eq!(bytes[..1024], [0xAB; 1024]);
        assert!(
            bytes[4096..8192] == data[..],
            "the chunked upload did not land whole"
        );
        c.device().assert_no_misuse();
    });
}

/// A grant transferred to a buffer the CPU writes directly is written directly too, so a direct
/// write made after it wins, as issue order says (a staged copy used to land after it). Found by
/// the coordinator fuzz target.
#[test]
fn grant_to_a_direct_write_buffer_keeps_issue_order() {
    let c = Coordinator::new(
        DummyDevice::with_preset(memkit_dummy::Preset::Integrated),
        CoordinatorConfig::default(),
    )
    .unwrap();
    let b = c.create_buffer(4096, MemoryUsage::HOST_ACCESS).unwrap();
    let mut grant = c.acquire_staging(2048).unwrap();
    grant.bytes_mut().fill(0xC5);
    let t = c.transfer_and_release(grant, &b, 1024).unwrap();
    assert!(
        t.is_complete().unwrap(),
        "written directly, nothing to wait for"
    );
    c.upload_to(&b, 2000, &[3u8; 37]).unwrap();
    c.flush_transfers().unwrap().wait().unwrap();
    c.device().complete_all();
    let bytes = read(&c, &b);
    assert_eq!(bytes[1024..2000], [0xC5; 976]);
    assert_eq!(bytes[2000..2037], [3u8; 37]);
    assert_eq!(bytes[2037..3072], [0xC5; 1035]);
    c.device().assert_no_misuse();
}

/// A staging grant handed to a coordinator other than the one that granted it is refused: the
/// two rings must not mix (the other ring would drop the range while this coordinator waited for
/// it forever), and the refused grant's range goes back to its own ring.
#[test]
fn foreign_staging_grant_is_refused_and_both_coordinators_carry_on() {
    // Rings of 4 KiB that fail instead of waiting: a range that never came back would show.
    let config = CoordinatorConfig {
        staging_ring_size: 4096,
        back_pressure: BackPressure::Fail,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let other = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let b = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let ob = other
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let mut grant = other.acquire_staging(2048).unwrap();
    grant.bytes_mut().fill(0xEE);
    assert_eq!(
        c.transfer_and_release(grant, &b, 0).unwrap_err(),
        Error::ForeignGrant
    );
    // The refused range is back once the other ring drains (as any dropped grant's is): it
    // hands out its whole 4 KiB at once.
    other.flush_transfers().unwrap().wait().unwrap();
    let mut low = other.acquire_staging(2048).unwrap();
    let mut high = other.acquire_staging(2048).unwrap();
    low.bytes_mut().fill(2);
    high.bytes_mut().fill(3);
    other.transfer_and_release(low, &ob, 0).unwrap();
    other.transfer_and_release(high, &ob, 2048).unwrap();
    other.flush_transfers().unwrap().wait().unwrap();
    let landed = read(&other, &ob);
    assert_eq!(landed[..2048], [2u8; 2048]);
    assert_eq!(landed[2048..], [3u8; 2048]);
    // This coordinator never saw the foreign bytes and still uploads.
    c.upload_to(&b, 0, &[1u8; 1024]).unwrap();
    c.flush_transfers().unwrap().wait().unwrap();
    let landed = read(&c, &b);
    assert_eq!(landed[..1024], [1u8; 1024]);
    assert_eq!(landed[1024..], [0u8; 3072]);
    c.device().assert_no_misuse();
    other.device().assert_no_misuse();
}

/// Uploads through a ring far smaller than the data: it wraps and applies back-pressure, and the
/// simulated device checks every copy reads the bytes that were in staging at submission.
#[test]
fn eight_producers_overlapping_uploads_end_as_the_last_write() {
    let config = CoordinatorConfig {
        staging_ring_size: 256 << 10,
        max_ring_upload: 64 << 10,
        ..Default::default()
    };
    let c = Arc::new(Coordinator::new(DummyDevice::discrete(), config).unwrap());
    c.device().set_panic_on_misuse(true);
    const THREADS: u64 = 8;
    const UPLOADS: u64 = 10_000 / THREADS;
    const SIZE: u64 = 64 << 10;
    // Each thread owns its buffers, so "the last write issued" to a byte is well defined; within
    // a thread, writes overlap at random.
    let expected: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let c = Arc::clone(&c);
                s.spawn(move || {
                    let mut rng = Rng(t + 1);
                    let buffers: Vec<_> = (0..2)
                        .map(|_| {
                            c.create_buffer(SIZE, MemoryUsage::FAST_DEVICE_ACCESS)
                                .unwrap()
                        })
                        .collect();
                    let mut models = vec![vec![0u8; SIZE as usize]; 2];
                    for i in 0..UPLOADS {
                        let which = rng.below(2) as usize;
                        let cap = if rng.below(10) == 0 { 8192 } else { 300 };
                        let len = 1 + rng.below(cap);
                        let offset = rng.below(SIZE - len + 1);
                        let fill = (i as u8).wrapping_mul(31).wrapping_add(t as u8);
                        let data: Vec<u8> = (0..len).map(|k| fill.wrapping_add(k as u8)).collect();
                        c.upload_to(&buffers[which], offset, &data).unwrap();
                        models[which][offset as usize..(offset + len) as usize]
                            .copy_from_slice(&data);
                        if rng.below(200) == 0 {
                            c.flush_transfers().unwrap();
                        }
                    }
                    (buffers, models)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    c.flush_transfers().unwrap().wait().unwrap();
    for (buffers, models) in &expected {
        for (b, model) in buffers.iter().zip(models) {
            assert!(
                read(&c, b) == *model,
                "buffer {} differs from the last writes",
                b.id()
            );
        }
    }
    let s = c.stats();
    assert_eq!(s.staged_uploads, THREADS * UPLOADS);
    assert_eq!(s.uploads_submitted, THREADS * UPLOADS);
    assert!(s.ring.high_water_mark <= 256 << 10);
    assert!(
        c.device().misuses().is_empty(),
        "{:?}",
        c.device().misuses()
    );
}

#[test]
fn dropped_buffer_is_destroyed_only_after_its_copy_completes() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    c.device().set_panic_on_misuse(true);
    c.device().set_wait_mode(memkit_dummy::WaitMode::Manual);
    let b = c
        .create_buffer(1024, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let raw = b.raw();
    c.upload_to(&b, 0, &[7u8; 1024]).unwrap();
    let ticket = c.flush_transfers().unwrap();
    drop(b);
    c.maintain().unwrap();
    assert!(
        c.device().buffer_info(raw).is_some(),
        "still in use by the GPU"
    );
    assert!(!ticket.is_complete().unwrap());
    c.device().complete_all();
    c.maintain().unwrap();
    assert!(
        c.device().buffer_info(raw).is_none(),
        "destroyed once the copy completed"
    );
    assert!(c.device().misuses().is_empty());
    c.device().set_wait_mode(memkit_dummy::WaitMode::Auto);
}

#[test]
fn buffer_dropped_with_uploads_only_staged_lives_until_they_land() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    c.device().set_panic_on_misuse(true);
    c.device().set_wait_mode(memkit_dummy::WaitMode::Manual);
    let keep = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let b = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let raw = b.raw();
    // Staged, not drained: only the pending table names the dropped buffer.
    let mut tickets = Vec::new();
    for i in 0..64u64 {
        tickets.push(c.upload_to(&b, i * 64, &[i as u8; 64]).unwrap());
        c.upload_to(&keep, i * 64, &[1u8; 64]).unwrap();
    }
    drop(b);
    // Every dropped buffer whose copies completed goes here; this one has none submitted yet.
    c.maintain().unwrap();
    assert!(
        c.device().buffer_info(raw).is_some(),
        "a buffer with staged uploads is not destroyed"
    );
    let flushed = c.flush_transfers().unwrap();
    c.maintain().unwrap();
    assert!(
        c.device().buffer_info(raw).is_some(),
        "still in use by the GPU"
    );
    c.device().complete_all();
    flushed.wait().unwrap();
    for t in &tickets {
        assert!(t.is_complete().unwrap());
    }
    c.maintain().unwrap();
    assert!(
        c.device().buffer_info(raw).is_none(),
        "destroyed once its copies completed"
    );
    assert_eq!(read(&c, &keep), vec![1u8; 4096]);
    assert!(c.device().misuses().is_empty());
    c.device().set_wait_mode(memkit_dummy::WaitMode::Auto);
}

/// A coordinator that fails uploads when its 4 KiB ring is full (uploads above 2 KiB are cut into
/// 2 KiB chunks), and a 1 MiB device-local buffer on it.
fn fail_policy_on_a_4_kib_ring() -> (Coordinator<DummyDevice>, memkit_std::Buffer<DummyDevice>) {
    let config = CoordinatorConfig {
        staging_ring_size: 4096,
        max_ring_upload: 4096,
        back_pressure: BackPressure::Fail,
        ..Default::default()
    };
    let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let b = c
        .create_buffer(1 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    (c, b)
}

#[test]
fn full_ring_under_fail_policy_says_what_to_wait_for() {
    let (c, b) = fail_policy_on_a_4_kib_ring();
    c.device().set_wait_mode(memkit_dummy::WaitMode::Manual);
    c.upload_to(&b, 0, &[1u8; 3000]).unwrap();
    assert_eq!(
        c.upload_to(&b, 0, &[2u8; 3000]).unwrap_err(),
        Error::StagingFull { wait_for: None }
    );
    let t = c.flush_transfers().unwrap();
    let v = t.value().unwrap();
    assert_eq!(
        c.upload_to(&b, 0, &[2u8; 3000]).unwrap_err(),
        Error::StagingFull { wait_for: Some(v) }
    );
    c.device().advance_to(v);
    c.maintain().unwrap();
    c.upload_to(&b, 0, &[2u8; 3000]).unwrap();
    c.device().set_wait_mode(memkit_dummy::WaitMode::Auto);
}

#[test]
fn chunked_upload_under_fail_policy_lands_whole_or_not_at_all() {
    let (c, b) = fail_policy_on_a_4_kib_ring();
    let big: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8 + 1).collect();

    // 3000 bytes staged: the first 2 KiB chunk has no room, so the upload fails and stages
    // nothing.
    c.upload_to(&b, 0, &[7u8; 3000]).unwrap();
    assert_eq!(
        c.upload_to(&b, 8192, &big).unwrap_err(),
        Error::StagingFull { wait_for: None }
    );
    c.flush_transfers().unwrap().wait().unwrap();
    let after = read(&c, &b);
    assert_eq!(after[..3000], [7u8; 3000][..]);
    assert!(
        after[8192..8192 + 4000].iter().all(|&x| x == 0),
        "a failed chunked upload left part of itself behind"
    );

    // 1500 bytes staged: the first chunk fits, the second does not until the GPU frees room;
    // the upload waits for it instead of failing half-way.
    c.upload_to(&b, 0, &[9u8; 1500]).unwrap();
    let stalls = c.stats().stalls;
    let ticket = c.upload_to(&b, 8192, &big).unwrap();
    assert!(
        c.stats().stalls > stalls,
        "the second chunk waited for room"
    );
    c.flush_transfers().unwrap().wait().unwrap();
    assert!(ticket.is_complete().unwrap());
    let after = read(&c, &b);
    assert_eq!(after[..1500], [9u8; 1500][..]);
    assert_eq!(after[8192..8192 + 4000], big[..]);
}

#[test]
fn dedicated_staging_takes_what_the_ring_cannot_and_keeps_order() {
    let config = CoordinatorConfig {
        staging_ring_size: 4096,
        max_ring_upload: 4096,
        back_pressure: BackPressure::DedicatedStaging,
        ..Default::default()
    };
    let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    c.device().set_panic_on_misuse(true);
    let b = c
        .create_buffer(1 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    c.upload_to(&b, 0, &[1u8; 3000]).unwrap(); // ring
    c.upload_to(&b, 1000, &vec![2u8; 100_000]).unwrap(); // too large: dedicated staging
    c.upload_to(&b, 0, &[3u8; 3000]).unwrap(); // ring full: dedicated staging
    c.upload_to(&b, 50_000, &[4u8; 10]).unwrap(); // ring full still
    c.flush_transfers().unwrap().wait().unwrap();
    let bytes = read(&c, &b);
    assert!(bytes[..3000].iter().all(|&x| x == 3));
    assert!(bytes[3000..50_000].iter().all(|&x| x == 2));
    assert!(bytes[50_000..50_010].iter().all(|&x| x == 4));
    assert!(bytes[50_010..101_000].iter().all(|&x| x == 2));
    // The ring-upload limit is half the 4096 B ring: both 3000 B uploads and the 100 KB one are
    // staged on their own; the 10 B one goes through the ring.
    assert_eq!(c.stats().dedicated_staging_uploads, 3);
    c.maintain().unwrap();
    drop(b);
    drop(c);
}

#[test]
fn frames_pace_and_stage_their_arena_data() {
    let config = CoordinatorConfig {
        buffering: memkit_std::BufferingMode::Double,
        ..Default::default()
    };
    let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let b = c
        .create_buffer(64 * 10, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    for n in 0..10u64 {
        let frame = c.begin_frame().unwrap();
        assert_eq!(frame.number(), n);
        let m = frame.alloc::<[f32; 16]>();
        *m = [n as f32; 16];
        frame.stage_for_upload(m, &b, n * 64).unwrap();
        c.end_frame(frame).unwrap();
    }
    c.flush_transfers().unwrap().wait().unwrap();
    let bytes = read(&c, &b);
    for n in 0..10 {
        let floats: &[f32] = bytemuck::cast_slice(&bytes[n * 64..n * 64 + 64]);
        assert!(floats.iter().all(|&f| f == n as f32));
    }
    assert_eq!(c.stats().frames, 10);
}

#[test]
fn lost_device_mid_frame_is_an_error_not_a_hang() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let b = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let frame = c.begin_frame().unwrap();
    frame.stage_slice_for_upload(&[1u32; 64], &b, 0).unwrap();
    c.device().lose_device();
    assert_eq!(c.end_frame(frame).unwrap_err(), Error::DeviceLost);
    assert_eq!(
        c.upload_to(&b, 0, &[0u8; 4]).unwrap_err(),
        Error::DeviceLost
    );
    assert_eq!(c.flush_transfers().unwrap_err(), Error::DeviceLost);
    drop(b);
    drop(c); // must not hang
}

#[test]
fn failed_buffer_allocation_leaks_nothing_and_recovers() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let objects = c.device().live_memory().len();
    // Every memory type the pools could fall back to fails once.
    let next_call = c.device().counters().allocation_calls + 1;
    for k in 0..8 {
        c.device().fail_allocation_call(
            next_call + k,
            memkit_core::device::DeviceError::OutOfDeviceMemory,
        );
    }
    let err = c
        .create_buffer(1 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap_err();
    assert!(
        matches!(err, Error::Memory(_) | Error::Device(_)),
        "{err:?}"
    );
    assert_eq!(c.device().live_memory().len(), objects);
    assert_eq!(
        c.device().live_buffers().len(),
        1,
        "only the ring's staging buffer"
    );
    let b = c
        .create_buffer(1 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    c.upload_to(&b, 0, &[9u8; 16]).unwrap().wait().unwrap();
    assert_eq!(&read(&c, &b)[..16], &[9u8; 16]);
}

#[test]
fn teardown_frees_everything_and_reports_held_buffers() {
    let device = DummyDevice::discrete();
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).unwrap();
    c.device().set_panic_on_misuse(true);
    let held = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    held.set_label("held past the coordinator");
    c.upload_to(&held, 0, &[1u8; 4096]).unwrap();
    let dropped = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    c.upload_to(&dropped, 0, &[2u8; 4096]).unwrap();
    drop(dropped);
    assert!(held.is_live());
    drop(c);
    assert!(!held.is_live(), "teardown destroyed the held buffer");
    let leaks = device.leak_report();
    assert!(
        leaks.is_empty(),
        "device objects left after teardown: {leaks:?}"
    );
    assert!(device.misuses().is_empty(), "{:?}", device.misuses());
    drop(held); // a dead handle: dropping it does nothing
    assert_eq!(
        device.counters().submissions,
        1,
        "the staged uploads were submitted at teardown"
    );
}

/// Direct writes are counted per thread without locked instructions; the totals stay exact.
#[test]
fn direct_writes_from_many_threads_are_counted_exactly() {
    let c = Arc::new(
        Coordinator::new(DummyDevice::resizable_bar(), CoordinatorConfig::default()).unwrap(),
    );
    let usage = MemoryUsage::UPLOAD | MemoryUsage::FAST_DEVICE_ACCESS;
    let b = c.create_buffer(1 << 20, usage).unwrap();
    assert!(
        b.is_direct_write(),
        "resizable BAR memory is written directly"
    );
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (c, b) = (Arc::clone(&c), &b);
            s.spawn(move || {
                for i in 0..500u64 {
                    c.upload_to(b, (t * 500 + i) * 64 % (1 << 20), &[t as u8; 64])
                        .unwrap();
                }
            });
        }
    });
    let s = c.stats();
    assert_eq!(s.direct_writes, 8 * 500);
    assert_eq!(s.bytes_uploaded, 8 * 500 * 64);
    assert_eq!(s.staged_uploads, 0);
}

/// A ring-upload limit above half the ring is clamped: uploads near the ring's size are chunked
/// instead of waiting forever for contiguous room (found by the coordinator fuzz target).
#[test]
fn uploads_near_the_ring_size_do_not_wait_forever() {
    let config = CoordinatorConfig {
        staging_ring_size: 32 << 10,
        max_ring_upload: 32 << 10,
        ..Default::default()
    };
    let c = Coordinator::new(DummyDevice::mobile(), config).unwrap();
    for len in [45_332usize, 60_000, 20_000, 32 << 10] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (b, t) = c.upload_slice(&data).unwrap();
        t.wait().unwrap();
        c.flush_transfers().unwrap().wait().unwrap();
        assert_eq!(read(&c, &b), data, "{len} bytes");
    }
}

/// A large upload is submitted as soon as it is staged, and each chunk of a chunked one too, so
/// the GPU copies while the producer writes the next; small uploads wait for a flush and share
/// one submission.
#[test]
fn large_uploads_submit_as_soon_as_staged_and_small_ones_wait() {
    let config = CoordinatorConfig {
        staging_ring_size: 1 << 20,
        max_ring_upload: 64 << 10,
        eager_submit_bytes: 64 << 10,
        ..Default::default()
    };
    let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let b = c
        .create_buffer(1 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let small = c.upload_to(&b, 0, &[1u8; 1024]).unwrap();
    assert_eq!(small.value(), None, "a small upload waits for a flush");
    assert_eq!(c.device().counters().submissions, 0);

    // 256 KiB: four chunks of 64 KiB, each submitted once staged (the first with the small one).
    let data: Vec<u8> = (0..256 << 10).map(|i| (i % 251) as u8).collect();
    let large = c.upload_to(&b, 4096, &data).unwrap();
    assert!(large.value().is_some(), "submitted without a flush");
    assert!(small.value().is_some(), "the small upload rode along");
    assert_eq!(c.device().counters().submissions, 4);
    assert_eq!(c.stats().eager_submissions, 4);
    large.wait().unwrap();
    small.wait().unwrap();
    let bytes = read(&c, &b);
    assert_eq!(&bytes[..1024], &[1u8; 1024][..]);
    assert_eq!(&bytes[4096..4096 + data.len()], &data[..]);

    // Off: the same upload stays staged until a flush.
    let off = Coordinator::new(
        DummyDevice::discrete(),
        CoordinatorConfig {
            eager_submit_bytes: u64::MAX,
            ..config
        },
    )
    .unwrap();
    let b = off
        .create_buffer(1 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let t = off.upload_to(&b, 0, &data).unwrap();
    assert_eq!(t.value(), None);
    assert_eq!(off.device().counters().submissions, 0);
    off.flush_transfers().unwrap().wait().unwrap();
    assert_eq!(&read(&off, &b)[..data.len()], &data[..]);
    c.device().assert_no_misuse();
    off.device().assert_no_misuse();
}

/// Thousands of 64 KiB buffers fill blocks by bytes, not by count: a block's metadata does not
/// run out with most of the block unused, so a frame that drops its buffers and makes as many
/// again does not make (and pay the driver for) blocks the bytes do not need. And one `maintain`
/// destroys every dropped buffer whose copies completed, over several destruction batches, while
/// those with a copy in flight live on until it completes.
#[test]
fn many_buffers_fill_blocks_by_bytes_and_maintain_destroys_them_in_batches() {
    const COUNT: usize = 4000;
    const SIZE: u64 = 64 << 10;
    let device = DummyDevice::discrete();
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).unwrap();
    c.device().set_panic_on_misuse(true);
    c.device().set_wait_mode(memkit_dummy::WaitMode::Manual);
    let create = || -> Vec<_> {
        (0..COUNT)
            .map(|_| {
                c.create_buffer(SIZE, MemoryUsage::FAST_DEVICE_ACCESS)
                    .unwrap()
            })
            .collect()
    };

    // First round: every seventh buffer has a copy in flight when it is dropped.
    let buffers = create();
    let in_flight: Vec<_> = buffers.iter().step_by(7).map(|b| b.raw()).collect();
    for b in buffers.iter().step_by(7) {
        c.upload_to(b, 0, &[9u8; 16]).unwrap();
    }
    let raws: Vec<_> = buffers.iter().map(|b| b.raw()).collect();
    c.flush_transfers().unwrap();
    drop(buffers);
    c.maintain().unwrap();
    let live = raws
        .iter()
        .filter(|&&r| c.device().buffer_info(r).is_some())
        .count();
    assert_eq!(
        live,
        in_flight.len(),
        "only buffers with a copy in flight live"
    );
    assert!(
        in_flight
            .iter()
            .all(|&r| c.device().buffer_info(r).is_some())
    );
    assert_eq!(
        c.stats().buffers_destroyed,
        (COUNT - in_flight.len()) as u64
    );
    c.device().complete_all();
    c.maintain().unwrap();
    assert!(raws.iter().all(|&r| c.device().buffer_info(r).is_none()));

    // Second round, over the block the first one kept: blocks hold what their bytes allow.
    let buffers = create();
    let (blocks, block_bytes, allocated) = c.stats().heaps.iter().fold((0, 0, 0), |acc, h| {
        (
            acc.0 + h.blocks,
            acc.1 + h.block_bytes,
            acc.2 + h.allocated_bytes,
        )
    });
    assert!(
        allocated >= COUNT as u64 * SIZE,
        "{allocated} bytes allocated"
    );
    // The kept 128 MiB block fills, then one 256 MiB block takes the rest (134 MiB unused).
    // Blocks that filled by count at 1024 buffers took four 256 MiB blocks (774 MiB unused).
    assert!(
        block_bytes - allocated < 256 << 20,
        "{blocks} blocks of {block_bytes} bytes for {allocated} bytes of buffers"
    );
    drop(buffers);
    c.maintain().unwrap();
    let stats = c.stats();
    assert_eq!(stats.buffers_created, stats.buffers_destroyed);
    assert!(c.device().misuses().is_empty());
    c.device().set_wait_mode(memkit_dummy::WaitMode::Auto);
    drop(c);
    assert!(device.leak_report().is_empty());
}

/// A coordinator whose waits on held grants give up after `held_room_timeout`, and a
/// device-local buffer.
fn held_grant_setup(
    buffering: memkit_std::BufferingMode,
    held_room_timeout: Duration,
) -> (Coordinator<DummyDevice>, memkit_std::Buffer<DummyDevice>) {
    let config = CoordinatorConfig {
        buffering,
        held_room_timeout,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let b = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    (c, b)
}

/// An upload staged behind a grant this thread holds cannot drain: the flush's ticket stays
/// incomplete (it used to name the last submission, complete at once, with the bytes not on the
/// GPU), and waiting on it, or on the upload's own ticket, fails after `held_room_timeout`
/// instead of spinning forever. Once the grant is transferred, both complete with the bytes.
#[test]
fn flush_ticket_covers_an_upload_staged_behind_a_held_grant() {
    within(Duration::from_secs(30), || {
        let (c, b) = held_grant_setup(memkit_std::BufferingMode::Triple, Duration::from_millis(50));
        // One submission first, so that a ticket naming the last one would be complete.
        c.upload_to(&b, 2048, &[1u8; 64]).unwrap();
        c.flush_transfers().unwrap().wait().unwrap();

        let mut held = c.acquire_staging(64).unwrap();
        held.bytes_mut().fill(0xAB);
        let upload = c.upload_to(&b, 1024, &[7u8; 256]).unwrap();
        let flushed = c.flush_transfers().unwrap();
        assert_eq!(flushed.value(), None, "the upload is still staged");
        assert!(!flushed.is_complete().unwrap());
        assert_eq!(flushed.wait(), Err(Error::BlockedByHeldGrant));
        assert_eq!(upload.wait(), Err(Error::BlockedByHeldGrant));
        assert_eq!(
            upload.wait_timeout(Duration::from_secs(5)),
            Err(Error::BlockedByHeldGrant),
            "a long timeout gives up on a held grant as well"
        );
        assert_eq!(read(&c, &b)[1024..1280], [0u8; 256]);

        c.transfer_and_release(held, &b, 0).unwrap();
        flushed.wait().unwrap();
        assert!(upload.is_complete().unwrap());
        let bytes = read(&c, &b);
        assert_eq!(bytes[..64], [0xAB; 64]);
        assert_eq!(bytes[1024..1280], [7u8; 256]);
        assert_eq!(bytes[2048..2112], [1u8; 64]);
        c.device().assert_no_misuse();
    });
}

/// A frame whose upload is staged behind a held grant ends with an incomplete ticket, and the
/// frame that reuses its slot waits for that upload, not only for the last submission: it fails
/// while the grant is held and, once the grant is dropped, begins with the bytes on the GPU.
#[test]
fn frame_slot_is_reused_only_after_uploads_staged_behind_a_grant_land() {
    within(Duration::from_secs(30), || {
        let (c, b) = held_grant_setup(memkit_std::BufferingMode::Double, Duration::from_millis(50));
        let held = c.acquire_staging(64).unwrap();
        let frame = c.begin_frame().unwrap();
        assert_eq!(frame.slot(), 0);
        frame.stage_slice_for_upload(&[2u8; 256], &b, 0).unwrap();
        let ended = c.end_frame(frame).unwrap();
        assert_eq!(ended.value(), None);
        assert!(!ended.is_complete().unwrap());
        // Slot 1 is free; slot 0 comes round next.
        let frame = c.begin_frame().unwrap();
        c.end_frame(frame).unwrap();
        assert_eq!(c.begin_frame().err(), Some(Error::BlockedByHeldGrant));
        assert_eq!(read(&c, &b)[..256], [0u8; 256]);

        // The failed frame was cancelled (its number is spent): slot 1 comes first again.
        drop(held);
        let frame = c.begin_frame().unwrap();
        assert_eq!(frame.slot(), 1);
        c.end_frame(frame).unwrap();
        let frame = c.begin_frame().unwrap();
        assert_eq!(frame.slot(), 0);
        assert!(ended.is_complete().unwrap());
        assert_eq!(read(&c, &b)[..256], [2u8; 256]);
        c.end_frame(frame).unwrap();
        c.device().assert_no_misuse();
    });
}

/// Another thread writes a grant for 200 ms while this one stages an upload behind it and ends a
/// frame: waiting on the frame's ticket returns only once the upload is on the GPU.
#[test]
fn frame_ticket_waits_for_an_upload_behind_another_threads_grant() {
    within(Duration::from_secs(30), || {
        let (c, b) = held_grant_setup(memkit_std::BufferingMode::Triple, Duration::from_secs(10));
        let (c, b) = (Arc::new(c), Arc::new(b));
        let (granted, go) = std::sync::mpsc::channel();
        let writer = {
            let (c, b) = (Arc::clone(&c), Arc::clone(&b));
            std::thread::spawn(move || {
                let mut grant = c.acquire_staging(64).unwrap();
                granted.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                grant.bytes_mut().fill(9);
                c.transfer_and_release(grant, &b, 3072).unwrap();
            })
        };
        go.recv().unwrap();
        let frame = c.begin_frame().unwrap();
        frame.stage_slice_for_upload(&[5u8; 256], &b, 0).unwrap();
        c.end_frame(frame).unwrap().wait().unwrap();
        assert_eq!(read(&c, &b)[..256], [5u8; 256]);
        writer.join().unwrap();
        c.flush_transfers().unwrap().wait().unwrap();
        assert_eq!(read(&c, &b)[3072..3136], [9u8; 64]);
        c.device().assert_no_misuse();
    });
}

/// A dedicated-staging upload whose backlog flush fails is refused whole: its staging buffer is
/// never created (it used to be left behind, bound to memory freed at teardown), it is not
/// counted, and everything staged before it lands once a later flush succeeds.
#[test]
fn failed_backlog_flush_leaves_no_dedicated_staging_buffer_behind() {
    let gpu = DummyDevice::discrete();
    let config = CoordinatorConfig {
        max_ring_upload: 4096,
        back_pressure: BackPressure::DedicatedStaging,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(gpu.clone(), config).unwrap();
    let b = c
        .create_buffer(8192 * 1025, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    // 1024 dedicated uploads (each above the ring's limit), nothing submitted yet: the backlog
    // is full, so the next one flushes first, and that submission fails.
    for i in 0..1024u64 {
        c.upload_to(&b, i * 8192, &[i as u8; 8192]).unwrap();
    }
    gpu.fail_submit_call(1, memkit_core::device::DeviceError::OutOfHostMemory);
    assert_eq!(
        c.upload_to(&b, 1024 * 8192, &[0xEEu8; 8192]).err(),
        Some(Error::Device(
            memkit_core::device::DeviceError::OutOfHostMemory
        ))
    );
    c.flush_transfers().unwrap().wait().unwrap();
    c.maintain().unwrap();
    let stats = c.stats();
    assert_eq!(stats.dedicated_staging_uploads, 1024);
    assert_eq!(stats.bytes_uploaded, 1024 * 8192);
    let bytes = read(&c, &b);
    for i in 0..1024 {
        assert_eq!(
            bytes[i * 8192..(i + 1) * 8192],
            [i as u8; 8192],
            "upload {i}"
        );
    }
    assert_eq!(bytes[1024 * 8192..], [0u8; 8192], "the refused upload");
    drop(b);
    drop(c);
    let leaks = gpu.leak_report();
    assert!(leaks.buffers.is_empty(), "{leaks:?}");
    assert!(leaks.memory.is_empty(), "{leaks:?}");
    gpu.assert_no_misuse();
}

/// A 16 MiB upload goes through the ring in four 4 MiB chunks but counts as one upload, staged
/// and then submitted (it used to count four of each), with all its bytes.
#[test]
fn chunked_upload_counts_once() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let b = c
        .create_buffer(16 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let data: Vec<u8> = (0..16u32 << 20).map(|i| (i % 253) as u8).collect();
    c.upload_to(&b, 0, &data).unwrap();
    c.flush_transfers().unwrap().wait().unwrap();
    let stats = c.stats();
    assert_eq!(stats.staged_uploads, 1);
    assert_eq!(stats.uploads_submitted, 1);
    assert_eq!(stats.bytes_uploaded, 16 << 20);
    assert_eq!(stats.regions_before_merge, 4, "one region per chunk");
    assert!(read(&c, &b) == data);
}

/// `stalls` counts uploads that waited for the GPU, once each: room held by grants is not the
/// GPU's (it used to count every turn of the wait loop, tens of thousands per refused upload).
#[test]
fn stalls_count_waits_for_the_gpu_once_per_upload() {
    within(Duration::from_secs(30), || {
        let config = CoordinatorConfig {
            staging_ring_size: 1 << 20,
            held_room_timeout: Duration::from_millis(100),
            ..CoordinatorConfig::default()
        };
        let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
        let b = c
            .create_buffer(4 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let first = c.acquire_staging(400 << 10).unwrap();
        let second = c.acquire_staging(400 << 10).unwrap();
        assert_eq!(
            c.upload_to(&b, 0, &[1u8; 300 << 10]).err(),
            Some(Error::StagingFull { wait_for: None })
        );
        assert_eq!(c.stats().stalls, 0, "grants, not the GPU, held the room");
        drop((first, second));

        // Submitted work fills the ring: the next upload waits for the GPU, and counts once.
        c.upload_to(&b, 0, &[2u8; 400 << 10]).unwrap();
        c.upload_to(&b, 1 << 20, &[3u8; 400 << 10]).unwrap();
        c.flush_transfers().unwrap();
        c.upload_to(&b, 2 << 20, &[4u8; 400 << 10]).unwrap();
        assert_eq!(c.stats().stalls, 1);
        c.flush_transfers().unwrap().wait().unwrap();
        let bytes = read(&c, &b);
        assert_eq!(bytes[(2 << 20)..(2 << 20) + (400 << 10)], [4u8; 400 << 10]);
        c.device().assert_no_misuse();
    });
}

/// `shutdown` tears down as dropping does and says how many buffers the application still held
/// (the counter used to be readable only before teardown, where it was always 0).
#[test]
fn shutdown_reports_the_buffers_still_held() {
    let device = DummyDevice::discrete();
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).unwrap();
    let held: Vec<_> = (0..3)
        .map(|i| {
            let b = c
                .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
                .unwrap();
            c.upload_to(&b, 0, &[i as u8; 4096]).unwrap();
            b
        })
        .collect();
    let released = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    drop(released);
    assert_eq!(c.stats().leaked_buffers, 0);
    let last = c.shutdown();
    assert_eq!(last.leaked_buffers, 3);
    assert_eq!(last.buffers_created, 4);
    assert_eq!(last.buffers_destroyed, 4, "the held ones are destroyed too");
    assert_eq!(last.staged_uploads, 3);
    assert_eq!(
        device.counters().submissions,
        1,
        "staged uploads went out first"
    );
    assert!(held.iter().all(|b| !b.is_live()));
    assert!(device.leak_report().is_empty());
    assert!(device.misuses().is_empty(), "{:?}", device.misuses());
}

#[test]
fn buffers_dropped_on_a_lost_device_are_not_reported_as_leaks() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let dropped = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let held = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let in_flight = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    c.upload_to(&in_flight, 0, &[1u8; 256]).unwrap();
    c.flush_transfers().unwrap();
    c.device().lose_device();
    // Both handed back by the application after the loss, one with a copy that never completes.
    drop(dropped);
    drop(in_flight);
    let stats = c.shutdown();
    // Only the buffer still held is a leak; every buffer is destroyed.
    assert_eq!(stats.leaked_buffers, 1);
    assert_eq!(stats.buffers_destroyed, stats.buffers_created);
    assert!(!held.is_live());
}

/// A frame ended through another coordinator is refused: nothing is submitted there or here,
/// the frame is cancelled on its own coordinator (which can begin the next one), and the other
/// coordinator's own frame runs on.
#[test]
fn ending_another_coordinators_frame_is_refused() {
    let config = CoordinatorConfig {
        buffering: memkit_std::BufferingMode::Double,
        ..Default::default()
    };
    let c = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let other = Coordinator::new(DummyDevice::discrete(), config).unwrap();
    let b = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let frame = c.begin_frame().unwrap();
    frame.stage_slice_for_upload(&[7u32; 64], &b, 0).unwrap();
    let others_frame = other.begin_frame().unwrap();
    assert_eq!(other.end_frame(frame).unwrap_err(), Error::ForeignFrame);
    // Neither coordinator submitted anything; the refused frame counts as cancelled on its own
    // coordinator, and the other's frame is still running.
    assert_eq!(c.device().counters().submissions, 0);
    assert_eq!(other.device().counters().submissions, 0);
    assert_eq!((c.stats().frames, other.stats().frames), (1, 0));
    // The refused frame was cancelled: its coordinator begins the next one, and the upload
    // staged in the refused frame lands with it.
    let again = c.begin_frame().unwrap();
    assert_eq!(again.number(), 1);
    c.end_frame(again).unwrap().wait().unwrap();
    assert_eq!(read(&c, &b), bytemuck::cast_slice::<u32, u8>(&[7u32; 64]));
    // The other coordinator's own frame was untouched and still ends.
    assert_eq!(others_frame.number(), 0);
    other.end_frame(others_frame).unwrap();
    assert_eq!((c.stats().frames, other.stats().frames), (2, 1));
}

/// A submission the device refused is sent again, with its own value, before the next one.
/// Ring ranges drained in between belong to that next submission: the retried value must not
/// give their room back, or a producer would overwrite bytes a running copy still reads.
#[test]
fn a_retried_submission_does_not_give_back_room_that_a_later_one_reads() {
    let gpu = DummyDevice::discrete();
    gpu.set_wait_mode(memkit_dummy::WaitMode::Manual);
    gpu.set_complete_on_submit(false);
    let config = CoordinatorConfig {
        staging_ring_size: 64 << 10,
        max_ring_upload: 16 << 10,
        back_pressure: BackPressure::Fail,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(gpu.clone(), config).unwrap();
    let b = c
        .create_buffer(96 << 10, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    c.upload_to(&b, 0, &[1u8; 16 << 10]).unwrap();
    gpu.fail_submit_call(
        gpu.counters().submit_calls + 1,
        memkit_core::device::DeviceError::OutOfHostMemory,
    );
    assert_eq!(
        c.flush_transfers().err(),
        Some(Error::Device(
            memkit_core::device::DeviceError::OutOfHostMemory
        ))
    );
    // Staged after the refusal: drained with the retry still waiting, submitted after it.
    c.upload_to(&b, 16 << 10, &[2u8; 16 << 10]).unwrap();
    c.flush_transfers().unwrap();
    let values = gpu.pending_values();
    assert_eq!(values.len(), 2, "the retry, then the later upload");
    gpu.advance_to(values[0]);
    c.maintain().unwrap();
    // Both ranges wait for the later value (the retried one's too: it was drained before the
    // later one, and the ring gives room back in order).
    assert_eq!(c.stats().ring.bytes_in_flight, 32 << 10);
    // The free 32 KiB take two uploads; a third would need room the running copy reads.
    for i in 0..2u8 {
        c.upload_to(
            &b,
            (32 << 10) + u64::from(i) * (16 << 10),
            &[3 + i; 16 << 10],
        )
        .unwrap();
    }
    let refused = c.upload_to(&b, 64 << 10, &[9u8; 16 << 10]);
    assert!(
        matches!(refused, Err(Error::StagingFull { wait_for: Some(v) }) if v == values[1]),
        "{refused:?}"
    );
    gpu.complete_all();
    let flushed = c.flush_transfers().unwrap();
    gpu.complete_all();
    flushed.wait().unwrap();
    let bytes = read(&c, &b);
    for (i, fill) in [1u8, 2, 3, 4, 0, 0].into_iter().enumerate() {
        assert!(
            bytes[i << 14..(i + 1) << 14].iter().all(|&x| x == fill),
            "range {i}"
        );
    }
    gpu.assert_no_misuse();
}

/// A device outlives its coordinator: a second coordinator over it carries on above the timeline
/// value the first one reached (the semaphore's value never goes back), instead of failing its
/// first submission.
#[test]
fn a_second_coordinator_on_the_same_device_carries_on_its_timeline() {
    let gpu = DummyDevice::discrete();
    let staged = |c: &Coordinator<DummyDevice>, fill: u8| {
        let b = c
            .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let ticket = c.upload_to(&b, 0, &[fill; 4096]).unwrap();
        c.flush_transfers().unwrap();
        ticket.wait().unwrap();
        (b, ticket.value().unwrap())
    };
    let first = Coordinator::new(gpu.clone(), CoordinatorConfig::default()).unwrap();
    let (b, reached) = staged(&first, 1);
    assert!(reached > 0, "the upload went through the GPU");
    drop(b);
    drop(first);
    let second = Coordinator::new(gpu.clone(), CoordinatorConfig::default()).unwrap();
    let (buffer, value) = staged(&second, 2);
    assert_eq!(value, reached + 1);
    assert_eq!(read(&second, &buffer), [2u8; 4096]);
    drop(buffer);
    drop(second);
    gpu.assert_no_misuse();
}

/// One producer the GPU keeps up with (each upload is submitted at once, and the one before it
/// has completed by the next): past the working set the ring goes back to its start early, so
/// the bytes the producer writes stay few; set to the ring's size, it goes round in full. Either
/// way every upload lands.
#[test]
fn uploads_the_gpu_keeps_up_with_go_back_to_the_start_of_the_ring_early() {
    let run = |working_set: Option<u64>| {
        let config = CoordinatorConfig {
            staging_ring_size: 1 << 20,
            max_ring_upload: 64 << 10,
            eager_submit_bytes: 64 << 10,
            staging_ring_working_set: working_set,
            ..CoordinatorConfig::default()
        };
        let gpu = DummyDevice::discrete();
        let c = Coordinator::new(gpu.clone(), config).unwrap();
        let mut rng = Rng(7);
        let mut landed = Vec::new();
        for _ in 0..64 {
            let bytes = rng.bytes(64 << 10);
            let b = c
                .create_buffer(bytes.len() as u64, MemoryUsage::FAST_DEVICE_ACCESS)
                .unwrap();
            let ticket = c.upload_to(&b, 0, &bytes).unwrap();
            let value = ticket.value().expect("submitted at once");
            // The copy before this one is done; this one is still in flight.
            gpu.advance_to(value - 1);
            landed.push((b, bytes, ticket));
        }
        let ring = c.stats().ring;
        for (b, bytes, ticket) in landed {
            ticket.wait().unwrap();
            assert!(read(&c, &b) == bytes, "an upload landed other bytes");
        }
        drop(c);
        gpu.assert_no_misuse();
        ring
    };
    // The default here: a quarter of the 1 MiB ring. Each early wrap skips the rest of the ring,
    // and the producer writes only the first quarter (and one upload past it) over and over.
    let early = run(None);
    assert!(early.wasted_wrap_bytes >= 512 << 10);
    assert!(early.early_wraps > 0);
    assert_eq!(early.early_wrap_bytes, early.wasted_wrap_bytes);
    assert!(early.bytes_reached <= (256 + 64) << 10, "{early:?}");
    // Uploads of 64 KiB fill a 1 MiB ring exactly: going round in full skips nothing, and
    // writes the whole ring.
    let full = run(Some(u64::MAX));
    assert_eq!(full.wasted_wrap_bytes, 0);
    assert_eq!((full.early_wraps, full.early_wrap_bytes), (0, 0));
    assert_eq!(full.bytes_reached, 1 << 20);
}
