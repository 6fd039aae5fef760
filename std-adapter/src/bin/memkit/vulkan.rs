//! `--device vulkan`: memkit-vulkan's headless device, shared by the coordinator (which owns its
//! device by value and needs it `'static`) and the command (which probes it and checks it after
//! the coordinator is gone).

use memkit_core::device::DeviceError;
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, SetupError, SharedHeadlessDevice};

use crate::backend::Backend;

/// Creates an instance and a device on the best physical device, optionally validated.
pub fn shared_device(validation: bool) -> Result<SharedHeadlessDevice, SetupError> {
    let headless = HeadlessDevice::new(HeadlessConfig {
        validation,
        ..Default::default()
    })?;
    Ok(SharedHeadlessDevice::new(headless))
}

/// The validation layer's timeout tracking a timeline semaphore, which it reports as "most
/// likely a validation bug": it shows where the application's host signal races memkit's
/// submissions that wait for that value (lavapipe, one queue) or the layer's wait tracking on
/// NVIDIA's driver, each time stalling the run about 5 s, and names no misuse of the API. The
/// demo's byte, misuse and leak checks stand without it; the tests stay strict.
const LAYER_OWN_TIMEOUT: &str = "UNASSIGNED-VkSemaphore-state-timeout";

impl Backend for SharedHeadlessDevice {
    fn describe(&self) -> String {
        match self.device().probe() {
            Ok(p) => format!("memkit-vulkan ({}, {})", p.device_name, p.device_type),
            Err(e) => format!("memkit-vulkan (probe failed: {e})"),
        }
    }

    fn problems(&self) -> Vec<String> {
        let (layer_timeouts, problems): (Vec<String>, Vec<String>) = self
            .validation_log()
            .messages()
            .into_iter()
            .partition(|m| m.contains(LAYER_OWN_TIMEOUT));
        if !layer_timeouts.is_empty() {
            eprintln!(
                "memkit: {} `{LAYER_OWN_TIMEOUT}` message(s) from the validation layer, which \
                 calls them its own bug; not counted as problems",
                layer_timeouts.len()
            );
        }
        problems
    }

    fn create_application_timeline(&self) -> Option<vk::Semaphore> {
        self.device().timeline_semaphore()?;
        let mut kind = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut kind);
        // SAFETY: the device is alive; it has timeline semaphores (memkit's own is one).
        match unsafe { self.device().raw().create_semaphore(&info, None) } {
            Ok(semaphore) => Some(semaphore),
            Err(e) => {
                eprintln!("memkit: creating the application's timeline failed: {e}");
                None
            }
        }
    }

    fn signal_application(&self, timeline: vk::Semaphore, value: u64) -> Result<(), DeviceError> {
        let lost_or_unexpected = |e| match e {
            vk::Result::ERROR_DEVICE_LOST => DeviceError::DeviceLost,
            e => DeviceError::Unexpected(vk::Result::as_raw(e)),
        };
        if self.main_queue() == self.device().transfer_queue() {
            // One queue for both (lavapipe): memkit's submissions waiting for the value sit on
            // it already, so a batch queued behind them could never signal it. The host does.
            let info = vk::SemaphoreSignalInfo::default()
                .semaphore(timeline)
                .value(value);
            // SAFETY: a timeline semaphore of this device (`create_application_timeline`); the
            // demo signals rising values, each less than 2^31 above the last.
            return unsafe { self.ash_device().signal_semaphore(&info) }
                .map_err(lost_or_unexpected);
        }
        // Signalled by the application's own queue, as its frame's last submission would: a
        // batch without commands. (With a host signal, validation layer 1.3.239 times out
        // tracking memkit's waits on the semaphore on NVIDIA's driver, and reports its own bug.)
        let semaphores = [timeline];
        let values = [value];
        let mut timeline_info =
            vk::TimelineSemaphoreSubmitInfo::default().signal_semaphore_values(&values);
        let submit = vk::SubmitInfo::default()
            .signal_semaphores(&semaphores)
            .push_next(&mut timeline_info);
        // SAFETY: the main queue is used exclusively inside the closure; the semaphore is a
        // timeline semaphore of this device (`create_application_timeline`), and the demo
        // signals rising values, each less than 2^31 above the last.
        let submitted = self.with_main_queue(|queue| unsafe {
            self.ash_device()
                .queue_submit(queue, &[submit], vk::Fence::null())
        });
        submitted.map_err(lost_or_unexpected)
    }

    fn destroy_application_timeline(&self, timeline: vk::Semaphore) {
        // SAFETY: the main queue is used exclusively inside the closure. The signalling batches
        // finished once it is idle (a failure here means a lost device, where nothing runs).
        let _ = self.with_main_queue(|queue| unsafe { self.ash_device().queue_wait_idle(queue) });
        // SAFETY: the device's; every submission that waited on it completed (the coordinator
        // was torn down, which waits for them), those that signal it too (above), and nothing
        // else uses it.
        unsafe { self.device().raw().destroy_semaphore(timeline, None) };
    }

    fn leak_check(&self) -> Box<dyn FnOnce() -> Vec<String> + Send> {
        let device = self.clone();
        Box::new(move || {
            let live = device.device().live_memory_objects();
            if live == 0 {
                Vec::new()
            } else {
                vec![format!(
                    "{live} memory objects still allocated after teardown"
                )]
            }
        })
    }
}
