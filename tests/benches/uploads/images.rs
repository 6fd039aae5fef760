//! Texture uploads (`--only images`): [`TEXTURES`] 2048x2048 `Rgba8Unorm` textures with their full
//! mip chain (about 21.3 MiB each, 682 MiB in all; `--quick`: 8 of 256x256), measured against
//! the raw copy of the same bytes on the same device in the same run:
//!
//! - the CPU's limit: the texels copied into mapped host-visible memory (touched before), from 1
//!   and 4 threads, no GPU work: an upload from that many threads cannot beat it;
//! - raw: one pre-filled host-visible staging buffer, every texture's levels copied into
//!   pre-created device-local images in one submission, waited: on memkit-vulkan's transfer queue
//!   (`submit_image_copies`: a barrier, one `vkCmdCopyBufferToImage` per image, a barrier), and
//!   recorded by hand with ash on the main queue; and one `vkCmdCopyBuffer` of the same byte count
//!   into a device-local buffer, for reference;
//! - memkit: `Coordinator::create_image_with_data` for every texture from bytes in a `Vec`, every
//!   ticket waited (image creation, pool memory, the CPU copy into staging and the copy: end to
//!   end), from 1 and 4 threads; and `Coordinator::upload_image` re-uploads of level 0 into the
//!   existing images;
//! - the naive path: per texture, a staging buffer of its own (`vkAllocateMemory`), the CPU
//!   copy, one submission and a wait, the staging buffer freed.
//!
//! And read-backs of every level of every texture: raw (`submit_image_reads` of them all into one
//! host-visible buffer, one submission, waited), and memkit (`Coordinator::read_back_image` of
//! each, all asked for, then each taken with `Readback::wait_into` into reused memory).
//!
//! Each figure is texel bytes over wall time, median of the repetitions after a warm-up. The
//! first memkit texture's level 0 is read back on the main queue and compared byte for byte.
//!
//! Then the same textures in BC7 (`Bc7Srgb`: 4x4 blocks of 16 bytes, a quarter of the bytes),
//! raw and through memkit's default ring, where the device supports the format: block rows
//! instead of texel rows all the way through.

use std::time::Instant;

use ash::vk;
use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, DedicatedHint, DedicatedTo,
    ImageCopy, ImageCopyCommand, ImageCopyQueue, ImageDesc, ImageDevice, ImageFormat,
    ImageReadCommand, ImageUsage, MemoryAllocateInfo, MemoryDevice, MemoryPropertyFlags,
    WaitStatus,
};
use memkit_std::{Coordinator, CoordinatorConfig, Image, MemoryUsage};
use memkit_tests::bench_report::{Report, gbps, median};
use memkit_tests::workloads::SplitMix64 as Rng;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, VulkanDevice};

use super::{Gpu, MainQueueCopy, Readback, bound, copy_and_wait, pick_type, timed};

/// Textures per run (full size).
const TEXTURES: usize = 32;
/// The name of the coordinator configuration with the read-back cache capped as it was before.
const READ_CACHE: &str = ", read-back cache capped at 128 MiB";
/// Producer threads of the threaded memkit figure.
const THREADS: usize = 4;

/// What every section uploads: `count` textures of `desc`, their texels end to end.
struct Workload {
    desc: ImageDesc,
    count: usize,
    /// `desc.packed_bytes()` bytes per texture, levels in order.
    texels: Vec<u8>,
    /// One texture's regions, reading from offset 0 of its texels.
    regions: Vec<ImageCopy>,
}

impl Workload {
    fn new(quick: bool, format: ImageFormat) -> Self {
        let (size, count) = if quick { (256, 8) } else { (2048, TEXTURES) };
        let desc = ImageDesc::new_2d(
            format,
            size,
            size,
            ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC,
        )
        .with_full_mip_chain();
        let mut regions = Vec::new();
        let mut offset = 0;
        for level in 0..desc.mip_levels {
            let region = ImageCopy::whole_level(&desc, level, offset);
            offset += region.packed_bytes(desc.format).expect("level size");
            regions.push(region);
        }
        let mut texels = vec![0u8; (desc.packed_bytes() as usize) * count];
        Rng::new(53).fill(&mut texels);
        Self {
            desc,
            count,
            texels,
            regions,
        }
    }

    fn per_texture(&self) -> usize {
        self.desc.packed_bytes() as usize
    }

    fn total(&self) -> u64 {
        self.texels.len() as u64
    }

    fn label(&self) -> String {
        let format = match self.desc.format {
            ImageFormat::Rgba8Unorm => "rgba8".to_string(),
            ImageFormat::Bc7Srgb => "bc7".to_string(),
            other => format!("{other:?}"),
        };
        format!(
            "{} x {}x{} {format} + mips",
            self.count, self.desc.width, self.desc.height
        )
    }

    /// Texture `i`'s regions, reading from `base` of a buffer holding every texture end to end.
    fn regions_at(&self, base: u64) -> Vec<ImageCopy> {
        self.regions
            .iter()
            .map(|r| ImageCopy {
                buffer_offset: base + r.buffer_offset,
                ..*r
            })
            .collect()
    }
}

/// A fresh device for one part of the run, so no part inherits another's state.
fn device(validate: bool) -> HeadlessDevice {
    HeadlessDevice::new(HeadlessConfig {
        concurrent_with_main_family: true,
        validation: validate,
        ..HeadlessConfig::default()
    })
    .expect("a Vulkan device")
}

/// The raw copies of `work`, on a device of their own: they submit outside any coordinator's
/// timeline.
fn raw_on_own_device(report: &mut Report, work: &Workload, reps: usize, validate: bool) {
    println!(
        "images: {} ({:.1} MiB each, {:.0} MiB in all)",
        work.label(),
        work.per_texture() as f64 / (1 << 20) as f64,
        work.total() as f64 / (1 << 20) as f64
    );
    let h = device(validate);
    raw(report, &h, work, reps);
    report.failures.extend(
        h.finish()
            .into_iter()
            .map(|m| format!("images validation: {m}")),
    );
}

pub(super) fn run(report: &mut Report, reps: usize, quick: bool, validate: bool) {
    let work = Workload::new(quick, ImageFormat::Rgba8Unorm);
    let reps = reps.max(3);
    raw_on_own_device(report, &work, reps, validate);
    // The default ring (64 MiB, uploads cut at 4 MiB), and a larger one whose uploads are cut at
    // 16 MiB: how much the cut costs. A fresh device each, so no run inherits another's state.
    let big_ring = CoordinatorConfig {
        staging_ring_size: 256 << 20,
        max_ring_upload: 16 << 20,
        ..CoordinatorConfig::default()
    };
    // And, for comparison, a staging buffer per upload: what `BackPressure::DedicatedStaging`
    // does with uploads above the ring's limit.
    let own_staging = CoordinatorConfig {
        max_ring_upload: 1 << 20,
        back_pressure: memkit_std::BackPressure::DedicatedStaging,
        ..CoordinatorConfig::default()
    };
    // And the read-back cache capped at 128 MiB, as it was before it kept what read-backs held
    // at once: 28 of the 32 landing buffers are then made anew in every repetition.
    let read_cache = CoordinatorConfig {
        read_back_cache_bytes: 128 << 20,
        ..super::default_config()
    };
    let mut configs = vec![
        (super::default_config(), String::new()),
        (big_ring, ", 256 MiB ring cut at 16 MiB".to_string()),
        (own_staging, ", a staging buffer per upload".to_string()),
        (read_cache, READ_CACHE.to_string()),
    ];
    // `--image-rings 8,16,32`: smaller rings too (MiB, uploads cut at 4 MiB or half the ring),
    // to see how much the bytes the CPU writes staying in its caches is worth.
    configs.extend(extra_rings().into_iter().map(|mib| {
        let config = CoordinatorConfig {
            staging_ring_size: mib << 20,
            max_ring_upload: (4 << 20).min(mib << 19),
            ..CoordinatorConfig::default()
        };
        (config, format!(", {mib} MiB ring"))
    }));
    for (config, which) in configs {
        let gpu = Gpu::new(device(validate));
        memkit(report, &gpu, config, which.as_str(), &work, reps);
    }
    ratios(report, &work.label());

    // BC7, where the device has it: raw, and memkit on the default ring.
    let bc7 = Workload::new(quick, ImageFormat::Bc7Srgb);
    let h = device(validate);
    match h.device().create_image(&bc7.desc) {
        Ok((image, _)) => {
            // SAFETY: just created, never bound or used.
            unsafe { h.device().destroy_image(image) };
            report.failures.extend(
                h.finish()
                    .into_iter()
                    .map(|m| format!("images validation: {m}")),
            );
            raw_on_own_device(report, &bc7, reps, validate);
            let gpu = Gpu::new(device(validate));
            memkit(report, &gpu, super::default_config(), "", &bc7, reps);
            let gpu = Gpu::new(device(validate));
            memkit(report, &gpu, read_cache, READ_CACHE, &bc7, reps);
            ratios(report, &bc7.label());
        }
        Err(e) => {
            println!("images: {} skipped: {e}", bc7.label());
            report.failures.extend(
                h.finish()
                    .into_iter()
                    .map(|m| format!("images validation: {m}")),
            );
        }
    }
}

/// The same-run ratios of `label`'s figures: memkit against the CPU's copy limit, and every
/// figure against the raw image copy.
fn ratios(report: &mut Report, label: &str) {
    // Against the CPU's own limit at the same thread count.
    for threads in [1, THREADS] {
        let cpu = report.get(&format!(
            "8. CPU copy into mapped staging, {threads} thread(s), {label}"
        ));
        let memkit = report.get(&format!(
            "8. memkit create_image_with_data, {threads} thread(s), {label}"
        ));
        if let (Some(cpu), Some(memkit)) = (cpu, memkit) {
            report.add(
                &format!(
                    "8. memkit create_image_with_data, {threads} thread(s) / CPU copy, {label}"
                ),
                memkit / cpu,
                "x",
                "same run",
            );
        }
    }
    let read = report.get(&format!(
        "8. memkit read_back_image every level, wait_into, {label}"
    ));
    let raw_read = report.get(&format!("8. raw image read-back, transfer queue, {label}"));
    let cached = report.get(&format!(
        "8. memkit read_back_image every level, wait_into{READ_CACHE}, {label}"
    ));
    for (read, which) in [(read, ""), (cached, READ_CACHE)] {
        if let (Some(read), Some(raw_read)) = (read, raw_read) {
            report.add(
                &format!(
                    "8. memkit read_back_image every level, wait_into{which} / raw image \
                     read-back, {label}"
                ),
                read / raw_read,
                "x",
                "same run",
            );
        }
    }
    if let Some(raw) = report.get(&format!("8. raw image copy, transfer queue, {label}")) {
        for name in [
            format!("8. CPU copy into mapped staging, 1 thread(s), {label}"),
            format!("8. CPU copy into mapped staging, {THREADS} thread(s), {label}"),
            format!("8. raw image copy, main queue (ash), {label}"),
            format!("8. raw buffer copy of the same bytes, {label}"),
            format!("8. memkit create_image_with_data, 1 thread(s), {label}"),
            format!("8. memkit create_image_with_data, {THREADS} thread(s), {label}"),
            format!("8. memkit upload_image level 0 re-uploads, {label}"),
            format!("8. naive staging + submit + wait per texture, {label}"),
        ] {
            if let Some(v) = report.get(&name) {
                report.add(
                    &format!("{name} / raw image copy"),
                    v / raw,
                    "x",
                    "same run",
                );
            }
        }
    }
}

/// The ring sizes (MiB) `--image-rings` lists, none without it.
fn extra_rings() -> Vec<u64> {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--image-rings") else {
        return Vec::new();
    };
    args.get(i + 1)
        .map_or("", String::as_str)
        .split(',')
        .filter_map(|v| v.parse().ok())
        .filter(|&mib: &u64| mib > 0)
        .collect()
}

/// An image bound to device-local memory of its own.
struct RawImage {
    image: vk::Image,
    memory: vk::DeviceMemory,
}

fn raw_image(device: &VulkanDevice, desc: &ImageDesc) -> RawImage {
    let (image, req) = device.create_image(desc).expect("image");
    let info = MemoryAllocateInfo {
        size: req.size,
        memory_type: pick_type(
            device.memory_properties(),
            req.memory_type_bits,
            MemoryPropertyFlags::DEVICE_LOCAL,
            MemoryPropertyFlags::HOST_VISIBLE,
        ),
        dedicated_to: (req.dedicated != DedicatedHint::None).then_some(DedicatedTo::Image(image)),
        priority: 0.5,
        device_address: false,
    };
    // SAFETY: a type the requirements allow, dedicated to the image when the driver asks.
    let memory = unsafe { device.allocate_memory(&info) }.expect("image memory");
    // SAFETY: offset 0 of an object of the required size; the image is unbound.
    unsafe { device.bind_image_memory(image, memory, 0) }.expect("bind image");
    RawImage { image, memory }
}

/// The bus limit for images, and the naive path.
fn raw(report: &mut Report, h: &HeadlessDevice, work: &Workload, reps: usize) {
    let device = h.device();
    let label = work.label();
    let total = work.total();
    let staging = bound(device, total, BufferUsage::TRANSFER_SRC, true);
    // 0. the CPU's limit: the texels copied into this mapped staging memory (written once
    // before, so no first touch is timed), from 1 and THREADS threads, no GPU work. No upload
    // from that many threads can go faster than its copy into staging.
    // SAFETY: host-visible, coherent, not mapped elsewhere; unmapped below before any copy.
    let mapped = unsafe { device.map_memory(staging.memory) }.expect("map staging");
    // SAFETY: the mapping covers `total` bytes and nothing else reads or writes it while the
    // slice lives (no copy is submitted before the unmap below).
    let target = unsafe { std::slice::from_raw_parts_mut(mapped.as_ptr(), work.texels.len()) };
    target.copy_from_slice(&work.texels);
    for threads in [1, THREADS] {
        let per_thread = work.texels.len().div_ceil(threads);
        let t = timed(reps, || {
            std::thread::scope(|s| {
                for (to, from) in target
                    .chunks_mut(per_thread)
                    .zip(work.texels.chunks(per_thread))
                {
                    s.spawn(move || to.copy_from_slice(from));
                }
            });
        });
        report.add(
            &format!("8. CPU copy into mapped staging, {threads} thread(s), {label}"),
            gbps(total, t),
            "GB/s",
            "memcpy only, memory touched before",
        );
    }
    // The same copy from 1 thread in 4 MiB pieces going round the first `cycle` MiB of the
    // staging memory, as a ring's producer writes: what the bytes the CPU writes staying in its
    // caches is worth (see `StagingRing::with_working_set`).
    for cycle in [8usize, 16, 32, 64, 256].map(|mib| mib << 20) {
        if cycle > target.len() {
            continue;
        }
        let piece = 4 << 20;
        let t = timed(reps, || {
            let mut at = 0;
            for from in work.texels.chunks(piece) {
                if at + from.len() > cycle {
                    at = 0;
                }
                target[at..at + from.len()].copy_from_slice(from);
                at += from.len();
            }
        });
        report.add(
            &format!(
                "8. CPU copy into mapped staging, 4 MiB pieces round {} MiB, {label}",
                cycle >> 20
            ),
            gbps(total, t),
            "GB/s",
            "memcpy only, 1 thread",
        );
    }
    // SAFETY: the slice above is no longer used.
    unsafe { device.unmap_memory(staging.memory) };
    let images: Vec<RawImage> = (0..work.count)
        .map(|_| raw_image(device, &work.desc))
        .collect();
    let regions: Vec<Vec<ImageCopy>> = (0..work.count)
        .map(|i| work.regions_at((i * work.per_texture()) as u64))
        .collect();

    // 1. memkit-vulkan's transfer queue: every image in one submission.
    let commands: Vec<ImageCopyCommand<'_, vk::Buffer, vk::Image>> = images
        .iter()
        .zip(&regions)
        .map(|(image, regions)| ImageCopyCommand {
            src: staging.buffer,
            dst: image.image,
            desc: work.desc,
            keep_contents: false,
            regions,
        })
        .collect();
    let submit_and_wait = |commands: &[ImageCopyCommand<'_, vk::Buffer, vk::Image>]| {
        let value = device.last_submitted_value() + 1;
        // SAFETY: the staging buffer and images are alive and bound until the wait below; each
        // region's source lies inside the staging buffer and the boxes are whole, distinct
        // levels; the host writes are done (coherent memory); nothing else uses the images;
        // discarding contents is always allowed.
        unsafe { device.submit_image_copies(commands, value) }.expect("submit image copies");
        assert_eq!(
            device.wait(value, u64::MAX).expect("wait"),
            WaitStatus::Completed
        );
    };
    let t = timed(reps, || submit_and_wait(&commands));
    report.add(
        &format!("8. raw image copy, transfer queue, {label}"),
        gbps(total, t),
        "GB/s",
        "one submission, pre-filled staging",
    );

    // 1b. the read-back's bus limit: every level of every image copied into one host-visible
    // buffer in one submission on memkit-vulkan's transfer queue (`submit_image_reads`), waited.
    let download = bound(device, total, BufferUsage::TRANSFER_DST, true);
    let reads: Vec<ImageReadCommand<'_, vk::Buffer, vk::Image>> = images
        .iter()
        .zip(&regions)
        .map(|(image, regions)| ImageReadCommand {
            src: image.image,
            desc: work.desc,
            dst: download.buffer,
            regions,
        })
        .collect();
    let t = timed(reps, || {
        let value = device.last_submitted_value() + 1;
        // SAFETY: the images were uploaded whole above (their layout is the one after upload)
        // and nothing else uses them; the download buffer holds every region, none overlapping;
        // both stay alive past the wait below.
        unsafe { device.submit_image_reads(&reads, value) }.expect("submit image reads");
        assert_eq!(
            device.wait(value, u64::MAX).expect("wait"),
            WaitStatus::Completed
        );
    });
    report.add(
        &format!("8. raw image read-back, transfer queue, {label}"),
        gbps(total, t),
        "GB/s",
        "one submission into host-visible memory, waited",
    );
    // SAFETY: every read into it was waited.
    unsafe {
        device.destroy_buffer(download.buffer);
        device.free_memory(download.memory);
    }

    // 2. by hand on the main queue.
    let main = MainQueueCopy::new(h);
    let whole = vk::ImageSubresourceRange {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        base_mip_level: 0,
        level_count: vk::REMAINING_MIP_LEVELS,
        base_array_layer: 0,
        layer_count: vk::REMAINING_ARRAY_LAYERS,
    };
    let vk_regions: Vec<Vec<vk::BufferImageCopy>> = regions
        .iter()
        .map(|rs| {
            rs.iter()
                .map(|r| vk::BufferImageCopy {
                    buffer_offset: r.buffer_offset,
                    buffer_row_length: 0,
                    buffer_image_height: 0,
                    image_subresource: vk::ImageSubresourceLayers {
                        aspect_mask: vk::ImageAspectFlags::COLOR,
                        mip_level: r.mip_level,
                        base_array_layer: r.base_array_layer,
                        layer_count: r.layer_count,
                    },
                    image_offset: vk::Offset3D {
                        x: r.offset[0] as i32,
                        y: r.offset[1] as i32,
                        z: r.offset[2] as i32,
                    },
                    image_extent: vk::Extent3D {
                        width: r.extent[0],
                        height: r.extent[1],
                        depth: r.extent[2],
                    },
                })
                .collect()
        })
        .collect();
    let t = timed(reps, || {
        // SAFETY: every earlier submission on either queue was waited; the images are
        // concurrent with the main family and unused by anything else; the staging buffer holds
        // every region's texels.
        unsafe {
            main.record_and_submit(h, |d, cmd| {
                let to_dst: Vec<vk::ImageMemoryBarrier<'_>> = images
                    .iter()
                    .map(|i| {
                        vk::ImageMemoryBarrier::default()
                            .src_access_mask(vk::AccessFlags::MEMORY_WRITE)
                            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                            .old_layout(vk::ImageLayout::UNDEFINED)
                            .new_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
                            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
                            .image(i.image)
                            .subresource_range(whole)
                    })
                    .collect();
                d.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::DependencyFlags::empty(),
                    &[],
                    &[],
                    &to_dst,
                );
                for (image, regions) in images.iter().zip(&vk_regions) {
                    d.cmd_copy_buffer_to_image(
                        cmd,
                        staging.buffer,
                        image.image,
                        vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                        regions,
                    );
                }
                let to_read: Vec<vk::ImageMemoryBarrier<'_>> = to_dst
                    .iter()
                    .map(|b| {
                        b.src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                            .dst_access_mask(vk::AccessFlags::SHADER_READ)
                            .old_layout(vk::ImageLayout::TRANSFER_DST_OPTIMAL)
                            .new_layout(vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL)
                    })
                    .collect();
                d.cmd_pipeline_barrier(
                    cmd,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::DependencyFlags::empty(),
                    &[],
                    &[],
                    &to_read,
                );
            })
        };
        main.wait(h);
    });
    main.destroy(h);
    report.add(
        &format!("8. raw image copy, main queue (ash), {label}"),
        gbps(total, t),
        "GB/s",
        "one submission, pre-filled staging",
    );

    // 3. the same bytes as one buffer copy.
    let target = bound(device, total, BufferUsage::TRANSFER_DST, false);
    let whole_copy = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: total,
    }];
    let cmd = [CopyCommand {
        src: staging.buffer,
        dst: target.buffer,
        regions: &whole_copy,
    }];
    let t = timed(reps, || copy_and_wait(device, &cmd));
    report.add(
        &format!("8. raw buffer copy of the same bytes, {label}"),
        gbps(total, t),
        "GB/s",
        "vkCmdCopyBuffer, transfer queue",
    );

    // 4. naive: a staging buffer per texture, submit and wait per texture.
    let per = work.per_texture();
    let local: Vec<ImageCopy> = work.regions_at(0);
    let t = timed(reps, || {
        for (i, image) in images.iter().enumerate() {
            let staging = bound(device, per as u64, BufferUsage::TRANSFER_SRC, true);
            // SAFETY: host-visible, coherent, fresh; the GPU reads it only after this write.
            unsafe {
                let mapped = device.map_memory(staging.memory).expect("map");
                std::ptr::copy_nonoverlapping(
                    work.texels[i * per..].as_ptr(),
                    mapped.as_ptr(),
                    per,
                );
                device.unmap_memory(staging.memory);
            }
            submit_and_wait(&[ImageCopyCommand {
                src: staging.buffer,
                dst: image.image,
                desc: work.desc,
                keep_contents: false,
                regions: &local,
            }]);
            // SAFETY: the copy reading it was waited.
            unsafe {
                device.destroy_buffer(staging.buffer);
                device.free_memory(staging.memory);
            }
        }
    });
    report.add(
        &format!("8. naive staging + submit + wait per texture, {label}"),
        gbps(total, t),
        "GB/s",
        "vkAllocateMemory + memcpy + submit + wait each",
    );

    // SAFETY: every copy was waited.
    unsafe {
        for b in [staging, target] {
            device.destroy_buffer(b.buffer);
            device.free_memory(b.memory);
        }
        for i in images {
            device.destroy_image(i.image);
            device.free_memory(i.memory);
        }
    }
}

/// Every texture created with its data from `threads` threads, every ticket waited.
fn create_all(coordinator: &Coordinator<Gpu>, work: &Workload, threads: usize) -> Vec<Image<Gpu>> {
    let per = work.per_texture();
    let n = work.count;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * n / threads..(t + 1) * n / threads)
                        .map(|i| {
                            coordinator
                                .create_image_with_data(
                                    &work.desc,
                                    MemoryUsage::FAST_DEVICE_ACCESS,
                                    &work.texels[i * per..(i + 1) * per],
                                )
                                .expect("create_image_with_data")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut images = Vec::with_capacity(n);
        for h in handles {
            for (image, ticket) in h.join().expect("producer") {
                ticket.wait().expect("wait");
                images.push(image);
            }
        }
        images
    })
}

fn memkit(
    report: &mut Report,
    gpu: &Gpu,
    config: CoordinatorConfig,
    which: &str,
    work: &Workload,
    reps: usize,
) {
    let label = work.label();
    let total = work.total();
    let coordinator = Coordinator::new(gpu.clone(), config).expect("coord");
    for threads in [1, THREADS] {
        let t = timed(reps, || drop(create_all(&coordinator, work, threads)));
        report.add(
            &format!("8. memkit create_image_with_data, {threads} thread(s){which}, {label}"),
            gbps(total, t),
            "GB/s",
            "create + pool memory + CPU copy + copy, all waited",
        );
    }
    let images = create_all(&coordinator, work, 1);
    if which.is_empty() {
        check_level0(report, gpu, work, &images[0]);
    }
    if which.is_empty() || which == READ_CACHE {
        read_backs(report, &coordinator, which, work, &images, reps);
    }

    let per = work.per_texture();
    let level0 = [work.regions[0]];
    let level0_bytes = work.regions[1].buffer_offset as usize;
    let before = coordinator.stats();
    let faults_before = minor_faults();
    let mut calls = Vec::new();
    let t = timed(reps, || {
        let start = Instant::now();
        let tickets: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                coordinator
                    .upload_image(
                        image,
                        &level0,
                        &work.texels[i * per..i * per + level0_bytes],
                    )
                    .expect("upload_image")
            })
            .collect();
        calls.push(start.elapsed().as_secs_f64());
        for ticket in tickets {
            ticket.wait().expect("wait");
        }
    });
    report.add(
        &format!("8. memkit upload_image level 0 re-uploads{which}, {label}"),
        gbps((level0_bytes * work.count) as u64, t),
        "GB/s",
        "level 0 only, into existing images, 1 thread",
    );
    let after = coordinator.stats();
    let faults = minor_faults().saturating_sub(faults_before);
    println!(
        "images{which}: re-uploads' calls take {:.1} ms of {:.1} ms (medians); per \
             repetition {:.1} submissions, {:.1} stalls, {:.0} minor page faults; ring high \
             water {} MiB, written up to {} MiB, {} early wraps",
        median(calls) * 1e3,
        t * 1e3,
        (after.submissions - before.submissions) as f64 / (reps + 1) as f64,
        (after.stalls - before.stalls) as f64 / (reps + 1) as f64,
        faults as f64 / (reps + 1) as f64,
        after.ring.high_water_mark >> 20,
        after.ring.bytes_reached >> 20,
        after.ring.early_wraps,
    );
    if which.is_empty() {
        padded_reuploads(report, gpu, &coordinator, work, &images, reps);
    }
}

/// Every level of every texture read back with `Coordinator::read_back_image`: all asked for,
/// then each taken with `Readback::wait_into` into memory of the caller's (reused), the first
/// one's texels compared with what it was created with.
fn read_backs(
    report: &mut Report,
    coordinator: &Coordinator<Gpu>,
    which: &str,
    work: &Workload,
    images: &[Image<Gpu>],
    reps: usize,
) {
    let label = work.label();
    let per = work.per_texture();
    let mut out = vec![0u8; work.texels.len()];
    let t = timed(reps, || {
        let reads: Vec<_> = images
            .iter()
            .map(|image| {
                coordinator
                    .read_back_image(image, &work.regions)
                    .expect("read_back_image")
            })
            .collect();
        for (read, out) in reads.iter().zip(out.chunks_mut(per)) {
            read.wait_into(out).expect("wait_into");
        }
    });
    if out[..per] != work.texels[..per] {
        report
            .failures
            .push(format!("images: texture 0 read back differs ({label})"));
    }
    report.add(
        &format!("8. memkit read_back_image every level, wait_into{which}, {label}"),
        gbps(work.total(), t),
        "GB/s",
        "all asked for, then each taken into reused memory",
    );
}

/// Level 0 re-uploaded out of pictures twice its width (`bufferRowLength` = 2 x width: a
/// texture cut from an atlas, or rows padded by the decoder), against the packed re-uploads of
/// the same run: what reading the caller's rows one at a time and staging them packed costs.
fn padded_reuploads(
    report: &mut Report,
    gpu: &Gpu,
    coordinator: &Coordinator<Gpu>,
    work: &Workload,
    images: &[Image<Gpu>],
    reps: usize,
) {
    let label = work.label();
    let [width, _, _] = work.regions[0].extent;
    // Rows of texel blocks: texel rows for RGBA8, rows of 4x4 blocks for BC7.
    let [_, height, _] = work.desc.format.blocks(work.regions[0].extent);
    let row = work.regions[0]
        .buffer_pitches(work.desc.format)
        .expect("pitches")[0] as usize;
    let per = work.per_texture();
    let picture = 2 * row * height as usize;
    // Each texture's level-0 rows in the left half of its own picture; the right half is noise.
    let mut pictures = vec![0u8; picture * work.count];
    Rng::new(59).fill(&mut pictures);
    for (i, out) in pictures.chunks_mut(picture).enumerate() {
        let level0 = &work.texels[i * per..];
        for (y, rows) in out.chunks_mut(2 * row).enumerate() {
            rows[..row].copy_from_slice(&level0[y * row..(y + 1) * row]);
        }
    }
    let region = [ImageCopy::whole_level(&work.desc, 0, 0).with_buffer_layout(2 * width, 0)];
    let t = timed(reps, || {
        let tickets: Vec<_> = images
            .iter()
            .zip(pictures.chunks(picture))
            .map(|(image, texels)| {
                coordinator
                    .upload_image(image, &region, texels)
                    .expect("upload_image")
            })
            .collect();
        for ticket in tickets {
            ticket.wait().expect("wait");
        }
    });
    let name =
        format!("8. memkit upload_image level 0 re-uploads from rows twice as long, {label}");
    report.add(
        &name,
        gbps((row * height as usize * work.count) as u64, t),
        "GB/s",
        "level 0 texels (not the skipped half), 1 thread",
    );
    let packed = report.get(&format!(
        "8. memkit upload_image level 0 re-uploads, {label}"
    ));
    if let (Some(padded), Some(packed)) = (report.get(&name), packed) {
        report.add(
            &format!("{name} / packed"),
            padded / packed,
            "x",
            "same run",
        );
    }
    // The texels are the packed ones: level 0 reads back the same.
    check_level0(report, gpu, work, &images[0]);
}

/// The process's minor page faults so far (Linux; 0 elsewhere): field 10 of `/proc/self/stat`.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis don't.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7))
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// Reads level 0 of `image` back on the main queue and compares it with the texels it was
/// created with.
fn check_level0(report: &mut Report, h: &HeadlessDevice, work: &Workload, image: &Image<Gpu>) {
    let readback = Readback::new(h);
    let [width, height, _] = work.desc.level_extent(0);
    let bytes = work.regions[0]
        .packed_bytes(work.desc.format)
        .expect("level 0") as usize;
    let range = vk::ImageSubresourceRange {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    };
    let barrier = |from, to, src, dst| {
        [vk::ImageMemoryBarrier::default()
            .src_access_mask(src)
            .dst_access_mask(dst)
            .old_layout(from)
            .new_layout(to)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(image.raw())
            .subresource_range(range)]
    };
    // SAFETY: the image's upload was waited (its ticket); it is concurrent with the main family,
    // has TRANSFER_SRC usage and is in SHADER_READ_ONLY_OPTIMAL, where this leaves it; the
    // readback buffer holds more than level 0.
    unsafe {
        readback.copy.record_and_submit(h, |d, cmd| {
            d.cmd_pipeline_barrier(
                cmd,
                vk::PipelineStageFlags::ALL_COMMANDS,
                vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &[],
                &[],
                &barrier(
                    vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
                    vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                    vk::AccessFlags::MEMORY_WRITE,
                    vk::AccessFlags::TRANSFER_READ,
                ),
            );
            d.cmd_copy_image_to_buffer(
                cmd,
                image.raw(),
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                readback.host.buffer(),
                &[vk::BufferImageCopy {
                    buffer_offset: 0,
                    buffer_row_length: 0,
                    buffer_image_height: 0,
                    image_subresource: vk::ImageSubresourceLayers {
                        aspect_mask: vk::ImageAspectFlags::COLOR,
                        mip_level: 0,
                        base_array_layer: 0,
                        layer_count: 1,
                    },
                    image_offset: vk::Offset3D::default(),
                    image_extent: vk::Extent3D {
                        width,
                        height,
                        depth: 1,
                    },
                }],
            );
            d.cmd_pipeline_barrier(
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::ALL_COMMANDS | vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &[vk::MemoryBarrier::default()
                    .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                    .dst_access_mask(vk::AccessFlags::HOST_READ)],
                &[],
                &barrier(
                    vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                    vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
                    vk::AccessFlags::empty(),
                    vk::AccessFlags::SHADER_READ,
                ),
            );
        });
    }
    readback.copy.wait(h);
    // SAFETY: the copy into it completed and was made visible to the host.
    let seen = unsafe { readback.host.read(h.device()) }.expect("read back");
    if seen[..bytes] != work.texels[..bytes] {
        let wrong = seen[..bytes]
            .iter()
            .zip(&work.texels[..bytes])
            .filter(|(a, b)| a != b)
            .count();
        report.failures.push(format!(
            "images: {wrong} bytes of texture 0's level 0 wrong on readback"
        ));
    } else {
        println!("images: texture 0 level 0 read back byte for byte ({bytes} bytes)");
    }
    readback.destroy(h);
}
