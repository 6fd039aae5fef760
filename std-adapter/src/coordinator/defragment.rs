//! Defragmentation of the coordinator's buffers and images: core's pass
//! ([`memkit_core::pool::defrag`]) with the moves done by the coordinator itself.
//!
//! A call chooses blocks that only hold resources the application handed over and that nothing
//! else uses right now, gives each of those buffers and images a new one in a fuller block,
//! copies the bytes on the GPU in one submission, and points the handles at the new resources.
//! The old ones go on the retired lists, as dropped handles do: destroyed, and their memory
//! freed, once the copy (and any application work [`Coordinator::wait_for_external`] named)
//! completed. The pass stays open until then, so each emptied block goes back to the device the
//! moment its last old resource is freed; `maintain` ends it.
//!
//! The handles are borrowed mutably, so no thread can stage an upload into a buffer or image,
//! read it back or read its mapping while it moves. What was staged or recorded for a buffer
//! before the call is checked under the submitter's lock: such a buffer stays where it is.
//! Uploads into and read-backs of images are submitted by the calls that make them, so an image
//! has nothing staged once its handle is borrowed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use memkit_core::DeviceAllocation;
use memkit_core::device::{
    BufferCopy, BufferUsage, CopyCommand, DeviceError, ImageCopyQueue, ImageDesc, ImageMoveCommand,
    MemoryDevice, MemoryRequirements,
};
use memkit_core::pool::{
    DefragmentationLimits, DefragmentationPlan, Placement, RawDeviceAllocation, Relocation,
};

use super::{Coordinator, Shared, Submitter};
use crate::buffer::{Buffer, BufferState, COUNTER};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::image::{Image, ImageState};
use crate::ticket::Ticket;

/// What [`Coordinator::defragment`] did.
#[derive(Debug)]
pub struct Defragmentation {
    /// Positions, in the order the buffers were given, of those that moved: their
    /// [`Buffer::raw`] and [`Buffer::memory`] are new. Point descriptors and command buffers
    /// recorded from now on at the new buffer.
    pub moved: Vec<usize>,
    /// Positions, in the order the images were given
    /// ([`Coordinator::defragment_with_images`]), of those that moved: their [`Image::raw`] and
    /// [`Image::memory`] are new. Make their views again and rewrite their descriptors.
    pub moved_images: Vec<usize>,
    /// Bytes copied: the moved buffers' sizes and the moved images' texels (every level and
    /// layer, [`ImageDesc::packed_bytes`]).
    pub bytes_moved: u64,
    /// Buffers and images given that cannot move. A buffer: now, because an upload into it is
    /// staged or being submitted, or a read-back of it is recorded; ever, because it has a
    /// device address (which moving would change), the CPU writes its uploads straight into its
    /// mapping (a GPU copy into the new mapping could overtake such a write), or it is a
    /// dedicated memory object. An image: one the coordinator does not know the contents of
    /// (never uploaded into, nor [`Image::mark_written`]), one a copy cannot move
    /// ([`ImageDesc::check_move`]: both transfer usages, a colour format, one sample), or a
    /// dedicated one. They are left where they are, and their blocks are not chosen.
    pub unmovable: usize,
    /// The memory types of the buffers and images that moved, ascending (empty when nothing
    /// moved). One pass covers every memory type the limits allow.
    pub memory_types: Vec<u32>,
    /// The blocks the pass chose to empty (core's plan): what the device gets back, in
    /// `block_bytes`, once the old buffers are freed.
    pub plan: DefragmentationPlan,
    /// Completes when the copies have (a completed ticket when nothing moved). The old buffers
    /// are destroyed, and the emptied blocks released, by the first `maintain` (or flush, or
    /// frame) after that.
    pub ticket: Ticket,
}

impl Defragmentation {
    fn nothing(unmovable: usize) -> Self {
        Self {
            moved: Vec::new(),
            moved_images: Vec::new(),
            bytes_moved: 0,
            unmovable,
            memory_types: Vec::new(),
            plan: DefragmentationPlan::default(),
            ticket: Ticket::completed(),
        }
    }
}

/// A pass whose copies were submitted: it ends once every old buffer and image is destroyed.
pub(super) struct RunningPass<D: Device> {
    old: Vec<Weak<BufferState<D>>>,
    old_images: Vec<Weak<ImageState<D>>>,
}

/// A buffer or image given a new place, and a new resource `raw` bound there, not yet copied:
/// undone (the new resource destroyed, the new range freed) when anything fails before the
/// copies are submitted.
struct Move<M, R> {
    /// Position in the caller's list.
    index: usize,
    allocation: DeviceAllocation<M>,
    raw: R,
}

type BufferMove<D> = Move<<D as MemoryDevice>::Memory, <D as MemoryDevice>::Buffer>;
type ImageMove<D> = Move<<D as MemoryDevice>::Memory, <D as MemoryDevice>::Image>;

/// The image calls of a device that has images, taken where `D: ImageCopyQueue` is known
/// ([`Coordinator::defragment_with_images`]), as `ImageState::destroy_raw` is: the pass itself
/// runs for every device.
struct ImageCalls<D: Device> {
    create: CreateImage<D>,
    /// # Safety
    /// As `ImageDevice::bind_image_memory`.
    bind: BindImage<D>,
    /// # Safety
    /// As `ImageDevice::destroy_image`.
    destroy: unsafe fn(&D, D::Image),
    /// # Safety
    /// As `ImageCopyQueue::submit_moves`.
    submit: SubmitMoves<D>,
}

type DeviceResult<T> = std::result::Result<T, DeviceError>;
type CreateImage<D> =
    fn(&D, &ImageDesc) -> DeviceResult<(<D as MemoryDevice>::Image, MemoryRequirements)>;
type BindImage<D> =
    unsafe fn(&D, <D as MemoryDevice>::Image, <D as MemoryDevice>::Memory, u64) -> DeviceResult<()>;
type SubmitMoves<D> = unsafe fn(
    &D,
    &[CopyCommand<'_, <D as MemoryDevice>::Buffer>],
    &[ImageMoveCommand<<D as MemoryDevice>::Image>],
    u64,
) -> DeviceResult<()>;

impl<D: Device + ImageCopyQueue> ImageCalls<D> {
    fn of_device() -> Self {
        Self {
            create: |device, desc| device.create_image(desc),
            bind: bind_image::<D>,
            destroy: destroy_image::<D>,
            submit: submit_moves::<D>,
        }
    }
}

/// `ImageDevice::bind_image_memory`, as an [`ImageCalls`] entry.
///
/// # Safety
/// As `ImageDevice::bind_image_memory`.
unsafe fn bind_image<D: Device + ImageCopyQueue>(
    device: &D,
    image: D::Image,
    memory: D::Memory,
    offset: u64,
) -> DeviceResult<()> {
    // SAFETY: forwarded contract.
    unsafe { device.bind_image_memory(image, memory, offset) }
}

/// `ImageDevice::destroy_image`, as an [`ImageCalls`] entry.
///
/// # Safety
/// As `ImageDevice::destroy_image`.
unsafe fn destroy_image<D: Device + ImageCopyQueue>(device: &D, image: D::Image) {
    // SAFETY: forwarded contract.
    unsafe { device.destroy_image(image) }
}

/// `ImageCopyQueue::submit_moves`, as an [`ImageCalls`] entry.
///
/// # Safety
/// As `ImageCopyQueue::submit_moves`.
unsafe fn submit_moves<D: Device + ImageCopyQueue>(
    device: &D,
    buffers: &[CopyCommand<'_, D::Buffer>],
    images: &[ImageMoveCommand<D::Image>],
    value: u64,
) -> DeviceResult<()> {
    // SAFETY: forwarded contract.
    unsafe { device.submit_moves(buffers, images, value) }
}

impl<D: Device> Coordinator<D> {
    /// Moves buffers out of sparsely used memory blocks into fuller ones, and gives the blocks
    /// it empties back to the device: what a long-running engine calls (on a level change, or
    /// every few seconds with small `limits`) once freeing in a different order than it
    /// allocated left its memory spread thin. Never blocks on the GPU.
    ///
    /// `buffers` are those the application lets move. The pass runs in every memory type they
    /// live in, within `limits` ([`DefragmentationLimits::max_bytes`] and
    /// [`DefragmentationLimits::max_allocations`] bound one pass, over all types together; a
    /// [`DefragmentationLimits::memory_type`] restricts it to one). It empties only blocks that
    /// hold nothing else: no buffer not given, no image, no buffer that cannot move (see
    /// [`Defragmentation::unmovable`]). A moved buffer gets a new raw buffer bound in another
    /// block, filled by a GPU copy submitted before the call returns; [`Defragmentation::moved`]
    /// names them. The handle keeps its [`Buffer::id`] and label; uploads, read-backs and
    /// [`Buffer::read`] after the call use the new buffer.
    ///
    /// What the application must do, as with VMA's defragmentation:
    /// - before the call, finish (or order before the coordinator's next submission, with
    ///   [`Coordinator::wait_for_external`]) its own GPU work that writes the buffers given:
    ///   the copy reads them, as a read-back does;
    /// - after it, use [`Buffer::raw`] again for every moved buffer: rewrite its descriptors,
    ///   and wait on [`Defragmentation::ticket`] (or make its GPU work wait on that value)
    ///   before its GPU work reads the new buffer;
    /// - keep using the old raw buffers only in GPU work submitted before the call, or ordered
    ///   with [`Coordinator::wait_for_external`] before it: they are destroyed once the copy and
    ///   that work completed, as a dropped buffer is;
    /// - on Vulkan with a dedicated transfer family (`release_to_family`), give the buffers back
    ///   to the transfer family first, as for read-backs, and acquire the moved ones as after an
    ///   upload.
    ///
    /// One pass runs at a time: its blocks are released as its old buffers are destroyed, and
    /// the pass ends then. Blocks the pass chose stay out of new allocations' way until it
    /// ends, unless nothing else has room.
    ///
    /// Errors: [`Error::ForeignBuffer`] (nothing moves), [`Error::DefragmentationRunning`]
    /// while the last pass's copies have not completed, [`Error::Defragmentation`] for a memory
    /// type the device does not have, [`Error::DeviceLost`], and the device's errors creating
    /// or binding the new buffers and submitting the copies (nothing moves: every new buffer
    /// is destroyed and the pass ended).
    pub fn defragment<'b>(
        &self,
        buffers: impl IntoIterator<Item = &'b mut Buffer<D>>,
        limits: &DefragmentationLimits,
    ) -> Result<Defragmentation>
    where
        D: 'b,
    {
        let mut buffers = self.shared.own_buffers(buffers)?;
        self.shared.defragment(&mut buffers, &mut [], None, limits)
    }
}

impl<D: Device + ImageCopyQueue> Coordinator<D> {
    /// [`Coordinator::defragment`] over images as well: textures are most of an engine's
    /// memory, and a block that holds one is emptied only when its images can move too.
    ///
    /// An image moves when the coordinator knows its contents (an upload into it was
    /// submitted, or [`Image::mark_written`] said the application wrote it, so every
    /// subresource is in [`Image::layout_after_upload`]), a copy can move it
    /// ([`ImageDesc::check_move`]: created with both `TRANSFER_SRC` and `TRANSFER_DST`, a
    /// colour format, one sample) and it lives in a block. A moved image gets a new image of the
    /// same description, bound in a fuller block, which the same submission as the buffers'
    /// copies fills level by level and leaves in the layout after upload; the handle keeps its
    /// [`Image::id`]. [`Defragmentation::moved_images`] names the moved ones.
    ///
    /// What the application must do besides [`Coordinator::defragment`]'s duties, as with
    /// VMA's defragmentation: before the call, finish its own work on the images given (or
    /// order it with [`Coordinator::wait_for_external`]) and leave them in the layout after
    /// upload; after it, make the moved images' views again from [`Image::raw`] and rewrite
    /// their descriptors, and make its work that samples them wait on the ticket. On Vulkan
    /// under `release_to_family`, return the images to the transfer family first
    /// (`image_return_barrier`) and acquire the moved ones as after an upload.
    ///
    /// Errors: as [`Coordinator::defragment`], and [`Error::ForeignImage`] (nothing moves).
    pub fn defragment_with_images<'b>(
        &self,
        buffers: impl IntoIterator<Item = &'b mut Buffer<D>>,
        images: impl IntoIterator<Item = &'b mut Image<D>>,
        limits: &DefragmentationLimits,
    ) -> Result<Defragmentation>
    where
        D: 'b,
    {
        let mut buffers = self.shared.own_buffers(buffers)?;
        let mut images: Vec<&mut Image<D>> = images.into_iter().collect();
        for image in &images {
            self.shared.check_image_owner(image)?;
        }
        self.shared.defragment(
            &mut buffers,
            &mut images,
            Some(ImageCalls::of_device()),
            limits,
        )
    }
}

impl<D: Device> Shared<D> {
    fn defragment(
        self: &Arc<Self>,
        buffers: &mut [&mut Buffer<D>],
        images: &mut [&mut Image<D>],
        calls: Option<ImageCalls<D>>,
        limits: &DefragmentationLimits,
    ) -> Result<Defragmentation> {
        self.check_live()?;
        if limits
            .memory_type
            .is_some_and(|t| t as usize >= self.device.memory_properties().types().len())
        {
            return Err(Error::Defragmentation(
                memkit_core::pool::DefragmentationError::NoSuchMemoryType,
            ));
        }
        let mut sub = self.lock_submitter();
        // Uploads and read-backs recorded so far go out first (their buffers cannot move while
        // they are staged), and a finished pass ends.
        self.flush_locked(&mut sub)?;
        if sub.defrag.is_some() {
            return Err(Error::DefragmentationRunning);
        }
        let movable = self.movable(&sub, buffers, limits);
        let images_movable: Vec<bool> = match &calls {
            Some(_) => images
                .iter()
                .map(|image| image_movable(&image.state, limits))
                .collect(),
            None => vec![false; images.len()],
        };
        let unmovable = buffers.len() + images.len()
            - movable
                .iter()
                .chain(&images_movable)
                .filter(|&&m| m)
                .count();
        let pinned = self.pinned_blocks(buffers, &movable, images, &images_movable);
        let mut pools_guard = self.lock_pools();
        let pools = pools_guard.as_mut().ok_or(Error::DeviceLost)?;
        let plan = pools
            .begin_defragmentation_where(limits, |slot| pinned.binary_search(&slot).is_err())
            .map_err(Error::Defragmentation)?;
        if plan.blocks == 0 {
            let _ = pools.end_defragmentation();
            return Ok(Defragmentation::nothing(unmovable));
        }
        let moves = self.prepare_moves(pools, buffers, &movable)?;
        let image_moves = match &calls {
            Some(calls) => match self.prepare_image_moves(pools, images, &images_movable, calls) {
                Ok(made) => made,
                Err(e) => {
                    self.undo_moves(pools, moves);
                    let _ = pools.end_defragmentation();
                    return Err(e);
                }
            },
            None => Vec::new(),
        };
        if moves.is_empty() && image_moves.is_empty() {
            let _ = pools.end_defragmentation();
            return Ok(Defragmentation {
                plan,
                ..Defragmentation::nothing(unmovable)
            });
        }
        drop(pools_guard);
        let value = match self.timeline.submit() {
            Ok(v) => v.get(),
            Err(_) => {
                self.abandon_pass(moves, image_moves, calls.as_ref());
                return Err(Error::DeviceLost);
            }
        };
        let regions: Vec<BufferCopy> = moves
            .iter()
            .map(|m| BufferCopy {
                src_offset: 0,
                dst_offset: 0,
                size: buffers[m.index].state.size,
            })
            .collect();
        let commands: Vec<CopyCommand<'_, D::Buffer>> = moves
            .iter()
            .zip(&regions)
            .map(|(m, region)| CopyCommand {
                src: buffers[m.index].state.raw,
                dst: m.raw,
                regions: std::slice::from_ref(region),
            })
            .collect();
        let image_commands: Vec<ImageMoveCommand<D::Image>> = image_moves
            .iter()
            .map(|m| ImageMoveCommand {
                src: images[m.index].state.raw,
                dst: m.raw,
                desc: images[m.index].state.desc,
            })
            .collect();
        // SAFETY: every old buffer and image is alive and bound (its handle is borrowed here,
        // and a retired one is destroyed only once `last_use`, set below, completed); every new
        // one was bound above and is held by `moves` or `image_moves` until it is handed to its
        // handle or destroyed after a refusal (nothing in flight then); each buffer region is
        // the whole buffer, which lies inside both (the new allocation is at least as large as
        // the old, made for the same size and usage); source and destination are different
        // memory ranges (the new range was allocated while the old one is live); no host write
        // to an old buffer is pending (the CPU does not write it directly, and its handle is
        // borrowed). Each old image holds defined texels in the layout after upload (it was
        // written: `image_movable`), the uploads and read-backs that used it were submitted
        // before on this queue, and the application finished its work on it (the call's
        // contract); each new image is fresh, of the same description, which passed
        // `check_move`; no image appears twice (the handles are distinct `&mut`s). The tracker
        // hands out increasing values, submitted under the submitter's lock.
        let submitted = unsafe {
            match &calls {
                Some(calls) if !image_commands.is_empty() => {
                    (calls.submit)(&self.device, &commands, &image_commands, value)
                }
                _ => self.device.submit_copies(&commands, value),
            }
        };
        drop(commands);
        if let Err(e) = submitted {
            let e = self.refused(&mut sub, value, e);
            self.abandon_pass(moves, image_moves, calls.as_ref());
            return Err(e);
        }
        self.counters.submissions.fetch_add(1, COUNTER);
        self.counters
            .copy_commands
            .fetch_add((moves.len() + image_moves.len()) as u64, COUNTER);
        let mut moved = Vec::with_capacity(moves.len());
        let mut old = Vec::with_capacity(moves.len());
        let mut bytes_moved = 0;
        let mut memory_types: Vec<u32> = moves
            .iter()
            .map(|m| buffers[m.index].state.allocation.memory_type)
            .chain(
                image_moves
                    .iter()
                    .map(|m| images[m.index].state.allocation.memory_type),
            )
            .collect();
        memory_types.sort_unstable();
        memory_types.dedup();
        for m in moves {
            let buffer = &mut *buffers[m.index];
            let replacement =
                self.replacement(&buffer.state, m.raw, m.allocation.into_raw(), value);
            self.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(replacement.key, Arc::downgrade(&replacement));
            let previous = std::mem::replace(&mut buffer.state, replacement);
            previous.last_use.store(value, COUNTER);
            bytes_moved += previous.size;
            old.push(Arc::downgrade(&previous));
            self.retire(previous);
            moved.push(m.index);
        }
        let mut moved_images = Vec::with_capacity(image_moves.len());
        let mut old_images = Vec::with_capacity(image_moves.len());
        for m in image_moves {
            let image = &mut *images[m.index];
            let replacement =
                image_replacement(&image.state, m.raw, m.allocation.into_raw(), value);
            self.live_images
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(replacement.key, Arc::downgrade(&replacement));
            let previous = std::mem::replace(&mut image.state, replacement);
            previous.last_use.fetch_max(value, COUNTER);
            bytes_moved += previous.desc.packed_bytes();
            old_images.push(Arc::downgrade(&previous));
            self.retire_image(previous);
            moved_images.push(m.index);
        }
        // The new resources count as created, as the old ones count as destroyed.
        self.counters
            .buffers_created
            .fetch_add(moved.len() as u64, COUNTER);
        self.counters
            .images_created
            .fetch_add(moved_images.len() as u64, COUNTER);
        self.counters
            .buffers_moved
            .fetch_add(moved.len() as u64, COUNTER);
        self.counters
            .images_moved
            .fetch_add(moved_images.len() as u64, COUNTER);
        self.counters.bytes_moved.fetch_add(bytes_moved, COUNTER);
        sub.defrag = Some(RunningPass { old, old_images });
        drop(sub);
        Ok(Defragmentation {
            moved,
            moved_images,
            bytes_moved,
            unmovable,
            memory_types,
            plan,
            ticket: self.ticket_for_value(value),
        })
    }

    /// A new place, and a new buffer bound there, for each movable buffer that the running pass
    /// moves. On an error, nothing is left made and the pass is ended.
    fn prepare_moves(
        &self,
        pools: &mut super::Pools<D>,
        buffers: &[&mut Buffer<D>],
        movable: &[bool],
    ) -> Result<Vec<BufferMove<D>>> {
        let candidates = buffers
            .iter()
            .enumerate()
            .filter(|(i, _)| movable[*i])
            .map(|(i, b)| (i, b.state.allocation, b.state.alignment));
        let made = place(
            pools,
            candidates,
            |i, allocation| self.bind_replacement(&buffers[i].state, allocation),
            // SAFETY: made by `bind_replacement` and never used by the GPU.
            |raw| unsafe { self.device.destroy_buffer(raw) },
        );
        if made.is_err() {
            let _ = pools.end_defragmentation();
        }
        made
    }

    /// A new place, and a new image bound there, for each movable image that the running pass
    /// moves. On an error, nothing of it is left made (the caller undoes the buffers' moves and
    /// ends the pass).
    fn prepare_image_moves(
        &self,
        pools: &mut super::Pools<D>,
        images: &[&mut Image<D>],
        movable: &[bool],
        calls: &ImageCalls<D>,
    ) -> Result<Vec<ImageMove<D>>> {
        let candidates = images
            .iter()
            .enumerate()
            .filter(|(i, _)| movable[*i])
            .map(|(i, m)| (i, m.state.allocation, m.state.alignment));
        place(
            pools,
            candidates,
            |i, allocation| self.bind_image_replacement(&images[i].state, allocation, calls),
            // SAFETY: made by `bind_image_replacement` and never used by the GPU.
            |raw| unsafe { (calls.destroy)(&self.device, raw) },
        )
    }

    /// Which of `buffers` may move: alive, in a block, without a device address, not written
    /// directly by the CPU, and named by nothing the coordinator has staged or recorded. `_sub`
    /// is the submitter, locked: nothing is collected meanwhile, and the handles are borrowed,
    /// so nothing can name them from here on.
    fn movable(
        &self,
        _sub: &Submitter<D>,
        buffers: &[&mut Buffer<D>],
        limits: &DefragmentationLimits,
    ) -> Vec<bool> {
        let staged = self.lock_pending().staged_destinations();
        buffers
            .iter()
            .map(|buffer| {
                let state = &buffer.state;
                // Only the handle holds the state: no upload in the scheduler or in a refused
                // submission, no dedicated upload and no recorded read-back holds another
                // reference. Ring uploads name it by pointer: `staged`.
                Arc::strong_count(state) == 1
                    && !state.destroyed.load(Ordering::Acquire)
                    // Its bytes are shared: it goes with the set's range or not at all.
                    && state.aliasing.is_none()
                    && !state.usage.contains(BufferUsage::DEVICE_ADDRESS)
                    // Direct writes go into the mapping at once, with whole-atom flushes of
                    // non-coherent memory: one made while the copy runs, or after it without
                    // an invalidation, would lose bytes.
                    && !state.direct_writes
                    && matches!(state.allocation.placement, Placement::Block { .. })
                    && limits
                        .memory_type
                        .is_none_or(|t| t == state.allocation.memory_type)
                    && state.unsubmitted_reads.load(Ordering::Acquire) == 0
                    && staged.binary_search(&Arc::as_ptr(state)).is_err()
            })
            .collect()
    }

    /// The blocks a pass must not choose, sorted: those holding a buffer or image that may not
    /// move (not given, or unmovable), or the staging ring.
    fn pinned_blocks(
        &self,
        buffers: &[&mut Buffer<D>],
        movable: &[bool],
        images: &[&mut Image<D>],
        images_movable: &[bool],
    ) -> Vec<u32> {
        let mut given: Vec<*const BufferState<D>> = buffers
            .iter()
            .zip(movable)
            .filter(|(_, m)| **m)
            .map(|(b, _)| Arc::as_ptr(&b.state))
            .collect();
        given.sort_unstable();
        let mut given_images: Vec<*const ImageState<D>> = images
            .iter()
            .zip(images_movable)
            .filter(|(_, m)| **m)
            .map(|(i, _)| Arc::as_ptr(&i.state))
            .collect();
        given_images.sort_unstable();
        let block_of = |a: &RawDeviceAllocation<D::Memory>| match a.placement {
            Placement::Block { .. } => Some(a.slot),
            Placement::Dedicated => None,
        };
        let mut pinned: Vec<u32> = Vec::new();
        for state in super::still_held(&self.live) {
            if given.binary_search(&Arc::as_ptr(&state)).is_err() {
                pinned.extend(block_of(&state.allocation));
            }
        }
        for image in super::still_held(&self.live_images) {
            if given_images.binary_search(&Arc::as_ptr(&image)).is_err() {
                pinned.extend(block_of(&image.allocation));
            }
        }
        pinned.extend(block_of(&self.staging.allocation));
        pinned.sort_unstable();
        pinned.dedup();
        pinned
    }

    /// A raw buffer like `state`'s, bound to `allocation`; `None` (and nothing made) when the
    /// device asks more of the new buffer than the range gives.
    fn bind_replacement(
        &self,
        state: &BufferState<D>,
        allocation: &DeviceAllocation<D::Memory>,
    ) -> Result<Option<D::Buffer>> {
        let (raw, requirements) = self.device.create_buffer(state.size, state.usage)?;
        // The same size and usage give the same requirements (Vulkan promises it); a device
        // that answers otherwise gets no buffer bound where it would not fit.
        let fits = requirements.size <= allocation.size()
            && requirements.alignment.is_power_of_two()
            && allocation.offset() % requirements.alignment == 0
            && requirements.memory_type_bits & (1 << allocation.raw().memory_type) != 0;
        let bound = if fits {
            // SAFETY: the buffer is alive and unbound; the range lies in a memory object of a
            // type it allows, at its alignment, and is at least its size (checked above).
            unsafe {
                self.device
                    .bind_buffer_memory(raw, allocation.memory(), allocation.offset())
            }
            .map(|()| Some(raw))
            .map_err(Error::from)
        } else {
            Ok(None)
        };
        if !matches!(bound, Ok(Some(_))) {
            // SAFETY: created above, never bound or used by the GPU.
            unsafe { self.device.destroy_buffer(raw) };
        }
        bound
    }

    /// An image like `state`'s, bound to `allocation`; `None` (and nothing made) when the
    /// device asks more of the new image than the range gives.
    fn bind_image_replacement(
        &self,
        state: &ImageState<D>,
        allocation: &DeviceAllocation<D::Memory>,
        calls: &ImageCalls<D>,
    ) -> Result<Option<D::Image>> {
        let (raw, requirements) = (calls.create)(&self.device, &state.desc)?;
        // The same description gives the same requirements; a device that answers otherwise
        // gets no image bound where it would not fit.
        let fits = requirements.size <= allocation.size()
            && requirements.alignment.is_power_of_two()
            && allocation.offset() % requirements.alignment == 0
            && requirements.memory_type_bits & (1 << allocation.raw().memory_type) != 0
            && requirements.dedicated == memkit_core::device::DedicatedHint::None;
        let bound = if fits {
            // SAFETY: the image is alive and unbound; the range lies in a memory object of a
            // type it allows, at its alignment, is at least its size (checked above), and
            // keeps the granularity from linear resources (the pools placed it for an optimal
            // resource, as the old image's range was).
            unsafe { (calls.bind)(&self.device, raw, allocation.memory(), allocation.offset()) }
                .map(|()| Some(raw))
                .map_err(Error::from)
        } else {
            Ok(None)
        };
        if !matches!(bound, Ok(Some(_))) {
            // SAFETY: created above, never bound or used by the GPU.
            unsafe { (calls.destroy)(&self.device, raw) };
        }
        bound
    }

    /// Gives back what `moves` made for buffers: nothing of it reached the GPU.
    fn undo_moves(&self, pools: &mut super::Pools<D>, moves: Vec<BufferMove<D>>) {
        // SAFETY: never used by the GPU: the copies into it were not submitted.
        undo(pools, moves, |raw| unsafe {
            self.device.destroy_buffer(raw)
        });
    }

    /// Gives back what `moves` and `image_moves` made, and ends the pass, after the pools' lock
    /// was let go.
    fn abandon_pass(
        &self,
        moves: Vec<BufferMove<D>>,
        image_moves: Vec<ImageMove<D>>,
        calls: Option<&ImageCalls<D>>,
    ) {
        let mut pools = self.lock_pools();
        if let Some(pools) = pools.as_mut() {
            self.undo_moves(pools, moves);
            if let Some(calls) = calls {
                // SAFETY: never used by the GPU: the copies into it were not submitted.
                undo(pools, image_moves, |raw| unsafe {
                    (calls.destroy)(&self.device, raw)
                });
            }
            let _ = pools.end_defragmentation();
        }
    }

    /// The state that replaces `old` in its handle: the same buffer, at its new place, written
    /// by the copy submitted with `value`.
    fn replacement(
        &self,
        old: &BufferState<D>,
        raw: D::Buffer,
        allocation: RawDeviceAllocation<D::Memory>,
        value: u64,
    ) -> Arc<BufferState<D>> {
        let label = old.label.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let fresh = self.new_buffer_state(
            raw,
            old.size,
            old.usage,
            old.alignment,
            allocation,
            old.direct_writes,
        );
        // Aliased buffers never move (`movable`): the new one has memory of its own, as
        // `new_buffer_state` makes it.
        Arc::new(BufferState {
            key: old.key,
            last_use: AtomicU64::new(value),
            label: Mutex::new(label),
            ..fresh
        })
    }

    /// Ends the running pass once every old buffer it moved is destroyed: its emptied blocks
    /// were released as they emptied. Called by `maintain`.
    pub(super) fn end_finished_pass(&self, sub: &mut Submitter<D>) {
        let finished = sub.defrag.as_ref().is_some_and(|pass| {
            pass.old.iter().all(|w| {
                w.upgrade()
                    .is_none_or(|s| s.destroyed.load(Ordering::Acquire))
            }) && pass.old_images.iter().all(|w| {
                w.upgrade()
                    .is_none_or(|s| s.destroyed.load(Ordering::Acquire))
            })
        });
        if !finished {
            return;
        }
        sub.defrag = None;
        let mut pools = self.lock_pools();
        if let Some(pools) = pools.as_mut() {
            let report = pools.end_defragmentation();
            self.counters
                .blocks_released_by_defragmentation
                .fetch_add(u64::from(report.blocks_released), COUNTER);
            self.counters
                .bytes_released_by_defragmentation
                .fetch_add(report.bytes_released, COUNTER);
        }
    }
}

/// Whether an image may move: the coordinator knows its contents (written, so every
/// subresource is in the layout after upload), it has memory of its own (not aliased), a copy
/// can move it, it lives in a block, and `limits` allow its memory type.
fn image_movable<D: Device>(state: &ImageState<D>, limits: &DefragmentationLimits) -> bool {
    state.written.load(Ordering::Acquire)
        && !state.destroyed.load(Ordering::Acquire)
        && state.aliasing.is_none()
        && state.desc.check_move().is_ok()
        && matches!(state.allocation.placement, Placement::Block { .. })
        && limits
            .memory_type
            .is_none_or(|t| t == state.allocation.memory_type)
}

/// The state that replaces `old` in its handle: the same image, at its new place, filled by
/// the move submitted with `value` (which leaves it in the layout after upload: written).
fn image_replacement<D: Device>(
    old: &ImageState<D>,
    raw: D::Image,
    allocation: RawDeviceAllocation<D::Memory>,
    value: u64,
) -> Arc<ImageState<D>> {
    Arc::new(ImageState {
        key: old.key,
        raw,
        desc: old.desc,
        allocation,
        alignment: old.alignment,
        last_use: AtomicU64::new(value),
        written: AtomicBool::new(true),
        destroyed: AtomicBool::new(false),
        destroy_raw: old.destroy_raw,
        aliasing: None,
    })
}

/// New places for `candidates` (position, allocation and alignment of each movable resource
/// of the pass's memory type) where the running pass moves them, each with a new resource bound
/// there by `bind` (`None`: it did not fit, and the resource stays). On an error, every place is
/// given back, the ones not tried yet too, and what `bind` made is destroyed with `destroy`.
fn place<D: Device, R>(
    pools: &mut super::Pools<D>,
    candidates: impl Iterator<Item = (usize, RawDeviceAllocation<D::Memory>, u64)>,
    mut bind: impl FnMut(usize, &DeviceAllocation<D::Memory>) -> Result<Option<R>>,
    destroy: impl Fn(R),
) -> Result<Vec<Move<D::Memory, R>>> {
    let mut places = Vec::new();
    for (index, allocation, alignment) in candidates {
        let old = DeviceAllocation::from_raw(allocation);
        let relocation = pools.relocate(&old, alignment);
        // Borrowed to name the range; the resource still owns it.
        let _ = old.into_raw();
        // The allocation is the resource's own and live, and its alignment came from the
        // device: a refusal would be a bug, and the resource just stays.
        if let Ok(Relocation::Move(allocation)) = relocation {
            places.push((index, allocation));
        }
    }
    // The new resources, made and bound while the pools' lock is held, as creations are.
    let mut made = Vec::with_capacity(places.len());
    let mut places = places.into_iter();
    while let Some((index, allocation)) = places.next() {
        match bind(index, &allocation) {
            Ok(Some(raw)) => made.push(Move {
                index,
                allocation,
                raw,
            }),
            // SAFETY: nothing was bound to it (`bind` made no resource), and the GPU never saw
            // it.
            Ok(None) => unsafe { free_unbound(pools, allocation) },
            Err(e) => {
                // SAFETY: as above, for this place and the ones not tried yet.
                unsafe { free_unbound(pools, allocation) };
                for (_, rest) in places {
                    // SAFETY: as above.
                    unsafe { free_unbound(pools, rest) };
                }
                undo(pools, made, destroy);
                return Err(e);
            }
        }
    }
    Ok(made)
}

/// Gives back what `moves` made: `destroy` takes each new resource (which the GPU never used),
/// then its place is freed.
fn undo<D: Device, R>(
    pools: &mut super::Pools<D>,
    moves: Vec<Move<D::Memory, R>>,
    destroy: impl Fn(R),
) {
    for m in moves {
        destroy(m.raw);
        // SAFETY: its resource is destroyed just above, and the GPU never used either.
        unsafe { free_unbound(pools, m.allocation) };
    }
}

/// Gives back a new place of the running pass.
///
/// # Safety
/// No buffer bound to it is alive, and the GPU never used it.
unsafe fn free_unbound<D: Device>(
    pools: &mut super::Pools<D>,
    allocation: DeviceAllocation<D::Memory>,
) {
    // SAFETY: forwarded contract.
    if let Err(e) = unsafe { pools.free(allocation) } {
        log::error!("memkit: giving back a defragmentation move failed: {e}");
    }
}
