//! The calling thread's CPU time, so benchmark figures on the simulated device (where the "GPU"
//! is the benchmark thread itself) hold on a loaded machine: time spent waiting for a core is
//! not counted. Wall-clock time where the OS gives no thread clock.

use std::time::{Duration, Instant};

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod thread_clock {
    use std::time::Duration;

    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: i64,
    }

    /// `CLOCK_THREAD_CPUTIME_ID`.
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    // SAFETY: `clock_gettime` is the C library's (which std links), with this signature on
    // 64-bit Linux.
    unsafe extern "C" {
        fn clock_gettime(clock: i32, out: *mut Timespec) -> i32;
    }

    pub fn now() -> Option<Duration> {
        let mut t = Timespec {
            seconds: 0,
            nanoseconds: 0,
        };
        // SAFETY: `t` is a valid, writable timespec for the duration of the call.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
        (rc == 0).then(|| Duration::new(t.seconds as u64, t.nanoseconds as u32))
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod thread_clock {
    pub fn now() -> Option<std::time::Duration> {
        None
    }
}

/// A clock measuring the calling thread's CPU time, or wall time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    cpu: bool,
    epoch: Instant,
}

impl Clock {
    /// CPU time of the calling thread when `cpu` is asked for and the OS has it; else wall time.
    pub fn new(cpu: bool) -> Self {
        Self {
            cpu: cpu && thread_clock::now().is_some(),
            epoch: Instant::now(),
        }
    }

    /// Whether it measures CPU time.
    pub fn is_cpu_time(&self) -> bool {
        self.cpu
    }

    /// The time now, from an arbitrary start; only differences mean anything.
    pub fn now(&self) -> Duration {
        if self.cpu {
            thread_clock::now().unwrap_or_default()
        } else {
            self.epoch.elapsed()
        }
    }
}
