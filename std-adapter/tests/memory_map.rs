//! `Coordinator::memory_map_svg` and `Coordinator::memory_map_json` on the simulated device: the
//! picture has a row per memory object and a rectangle per live allocation, the JSON document a
//! block per memory object and a range per live allocation; both agree with the statistics and
//! the live buffers, are well formed and deterministic, and show no live range once everything
//! is freed.

#[path = "support/json.rs"]
mod json;

use json::Json;
use memkit_dummy::DummyDevice;
use memkit_std::{Buffer, Coordinator, CoordinatorConfig, MemoryUsage, PoolConfig};

const MIB: u64 = 1 << 20;

/// A coordinator whose pools give allocations above 1 MiB memory objects of their own.
fn coordinator() -> Coordinator<DummyDevice> {
    let config = CoordinatorConfig {
        pools: PoolConfig {
            dedicated_threshold: Some(MIB),
            ..PoolConfig::DEFAULT
        },
        ..CoordinatorConfig::default()
    };
    Coordinator::new(DummyDevice::discrete(), config).unwrap()
}

fn count(svg: &str, needle: &str) -> usize {
    svg.matches(needle).count()
}

/// Walks the tags: every element opened is closed in order, nothing but known elements (and no
/// script) appears, and text holds no markup characters that would need escaping.
fn check_well_formed(svg: &str) {
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.ends_with("</svg>\n"));
    let mut open: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let text = &rest[..start];
        assert!(
            !text.contains('>') && !text.contains('&'),
            "unescaped text {text:?}"
        );
        let end = rest[start..].find('>').expect("a tag is closed") + start;
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "a tag inside a tag: {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "closing {name} out of order");
        } else {
            let name = tag.split([' ', '/']).next().unwrap();
            assert!(
                ["svg", "style", "g", "text", "rect", "title"].contains(&name),
                "unexpected element {name}"
            );
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "left open: {open:?}");
    assert!(rest.trim().is_empty());
}

/// `(offset, reserved)` of every live range drawn in memory type `memory_type`'s group.
fn ranges_of_type(svg: &str, memory_type: u32) -> Vec<(u64, u64)> {
    let head = format!("<g class=\"memory-type\" id=\"type-{memory_type}\">");
    let Some(start) = svg.find(&head) else {
        return Vec::new();
    };
    let group = &svg[start..];
    let group = &group[..group
        .find("\n</g>\n<g class=\"memory-type\"")
        .unwrap_or(group.len())];
    group
        .split("<title>offset ")
        .skip(1)
        .map(|t| {
            let t = &t[..t.find("</title>").unwrap()];
            let offset = t.split(',').next().unwrap().parse().unwrap();
            let reserved = t
                .rsplit(", ")
                .next()
                .unwrap()
                .trim_end_matches(" reserved")
                .parse()
                .unwrap();
            (offset, reserved)
        })
        .collect()
}

/// The statistics' figures, summed over the heaps: blocks, live sub-allocations, dedicated.
fn totals(c: &Coordinator<DummyDevice>) -> (usize, usize, usize) {
    let heaps = c.stats().heaps;
    (
        heaps.iter().map(|h| h.blocks as usize).sum(),
        heaps.iter().map(|h| h.sub_allocations as usize).sum(),
        heaps.iter().map(|h| h.dedicated_objects as usize).sum(),
    )
}

/// Uploads and creates buffers of several sizes and usages (two above the dedicated threshold),
/// frees every third to leave holes, and returns the rest once their copies completed.
fn buffers_with_holes(c: &Coordinator<DummyDevice>) -> Vec<Buffer<DummyDevice>> {
    let mut buffers: Vec<Buffer<DummyDevice>> = Vec::new();
    for i in 0..24u32 {
        let data = vec![i; 100 + 997 * i as usize];
        let (buffer, ticket) = c.upload_slice(&data).unwrap();
        ticket.wait().unwrap();
        buffers.push(buffer);
    }
    for (size, usage) in [
        (256, MemoryUsage::UPLOAD),
        (70_000, MemoryUsage::FAST_DEVICE_ACCESS),
        (3 * MIB, MemoryUsage::FAST_DEVICE_ACCESS),
        (5000, MemoryUsage::DOWNLOAD),
        (2 * MIB, MemoryUsage::UPLOAD),
    ] {
        buffers.push(c.create_buffer(size, usage).unwrap());
    }
    // Free every third buffer, leaving holes.
    let mut i = 0;
    buffers.retain(|_| {
        i += 1;
        i % 3 != 0
    });
    c.flush_transfers().unwrap().wait().unwrap();
    c.maintain().unwrap();
    buffers
}

#[test]
fn every_memory_object_and_live_allocation_is_drawn() {
    let c = coordinator();
    let buffers = buffers_with_holes(&c);
    let svg = c.memory_map_svg();
    if let Some(path) = std::env::var_os("MEMKIT_MAP_SVG") {
        std::fs::write(path, &svg).unwrap();
    }
    check_well_formed(&svg);
    assert!(!svg.contains("<script"));
    let (blocks, sub_allocations, dedicated) = totals(&c);
    assert!(
        blocks >= 2 && sub_allocations >= 10 && dedicated >= 2,
        "{blocks} {sub_allocations} {dedicated}"
    );
    assert_eq!(count(&svg, "<rect class=\"block\""), blocks);
    assert_eq!(count(&svg, "<g class=\"block-row\""), blocks);
    assert_eq!(count(&svg, "<rect class=\"range\""), sub_allocations);
    assert_eq!(count(&svg, "<rect class=\"dedicated\""), dedicated);
    assert_eq!(count(&svg, "<g class=\"dedicated-row\""), dedicated);
    // Labels: a block's names its slot, a dedicated allocation's says so.
    assert_eq!(count(&svg, "\">block "), blocks);
    assert_eq!(count(&svg, "\">dedicated "), dedicated);
    assert_eq!(count(&svg, "% used"), blocks + dedicated);
    // The legend names all three kinds of rectangle.
    for class in ["legend-block", "legend-range", "legend-dedicated"] {
        assert_eq!(count(&svg, &format!("<rect class=\"{class}\"")), 1);
    }
    // Each buffer in a block lies inside a range drawn in its memory type's group; each
    // dedicated one is a row of its size.
    for b in &buffers {
        let (_, offset) = b.memory();
        let ranges = ranges_of_type(&svg, b.memory_type());
        if b.size() > MIB {
            assert!(svg.contains(&format!("<title>{} bytes</title>", b.size())));
            continue;
        }
        assert!(
            ranges
                .iter()
                .any(|&(o, r)| o <= offset && offset + b.size() <= o + r),
            "buffer at {offset} (+{}) of type {} not drawn",
            b.size(),
            b.memory_type()
        );
    }
    // Deterministic: nothing changed, nothing differs.
    assert_eq!(c.memory_map_svg(), svg);

    drop(buffers);
    c.flush_transfers().unwrap().wait().unwrap();
    c.maintain().unwrap();
    let svg = c.memory_map_svg();
    check_well_formed(&svg);
    let (blocks, sub_allocations, dedicated) = totals(&c);
    assert_eq!(sub_allocations, 0);
    assert_eq!(count(&svg, "<rect class=\"range\""), 0);
    assert_eq!(count(&svg, "<rect class=\"block\""), blocks);
    assert_eq!(count(&svg, " 0 live"), blocks);
    // Only the staging ring's own memory object is left dedicated.
    assert_eq!(count(&svg, "<rect class=\"dedicated\""), dedicated);
    assert_eq!(dedicated, 1);

    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 0);
}

#[test]
fn tiny_ranges_in_a_large_block_stay_visible() {
    let c = coordinator();
    let small: Vec<_> = (0..8)
        .map(|_| {
            c.create_buffer(16, MemoryUsage::FAST_DEVICE_ACCESS)
                .unwrap()
        })
        .collect();
    let svg = c.memory_map_svg();
    check_well_formed(&svg);
    let widths: Vec<f64> = svg
        .split("<rect class=\"range\"")
        .skip(1)
        .map(|r| {
            let w = &r[r.find("width=\"").unwrap() + 7..];
            w[..w.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(widths.len(), small.len());
    assert!(widths.iter().all(|&w| w >= 1.0), "{widths:?}");
}

/// A coordinator on `preset` whose pools give allocations above 1 MiB memory objects of their
/// own.
fn coordinator_on(preset: memkit_dummy::Preset) -> Coordinator<DummyDevice> {
    let config = CoordinatorConfig {
        pools: PoolConfig {
            dedicated_threshold: Some(MIB),
            ..PoolConfig::DEFAULT
        },
        ..CoordinatorConfig::default()
    };
    Coordinator::new(DummyDevice::with_preset(preset), config).unwrap()
}

/// `(count, bytes)` of the free gaps of a block of `size` bytes around `ranges` (sorted by
/// offset), and the largest: worked out here again, not taken from the document.
fn free_gaps(size: u64, ranges: &[(u64, u64)]) -> (u64, u64, u64) {
    let (mut count, mut bytes, mut largest, mut at) = (0, 0, 0, 0);
    for &(offset, end) in ranges.iter().chain(std::iter::once(&(size, size))) {
        if offset > at {
            count += 1;
            bytes += offset - at;
            largest = largest.max(offset - at);
        }
        at = end;
    }
    (count, bytes, largest)
}

/// Checks the JSON memory map of `c` against its statistics and its device, field by field, and
/// returns the parsed document. Every block's ranges lie inside it by rising offset without
/// overlapping, number `live`, and sum to its `reserved_bytes`; its free figures are the gaps
/// between them; per heap, blocks, their bytes, live sub-allocations, allocated bytes and
/// dedicated objects equal the statistics'; the totals are the sums.
fn check_json_map(c: &Coordinator<DummyDevice>, text: &str) -> Json {
    let doc = Json::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        doc.keys(),
        [
            "format",
            "version",
            "sub_allocator",
            "heaps",
            "memory_types",
            "totals",
            "blocks",
            "dedicated"
        ]
    );
    assert_eq!(doc.get("format").str(), "memkit-memory-map");
    assert_eq!(doc.get("version").int(), 1);
    assert_eq!(doc.get("sub_allocator").str(), "tlsf");

    let properties = c.device().memory_properties();
    let heaps = doc.get("heaps").array();
    assert_eq!(heaps.len(), properties.heaps().len());
    // Budgets as the statistics give them, read before the document was made: the pools'
    // budgets do not move while nothing allocates.
    let stats = c.stats();
    let budget_query = c.device().config().budget_query;
    for (i, (h, device)) in heaps.iter().zip(properties.heaps()).enumerate() {
        assert_eq!(
            h.keys(),
            ["index", "size", "budget", "usage", "budget_from_device"]
        );
        assert_eq!(h.get("index").int(), i as u64);
        assert_eq!(h.get("size").int(), device.size);
        let report = stats.heaps.iter().find(|r| r.heap == i as u32).unwrap();
        assert_eq!(h.get("budget").int(), report.budget, "heap {i}");
        assert_eq!(h.get("usage").int(), report.usage, "heap {i}");
        assert_eq!(h.get("budget_from_device").bool(), budget_query, "heap {i}");
    }
    let types = doc.get("memory_types").array();
    assert_eq!(types.len(), properties.types().len());
    for (i, (t, device)) in types.iter().zip(properties.types()).enumerate() {
        assert_eq!(t.get("index").int(), i as u64);
        assert_eq!(t.get("heap").int(), u64::from(device.heap_index));
        assert_eq!(
            t.get("property_flags").int(),
            u64::from(device.properties.bits())
        );
        let names: Vec<&str> = t.get("flags").array().iter().map(Json::str).collect();
        let expected: Vec<&str> = device.properties.iter_names().map(|(n, _)| n).collect();
        assert_eq!(names, expected);
    }

    // Per heap: blocks, block bytes, allocated bytes, live ranges, dedicated objects and bytes.
    let mut per_heap = vec![[0u64; 6]; heaps.len()];
    let mut last_slot = None;
    for b in doc.get("blocks").array() {
        let slot = b.get("slot").int();
        assert!(last_slot < Some(slot), "blocks out of slot order");
        last_slot = Some(slot);
        let memory_type = b.get("memory_type").int() as usize;
        let heap = b.get("heap").int();
        assert_eq!(types[memory_type].get("heap").int(), heap);
        let size = b.get("size").int();
        assert!(size > 0);
        let kind = b.get("resource_kind");
        assert!(
            *kind == Json::Null || ["linear", "optimal"].contains(&kind.str()),
            "{kind:?}"
        );
        b.get("mapped").bool();
        let ranges: Vec<(u64, u64, u64)> = b
            .get("ranges")
            .array()
            .iter()
            .map(|r| {
                assert_eq!(r.keys(), ["offset", "reserved", "requested"]);
                (
                    r.get("offset").int(),
                    r.get("reserved").int(),
                    r.get("requested").int(),
                )
            })
            .collect();
        assert_eq!(ranges.len() as u64, b.get("live").int());
        let mut end = 0;
        for &(offset, reserved, requested) in &ranges {
            assert!(
                offset >= end,
                "range at {offset} overlaps the one before (to {end})"
            );
            assert!(
                0 < requested && requested <= reserved,
                "{requested} of {reserved}"
            );
            end = offset + reserved;
            assert!(end <= size, "range to {end} past its block of {size}");
        }
        let reserved: u64 = ranges.iter().map(|r| r.1).sum();
        let requested: u64 = ranges.iter().map(|r| r.2).sum();
        assert_eq!(b.get("reserved_bytes").int(), reserved);
        assert_eq!(b.get("free_bytes").int(), size - reserved);
        // What the statistics count for the block is what its ranges asked for.
        let allocated = b.get("allocated_bytes").int();
        assert_eq!(allocated, requested, "reserved {reserved}");
        let spans: Vec<(u64, u64)> = ranges.iter().map(|r| (r.0, r.0 + r.1)).collect();
        let (count, bytes, largest) = free_gaps(size, &spans);
        assert_eq!(bytes, size - reserved);
        assert_eq!(b.get("free_ranges").int(), count);
        assert_eq!(b.get("largest_free_range").int(), largest);
        let h = &mut per_heap[heap as usize];
        h[0] += 1;
        h[1] += size;
        h[2] += allocated;
        h[3] += ranges.len() as u64;
    }
    let mut last_slot = None;
    for d in doc.get("dedicated").array() {
        assert_eq!(d.keys(), ["slot", "memory_type", "heap", "size", "mapped"]);
        let slot = d.get("slot").int();
        assert!(last_slot < Some(slot), "dedicated out of slot order");
        last_slot = Some(slot);
        let heap = d.get("heap").int();
        assert_eq!(
            types[d.get("memory_type").int() as usize].get("heap").int(),
            heap
        );
        d.get("mapped").bool();
        let h = &mut per_heap[heap as usize];
        h[4] += 1;
        h[5] += d.get("size").int();
    }
    let stats = c.stats();
    for report in &stats.heaps {
        let h = per_heap[report.heap as usize];
        assert_eq!(
            h,
            [
                u64::from(report.blocks),
                report.block_bytes,
                report.allocated_bytes,
                report.sub_allocations,
                u64::from(report.dedicated_objects),
                report.dedicated_bytes,
            ],
            "heap {}",
            report.heap
        );
    }
    let sum = |i: usize| per_heap.iter().map(|h| h[i]).sum::<u64>();
    let totals = doc.get("totals");
    let empty = doc
        .get("blocks")
        .array()
        .iter()
        .filter(|b| b.get("live").int() == 0)
        .count() as u64;
    for (key, value) in [
        ("memory_objects", sum(0) + sum(4)),
        ("blocks", sum(0)),
        ("empty_blocks", empty),
        ("block_bytes", sum(1)),
        ("allocated_bytes", sum(2)),
        ("sub_allocations", sum(3)),
        ("dedicated_objects", sum(4)),
        ("dedicated_bytes", sum(5)),
        ("reserved_bytes", sum(1) + sum(5)),
        ("used_bytes", sum(2) + sum(5)),
        ("live_allocations", sum(3) + sum(4)),
    ] {
        assert_eq!(totals.get(key).int(), value, "totals.{key}");
    }
    assert_eq!(totals.keys().len(), 11);
    doc
}

/// The ranges of the blocks of memory type `memory_type`: `(block slot, offset, reserved)`.
fn json_ranges_of_type(doc: &Json, memory_type: u32) -> Vec<(u64, u64, u64)> {
    doc.get("blocks")
        .array()
        .iter()
        .filter(|b| b.get("memory_type").int() == u64::from(memory_type))
        .flat_map(|b| {
            let slot = b.get("slot").int();
            b.get("ranges")
                .array()
                .iter()
                .map(move |r| (slot, r.get("offset").int(), r.get("reserved").int()))
        })
        .collect()
}

#[test]
fn the_json_map_agrees_with_the_statistics_and_the_live_buffers() {
    for preset in memkit_dummy::Preset::ALL {
        let c = coordinator_on(preset);
        let buffers = buffers_with_holes(&c);
        let text = c.memory_map_json();
        if preset == memkit_dummy::Preset::Discrete
            && let Some(path) = std::env::var_os("MEMKIT_MAP_JSON")
        {
            std::fs::write(path, &text).unwrap();
        }
        let doc = check_json_map(&c, &text);
        let (blocks, sub_allocations, dedicated) = totals(&c);
        assert!(
            blocks >= 1 && sub_allocations >= 10 && dedicated >= 2,
            "{preset}: {blocks} {sub_allocations} {dedicated}"
        );
        // Each buffer in a block lies inside a range of its memory type, and each range holds
        // a buffer: as many ranges as buffers in blocks. Each dedicated buffer is a dedicated
        // object of its size and type.
        let mut in_blocks = Vec::new();
        for b in &buffers {
            if b.size() > MIB {
                assert!(
                    doc.get("dedicated").array().iter().any(|d| {
                        d.get("size").int() == b.size()
                            && d.get("memory_type").int() == u64::from(b.memory_type())
                    }),
                    "{preset}: dedicated buffer of {} not listed",
                    b.size()
                );
            } else {
                in_blocks.push((b.memory_type(), b.memory().1, b.size()));
            }
        }
        let inside = |(_, o, r): (u64, u64, u64), (_, offset, size): (u32, u64, u64)| {
            o <= offset && offset + size <= o + r
        };
        for &buffer in &in_blocks {
            assert!(
                json_ranges_of_type(&doc, buffer.0)
                    .into_iter()
                    .any(|range| inside(range, buffer)),
                "{preset}: buffer {buffer:?} (type, offset, size) not listed"
            );
        }
        for memory_type in 0..c.device().memory_properties().types().len() as u32 {
            for range in json_ranges_of_type(&doc, memory_type) {
                assert!(
                    in_blocks
                        .iter()
                        .any(|&b| b.0 == memory_type && inside(range, b)),
                    "{preset}: range {range:?} (slot, offset, reserved) holds no buffer"
                );
            }
        }
        assert_eq!(in_blocks.len(), sub_allocations, "{preset}");
        // Deterministic: nothing changed, nothing differs.
        assert_eq!(c.memory_map_json(), text, "{preset}");

        drop(buffers);
        c.flush_transfers().unwrap().wait().unwrap();
        c.maintain().unwrap();
        let doc = check_json_map(&c, &c.memory_map_json());
        for b in doc.get("blocks").array() {
            assert_eq!(b.get("live").int(), 0, "{preset}");
            assert_eq!(b.get("free_ranges").int(), 1, "{preset}");
            assert_eq!(b.get("free_bytes").int(), b.get("size").int(), "{preset}");
        }
        // Only the staging ring's own memory object is left dedicated.
        assert_eq!(doc.get("dedicated").array().len(), 1, "{preset}");
        assert_eq!(doc.get("totals").get("sub_allocations").int(), 0);
        assert_eq!(c.shutdown().leaked_buffers, 0, "{preset}");
    }
}
