//! Read-backs: bytes the GPU copies out of a buffer into host-visible memory, for the CPU to take
//! once the copy completed ([`crate::Coordinator::read_back`]).

use std::fmt;

use crate::buffer::Buffer;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ticket::Ticket;

/// A copy out of a buffer in flight: the bytes, once its [`Ticket`] completes.
///
/// It holds the host-visible buffer the GPU copies into. Dropping it before the copy completed
/// is fine: that buffer is destroyed only once the copy is done, as any dropped buffer is.
pub struct Readback<D: Device> {
    /// The host-visible ([`crate::MemoryUsage::DOWNLOAD`]) buffer the copy writes, from byte 0.
    pub(crate) landing: Buffer<D>,
    pub(crate) ticket: Ticket,
}

impl<D: Device> Readback<D> {
    /// The copy's ticket: complete once the bytes can be taken.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    /// Bytes read back.
    pub fn size(&self) -> u64 {
        self.landing.size()
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
        let mut bytes = vec![0; self.landing.size() as usize];
        self.wait_into(&mut bytes)?;
        Ok(bytes)
    }

    /// Blocks until the copy completed, and copies the bytes into `out` (which must hold exactly
    /// [`Readback::size`] bytes): the read-back without a new allocation.
    ///
    /// Errors: [`Error::OutOfBounds`] when `out` is not [`Readback::size`] bytes long, and those
    /// of [`Readback::wait`].
    pub fn wait_into(&self, out: &mut [u8]) -> Result<()> {
        let len = self.landing.size();
        if out.len() as u64 != len {
            return Err(Error::OutOfBounds {
                offset: 0,
                size: out.len() as u64,
                buffer_size: len,
            });
        }
        self.ticket.wait()?;
        // SAFETY: the only GPU work that writes the landing buffer is the read-back's copy, which
        // completed (waited above), and a copy's writes are visible to host reads once its value
        // completed (core's `CopyQueue` contract); the landing buffer is this read-back's alone,
        // so no upload goes into it.
        unsafe { self.landing.read(0, out) }
    }
}

impl<D: Device> fmt::Debug for Readback<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readback")
            .field("size", &self.landing.size())
            .field("value", &self.ticket.value())
            .finish()
    }
}
