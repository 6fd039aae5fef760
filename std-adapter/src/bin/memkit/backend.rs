//! What the command needs from a device beyond memkit-core's traits: a name, the misuse it
//! detected, and a check after teardown (buffers and images are read back through the
//! coordinator). The simulated device answers all of them; a real one what it can.

use memkit_core::device::{DeviceError, ExternalTimelines, ImageCopyQueue, InvalidArgument};
use memkit_dummy::{DummyDevice, InspectError};
use memkit_std::Device;

/// A device the command can run on. A clone is the same device (shared state).
pub trait Backend:
    Device + ImageCopyQueue + ExternalTimelines<ExternalTimeline: Send + Sync + 'static> + Clone
{
    /// One line naming the device.
    fn describe(&self) -> String;

    /// Misuse the device detected so far (missing flushes, use after free, ...), one line each.
    fn problems(&self) -> Vec<String>;

    /// A timeline standing for the application's own queue, at 0, which the demo signals from
    /// the host as its frames "finish"; `None` where the device cannot make one.
    fn create_application_timeline(&self) -> Option<Self::ExternalTimeline>;

    /// Declares that the application's frame reads `buffer` until `timeline` reaches `until`:
    /// a simulated device then checks that no copy lands in it before.
    fn application_uses(
        &self,
        _buffer: Self::Buffer,
        _timeline: Self::ExternalTimeline,
        _until: u64,
    ) {
    }

    /// Declares that the application's frame reads `size` bytes of `buffer` at `offset` until
    /// `timeline` reaches `until`: a simulated device then checks that the bytes are not written
    /// again before.
    fn application_reads(
        &self,
        _buffer: Self::Buffer,
        _offset: u64,
        _size: u64,
        _timeline: Self::ExternalTimeline,
        _until: u64,
    ) {
    }

    /// The application's queue reached `value` on `timeline`.
    fn signal_application(
        &self,
        timeline: Self::ExternalTimeline,
        value: u64,
    ) -> Result<(), DeviceError>;

    /// Destroys the timeline; nothing waits on it any more.
    fn destroy_application_timeline(&self, _timeline: Self::ExternalTimeline) {}

    /// Executes the oldest submitted GPU work, for a simulated device whose timeline the command
    /// drives from a "GPU thread"; `false` when there was nothing to execute or the device runs
    /// on its own.
    fn gpu_step(&self) -> bool {
        false
    }

    /// Makes a simulated device execute each submission as it is submitted, on the submitting
    /// thread: every path of a benchmark then pays for its GPU work the same way, and nothing
    /// waits for a GPU that only moves when waited on.
    fn execute_on_submit(&self) {}

    /// Whether the timeline is driven by [`Backend::gpu_step`].
    fn is_simulated(&self) -> bool {
        false
    }

    /// A check to run after the coordinator (which owns the device) was dropped: what the
    /// device still holds, one line per leaked object.
    fn leak_check(&self) -> Box<dyn FnOnce() -> Vec<String> + Send>;
}

impl Backend for DummyDevice {
    fn describe(&self) -> String {
        format!("memkit-dummy ({}, simulated)", self.config().name)
    }

    fn problems(&self) -> Vec<String> {
        self.misuses().iter().map(|m| m.to_string()).collect()
    }

    fn create_application_timeline(&self) -> Option<Self::ExternalTimeline> {
        Some(self.create_external_timeline())
    }

    fn application_uses(&self, buffer: Self::Buffer, timeline: Self::ExternalTimeline, until: u64) {
        // Both are the device's own, and the buffer is alive: this cannot fail.
        let _ = DummyDevice::application_uses(self, buffer, timeline, until);
    }

    fn application_reads(
        &self,
        buffer: Self::Buffer,
        offset: u64,
        size: u64,
        timeline: Self::ExternalTimeline,
        until: u64,
    ) {
        // The device's own timeline, and a range of a live chunk: this cannot fail.
        let _ = DummyDevice::application_reads(self, buffer, offset, size, timeline, until);
    }

    fn signal_application(
        &self,
        timeline: Self::ExternalTimeline,
        value: u64,
    ) -> Result<(), DeviceError> {
        self.signal_external(timeline, value).map_err(|e| {
            DeviceError::InvalidArgument(match e {
                InspectError::SignalNotIncreasing => InvalidArgument::TimelineNotIncreasing,
                _ => InvalidArgument::UnknownTimeline,
            })
        })
    }

    fn gpu_step(&self) -> bool {
        self.complete_next().is_some()
    }

    fn execute_on_submit(&self) {
        self.set_complete_on_submit(true);
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn leak_check(&self) -> Box<dyn FnOnce() -> Vec<String> + Send> {
        let device = self.clone();
        Box::new(move || {
            let report = device.leak_report();
            let mut lines: Vec<String> = report
                .memory
                .iter()
                .map(|m| format!("memory object leaked: {m:?}"))
                .collect();
            lines.extend(
                report
                    .buffers
                    .iter()
                    .map(|b| format!("buffer leaked: {b:?}")),
            );
            lines
        })
    }
}
