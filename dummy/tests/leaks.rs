//! The leak report lists what is alive, with sizes and labels.

mod common;

use common::{alloc, backed_buffer, release_all};
use memkit_core::device::BufferUsage;
use memkit_dummy::{DeviceConfig, DummyDevice};

#[test]
fn live_objects_are_reported_with_labels() {
    let gpu = DummyDevice::discrete();
    let (memory, buffer) = backed_buffer(&gpu, 1, 4096, true);
    let loose = alloc(&gpu, 0, 1 << 20);
    let (unbound, _) = gpu.create_buffer(100, BufferUsage::VERTEX).expect("buffer");
    assert!(gpu.set_memory_label(memory, "staging ring"));
    assert!(gpu.set_buffer_label(buffer, "ring buffer"));
    let report = gpu.leak_report();
    assert_eq!(report.memory.len(), 2);
    assert_eq!(report.buffers.len(), 2);
    assert_eq!(report.memory_bytes(), 4096 + (1 << 20));
    let ring = &report.memory[0];
    assert_eq!(
        (ring.memory, ring.memory_type, ring.size, ring.mapped),
        (memory, 1, 4096, true)
    );
    assert_eq!(ring.label.as_deref(), Some("staging ring"));
    assert_eq!(report.memory[1].label, None);
    assert_eq!(report.buffers[0].bound_to, Some((memory, 0)));
    assert_eq!(report.buffers[0].label.as_deref(), Some("ring buffer"));
    assert_eq!(
        (
            report.buffers[1].buffer,
            report.buffers[1].size,
            report.buffers[1].bound_to
        ),
        (unbound, 100, None)
    );
    let text = report.to_string();
    assert!(
        text.contains("staging ring") && text.contains("ring buffer"),
        "{text}"
    );
    assert!(text.contains("2 memory objects"), "{text}");

    gpu.free_memory(loose);
    release_all(&gpu);
    assert!(gpu.leak_report().is_empty());
    assert!(
        !gpu.set_memory_label(memory, "gone"),
        "freed objects take no label"
    );
}

#[test]
fn the_report_survives_clones_and_drop_is_quiet_when_asked() {
    let gpu = DummyDevice::new(DeviceConfig::lavapipe().with_report_leaks_on_drop(false))
        .expect("device");
    let clone = gpu.clone();
    let memory = alloc(&clone, 0, 64);
    drop(clone);
    assert_eq!(gpu.leak_report().memory[0].memory, memory);
    // Dropped with a leak and reporting off: nothing printed, nothing panics.
}
