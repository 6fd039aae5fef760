use std::string::{String, ToString};

use super::{DescriptionError, DeviceError, InvalidArgument};

fn source_text(error: &DeviceError) -> Option<String> {
    core::error::Error::source(error).map(ToString::to_string)
}

#[test]
fn a_refused_argument_is_a_device_error_with_the_broken_rule_as_source() {
    let error = DeviceError::InvalidArgument(InvalidArgument::TimelineNotIncreasing);
    assert_eq!(
        error.to_string(),
        "invalid argument: the timeline value to signal is not above the last one submitted"
    );
    assert_eq!(
        source_text(&error).as_deref(),
        Some("the timeline value to signal is not above the last one submitted")
    );
    let zero = DeviceError::InvalidArgument(InvalidArgument::ZeroSize);
    assert_eq!(
        zero.to_string(),
        "invalid argument: a buffer or memory object of zero bytes"
    );
}

#[test]
fn a_bad_device_description_is_a_device_error_with_its_reason_as_source() {
    let error = DeviceError::InvalidDescription(DescriptionError::BadHeapIndex);
    assert_eq!(
        error.to_string(),
        "invalid device description: a memory type names a heap that does not exist"
    );
    assert_eq!(
        source_text(&error).as_deref(),
        Some("a memory type names a heap that does not exist")
    );
}

#[test]
fn a_missing_feature_names_itself_and_has_no_source() {
    let error = DeviceError::FeatureNotEnabled;
    assert_eq!(
        error.to_string(),
        "the device was not created with that feature"
    );
    assert_eq!(source_text(&error), None);
}
