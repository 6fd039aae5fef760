//! Collecting messages of a `VK_EXT_debug_utils` messenger (the validation layer's), so that
//! tests can fail on any.

use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use ash::vk;

/// Messages a debug messenger delivered that report a problem: every error, and warnings of the
/// validation and performance kinds. Not counted: informational messages (the layer's "active"
/// notice) and the loader's general warnings (such as "VK_INSTANCE_LAYERS adds a layer").
#[derive(Debug, Default)]
pub struct ValidationLog {
    count: AtomicUsize,
    messages: Mutex<Vec<String>>,
}

impl ValidationLog {
    /// Messages received so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// A copy of the messages received so far.
    pub fn messages(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, message: String) {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message);
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// The messenger description whose callback appends to `self`. Chain it into
    /// `VkInstanceCreateInfo` to catch messages of instance creation and destruction too.
    ///
    /// The callback reads `self` through a raw pointer: `self` must stay at its address (keep it
    /// in an `Arc`) until every messenger and instance made with the description is destroyed.
    pub fn messenger_create_info(&self) -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
        vk::DebugUtilsMessengerCreateInfoEXT::default()
            .message_severity(
                vk::DebugUtilsMessageSeverityFlagsEXT::INFO
                    | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                    | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
            )
            .message_type(
                vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                    | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                    | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
            )
            .pfn_user_callback(Some(debug_callback))
            .user_data(core::ptr::from_ref(self).cast_mut().cast::<c_void>())
    }
}

/// Whether a message reports a problem (see [`ValidationLog`]).
fn counts(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    kind: vk::DebugUtilsMessageTypeFlagsEXT,
) -> bool {
    severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR)
        || (severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING)
            && kind.intersects(
                vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                    | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
            ))
}

/// The messenger callback: formats the message and appends it to the [`ValidationLog`] named by
/// the user-data pointer.
unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    kind: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user_data: *mut c_void,
) -> vk::Bool32 {
    if !counts(severity, kind) || user_data.is_null() {
        return vk::FALSE;
    }
    // SAFETY: the user data is the address of a `ValidationLog` kept alive until the messenger
    // and instance are gone (`messenger_create_info`'s contract).
    let log = unsafe { &*user_data.cast::<ValidationLog>() };
    // SAFETY: the layer passes valid callback data, or null.
    let text = unsafe { data.as_ref() }
        .and_then(|d| {
            // SAFETY: a non-null message pointer is a NUL-terminated string valid for the call.
            (!d.p_message.is_null()).then(|| unsafe { CStr::from_ptr(d.p_message) })
        })
        .map(|m| m.to_string_lossy().into_owned())
        .unwrap_or_default();
    let message = format!("[{severity:?} {kind:?}] {text}");
    eprintln!("memkit-vulkan debug messenger: {message}");
    log.push(message);
    // Never abort the call: the test decides.
    vk::FALSE
}
