//! Memory aliasing of transient resources: places resources that are never in use at the same
//! time at overlapping offsets of one memory range, as a render graph does with the attachments
//! of one frame (a G-buffer, a bloom chain and a post-processing target need not all exist at
//! once).
//!
//! Each resource names its size, its alignment and the span of steps (render passes, say) in
//! which it is used, both ends included. [`plan_aliasing`] gives each an offset such that two
//! resources whose spans meet never share a byte, and returns how large the range must be. The
//! caller provides the scratch storage, so nothing is allocated.
//!
//! Placement is greedy, largest first, each at the lowest aligned offset that is clear of every
//! placed resource whose span meets its own: `O(n² log n)` for `n` resources, a fraction of a
//! millisecond for the few hundred a frame graph has. The range is never smaller than the most
//! bytes in use at one step, and never larger than all sizes laid end to end with their
//! alignment (what placing them without aliasing takes).
//!
//! Buffers and images may share one range. A linear resource (a buffer) and an optimal one (an
//! optimal-tiled image) in use together are kept off each other's pages of
//! `bufferImageGranularity` bytes, since the device treats resources of the two kinds on one
//! page as aliased; and a range that mixes the kinds starts and ends on a page boundary, so that
//! nothing outside it shares a page with what is inside.
#![forbid(unsafe_code)]

use core::fmt;

use crate::usage::ResourceKind;

/// One resource to place: `size` bytes at a multiple of `alignment`, in use from step
/// `first_use` to step `last_use`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AliasedResource {
    /// Bytes it takes (its memory requirements' size).
    pub size: u64,
    /// Its offset must be a multiple of this power of two.
    pub alignment: u64,
    /// Linear (a buffer) or optimal (an optimal-tiled image), for `bufferImageGranularity`.
    pub kind: ResourceKind,
    /// The first step that uses it.
    pub first_use: u32,
    /// The last step that uses it (at least `first_use`).
    pub last_use: u32,
}

impl AliasedResource {
    /// Whether the two are in use at some common step: only then may they not share bytes (nor,
    /// when their kinds differ, a page of `bufferImageGranularity` bytes).
    pub const fn in_use_together(&self, other: &Self) -> bool {
        self.first_use <= other.last_use && other.first_use <= self.last_use
    }
}

/// The range a plan needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AliasingPlan {
    /// Bytes from offset 0 to the end of the last resource; when the resources mix linear and
    /// optimal ones, rounded up to a whole page of `bufferImageGranularity`.
    pub size: u64,
    /// The largest alignment asked for (and at least the granularity when the kinds mix): the
    /// range's start must be a multiple of it for every offset of the plan to be aligned, and
    /// its pages to be the device's pages.
    pub alignment: u64,
}

/// Why [`plan_aliasing`] placed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AliasingError {
    /// There is no resource to place.
    Empty,
    /// `scratch` is shorter than `2 * resources.len()`, or `offsets` than `resources.len()`.
    StorageTooSmall {
        /// Entries the plan needs in `scratch`.
        scratch: usize,
        /// Entries the plan needs in `offsets`.
        offsets: usize,
    },
    /// More resources than a `u32` index can name.
    TooManyResources,
    /// The resource at `index` has a zero size.
    ZeroSize {
        /// Its position in `resources`.
        index: usize,
    },
    /// The resource at `index` has an alignment that is not a power of two.
    BadAlignment {
        /// Its position in `resources`.
        index: usize,
    },
    /// The resource at `index` ends before it starts (`last_use < first_use`).
    BadSpan {
        /// Its position in `resources`.
        index: usize,
    },
    /// `bufferImageGranularity` is not a power of two (Vulkan guarantees one; 1 keeps no pages
    /// apart).
    BadGranularity,
    /// The range would pass `u64::MAX` bytes.
    Overflow,
}

impl fmt::Display for AliasingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no resource to place"),
            Self::StorageTooSmall { scratch, offsets } => write!(
                f,
                "storage too small: the plan needs {scratch} scratch entries and {offsets} offsets"
            ),
            Self::TooManyResources => write!(f, "more resources than a u32 index names"),
            Self::ZeroSize { index } => write!(f, "resource {index} has a zero size"),
            Self::BadAlignment { index } => {
                write!(
                    f,
                    "resource {index} has an alignment that is not a power of two"
                )
            }
            Self::BadSpan { index } => {
                write!(f, "resource {index} is last used before its first use")
            }
            Self::BadGranularity => {
                write!(f, "the buffer-image granularity is not a power of two")
            }
            Self::Overflow => write!(f, "the range would pass u64::MAX bytes"),
        }
    }
}

impl core::error::Error for AliasingError {}

/// Places `resources` in one range: on success `offsets[i]` is resource `i`'s offset (a multiple
/// of its alignment), no two resources in use together overlap, a linear and an optimal
/// resource in use together share no page of `buffer_image_granularity` bytes, and the returned
/// plan says how large and how aligned the range must be. `scratch` needs
/// `2 * resources.len()` entries and `offsets` `resources.len()`; extra entries are left alone.
/// The same input always gives the same plan.
///
/// ```
/// use memkit_core::aliasing::{plan_aliasing, AliasedResource};
/// use memkit_core::ResourceKind::{Linear, Optimal};
///
/// // Three render targets of a frame: the G-buffer (passes 0-1), the lighting result (1-2)
/// // and the bloom target (2-3). The G-buffer and bloom are never in use together. A light
/// // list buffer, used by the lighting pass, goes on a page of its own above the lighting
/// // result (granularity 1 KiB).
/// let mib = 1 << 20;
/// let target = |size, first_use, last_use| AliasedResource {
///     size, alignment: 65536, kind: Optimal, first_use, last_use,
/// };
/// let resources = [
///     target(32 * mib, 0, 1),
///     target(16 * mib, 1, 2),
///     target(8 * mib, 2, 3),
///     AliasedResource { size: 100, alignment: 16, kind: Linear, first_use: 1, last_use: 1 },
/// ];
/// let mut scratch = [0; 8];
/// let mut offsets = [0; 4];
/// let plan = plan_aliasing(&resources, 1024, &mut scratch, &mut offsets).unwrap();
/// assert_eq!(offsets, [0, 32 * mib, 0, 48 * mib]); // bloom reuses the G-buffer's bytes
/// assert_eq!(plan.size, 48 * mib + 1024); // instead of 56 MiB and a page without aliasing
/// ```
pub fn plan_aliasing(
    resources: &[AliasedResource],
    buffer_image_granularity: u64,
    scratch: &mut [u32],
    offsets: &mut [u64],
) -> Result<AliasingPlan, AliasingError> {
    let n = resources.len();
    if n == 0 {
        return Err(AliasingError::Empty);
    }
    if !buffer_image_granularity.is_power_of_two() {
        return Err(AliasingError::BadGranularity);
    }
    if u32::try_from(n).is_err() {
        return Err(AliasingError::TooManyResources);
    }
    let needed = n.saturating_mul(2);
    if scratch.len() < needed || offsets.len() < n {
        return Err(AliasingError::StorageTooSmall {
            scratch: needed,
            offsets: n,
        });
    }
    let mut alignment = 1;
    for (index, r) in resources.iter().enumerate() {
        if r.size == 0 {
            return Err(AliasingError::ZeroSize { index });
        }
        if !r.alignment.is_power_of_two() {
            return Err(AliasingError::BadAlignment { index });
        }
        if r.last_use < r.first_use {
            return Err(AliasingError::BadSpan { index });
        }
        alignment = alignment.max(r.alignment);
    }
    let mixed = resources.iter().any(|r| r.kind != resources[0].kind);
    // Within one kind, pages do not matter: a granularity of 1 keeps nothing apart.
    let granularity = if mixed { buffer_image_granularity } else { 1 };
    alignment = alignment.max(granularity);
    let (order, conflicts) = scratch[..needed].split_at_mut(n);
    for (i, slot) in order.iter_mut().enumerate() {
        // Cannot truncate: `n` fits a u32 (checked above).
        *slot = i as u32;
    }
    // Largest first: big resources fill the bottom of the range, small ones fill the gaps
    // between them. Ties go to the earlier first use, then to the position, so the order (and
    // the plan) is the same on every run.
    order.sort_unstable_by(|&a, &b| {
        let (ra, rb) = (&resources[a as usize], &resources[b as usize]);
        rb.size
            .cmp(&ra.size)
            .then(ra.first_use.cmp(&rb.first_use))
            .then(a.cmp(&b))
    });
    let mut size = 0u64;
    for placed in 0..n {
        let index = order[placed] as usize;
        let resource = &resources[index];
        // Every resource placed before this one that is in use with it, lowest offset first.
        let mut count = 0;
        for &other in &order[..placed] {
            if resources[other as usize].in_use_together(resource) {
                conflicts[count] = other;
                count += 1;
            }
        }
        let conflicts = &mut conflicts[..count];
        // What each conflict keeps this resource out of: its bytes, widened to whole pages when
        // its kind differs.
        let keep_out = |other: u32| {
            let other = other as usize;
            let (start, end) = (offsets[other], offsets[other] + resources[other].size);
            if granularity == 1 || resources[other].kind == resource.kind {
                (start, Some(end))
            } else {
                (start & !(granularity - 1), align_up(end, granularity))
            }
        };
        if granularity == 1 {
            // One kind (the common case): the ranges are the bytes themselves.
            conflicts.sort_unstable_by_key(|&other| (offsets[other as usize], other));
        } else {
            conflicts.sort_unstable_by_key(|&other| (keep_out(other).0, other));
        }
        // Sweep up through them: `cursor` is the end of the highest range met so far, so the
        // space between it and the next range's start is free of every conflict.
        let mut cursor = 0u64;
        let mut offset = None;
        for &other in conflicts.iter() {
            let start = align_up(cursor, resource.alignment).ok_or(AliasingError::Overflow)?;
            let (other_start, other_end) = keep_out(other);
            if start
                .checked_add(resource.size)
                .is_some_and(|end| end <= other_start)
            {
                offset = Some(start);
                break;
            }
            cursor = cursor.max(other_end.ok_or(AliasingError::Overflow)?);
        }
        let offset = match offset {
            Some(offset) => offset,
            None => align_up(cursor, resource.alignment).ok_or(AliasingError::Overflow)?,
        };
        let end = offset
            .checked_add(resource.size)
            .ok_or(AliasingError::Overflow)?;
        offsets[index] = offset;
        size = size.max(end);
    }
    let size = align_up(size, granularity).ok_or(AliasingError::Overflow)?;
    Ok(AliasingPlan { size, alignment })
}

/// `value` rounded up to a multiple of `alignment` (a power of two); `None` past `u64::MAX`.
fn align_up(value: u64, alignment: u64) -> Option<u64> {
    Some(value.checked_add(alignment - 1)? & !(alignment - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(size: u64, alignment: u64, first_use: u32, last_use: u32) -> AliasedResource {
        AliasedResource {
            size,
            alignment,
            kind: ResourceKind::Optimal,
            first_use,
            last_use,
        }
    }

    fn buffer(size: u64, alignment: u64, first_use: u32, last_use: u32) -> AliasedResource {
        AliasedResource {
            kind: ResourceKind::Linear,
            ..resource(size, alignment, first_use, last_use)
        }
    }

    /// The plan with a granularity of 1 KiB.
    fn plan(resources: &[AliasedResource]) -> (Result<AliasingPlan, AliasingError>, [u64; 8]) {
        let mut scratch = [0; 16];
        let mut offsets = [0; 8];
        let result = plan_aliasing(resources, 1024, &mut scratch, &mut offsets);
        (result, offsets)
    }

    #[test]
    fn a_buffer_in_use_with_an_image_keeps_off_its_pages() {
        // The image (0-1) takes [0, 1500): pages 0 and 1. The buffer in use with it starts on
        // page 2, not at 1500; the range ends on a page boundary.
        let (result, offsets) = plan(&[resource(1500, 4, 0, 1), buffer(100, 4, 1, 1)]);
        assert_eq!(
            result,
            Ok(AliasingPlan {
                size: 3072,
                alignment: 1024
            })
        );
        assert_eq!(offsets[..2], [0, 2048]);
        // Of one kind, they lie side by side.
        let (result, offsets) = plan(&[buffer(1500, 4, 0, 1), buffer(100, 4, 1, 1)]);
        assert_eq!(
            result,
            Ok(AliasingPlan {
                size: 1600,
                alignment: 4
            })
        );
        assert_eq!(offsets[..2], [0, 1500]);
    }

    #[test]
    fn a_buffer_never_in_use_with_an_image_shares_its_bytes() {
        let (result, offsets) = plan(&[resource(1500, 4, 0, 0), buffer(100, 4, 1, 1)]);
        assert_eq!(result.map(|p| p.size), Ok(2048));
        assert_eq!(offsets[..2], [0, 0]);
    }

    #[test]
    fn a_page_gap_between_images_is_too_small_for_a_buffer_of_another_kind() {
        // Images at [0, 1100) and [2048, 3048) (B's alignment leaves a gap), both in use with
        // the buffer: the bytes between them lie on page 1, which the first image touches, so
        // the buffer goes above both, on a page of its own.
        let (result, offsets) = plan(&[
            resource(1100, 4, 0, 2),
            resource(1000, 2048, 0, 2),
            buffer(10, 4, 1, 1),
        ]);
        assert_eq!(offsets[..3], [0, 2048, 3072]);
        assert_eq!(result.map(|p| p.size), Ok(4096));
        // The same gap takes an image.
        let (_, offsets) = plan(&[
            resource(1100, 4, 0, 2),
            resource(1000, 2048, 0, 2),
            resource(10, 4, 1, 1),
        ]);
        assert_eq!(offsets[..3], [0, 2048, 1100]);
        // A gap on a page neither image touches takes the buffer.
        let (_, offsets) = plan(&[
            resource(1000, 4, 0, 2),
            resource(1000, 2048, 0, 2),
            buffer(10, 4, 1, 1),
        ]);
        assert_eq!(offsets[..3], [0, 2048, 1024]);
    }

    #[test]
    fn resources_never_in_use_together_share_their_bytes() {
        let (result, offsets) = plan(&[resource(100, 4, 0, 0), resource(100, 4, 1, 1)]);
        assert_eq!(
            result,
            Ok(AliasingPlan {
                size: 100,
                alignment: 4
            })
        );
        assert_eq!(offsets[..2], [0, 0]);
    }

    #[test]
    fn resources_in_use_at_one_step_lie_side_by_side_at_their_alignment() {
        // Both in use at step 1; the second, smaller one goes above the first, aligned.
        let (result, offsets) = plan(&[resource(100, 4, 0, 1), resource(10, 64, 1, 2)]);
        assert_eq!(
            result,
            Ok(AliasingPlan {
                size: 138,
                alignment: 64
            })
        );
        assert_eq!(offsets[..2], [0, 128]);
    }

    #[test]
    fn a_small_resource_fills_a_gap_between_two_placed_ones() {
        // A (0-3) and C (2-3) are placed first; B (0-1) meets A but not C, so it goes to the
        // lowest offset clear of A: the bytes C uses later.
        let (result, offsets) = plan(&[
            resource(64, 1, 0, 3),
            resource(32, 1, 0, 1),
            resource(48, 1, 2, 3),
        ]);
        assert_eq!(result.map(|p| p.size), Ok(112));
        assert_eq!(offsets[..3], [0, 64, 64]);
    }

    #[test]
    fn a_gap_too_small_is_passed_over_and_a_later_one_fills_it() {
        // A (0-1) at 0; B (1-2) above A; C (2-3) meets only B, so it goes below B, at 0. At step
        // 2, B and C leave a 20-byte hole at 80: D (30 bytes) passes it and goes above B, and E
        // (20 bytes, placed after D) fills it exactly.
        let (result, offsets) = plan(&[
            resource(100, 1, 0, 1),
            resource(90, 1, 1, 2),
            resource(80, 1, 2, 3),
            resource(30, 1, 2, 2),
            resource(20, 1, 2, 2),
        ]);
        assert_eq!(result.map(|p| p.size), Ok(220));
        assert_eq!(offsets[..5], [0, 100, 0, 190, 80]);
    }

    #[test]
    fn bad_input_is_refused_with_the_resource_named() {
        assert_eq!(plan(&[]).0, Err(AliasingError::Empty));
        assert_eq!(
            plan(&[resource(1, 1, 0, 0), resource(0, 1, 0, 0)]).0,
            Err(AliasingError::ZeroSize { index: 1 })
        );
        assert_eq!(
            plan(&[resource(1, 3, 0, 0)]).0,
            Err(AliasingError::BadAlignment { index: 0 })
        );
        assert_eq!(
            plan(&[resource(1, 1, 0, 0), resource(1, 1, 2, 1)]).0,
            Err(AliasingError::BadSpan { index: 1 })
        );
        assert_eq!(
            plan(&[resource(u64::MAX, 1, 0, 0), resource(1, 1, 0, 0)]).0,
            Err(AliasingError::Overflow)
        );
        let mut scratch = [0; 4];
        let mut offsets = [0; 2];
        for granularity in [0, 3, 1000] {
            assert_eq!(
                plan_aliasing(
                    &[resource(1, 1, 0, 0)],
                    granularity,
                    &mut scratch,
                    &mut offsets
                ),
                Err(AliasingError::BadGranularity)
            );
        }
        assert_eq!(
            plan(&[resource(u64::MAX - 100, 1, 0, 0), buffer(1, 1, 1, 1)]).0,
            Err(AliasingError::Overflow),
            "the range rounded to a page passes u64::MAX"
        );
        let mut scratch = [0; 3];
        assert_eq!(
            plan_aliasing(
                &[resource(1, 1, 0, 0), resource(1, 1, 0, 0)],
                1,
                &mut scratch,
                &mut offsets
            ),
            Err(AliasingError::StorageTooSmall {
                scratch: 4,
                offsets: 2
            })
        );
    }
}
