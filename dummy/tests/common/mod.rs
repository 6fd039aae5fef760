//! Helpers shared by the integration tests: allocate, bind, copy in one line each.
#![allow(dead_code)] // Each test binary uses a different subset.

use memkit_core::device::{BufferCopy, BufferUsage, CopyCommand, MemoryAllocateInfo};
use memkit_dummy::{DummyBuffer, DummyDevice, DummyImage, DummyMemory};

/// Copy source and destination.
pub const XFER: BufferUsage = BufferUsage::TRANSFER_SRC.union(BufferUsage::TRANSFER_DST);

pub fn info(memory_type: u32, size: u64) -> MemoryAllocateInfo<DummyBuffer, DummyImage> {
    MemoryAllocateInfo {
        size,
        memory_type,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    }
}

pub fn alloc(gpu: &DummyDevice, memory_type: u32, size: u64) -> DummyMemory {
    gpu.allocate_memory(&info(memory_type, size))
        .expect("allocation")
}

/// A transfer buffer of `size` bound at `offset`.
pub fn buffer_at(gpu: &DummyDevice, memory: DummyMemory, offset: u64, size: u64) -> DummyBuffer {
    let (buffer, _) = gpu.create_buffer(size, XFER).expect("buffer");
    gpu.bind_buffer_memory(buffer, memory, offset)
        .expect("bind");
    buffer
}

/// Memory of `memory_type` with one transfer buffer over all of it; mapped if `map`.
pub fn backed_buffer(
    gpu: &DummyDevice,
    memory_type: u32,
    size: u64,
    map: bool,
) -> (DummyMemory, DummyBuffer) {
    let memory = alloc(gpu, memory_type, size);
    let buffer = buffer_at(gpu, memory, 0, size);
    if map {
        gpu.map_memory(memory).expect("map");
    }
    (memory, buffer)
}

/// Submits one command with one region.
pub fn copy(
    gpu: &DummyDevice,
    src: DummyBuffer,
    dst: DummyBuffer,
    src_offset: u64,
    dst_offset: u64,
    size: u64,
    signal: u64,
) {
    let regions = [BufferCopy {
        src_offset,
        dst_offset,
        size,
    }];
    gpu.submit_copies(
        &[CopyCommand {
            src,
            dst,
            regions: &regions,
        }],
        signal,
    )
    .expect("submit");
}

/// Destroys every live buffer and frees every live object.
pub fn release_all(gpu: &DummyDevice) {
    for buffer in gpu.live_buffers() {
        gpu.destroy_buffer(buffer);
    }
    for memory in gpu.live_memory() {
        gpu.free_memory(memory);
    }
}
