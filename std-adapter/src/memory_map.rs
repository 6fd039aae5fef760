//! The memory map as a picture: every memory object the coordinator's pools hold, one row each,
//! with its live allocations drawn where they sit, so fragmentation can be seen at a glance
//! (what VMA users get from a detailed `vmaBuildStatsString` and its dump visualiser).
//!
//! [`MemoryMap`] is gathered from core's [`MemoryPools::visit_memory_map`] under the pools' lock
//! and drawn after it is released, as a self-contained SVG (no scripts, no external styles), or
//! written out as JSON for tools (every figure the picture is drawn from, as exact integers).
//!
//! [`MemoryPools::visit_memory_map`]: memkit_core::MemoryPools::visit_memory_map

use std::fmt::Write as _;

use crate::stats::{JsonObject, format_bytes, json_array, push_json_string};
use memkit_core::LiveRange;
use memkit_core::device::{MemoryProperties, MemoryPropertyFlags};
use memkit_core::pool::{HeapStats, MapEntry, PoolStats};
use memkit_core::usage::ResourceKind;

#[cfg(test)]
mod tests;

/// Width of the whole picture, in pixels.
const WIDTH: f64 = 1200.0;
/// Where the bars start (labels sit left of them).
const BAR_X: f64 = 480.0;
/// Width of a bar: a whole memory object, whatever its size.
const BAR_WIDTH: f64 = WIDTH - BAR_X - 10.0;
/// Height of one row, and the space between rows.
const ROW_HEIGHT: f64 = 14.0;
const ROW_STEP: f64 = 20.0;
/// A range narrower than this is drawn this wide, so small allocations stay visible.
const MIN_RANGE_WIDTH: f64 = 1.0;

const STYLE: &str = "text{fill:#222}\
.title{font-size:14px;font-weight:bold}\
.group{font-weight:bold}\
.block,.legend-block{fill:#e4e4e4;stroke:#888;stroke-width:0.5}\
.range,.legend-range{fill:#2f6fb5;stroke:#fff;stroke-width:0.3}\
.dedicated,.legend-dedicated{fill:#d0702a;stroke:#888;stroke-width:0.5}";

/// One block: what core reported of it, and its live ranges by rising offset.
#[derive(Clone, Debug)]
struct BlockRow {
    slot: u32,
    memory_type: u32,
    heap: u32,
    size: u64,
    live: u32,
    allocated_bytes: u64,
    kind: Option<ResourceKind>,
    mapped: bool,
    ranges: Vec<LiveRange>,
}

/// One dedicated allocation.
#[derive(Clone, Copy, Debug)]
struct DedicatedRow {
    slot: u32,
    memory_type: u32,
    heap: u32,
    size: u64,
    mapped: bool,
}

/// The memory map, copied out of the pools (so drawing it holds no lock).
#[derive(Clone, Debug, Default)]
pub(crate) struct MemoryMap {
    blocks: Vec<BlockRow>,
    dedicated: Vec<DedicatedRow>,
    /// `(heap, properties)` of every memory type.
    types: Vec<(u32, MemoryPropertyFlags)>,
    /// Bytes of every heap.
    heaps: Vec<u64>,
    /// Every heap's statistics (for its budget and usage) as the pools gave them, when they
    /// were read (the pools are gone after shutdown).
    heap_stats: Vec<Option<HeapStats>>,
    /// The sub-allocator inside every block (`"tlsf"`, `"buddy"`).
    sub_allocator: &'static str,
}

impl MemoryMap {
    /// An empty map for a device with these memory types and heaps, of pools whose blocks are
    /// sub-allocated by `sub_allocator` (its name in the JSON form).
    pub(crate) fn new(properties: &MemoryProperties, sub_allocator: &'static str) -> Self {
        Self {
            sub_allocator,
            blocks: Vec::new(),
            dedicated: Vec::new(),
            types: properties
                .types()
                .iter()
                .map(|t| (t.heap_index, t.properties))
                .collect(),
            heaps: properties.heaps().iter().map(|h| h.size).collect(),
            heap_stats: vec![None; properties.heaps().len()],
        }
    }

    /// Records heap `heap`'s statistics, for its budget and usage; a heap the device does not
    /// have is ignored.
    pub(crate) fn set_heap_stats(&mut self, heap: u32, stats: HeapStats) {
        if let Some(slot) = self.heap_stats.get_mut(heap as usize) {
            *slot = Some(stats);
        }
    }

    /// Takes one entry of [`memkit_core::MemoryPools::visit_memory_map`], in the order it
    /// reports them (a range belongs to the block reported last).
    pub(crate) fn push<M>(&mut self, entry: MapEntry<M>) {
        match entry {
            MapEntry::Block(b) => self.blocks.push(BlockRow {
                slot: b.slot,
                memory_type: b.memory_type,
                heap: b.heap,
                size: b.size,
                live: b.live,
                allocated_bytes: b.allocated_bytes,
                kind: b.kind,
                mapped: b.mapped,
                ranges: Vec::with_capacity(b.live as usize),
            }),
            MapEntry::Range(r) => {
                if let Some(block) = self.blocks.last_mut() {
                    block.ranges.push(r);
                }
            }
            MapEntry::Dedicated(d) => self.dedicated.push(DedicatedRow {
                slot: d.slot,
                memory_type: d.memory_type,
                heap: d.heap,
                size: d.size,
                mapped: d.mapped,
            }),
        }
    }

    /// The figures the map shows, summed as the pools' statistics sum them.
    fn totals(&self) -> PoolStats {
        let mut s = PoolStats::default();
        for b in &self.blocks {
            s.blocks += 1;
            s.empty_blocks += u32::from(b.live == 0);
            s.block_bytes += b.size;
            s.allocated_bytes += b.allocated_bytes;
            s.sub_allocations += b.ranges.len() as u64;
        }
        for d in &self.dedicated {
            s.dedicated_objects += 1;
            s.dedicated_bytes += d.size;
        }
        s
    }

    /// The memory types that hold an object, by heap then type.
    fn types_in_use(&self) -> Vec<(u32, u32)> {
        let mut types: Vec<(u32, u32)> = self
            .blocks
            .iter()
            .map(|b| (b.heap, b.memory_type))
            .chain(self.dedicated.iter().map(|d| (d.heap, d.memory_type)))
            .collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    /// The map as a self-contained SVG document. Deterministic: the same map gives the same
    /// bytes. One row per memory object, grouped by heap and memory type under a heading; a
    /// block's row is its size scaled to the bar width, with a rectangle (class `range`) per
    /// live sub-allocation over the free background (class `block`); a dedicated allocation is a
    /// full row of class `dedicated`. Every label is plain ASCII with nothing to escape.
    pub(crate) fn to_svg(&self) -> String {
        let totals = self.totals();
        let groups = self.types_in_use();
        let rows = self.blocks.len() + self.dedicated.len();
        let height = 90.0 + groups.len() as f64 * ROW_STEP + rows as f64 * ROW_STEP;
        let mut svg =
            String::with_capacity(2048 + rows * 256 + totals.sub_allocations as usize * 160);
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
             viewBox=\"0 0 {WIDTH} {height}\" font-family=\"monospace\" font-size=\"12px\">\n\
             <style>{STYLE}</style>\n"
        );
        let _ = writeln!(
            svg,
            "<text class=\"title\" x=\"10\" y=\"20\">memkit memory map: {} blocks ({} empty), \
             {} dedicated, {} held, {} live allocations, {} in them</text>",
            totals.blocks,
            totals.empty_blocks,
            totals.dedicated_objects,
            format_bytes(totals.reserved_bytes()),
            totals.live_allocations(),
            format_bytes(totals.used_bytes()),
        );
        self.legend(&mut svg);
        let mut y = 80.0;
        if groups.is_empty() {
            let _ = writeln!(svg, "<text x=\"10\" y=\"{y}\">no device memory held</text>");
        }
        for (heap, memory_type) in groups {
            let _ = writeln!(
                svg,
                "<g class=\"memory-type\" id=\"type-{memory_type}\">\n\
                 <text class=\"group\" x=\"10\" y=\"{}\">memory type {memory_type} ({}), \
                 heap {heap} of {}</text>",
                y + ROW_HEIGHT - 3.0,
                self.type_flags(memory_type),
                format_bytes(self.heaps.get(heap as usize).copied().unwrap_or(0)),
            );
            y += ROW_STEP;
            for b in self.blocks.iter().filter(|b| b.memory_type == memory_type) {
                block_row(&mut svg, b, y);
                y += ROW_STEP;
            }
            for d in self
                .dedicated
                .iter()
                .filter(|d| d.memory_type == memory_type)
            {
                dedicated_row(&mut svg, d, y);
                y += ROW_STEP;
            }
            svg.push_str("</g>\n");
        }
        svg.push_str("</svg>\n");
        svg
    }

    /// What each colour means.
    fn legend(&self, svg: &mut String) {
        let items = [
            ("legend-block", "free space of a block"),
            ("legend-range", "live sub-allocation (its reserved range)"),
            (
                "legend-dedicated",
                "a dedicated allocation (a memory object of its own)",
            ),
        ];
        let mut x = 10.0;
        for (class, label) in items {
            let _ = writeln!(
                svg,
                "<rect class=\"{class}\" x=\"{x}\" y=\"34\" width=\"12\" height=\"12\"/>\
                 <text x=\"{}\" y=\"44\">{label}</text>",
                x + 16.0
            );
            x += 24.0 + 7.5 * label.len() as f64;
        }
        let _ = writeln!(
            svg,
            "<text x=\"10\" y=\"62\">each bar is one memory object scaled to full width; \
             ranges under a pixel are drawn 1 px wide</text>"
        );
    }

    /// `memory_type`'s property flags, like `DEVICE_LOCAL+HOST_VISIBLE`.
    fn type_flags(&self, memory_type: u32) -> String {
        let Some(&(_, flags)) = self.types.get(memory_type as usize) else {
            return "unknown".into();
        };
        let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
        if names.is_empty() {
            "no flags".into()
        } else {
            names.join("+")
        }
    }
}

impl MemoryMap {
    /// The map as one JSON object, for tools (what VMA's `vmaBuildStatsString` with its detailed
    /// map gives). Deterministic: the same map gives the same bytes. Every byte count and index
    /// is an exact integer; there is no float. The shape (see
    /// [`Coordinator::memory_map_json`](crate::Coordinator::memory_map_json) for what each field
    /// means):
    ///
    /// ```text
    /// {"format":"memkit-memory-map","version":1,"sub_allocator":"tlsf",
    ///  "heaps":[{"index","size","budget","usage","budget_from_device"}],
    ///  "memory_types":[{"index","heap","flags":["DEVICE_LOCAL",..],"property_flags"}],
    ///  "totals":{"memory_objects","blocks","empty_blocks","block_bytes","allocated_bytes",
    ///            "sub_allocations","dedicated_objects","dedicated_bytes","reserved_bytes",
    ///            "used_bytes","live_allocations"},
    ///  "blocks":[{"slot","memory_type","heap","size","resource_kind","mapped","live",
    ///             "allocated_bytes","reserved_bytes","free_bytes","free_ranges",
    ///             "largest_free_range","ranges":[{"offset","reserved","requested"}]}],
    ///  "dedicated":[{"slot","memory_type","heap","size","mapped"}]}
    /// ```
    pub(crate) fn to_json(&self) -> String {
        let mut o = JsonObject::new();
        o.text("format", "memkit-memory-map");
        o.num("version", 1);
        o.text("sub_allocator", self.sub_allocator);
        o.raw(
            "heaps",
            &json_array(self.heaps.iter().enumerate().map(|(index, &size)| {
                let mut h = JsonObject::new();
                h.num("index", index as u64);
                h.num("size", size);
                match self.heap_stats.get(index).copied().flatten() {
                    Some(s) => {
                        h.num("budget", s.budget);
                        h.num("usage", s.usage);
                        h.boolean("budget_from_device", s.budget_from_device);
                    }
                    None => {
                        h.null("budget");
                        h.null("usage");
                        h.null("budget_from_device");
                    }
                }
                h.finish()
            })),
        );
        o.raw(
            "memory_types",
            &json_array(
                (0..self.types.len() as u32).map(|memory_type| self.type_json(memory_type)),
            ),
        );
        let totals = self.totals();
        let mut t = JsonObject::new();
        t.num("memory_objects", u64::from(totals.memory_objects()));
        t.num("blocks", u64::from(totals.blocks));
        t.num("empty_blocks", u64::from(totals.empty_blocks));
        t.num("block_bytes", totals.block_bytes);
        t.num("allocated_bytes", totals.allocated_bytes);
        t.num("sub_allocations", totals.sub_allocations);
        t.num("dedicated_objects", u64::from(totals.dedicated_objects));
        t.num("dedicated_bytes", totals.dedicated_bytes);
        t.num("reserved_bytes", totals.reserved_bytes());
        t.num("used_bytes", totals.used_bytes());
        t.num("live_allocations", totals.live_allocations());
        o.raw("totals", &t.finish());
        o.raw("blocks", &json_array(self.blocks.iter().map(block_json)));
        o.raw(
            "dedicated",
            &json_array(self.dedicated.iter().map(|d| {
                let mut j = JsonObject::new();
                j.num("slot", u64::from(d.slot));
                j.num("memory_type", u64::from(d.memory_type));
                j.num("heap", u64::from(d.heap));
                j.num("size", d.size);
                j.boolean("mapped", d.mapped);
                j.finish()
            })),
        );
        o.finish()
    }
}

impl MemoryMap {
    /// Memory type `memory_type` (one of the device's) as a JSON object: index, heap, and its
    /// property flags by name and as bits (bits memkit has no name for are kept, not dropped).
    fn type_json(&self, memory_type: u32) -> String {
        let (heap, flags) = self.types[memory_type as usize];
        let names = flags.iter_names().map(|(name, _)| {
            let mut n = String::new();
            push_json_string(&mut n, name);
            n
        });
        let mut t = JsonObject::new();
        t.num("index", u64::from(memory_type));
        t.num("heap", u64::from(heap));
        t.raw("flags", &json_array(names));
        t.num("property_flags", u64::from(flags.bits()));
        t.finish()
    }
}

/// One block as a JSON object: its figures, the free space between its live ranges, and the
/// ranges by rising offset.
fn block_json(b: &BlockRow) -> String {
    let mut ranges = b.ranges.clone();
    ranges.sort_unstable_by_key(|r| r.offset);
    let reserved: u64 = ranges.iter().map(|r| r.reserved).sum();
    // The gaps between reserved ranges (and before the first, after the last) are free.
    let mut free_ranges = 0u64;
    let mut largest_free = 0u64;
    let mut at = 0u64;
    for end in ranges
        .iter()
        .map(|r| (r.offset, r.end()))
        .chain(std::iter::once((b.size, b.size)))
    {
        let gap = end.0.saturating_sub(at);
        if gap > 0 {
            free_ranges += 1;
            largest_free = largest_free.max(gap);
        }
        at = at.max(end.1);
    }
    let mut j = JsonObject::new();
    j.num("slot", u64::from(b.slot));
    j.num("memory_type", u64::from(b.memory_type));
    j.num("heap", u64::from(b.heap));
    j.num("size", b.size);
    match b.kind {
        None => j.null("resource_kind"),
        Some(ResourceKind::Linear) => j.text("resource_kind", "linear"),
        Some(ResourceKind::Optimal) => j.text("resource_kind", "optimal"),
    }
    j.boolean("mapped", b.mapped);
    j.num("live", u64::from(b.live));
    j.num("allocated_bytes", b.allocated_bytes);
    j.num("reserved_bytes", reserved);
    j.num("free_bytes", b.size.saturating_sub(reserved));
    j.num("free_ranges", free_ranges);
    j.num("largest_free_range", largest_free);
    j.raw(
        "ranges",
        &json_array(ranges.iter().map(|r| {
            let mut range = JsonObject::new();
            range.num("offset", r.offset);
            range.num("reserved", r.reserved);
            range.num("requested", r.requested);
            range.finish()
        })),
    );
    j.finish()
}

/// A block's row: label, free background, one rectangle per live range.
fn block_row(svg: &mut String, b: &BlockRow, y: f64) {
    let kind = match b.kind {
        None => "",
        Some(ResourceKind::Linear) => ", linear",
        Some(ResourceKind::Optimal) => ", optimal",
    };
    let used = percent(b.allocated_bytes, b.size);
    let _ = writeln!(
        svg,
        "<g class=\"block-row\" id=\"block-{}\">\n\
         <text x=\"20\" y=\"{}\">block {}: {}, {used} used, {} live{kind}{}</text>\n\
         <rect class=\"block\" x=\"{BAR_X}\" y=\"{y}\" width=\"{BAR_WIDTH}\" height=\"{ROW_HEIGHT}\"/>",
        b.slot,
        y + ROW_HEIGHT - 3.0,
        b.slot,
        format_bytes(b.size),
        b.live,
        if b.mapped { ", mapped" } else { "" },
    );
    let mut ranges = b.ranges.clone();
    ranges.sort_unstable_by_key(|r| r.offset);
    let scale = if b.size == 0 {
        0.0
    } else {
        BAR_WIDTH / b.size as f64
    };
    for r in &ranges {
        let width = (r.reserved as f64 * scale).max(MIN_RANGE_WIDTH);
        // A range drawn wider than it is must not run past the bar's end.
        let x = (BAR_X + r.offset as f64 * scale).min(BAR_X + BAR_WIDTH - width);
        let _ = writeln!(
            svg,
            "<rect class=\"range\" x=\"{x:.2}\" y=\"{y}\" width=\"{width:.2}\" \
             height=\"{ROW_HEIGHT}\"><title>offset {}, {} bytes asked, {} reserved</title></rect>",
            r.offset, r.requested, r.reserved
        );
    }
    svg.push_str("</g>\n");
}

/// A dedicated allocation's row: label and one full rectangle.
fn dedicated_row(svg: &mut String, d: &DedicatedRow, y: f64) {
    let _ = writeln!(
        svg,
        "<g class=\"dedicated-row\" id=\"dedicated-{}\">\n\
         <text x=\"20\" y=\"{}\">dedicated {}: {}, 100% used{}</text>\n\
         <rect class=\"dedicated\" x=\"{BAR_X}\" y=\"{y}\" width=\"{BAR_WIDTH}\" \
         height=\"{ROW_HEIGHT}\"><title>{} bytes</title></rect>\n</g>",
        d.slot,
        y + ROW_HEIGHT - 3.0,
        d.slot,
        format_bytes(d.size),
        if d.mapped { ", mapped" } else { "" },
        d.size,
    );
}

/// `part` of `whole` as a percentage with one decimal.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}
