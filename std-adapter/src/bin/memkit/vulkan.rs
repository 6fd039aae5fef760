//! `--device vulkan`: memkit-vulkan's headless device, shared by the coordinator (which owns its
//! device by value and needs it `'static`) and the command (which probes it and checks it after
//! the coordinator is gone).

use memkit_core::device::{CopyQueue, ImageDesc};
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

impl Backend for SharedHeadlessDevice {
    fn describe(&self) -> String {
        match self.device().probe() {
            Ok(p) => format!("memkit-vulkan ({}, {})", p.device_name, p.device_type),
            Err(e) => format!("memkit-vulkan (probe failed: {e})"),
        }
    }

    fn read_back(&self, _buffer: Self::Buffer, _len: usize) -> Option<Vec<u8>> {
        // A copy needs a timeline value, and values belong to the coordinator while it runs.
        None
    }

    fn read_back_when_idle(&self, buffer: Self::Buffer, len: usize) -> Option<Vec<u8>> {
        // The copy signals the value after the completed one, which is the coordinator's last
        // only because it is idle; and it submits nothing after.
        let read = self.completed_value().and_then(|completed| {
            // SAFETY: the caller holds `buffer` (a coordinator buffer: TRANSFER_SRC, at least
            // `len` bytes); the coordinator is idle, so every value it submitted has completed
            // and `completed + 1` is above all of them, and it submits nothing later.
            unsafe {
                memkit_vulkan::read_buffer(
                    self.device(),
                    buffer,
                    len as u64,
                    completed + 1,
                    60_000_000_000,
                )
            }
        });
        match read {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                eprintln!("memkit: reading a buffer back failed: {e}");
                None
            }
        }
    }

    fn read_back_image_when_idle(&self, image: Self::Image, desc: &ImageDesc) -> Option<Vec<u8>> {
        // As for buffers: the next value is the read's own while the coordinator is idle.
        let read = self.completed_value().and_then(|completed| {
            // SAFETY: the caller holds `image` (a coordinator image, made with `desc`, which the
            // demo creates with TRANSFER_SRC, and filled whole at creation: every subresource is
            // in the layout after upload); the coordinator is idle, so every value it submitted
            // has completed and `completed + 1` is above all of them, and it submits nothing
            // later. It shares images with the main family concurrently, never releases them.
            unsafe {
                memkit_vulkan::read_image(self.device(), image, desc, completed + 1, 60_000_000_000)
            }
        });
        match read {
            Ok(texels) => Some(texels),
            Err(e) => {
                eprintln!("memkit: reading an image back failed: {e}");
                None
            }
        }
    }

    fn read_back_unavailable(&self) -> &'static str {
        "reading back failed (see above)"
    }

    fn problems(&self) -> Vec<String> {
        self.validation_log().messages()
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
