//! What the device can tell a test about itself: counters and the leak report.
#![forbid(unsafe_code)]

use std::fmt;

use memkit_core::device::BufferUsage;

use crate::handles::{DummyBuffer, DummyMemory};

/// Running totals of device calls and GPU work. Copies, regions and bytes count work the
/// simulated GPU executed, not work merely submitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// `allocate_memory` calls, failed ones included.
    pub allocation_calls: u64,
    /// Memory objects allocated.
    pub allocations: u64,
    /// `allocate_memory` calls that returned an error.
    pub failed_allocations: u64,
    /// Memory objects freed.
    pub frees: u64,
    /// `map_memory` calls, failed ones included.
    pub map_calls: u64,
    /// Successful maps.
    pub maps: u64,
    /// Unmaps.
    pub unmaps: u64,
    /// `flush_ranges` calls.
    pub flush_calls: u64,
    /// Ranges flushed.
    pub flushed_ranges: u64,
    /// `invalidate_ranges` calls.
    pub invalidate_calls: u64,
    /// Ranges invalidated.
    pub invalidated_ranges: u64,
    /// `create_buffer` (and optimal resource) calls, failed ones included.
    pub buffer_creation_calls: u64,
    /// Buffers and optimal resources created.
    pub buffers_created: u64,
    /// Buffers destroyed.
    pub buffers_destroyed: u64,
    /// Bind calls (buffers, images and optimal resources, aliased or not), failed ones included.
    pub bind_calls: u64,
    /// Successful binds.
    pub binds: u64,
    /// `submit_copies` and `submit_image_copies` calls, failed ones included (not those refused
    /// for a lost device or a region failing `ImageCopy::check`).
    pub submit_calls: u64,
    /// Submissions accepted.
    pub submissions: u64,
    /// Submissions the GPU executed.
    pub executed_submissions: u64,
    /// Copy commands executed (buffer copies and uploads into images).
    pub copies: u64,
    /// Copy regions executed (buffer and image regions).
    pub regions: u64,
    /// Bytes copied by executed regions (for an image region, its packed source bytes).
    pub bytes_copied: u64,
    /// Misuse events recorded.
    pub misuses: u64,
    /// Memory objects alive now.
    pub live_memory_objects: u64,
    /// Most memory objects alive at once.
    pub peak_memory_objects: u64,
    /// Buffers alive now.
    pub live_buffers: u64,
}

/// A memory object alive when the report was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedMemory {
    /// The object.
    pub memory: DummyMemory,
    /// Its memory type.
    pub memory_type: u32,
    /// Bytes.
    pub size: u64,
    /// Whether it is still mapped.
    pub mapped: bool,
    /// Whether it was a dedicated allocation.
    pub dedicated: bool,
    /// The label the test set, if any.
    pub label: Option<String>,
}

/// A buffer (or an image, whose `buffer` handle [`is_image`](DummyBuffer::is_image)) alive when
/// the report was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedBuffer {
    /// The buffer.
    pub buffer: DummyBuffer,
    /// Bytes asked for.
    pub size: u64,
    /// Usage.
    pub usage: BufferUsage,
    /// Whether it is an optimal (image-like) resource.
    pub optimal: bool,
    /// The memory and offset it is bound to.
    pub bound_to: Option<(DummyMemory, u64)>,
    /// The label the test set, if any.
    pub label: Option<String>,
}

/// Everything still alive on a device: what leaks if the device goes away now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeakReport {
    /// The device's name.
    pub device: String,
    /// Live memory objects, in allocation order.
    pub memory: Vec<LeakedMemory>,
    /// Live buffers and images, in creation order.
    pub buffers: Vec<LeakedBuffer>,
}

impl LeakReport {
    /// Whether nothing is alive.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.buffers.is_empty()
    }

    /// Bytes of live memory objects.
    pub fn memory_bytes(&self) -> u64 {
        self.memory.iter().map(|m| m.size).sum()
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "{}: nothing leaked", self.device);
        }
        let images = self.buffers.iter().filter(|b| b.buffer.is_image()).count();
        write!(
            f,
            "{}: {} memory objects ({} bytes) and {} buffers",
            self.device,
            self.memory.len(),
            self.memory_bytes(),
            self.buffers.len() - images
        )?;
        if images > 0 {
            write!(f, " and {images} images")?;
        }
        writeln!(f, " still alive")?;
        for m in &self.memory {
            writeln!(
                f,
                "  {} type {} {} bytes{}{} label {:?}",
                m.memory,
                m.memory_type,
                m.size,
                if m.mapped { " mapped" } else { "" },
                if m.dedicated { " dedicated" } else { "" },
                m.label.as_deref().unwrap_or("-"),
            )?;
        }
        for b in &self.buffers {
            write!(
                f,
                "  {} {} bytes {:?}{}",
                b.buffer,
                b.size,
                b.usage,
                if b.optimal { " optimal" } else { "" }
            )?;
            if let Some((memory, offset)) = b.bound_to {
                write!(f, " bound to {memory} at {offset}")?;
            }
            writeln!(f, " label {:?}", b.label.as_deref().unwrap_or("-"))?;
        }
        Ok(())
    }
}
