//! What one [`TransferScheduler::plan`](super::TransferScheduler::plan) produces: copy batches, one
//! or more per destination buffer, and the unaligned edges the backend writes another way.
#![forbid(unsafe_code)]

use core::fmt;
use core::iter::FusedIterator;

use super::{BufferKey, CopyRegion, SchedulerConfig, UploadSlot, dst_end};

/// The planned transfers of one [`TransferScheduler::plan`](super::TransferScheduler::plan).
///
/// Every destination byte of the planned uploads that no later upload overwrote lies in exactly
/// one copy region or one unaligned write, and carries the source byte of the latest upload that
/// wrote it. Nothing outside the uploads' destination ranges is written, and no region is read
/// from outside the uploads' source ranges. Because all ranges of a plan are disjoint, the batches
/// and the unaligned writes may execute in any order relative to each other.
#[derive(Clone, Copy, Debug)]
pub struct TransferPlan<'a> {
    /// Slot `g` is the header of destination group `g` (see `UploadSlot`).
    groups: &'a [UploadSlot],
    /// All copy regions, grouped by destination, ascending destination offsets within a group.
    copies: &'a [CopyRegion],
    /// All unaligned writes, stored last-first.
    unaligned: &'a [CopyRegion],
    config: SchedulerConfig,
}

impl<'a> TransferPlan<'a> {
    pub(super) fn new(
        groups: &'a [UploadSlot],
        copies: &'a [CopyRegion],
        unaligned: &'a [CopyRegion],
        config: SchedulerConfig,
    ) -> Self {
        Self {
            groups,
            copies,
            unaligned,
            config,
        }
    }

    /// True when there is nothing to transfer.
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty() && self.unaligned.is_empty()
    }

    /// The copy commands to record: per destination buffer, regions in ascending destination
    /// order, at most `max_regions_per_batch` per batch.
    pub fn batches(&self) -> CopyBatches<'a> {
        CopyBatches {
            groups: self.groups,
            copies: self.copies,
            group: 0,
            at: 0,
            max: self.config.max_regions_per_batch as usize,
        }
    }

    /// Every copy region of the plan, grouped by destination (the batches' regions, concatenated).
    pub fn copy_regions(&self) -> &'a [CopyRegion] {
        self.copies
    }

    /// The ranges the copy alignment does not allow to copy, for the backend to write another way
    /// (a CPU write into mapped memory, an update command, a compute shader), in destination order.
    pub fn unaligned_writes(&self) -> UnalignedWrites<'a> {
        UnalignedWrites {
            groups: self.groups,
            unaligned: self.unaligned,
            group: 0,
            done: 0,
            align_mask: self.config.copy_alignment - 1,
        }
    }

    /// Number of unaligned writes.
    pub fn unaligned_count(&self) -> usize {
        self.unaligned.len()
    }

    /// Number of distinct destination buffers in the plan.
    pub fn destination_count(&self) -> usize {
        self.groups.len()
    }
}

/// One copy command: regions from the staging buffer into `destination`, destination ranges
/// disjoint and ascending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyBatch<'a> {
    /// The destination buffer.
    pub destination: BufferKey,
    /// The regions, at least one, at most `max_regions_per_batch`.
    pub regions: &'a [CopyRegion],
}

/// Iterator over a plan's [`CopyBatch`]es.
#[derive(Clone, Debug)]
pub struct CopyBatches<'a> {
    groups: &'a [UploadSlot],
    copies: &'a [CopyRegion],
    group: usize,
    /// Next region to hand out.
    at: usize,
    max: usize,
}

impl<'a> Iterator for CopyBatches<'a> {
    type Item = CopyBatch<'a>;

    fn next(&mut self) -> Option<CopyBatch<'a>> {
        loop {
            let header = self.groups.get(self.group)?;
            let group_end = header.seq as usize;
            if self.at >= group_end {
                // This group is done (or produced only unaligned writes).
                self.group += 1;
                continue;
            }
            // `at < group_end`: no overflow, where `at + max` could (a `max` of `u32::MAX` on a
            // 32-bit target).
            let end = self.at + (group_end - self.at).min(self.max);
            let batch = CopyBatch {
                destination: header.buffer,
                regions: &self.copies[self.at..end],
            };
            self.at = end;
            return Some(batch);
        }
    }
}

impl FusedIterator for CopyBatches<'_> {}

/// Why a range could not go into a copy region.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnalignedCause {
    /// Its source and destination offsets differ modulo the copy alignment, so no byte of it can
    /// be copied at aligned offsets, however long it is. The coordinator avoids this by staging
    /// each upload at a ring offset congruent to its destination offset.
    SourcePhase,
    /// The start of a run, below its first aligned destination offset.
    Head,
    /// The end of a run, past its last aligned destination offset.
    Tail,
    /// A whole run with neither end aligned and no aligned block inside (shorter than twice
    /// the alignment).
    Short,
}

impl fmt::Display for UnalignedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SourcePhase => "source and destination offsets differ modulo the copy alignment",
            Self::Head => "head before the first aligned offset",
            Self::Tail => "tail after the last aligned offset",
            Self::Short => "too short to hold an aligned block",
        })
    }
}

/// A range to write without a copy command. Its bytes are at `region.src_offset` of the staging
/// buffer; it lies inside one upload's range (or several adjacent ones), never outside them.
/// Except for [`UnalignedCause::SourcePhase`], it is shorter than twice the copy alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnalignedWrite {
    /// The destination buffer.
    pub destination: BufferKey,
    /// Source, destination and size.
    pub region: CopyRegion,
    /// Why it is not a copy region.
    pub cause: UnalignedCause,
}

/// Iterator over a plan's [`UnalignedWrite`]s.
#[derive(Clone, Debug)]
pub struct UnalignedWrites<'a> {
    groups: &'a [UploadSlot],
    unaligned: &'a [CopyRegion],
    group: usize,
    /// Unaligned writes handed out so far.
    done: usize,
    align_mask: u64,
}

impl Iterator for UnalignedWrites<'_> {
    type Item = UnalignedWrite;

    fn next(&mut self) -> Option<UnalignedWrite> {
        let region = *self
            .unaligned
            .len()
            .checked_sub(self.done + 1)
            .map(|i| &self.unaligned[i])?;
        // Group `g`'s header counts the unaligned writes of groups `0..=g`.
        while self.groups.get(self.group)?.heap as usize <= self.done {
            self.group += 1;
        }
        self.done += 1;
        let mask = self.align_mask;
        let cause = if (region.src_offset ^ region.dst_offset) & mask != 0 {
            UnalignedCause::SourcePhase
        } else {
            match (region.dst_offset & mask == 0, dst_end(&region) & mask == 0) {
                (false, true) => UnalignedCause::Head,
                (true, false) => UnalignedCause::Tail,
                _ => UnalignedCause::Short,
            }
        };
        Some(UnalignedWrite {
            destination: self.groups[self.group].buffer,
            region,
            cause,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.unaligned.len() - self.done;
        (left, Some(left))
    }
}

impl ExactSizeIterator for UnalignedWrites<'_> {}
impl FusedIterator for UnalignedWrites<'_> {}
