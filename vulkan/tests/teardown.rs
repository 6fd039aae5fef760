//! Teardown leaves no live Vulkan objects, and the check can fail: a leaked buffer and a misused
//! call are reported.

mod common;

use common::{finish, headless, headless_with};
use memkit_core::device::{BufferDevice, BufferUsage, MemoryDevice};
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, TimelineMode};

#[test]
fn a_clean_run_reports_nothing() {
    let Some(h) = headless() else { return };
    let (buffer, _) = h
        .device()
        .create_buffer(64, BufferUsage::TRANSFER_DST)
        .unwrap();
    // SAFETY: never used by the GPU.
    unsafe { h.device().destroy_buffer(buffer) };
    finish(h);
}

#[test]
fn a_leaked_buffer_is_reported_at_teardown() {
    let Some(h) = headless() else { return };
    let (buffer, _) = h
        .device()
        .create_buffer(64, BufferUsage::TRANSFER_DST)
        .unwrap();
    let _leaked = buffer;
    let messages = h.finish();
    assert!(
        messages.iter().any(|m| m.contains("VkBuffer")),
        "the leak went unreported: {messages:#?}"
    );
}

#[test]
fn a_leaked_memory_object_is_reported_at_teardown() {
    let Some(h) = headless() else { return };
    let info = memkit_core::device::MemoryAllocateInfo {
        size: 4096,
        memory_type: 0,
        dedicated_to: None,
        priority: 0.5,
        device_address: false,
    };
    // SAFETY: type 0 exists; the size is nonzero.
    let _leaked = unsafe { h.device().allocate_memory(&info) }.unwrap();
    let messages = h.finish();
    assert!(
        messages.iter().any(|m| m.contains("VkDeviceMemory")),
        "the leak went unreported: {messages:#?}"
    );
}

#[test]
fn misuse_is_reported_while_running() {
    let Some(h) = headless() else { return };
    // A buffer with no usage at all is invalid (VUID-VkBufferCreateInfo-usage-requiredbitmask).
    let info = vk::BufferCreateInfo::default().size(64);
    // SAFETY: deliberately invalid for the layer to catch; lavapipe accepts it.
    let buffer = unsafe { h.ash_device().create_buffer(&info, None) }.unwrap();
    assert!(h.validation_log().count() > 0, "the misuse went unreported");
    // SAFETY: never used.
    unsafe { h.ash_device().destroy_buffer(buffer, None) };
    drop(h);
}

#[test]
fn memkit_destroys_its_own_objects_in_both_timeline_modes() {
    for timeline in [TimelineMode::Auto, TimelineMode::FencePool] {
        let Some(h) = headless_with(HeadlessConfig {
            timeline,
            ..HeadlessConfig::default()
        }) else {
            return;
        };
        let _: &HeadlessDevice = &h;
        finish(h);
    }
}
