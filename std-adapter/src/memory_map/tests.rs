use super::*;

use memkit_core::device::{MemoryHeap, MemoryHeapFlags, MemoryType};
use memkit_core::pool::{MapBlock, MapDedicated};
use memkit_dummy::DummyDevice;

use crate::{Coordinator, CoordinatorConfig, MemoryUsage};

/// Two heaps; type 0 device-local, type 1 host-visible and coherent with a bit memkit has no
/// name for (AMD's device-coherent, `1 << 6`).
fn properties() -> MemoryProperties {
    let types = [
        MemoryType {
            properties: MemoryPropertyFlags::DEVICE_LOCAL,
            heap_index: 0,
        },
        MemoryType {
            properties: MemoryPropertyFlags::HOST_VISIBLE
                | MemoryPropertyFlags::HOST_COHERENT
                | MemoryPropertyFlags::from_bits_retain(1 << 6),
            heap_index: 1,
        },
    ];
    let heaps = [
        MemoryHeap {
            size: 1 << 20,
            flags: MemoryHeapFlags::DEVICE_LOCAL,
        },
        MemoryHeap {
            size: 1 << 22,
            flags: MemoryHeapFlags::empty(),
        },
    ];
    MemoryProperties::new(&types, &heaps).unwrap()
}

fn range(offset: u64, reserved: u64, requested: u64) -> MapEntry<u64> {
    MapEntry::Range(LiveRange {
        offset,
        reserved,
        requested,
    })
}

/// A block of 1000 bytes with two ranges reported out of order (free gaps of 100, 300 and 200
/// bytes around them), an empty mapped block, and a dedicated allocation.
fn small_map() -> MemoryMap {
    let mut map = MemoryMap::new(&properties(), "tlsf");
    map.push(MapEntry::Block(MapBlock {
        slot: 0,
        memory: 7u64,
        memory_type: 0,
        heap: 0,
        size: 1000,
        live: 2,
        allocated_bytes: 300,
        kind: Some(ResourceKind::Optimal),
        mapped: false,
    }));
    map.push(range(600, 200, 150));
    map.push(range(100, 200, 150));
    map.push(MapEntry::Block(MapBlock {
        slot: 2,
        memory: 8,
        memory_type: 1,
        heap: 1,
        size: 512,
        live: 0,
        allocated_bytes: 0,
        kind: None,
        mapped: true,
    }));
    map.push(MapEntry::Dedicated(MapDedicated {
        slot: 1,
        memory: 9,
        memory_type: 1,
        heap: 1,
        size: 64,
        mapped: true,
    }));
    map
}

#[test]
fn json_of_a_small_map_is_exact() {
    let expected = concat!(
        r#"{"format":"memkit-memory-map","version":1,"sub_allocator":"tlsf","#,
        r#""heaps":[{"index":0,"size":1048576,"budget":800000,"usage":1512,"#,
        r#""budget_from_device":true},{"index":1,"size":4194304,"budget":null,"usage":null,"#,
        r#""budget_from_device":null}],"#,
        r#""memory_types":[{"index":0,"heap":0,"flags":["DEVICE_LOCAL"],"property_flags":1},"#,
        r#"{"index":1,"heap":1,"flags":["HOST_VISIBLE","HOST_COHERENT"],"property_flags":70}],"#,
        r#""totals":{"memory_objects":3,"blocks":2,"empty_blocks":1,"block_bytes":1512,"#,
        r#""allocated_bytes":300,"sub_allocations":2,"dedicated_objects":1,"dedicated_bytes":64,"#,
        r#""reserved_bytes":1576,"used_bytes":364,"live_allocations":3},"#,
        r#""blocks":[{"slot":0,"memory_type":0,"heap":0,"size":1000,"resource_kind":"optimal","#,
        r#""mapped":false,"live":2,"allocated_bytes":300,"reserved_bytes":400,"free_bytes":600,"#,
        r#""free_ranges":3,"largest_free_range":300,"ranges":[{"offset":100,"reserved":200,"#,
        r#""requested":150},{"offset":600,"reserved":200,"requested":150}]},"#,
        r#"{"slot":2,"memory_type":1,"heap":1,"size":512,"resource_kind":null,"mapped":true,"#,
        r#""live":0,"allocated_bytes":0,"reserved_bytes":0,"free_bytes":512,"free_ranges":1,"#,
        r#""largest_free_range":512,"ranges":[]}],"#,
        r#""dedicated":[{"slot":1,"memory_type":1,"heap":1,"size":64,"mapped":true}]}"#,
    );
    let mut map = small_map();
    let stats = HeapStats {
        pools: PoolStats::default(),
        budget: 800_000,
        usage: 1512,
        budget_from_device: true,
    };
    map.set_heap_stats(0, stats);
    // A heap the device does not have is ignored.
    map.set_heap_stats(2, stats);
    assert_eq!(map.to_json(), expected);
}

#[test]
fn a_full_block_has_no_free_range_and_touching_ranges_leave_no_gap() {
    let mut map = MemoryMap::new(&properties(), "buddy");
    map.push(MapEntry::Block(MapBlock {
        slot: 0,
        memory: 1u64,
        memory_type: 0,
        heap: 0,
        size: 256,
        live: 2,
        allocated_bytes: 256,
        kind: Some(ResourceKind::Linear),
        mapped: false,
    }));
    map.push(range(128, 128, 128));
    map.push(range(0, 128, 100));
    let json = map.to_json();
    assert!(json.contains(r#""sub_allocator":"buddy""#), "{json}");
    assert!(
        json.contains(
            r#""resource_kind":"linear","mapped":false,"live":2,"allocated_bytes":256,"reserved_bytes":256,"free_bytes":0,"free_ranges":0,"largest_free_range":0,"#
        ),
        "{json}"
    );
}

#[test]
fn an_empty_map_is_a_document_with_empty_lists() {
    let json = MemoryMap::new(&properties(), "tlsf").to_json();
    assert!(json.contains(r#""blocks":[],"dedicated":[]}"#), "{json}");
    assert!(
        json.contains(r#""totals":{"memory_objects":0,"blocks":0,"#),
        "{json}"
    );
}

/// `Coordinator::shutdown` consumes the coordinator; its shared state (kept here) then holds
/// no memory object, and the map says so.
#[test]
fn the_map_is_empty_after_shutdown() {
    let c = Coordinator::new(DummyDevice::discrete(), CoordinatorConfig::default()).unwrap();
    let buffer = c
        .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
        .unwrap();
    let shared = std::sync::Arc::clone(c.shared());
    let before = shared.memory_map().to_json();
    assert!(before.contains(r#""ranges":[{"offset":"#), "{before}");
    assert!(before.contains(r#""budget_from_device":true}"#), "{before}");
    let stats = c.shutdown();
    assert_eq!(stats.leaked_buffers, 1);
    drop(buffer);
    let after = shared.memory_map().to_json();
    assert!(
        after.contains(r#""blocks":[],"dedicated":[]}"#)
            && after.contains(r#""totals":{"memory_objects":0,"#)
            && after.contains(r#""budget":null,"usage":null,"budget_from_device":null}"#),
        "{after}"
    );
    assert!(
        shared
            .memory_map()
            .to_svg()
            .contains("no device memory held")
    );
}
