//! Transient GPU memory: a frame's constants, instance data and indirect arguments, written by
//! the host into host-visible memory that the application's draws read where it lies (bound at
//! an offset, a dynamic uniform offset say), with no copy and no submission of memkit's. This is
//! what engines build from a per-frame linear or ring pool (VMA's linear pools, wgpu's
//! `StagingBelt` without its copy).
//!
//! The memory comes in chunks: buffers of [`CoordinatorConfig::transient_chunk_size`] bytes in
//! `UPLOAD | FAST_DEVICE_ACCESS` memory (the BAR window or all of VRAM on a discrete GPU, any
//! host-visible type on an integrated one). A frame fills chunks from the front, each slice at an
//! offset the device allows bindings at. The chunk it was filling when it ended stays open: the
//! next frame goes on filling it, so a frame that writes a few KiB does not hold a whole chunk.
//! Every other chunk it used waits, from its end, for the application's GPU work for the frames
//! that wrote into it (the values [`Frame::gpu_done_at`](crate::Frame::gpu_done_at) gave), and
//! so does the open chunk once a frame moves on from it. The coordinator polls those timelines (in
//! its maintenance, and when a frame needs a chunk) and only then hands the chunks out again:
//! nothing the GPU may still read is written. Nothing here waits: a frame that finds no chunk
//! free makes one, so the chunks held settle at what the frames in flight use.
//!
//! Free chunks beyond what the busiest frame of the last [`PEAK_WINDOW_FRAMES`] to
//! `2 * PEAK_WINDOW_FRAMES` frames used, times the frames in flight and one, are destroyed, so
//! a burst does not keep its memory.
//!
//! [`CoordinatorConfig::transient_chunk_size`]: crate::CoordinatorConfig::transient_chunk_size

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use memkit_core::MemoryUsage;
use memkit_core::device::DeviceError;
use memkit_core::pool::{DeviceAllocation, HostPtr, RawDeviceAllocation};

use super::{Shared, flush_error};
use crate::buffer::{BufferState, COUNTER};
use crate::device::Device;
use crate::error::{Error, Result};

/// Frames over which the busiest one's chunk count is what the free list keeps (see the module
/// documentation): the most of this window and the one before.
const PEAK_WINDOW_FRAMES: u32 = 64;

/// The smallest alignment of a slice: index and indirect-argument offsets are multiples of 4.
const MIN_SLICE_ALIGNMENT: u64 = 4;

/// Reads the value the application's timeline reached, without blocking.
pub(crate) type ReachedValue<D> =
    Box<dyn Fn(&D) -> std::result::Result<u64, DeviceError> + Send + Sync>;

/// How the coordinator learns that the application's GPU work for a frame is done: the value
/// the application's timeline reached, against the one it reaches then.
pub(crate) struct GpuDone<D> {
    pub(crate) reached: ReachedValue<D>,
    pub(crate) until: u64,
}

impl<D> GpuDone<D> {
    /// Whether the work is done, or can no longer read anything (the device is lost). An error
    /// other than a loss keeps the memory: it is freed at teardown.
    fn is_done(&self, device: &D) -> bool {
        match (self.reached)(device) {
            Ok(value) => value >= self.until,
            Err(DeviceError::DeviceLost) => true,
            Err(_) => false,
        }
    }
}

/// The work that reads a chunk: the frames that wrote into it. All must be done before it is
/// written again.
type Readers<D> = Vec<Arc<GpuDone<D>>>;

/// Whether every reader is done.
fn all_done<D>(readers: &Readers<D>, device: &D) -> bool {
    readers.iter().all(|r| r.is_done(device))
}

/// A chunk no frame fills any more, until the work that reads it is done.
struct Retired<D: Device> {
    chunk: Arc<BufferState<D>>,
    readers: Readers<D>,
}

/// The chunk the last frame was filling: the next frame goes on from `cursor`.
struct OpenChunk<D: Device> {
    chunk: Arc<BufferState<D>>,
    address: Option<u64>,
    cursor: u64,
    readers: Readers<D>,
}

/// The coordinator's transient chunks that no frame in progress holds.
pub(crate) struct TransientChunks<D: Device> {
    /// Chunks of the configured size, ready to be written.
    free: Vec<Arc<BufferState<D>>>,
    /// The chunk the last frame was filling, for the next frame.
    open: Option<OpenChunk<D>>,
    /// Chunks no frame fills, oldest first.
    retired: VecDeque<Retired<D>>,
    /// Every chunk made and not destroyed, the frames' in progress included: teardown destroys
    /// them all.
    held: Vec<Arc<BufferState<D>>>,
    /// The most chunks one frame used in this window and in the one before, and how many frames
    /// this window has seen.
    peak_now: usize,
    peak_before: usize,
    frames_in_window: u32,
}

impl<D: Device> TransientChunks<D> {
    pub(crate) fn new() -> Self {
        Self {
            free: Vec::new(),
            open: None,
            retired: VecDeque::new(),
            held: Vec::new(),
            peak_now: 0,
            peak_before: 0,
            frames_in_window: 0,
        }
    }

    /// Chunks held, and their bytes.
    pub(crate) fn held(&self) -> (u64, u64) {
        let bytes = self.held.iter().map(|c| c.size).sum();
        (self.held.len() as u64, bytes)
    }
}

/// A chunk a writer may fill on from `cursor`, its first free byte. Each chunk a frame holds
/// has at most one: the bytes below the cursor were handed out, those above belong to whoever
/// holds this token (a [`TransientCursor`], the frame's spares, or the next frame as the open
/// chunk), and a chunk whose token was dropped is not written again until it is reused.
///
/// It holds copies of what a slice needs, not the chunk (the frame's `chunks[index]` holds it):
/// no reference count is touched per chunk a writer takes, and a leaked writer leaks nothing.
struct Filling<D: Device> {
    index: usize,
    buffer: D::Buffer,
    size: u64,
    host: HostPtr,
    flush: Option<RawDeviceAllocation<D::Memory>>,
    /// The chunk's device address, when transient slices have them.
    address: Option<u64>,
    cursor: u64,
}

impl<D: Device> Filling<D> {
    /// `chunk`, the frame's `chunks[index]` at device address `address` (if it has one),
    /// filled from `cursor`. Chunks are made mapped (host-visible memory is mapped once, whole).
    fn new(
        index: usize,
        chunk: &BufferState<D>,
        address: Option<u64>,
        cursor: u64,
    ) -> Result<Self> {
        Ok(Self {
            index,
            buffer: chunk.raw,
            size: chunk.size,
            host: chunk.host.ok_or(Error::NotHostVisible)?,
            flush: (!chunk.coherent).then_some(chunk.allocation),
            address,
            cursor,
        })
    }

    /// Where `size` bytes aligned to `align` fit, if they do.
    fn fit(&self, size: u64, align: u64) -> Option<u64> {
        let offset = self.cursor.checked_next_multiple_of(align)?;
        (offset.checked_add(size)? <= self.size).then_some(offset)
    }

    /// Whether a slice of any size still fits.
    fn has_room(&self, align: u64) -> bool {
        self.fit(1, align).is_some()
    }

    /// Hands out `size` bytes at `offset`, where they fit: the cursor moves past them.
    fn place(&mut self, offset: u64, size: u64) -> Result<Placed<D>> {
        self.cursor = offset + size;
        let target = self.host.offset(offset).ok_or(Error::NotHostVisible)?;
        // The chunk holds the range, so this fails only where a pointer is under 64 bits.
        let len = usize::try_from(size).map_err(|_| Error::HostOutOfMemory { bytes: size })?;
        Ok(Placed {
            buffer: self.buffer,
            offset,
            size,
            address: self.address.map(|base| base + offset),
            target,
            len,
            flush: self.flush,
        })
    }
}

/// A frame's transient memory, shared by its writers (the frame itself and its
/// [`TransientWriter`](crate::TransientWriter)s): what it was told of its GPU work, the chunks
/// it took, and the chunks its writers left with room. Locked only when a writer needs a chunk
/// and when one is done, never per slice.
pub(crate) struct FrameTransient<D: Device> {
    pub(crate) done: Option<Arc<GpuDone<D>>>,
    /// Chunks taken, in order: all of them wait for the frame's GPU work once it ends.
    chunks: Vec<Arc<BufferState<D>>>,
    /// The chunk in `chunks` that the frames before left open, and those frames.
    carried: Option<(usize, Readers<D>)>,
    /// Chunks writers stopped filling with room left, for the next writer that needs room.
    spares: Vec<Filling<D>>,
    /// Slices written by writers that are done, and their bytes: added to the coordinator's
    /// counters when the frame ends. Counting each slice there would be a locked instruction
    /// after every write, and on x86 one drains the write-combining buffers that writes into BAR
    /// memory sit in.
    slices: u64,
    bytes: u64,
}

impl<D: Device> FrameTransient<D> {
    pub(crate) fn new() -> Self {
        Self {
            done: None,
            chunks: Vec::new(),
            carried: None,
            spares: Vec::new(),
            slices: 0,
            bytes: 0,
        }
    }
}

/// One writer's place in its frame's transient memory: the chunk it fills, with no lock, and
/// what it wrote. The frame has one; each [`TransientWriter`](crate::TransientWriter) another.
pub(crate) struct TransientCursor<D: Device> {
    filling: Option<Filling<D>>,
    slices: u64,
    bytes: u64,
}

impl<D: Device> TransientCursor<D> {
    pub(crate) fn new() -> Self {
        Self {
            filling: None,
            slices: 0,
            bytes: 0,
        }
    }

    /// Counts a slice written.
    pub(crate) fn count(&mut self, size: u64) {
        self.slices += 1;
        self.bytes += size;
    }
}

/// Where a slice lies, in a chunk the frame holds: the chunk's buffer, the slice's offset and
/// size there and its address in the chunk's mapping, and the chunk's allocation where its
/// memory needs flushing. Copies only: no reference count is touched per slice (see
/// [`FrameTransient`]'s counts).
pub(crate) struct Placed<D: Device> {
    pub(crate) buffer: D::Buffer,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    /// The slice's device address, when transient slices have them.
    pub(crate) address: Option<u64>,
    target: HostPtr,
    len: usize,
    flush: Option<RawDeviceAllocation<D::Memory>>,
}

impl<D: Device> Placed<D> {
    /// The slice's bytes in the chunk's mapping, to write once.
    ///
    /// # Safety
    /// The frame the slice was placed in is alive (it holds the chunk, and no GPU work reads
    /// the chunk's ranges that frames placed after the last reuse); the returned borrow is the
    /// only one of these bytes.
    pub(crate) unsafe fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: [offset, offset + size) lies inside the chunk (checked when it was placed),
        // whose memory is mapped while the chunk lives (the frame holds it); the chunk's ranges
        // that the frame placed are its alone (the chunk came from the free list, whose chunks
        // no GPU work reads any more, or was made for it, and the cursor only rises), and this
        // is the only borrow of them (caller's contract). Mapped memory holds initialized bytes
        // (whatever was written there last, or what the device put there).
        unsafe { std::slice::from_raw_parts_mut(self.target.as_ptr(), self.len) }
    }
}

/// The frame's transient state, locked (a writer that panicked left it consistent: its cursor
/// is its own).
pub(crate) fn lock_frame_transient<D: Device>(
    frame: &Mutex<FrameTransient<D>>,
) -> MutexGuard<'_, FrameTransient<D>> {
    frame.lock().unwrap_or_else(|e| e.into_inner())
}

impl<D: Device> Shared<D> {
    pub(super) fn lock_transient(&self) -> MutexGuard<'_, TransientChunks<D>> {
        self.transient.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Places `size` bytes in the frame's transient memory for one of its writers, at an
    /// offset that is a multiple of the device's binding alignment and of `align`, for the
    /// caller to write ([`Placed::bytes`]) and then [`finish_transient`](Self::finish_transient).
    /// The writer's own chunk serves with no lock; when it has no room, the writer takes a spare
    /// chunk of the frame's, the one the frame before left open, a free one, or a new one.
    pub(crate) fn place_transient(
        &self,
        frame: &Mutex<FrameTransient<D>>,
        writer: &mut TransientCursor<D>,
        size: u64,
        align: u64,
    ) -> Result<Placed<D>> {
        self.check_live()?;
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        let align = self.slice_alignment(align);
        // A writer holds a chunk only once the frame was told when its work is done.
        if let Some(filling) = &mut writer.filling
            && let Some(offset) = filling.fit(size, align)
        {
            return filling.place(offset, size);
        }
        let chunk_size = self.config.transient_chunk_size;
        let mut shared = lock_frame_transient(frame);
        if shared.done.is_none() {
            return Err(Error::FrameGpuDoneUnknown);
        }
        if size > chunk_size {
            // A chunk of its own, never filled further nor kept.
            drop(shared);
            let chunk = self.make_transient_chunk(size)?;
            return self.take_chunk(frame, chunk)?.place(0, size);
        }
        if let Some(open) = self.lock_transient().open.take() {
            let index = shared.chunks.len();
            let filling = Filling::new(index, &open.chunk, open.address, open.cursor);
            shared.chunks.push(open.chunk);
            shared.carried = Some((index, open.readers));
            shared.spares.push(filling?);
        }
        let min_align = self.slice_alignment(1);
        if let Some(old) = writer.filling.take()
            && old.has_room(min_align)
        {
            shared.spares.push(old);
        }
        let spare = shared
            .spares
            .iter()
            .position(|s| s.fit(size, align).is_some());
        let filling = match spare {
            Some(index) => shared.spares.swap_remove(index),
            None => {
                // Outside the frame's lock: making a chunk takes a while, and the frame's other
                // writers may need their spares meanwhile.
                drop(shared);
                let chunk = match self.free_transient_chunk() {
                    Some(chunk) => chunk,
                    None => self.make_transient_chunk(chunk_size)?,
                };
                self.take_chunk(frame, chunk)?
            }
        };
        let filling = writer.filling.insert(filling);
        let offset = filling
            .fit(size, align)
            .expect("a spare that fits, or a fresh chunk");
        filling.place(offset, size)
    }

    /// Adds `chunk` to the frame's chunks (so it waits for the frame's GPU work whatever comes
    /// next) and returns it to fill from its start.
    fn take_chunk(
        &self,
        frame: &Mutex<FrameTransient<D>>,
        chunk: Arc<BufferState<D>>,
    ) -> Result<Filling<D>> {
        let mut shared = lock_frame_transient(frame);
        let index = shared.chunks.len();
        shared.chunks.push(Arc::clone(&chunk));
        Filling::new(index, &chunk, self.transient_address(&chunk)?, 0)
    }

    /// A writer is done: its chunk, if it has room left, is for the frame's next writer, and its
    /// counts are the frame's.
    pub(crate) fn give_back_transient(
        &self,
        frame: &mut FrameTransient<D>,
        writer: &mut TransientCursor<D>,
    ) {
        let align = self.slice_alignment(1);
        frame.slices += std::mem::take(&mut writer.slices);
        frame.bytes += std::mem::take(&mut writer.bytes);
        if let Some(filling) = writer.filling.take()
            && filling.has_room(align)
        {
            frame.spares.push(filling);
        }
    }

    /// After the host wrote a placed slice: flushes it where the memory is not coherent, so GPU
    /// work submitted from now on sees the bytes.
    pub(crate) fn finish_transient(&self, placed: &Placed<D>) -> Result<()> {
        let Some(raw) = placed.flush else {
            return Ok(());
        };
        let pools = self.lock_pools();
        if let Some(pools) = pools.as_ref() {
            let allocation = DeviceAllocation::from_raw(raw);
            let flushed = pools.flush(&allocation, placed.offset, placed.size);
            // The handle is the chunk's, borrowed to name the range: not freed here.
            let _ = allocation.into_raw();
            flushed.map_err(|e| self.device_error(flush_error(e)))?;
        }
        Ok(())
    }

    /// Where a slice of a type aligned to `align` may start: a multiple of that, of the device's
    /// binding alignment, and of [`MIN_SLICE_ALIGNMENT`].
    fn slice_alignment(&self, align: u64) -> u64 {
        align
            .max(self.device.limits().min_buffer_offset_alignment)
            .max(MIN_SLICE_ALIGNMENT)
    }

    /// The device address of `chunk` where transient slices have them
    /// ([`CoordinatorConfig::transient_device_addresses`]).
    ///
    /// [`CoordinatorConfig::transient_device_addresses`]: crate::CoordinatorConfig::transient_device_addresses
    fn transient_address(&self, chunk: &BufferState<D>) -> Result<Option<u64>> {
        if !self.config.transient_device_addresses {
            return Ok(None);
        }
        self.device_address_of(chunk).map(Some)
    }

    /// A chunk of `size` bytes in fresh memory, mapped (with a device address where transient
    /// slices have them).
    fn make_transient_chunk(&self, size: u64) -> Result<Arc<BufferState<D>>> {
        let mut usage = MemoryUsage::UPLOAD | MemoryUsage::FAST_DEVICE_ACCESS;
        if self.config.transient_device_addresses {
            usage |= MemoryUsage::DEVICE_ADDRESS;
        }
        let chunk = self.create_state(size, usage, true)?;
        if chunk.host.is_none() {
            self.destroy(&chunk);
            return Err(Error::NotHostVisible);
        }
        self.lock_transient().held.push(Arc::clone(&chunk));
        Ok(chunk)
    }

    /// A free chunk of the configured size, after taking back those whose frames' GPU work is
    /// done.
    fn free_transient_chunk(&self) -> Option<Arc<BufferState<D>>> {
        self.reclaim_transient();
        self.lock_transient().free.pop()
    }

    /// A frame ended (or was cancelled), its writers done, `own` last: the spare chunk with the
    /// most room stays open for the next frame, with this frame among its readers; its other
    /// chunks wait for their readers. A frame that took no chunk gives nothing back (it may
    /// never have been told when its work is done).
    pub(crate) fn retire_transient(
        &self,
        frame: &mut FrameTransient<D>,
        own: &mut TransientCursor<D>,
    ) {
        self.give_back_transient(frame, own);
        if frame.slices > 0 {
            self.counters
                .transient_slices
                .fetch_add(frame.slices, COUNTER);
            self.counters
                .transient_bytes
                .fetch_add(frame.bytes, COUNTER);
            (frame.slices, frame.bytes) = (0, 0);
        }
        let chunks = std::mem::take(&mut frame.chunks);
        let mut carried = frame.carried.take();
        // The most room left; a spare with none was not kept.
        let spares = std::mem::take(&mut frame.spares);
        let open = spares.into_iter().min_by_key(|s| s.cursor);
        let mut pool = self.lock_transient();
        pool.frames_in_window += 1;
        pool.peak_now = pool.peak_now.max(chunks.len());
        if pool.frames_in_window >= PEAK_WINDOW_FRAMES {
            pool.peak_before = pool.peak_now;
            pool.peak_now = 0;
            pool.frames_in_window = 0;
        }
        if chunks.is_empty() {
            return;
        }
        let done = frame
            .done
            .take()
            .expect("a frame takes chunks only once told when its work is done");
        // The open chunk's token, if no other frame's is out there (this frame left the one
        // before's alone: it took only chunks of their own).
        let mut open = open.filter(|_| pool.open.is_none());
        for (index, chunk) in chunks.into_iter().enumerate() {
            let mut readers = match carried.take_if(|(at, _)| *at == index) {
                Some((_, readers)) => readers,
                None => Vec::new(),
            };
            readers.push(Arc::clone(&done));
            match open.take_if(|o| o.index == index) {
                Some(filling) => {
                    pool.open = Some(OpenChunk {
                        chunk,
                        address: filling.address,
                        cursor: filling.cursor,
                        readers,
                    });
                }
                None => pool.retired.push_back(Retired { chunk, readers }),
            }
        }
    }

    /// Takes back the chunks of frames whose GPU work is done: chunks of the configured size go
    /// to the free list up to what the busiest recent frame used, the rest are destroyed.
    pub(crate) fn reclaim_transient(&self) {
        let chunk_size = self.config.transient_chunk_size;
        let mut doomed = Vec::new();
        {
            let mut pool = self.lock_transient();
            // Several frames' chunks can come back at once (the application's timeline moved
            // on by more than one frame between two polls): enough for the frames in flight
            // and one more, so the next frames do not make what was just destroyed.
            let frames = self.config.buffering.frames_in_flight() + 1;
            let keep = pool.peak_now.max(pool.peak_before) * frames;
            while let Some(retired) = pool.retired.front() {
                if !all_done(&retired.readers, &self.device) {
                    break;
                }
                let chunk = pool.retired.pop_front().expect("checked").chunk;
                if chunk.size == chunk_size && pool.free.len() < keep {
                    pool.free.push(chunk);
                } else {
                    doomed.push(chunk);
                }
            }
            while pool.free.len() > keep {
                doomed.extend(pool.free.pop());
            }
            pool.held
                .retain(|c| !doomed.iter().any(|d| Arc::ptr_eq(c, d)));
        }
        // Outside the chunks' lock: destroying takes the pools'.
        let doomed: Vec<&BufferState<D>> = doomed.iter().map(|c| &**c).collect();
        self.destroy_all(&doomed);
    }

    /// Teardown: waits (up to `deadline`) for the GPU work of the frames whose chunks are still
    /// out, then destroys every chunk.
    pub(crate) fn teardown_transient(&self, deadline: Instant) {
        let mut pool = self.lock_transient();
        let open = pool.open.iter().map(|o| &o.readers);
        let readers: Vec<&Readers<D>> = pool
            .retired
            .iter()
            .map(|r| &r.readers)
            .chain(open)
            .collect();
        let out_waited = readers.iter().all(|readers| {
            while !all_done(readers, &self.device) {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            true
        });
        if !out_waited {
            log::error!(
                "memkit: the application's GPU work did not finish with the frames' transient \
                 memory within 30 s; freeing it anyway"
            );
        }
        pool.retired.clear();
        pool.open = None;
        pool.free.clear();
        let held = std::mem::take(&mut pool.held);
        drop(pool);
        let held: Vec<&BufferState<D>> = held.iter().map(|c| &**c).collect();
        self.destroy_all(&held);
    }
}
