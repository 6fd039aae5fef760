//! Fault injection: calls that fail on schedule or at random (deterministically under a seed),
//! budgets that shrink and a device that is lost at a chosen point.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use memkit_core::device::DeviceError;

/// When a [`ScheduledFault`] fires. Call numbers count every call of that kind on the device,
/// from 1, including calls that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Just before the n-th `allocate_memory` call is handled.
    AllocationCall(u64),
    /// Just before the n-th `submit_copies` or `submit_image_copies` call is handled.
    SubmitCall(u64),
    /// Just before the first submission whose signal value is at least this executes: work below
    /// the value completes, the rest (for a lost device) never does.
    TimelineValue(u64),
}

/// What a [`Trigger`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduledFault {
    /// Sets a heap's budget (as [`DummyDevice::set_heap_budget`](crate::DummyDevice::set_heap_budget)).
    SetHeapBudget {
        /// Heap index.
        heap: u32,
        /// New budget in bytes.
        budget: u64,
    },
    /// Loses the device (as [`DummyDevice::lose_device`](crate::DummyDevice::lose_device)).
    LoseDevice,
}

/// Random failures, reproducible from the seed for the same sequence of calls. A rate of `n`
/// fails one call in `n` on average; 0 never fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RandomFailures {
    /// Seeds the generator.
    pub seed: u64,
    /// `allocate_memory` fails with `OutOfDeviceMemory` one time in this many.
    pub allocation_one_in: u32,
    /// `map_memory` fails with `MapFailed` one time in this many.
    pub map_one_in: u32,
    /// `submit_copies` and `submit_image_copies` fail with `OutOfHostMemory` one time in this
    /// many.
    pub submit_one_in: u32,
    /// Binds of buffers and images fail with `OutOfDeviceMemory` one time in this many
    /// (`vkBindBufferMemory` may return it when the driver maps the range on bind).
    pub bind_one_in: u32,
}

/// SplitMix64: tiny, fast, and the same on every platform.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True one time in `n` (never for 0).
    pub(crate) fn one_in(&mut self, n: u32) -> bool {
        n != 0 && self.next_u64().is_multiple_of(u64::from(n))
    }
}

/// Which call kinds a planned failure applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Site {
    Allocation,
    Map,
    BufferCreation,
    Bind,
    Submit,
}

/// The plan and its progress.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    /// (site, call number) -> the error that call returns.
    pub(crate) planned: BTreeMap<(Site, u64), DeviceError>,
    pub(crate) scheduled: Vec<(Trigger, ScheduledFault)>,
    pub(crate) random: Option<(RandomFailures, SplitMix64)>,
}

impl FaultState {
    /// The error planned or drawn for call `n` at `site`, if any.
    pub(crate) fn take(&mut self, site: Site, n: u64) -> Option<DeviceError> {
        if let Some(err) = self.planned.remove(&(site, n)) {
            return Some(err);
        }
        let (rates, rng) = self.random.as_mut()?;
        let (rate, err) = match site {
            Site::Allocation => (rates.allocation_one_in, DeviceError::OutOfDeviceMemory),
            Site::Map => (rates.map_one_in, DeviceError::MapFailed),
            Site::Submit => (rates.submit_one_in, DeviceError::OutOfHostMemory),
            Site::BufferCreation => (0, DeviceError::OutOfHostMemory),
            Site::Bind => (rates.bind_one_in, DeviceError::OutOfDeviceMemory),
        };
        rng.one_in(rate).then_some(err)
    }

    /// Removes and returns the scheduled faults whose trigger `fires` accepts, in schedule order.
    pub(crate) fn fire(&mut self, fires: impl Fn(Trigger) -> bool) -> Vec<ScheduledFault> {
        let mut out = Vec::new();
        self.scheduled.retain(|&(trigger, fault)| {
            if fires(trigger) {
                out.push(fault);
                false
            } else {
                true
            }
        });
        out
    }
}
