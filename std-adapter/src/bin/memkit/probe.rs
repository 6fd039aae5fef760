//! `memkit probe`: a device's memory types, heaps (size, budget, usage) and limits, as memkit-core
//! sees them through its device traits.

use std::fmt::Write as _;

use memkit_core::device::{HeapBudget, MAX_MEMORY_HEAPS, MemoryDevice, MemoryPropertyFlags};

use crate::report::{Json, size};

/// The flags of a memory type, as short words (`DEVICE_LOCAL | HOST_VISIBLE ...`).
fn flag_names(flags: MemoryPropertyFlags) -> String {
    if flags.is_empty() {
        return "(none)".to_owned();
    }
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    let known = names.iter().fold(MemoryPropertyFlags::empty(), |acc, n| {
        acc | MemoryPropertyFlags::from_name(n).unwrap_or_else(MemoryPropertyFlags::empty)
    });
    let mut out = names.join(" | ");
    let unknown = flags.bits() & !known.bits();
    if unknown != 0 {
        let _ = write!(out, " | {unknown:#x}");
    }
    out
}

/// Budgets per heap, when the device reports them.
fn budgets<D: MemoryDevice>(device: &D) -> Option<Vec<HeapBudget>> {
    let mut out = [HeapBudget::default(); MAX_MEMORY_HEAPS];
    let heaps = device.memory_properties().heaps().len();
    device
        .query_budget(&mut out[..heaps])
        .then(|| out[..heaps].to_vec())
}

/// The device in words.
pub fn text<D: MemoryDevice>(name: &str, device: &D) -> String {
    let props = device.memory_properties();
    let budgets = budgets(device);
    let mut o = String::new();
    let _ = writeln!(o, "{name}");
    let _ = writeln!(o, "memory heaps");
    for (i, heap) in props.heaps().iter().enumerate() {
        let _ = write!(
            o,
            "  heap {i}: {}{}",
            size(heap.size),
            if heap.flags.is_empty() {
                String::new()
            } else {
                format!(", {:?}", heap.flags)
            }
        );
        match &budgets {
            Some(b) => {
                let _ = writeln!(
                    o,
                    ", budget {}, usage {}",
                    size(b[i].budget),
                    size(b[i].usage)
                );
            }
            None => {
                let _ = writeln!(o, ", no budget query");
            }
        }
    }
    let _ = writeln!(o, "memory types");
    for (i, t) in props.types().iter().enumerate() {
        let _ = writeln!(
            o,
            "  type {i}: heap {}, {}",
            t.heap_index,
            flag_names(t.properties)
        );
    }
    let l = device.limits();
    let _ = writeln!(o, "limits");
    let _ = writeln!(
        o,
        "  maxMemoryAllocationCount {}\n  maxMemoryAllocationSize {}\n  \
         bufferImageGranularity {}\n  nonCoherentAtomSize {}\n  minMemoryMapAlignment {}\n  \
         buffer offset alignment (uniform, storage, texel) {}",
        l.max_memory_allocation_count,
        size(l.max_memory_allocation_size),
        l.buffer_image_granularity,
        l.non_coherent_atom_size,
        l.min_memory_map_alignment,
        l.min_buffer_offset_alignment
    );
    o
}

/// The same as JSON.
pub fn json<D: MemoryDevice>(name: &str, device: &D) -> String {
    let props = device.memory_properties();
    let budgets = budgets(device);
    let heaps: Vec<String> = props
        .heaps()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut j = Json::new();
            j.num("heap", i as u64)
                .num("size", h.size)
                .num("flags", u64::from(h.flags.bits()));
            if let Some(b) = &budgets {
                j.num("budget", b[i].budget).num("usage", b[i].usage);
            }
            j.finish()
        })
        .collect();
    let types: Vec<String> = props
        .types()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Json::new()
                .num("type", i as u64)
                .num("heap", u64::from(t.heap_index))
                .num("flags", u64::from(t.properties.bits()))
                .str("flag_names", &flag_names(t.properties))
                .finish()
        })
        .collect();
    let l = device.limits();
    let limits = Json::new()
        .num(
            "max_memory_allocation_count",
            u64::from(l.max_memory_allocation_count),
        )
        .num("max_memory_allocation_size", l.max_memory_allocation_size)
        .num("buffer_image_granularity", l.buffer_image_granularity)
        .num("non_coherent_atom_size", l.non_coherent_atom_size)
        .num("min_memory_map_alignment", l.min_memory_map_alignment)
        .num("min_buffer_offset_alignment", l.min_buffer_offset_alignment)
        .finish();
    Json::new()
        .str("command", "probe")
        .str("device", name)
        .raw("memory_heaps", &format!("[{}]", heaps.join(",")))
        .raw("memory_types", &format!("[{}]", types.join(",")))
        .raw("limits", &limits)
        .bool("budget_query", budgets.is_some())
        .finish()
}
