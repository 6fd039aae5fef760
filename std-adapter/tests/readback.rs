//! Reading buffers back. `Buffer::read`: the CPU reading what the GPU wrote into a DOWNLOAD
//! buffer, on every simulated device; the simulated GPU's writes to non-coherent memory reach the
//! host's view only through an invalidation, so a read that skipped it would see stale bytes (and
//! the device would record the misuse). `Coordinator::read_back`: the GPU copying any buffer
//! (device-local ones included) into host-visible memory, in order after the uploads staged
//! before, with neither buffer destroyed under the copy.

use memkit_core::device::MemoryPropertyFlags;
use memkit_dummy::{DeviceConfig, DummyDevice, MisuseKind, Preset, WaitMode};
use std::time::Duration;

use memkit_std::{Buffer, Coordinator, CoordinatorConfig, Error, MemoryUsage};

const STALE: u8 = 0xEE;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn coordinator(config: DeviceConfig) -> (Coordinator<DummyDevice>, DummyDevice) {
    // A stale fill: bytes the host reads without invalidating are this, never the GPU's.
    let device = DummyDevice::new(config.with_stale_read_fill(Some(STALE))).expect("device");
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    (c, device)
}

/// Writes `data` into `buffer` at `offset` as the GPU would.
fn gpu_write(device: &DummyDevice, buffer: &Buffer<DummyDevice>, offset: u64, data: &[u8]) {
    let (memory, base) = buffer.memory();
    device
        .device_write(memory, base + offset, data)
        .expect("device write inside the buffer");
}

fn is_coherent(device: &DummyDevice, buffer: &Buffer<DummyDevice>) -> bool {
    device.memory_properties().types()[buffer.memory_type() as usize]
        .properties
        .contains(MemoryPropertyFlags::HOST_COHERENT)
}

#[test]
fn the_cpu_reads_back_what_the_gpu_wrote_on_every_preset() {
    let mut non_coherent = 0;
    for preset in Preset::ALL {
        let (c, device) = coordinator(preset.config());
        let buffer = c
            .create_buffer(64 << 10, MemoryUsage::DOWNLOAD)
            .expect("download buffer");
        assert!(
            buffer.is_host_visible(),
            "{preset}: a download buffer is mapped"
        );
        non_coherent += usize::from(!is_coherent(&device, &buffer));
        let written = pattern(10_000, 7);
        gpu_write(&device, &buffer, 1234, &written);
        let mut out = vec![0; written.len()];
        // SAFETY: the simulated GPU's write is done, and nothing else writes the buffer.
        unsafe { buffer.read(1234, &mut out) }.expect("read");
        assert!(out == written, "{preset}: read back other bytes");
        // A part of it, at an offset that is not a multiple of the atom.
        let mut part = vec![0; 333];
        // SAFETY: as above.
        unsafe { buffer.read(1234 + 1001, &mut part) }.expect("read");
        assert_eq!(part[..], written[1001..1334], "{preset}: partial read");
        device.assert_no_misuse();
        drop(buffer);
        let stats = c.shutdown();
        assert_eq!(stats.leaked_buffers, 0, "{preset}");
    }
    // The mobile preset's only host-visible memory is cached and not coherent: the
    // invalidation path ran.
    assert!(
        non_coherent > 0,
        "no preset put a download buffer in non-coherent memory"
    );
}

#[test]
fn bad_reads_are_typed_errors_that_change_nothing() {
    let (c, device) = coordinator(DeviceConfig::mobile());
    let download = c
        .create_buffer(4096, MemoryUsage::DOWNLOAD)
        .expect("buffer");
    let device_only = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    assert!(!device_only.is_host_visible());
    let mut out = vec![0xAB; 64];
    // SAFETY: nothing writes either buffer.
    unsafe {
        assert_eq!(device_only.read(0, &mut out), Err(Error::NotHostVisible));
        assert_eq!(
            download.read(4096 - 63, &mut out),
            Err(Error::OutOfBounds {
                offset: 4096 - 63,
                size: 64,
                buffer_size: 4096
            })
        );
        assert_eq!(
            download.read(u64::MAX, &mut out),
            Err(Error::OutOfBounds {
                offset: u64::MAX,
                size: 64,
                buffer_size: 4096
            })
        );
        assert_eq!(download.read(0, &mut []), Err(Error::ZeroSize));
    }
    assert!(
        out.iter().all(|&b| b == 0xAB),
        "a refused read wrote to `out`"
    );
    device.lose_device();
    // SAFETY: as above.
    let lost = unsafe { download.read(0, &mut out) };
    assert_eq!(lost, Err(Error::DeviceLost));
    drop((download, device_only));
    c.shutdown();
}

#[test]
fn a_buffer_held_past_its_coordinator_refuses_to_read() {
    let (c, device) = coordinator(DeviceConfig::discrete());
    let buffer = c
        .create_buffer(4096, MemoryUsage::DOWNLOAD)
        .expect("buffer");
    gpu_write(&device, &buffer, 0, &pattern(16, 1));
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 1);
    let mut out = vec![0; 16];
    // SAFETY: nothing writes the buffer (it no longer exists; the read must say so).
    let read = unsafe { buffer.read(0, &mut out) };
    assert_eq!(read, Err(Error::BufferDestroyed));
    assert_eq!(out, [0; 16]);
    drop(buffer);
    assert_eq!(device.live_memory().len(), 0, "teardown freed everything");
}

/// A coordinator over a simulated GPU that runs only when the test advances it (reads without
/// an invalidation see [`STALE`]).
fn manual(config: DeviceConfig) -> (Coordinator<DummyDevice>, DummyDevice) {
    coordinator(config.with_wait_mode(WaitMode::Manual))
}

/// [`manual`] on the discrete preset, keeping `cache` bytes of landing buffers
/// (`read_back_cache_bytes`).
fn manual_with_cache(cache: u64) -> (Coordinator<DummyDevice>, DummyDevice) {
    let device = DummyDevice::new(DeviceConfig::discrete().with_wait_mode(WaitMode::Manual))
        .expect("device");
    let config = CoordinatorConfig {
        read_back_cache_bytes: cache,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    (c, device)
}

#[test]
fn a_device_local_buffer_reads_back_after_the_uploads_made_before_on_every_preset() {
    for preset in Preset::ALL {
        let (c, device) = manual(preset.config());
        let buffer = c
            .create_buffer(64 << 10, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("buffer");
        let mut model = pattern(64 << 10, 3);
        c.upload_to(&buffer, 0, &model).expect("upload");
        c.flush_transfers().expect("flush");
        device.complete_all();
        // Staged only (not submitted) when the read-back is asked for: it must go first.
        let update = pattern(5000, 200);
        c.upload_to(&buffer, 7000, &update).expect("upload");
        model[7000..12_000].copy_from_slice(&update);
        // The application's GPU work wrote these bytes, and finished.
        let gpu_bytes = pattern(100, 90);
        gpu_write(&device, &buffer, 60_000, &gpu_bytes);
        model[60_000..60_100].copy_from_slice(&gpu_bytes);

        let whole = c.read_back(&buffer, 0, 64 << 10).expect("read back");
        let part = c.read_back(&buffer, 6999, 5002).expect("read back");
        assert_eq!((whole.size(), part.size()), (64 << 10, 5002));
        assert!(!whole.is_ready().unwrap(), "{preset}: the GPU has not run");
        // A later upload lands after the copies: they read the bytes from before it.
        c.upload_to(&buffer, 0, &[0xAA; 64]).expect("upload");
        c.flush_transfers().expect("flush");
        device.complete_all();
        assert!(part.is_ready().unwrap());
        let mut out = vec![0; 5002];
        part.wait_into(&mut out).expect("wait");
        assert!(
            out[..] == model[6999..12_001],
            "{preset}: part read back other bytes"
        );
        assert!(
            whole.wait().expect("wait") == model,
            "{preset}: read back other bytes"
        );
        let stats = c.stats();
        assert_eq!(stats.read_backs, 2, "{preset}");
        assert_eq!(stats.bytes_read_back, (64 << 10) + 5002, "{preset}");
        device.assert_no_misuse();
        // A read-back still held is a buffer still held: reported as leaked at shutdown.
        drop((buffer, part));
        let stats = c.shutdown();
        assert_eq!(stats.leaked_buffers, 0, "{preset}");
        assert_eq!(stats.buffers_created, stats.buffers_destroyed, "{preset}");
        device.assert_no_misuse();
    }
}

#[test]
fn a_source_and_a_read_back_dropped_early_outlive_the_copy() {
    // No landing buffer kept: the dropped read-back's is destroyed, once its copy completed.
    let (c, device) = manual_with_cache(0);
    let buffer = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    c.upload_to(&buffer, 0, &pattern(4096, 1)).expect("upload");
    // The upload completes: from here on only the read-backs use the source.
    c.flush_transfers().expect("flush");
    device.complete_all();
    let kept = c.read_back(&buffer, 0, 4096).expect("read back");
    let dropped = c.read_back(&buffer, 100, 200).expect("read back");
    let created = c.stats().buffers_created;
    let submitted = device.last_submitted();
    drop((buffer, dropped));
    // The copies are recorded, not submitted: the buffers' last use does not cover them yet.
    c.maintain().expect("maintain");
    assert_eq!(
        c.stats().buffers_destroyed,
        0,
        "destroyed before the copies were submitted"
    );
    c.flush_transfers().expect("flush");
    assert_eq!(
        device.last_submitted(),
        submitted + 1,
        "both read-backs in one submission"
    );
    c.maintain().expect("maintain");
    assert_eq!(
        c.stats().buffers_destroyed,
        0,
        "destroyed while the copies may run"
    );
    device.complete_all();
    assert_eq!(kept.wait().expect("wait"), pattern(4096, 1));
    c.maintain().expect("maintain");
    let stats = c.stats();
    assert_eq!(stats.buffers_destroyed, created);
    assert!(
        !device.has_misuse(MisuseKind::DestroyedWhilePending),
        "{:?}",
        device.misuses()
    );
    device.assert_no_misuse();
    assert_eq!(c.shutdown().leaked_buffers, 0);
    assert_eq!(device.live_memory().len(), 0);
}

#[test]
fn bad_read_backs_are_typed_errors_that_submit_nothing() {
    let (c, device) = manual(DeviceConfig::discrete());
    let (other, _other_device) = manual(DeviceConfig::discrete());
    let buffer = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let foreign = other
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    assert_eq!(c.read_back(&buffer, 0, 0).err(), Some(Error::ZeroSize));
    assert_eq!(
        c.read_back(&buffer, 4000, 97).err(),
        Some(Error::OutOfBounds {
            offset: 4000,
            size: 97,
            buffer_size: 4096
        })
    );
    assert_eq!(
        c.read_back(&buffer, u64::MAX, 2).err(),
        Some(Error::OutOfBounds {
            offset: u64::MAX,
            size: 2,
            buffer_size: 4096
        })
    );
    assert_eq!(
        c.read_back(&foreign, 0, 16).err(),
        Some(Error::ForeignBuffer)
    );
    let created = c.stats().buffers_created;
    assert_eq!(device.last_submitted(), 0, "a refused read-back submitted");
    assert_eq!(c.stats().read_backs, 0);

    // A read-back in flight when the device is lost ends in an error, not a hang.
    let in_flight = c.read_back(&buffer, 0, 16).expect("read back");
    device.lose_device();
    assert_eq!(in_flight.wait().err(), Some(Error::DeviceLost));
    assert_eq!(c.read_back(&buffer, 0, 16).err(), Some(Error::DeviceLost));
    assert_eq!(c.stats().buffers_created, created + 1);
    drop((buffer, foreign));
    c.shutdown();
    other.shutdown();
}

#[test]
fn a_read_back_waits_for_an_upload_staged_behind_another_threads_grant() {
    let device = DummyDevice::new(DeviceConfig::discrete()).expect("device");
    let config = CoordinatorConfig {
        held_room_timeout: Duration::from_millis(200),
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    let buffer = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let other = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    std::thread::scope(|s| {
        // Another thread's grant, ahead of the upload in the ring: the upload cannot drain
        // until it is committed.
        let (granted, go) = (
            std::sync::mpsc::channel::<()>(),
            std::sync::mpsc::channel::<()>(),
        );
        let (c, other) = (&c, &other);
        let writer = s.spawn(move || {
            let mut grant = c.acquire_staging(256).expect("grant");
            grant.bytes_mut().fill(9);
            granted.0.send(()).unwrap();
            go.1.recv().unwrap();
            c.transfer_and_release(grant, other, 0).expect("transfer");
        });
        granted.1.recv().unwrap();
        c.upload_to(&buffer, 0, &pattern(4096, 5)).expect("upload");
        let release = std::thread::spawn({
            let go = go.0;
            move || {
                std::thread::sleep(Duration::from_millis(50));
                go.send(()).unwrap();
            }
        });
        let read = c.read_back(&buffer, 0, 4096).expect("read back");
        assert!(
            read.wait().expect("wait") == pattern(4096, 5),
            "the read-back overtook the upload staged before it"
        );
        release.join().unwrap();
        writer.join().unwrap();
    });

    // A grant this thread holds itself would never be committed: the read-back says so after
    // `held_room_timeout` instead of waiting forever, and submits nothing.
    let held = c.acquire_staging(256).expect("grant");
    c.upload_to(&buffer, 0, &pattern(4096, 6)).expect("upload");
    let reads = c.stats().read_backs;
    assert_eq!(
        c.read_back(&buffer, 0, 16).err(),
        Some(Error::BlockedByHeldGrant)
    );
    assert_eq!(c.stats().read_backs, reads);
    drop(held);
    let read = c.read_back(&buffer, 0, 4096).expect("read back");
    assert_eq!(read.wait().expect("wait"), pattern(4096, 6));
    drop((buffer, other));
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    device.assert_no_misuse();
}

#[test]
fn landing_buffers_are_kept_and_reused_within_the_cache() {
    // A cap of 68 KiB: room for one 64 KiB landing buffer and one of 4 KiB.
    let (c, device) = manual_with_cache((64 << 10) + 4096);
    let buffer = c
        .create_buffer(256 << 10, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    c.upload_to(&buffer, 0, &pattern(256 << 10, 1))
        .expect("upload");
    let first = c.read_back(&buffer, 0, 3000).expect("read back");
    let created = c.stats().buffers_created;
    // Dropped before its copy ran: its landing buffer (4 KiB, the smallest) is kept, and the
    // next read of that size lands in it, after the first copy wrote it.
    drop(first);
    c.upload_to(&buffer, 0, &pattern(4096, 2)).expect("upload");
    let second = c.read_back(&buffer, 1, 4000).expect("read back");
    assert_eq!(c.stats().buffers_created, created, "a new landing buffer");
    assert_eq!(c.stats().read_back_buffers_reused, 1);
    c.flush_transfers().expect("flush");
    device.complete_all();
    assert!(second.wait().expect("wait")[..] == pattern(4096, 2)[1..4001]);

    // A read-back past the cap gets a buffer of its own size, never kept; those within it are
    // kept up to the cap (40 KiB each: a size class).
    let big = c.read_back(&buffer, 0, 100 << 10).expect("read back");
    let created = c.stats().buffers_created;
    let (a, b) = (
        c.read_back(&buffer, 0, 40 << 10).expect("read back"),
        c.read_back(&buffer, 0, 40 << 10).expect("read back"),
    );
    assert_eq!(c.stats().buffers_created, created + 2);
    drop((big, a, b));
    c.flush_transfers().expect("flush");
    device.complete_all();
    c.maintain().expect("maintain");
    let stats = c.stats();
    // The first 40 KiB one joins the 4 KiB one; the second passes the cap, so the longest kept
    // go (the 4 KiB one, then the first 40 KiB one): one 40 KiB one is left.
    assert_eq!(stats.buffers_created - stats.buffers_destroyed, 1 + 1);
    // 33 KiB (a class of 36 KiB) lands in it: at most a quarter larger.
    let again = c.read_back(&buffer, 10, 33 << 10).expect("read back");
    assert_eq!(c.stats().read_back_buffers_reused, 2);
    let small = c.read_back(&buffer, 0, 16).expect("read back");
    assert_eq!(
        c.stats().read_back_buffers_reused,
        2,
        "the 4 KiB one was kept"
    );
    drop(small);
    c.flush_transfers().expect("flush");
    device.complete_all();
    let mut model = pattern(256 << 10, 1);
    model[..4096].copy_from_slice(&pattern(4096, 2));
    assert!(again.wait().expect("wait")[..] == model[10..10 + (33 << 10)]);
    drop(buffer);
    // Kept landing buffers are the coordinator's: destroyed at teardown, not reported.
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
    assert_eq!(stats.buffers_created, stats.buffers_destroyed);
    device.assert_no_misuse();
}

#[test]
fn a_mapped_read_back_lends_the_bytes_the_gpu_copied_on_every_preset() {
    let mut non_coherent = 0;
    for preset in Preset::ALL {
        let (c, device) = manual(preset.config());
        let (other, _other_device) = manual(preset.config());
        let buffer = c
            .create_buffer(64 << 10, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("buffer");
        let model = pattern(64 << 10, 5);
        c.upload_to(&buffer, 0, &model).expect("upload");
        let first = c.read_back(&buffer, 100, 40_000).expect("read back");
        let second = c.read_back(&buffer, 3, 5).expect("read back");
        c.flush_transfers().expect("flush");
        device.complete_all();
        let landing_coherent = {
            // The landing buffer's memory type decides whether the view needed an invalidation
            // (with the stale fill, a view that skipped one would show `STALE`).
            let probe = c.create_buffer(4096, MemoryUsage::DOWNLOAD).expect("probe");
            is_coherent(&device, &probe)
        };
        non_coherent += usize::from(!landing_coherent);
        assert_eq!(
            first.wait_mapped(&other).err(),
            Some(Error::ForeignBuffer),
            "{preset}: another coordinator lent the bytes"
        );
        let (a, b) = (
            first.wait_mapped(&c).expect("view"),
            second.wait_mapped(&c).expect("view"),
        );
        assert!(
            a == &model[100..40_100],
            "{preset}: the view shows other bytes"
        );
        assert_eq!(b, &model[3..8], "{preset}");
        // Lent twice: the same bytes.
        assert!(first.wait_mapped(&c).expect("view") == a);
        // A view and a copy of the same read-back agree.
        let mut copied = vec![0; 5];
        second.wait_into(&mut copied).expect("wait");
        assert_eq!(copied[..], b[..]);
        device.assert_no_misuse();
        drop((first, second, buffer));
        let stats = c.shutdown();
        assert_eq!(stats.leaked_buffers, 0, "{preset}");
        other.shutdown();
    }
    // The mobile preset's download memory is not coherent: the invalidation path ran.
    assert!(non_coherent > 0, "no preset landed in non-coherent memory");
}

#[test]
fn read_backs_asked_for_together_share_one_submission_before_later_uploads() {
    let (c, device) = manual(DeviceConfig::discrete());
    let buffer = c
        .create_buffer(256 << 10, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let before = pattern(256 << 10, 9);
    c.upload_to(&buffer, 0, &before).expect("upload");
    // The first read-back submits the upload staged before it; the reads wait for company.
    let reads: Vec<_> = (0..100u64)
        .map(|i| c.read_back(&buffer, i * 2000, 1000 + i).expect("read back"))
        .collect();
    let after_reads = device.last_submitted();
    assert_eq!(after_reads, 1, "the upload alone went out");
    assert_eq!(
        reads[0].ticket().value(),
        None,
        "a read-back went out alone"
    );
    // A later upload over the same bytes, and a read-back after it: the first reads go out
    // before the upload, in one submission; the later read goes after it.
    c.upload_to(&buffer, 0, &[0x55u8; 256 << 10])
        .expect("upload");
    let later = c.read_back(&buffer, 0, 16).expect("read back");
    assert_eq!(device.last_submitted(), after_reads + 2);
    c.flush_transfers().expect("flush");
    assert_eq!(device.last_submitted(), after_reads + 3);
    assert_eq!(later.ticket().value(), Some(after_reads + 3));
    let value = reads[0].ticket().value().expect("submitted");
    assert!(reads.iter().all(|r| r.ticket().value() == Some(value)));
    device.complete_all();
    for (i, read) in reads.into_iter().enumerate() {
        let (o, len) = (i * 2000, 1000 + i);
        assert!(
            read.wait().expect("wait") == before[o..o + len],
            "read {i} saw the later upload, or other bytes"
        );
    }
    assert_eq!(later.wait().expect("wait"), [0x55u8; 16]);
    assert_eq!(c.stats().read_backs, 101);
    drop(buffer);
    assert_eq!(c.shutdown().leaked_buffers, 0);
    device.assert_no_misuse();
}

#[test]
fn a_batch_of_read_backs_goes_out_at_read_back_submit_bytes_or_when_polled() {
    let device = DummyDevice::new(DeviceConfig::discrete().with_wait_mode(WaitMode::Manual))
        .expect("device");
    let config = CoordinatorConfig {
        read_back_submit_bytes: 64 << 10,
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    let buffer = c
        .create_buffer(1 << 20, MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("buffer");
    let data = pattern(1 << 20, 4);
    c.upload_to(&buffer, 0, &data).expect("upload");
    let start = device.last_submitted();
    let _ = c.read_back(&buffer, 0, 1).expect("read back");
    // 60 KiB more: 1 byte short of the threshold, still recorded only.
    let short = c.read_back(&buffer, 0, (60 << 10) - 1).expect("read back");
    assert_eq!(device.last_submitted(), start);
    let tipping = c.read_back(&buffer, 0, 4 << 10).expect("read back");
    assert_eq!(
        device.last_submitted(),
        start + 1,
        "64 KiB read back and not submitted"
    );
    assert_eq!(short.ticket().value(), tipping.ticket().value());
    // Polling a recorded read-back submits it: it becomes ready without any other call.
    let polled = c.read_back(&buffer, 4096, 100).expect("read back");
    assert!(!polled.is_ready().expect("is_ready"));
    assert_eq!(device.last_submitted(), start + 2);
    device.complete_all();
    assert!(polled.is_ready().expect("is_ready"));
    assert!(polled.wait().expect("wait")[..] == data[4096..4196]);
    assert!(tipping.wait().expect("wait")[..] == data[..4 << 10]);
    // Small reads go out 256 copies at a time, however few bytes they read.
    let before = device.last_submitted();
    let mut small: Vec<_> = (0..255)
        .map(|i| c.read_back(&buffer, i, 1).expect("read back"))
        .collect();
    assert_eq!(device.last_submitted(), before);
    small.push(c.read_back(&buffer, 255, 1).expect("read back"));
    assert_eq!(
        device.last_submitted(),
        before + 1,
        "256 copies unsubmitted"
    );
    device.complete_all();
    for (i, read) in small.into_iter().enumerate() {
        assert_eq!(read.wait().expect("wait"), [data[i]]);
    }
    drop((buffer, short));
    assert_eq!(c.shutdown().leaked_buffers, 0);
    device.assert_no_misuse();
}

#[test]
fn a_direct_write_waits_for_the_read_backs_asked_for_before_it() {
    // Resizable BAR: device-local memory the host writes directly.
    let device = DummyDevice::new(DeviceConfig::resizable_bar()).expect("device");
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).expect("coordinator");
    let old = pattern(8192, 6);
    let buffer = c
        .create_buffer(8192, MemoryUsage::FAST_DEVICE_ACCESS | MemoryUsage::UPLOAD)
        .expect("buffer");
    let ticket = c.upload_to(&buffer, 0, &old).expect("upload");
    assert_eq!(ticket.value(), Some(0), "not written directly");
    let first = c.read_back(&buffer, 0, 8192).expect("read back");
    let second = c.read_back(&buffer, 100, 50).expect("read back");
    // Written on the CPU at once: the copies must have read the old bytes first.
    let done = c.upload_to(&buffer, 0, &[0xCCu8; 8192]).expect("upload");
    assert_eq!(done.value(), Some(0), "not written directly");
    assert!(
        first.is_ready().expect("is_ready"),
        "the write did not wait"
    );
    assert!(
        first.wait().expect("wait") == old,
        "a read saw the later write"
    );
    assert!(second.wait().expect("wait")[..] == old[100..150]);
    let now = c.read_back(&buffer, 0, 8).expect("read back");
    assert_eq!(now.wait().expect("wait"), [0xCCu8; 8]);
    drop(buffer);
    assert_eq!(c.shutdown().leaked_buffers, 0);
    device.assert_no_misuse();
}
