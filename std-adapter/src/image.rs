//! GPU images the coordinator made: the handle a caller holds, and the state the coordinator
//! keeps until the GPU is done with it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memkit_core::device::{ImageDesc, ImageLayout};
use memkit_core::pool::RawDeviceAllocation;
use memkit_core::scheduler::BufferKey;

use crate::coordinator::{AliasLink, Shared};
use crate::device::Device;

/// What the coordinator knows of one image. Shared by the caller's [`Image`] handle and the
/// deferred-destruction list.
pub(crate) struct ImageState<D: Device> {
    /// From the same counter as buffer keys: unique within the coordinator.
    pub(crate) key: BufferKey,
    pub(crate) raw: D::Image,
    pub(crate) desc: ImageDesc,
    pub(crate) allocation: RawDeviceAllocation<D::Memory>,
    /// The alignment its memory requirements asked for (what a move's new range honours).
    pub(crate) alignment: u64,
    /// Timeline value of the last submission that uploads into it.
    pub(crate) last_use: AtomicU64,
    /// An upload into it was submitted: it is in its layout after upload, and later uploads
    /// keep what it holds. Written under the submitter's lock.
    pub(crate) written: AtomicBool,
    /// Destroyed (by deferred destruction, or by the coordinator's teardown).
    pub(crate) destroyed: AtomicBool,
    /// `ImageDevice::destroy_image` of `D`, taken where the coordinator made the image (the only
    /// place that knows `D` has images): maintenance and teardown, which destroy images, run for
    /// every device.
    pub(crate) destroy_raw: unsafe fn(&D, D::Image),
    /// Its place among images sharing its memory (`Coordinator::create_aliased_images`);
    /// `None` for an image with memory of its own. An aliased image's `allocation` is its part
    /// of the shared range, never freed by itself.
    pub(crate) aliasing: Option<AliasLink<D>>,
}

impl<D: Device> ImageState<D> {
    /// It was used on memkit's queue or, by `Image::mark_written`'s word, by the application:
    /// images sharing its bytes (aliased) lost their contents. Under the submitter's lock.
    pub(crate) fn undefine_aliases(&self) {
        if let Some(link) = &self.aliasing {
            link.undefine_overlapping();
        }
    }
}

/// An optimal-tiling GPU image (a texture, a render target), created by a
/// [`crate::Coordinator`] in memory from its pools. Dropping it hands it back: the coordinator
/// destroys it once every upload into it that was submitted before has completed.
///
/// GPU work the application submits itself that uses the image must be finished before the
/// image is dropped, as with any allocator, or ordered before memkit's later submissions with
/// [`Coordinator::wait_for_external`](crate::Coordinator::wait_for_external) called before the
/// drop. An image held past its coordinator is destroyed by
/// the coordinator's teardown and reported as leaked, as a [`crate::Buffer`] is.
pub struct Image<D: Device> {
    pub(crate) state: Arc<ImageState<D>>,
    pub(crate) shared: Arc<Shared<D>>,
}

impl<D: Device> Image<D> {
    /// The backend's image handle, to make views of and bind.
    pub fn raw(&self) -> D::Image {
        self.state.raw
    }

    /// What it was created with.
    pub fn desc(&self) -> &ImageDesc {
        &self.state.desc
    }

    /// The memory object and offset it is bound at.
    pub fn memory(&self) -> (D::Memory, u64) {
        (self.state.allocation.memory, self.state.allocation.offset)
    }

    /// Bytes of memory it takes from [`Image::memory`]'s offset on (its memory requirements'
    /// size, which the driver may make larger than its texels).
    pub fn memory_size(&self) -> u64 {
        self.state.allocation.size
    }

    /// The memory type index it lives in.
    pub fn memory_type(&self) -> u32 {
        self.state.allocation.memory_type
    }

    /// The layout each upload leaves it in, once the upload's ticket completed
    /// ([`ImageDesc::layout_after_upload`]). Before its first upload the image's layout is
    /// undefined, and it is the application's to set.
    pub fn layout_after_upload(&self) -> ImageLayout {
        self.state.desc.layout_after_upload()
    }

    /// Whether an upload into it was submitted (or [`Image::mark_written`] was called): from
    /// then on it is in [`Image::layout_after_upload`] between uploads, each upload keeps what
    /// the regions do not cover, and it can be read back. An image made by
    /// [`Coordinator::create_aliased_images`](crate::Coordinator::create_aliased_images) stops
    /// being written when an image sharing its bytes is used.
    pub fn is_written(&self) -> bool {
        self.state.written.load(Ordering::Acquire)
    }

    /// Tells the coordinator that the application's own GPU work wrote the image (a render
    /// target drawn into, a storage image a compute pass filled) and left it in
    /// [`Image::layout_after_upload`], as an upload would have. From then on
    /// [`Coordinator::read_back_image`](crate::Coordinator::read_back_image) reads it (instead
    /// of refusing with [`Error::ImageNotWritten`](crate::Error::ImageNotWritten)), and an
    /// upload into part of it keeps the rest, as after an upload. Calling it again, or after
    /// an upload, changes nothing.
    ///
    /// The usual sequence for a render target read back on memkit's queue: render into it and
    /// end in [`Image::layout_after_upload`] (the render pass's final layout, or a barrier),
    /// signal a timeline value from that submission, pass the value to
    /// [`Coordinator::wait_for_external`](crate::Coordinator::wait_for_external), call this, and
    /// read back.
    ///
    /// # Safety
    /// Until the coordinator's next upload into or read-back of the image is submitted:
    /// - every subresource of the image is in [`Image::layout_after_upload`] (a subresource the
    ///   application never wrote still needs the transition: its texels are then undefined);
    /// - the application's work on the image has completed, or is ordered before the
    ///   coordinator's later submissions by
    ///   [`Coordinator::wait_for_external`](crate::Coordinator::wait_for_external) (called
    ///   before that upload or read-back), and its writes were made available (a semaphore
    ///   signal or a fence does that);
    /// - the image can be used on the coordinator's transfer queue: concurrent sharing with its
    ///   family, the same family, or (on Vulkan under `release_to_family`) returned to it with
    ///   `image_return_barrier`, as after the application's use of an uploaded image.
    pub unsafe fn mark_written(&self) {
        self.shared.mark_image_written(&self.state);
    }

    /// Whether the image still exists: `false` once its coordinator was dropped (which destroys
    /// every image still held and reports it as leaked).
    pub fn is_live(&self) -> bool {
        !self.state.destroyed.load(Ordering::Acquire)
    }

    /// A stable id, unique within its coordinator (buffers and images share the numbering).
    pub fn id(&self) -> u64 {
        self.state.key.0
    }
}

impl<D: Device> fmt::Debug for Image<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("id", &self.state.key.0)
            .field("desc", &self.state.desc)
            .field("raw", &self.state.raw)
            .finish()
    }
}

impl<D: Device> Drop for Image<D> {
    fn drop(&mut self) {
        self.shared.retire_image(Arc::clone(&self.state));
    }
}
