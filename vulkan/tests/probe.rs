//! The probe describes the device as the driver does, and the crate needs Vulkan where CI says so.

mod common;

use common::{finish, headless};
use memkit_core::device::MemoryDevice;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, VulkanDevice};

#[test]
fn probe_matches_the_device() {
    let Some(h) = headless() else { return };
    let device = h.device();
    let report = device.probe().unwrap();
    assert_eq!(report.memory_types, device.memory_properties().types());
    assert_eq!(
        report.memory_heaps.len(),
        device.memory_properties().heaps().len()
    );
    for (probed, heap) in report
        .memory_heaps
        .iter()
        .zip(device.memory_properties().heaps())
    {
        assert_eq!((probed.size, probed.flags), (heap.size, heap.flags));
        assert_eq!(probed.budget.is_some(), report.memory_budget);
    }
    assert_eq!(report.limits, device.limits());
    assert_eq!(
        report.memory_budget,
        device.enabled_features().memory_budget
    );
    assert_eq!(
        report.memory_priority,
        device.enabled_features().memory_priority
    );
    assert_eq!(
        report.timeline_semaphore,
        device.enabled_features().timeline_semaphore
    );
    let (family, dedicated) = report.transfer_family.expect("a family that copies");
    assert_eq!(family, device.transfer_queue().family);
    let families = &report.queue_families;
    assert!(!families.is_empty());
    assert_eq!(
        dedicated,
        !families[family as usize].graphics && !families[family as usize].compute
    );
    assert!(families.iter().all(|f| f.queue_count > 0));
    assert!(!report.device_name.is_empty());
    let text = report.to_string();
    assert!(text.contains(&report.device_name), "{text}");
    assert!(text.contains("nonCoherentAtomSize"), "{text}");
    println!("{text}");
    finish(h);
}

#[test]
fn vulkan_is_present_when_required() {
    // CI (scripts/test.sh) sets MEMKIT_REQUIRE_VULKAN=1: there, a machine without Vulkan fails
    // here instead of skipping every test.
    if std::env::var("MEMKIT_REQUIRE_VULKAN").as_deref() != Ok("1") {
        eprintln!("MEMKIT_REQUIRE_VULKAN is not 1: not checking that Vulkan is present");
        return;
    }
    let created = HeadlessDevice::new(HeadlessConfig {
        validation: true,
        ..HeadlessConfig::default()
    });
    match created {
        Ok(h) => finish(h),
        Err(e) => panic!("MEMKIT_REQUIRE_VULKAN=1 but no validated Vulkan device: {e}"),
    }
}

#[test]
fn the_device_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<VulkanDevice>();
    send_sync::<HeadlessDevice>();
}
