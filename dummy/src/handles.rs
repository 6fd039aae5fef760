//! Handles of the simulated device's memory objects, buffers and images.
#![forbid(unsafe_code)]

use std::fmt;

/// A memory object of a [`DummyDevice`](crate::DummyDevice). Handles are never reused, and carry
/// the device they came from, so stale and foreign handles are told apart from live ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DummyMemory {
    pub(crate) device: u32,
    pub(crate) index: u64,
}

/// A buffer (or an optimal, image-like resource, or an image's resource) of a
/// [`DummyDevice`](crate::DummyDevice). Never reused; carries its device, and whether an image
/// made it, so that reports print an image's resource as `image#N`, a buffer's as `buffer#N`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DummyBuffer {
    pub(crate) device: u32,
    pub(crate) index: u64,
    pub(crate) image: bool,
}

/// An image of a [`DummyDevice`](crate::DummyDevice), made by
/// [`create_image`](crate::DummyDevice::create_image). Images are resources like buffers and are
/// numbered with them: misuse reports, counters and the leak report name an image by its
/// resource handle, [`DummyImage::resource`], which prints as `image#N`. Never reused; carries
/// its device.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DummyImage {
    pub(crate) resource: DummyBuffer,
}

impl DummyImage {
    /// The resource handle that misuse reports and inspection name this image by.
    pub fn resource(self) -> DummyBuffer {
        self.resource
    }

    /// The image's number on its device, counted with the buffers from 1 in creation order.
    pub fn index(self) -> u64 {
        self.resource.index
    }
}

impl fmt::Debug for DummyImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The resource handle knows it is an image's.
        fmt::Debug::fmt(&self.resource, f)
    }
}

impl fmt::Display for DummyImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl DummyMemory {
    /// The object's number on its device, counting from 1 in allocation order.
    pub fn index(self) -> u64 {
        self.index
    }
}

impl DummyBuffer {
    /// The buffer's number on its device, counting from 1 in creation order.
    pub fn index(self) -> u64 {
        self.index
    }

    /// Whether this is an image's resource handle ([`DummyImage::resource`]).
    pub fn is_image(self) -> bool {
        self.image
    }
}

impl fmt::Debug for DummyMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory#{}@dev{}", self.index, self.device)
    }
}

impl fmt::Debug for DummyBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.image { "image" } else { "buffer" };
        write!(f, "{kind}#{}@dev{}", self.index, self.device)
    }
}

impl fmt::Display for DummyMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for DummyBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
