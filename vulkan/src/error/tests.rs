use super::*;

const MAPPERS: [fn(vk::Result) -> DeviceError; 5] = [
    map_host_oom_err,
    map_host_device_oom_err,
    map_host_device_oom_and_lost_err,
    map_host_device_oom_and_too_many_objects_err,
    map_host_device_oom_and_map_failed_err,
];

#[test]
fn every_mapper_accepts_host_oom() {
    for map in MAPPERS {
        assert_eq!(
            map(vk::Result::ERROR_OUT_OF_HOST_MEMORY),
            DeviceError::OutOfHostMemory
        );
    }
}

#[test]
fn device_oom_is_typed_where_accepted() {
    for map in &MAPPERS[1..] {
        assert_eq!(
            map(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY),
            DeviceError::OutOfDeviceMemory
        );
    }
    assert_eq!(
        map_host_oom_err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY),
        DeviceError::Unexpected(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY.as_raw())
    );
}

#[test]
fn a_lost_device_becomes_device_lost() {
    assert_eq!(
        map_host_device_oom_and_lost_err(vk::Result::ERROR_DEVICE_LOST),
        DeviceError::DeviceLost
    );
}

#[test]
fn allocation_and_map_results() {
    assert_eq!(
        map_host_device_oom_and_too_many_objects_err(vk::Result::ERROR_TOO_MANY_OBJECTS),
        DeviceError::TooManyObjects
    );
    assert_eq!(
        map_host_device_oom_and_map_failed_err(vk::Result::ERROR_MEMORY_MAP_FAILED),
        DeviceError::MapFailed
    );
}

#[test]
fn results_outside_a_mapper_are_unexpected_with_their_code() {
    for map in MAPPERS {
        assert_eq!(
            map(vk::Result::ERROR_UNKNOWN),
            DeviceError::Unexpected(vk::Result::ERROR_UNKNOWN.as_raw())
        );
        assert_eq!(
            map(vk::Result::ERROR_FRAGMENTED_POOL),
            DeviceError::Unexpected(-12)
        );
    }
    assert_eq!(
        map_host_device_oom_err(vk::Result::ERROR_DEVICE_LOST),
        DeviceError::Unexpected(-4)
    );
}
