//! `Buffer::read`: the CPU reading what the GPU wrote into a DOWNLOAD buffer, on every simulated
//! device. The simulated GPU's writes to non-coherent memory reach the host's view only through
//! an invalidation, so a read that skipped it would see stale bytes (and the device would record
//! the misuse).

use memkit_core::device::MemoryPropertyFlags;
use memkit_dummy::{DeviceConfig, DummyDevice, Preset};
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
