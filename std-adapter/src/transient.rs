//! The frames' transient memory as the application sees it: where a slice lies
//! ([`TransientSlice`]), and writers that let other threads fill a frame's memory
//! ([`TransientWriter`]). The chunks behind them are the coordinator's (`coordinator::transient`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Mutex;

use crate::coordinator::{
    Coordinator, FrameTransient, Placed, TransientCursor, lock_frame_transient,
};
use crate::device::Device;
use crate::error::Result;
#[cfg(doc)]
use crate::frame::Frame;

/// A slice of a frame's transient memory ([`Frame::transient_slice`],
/// [`TransientWriter::transient_slice`]): `size()` bytes at
/// `offset()` in `buffer()`, to bind in the frame's draws (a dynamic uniform offset, a vertex
/// buffer offset, an indirect-argument offset). The offset is a multiple of the device's
/// uniform, storage and texel buffer offset alignments
/// ([`DeviceLimits::min_buffer_offset_alignment`](memkit_core::device::DeviceLimits)) and of
/// 4. It borrows the frame: record the commands that use it before the frame ends.
pub struct TransientSlice<'f, D: Device> {
    buffer: D::Buffer,
    offset: u64,
    size: u64,
    address: Option<u64>,
    frame: PhantomData<&'f ()>,
}

impl<D: Device> TransientSlice<'_, D> {
    pub(crate) fn new(placed: &Placed<D>) -> Self {
        Self {
            buffer: placed.buffer,
            offset: placed.offset,
            size: placed.size,
            address: placed.address,
            frame: PhantomData,
        }
    }

    /// The buffer holding the slice (memory the host wrote, which the GPU reads in place).
    pub fn buffer(&self) -> D::Buffer {
        self.buffer
    }

    /// Where the slice starts in [`buffer`](Self::buffer).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The slice's bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The address shaders reach the slice's first byte at, where the coordinator was made with
    /// [`CoordinatorConfig::transient_device_addresses`](crate::CoordinatorConfig::transient_device_addresses);
    /// `None` otherwise.
    pub fn device_address(&self) -> Option<u64> {
        self.address
    }
}

impl<D: Device> Clone for TransientSlice<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Device> Copy for TransientSlice<'_, D> {}

impl<D: Device> fmt::Debug for TransientSlice<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransientSlice")
            .field("buffer", &self.buffer)
            .field("offset", &self.offset)
            .field("size", &self.size)
            .field("address", &self.address)
            .finish()
    }
}

/// A writer of a frame's transient memory, for a thread of its own ([`Frame::transient_writer`]):
/// the same slices as [`Frame::transient`], [`Frame::transient_slice`] and
/// [`Frame::transient_with`], written into a chunk this writer alone fills, so writers on
/// different threads never wait on each other or share a counter per slice. It borrows the frame
/// (the frame cannot end while a writer is out), is `Send`, and its slices live as long as the
/// frame.
///
/// Dropping it gives its chunk's rest to the frame for the next writer; a writer that is leaked
/// instead keeps that rest out of use until the frame's GPU work is done, nothing more.
pub struct TransientWriter<'f, D: Device> {
    coordinator: &'f Coordinator<D>,
    frame: &'f Mutex<FrameTransient<D>>,
    cursor: TransientCursor<D>,
}

impl<'f, D: Device> TransientWriter<'f, D> {
    pub(crate) fn new(
        coordinator: &'f Coordinator<D>,
        frame: &'f Mutex<FrameTransient<D>>,
    ) -> Self {
        Self {
            coordinator,
            frame,
            cursor: TransientCursor::new(),
        }
    }

    /// [`Frame::transient`] from this writer.
    pub fn transient<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<TransientSlice<'f, D>> {
        let bytes = bytemuck::bytes_of(value);
        self.fill(bytes.len() as u64, align_of::<T>(), |to| {
            to.copy_from_slice(bytes)
        })
    }

    /// [`Frame::transient_slice`] from this writer.
    pub fn transient_slice<T: bytemuck::NoUninit>(
        &mut self,
        values: &[T],
    ) -> Result<TransientSlice<'f, D>> {
        let bytes: &[u8] = bytemuck::cast_slice(values);
        self.fill(bytes.len() as u64, align_of::<T>(), |to| {
            to.copy_from_slice(bytes)
        })
    }

    /// [`Frame::transient_with`] from this writer.
    pub fn transient_with<T: bytemuck::Pod>(
        &mut self,
        count: usize,
        write: impl FnOnce(&mut [T]),
    ) -> Result<TransientSlice<'f, D>> {
        let (size, fill) = write_in_place(count, write);
        self.fill(size, align_of::<T>(), fill)
    }

    /// Places `size` bytes aligned to `align` and has `fill` write them.
    fn fill(
        &mut self,
        size: u64,
        align: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<TransientSlice<'f, D>> {
        let shared = self.coordinator.shared();
        let mut placed =
            shared.place_transient(self.frame, &mut self.cursor, size, align as u64)?;
        // SAFETY: the frame, borrowed for 'f, holds the slice's chunk; the range was placed for
        // this call only, so this is the only borrow of its bytes.
        fill(unsafe { placed.bytes() });
        shared.finish_transient(&placed)?;
        self.cursor.count(size);
        Ok(TransientSlice::new(&placed))
    }
}

impl<D: Device> Drop for TransientWriter<'_, D> {
    fn drop(&mut self) {
        let mut frame = lock_frame_transient(self.frame);
        self.coordinator
            .shared()
            .give_back_transient(&mut frame, &mut self.cursor);
    }
}

impl<D: Device> fmt::Debug for TransientWriter<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransientWriter").finish_non_exhaustive()
    }
}

/// The bytes of `count` values of `T` and a filler that has `write` write them in place (see
/// [`Frame::transient_with`]). An overflowing count asks for more than any chunk: the chunk's
/// creation refuses it.
pub(crate) fn write_in_place<T: bytemuck::Pod>(
    count: usize,
    write: impl FnOnce(&mut [T]),
) -> (u64, impl FnOnce(&mut [u8])) {
    let size = (count as u64).saturating_mul(size_of::<T>() as u64);
    let fill = move |to: &mut [u8]| match bytemuck::try_cast_slice_mut(to) {
        Ok(values) => write(values),
        Err(_) => {
            // A `T` aligned beyond what the mapping's address gives (offsets are multiples of
            // its alignment, the mapping's start may not be): written aside, then copied.
            let mut values = vec![T::zeroed(); count];
            write(&mut values);
            to.copy_from_slice(bytemuck::cast_slice(&values));
        }
    };
    (size, fill)
}
