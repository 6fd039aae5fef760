//! Read-backs: bytes the GPU copies out of a buffer into host-visible memory, for the CPU to take
//! once the copy completed ([`crate::Coordinator::read_back`]).

use std::fmt;
use std::sync::Arc;

use crate::buffer::BufferState;
use crate::coordinator::Shared;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ticket::Ticket;

/// A copy out of a buffer in flight: the bytes, once its [`Ticket`] completes.
///
/// It holds the host-visible buffer the GPU copies into (its landing buffer). Dropping it before
/// the copy completed is fine: the landing buffer is destroyed, or kept for a later read-back
/// ([`crate::CoordinatorConfig::read_back_cache_bytes`]), and either way written again only by
/// copies submitted after this one.
pub struct Readback<D: Device> {
    pub(crate) shared: Arc<Shared<D>>,
    /// The landing buffer ([`crate::MemoryUsage::DOWNLOAD`]): the copy writes its first `size`
    /// bytes. `None` only while it is dropped.
    pub(crate) landing: Option<Arc<BufferState<D>>>,
    pub(crate) size: u64,
    pub(crate) ticket: Ticket,
}

impl<D: Device> Readback<D> {
    /// The copy's ticket: complete once the bytes can be taken.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    /// Bytes read back.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the copy completed, so that [`Readback::wait`] returns at once. Never blocks; to
    /// wait with a timeout, wait on [`Readback::ticket`] first.
    pub fn is_ready(&self) -> Result<bool> {
        self.ticket.is_complete()
    }

    /// Blocks until the copy completed, and returns the bytes.
    ///
    /// Errors: [`Error::DeviceLost`]; [`Error::BufferDestroyed`] when the coordinator shut down
    /// first; [`Error::Device`] when invalidating non-coherent memory fails.
    pub fn wait(self) -> Result<Vec<u8>> {
        let mut bytes = vec![0; self.size as usize];
        self.wait_into(&mut bytes)?;
        Ok(bytes)
    }

    /// Blocks until the copy completed, and copies the bytes into `out` (which must hold exactly
    /// [`Readback::size`] bytes): the read-back without a new allocation, and without the page
    /// faults of fresh memory (a reused `out` costs only the copy).
    ///
    /// Errors: [`Error::OutOfBounds`] when `out` is not [`Readback::size`] bytes long, and those
    /// of [`Readback::wait`].
    pub fn wait_into(&self, out: &mut [u8]) -> Result<()> {
        if out.len() as u64 != self.size {
            return Err(Error::OutOfBounds {
                offset: 0,
                size: out.len() as u64,
                buffer_size: self.size,
            });
        }
        self.ticket.wait()?;
        let landing = self.landing.as_ref().ok_or(Error::BufferDestroyed)?;
        // SAFETY: the only GPU work that writes the landing buffer's first `size` bytes while
        // this read-back holds it is its copy, which completed (waited above); a copy's writes
        // are visible to host reads once its value completed (core's `CopyQueue` contract); the
        // landing buffer is this read-back's alone, so no upload goes into it.
        unsafe { self.shared.read_mapped(landing, 0, out) }
    }
}

impl<D: Device> Drop for Readback<D> {
    fn drop(&mut self) {
        if let Some(landing) = self.landing.take() {
            self.shared.keep_landing(landing);
        }
    }
}

impl<D: Device> fmt::Debug for Readback<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readback")
            .field("size", &self.size)
            .field("value", &self.ticket.value())
            .finish()
    }
}
