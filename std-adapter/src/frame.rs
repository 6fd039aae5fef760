//! Frames: a CPU arena per frame slot, paced so that a slot is reused only after the GPU finished
//! the frame that used it last.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use bumpalo::Bump;
use memkit_core::BufferingMode;
use memkit_core::device::ExternalTimelines;

use crate::buffer::Buffer;
use crate::coordinator::{
    Coordinator, FrameTransient, GpuDone, TransientCursor, lock_frame_transient,
};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ticket::Ticket;
use crate::transient::{TransientSlice, TransientWriter, write_in_place};

/// The arenas of the frame slots. A frame takes its slot's arena and gives it back at its end.
pub(crate) struct FrameSlots {
    arenas: Vec<Option<Bump>>,
    arena_size: usize,
    /// Per slot, the ticket of the last frame that used it when some of that frame's uploads
    /// were still staged only as it ended (behind a grant being written or held): the pacer
    /// knows submitted values only, so the slot's next frame also waits for this.
    unsubmitted: Vec<Option<Ticket>>,
}

impl FrameSlots {
    /// One arena of `arena_size` bytes per frame in flight, or [`Error::HostOutOfMemory`].
    pub(crate) fn new(mode: BufferingMode, arena_size: usize) -> Result<Self> {
        let arenas = (0..mode.frames_in_flight())
            .map(|_| new_arena(arena_size).map(Some))
            .collect::<Result<_>>()?;
        Ok(Self {
            arenas,
            arena_size,
            unsubmitted: vec![None; mode.frames_in_flight()],
        })
    }

    /// Takes the tickets the slots keep for their next frames. Each holds the coordinator's
    /// state, which holds these slots: teardown takes them, or that cycle would keep the state
    /// (and the device) alive after the coordinator is gone.
    pub(crate) fn take_unsubmitted(&mut self) -> Vec<Ticket> {
        self.unsubmitted
            .iter_mut()
            .filter_map(Option::take)
            .collect()
    }
}

/// An arena starting with `bytes` of room, or [`Error::HostOutOfMemory`].
fn new_arena(bytes: usize) -> Result<Bump> {
    Bump::try_with_capacity(bytes).map_err(|_| Error::HostOutOfMemory {
        bytes: bytes as u64,
    })
}

/// [`Error::HostOutOfMemory`] for `len` values of `T`.
fn arena_refused<T>(len: usize) -> Error {
    Error::HostOutOfMemory {
        bytes: (len as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    }
}

/// A frame in progress, from [`Coordinator::begin_frame`] to [`Coordinator::end_frame`].
///
/// Its arena allocations ([`Frame::alloc`], [`Frame::alloc_slice`]) borrow the frame, so they
/// cannot outlive it. Uploads staged during the frame go to the GPU when it ends. Dropping a
/// frame without ending it cancels it (what it staged is submitted with the next submission).
///
/// Its transient memory ([`Frame::transient_slice`]) is GPU memory the application's draws
/// read where it lies: the frame's constants and instance data, with no copy. It is written
/// again only once the application's GPU work for the frame is done
/// ([`Frame::gpu_done_at`]), however the frame ends.
pub struct Frame<'c, D: Device> {
    coordinator: &'c Coordinator<D>,
    /// `None` once ended or cancelled.
    pacing: Option<memkit_core::Frame>,
    /// The slot whose arena `arena` is, once taken (given back on drop).
    arena_slot: Option<usize>,
    arena: Bump,
    /// The transient memory it took, shared with its [`TransientWriter`]s; given back on drop.
    transient: Mutex<FrameTransient<D>>,
    /// Where the frame's own transient writes go.
    cursor: RefCell<TransientCursor<D>>,
}

impl<'c, D: Device> Frame<'c, D> {
    pub(crate) fn begin(coordinator: &'c Coordinator<D>) -> Result<Self> {
        let shared = coordinator.shared();
        let pacing = shared
            .pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .begin_frame()
            .map_err(|_| Error::FrameInProgress)?;
        let frame = Self {
            coordinator,
            pacing: Some(pacing),
            arena_slot: None,
            arena: Bump::new(),
            transient: Mutex::new(FrameTransient::new()),
            cursor: RefCell::new(TransientCursor::new()),
        };
        let wait_for = frame.pacing.as_ref().map_or(0, |p| p.wait_for().get());
        let slot = frame.slot();
        // Paced: the slot's last frame must be done on the GPU before its arena and staging are
        // reused; so must its uploads that were still staged when it ended. On error the frame
        // is dropped, which cancels it, and the slot keeps the ticket for the next attempt.
        let unsubmitted = shared
            .frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unsubmitted[slot]
            .clone();
        let tickets = [
            (wait_for > 0).then(|| coordinator.shared().ticket_for_value(wait_for)),
            unsubmitted,
        ];
        let mut waited = false;
        for ticket in tickets.iter().flatten() {
            if !ticket.is_complete()? {
                waited = true;
                ticket.wait()?;
            }
        }
        if waited {
            shared
                .counters
                .frame_waits
                .fetch_add(1, crate::buffer::COUNTER);
        }
        shared
            .frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unsubmitted[slot] = None;
        coordinator.maintain()?;
        let mut frame = frame;
        let arena = {
            let mut slots = shared.frames.lock().unwrap_or_else(|e| e.into_inner());
            let size = slots.arena_size;
            match slots.arenas[slot].take() {
                Some(arena) => arena,
                None => new_arena(size)?,
            }
        };
        frame.arena = arena;
        frame.arena_slot = Some(slot);
        frame.arena.reset();
        Ok(frame)
    }

    /// The coordinator that began it.
    pub(crate) fn coordinator(&self) -> &'c Coordinator<D> {
        self.coordinator
    }

    /// The frame's number, counting from 0.
    pub fn number(&self) -> u64 {
        self.pacing.as_ref().map_or(0, |p| p.number())
    }

    /// The frame slot (0 to frames in flight - 1) whose resources it uses.
    pub fn slot(&self) -> usize {
        self.pacing.as_ref().map_or(0, |p| p.slot())
    }

    /// A value in the frame's arena, default-initialised.
    pub fn alloc<T: Default>(&self) -> &mut T {
        self.arena.alloc(T::default())
    }

    /// A copy of `values` in the frame's arena.
    ///
    /// Errors: [`Error::HostOutOfMemory`] when the arena cannot grow by that much.
    pub fn alloc_slice<T: Copy>(&self, values: &[T]) -> Result<&mut [T]> {
        self.arena
            .try_alloc_slice_copy(values)
            .map_err(|_| arena_refused::<T>(values.len()))
    }

    /// `len` copies of `value` in the frame's arena.
    ///
    /// Errors: [`Error::HostOutOfMemory`] when the arena cannot grow by that much (a `len` whose
    /// bytes overflow included).
    pub fn alloc_slice_fill<T: Copy>(&self, len: usize, value: T) -> Result<&mut [T]> {
        self.arena
            .try_alloc_slice_fill_copy(len, value)
            .map_err(|_| arena_refused::<T>(len))
    }

    /// Bytes allocated from the frame's arena so far.
    pub fn arena_bytes(&self) -> usize {
        self.arena.allocated_bytes()
    }

    /// Stages `data` for `buffer` at `offset`; it reaches the GPU when the frame ends.
    pub fn stage_for_upload<T: bytemuck::NoUninit>(
        &self,
        data: &T,
        buffer: &Buffer<D>,
        offset: u64,
    ) -> Result<Ticket> {
        self.coordinator
            .upload_to(buffer, offset, bytemuck::bytes_of(data))
    }

    /// Stages a slice for `buffer` at `offset`; it reaches the GPU when the frame ends.
    pub fn stage_slice_for_upload<T: bytemuck::NoUninit>(
        &self,
        data: &[T],
        buffer: &Buffer<D>,
        offset: u64,
    ) -> Result<Ticket> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.coordinator.upload_to(buffer, offset, bytes)
    }

    /// Writes `value` into the frame's transient memory and returns where it lies, for the
    /// frame's draws to read in place ([`Frame::transient_slice`]).
    pub fn transient<T: bytemuck::NoUninit>(&self, value: &T) -> Result<TransientSlice<'_, D>> {
        let bytes = bytemuck::bytes_of(value);
        self.transient_fill(bytes.len() as u64, align_of::<T>(), |to| {
            to.copy_from_slice(bytes);
        })
    }

    /// Writes `values` into the frame's transient memory and returns where they lie: per-frame
    /// constants, instance data or indirect arguments that the application's draws read in
    /// place, bound at [`TransientSlice::offset`] of [`TransientSlice::buffer`], with no copy
    /// and no submission. The memory is host-visible and, where the device has such memory,
    /// device-local (resizable BAR, integrated GPUs); non-coherent memory is flushed here, so
    /// GPU work submitted after this call sees the bytes.
    ///
    /// The memory is written again only after the application's GPU work for this frame is
    /// done, as [`Frame::gpu_done_at`] said (which must come first), whether the frame is ended
    /// or dropped. Slices come from chunks of
    /// [`CoordinatorConfig::transient_chunk_size`](crate::CoordinatorConfig::transient_chunk_size)
    /// bytes; a larger slice gets a chunk of its own.
    ///
    /// Errors: [`Error::FrameGpuDoneUnknown`] before [`Frame::gpu_done_at`];
    /// [`Error::ZeroSize`]; [`Error::DeviceLost`]; the errors of
    /// [`Coordinator::create_buffer`] when a new chunk is needed (out of device memory, say).
    /// Nothing is written on error.
    pub fn transient_slice<T: bytemuck::NoUninit>(
        &self,
        values: &[T],
    ) -> Result<TransientSlice<'_, D>> {
        let bytes: &[u8] = bytemuck::cast_slice(values);
        self.transient_fill(bytes.len() as u64, align_of::<T>(), |to| {
            to.copy_from_slice(bytes);
        })
    }

    /// [`Frame::transient_slice`] of `count` values that `write` writes in place, straight into
    /// the transient memory, with no copy from the caller's memory (wgpu's
    /// `Queue::write_buffer_with`). `write` gets the values as the memory holds them (bytes an
    /// earlier frame left there): it must write every value the GPU reads. The memory is often
    /// write-combined, where reading it back is slow: write each value once, in order, and read
    /// none.
    ///
    /// `write` may use the frame (take other slices, say); the slice it writes is its alone.
    /// Where the memory is not coherent it is flushed after `write` returns. Should `write`
    /// panic, the range is not handed out again this frame, and nothing else is harmed.
    ///
    /// Errors: those of [`Frame::transient_slice`] (`count` of 0, or a zero-sized `T`, is
    /// [`Error::ZeroSize`]); `write` is not called on error.
    pub fn transient_with<T: bytemuck::Pod>(
        &self,
        count: usize,
        write: impl FnOnce(&mut [T]),
    ) -> Result<TransientSlice<'_, D>> {
        let (size, fill) = write_in_place(count, write);
        self.transient_fill(size, align_of::<T>(), fill)
    }

    /// Places `size` bytes aligned to `align` in the frame's transient memory and has `fill`
    /// write them; the frame is not borrowed while `fill` runs.
    fn transient_fill(
        &self,
        size: u64,
        align: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<TransientSlice<'_, D>> {
        let shared = self.coordinator.shared();
        let mut placed = {
            let mut cursor = self.cursor.borrow_mut();
            shared.place_transient(&self.transient, &mut cursor, size, align as u64)?
        };
        // SAFETY: the frame, alive while `self` is borrowed, holds the slice's chunk; the range
        // was placed for this call only, so this is the only borrow of its bytes.
        fill(unsafe { placed.bytes() });
        shared.finish_transient(&placed)?;
        self.cursor.borrow_mut().count(size);
        Ok(TransientSlice::new(&placed))
    }

    /// A writer of this frame's transient memory for another thread: command-recording jobs
    /// each take one (in a `std::thread::scope`, say) and write their draws' constants with no
    /// lock and no shared counter per slice ([`TransientWriter`]). A writer takes a chunk of
    /// its own when it first writes and gives the chunk's rest back to the frame when dropped,
    /// for the next writer; its slices live as long as the frame's, and the frame's memory is
    /// written again only once the frame's GPU work ([`Frame::gpu_done_at`]) is done, whatever
    /// became of the writer.
    pub fn transient_writer(&self) -> TransientWriter<'_, D> {
        TransientWriter::new(self.coordinator, &self.transient)
    }

    /// Submits everything staged and records the frame's submission; returns its ticket.
    pub(crate) fn end(mut self) -> Result<Ticket> {
        let shared = self.coordinator.shared();
        let flushed = self.coordinator.flush_transfers();
        let pacing = self.pacing.take().expect("a frame ends once");
        let ticket = match flushed {
            Ok(ticket) => ticket,
            Err(e) => {
                // Never leave the pacer waiting for a frame that will not end.
                let _ = shared
                    .pacer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .cancel_frame(pacing);
                return Err(e);
            }
        };
        // Resolved before the pacer's lock is taken: resolving an upload's ticket takes the
        // submitter's lock, and `stats` takes the pacer's under the pools' (which the submitter
        // takes under its own).
        let (value, last_submitted) = (ticket.value(), shared.last_submitted_value());
        let mut pacer = shared.pacer.lock().unwrap_or_else(|e| e.into_inner());
        let value = value.unwrap_or_else(|| {
            // Some of the frame's uploads are still staged: the slot's next frame waits for the
            // ticket itself; the pacer gets the last submission, all that exists yet.
            shared
                .frames
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unsubmitted[pacing.slot()] = Some(ticket.clone());
            last_submitted
        });
        // Never below what the pacer holds: a later value only makes the slot's next frame wait
        // longer, while an earlier one would be refused and leave this frame unended.
        let value = memkit_core::FenceValue::new(value).max(pacer.last_submission());
        pacer
            .end_frame(pacing, value)
            .map_err(|refused| Error::Frame(refused.error))?;
        Ok(ticket)
    }
}

impl<D: Device + ExternalTimelines> Frame<'_, D>
where
    D::ExternalTimeline: Send + Sync + 'static,
{
    /// Says when the application's GPU work for this frame is done: once `timeline` reaches
    /// `value`. The frame's transient memory ([`Frame::transient_slice`]) is written again only
    /// after that; the coordinator polls the timeline (it never waits on it, except at
    /// teardown). Call it before the first transient slice, with the value the application's
    /// queue signals after the last of the frame's work that reads one (a frame's timeline
    /// value). A later call replaces the value for the whole frame.
    ///
    /// Errors: [`Error::Device`] with `InvalidArgument` for a timeline the device does not know;
    /// [`Error::DeviceLost`].
    ///
    /// # Safety
    /// - `timeline` is a live timeline of the coordinator's device and stays alive until the
    ///   coordinator is shut down;
    /// - `value` will be signalled, after every use of this frame's transient memory by GPU work
    ///   (or the device is lost); a value never signalled keeps the frame's memory held, and
    ///   delays the coordinator's teardown by up to 30 s.
    pub unsafe fn gpu_done_at(&self, timeline: D::ExternalTimeline, value: u64) -> Result<()> {
        let shared = self.coordinator.shared();
        shared.check_live()?;
        // Checked now, so that a timeline the device does not know is refused here rather than
        // keeping the memory forever.
        // SAFETY: the timeline is live and the device's (caller's contract).
        unsafe { self.coordinator.device().external_value(timeline) }
            .map_err(|e| shared.device_error(e))?;
        let reached = Box::new(move |device: &D| {
            // SAFETY: the timeline stays alive until the coordinator is shut down (caller's
            // contract), and the coordinator polls it only until then.
            unsafe { device.external_value(timeline) }
        });
        lock_frame_transient(&self.transient).done = Some(Arc::new(GpuDone {
            reached,
            until: value,
        }));
        Ok(())
    }
}

impl<D: Device> Drop for Frame<'_, D> {
    fn drop(&mut self) {
        let shared = self.coordinator.shared();
        if let Some(pacing) = self.pacing.take() {
            let _ = shared
                .pacer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .cancel_frame(pacing);
        }
        let transient = self.transient.get_mut().unwrap_or_else(|e| e.into_inner());
        shared.retire_transient(transient, self.cursor.get_mut());
        let arena = std::mem::take(&mut self.arena);
        if let Some(slot) = self.arena_slot.take() {
            shared
                .frames
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .arenas[slot] = Some(arena);
        }
    }
}
