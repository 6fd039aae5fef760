//! Transient images that share memory (memory aliasing, as a render graph uses it): the
//! attachments of a frame that are never in use at the same time are bound to overlapping bytes
//! of one range, placed by [`memkit_core::aliasing::plan_aliasing`], so the frame's render
//! targets take the memory of its busiest pass instead of the sum of them all.
//!
//! Each image is an ordinary [`Image`] (uploads, read-backs, [`Image::mark_written`], deferred
//! destruction), with two differences: it never moves in a defragmentation pass, and using it
//! loses what the images sharing its bytes held. The coordinator tracks that for the work it
//! knows of: an upload into or a read-back of one image, or [`Image::mark_written`] on it, marks
//! every image overlapping it as not written, so a later upload into one of those starts from an
//! undefined layout and a read-back of it is refused ([`Error::ImageNotWritten`]) until it is
//! written again. The shared range is freed once the last of the images is destroyed.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use memkit_core::aliasing::{AliasedResource, AliasingError, plan_aliasing};
use memkit_core::device::{DedicatedHint, ImageDesc, ImageDevice, MemoryRequirements};
use memkit_core::pool::RawDeviceAllocation;
use memkit_core::scheduler::BufferKey;
use memkit_core::{AllocationRequest, MemoryUsage, ResourceKind};

use super::{Coordinator, Shared};
use crate::buffer::COUNTER;
use crate::device::Device;
use crate::error::{Error, NotAliasableReason, Result};
use crate::image::{Image, ImageState};

/// One image of a set that shares memory: its description and the span of steps (the render
/// graph's passes, numbered by the caller) in which it is in use, both ends included. Images
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

/// Images made by [`Coordinator::create_aliased_images`], in the order they were described,
/// and the memory they take.
#[derive(Debug)]
pub struct AliasedImages<D: Device> {
    /// The images, one per description, bound at the offsets the plan gave them.
    pub images: Vec<Image<D>>,
    /// Bytes of the range they share.
    pub bytes: u64,
    /// Bytes they would take each in memory of its own (the sum of their sizes): what aliasing
    /// saved is the difference.
    pub unaliased_bytes: u64,
}

/// The memory a set of aliased images shares.
pub(crate) struct AliasGroup<D: Device> {
    /// The range every image of the set is bound in.
    allocation: RawDeviceAllocation<D::Memory>,
    /// Images of the set not destroyed yet: the range is freed when the last one is.
    live: AtomicUsize,
    /// Every image of the set and its bytes in the memory object (set once, right after the
    /// images are made).
    members: OnceLock<Vec<Member<D>>>,
}

/// One image of an [`AliasGroup`]: weak, so the group (which each image holds) does not keep
/// its images alive.
struct Member<D: Device> {
    state: Weak<ImageState<D>>,
    offset: u64,
    size: u64,
}

/// An image's place in its [`AliasGroup`].
pub(crate) struct AliasLink<D: Device> {
    group: Arc<AliasGroup<D>>,
    index: usize,
}

impl<D: Device> AliasLink<D> {
    /// The image was used by memkit's queue or, by [`Image::mark_written`]'s word, by the
    /// application: every other image of the set sharing bytes with it lost its contents, so
    /// it is not written any more. Called under the submitter's lock, where `written` is set
    /// and read for submissions.
    pub(crate) fn undefine_overlapping(&self) {
        let Some(members) = self.group.members.get() else {
            return;
        };
        let me = &members[self.index];
        for (i, other) in members.iter().enumerate() {
            let overlaps =
                other.offset < me.offset + me.size && me.offset < other.offset + other.size;
            if i != self.index
                && overlaps
                && let Some(state) = other.state.upgrade()
            {
                state.written.store(false, Ordering::Release);
            }
        }
    }

    /// The image was destroyed: the set's range to free when it was the last of the set.
    pub(crate) fn release(&self) -> Option<RawDeviceAllocation<D::Memory>> {
        (self.group.live.fetch_sub(1, Ordering::AcqRel) == 1).then_some(self.group.allocation)
    }
}

impl<D: Device + ImageDevice> Coordinator<D> {
    /// Creates images that share one range of memory where their spans of use do not meet
    /// (memory aliasing of a render graph's transient attachments, as VMA's aliasing images
    /// are used): each image gets the lowest offset clear of every image in use at a step it is
    /// in use at, largest first ([`memkit_core::aliasing::plan_aliasing`]), and the range is
    /// allocated once, in a memory type every image allows, chosen for `usage`.
    ///
    /// The images are ordinary [`Image`]s, with two differences:
    /// - **using one loses what the images overlapping it held**. Memory aliasing gives no
    ///   contents across images: the coordinator marks every image overlapping one as not
    ///   written when it submits an upload into or a read-back of that one, and on
    ///   [`Image::mark_written`] (so a read-back of an overwritten image is refused with
    ///   [`Error::ImageNotWritten`], and the next upload into it discards, starting from an
    ///   undefined layout). The application's own render passes must likewise start an image
    ///   from `VK_IMAGE_LAYOUT_UNDEFINED` in its span, and order each image's last use before
    ///   the first use of any image sharing its bytes (a barrier on one queue; a semaphore, or
    ///   [`Coordinator::wait_for_external`] for memkit's queue, across queues);
    /// - they never move in a defragmentation pass (they count as unmovable and pin their
    ///   block).
    ///
    /// The range is freed once the last of the images is destroyed.
    ///
    /// Errors: [`Error::Aliasing`] for an empty list or a span that ends before it starts
    /// (nothing is created); [`Error::NotAliasable`] when an image's driver requires a memory
    /// object of its own, or no memory type allows it together with the images before it;
    /// otherwise as [`Coordinator::create_image`]. On any error nothing is left behind.
    ///
    /// ```
    /// use memkit_core::device::{ImageDesc, ImageFormat, ImageUsage};
    /// use memkit_dummy::DummyDevice;
    /// use memkit_std::{AliasedImageDesc, Coordinator, CoordinatorConfig, MemoryUsage};
    ///
    /// let coordinator = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default())
    ///     .unwrap();
    /// let target = |format| {
    ///     ImageDesc::new_2d(format, 1920, 1080, ImageUsage::COLOR_ATTACHMENT | ImageUsage::SAMPLED)
    /// };
    /// // Passes 0-1 write and read the G-buffer's albedo; pass 1 lights into HDR, which pass 2
    /// // tone-maps into the LDR target. The albedo and the LDR target are never in use together.
    /// let frame = coordinator
    ///     .create_aliased_images(
    ///         &[
    ///             AliasedImageDesc { desc: target(ImageFormat::Rgba8Unorm), first_use: 0, last_use: 1 },
    ///             AliasedImageDesc { desc: target(ImageFormat::Rgba16Float), first_use: 1, last_use: 2 },
    ///             AliasedImageDesc { desc: target(ImageFormat::Rgba8Unorm), first_use: 2, last_use: 3 },
    ///         ],
    ///         MemoryUsage::FAST_DEVICE_ACCESS,
    ///     )
    ///     .unwrap();
    /// let [albedo, hdr, ldr] = &frame.images[..] else { unreachable!() };
    /// assert_eq!(albedo.memory(), ldr.memory()); // the same bytes
    /// assert_ne!(albedo.memory(), hdr.memory());
    /// assert!(frame.bytes < frame.unaliased_bytes);
    /// ```
    pub fn create_aliased_images(
        &self,
        images: &[AliasedImageDesc],
        usage: MemoryUsage,
    ) -> Result<AliasedImages<D>> {
        let shared = &self.shared;
        shared.with_room(|| shared.try_create_aliased_images(images, usage))
    }
}

impl<D: Device + ImageDevice> Shared<D> {
    /// [`Coordinator::create_aliased_images`], once.
    fn try_create_aliased_images(
        self: &Arc<Self>,
        images: &[AliasedImageDesc],
        usage: MemoryUsage,
    ) -> Result<AliasedImages<D>> {
        self.check_live()?;
        if images.is_empty() {
            return Err(Error::Aliasing(AliasingError::Empty));
        }
        // The plan's own checks, before anything is made (the sizes come from the driver).
        if let Some(index) = images.iter().position(|i| i.last_use < i.first_use) {
            return Err(Error::Aliasing(AliasingError::BadSpan { index }));
        }
        let device = &self.device;
        let mut made = Vec::with_capacity(images.len());
        let destroy_made = |made: &[(D::Image, MemoryRequirements)]| {
            for &(raw, _) in made {
                // SAFETY: created here, never used by the GPU; bound at most to the range
                // that is freed after this.
                unsafe { device.destroy_image(raw) };
            }
        };
        for image in images {
            match device.create_image(&image.desc) {
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
            .zip(images)
            .map(|((_, r), i)| AliasedResource {
                size: r.size,
                alignment: r.alignment,
                first_use: i.first_use,
                last_use: i.last_use,
            })
            .collect();
        let mut scratch = vec![0; 2 * resources.len()];
        let mut offsets = vec![0; resources.len()];
        let plan = match plan_aliasing(&resources, &mut scratch, &mut offsets) {
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
        let request = AllocationRequest::new(requirements, usage).with_kind(ResourceKind::Optimal);
        // Set when a failed bind destroyed the images already.
        let mut images_destroyed = false;
        let region = {
            let mut pools = self.lock_pools();
            match pools.as_mut() {
                None => Err(Error::DeviceLost),
                Some(pools) => match pools.allocate(&request) {
                    Err(e) => Err(Error::from(e)),
                    Ok(region) => {
                        let mut bound = Ok(());
                        for (&(raw, _), &offset) in made.iter().zip(&offsets) {
                            // SAFETY: the image is alive and unbound; the range starts at a
                            // multiple of the largest alignment and each offset is a multiple
                            // of the image's, so the image's start is aligned; its bytes lie
                            // inside the plan's size; the type is allowed by every image's
                            // bits (their intersection was asked for) and none requires a
                            // dedicated object. Images sharing bytes are never in use at the
                            // same step: the plan keeps those whose spans meet apart, and the
                            // images' contract (the caller orders their uses) does the rest.
                            bound = unsafe {
                                device.bind_aliased_image_memory(
                                    raw,
                                    region.memory(),
                                    region.offset() + offset,
                                )
                            };
                            if bound.is_err() {
                                break;
                            }
                        }
                        match bound {
                            Ok(()) => Ok(region),
                            Err(e) => {
                                destroy_made(&made);
                                images_destroyed = true;
                                // SAFETY: never used by the GPU; the images bound to it are
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
                if !images_destroyed {
                    destroy_made(&made);
                }
                return Err(e);
            }
        };
        let group = Arc::new(AliasGroup {
            allocation: region,
            live: AtomicUsize::new(made.len()),
            members: OnceLock::new(),
        });
        let states: Vec<Arc<ImageState<D>>> = made
            .iter()
            .zip(images)
            .zip(&offsets)
            .enumerate()
            .map(|(index, ((&(raw, requirements), image), &offset))| {
                Arc::new(ImageState {
                    key: BufferKey(self.next_key.fetch_add(1, Ordering::Relaxed)),
                    raw,
                    desc: image.desc,
                    // The image's own part of the range, for `Image::memory` and reports;
                    // the range itself is freed through the group, never through this.
                    allocation: RawDeviceAllocation {
                        offset: region.offset + offset,
                        size: requirements.size,
                        mapped: region.mapped.and_then(|p| p.offset(offset)),
                        ..region
                    },
                    alignment: requirements.alignment,
                    last_use: AtomicU64::new(0),
                    written: AtomicBool::new(false),
                    destroyed: AtomicBool::new(false),
                    destroy_raw: super::images::destroy_image::<D>,
                    aliasing: Some(AliasLink {
                        group: Arc::clone(&group),
                        index,
                    }),
                })
            })
            .collect();
        let members = states
            .iter()
            .map(|s| Member {
                state: Arc::downgrade(s),
                offset: s.allocation.offset,
                size: s.allocation.size,
            })
            .collect();
        // Cannot fail: the group was made above and its members are set once, here.
        let _ = group.members.set(members);
        let mut live = self.live_images.lock().unwrap_or_else(|e| e.into_inner());
        for state in &states {
            live.insert(state.key, Arc::downgrade(state));
        }
        drop(live);
        self.counters
            .images_created
            .fetch_add(states.len() as u64, COUNTER);
        Ok(AliasedImages {
            images: states
                .into_iter()
                .map(|state| Image {
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
