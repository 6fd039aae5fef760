//! Defragmentation of the coordinator's buffers: core's pass ([`memkit_core::pool::defrag`])
//! with the moves done by the coordinator itself.
//!
//! A call chooses blocks that only hold buffers the application handed over and that nothing
//! else uses right now, gives each of those buffers a new buffer in a fuller block, copies the
//! bytes on the GPU in one submission, and points the handles at the new buffers. The old
//! buffers go on the retired list, as a dropped buffer does: destroyed, and their memory freed,
//! once the copy (and any application work [`Coordinator::wait_for_external`] named) completed.
//! The pass stays open until then, so each emptied block goes back to the device the moment its
//! last old buffer is freed; `maintain` ends it.
//!
//! The handles are borrowed mutably, so no thread can stage an upload into a buffer, read it
//! back or read its mapping while it moves. What was staged or recorded for it before the call
//! is checked under the submitter's lock: such a buffer stays where it is.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use memkit_core::DeviceAllocation;
use memkit_core::device::{BufferCopy, BufferUsage, CopyCommand};
use memkit_core::pool::{
    DefragmentationLimits, DefragmentationPlan, Placement, RawDeviceAllocation, Relocation,
};

use super::{Coordinator, Shared, Submitter};
use crate::buffer::{Buffer, BufferState, COUNTER};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ticket::Ticket;

/// What [`Coordinator::defragment`] did.
#[derive(Debug)]
pub struct Defragmentation {
    /// Positions, in the order the buffers were given, of those that moved: their
    /// [`Buffer::raw`] and [`Buffer::memory`] are new. Point descriptors and command buffers
    /// recorded from now on at the new buffer.
    pub moved: Vec<usize>,
    /// Bytes copied.
    pub bytes_moved: u64,
    /// Buffers given that cannot move: now, because an upload into them is staged or being
    /// submitted, or a read-back of them is recorded; ever, because they have a device address
    /// (which moving would change), the CPU writes their uploads straight into their mapping
    /// (a GPU copy into the new mapping could overtake such a write), or they are dedicated
    /// memory objects. They are left where they are, and their blocks are not chosen.
    pub unmovable: usize,
    /// The memory type the pass ran in; `None` when it found nothing to move.
    pub memory_type: Option<u32>,
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
            bytes_moved: 0,
            unmovable,
            memory_type: None,
            plan: DefragmentationPlan::default(),
            ticket: Ticket::completed(),
        }
    }
}

/// A pass whose copies were submitted: it ends once every old buffer is destroyed.
pub(super) struct RunningPass<D: Device> {
    old: Vec<Weak<BufferState<D>>>,
}

/// A buffer given a new place and not yet copied: undone (the new buffer destroyed, the new
/// range freed) when anything fails before the copies are submitted.
struct Move<D: Device> {
    /// Position in the caller's list.
    index: usize,
    allocation: DeviceAllocation<D::Memory>,
    raw: D::Buffer,
}

impl<D: Device> Coordinator<D> {
    /// Moves buffers out of sparsely used memory blocks into fuller ones, and gives the blocks
    /// it empties back to the device: what a long-running engine calls (on a level change, or
    /// every few seconds with small `limits`) once freeing in a different order than it
    /// allocated left its memory spread thin. Never blocks on the GPU.
    ///
    /// `buffers` are those the application lets move. The pass runs in one memory type (the
    /// one, among the types these buffers live in, where it finds blocks to empty; call again
    /// for the next), within `limits` ([`DefragmentationLimits::max_bytes`] and
    /// [`DefragmentationLimits::max_allocations`] bound one pass; a
    /// [`DefragmentationLimits::memory_type`] restricts it). It empties only blocks that hold
    /// nothing else: no buffer not given, no image, no buffer that cannot move (see
    /// [`Defragmentation::unmovable`]). A moved buffer gets a new raw buffer bound in another block,
    /// filled by a GPU copy submitted before the call returns; [`Defragmentation::moved`]
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
        let mut buffers: Vec<&mut Buffer<D>> = buffers.into_iter().collect();
        for buffer in &buffers {
            self.shared.check_owner(buffer)?;
        }
        self.shared.defragment(&mut buffers, limits)
    }
}

impl<D: Device> Shared<D> {
    fn defragment(
        self: &Arc<Self>,
        buffers: &mut [&mut Buffer<D>],
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
        let unmovable = buffers.len() - movable.iter().filter(|&&m| m).count();
        let pinned = self.pinned_blocks(buffers, &movable);
        let mut pools_guard = self.lock_pools();
        let pools = pools_guard.as_mut().ok_or(Error::DeviceLost)?;
        let Some((memory_type, plan)) =
            Self::begin_pass(pools, buffers, &movable, &pinned, limits)?
        else {
            return Ok(Defragmentation::nothing(unmovable));
        };
        let moves = self.prepare_moves(pools, buffers, &movable, memory_type)?;
        if moves.is_empty() {
            let _ = pools.end_defragmentation();
            return Ok(Defragmentation {
                memory_type: Some(memory_type),
                plan,
                ..Defragmentation::nothing(unmovable)
            });
        }
        drop(pools_guard);
        let value = match self.timeline.submit() {
            Ok(v) => v.get(),
            Err(_) => {
                self.abandon_pass(moves);
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
        // SAFETY: every old buffer is alive and bound (its handle is borrowed here, and a
        // retired buffer is destroyed only once `last_use`, set below, completed); every new
        // one was bound above and is held by `moves` until it is handed to its handle or
        // destroyed after a refusal (nothing in flight then); each region is the whole buffer,
        // which lies inside both (the new allocation is at least as large as the old, made for
        // the same size and usage); source and destination are different memory ranges (the new
        // range was allocated while the old one is live); no host write to the old buffer is
        // pending (the CPU does not write it directly, and its handle is borrowed); the tracker
        // hands out increasing values, submitted under the submitter's lock.
        let submitted = unsafe { self.device.submit_copies(&commands, value) };
        drop(commands);
        if let Err(e) = submitted {
            let e = self.refused(&mut sub, value, e);
            self.abandon_pass(moves);
            return Err(e);
        }
        self.counters.submissions.fetch_add(1, COUNTER);
        self.counters
            .copy_commands
            .fetch_add(moves.len() as u64, COUNTER);
        let mut moved = Vec::with_capacity(moves.len());
        let mut old = Vec::with_capacity(moves.len());
        let mut bytes_moved = 0;
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
        // The new buffers count as created, as the old ones count as destroyed.
        self.counters
            .buffers_created
            .fetch_add(moved.len() as u64, COUNTER);
        self.counters
            .buffers_moved
            .fetch_add(moved.len() as u64, COUNTER);
        self.counters.bytes_moved.fetch_add(bytes_moved, COUNTER);
        sub.defrag = Some(RunningPass { old });
        drop(sub);
        Ok(Defragmentation {
            moved,
            bytes_moved,
            unmovable,
            memory_type: Some(memory_type),
            plan,
            ticket: self.ticket_for_value(value),
        })
    }

    /// Begins core's pass in the first memory type, among those the movable buffers live in
    /// (most bytes first), where it finds blocks to empty that hold nothing `pinned`: that type
    /// and the plan, or `None` (and no pass running).
    fn begin_pass(
        pools: &mut super::Pools<D>,
        buffers: &[&mut Buffer<D>],
        movable: &[bool],
        pinned: &[u32],
        limits: &DefragmentationLimits,
    ) -> Result<Option<(u32, DefragmentationPlan)>> {
        let mut types: Vec<(u64, u32)> = Vec::new();
        for (buffer, _) in buffers.iter().zip(movable).filter(|(_, m)| **m) {
            let t = buffer.state.allocation.memory_type;
            match types.iter_mut().find(|(_, ty)| *ty == t) {
                Some((bytes, _)) => *bytes += buffer.state.size,
                None => types.push((buffer.state.size, t)),
            }
        }
        types.sort_unstable_by(|a, b| b.cmp(a));
        for (_, t) in types {
            let plan = pools
                .begin_defragmentation_where(&limits.with_memory_type(t), |slot| {
                    pinned.binary_search(&slot).is_err()
                })
                .map_err(Error::Defragmentation)?;
            if plan.blocks > 0 {
                return Ok(Some((t, plan)));
            }
            let _ = pools.end_defragmentation();
        }
        Ok(None)
    }

    /// A new place, and a new buffer bound there, for each movable buffer of `memory_type` that
    /// the running pass moves. On an error, nothing is left made and the pass is ended.
    fn prepare_moves(
        &self,
        pools: &mut super::Pools<D>,
        buffers: &[&mut Buffer<D>],
        movable: &[bool],
        memory_type: u32,
    ) -> Result<Vec<Move<D>>> {
        let mut places = Vec::new();
        for (index, buffer) in buffers.iter().enumerate() {
            let state = &buffer.state;
            if !movable[index] || state.allocation.memory_type != memory_type {
                continue;
            }
            let old = DeviceAllocation::from_raw(state.allocation);
            let relocation = pools.relocate(&old, state.alignment);
            // Borrowed to name the range; the buffer still owns it.
            let _ = old.into_raw();
            // The allocation is the buffer's own and live, and its alignment came from the
            // device: a refusal would be a bug, and the buffer just stays.
            if let Ok(Relocation::Move(allocation)) = relocation {
                places.push((index, allocation));
            }
        }
        // The new buffers, made and bound while the pools' lock is held, as creations are.
        let mut made = Vec::with_capacity(places.len());
        let mut places = places.into_iter();
        while let Some((index, allocation)) = places.next() {
            match self.bind_replacement(&buffers[index].state, &allocation) {
                Ok(Some(raw)) => made.push(Move {
                    index,
                    allocation,
                    raw,
                }),
                // SAFETY: nothing was bound to it (`bind_replacement` made no buffer), and the
                // GPU never saw it.
                Ok(None) => unsafe { free_unbound(pools, allocation) },
                Err(e) => {
                    // SAFETY: as above, for this place and the ones not tried yet.
                    unsafe { free_unbound(pools, allocation) };
                    for (_, rest) in places {
                        // SAFETY: as above.
                        unsafe { free_unbound(pools, rest) };
                    }
                    self.undo_moves(pools, made);
                    let _ = pools.end_defragmentation();
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    /// Which of `buffers` may move: alive, in a block, without a device address, not written
    /// directly by the CPU, and named by nothing the coordinator has staged or recorded. `_sub` is the submitter, locked: nothing
    /// is collected meanwhile, and the handles are borrowed, so nothing can name them from here
    /// on.
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

    /// The blocks a pass must not choose, sorted: those holding a buffer that may not move (not
    /// given, or unmovable), an image, or the staging ring.
    fn pinned_blocks(&self, buffers: &[&mut Buffer<D>], movable: &[bool]) -> Vec<u32> {
        let mut given: Vec<*const BufferState<D>> = buffers
            .iter()
            .zip(movable)
            .filter(|(_, m)| **m)
            .map(|(b, _)| Arc::as_ptr(&b.state))
            .collect();
        given.sort_unstable();
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
            pinned.extend(block_of(&image.allocation));
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

    /// Gives back what `moves` made: nothing of it reached the GPU.
    fn undo_moves(&self, pools: &mut super::Pools<D>, moves: Vec<Move<D>>) {
        for m in moves {
            // SAFETY: never used by the GPU: the copies into it were not submitted.
            unsafe { self.device.destroy_buffer(m.raw) };
            // SAFETY: its buffer is destroyed just above, and the GPU never used either.
            unsafe { free_unbound(pools, m.allocation) };
        }
    }

    /// [`Shared::undo_moves`] and the pass's end, after the pools' lock was let go.
    fn abandon_pass(&self, moves: Vec<Move<D>>) {
        let mut pools = self.lock_pools();
        if let Some(pools) = pools.as_mut() {
            self.undo_moves(pools, moves);
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
        Arc::new(BufferState {
            key: old.key,
            raw,
            size: old.size,
            usage: old.usage,
            alignment: old.alignment,
            host: allocation.mapped,
            direct_writes: old.direct_writes && allocation.mapped.is_some(),
            coherent: old.coherent,
            allocation,
            last_use: AtomicU64::new(value),
            unsubmitted_reads: AtomicU32::new(0),
            destroyed: AtomicBool::new(false),
            host_reads: RwLock::new(()),
            label: Mutex::new(label),
        })
    }

    /// Ends the running pass once every old buffer it moved is destroyed: its emptied blocks
    /// were released as they emptied. Called by `maintain`.
    pub(super) fn end_finished_pass(&self, sub: &mut Submitter<D>) {
        let finished = sub.defrag.as_ref().is_some_and(|pass| {
            pass.old.iter().all(|w| {
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
