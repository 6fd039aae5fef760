//! The presets describe the GPUs they claim to, and every device call works through the traits.

mod common;

use common::{XFER, alloc, backed_buffer, release_all};
use memkit_core::device::{
    BufferCopy, CopyCommand, CopyQueue, DescriptionError, DeviceLimits, HeapBudget, MemoryDevice,
    MemoryHeapFlags, MemoryPropertyFlags as P, WaitStatus,
};
use memkit_dummy::{DeviceConfig, DummyDevice, Preset};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn flags(gpu: &DummyDevice) -> Vec<P> {
    gpu.memory_properties()
        .types()
        .iter()
        .map(|t| t.properties)
        .collect()
}

#[test]
fn resizable_bar_is_the_h200() {
    let gpu = DummyDevice::resizable_bar();
    assert_eq!(
        flags(&gpu),
        [
            P::empty(),
            P::DEVICE_LOCAL,
            P::HOST_VISIBLE | P::HOST_COHERENT,
            P::HOST_VISIBLE | P::HOST_COHERENT | P::HOST_CACHED,
            P::DEVICE_LOCAL | P::HOST_VISIBLE | P::HOST_COHERENT,
        ]
    );
    let props = gpu.memory_properties();
    // The BAR type spans the whole device heap.
    assert_eq!(props.types()[4].heap_index, props.types()[1].heap_index);
    let heap = props.heaps()[props.types()[4].heap_index as usize];
    assert_eq!(heap.size, 140 * GIB);
    assert!(heap.flags.contains(MemoryHeapFlags::DEVICE_LOCAL));
    assert_eq!(gpu.limits().buffer_image_granularity, 1024);
    assert_eq!(gpu.limits().non_coherent_atom_size, 64);
}

#[test]
fn discrete_has_a_256_mib_window() {
    let gpu = DummyDevice::discrete();
    let props = gpu.memory_properties();
    let window: Vec<_> = props
        .types()
        .iter()
        .filter(|t| t.properties.contains(P::DEVICE_LOCAL | P::HOST_VISIBLE))
        .collect();
    assert_eq!(window.len(), 1);
    assert_eq!(props.heaps()[window[0].heap_index as usize].size, 256 * MIB);
    let vram = props.types()[0];
    assert_eq!(vram.properties, P::DEVICE_LOCAL);
    assert_eq!(props.heaps()[vram.heap_index as usize].size, 8 * GIB);
}

#[test]
fn integrated_is_all_device_local_on_one_heap() {
    let gpu = DummyDevice::integrated();
    let props = gpu.memory_properties();
    assert_eq!(props.heaps().len(), 1);
    assert!(flags(&gpu).iter().all(|f| f.contains(P::DEVICE_LOCAL)));
    assert!(flags(&gpu).iter().any(|f| f.contains(P::HOST_VISIBLE)));
}

#[test]
fn lavapipe_has_one_type_that_is_everything() {
    let gpu = DummyDevice::lavapipe();
    assert_eq!(
        flags(&gpu),
        [P::DEVICE_LOCAL | P::HOST_VISIBLE | P::HOST_COHERENT | P::HOST_CACHED]
    );
    assert_eq!(gpu.limits().buffer_image_granularity, 64);
    assert_eq!(gpu.limits().non_coherent_atom_size, 64);
    let mut budgets = [HeapBudget::default(); 1];
    assert!(
        !gpu.query_budget(&mut budgets),
        "lavapipe has no budget query"
    );
}

#[test]
fn mobile_is_small_and_non_coherent() {
    let gpu = DummyDevice::mobile();
    let limits = gpu.limits();
    assert_eq!(limits.non_coherent_atom_size, 256);
    assert_eq!(limits.buffer_image_granularity, 4096);
    assert_eq!(limits.max_memory_allocation_count, 4096);
    let host_visible: Vec<P> = flags(&gpu)
        .into_iter()
        .filter(|f| f.contains(P::HOST_VISIBLE))
        .collect();
    assert!(!host_visible.is_empty());
    assert!(host_visible.iter().all(|f| !f.contains(P::HOST_COHERENT)));
    assert!(
        gpu.memory_properties()
            .heaps()
            .iter()
            .all(|h| h.size <= 512 * MIB)
    );
    // Buffers may not use the lazily allocated type.
    let (buffer, req) = gpu.create_buffer(64, XFER).expect("buffer");
    let lazy = flags(&gpu)
        .iter()
        .position(|f| f.contains(P::LAZILY_ALLOCATED))
        .expect("lazy type");
    assert_eq!(req.memory_type_bits & (1 << lazy), 0);
    gpu.destroy_buffer(buffer);
}

#[test]
fn preset_names_round_trip() {
    for preset in Preset::ALL {
        assert_eq!(preset.name().parse::<Preset>(), Ok(preset));
        assert_eq!(preset.to_string(), preset.name());
    }
    assert!("geforce".parse::<Preset>().is_err());
}

#[test]
fn custom_configurations_are_validated() {
    let base = DeviceConfig::lavapipe();
    let bad_granularity = base.clone().with_limits(DeviceLimits {
        buffer_image_granularity: 3,
        ..base.limits
    });
    assert_eq!(
        DummyDevice::new(bad_granularity).err(),
        Some(DescriptionError::LimitNotPowerOfTwo)
    );
    let mut no_types = base.clone();
    no_types.memory_types.clear();
    assert_eq!(
        DummyDevice::new(no_types).err(),
        Some(DescriptionError::BadCount)
    );
    let mut bad_heap = base.clone();
    bad_heap.memory_types[0].heap_index = 5;
    assert_eq!(
        DummyDevice::new(bad_heap).err(),
        Some(DescriptionError::BadHeapIndex)
    );
    let custom = DummyDevice::new(
        base.with_name("tiny")
            .with_heap_size(0, 4096)
            .with_max_memory_allocation_count(2)
            .with_buffer_alignment(256),
    )
    .expect("valid");
    assert_eq!(custom.memory_properties().heaps()[0].size, 4096);
    assert_eq!(custom.limits().max_memory_allocation_count, 2);
    let (buffer, req) = custom.create_buffer(100, XFER).expect("buffer");
    assert_eq!((req.size, req.alignment), (256, 256));
    custom.destroy_buffer(buffer);
}

#[test]
fn budget_reports_usage_and_external_usage() {
    let gpu = DummyDevice::discrete();
    let memory = alloc(&gpu, 0, 64 * MIB);
    gpu.set_external_usage(0, 100 * MIB);
    let mut budgets = [HeapBudget::default(); 3];
    assert!(gpu.query_budget(&mut budgets));
    assert_eq!(budgets[0].usage, 164 * MIB);
    assert_eq!(budgets[0].budget, 8 * GIB);
    assert_eq!(budgets[1].usage, 0);
    assert_eq!(gpu.heap_used(0), 64 * MIB);
    gpu.free_memory(memory);
    assert!(gpu.query_budget(&mut budgets));
    assert_eq!(budgets[0].usage, 100 * MIB);
}

#[test]
fn a_16_gib_object_costs_nothing_until_touched() {
    let gpu = DummyDevice::resizable_bar();
    let memory = alloc(&gpu, 1, 16 * GIB);
    assert_eq!(
        gpu.memory_info(memory).expect("live").resident_device_bytes,
        0
    );
    gpu.device_write(memory, 15 * GIB, &[7; 10]).expect("write");
    assert_eq!(
        gpu.memory_info(memory).expect("live").resident_device_bytes,
        64 * 1024
    );
    let mut out = [0u8; 12];
    gpu.read_memory(memory, 15 * GIB - 1, &mut out)
        .expect("read");
    assert_eq!(out, [0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0]);
    gpu.free_memory(memory);
    gpu.assert_no_misuse();
}

#[test]
fn mapped_pointers_are_aligned_and_stable() {
    let gpu = DummyDevice::resizable_bar();
    let (memory, _buffer) = backed_buffer(&gpu, 4, 1 << 20, true);
    let ptr = gpu.mapped_ptr(memory).expect("mapped");
    assert_eq!(
        ptr.as_ptr() as usize % gpu.limits().min_memory_map_alignment as usize,
        0
    );
    gpu.unmap_memory(memory);
    assert_eq!(gpu.mapped_ptr(memory), None);
    assert_eq!(
        gpu.map_memory(memory),
        Ok(ptr),
        "same address after remapping"
    );
    release_all(&gpu);
    gpu.assert_no_misuse();
}

/// Drives the device only through memkit-core's traits, as the pools and coordinator do.
/// Returns the destination buffer, left alive for the caller to inspect.
fn upload_through_traits<D: CopyQueue>(
    device: &D,
    staging_type: u32,
    target_type: u32,
) -> D::Buffer {
    let usage = XFER;
    // SAFETY: every call below keeps its trait contract: types exist, sizes are nonzero and
    // small, buffers are bound once inside their objects, the mapping is written in bounds
    // before submit and flushed, the copy completes (wait) before the source is destroyed or
    // freed.
    unsafe {
        let (src, src_req) = device.create_buffer(256, usage).expect("buffer");
        let (dst, dst_req) = device.create_buffer(256, usage).expect("buffer");
        let src_mem = device
            .allocate_memory(&memkit_core::device::MemoryAllocateInfo {
                size: src_req.size,
                ..info_for::<D>(staging_type)
            })
            .expect("staging memory");
        let dst_mem = device
            .allocate_memory(&memkit_core::device::MemoryAllocateInfo {
                size: dst_req.size,
                ..info_for::<D>(target_type)
            })
            .expect("target memory");
        device.bind_buffer_memory(src, src_mem, 0).expect("bind");
        device.bind_buffer_memory(dst, dst_mem, 0).expect("bind");
        let ptr = device.map_memory(src_mem).expect("map");
        for i in 0..256 {
            ptr.as_ptr().add(i).write(i as u8);
        }
        device
            .flush_ranges(&[memkit_core::device::MappedRange {
                memory: src_mem,
                offset: 0,
                size: src_req.size,
            }])
            .expect("flush");
        let regions = [BufferCopy {
            src_offset: 0,
            dst_offset: 0,
            size: 256,
        }];
        device
            .submit_copies(
                &[CopyCommand {
                    src,
                    dst,
                    regions: &regions,
                }],
                1,
            )
            .expect("submit");
        assert_eq!(device.wait(1, u64::MAX), Ok(WaitStatus::Completed));
        assert_eq!(device.completed_value(), Ok(1));
        device.destroy_buffer(src);
        device.free_memory(src_mem);
        dst
    }
}

fn info_for<D: MemoryDevice>(
    memory_type: u32,
) -> memkit_core::device::MemoryAllocateInfo<D::Buffer, D::Image> {
    memkit_core::device::MemoryAllocateInfo {
        size: 0,
        memory_type,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    }
}

#[test]
fn the_traits_drive_every_preset() {
    for preset in Preset::ALL {
        let gpu = DummyDevice::new(preset.config()).expect("preset");
        let types = gpu.memory_properties().types().to_vec();
        let staging = types
            .iter()
            .position(|t| t.properties.contains(P::HOST_VISIBLE))
            .expect("host-visible type") as u32;
        let target = types
            .iter()
            .position(|t| t.properties.contains(P::DEVICE_LOCAL))
            .expect("device-local type") as u32;
        let dst = upload_through_traits(&gpu, staging, target);
        let expected: Vec<u8> = (0..=255).collect();
        assert_eq!(gpu.read_buffer(dst, 0, 256), Ok(expected), "{preset}");
        let counters = gpu.counters();
        assert_eq!(counters.bytes_copied, 256, "{preset}");
        assert_eq!(counters.live_memory_objects, 1, "{preset}");
        release_all(&gpu);
        gpu.assert_no_misuse();
        assert!(gpu.leak_report().is_empty());
        // A shared reference is a device too (core's blanket impl).
        let by_ref: &DummyDevice = &gpu;
        assert_eq!(MemoryDevice::limits(&by_ref), gpu.limits());
    }
}

#[test]
fn device_addresses_need_the_feature_as_on_vulkan() {
    use memkit_core::device::{BufferUsage, DeviceError};

    let address_usage = XFER | BufferUsage::DEVICE_ADDRESS;
    let address_info = memkit_core::device::MemoryAllocateInfo {
        device_address: true,
        ..common::info(0, 64)
    };
    // Every preset imitates a device that has `bufferDeviceAddress` (core in Vulkan 1.3).
    for preset in Preset::ALL {
        let gpu = DummyDevice::new(preset.config()).expect("preset");
        assert!(gpu.config().buffer_device_address, "{preset}");
        let (buffer, _) = gpu.create_buffer(64, address_usage).expect("buffer");
        let memory = gpu.allocate_memory(&address_info).expect("memory");
        gpu.bind_buffer_memory(buffer, memory, 0).expect("bind");
        release_all(&gpu);
        gpu.assert_no_misuse();
    }
    // Without it, both are refused with memkit-vulkan's error, and nothing is made.
    let gpu = DummyDevice::new(DeviceConfig::discrete().with_buffer_device_address(false))
        .expect("device");
    let not_enabled = DeviceError::FeatureNotEnabled;
    assert_eq!(
        gpu.create_buffer(64, address_usage).err(),
        Some(not_enabled)
    );
    assert_eq!(gpu.allocate_memory(&address_info).err(), Some(not_enabled));
    let counters = gpu.counters();
    assert_eq!(
        (counters.live_buffers, counters.live_memory_objects),
        (0, 0)
    );
    // Without the address, the same calls work.
    let (buffer, _) = gpu.create_buffer(64, XFER).expect("buffer");
    let memory = alloc(&gpu, 0, 64);
    gpu.bind_buffer_memory(buffer, memory, 0).expect("bind");
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn images_beyond_the_presets_largest_extents_are_unsupported() {
    use memkit_core::device::{DeviceError, ImageDesc, ImageDescError, ImageFormat, ImageUsage};

    let unsupported = Some(DeviceError::InvalidImage(ImageDescError::Unsupported));
    let flat =
        |width, height| ImageDesc::new_2d(ImageFormat::R8Unorm, width, height, ImageUsage::SAMPLED);
    let volume = |extent| ImageDesc {
        depth: extent,
        ..flat(extent, extent)
    };
    // (preset, largest 2D extent, largest 3D extent); 2048 layers on each.
    let limits = [
        (Preset::Discrete, 32768, 16384),
        (Preset::ResizableBar, 32768, 16384),
        (Preset::Integrated, 16384, 2048),
        (Preset::Lavapipe, 16384, 4096),
        (Preset::Mobile, 16384, 2048),
    ];
    for (preset, max_2d, max_3d) in limits {
        let gpu = DummyDevice::new(preset.config()).expect("preset");
        for desc in [
            flat(max_2d, 1),
            flat(1, max_2d),
            flat(1, 1).with_array_layers(2048),
        ] {
            let (image, _) = gpu
                .create_image(&desc)
                .unwrap_or_else(|e| panic!("{preset}: {desc:?}: {e}"));
            gpu.destroy_image(image);
        }
        for desc in [
            flat(max_2d + 1, 1),
            flat(1, max_2d + 1),
            flat(1 << 20, 1),
            flat(1, 1).with_array_layers(2049),
            volume(max_3d + 1),
        ] {
            assert_eq!(
                gpu.create_image(&desc).err(),
                unsupported,
                "{preset}: {desc:?}"
            );
        }
        // Each axis of a 3D image reaches the largest extent (only its requirements are made: it
        // is never bound).
        for (width, height, depth) in [(max_3d, 2, 2), (2, max_3d, 2), (2, 2, max_3d)] {
            let desc = ImageDesc {
                depth,
                ..flat(width, height)
            };
            let (image, _) = gpu
                .create_image(&desc)
                .unwrap_or_else(|e| panic!("{preset}: {desc:?}: {e}"));
            gpu.destroy_image(image);
        }
        // All three at once is larger in all than the preset's maxResourceSize, as on the real
        // devices (16384^3 bytes is 4 TiB where NVIDIA allows 1 TiB; 4096^3, 64 GiB where
        // lavapipe allows 4 GiB; 2048^3, 8 GiB over Vulkan's least, 2 GiB).
        assert_eq!(
            gpu.create_image(&volume(max_3d)).err(),
            unsupported,
            "{preset}"
        );
        assert_eq!(gpu.counters().live_buffers, 0, "{preset}");
        gpu.assert_no_misuse();
    }
    // A custom limit applies the same way.
    let gpu = DummyDevice::new(DeviceConfig::lavapipe().with_max_image_dimensions(4096, 256, 6))
        .expect("device");
    assert_eq!(gpu.create_image(&flat(4097, 16)).err(), unsupported);
    assert_eq!(gpu.create_image(&volume(257)).err(), unsupported);
    assert_eq!(
        gpu.create_image(&flat(16, 16).with_array_layers(7)).err(),
        unsupported
    );
    let (image, _) = gpu
        .create_image(&flat(4096, 16).with_array_layers(6))
        .expect("image within the limits");
    gpu.destroy_image(image);
}

#[test]
fn cube_maps_are_bounded_by_the_cube_limit_as_well_as_the_2d_one() {
    use memkit_core::device::{DeviceError, ImageDesc, ImageDescError, ImageFormat, ImageUsage};

    let unsupported = Some(DeviceError::InvalidImage(ImageDescError::Unsupported));
    let cube = |side| ImageDesc::new_cube(ImageFormat::R8Unorm, side, ImageUsage::SAMPLED);
    // Every preset's drivers report the cube limit equal to the 2D one.
    for (preset, max_2d) in [
        (Preset::Discrete, 32768),
        (Preset::Lavapipe, 16384),
        (Preset::Mobile, 16384),
    ] {
        let gpu = DummyDevice::new(preset.config()).expect("preset");
        let (image, _) = gpu
            .create_image(&cube(max_2d))
            .unwrap_or_else(|e| panic!("{preset}: {e}"));
        gpu.destroy_image(image);
        assert_eq!(gpu.create_image(&cube(max_2d + 1)).err(), unsupported);
    }
    // A device whose cubes are smaller than its 2D images refuses a cube of the 2D size only.
    let gpu = DummyDevice::new(DeviceConfig::lavapipe().with_max_image_dimension_cube(1024))
        .expect("device");
    assert_eq!(gpu.create_image(&cube(1025)).err(), unsupported);
    let six_layers = ImageDesc::new_2d(ImageFormat::R8Unorm, 1025, 1025, ImageUsage::SAMPLED)
        .with_array_layers(6);
    for desc in [cube(1024), six_layers] {
        let (image, _) = gpu
            .create_image(&desc)
            .unwrap_or_else(|e| panic!("{desc:?}: {e}"));
        gpu.destroy_image(image);
    }
    // And a cube larger than the 2D limit is refused even under a larger cube limit.
    let gpu = DummyDevice::new(DeviceConfig::lavapipe().with_max_image_dimension_cube(32768))
        .expect("device");
    assert_eq!(gpu.create_image(&cube(16385)).err(), unsupported);
    assert_eq!(gpu.counters().live_buffers, 0);
    gpu.assert_no_misuse();
}

#[test]
fn images_with_sample_counts_the_device_lacks_are_unsupported() {
    use memkit_core::device::{DeviceError, ImageDesc, ImageDescError, ImageFormat, ImageUsage};

    let unsupported = Some(DeviceError::InvalidImage(ImageDescError::Unsupported));
    let target = |samples| {
        ImageDesc::new_2d(
            ImageFormat::Rgba8Unorm,
            64,
            64,
            ImageUsage::COLOR_ATTACHMENT | ImageUsage::SAMPLED,
        )
        .with_samples(samples)
    };
    let created = |gpu: &DummyDevice, desc: &ImageDesc| match gpu.create_image(desc) {
        Ok((image, _)) => {
            gpu.destroy_image(image);
            None
        }
        Err(e) => Some(e),
    };
    // Lavapipe has 1 and 4 samples only (its framebufferColorSampleCounts, measured).
    let lavapipe = DummyDevice::new(Preset::Lavapipe.config()).expect("lavapipe");
    for (samples, refused) in [(1, false), (2, true), (4, false), (8, true), (16, true)] {
        let expected = if refused { unsupported } else { None };
        assert_eq!(created(&lavapipe, &target(samples)), expected, "{samples}");
    }
    // The other presets have 1, 2, 4 and 8.
    let discrete = DummyDevice::new(Preset::Discrete.config()).expect("discrete");
    for (samples, refused) in [(2, false), (8, false), (16, true), (64, true)] {
        let expected = if refused { unsupported } else { None };
        assert_eq!(created(&discrete, &target(samples)), expected, "{samples}");
    }
    // Multisampled storage images are refused, as memkit-vulkan refuses them.
    let storage = ImageDesc::new_2d(ImageFormat::Rgba8Unorm, 64, 64, ImageUsage::STORAGE);
    assert_eq!(created(&discrete, &storage.with_samples(4)), unsupported);
    assert_eq!(created(&discrete, &storage), None);
    // A custom mask applies, and single-sampled images stay allowed.
    let custom = DummyDevice::new(Preset::Discrete.config().with_image_sample_counts(0b10000))
        .expect("custom");
    assert_eq!(created(&custom, &target(16)), None);
    assert_eq!(created(&custom, &target(1)), None);
    assert_eq!(created(&custom, &target(4)), unsupported);
    for gpu in [&lavapipe, &discrete, &custom] {
        assert_eq!(gpu.counters().live_buffers, 0);
        gpu.assert_no_misuse();
    }
}
