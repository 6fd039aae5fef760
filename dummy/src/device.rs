//! The simulated device: shared state behind a mutex, handles, the timeline the test advances,
//! and the inspection, misuse, fault and leak APIs. The device calls themselves are in
//! `calls.rs`; the trait impls in `traits.rs`.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use memkit_core::device::{
    BufferCopy, BufferUsage, DescriptionError, DeviceError, DeviceLimits, MemoryProperties,
    MemoryRequirements,
};

use crate::config::{DeviceConfig, WaitMode};
use crate::external::ExternalState;
use crate::faults::{FaultState, RandomFailures, ScheduledFault, Site, SplitMix64, Trigger};
use crate::handles::{DummyBuffer, DummyMemory};
use crate::host_bytes::HostBytes;
use crate::image_move::PendingImageMove;
use crate::image_read::PendingImageRead;
use crate::image_upload::{ImageState, PendingImageCommand};
use crate::intervals::IntervalSet;
use crate::memory::{MemoryObject, host_hash};
use crate::misuse::{Misuse, MisuseKind, Operation};
use crate::report::{Counters, LeakReport, LeakedBuffer, LeakedMemory};

/// The raw code in `DeviceError::Unexpected` when a call is refused because it broke its
/// contract (a misuse the device also recorded), such as binding an already bound buffer. Where
/// memkit-vulkan checks the same rule and gives a typed error (a zero size, an unknown memory
/// type, a timeline value that does not rise), the misuse is recorded and that error returned.
pub const MISUSE_RESULT_CODE: i32 = -4242;

static NEXT_DEVICE: AtomicU32 = AtomicU32::new(1);

/// A simulated GPU implementing memkit-core's `MemoryDevice`, `BufferDevice`, `ImageDevice`,
/// `CopyQueue` and `ImageCopyQueue`.
///
/// Clones are handles to the same device (hand one to the code under test, keep one to advance
/// the timeline and read misuse events). It is `Send + Sync`; every call locks one mutex.
///
/// Every trait method is also an inherent, safe method of the same name: the simulator checks
/// each contract the trait's `# Safety` sections state instead of assuming it, records a
/// [`Misuse`] when one is broken, and stays memory-safe. Tests can therefore break contracts on
/// purpose without `unsafe`.
///
/// When the last clone is dropped, the device prints its [`LeakReport`] to stderr if anything is
/// still alive (see [`DeviceConfig::report_leaks_on_drop`]).
#[derive(Clone)]
pub struct DummyDevice {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) serial: u32,
    pub(crate) properties: MemoryProperties,
    pub(crate) limits: DeviceLimits,
    pub(crate) config: DeviceConfig,
    pub(crate) state: Mutex<State>,
    /// Signalled whenever the completed value moves or the device is lost.
    pub(crate) progress: Condvar,
}

/// One live buffer or optimal resource.
#[derive(Debug)]
pub(crate) struct BufferObject {
    pub(crate) size: u64,
    pub(crate) usage: BufferUsage,
    pub(crate) optimal: bool,
    /// Made by `create_image` (and so named `image#N`).
    pub(crate) image: bool,
    pub(crate) requirements: MemoryRequirements,
    /// (memory index, offset).
    pub(crate) binding: Option<(u64, u64)>,
    /// Bound by `bind_aliased_image_memory` or `bind_aliased_buffer_memory`: it may share bytes
    /// with others bound so.
    pub(crate) aliased: bool,
    pub(crate) label: Option<String>,
    /// An image's description and layout (`Some` exactly when `image`).
    pub(crate) image_state: Option<ImageState>,
}

/// What a pending copy reads or writes, hashed at submit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    pub(crate) memory: u64,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) source: bool,
    pub(crate) device_hash: u64,
    pub(crate) host_hash: Option<u64>,
}

/// One copy command, resolved at submit.
#[derive(Debug)]
pub(crate) struct PendingCommand {
    pub(crate) src: u64,
    pub(crate) dst: u64,
    pub(crate) regions: Vec<BufferCopy>,
}

/// A submission not executed yet.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) signal: u64,
    pub(crate) commands: Vec<PendingCommand>,
    /// Uploads into images (a submission has one kind of command only: these, `commands` or
    /// `image_reads`; a defragmentation pass's has `commands` and `image_moves`).
    pub(crate) images: Vec<PendingImageCommand>,
    /// Read-backs of images.
    pub(crate) image_reads: Vec<PendingImageRead>,
    /// Images moved into new ones, after `commands`.
    pub(crate) image_moves: Vec<PendingImageMove>,
    pub(crate) snapshots: Vec<Snapshot>,
    /// Memory indices it uses (through its buffers), for free-while-pending.
    pub(crate) memory: Vec<u64>,
    /// Values of the application's timelines it waits for before it executes.
    pub(crate) waits: Vec<(u32, u64)>,
}

impl Pending {
    /// An empty submission signalling `signal`.
    pub(crate) fn new(signal: u64) -> Self {
        Self {
            signal,
            commands: Vec::new(),
            images: Vec::new(),
            image_reads: Vec::new(),
            image_moves: Vec::new(),
            snapshots: Vec::new(),
            memory: Vec::new(),
            waits: Vec::new(),
        }
    }
}

/// A freed host-visible object kept allocated so stale pointers hit live memory.
#[derive(Debug)]
pub(crate) struct Quarantined {
    pub(crate) memory: u64,
    pub(crate) bytes: HostBytes,
    pub(crate) hash: Option<u64>,
}

pub(crate) struct State {
    pub(crate) next_memory: u64,
    pub(crate) next_buffer: u64,
    pub(crate) memory: BTreeMap<u64, MemoryObject>,
    pub(crate) buffers: BTreeMap<u64, BufferObject>,
    pub(crate) heap_used: Vec<u64>,
    pub(crate) heap_budget: Vec<u64>,
    pub(crate) heap_external: Vec<u64>,
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) completed: u64,
    pub(crate) last_submitted: u64,
    pub(crate) lost: bool,
    pub(crate) misuses: Vec<Misuse>,
    pub(crate) counters: Counters,
    pub(crate) faults: FaultState,
    pub(crate) wait_mode: WaitMode,
    pub(crate) complete_on_submit: bool,
    pub(crate) panic_on_misuse: bool,
    pub(crate) quarantine: VecDeque<Quarantined>,
    pub(crate) quarantine_bytes: u64,
    /// Threads blocked in `wait` (`WaitMode::Block`).
    pub(crate) waiters: u32,
    /// The application's timelines, the waits on them, and its GPU uses.
    pub(crate) external: ExternalState,
}

/// Why a test helper could not look at memory.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InspectError {
    /// The memory object is not alive on this device.
    UnknownMemory,
    /// The buffer is not alive on this device.
    UnknownBuffer,
    /// The buffer or image is not bound, or its memory was freed.
    Unbound,
    /// The object is not host-visible.
    NotHostVisible,
    /// The object is not mapped (host writes and reads go through the mapping).
    NotMapped,
    /// The range does not lie inside the object or buffer.
    OutOfBounds,
    /// The image is not alive on this device.
    UnknownImage,
    /// The image has no such mip level or array layer.
    NoSuchSubresource,
    /// The timeline is not one of this device's.
    UnknownTimeline,
    /// A timeline's signal value is not above the value it holds.
    SignalNotIncreasing,
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownMemory => "memory object not alive on this device",
            Self::UnknownBuffer => "buffer not alive on this device",
            Self::Unbound => "buffer or image not bound to live memory",
            Self::NotHostVisible => "memory is not host-visible",
            Self::NotMapped => "memory is not mapped",
            Self::OutOfBounds => "range outside the object",
            Self::UnknownImage => "image not alive on this device",
            Self::NoSuchSubresource => "the image has no such mip level or array layer",
            Self::UnknownTimeline => "timeline not made by this device",
            Self::SignalNotIncreasing => "signal value not above the timeline's value",
        })
    }
}

impl std::error::Error for InspectError {}

/// A live memory object's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryInfo {
    /// Bytes.
    pub size: u64,
    /// Memory type index.
    pub memory_type: u32,
    /// Heap index.
    pub heap: u32,
    /// Whether it is mapped now.
    pub mapped: bool,
    /// The buffer it is dedicated to.
    pub dedicated_to: Option<DummyBuffer>,
    /// Live buffers bound to it, in creation order.
    pub bound_buffers: Vec<DummyBuffer>,
    /// Bytes of device-only pages really stored (touched).
    pub resident_device_bytes: u64,
    /// The test's label.
    pub label: Option<String>,
}

/// A live buffer's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferInfo {
    /// Bytes asked for.
    pub size: u64,
    /// Usage.
    pub usage: BufferUsage,
    /// Whether it is an optimal (image-like) resource.
    pub optimal: bool,
    /// What it reported needing.
    pub requirements: MemoryRequirements,
    /// Memory and offset it is bound to (the memory may have been freed since: a misuse).
    pub bound_to: Option<(DummyMemory, u64)>,
    /// The test's label.
    pub label: Option<String>,
}

impl State {
    /// Whether live resource `index` was made by `create_image`.
    pub(crate) fn is_image(&self, index: u64) -> bool {
        self.buffers.get(&index).is_some_and(|b| b.image)
    }

    /// Records a misuse, and panics if the device is set to.
    pub(crate) fn misuse(&mut self, misuse: Misuse) {
        self.misuses.push(misuse);
        self.counters.misuses += 1;
        if self.panic_on_misuse {
            panic!("memkit-dummy detected misuse: {misuse}");
        }
    }

    /// The handle of resource `index` (a buffer's or an image's).
    pub(crate) fn resource_handle(&self, serial: u32, index: u64) -> DummyBuffer {
        DummyBuffer {
            device: serial,
            index,
            image: self.is_image(index),
        }
    }

    /// The index of a live memory object, or `None` after recording why not.
    pub(crate) fn live_memory(
        &mut self,
        serial: u32,
        memory: DummyMemory,
        operation: Operation,
    ) -> Option<u64> {
        if memory.device == serial && self.memory.contains_key(&memory.index) {
            return Some(memory.index);
        }
        let misuse = if memory.device == serial && memory.index < self.next_memory {
            Misuse::MemoryUseAfterFree { memory, operation }
        } else {
            Misuse::ForeignMemory { memory, operation }
        };
        self.misuse(misuse);
        None
    }

    /// The index of a live buffer, or `None` after recording why not.
    pub(crate) fn live_buffer(
        &mut self,
        serial: u32,
        buffer: DummyBuffer,
        operation: Operation,
    ) -> Option<u64> {
        if buffer.device == serial && self.buffers.contains_key(&buffer.index) {
            return Some(buffer.index);
        }
        let misuse = if buffer.device == serial && buffer.index < self.next_buffer {
            Misuse::BufferUseAfterDestroy { buffer, operation }
        } else {
            Misuse::ForeignBuffer { buffer, operation }
        };
        self.misuse(misuse);
        None
    }

    /// Loses the device: nothing pending will ever complete.
    pub(crate) fn lose(&mut self) {
        self.lost = true;
        self.pending.clear();
        // A lost device runs nothing more: the application's GPU work is over too.
        self.external.end_uses();
    }

    /// Applies a fired fault.
    pub(crate) fn apply(&mut self, fault: ScheduledFault) {
        match fault {
            ScheduledFault::SetHeapBudget { heap, budget } => {
                if let Some(b) = self.heap_budget.get_mut(heap as usize) {
                    *b = budget;
                }
            }
            ScheduledFault::LoseDevice => self.lose(),
        }
    }

    /// Fires the scheduled faults `fires` accepts.
    pub(crate) fn fire(&mut self, fires: impl Fn(Trigger) -> bool) {
        for fault in self.faults.fire(fires) {
            self.apply(fault);
        }
    }

    /// Executes the oldest pending submission. Returns its value, or `None` when nothing is
    /// pending, the oldest submission waits for a value of the application's not signalled yet,
    /// or the device was lost on the way.
    pub(crate) fn execute_next(&mut self, serial: u32, stale_fill: Option<u8>) -> Option<u64> {
        if self.front_waits() {
            return None;
        }
        let signal = self.pending.front()?.signal;
        self.fire(|t| matches!(t, Trigger::TimelineValue(v) if signal >= v));
        if self.lost {
            return None;
        }
        let pending = self.pending.pop_front()?;
        self.check_snapshots(serial, &pending);
        let mut written: BTreeMap<u64, IntervalSet> = BTreeMap::new();
        let mut buf = Vec::new();
        for command in &pending.commands {
            // Buffers destroyed or memory freed since submit were reported then; the GPU
            // would fault, the simulator skips them.
            let (Some(src), Some(dst)) = (
                self.buffers.get(&command.src).and_then(|b| b.binding),
                self.buffers.get(&command.dst).and_then(|b| b.binding),
            ) else {
                continue;
            };
            if !self.memory.contains_key(&src.0) || !self.memory.contains_key(&dst.0) {
                continue;
            }
            self.counters.copies += 1;
            self.check_application_use(serial, command.dst, pending.signal);
            for region in &command.regions {
                let size = region.size as usize;
                buf.resize(size, 0);
                self.memory[&src.0].device_read(src.1 + region.src_offset, &mut buf);
                let at = dst.1 + region.dst_offset;
                if let Some(dst_memory) = self.memory.get_mut(&dst.0) {
                    dst_memory.device_write(at, &buf, stale_fill);
                }
                written
                    .entry(dst.0)
                    .or_default()
                    .insert(at, at + region.size);
                self.counters.regions += 1;
                self.counters.bytes_copied += region.size;
            }
            self.resource_accessed(command.dst);
        }
        for command in &pending.images {
            self.check_application_use(serial, command.dst, pending.signal);
            self.execute_image_command(command, &mut written, &mut buf, stale_fill);
        }
        for read in &pending.image_reads {
            // The read moves the image's layout and back: the application's use overlaps it.
            self.check_application_use(serial, read.src, pending.signal);
            self.execute_image_read(read, &mut written, &mut buf, stale_fill);
        }
        for command in &pending.image_moves {
            self.check_application_use(serial, command.src, pending.signal);
            self.check_application_use(serial, command.dst, pending.signal);
            self.execute_image_move(command, &mut written, &mut buf, stale_fill);
        }
        self.rebaseline(&written);
        self.completed = pending.signal;
        self.counters.executed_submissions += 1;
        Some(pending.signal)
    }

    /// Compares a submission's snapshots with the bytes now present.
    fn check_snapshots(&mut self, serial: u32, pending: &Pending) {
        let mut found = Vec::new();
        for snap in &pending.snapshots {
            let Some(memory) = self.memory.get(&snap.memory) else {
                continue;
            };
            let device_changed =
                snap.source && memory.device_hash(snap.offset, snap.size) != snap.device_hash;
            let host_changed = snap.host_hash.is_some()
                && memory.host_hash(snap.offset, snap.size) != snap.host_hash;
            if !(device_changed || host_changed) {
                continue;
            }
            let handle = DummyMemory {
                device: serial,
                index: snap.memory,
            };
            found.push(if snap.source {
                Misuse::HostWriteWhilePending {
                    memory: handle,
                    offset: snap.offset,
                    size: snap.size,
                    signal_value: pending.signal,
                }
            } else {
                Misuse::HostWriteToPendingDestination {
                    memory: handle,
                    offset: snap.offset,
                    size: snap.size,
                    signal_value: pending.signal,
                }
            });
        }
        for misuse in found {
            self.misuse(misuse);
        }
    }

    /// After the device wrote `written`, later submissions' snapshots of those bytes take the new
    /// contents as their baseline: a device write is not a host write.
    fn rebaseline(&mut self, written: &BTreeMap<u64, IntervalSet>) {
        if written.is_empty() {
            return;
        }
        let memory = &self.memory;
        for pending in &mut self.pending {
            for snap in &mut pending.snapshots {
                let Some(ranges) = written.get(&snap.memory) else {
                    continue;
                };
                if !ranges.overlaps(snap.offset, snap.offset + snap.size) {
                    continue;
                }
                if let Some(object) = memory.get(&snap.memory) {
                    snap.device_hash = object.device_hash(snap.offset, snap.size);
                    snap.host_hash = object.host_hash(snap.offset, snap.size);
                }
            }
        }
    }

    /// Checks a quarantined object's bytes against its hash at free; records a write after free.
    fn check_quarantined(&mut self, serial: u32, q: &Quarantined) -> bool {
        let changed = q
            .hash
            .is_some_and(|h| host_hash(&q.bytes, 0, q.bytes.len()) != h);
        if changed {
            self.misuse(Misuse::HostWriteAfterFree {
                memory: DummyMemory {
                    device: serial,
                    index: q.memory,
                },
            });
        }
        changed
    }

    /// Releases the oldest quarantined objects, checking each, until at most `keep` bytes stay.
    pub(crate) fn release_quarantine(&mut self, serial: u32, keep: u64) {
        while self.quarantine_bytes > keep {
            let Some(q) = self.quarantine.pop_front() else {
                break;
            };
            self.quarantine_bytes -= q.bytes.len();
            self.check_quarantined(serial, &q);
        }
    }

    /// Checks every quarantined object without releasing it; each write is reported once.
    pub(crate) fn check_quarantine(&mut self, serial: u32) {
        let quarantine = std::mem::take(&mut self.quarantine);
        for mut q in quarantine {
            if self.check_quarantined(serial, &q) {
                q.hash = Some(host_hash(&q.bytes, 0, q.bytes.len()));
            }
            self.quarantine.push_back(q);
        }
    }
}

impl DummyDevice {
    /// A device as configured.
    pub fn new(config: DeviceConfig) -> Result<Self, DescriptionError> {
        let properties = MemoryProperties::new(&config.memory_types, &config.memory_heaps)?;
        config.limits.validate()?;
        if !config.buffer_alignment.is_power_of_two() || !config.optimal_alignment.is_power_of_two()
        {
            return Err(DescriptionError::LimitNotPowerOfTwo);
        }
        let heaps = config.memory_heaps.len();
        let state = State {
            next_memory: 1,
            next_buffer: 1,
            memory: BTreeMap::new(),
            buffers: BTreeMap::new(),
            heap_used: vec![0; heaps],
            heap_budget: config.memory_heaps.iter().map(|h| h.size).collect(),
            heap_external: vec![0; heaps],
            pending: VecDeque::new(),
            completed: 0,
            last_submitted: 0,
            lost: false,
            misuses: Vec::new(),
            counters: Counters::default(),
            faults: FaultState::default(),
            wait_mode: config.wait_mode,
            complete_on_submit: config.complete_on_submit,
            panic_on_misuse: config.panic_on_misuse,
            quarantine: VecDeque::new(),
            quarantine_bytes: 0,
            waiters: 0,
            external: ExternalState::default(),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                serial: NEXT_DEVICE.fetch_add(1, Ordering::Relaxed),
                properties,
                limits: config.limits,
                config,
                state: Mutex::new(state),
                progress: Condvar::new(),
            }),
        })
    }

    /// A preset device with its default configuration.
    pub fn with_preset(preset: crate::config::Preset) -> Self {
        Self::preset(preset.config())
    }

    /// A [`Preset::Discrete`](crate::Preset::Discrete) device.
    pub fn discrete() -> Self {
        Self::preset(DeviceConfig::discrete())
    }

    /// A [`Preset::ResizableBar`](crate::Preset::ResizableBar) (H200-like) device.
    pub fn resizable_bar() -> Self {
        Self::preset(DeviceConfig::resizable_bar())
    }

    /// A [`Preset::Integrated`](crate::Preset::Integrated) device.
    pub fn integrated() -> Self {
        Self::preset(DeviceConfig::integrated())
    }

    /// A [`Preset::Lavapipe`](crate::Preset::Lavapipe) device.
    pub fn lavapipe() -> Self {
        Self::preset(DeviceConfig::lavapipe())
    }

    /// A [`Preset::Mobile`](crate::Preset::Mobile) device.
    pub fn mobile() -> Self {
        Self::preset(DeviceConfig::mobile())
    }

    fn preset(config: DeviceConfig) -> Self {
        match Self::new(config) {
            Ok(device) => device,
            Err(e) => unreachable!("preset descriptions are valid: {e}"),
        }
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &DeviceConfig {
        &self.shared.config
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic-on-misuse panics while holding the lock; the state stays usable.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The error planned or drawn for call `call` at `site`, if any. An injected `DeviceLost`
    /// loses the device for good, as a driver's loss is: later calls fail with `DeviceLost`,
    /// pending work never completes, and blocked waiters wake to see it.
    pub(crate) fn injected_fault(
        &self,
        state: &mut State,
        site: Site,
        call: u64,
    ) -> Option<DeviceError> {
        let error = state.faults.take(site, call)?;
        if error == DeviceError::DeviceLost {
            state.lose();
            self.wake(state);
        }
        Some(error)
    }

    /// Wakes blocked waiters, if any (a futex wake costs a system call even with none).
    pub(crate) fn wake(&self, state: &State) {
        if state.waiters > 0 {
            self.shared.progress.notify_all();
        }
    }

    pub(crate) fn memory_handle(&self, index: u64) -> DummyMemory {
        DummyMemory {
            device: self.shared.serial,
            index,
        }
    }

    /// The handle of resource `index`, an image's when `image`.
    pub(crate) fn buffer_handle(&self, index: u64, image: bool) -> DummyBuffer {
        DummyBuffer {
            device: self.shared.serial,
            index,
            image,
        }
    }

    // ---- timeline -------------------------------------------------------------------------

    /// Executes, in order, every pending submission whose signal value is at most `value`
    /// (really copying their bytes), and returns the completed value. The completed value only
    /// ever takes values that were submitted.
    pub fn advance_to(&self, value: u64) -> u64 {
        let mut state = self.lock();
        while state.pending.front().is_some_and(|p| p.signal <= value) {
            if state
                .execute_next(self.shared.serial, self.shared.config.stale_read_fill)
                .is_none()
            {
                break;
            }
        }
        self.wake(&state);
        state.completed
    }

    /// Executes the oldest pending submission and returns its value, or `None` when nothing is
    /// pending (or the device is lost).
    pub fn complete_next(&self) -> Option<u64> {
        let mut state = self.lock();
        let done = state.execute_next(self.shared.serial, self.shared.config.stale_read_fill);
        self.wake(&state);
        done
    }

    /// Executes everything pending and returns the completed value.
    pub fn complete_all(&self) -> u64 {
        self.advance_to(u64::MAX)
    }

    /// The highest completed value (also after a device loss, unlike `completed_value`).
    pub fn completed(&self) -> u64 {
        self.lock().completed
    }

    /// The highest value submitted.
    pub fn last_submitted(&self) -> u64 {
        self.lock().last_submitted
    }

    /// Signal values of the submissions not executed yet, oldest first.
    pub fn pending_values(&self) -> Vec<u64> {
        self.lock().pending.iter().map(|p| p.signal).collect()
    }

    /// Whether work completes while no thread waits (`CopyQueue::completes_without_waiting`):
    /// only in [`WaitMode::Block`], where another thread advances the timeline. In the other
    /// modes the test advances it, by hand or through a wait, so polling would only spin.
    pub fn completes_without_waiting(&self) -> bool {
        self.lock().wait_mode == WaitMode::Block
    }

    /// Threads blocked in `wait` now ([`WaitMode::Block`]): tells a test whether a caller blocks
    /// in the driver or polls the completed value.
    pub fn blocked_waiters(&self) -> u32 {
        self.lock().waiters
    }

    /// [`blocked_waiters`](Self::blocked_waiters) once a thread blocked in `wait`, or after
    /// `settle` if none did (looking every millisecond): what a test checks while another thread
    /// may be about to block, or may be polling instead.
    pub fn blocked_waiters_within(&self, settle: std::time::Duration) -> u32 {
        let deadline = std::time::Instant::now() + settle;
        loop {
            let blocked = self.blocked_waiters();
            if blocked > 0 || std::time::Instant::now() >= deadline {
                return blocked;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Sets what a blocking `wait` does (initially [`DeviceConfig::wait_mode`]).
    pub fn set_wait_mode(&self, mode: WaitMode) {
        self.lock().wait_mode = mode;
    }

    /// Sets whether submissions execute at once (initially
    /// [`DeviceConfig::complete_on_submit`]).
    pub fn set_complete_on_submit(&self, on: bool) {
        self.lock().complete_on_submit = on;
    }

    // ---- misuse ---------------------------------------------------------------------------

    /// Every misuse recorded so far, oldest first.
    pub fn misuses(&self) -> Vec<Misuse> {
        self.lock().misuses.clone()
    }

    /// Every misuse recorded so far, and forgets them.
    pub fn take_misuses(&self) -> Vec<Misuse> {
        std::mem::take(&mut self.lock().misuses)
    }

    /// The kinds of the misuses recorded so far, in order.
    pub fn misuse_kinds(&self) -> Vec<MisuseKind> {
        self.lock().misuses.iter().map(Misuse::kind).collect()
    }

    /// Whether a misuse of this kind was recorded.
    pub fn has_misuse(&self, kind: MisuseKind) -> bool {
        self.lock().misuses.iter().any(|m| m.kind() == kind)
    }

    /// Panics, listing them, if any misuse was recorded.
    #[track_caller]
    pub fn assert_no_misuse(&self) {
        let misuses = self.misuses();
        if !misuses.is_empty() {
            let list: Vec<String> = misuses.iter().map(|m| format!("  {m}")).collect();
            panic!(
                "memkit-dummy recorded {} misuse(s):\n{}",
                misuses.len(),
                list.join("\n")
            );
        }
    }

    /// Sets whether a misuse panics as soon as it is recorded (initially
    /// [`DeviceConfig::panic_on_misuse`]).
    pub fn set_panic_on_misuse(&self, on: bool) {
        self.lock().panic_on_misuse = on;
    }

    /// Checks every quarantined freed object for host writes after free (recorded as
    /// [`Misuse::HostWriteAfterFree`]). Also done as objects leave the quarantine.
    pub fn check_freed_mappings(&self) {
        self.lock().check_quarantine(self.shared.serial);
    }

    // ---- faults ---------------------------------------------------------------------------

    /// Makes the `n`-th `allocate_memory` call (counting from 1 since the device was made,
    /// failed calls included; see [`Counters::allocation_calls`]) fail with `error`.
    /// `DeviceLost` loses the device for good, as [`lose_device`](Self::lose_device) does.
    pub fn fail_allocation_call(&self, n: u64, error: DeviceError) {
        self.lock()
            .faults
            .planned
            .insert((Site::Allocation, n), error);
    }

    /// Makes the `n`-th `map_memory` call fail with `MapFailed`.
    pub fn fail_map_call(&self, n: u64) {
        self.lock()
            .faults
            .planned
            .insert((Site::Map, n), DeviceError::MapFailed);
    }

    /// Makes the `n`-th buffer creation fail with `error`; `DeviceLost` loses the device for
    /// good.
    pub fn fail_buffer_creation_call(&self, n: u64, error: DeviceError) {
        self.lock()
            .faults
            .planned
            .insert((Site::BufferCreation, n), error);
    }

    /// Makes the `n`-th bind call (buffers, images and optimal resources, aliased or not,
    /// counted together; see [`Counters::bind_calls`]) fail with `error`: nothing is bound, and
    /// the resource may be bound again or destroyed. `DeviceLost` loses the device for good.
    pub fn fail_bind_call(&self, n: u64, error: DeviceError) {
        self.lock().faults.planned.insert((Site::Bind, n), error);
    }

    /// Makes the `n`-th submission call (`submit_copies` and `submit_image_copies` counted
    /// together) fail with `error` (nothing is submitted);
    /// `DeviceLost` loses the device for good, so work submitted before never completes.
    pub fn fail_submit_call(&self, n: u64, error: DeviceError) {
        self.lock().faults.planned.insert((Site::Submit, n), error);
    }

    /// Forgets the planned failures (`fail_*_call`) whose calls have not come yet.
    pub fn clear_planned_failures(&self) {
        self.lock().faults.planned.clear();
    }

    /// Fails calls at random, reproducibly under `failures.seed`. Replaces earlier random
    /// settings; planned failures still apply first.
    pub fn fail_randomly(&self, failures: RandomFailures) {
        self.lock().faults.random = Some((failures, SplitMix64::new(failures.seed)));
    }

    /// Stops random failures.
    pub fn stop_random_failures(&self) {
        self.lock().faults.random = None;
    }

    /// Schedules `fault` for when `trigger` happens.
    pub fn schedule(&self, trigger: Trigger, fault: ScheduledFault) {
        self.lock().faults.scheduled.push((trigger, fault));
    }

    /// Sets a heap's budget now (ignored for a heap that does not exist). With
    /// [`DeviceConfig::enforce_budget`], allocations above it fail.
    pub fn set_heap_budget(&self, heap: u32, budget: u64) {
        self.lock()
            .apply(ScheduledFault::SetHeapBudget { heap, budget });
    }

    /// Sets bytes of a heap used outside memkit (another process, say): they count in the
    /// reported usage and against heap size and budget.
    pub fn set_external_usage(&self, heap: u32, bytes: u64) {
        if let Some(u) = self.lock().heap_external.get_mut(heap as usize) {
            *u = bytes;
        }
    }

    /// Bytes of memory objects allocated from a heap (external usage not included).
    pub fn heap_used(&self, heap: u32) -> u64 {
        self.lock()
            .heap_used
            .get(heap as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Loses the device now: every later call returns `DeviceLost` (frees, unmaps and destroys
    /// still work), and pending work never completes.
    pub fn lose_device(&self) {
        let mut state = self.lock();
        state.lose();
        self.wake(&state);
    }

    /// Whether the device is lost.
    pub fn is_lost(&self) -> bool {
        self.lock().lost
    }

    /// [`DeviceError::DeviceLost`] once the device is lost: what a call refuses with before it
    /// looks at its arguments.
    pub(crate) fn check_not_lost(&self) -> Result<(), DeviceError> {
        if self.is_lost() {
            Err(DeviceError::DeviceLost)
        } else {
            Ok(())
        }
    }

    // ---- counters, leaks, labels ----------------------------------------------------------

    /// The counters now.
    pub fn counters(&self) -> Counters {
        self.lock().counters
    }

    /// Everything alive now.
    pub fn leak_report(&self) -> LeakReport {
        leak_report(&self.shared, &self.lock())
    }

    /// Labels a memory object for leak reports. Returns false when it is not alive.
    pub fn set_memory_label(&self, memory: DummyMemory, label: impl Into<String>) -> bool {
        let mut state = self.lock();
        match state.memory.get_mut(&memory.index) {
            Some(object) if memory.device == self.shared.serial => {
                object.label = Some(label.into());
                true
            }
            _ => false,
        }
    }

    /// Labels a buffer for leak reports. Returns false when it is not alive.
    pub fn set_buffer_label(&self, buffer: DummyBuffer, label: impl Into<String>) -> bool {
        let mut state = self.lock();
        match state.buffers.get_mut(&buffer.index) {
            Some(object) if buffer.device == self.shared.serial => {
                object.label = Some(label.into());
                true
            }
            _ => false,
        }
    }

    /// A live memory object's description.
    pub fn memory_info(&self, memory: DummyMemory) -> Option<MemoryInfo> {
        if memory.device != self.shared.serial {
            return None;
        }
        let state = self.lock();
        let object = state.memory.get(&memory.index)?;
        Some(MemoryInfo {
            size: object.size,
            memory_type: object.memory_type,
            heap: object.heap,
            mapped: object.mapped,
            dedicated_to: object.dedicated_to,
            bound_buffers: object
                .bound
                .iter()
                .map(|&b| self.buffer_handle(b, state.is_image(b)))
                .collect(),
            resident_device_bytes: object.resident_device_bytes(),
            label: object.label.clone(),
        })
    }

    /// A live buffer's description.
    pub fn buffer_info(&self, buffer: DummyBuffer) -> Option<BufferInfo> {
        if buffer.device != self.shared.serial {
            return None;
        }
        let state = self.lock();
        let object = state.buffers.get(&buffer.index)?;
        Some(BufferInfo {
            size: object.size,
            usage: object.usage,
            optimal: object.optimal,
            requirements: object.requirements,
            bound_to: object
                .binding
                .map(|(m, offset)| (self.memory_handle(m), offset)),
            label: object.label.clone(),
        })
    }

    /// Live memory objects, in allocation order.
    pub fn live_memory(&self) -> Vec<DummyMemory> {
        let state = self.lock();
        state
            .memory
            .keys()
            .map(|&i| self.memory_handle(i))
            .collect()
    }

    /// Live buffers, in creation order.
    pub fn live_buffers(&self) -> Vec<DummyBuffer> {
        let state = self.lock();
        state
            .buffers
            .iter()
            .map(|(&i, b)| self.buffer_handle(i, b.image))
            .collect()
    }

    // ---- looking at bytes ------------------------------------------------------------------

    /// Reads what the device sees (the GPU's truth: for non-coherent memory, the device view,
    /// whatever the host flushed or not). Records nothing.
    pub fn read_memory(
        &self,
        memory: DummyMemory,
        offset: u64,
        out: &mut [u8],
    ) -> Result<(), InspectError> {
        let state = self.lock();
        let object = self.object(&state, memory)?;
        if !object.contains(offset, out.len() as u64) {
            return Err(InspectError::OutOfBounds);
        }
        object.device_read(offset, out);
        Ok(())
    }

    /// Reads `len` bytes of a buffer as the device sees them, through its binding.
    pub fn read_buffer(
        &self,
        buffer: DummyBuffer,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, InspectError> {
        let state = self.lock();
        self.device_bytes(&state, buffer, offset, len as u64)
    }

    /// [`read_buffer`](Self::read_buffer) under the state's lock.
    pub(crate) fn device_bytes(
        &self,
        state: &State,
        buffer: DummyBuffer,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, InspectError> {
        let (memory, base) = self.buffer_binding(state, buffer, offset, len)?;
        let memory = state.memory.get(&memory).ok_or(InspectError::Unbound)?;
        let len = usize::try_from(len).map_err(|_| InspectError::OutOfBounds)?;
        let mut out = vec![0; len];
        memory.device_read(base + offset, &mut out);
        Ok(out)
    }

    /// The application's own GPU work (a compute pass, say) wrote `bytes` into a buffer at
    /// `offset`, through its binding; the test stands for the application's queue, and that
    /// work has completed. Images bound to bytes the buffer shares on purpose
    /// ([`bind_aliased_buffer_memory`](Self::bind_aliased_buffer_memory)) are undefined again,
    /// as after a copy into the buffer.
    ///
    /// [`InspectError::UnknownBuffer`], [`InspectError::OutOfBounds`] past the buffer's end,
    /// [`InspectError::Unbound`].
    pub fn application_writes_buffer(
        &self,
        buffer: DummyBuffer,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), InspectError> {
        let mut state = self.lock();
        let (memory, base) = self.buffer_binding(&state, buffer, offset, bytes.len() as u64)?;
        let fill = self.shared.config.stale_read_fill;
        let memory = state.memory.get_mut(&memory).ok_or(InspectError::Unbound)?;
        memory.device_write(base + offset, bytes, fill);
        state.resource_accessed(buffer.index);
        Ok(())
    }

    /// The memory object and offset `len` bytes at `offset` of `buffer` are bound at, for the
    /// inspections above: [`InspectError::UnknownBuffer`], [`InspectError::OutOfBounds`] past
    /// the buffer's end, [`InspectError::Unbound`].
    fn buffer_binding(
        &self,
        state: &State,
        buffer: DummyBuffer,
        offset: u64,
        len: u64,
    ) -> Result<(u64, u64), InspectError> {
        if buffer.device != self.shared.serial {
            return Err(InspectError::UnknownBuffer);
        }
        let object = state
            .buffers
            .get(&buffer.index)
            .ok_or(InspectError::UnknownBuffer)?;
        if offset > object.size || len > object.size - offset {
            return Err(InspectError::OutOfBounds);
        }
        object.binding.ok_or(InspectError::Unbound)
    }

    /// Writes as the GPU would (a shader, a copy from elsewhere): for non-coherent memory the
    /// host sees it only after invalidating.
    pub fn device_write(
        &self,
        memory: DummyMemory,
        offset: u64,
        data: &[u8],
    ) -> Result<(), InspectError> {
        let mut state = self.lock();
        self.object(&state, memory)?;
        let object = state
            .memory
            .get_mut(&memory.index)
            .ok_or(InspectError::UnknownMemory)?;
        if !object.contains(offset, data.len() as u64) {
            return Err(InspectError::OutOfBounds);
        }
        object.device_write(offset, data, self.shared.config.stale_read_fill);
        Ok(())
    }

    /// Writes through the mapping, as the host does with the mapped pointer (without `unsafe`).
    pub fn host_write(
        &self,
        memory: DummyMemory,
        offset: u64,
        data: &[u8],
    ) -> Result<(), InspectError> {
        let mut state = self.lock();
        let object = self.object(&state, memory)?;
        Self::check_mapped(object, offset, data.len() as u64)?;
        if let Some(host) = state
            .memory
            .get_mut(&memory.index)
            .and_then(|o| o.host.as_mut())
        {
            host.write(offset, data);
        }
        Ok(())
    }

    /// Reads through the mapping, as the host does; records
    /// [`Misuse::HostReadWithoutInvalidate`] when the range holds device writes to non-coherent
    /// memory that were not invalidated.
    pub fn host_read(
        &self,
        memory: DummyMemory,
        offset: u64,
        out: &mut [u8],
    ) -> Result<(), InspectError> {
        let mut state = self.lock();
        let object = self.object(&state, memory)?;
        Self::check_mapped(object, offset, out.len() as u64)?;
        if let Some(host) = &object.host {
            host.read(offset, out);
        }
        self.check_stale(&mut state, memory, offset, out.len() as u64);
        Ok(())
    }

    /// For code that reads through the raw mapped pointer: records
    /// [`Misuse::HostReadWithoutInvalidate`] and returns false when `[offset, offset + size)`
    /// holds device writes the host has not invalidated.
    pub fn check_host_read(
        &self,
        memory: DummyMemory,
        offset: u64,
        size: u64,
    ) -> Result<bool, InspectError> {
        let mut state = self.lock();
        let object = self.object(&state, memory)?;
        if !object.contains(offset, size) {
            return Err(InspectError::OutOfBounds);
        }
        Ok(self.check_stale(&mut state, memory, offset, size))
    }

    /// For GPU work the simulator does not run (a shader reading directly written memory):
    /// records [`Misuse::UnflushedHostWrite`] and returns false when `[offset, offset + size)` of
    /// non-coherent memory holds host writes not flushed yet. Coherent memory always passes.
    pub fn check_device_read(
        &self,
        memory: DummyMemory,
        offset: u64,
        size: u64,
    ) -> Result<bool, InspectError> {
        let mut state = self.lock();
        let object = self.object(&state, memory)?;
        if !object.contains(offset, size) {
            return Err(InspectError::OutOfBounds);
        }
        match object.first_unflushed(offset, size) {
            Some(first) => {
                state.misuse(Misuse::UnflushedHostWrite {
                    memory,
                    offset: first,
                    size,
                });
                Ok(false)
            }
            None => Ok(true),
        }
    }

    /// The address a live mapped object is mapped at.
    pub fn mapped_ptr(&self, memory: DummyMemory) -> Option<NonNull<u8>> {
        let state = self.lock();
        let object = self.object(&state, memory).ok()?;
        if object.mapped {
            object.host.as_ref().map(HostBytes::as_ptr)
        } else {
            None
        }
    }

    fn object<'a>(
        &self,
        state: &'a State,
        memory: DummyMemory,
    ) -> Result<&'a MemoryObject, InspectError> {
        if memory.device != self.shared.serial {
            return Err(InspectError::UnknownMemory);
        }
        state
            .memory
            .get(&memory.index)
            .ok_or(InspectError::UnknownMemory)
    }

    fn check_mapped(object: &MemoryObject, offset: u64, size: u64) -> Result<(), InspectError> {
        if object.host.is_none() {
            return Err(InspectError::NotHostVisible);
        }
        if !object.mapped {
            return Err(InspectError::NotMapped);
        }
        if !object.contains(offset, size) {
            return Err(InspectError::OutOfBounds);
        }
        Ok(())
    }

    /// Records a stale read of the range, if any; true when the read is clean.
    fn check_stale(&self, state: &mut State, memory: DummyMemory, offset: u64, size: u64) -> bool {
        let stale = state
            .memory
            .get(&memory.index)
            .map(|o| o.stale.intersection(offset, offset + size))
            .unwrap_or_default();
        if let Some(&(first, _)) = stale.first() {
            let bytes = stale.iter().map(|(s, e)| e - s).sum();
            state.misuse(Misuse::HostReadWithoutInvalidate {
                memory,
                offset: first,
                size: bytes,
            });
            false
        } else {
            true
        }
    }
}

fn leak_report(shared: &Shared, state: &State) -> LeakReport {
    let memory_handle = |index| DummyMemory {
        device: shared.serial,
        index,
    };
    LeakReport {
        device: shared.config.name.clone(),
        memory: state
            .memory
            .iter()
            .map(|(&index, m)| LeakedMemory {
                memory: memory_handle(index),
                memory_type: m.memory_type,
                size: m.size,
                mapped: m.mapped,
                dedicated: m.dedicated_to.is_some(),
                label: m.label.clone(),
            })
            .collect(),
        buffers: state
            .buffers
            .iter()
            .map(|(&index, b)| LeakedBuffer {
                buffer: DummyBuffer {
                    device: shared.serial,
                    index,
                    image: b.image,
                },
                size: b.size,
                usage: b.usage,
                optimal: b.optimal,
                bound_to: b.binding.map(|(m, offset)| (memory_handle(m), offset)),
                label: b.label.clone(),
            })
            .collect(),
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Never panic in drop: a last look at the quarantine only records.
        state.panic_on_misuse = false;
        state.check_quarantine(self.serial);
        if self.config.report_leaks_on_drop {
            let report = leak_report(self, &state);
            if !report.is_empty() {
                eprintln!("memkit-dummy leak report: {report}");
            }
            if !state.misuses.is_empty() {
                eprintln!(
                    "memkit-dummy: {} misuse(s) recorded and never taken:",
                    state.misuses.len()
                );
                for misuse in &state.misuses {
                    eprintln!("  {misuse}");
                }
            }
        }
    }
}

impl fmt::Debug for DummyDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DummyDevice")
            .field("name", &self.shared.config.name)
            .field("serial", &self.shared.serial)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
