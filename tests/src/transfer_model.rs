//! A model of what uploads must do to destination buffers: a byte map per destination, written
//! directly in issue order. The real [`TransferScheduler`]'s plans are applied onto a second byte
//! map; after every plan both must be identical byte for byte. Proptest (`tests/tests/`) and
//! cargo-fuzz (`fuzz/`) both drive it, so a failure found by one reproduces in the other.
//!
//! Besides the bytes, every plan is checked for: destination ranges disjoint (within a batch and
//! across the whole plan), nothing written outside the uploads' destination ranges, every copy
//! region aligned, batches within the region limit and each destination's batches adjacent,
//! unaligned writes small and with the right cause, and the statistics equal to what the model
//! counts (visible pieces, overwritten bytes, regions never more than visible pieces).

use std::fmt::Write as _;
use std::vec::Vec;

use memkit_core::scheduler::{
    BufferKey, CopyRegion, EMPTY_REGION, PushErrorKind, SchedulerConfig, TransferScheduler,
    UnalignedCause, Upload, UploadSlot, dst_end,
};

/// Destination buffers the workloads write.
pub const BUFFERS: usize = 4;
/// Bytes per destination buffer.
pub const BUFFER_SIZE: u64 = 512;

/// The scheduler type the model drives (heap-backed storage, as the coordinator would use).
pub type ModelScheduler = TransferScheduler<Vec<UploadSlot>, Vec<CopyRegion>>;

/// Where an upload's bytes are staged in the ring, relative to the previous upload.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub enum SourcePlacement {
    /// Right after the previous upload (wrapping to the ring's start when it does not fit).
    Next,
    /// At the next ring offset congruent to the destination offset modulo the copy alignment,
    /// as a coordinator does when it wants no unaligned writes.
    Congruent,
    /// After a gap of this many bytes.
    Gap(u8),
}

/// One upload of a workload.
#[derive(Clone, Copy, Debug, arbitrary::Arbitrary)]
pub struct UploadOp {
    /// Destination buffer, modulo [`BUFFERS`].
    pub buffer: u8,
    /// Destination offset, modulo [`BUFFER_SIZE`].
    pub dst_offset: u16,
    /// Size: `1 + size % 64` mostly; 1 in 8 uploads up to the rest of the buffer.
    pub size: u16,
    /// Where its bytes are staged.
    pub source: SourcePlacement,
}

/// A whole workload: a scheduler configuration and the uploads, in issue order.
#[derive(Clone, Debug, arbitrary::Arbitrary)]
pub struct TransferWorkload {
    /// Copy alignment `1 << (copy_alignment_log2 % 4)`.
    pub copy_alignment_log2: u8,
    /// Regions per batch `1 + max_regions % 16`.
    pub max_regions: u8,
    /// Upload slots `1 + queue_capacity % 64`; a full queue is planned and the push retried.
    pub queue_capacity: u8,
    /// The uploads.
    pub ops: Vec<UploadOp>,
}

/// What a run saw, so tests can tell whether a workload exercised anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Plans made.
    pub plans: u64,
    /// Uploads pushed.
    pub uploads: u64,
    /// Copy regions emitted.
    pub copy_regions: u64,
    /// Unaligned writes emitted.
    pub unaligned_writes: u64,
    /// Bytes overwritten by later uploads.
    pub bytes_overwritten: u64,
    /// Pushes refused with a full queue (and retried after a plan).
    pub queue_full: u64,
}

/// The model: a staging ring's bytes and two byte maps of the destinations, one written directly
/// in issue order (`expected`) and one written only through the scheduler's plans (`actual`).
pub struct TransferModel {
    ring: Vec<u8>,
    /// The plan round in which each ring byte was staged (0 = never): bytes staged in the
    /// current round must not be overwritten before the round is planned and applied.
    ring_round: Vec<u32>,
    cursor: u64,
    round: u32,
    /// Fresh bytes for every staged upload, so a byte copied from the wrong place shows.
    stamp: u32,
    expected: Vec<Vec<u8>>,
    actual: Vec<Vec<u8>>,
    /// This round's uploads, in issue order.
    round_uploads: Vec<Upload>,
    copy_alignment: u64,
    max_regions: usize,
}

impl TransferModel {
    /// A model for a scheduler with `config`, with destinations full of a fill pattern.
    pub fn new(config: SchedulerConfig, ring_size: u64) -> Self {
        let fill: Vec<u8> = (0..BUFFER_SIZE).map(|i| 0xA5 ^ (i as u8)).collect();
        Self {
            ring: vec![0; ring_size as usize],
            ring_round: vec![0; ring_size as usize],
            cursor: 0,
            round: 1,
            stamp: 0,
            expected: vec![fill.clone(); BUFFERS],
            actual: vec![fill; BUFFERS],
            round_uploads: Vec::new(),
            copy_alignment: config.copy_alignment,
            max_regions: config.max_regions_per_batch as usize,
        }
    }

    /// Stages an upload's bytes in the ring and returns it, or `None` when the ring has no room
    /// without overwriting bytes staged this round (plan first, then stage again).
    pub fn stage(&mut self, op: UploadOp) -> Option<Upload> {
        let buffer = usize::from(op.buffer) % BUFFERS;
        let dst = u64::from(op.dst_offset) % BUFFER_SIZE;
        let room = BUFFER_SIZE - dst;
        let size = if op.size % 8 == 7 {
            1 + u64::from(op.size / 8) % room
        } else {
            1 + u64::from(op.size) % 64.min(room)
        };
        let ring_len = self.ring.len() as u64;
        let mask = self.copy_alignment - 1;
        let mut src = match op.source {
            SourcePlacement::Next => self.cursor,
            SourcePlacement::Congruent => self.cursor + ((dst.wrapping_sub(self.cursor)) & mask),
            SourcePlacement::Gap(g) => self.cursor + u64::from(g),
        };
        if src + size > ring_len {
            // Wrap, keeping the congruence when asked for it.
            src = match op.source {
                SourcePlacement::Congruent => dst & mask,
                _ => 0,
            };
        }
        let range = src as usize..(src + size) as usize;
        if self.ring_round[range.clone()].contains(&self.round) {
            return None;
        }
        self.stamp = self.stamp.wrapping_add(1);
        for (i, byte) in self.ring[range.clone()].iter_mut().enumerate() {
            // A byte pattern that differs between uploads and along one upload.
            *byte = (self.stamp.wrapping_mul(0x9E37_79B1) >> 24) as u8 ^ (i as u8).wrapping_mul(3);
        }
        self.ring_round[range].fill(self.round);
        self.cursor = src + size;
        Some(Upload {
            src_offset: src,
            destination: BufferKey(buffer as u64),
            dst_offset: dst,
            size,
        })
    }

    /// Marks a staged upload's ring bytes as belonging to the current round again: it was staged
    /// before a plan and is pushed after it, so its bytes must stay until the next plan.
    pub fn restage(&mut self, upload: Upload) {
        let s = upload.src_offset as usize;
        self.ring_round[s..s + upload.size as usize].fill(self.round);
    }

    /// Applies a pushed upload to the expected bytes, in issue order.
    pub fn record(&mut self, upload: Upload) {
        let (s, d, n) = (
            upload.src_offset as usize,
            upload.dst_offset as usize,
            upload.size as usize,
        );
        self.expected[upload.destination.0 as usize][d..d + n]
            .copy_from_slice(&self.ring[s..s + n]);
        self.round_uploads.push(upload);
    }

    /// Plans everything pending, checks the plan, applies it onto the actual bytes and compares
    /// them with the expected bytes.
    pub fn plan_and_check(&mut self, scheduler: &mut ModelScheduler) -> Result<(), String> {
        let before = scheduler.stats();
        let uploads = std::mem::take(&mut self.round_uploads);
        let winners = self.winners(&uploads);
        let plan = scheduler.plan();
        let mut problems = String::new();
        // Which destination bytes this plan wrote, to prove disjointness and containment.
        let mut written = vec![vec![false; BUFFER_SIZE as usize]; BUFFERS];
        let mut writes: Vec<(BufferKey, CopyRegion)> = Vec::new();
        let mut seen_destinations: Vec<BufferKey> = Vec::new();
        let mut copy_regions = 0u64;
        for batch in plan.batches() {
            if batch.regions.is_empty() || batch.regions.len() > self.max_regions {
                let _ = write!(problems, "batch of {} regions; ", batch.regions.len());
            }
            if seen_destinations.last() != Some(&batch.destination) {
                if seen_destinations.contains(&batch.destination) {
                    let _ = write!(
                        problems,
                        "{:?} in non-adjacent batches; ",
                        batch.destination
                    );
                }
                seen_destinations.push(batch.destination);
            }
            for (i, r) in batch.regions.iter().enumerate() {
                if (r.src_offset | r.dst_offset | r.size) & (self.copy_alignment - 1) != 0 {
                    let _ = write!(problems, "unaligned copy region {r:?}; ");
                }
                if i > 0 && dst_end(&batch.regions[i - 1]) > r.dst_offset {
                    let _ = write!(
                        problems,
                        "regions {:?} and {r:?} overlap or are unsorted; ",
                        batch.regions[i - 1]
                    );
                }
                writes.push((batch.destination, *r));
                copy_regions += 1;
            }
        }
        let mut unaligned = 0u64;
        for w in plan.unaligned_writes() {
            let r = w.region;
            let phase_differs = (r.src_offset ^ r.dst_offset) & (self.copy_alignment - 1) != 0;
            if phase_differs != (w.cause == UnalignedCause::SourcePhase) {
                let _ = write!(problems, "unaligned write {w:?} has the wrong cause; ");
            }
            if !phase_differs && r.size >= 2 * self.copy_alignment {
                let _ = write!(
                    problems,
                    "unaligned write {w:?} holds a whole aligned block; "
                );
            }
            if self.copy_alignment == 1 {
                let _ = write!(problems, "unaligned write {w:?} with no copy alignment; ");
            }
            writes.push((w.destination, r));
            unaligned += 1;
        }
        // Apply the unaligned writes first and the batches last to first: a plan's ranges are
        // disjoint, so the order must not matter.
        writes.reverse();
        for (dst, r) in writes {
            let b = dst.0 as usize;
            for i in 0..r.size {
                let (s, d) = ((r.src_offset + i) as usize, (r.dst_offset + i) as usize);
                if d >= BUFFER_SIZE as usize || s >= self.ring.len() {
                    let _ = write!(problems, "{r:?} outside buffer or ring; ");
                    break;
                }
                if winners[b][d].is_none() {
                    let _ = write!(
                        problems,
                        "{r:?} writes byte {d} of {dst:?} no upload covers; "
                    );
                    break;
                }
                if written[b][d] {
                    let _ = write!(problems, "byte {d} of {dst:?} written twice in one plan; ");
                    break;
                }
                written[b][d] = true;
                self.actual[b][d] = self.ring[s];
            }
        }
        // Statistics against the model's own count.
        let after = scheduler.stats();
        let planned_bytes: u64 = uploads.iter().map(|u| u.size).sum();
        let (visible, pieces) = count_pieces(&winners);
        let n = uploads.len() as u64;
        let overlaps = visible < planned_bytes || pieces > n;
        let delta = |f: fn(&memkit_core::scheduler::SchedulerStats) -> u64| f(&after) - f(&before);
        if delta(|s| s.uploads_planned) != n || delta(|s| s.plans) != 1 {
            let _ = write!(problems, "planned-uploads counter off; ");
        }
        if delta(|s| s.bytes_overwritten) != planned_bytes - visible {
            let _ = write!(
                problems,
                "bytes overwritten {} vs model {}; ",
                delta(|s| s.bytes_overwritten),
                planned_bytes - visible
            );
        }
        if delta(|s| s.regions_before_merge) != pieces {
            let _ = write!(
                problems,
                "regions before merge {} vs model {pieces}; ",
                delta(|s| s.regions_before_merge)
            );
        }
        if delta(|s| s.copy_regions) != copy_regions || delta(|s| s.unaligned_writes) != unaligned {
            let _ = write!(problems, "region counters disagree with the plan; ");
        }
        if copy_regions > pieces || (n > 0 && pieces > 2 * n - 1) || (!overlaps && copy_regions > n)
        {
            let _ = write!(
                problems,
                "{copy_regions} regions from {pieces} pieces of {n} uploads; "
            );
        }
        if delta(|s| s.copy_bytes) + delta(|s| s.unaligned_bytes) != visible {
            let _ = write!(problems, "byte counters disagree with the visible bytes; ");
        }
        for b in 0..BUFFERS {
            for d in 0..BUFFER_SIZE as usize {
                if written[b][d] != winners[b][d].is_some() {
                    let _ = write!(
                        problems,
                        "byte {d} of buffer {b} uploaded but not written; "
                    );
                    break;
                }
            }
            if self.actual[b] != self.expected[b] {
                let d =
                    (0..BUFFER_SIZE as usize).find(|&d| self.actual[b][d] != self.expected[b][d]);
                let _ = write!(
                    problems,
                    "buffer {b} differs from the model first at byte {d:?}; "
                );
            }
        }
        self.round += 1;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Per destination byte, the index (in `uploads`) of the last upload that wrote it.
    fn winners(&self, uploads: &[Upload]) -> Vec<Vec<Option<usize>>> {
        let mut w = vec![vec![None; BUFFER_SIZE as usize]; BUFFERS];
        for (i, u) in uploads.iter().enumerate() {
            let d = u.dst_offset as usize;
            w[u.destination.0 as usize][d..d + u.size as usize].fill(Some(i));
        }
        w
    }
}

/// Visible bytes, and maximal runs of bytes won by one upload (the regions before merging).
fn count_pieces(winners: &[Vec<Option<usize>>]) -> (u64, u64) {
    let (mut visible, mut pieces) = (0, 0);
    for buffer in winners {
        let mut previous = None;
        for &w in buffer {
            if w.is_some() {
                visible += 1;
                if w != previous {
                    pieces += 1;
                }
            }
            previous = w;
        }
    }
    (visible, pieces)
}

/// Runs a workload: stages and pushes every upload, planning whenever the queue or the ring is
/// full and at the end, and checks every plan against the model.
pub fn run_workload(w: &TransferWorkload) -> Result<RunSummary, String> {
    let config = SchedulerConfig {
        copy_alignment: 1 << (w.copy_alignment_log2 % 4),
        max_regions_per_batch: 1 + u32::from(w.max_regions % 16),
    };
    let capacity = 1 + usize::from(w.queue_capacity % 64);
    let regions = ModelScheduler::regions_needed(capacity, config.copy_alignment);
    let mut scheduler = TransferScheduler::new(
        config,
        vec![UploadSlot::EMPTY; capacity],
        vec![EMPTY_REGION; regions],
    )
    .map_err(|e| format!("constructing: {e}"))?;
    let mut model = TransferModel::new(config, 4096);
    let mut summary = RunSummary::default();
    for (i, &op) in w.ops.iter().enumerate() {
        let upload = match model.stage(op) {
            Some(u) => u,
            None => {
                model
                    .plan_and_check(&mut scheduler)
                    .map_err(|e| format!("op {i}: {e}"))?;
                model
                    .stage(op)
                    .ok_or_else(|| format!("op {i}: ring full right after a plan"))?
            }
        };
        match scheduler.push(upload) {
            Ok(()) => {}
            Err(e) if e.kind == PushErrorKind::QueueFull => {
                if e.upload != upload || scheduler.pending() != capacity {
                    return Err(format!(
                        "op {i}: full queue gave back {:?}, not {upload:?}",
                        e.upload
                    ));
                }
                summary.queue_full += 1;
                model
                    .plan_and_check(&mut scheduler)
                    .map_err(|e| format!("op {i}: {e}"))?;
                model.restage(upload);
                scheduler
                    .push(upload)
                    .map_err(|e| format!("op {i}: push after plan: {e}"))?;
            }
            Err(e) => return Err(format!("op {i}: push of {upload:?} refused: {e}")),
        }
        model.record(upload);
    }
    model
        .plan_and_check(&mut scheduler)
        .map_err(|e| format!("final plan: {e}"))?;
    let s = scheduler.stats();
    summary.plans = s.plans;
    summary.uploads = s.uploads;
    summary.copy_regions = s.copy_regions;
    summary.unaligned_writes = s.unaligned_writes;
    summary.bytes_overwritten = s.bytes_overwritten;
    Ok(summary)
}
