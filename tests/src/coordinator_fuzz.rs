//! The coordinator against a model of the destination bytes, on the simulated device, for the
//! `coordinator` fuzz target: buffers created (device-only, for read-backs, or written directly),
//! uploads (`upload_to`, `upload_slice`, staging grants, uploads staged in a frame held open across
//! ops), frames begun, ended and cancelled, per-frame constants written into transient memory and
//! read by the application's frames until it signals them done, drops, flushes, maintenance,
//! defragmentation passes over every live buffer, a GPU timeline advanced by hand, calls handing
//! over another coordinator's buffer, grant or frame, and staging grants held across later ops and
//! then committed or abandoned, over a small staging ring so that it wraps, fills and applies each
//! back-pressure policy; and textures uploaded a band of rows at a time, read back a level at a
//! time, drawn whole by the application behind an external wait and dropped (module `images`); and
//! device faults that refuse an op's allocation, creation, bind, map or submission (module
//! `faults`). After every flush-and-complete, each live buffer's bytes and each read-back's equal
//! the model, and the bytes the device copied are the bytes staged (each committed grant once,
//! abandoned ones never); every bad call gets the typed error the model expects, and an upload that
//! a held grant keeps from room gets the documented one; the device records no misuse and nothing
//! is left after teardown, in the pools (a debug assertion of the coordinator's teardown) nor on
//! the device. A disagreement panics (with what disagreed), as a fuzz target must.
//!
//! Inputs are read in a compact encoding ([`CoordinatorWorkload::decode`], module `encoding`);
//! the target starts from committed seeds ([`fuzz_seeds`], module `fuzz_seeds`).

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::Duration;

use memkit_core::device::ImageCopy;
use memkit_dummy::{DummyDevice, DummyTimeline, Preset};
use memkit_std::{
    BackPressure, Buffer, BufferingMode, Coordinator, CoordinatorConfig, CoordinatorStats,
    DefragmentationLimits, Error, Frame, MemoryUsage, PoolConfig, Readback, StagingGrant, Ticket,
    TransientSlice,
};

mod encoding;
mod faults;
mod fuzz_seeds;
mod images;

pub use encoding::{MAX_OPS, amount, code_of_amount, round_amount};
pub use faults::FaultSite;
use faults::Faults;
pub use fuzz_seeds::fuzz_seeds;
use images::{ImageModel, PendingImageRead};

/// The back-pressure policy a workload's coordinator applies ([`BackPressure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// [`BackPressure::WaitForGpu`].
    WaitForGpu,
    /// [`BackPressure::Fail`].
    Fail,
    /// [`BackPressure::DedicatedStaging`].
    DedicatedStaging,
}

/// A frame call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameCall {
    /// `begin_frame`: refused with [`Error::FrameInProgress`] while one is open.
    Begin = 0,
    /// `end_frame` of the open frame, if any.
    End = 1,
    /// Drop the open frame, if any (cancels it; its staged uploads stay staged).
    Cancel = 2,
}

/// A call handing this coordinator something of another one, which it must refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForeignCall {
    /// `upload_to` another coordinator's buffer: [`Error::ForeignBuffer`].
    Buffer = 0,
    /// `transfer_and_release` of another coordinator's grant: [`Error::ForeignGrant`].
    Grant = 1,
    /// `end_frame` of another coordinator's frame: [`Error::ForeignFrame`].
    Frame = 2,
}

/// What a [`CoordOp::Create`] buffer is for: the memory usage it is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferUse {
    /// `MemoryUsage::FAST_DEVICE_ACCESS`: device-local memory, uploads staged.
    Device = 0,
    /// `MemoryUsage::HOST_ACCESS`: uploads written directly where the memory is host-visible.
    HostAccess = 1,
    /// `MemoryUsage::DOWNLOAD`: host-cached memory where the device has it (another memory type
    /// than the others', whose buffers a defragmentation pass moves too), uploads staged.
    ReadBack = 2,
}

impl BufferUse {
    fn usage(self) -> MemoryUsage {
        match self {
            Self::Device => MemoryUsage::FAST_DEVICE_ACCESS,
            Self::HostAccess => MemoryUsage::HOST_ACCESS,
            Self::ReadBack => MemoryUsage::DOWNLOAD,
        }
    }
}

/// One step of a coordinator workload. `buffer` picks a live buffer by creation order, modulo
/// their count (no live buffer: the op does nothing); uploads of `len` bytes write a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordOp {
    /// A buffer of `size` bytes, for `usage`.
    Create {
        /// Bytes.
        size: u32,
        /// What it is for.
        usage: BufferUse,
    },
    /// `upload_to`.
    UploadTo {
        /// Which live buffer.
        buffer: u8,
        /// Byte offset in it.
        offset: u32,
        /// Bytes.
        len: u32,
    },
    /// `upload_slice` (a new buffer holding the bytes).
    UploadSlice {
        /// Bytes.
        len: u32,
    },
    /// `acquire_staging` + `transfer_and_release`.
    Grant {
        /// Which live buffer.
        buffer: u8,
        /// Byte offset in it.
        offset: u32,
        /// Bytes.
        len: u32,
    },
    /// Bytes allocated in the open frame's arena (a frame is begun if none is open) and staged
    /// with `stage_slice_for_upload`.
    Stage {
        /// Which live buffer.
        buffer: u8,
        /// Byte offset in it.
        offset: u32,
        /// Bytes.
        len: u32,
    },
    /// Begin, end or cancel a frame.
    Frame(FrameCall),
    /// Drop a buffer (uploads to it may still be staged).
    Drop {
        /// Which live buffer.
        buffer: u8,
    },
    /// `flush_transfers`.
    Flush,
    /// `maintain`.
    Maintain,
    /// `defragment` of every live buffer: each moved buffer gets a new raw buffer, and its
    /// bytes (compared at the next check) stay the model's; refused only while the last pass's
    /// copies run.
    Defragment {
        /// The pass's `max_allocations`; 0: no limit.
        max_allocations: u8,
    },
    /// Executes up to `n` pending submissions.
    Advance {
        /// At most 7.
        n: u8,
    },
    /// Flush, complete everything, compare every buffer, and every read-back taken since the
    /// last check, with the model.
    Check,
    /// `read_back` of `len` bytes from `offset`: the bytes it brings back (compared at the next
    /// check) must be the model's at the call, whatever was uploaded after it, staged or written
    /// directly.
    ReadBack {
        /// Which live buffer.
        buffer: u8,
        /// Byte offset in it.
        offset: u32,
        /// Bytes.
        len: u32,
    },
    /// Hand over another coordinator's buffer, grant or frame.
    Foreign(ForeignCall),
    /// `acquire_staging`, written at once and held across later ops (its ring room with it) until
    /// a [`CoordOp::Release`] commits it to the buffer picked now or abandons it.
    Hold {
        /// Which live buffer it is for.
        buffer: u8,
        /// Byte offset in it.
        offset: u32,
        /// Bytes.
        len: u32,
    },
    /// Commits (`transfer_and_release` to its buffer, abandoned if that was dropped) or abandons
    /// (drops) a held grant.
    Release {
        /// Which held grant, oldest first, modulo their count (none held: nothing happens).
        grant: u8,
        /// Commit, else abandon.
        commit: bool,
    },
    /// `create_image` of a square texture with every mip level (`images::desc`).
    CreateImage {
        /// Picks its size: `1 + side % 96` texels a side.
        side: u8,
        /// The preset's compressed format (`images::desc`), else RGBA8.
        compressed: bool,
    },
    /// `upload_image` of a band of whole block rows of one level, full width. `image` picks a
    /// live image by creation order, modulo their count (none: the op does nothing).
    UploadImage {
        /// Which live image.
        image: u8,
        /// Which level, modulo the image's count.
        level: u8,
        /// The band: its first block row from the high nibble, its row count from the low one.
        rows: u8,
    },
    /// `read_back_image` of a whole level: the bytes (compared at the next check) must be the
    /// model's at the call; refused with [`Error::ImageNotWritten`] before any upload.
    ReadBackImage {
        /// Which live image.
        image: u8,
        /// Which level, modulo the image's count.
        level: u8,
    },
    /// Drop an image (its uploads and read-backs may be in flight).
    DropImage {
        /// Which live image.
        image: u8,
    },
    /// The application's frame draws every level of an image (a render target): the
    /// coordinator is told to wait for the frame's timeline value (`wait_for_external`) and that
    /// the image was written (`Image::mark_written`); then the simulated GPU runs what was
    /// submitted before the wait, the application writes the levels and signals the value.
    /// Read-backs then see the drawing, and uploads keep it where they do not write.
    AppDraw {
        /// Which live image.
        image: u8,
    },
    /// `Frame::transient_slice` of `len` bytes in the open frame (begun if none), which the
    /// application's frame reads until its timeline value (the frame's `gpu_done_at`, a new
    /// value per frame) is signalled, once the frame ended: by an [`CoordOp::Advance`] (the
    /// oldest ended frame's), a [`CoordOp::Check`] (all of them), or the end of the run. A
    /// [`CoordOp::AppDraw`] signals a higher value, so it ends those reads too, and moves the open
    /// frame's value past its own. The device must hold the bytes right after the call, and must
    /// not see them change before the value (chunks are written again only after).
    Transient {
        /// Bytes.
        len: u32,
    },
    /// A `Frame::transient_writer` of the open frame (begun if none) writes `1 + slices % 4`
    /// slices, the `k`th of `len + 16 * k` bytes, each read by the application's frame and
    /// checked as [`CoordOp::Transient`]'s are; then the writer is dropped (its chunk's rest goes
    /// to the frame's next writer), or leaked where bit 2 of `slices` is set (its chunks must
    /// still wait for the frame's value).
    TransientWriter {
        /// The count, and whether the writer is leaked.
        slices: u8,
        /// Bytes of the first.
        len: u32,
    },
    /// `create_aliased_images` of `2 + a % 3` textures (`images::desc` of `a + 41 * i`, RGBA8),
    /// image `i` in use from step `b >> 2i & 3` for one or two steps (bit `4 + i` of `a`): those
    /// whose spans do not meet may share bytes. They are live images like the others; using one
    /// undefines the images sharing its bytes (the model forgets their texels, and a read-back
    /// of them is refused until they are written again).
    CreateAliasedImages {
        /// The count, the sizes and the span lengths.
        a: u8,
        /// The first steps.
        b: u8,
    },
    /// The next op meets a driver that refuses its `1 + nth % 4`th call at `site` with
    /// `OutOfDeviceMemory` (`MapFailed` for a map; module `faults`): where it fired, the op
    /// succeeds (the coordinator found room another way) or returns that error, and a refused
    /// op leaves nothing behind (the model forgets what it may have written part of); a refused
    /// submission goes out with the next one.
    Fault {
        /// The device call refused.
        site: FaultSite,
        /// Which of the next op's calls there.
        nth: u8,
    },
}

/// What one `coordinator` fuzz input stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorWorkload {
    /// The device's preset.
    pub preset: Preset,
    /// Ring size: 4 KiB << `ring_shift` (0 to 5).
    pub ring_shift: u8,
    /// The back-pressure policy.
    pub policy: Policy,
    /// Whether the ring-upload limit asked for is the whole ring (clamped to half; else a
    /// quarter).
    pub whole_ring: bool,
    /// Double buffering, else triple.
    pub double_buffering: bool,
    /// Whether uploads of an eighth of the ring and more are submitted as soon as staged.
    pub eager_submit: bool,
    /// At most [`MAX_OPS`] ops.
    pub ops: Vec<CoordOp>,
}

/// Which states a workload reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadDepth {
    /// Ops run.
    pub ops: usize,
    /// Uploads (grants included) refused because the ring was full, under `Fail`.
    pub staging_full: u32,
    /// Uploads that waited for the GPU because the ring was full (the coordinator's `stalls`).
    pub stalls: u64,
    /// Uploads staged in a staging allocation of their own.
    pub dedicated_staging: u64,
    /// Accepted uploads larger than one ring upload, staged in chunks.
    pub chunked_uploads: u32,
    /// Flushes started by a large upload.
    pub eager_submissions: u64,
    /// Bytes staged that a later upload overwrote before submission.
    pub bytes_overwritten: u64,
    /// Frames ended.
    pub frames_ended: u32,
    /// Frames cancelled (dropped while open).
    pub frames_cancelled: u32,
    /// `begin_frame` waited for the GPU.
    pub frame_waits: u64,
    /// `begin_frame` refused while a frame was open.
    pub frames_in_progress: u32,
    /// Buffers dropped with an upload to them staged since the last flush.
    pub dropped_with_staged: u32,
    /// Foreign buffers, grants and frames refused.
    pub foreign_refused: u32,
    /// Bad calls (zero-sized, out of bounds) refused.
    pub bad_calls: u32,
    /// The most live buffers at once.
    pub max_live: usize,
    /// Staging grants taken and held across ops.
    pub grants_held: u32,
    /// Held grants committed (uploaded).
    pub grants_committed: u32,
    /// Held grants abandoned (dropped unwritten to any buffer).
    pub grants_abandoned: u32,
    /// Calls refused because held grants kept room or the GPU from them: uploads and grants
    /// with [`Error::StagingFull`] `{ wait_for: None }` under `WaitForGpu`, waits with
    /// [`Error::BlockedByHeldGrant`].
    pub blocked_by_held: u32,
    /// Checks that compared the bytes the device copied with the bytes staged.
    pub exact_checks: u32,
    /// Committed grants overlapped by a staged upload granted after them and accepted before
    /// the commit (the device may hold either's bytes there).
    pub ambiguous_overlaps: u32,
    /// The most grants held at once.
    pub max_held: usize,
    /// Read-backs taken and compared with the model.
    pub read_backs: u32,
    /// Image uploads accepted.
    pub image_uploads: u32,
    /// Image read-backs taken and compared with the model.
    pub image_read_backs: u32,
    /// The most live images at once.
    pub max_images: usize,
    /// Images the application drew ([`CoordOp::AppDraw`]).
    pub app_draws: u32,
    /// Sets of images made sharing memory ([`CoordOp::CreateAliasedImages`]).
    pub aliased_sets: u32,
    /// Times a use of one aliased image undefined another that was written.
    pub aliases_undefined: u32,
    /// Buffers [`CoordOp::Defragment`] moved (the coordinator's `buffers_moved`).
    pub buffers_moved: u64,
    /// Images it moved (the coordinator's `images_moved`).
    pub images_moved: u64,
    /// Blocks those passes gave back (the coordinator's
    /// `blocks_released_by_defragmentation`).
    pub blocks_defragmented: u64,
    /// Passes refused while the last one's copies ran.
    pub defragmentation_running: u32,
    /// Passes that moved resources of more than one memory type.
    pub multi_type_passes: u32,
    /// Transient slices written ([`CoordOp::Transient`], [`CoordOp::TransientWriter`]).
    pub transient_slices: u32,
    /// Transient writers leaked ([`CoordOp::TransientWriter`]).
    pub transient_writers_leaked: u32,
    /// Chunks of transient memory the coordinator made (its `transient_chunks`, at the end).
    pub transient_chunks: u64,
    /// Injected device faults that fired ([`CoordOp::Fault`]).
    pub faults_fired: u32,
    /// Of those, refused submissions.
    pub submit_faults_fired: u32,
    /// Image uploads refused by one.
    pub image_uploads_refused: u32,
    /// Ops refused by one.
    pub faults_refused: u32,
}

impl WorkloadDepth {
    /// The sum of the counts and the most of the maxima.
    pub fn merge(self, o: Self) -> Self {
        Self {
            ops: self.ops + o.ops,
            staging_full: self.staging_full + o.staging_full,
            stalls: self.stalls + o.stalls,
            dedicated_staging: self.dedicated_staging + o.dedicated_staging,
            chunked_uploads: self.chunked_uploads + o.chunked_uploads,
            eager_submissions: self.eager_submissions + o.eager_submissions,
            bytes_overwritten: self.bytes_overwritten + o.bytes_overwritten,
            frames_ended: self.frames_ended + o.frames_ended,
            frames_cancelled: self.frames_cancelled + o.frames_cancelled,
            frame_waits: self.frame_waits + o.frame_waits,
            frames_in_progress: self.frames_in_progress + o.frames_in_progress,
            dropped_with_staged: self.dropped_with_staged + o.dropped_with_staged,
            foreign_refused: self.foreign_refused + o.foreign_refused,
            bad_calls: self.bad_calls + o.bad_calls,
            max_live: self.max_live.max(o.max_live),
            grants_held: self.grants_held + o.grants_held,
            grants_committed: self.grants_committed + o.grants_committed,
            grants_abandoned: self.grants_abandoned + o.grants_abandoned,
            blocked_by_held: self.blocked_by_held + o.blocked_by_held,
            exact_checks: self.exact_checks + o.exact_checks,
            ambiguous_overlaps: self.ambiguous_overlaps + o.ambiguous_overlaps,
            max_held: self.max_held.max(o.max_held),
            read_backs: self.read_backs + o.read_backs,
            image_uploads: self.image_uploads + o.image_uploads,
            image_read_backs: self.image_read_backs + o.image_read_backs,
            max_images: self.max_images.max(o.max_images),
            app_draws: self.app_draws + o.app_draws,
            aliased_sets: self.aliased_sets + o.aliased_sets,
            aliases_undefined: self.aliases_undefined + o.aliases_undefined,
            buffers_moved: self.buffers_moved + o.buffers_moved,
            images_moved: self.images_moved + o.images_moved,
            blocks_defragmented: self.blocks_defragmented + o.blocks_defragmented,
            defragmentation_running: self.defragmentation_running + o.defragmentation_running,
            multi_type_passes: self.multi_type_passes + o.multi_type_passes,
            transient_slices: self.transient_slices + o.transient_slices,
            transient_writers_leaked: self.transient_writers_leaked + o.transient_writers_leaked,
            transient_chunks: self.transient_chunks + o.transient_chunks,
            faults_fired: self.faults_fired + o.faults_fired,
            submit_faults_fired: self.submit_faults_fired + o.submit_faults_fired,
            image_uploads_refused: self.image_uploads_refused + o.image_uploads_refused,
            faults_refused: self.faults_refused + o.faults_refused,
        }
    }

    fn take_stats(&mut self, s: &CoordinatorStats) {
        self.stalls = s.stalls;
        self.dedicated_staging = s.dedicated_staging_uploads;
        self.eager_submissions = s.eager_submissions;
        self.bytes_overwritten = s.bytes_overwritten;
        self.frame_waits = s.frame_waits;
        self.buffers_moved = s.buffers_moved;
        self.images_moved = s.images_moved;
        self.blocks_defragmented = s.blocks_released_by_defragmentation;
        self.transient_chunks = s.transient_chunks;
    }
}

/// A live buffer and its model: `known[i]` is [`UNKNOWN`] where a failed chunked upload may or
/// may not have landed; `staged` whether an upload to it was staged since the last flush;
/// `behind_held` whether one was accepted while a grant was held (its ring range may lie behind
/// that grant, and then it cannot be submitted until the grant goes); `while_held` the op index
/// and byte range of each staged upload accepted while a grant was held (cleared once none is).
struct Model {
    buffer: Buffer<DummyDevice>,
    bytes: Vec<u8>,
    known: Vec<u8>,
    staged: bool,
    behind_held: bool,
    while_held: Vec<(usize, Range<usize>)>,
}

/// A staging grant held across ops: the op that took it, the buffer it is for, where, and the
/// bytes written into it when it was taken.
struct Held<'c> {
    grant: StagingGrant<'c>,
    taken_at: usize,
    dest: Option<u64>,
    offset: u64,
    bytes: Vec<u8>,
}

/// The bytes the coordinator accepted, for the check that the device copied each staged byte
/// once: committed grants once, abandoned ones never.
struct Ledger {
    /// Bytes of accepted uploads to buffers the CPU does not write directly (through the ring,
    /// in chunks, in staging of their own, committed grants).
    staged: u64,
    /// Bytes of accepted uploads, every path.
    all: u64,
    /// False after an upload refused with some of its chunks staged, until a check takes the
    /// coordinator's counts as the new base.
    exact: bool,
}

fn data(len: usize, op: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (k as u8).wrapping_mul(31).wrapping_add(7) ^ (op as u8))
        .collect()
}

/// The error the coordinator must return for an upload of `len` at `offset` into `size` bytes,
/// if the call is bad.
fn expected_error(size: u64, offset: u64, len: u64) -> Option<Error> {
    if len == 0 {
        Some(Error::ZeroSize)
    } else if offset + len > size {
        Some(Error::OutOfBounds {
            offset,
            size: len,
            buffer_size: size,
        })
    } else {
        None
    }
}

/// What the run knows of the coordinator's configuration, and whether a grant is held now.
#[derive(Clone, Copy)]
struct Setup {
    policy: BackPressure,
    max_ring_upload: u64,
    holding: bool,
    /// The op's index.
    op: usize,
}

impl Setup {
    /// Whether an accepted upload of `len` bytes is staged in chunks.
    fn chunked(&self, len: usize) -> bool {
        self.policy != BackPressure::DedicatedStaging && len as u64 > self.max_ring_upload
    }
}

/// Counts a staging grant of `len` bytes refused for want of room in a way the model allows, and
/// says whether it was; any other outcome is the caller's to check.
fn grant_refused(depth: &mut WorkloadDepth, setup: &Setup, len: usize, e: &Error) -> bool {
    match e {
        // Larger than one ring upload, whatever the policy.
        Error::StagingFull { wait_for: None } if len as u64 > setup.max_ring_upload => {
            depth.bad_calls += 1;
        }
        Error::StagingFull { .. } if setup.policy != BackPressure::WaitForGpu => {
            depth.staging_full += 1;
        }
        // The room is held by grants, after `held_room_timeout`.
        Error::StagingFull { wait_for: None } if setup.holding => depth.blocked_by_held += 1,
        _ => return false,
    }
    true
}

/// Applies an upload's outcome to the model; panics on an error the model does not allow.
fn apply(
    (depth, ledger): (&mut WorkloadDepth, &mut Ledger),
    setup: &Setup,
    model: &mut Model,
    (offset, bytes): (u64, &[u8]),
    result: Result<(), Error>,
    may_chunk: bool,
    faults: &Faults<'_>,
) {
    let expected = expected_error(model.bytes.len() as u64, offset, bytes.len() as u64);
    let chunked = may_chunk && setup.chunked(bytes.len());
    let range = offset as usize..offset as usize + bytes.len();
    match (result, expected) {
        (Ok(()), None) => {
            model.bytes[range.clone()].copy_from_slice(bytes);
            model.known[range.clone()].fill(KNOWN);
            model.staged = true;
            model.behind_held |= setup.holding;
            depth.chunked_uploads += u32::from(chunked);
            ledger.all += bytes.len() as u64;
            if !model.buffer.is_direct_write() {
                ledger.staged += bytes.len() as u64;
                if setup.holding {
                    model.while_held.push((setup.op, range));
                }
            }
        }
        (Err(e), Some(want)) => {
            assert_eq!(e, want, "bad call, wrong error");
            depth.bad_calls += 1;
        }
        // Refused by an injected fault, perhaps after some of its chunks were staged.
        (Err(e), None) if faults.refused(&e) => {
            depth.faults_refused += 1;
            model.known[range].fill(UNKNOWN);
            model.staged = true;
            ledger.exact = false;
        }
        (Err(Error::StagingFull { .. }), None) if setup.policy == BackPressure::Fail => {
            depth.staging_full += 1;
            if chunked {
                // Chunks staged before the one that failed stay staged.
                model.known[range].fill(UNKNOWN);
                model.staged = true;
                ledger.exact = false;
            }
        }
        // Room held by grants, under `WaitForGpu`: refused after `held_room_timeout` with nothing
        // staged (an upload in chunks fails only at its first chunk: past it, the rest goes
        // through staging of its own).
        (Err(Error::StagingFull { wait_for: None }), None)
            if setup.holding && setup.policy == BackPressure::WaitForGpu =>
        {
            depth.blocked_by_held += 1;
        }
        (result, expected) => panic!("upload: got {result:?}, model expects {expected:?}"),
    }
}

/// A model byte the device must hold ([`Model::known`]).
const KNOWN: u8 = 0xff;
/// A model byte the device may hold or not.
const UNKNOWN: u8 = 0;

/// The first byte where `got` and `want` differ among those `mask` marks [`KNOWN`]. Masked XOR a
/// word at a time, with one comparison a block: the fuzz build traces every comparison, and a
/// comparison a byte over every buffer at every check took about a third of each run.
fn first_known_difference(got: &[u8], want: &[u8], mask: &[u8]) -> Option<usize> {
    const BLOCK: usize = 4096;
    let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
    let blocks = got
        .chunks(BLOCK)
        .zip(want.chunks(BLOCK))
        .zip(mask.chunks(BLOCK));
    for (n, ((g, w), m)) in blocks.enumerate() {
        let words = g
            .chunks_exact(8)
            .zip(w.chunks_exact(8))
            .zip(m.chunks_exact(8));
        let mut diff = words.fold(0, |d, ((g, w), m)| d | ((word(g) ^ word(w)) & word(m)));
        let tail = g.len() / 8 * 8;
        for i in tail..g.len() {
            diff |= u64::from((g[i] ^ w[i]) & m[i]);
        }
        if diff != 0 {
            return (0..g.len())
                .find(|&i| (g[i] ^ w[i]) & m[i] != 0)
                .map(|i| n * BLOCK + i);
        }
    }
    None
}

/// [`CoordOp::Defragment`]: every live buffer and image offered. Those that moved, and only
/// those, have a new raw buffer or image; what moved adds up; a refusal is only for a pass
/// still running. The bytes and texels are compared with the models at the next check.
fn defragment(
    c: &Coordinator<DummyDevice>,
    (models, images): (&mut HashMap<u64, Model>, &mut HashMap<u64, ImageModel>),
    max_allocations: u8,
    depth: &mut WorkloadDepth,
    faults: &Faults<'_>,
) {
    let limits = match max_allocations {
        0 => DefragmentationLimits::UNLIMITED,
        n => DefragmentationLimits::UNLIMITED.with_max_allocations(u32::from(n)),
    };
    let mut given: Vec<&mut Model> = models.values_mut().collect();
    let mut given_images: Vec<&mut ImageModel> = images.values_mut().collect();
    let before: Vec<_> = given
        .iter()
        .map(|m| (m.buffer.raw(), m.buffer.id()))
        .collect();
    let images_before: Vec<_> = given_images
        .iter()
        .map(|m| (m.image.raw(), m.image.id(), m.image.is_written()))
        .collect();
    let outcome = match c.defragment_with_images(
        given.iter_mut().map(|m| &mut m.buffer),
        given_images.iter_mut().map(|m| &mut m.image),
        &limits,
    ) {
        Ok(outcome) => outcome,
        Err(Error::DefragmentationRunning) => {
            depth.defragmentation_running += 1;
            return;
        }
        // Refused by an injected fault: nothing moved.
        Err(e) if faults.refused(&e) => {
            depth.faults_refused += 1;
            let buffers_now = given.iter().map(|m| (m.buffer.raw(), m.buffer.id()));
            assert!(buffers_now.eq(before), "a refused pass moved a buffer");
            let images_now = given_images
                .iter()
                .map(|m| (m.image.raw(), m.image.id(), m.image.is_written()));
            assert!(
                images_now.eq(images_before),
                "a refused pass moved an image"
            );
            return;
        }
        Err(e) => panic!("defragment: {e}"),
    };
    for moved in [&outcome.moved, &outcome.moved_images] {
        assert!(moved.windows(2).all(|w| w[0] < w[1]), "moved: {moved:?}");
    }
    let moved_count = outcome.moved.len() + outcome.moved_images.len();
    assert!(moved_count + outcome.unmovable <= given.len() + given_images.len());
    let mut bytes = 0;
    for (i, m) in given.iter().enumerate() {
        let moved = outcome.moved.binary_search(&i).is_ok();
        assert_eq!(
            m.buffer.raw() != before[i].0,
            moved,
            "buffer {i}'s raw buffer"
        );
        assert_eq!(m.buffer.id(), before[i].1, "a moved buffer keeps its id");
        if moved {
            bytes += m.buffer.size();
        }
    }
    for (i, m) in given_images.iter().enumerate() {
        let moved = outcome.moved_images.binary_search(&i).is_ok();
        let (raw, id, written) = images_before[i];
        assert_eq!(m.image.raw() != raw, moved, "image {i}'s raw image");
        assert_eq!(m.image.id(), id, "a moved image keeps its id");
        assert!(!moved || written, "image {i} moved without known contents");
        assert_eq!(m.image.is_written(), written, "image {i}'s written flag");
        if moved {
            bytes += m.image.desc().packed_bytes();
        }
    }
    assert_eq!(outcome.bytes_moved, bytes);
    // One pass over every memory type: the types of what moved, each once.
    let buffer_types = outcome.moved.iter().map(|&i| given[i].buffer.memory_type());
    let image_types = outcome
        .moved_images
        .iter()
        .map(|&i| given_images[i].image.memory_type());
    let mut types: Vec<u32> = buffer_types.chain(image_types).collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(outcome.memory_types, types);
    depth.multi_type_passes += u32::from(types.len() > 1);
    // A pass chooses blocks holding at most the limit's allocations, and moves no more.
    assert!(moved_count as u32 <= outcome.plan.allocations);
    assert!(
        outcome.plan.allocations <= limits.max_allocations,
        "{outcome:?}"
    );
}

/// Flushes, completes everything and compares every buffer with the model (with a grant held,
/// those that may have uploads behind it are left out), and with no grant held, the bytes the
/// device copied with the bytes staged.
fn check(
    c: &Coordinator<DummyDevice>,
    models: &mut HashMap<u64, Model>,
    (reads, image_reads): (&mut Vec<PendingRead>, &mut Vec<PendingImageRead>),
    holding: bool,
    depth: &mut WorkloadDepth,
    ledger: &mut Ledger,
) {
    match c.flush_transfers().and_then(|t| t.wait()) {
        Ok(()) => {}
        // An upload staged behind a held grant cannot be submitted while the grant is held.
        Err(Error::BlockedByHeldGrant) if holding => depth.blocked_by_held += 1,
        Err(e) => panic!("flush and wait: {e:?}"),
    }
    c.device().complete_all();
    c.maintain().expect("maintain");
    // Each read-back was submitted by its call: complete now, whatever grants are held.
    for read in reads.drain(..) {
        read.compare(depth);
    }
    for read in image_reads.drain(..) {
        read.compare();
        depth.image_read_backs += 1;
    }
    for (id, m) in models.iter_mut() {
        if holding && m.behind_held {
            continue;
        }
        m.staged = false;
        m.behind_held = false;
        let bytes = c
            .device()
            .read_buffer(m.buffer.raw(), 0, m.bytes.len())
            .expect("live buffer reads back");
        if let Some(i) = first_known_difference(&bytes, &m.bytes, &m.known) {
            panic!(
                "buffer {id} byte {i}: device {:#04x}, model {:#04x}",
                bytes[i], m.bytes[i]
            );
        }
    }
    let misuse = c.device().misuses();
    assert!(misuse.is_empty(), "device misuse: {misuse:?}");
    if holding {
        return;
    }
    // Everything staged is submitted and complete: each staged byte was copied once, or
    // overwritten by a later upload before its submission and never copied.
    let stats = c.stats();
    // Read-backs' copies (of buffers and images), image uploads' and defragmentation's are the
    // device's too, and copy no staged byte of a buffer.
    let copied = c.device().counters().bytes_copied
        - stats.bytes_read_back
        - stats.image_bytes_uploaded
        - stats.bytes_moved;
    if ledger.exact {
        assert_eq!(
            copied + stats.bytes_overwritten,
            ledger.staged,
            "bytes copied ({copied}) and overwritten before submission ({}), against bytes staged",
            stats.bytes_overwritten
        );
        assert_eq!(stats.bytes_uploaded, ledger.all, "bytes uploaded");
        depth.exact_checks += 1;
    } else {
        *ledger = Ledger {
            staged: copied + stats.bytes_overwritten,
            all: stats.bytes_uploaded,
            exact: true,
        };
    }
}

/// A read-back in flight, and the model's bytes of its range at the call.
struct PendingRead {
    read: Readback<DummyDevice>,
    buffer: u64,
    offset: u64,
    bytes: Vec<u8>,
    known: Vec<u8>,
}

impl PendingRead {
    /// Waits for the copy, and panics where a known byte differs from the model's.
    fn compare(self, depth: &mut WorkloadDepth) {
        let got = self.read.wait().expect("read-back");
        if let Some(i) = first_known_difference(&got, &self.bytes, &self.known) {
            panic!(
                "read-back of buffer {} at {}: byte {i} is {:#04x}, the model's {:#04x}",
                self.buffer, self.offset, got[i], self.bytes[i]
            );
        }
        depth.read_backs += 1;
    }
}

/// The open frame, begun if none is; `None` when `begin_frame` is refused because the slot's
/// last frame has uploads behind a held grant (counted in `depth`).
fn open_frame<'f, 'c>(
    c: &'c Coordinator<DummyDevice>,
    frame: &'f mut Option<Frame<'c, DummyDevice>>,
    setup: &Setup,
    depth: &mut WorkloadDepth,
) -> Option<&'f mut Frame<'c, DummyDevice>> {
    if frame.is_none() {
        match c.begin_frame() {
            Ok(f) => *frame = Some(f),
            Err(Error::BlockedByHeldGrant) if setup.holding => {
                depth.blocked_by_held += 1;
                return None;
            }
            Err(e) => panic!("begin_frame: {e:?}"),
        }
    }
    frame.as_mut()
}

/// The application's timeline and the value at which its reads of the open frame's transient
/// memory end: the frame's `gpu_done_at`, told at its first slice.
fn transient_reads(
    f: &Frame<'_, DummyDevice>,
    device: &DummyDevice,
    app_timeline: &mut Option<DummyTimeline>,
    app_value: &mut u64,
    open_frame_done: &mut Option<u64>,
) -> (DummyTimeline, u64) {
    let timeline = *app_timeline.get_or_insert_with(|| device.create_external_timeline());
    let value = match *open_frame_done {
        Some(value) => value,
        None => {
            let value = *app_value + 1;
            // SAFETY: the timeline is the device's, which outlives the coordinator; the value is
            // signalled by a later op or at the end.
            unsafe { f.gpu_done_at(timeline, value) }.expect("gpu_done_at");
            *app_value = value;
            *open_frame_done.insert(value)
        }
    };
    (timeline, value)
}

/// A transient slice of `bytes` (op `i`): at a binding offset, holding the bytes, and read by
/// the application until `reads`' value; or refused as empty.
fn check_transient(
    device: &DummyDevice,
    slice: memkit_std::Result<TransientSlice<'_, DummyDevice>>,
    bytes: &[u8],
    (timeline, value): (DummyTimeline, u64),
    (i, depth): (usize, &mut WorkloadDepth),
    faults: &Faults<'_>,
) {
    match slice {
        Ok(slice) => {
            assert_eq!(slice.size(), bytes.len() as u64);
            let align = device.config().limits.min_buffer_offset_alignment;
            assert_eq!(slice.offset() % align.max(4), 0, "{slice:?}");
            let raw = slice.buffer();
            let held = device
                .read_buffer(raw, slice.offset(), bytes.len())
                .expect("the slice lies in its buffer");
            assert!(held == bytes, "op {i}: the transient slice's bytes");
            device
                .application_reads(raw, slice.offset(), slice.size(), timeline, value)
                .expect("the application's read");
            depth.transient_slices += 1;
        }
        Err(Error::ZeroSize) => {
            assert!(bytes.is_empty());
            depth.bad_calls += 1;
        }
        Err(e) if faults.refused(&e) => depth.faults_refused += 1,
        Err(e) => panic!("transient slice of {} bytes: {e:?}", bytes.len()),
    }
}

/// The application's frames reading transient memory finished: the last value is signalled.
fn finish_reading(
    device: &DummyDevice,
    timeline: Option<DummyTimeline>,
    reading: &mut VecDeque<u64>,
) {
    if let (Some(timeline), Some(&last)) = (timeline, reading.back()) {
        device
            .signal_external(timeline, last)
            .expect("the application's timeline");
    }
    reading.clear();
}

/// Marks every buffer's staged uploads submitted.
fn flushed(models: &mut HashMap<u64, Model>) {
    for m in models.values_mut() {
        m.staged = false;
    }
}

/// Another coordinator on a device of its own, and a buffer of it, for the foreign calls
/// (dropped in this order).
struct Other {
    buffer: Buffer<DummyDevice>,
    coordinator: Coordinator<DummyDevice>,
    device: DummyDevice,
}

impl CoordinatorWorkload {
    /// The coordinator configuration the workload runs with.
    pub fn config(&self) -> CoordinatorConfig {
        let ring = 4096u64 << (self.ring_shift % 6);
        CoordinatorConfig {
            buffering: if self.double_buffering {
                BufferingMode::Double
            } else {
                BufferingMode::Triple
            },
            staging_ring_size: ring,
            // The whole ring: the coordinator clamps the limit to half of it (with a larger limit
            // an upload that size once spun forever in the grant loop under `WaitForGpu`, found
            // by this target), so this also checks the clamp.
            max_ring_upload: if self.whole_ring { ring } else { ring / 4 },
            frame_arena_size: 4096,
            back_pressure: match self.policy {
                Policy::WaitForGpu => BackPressure::WaitForGpu,
                Policy::Fail => BackPressure::Fail,
                Policy::DedicatedStaging => BackPressure::DedicatedStaging,
            },
            // Small blocks with small metadata, grown to at most 4 MiB (248 KiB uploads and 256
            // ops fit): the simulated device hashes every host-visible object it frees (to catch
            // writes after free) and the coordinator writes every block slot's metadata at
            // creation, which with core's defaults (2 MiB first blocks, 4096 allocations a
            // block) took most of each run. Smaller blocks also make the pools grow more often.
            pools: PoolConfig {
                first_block_size: 64 << 10,
                preferred_block_size: Some(4 << 20),
                max_allocations_per_block: 256,
                ..PoolConfig::DEFAULT
            },
            max_blocks: 64,
            max_dedicated: 256,
            max_pending_uploads: 64,
            eager_submit_bytes: if self.eager_submit {
                ring / 8
            } else {
                u64::MAX
            },
            // Room that held grants keep is given up on at once (the run has one thread: nothing
            // else could free it), so a blocked call fails without a timeout and the same way
            // every run.
            held_room_timeout: Duration::ZERO,
            // Small chunks of transient memory: a few slices fill one, and larger ones (up to
            // 248 KiB) get a chunk of their own.
            transient_chunk_size: 16 << 10,
            ..CoordinatorConfig::default()
        }
    }

    /// Runs the workload against the model, panicking where they disagree, and tallies the
    /// states it reached.
    pub fn run(&self) -> WorkloadDepth {
        let device = DummyDevice::with_preset(self.preset);
        let config = self.config();
        let base = Setup {
            holding: false,
            op: 0,
            policy: config.back_pressure,
            // What the coordinator uses: the limit is clamped to half the ring.
            max_ring_upload: config.max_ring_upload.min(config.staging_ring_size / 2),
        };
        let c = Coordinator::new(device.clone(), config).expect("coordinator");
        let mut other: Option<Other> = None;
        let mut depth = WorkloadDepth::default();
        let mut models: HashMap<u64, Model> = HashMap::new();
        // Buffers by creation order, to pick them with a byte.
        let mut order: Vec<u64> = Vec::new();
        let mut frame: Option<Frame<'_, DummyDevice>> = None;
        // Grants held across ops, oldest first.
        let mut held: Vec<Held<'_>> = Vec::new();
        // Read-backs not compared yet.
        let mut reads: Vec<PendingRead> = Vec::new();
        // Live images and their models, by creation order, and image read-backs not compared.
        let mut images: HashMap<u64, ImageModel> = HashMap::new();
        let mut image_order: Vec<u64> = Vec::new();
        let mut image_reads: Vec<PendingImageRead> = Vec::new();
        // The application's timeline its frames signal, made at the first draw, and its value.
        let mut app_timeline = None;
        let mut app_value = 0u64;
        // `wait_for_external`'s tickets, complete at the next check.
        let mut after_frames: Vec<Ticket> = Vec::new();
        // The open frame's `gpu_done_at` value, once it wrote transient memory, and the values of
        // the ended frames' work reading transient slices, not signalled yet, oldest first (a
        // frame's value is signalled only after it ended: its work is submitted then).
        let mut open_frame_done: Option<u64> = None;
        let mut reading: VecDeque<u64> = VecDeque::new();
        let mut ledger = Ledger {
            staged: 0,
            all: 0,
            exact: true,
        };
        let pick = |order: &Vec<u64>, b: u8| -> Option<u64> {
            (!order.is_empty()).then(|| order[usize::from(b) % order.len()])
        };
        let mut faults = Faults::new(&device);

        for (i, &op) in self.ops.iter().enumerate().take(MAX_OPS) {
            depth.ops += 1;
            faults.before(&op);
            let setup = Setup {
                holding: !held.is_empty(),
                op: i,
                ..base
            };
            if !setup.holding {
                for m in models.values_mut() {
                    m.while_held.clear();
                }
            }
            match op {
                CoordOp::Create { size, usage } => {
                    let size = u64::from(size.max(1));
                    let buffer = match c.create_buffer(size, usage.usage()) {
                        Ok(buffer) => buffer,
                        Err(e) if faults.refused(&e) => {
                            depth.faults_refused += 1;
                            continue;
                        }
                        Err(e) => panic!("create_buffer of {size} bytes: {e:?}"),
                    };
                    let id = buffer.id();
                    // A fresh buffer's bytes are unknown until written.
                    models.insert(
                        id,
                        Model {
                            buffer,
                            bytes: vec![0; size as usize],
                            known: vec![UNKNOWN; size as usize],
                            staged: false,
                            behind_held: false,
                            while_held: Vec::new(),
                        },
                    );
                    order.push(id);
                }
                CoordOp::UploadTo {
                    buffer,
                    offset,
                    len,
                } => {
                    let Some(id) = pick(&order, buffer) else {
                        continue;
                    };
                    let m = models.get_mut(&id).expect("live");
                    let bytes = data(len as usize, i);
                    let result = c.upload_to(&m.buffer, u64::from(offset), &bytes).map(drop);
                    let upload = (u64::from(offset), &bytes[..]);
                    let tally = (&mut depth, &mut ledger);
                    apply(tally, &setup, m, upload, result, true, &faults);
                }
                CoordOp::UploadSlice { len } => {
                    let bytes = data(len as usize, i);
                    // Its one write may be direct though later uploads to it are staged
                    // (`is_direct_write`): the coordinator's count tells.
                    let direct_writes = c.stats().direct_writes;
                    match c.upload_slice(&bytes) {
                        Ok((buffer, _ticket)) => {
                            let id = buffer.id();
                            depth.chunked_uploads += u32::from(setup.chunked(bytes.len()));
                            ledger.all += bytes.len() as u64;
                            if c.stats().direct_writes == direct_writes {
                                ledger.staged += bytes.len() as u64;
                            }
                            models.insert(
                                id,
                                Model {
                                    buffer,
                                    bytes: bytes.clone(),
                                    known: vec![KNOWN; bytes.len()],
                                    staged: true,
                                    behind_held: setup.holding,
                                    while_held: Vec::new(),
                                },
                            );
                            order.push(id);
                        }
                        Err(Error::ZeroSize) => {
                            assert!(bytes.is_empty());
                            depth.bad_calls += 1;
                        }
                        // Under `Fail` a full ring refuses it (chunks staged before the refusal
                        // go to the buffer just dropped).
                        Err(Error::StagingFull { .. }) if setup.policy == BackPressure::Fail => {
                            depth.staging_full += 1;
                            ledger.exact &= !setup.chunked(bytes.len());
                        }
                        Err(Error::StagingFull { wait_for: None }) if setup.holding => {
                            depth.blocked_by_held += 1;
                        }
                        // Chunks staged before the refusal, if any, go to the buffer dropped.
                        Err(e) if faults.refused(&e) => {
                            depth.faults_refused += 1;
                            ledger.exact = false;
                        }
                        Err(e) => panic!("upload_slice of {} bytes: {e:?}", bytes.len()),
                    }
                }
                CoordOp::Grant {
                    buffer,
                    offset,
                    len,
                } => {
                    let Some(id) = pick(&order, buffer) else {
                        continue;
                    };
                    let m = models.get_mut(&id).expect("live");
                    let bytes = data(len as usize, i);
                    let result = match c.acquire_staging(bytes.len()) {
                        Ok(mut grant) => {
                            grant.bytes_mut().copy_from_slice(&bytes);
                            c.transfer_and_release(grant, &m.buffer, u64::from(offset))
                                .map(drop)
                        }
                        Err(e) => Err(e),
                    };
                    match result {
                        // The grant is asked for before the buffer's range is checked, so a bad
                        // call held back by grants is refused this way too.
                        Err(e) if grant_refused(&mut depth, &setup, bytes.len(), &e) => {}
                        result => {
                            let upload = (u64::from(offset), &bytes[..]);
                            let tally = (&mut depth, &mut ledger);
                            apply(tally, &setup, m, upload, result, false, &faults);
                        }
                    }
                }
                CoordOp::Stage {
                    buffer,
                    offset,
                    len,
                } => {
                    let Some(id) = pick(&order, buffer) else {
                        continue;
                    };
                    let m = models.get_mut(&id).expect("live");
                    let Some(f) = open_frame(&c, &mut frame, &setup, &mut depth) else {
                        continue;
                    };
                    let bytes = data(len as usize, i);
                    let staged = f.alloc_slice(&bytes).expect("arena");
                    let result = f
                        .stage_slice_for_upload(staged, &m.buffer, u64::from(offset))
                        .map(drop);
                    let upload = (u64::from(offset), &bytes[..]);
                    let tally = (&mut depth, &mut ledger);
                    apply(tally, &setup, m, upload, result, true, &faults);
                }
                CoordOp::Frame(FrameCall::Begin) => match &frame {
                    Some(_) => {
                        let refused = c.begin_frame().map(drop);
                        assert_eq!(refused, Err(Error::FrameInProgress), "second begin_frame");
                        depth.frames_in_progress += 1;
                    }
                    None => match c.begin_frame() {
                        Ok(f) => frame = Some(f),
                        Err(Error::BlockedByHeldGrant) if setup.holding => {
                            depth.blocked_by_held += 1;
                        }
                        Err(e) => panic!("begin_frame: {e:?}"),
                    },
                },
                CoordOp::Frame(FrameCall::End) => {
                    // The frame's reads of its transient memory are submitted now.
                    reading.extend(open_frame_done.take());
                    if let Some(f) = frame.take() {
                        c.end_frame(f).expect("end_frame");
                        flushed(&mut models);
                        depth.frames_ended += 1;
                    }
                }
                CoordOp::Frame(FrameCall::Cancel) => {
                    // The frame's reads of its transient memory are submitted now.
                    reading.extend(open_frame_done.take());
                    if frame.take().is_some() {
                        depth.frames_cancelled += 1;
                    }
                }
                CoordOp::Drop { buffer } => {
                    let Some(id) = pick(&order, buffer) else {
                        continue;
                    };
                    order.retain(|&b| b != id);
                    let m = models.remove(&id).expect("live");
                    depth.dropped_with_staged += u32::from(m.staged);
                }
                CoordOp::Flush => match c.flush_transfers() {
                    Ok(_) => flushed(&mut models),
                    // Kept, and submitted first by the next flush: still staged.
                    Err(e) if faults.refused(&e) => depth.faults_refused += 1,
                    Err(e) => panic!("flush: {e:?}"),
                },
                CoordOp::Maintain => c.maintain().expect("maintain"),
                CoordOp::Defragment { max_allocations } => {
                    let given = (&mut models, &mut images);
                    defragment(&c, given, max_allocations, &mut depth, &faults);
                }
                CoordOp::Advance { n } => {
                    for _ in 0..n % 8 {
                        device.complete_next();
                    }
                    // The application's oldest frame reading transient memory finished.
                    if let (Some(timeline), Some(value)) = (app_timeline, reading.pop_front()) {
                        device
                            .signal_external(timeline, value)
                            .expect("the application's timeline");
                    }
                }
                CoordOp::Check => {
                    let holding = setup.holding;
                    finish_reading(&device, app_timeline, &mut reading);
                    check(
                        &c,
                        &mut models,
                        (&mut reads, &mut image_reads),
                        holding,
                        &mut depth,
                        &mut ledger,
                    );
                    // Each waited for a value the application signalled at once.
                    for ticket in after_frames.drain(..) {
                        assert!(ticket.is_complete().expect("ticket"), "{ticket:?}");
                    }
                }
                CoordOp::ReadBack {
                    buffer,
                    offset,
                    len,
                } => {
                    let Some(id) = pick(&order, buffer) else {
                        continue;
                    };
                    let m = &models[&id];
                    let (offset, len) = (u64::from(offset), u64::from(len));
                    let size = m.bytes.len() as u64;
                    match c.read_back(&m.buffer, offset, len) {
                        Ok(read) => {
                            let range = offset as usize..(offset + len) as usize;
                            let pending = PendingRead {
                                read,
                                buffer: id,
                                offset,
                                bytes: m.bytes[range.clone()].to_vec(),
                                known: m.known[range].to_vec(),
                            };
                            // Compared at the next check, after later uploads: staged ones
                            // go out after the copy, direct writes wait for it.
                            reads.push(pending);
                            // Everything staged before it was submitted first.
                            flushed(&mut models);
                        }
                        Err(Error::ZeroSize) if len == 0 => depth.bad_calls += 1,
                        Err(Error::OutOfBounds { .. }) if offset + len > size => {
                            depth.bad_calls += 1;
                        }
                        // An upload staged before it lies behind a held grant.
                        Err(Error::BlockedByHeldGrant) if setup.holding => {
                            depth.blocked_by_held += 1;
                        }
                        Err(e) if faults.refused(&e) => depth.faults_refused += 1,
                        Err(e) => panic!("read_back({offset}, {len}) of {size} bytes: {e:?}"),
                    }
                }
                CoordOp::Hold {
                    buffer,
                    offset,
                    len,
                } => {
                    let bytes = data(len as usize, i);
                    match c.acquire_staging(bytes.len()) {
                        Ok(mut grant) => {
                            grant.bytes_mut().copy_from_slice(&bytes);
                            held.push(Held {
                                grant,
                                taken_at: i,
                                dest: pick(&order, buffer),
                                offset: u64::from(offset),
                                bytes,
                            });
                            depth.grants_held += 1;
                        }
                        Err(Error::ZeroSize) if bytes.is_empty() => depth.bad_calls += 1,
                        Err(e) if grant_refused(&mut depth, &setup, bytes.len(), &e) => {}
                        Err(e) if faults.refused(&e) => depth.faults_refused += 1,
                        Err(e) => panic!("acquire_staging({}): {e:?}", bytes.len()),
                    }
                }
                CoordOp::Release { grant, commit } => {
                    if held.is_empty() {
                        continue;
                    }
                    let h = held.remove(usize::from(grant) % held.len());
                    // Abandoned, or its buffer dropped since: dropped unwritten, its room back.
                    let dest = h.dest.filter(|id| commit && models.contains_key(id));
                    let Some(id) = dest else {
                        drop(h.grant);
                        depth.grants_abandoned += 1;
                        continue;
                    };
                    let m = models.get_mut(&id).expect("live");
                    let result = c.transfer_and_release(h.grant, &m.buffer, h.offset);
                    depth.grants_committed += u32::from(result.is_ok());
                    // Grants still held may lie ahead of it in the ring.
                    let setup = Setup {
                        holding: !held.is_empty(),
                        ..setup
                    };
                    let upload = (h.offset, &h.bytes[..]);
                    let committed = result.is_ok();
                    let outcome = result.map(drop);
                    let tally = (&mut depth, &mut ledger);
                    apply(tally, &setup, m, upload, outcome, false, &faults);
                    // Staged uploads land in ring order, and the grant's range comes before
                    // those granted after it, even ones committed before it: where such an
                    // upload overlaps it, the device may hold either's bytes.
                    let range = h.offset as usize..h.offset as usize + h.bytes.len();
                    if committed && !m.buffer.is_direct_write() {
                        for (_, r) in m.while_held.iter().filter(|(at, _)| *at > h.taken_at) {
                            let overlap = r.start.max(range.start)..r.end.min(range.end);
                            if !overlap.is_empty() {
                                m.known[overlap].fill(UNKNOWN);
                                depth.ambiguous_overlaps += 1;
                            }
                        }
                    }
                }
                CoordOp::CreateImage { side, compressed } => {
                    let desc = images::desc(side, compressed, self.preset);
                    let image = match c.create_image(&desc, MemoryUsage::FAST_DEVICE_ACCESS) {
                        Ok(image) => image,
                        Err(e) if faults.refused(&e) => {
                            depth.faults_refused += 1;
                            continue;
                        }
                        Err(e) => panic!("create_image of {desc:?}: {e:?}"),
                    };
                    image_order.push(image.id());
                    images.insert(image.id(), ImageModel::new(image));
                }
                CoordOp::UploadImage { image, level, rows } => {
                    let Some(id) = pick(&image_order, image) else {
                        continue;
                    };
                    let m = images.get_mut(&id).expect("live");
                    let level = m.level(level);
                    let (region, range) = m.band(level, rows);
                    let bytes = data(range.len(), i);
                    match c.upload_image(&m.image, &[region], &bytes) {
                        Ok(_ticket) => {
                            m.uploaded(level, range, &bytes);
                            depth.image_uploads += 1;
                            depth.aliases_undefined += images::undefine_aliases(&mut images, id);
                        }
                        // Refused at its first piece, with nothing staged: later pieces wait
                        // for room, or go through staging of their own.
                        Err(Error::StagingFull { .. }) if setup.policy == BackPressure::Fail => {
                            depth.staging_full += 1;
                        }
                        Err(Error::StagingFull { wait_for: None }) if setup.holding => {
                            depth.blocked_by_held += 1;
                        }
                        Err(e) if faults.refused(&e) => {
                            depth.faults_refused += 1;
                            depth.image_uploads_refused += 1;
                            m.refused(level, range);
                            // Pieces that landed are copies the stats do not count (only
                            // whole uploads are): the next check takes the counts as its base.
                            ledger.exact = false;
                            // Each piece submitted undefined the images sharing its bytes.
                            images::forget_undefined(&mut images);
                        }
                        Err(e) => panic!("upload_image of {region:?}: {e:?}"),
                    }
                }
                CoordOp::ReadBackImage { image, level } => {
                    let Some(id) = pick(&image_order, image) else {
                        continue;
                    };
                    let m = &images[&id];
                    let level = m.level(level);
                    let region = ImageCopy::whole_level(m.image.desc(), level, 0);
                    match c.read_back_image(&m.image, &[region]) {
                        Ok(_) if !m.written => {
                            panic!("read back an image not written (or undefined by an alias)")
                        }
                        Ok(read) => {
                            image_reads.push(m.read(read, level));
                            // Everything staged before it was submitted first.
                            flushed(&mut models);
                            depth.aliases_undefined += images::undefine_aliases(&mut images, id);
                        }
                        Err(Error::ImageNotWritten) if !m.written => depth.bad_calls += 1,
                        Err(Error::BlockedByHeldGrant) if setup.holding => {
                            depth.blocked_by_held += 1;
                        }
                        Err(e) if faults.refused(&e) => {
                            depth.faults_refused += 1;
                            images::forget_undefined(&mut images);
                        }
                        Err(e) => panic!("read_back_image of level {level}: {e:?}"),
                    }
                }
                CoordOp::DropImage { image } => {
                    let Some(id) = pick(&image_order, image) else {
                        continue;
                    };
                    image_order.retain(|&m| m != id);
                    images.remove(&id);
                }
                CoordOp::AppDraw { image } => {
                    let Some(id) = pick(&image_order, image) else {
                        continue;
                    };
                    let timeline =
                        *app_timeline.get_or_insert_with(|| device.create_external_timeline());
                    let value = app_value + 1;
                    // SAFETY: the timeline is the device's, which outlives the coordinator;
                    // this op signals the value before it returns.
                    match unsafe { c.wait_for_external(timeline, value) } {
                        Ok(ticket) => after_frames.push(ticket),
                        Err(Error::BlockedByHeldGrant) if setup.holding => {
                            depth.blocked_by_held += 1;
                            continue;
                        }
                        Err(e) => panic!("wait_for_external: {e:?}"),
                    }
                    app_value = value;
                    // Its value is above every frame's reading transient memory: they are done.
                    reading.clear();
                    // Everything staged before it was submitted first.
                    flushed(&mut models);
                    let m = images.get_mut(&id).expect("live");
                    // SAFETY: the frame below writes every level (one layer) and leaves the
                    // image in its layout after upload; the coordinator's later submissions wait
                    // for the frame's value; one queue.
                    unsafe { m.image.mark_written() };
                    // The frame waited for memkit's work submitted before it.
                    device.complete_all();
                    for level in 0..m.image.desc().mip_levels {
                        let bytes = data(m.level_len(level), i + level as usize);
                        device
                            .application_writes_image(m.image.raw(), level, 0, &bytes)
                            .expect("the application's draw");
                        m.drawn(level, &bytes);
                    }
                    device
                        .signal_external(timeline, value)
                        .expect("the application's timeline");
                    // The open frame's work, if it wrote transient memory, is not submitted yet:
                    // it ends after this value, so it says a later one.
                    if let (Some(f), Some(done)) = (&frame, &mut open_frame_done) {
                        app_value += 1;
                        // SAFETY: as at the frame's first slice.
                        unsafe { f.gpu_done_at(timeline, app_value) }.expect("gpu_done_at");
                        *done = app_value;
                    }
                    depth.app_draws += 1;
                    depth.aliases_undefined += images::undefine_aliases(&mut images, id);
                }
                CoordOp::Transient { len } => {
                    let Some(f) = open_frame(&c, &mut frame, &setup, &mut depth) else {
                        continue;
                    };
                    let (timeline, value) = transient_reads(
                        f,
                        &device,
                        &mut app_timeline,
                        &mut app_value,
                        &mut open_frame_done,
                    );
                    let bytes = data(len as usize, i);
                    let slice = f.transient_slice(&bytes);
                    let reads = (timeline, value);
                    check_transient(&device, slice, &bytes, reads, (i, &mut depth), &faults);
                }
                CoordOp::TransientWriter { slices, len } => {
                    let Some(f) = open_frame(&c, &mut frame, &setup, &mut depth) else {
                        continue;
                    };
                    let (timeline, value) = transient_reads(
                        f,
                        &device,
                        &mut app_timeline,
                        &mut app_value,
                        &mut open_frame_done,
                    );
                    let mut writer = f.transient_writer();
                    for k in 0..=u32::from(slices % 4) {
                        let bytes = data(len.saturating_add(16 * k) as usize, i + k as usize);
                        let slice = writer.transient_slice(&bytes);
                        let reads = (timeline, value);
                        check_transient(&device, slice, &bytes, reads, (i, &mut depth), &faults);
                    }
                    if slices & 4 != 0 {
                        std::mem::forget(writer);
                        depth.transient_writers_leaked += 1;
                    }
                }
                CoordOp::CreateAliasedImages { a, b } => {
                    let targets = images::aliased_set(a, b, self.preset);
                    let set =
                        match c.create_aliased_images(&targets, MemoryUsage::FAST_DEVICE_ACCESS) {
                            Ok(set) => set,
                            Err(e) if faults.refused(&e) => {
                                depth.faults_refused += 1;
                                continue;
                            }
                            Err(e) => panic!("create_aliased_images: {e:?}"),
                        };
                    for image in set.images {
                        image_order.push(image.id());
                        images.insert(
                            image.id(),
                            ImageModel::new(image).in_alias_set(depth.aliased_sets),
                        );
                    }
                    depth.aliased_sets += 1;
                }
                CoordOp::Fault { site, nth } => faults.ask(site, u64::from(nth % 4) + 1),
                CoordOp::Foreign(call) => {
                    let o = other.get_or_insert_with(|| {
                        let device = DummyDevice::with_preset(self.preset);
                        let coordinator =
                            Coordinator::new(device.clone(), config).expect("other coordinator");
                        let buffer = coordinator
                            .create_buffer(64, MemoryUsage::FAST_DEVICE_ACCESS)
                            .expect("other buffer");
                        Other {
                            buffer,
                            coordinator,
                            device,
                        }
                    });
                    let own = pick(&order, 0).map(|id| &models[&id].buffer);
                    let refused = match call {
                        ForeignCall::Buffer => c.upload_to(&o.buffer, 0, &[1u8; 4]).map(drop),
                        ForeignCall::Grant => {
                            let Some(own) = own else { continue };
                            // The earlier refused grants' room comes back only once drained:
                            // under `Fail` it is refused until then, so drain and ask again.
                            let grant = o.coordinator.acquire_staging(4).or_else(|_| {
                                o.coordinator.flush_transfers()?;
                                o.coordinator.acquire_staging(4)
                            });
                            let grant = grant.expect("other grant");
                            c.transfer_and_release(grant, own, 0).map(drop)
                        }
                        ForeignCall::Frame => {
                            let f = o.coordinator.begin_frame().expect("other begin_frame");
                            c.end_frame(f).map(drop)
                        }
                    };
                    let want = match call {
                        ForeignCall::Buffer => Error::ForeignBuffer,
                        ForeignCall::Grant => Error::ForeignGrant,
                        ForeignCall::Frame => Error::ForeignFrame,
                    };
                    assert_eq!(refused, Err(want), "{call:?}");
                    depth.foreign_refused += 1;
                }
            }
            depth.max_live = depth.max_live.max(models.len());
            depth.max_images = depth.max_images.max(images.len());
            depth.max_held = depth.max_held.max(held.len());
        }
        faults.disarm();
        (depth.faults_fired, depth.submit_faults_fired) = faults.fired_count();
        drop(frame);
        reading.extend(open_frame_done.take());
        // The application's last frames finish: teardown waits for them.
        finish_reading(&device, app_timeline, &mut reading);
        // Grants still held are abandoned: their room comes back and none of their bytes land.
        depth.grants_abandoned += held.len() as u32;
        drop(held);
        let pending = (&mut reads, &mut image_reads);
        check(&c, &mut models, pending, false, &mut depth, &mut ledger);
        for ticket in after_frames {
            assert!(ticket.is_complete().expect("ticket"), "{ticket:?}");
        }
        depth.take_stats(&c.stats());
        drop(models);
        drop(images);
        drop(c);
        let leaks = device.leak_report();
        assert!(leaks.is_empty(), "left after teardown: {leaks}");
        assert!(device.misuses().is_empty(), "{:?}", device.misuses());
        if let Some(Other {
            buffer,
            coordinator,
            device,
        }) = other
        {
            drop(buffer);
            drop(coordinator);
            let leaks = device.leak_report();
            assert!(
                leaks.is_empty(),
                "other coordinator, left after teardown: {leaks}"
            );
            assert!(device.misuses().is_empty(), "{:?}", device.misuses());
        }
        depth
    }
}

#[cfg(test)]
mod tests;
