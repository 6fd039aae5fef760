//! GPU buffers the coordinator made: the handle a caller holds, and the state the coordinator
//! keeps until the GPU is done with it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use memkit_core::device::BufferUsage;
use memkit_core::pool::{HostPtr, RawDeviceAllocation};
use memkit_core::scheduler::BufferKey;

use crate::coordinator::{AliasLink, Shared};
use crate::device::Device;
use crate::error::Result;

/// What the coordinator knows of one buffer. Shared by the caller's [`Buffer`] handle, the
/// uploads staged for it, and the deferred-destruction list.
pub(crate) struct BufferState<D: Device> {
    pub(crate) key: BufferKey,
    pub(crate) raw: D::Buffer,
    pub(crate) size: u64,
    /// How the raw buffer was created: a buffer that replaces it (defragmentation) is made
    /// alike.
    pub(crate) usage: BufferUsage,
    /// Its memory requirements' alignment.
    pub(crate) alignment: u64,
    pub(crate) allocation: RawDeviceAllocation<D::Memory>,
    /// The buffer's first byte in host memory, when its memory is mapped.
    pub(crate) host: Option<HostPtr>,
    /// Uploads write straight into the mapping: the caller asked for host access, and the
    /// memory is mapped. Such a buffer is never written by a staged copy, so a direct write can
    /// never be overtaken by an older copy still in flight.
    pub(crate) direct_writes: bool,
    /// Its memory is host-coherent: direct writes need no flush.
    pub(crate) coherent: bool,
    /// Timeline value of the last submission that copies into it (or, for a read-back, out of
    /// it).
    pub(crate) last_use: AtomicU64,
    /// Read-back copies naming it (as their source or their landing buffer) that are recorded
    /// and not submitted yet: `last_use` does not cover them, so while this is nonzero the
    /// buffer is not destroyed, and a direct write submits them first.
    pub(crate) unsubmitted_reads: AtomicU32,
    /// Destroyed (by deferred destruction, or by the coordinator's teardown).
    pub(crate) destroyed: AtomicBool,
    /// Held shared by [`Buffer::read`] while it copies out of the mapping, and exclusively by
    /// the coordinator's teardown while it destroys a buffer a handle still holds: a read on
    /// another thread either finishes before the memory goes or sees the buffer destroyed,
    /// without holding the pools' lock (and so other threads' creations and frees) while it
    /// copies.
    pub(crate) host_reads: RwLock<()>,
    pub(crate) label: Mutex<String>,
    /// Its place among resources sharing its memory (`Coordinator::create_aliased_resources`);
    /// `None` for a buffer with memory of its own. An aliased buffer's `allocation` is its part
    /// of the shared range, never freed by itself.
    pub(crate) aliasing: Option<AliasLink<D>>,
    /// Another resource sharing its bytes was used since it was last written (aliased buffers
    /// only): a read of it is refused. Written under the submitter's lock.
    pub(crate) overwritten: AtomicBool,
}

impl<D: Device> BufferState<D> {
    /// Host address of byte `offset`, for direct writes.
    pub(crate) fn host_at(&self, offset: u64) -> Option<HostPtr> {
        self.host.and_then(|p| p.offset(offset))
    }
}

/// A GPU buffer, created by a [`crate::Coordinator`]. Dropping it hands it back: the coordinator
/// destroys it once every copy into it that was submitted before has completed, and no staged
/// upload still names it.
///
/// GPU work the application submits itself that uses the buffer must be finished before the
/// buffer is dropped, as with any allocator, or ordered before memkit's later submissions with
/// [`Coordinator::wait_for_external`](crate::Coordinator::wait_for_external) called before the
/// drop: the buffer is then destroyed only once the application's timeline got there.
///
/// A buffer held past its coordinator is destroyed by the coordinator's teardown (and reported
/// as leaked), but the handle keeps the coordinator's device alive until dropped, as a
/// [`crate::Ticket`] does: drop it before destroying what that device wraps.
pub struct Buffer<D: Device> {
    pub(crate) state: Arc<BufferState<D>>,
    pub(crate) shared: Arc<Shared<D>>,
}

impl<D: Device> Buffer<D> {
    /// The backend's buffer handle, to bind in draws and dispatches.
    pub fn raw(&self) -> D::Buffer {
        self.state.raw
    }

    /// Bytes in the buffer.
    pub fn size(&self) -> u64 {
        self.state.size
    }

    /// The memory object and offset it is bound at.
    pub fn memory(&self) -> (D::Memory, u64) {
        (self.state.allocation.memory, self.state.allocation.offset)
    }

    /// The address shaders reach its first byte at (`vkGetBufferDeviceAddress`), for a buffer
    /// created with [`crate::MemoryUsage::DEVICE_ADDRESS`]. It never changes: defragmentation
    /// leaves such buffers where they are.
    ///
    /// Errors: [`Error::NoDeviceAddress`] for a buffer created without that usage,
    /// [`Error::BufferDestroyed`] once its coordinator shut down, [`Error::DeviceLost`].
    ///
    /// [`Error::NoDeviceAddress`]: crate::Error::NoDeviceAddress
    /// [`Error::BufferDestroyed`]: crate::Error::BufferDestroyed
    /// [`Error::DeviceLost`]: crate::Error::DeviceLost
    pub fn device_address(&self) -> Result<u64> {
        // Held so that the coordinator's teardown does not destroy the buffer meanwhile.
        let _alive = self.state.host_reads.read();
        if !self.is_live() {
            return Err(crate::Error::BufferDestroyed);
        }
        self.shared.device_address_of(&self.state)
    }

    /// The memory type index it lives in.
    pub fn memory_type(&self) -> u32 {
        self.state.allocation.memory_type
    }

    /// Whether uploads to it are written by the CPU straight into its memory.
    pub fn is_direct_write(&self) -> bool {
        self.state.direct_writes
    }

    /// Whether the CPU can read the buffer with [`Buffer::read`]: its memory is mapped (a
    /// [`crate::MemoryUsage::DOWNLOAD`] buffer, or one asking for host access, in a device that
    /// has host-visible memory for it).
    pub fn is_host_visible(&self) -> bool {
        self.state.host.is_some()
    }

    /// Copies the buffer's bytes `[offset, offset + out.len())` into `out`: how the CPU reads
    /// what the GPU wrote into a [`crate::MemoryUsage::DOWNLOAD`] buffer (screenshots, query
    /// results, compute output). Memory that is not host-coherent is invalidated first, rounded
    /// to the device's `nonCoherentAtomSize`.
    ///
    /// Errors: [`Error::ZeroSize`] for an empty `out`, [`Error::OutOfBounds`],
    /// [`Error::NotHostVisible`] when the buffer's memory is not mapped,
    /// [`Error::BufferDestroyed`] once its coordinator shut down, [`Error::DeviceLost`] once the
    /// device is lost, [`Error::Device`] when the invalidation fails.
    ///
    /// The copy holds no coordinator-wide lock: buffer creation, uploads and frees on other
    /// threads go on while a long read copies (the pools' lock is taken only to invalidate
    /// non-coherent memory). Only the coordinator's teardown waits for it.
    ///
    /// [`Error::ZeroSize`]: crate::Error::ZeroSize
    /// [`Error::OutOfBounds`]: crate::Error::OutOfBounds
    /// [`Error::NotHostVisible`]: crate::Error::NotHostVisible
    /// [`Error::BufferDestroyed`]: crate::Error::BufferDestroyed
    /// [`Error::DeviceLost`]: crate::Error::DeviceLost
    /// [`Error::Device`]: crate::Error::Device
    ///
    /// # Safety
    /// Every GPU write to these bytes has completed and was made visible to the host: the
    /// application waited (fence or timeline) for each submission that wrote them, and each ends
    /// with a memory dependency to host reads (in Vulkan, a barrier to `VK_PIPELINE_STAGE_HOST`
    /// with `VK_ACCESS_HOST_READ`). No GPU work writes them during the call, and every upload
    /// into them through the coordinator has completed (its [`crate::Ticket`]).
    pub unsafe fn read(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        // SAFETY: forwarded contract; the state is this live handle's.
        unsafe { self.shared.read_mapped(&self.state, offset, out) }
    }

    /// Whether the buffer still exists: `false` once its coordinator was dropped (which destroys
    /// every buffer still held and reports it as leaked).
    pub fn is_live(&self) -> bool {
        !self.state.destroyed.load(Ordering::Acquire)
    }

    /// A stable id, unique within its coordinator.
    pub fn id(&self) -> u64 {
        self.state.key.0
    }

    /// Says that the application's own GPU work wrote the buffer (a compute pass, say), so
    /// that memkit knows what it holds: for a buffer sharing memory with other resources
    /// ([`crate::Coordinator::create_aliased_resources`]), every resource overlapping it loses
    /// its contents (an image stops being written, a buffer is overwritten), and the buffer
    /// itself may be read again ([`crate::Coordinator::read_back`], [`Buffer::read`]). For any
    /// other buffer it changes nothing.
    ///
    /// Call it once that work is submitted, before memkit's next upload into or read-back of a
    /// resource sharing its bytes, as [`crate::Image::mark_written`] is called.
    pub fn mark_written(&self) {
        self.shared.mark_buffer_written(&self.state);
    }

    /// Whether another resource sharing the buffer's bytes was used since the buffer was last
    /// written (by an upload, or by the application's work as [`Buffer::mark_written`] says):
    /// what it held is gone, and reading it is refused with
    /// [`Error::BufferOverwritten`](crate::Error::BufferOverwritten). Always `false` for a
    /// buffer with memory of its own.
    pub fn is_overwritten(&self) -> bool {
        self.state.overwritten.load(Ordering::Acquire)
    }

    /// Names the buffer in reports and leak messages.
    pub fn set_label(&self, label: &str) {
        let mut l = self.state.label.lock().unwrap_or_else(|e| e.into_inner());
        l.clear();
        l.push_str(label);
    }
}

impl<D: Device> fmt::Debug for Buffer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("id", &self.state.key.0)
            .field("size", &self.state.size)
            .field("raw", &self.state.raw)
            .finish()
    }
}

impl<D: Device> Drop for Buffer<D> {
    fn drop(&mut self) {
        self.shared.retire(Arc::clone(&self.state));
    }
}

/// Relaxed is enough for the counters below: they are read under the submitter's lock, which
/// orders them against the pushes and submissions that change them.
pub(crate) const COUNTER: Ordering = Ordering::Relaxed;
