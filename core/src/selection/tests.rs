use super::*;
use crate::device::{MemoryHeap, MemoryHeapFlags, MemoryType};

const DL: F = F::DEVICE_LOCAL;
const HV: F = F::HOST_VISIBLE;
const HC: F = F::HOST_COHERENT;
const CACHED: F = F::HOST_CACHED;

fn props(types: &[(F, u32)]) -> MemoryProperties {
    let types: std::vec::Vec<MemoryType> = types
        .iter()
        .map(|&(properties, heap_index)| MemoryType {
            properties,
            heap_index,
        })
        .collect();
    let heaps = [
        MemoryHeap {
            size: 16 << 30,
            flags: MemoryHeapFlags::DEVICE_LOCAL,
        },
        MemoryHeap {
            size: 64 << 30,
            flags: MemoryHeapFlags::empty(),
        },
        MemoryHeap {
            size: 256 << 20,
            flags: MemoryHeapFlags::DEVICE_LOCAL,
        },
    ];
    MemoryProperties::new(&types, &heaps).unwrap()
}

/// The H200's five types (shared/GPU.md): host, device, host coherent, host coherent cached,
/// and device-local host-visible coherent over the whole VRAM heap (resizable BAR).
fn h200() -> MemoryProperties {
    props(&[
        (F::empty(), 1),
        (DL, 0),
        (HV | HC, 1),
        (HV | HC | CACHED, 1),
        (DL | HV | HC, 0),
    ])
}

fn rank(p: &MemoryProperties, bits: u32, usage: MemoryUsage) -> std::vec::Vec<u8> {
    MemoryTypeRanking::rank(p, bits, usage)
        .unwrap()
        .as_slice()
        .to_vec()
}

#[test]
fn device_only_prefers_vram_that_is_not_host_visible() {
    let p = h200();
    assert_eq!(rank(&p, !0, MemoryUsage::FAST_DEVICE_ACCESS)[0], 1);
    assert_eq!(rank(&p, !0, MemoryUsage::empty())[0], 1);
    // Falls back to the BAR window (same heap) before system memory.
    assert_eq!(rank(&p, !0, MemoryUsage::FAST_DEVICE_ACCESS)[1], 4);
}

#[test]
fn upload_prefers_uncached_host_memory_and_rebar_when_fast() {
    let p = h200();
    assert_eq!(rank(&p, !0, MemoryUsage::UPLOAD)[0], 2);
    assert_eq!(
        rank(
            &p,
            !0,
            MemoryUsage::UPLOAD | MemoryUsage::FAST_DEVICE_ACCESS
        )[0],
        4
    );
    // Host access requires HOST_VISIBLE: types 0 and 1 never appear.
    let r = rank(&p, !0, MemoryUsage::UPLOAD);
    assert_eq!(r.len(), 3);
    assert!(!r.contains(&0) && !r.contains(&1));
}

#[test]
fn download_prefers_cached() {
    let p = h200();
    assert_eq!(rank(&p, !0, MemoryUsage::DOWNLOAD)[0], 3);
    assert_eq!(rank(&p, !0, MemoryUsage::HOST_ACCESS)[0], 3);
}

#[test]
fn memory_type_bits_restrict_the_ranking() {
    let p = h200();
    assert_eq!(rank(&p, 0b10100, MemoryUsage::UPLOAD), [2, 4]);
    assert_eq!(
        MemoryTypeRanking::rank(&p, 0b00011, MemoryUsage::UPLOAD),
        Err(SelectionError::NoCompatibleType)
    );
    assert_eq!(
        MemoryTypeRanking::rank(&p, 0, MemoryUsage::empty()),
        Err(SelectionError::NoCompatibleType)
    );
    // Bits above the type count are ignored, not an index out of range.
    assert_eq!(
        MemoryTypeRanking::rank(&p, 1 << 31, MemoryUsage::empty()),
        Err(SelectionError::NoCompatibleType)
    );
}

#[test]
fn protected_and_lazily_allocated_only_when_asked() {
    let p = props(&[
        (DL | F::PROTECTED, 0),
        (DL | F::LAZILY_ALLOCATED, 0),
        (DL, 0),
    ]);
    assert_eq!(rank(&p, !0, MemoryUsage::FAST_DEVICE_ACCESS), [2]);
    assert_eq!(rank(&p, !0, MemoryUsage::TRANSIENT), [1, 2]);
    assert_eq!(
        MemoryTypeRanking::rank(&p, 0b011, MemoryUsage::FAST_DEVICE_ACCESS),
        Err(SelectionError::NoCompatibleType)
    );
    // Strict selection reaches a protected type.
    let strict = MemoryTypeRanking::strict(&p, !0, 0).unwrap();
    assert_eq!(strict.as_slice(), [0]);
    assert_eq!(strict.best(), 0);
}

#[test]
fn strict_checks_the_index_and_the_bits() {
    let p = h200();
    assert_eq!(
        MemoryTypeRanking::strict(&p, !0, 5),
        Err(SelectionError::TypeNotAllowed)
    );
    assert_eq!(
        MemoryTypeRanking::strict(&p, !0, u32::MAX),
        Err(SelectionError::TypeNotAllowed)
    );
    assert_eq!(
        MemoryTypeRanking::strict(&p, 0b01, 1),
        Err(SelectionError::TypeNotAllowed)
    );
}

#[test]
fn integrated_gpu_serves_every_usage_from_its_one_heap() {
    let p = props(&[(DL, 0), (DL | HV | HC, 0), (DL | HV | HC | CACHED, 0)]);
    assert_eq!(rank(&p, !0, MemoryUsage::FAST_DEVICE_ACCESS)[0], 0);
    assert_eq!(rank(&p, !0, MemoryUsage::UPLOAD)[0], 1);
    assert_eq!(rank(&p, !0, MemoryUsage::DOWNLOAD)[0], 2);
}

#[test]
fn equal_costs_keep_device_order() {
    let p = props(&[(DL, 0), (DL, 2)]);
    assert_eq!(rank(&p, !0, MemoryUsage::empty()), [0, 1]);
}
