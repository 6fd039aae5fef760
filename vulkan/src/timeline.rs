//! What a submission signals: a timeline semaphore (Vulkan 1.2), or, on devices without one, a
//! pool of fences, each standing for the value of the submission it was given to.
//!
//! Both give the same answers to "which value completed" and "wait for a value", so the copy
//! queue above does not care which it has.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ash::vk;
use memkit_core::device::{DeviceError, WaitStatus};

use crate::error::{map_host_device_oom_and_lost_err, map_host_device_oom_err};

/// How often a wait on the GPU looks at the lost flag: long enough that a waiting thread does
/// not spin, short enough that a loss ends every wait promptly.
const LOST_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Runs `wait(timeout_ns)` (a fence or semaphore wait) until it returns something other than
/// `VK_TIMEOUT` or `deadline` passes (`None`: never). With a `lost` flag, each call waits at most
/// [`LOST_CHECK_INTERVAL`] and the flag, once set, ends the wait between calls with
/// `VK_ERROR_DEVICE_LOST`; without, one call waits the whole time.
fn wait_in_slices(
    mut wait: impl FnMut(u64) -> Result<(), vk::Result>,
    deadline: Option<Instant>,
    lost: Option<&AtomicBool>,
) -> Result<(), vk::Result> {
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let slice = match (left, lost.is_some()) {
            (Some(left), true) => left.min(LOST_CHECK_INTERVAL),
            (None, true) => LOST_CHECK_INTERVAL,
            (Some(left), false) => left,
            (None, false) => Duration::MAX,
        };
        let slice_ns = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
        match wait(slice_ns) {
            Err(vk::Result::TIMEOUT) => {}
            done => return done,
        }
        if is_set(lost) {
            return Err(vk::Result::ERROR_DEVICE_LOST);
        }
        if left.is_some_and(|left| left <= slice) {
            return Err(vk::Result::TIMEOUT);
        }
    }
}

/// Whether the lost flag, when there is one, is set.
fn is_set(lost: Option<&AtomicBool>) -> bool {
    lost.is_some_and(|l| l.load(Ordering::Acquire))
}

/// Which timeline a [`crate::VulkanDevice`] uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TimelineMode {
    /// A timeline semaphore when the device enabled them, else a fence pool.
    #[default]
    Auto,
    /// A fence pool even where timeline semaphores exist (for tests of the fallback, and for
    /// drivers whose timeline semaphores misbehave).
    FencePool,
}

/// A fence given to one submission.
#[derive(Debug)]
struct PendingFence {
    value: u64,
    fence: vk::Fence,
    /// Threads blocked on this fence right now; a fence with waiters is not reset or reused.
    waiters: u32,
}

/// Fences in submission order, and the unsignalled ones ready for reuse.
#[derive(Debug, Default)]
pub(crate) struct FencePool {
    pending: VecDeque<PendingFence>,
    free: Vec<vk::Fence>,
    completed: u64,
    created: usize,
}

/// The timeline of one copy queue.
#[derive(Debug)]
pub(crate) enum Timeline {
    /// A timeline semaphore memkit created.
    Semaphore(vk::Semaphore),
    /// Fences memkit created, and a condition signalled on every submission (a wait may begin
    /// before its value is submitted, as on a timeline semaphore).
    FencePool(Mutex<FencePool>, Condvar),
}

fn lock(pool: &Mutex<FencePool>) -> MutexGuard<'_, FencePool> {
    // A panic while holding the lock leaves the pool consistent: every step is a single push or
    // pop.
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Timeline {
    /// Creates a timeline semaphore at value 0, or an empty fence pool.
    ///
    /// # Safety
    /// - `device` is alive; with `use_semaphore`, it is Vulkan 1.2 with `timelineSemaphore` on.
    pub(crate) unsafe fn new(
        device: &ash::Device,
        use_semaphore: bool,
    ) -> Result<Self, DeviceError> {
        if !use_semaphore {
            return Ok(Self::FencePool(
                Mutex::new(FencePool::default()),
                Condvar::new(),
            ));
        }
        let mut type_info = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
        // SAFETY: the device is alive and timeline semaphores are enabled (caller's contract).
        let semaphore =
            unsafe { device.create_semaphore(&info, None) }.map_err(map_host_device_oom_err)?;
        Ok(Self::Semaphore(semaphore))
    }

    /// The semaphore, when this is one.
    pub(crate) fn semaphore(&self) -> Option<vk::Semaphore> {
        match self {
            Self::Semaphore(s) => Some(*s),
            Self::FencePool(..) => None,
        }
    }

    /// Fences this timeline created so far (bounded by the submissions in flight at once).
    pub(crate) fn fence_count(&self) -> usize {
        match self {
            Self::Semaphore(_) => 0,
            Self::FencePool(pool, _) => lock(pool).created,
        }
    }

    /// The fence a submission signalling `value` must be given, or null for a semaphore.
    /// After a successful submit call [`Timeline::submitted`], after a failed one
    /// [`Timeline::not_submitted`].
    ///
    /// # Safety
    /// - `device` is the device this timeline was made on.
    pub(crate) unsafe fn take_fence(&self, device: &ash::Device) -> Result<vk::Fence, DeviceError> {
        let Self::FencePool(pool, _) = self else {
            return Ok(vk::Fence::null());
        };
        let mut pool = lock(pool);
        // Poll first so that signalled fences come back before a new one is made.
        // SAFETY: same device (caller's contract).
        unsafe { pool.poll(device) }?;
        if let Some(fence) = pool.free.pop() {
            return Ok(fence);
        }
        let info = vk::FenceCreateInfo::default();
        // SAFETY: the device is alive.
        let fence = unsafe { device.create_fence(&info, None) }.map_err(map_host_device_oom_err)?;
        pool.created += 1;
        Ok(fence)
    }

    /// Records that `fence` was submitted to signal `value`.
    pub(crate) fn submitted(&self, fence: vk::Fence, value: u64) {
        if let Self::FencePool(pool, submitted) = self {
            lock(pool).pending.push_back(PendingFence {
                value,
                fence,
                waiters: 0,
            });
            submitted.notify_all();
        }
    }

    /// Returns a fence that was not submitted (the submit call failed) to the pool.
    pub(crate) fn not_submitted(&self, fence: vk::Fence) {
        if let Self::FencePool(pool, _) = self {
            lock(pool).free.push(fence);
        }
    }

    /// The highest completed value.
    ///
    /// # Safety
    /// - `device` is the device this timeline was made on.
    pub(crate) unsafe fn completed_value(&self, device: &ash::Device) -> Result<u64, DeviceError> {
        match self {
            // SAFETY: the semaphore is alive (destroyed only in `destroy`).
            Self::Semaphore(s) => unsafe { device.get_semaphore_counter_value(*s) }
                .map_err(map_host_device_oom_and_lost_err),
            Self::FencePool(pool, _) => {
                let mut pool = lock(pool);
                // SAFETY: same device (caller's contract).
                unsafe { pool.poll(device) }?;
                Ok(pool.completed)
            }
        }
    }

    /// Blocks until `value` completed or `timeout_ns` passed. With `lost`, the wait also ends,
    /// with [`DeviceError::DeviceLost`], once the flag is set (a loss another thread noted, or a
    /// simulated one, after which the awaited value may never be submitted): the fence pool's
    /// condition is notified by [`Timeline::wake_waiters`], and waits on the GPU look at the
    /// flag every [`LOST_CHECK_INTERVAL`].
    ///
    /// # Safety
    /// - `device` is the device this timeline was made on.
    pub(crate) unsafe fn wait(
        &self,
        device: &ash::Device,
        value: u64,
        timeout_ns: u64,
        lost: Option<&AtomicBool>,
    ) -> Result<WaitStatus, DeviceError> {
        // `None`: no deadline (a timeout too long to represent).
        let deadline = Instant::now().checked_add(Duration::from_nanos(timeout_ns));
        match self {
            Self::Semaphore(s) => {
                let semaphores = [*s];
                let values = [value];
                let info = vk::SemaphoreWaitInfo::default()
                    .semaphores(&semaphores)
                    .values(&values);
                // SAFETY: the semaphore is alive; waiting needs no external synchronisation.
                let wait = |slice_ns| unsafe { device.wait_semaphores(&info, slice_ns) };
                match wait_in_slices(wait, deadline, lost) {
                    Ok(()) => Ok(WaitStatus::Completed),
                    Err(vk::Result::TIMEOUT) => Ok(WaitStatus::TimedOut),
                    Err(e) => Err(map_host_device_oom_and_lost_err(e)),
                }
            }
            Self::FencePool(pool, submitted) => {
                let fence = {
                    let mut pool = lock(pool);
                    loop {
                        // Checked under the lock that `wake_waiters` takes before notifying, so
                        // a loss noted between this check and the wait below still wakes it.
                        if is_set(lost) {
                            return Err(DeviceError::DeviceLost);
                        }
                        // SAFETY: same device (caller's contract).
                        unsafe { pool.poll(device) }?;
                        if pool.completed >= value {
                            return Ok(WaitStatus::Completed);
                        }
                        // Completion is in submission order: the first submission at or above
                        // `value` completing means `value` completed.
                        if let Some(entry) = pool.pending.iter_mut().find(|p| p.value >= value) {
                            entry.waiters += 1;
                            break entry.fence;
                        }
                        // Not submitted yet: wait for a submission, as a semaphore wait would.
                        pool = match deadline {
                            None => submitted.wait(pool).unwrap_or_else(PoisonError::into_inner),
                            Some(deadline) => {
                                let left = deadline.saturating_duration_since(Instant::now());
                                if left.is_zero() {
                                    return Ok(WaitStatus::TimedOut);
                                }
                                submitted
                                    .wait_timeout(pool, left)
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .0
                            }
                        };
                    }
                };
                let fences = [fence];
                // SAFETY: the fence is alive and, having a waiter, is neither reset nor reused
                // until the waiter count drops below.
                let wait = |slice_ns| unsafe { device.wait_for_fences(&fences, true, slice_ns) };
                let result = wait_in_slices(wait, deadline, lost);
                let mut pool = lock(pool);
                let mut signalled_value = None;
                if let Some(entry) = pool.pending.iter_mut().find(|p| p.fence == fence) {
                    entry.waiters -= 1;
                    signalled_value = Some(entry.value);
                }
                if let (Ok(()), Some(v)) = (&result, signalled_value) {
                    // What `completed_value` reports next agrees with this wait.
                    pool.completed = pool.completed.max(v);
                }
                match result {
                    Ok(()) => Ok(WaitStatus::Completed),
                    Err(vk::Result::TIMEOUT) => Ok(WaitStatus::TimedOut),
                    Err(e) => Err(map_host_device_oom_and_lost_err(e)),
                }
            }
        }
    }

    /// Wakes every thread waiting in [`Timeline::wait`] for a value not submitted yet, so that
    /// it sees the lost flag (set before this call).
    pub(crate) fn wake_waiters(&self) {
        if let Self::FencePool(pool, submitted) = self {
            // Taking the lock orders this after any waiter's check of the flag.
            drop(lock(pool));
            submitted.notify_all();
        }
    }

    /// Destroys the semaphore or every fence.
    ///
    /// # Safety
    /// - `device` is the device this timeline was made on; no submission using it is pending.
    pub(crate) unsafe fn destroy(&self, device: &ash::Device) {
        match self {
            // SAFETY: nothing pending uses it (caller's contract).
            Self::Semaphore(s) => unsafe { device.destroy_semaphore(*s, None) },
            Self::FencePool(pool, _) => {
                let mut pool = lock(pool);
                let pending: Vec<_> = pool.pending.drain(..).map(|p| p.fence).collect();
                for fence in pending.into_iter().chain(pool.free.drain(..)) {
                    // SAFETY: nothing pending uses it (caller's contract).
                    unsafe { device.destroy_fence(fence, None) };
                }
            }
        }
    }
}

impl FencePool {
    /// Advances `completed` past every signalled fence, oldest first, and moves signalled
    /// fences that no thread waits on from the front to the free list.
    ///
    /// # Safety
    /// - `device` is the device the fences were made on.
    unsafe fn poll(&mut self, device: &ash::Device) -> Result<(), DeviceError> {
        for entry in &self.pending {
            if entry.value <= self.completed {
                continue;
            }
            // SAFETY: the fence is alive.
            let signalled = unsafe { device.get_fence_status(entry.fence) }
                .map_err(map_host_device_oom_and_lost_err)?;
            if !signalled {
                break;
            }
            self.completed = entry.value;
        }
        while let Some(front) = self.pending.front() {
            if front.value > self.completed || front.waiters > 0 {
                break;
            }
            let fence = front.fence;
            // A later value completing implies this one did, but the fence itself must be
            // signalled before it may be reset.
            // SAFETY: the fence is alive.
            let signalled = unsafe { device.get_fence_status(fence) }
                .map_err(map_host_device_oom_and_lost_err)?;
            if !signalled {
                break;
            }
            // SAFETY: the fence is signalled, so no queue operation is pending on it, and no
            // thread waits on it.
            unsafe { device.reset_fences(&[fence]) }.map_err(map_host_device_oom_err)?;
            self.pending.pop_front();
            self.free.push(fence);
        }
        Ok(())
    }
}
