//! Transient resources that share memory (memory aliasing, as a render graph uses it): the
//! attachments and scratch buffers of a frame that are never in use at the same time are bound
//! to overlapping bytes of one range, placed by [`memkit_core::aliasing::plan_aliasing`], so the
//! frame's transient resources take the memory of its busiest pass instead of the sum of them
//! all.
//!
//! Each image is an ordinary [`Image`] and each buffer an ordinary [`Buffer`] (uploads,
//! read-backs, deferred destruction), with two differences: they never move in a
//! defragmentation pass, and using one loses what the resources sharing its bytes held. The
//! coordinator tracks that for the work it knows of: an upload into one, a read-back of an image
//! (whose layout transitions may write), or `mark_written` on either marks every resource
//! overlapping it as overwritten, so a later upload into such an image starts from an undefined
//! layout, and a read-back of it is refused ([`Error::ImageNotWritten`],
//! [`Error::BufferOverwritten`]) until it is written again. Copies into resources sharing bytes
//! go out in the order they were asked for, each after the last: two uploads into overlapping
//! buffers are never in one submission, where copies run in no particular order. The shared
//! range is freed once the last of the resources is destroyed.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard, OnceLock, Weak};

use memkit_core::aliasing::{AliasedResource, AliasingError, plan_aliasing};
use memkit_core::device::{DedicatedHint, ImageDesc, ImageDevice, MemoryRequirements};
use memkit_core::pool::RawDeviceAllocation;
use memkit_core::scheduler::BufferKey;
use memkit_core::{AllocationRequest, MemoryUsage, ResourceKind};

use super::{BUFFER_USAGE, Coordinator, Shared, Submitter};
use crate::buffer::{Buffer, BufferState, COUNTER};
use crate::device::Device;
use crate::error::{Error, NotAliasableReason, Result};
use crate::image::{Image, ImageState};

/// One image of a set that shares memory: its description and the span of steps (the render
/// graph's passes, numbered by the caller) in which it is in use, both ends included. Resources
/// whose spans meet never share a byte; the others may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AliasedImageDesc {
    /// What to create.
    pub desc: ImageDesc,
    /// The first step that uses it.
    pub first_use: u32,
    /// The last step that uses it (at least `first_use`).
    pub last_use: u32,
}

/// One buffer of a set that shares memory: its size and the span of steps in which it is in
/// use, both ends included, as for [`AliasedImageDesc`]. It is made as
/// [`Coordinator::create_buffer`] makes buffers (every usage of [`BUFFER_USAGE`], and a device
/// address when the set's memory usage asks for one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AliasedBufferDesc {
    /// Bytes in the buffer.
    pub size: u64,
    /// The first step that uses it.
    pub first_use: u32,
    /// The last step that uses it (at least `first_use`).
    pub last_use: u32,
}

/// Resources made by [`Coordinator::create_aliased_resources`], each list in the order it was
/// described, and the memory they take.
#[derive(Debug)]
pub struct AliasedResources<D: Device> {
    /// The images, one per description, bound at the offsets the plan gave them.
    pub images: Vec<Image<D>>,
    /// The buffers, one per description, bound at the offsets the plan gave them.
    pub buffers: Vec<Buffer<D>>,
    /// Bytes of the range they share.
    pub bytes: u64,
    /// Bytes they would take each in memory of its own (the sum of their sizes): what aliasing
    /// saved is the difference.
    pub unaliased_bytes: u64,
}

/// The memory a set of aliased resources shares.
pub(crate) struct AliasGroup<D: Device> {
    /// The range every resource of the set is bound in.
    allocation: RawDeviceAllocation<D::Memory>,
    /// Resources of the set not destroyed yet: the range is freed when the last one is.
    live: AtomicUsize,
    /// Every resource of the set and its bytes in the memory object (set once, right after the
    /// resources are made).
    members: OnceLock<Vec<Member<D>>>,
    /// The member whose upload was staged last ([`NO_MEMBER`] before any): an upload into a
    /// buffer overlapping it waits for it to be submitted first.
    last_staged: AtomicUsize,
    /// Whether the set holds buffers: image copies then go out only after every upload staged
    /// before them, even one whose ring range waits behind a grant still held.
    has_buffers: bool,
    /// The device's `bufferImageGranularity`: a buffer and an image on one page of it count as
    /// sharing bytes.
    granularity: u64,
}

const NO_MEMBER: usize = usize::MAX;

/// One resource of an [`AliasGroup`]: weak, so the group (which each resource holds) does not
/// keep its resources alive.
struct Member<D: Device> {
    state: MemberState<D>,
    offset: u64,
    size: u64,
}

enum MemberState<D: Device> {
    Image(Weak<ImageState<D>>),
    Buffer(Weak<BufferState<D>>),
}

impl<D: Device> Member<D> {
    /// Whether using one may change the other's contents: they share bytes or, a buffer and an
    /// image, a page of `granularity` bytes (the device may alias those).
    fn overlaps(&self, other: &Self, granularity: u64) -> bool {
        let same_kind = matches!(
            (&self.state, &other.state),
            (MemberState::Image(_), MemberState::Image(_))
                | (MemberState::Buffer(_), MemberState::Buffer(_))
        );
        let (start, end) = if same_kind {
            (self.offset, self.offset + self.size)
        } else {
            let start = self.offset - self.offset % granularity;
            (
                start,
                (self.offset + self.size).next_multiple_of(granularity),
            )
        };
        other.offset < end && start < other.offset + other.size
    }
}

/// A resource's place in its [`AliasGroup`].
pub(crate) struct AliasLink<D: Device> {
    group: Arc<AliasGroup<D>>,
    index: usize,
}

impl<D: Device> AliasLink<D> {
    /// The resource was used by memkit's queue or, by `mark_written`'s word, by the
    /// application: every other resource of the set sharing bytes with it lost its contents,
    /// so an image is not written any more and a buffer is overwritten. Called under the
    /// submitter's lock, where those flags are set and read for submissions.
    pub(crate) fn undefine_overlapping(&self) {
        let Some(members) = self.group.members.get() else {
            return;
        };
        let me = &members[self.index];
        for (i, other) in members.iter().enumerate() {
            if i == self.index || !me.overlaps(other, self.group.granularity) {
                continue;
            }
            match &other.state {
                MemberState::Image(state) => {
                    if let Some(state) = state.upgrade() {
                        state.written.store(false, Ordering::Release);
                    }
                }
                MemberState::Buffer(state) => {
                    if let Some(state) = state.upgrade() {
                        state.overwritten.store(true, Ordering::Release);
                    }
                }
            }
        }
    }

    /// An upload into this resource (a buffer) is about to be staged: whether the upload staged
    /// before it into the set went to another resource sharing its bytes, so that everything
    /// staged must be submitted first (copies in one submission run in no particular order).
    pub(crate) fn takes_over_staging(&self) -> bool {
        let last = self.group.last_staged.swap(self.index, Ordering::AcqRel);
        let Some(members) = self.group.members.get() else {
            return false;
        };
        last != NO_MEMBER
            && last != self.index
            && members
                .get(last)
                .is_some_and(|other| other.overlaps(&members[self.index], self.group.granularity))
    }

    /// Whether the set holds buffers (see [`AliasGroup::has_buffers`]).
    pub(crate) fn shares_with_buffers(&self) -> bool {
        self.group.has_buffers
    }

    /// The resource was destroyed: the set's range to free when it was the last of the set.
    fn release(&self) -> Option<RawDeviceAllocation<D::Memory>> {
        (self.group.live.fetch_sub(1, Ordering::AcqRel) == 1).then_some(self.group.allocation)
    }
}

/// The memory to free now that a resource bound to `own` was destroyed: `own`, or for a
/// resource of an aliased set (`aliasing`), the set's range once it was the last of the set.
pub(crate) fn memory_to_free<D: Device>(
    own: RawDeviceAllocation<D::Memory>,
    aliasing: Option<&AliasLink<D>>,
) -> Option<RawDeviceAllocation<D::Memory>> {
    match aliasing {
        None => Some(own),
        Some(link) => link.release(),
    }
}

impl<D: Device + ImageDevice> Coordinator<D> {
    /// Creates images and buffers that share one range of memory where their spans of use do
    /// not meet (memory aliasing of a render graph's transient attachments and scratch buffers,
    /// as VMA's aliasing resources are used): each gets the lowest offset clear of every
    /// resource in use at a step it is in use at, largest first, with buffers and images in use
    /// together kept off each other's `bufferImageGranularity` pages
    /// ([`memkit_core::aliasing::plan_aliasing`]), and the range is allocated once, in a memory
    /// type every resource allows, chosen for `usage`.
    ///
    /// The resources are ordinary [`Image`]s and [`Buffer`]s, with these differences:
    /// - **using one loses what the resources overlapping it held**. Memory aliasing gives no
    ///   contents across resources: the coordinator marks every resource overlapping one (for a
    ///   buffer and an image, sharing a granularity page with it) as overwritten when it stages
    ///   an upload into it or submits a read-back of an image, and on
    ///   [`Image::mark_written`] / [`Buffer::mark_written`]. A read-back of an overwritten
    ///   resource is refused ([`Error::ImageNotWritten`], [`Error::BufferOverwritten`]) and the
    ///   next upload into an overwritten image discards, starting from an undefined layout. The
    ///   application's own passes must likewise start an image from
    ///   `VK_IMAGE_LAYOUT_UNDEFINED` in its span, and order each resource's last use before the
    ///   first use of any resource sharing its bytes (a barrier on one queue; a semaphore, or
    ///   [`Coordinator::wait_for_external`] for memkit's queue, across queues);
    /// - memkit's copies into resources sharing bytes go out in the order they were asked for:
    ///   an upload into a buffer waits for the uploads staged before it into another buffer of
    ///   the set to be submitted (so holding a [`crate::StagingGrant`] meanwhile can make it
    ///   fail with [`Error::BlockedByHeldGrant`]), and an image copy of a set with buffers waits
    ///   for every upload staged before it;
    /// - a buffer is never written directly by the CPU (its uploads are staged, in order with
    ///   the set's other copies), and [`Coordinator::transfer_and_release`] into it takes its
    ///   place among the uploads when it is called, not when the grant was acquired;
    /// - they never move in a defragmentation pass (they count as unmovable and pin their
    ///   block).
    ///
    /// The range is freed once the last of the resources is destroyed.
    ///
    /// Errors: [`Error::Aliasing`] for no resource at all or a span that ends before it starts
    /// (nothing is created); [`Error::NotAliasable`] when a resource's driver requires a
    /// memory object of its own, or no memory type allows it together with the resources
    /// before it (indices count the images first, then the buffers); otherwise as
    /// [`Coordinator::create_image`] and [`Coordinator::create_buffer`]. On any error nothing is
    /// left behind.
    ///
    /// ```
    /// use memkit_core::device::{ImageDesc, ImageFormat, ImageUsage};
    /// use memkit_dummy::DummyDevice;
    /// use memkit_std::{
    ///     AliasedBufferDesc, AliasedImageDesc, Coordinator, CoordinatorConfig, MemoryUsage,
    /// };
    ///
    /// let coordinator = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default())
    ///     .unwrap();
    /// let target = |format| {
    ///     ImageDesc::new_2d(format, 1920, 1080, ImageUsage::COLOR_ATTACHMENT | ImageUsage::SAMPLED)
    /// };
    /// // Passes 0-1 write and read the G-buffer's albedo; pass 1 lights into HDR, which pass 2
    /// // tone-maps into the LDR target. Pass 3 builds a histogram in a scratch buffer. The
    /// // albedo and the LDR target are never in use together, nor HDR and the histogram.
    /// let frame = coordinator
    ///     .create_aliased_resources(
    ///         &[
    ///             AliasedImageDesc { desc: target(ImageFormat::Rgba8Unorm), first_use: 0, last_use: 1 },
    ///             AliasedImageDesc { desc: target(ImageFormat::Rgba16Float), first_use: 1, last_use: 2 },
    ///             AliasedImageDesc { desc: target(ImageFormat::Rgba8Unorm), first_use: 2, last_use: 2 },
    ///         ],
    ///         &[AliasedBufferDesc { size: 1 << 20, first_use: 3, last_use: 3 }],
    ///         MemoryUsage::FAST_DEVICE_ACCESS,
    ///     )
    ///     .unwrap();
    /// let [albedo, hdr, ldr] = &frame.images[..] else { unreachable!() };
    /// assert_eq!(albedo.memory(), ldr.memory()); // the same bytes
    /// assert_ne!(albedo.memory(), hdr.memory());
    /// assert_eq!(frame.buffers[0].memory(), hdr.memory());
    /// assert!(frame.bytes < frame.unaliased_bytes);
    /// ```
    pub fn create_aliased_resources(
        &self,
        images: &[AliasedImageDesc],
        buffers: &[AliasedBufferDesc],
        usage: MemoryUsage,
    ) -> Result<AliasedResources<D>> {
        let shared = &self.shared;
        shared.with_room(|| shared.try_create_aliased(images, buffers, usage))
    }

    /// [`Coordinator::create_aliased_resources`] with images only.
    pub fn create_aliased_images(
        &self,
        images: &[AliasedImageDesc],
        usage: MemoryUsage,
    ) -> Result<AliasedResources<D>> {
        self.create_aliased_resources(images, &[], usage)
    }
}

/// A resource made for a set and not bound yet.
enum Raw<D: Device> {
    Image(D::Image),
    Buffer(D::Buffer),
}

// By hand: a derive would ask for `D: Copy`, where only the handles need to be.
impl<D: Device> Clone for Raw<D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Device> Copy for Raw<D> {}

impl<D: Device + ImageDevice> Raw<D> {
    /// Binds it at `offset` of `memory` as memory it shares on purpose.
    ///
    /// # Safety
    /// As `ImageDevice::bind_aliased_image_memory` / `BufferDevice::bind_aliased_buffer_memory`.
    unsafe fn bind_aliased(
        self,
        device: &D,
        memory: D::Memory,
        offset: u64,
    ) -> core::result::Result<(), memkit_core::device::DeviceError> {
        match self {
            // SAFETY: the caller's contract is the call's.
            Raw::Image(image) => unsafe { device.bind_aliased_image_memory(image, memory, offset) },
            // SAFETY: the caller's contract is the call's.
            Raw::Buffer(buffer) => unsafe {
                device.bind_aliased_buffer_memory(buffer, memory, offset)
            },
        }
    }

    /// Destroys it.
    ///
    /// # Safety
    /// It is alive, from `device`, and the GPU never used it (or is done with it).
    unsafe fn destroy(self, device: &D) {
        match self {
            // SAFETY: the caller's contract.
            Raw::Image(image) => unsafe { device.destroy_image(image) },
            // SAFETY: the caller's contract.
            Raw::Buffer(buffer) => unsafe { device.destroy_buffer(buffer) },
        }
    }
}

impl<D: Device + ImageDevice> Shared<D> {
    /// [`Coordinator::create_aliased_resources`], once.
    fn try_create_aliased(
        self: &Arc<Self>,
        images: &[AliasedImageDesc],
        buffers: &[AliasedBufferDesc],
        usage: MemoryUsage,
    ) -> Result<AliasedResources<D>> {
        self.check_live()?;
        // Every resource's span, the images first: the indices errors name.
        let spans: Vec<(u32, u32)> = images
            .iter()
            .map(|i| (i.first_use, i.last_use))
            .chain(buffers.iter().map(|b| (b.first_use, b.last_use)))
            .collect();
        if spans.is_empty() {
            return Err(Error::Aliasing(AliasingError::Empty));
        }
        // The plan's own checks, before anything is made (the sizes come from the driver).
        if let Some(index) = spans.iter().position(|&(first, last)| last < first) {
            return Err(Error::Aliasing(AliasingError::BadSpan { index }));
        }
        if let Some(at) = buffers.iter().position(|b| b.size == 0) {
            let index = images.len() + at;
            return Err(Error::Aliasing(AliasingError::ZeroSize { index }));
        }
        let device = &self.device;
        let buffer_usage = if usage.contains(MemoryUsage::DEVICE_ADDRESS) {
            BUFFER_USAGE | memkit_core::device::BufferUsage::DEVICE_ADDRESS
        } else {
            BUFFER_USAGE
        };
        let mut made: Vec<(Raw<D>, MemoryRequirements)> = Vec::with_capacity(spans.len());
        let destroy_made = |made: &[(Raw<D>, MemoryRequirements)]| {
            for &(raw, _) in made {
                // SAFETY: created here, never used by the GPU; bound at most to the range that
                // is freed after this.
                unsafe { raw.destroy(device) };
            }
        };
        let creations = images
            .iter()
            .map(|i| {
                device
                    .create_image(&i.desc)
                    .map(|(r, m)| (Raw::Image(r), m))
            })
            .chain(buffers.iter().map(|b| {
                device
                    .create_buffer(b.size, buffer_usage)
                    .map(|(r, m)| (Raw::Buffer(r), m))
            }));
        for creation in creations {
            match creation {
                Ok(m) => made.push(m),
                Err(e) => {
                    destroy_made(&made);
                    return Err(e.into());
                }
            }
        }
        let mut memory_type_bits = u32::MAX;
        for (index, (_, requirements)) in made.iter().enumerate() {
            let refusal = if requirements.dedicated == DedicatedHint::Required {
                Some(NotAliasableReason::DedicatedRequired)
            } else if memory_type_bits & requirements.memory_type_bits == 0 {
                Some(NotAliasableReason::NoCommonMemoryType)
            } else {
                None
            };
            if let Some(reason) = refusal {
                destroy_made(&made);
                return Err(Error::NotAliasable { index, reason });
            }
            memory_type_bits &= requirements.memory_type_bits;
        }
        let resources: Vec<AliasedResource> = made
            .iter()
            .zip(&spans)
            .map(|(&(raw, r), &(first_use, last_use))| AliasedResource {
                size: r.size,
                alignment: r.alignment,
                kind: match raw {
                    Raw::Image(_) => ResourceKind::Optimal,
                    Raw::Buffer(_) => ResourceKind::Linear,
                },
                first_use,
                last_use,
            })
            .collect();
        let mut scratch = vec![0; 2 * resources.len()];
        let mut offsets = vec![0; resources.len()];
        let granularity = device.limits().buffer_image_granularity;
        let plan = match plan_aliasing(&resources, granularity, &mut scratch, &mut offsets) {
            Ok(plan) => plan,
            Err(e) => {
                destroy_made(&made);
                return Err(Error::Aliasing(e));
            }
        };
        let requirements = MemoryRequirements {
            size: plan.size,
            alignment: plan.alignment,
            memory_type_bits,
            dedicated: DedicatedHint::None,
        };
        // A set with images is placed among optimal resources; a set that mixes the kinds
        // starts and ends on granularity pages (the plan's size and alignment), so either kind
        // of neighbour is clear of it.
        let kind = if images.is_empty() {
            ResourceKind::Linear
        } else {
            ResourceKind::Optimal
        };
        let request = AllocationRequest::new(requirements, usage).with_kind(kind);
        // Set when a failed bind destroyed the resources already.
        let mut destroyed = false;
        let region = {
            let mut pools = self.lock_pools();
            match pools.as_mut() {
                None => Err(Error::DeviceLost),
                Some(pools) => match pools.allocate(&request) {
                    Err(e) => Err(Error::from(e)),
                    Ok(region) => {
                        let (memory, base) = (region.memory(), region.offset());
                        let bound = made.iter().zip(&offsets).try_for_each(|(&(raw, _), &at)| {
                            // SAFETY: the resource is alive and unbound; the range starts at a
                            // multiple of the largest alignment (and of the granularity when
                            // the kinds mix) and each offset is a multiple of the resource's,
                            // so its start is aligned; its bytes lie inside the plan's size;
                            // the type is allowed by every resource's bits (their intersection
                            // was asked for) and none requires a dedicated object. Resources
                            // sharing bytes (or, buffer and image, a granularity page) are
                            // never in use at the same step: the plan keeps those whose spans
                            // meet apart, and the resources' contract (the caller orders their
                            // uses) does the rest.
                            unsafe { raw.bind_aliased(device, memory, base + at) }
                        });
                        match bound {
                            Ok(()) => Ok(region),
                            Err(e) => {
                                destroy_made(&made);
                                destroyed = true;
                                // SAFETY: never used by the GPU; the resources bound to it are
                                // destroyed (above).
                                let _ = unsafe { pools.free(region) };
                                Err(e.into())
                            }
                        }
                    }
                },
            }
        };
        let region = match region {
            Ok(region) => region.into_raw(),
            Err(e) => {
                if !destroyed {
                    destroy_made(&made);
                }
                return Err(e);
            }
        };
        let group = Arc::new(AliasGroup {
            allocation: region,
            live: AtomicUsize::new(made.len()),
            members: OnceLock::new(),
            last_staged: AtomicUsize::new(NO_MEMBER),
            has_buffers: !buffers.is_empty(),
            granularity: granularity.max(1),
        });
        // Each resource's own part of the range, for `memory()` and reports; the range itself
        // is freed through the group, never through these.
        let part = |offset: u64, size: u64| RawDeviceAllocation {
            offset: region.offset + offset,
            size,
            mapped: region.mapped.and_then(|p| p.offset(offset)),
            ..region
        };
        let link = |index| {
            Some(AliasLink {
                group: Arc::clone(&group),
                index,
            })
        };
        let mut image_states = Vec::with_capacity(images.len());
        let mut buffer_states = Vec::with_capacity(buffers.len());
        for (index, (&(raw, requirements), &offset)) in made.iter().zip(&offsets).enumerate() {
            let key = BufferKey(self.next_key.fetch_add(1, Ordering::Relaxed));
            match raw {
                Raw::Image(raw) => image_states.push(Arc::new(ImageState {
                    key,
                    raw,
                    desc: images[index].desc,
                    allocation: part(offset, requirements.size),
                    alignment: requirements.alignment,
                    last_use: AtomicU64::new(0),
                    written: AtomicBool::new(false),
                    destroyed: AtomicBool::new(false),
                    destroy_raw: super::images::destroy_image::<D>,
                    aliasing: link(index),
                })),
                Raw::Buffer(raw) => {
                    let allocation = part(offset, requirements.size);
                    // Staged, in order with the set's other copies: never written directly.
                    let state = self.new_buffer_state(
                        raw,
                        buffers[index - images.len()].size,
                        buffer_usage,
                        requirements.alignment,
                        allocation,
                        false,
                    );
                    buffer_states.push(Arc::new(BufferState {
                        key,
                        aliasing: link(index),
                        ..state
                    }))
                }
            }
        }
        let members = image_states
            .iter()
            .map(|s| Member {
                state: MemberState::Image(Arc::downgrade(s)),
                offset: s.allocation.offset,
                size: s.allocation.size,
            })
            .chain(buffer_states.iter().map(|s| Member {
                state: MemberState::Buffer(Arc::downgrade(s)),
                offset: s.allocation.offset,
                size: s.allocation.size,
            }))
            .collect();
        // Cannot fail: the group was made above and its members are set once, here.
        let _ = group.members.set(members);
        let mut live = self.live_images.lock().unwrap_or_else(|e| e.into_inner());
        for state in &image_states {
            live.insert(state.key, Arc::downgrade(state));
        }
        drop(live);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for state in &buffer_states {
            live.insert(state.key, Arc::downgrade(state));
        }
        drop(live);
        self.counters
            .images_created
            .fetch_add(image_states.len() as u64, COUNTER);
        self.counters
            .buffers_created
            .fetch_add(buffer_states.len() as u64, COUNTER);
        Ok(AliasedResources {
            images: image_states
                .into_iter()
                .map(|state| Image {
                    state,
                    shared: Arc::clone(self),
                })
                .collect(),
            buffers: buffer_states
                .into_iter()
                .map(|state| Buffer {
                    state,
                    shared: Arc::clone(self),
                })
                .collect(),
            bytes: plan.size,
            unaliased_bytes: resources
                .iter()
                .fold(0, |sum, r| sum.saturating_add(r.size)),
        })
    }
}

impl<D: Device> Shared<D> {
    /// Before an upload into `dest` is staged: when it shares its bytes with a buffer whose
    /// upload was staged last in its set, everything staged so far is submitted first, so that
    /// the two copies are never in one submission (where copies run in no particular order).
    pub(super) fn order_aliased_upload(self: &Arc<Self>, dest: &BufferState<D>) -> Result<()> {
        match &dest.aliasing {
            Some(link) if link.takes_over_staging() => {
                drop(self.submit_staged_before_now()?);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An upload into `dest` was staged (or the application wrote it, by
    /// [`Buffer::mark_written`]'s word): it holds its bytes again, and the resources sharing
    /// them lost theirs. Under the submitter's lock, where image copies read what it changes.
    pub(crate) fn mark_buffer_written(&self, dest: &BufferState<D>) {
        let Some(link) = &dest.aliasing else {
            return;
        };
        let _sub = self.lock_submitter();
        dest.overwritten.store(false, Ordering::Release);
        link.undefine_overlapping();
    }

    /// The submitter's lock, for a copy into or out of `image`, with what was asked for before
    /// submitted: the uploads staged and the read-backs recorded. For an image that shares
    /// memory with buffers, an upload whose ring range waits behind a grant still held is
    /// waited for too (see [`Shared::submit_staged_before_now`]): it may write the image's
    /// bytes.
    pub(super) fn submitter_for_image(
        &self,
        image: &ImageState<D>,
    ) -> Result<MutexGuard<'_, Submitter<D>>> {
        let shares_with_buffers = image
            .aliasing
            .as_ref()
            .is_some_and(AliasLink::shares_with_buffers);
        let mut sub = if shares_with_buffers {
            self.submit_staged_before_now()?
        } else {
            self.lock_submitter()
        };
        self.flush_locked(&mut sub)?;
        Ok(sub)
    }

    /// Refuses to read `src` when it is aliased and another resource sharing its bytes was used
    /// since it was last written.
    pub(super) fn check_not_overwritten(&self, src: &BufferState<D>) -> Result<()> {
        if src.overwritten.load(Ordering::Acquire) {
            return Err(Error::BufferOverwritten);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use memkit_dummy::DummyDevice;

    use super::*;

    fn member(image: bool, offset: u64, size: u64) -> Member<DummyDevice> {
        Member {
            state: if image {
                MemberState::Image(Weak::new())
            } else {
                MemberState::Buffer(Weak::new())
            },
            offset,
            size,
        }
    }

    #[test]
    fn a_buffer_on_an_images_page_counts_as_sharing_its_bytes() {
        let image = member(true, 0, 1000);
        let buffer = member(false, 1000, 100);
        assert!(image.overlaps(&buffer, 1024));
        assert!(buffer.overlaps(&image, 1024));
        assert!(!image.overlaps(&buffer, 1), "no byte in common");
        assert!(
            !image.overlaps(&member(false, 1024, 100), 1024),
            "the next page"
        );
        // Of one kind, only bytes count.
        assert!(!image.overlaps(&member(true, 1000, 100), 1024));
        assert!(!buffer.overlaps(&member(false, 900, 100), 1024));
        assert!(buffer.overlaps(&member(false, 900, 101), 1024));
    }
}
