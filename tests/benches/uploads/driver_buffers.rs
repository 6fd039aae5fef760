//! Section 7's driver rows: what creating and destroying a 64 KiB buffer costs in the driver
//! alone, with no memory, asked the way memkit asks and the way the peers' benchmark asks, and
//! what one 256 MiB memory block costs to make and free. With them, the section's per-buffer
//! figures split into driver time and memkit's own (`cargo bench --bench pools -- --buffers`
//! measures memkit's own time on a device whose calls are free).

use std::time::Instant;

use ash::vk;
use memkit_core::device::{
    BufferDevice, BufferUsage, MemoryAllocateInfo, MemoryDevice, MemoryPropertyFlags,
};
use memkit_tests::bench_report::{Report, median};
use memkit_vulkan::HeadlessDevice;

use super::pick_type;

/// The usages `memkit_std::Coordinator` creates every buffer with.
const COORDINATOR_USAGE: BufferUsage = memkit_std::BUFFER_USAGE;

/// The same, as Vulkan flags.
fn coordinator_flags() -> vk::BufferUsageFlags {
    vk::BufferUsageFlags::from_raw(COORDINATOR_USAGE.bits())
}

/// The usages of the peers' buffers in this benchmark (`peers::buffer_info`).
fn peer_flags() -> vk::BufferUsageFlags {
    vk::BufferUsageFlags::TRANSFER_DST | vk::BufferUsageFlags::STORAGE_BUFFER
}

/// One raw variant: the usage, whether the buffer is shared concurrently between memkit's
/// transfer family and the main family (as memkit-vulkan creates them on this device), and
/// whether requirements are asked with `vkGetBufferMemoryRequirements2` and a
/// `VkMemoryDedicatedRequirements` (memkit) or with `vkGetBufferMemoryRequirements`
/// (gpu-allocator's benchmark path).
struct Variant {
    name: &'static str,
    usage: vk::BufferUsageFlags,
    concurrent: bool,
    requirements2: bool,
}

/// Times `count` creations (with the requirements query) then `count` destructions, `reps`
/// times; the median microseconds per buffer.
fn time_buffers(
    reps: usize,
    count: usize,
    mut create: impl FnMut() -> vk::Buffer,
    mut destroy: impl FnMut(vk::Buffer),
) -> f64 {
    let mut per_buffer = Vec::new();
    for _ in 0..=reps {
        let s = Instant::now();
        let buffers: Vec<vk::Buffer> = (0..count).map(|_| create()).collect();
        for b in buffers {
            destroy(b);
        }
        per_buffer.push(s.elapsed().as_secs_f64() / count as f64);
    }
    // The first round warms the driver's object caches.
    per_buffer.remove(0);
    median(per_buffer) * 1e6
}

/// The driver rows.
pub fn run(report: &mut Report, h: &HeadlessDevice, reps: usize, count: usize) {
    let device = h.device();
    let raw = h.ash_device();
    let size = 64 << 10;

    // memkit-vulkan's own call, with the coordinator's usages: exactly what it asks the driver.
    let t = time_buffers(
        reps,
        count,
        || {
            device
                .create_buffer(size, COORDINATOR_USAGE)
                .expect("buffer")
                .0
        },
        // SAFETY: never bound nor used by the GPU.
        |b| unsafe { device.destroy_buffer(b) },
    );
    let sharing = if device.transfer_queue().family == h.main_queue().family {
        "exclusive (one family)"
    } else {
        "concurrent between the transfer and main families"
    };
    report.add(
        "7. driver only: memkit-vulkan create_buffer + destroy_buffer",
        t,
        "us",
        &format!(
            "{count} buffers, no memory: the coordinator's 7 usages, requirements2, {sharing}"
        ),
    );

    let families = {
        let mut f = vec![device.transfer_queue().family, h.main_queue().family];
        f.dedup();
        f
    };
    let variants = [
        Variant {
            name: "7 usages, exclusive, requirements2",
            usage: coordinator_flags(),
            concurrent: false,
            requirements2: true,
        },
        Variant {
            name: "7 usages, exclusive, requirements",
            usage: coordinator_flags(),
            concurrent: false,
            requirements2: false,
        },
        Variant {
            name: "2 usages, concurrent, requirements2",
            usage: peer_flags(),
            concurrent: true,
            requirements2: true,
        },
        Variant {
            name: "2 usages, exclusive, requirements (peers)",
            usage: peer_flags(),
            concurrent: false,
            requirements2: false,
        },
    ];
    for v in &variants {
        if v.concurrent && families.len() < 2 {
            continue;
        }
        let mut info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(v.usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        if v.concurrent {
            info = info
                .sharing_mode(vk::SharingMode::CONCURRENT)
                .queue_family_indices(&families);
        }
        let t = time_buffers(
            reps,
            count,
            || {
                // SAFETY: a valid create info on a live device.
                let b = unsafe { raw.create_buffer(&info, None) }.expect("buffer");
                if v.requirements2 {
                    let mut dedicated = vk::MemoryDedicatedRequirements::default();
                    let mut out = vk::MemoryRequirements2::default().push_next(&mut dedicated);
                    let query = vk::BufferMemoryRequirementsInfo2::default().buffer(b);
                    // SAFETY: the buffer is alive; the device is Vulkan 1.1 or later.
                    unsafe { raw.get_buffer_memory_requirements2(&query, &mut out) };
                    let _ = std::hint::black_box(out.memory_requirements);
                } else {
                    // SAFETY: the buffer is alive.
                    let _ = std::hint::black_box(unsafe { raw.get_buffer_memory_requirements(b) });
                }
                b
            },
            // SAFETY: never bound nor used by the GPU.
            |b| unsafe { raw.destroy_buffer(b, None) },
        );
        report.add(
            &format!("7. driver only: {}", v.name),
            t,
            "us",
            &format!("{count} buffers: vkCreateBuffer + requirements + vkDestroyBuffer"),
        );
    }

    // One block as the pools and the peers make them: 256 MiB of device-local memory.
    let block = 256 << 20;
    let (probe, req) = device
        .create_buffer(size, COORDINATOR_USAGE)
        .expect("buffer");
    // SAFETY: never bound nor used by the GPU.
    unsafe { device.destroy_buffer(probe) };
    let info = MemoryAllocateInfo {
        size: block,
        memory_type: pick_type(
            device.memory_properties(),
            req.memory_type_bits,
            MemoryPropertyFlags::DEVICE_LOCAL,
            MemoryPropertyFlags::HOST_VISIBLE,
        ),
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    let mut per_block = Vec::new();
    for _ in 0..=reps {
        let s = Instant::now();
        // SAFETY: a type the requirements allow.
        let memory = match unsafe { device.allocate_memory(&info) } {
            Ok(memory) => memory,
            Err(e) => {
                report
                    .failures
                    .push(format!("7. driver: a 256 MiB block: {e:?}"));
                return;
            }
        };
        // SAFETY: allocated above, never bound nor mapped.
        unsafe { device.free_memory(memory) };
        per_block.push(s.elapsed().as_secs_f64());
    }
    per_block.remove(0);
    report.add(
        "7. driver: one 256 MiB block, vkAllocateMemory + vkFreeMemory",
        median(per_block) * 1e6,
        "us",
        "what each block a round makes again costs",
    );
}
