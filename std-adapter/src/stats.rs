//! What the coordinator counts, and its report as JSON.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use memkit_core::RingStats;
use memkit_core::pool::HeapStats;

use crate::buffer::COUNTER;

#[cfg(test)]
mod tests;

/// Shards of [`UploadCounters`]: the first this many threads that count get one each.
const SHARDS: usize = 64;

/// The per-upload tallies, bumped on every upload without a locked instruction.
///
/// Direct writes go to write-combined device memory (resizable BAR); on x86 a locked
/// read-modify-write drains the write-combining buffers those stores just filled. Measured on the
/// H200, two shared `fetch_add`s per upload cut 8-thread 256 B direct uploads from 24.8 to
/// 4.3 GB/s; and on the staged path every producer bumping one shared line makes it bounce between
/// cores. So each thread adds to a shard only it writes, with plain loads and stores (exact: one
/// writer per shard), all of one upload's tallies on one cache line, and readers sum the shards.
/// Threads past the first [`SHARDS`] share an atomic overflow shard.
pub(crate) struct UploadCounters {
    shards: [UploadShard; SHARDS],
    overflow: UploadShard,
}

/// One thread's tallies, on a cache line of their own so threads do not share lines.
#[repr(align(64))]
#[derive(Default)]
struct UploadShard {
    /// Uploads staged through the ring.
    staged_uploads: AtomicU64,
    /// Bytes of staged uploads (ring and dedicated staging).
    staged_bytes: AtomicU64,
    direct_writes: AtomicU64,
    direct_bytes: AtomicU64,
}

/// Which tallies one upload adds to.
#[derive(Clone, Copy)]
pub(crate) enum Tally {
    /// An upload staged through the ring: one upload, its bytes.
    Staged,
    /// A later chunk of an upload staged through the ring in chunks: its bytes only.
    StagedChunk,
    /// A direct write: one write, its bytes.
    Direct,
    /// A dedicated staging upload, written first as a direct write into its staging buffer: that
    /// write taken back, its bytes counted as staged.
    DirectToDedicated,
}

impl Default for UploadCounters {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| UploadShard::default()),
            overflow: UploadShard::default(),
        }
    }
}

/// This thread's shard index: no other live thread has it. A thread's index goes back to a free
/// list when the thread exits and is handed to a later thread, so programs that start threads
/// again and again (a producer pool per frame, scoped threads per batch) keep using the
/// per-thread shards; with indices never reused, every thread after the first [`SHARDS`] would
/// count in the shared overflow shard with locked instructions. `usize::MAX` (no shard) while the
/// thread's locals are being destroyed.
fn shard_index() -> usize {
    thread_local! {
        static INDEX: ShardLease = ShardLease::take();
    }
    INDEX.try_with(|i| i.0).unwrap_or(usize::MAX)
}

/// Shard indices of exited threads, and the next never-used one.
static FREE_SHARDS: Mutex<(Vec<usize>, usize)> = Mutex::new((Vec::new(), 0));

/// One thread's shard index, given back when the thread exits.
struct ShardLease(usize);

impl ShardLease {
    fn take() -> Self {
        let mut free = FREE_SHARDS.lock().unwrap_or_else(|e| e.into_inner());
        let index = match free.0.pop() {
            Some(index) => index,
            None => {
                free.1 += 1;
                free.1 - 1
            }
        };
        // The lock orders this thread's first writes to the shard after the last writes of the
        // thread that gave it back (they came before its unlock).
        Self(index)
    }
}

impl Drop for ShardLease {
    fn drop(&mut self) {
        let mut free = FREE_SHARDS.lock().unwrap_or_else(|e| e.into_inner());
        free.0.push(self.0);
    }
}

impl UploadCounters {
    /// Counts one upload of `bytes` bytes.
    #[inline]
    pub(crate) fn add(&self, tally: Tally, bytes: u64) {
        let (shard, exclusive) = match self.shards.get(shard_index()) {
            Some(shard) => (shard, true),
            None => (&self.overflow, false),
        };
        let add = |c: &AtomicU64, n: u64| {
            if exclusive {
                // Relaxed load and store: this thread is the shard's only writer.
                c.store(c.load(COUNTER).wrapping_add(n), COUNTER);
            } else {
                c.fetch_add(n, COUNTER);
            }
        };
        match tally {
            Tally::Staged => {
                add(&shard.staged_uploads, 1);
                add(&shard.staged_bytes, bytes);
            }
            Tally::StagedChunk => add(&shard.staged_bytes, bytes),
            Tally::Direct => {
                add(&shard.direct_writes, 1);
                add(&shard.direct_bytes, bytes);
            }
            Tally::DirectToDedicated => {
                // Wrapping: the sums stay exact.
                add(&shard.direct_writes, 1u64.wrapping_neg());
                add(&shard.direct_bytes, bytes.wrapping_neg());
                add(&shard.staged_bytes, bytes);
            }
        }
    }

    /// The sum over shards of one tally.
    fn sum(&self, tally: impl Fn(&UploadShard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .chain(std::iter::once(&self.overflow))
            .fold(0u64, |sum, s| sum.wrapping_add(tally(s).load(COUNTER)))
    }
}

/// Live counters, updated with relaxed atomics (each is a tally, read for reports only).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) buffers_created: AtomicU64,
    pub(crate) buffers_destroyed: AtomicU64,
    pub(crate) leaked_buffers: AtomicU64,
    pub(crate) images_created: AtomicU64,
    pub(crate) images_destroyed: AtomicU64,
    pub(crate) leaked_images: AtomicU64,
    pub(crate) image_uploads: AtomicU64,
    pub(crate) image_bytes_uploaded: AtomicU64,
    pub(crate) read_backs: AtomicU64,
    pub(crate) bytes_read_back: AtomicU64,
    pub(crate) read_back_buffers_reused: AtomicU64,
    pub(crate) buffers_moved: AtomicU64,
    pub(crate) images_moved: AtomicU64,
    pub(crate) bytes_moved: AtomicU64,
    pub(crate) blocks_released_by_defragmentation: AtomicU64,
    pub(crate) bytes_released_by_defragmentation: AtomicU64,
    /// Uploads and their bytes, by path: per-thread shards.
    pub(crate) uploads: UploadCounters,
    pub(crate) dedicated_staging_uploads: AtomicU64,
    pub(crate) uploads_submitted: AtomicU64,
    pub(crate) regions_before_merge: AtomicU64,
    pub(crate) regions_after_merge: AtomicU64,
    pub(crate) bytes_overwritten: AtomicU64,
    pub(crate) copy_commands: AtomicU64,
    pub(crate) submissions: AtomicU64,
    pub(crate) eager_submissions: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) frame_waits: AtomicU64,
    pub(crate) transient_slices: AtomicU64,
    pub(crate) transient_bytes: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(
        &self,
        ring: RingStats,
        heaps: Vec<HeapReport>,
        frames: u64,
        submitted_value: u64,
        completed_value: u64,
    ) -> CoordinatorStats {
        let get = |c: &AtomicU64| c.load(COUNTER);
        CoordinatorStats {
            buffers_created: get(&self.buffers_created),
            buffers_destroyed: get(&self.buffers_destroyed),
            leaked_buffers: get(&self.leaked_buffers),
            images_created: get(&self.images_created),
            images_destroyed: get(&self.images_destroyed),
            leaked_images: get(&self.leaked_images),
            image_uploads: get(&self.image_uploads),
            image_bytes_uploaded: get(&self.image_bytes_uploaded),
            read_backs: get(&self.read_backs),
            bytes_read_back: get(&self.bytes_read_back),
            read_back_buffers_reused: get(&self.read_back_buffers_reused),
            read_back_bytes_kept: 0,
            transient_slices: get(&self.transient_slices),
            transient_bytes: get(&self.transient_bytes),
            transient_chunks: 0,
            transient_chunk_bytes: 0,
            buffers_moved: get(&self.buffers_moved),
            images_moved: get(&self.images_moved),
            bytes_moved: get(&self.bytes_moved),
            blocks_released_by_defragmentation: get(&self.blocks_released_by_defragmentation),
            bytes_released_by_defragmentation: get(&self.bytes_released_by_defragmentation),
            bytes_uploaded: (self.uploads.sum(|s| &s.staged_bytes))
                .wrapping_add(self.uploads.sum(|s| &s.direct_bytes)),
            staged_uploads: self.uploads.sum(|s| &s.staged_uploads),
            direct_writes: self.uploads.sum(|s| &s.direct_writes),
            dedicated_staging_uploads: get(&self.dedicated_staging_uploads),
            uploads_submitted: get(&self.uploads_submitted),
            regions_before_merge: get(&self.regions_before_merge),
            regions_after_merge: get(&self.regions_after_merge),
            bytes_overwritten: get(&self.bytes_overwritten),
            copy_commands: get(&self.copy_commands),
            submissions: get(&self.submissions),
            eager_submissions: get(&self.eager_submissions),
            stalls: get(&self.stalls),
            frame_waits: get(&self.frame_waits),
            frames,
            submitted_value,
            completed_value,
            ring,
            heaps,
        }
    }
}

/// Memory of one heap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeapReport {
    /// Heap index.
    pub heap: u32,
    /// Blocks (sub-allocated memory objects), empty ones included.
    pub blocks: u32,
    /// Bytes of blocks.
    pub block_bytes: u64,
    /// Bytes of blocks held by live sub-allocations.
    pub allocated_bytes: u64,
    /// Live sub-allocations.
    pub sub_allocations: u64,
    /// Dedicated memory objects.
    pub dedicated_objects: u32,
    /// Bytes of dedicated objects.
    pub dedicated_bytes: u64,
    /// Bytes the process may use in the heap.
    pub budget: u64,
    /// Bytes the process uses in the heap.
    pub usage: u64,
}

impl HeapReport {
    pub(crate) fn from_core(heap: u32, s: &HeapStats) -> Self {
        Self {
            heap,
            blocks: s.pools.blocks,
            block_bytes: s.pools.block_bytes,
            allocated_bytes: s.pools.allocated_bytes,
            sub_allocations: s.pools.sub_allocations,
            dedicated_objects: s.pools.dedicated_objects,
            dedicated_bytes: s.pools.dedicated_bytes,
            budget: s.budget,
            usage: s.usage,
        }
    }

    /// Share of block bytes not held by live allocations (0 when there are no blocks).
    pub fn block_slack(&self) -> f64 {
        if self.block_bytes == 0 {
            0.0
        } else {
            1.0 - self.allocated_bytes as f64 / self.block_bytes as f64
        }
    }
}

/// A snapshot of what a coordinator did and holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorStats {
    /// Buffers created (staging buffers of dedicated uploads included).
    pub buffers_created: u64,
    /// Buffers destroyed.
    pub buffers_destroyed: u64,
    /// Buffers the application still held when the coordinator shut down: non-zero only in the
    /// statistics [`Coordinator::shutdown`](crate::Coordinator::shutdown) returns (dropping the
    /// coordinator logs each one instead).
    pub leaked_buffers: u64,
    /// Images created.
    pub images_created: u64,
    /// Images destroyed.
    pub images_destroyed: u64,
    /// Images the application still held when the coordinator shut down, as `leaked_buffers`.
    pub leaked_images: u64,
    /// Uploads into images submitted (staged through the ring; those the ring cannot take in a
    /// staging buffer of their own, counted in `buffers_created`).
    pub image_uploads: u64,
    /// Texel bytes those uploads carried (not in `bytes_uploaded`).
    pub image_bytes_uploaded: u64,
    /// Copies out of buffers submitted by [`crate::Coordinator::read_back`].
    pub read_backs: u64,
    /// Bytes those copies carried.
    pub bytes_read_back: u64,
    /// Read-backs that landed in a buffer kept from an earlier one instead of a new buffer
    /// ([`crate::CoordinatorConfig::read_back_cache_bytes`]).
    pub read_back_buffers_reused: u64,
    /// Bytes of landing buffers kept now for later read-backs (the coordinator's, not the
    /// application's: [`crate::CoordinatorConfig::read_back_cache_bytes`]).
    pub read_back_bytes_kept: u64,
    /// Slices of frames' transient memory written ([`crate::Frame::transient_slice`]), counted
    /// when their frame ends (or is dropped).
    pub transient_slices: u64,
    /// Their bytes.
    pub transient_bytes: u64,
    /// Buffers the coordinator holds for frames' transient memory now (free, in use by a frame,
    /// or waiting for a frame's GPU work).
    pub transient_chunks: u64,
    /// Their bytes.
    pub transient_chunk_bytes: u64,
    /// Buffers [`crate::Coordinator::defragment`] moved.
    pub buffers_moved: u64,
    /// Images [`crate::Coordinator::defragment_with_images`] moved.
    pub images_moved: u64,
    /// Bytes those moves copied (buffer sizes, and images' texels).
    pub bytes_moved: u64,
    /// Blocks defragmentation emptied and gave back to the device (counted when the pass that
    /// emptied them ended, once its old buffers were freed).
    pub blocks_released_by_defragmentation: u64,
    /// Their bytes.
    pub bytes_released_by_defragmentation: u64,
    /// Bytes uploaded into buffers, all paths.
    pub bytes_uploaded: u64,
    /// Uploads staged through the ring (one per call, however many chunks a large one took).
    pub staged_uploads: u64,
    /// Uploads written straight into host-visible device memory.
    pub direct_writes: u64,
    /// Uploads staged in a staging allocation of their own.
    pub dedicated_staging_uploads: u64,
    /// Staged uploads submitted to the GPU (a chunked upload counts once, with its first chunk).
    pub uploads_submitted: u64,
    /// Copy regions before merging (one per upload, or per chunk of a chunked one, split where
    /// later uploads overwrote parts).
    pub regions_before_merge: u64,
    /// Copy regions submitted, after merging.
    pub regions_after_merge: u64,
    /// Bytes staged that a later upload overwrote before submission (never copied).
    pub bytes_overwritten: u64,
    /// Copy commands submitted.
    pub copy_commands: u64,
    /// Submissions (timeline values signalled).
    pub submissions: u64,
    /// Flushes a producer started right after staging a large upload
    /// ([`CoordinatorConfig::eager_submit_bytes`](crate::CoordinatorConfig::eager_submit_bytes)).
    pub eager_submissions: u64,
    /// Uploads (or chunks of a large one, or staging grants) that waited for the GPU because
    /// the ring was full of submitted work, once each. Waits for room that grants or uploads not
    /// yet submitted hold are not counted.
    pub stalls: u64,
    /// Times `begin_frame` waited for the GPU.
    pub frame_waits: u64,
    /// Frames ended or cancelled (a frame dropped without `end_frame` is cancelled).
    pub frames: u64,
    /// Last timeline value submitted.
    pub submitted_value: u64,
    /// Last timeline value known complete.
    pub completed_value: u64,
    /// The staging ring.
    pub ring: RingStats,
    /// Memory per heap.
    pub heaps: Vec<HeapReport>,
}

impl CoordinatorStats {
    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        let mut o = JsonObject::new();
        o.num("buffers_created", self.buffers_created);
        o.num("buffers_destroyed", self.buffers_destroyed);
        o.num("leaked_buffers", self.leaked_buffers);
        o.num("images_created", self.images_created);
        o.num("images_destroyed", self.images_destroyed);
        o.num("leaked_images", self.leaked_images);
        o.num("image_uploads", self.image_uploads);
        o.num("image_bytes_uploaded", self.image_bytes_uploaded);
        o.num("read_backs", self.read_backs);
        o.num("bytes_read_back", self.bytes_read_back);
        o.num("read_back_buffers_reused", self.read_back_buffers_reused);
        o.num("read_back_bytes_kept", self.read_back_bytes_kept);
        o.num("transient_slices", self.transient_slices);
        o.num("transient_bytes", self.transient_bytes);
        o.num("transient_chunks", self.transient_chunks);
        o.num("transient_chunk_bytes", self.transient_chunk_bytes);
        o.num("buffers_moved", self.buffers_moved);
        o.num("images_moved", self.images_moved);
        o.num("bytes_moved", self.bytes_moved);
        o.num(
            "blocks_released_by_defragmentation",
            self.blocks_released_by_defragmentation,
        );
        o.num(
            "bytes_released_by_defragmentation",
            self.bytes_released_by_defragmentation,
        );
        o.num("bytes_uploaded", self.bytes_uploaded);
        o.num("staged_uploads", self.staged_uploads);
        o.num("direct_writes", self.direct_writes);
        o.num("dedicated_staging_uploads", self.dedicated_staging_uploads);
        o.num("uploads_submitted", self.uploads_submitted);
        o.num("regions_before_merge", self.regions_before_merge);
        o.num("regions_after_merge", self.regions_after_merge);
        o.num("bytes_overwritten", self.bytes_overwritten);
        o.num("copy_commands", self.copy_commands);
        o.num("submissions", self.submissions);
        o.num("eager_submissions", self.eager_submissions);
        o.num("stalls", self.stalls);
        o.num("frame_waits", self.frame_waits);
        o.num("frames", self.frames);
        o.num("submitted_value", self.submitted_value);
        o.num("completed_value", self.completed_value);
        let r = &self.ring;
        let mut ring = JsonObject::new();
        ring.num("capacity", r.capacity);
        ring.num("bytes_in_flight", r.bytes_in_flight);
        ring.num("high_water_mark", r.high_water_mark);
        ring.num("bytes_reached", r.bytes_reached);
        ring.num("wasted_wrap_bytes", r.wasted_wrap_bytes);
        ring.num("early_wraps", r.early_wraps);
        ring.num("early_wrap_bytes", r.early_wrap_bytes);
        ring.num("alignment_padding_bytes", r.alignment_padding_bytes);
        ring.num("failed_grants", r.failed_grants);
        ring.num("dropped_grants", r.dropped_grants);
        ring.num("drained_bytes", r.drained_bytes);
        o.raw("ring", &ring.finish());
        let heaps: Vec<String> = self
            .heaps
            .iter()
            .map(|h| {
                let mut j = JsonObject::new();
                j.num("heap", u64::from(h.heap));
                j.num("blocks", u64::from(h.blocks));
                j.num("block_bytes", h.block_bytes);
                j.num("allocated_bytes", h.allocated_bytes);
                j.num("sub_allocations", h.sub_allocations);
                j.num("dedicated_objects", u64::from(h.dedicated_objects));
                j.num("dedicated_bytes", h.dedicated_bytes);
                j.num("budget", h.budget);
                j.num("usage", h.usage);
                j.float("block_slack", h.block_slack());
                j.finish()
            })
            .collect();
        o.raw("heaps", &format!("[{}]", heaps.join(",")));
        o.finish()
    }
}

/// A JSON object writer. Keys are ours (plain ASCII, written as they are); string values are
/// escaped ([`JsonObject::text`]); nested objects and arrays go in whole ([`JsonObject::raw`],
/// [`json_array`]).
pub(crate) struct JsonObject(String);

impl JsonObject {
    pub(crate) fn new() -> Self {
        Self(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{key}\":");
    }

    pub(crate) fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = write!(self.0, "{value}");
    }

    pub(crate) fn float(&mut self, key: &str, value: f64) {
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.0, "{value:.6}");
        } else {
            self.0.push_str("null");
        }
    }

    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.0.push_str(json);
    }

    /// A string value, escaped.
    pub(crate) fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_string(&mut self.0, value);
    }

    pub(crate) fn boolean(&mut self, key: &str, value: bool) {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
    }

    pub(crate) fn null(&mut self, key: &str) {
        self.key(key);
        self.0.push_str("null");
    }

    pub(crate) fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A JSON array of already written JSON values, in order.
pub(crate) fn json_array<I>(values: I) -> String
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut out = String::from("[");
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(v.as_ref());
    }
    out.push(']');
    out
}

/// `value` as a JSON string: quoted, with quotes, backslashes and control characters escaped.
pub(crate) fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `bytes` for people: in B below 1 KiB, else in KiB, MiB or GiB with one decimal ("194.0 MiB").
/// What the `memkit` command's reports and [`Coordinator::memory_map_svg`] print.
///
/// ```
/// use memkit_std::format_bytes;
/// assert_eq!(format_bytes(1023), "1023 B");
/// assert_eq!(format_bytes(1536), "1.5 KiB");
/// assert_eq!(format_bytes(194 << 20), "194.0 MiB");
/// assert_eq!(format_bytes(u64::MAX), "17179869184.0 GiB");
/// ```
///
/// [`Coordinator::memory_map_svg`]: crate::Coordinator::memory_map_svg
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
