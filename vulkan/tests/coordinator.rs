//! memkit-std's coordinator end to end on real Vulkan, with the validation layer watching every
//! call: uploads from several producers, frames in flight, deferred destruction and a small ring
//! under back-pressure, each checked byte for byte by copying the coordinator's buffers into a
//! host-visible readback buffer on the same queue and timeline; and the coordinator's own
//! read-backs (`Coordinator::read_back`), checked against a model of the writes.
//!
//! The coordinator owns its device, so it gets a [`Gpu`]: a handle to the headless device that
//! also watches what the coordinator asks of it (no copy names a destroyed buffer, no buffer is
//! destroyed before the copies naming it completed, every buffer is destroyed by the end) and
//! leaves room on the timeline for the test's readback copies.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use common::{SECOND, headless_with};
use memkit_core::device::{
    BufferDevice, BufferUsage, CopyCommand, CopyQueue, DeviceError, DeviceLimits, HeapBudget,
    MappedRange, MemoryAllocateInfo, MemoryDevice, MemoryProperties, MemoryRequirements,
    WaitStatus,
};
use memkit_std::{
    BackPressure, Buffer, BufferingMode, Coordinator, CoordinatorConfig, Error, MemoryUsage, Ticket,
};
use memkit_tests::workloads::SplitMix64 as Rng;
use memkit_vulkan::ash::vk;
use memkit_vulkan::{HeadlessConfig, HeadlessDevice, TimelineMode, VulkanDevice};

/// The coordinator's timeline value `v` is the device's `v * STRIDE`; the values in between carry
/// the test's readback copies, so a readback never takes a value the coordinator will use next.
const STRIDE: u64 = 1 << 16;

/// What the [`Gpu`] saw the coordinator do with buffers.
#[derive(Default)]
struct Watch {
    /// Buffers created through the coordinator's device and not destroyed yet.
    live: HashSet<vk::Buffer>,
    /// The device timeline value of the last copy naming each buffer.
    last_use: HashMap<vk::Buffer, u64>,
    /// Misuse, described.
    problems: Vec<String>,
}

impl Watch {
    fn report(&mut self, what: String) {
        // Straight to stderr as well: a failing submission may stop the test before the end.
        let _ = writeln!(std::io::stderr(), "memkit coordinator misuse: {what}");
        self.problems.push(what);
    }
}

/// Where the timeline is: the last coordinator value, and readbacks submitted since.
#[derive(Default)]
struct Timeline {
    coordinator: u64,
    readbacks: u64,
}

struct Inner {
    headless: HeadlessDevice,
    /// Held across each submission, the coordinator's and the readbacks', so values increase.
    timeline: Mutex<Timeline>,
    watch: Mutex<Watch>,
}

/// A validated headless device shared by the coordinator and the test; every clone is the same
/// device.
#[derive(Clone)]
struct Gpu(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gpu {
    fn new(headless: HeadlessDevice) -> Self {
        Self(Arc::new(Inner {
            headless,
            timeline: Mutex::new(Timeline::default()),
            watch: Mutex::new(Watch::default()),
        }))
    }

    fn vk(&self) -> &VulkanDevice {
        self.0.headless.device()
    }

    /// Whether `buffer` was created through this device and not destroyed yet.
    fn is_live(&self, buffer: vk::Buffer) -> bool {
        lock(&self.0.watch).live.contains(&buffer)
    }

    /// Everything wrong so far: misuse the device saw, then validation messages.
    fn problems(&self) -> Vec<String> {
        let mut all = lock(&self.0.watch).problems.clone();
        all.extend(self.0.headless.validation_log().messages());
        all
    }

    /// Fails on anything wrong so far, naming `when`.
    fn assert_clean(&self, when: &str) {
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "{when}: {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }

    /// Copies all of `buffer` into a host-visible readback buffer, on the coordinator's queue
    /// after every copy it submitted so far, and returns the bytes.
    fn read_back(&self, buffer: &Buffer<Gpu>) -> Vec<u8> {
        // Held until the read-back completed, so no coordinator submission takes a value between.
        let mut timeline = lock(&self.0.timeline);
        timeline.readbacks += 1;
        assert!(timeline.readbacks < STRIDE, "too many readbacks in a row");
        let value = timeline.coordinator * STRIDE + timeline.readbacks;
        {
            let mut watch = lock(&self.0.watch);
            assert!(watch.live.contains(&buffer.raw()), "reading a dead buffer");
            watch.last_use.insert(buffer.raw(), value);
        }
        // SAFETY: the caller holds `buffer` (alive, bound, TRANSFER_SRC, `size()` bytes) until
        // this returns; the value is above every value submitted (the coordinator's values are
        // multiples of STRIDE, readbacks count up between them, under the timeline lock, which
        // is held until the read-back completed).
        unsafe {
            memkit_vulkan::read_buffer(self.vk(), buffer.raw(), buffer.size(), value, 10 * SECOND)
        }
        .expect("read back")
    }

    /// Tears the device down once the coordinator is gone, and fails on any misuse, any buffer
    /// or memory object left, and any validation message (teardown included).
    fn finish(self) {
        let inner = Arc::try_unwrap(self.0)
            .unwrap_or_else(|_| panic!("the coordinator still holds the device"));
        let watch = inner.watch.into_inner().unwrap_or_else(|e| e.into_inner());
        let live_memory = inner.headless.device().live_memory_objects();
        let validation = inner.headless.validation_log().messages();
        assert!(
            watch.problems.is_empty() && watch.live.is_empty() && live_memory == 0,
            "after the coordinator's teardown: {} buffer(s) and {live_memory} memory object(s) \
             left; misuse:\n{}\nvalidation:\n{}",
            watch.live.len(),
            watch.problems.join("\n"),
            validation.join("\n")
        );
        common::finish(inner.headless);
    }
}

impl MemoryDevice for Gpu {
    type Memory = vk::DeviceMemory;
    type Buffer = vk::Buffer;
    type Image = vk::Image;

    fn memory_properties(&self) -> &MemoryProperties {
        self.vk().memory_properties()
    }

    fn limits(&self) -> DeviceLimits {
        self.vk().limits()
    }

    fn query_budget(&self, out: &mut [HeapBudget]) -> bool {
        self.vk().query_budget(out)
    }

    unsafe fn allocate_memory(
        &self,
        info: &MemoryAllocateInfo<Self::Buffer, Self::Image>,
    ) -> Result<Self::Memory, DeviceError> {
        // SAFETY: forwarded unchanged to the one device behind the `Arc`; the caller keeps the
        // contract.
        unsafe { self.vk().allocate_memory(info) }
    }

    unsafe fn free_memory(&self, memory: Self::Memory) {
        // SAFETY: as above.
        unsafe { self.vk().free_memory(memory) }
    }

    unsafe fn map_memory(&self, memory: Self::Memory) -> Result<NonNull<u8>, DeviceError> {
        // SAFETY: as above.
        unsafe { self.vk().map_memory(memory) }
    }

    unsafe fn unmap_memory(&self, memory: Self::Memory) {
        // SAFETY: as above.
        unsafe { self.vk().unmap_memory(memory) }
    }

    unsafe fn flush_ranges(&self, ranges: &[MappedRange<Self::Memory>]) -> Result<(), DeviceError> {
        // SAFETY: as above.
        unsafe { self.vk().flush_ranges(ranges) }
    }

    unsafe fn invalidate_ranges(
        &self,
        ranges: &[MappedRange<Self::Memory>],
    ) -> Result<(), DeviceError> {
        // SAFETY: as above.
        unsafe { self.vk().invalidate_ranges(ranges) }
    }
}

impl BufferDevice for Gpu {
    fn create_buffer(
        &self,
        size: u64,
        usage: BufferUsage,
    ) -> Result<(Self::Buffer, MemoryRequirements), DeviceError> {
        let created = self.vk().create_buffer(size, usage)?;
        let mut watch = lock(&self.0.watch);
        watch.live.insert(created.0);
        // A handle the driver hands out again names a new buffer.
        watch.last_use.remove(&created.0);
        Ok(created)
    }

    unsafe fn bind_buffer_memory(
        &self,
        buffer: Self::Buffer,
        memory: Self::Memory,
        offset: u64,
    ) -> Result<(), DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.vk().bind_buffer_memory(buffer, memory, offset) }
    }

    unsafe fn buffer_device_address(&self, buffer: Self::Buffer) -> Result<u64, DeviceError> {
        // SAFETY: forwarded unchanged; the caller keeps the contract.
        unsafe { self.vk().buffer_device_address(buffer) }
    }

    unsafe fn destroy_buffer(&self, buffer: Self::Buffer) {
        // Polled before taking the lock: what has completed by now is certainly complete.
        let completed = self.vk().completed_value();
        let mut watch = lock(&self.0.watch);
        if !watch.live.remove(&buffer) {
            watch.report(format!("{buffer:?} destroyed twice, or never created here"));
        }
        if let Some(last) = watch.last_use.remove(&buffer) {
            match completed {
                Ok(completed) if completed >= last => {}
                _ => watch.report(format!(
                    "{buffer:?} destroyed while the copy of device value {last} may still \
                         run (completed: {completed:?})"
                )),
            }
        }
        drop(watch);
        // SAFETY: forwarded unchanged; the caller keeps the contract (checked above, and by the
        // validation layer).
        unsafe { self.vk().destroy_buffer(buffer) }
    }
}

impl CopyQueue for Gpu {
    unsafe fn submit_copies(
        &self,
        commands: &[CopyCommand<'_, Self::Buffer>],
        signal_value: u64,
    ) -> Result<(), DeviceError> {
        let mut timeline = lock(&self.0.timeline);
        let Some(value) = signal_value.checked_mul(STRIDE) else {
            // A value this wrapper cannot scale: its own refusal, not a device's.
            return Err(DeviceError::Unexpected(-1));
        };
        let named = || commands.iter().flat_map(|c| [c.src, c.dst]);
        {
            let mut watch = lock(&self.0.watch);
            let dead: Vec<_> = named().filter(|b| !watch.live.contains(b)).collect();
            if !dead.is_empty() {
                watch.report(format!(
                    "a submission (value {signal_value}) names dead buffers {dead:?}"
                ));
                // Not a rule a real device checks: this wrapper's own report, failing the test.
                return Err(DeviceError::Unexpected(-1));
            }
        }
        // SAFETY: forwarded with the value scaled, which keeps it increasing (readbacks take the
        // values between); the caller keeps the rest of the contract.
        unsafe { self.vk().submit_copies(commands, value) }?;
        timeline.coordinator = signal_value;
        timeline.readbacks = 0;
        let mut watch = lock(&self.0.watch);
        for buffer in named() {
            watch.last_use.insert(buffer, value);
        }
        Ok(())
    }

    fn completed_value(&self) -> Result<u64, DeviceError> {
        Ok(self.vk().completed_value()? / STRIDE)
    }

    fn wait(&self, value: u64, timeout_ns: u64) -> Result<WaitStatus, DeviceError> {
        self.vk().wait(value.saturating_mul(STRIDE), timeout_ns)
    }
}

/// Runs `test` on a fresh validated device with each way of tracking the timeline, and with
/// copy lanes splitting every batch of 64 KiB and more over two more queues (lavapipe's one
/// queue, reused: the split's parts, semaphores and barriers, in order), then tears the device
/// down clean or fails.
fn each_mode(test: impl Fn(&Gpu)) {
    let lanes = HeadlessConfig {
        copy_lanes: 2,
        lane_split_bytes: Some(64 << 10),
        ..HeadlessConfig::default()
    };
    for config in [
        HeadlessConfig::default(),
        HeadlessConfig {
            timeline: TimelineMode::FencePool,
            ..HeadlessConfig::default()
        },
        lanes,
    ] {
        let Some(h) = headless_with(config) else {
            return;
        };
        let gpu = Gpu::new(h);
        test(&gpu);
        gpu.finish();
    }
}

/// Reads `buffer` back and compares it with `model`, naming the first byte that differs.
fn assert_reads_back(gpu: &Gpu, buffer: &Buffer<Gpu>, model: &[u8], what: &str) {
    let got = gpu.read_back(buffer);
    assert_eq!(got.len(), model.len(), "{what}: size");
    if let Some(i) = got.iter().zip(model).position(|(a, b)| a != b) {
        let wrong = got.iter().zip(model).filter(|(a, b)| a != b).count();
        panic!(
            "{what}: {wrong} byte(s) differ from the last writes, the first at {i} \
             (read {:#04x}, wrote {:#04x})",
            got[i], model[i]
        );
    }
}

/// Drops every buffer, lets the coordinator destroy them, and checks nothing is left but the ring.
fn release_all(gpu: &Gpu, c: Coordinator<Gpu>, buffers: Vec<Buffer<Gpu>>) {
    drop(buffers);
    c.flush_transfers().unwrap().wait().unwrap();
    c.maintain().unwrap();
    let s = c.stats();
    assert_eq!(
        s.buffers_created, s.buffers_destroyed,
        "every dropped buffer is destroyed once its copies completed"
    );
    gpu.assert_clean("before the coordinator's teardown");
    drop(c);
}

/// A buffer one producer writes, and what it must hold.
struct Target {
    buffer: Arc<Buffer<Gpu>>,
    /// Where this producer's share starts in the buffer, and the model of that share.
    base: u64,
    model: Vec<u8>,
}

impl Target {
    fn upload(&mut self, c: &Coordinator<Gpu>, offset: u64, data: &[u8]) -> Ticket {
        let o = offset as usize;
        self.model[o..o + data.len()].copy_from_slice(data);
        c.upload_to(&self.buffer, self.base + offset, data).unwrap()
    }
}

/// One producer's random uploads into its targets: mostly small, some large (chunked or
/// dedicated), overlapping at random, some through `acquire_staging`; occasional flushes and
/// waits. Returns the last ticket.
fn produce(
    c: &Coordinator<Gpu>,
    targets: &mut [Target],
    rng: &mut Rng,
    uploads: usize,
    small: u64,
) -> Ticket {
    let mut last = Ticket::completed();
    for i in 0..uploads {
        let t = rng.below(targets.len() as u64) as usize;
        let target = &mut targets[t];
        let share = target.model.len() as u64;
        let cap = match rng.below(100) {
            0 => share,
            1..=9 => 8192,
            _ => small,
        };
        let len = 1 + rng.below(cap.min(share));
        let offset = rng.below(share - len + 1);
        let data = rng.bytes(len as usize);
        // Sometimes the zero-copy path: written straight into the ring (when it has room; a
        // full ring under `DedicatedStaging` says so instead of waiting).
        let grant = if rng.below(20) == 0 && len <= 4096 {
            match c.acquire_staging(len as usize) {
                Ok(grant) => Some(grant),
                Err(Error::StagingFull { .. }) => None,
                Err(e) => panic!("acquire_staging: {e}"),
            }
        } else {
            None
        };
        last = match grant {
            Some(mut grant) => {
                assert_eq!(grant.bytes_mut().len(), len as usize);
                grant.bytes_mut().copy_from_slice(&data);
                let o = offset as usize;
                target.model[o..o + data.len()].copy_from_slice(&data);
                c.transfer_and_release(grant, &target.buffer, target.base + offset)
                    .unwrap()
            }
            None => target.upload(c, offset, &data),
        };
        if rng.below(60) == 0 {
            c.flush_transfers().unwrap();
        }
        if i % 150 == 149 {
            last.wait().unwrap();
            let value = last.value();
            assert!(
                last.is_complete().unwrap(),
                "{last:?} waited for (value {value:?}) but not complete (value {:?})",
                last.value()
            );
        }
    }
    last
}

#[test]
fn four_producers_upload_and_every_byte_reads_back_as_the_last_write() {
    const THREADS: u64 = 4;
    const UPLOADS: usize = 400;
    const QUARTER: u64 = 24 << 10;
    for direct_writes in [false, true] {
        each_mode(|gpu| {
            let config = CoordinatorConfig {
                direct_writes,
                staging_ring_size: 1 << 20,
                max_ring_upload: 256 << 10,
                ..CoordinatorConfig::default()
            };
            let c = Coordinator::new(gpu.clone(), config).unwrap();
            // Shared by all producers, each writing its own quarter.
            let shared = Arc::new(
                c.create_buffer(THREADS * QUARTER, MemoryUsage::FAST_DEVICE_ACCESS)
                    .unwrap(),
            );
            let produced: Vec<(Vec<Target>, Ticket)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let (c, shared) = (&c, Arc::clone(&shared));
                        s.spawn(move || {
                            let mut rng = Rng::new(t + 1 + 100 * u64::from(direct_writes));
                            let mut targets = Vec::new();
                            // upload_slice of words (direct into host-visible device memory when
                            // allowed), and of bytes above `max_ring_upload` (chunked).
                            let words: Vec<u32> = (0..1024 + rng.below(15 << 10) as u32)
                                .map(|_| rng.next_u64() as u32)
                                .collect();
                            let (buffer, _) = c.upload_slice(&words).unwrap();
                            let model = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
                            targets.push(Target {
                                buffer: Arc::new(buffer),
                                base: 0,
                                model,
                            });
                            let len = (300 << 10) + rng.below(300 << 10) as usize;
                            let bytes = rng.bytes(len);
                            let (buffer, _) = c.upload_slice(&bytes).unwrap();
                            targets.push(Target {
                                buffer: Arc::new(buffer),
                                base: 0,
                                model: bytes,
                            });
                            // An odd-sized buffer from create_buffer, and this producer's quarter
                            // of the shared one: contents unspecified until written whole.
                            let size = 1 + rng.below(100 << 10);
                            let buffer = c
                                .create_buffer(size, MemoryUsage::FAST_DEVICE_ACCESS)
                                .unwrap();
                            for (buffer, base, size) in
                                [(Arc::new(buffer), 0, size), (shared, t * QUARTER, QUARTER)]
                            {
                                let mut target = Target {
                                    buffer,
                                    base,
                                    model: vec![0; size as usize],
                                };
                                target.upload(c, 0, &rng.bytes(size as usize));
                                targets.push(target);
                            }
                            let last = produce(c, &mut targets, &mut rng, UPLOADS, 300);
                            (targets, last)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            c.flush_transfers().unwrap().wait().unwrap();
            let mut shared_model = Vec::new();
            let mut buffers = Vec::new();
            for (t, (targets, last)) in produced.into_iter().enumerate() {
                assert!(last.is_complete().unwrap(), "producer {t}'s last upload");
                for (i, target) in targets.into_iter().enumerate() {
                    if Arc::ptr_eq(&target.buffer, &shared) {
                        shared_model.extend(target.model);
                    } else {
                        let what =
                            format!("producer {t}, buffer {i} (direct writes {direct_writes})");
                        assert_reads_back(gpu, &target.buffer, &target.model, &what);
                        buffers.push(Arc::into_inner(target.buffer).unwrap());
                    }
                }
            }
            assert_reads_back(gpu, &shared, &shared_model, "the shared buffer");
            buffers.push(Arc::into_inner(shared).unwrap());
            let s = c.stats();
            assert_eq!(
                s.uploads_submitted,
                s.staged_uploads + s.dedicated_staging_uploads
            );
            if !direct_writes {
                assert_eq!(
                    s.direct_writes, 0,
                    "direct writes are off: everything is staged"
                );
            }
            if !gpu.vk().copy_lanes().queues().is_empty() {
                assert!(
                    gpu.vk().split_submissions() > 0,
                    "some batches reach the lanes' 64 KiB"
                );
            }
            gpu.assert_clean("after the uploads");
            release_all(gpu, c, buffers);
        });
    }
}

#[test]
fn triple_buffered_frames_stage_arena_data_into_a_uniform_buffer() {
    const FRAMES: u64 = 10;
    const BLOCK: u64 = 256;
    each_mode(|gpu| {
        let config = CoordinatorConfig {
            buffering: BufferingMode::Triple,
            ..CoordinatorConfig::default()
        };
        let c = Coordinator::new(gpu.clone(), config).unwrap();
        // A block per frame, then a block per frame slot (rewritten every third frame).
        let uniforms = c
            .create_buffer((FRAMES + 3) * BLOCK, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let mut model = vec![0u8; ((FRAMES + 3) * BLOCK) as usize];
        let mut tickets: Vec<Ticket> = Vec::new();
        for n in 0..FRAMES {
            let frame = c.begin_frame().unwrap();
            assert_eq!(frame.number(), n);
            assert_eq!(frame.slot() as u64, n % 3);
            if n >= 3 {
                // The slot's previous frame finished on the GPU before its slot was reused.
                assert!(
                    tickets[(n - 3) as usize].is_complete().unwrap(),
                    "frame {n}"
                );
            }
            let block = frame.alloc::<[[u32; 4]; 16]>();
            for (i, v) in block.iter_mut().flatten().enumerate() {
                *v = ((n as u32) << 16) | i as u32;
            }
            frame.stage_for_upload(block, &uniforms, n * BLOCK).unwrap();
            let at = (n * BLOCK) as usize;
            let bytes: Vec<u8> = block
                .iter()
                .flatten()
                .flat_map(|v| v.to_ne_bytes())
                .collect();
            model[at..at + BLOCK as usize].copy_from_slice(&bytes);

            let fill = 0x0101_0101 * (n as u32 + 1);
            let words = frame.alloc_slice_fill(BLOCK as usize / 4, fill).unwrap();
            let slot_at = (FRAMES + frame.slot() as u64) * BLOCK;
            frame
                .stage_slice_for_upload(words, &uniforms, slot_at)
                .unwrap();
            let at = slot_at as usize;
            model[at..at + BLOCK as usize].fill(n as u8 + 1);

            let ticket = c.end_frame(frame).unwrap();
            let value = ticket
                .value()
                .expect("a frame's ticket names its submission");
            if let Some(previous) = tickets.last() {
                assert!(
                    value > previous.value().unwrap(),
                    "frame {n} submitted anew"
                );
            }
            tickets.push(ticket);
        }
        for ticket in &tickets {
            ticket.wait().unwrap();
        }
        assert_reads_back(gpu, &uniforms, &model, "the uniform buffer");
        let s = c.stats();
        assert_eq!(s.frames, FRAMES);
        assert_eq!(s.staged_uploads, 2 * FRAMES);
        release_all(gpu, c, vec![uniforms]);
    });
}

#[test]
fn a_dropped_buffer_is_destroyed_only_after_its_copy_completes() {
    // Large enough that the copy is usually still running when `maintain` looks.
    const BIG: u64 = 48 << 20;
    each_mode(|gpu| {
        // Large uploads stay staged until a flush: the second case drops a buffer whose upload
        // is only staged.
        let config = CoordinatorConfig {
            eager_submit_bytes: u64::MAX,
            ..CoordinatorConfig::default()
        };
        let c = Coordinator::new(gpu.clone(), config).unwrap();
        let data = common::pattern(BIG as usize, 7);
        let kept = c
            .create_buffer(4096, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let kept_bytes = common::pattern(4096, 8);
        c.upload_to(&kept, 0, &kept_bytes).unwrap();

        // Dropped right after its upload was submitted.
        let doomed = c
            .create_buffer(BIG, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let raw = doomed.raw();
        c.upload_to(&doomed, 0, &data).unwrap();
        let flushed = c.flush_transfers().unwrap();
        drop(doomed);
        c.maintain().unwrap();
        let was_running = !flushed.is_complete().unwrap();
        if was_running {
            // Not complete after `maintain`, so not complete during it: the buffer must remain.
            assert!(gpu.is_live(raw), "destroyed while its copy was running");
        }
        flushed.wait().unwrap();
        c.maintain().unwrap();
        assert!(!gpu.is_live(raw), "destroyed once its copy completed");
        gpu.assert_clean("after the first drop");

        // Dropped while its upload is only staged: it waits for the copy it was promised.
        let staged = c
            .create_buffer(BIG, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let raw = staged.raw();
        c.upload_to(&staged, 0, &data).unwrap();
        drop(staged);
        c.maintain().unwrap();
        assert!(
            gpu.is_live(raw),
            "destroyed with an upload still staged for it"
        );
        let flushed = c.flush_transfers().unwrap();
        c.maintain().unwrap();
        if !flushed.is_complete().unwrap() {
            assert!(gpu.is_live(raw), "destroyed while its copy was running");
        }
        flushed.wait().unwrap();
        c.maintain().unwrap();
        assert!(!gpu.is_live(raw), "destroyed once its copy completed");

        // Never written: nothing to wait for.
        let idle = c
            .create_buffer(64, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let raw = idle.raw();
        drop(idle);
        c.maintain().unwrap();
        assert!(!gpu.is_live(raw), "an unused buffer is destroyed at once");

        assert_reads_back(gpu, &kept, &kept_bytes, "the buffer kept");
        if !was_running {
            let _ = writeln!(
                std::io::stderr(),
                "note: the GPU finished the {BIG}-byte copy before `maintain` looked; only \
                 the device's and the validation layer's checks applied"
            );
        }
        gpu.assert_clean("after the drops");
        release_all(gpu, c, vec![kept]);
    });
}

#[test]
fn read_backs_copy_device_local_bytes_after_the_uploads_made_before() {
    const SIZE: u64 = 256 << 10;
    each_mode(|gpu| {
        let c = Coordinator::new(gpu.clone(), CoordinatorConfig::default()).unwrap();
        let mut rng = Rng::new(11);
        let buffer = c
            .create_buffer(SIZE, MemoryUsage::FAST_DEVICE_ACCESS)
            .unwrap();
        let mut model = rng.bytes(SIZE as usize);
        c.upload_to(&buffer, 0, &model).unwrap();
        // Small overlapping uploads, staged only when the read-backs are asked for.
        for _ in 0..50 {
            let len = 1 + rng.below(4096);
            let offset = rng.below(SIZE - len + 1);
            let data = rng.bytes(len as usize);
            let o = offset as usize;
            model[o..o + data.len()].copy_from_slice(&data);
            c.upload_to(&buffer, offset, &data).unwrap();
        }
        // The whole buffer (a copy the lanes split), a part at an odd offset, and one dropped
        // unread; the source is dropped at once too: the `Gpu` fails the test if either buffer
        // is destroyed before the copies naming it completed.
        let whole = c.read_back(&buffer, 0, SIZE).unwrap();
        let part = c.read_back(&buffer, 1001, 3000).unwrap();
        let unread = c.read_back(&buffer, 0, SIZE / 2).unwrap();
        drop(unread);
        // Lands in the buffer the unread one kept, after that one's copy wrote it.
        let reused = c.read_back(&buffer, 5, SIZE / 2 - 5).unwrap();
        drop(buffer);
        c.maintain().unwrap();
        assert!(
            part.wait_mapped(&c).unwrap() == &model[1001..4001],
            "the part's mapped bytes differ"
        );
        assert!(
            part.wait().unwrap() == model[1001..4001],
            "the part differs"
        );
        assert!(
            reused.wait().unwrap() == model[5..SIZE as usize / 2],
            "the read-back in a kept buffer differs"
        );
        let got = whole.wait().unwrap();
        if let Some(i) = got.iter().zip(&model).position(|(a, b)| a != b) {
            panic!("byte {i} read back differs from the last write");
        }
        let stats = c.stats();
        assert_eq!(stats.read_backs, 4);
        assert_eq!(stats.read_back_buffers_reused, 1);
        assert_eq!(stats.bytes_read_back, SIZE + 3000 + 2 * (SIZE / 2) - 5);
        c.maintain().unwrap();
        gpu.assert_clean("after the read-backs");
        // Teardown destroys the kept landing buffers; `each_mode` checks that nothing is left.
        drop(c);
    });
}

#[test]
fn a_64_kib_ring_wraps_and_pushes_back_and_every_byte_arrives() {
    const THREADS: u64 = 4;
    const UPLOADS: usize = 500;
    const SIZE: u64 = 256 << 10;
    const RING: u64 = 64 << 10;
    for back_pressure in [BackPressure::WaitForGpu, BackPressure::DedicatedStaging] {
        each_mode(|gpu| {
            let config = CoordinatorConfig {
                staging_ring_size: RING,
                max_ring_upload: 16 << 10,
                back_pressure,
                direct_writes: false,
                ..CoordinatorConfig::default()
            };
            let c = Coordinator::new(gpu.clone(), config).unwrap();
            let produced: Vec<(Vec<Target>, Ticket)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let c = &c;
                        s.spawn(move || {
                            let mut rng = Rng::new(1000 + t);
                            let buffer = c
                                .create_buffer(SIZE, MemoryUsage::FAST_DEVICE_ACCESS)
                                .unwrap();
                            let mut target = Target {
                                buffer: Arc::new(buffer),
                                base: 0,
                                model: vec![0; SIZE as usize],
                            };
                            target.upload(c, 0, &rng.bytes(SIZE as usize));
                            let mut targets = vec![target];
                            let last = produce(c, &mut targets, &mut rng, UPLOADS, 16 << 10);
                            (targets, last)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            c.flush_transfers().unwrap().wait().unwrap();
            let mut buffers = Vec::new();
            for (t, (targets, last)) in produced.into_iter().enumerate() {
                assert!(last.is_complete().unwrap());
                for target in targets {
                    let what = format!("producer {t} ({back_pressure:?})");
                    assert_reads_back(gpu, &target.buffer, &target.model, &what);
                    buffers.push(Arc::into_inner(target.buffer).unwrap());
                }
            }
            let s = c.stats();
            assert!(s.ring.high_water_mark <= RING);
            assert!(
                s.ring.drained_bytes > 10 * RING,
                "the ring wrapped many times: {} bytes through {RING}",
                s.ring.drained_bytes
            );
            match back_pressure {
                BackPressure::WaitForGpu => {
                    assert!(s.stalls > 0, "a full ring made producers wait");
                    assert_eq!(s.dedicated_staging_uploads, 0);
                }
                _ => assert!(
                    s.dedicated_staging_uploads > 0,
                    "a full ring sent uploads to staging buffers of their own"
                ),
            }
            assert_eq!(
                s.uploads_submitted,
                s.staged_uploads + s.dedicated_staging_uploads
            );
            gpu.assert_clean("after the uploads");
            release_all(gpu, c, buffers);
        });
    }
}

/// A ticket waited for stays complete while other producers' waits and `maintain` prune the
/// coordinator's submission marks (a ticket looked up between the prune and its mark once named a
/// later, unfinished submission).
#[test]
fn a_waited_ticket_stays_complete_while_other_threads_maintain() {
    const THREADS: u64 = 6;
    const ROUNDS: u64 = 1500;
    each_mode(|gpu| {
        let c = Coordinator::new(gpu.clone(), CoordinatorConfig::default()).unwrap();
        let buffers: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let c = &c;
                    s.spawn(move || {
                        let b = c
                            .create_buffer(64, MemoryUsage::FAST_DEVICE_ACCESS)
                            .unwrap();
                        for i in 0..ROUNDS {
                            let ticket = c.upload_to(&b, 0, &[(i + t) as u8; 64]).unwrap();
                            ticket.wait().unwrap();
                            let value = ticket.value();
                            assert!(
                                ticket.is_complete().unwrap(),
                                "{ticket:?} waited for (value {value:?}) but not complete \
                                 (value {:?})",
                                ticket.value()
                            );
                            if i % 3 == 0 {
                                c.maintain().unwrap();
                            }
                        }
                        (b, (ROUNDS - 1 + t) as u8)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (b, last) in &buffers {
            assert_reads_back(gpu, b, &[*last; 64], "the last round");
        }
        release_all(gpu, c, buffers.into_iter().map(|(b, _)| b).collect());
    });
}

#[test]
fn defragmentation_moves_buffers_with_their_bytes_and_gives_the_blocks_back() {
    const MIB: u64 = 1 << 20;
    each_mode(|gpu| {
        // 4 MiB blocks, so that 1 MiB buffers fill them four at a time.
        let config = CoordinatorConfig {
            pools: memkit_std::PoolConfig {
                first_block_size: 4 * MIB,
                preferred_block_size: Some(4 * MIB),
                ..memkit_std::PoolConfig::default()
            },
            ..CoordinatorConfig::default()
        };
        let c = Coordinator::new(gpu.clone(), config).unwrap();
        let blocks_now =
            |c: &Coordinator<Gpu>| -> u32 { c.stats().heaps.iter().map(|h| h.blocks).sum() };
        let mut rng = Rng::new(5);
        let mut blocks: Vec<Vec<(Buffer<Gpu>, Vec<u8>)>> = Vec::new();
        for _ in 0..5 {
            let block: Vec<_> = (0..4)
                .map(|_| {
                    let buffer = c
                        .create_buffer(MIB, MemoryUsage::FAST_DEVICE_ACCESS)
                        .unwrap();
                    let bytes = rng.bytes(MIB as usize);
                    c.upload_to(&buffer, 0, &bytes).unwrap();
                    (buffer, bytes)
                })
                .collect();
            let memory = block[0].0.memory().0;
            assert!(block.iter().all(|(b, _)| b.memory().0 == memory));
            blocks.push(block);
        }
        c.flush_transfers().unwrap().wait().unwrap();
        // Block 0 keeps one buffer, block 1 two, blocks 2 to 4 three: blocks 0 and 1 fit the
        // others' room.
        drop(blocks[0].drain(1..).collect::<Vec<_>>());
        drop(blocks[1].drain(2..).collect::<Vec<_>>());
        for block in &mut blocks[2..] {
            drop(block.pop());
        }
        c.maintain().unwrap();
        let before = blocks_now(&c);
        let mut buffers: Vec<_> = blocks.into_iter().flatten().collect();
        let old: Vec<vk::Buffer> = buffers.iter().map(|(b, _)| b.raw()).collect();
        // An upload staged right before the pass: it is submitted before the copy reads the
        // buffer, so the moved buffer holds it.
        let late = rng.bytes(1000);
        c.upload_to(&buffers[1].0, 77, &late).unwrap();
        buffers[1].1[77..1077].copy_from_slice(&late);

        let outcome = c
            .defragment(
                buffers.iter_mut().map(|(b, _)| b),
                &memkit_std::DefragmentationLimits::UNLIMITED,
            )
            .unwrap();
        assert_eq!(outcome.moved, [0, 1, 2]);
        assert_eq!(outcome.plan.blocks, 2);
        for &i in &outcome.moved {
            assert_ne!(buffers[i].0.raw(), old[i]);
        }
        c.maintain().unwrap();
        if !outcome.ticket.is_complete().unwrap() {
            assert!(
                gpu.is_live(old[0]),
                "an old buffer destroyed under its copy"
            );
        }
        outcome.ticket.wait().unwrap();
        c.maintain().unwrap();
        for &i in &outcome.moved {
            assert!(!gpu.is_live(old[i]), "old buffer {i} destroyed once copied");
        }
        assert_eq!(
            blocks_now(&c),
            before - 2,
            "the two emptied blocks went back"
        );
        assert_eq!(c.stats().blocks_released_by_defragmentation, 2);
        for (i, (buffer, model)) in buffers.iter().enumerate() {
            assert_reads_back(gpu, buffer, model, &format!("buffer {i} after the pass"));
        }
        // Uploads and read-backs after the move use the new buffer.
        let fresh = rng.bytes(4096);
        c.upload_to(&buffers[0].0, 4096, &fresh)
            .unwrap()
            .wait()
            .unwrap();
        buffers[0].1[4096..8192].copy_from_slice(&fresh);
        let read = c.read_back(&buffers[0].0, 0, MIB).unwrap();
        assert!(
            read.wait().unwrap() == buffers[0].1,
            "read-back of a moved buffer"
        );
        gpu.assert_clean("after the pass");
        let stats = c.stats();
        // The kept landing buffer of the read-back is the one buffer not destroyed yet.
        assert_eq!(stats.buffers_created, 20 + 3 + 1);
        drop(buffers);
        c.flush_transfers().unwrap().wait().unwrap();
        c.maintain().unwrap();
        assert_eq!(c.stats().buffers_destroyed, 20 + 3);
        gpu.assert_clean("before the coordinator's teardown");
        // `each_mode` checks that teardown leaves nothing behind.
        drop(c);
    });
}
