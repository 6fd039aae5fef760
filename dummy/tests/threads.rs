//! Many threads use one device at once.

mod common;

use std::sync::Mutex;
use std::thread;

use common::{alloc, backed_buffer, buffer_at, copy, release_all};
use memkit_dummy::DummyDevice;

#[test]
fn threads_allocate_write_and_copy_concurrently() {
    let gpu = DummyDevice::discrete();
    let (_, target) = backed_buffer(&gpu, 0, 8 * 1024, false);
    // Submissions need increasing values: one lock orders them, as a coordinator's queue does.
    let next_signal = Mutex::new(0u64);
    thread::scope(|scope| {
        for t in 0..8u64 {
            let gpu = &gpu;
            let next_signal = &next_signal;
            scope.spawn(move || {
                for round in 0..20u64 {
                    let memory = alloc(gpu, 1, 1024);
                    let staging = buffer_at(gpu, memory, 0, 1024);
                    gpu.map_memory(memory).expect("map");
                    let byte = (t * 20 + round) as u8;
                    gpu.host_write(memory, 0, &[byte; 1024]).expect("write");
                    {
                        let mut signal = next_signal.lock().expect("lock");
                        *signal += 1;
                        copy(gpu, staging, target, 0, t * 1024, 1024, *signal);
                    }
                    gpu.wait(gpu.last_submitted(), u64::MAX).expect("wait");
                    gpu.destroy_buffer(staging);
                    gpu.free_memory(memory);
                }
            });
        }
    });
    gpu.complete_all();
    for t in 0..8u64 {
        let bytes = gpu.read_buffer(target, t * 1024, 1024).expect("read");
        assert_eq!(
            bytes,
            [(t * 20 + 19) as u8; 1024],
            "thread {t}'s last write"
        );
    }
    let counters = gpu.counters();
    assert_eq!(counters.submissions, 160);
    assert_eq!(counters.bytes_copied, 160 * 1024);
    release_all(&gpu);
    gpu.assert_no_misuse();
}
