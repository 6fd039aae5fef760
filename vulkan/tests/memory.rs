//! Memory objects and buffers on a real driver, under validation.

mod common;

use common::{MappedBuffer, finish, headless, memory_type, pattern};
use memkit_core::device::{
    BufferDevice, BufferUsage, DedicatedHint, DedicatedTo, DeviceError, HeapBudget,
    InvalidArgument, MappedRange, MemoryAllocateInfo, MemoryDevice, MemoryPropertyFlags,
};
use memkit_vulkan::HostBuffer;
use memkit_vulkan::ash::vk;

#[test]
fn properties_and_limits_are_the_drivers() {
    let Some(h) = headless() else { return };
    let device = h.device();
    // SAFETY: the physical device belongs to the instance.
    let raw_memory = unsafe {
        h.instance()
            .get_physical_device_memory_properties(device.physical_device())
    };
    // SAFETY: as above.
    let raw_props = unsafe {
        h.instance()
            .get_physical_device_properties(device.physical_device())
    };
    let props = device.memory_properties();
    assert_eq!(props.types().len(), raw_memory.memory_type_count as usize);
    assert_eq!(props.heaps().len(), raw_memory.memory_heap_count as usize);
    for (ours, theirs) in props.types().iter().zip(&raw_memory.memory_types) {
        assert_eq!(ours.properties.bits(), theirs.property_flags.as_raw());
        assert_eq!(ours.heap_index, theirs.heap_index);
    }
    for (ours, theirs) in props.heaps().iter().zip(&raw_memory.memory_heaps) {
        assert_eq!(ours.size, theirs.size);
    }
    let limits = device.limits();
    let raw = raw_props.limits;
    assert_eq!(
        limits.max_memory_allocation_count,
        raw.max_memory_allocation_count
    );
    assert_eq!(
        limits.buffer_image_granularity,
        raw.buffer_image_granularity
    );
    assert_eq!(limits.non_coherent_atom_size, raw.non_coherent_atom_size);
    assert_eq!(
        limits.min_memory_map_alignment,
        raw.min_memory_map_alignment as u64
    );
    assert!(limits.max_memory_allocation_size >= 1 << 30);
    finish(h);
}

#[test]
fn allocate_map_write_flush_invalidate_free() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let ty = memory_type(device, !0, MemoryPropertyFlags::HOST_VISIBLE);
    let size = 1 << 20;
    let info = MemoryAllocateInfo {
        size,
        memory_type: ty,
        dedicated_to: None,
        priority: 0.75,
        device_address: false,
    };
    assert_eq!(device.live_memory_objects(), 0);
    // SAFETY: type in range, size nonzero and below the maximum.
    let memory = unsafe { device.allocate_memory(&info) }.unwrap();
    assert_eq!(device.live_memory_objects(), 1);
    // SAFETY: alive, host-visible, not mapped.
    let ptr = unsafe { device.map_memory(memory) }.unwrap();
    assert_eq!(
        ptr.as_ptr() as u64 % device.limits().min_memory_map_alignment,
        0
    );
    let data = pattern(size as usize, 3);
    // SAFETY: the mapping covers `size` bytes.
    let mapped = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), size as usize) };
    mapped.copy_from_slice(&data);
    let atom = device.limits().non_coherent_atom_size;
    let ranges = [
        MappedRange {
            memory,
            offset: 0,
            size: atom,
        },
        MappedRange {
            memory,
            offset: 4 * atom,
            size: size - 4 * atom,
        },
    ];
    // 40 ranges: more than one stack chunk of the implementation.
    let many: Vec<_> = (0..40)
        .map(|i| MappedRange {
            memory,
            offset: i * atom,
            size: atom,
        })
        .collect();
    // SAFETY: mapped, atom-aligned, the last range reaches the end.
    unsafe {
        device.flush_ranges(&ranges).unwrap();
        device.flush_ranges(&many).unwrap();
        device.invalidate_ranges(&ranges).unwrap();
        device.invalidate_ranges(&many).unwrap();
    }
    assert_eq!(mapped, &data[..]);
    // SAFETY: mapped; no pointer used afterwards; nothing on the GPU uses it.
    unsafe {
        device.unmap_memory(memory);
        device.free_memory(memory);
    }
    assert_eq!(device.live_memory_objects(), 0);
    finish(h);
}

#[test]
fn buffers_report_requirements_and_bind() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let (buffer, req) = device
        .create_buffer(1000, BufferUsage::TRANSFER_DST | BufferUsage::VERTEX)
        .unwrap();
    // Compare with the driver's own answer.
    // SAFETY: the buffer is alive.
    let raw = unsafe { h.ash_device().get_buffer_memory_requirements(buffer) };
    assert_eq!(req.size, raw.size);
    assert_eq!(req.alignment, raw.alignment);
    assert_eq!(req.memory_type_bits, raw.memory_type_bits);
    assert!(req.alignment.is_power_of_two());
    assert!(req.size >= 1000);
    // A sub-allocation: two buffers in one object at aligned offsets.
    let (second, req2) = device
        .create_buffer(256, BufferUsage::TRANSFER_SRC)
        .unwrap();
    let offset = req.size.next_multiple_of(req2.alignment);
    let info = MemoryAllocateInfo {
        size: offset + req2.size,
        memory_type: memory_type(
            device,
            req.memory_type_bits & req2.memory_type_bits,
            MemoryPropertyFlags::empty(),
        ),
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    // SAFETY: type allowed, size nonzero.
    let memory = unsafe { device.allocate_memory(&info) }.unwrap();
    // SAFETY: alive, unbound, aligned, in range.
    unsafe {
        device.bind_buffer_memory(buffer, memory, 0).unwrap();
        device.bind_buffer_memory(second, memory, offset).unwrap();
        device.destroy_buffer(buffer);
        device.destroy_buffer(second);
        device.free_memory(memory);
    }
    finish(h);
}

#[test]
fn dedicated_allocations_name_their_buffer() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let (buffer, req) = device
        .create_buffer(4 << 20, BufferUsage::TRANSFER_DST | BufferUsage::STORAGE)
        .unwrap();
    // Buffers never require dedicated memory on lavapipe; whatever the driver says is reported.
    assert!(matches!(
        req.dedicated,
        DedicatedHint::None | DedicatedHint::Preferred | DedicatedHint::Required
    ));
    let info = MemoryAllocateInfo {
        size: req.size,
        memory_type: memory_type(device, req.memory_type_bits, MemoryPropertyFlags::empty()),
        dedicated_to: Some(DedicatedTo::Buffer(buffer)),
        priority: 1.0,
        device_address: false,
    };
    // SAFETY: type allowed, buffer alive and unbound.
    let memory = unsafe { device.allocate_memory(&info) }.unwrap();
    // SAFETY: a dedicated object is bound at offset 0 (validation checks it names this buffer).
    unsafe {
        device.bind_buffer_memory(buffer, memory, 0).unwrap();
        device.destroy_buffer(buffer);
        device.free_memory(memory);
    }
    // The host buffer allocates dedicated memory too, and reads back what it wrote.
    let mapped = MappedBuffer::new(device, 4096, BufferUsage::TRANSFER_SRC);
    mapped.write(device, 0, &pattern(4096, 9));
    assert_eq!(mapped.read(device), pattern(4096, 9));
    mapped.destroy(device);
    finish(h);
}

#[test]
fn host_buffers_check_their_arguments() {
    let Some(h) = headless() else { return };
    let device = h.device();
    assert_eq!(
        HostBuffer::new(device, 0, BufferUsage::TRANSFER_SRC).unwrap_err(),
        DeviceError::InvalidArgument(InvalidArgument::ZeroSize)
    );
    let host = HostBuffer::new(device, 4096, BufferUsage::TRANSFER_SRC).unwrap();
    assert_eq!(host.size(), 4096);
    // SAFETY: the GPU never uses this buffer, so writing, reading and destroying it are sound.
    unsafe {
        host.write(device, 4000, &pattern(96, 1)).unwrap();
        for (offset, len) in [(4001, 96), (u64::MAX, 1)] {
            assert_eq!(
                host.write(device, offset, &pattern(len, 2)),
                Err(DeviceError::InvalidArgument(
                    InvalidArgument::RangeOutOfBounds
                ))
            );
        }
        let bytes = host.read(device).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(
            bytes[4000..],
            pattern(96, 1)[..],
            "a failed write changed nothing"
        );
        host.destroy(device);
    }
    finish(h);
}

#[test]
fn a_buffer_without_usage_is_refused_before_the_driver_sees_it() {
    let Some(h) = headless() else { return };
    let device = h.device();
    assert_eq!(
        device.create_buffer(64, BufferUsage::empty()).err(),
        Some(DeviceError::InvalidArgument(
            InvalidArgument::EmptyBufferUsage
        ))
    );
    assert_eq!(
        HostBuffer::new(device, 64, BufferUsage::empty()).err(),
        Some(DeviceError::InvalidArgument(
            InvalidArgument::EmptyBufferUsage
        ))
    );
    assert_eq!(device.live_memory_objects(), 0);
    // Validation would report VUID-VkBufferCreateInfo-usage-requiredbitmask had one reached it.
    finish(h);
}

#[test]
fn host_buffers_larger_than_one_allocation_or_their_heap_are_refused() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let largest_heap = device
        .memory_properties()
        .heaps()
        .iter()
        .map(|heap| heap.size)
        .max()
        .unwrap();
    let max_allocation = device.limits().max_memory_allocation_size;
    for size in [
        max_allocation.saturating_add(1),
        largest_heap.saturating_mul(4),
    ] {
        assert_eq!(
            HostBuffer::new(device, size, BufferUsage::TRANSFER_DST).err(),
            Some(DeviceError::OutOfDeviceMemory),
            "{size} bytes (largest allocation {max_allocation}, largest heap {largest_heap})"
        );
    }
    // The buffers made to ask for their requirements are gone (teardown reports any left), and
    // no memory object was allocated.
    assert_eq!(device.live_memory_objects(), 0);
    finish(h);
}

#[test]
fn device_addresses_when_enabled() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let enabled = device.enabled_features().buffer_device_address;
    let created = device.create_buffer(1024, BufferUsage::STORAGE | BufferUsage::DEVICE_ADDRESS);
    if !enabled {
        assert_eq!(created.unwrap_err(), DeviceError::FeatureNotEnabled);
        finish(h);
        return;
    }
    let (buffer, req) = created.unwrap();
    let info = MemoryAllocateInfo {
        size: req.size,
        memory_type: memory_type(device, req.memory_type_bits, MemoryPropertyFlags::empty()),
        dedicated_to: None,
        priority: 0.5,
        device_address: true,
    };
    // SAFETY: type allowed, size nonzero.
    let memory = unsafe { device.allocate_memory(&info) }.unwrap();
    // SAFETY: alive and unbound; the memory has the device-address flag the usage needs.
    unsafe { device.bind_buffer_memory(buffer, memory, 0) }.unwrap();
    let address_info = vk::BufferDeviceAddressInfo::default().buffer(buffer);
    // SAFETY: bound, with the usage and feature.
    let address = unsafe { h.ash_device().get_buffer_device_address(&address_info) };
    assert_ne!(address, 0);
    // SAFETY: unused by the GPU.
    unsafe {
        device.destroy_buffer(buffer);
        device.free_memory(memory);
    }
    finish(h);
}

#[test]
fn bad_arguments_are_typed_errors_before_the_driver_sees_them() {
    let Some(h) = headless() else { return };
    let device = h.device();
    assert_eq!(
        device
            .create_buffer(0, BufferUsage::TRANSFER_DST)
            .unwrap_err(),
        DeviceError::InvalidArgument(InvalidArgument::ZeroSize)
    );
    let bad_type = MemoryAllocateInfo {
        size: 64,
        memory_type: device.memory_properties().types().len() as u32,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    let zero = MemoryAllocateInfo {
        size: 0,
        memory_type: 0,
        ..bad_type
    };
    // SAFETY: rejected before any Vulkan call.
    unsafe {
        assert_eq!(
            device.allocate_memory(&bad_type).unwrap_err(),
            DeviceError::InvalidArgument(InvalidArgument::UnknownMemoryType)
        );
        assert_eq!(
            device.allocate_memory(&zero).unwrap_err(),
            DeviceError::InvalidArgument(InvalidArgument::ZeroSize)
        );
    }
    assert_eq!(device.live_memory_objects(), 0);
    finish(h);
}

#[test]
fn budget_query_or_its_fallback() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let heaps = device.memory_properties().heaps().len();
    let sentinel = HeapBudget {
        budget: 7,
        usage: 7,
    };
    let mut out = vec![sentinel; heaps + 1];
    let reported = device.query_budget(&mut out);
    assert_eq!(reported, device.enabled_features().memory_budget);
    if reported {
        for (b, heap) in out.iter().zip(device.memory_properties().heaps()) {
            assert!(b.budget > 0 && b.budget <= heap.size, "{b:?} of {heap:?}");
        }
        assert_eq!(out[heaps], sentinel, "wrote past the heaps");
    } else {
        // lavapipe: no VK_EXT_memory_budget. Nothing is written; callers fall back to a share of
        // the heap size.
        assert!(out.iter().all(|b| *b == sentinel));
    }
    finish(h);
}
