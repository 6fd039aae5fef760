//! The transfer scheduler: turns committed uploads (a source range in the staging ring, a
//! destination buffer and offset) into few, large copy regions grouped by destination buffer.
//!
//! It never touches bytes, only ranges. Per plan it:
//! - resolves overlapping writes so that the later upload wins on every byte and the destination
//!   ranges it emits are disjoint (Vulkan requires that within one copy command);
//! - merges uploads whose source and destination are both contiguous into one region: on NVIDIA
//!   every region costs ~3 us of copy-engine time whatever its size (`shared/GPU.md`), so merging
//!   is what makes thousands of small uploads cheap;
//! - honours a copy alignment without writing a byte outside the ranges it was given: the edges
//!   that cannot be aligned come back as [`UnalignedWrite`]s for the backend to write another way;
//! - cuts each destination's regions into batches of at most
//!   [`SchedulerConfig::max_regions_per_batch`].
//!
//! Which uploads reach it at all is decided before staging by [`route`] (direct writes into
//! host-visible device memory, dedicated staging or chunks for uploads too large for the ring).
//!
//! All queues live in storage the caller provides (arrays, slices, `Vec`s through `AsMut`); a full
//! queue hands the upload back. Planning costs one sort of the pending uploads by destination
//! (already-sorted input is detected in linear time) and one sweep.
//!
//! How a coordinator uses it, per flush:
//!
//! ```
//! use memkit_core::device::CopyCommand;
//! use memkit_core::scheduler::{
//!     BufferKey, DestinationMemory, EMPTY_REGION, LargeUploadPolicy, Route, RouteConfig,
//!     SchedulerConfig, TransferScheduler, Upload, UploadSlot, regions_needed, route,
//! };
//!
//! let routing = RouteConfig::new(64 << 20, 16 << 20, LargeUploadPolicy::Chunks, 1).unwrap();
//! let mut scheduler = TransferScheduler::new(
//!     SchedulerConfig::VULKAN,
//!     [UploadSlot::EMPTY; 64],
//!     [EMPTY_REGION; regions_needed(64, 1)],
//! )
//! .unwrap();
//! // 1. Before staging: pick the path.
//! assert_eq!(route(&routing, DestinationMemory::DeviceOnly, 256), Ok(Route::Ring));
//! // 2. After the ring grant is written and committed: push, in issue order. A full queue
//! //    hands the upload back (`PushError::upload`): plan, submit, push again.
//! let mesh = BufferKey(3);
//! let first = Upload { src_offset: 4096, destination: mesh, dst_offset: 0, size: 256 };
//! let second = Upload { src_offset: 4352, destination: mesh, dst_offset: 256, size: 256 };
//! scheduler.push(first).unwrap();
//! scheduler.push(second).unwrap();
//! // 3. At flush: plan, and record one copy command per batch.
//! let (staging_buffer, mesh_buffer) = (10u32, 11u32); // the backend's buffer handles
//! let plan = scheduler.plan();
//! for batch in plan.batches() {
//!     let command = CopyCommand { src: staging_buffer, dst: mesh_buffer, regions: batch.regions };
//!     assert_eq!(command.regions.len(), 1); // the two uploads merged into one region
//!     assert_eq!(command.regions[0].size, 512);
//! }
//! // With a copy alignment above 1, also write `plan.unaligned_writes()` another way.
//! assert_eq!(plan.unaligned_writes().count(), 0);
//! ```
#![forbid(unsafe_code)]

mod plan;
mod route;
#[cfg(test)]
mod tests;

use core::fmt;

pub use plan::{
    CopyBatch, CopyBatches, TransferPlan, UnalignedCause, UnalignedWrite, UnalignedWrites,
};
pub use route::{DestinationMemory, LargeUploadPolicy, Route, RouteConfig, RouteError, route};

use crate::ConfigError;

/// An opaque key naming a destination buffer. The coordinator maps its buffer handles to keys;
/// uploads with equal keys write the same buffer, and only those are merged and ordered together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BufferKey(pub u64);

/// One committed upload: `size` bytes already written at `src_offset` of the staging ring's
/// buffer, to be copied to `dst_offset` of the buffer `destination`.
///
/// The source range is contiguous (the ring grants contiguous ranges); consecutive uploads may or
/// may not be contiguous with each other, because the ring wraps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Upload {
    /// Offset of the bytes in the staging ring's buffer.
    pub src_offset: u64,
    /// The buffer the bytes go to.
    pub destination: BufferKey,
    /// Offset in the destination buffer.
    pub dst_offset: u64,
    /// Bytes.
    pub size: u64,
}

/// One copy region: the device module's [`BufferCopy`](crate::device::BufferCopy) (the fields
/// of `VkBufferCopy`), so a [`CopyBatch`]'s regions go straight into a
/// [`CopyCommand`](crate::device::CopyCommand).
pub use crate::device::BufferCopy as CopyRegion;

/// An unused region, for building region storage (`[EMPTY_REGION; N]`).
pub const EMPTY_REGION: CopyRegion = CopyRegion {
    src_offset: 0,
    dst_offset: 0,
    size: 0,
};

/// One past a region's last destination byte (`u64::MAX` for a region that runs past the end of
/// the address space, which [`TransferScheduler::push`] never accepts).
pub const fn dst_end(region: &CopyRegion) -> u64 {
    region.dst_offset.saturating_add(region.size)
}

/// How the scheduler shapes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchedulerConfig {
    /// Every copy region's source offset, destination offset and size are multiples of this
    /// (a power of two). `vkCmdCopyBuffer` needs 1; WebGPU-style copies and some consoles need 4.
    pub copy_alignment: u64,
    /// The most regions one copy command (one [`CopyBatch`]) may hold; at least 1.
    pub max_regions_per_batch: u32,
}

impl SchedulerConfig {
    /// `vkCmdCopyBuffer`: no copy alignment, up to 8192 regions per command.
    pub const VULKAN: Self = Self {
        copy_alignment: 1,
        max_regions_per_batch: 8192,
    };
    /// APIs that copy in 4-byte units (WebGPU's `copyBufferToBuffer`, D3D12 on some paths).
    pub const ALIGNED_4: Self = Self {
        copy_alignment: 4,
        max_regions_per_batch: 8192,
    };

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.copy_alignment.is_power_of_two() {
            return Err(ConfigError::NotPowerOfTwo);
        }
        if self.max_regions_per_batch == 0 {
            return Err(ConfigError::InvalidParameter);
        }
        Ok(())
    }
}

/// One pending upload as the scheduler stores it. Opaque: make storage with
/// `[UploadSlot::EMPTY; N]`, `vec![UploadSlot::EMPTY; n]` or `Default`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadSlot {
    /// Pending: the upload's destination. After planning, slot `g` holds group `g`'s destination.
    buffer: BufferKey,
    dst_offset: u64,
    src_offset: u64,
    size: u64,
    /// Pending: issue order (later wins). After planning, slot `g` holds the end index of group
    /// `g`'s copy regions in the region storage.
    seq: u32,
    /// Pending: this slot's position's entry of the sweep's max-heap (a slot index). After
    /// planning, slot `g` holds how many unaligned writes groups `0..=g` produced.
    heap: u32,
}

impl UploadSlot {
    /// An unused slot, for building storage.
    pub const EMPTY: Self = Self {
        buffer: BufferKey(0),
        dst_offset: 0,
        src_offset: 0,
        size: 0,
        seq: 0,
        heap: 0,
    };

    const fn dst_end(&self) -> u64 {
        self.dst_offset + self.size
    }
}

/// Why [`TransferScheduler::push`] refused an upload.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PushErrorKind {
    /// Every upload slot is in use: plan (and submit) what is pending, then push again.
    QueueFull,
    /// The upload's size is zero.
    ZeroSize,
    /// `src_offset + size` or `dst_offset + size` overflows `u64`, or so would the bytes queued
    /// with it.
    RangeOverflow,
}

/// A refused upload, handed back unchanged with the reason. A refused push changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PushError {
    /// Why it was refused.
    pub kind: PushErrorKind,
    /// The upload, as given.
    pub upload: Upload,
}

impl PushError {
    /// The upload, as given.
    pub const fn into_upload(self) -> Upload {
        self.upload
    }
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.upload;
        match self.kind {
            PushErrorKind::QueueFull => {
                f.write_str("the transfer scheduler's upload queue is full")
            }
            PushErrorKind::ZeroSize => f.write_str("upload of zero bytes"),
            PushErrorKind::RangeOverflow => write!(
                f,
                "upload of {} bytes from {} to {} overflows the 64-bit offset range or the queue's byte count",
                u.size, u.src_offset, u.dst_offset
            ),
        }
    }
}

impl core::error::Error for PushError {}

/// Counters since construction. Byte counts are in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedulerStats {
    /// Uploads accepted by `push`.
    pub uploads: u64,
    /// Bytes of the uploads accepted by `push`.
    pub bytes: u64,
    /// Pushes refused because the queue was full.
    pub refused_full: u64,
    /// Plans made.
    pub plans: u64,
    /// Uploads that went into plans (the regions a naive path would issue, one per upload).
    pub uploads_planned: u64,
    /// Regions before merging: maximal pieces of one upload still visible after later writes
    /// overwrote parts of it. Equals `uploads_planned` when nothing overlaps; an upload split in
    /// two by a later one counts twice.
    pub regions_before_merge: u64,
    /// Copy regions emitted, after merging and after cutting off unaligned edges.
    pub copy_regions: u64,
    /// Bytes in copy regions.
    pub copy_bytes: u64,
    /// Unaligned writes emitted (edges the copy alignment does not allow to copy).
    pub unaligned_writes: u64,
    /// Bytes in unaligned writes.
    pub unaligned_bytes: u64,
    /// Bytes of planned uploads that a later upload overwrote (never copied, correctly).
    pub bytes_overwritten: u64,
    /// Copy batches (copy commands) emitted.
    pub batches: u64,
    /// Batches beyond one per destination, cut at `max_regions_per_batch`.
    pub batch_splits: u64,
}

/// Region storage that guarantees planning `upload_capacity` uploads never runs out of room:
/// overlapping uploads leave at most `2n - 1` visible pieces, and with a copy alignment above 1
/// each merged run may add an unaligned head and tail. A `const fn`, for array lengths:
/// `[EMPTY_REGION; regions_needed(64, 1)]`.
pub const fn regions_needed(upload_capacity: usize, copy_alignment: u64) -> usize {
    let pieces = upload_capacity.saturating_mul(2).saturating_sub(1);
    if copy_alignment > 1 {
        pieces.saturating_mul(3)
    } else {
        pieces
    }
}

/// Turns committed uploads into copy batches; see the module documentation.
///
/// `U` holds the pending uploads (its length is the queue capacity) and `R` the planned regions;
/// `R` must hold [`regions_needed`] elements for the capacity, so planning never
/// runs out of room.
///
/// ```
/// use memkit_core::scheduler::{
///     BufferKey, CopyRegion, EMPTY_REGION, SchedulerConfig, TransferScheduler, Upload, UploadSlot,
/// };
///
/// let mut scheduler = TransferScheduler::new(
///     SchedulerConfig::VULKAN,
///     [UploadSlot::EMPTY; 16],
///     [EMPTY_REGION; 31],
/// )
/// .unwrap();
/// let mesh = BufferKey(7);
/// // Two uploads staged back to back, for adjacent destination ranges: one region.
/// let first = Upload { src_offset: 0, destination: mesh, dst_offset: 256, size: 64 };
/// scheduler.push(first).unwrap();
/// let second = Upload { src_offset: 64, destination: mesh, dst_offset: 320, size: 64 };
/// scheduler.push(second).unwrap();
/// let plan = scheduler.plan();
/// let batch = plan.batches().next().unwrap();
/// assert_eq!(batch.destination, mesh);
/// assert_eq!(batch.regions, &[CopyRegion { src_offset: 0, dst_offset: 256, size: 128 }]);
/// ```
pub struct TransferScheduler<U, R> {
    uploads: U,
    regions: R,
    config: SchedulerConfig,
    /// Usable slots of `uploads` (at most `u32::MAX`, the width of the indices kept in slots).
    capacity: usize,
    pending: usize,
    /// Bytes of the pending uploads.
    pending_bytes: u64,
    stats: SchedulerStats,
}

impl<U, R> TransferScheduler<U, R>
where
    U: AsMut<[UploadSlot]>,
    R: AsMut<[CopyRegion]>,
{
    /// The same as the free function [`regions_needed`].
    pub const fn regions_needed(upload_capacity: usize, copy_alignment: u64) -> usize {
        regions_needed(upload_capacity, copy_alignment)
    }

    /// A scheduler over the caller's storage.
    ///
    /// Errors: [`ConfigError::NotPowerOfTwo`] (copy alignment), [`ConfigError::InvalidParameter`]
    /// (zero regions per batch, or no upload slots), [`ConfigError::StorageTooSmall`] (region
    /// storage below [`regions_needed`]).
    pub fn new(
        config: SchedulerConfig,
        mut uploads: U,
        mut regions: R,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let capacity = uploads.as_mut().len().min(u32::MAX as usize);
        if capacity == 0 {
            return Err(ConfigError::InvalidParameter);
        }
        let required = regions_needed(capacity, config.copy_alignment);
        let provided = regions.as_mut().len();
        if provided < required {
            return Err(ConfigError::StorageTooSmall { required, provided });
        }
        if provided > u32::MAX as usize {
            // Region indices are kept in 32-bit slot fields.
            return Err(ConfigError::InvalidParameter);
        }
        Ok(Self {
            uploads,
            regions,
            config,
            capacity,
            pending: 0,
            pending_bytes: 0,
            stats: SchedulerStats::default(),
        })
    }

    /// The configuration.
    pub const fn config(&self) -> SchedulerConfig {
        self.config
    }

    /// How many uploads the queue holds at most.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Uploads pushed since the last plan.
    pub const fn pending(&self) -> usize {
        self.pending
    }

    /// The counters.
    pub const fn stats(&self) -> SchedulerStats {
        self.stats
    }

    /// Queues a committed upload, in issue order: where uploads overlap, the one pushed later
    /// wins. A refused upload comes back in the error, and nothing changes.
    pub fn push(&mut self, upload: Upload) -> Result<(), PushError> {
        let refuse = |kind| Err(PushError { kind, upload });
        if upload.size == 0 {
            return refuse(PushErrorKind::ZeroSize);
        }
        if upload.src_offset.checked_add(upload.size).is_none()
            || upload.dst_offset.checked_add(upload.size).is_none()
        {
            return refuse(PushErrorKind::RangeOverflow);
        }
        // The queue's byte count must stay exact: `plan` subtracts from it.
        let Some(pending_bytes) = self.pending_bytes.checked_add(upload.size) else {
            return refuse(PushErrorKind::RangeOverflow);
        };
        if self.pending >= self.capacity {
            self.stats.refused_full += 1;
            return refuse(PushErrorKind::QueueFull);
        }
        self.uploads.as_mut()[self.pending] = UploadSlot {
            buffer: upload.destination,
            dst_offset: upload.dst_offset,
            src_offset: upload.src_offset,
            size: upload.size,
            // pending < capacity <= u32::MAX
            seq: self.pending as u32,
            heap: 0,
        };
        self.pending += 1;
        self.pending_bytes = pending_bytes;
        self.stats.uploads += 1;
        self.stats.bytes = self.stats.bytes.saturating_add(upload.size);
        Ok(())
    }

    /// Drops every pending upload without planning it.
    pub fn clear(&mut self) {
        self.pending = 0;
        self.pending_bytes = 0;
    }

    /// Plans every pending upload into copy batches and unaligned writes, and empties the queue.
    ///
    /// The plan borrows the scheduler: submit it (or copy it out) before pushing again. Every
    /// byte of every pending upload that no later upload overwrote appears in exactly one copy
    /// region or unaligned write; nothing else does.
    pub fn plan(&mut self) -> TransferPlan<'_> {
        let n = self.pending;
        let planned_bytes = self.pending_bytes;
        self.pending = 0;
        self.pending_bytes = 0;
        let config = self.config;
        let slots = &mut self.uploads.as_mut()[..n];
        let regions = self.regions.as_mut();
        // Sorting by (destination, offset) groups each destination's uploads and orders them for
        // the sweep; ties keep no particular order because `seq` decides who wins.
        slots.sort_unstable_by_key(|s| (s.buffer, s.dst_offset));
        let mut out = Emitter {
            regions,
            copies: 0,
            unaligned: 0,
            align_mask: config.copy_alignment - 1,
            bytes: 0,
            run: None,
            piece: None,
            stats: &mut self.stats,
        };
        let mut groups = 0usize;
        let mut start = 0usize;
        while start < n {
            let buffer = slots[start].buffer;
            let mut end = start + 1;
            while end < n && slots[end].buffer == buffer {
                end += 1;
            }
            sweep(&mut slots[start..end], start, &mut out);
            out.finish_group();
            let copies_before = if groups == 0 {
                0
            } else {
                slots[groups - 1].seq as usize
            };
            let group_regions = (out.copies - copies_before) as u64;
            if group_regions > 0 {
                let batches = group_regions.div_ceil(u64::from(config.max_regions_per_batch));
                out.stats.batches += batches;
                out.stats.batch_splits += batches - 1;
            }
            // Slot `groups` belongs to a group already swept (every group has at least one slot),
            // so it is free to hold this group's header.
            slots[groups] = UploadSlot {
                buffer,
                seq: out.copies as u32,
                heap: out.unaligned as u32,
                ..UploadSlot::EMPTY
            };
            groups += 1;
            start = end;
        }
        let copies = out.copies;
        let unaligned = out.unaligned;
        let visible_bytes = out.bytes;
        self.stats.plans += 1;
        self.stats.uploads_planned += n as u64;
        // What was pushed and is not in the plan was overwritten by a later upload.
        self.stats.bytes_overwritten = self
            .stats
            .bytes_overwritten
            .saturating_add(planned_bytes - visible_bytes);
        let slots = &self.uploads.as_mut()[..groups];
        let regions = self.regions.as_mut();
        let len = regions.len();
        TransferPlan::new(
            slots,
            &regions[..copies],
            &regions[len - unaligned..],
            config,
        )
    }
}

/// Sweeps one destination's uploads (sorted by destination offset) from low to high offsets,
/// handing the emitter each piece of the upload that wins there: the latest one covering it.
///
/// The uploads covering the current position sit in a max-heap by issue order, kept in the slots'
/// `heap` fields; uploads that ended are removed lazily when they reach the top, which is enough
/// because only the top is ever read, and uploads the top hides entirely never enter it.
/// Non-overlapping uploads take a fast path without the heap.
/// `base` is the index of `group[0]` in the whole slot array (piece identities are global).
fn sweep(group: &mut [UploadSlot], base: usize, out: &mut Emitter<'_>) {
    let n = group.len();
    let mut next = 0usize;
    let mut heap_len = 0usize;
    let mut pos = 0u64;
    while next < n || heap_len > 0 {
        if heap_len == 0 {
            let s = group[next];
            if next + 1 == n || group[next + 1].dst_offset >= s.dst_end() {
                out.piece(base + next, s.src_offset, s.dst_offset, s.size);
                next += 1;
                continue;
            }
            pos = s.dst_offset;
        }
        while heap_len > 0 && group[group[0].heap as usize].dst_end() <= pos {
            heap_pop(group, &mut heap_len);
        }
        while next < n && group[next].dst_offset <= pos {
            // The top covers `pos`; an upload starting here that it covers to the end and that
            // was issued before it can never be visible, so it stays out of the heap.
            let entry = group[next];
            let covered = heap_len > 0 && {
                let top = group[group[0].heap as usize];
                top.seq > entry.seq && top.dst_end() >= entry.dst_end()
            };
            if !covered {
                heap_push(group, &mut heap_len, next);
            }
            next += 1;
        }
        if heap_len == 0 {
            continue;
        }
        let top_index = group[0].heap as usize;
        let top = group[top_index];
        let mut until = top.dst_end();
        if next < n && group[next].dst_offset < until {
            until = group[next].dst_offset;
        }
        out.piece(
            base + top_index,
            top.src_offset + (pos - top.dst_offset),
            pos,
            until - pos,
        );
        pos = until;
    }
}

/// Adds slot `index` to the max-heap (by `seq`) in `group[..heap_len].heap`.
fn heap_push(group: &mut [UploadSlot], heap_len: &mut usize, index: usize) {
    let mut at = *heap_len;
    *heap_len += 1;
    let seq = group[index].seq;
    while at > 0 {
        let parent = (at - 1) / 2;
        let parent_index = group[parent].heap;
        if group[parent_index as usize].seq >= seq {
            break;
        }
        group[at].heap = parent_index;
        at = parent;
    }
    group[at].heap = index as u32;
}

/// Removes the top of the max-heap.
fn heap_pop(group: &mut [UploadSlot], heap_len: &mut usize) {
    *heap_len -= 1;
    let len = *heap_len;
    if len == 0 {
        return;
    }
    let last = group[len].heap;
    let last_seq = group[last as usize].seq;
    let mut at = 0usize;
    loop {
        let left = 2 * at + 1;
        if left >= len {
            break;
        }
        let right = left + 1;
        let mut child = left;
        if right < len
            && group[group[right].heap as usize].seq > group[group[left].heap as usize].seq
        {
            child = right;
        }
        let child_index = group[child].heap;
        if group[child_index as usize].seq <= last_seq {
            break;
        }
        group[at].heap = child_index;
        at = child;
    }
    group[at].heap = last;
}

/// A contiguous piece of one upload, or a run of pieces contiguous in source and destination.
#[derive(Clone, Copy)]
struct Span {
    src: u64,
    dst: u64,
    size: u64,
}

/// Collects pieces into merged runs and writes runs out as aligned copy regions (from the front
/// of the region storage) and unaligned writes (from the back).
struct Emitter<'a> {
    regions: &'a mut [CopyRegion],
    copies: usize,
    unaligned: usize,
    align_mask: u64,
    /// Bytes written out in this plan.
    bytes: u64,
    /// The run being merged.
    run: Option<Span>,
    /// The last piece, with the slot it came from: consecutive pieces of one upload are one
    /// region before merging.
    piece: Option<(usize, u64)>,
    stats: &'a mut SchedulerStats,
}

impl Emitter<'_> {
    fn piece(&mut self, slot: usize, src: u64, dst: u64, size: u64) {
        if self.piece != Some((slot, dst)) {
            self.stats.regions_before_merge += 1;
        }
        self.piece = Some((slot, dst + size));
        if let Some(run) = &mut self.run
            && run.dst + run.size == dst
            && run.src + run.size == src
        {
            run.size += size;
            return;
        }
        if let Some(run) = self.run.replace(Span { src, dst, size }) {
            self.write_run(run);
        }
    }

    fn finish_group(&mut self) {
        if let Some(run) = self.run.take() {
            self.write_run(run);
        }
        self.piece = None;
    }

    fn write_run(&mut self, run: Span) {
        self.bytes += run.size;
        let mask = self.align_mask;
        if (run.src ^ run.dst) & mask != 0 {
            // Source and destination disagree modulo the alignment: no byte can be copied.
            self.unaligned(run);
            return;
        }
        let head = run.dst.wrapping_neg() & mask;
        let body = run.size.saturating_sub(head) & !mask;
        if body == 0 {
            self.unaligned(run);
            return;
        }
        if head > 0 {
            self.unaligned(Span { size: head, ..run });
        }
        self.copy(Span {
            src: run.src + head,
            dst: run.dst + head,
            size: body,
        });
        let tail = run.size - head - body;
        if tail > 0 {
            let done = head + body;
            self.unaligned(Span {
                src: run.src + done,
                dst: run.dst + done,
                size: tail,
            });
        }
    }

    fn copy(&mut self, span: Span) {
        self.regions[self.copies] = CopyRegion {
            src_offset: span.src,
            dst_offset: span.dst,
            size: span.size,
        };
        self.copies += 1;
        self.stats.copy_regions += 1;
        self.stats.copy_bytes = self.stats.copy_bytes.saturating_add(span.size);
    }

    fn unaligned(&mut self, span: Span) {
        self.unaligned += 1;
        let at = self.regions.len() - self.unaligned;
        self.regions[at] = CopyRegion {
            src_offset: span.src,
            dst_offset: span.dst,
            size: span.size,
        };
        self.stats.unaligned_writes += 1;
        self.stats.unaligned_bytes = self.stats.unaligned_bytes.saturating_add(span.size);
    }
}
