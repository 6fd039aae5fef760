//! Two more tries at moving 256 MiB faster than one `vkCmdCopyBuffer` from Vulkan's staging
//! memory, on a raw device with every queue ([`RawDevice`]):
//!
//! - `queues`: the copy split into halves on two queues of the transfer family, into quarters
//!   and eighths on queues of every family that copies (each part its own submission, all waited
//!   together), and one copy of 32 regions of 8 MiB and of 4096 regions of 64 KiB;
//! - `import`: the source is host memory the bench allocated and imported with
//!   `VK_EXT_external_memory_host` (as CUDA's pinned copies read memory it pinned): 4 KiB pages,
//!   transparent huge pages, and hugetlbfs pages when the system has some reserved.
//!
//! Every figure is BIG bytes over the median wall time of at least 5 runs after a warm-up, from
//! the first submission to the last fence; the destination is cleared before a variant's runs
//! and read back whole after them, so wrong bytes fail the run instead of giving a figure.

use ash::vk;
use memkit_tests::bench_report::{Report, gbps};
use memkit_tests::workloads::SplitMix64 as Rng;
use memkit_vulkan::HeadlessDevice;

use super::raw_device::{Part, QueueId, RawBuffer, RawDevice};
use super::{BIG, MIB, Sections};

/// The figure the others are compared with: the same raw device, one copy on the transfer queue.
const BASELINE: &str = "1. queues: one 256 MiB copy on the transfer queue (raw device)";

pub(super) fn run(report: &mut Report, h: &HeadlessDevice, reps: usize, sections: &Sections) {
    let raw = RawDevice::new(h);
    let reps = reps.max(5);
    println!("queues: {}", raw.describe());
    let dst = raw
        .bound(
            vk::BufferUsageFlags::TRANSFER_DST | vk::BufferUsageFlags::TRANSFER_SRC,
            vk::MemoryPropertyFlags::DEVICE_LOCAL,
            vk::MemoryPropertyFlags::HOST_VISIBLE,
        )
        .or_else(|| {
            raw.bound(
                vk::BufferUsageFlags::TRANSFER_DST | vk::BufferUsageFlags::TRANSFER_SRC,
                vk::MemoryPropertyFlags::DEVICE_LOCAL,
                vk::MemoryPropertyFlags::empty(),
            )
        })
        .expect("device-local memory");
    // The baseline runs for both sections: each compares with it.
    queues(report, &raw, &dst, reps, sections.has("queues"));
    if sections.has("import") {
        import(report, &raw, &dst, reps);
    }
    // SAFETY: every use was waited; then nothing of the device is left.
    unsafe {
        raw.free(dst);
        raw.destroy();
    }
}

/// `count` equal contiguous regions covering BIG bytes, at the same offsets in both buffers.
fn regions(count: u64) -> Vec<vk::BufferCopy> {
    let size = BIG / count;
    (0..count)
        .map(|i| vk::BufferCopy {
            src_offset: i * size,
            dst_offset: i * size,
            size,
        })
        .collect()
}

/// BIG bytes in `count` equal parts, part `i` on `queues[i % queues.len()]`.
fn split(queues: &[QueueId], count: u64) -> Vec<Part> {
    regions(count)
        .into_iter()
        .enumerate()
        .map(|(i, r)| Part {
            queue: queues[i % queues.len()],
            regions: vec![r],
        })
        .collect()
}

/// `; 0.xxx x the baseline`, for a note (empty for the baseline itself).
fn against_baseline(report: &Report, t: f64) -> String {
    report.get(BASELINE).map_or(String::new(), |b| {
        format!("; {:.3}x the baseline", gbps(BIG, t) / b)
    })
}

/// Records a checked run's figure in GB/s with `note`, or its failure.
fn add(
    report: &mut Report,
    name: &str,
    measured: Result<f64, String>,
    note: impl FnOnce(&Report, f64) -> String,
) {
    match measured {
        Ok(t) => {
            let note = note(report, t);
            report.add(name, gbps(BIG, t), "GB/s", &note);
        }
        Err(why) => report.failures.push(format!("{name}: {why}")),
    }
}

/// Which queues a split ran on, and how many distinct ones.
fn queue_note(raw: &RawDevice<'_>, parts: &[Part]) -> String {
    let mut distinct: Vec<QueueId> = parts.iter().map(|p| p.queue).collect();
    distinct.dedup();
    distinct.sort_by_key(|q| (q.family, q.index));
    distinct.dedup();
    let names: Vec<String> = parts.iter().map(|p| raw.name(p.queue)).collect();
    format!(
        "on {} ({} distinct queue(s))",
        names.join(","),
        distinct.len()
    )
}

fn queues(report: &mut Report, raw: &RawDevice<'_>, dst: &RawBuffer, reps: usize, all: bool) {
    let mut bytes = vec![0u8; BIG as usize];
    Rng::new(21).fill(&mut bytes);
    let staging = raw
        .bound(
            vk::BufferUsageFlags::TRANSFER_SRC,
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
            vk::MemoryPropertyFlags::DEVICE_LOCAL,
        )
        .or_else(|| {
            raw.bound(
                vk::BufferUsageFlags::TRANSFER_SRC,
                vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
                vk::MemoryPropertyFlags::empty(),
            )
        })
        .expect("host-visible coherent memory");
    // SAFETY: host-visible and coherent, mapped once here and unmapped right after; the GPU
    // reads it only later.
    unsafe {
        let mapped = raw
            .device
            .map_memory(
                staging.memory,
                0,
                vk::WHOLE_SIZE,
                vk::MemoryMapFlags::empty(),
            )
            .expect("map staging");
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), mapped.cast::<u8>(), bytes.len());
        raw.device.unmap_memory(staging.memory);
    }

    let transfer = raw.transfer_queue();
    let family = &raw.families[transfer.family];
    let transfer_family: Vec<QueueId> = (0..family.queues.len())
        .map(|index| QueueId {
            family: transfer.family,
            index,
        })
        .collect();
    let spread = raw.spread();
    let mut plans: Vec<(String, Vec<Part>)> = vec![(BASELINE.to_string(), split(&[transfer], 1))];
    if all {
        plans.extend([
            (
                "1. queues: 2 halves on the transfer family's queues at once".into(),
                split(&transfer_family, 2),
            ),
            (
                "1. queues: 4 quarters on 4 queues at once".into(),
                split(&spread, 4),
            ),
            (
                "1. queues: 8 eighths on 8 queues at once".into(),
                split(&spread, 8),
            ),
            (
                "1. queues: 16 sixteenths on 16 queues at once".into(),
                split(&spread, 16),
            ),
            (
                "1. queues: one copy, 32 regions of 8 MiB, transfer queue".into(),
                vec![Part {
                    queue: transfer,
                    regions: regions(32),
                }],
            ),
            (
                "1. queues: one copy, 4096 regions of 64 KiB, transfer queue".into(),
                vec![Part {
                    queue: transfer,
                    regions: regions(4096),
                }],
            ),
        ]);
        // Each of the eighths' queues alone: whether some copy engines are slower than others,
        // which an even split waits for.
        let mut alone: Vec<QueueId> = spread.iter().copied().take(8).collect();
        alone.sort_by_key(|q| (q.family, q.index));
        alone.dedup();
        for queue in alone {
            plans.push((
                format!("1. queues: one 256 MiB copy on {} alone", raw.name(queue)),
                split(&[queue], 1),
            ));
        }
    }
    for (name, parts) in plans {
        // SAFETY: both buffers are alive, bound, concurrent between every family, with the
        // transfer usages; the parts' ranges are disjoint; nothing else is in flight.
        let t = unsafe { raw.measure(staging.buffer, dst.buffer, &parts, &bytes, reps) };
        let note = queue_note(raw, &parts);
        add(report, &name, t, |report, t| {
            format!("{note}{}", against_baseline(report, t))
        });
    }
    // SAFETY: every use was waited.
    unsafe { raw.free(staging) };
}

/// The three kinds of host memory imported.
#[derive(Clone, Copy, Debug)]
enum Pages {
    /// std::alloc, with transparent huge pages refused (MADV_NOHUGEPAGE).
    Small,
    /// std::alloc aligned to 2 MiB, with MADV_HUGEPAGE before the first touch.
    Transparent,
    /// An anonymous MAP_HUGETLB mapping (needs reserved hugetlbfs pages).
    HugeTlb,
}

impl Pages {
    fn label(self) -> &'static str {
        match self {
            Pages::Small => "4 KiB pages",
            Pages::Transparent => "THP 2 MiB pages",
            Pages::HugeTlb => "MAP_HUGETLB pages",
        }
    }
}

fn import(report: &mut Report, raw: &RawDevice<'_>, dst: &RawBuffer, reps: usize) {
    if let Err(why) = raw.can_import() {
        println!("import: skipped: {why}");
        return;
    }
    let alignment = raw.host_import.as_ref().map_or(4096, |i| i.alignment);
    if !BIG.is_multiple_of(alignment) || alignment > 2 * MIB {
        println!("import: skipped: minImportedHostPointerAlignment {alignment} does not fit");
        return;
    }
    let transfer = raw.transfer_queue();
    let spread = raw.spread();
    let pair: Vec<QueueId> = (0..raw.families[transfer.family].queues.len().min(2))
        .map(|index| QueueId {
            family: transfer.family,
            index,
        })
        .collect();
    for pages in [Pages::Small, Pages::Transparent, Pages::HugeTlb] {
        let before = host::anon_huge_kib();
        let mut memory = match host::HostMemory::new(pages, alignment as usize) {
            Ok(m) => m,
            Err(why) => {
                println!("import: {} skipped: {why}", pages.label());
                continue;
            }
        };
        Rng::new(31).fill(memory.bytes());
        let huge = match (pages, before, host::anon_huge_kib()) {
            (Pages::HugeTlb, ..) => "all of it in hugetlbfs pages".to_string(),
            (_, Some(b), Some(a)) => format!(
                "{} MiB of 256 in transparent huge pages (THP {})",
                a.saturating_sub(b) / 1024,
                host::thp_mode()
            ),
            _ => "huge pages unknown".to_string(),
        };
        // SAFETY: an allocation of BIG bytes aligned to the import alignment; the extension is
        // enabled (`can_import`).
        let types = match unsafe { raw.import_types(memory.ptr()) } {
            Ok(bits) if bits != 0 => bits,
            Ok(_) => {
                println!(
                    "import: {}: no memory type fits a transfer source",
                    pages.label()
                );
                continue;
            }
            Err(e) => {
                println!(
                    "import: {}: vkGetMemoryHostPointerPropertiesEXT: {e}",
                    pages.label()
                );
                continue;
            }
        };
        for memory_type in (0..32).filter(|i| types & (1 << i) != 0) {
            // SAFETY: as above, a type from its answer; `memory` outlives the buffer (freed
            // below, before `memory` drops) and only the GPU reads it meanwhile.
            let src = match unsafe { raw.import(memory.ptr(), memory_type) } {
                Ok(b) => b,
                Err(why) => {
                    println!(
                        "import: {}, memory type {memory_type}: {why}",
                        pages.label()
                    );
                    continue;
                }
            };
            let flags = raw.type_flags(memory_type);
            let mut plans = vec![(
                format!(
                    "1. import: {}, type {memory_type}, transfer queue",
                    pages.label()
                ),
                split(&[transfer], 1),
            )];
            if pair.len() == 2 {
                plans.push((
                    format!(
                        "1. import: {}, type {memory_type}, halves on 2 queues",
                        pages.label()
                    ),
                    split(&pair, 2),
                ));
            }
            if spread.len() >= 8 {
                plans.push((
                    format!(
                        "1. import: {}, type {memory_type}, eighths on 8 queues",
                        pages.label()
                    ),
                    split(&spread, 8),
                ));
            }
            for (name, parts) in plans {
                // SAFETY: both buffers are alive, bound, concurrent between every family, with
                // the transfer usages; the parts' ranges are disjoint; nothing else is in flight.
                let t =
                    unsafe { raw.measure(src.buffer, dst.buffer, &parts, memory.bytes(), reps) };
                add(report, &name, t, |report, t| {
                    format!("{flags:?}; {huge}{}", against_baseline(report, t))
                });
            }
            // SAFETY: every copy from it was waited.
            unsafe { raw.free(src) };
        }
    }
}

/// Host memory the bench allocates itself, and what Linux says about its pages.
mod host {
    use std::alloc::Layout;
    use std::ptr::NonNull;

    use super::{BIG, MIB, Pages};

    /// Linux's mmap/madvise, declared here rather than adding a dependency for three calls.
    #[cfg(target_os = "linux")]
    mod sys {
        use std::ffi::{c_int, c_long, c_void};

        pub const PROT_READ: c_int = 1;
        pub const PROT_WRITE: c_int = 2;
        pub const MAP_PRIVATE: c_int = 0x02;
        pub const MAP_ANONYMOUS: c_int = 0x20;
        pub const MAP_HUGETLB: c_int = 0x4_0000;
        pub const MADV_HUGEPAGE: c_int = 14;
        pub const MADV_NOHUGEPAGE: c_int = 15;

        // SAFETY: the C library's declarations on Linux (x86-64 and aarch64: off_t is a long).
        unsafe extern "C" {
            pub fn mmap(
                addr: *mut c_void,
                len: usize,
                prot: c_int,
                flags: c_int,
                fd: c_int,
                offset: c_long,
            ) -> *mut c_void;
            pub fn munmap(addr: *mut c_void, len: usize) -> c_int;
            pub fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
        }
    }

    /// BIG bytes of host memory, zeroed after any page advice (so the advice governs the first
    /// touch), released on drop.
    pub(super) enum HostMemory {
        Heap { ptr: NonNull<u8>, layout: Layout },
        Mapped { ptr: NonNull<u8> },
    }

    impl HostMemory {
        pub(super) fn new(pages: Pages, alignment: usize) -> Result<Self, String> {
            let memory = match pages {
                Pages::Small => Self::heap(alignment.max(4096), advice::NO_HUGE)?,
                Pages::Transparent => Self::heap(alignment.max(2 * MIB as usize), advice::HUGE)?,
                Pages::HugeTlb => Self::hugetlb()?,
            };
            // SAFETY: BIG writable bytes owned by `memory`; the first touch (after the advice).
            unsafe { std::ptr::write_bytes(memory.ptr(), 0, BIG as usize) };
            Ok(memory)
        }

        fn heap(align: usize, advice: Option<i32>) -> Result<Self, String> {
            let layout = Layout::from_size_align(BIG as usize, align).map_err(|e| e.to_string())?;
            // SAFETY: a non-zero size.
            let ptr =
                NonNull::new(unsafe { std::alloc::alloc(layout) }).ok_or("out of host memory")?;
            let memory = Self::Heap { ptr, layout };
            if let Some(advice) = advice {
                advise(ptr, advice)?;
            }
            Ok(memory)
        }

        #[cfg(target_os = "linux")]
        fn hugetlb() -> Result<Self, String> {
            // SAFETY: an anonymous private mapping at an address the kernel picks: no existing
            // memory is affected; unmapped on drop.
            let ptr = unsafe {
                sys::mmap(
                    std::ptr::null_mut(),
                    BIG as usize,
                    sys::PROT_READ | sys::PROT_WRITE,
                    sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_HUGETLB,
                    -1,
                    0,
                )
            };
            if ptr as isize == -1 {
                let reserved = std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
                    .map_or("?".into(), |s| s.trim().to_string());
                return Err(format!(
                    "mmap(MAP_HUGETLB): {} (vm.nr_hugepages = {reserved})",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(Self::Mapped {
                ptr: NonNull::new(ptr.cast()).ok_or("mmap returned null")?,
            })
        }

        #[cfg(not(target_os = "linux"))]
        fn hugetlb() -> Result<Self, String> {
            Err("MAP_HUGETLB is Linux's".into())
        }

        pub(super) fn ptr(&self) -> *mut u8 {
            match self {
                Self::Heap { ptr, .. } | Self::Mapped { ptr } => ptr.as_ptr(),
            }
        }

        /// All BIG bytes (initialised in `new`).
        pub(super) fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: BIG initialised bytes owned by `self`, borrowed as `self` is.
            unsafe { std::slice::from_raw_parts_mut(self.ptr(), BIG as usize) }
        }
    }

    impl Drop for HostMemory {
        fn drop(&mut self) {
            match self {
                // SAFETY: allocated with this layout, released once.
                Self::Heap { ptr, layout } => unsafe { std::alloc::dealloc(ptr.as_ptr(), *layout) },
                #[cfg(target_os = "linux")]
                // SAFETY: mapped with this length in `hugetlb`, unmapped once.
                Self::Mapped { ptr } => unsafe {
                    sys::munmap(ptr.as_ptr().cast(), BIG as usize);
                },
                #[cfg(not(target_os = "linux"))]
                Self::Mapped { .. } => {}
            }
        }
    }

    mod advice {
        #[cfg(target_os = "linux")]
        pub const HUGE: Option<i32> = Some(super::sys::MADV_HUGEPAGE);
        #[cfg(target_os = "linux")]
        pub const NO_HUGE: Option<i32> = Some(super::sys::MADV_NOHUGEPAGE);
        #[cfg(not(target_os = "linux"))]
        pub const HUGE: Option<i32> = None;
        #[cfg(not(target_os = "linux"))]
        pub const NO_HUGE: Option<i32> = None;
    }

    #[cfg(target_os = "linux")]
    fn advise(ptr: NonNull<u8>, advice: i32) -> Result<(), String> {
        // SAFETY: advice on BIG bytes of a live allocation of ours: it changes how the kernel
        // backs the pages, never their contents (none yet: not touched).
        let rc = unsafe { sys::madvise(ptr.as_ptr().cast(), BIG as usize, advice) };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("madvise: {}", std::io::Error::last_os_error()))
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn advise(_: NonNull<u8>, _: i32) -> Result<(), String> {
        Ok(())
    }

    /// The process's anonymous memory in transparent huge pages, in KiB.
    pub(super) fn anon_huge_kib() -> Option<u64> {
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
        let line = rollup.lines().find(|l| l.starts_with("AnonHugePages:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The selected transparent-huge-page mode: always, madvise or never.
    pub(super) fn thp_mode() -> String {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .ok()
            .and_then(|s| {
                let start = s.find('[')? + 1;
                let end = s[start..].find(']')? + start;
                Some(s[start..end].to_string())
            })
            .unwrap_or_else(|| "?".into())
    }
}
