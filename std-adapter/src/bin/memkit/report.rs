//! What the command prints: a progress line, the demo's report in words and as JSON, and sizes
//! in readable units.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memkit_std::HeapReport;

use crate::demo::DemoReport;

/// A `\r` progress line on stderr, drawn only when stderr is a terminal, at most every 100 ms.
pub struct Progress {
    enabled: bool,
    total: u64,
    done: AtomicU64,
    last_draw: Mutex<Option<Instant>>,
}

impl Progress {
    /// A progress line for `total` steps; `wanted` and a terminal on stderr turn it on.
    pub fn new(wanted: bool, total: u64) -> Self {
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            total: total.max(1),
            done: AtomicU64::new(0),
            last_draw: Mutex::new(None),
        }
    }

    /// Counts `n` steps done, and redraws when it is time.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.draw();
    }

    /// Redraws the line if the last draw is 100 ms old.
    pub fn draw(&self) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last_draw.try_lock() else {
            return; // another thread is drawing
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_millis(100)) {
            return;
        }
        *last = Some(now);
        let done = self.done.load(Ordering::Relaxed).min(self.total);
        let width = 40;
        let filled = (done * width / self.total) as usize;
        let _ = write!(
            std::io::stderr(),
            "\r[{}{}] {:3}%",
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            done * 100 / self.total
        );
    }

    /// Clears the line.
    pub fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r{:60}\r", "");
        }
    }
}

/// `bytes` in B, KiB, MiB or GiB (the library's formatting, so the reports and the memory map
/// agree).
pub use memkit_std::format_bytes as size;

/// Regions before merging per region after, or 1 when nothing was submitted.
pub fn merge_ratio(before: u64, after: u64) -> f64 {
    if after == 0 {
        1.0
    } else {
        before as f64 / after as f64
    }
}

/// The demo's report, in words.
pub fn demo_text(r: &DemoReport) -> String {
    let s = &r.stats;
    let mut o = String::new();
    let o = &mut o;
    let _ = writeln!(o, "memkit demo on {}", r.device);
    let _ = writeln!(
        o,
        "  {} frames, {} producer threads, seed {}, {:.2} s",
        r.options.frames,
        r.options.threads,
        r.options.seed,
        r.elapsed.as_secs_f64()
    );
    let _ = writeln!(o, "uploads");
    let _ = writeln!(
        o,
        "  {} uploaded in {} uploads: {:.0} MB/s, {:.0} uploads/s",
        size(s.bytes_uploaded),
        r.uploads(),
        r.megabytes_per_second(),
        r.uploads_per_second()
    );
    let _ = writeln!(
        o,
        "  paths: {} through the staging ring, {} direct writes (host-visible device memory), \
         {} dedicated staging",
        s.staged_uploads, s.direct_writes, s.dedicated_staging_uploads
    );
    let _ = writeln!(
        o,
        "  {} submissions, {} copy commands, regions {} before merging -> {} after \
         (merge ratio {:.2}), {} staged bytes overwritten before submission",
        s.submissions,
        s.copy_commands,
        s.regions_before_merge,
        s.regions_after_merge,
        merge_ratio(s.regions_before_merge, s.regions_after_merge),
        size(s.bytes_overwritten)
    );
    let _ = writeln!(o, "staging ring");
    let ring = &s.ring;
    let share = |bytes: u64| bytes as f64 * 100.0 / ring.capacity.max(1) as f64;
    let _ = writeln!(
        o,
        "  capacity {}, producers wrote into the first {} ({:.0}%); in flight at most {} \
         ({:.0}%, counting ends skipped by early wraps until they come back)",
        size(ring.capacity),
        size(ring.bytes_reached),
        share(ring.bytes_reached),
        size(ring.high_water_mark),
        share(ring.high_water_mark),
    );
    let _ = writeln!(
        o,
        "  {} early wraps back to the start (skipping {}), {} skipped at wraps where a grant did \
         not fit, alignment padding {}, stalls {}",
        ring.early_wraps,
        size(ring.early_wrap_bytes),
        size(ring.wasted_wrap_bytes.saturating_sub(ring.early_wrap_bytes)),
        size(ring.alignment_padding_bytes),
        s.stalls
    );
    let _ = writeln!(o, "frames");
    let _ = writeln!(
        o,
        "  {} frames ended, {} waited for the GPU; timeline submitted {} completed {}",
        s.frames, s.frame_waits, s.submitted_value, s.completed_value
    );
    let _ = writeln!(
        o,
        "  {} per-draw constant blocks ({}) written into the frames' transient memory and read \
         in place; {} chunks ({}) held",
        s.transient_slices,
        size(s.transient_bytes),
        s.transient_chunks,
        size(s.transient_chunk_bytes)
    );
    let _ = writeln!(o, "buffers");
    let _ = writeln!(
        o,
        "  {} created, {} destroyed (deferred until their copies completed), {} dropped by \
         producers while running",
        s.buffers_created, s.buffers_destroyed, r.buffers_dropped
    );
    let _ = writeln!(
        o,
        "  defragmentation: {} buffers and {} textures moved ({}) out of sparse blocks, {} blocks \
         ({}) given back",
        s.buffers_moved,
        s.images_moved,
        size(s.bytes_moved),
        s.blocks_released_by_defragmentation,
        size(s.bytes_released_by_defragmentation)
    );
    let _ = writeln!(
        o,
        "  {} read back by the GPU into host memory ({}), in order after the uploads before",
        s.read_backs,
        size(s.bytes_read_back)
    );
    let _ = writeln!(o, "textures");
    let _ = writeln!(
        o,
        "  {} created with every mip level, {} destroyed; {} uploads into them (creations and \
         box re-uploads), {} of texels",
        s.images_created,
        s.images_destroyed,
        s.image_uploads,
        size(s.image_bytes_uploaded)
    );
    let t = &r.render_targets;
    let _ = writeln!(
        o,
        "  render targets: {} images and {} buffers of one frame aliased in {} instead of {} \
         ({:.0}% saved), each read back in its last pass",
        t.images,
        t.buffers,
        size(t.bytes),
        size(t.unaliased_bytes),
        100.0 * (1.0 - t.bytes as f64 / t.unaliased_bytes.max(1) as f64)
    );
    let _ = writeln!(o, "memory per heap (at the end, before teardown)");
    for h in &s.heaps {
        let _ = writeln!(o, "  {}", heap_line(h));
    }
    let v = &r.verification;
    let _ = writeln!(o, "verification");
    let _ = writeln!(
        o,
        "  bytes: {} buffers and {} textures (every level), {} compared with the last writes: {}",
        v.checked_buffers,
        v.checked_images,
        size(v.checked_bytes),
        if v.mismatches.is_empty() {
            "all equal".to_owned()
        } else {
            format!("{} DIFFER", v.mismatches.len())
        }
    );
    for m in &v.mismatches {
        let _ = writeln!(o, "    {m}");
    }
    let _ = writeln!(
        o,
        "  device-detected misuse: {}",
        if v.problems.is_empty() {
            "none".to_owned()
        } else {
            v.problems.len().to_string()
        }
    );
    for p in v.problems.iter().take(20) {
        let _ = writeln!(o, "    {p}");
    }
    let _ = writeln!(
        o,
        "  after teardown: {}",
        if v.leaks.is_empty() {
            "nothing leaked".to_owned()
        } else {
            format!("{} objects LEAKED", v.leaks.len())
        }
    );
    for l in v.leaks.iter().take(20) {
        let _ = writeln!(o, "    {l}");
    }
    let _ = writeln!(
        o,
        "{}",
        if v.passed() {
            "PASSED"
        } else {
            "VERIFICATION FAILED"
        }
    );
    std::mem::take(o)
}

/// One heap of the report: its blocks and dedicated objects, each as a count and the bytes of
/// them all (not a size per block or object: blocks differ in size).
pub fn heap_line(h: &HeapReport) -> String {
    format!(
        "heap {}: {} blocks, {} in all, holding {} in {} allocations (slack {:.1}%); \
         {} dedicated objects, {} in all; budget {} usage {}",
        h.heap,
        h.blocks,
        size(h.block_bytes),
        size(h.allocated_bytes),
        h.sub_allocations,
        h.block_slack() * 100.0,
        h.dedicated_objects,
        size(h.dedicated_bytes),
        size(h.budget),
        size(h.usage)
    )
}

/// A JSON object, written key by key.
pub struct Json(String);

impl Json {
    /// An empty object.
    pub fn new() -> Self {
        Self(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        string_into(&mut self.0, key);
        self.0.push(':');
    }

    /// An integer.
    pub fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    /// A number (`null` when not finite).
    pub fn float(&mut self, key: &str, value: f64) -> &mut Self {
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.0, "{value:.6}");
        } else {
            self.0.push_str("null");
        }
        self
    }

    /// A boolean.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
        self
    }

    /// A string.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        string_into(&mut self.0, value);
        self
    }

    /// An array of strings.
    pub fn strs(&mut self, key: &str, values: &[String]) -> &mut Self {
        self.key(key);
        self.0.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            string_into(&mut self.0, v);
        }
        self.0.push(']');
        self
    }

    /// JSON written elsewhere (an object or an array).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.0.push_str(json);
        self
    }

    /// The object's text.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.0);
        out.push('}');
        out
    }
}

/// Appends `s` as a JSON string.
fn string_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The demo's report as JSON: the run, throughput, verification, and the coordinator's own
/// report ([`memkit_std::CoordinatorStats::to_json`]) under `"coordinator"`.
pub fn demo_json(r: &DemoReport) -> String {
    let v = &r.verification;
    let mut verification = Json::new();
    verification
        .bool("passed", v.passed())
        .bool("bytes_verified", v.checked_buffers > 0)
        .num("checked_buffers", v.checked_buffers)
        .num("checked_images", v.checked_images)
        .num("checked_bytes", v.checked_bytes)
        .strs("mismatches", &v.mismatches)
        .strs("misuse", &v.problems)
        .strs("leaks", &v.leaks);
    let mut render_targets = Json::new();
    render_targets
        .num("images", r.render_targets.images)
        .num("buffers", r.render_targets.buffers)
        .num("bytes", r.render_targets.bytes)
        .num("unaliased_bytes", r.render_targets.unaliased_bytes);
    let s = &r.stats;
    Json::new()
        .str("command", "demo")
        .str("device", &r.device)
        .num("frames_requested", r.options.frames)
        .num("threads", r.options.threads as u64)
        .num("seed", r.options.seed)
        .float("elapsed_s", r.elapsed.as_secs_f64())
        .num("uploads", r.uploads())
        .float("megabytes_per_second", r.megabytes_per_second())
        .float("uploads_per_second", r.uploads_per_second())
        .float(
            "merge_ratio",
            merge_ratio(s.regions_before_merge, s.regions_after_merge),
        )
        .num("buffers_dropped_while_running", r.buffers_dropped)
        .raw("render_targets", &render_targets.finish())
        .raw("verification", &verification.finish())
        .raw("coordinator", &s.to_json())
        .finish()
}
