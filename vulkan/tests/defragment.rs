//! A defragmentation pass on a real driver, under validation, done as an engine does it: the
//! pools choose the sparse blocks and give each allocation in them a new place; the application
//! makes a new buffer there, copies the bytes with `vkCmdCopyBuffer`, waits, destroys the old
//! buffer and frees its allocation. The emptied blocks go back to the driver, and every buffer
//! still holds its bytes.

mod common;

use common::{AppCommands, MappedBuffer, Pools, finish, headless, pattern, tlsf_pools};
use memkit_core::device::{BufferDevice, BufferUsage};
use memkit_core::pool::{
    AllocationRequest, DefragmentationLimits, DeviceAllocation, PoolConfig, Relocation,
};
use memkit_core::{MemoryUsage, ResourceKind};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessDevice, VulkanDevice};

const MIB: u64 = 1 << 20;
/// Buffers made, four to a block.
const BUFFERS: usize = 24;

/// A buffer the application holds, with the memory the pools gave it.
struct AppBuffer {
    buffer: vk::Buffer,
    allocation: DeviceAllocation<vk::DeviceMemory>,
    alignment: u64,
    /// Which pattern it holds.
    seed: u8,
}

fn usage() -> BufferUsage {
    BufferUsage::TRANSFER_SRC | BufferUsage::TRANSFER_DST | BufferUsage::STORAGE
}

/// A 1 MiB buffer bound to memory from the pools.
fn create_buffer(device: &VulkanDevice, pools: &mut Pools<'_>, seed: u8) -> AppBuffer {
    let (buffer, requirements) = device.create_buffer(MIB, usage()).unwrap();
    let request = AllocationRequest::new(requirements, MemoryUsage::FAST_DEVICE_ACCESS)
        .with_kind(ResourceKind::Linear);
    let allocation = pools.allocate(&request).unwrap();
    // SAFETY: the buffer is alive and unbound; the range suits its requirements.
    unsafe { device.bind_buffer_memory(buffer, allocation.memory(), allocation.offset()) }.unwrap();
    AppBuffer {
        buffer,
        allocation,
        alignment: requirements.alignment,
        seed,
    }
}

/// Makes the copies recorded before it visible to the transfers (and, with `host`, the host
/// reads) after it.
fn transfer_barrier(h: &HeadlessDevice, cmd: vk::CommandBuffer, host: bool) {
    let (dst_stage, dst_access) = if host {
        (vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ)
    } else {
        (
            vk::PipelineStageFlags::TRANSFER,
            vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE,
        )
    };
    let barrier = vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(dst_access);
    // SAFETY: recording; a global memory barrier.
    unsafe {
        h.ash_device().cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::TRANSFER,
            dst_stage,
            vk::DependencyFlags::empty(),
            &[barrier],
            &[],
            &[],
        )
    };
}

fn copy(h: &HeadlessDevice, cmd: vk::CommandBuffer, src: vk::Buffer, dst: vk::Buffer) {
    let region = vk::BufferCopy::default().size(MIB);
    // SAFETY: recording; both buffers are alive, bound and 1 MiB long.
    unsafe { h.ash_device().cmd_copy_buffer(cmd, src, dst, &[region]) };
}

/// Every buffer's bytes, read back through one host-visible buffer.
fn read_all(h: &HeadlessDevice, app: &AppCommands, buffers: &[AppBuffer]) -> Vec<Vec<u8>> {
    let device = h.device();
    let readback = MappedBuffer::new(
        device,
        MIB * buffers.len() as u64,
        BufferUsage::TRANSFER_DST,
    );
    app.begin(h);
    transfer_barrier(h, app.cmd, false);
    for (i, b) in buffers.iter().enumerate() {
        let region = vk::BufferCopy::default()
            .dst_offset(i as u64 * MIB)
            .size(MIB);
        // SAFETY: recording; both buffers are alive and bound.
        unsafe {
            h.ash_device()
                .cmd_copy_buffer(app.cmd, b.buffer, readback.buffer, &[region])
        };
    }
    transfer_barrier(h, app.cmd, true);
    app.submit_and_wait(h, None);
    let bytes = readback.read(device);
    readback.destroy(device);
    bytes.chunks(MIB as usize).map(<[u8]>::to_vec).collect()
}

#[test]
fn a_pass_empties_sparse_blocks_and_every_buffer_keeps_its_bytes() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let config = PoolConfig {
        first_block_size: 4 * MIB,
        preferred_block_size: Some(4 * MIB),
        ..PoolConfig::DEFAULT
    };
    let mut pools = tlsf_pools(device, config, 16);
    let app = AppCommands::new(&h);

    // Buffers filled with their own pattern through a staging buffer.
    let mut buffers: Vec<AppBuffer> = (0..BUFFERS)
        .map(|i| create_buffer(device, &mut pools, i as u8 + 1))
        .collect();
    let objects_full = device.live_memory_objects();
    assert_eq!(
        objects_full,
        BUFFERS as u32 / 4,
        "four 1 MiB buffers per 4 MiB block"
    );
    let staging = MappedBuffer::new(device, MIB * BUFFERS as u64, BufferUsage::TRANSFER_SRC);
    for b in &buffers {
        let offset = u64::from(b.seed - 1) * MIB;
        staging.write(device, offset, &pattern(MIB as usize, b.seed));
    }
    app.begin(&h);
    for b in &buffers {
        let region = vk::BufferCopy::default()
            .src_offset(u64::from(b.seed - 1) * MIB)
            .size(MIB);
        // SAFETY: recording; both buffers are alive and bound.
        unsafe {
            h.ash_device()
                .cmd_copy_buffer(app.cmd, staging.buffer, b.buffer, &[region])
        };
    }
    app.submit_and_wait(&h, None);
    staging.destroy(device);

    // Two in three go: every block is left a quarter or half full.
    let (kept, gone): (Vec<_>, Vec<_>) = buffers.drain(..).partition(|b| b.seed % 3 == 1);
    buffers = kept;
    for b in gone {
        // SAFETY: the copies into it completed (waited above).
        unsafe {
            device.destroy_buffer(b.buffer);
            pools.free(b.allocation).unwrap();
        }
    }
    assert_eq!(device.live_memory_objects(), objects_full);
    let block_bytes_before = pools.total_stats().block_bytes;

    // The pass: new buffers where the pools say, the bytes copied on the GPU.
    let plan = pools
        .begin_defragmentation(&DefragmentationLimits::UNLIMITED)
        .unwrap();
    assert!(plan.blocks >= 2, "{plan:?}");
    let mut old = Vec::new();
    app.begin(&h);
    transfer_barrier(&h, app.cmd, false);
    for b in &mut buffers {
        let Relocation::Move(new) = pools.relocate(&b.allocation, b.alignment).unwrap() else {
            continue;
        };
        let (buffer, requirements) = device.create_buffer(MIB, usage()).unwrap();
        assert_eq!(requirements.alignment, b.alignment);
        assert_eq!(new.offset() % requirements.alignment, 0);
        // SAFETY: the new buffer is alive and unbound; the range suits its requirements.
        unsafe { device.bind_buffer_memory(buffer, new.memory(), new.offset()) }.unwrap();
        copy(&h, app.cmd, b.buffer, buffer);
        let moved = AppBuffer {
            buffer,
            allocation: new,
            alignment: b.alignment,
            seed: b.seed,
        };
        old.push(std::mem::replace(b, moved));
    }
    app.submit_and_wait(&h, None);
    assert_eq!(old.len() as u32, plan.allocations);
    for b in old {
        // SAFETY: the copy out of it completed (waited above), and nothing else uses it.
        unsafe {
            device.destroy_buffer(b.buffer);
            pools.free(b.allocation).unwrap();
        }
    }
    let report = pools.end_defragmentation();
    assert_eq!(report.moves, plan.allocations);
    assert_eq!(report.no_room, 0);
    assert_eq!(report.blocks_released, plan.blocks);
    assert_eq!(device.live_memory_objects(), objects_full - plan.blocks);
    assert_eq!(
        pools.total_stats().block_bytes,
        block_bytes_before - report.bytes_released
    );

    // Every buffer, moved or not, holds its own bytes.
    for (b, bytes) in buffers.iter().zip(read_all(&h, &app, &buffers)) {
        assert!(
            bytes == pattern(MIB as usize, b.seed),
            "buffer {} lost its bytes",
            b.seed
        );
    }
    for b in buffers {
        // SAFETY: every copy completed (waited above).
        unsafe {
            device.destroy_buffer(b.buffer);
            pools.free(b.allocation).unwrap();
        }
    }
    app.destroy(&h);
    // SAFETY: everything was freed, and the GPU is idle.
    let teardown = unsafe { pools.destroy() };
    assert!(teardown.is_clean(), "{teardown:?}");
    finish(h);
}
