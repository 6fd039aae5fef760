//! What a submission signals: a timeline semaphore (Vulkan 1.2), or, on devices without one, a
//! pool of fences, each standing for the value of the submission it was given to.
//!
//! Both give the same answers to "which value completed" and "wait for a value", so the copy
//! queue above does not care which it has.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ash::vk;
use memkit_core::device::{DeviceError, WaitStatus};

use crate::error::{map_host_device_oom_and_lost_err, map_host_device_oom_err};

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

    /// Blocks until `value` completed or `timeout_ns` passed.
    ///
    /// # Safety
    /// - `device` is the device this timeline was made on.
    pub(crate) unsafe fn wait(
        &self,
        device: &ash::Device,
        value: u64,
        timeout_ns: u64,
    ) -> Result<WaitStatus, DeviceError> {
        match self {
            Self::Semaphore(s) => {
                let semaphores = [*s];
                let values = [value];
                let info = vk::SemaphoreWaitInfo::default()
                    .semaphores(&semaphores)
                    .values(&values);
                // SAFETY: the semaphore is alive; waiting needs no external synchronisation.
                match unsafe { device.wait_semaphores(&info, timeout_ns) } {
                    Ok(()) => Ok(WaitStatus::Completed),
                    Err(vk::Result::TIMEOUT) => Ok(WaitStatus::TimedOut),
                    Err(e) => Err(map_host_device_oom_and_lost_err(e)),
                }
            }
            Self::FencePool(pool, submitted) => {
                // `None`: no deadline (a timeout too long to represent).
                let deadline = Instant::now().checked_add(Duration::from_nanos(timeout_ns));
                let fence = {
                    let mut pool = lock(pool);
                    loop {
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
                let timeout_ns = deadline.map_or(u64::MAX, |d| {
                    let left = d.saturating_duration_since(Instant::now()).as_nanos();
                    u64::try_from(left).unwrap_or(u64::MAX)
                });
                // SAFETY: the fence is alive and, having a waiter, is neither reset nor reused
                // until the waiter count drops below.
                let result = unsafe { device.wait_for_fences(&[fence], true, timeout_ns) };
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
