//! Copy throughput and submission cost through memkit-vulkan's `CopyQueue`, on the best device
//! the loader finds (set `VK_DRIVER_FILES` to choose). Validation off.
//!
//!     cargo run --release -p memkit-vulkan --example copy_bench [-- --quick]
//!
//! Prints medians of several runs: a 256 MiB copy, 65536 regions of 4 KiB and of 256 B in one
//! command, one submit-and-wait per 4 KiB copy, pipelined small submissions (and the command
//! buffers they needed), and vkAllocateMemory/vkFreeMemory of 64 KiB.

use std::time::Instant;

use memkit_core::device::{
    BufferCopy, BufferDevice, BufferUsage, CopyCommand, CopyQueue, MemoryAllocateInfo,
    MemoryDevice, MemoryPropertyFlags, WaitStatus,
};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, VulkanDevice};

struct Bound {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
}

/// The first type allowed by `bits` with `want` and, if possible, without `avoid`.
fn pick_type(
    device: &VulkanDevice,
    bits: u32,
    want: MemoryPropertyFlags,
    avoid: MemoryPropertyFlags,
) -> u32 {
    let types = device.memory_properties().types();
    let ok = |i: usize| bits & (1 << i) != 0 && types[i].properties.contains(want);
    (0..types.len())
        .find(|&i| ok(i) && !types[i].properties.intersects(avoid))
        .or_else(|| (0..types.len()).find(|&i| ok(i)))
        .expect("a memory type") as u32
}

fn bound(device: &VulkanDevice, size: u64, usage: BufferUsage, host: bool) -> Bound {
    let (buffer, req) = device.create_buffer(size, usage).expect("buffer");
    let memory_type = if host {
        pick_type(
            device,
            req.memory_type_bits,
            MemoryPropertyFlags::HOST_VISIBLE | MemoryPropertyFlags::HOST_COHERENT,
            MemoryPropertyFlags::DEVICE_LOCAL,
        )
    } else {
        pick_type(
            device,
            req.memory_type_bits,
            MemoryPropertyFlags::DEVICE_LOCAL,
            MemoryPropertyFlags::HOST_VISIBLE,
        )
    };
    let info = MemoryAllocateInfo {
        size: req.size,
        memory_type,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    // SAFETY: type allowed by the requirements; the buffer is alive and unbound.
    let memory = unsafe { device.allocate_memory(&info) }.expect("memory");
    // SAFETY: offset 0 of an object of the required size.
    unsafe { device.bind_buffer_memory(buffer, memory, 0) }.expect("bind");
    Bound { buffer, memory }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Submits `commands` with the next value and waits; returns seconds.
fn timed_copy(device: &VulkanDevice, commands: &[CopyCommand<'_, vk::Buffer>]) -> f64 {
    let value = device.last_submitted_value() + 1;
    let start = Instant::now();
    // SAFETY: buffers alive and bound with the transfer usages; regions inside them.
    unsafe { device.submit_copies(commands, value) }.expect("submit");
    assert_eq!(
        device.wait(value, u64::MAX).expect("wait"),
        WaitStatus::Completed
    );
    start.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 3 } else { 7 };
    let h = HeadlessDevice::new(HeadlessConfig::default()).expect("a Vulkan device");
    let device = h.device();
    let report = device.probe().expect("probe");
    println!(
        "device: {} ({}), copies on family {:?}, timeline semaphore: {}",
        report.device_name,
        report.device_type,
        report.transfer_family,
        device.timeline_semaphore().is_some()
    );

    let big: u64 = 256 << 20;
    let staging = bound(device, big, BufferUsage::TRANSFER_SRC, true);
    let target = bound(device, big, BufferUsage::TRANSFER_DST, false);
    // SAFETY: host-visible, not mapped; filled once so the copies move real bytes.
    unsafe {
        let ptr = device.map_memory(staging.memory).expect("map");
        std::ptr::write_bytes(ptr.as_ptr(), 0xA5, big as usize);
        device.unmap_memory(staging.memory);
    }

    let whole = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: big,
    }];
    let cmd = [CopyCommand {
        src: staging.buffer,
        dst: target.buffer,
        regions: &whole,
    }];
    timed_copy(device, &cmd);
    let t = median((0..runs).map(|_| timed_copy(device, &cmd)).collect());
    println!(
        "one 256 MiB copy: {:.1} GB/s ({:.2} ms)",
        big as f64 / t / 1e9,
        t * 1e3
    );

    for region in [4096u64, 256] {
        let count = 65536u64;
        // Scattered: region i lands at slot (i * 40503) mod count, a permutation.
        let regions: Vec<BufferCopy> = (0..count)
            .map(|i| BufferCopy {
                src_offset: i * region,
                dst_offset: (i * 40503 % count) * region,
                size: region,
            })
            .collect();
        let cmd = [CopyCommand {
            src: staging.buffer,
            dst: target.buffer,
            regions: &regions,
        }];
        timed_copy(device, &cmd);
        let t = median((0..runs).map(|_| timed_copy(device, &cmd)).collect());
        println!(
            "65536 regions of {region} B in one command: {:.2} GB/s, {:.2} us per region",
            (count * region) as f64 / t / 1e9,
            t / count as f64 * 1e6
        );
    }

    let small = [BufferCopy {
        src_offset: 0,
        dst_offset: 0,
        size: 4096,
    }];
    let cmd = [CopyCommand {
        src: staging.buffer,
        dst: target.buffer,
        regions: &small,
    }];
    let n = if quick { 200 } else { 2000 };
    let t = median(
        (0..runs)
            .map(|_| (0..n).map(|_| timed_copy(device, &cmd)).sum::<f64>() / n as f64)
            .collect(),
    );
    println!(
        "one submit + wait per 4 KiB copy: {:.1} us per copy",
        t * 1e6
    );

    let in_flight = 8;
    let n = if quick { 2000 } else { 20000 };
    let before = device.command_buffer_count();
    let start = Instant::now();
    for _ in 0..n {
        let value = device.last_submitted_value() + 1;
        // SAFETY: as in `timed_copy`.
        unsafe { device.submit_copies(&cmd, value) }.expect("submit");
        if value > in_flight {
            device.wait(value - in_flight, u64::MAX).expect("wait");
        }
    }
    device
        .wait(device.last_submitted_value(), u64::MAX)
        .expect("wait");
    let t = start.elapsed().as_secs_f64();
    println!(
        "pipelined 4 KiB submissions, {in_flight} in flight: {:.1} us per submission; command buffers {} -> {}",
        t / n as f64 * 1e6,
        before,
        device.command_buffer_count()
    );

    let (probe_buffer, req) = device
        .create_buffer(64 << 10, BufferUsage::TRANSFER_DST)
        .expect("buffer");
    let info = MemoryAllocateInfo {
        size: 64 << 10,
        memory_type: pick_type(
            device,
            req.memory_type_bits,
            MemoryPropertyFlags::DEVICE_LOCAL,
            MemoryPropertyFlags::empty(),
        ),
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    let n = if quick { 200 } else { 2000 };
    let mut alloc = Vec::new();
    let mut free = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        // SAFETY: a valid type and size.
        let objects: Vec<_> = (0..n)
            .map(|_| unsafe { device.allocate_memory(&info) }.expect("allocate"))
            .collect();
        alloc.push(start.elapsed().as_secs_f64() / n as f64);
        let start = Instant::now();
        for m in objects {
            // SAFETY: unused.
            unsafe { device.free_memory(m) };
        }
        free.push(start.elapsed().as_secs_f64() / n as f64);
    }
    println!(
        "vkAllocateMemory / vkFreeMemory of 64 KiB: {:.1} / {:.1} us",
        median(alloc) * 1e6,
        median(free) * 1e6
    );

    // SAFETY: every copy completed (waited above); nothing uses these any more.
    unsafe {
        device.destroy_buffer(probe_buffer);
        for b in [staging, target] {
            device.destroy_buffer(b.buffer);
            device.free_memory(b.memory);
        }
    }
}
