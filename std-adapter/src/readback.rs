//! Read-backs: bytes the GPU copies out of a buffer or an image into host-visible memory, for the
//! CPU to take once the copy completed ([`crate::Coordinator::read_back`],
//! [`crate::Coordinator::read_back_image`]).

use std::fmt;
use std::sync::Arc;

use crate::buffer::BufferState;
use crate::coordinator::{Coordinator, Shared};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::ticket::Ticket;

/// A copy out of a buffer or an image in flight: the bytes, once its [`Ticket`] completes.
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
    /// The copy's ticket: complete once the bytes can be taken. Its [`Ticket::value`] is `None`
    /// while the copy is recorded and not submitted; waiting on it submits it.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    /// Bytes read back.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the copy completed, so that [`Readback::wait`] returns at once. Submits the copy
    /// first if it is still recorded only (see [`crate::Coordinator::read_back`]); never waits
    /// for the GPU. To wait with a timeout, wait on [`Readback::ticket`].
    pub fn is_ready(&self) -> Result<bool> {
        if self.ticket.value().is_none() {
            self.shared.flush()?;
        }
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

    /// Blocks until the copy completed, and lends the bytes where the GPU put them, with no copy
    /// at all (wgpu's `get_mapped_range`): the fastest way to read a large range, since
    /// [`Readback::wait_into`] is bound by one thread copying out of the mapping.
    ///
    /// `coordinator` is the one that made the read-back. Borrowing it keeps the landing buffer's
    /// memory mapped: only the coordinator's teardown frees it, and that takes the coordinator.
    /// Borrowing the read-back keeps the landing buffer out of the cache, so no later read-back
    /// copies into it while the bytes are lent. The memory is host-cached where the device has
    /// such memory; reading it is as fast as reading any other memory then.
    ///
    /// ```
    /// use memkit_std::{Coordinator, CoordinatorConfig, MemoryUsage};
    /// use memkit_dummy::DummyDevice;
    ///
    /// let coordinator = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default())?;
    /// let (results, _) = coordinator.upload_slice(&[7u32; 1024])?;
    /// let readback = coordinator.read_back(&results, 0, 4096)?;
    /// let bytes: &[u8] = readback.wait_mapped(&coordinator)?;
    /// assert_eq!(bytes[..4], 7u32.to_ne_bytes());
    /// # Ok::<(), memkit_std::Error>(())
    /// ```
    ///
    /// The bytes cannot outlive the coordinator, whose teardown frees their memory:
    ///
    /// ```compile_fail
    /// # use memkit_std::{Coordinator, CoordinatorConfig};
    /// # use memkit_dummy::DummyDevice;
    /// # let coordinator = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default())?;
    /// # let (results, _) = coordinator.upload_slice(&[7u32; 1024])?;
    /// let readback = coordinator.read_back(&results, 0, 4096)?;
    /// let bytes = readback.wait_mapped(&coordinator)?;
    /// drop(coordinator);
    /// assert_eq!(bytes[0], 7);
    /// # Ok::<(), memkit_std::Error>(())
    /// ```
    ///
    /// Errors: [`Error::ForeignBuffer`] when `coordinator` did not make the read-back, and those
    /// of [`Readback::wait`].
    pub fn wait_mapped<'a>(&'a self, coordinator: &'a Coordinator<D>) -> Result<&'a [u8]> {
        if !Arc::ptr_eq(coordinator.shared(), &self.shared) {
            return Err(Error::ForeignBuffer);
        }
        self.ticket.wait()?;
        self.shared.check_live()?;
        let landing = self.landing.as_ref().ok_or(Error::BufferDestroyed)?;
        let address = self.shared.host_range(landing, 0, self.size)?;
        // SAFETY: `address` is the start of the landing buffer's mapping, which holds at least
        // `size` bytes (the buffer's size class); the memory stays mapped and allocated for
        // `'a`, because `coordinator` is borrowed for `'a` and only its teardown frees it; the
        // only GPU write to these bytes while this read-back holds the buffer is its copy,
        // which completed (waited above) and is visible to the host (`host_range` invalidated
        // non-coherent memory); no host code writes a landing buffer; and `self`, borrowed for
        // `'a`, keeps the buffer from being handed to another read-back.
        Ok(unsafe { std::slice::from_raw_parts(address.as_ptr(), self.size as usize) })
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
