use super::*;
use crate::config::Preset;

#[test]
fn every_preset_builds() {
    for preset in Preset::ALL {
        let device = DummyDevice::new(preset.config()).expect("valid preset");
        assert_eq!(device.config().name, preset.config().name);
        assert!(device.leak_report().is_empty());
        let same = DummyDevice::with_preset(preset);
        assert_eq!(same.config(), device.config());
    }
}

#[test]
fn handles_of_two_devices_differ() {
    let a = DummyDevice::lavapipe();
    let b = DummyDevice::lavapipe();
    assert_ne!(a.shared.serial, b.shared.serial);
    assert_ne!(a.memory_handle(1), b.memory_handle(1));
}

#[test]
fn device_is_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<DummyDevice>();
}
