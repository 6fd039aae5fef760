//! `Coordinator::memory_map_svg` on the simulated device: the picture has a row per memory
//! object and a rectangle per live allocation, agrees with the statistics, is well formed and
//! deterministic, and shows no live range once everything is freed.

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

#[test]
fn every_memory_object_and_live_allocation_is_drawn() {
    let c = coordinator();
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
