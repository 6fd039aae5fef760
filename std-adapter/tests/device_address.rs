//! Device addresses: `Buffer::device_address` for buffers made with
//! `MemoryUsage::DEVICE_ADDRESS`, and `TransientSlice::device_address` where the coordinator was
//! made with `transient_device_addresses`. The simulated device gives each memory object a
//! window of `DEVICE_ADDRESS_WINDOW` bytes and records, as a misuse, an address asked of a buffer
//! without the usage, and a device-address buffer bound to memory without device-address
//! support: what Vulkan's validation layer reports.

use memkit_core::device::DeviceError;
use memkit_dummy::{DEVICE_ADDRESS_WINDOW, DummyDevice, Preset};
use memkit_std::{Coordinator, CoordinatorConfig, Error, MemoryUsage};

fn transient_coordinator(device: &DummyDevice, addresses: bool) -> Coordinator<DummyDevice> {
    let config = CoordinatorConfig {
        transient_chunk_size: 4096,
        transient_device_addresses: addresses,
        ..CoordinatorConfig::default()
    };
    Coordinator::new(device.clone(), config).expect("coordinator")
}

/// The pools' blocks and dedicated objects, over every heap.
fn objects(c: &Coordinator<DummyDevice>) -> (u32, u32) {
    let heaps = c.stats().heaps;
    let blocks = heaps.iter().map(|h| h.blocks).sum();
    (blocks, heaps.iter().map(|h| h.dedicated_objects).sum())
}

#[test]
fn a_device_address_buffer_has_its_memorys_address_plus_its_offset() {
    let device = DummyDevice::discrete();
    let usage = MemoryUsage::FAST_DEVICE_ACCESS | MemoryUsage::DEVICE_ADDRESS;
    // By default such buffers share blocks of their own, made with device-address support.
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).unwrap();
    let plain = c
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let before = objects(&c);
    let a = c.create_buffer(64 << 10, usage).unwrap();
    let b = c.create_buffer(64 << 10, usage).unwrap();
    let (memory_a, offset_a) = a.memory();
    let (memory_b, offset_b) = b.memory();
    assert_eq!(memory_a, memory_b, "two small buffers share a block");
    assert_ne!(
        memory_a,
        plain.memory().0,
        "not the block of buffers without addresses"
    );
    assert_eq!(
        objects(&c),
        (before.0 + 1, before.1),
        "one block more, no dedicated object"
    );
    let (address_a, address_b) = (a.device_address().unwrap(), b.device_address().unwrap());
    assert_ne!(address_a, 0);
    assert_eq!(address_a % DEVICE_ADDRESS_WINDOW, offset_a);
    assert_eq!(address_b - address_a, offset_b - offset_a);
    // Asked again, the same.
    assert_eq!(a.device_address().unwrap(), address_a);
    assert_eq!(plain.device_address().unwrap_err(), Error::NoDeviceAddress);
    // With device-address blocks, buffers with and without addresses share them.
    let mut config = CoordinatorConfig::default();
    config.pools.device_address_blocks = true;
    let every = Coordinator::new(device.clone(), config).unwrap();
    let with = every.create_buffer(64 << 10, usage).unwrap();
    let without = every
        .create_buffer(256, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    assert_eq!(with.memory().0, without.memory().0);
    let (memory, offset) = without.memory();
    assert_eq!(
        with.device_address().unwrap() % DEVICE_ADDRESS_WINDOW,
        with.memory().1
    );
    assert_ne!((memory, offset), with.memory());
    device.assert_no_misuse();

    drop((c, every));
    assert_eq!(a.device_address().unwrap_err(), Error::BufferDestroyed);
    drop((a, b, plain, with, without));
}

/// More small device-address buffers than the device allows memory objects (4096, as most
/// drivers): each taking an object of its own, the 4097th would fail; sub-allocated from
/// device-address blocks, they take a few, and every address is distinct and in its buffer's
/// memory.
#[test]
fn more_device_address_buffers_than_the_device_has_memory_objects() {
    let device = DummyDevice::discrete();
    let c = Coordinator::new(device.clone(), CoordinatorConfig::default()).unwrap();
    let usage = MemoryUsage::FAST_DEVICE_ACCESS | MemoryUsage::DEVICE_ADDRESS;
    let before = objects(&c);
    let buffers: Vec<_> = (0..5000)
        .map(|i| {
            c.create_buffer(256, usage)
                .unwrap_or_else(|e| panic!("buffer {i}: {e}"))
        })
        .collect();
    let (blocks, dedicated) = objects(&c);
    assert_eq!(dedicated, before.1, "no object of their own");
    assert!(blocks - before.0 <= 2, "{} blocks more", blocks - before.0);
    let mut addresses: Vec<u64> = buffers
        .iter()
        .map(|b| {
            let address = b.device_address().unwrap();
            assert_eq!(address % DEVICE_ADDRESS_WINDOW, b.memory().1);
            address
        })
        .collect();
    addresses.sort_unstable();
    assert!(addresses.windows(2).all(|w| w[1] - w[0] >= 256));
    device.assert_no_misuse();
}

#[test]
fn transient_slices_have_device_addresses_when_asked_for() {
    let device = DummyDevice::discrete();
    let c = transient_coordinator(&device, true);
    let timeline = device.create_external_timeline();
    for n in 0..3u64 {
        let frame = c.begin_frame().unwrap();
        // SAFETY: the timeline is the device's and outlives the coordinator; signalled below.
        unsafe { frame.gpu_done_at(timeline, n + 1) }.unwrap();
        let mut slices = Vec::new();
        for draw in 0..20u64 {
            let s = frame.transient(&[n, draw, 3, 4]).unwrap();
            slices.push((s.buffer(), s.offset(), s.device_address()));
        }
        let mut writer = frame.transient_writer();
        for draw in 0..5u64 {
            let s = writer.transient_slice(&[draw; 40]).unwrap();
            slices.push((s.buffer(), s.offset(), s.device_address()));
        }
        drop(writer);
        c.end_frame(frame).unwrap();
        for (buffer, offset, address) in slices {
            let base = device.buffer_device_address(buffer).unwrap();
            assert_eq!(address, Some(base + offset), "{buffer:?} at {offset}");
        }
        device.signal_external(timeline, n + 1).unwrap();
    }
    // The chunks' memory was allocated with device-address support (else their binds were
    // recorded as misuses).
    device.assert_no_misuse();
}

#[test]
fn without_the_setting_transient_slices_have_no_device_address() {
    let device = DummyDevice::discrete();
    let c = transient_coordinator(&device, false);
    let timeline = device.create_external_timeline();
    let frame = c.begin_frame().unwrap();
    // SAFETY: as above.
    unsafe { frame.gpu_done_at(timeline, 1) }.unwrap();
    let slice = frame.transient(&7u64).unwrap();
    assert_eq!(slice.device_address(), None);
    c.end_frame(frame).unwrap();
    device.signal_external(timeline, 1).unwrap();
}

#[test]
fn a_device_without_device_addresses_refuses_them_with_a_typed_error() {
    let device =
        DummyDevice::new(Preset::Discrete.config().with_buffer_device_address(false)).unwrap();
    let c = transient_coordinator(&device, true);
    let refused = c.create_buffer(256, MemoryUsage::DEVICE_ADDRESS);
    assert_eq!(
        refused.unwrap_err(),
        Error::Device(DeviceError::FeatureNotEnabled)
    );
    let timeline = device.create_external_timeline();
    let frame = c.begin_frame().unwrap();
    // SAFETY: as above.
    unsafe { frame.gpu_done_at(timeline, 1) }.unwrap();
    assert_eq!(
        frame.transient(&1u32).unwrap_err(),
        Error::Device(DeviceError::FeatureNotEnabled)
    );
    c.end_frame(frame).unwrap();
    assert_eq!(c.stats().transient_chunks, 0);
    device.assert_no_misuse();
}

#[test]
fn the_simulator_records_an_address_asked_of_a_buffer_without_the_usage() {
    use memkit_core::device::BufferUsage;
    use memkit_dummy::MisuseKind;
    let device = DummyDevice::discrete();
    let (buffer, _) = device
        .create_buffer(256, BufferUsage::DEVICE_ADDRESS)
        .unwrap();
    // Not bound yet.
    assert!(device.buffer_device_address(buffer).is_err());
    let (plain, _) = device.create_buffer(256, BufferUsage::UNIFORM).unwrap();
    assert!(device.buffer_device_address(plain).is_err());
    assert_eq!(
        device.misuse_kinds(),
        vec![
            MisuseKind::AddressUnavailable,
            MisuseKind::AddressUnavailable
        ]
    );
    device.destroy_buffer(buffer);
    device.destroy_buffer(plain);
}
