//! Images on the simulated device: their requirements, refused descriptions, dedicated objects
//! named by image, and the detectors that watch their binds.

mod common;

use common::{XFER, alloc, buffer_at, info, release_all};
use memkit_core::device::{
    DedicatedHint, DedicatedTo, DeviceError, ImageDesc, ImageDescError, ImageDevice, ImageFormat,
    ImageUsage, MemoryAllocateInfo,
};
use memkit_dummy::{
    DeviceConfig, DummyDevice, InvalidAllocation, MISUSE_RESULT_CODE, Misuse, Operation,
};

const REFUSED: DeviceError = DeviceError::Unexpected(MISUSE_RESULT_CODE);
const MIB: u64 = 1 << 20;

fn texture(width: u32, height: u32) -> ImageDesc {
    ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        width,
        height,
        ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
    )
}

#[test]
fn requirements_follow_the_description_and_the_optimal_settings() {
    let gpu = DummyDevice::new(
        DeviceConfig::discrete()
            .with_optimal_alignment(4096)
            .with_optimal_memory_type_bits(0b001)
            .with_dedicated_preferred_from(Some(MIB))
            .with_dedicated_required_from(Some(4 * MIB)),
    )
    .expect("device");
    // 100 x 100 x 4 bytes = 40 000, rounded up to the 4096 alignment.
    let (small, req) = gpu.create_image(&texture(100, 100)).expect("image");
    assert_eq!((req.size, req.alignment), (40_960, 4096));
    assert_eq!(req.memory_type_bits, 0b001);
    assert_eq!(req.dedicated, DedicatedHint::None);
    // A full chain of 512 x 512: 1 398 100 bytes, above the preferred threshold.
    let (mipped, req) = gpu
        .create_image(&texture(512, 512).with_full_mip_chain())
        .expect("image");
    assert_eq!(req.size, 1_400_832);
    assert_eq!(req.dedicated, DedicatedHint::Preferred);
    // A 1024 x 1024 HDR target (8 MiB): required, as some drivers answer for render targets.
    let target = ImageDesc::new_2d(
        ImageFormat::Rgba16Float,
        1024,
        1024,
        ImageUsage::COLOR_ATTACHMENT | ImageUsage::SAMPLED,
    );
    let (big, req) = gpu.create_image(&target).expect("image");
    assert_eq!(
        (req.size, req.dedicated),
        (8 * MIB, DedicatedHint::Required)
    );
    // Images are resources numbered with the buffers, and optimal ones.
    let (buffer, _) = gpu.create_buffer(64, XFER).expect("buffer");
    assert_eq!(
        [small.index(), mipped.index(), big.index(), buffer.index()],
        [1, 2, 3, 4]
    );
    assert!(gpu.buffer_info(big.resource()).expect("live").optimal);
    let name = format!("{big:?}");
    assert!(name.starts_with("image#3@dev"), "{name}");
    // The resource handle reports name it by is an image's too; a buffer's and an optimal
    // resource's are not.
    assert!(big.resource().is_image());
    assert_eq!(format!("{:?}", big.resource()), name);
    assert!(!buffer.is_image());
    assert!(format!("{buffer:?}").starts_with("buffer#4@dev"));
    let (optimal, _) = gpu.create_optimal_resource(256).expect("optimal");
    assert!(!optimal.is_image());
    assert_eq!(
        gpu.live_buffers()
            .iter()
            .map(|b| b.is_image())
            .collect::<Vec<_>>(),
        [true, true, true, false, false]
    );
    assert_eq!(gpu.counters().live_buffers, 5);
    release_all(&gpu);
    gpu.assert_no_misuse();
}

#[test]
fn bad_descriptions_are_typed_errors_not_resources() {
    let gpu = DummyDevice::discrete();
    let cases = [
        (texture(0, 16), ImageDescError::ZeroExtent),
        (
            texture(16, 16).with_mip_levels(6),
            ImageDescError::TooManyMipLevels { max: 5 },
        ),
        (
            texture(16, 16).with_samples(3),
            ImageDescError::BadSampleCount,
        ),
        (
            ImageDesc::new_2d(ImageFormat::D32Float, 16, 16, ImageUsage::STORAGE),
            ImageDescError::UsageNotForFormat,
        ),
        // A transient image may only be an attachment (VUID-VkImageCreateInfo-usage-00963,
        // -00966).
        (
            ImageDesc::new_2d(
                ImageFormat::Rgba8Unorm,
                64,
                64,
                ImageUsage::TRANSIENT_ATTACHMENT | ImageUsage::SAMPLED,
            ),
            ImageDescError::TransientNotOnlyAttachment,
        ),
        (
            ImageDesc::new_2d(
                ImageFormat::Rgba8Unorm,
                64,
                64,
                ImageUsage::TRANSIENT_ATTACHMENT,
            ),
            ImageDescError::TransientNotOnlyAttachment,
        ),
    ];
    for (desc, error) in cases {
        assert_eq!(
            gpu.create_image(&desc),
            Err(DeviceError::InvalidImage(error)),
            "{desc:?}"
        );
    }
    // Through the trait too.
    assert_eq!(
        ImageDevice::create_image(&gpu, &texture(16, 0)),
        Err(DeviceError::InvalidImage(ImageDescError::ZeroExtent))
    );
    assert_eq!(gpu.counters().live_buffers, 0);
    gpu.assert_no_misuse();
}

#[test]
fn dedicated_objects_name_their_image_and_are_checked() {
    let gpu = DummyDevice::new(DeviceConfig::discrete().with_dedicated_required_from(Some(MIB)))
        .expect("device");
    let (image, req) = gpu.create_image(&texture(1024, 1024)).expect("image");
    assert_eq!(
        (req.size, req.dedicated),
        (4 * MIB, DedicatedHint::Required)
    );
    let dedicated = |image, size| MemoryAllocateInfo {
        dedicated_to: Some(DedicatedTo::Image(image)),
        ..info(0, size)
    };
    // Correct: its own object, bound at offset 0.
    let own = gpu
        .allocate_memory(&dedicated(image, req.size))
        .expect("dedicated");
    assert_eq!(
        gpu.memory_info(own).expect("live").dedicated_to,
        Some(image.resource())
    );
    gpu.bind_image_memory(image, own, 0).expect("bind");
    gpu.assert_no_misuse();
    // A required-dedicated image in shared memory, one named in an object of the wrong size,
    // and one named again once bound.
    let (other, _) = gpu.create_image(&texture(1024, 1024)).expect("image");
    let shared = alloc(&gpu, 0, 8 * MIB);
    assert_eq!(gpu.bind_image_memory(other, shared, 0), Err(REFUSED));
    assert_eq!(
        gpu.allocate_memory(&dedicated(other, 8 * MIB)),
        Err(REFUSED)
    );
    assert_eq!(
        gpu.allocate_memory(&dedicated(image, req.size)),
        Err(REFUSED)
    );
    assert_eq!(
        gpu.take_misuses(),
        [
            Misuse::DedicatedMismatch {
                buffer: other.resource(),
                memory: shared
            },
            Misuse::InvalidAllocation {
                reason: InvalidAllocation::DedicatedSizeMismatch
            },
            Misuse::InvalidAllocation {
                reason: InvalidAllocation::BadDedicatedBuffer
            },
        ]
    );
    // A destroyed image named in a dedicated allocation.
    gpu.destroy_image(other);
    assert_eq!(
        gpu.allocate_memory(&dedicated(other, req.size)),
        Err(REFUSED)
    );
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::BufferUseAfterDestroy {
            buffer: other.resource(),
            operation: Operation::Allocate
        }]
    );
    release_all(&gpu);
}

#[test]
fn images_beside_linear_buffers_respect_the_granularity() {
    let gpu = DummyDevice::mobile(); // granularity 4096
    let granularity = gpu.limits().buffer_image_granularity;
    assert_eq!(granularity, 4096);
    let memory = alloc(&gpu, 0, MIB);
    let (image, req) = gpu.create_image(&texture(20, 20)).expect("image");
    assert!(!req.size.is_multiple_of(granularity), "{req:?}");
    gpu.bind_image_memory(image, memory, 0).expect("bind");
    // A linear buffer on the page after the image's last byte: fine.
    buffer_at(&gpu, memory, req.size.next_multiple_of(granularity), 256);
    gpu.assert_no_misuse();
    // One right after the image, on its last page: a conflict, reported with the image's
    // resource handle.
    let linear = buffer_at(&gpu, memory, req.size, 64);
    let misuses = gpu.take_misuses();
    assert_eq!(
        misuses,
        [Misuse::GranularityConflict {
            memory,
            linear,
            optimal: image.resource(),
            page_offset: 0
        }]
    );
    // The report names the image as one, the buffer as a buffer.
    let text = misuses[0].to_string();
    let image_name = format!("image#{}@dev", image.index());
    let linear_name = format!("buffer#{}@dev", linear.index());
    assert!(
        text.contains(&image_name) && text.contains(&linear_name),
        "{text}"
    );
    // Destroying twice is caught like a buffer's.
    gpu.destroy_image(image);
    gpu.destroy_image(image);
    assert_eq!(
        gpu.take_misuses(),
        [Misuse::BufferDestroyedTwice {
            buffer: image.resource()
        }]
    );
    release_all(&gpu);
}

#[test]
fn a_live_image_is_in_the_leak_report() {
    let gpu = DummyDevice::new(DeviceConfig::discrete().with_report_leaks_on_drop(false))
        .expect("device");
    let (image, req) = gpu.create_image(&texture(64, 64)).expect("image");
    let memory = alloc(&gpu, 0, req.size);
    gpu.bind_image_memory(image, memory, 0).expect("bind");
    let report = gpu.leak_report();
    assert_eq!(report.buffers.len(), 1);
    let leaked = &report.buffers[0];
    assert_eq!(leaked.buffer, image.resource());
    assert!(leaked.buffer.is_image());
    let text = report.to_string();
    assert!(
        text.contains("0 buffers and 1 images still alive"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  image#{}@dev", image.index())),
        "{text}"
    );
    assert!(leaked.optimal);
    assert_eq!(leaked.size, 64 * 64 * 4);
    assert_eq!(leaked.bound_to, Some((memory, 0)));
    gpu.destroy_image(image);
    gpu.free_memory(memory);
    assert!(gpu.leak_report().is_empty());
}

#[test]
fn attachments_beyond_the_framebuffer_extent_are_refused_before_the_image_limits() {
    // A device whose framebuffers are smaller than its largest 2D image, as some mobile GPUs
    // report: a texture may be 8192 wide, a render target only 4096x2048.
    let gpu = DummyDevice::new(
        DeviceConfig::discrete()
            .with_max_image_dimensions(8192, 2048, 256)
            .with_max_framebuffer_extent(4096, 2048),
    )
    .expect("device");
    assert_eq!(gpu.config().max_framebuffer_width, 4096);
    let beyond = Err(DeviceError::InvalidImage(
        ImageDescError::AttachmentBeyondFramebuffer {
            max_width: 4096,
            max_height: 2048,
        },
    ));
    let target =
        |width, height, usage| ImageDesc::new_2d(ImageFormat::Rgba8Unorm, width, height, usage);
    // Each attachment bit is bounded (VUID-VkImageCreateInfo-usage-00964, -00965).
    for usage in [
        ImageUsage::COLOR_ATTACHMENT,
        ImageUsage::COLOR_ATTACHMENT | ImageUsage::TRANSIENT_ATTACHMENT,
        ImageUsage::INPUT_ATTACHMENT | ImageUsage::SAMPLED,
    ] {
        assert_eq!(
            gpu.create_image(&target(4097, 16, usage)),
            beyond,
            "{usage:?}"
        );
        assert_eq!(
            gpu.create_image(&target(16, 2049, usage)),
            beyond,
            "{usage:?}"
        );
        let (image, _) = gpu
            .create_image(&target(4096, 2048, usage))
            .expect("at the framebuffer limit");
        gpu.destroy_image(image);
    }
    let depth = ImageDesc::new_2d(
        ImageFormat::D32Float,
        16,
        2049,
        ImageUsage::DEPTH_STENCIL_ATTACHMENT,
    );
    assert_eq!(ImageDevice::create_image(&gpu, &depth), beyond);
    // The same extents without attachment usage are textures, bounded by the image limits only.
    let (image, _) = gpu
        .create_image(&target(8192, 8192, ImageUsage::SAMPLED))
        .expect("a texture wider than any framebuffer");
    gpu.destroy_image(image);
    assert_eq!(
        gpu.create_image(&target(8193, 1, ImageUsage::SAMPLED)),
        Err(DeviceError::InvalidImage(ImageDescError::Unsupported))
    );
    // Layers are not bounded by the framebuffer at image creation.
    let (image, _) = gpu
        .create_image(&target(64, 64, ImageUsage::COLOR_ATTACHMENT).with_array_layers(256))
        .expect("a layered target");
    gpu.destroy_image(image);
    assert_eq!(gpu.counters().live_buffers, 0);
    gpu.assert_no_misuse();
}

/// `create_image` refuses `desc` with exactly `ImageDescError::Unsupported`, and the refusal
/// leaves no trace: no call counted, nothing created.
fn assert_refused_unsupported(gpu: &DummyDevice, desc: &ImageDesc) {
    let before = gpu.counters();
    assert_eq!(
        gpu.create_image(desc).err(),
        Some(DeviceError::InvalidImage(ImageDescError::Unsupported)),
        "{desc:?}"
    );
    assert_eq!(gpu.counters(), before, "{desc:?}");
    assert!(gpu.live_buffers().is_empty(), "{desc:?}");
}

#[test]
fn images_larger_in_all_than_the_max_resource_size_are_unsupported() {
    use memkit_dummy::{MIN_MAX_RESOURCE_SIZE, Preset};

    const GIB: u64 = 1 << 30;
    let rgba32f = |width, height| {
        ImageDesc::new_2d(
            ImageFormat::Rgba32Float,
            width,
            height,
            ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
        )
    };
    // (preset, its maxResourceSize, the largest image of rows of 16384 Rgba32Float texels
    // within it). Each is within the preset's extents and layers; one more row of each layer
    // takes it over the size alone.
    let cases = [
        // NVIDIA: 1 TiB, exactly 256 layers of 16384^2 x 16 bytes.
        (
            Preset::Discrete,
            1 << 40,
            rgba32f(16384, 16384).with_array_layers(256),
        ),
        (
            Preset::ResizableBar,
            1 << 40,
            rgba32f(16384, 16384).with_array_layers(256),
        ),
        // Vulkan's least, 2 GiB: exactly 16384 x 8192 x 16 bytes.
        (
            Preset::Integrated,
            MIN_MAX_RESOURCE_SIZE,
            rgba32f(16384, 8192),
        ),
        (Preset::Mobile, MIN_MAX_RESOURCE_SIZE, rgba32f(16384, 8192)),
        // lavapipe: 4 GiB less a byte, so the 16384^2 texture (4 GiB) is over by one byte and
        // one row less fits.
        (Preset::Lavapipe, u64::from(u32::MAX), rgba32f(16384, 16383)),
    ];
    for (preset, max_size, largest) in cases {
        let gpu = DummyDevice::new(preset.config()).expect("preset");
        assert_eq!(gpu.config().max_image_resource_size, max_size, "{preset}");
        let granularity = gpu.limits().buffer_image_granularity;
        let estimate = largest.estimated_resource_size(granularity).unwrap();
        assert!(estimate <= max_size, "{preset}: {estimate}");
        let (image, req) = gpu
            .create_image(&largest)
            .unwrap_or_else(|e| panic!("{preset}: {largest:?}: {e}"));
        assert!(req.size >= estimate, "{preset}: {req:?}");
        gpu.destroy_image(image);
        let row_over = ImageDesc {
            height: largest.height + 1,
            ..largest
        };
        assert_refused_unsupported(&gpu, &row_over);
        gpu.assert_no_misuse();
    }
    // The texture of the user trial: created on lavapipe with a validation warning before
    // memkit-vulkan refused it, and now refused on the dummy's lavapipe too.
    let lavapipe = DummyDevice::new(DeviceConfig::lavapipe()).expect("device");
    assert_refused_unsupported(&lavapipe, &rgba32f(16384, 16384));

    // A limit set by hand, at the exact byte: 4 GiB is the whole 16384^2 texture.
    let gpu = DummyDevice::new(DeviceConfig::discrete().with_max_image_resource_size(4 * GIB))
        .expect("device");
    let (image, _) = gpu
        .create_image(&rgba32f(16384, 16384))
        .expect("exactly at the limit");
    gpu.destroy_image(image);
    assert_refused_unsupported(&gpu, &rgba32f(16384, 16385));
    // Mip levels, layers and samples count towards the size.
    assert_refused_unsupported(&gpu, &rgba32f(16384, 16384).with_mip_levels(2));
    assert_refused_unsupported(&gpu, &rgba32f(16384, 8192).with_array_layers(3));
    let msaa = ImageDesc::new_2d(
        ImageFormat::Rgba32Float,
        16384,
        8192,
        ImageUsage::COLOR_ATTACHMENT,
    );
    let (image, _) = gpu.create_image(&msaa).expect("one sample");
    gpu.destroy_image(image);
    assert_refused_unsupported(&gpu, &msaa.with_samples(4));

    // The size is rounded up to bufferImageGranularity (1024 on this preset) first: 9 bytes
    // take 1024.
    let tiny = ImageDesc::new_2d(ImageFormat::R8Unorm, 3, 3, ImageUsage::SAMPLED);
    let gpu = DummyDevice::new(DeviceConfig::discrete().with_max_image_resource_size(1023))
        .expect("device");
    assert_refused_unsupported(&gpu, &tiny);
    let gpu = DummyDevice::new(DeviceConfig::discrete().with_max_image_resource_size(1024))
        .expect("device");
    let (image, req) = gpu.create_image(&tiny).expect("one granularity page");
    assert_eq!(req.size, 256);
    gpu.destroy_image(image);
    gpu.assert_no_misuse();
}

#[test]
fn images_whose_size_overflows_are_unsupported_not_a_panic() {
    // Every other limit as high as it goes, so only the size can refuse them.
    let gpu = DummyDevice::new(
        DeviceConfig::discrete()
            .with_max_image_dimensions(u32::MAX, u32::MAX, u32::MAX)
            .with_image_sample_counts(0b111_1111)
            .with_max_image_resource_size(u64::MAX),
    )
    .expect("device");
    let widest = |format| {
        ImageDesc::new_2d(format, u32::MAX, u32::MAX, ImageUsage::SAMPLED)
            .with_array_layers(u32::MAX)
    };
    // Texels, bytes, layers and levels each past a u64.
    for desc in [
        widest(ImageFormat::Rgba32Float),
        widest(ImageFormat::R8Unorm).with_full_mip_chain(),
        ImageDesc::new_2d(
            ImageFormat::R8Unorm,
            u32::MAX,
            u32::MAX,
            ImageUsage::SAMPLED,
        )
        .with_array_layers(2),
        ImageDesc {
            depth: u32::MAX,
            ..ImageDesc::new_2d(
                ImageFormat::Rgba8Unorm,
                u32::MAX,
                u32::MAX,
                ImageUsage::STORAGE,
            )
        },
        ImageDesc::new_2d(
            ImageFormat::Rgba32Float,
            u32::MAX,
            u32::MAX,
            ImageUsage::COLOR_ATTACHMENT,
        )
        .with_samples(64),
    ] {
        assert_eq!(desc.validate(), Ok(()), "{desc:?}");
        assert_refused_unsupported(&gpu, &desc);
    }
    // Just below the overflow the same device makes its requirements (never bound).
    let (image, _) = gpu
        .create_image(&ImageDesc::new_2d(
            ImageFormat::R8Unorm,
            u32::MAX,
            1 << 20,
            ImageUsage::SAMPLED,
        ))
        .expect("4 PiB, within u64");
    gpu.destroy_image(image);
    gpu.assert_no_misuse();
}

#[test]
fn the_support_check_answers_as_creation_would_and_creates_nothing() {
    use memkit_core::device::AstcBlock;
    let sampled = ImageUsage::SAMPLED;
    let descs = [
        texture(256, 256),
        ImageDesc::new_2d(ImageFormat::Bc7Srgb, 256, 256, sampled),
        ImageDesc::new_2d(ImageFormat::AstcSrgb(AstcBlock::B6x6), 256, 256, sampled),
        ImageDesc::new_2d(
            ImageFormat::D24UnormS8Uint,
            64,
            64,
            ImageUsage::DEPTH_STENCIL_ATTACHMENT,
        ),
        ImageDesc::new_cube(ImageFormat::Rgba16Float, 512, sampled),
        // Invalid: zero extent, depth format as colour, a cube that is not square.
        texture(0, 4),
        ImageDesc::new_2d(ImageFormat::D32Float, 8, 8, ImageUsage::COLOR_ATTACHMENT),
        ImageDesc {
            height: 8,
            ..ImageDesc::new_cube(ImageFormat::R8Unorm, 16, sampled)
        },
        // Beyond the limits: the 2D extent, the framebuffer, the layer count.
        texture(40_000, 4),
        ImageDesc::new_2d(
            ImageFormat::Rgba8Unorm,
            40_000,
            4,
            ImageUsage::COLOR_ATTACHMENT,
        ),
        texture(4, 4).with_array_layers(4096),
    ];
    for config in [DeviceConfig::discrete(), DeviceConfig::mobile()] {
        let name = config.name.clone();
        let gpu = DummyDevice::new(config).expect("device");
        let mut supported = 0;
        for desc in &descs {
            let answer = gpu.check_image_support(desc);
            assert_eq!(
                gpu.counters().live_buffers,
                0,
                "{name}: {desc:?}: checking created"
            );
            match gpu.create_image(desc) {
                Ok((image, _)) => {
                    assert_eq!(answer, Ok(()), "{name}: {desc:?}");
                    supported += 1;
                    gpu.destroy_image(image);
                }
                Err(e) => assert_eq!(answer, Err(e), "{name}: {desc:?}"),
            }
        }
        // RGBA8, the compressed format of the family the preset samples, D24S8 and the cube.
        assert_eq!(supported, 4, "{name}");
        gpu.assert_no_misuse();
        gpu.lose_device();
        assert_eq!(
            gpu.check_image_support(&descs[0]),
            Err(DeviceError::DeviceLost)
        );
    }
}
