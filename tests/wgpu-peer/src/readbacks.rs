//! Read-backs through wgpu (`--only readbacks`): the peer of the `uploads` bench's read-back
//! section (tests/benches/uploads/readbacks.rs), the same ranges of the same bytes, so each
//! figure pairs with memkit's as a ratio.
//!
//! Each case reads `count` ranges of `size` bytes at distinct offsets (memkit's `offset`) of one
//! 256 MiB `STORAGE | COPY_SRC | COPY_DST` buffer holding memkit's random bytes; every read lands
//! in a `MAP_READ | COPY_DST` buffer through `copy_buffer_to_buffer` and is mapped with
//! `BufferSlice::map_async` and `Device::poll` waiting on the submission.
//!
//! - W1, naive, one at a time: per read, a buffer made, the copy submitted, mapped, waited,
//!   `get_mapped_range().to_vec()`, unmapped and dropped. memkit's peer figure: R3 (and R2 one at
//!   a time).
//! - W2, all in flight, `to_vec`: what a wgpu user writes to read many ranges: a buffer per read
//!   made, every copy in one submission, every slice mapped, one wait, then `to_vec` and `unmap`
//!   per read. memkit's peer figure: R2 all in flight (`wait`, a new `Vec` per read).
//! - W3, all in flight, buffers made once and reused, the bytes copied into one `Vec` per read
//!   allocated once: the fair counterpart of R2's `wait_into` reused memory, whose landing
//!   buffers come from the coordinator's read-back cache.
//! - W4, as W3 but the clock stops once every mapped view is held, no copy: the counterpart of a
//!   zero-copy mapped view.
//!
//! Times run from the first call to the last read's bytes in the CPU's hands (W4: its view), the
//! median of the timed repetitions after one warm-up. W3 and W4 unmap after the clock stops, as
//! memkit's bench drops its reads (returning landing buffers to the cache) after its clock. The
//! first timed repetition of every path and case is compared byte for byte with the bytes
//! uploaded. `--quick` reads a quarter as many ranges (rounded up).

use std::time::Instant;

use memkit_tests::bench_report::{
    READ_BACK_CASES as CASES, READ_BACK_SOURCE as BIG, Report, gbps, median,
    read_back_offset as offset, read_back_size_label as size_label,
};
use memkit_tests::workloads::SplitMix64 as Rng;

use crate::{Gpu, MIB, WGPU_VERSION};

/// A read-back path under test.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    Naive,
    ToVec,
    ReusedCopy,
    ReusedView,
}

impl Path {
    const ALL: [Path; 4] = [Path::Naive, Path::ToVec, Path::ReusedCopy, Path::ReusedView];

    fn label(self) -> String {
        let (n, how) = match self {
            Path::Naive => (1, "naive (one at a time)"),
            Path::ToVec => (2, "all in flight, to_vec"),
            Path::ReusedCopy => (3, "all in flight, reused buffers, copy into reused memory"),
            Path::ReusedView => (4, "all in flight, reused buffers, mapped view only"),
        };
        format!("W{n}. wgpu {WGPU_VERSION} {how}")
    }
}

/// One case's reads from `source`, whose bytes are `data`.
struct Reads<'a> {
    gpu: &'a Gpu,
    source: &'a wgpu::Buffer,
    data: &'a [u8],
    size: u64,
    count: u64,
}

impl Reads<'_> {
    fn landing(&self) -> wgpu::Buffer {
        self.gpu.buffer(
            "read-back",
            self.size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )
    }

    fn landings(&self) -> Vec<wgpu::Buffer> {
        (0..self.count).map(|_| self.landing()).collect()
    }

    /// Read `i` copied into `landing`, alone in one submission.
    fn copy_one(&self, i: u64, landing: &wgpu::Buffer) -> wgpu::SubmissionIndex {
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(self.source, offset(i, self.size), landing, 0, self.size);
        self.gpu.queue.submit([encoder.finish()])
    }

    /// Every read copied into its landing buffer, in one encoder and one submission.
    fn copy_all(&self, landings: &[wgpu::Buffer]) -> wgpu::SubmissionIndex {
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        for (i, landing) in (0..).zip(landings) {
            encoder.copy_buffer_to_buffer(self.source, offset(i, self.size), landing, 0, self.size);
        }
        self.gpu.queue.submit([encoder.finish()])
    }

    /// Every landing buffer mapped for reading once `submission` (which copies into them) is
    /// done: `map_async` on each slice, one wait, every callback's result checked.
    fn map_all(&self, landings: &[wgpu::Buffer], submission: wgpu::SubmissionIndex) {
        let (tx, rx) = std::sync::mpsc::channel();
        for landing in landings {
            let tx = tx.clone();
            landing
                .slice(..)
                .map_async(wgpu::MapMode::Read, move |r| tx.send(r).expect("send"));
        }
        // Only the callbacks hold senders now: one dropped uncalled ends `recv` instead of
        // hanging it.
        drop(tx);
        self.gpu.wait(submission);
        for _ in landings {
            rx.recv().expect("map callback").expect("map read-back");
        }
    }

    fn unmap_all(landings: &[wgpu::Buffer]) {
        for landing in landings {
            landing.unmap();
        }
    }

    /// Zeroes every landing buffer on the GPU and waits, so bytes left by the warm-up cannot
    /// pass the check.
    fn clear_all(&self, landings: &[wgpu::Buffer]) {
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        for landing in landings {
            encoder.clear_buffer(landing, 0, None);
        }
        self.gpu.wait(self.gpu.queue.submit([encoder.finish()]));
    }

    /// How many of the reads `got` (read `i` at index `i`) differ from the source's bytes, when
    /// `check`; 0 otherwise (`got` left unread).
    fn count_wrong<'b>(&self, check: bool, got: impl Iterator<Item = &'b [u8]>) -> usize {
        if !check {
            return 0;
        }
        (0..)
            .zip(got)
            .filter(|&(i, bytes)| {
                let o = offset(i, self.size) as usize;
                *bytes != self.data[o..o + self.size as usize]
            })
            .count()
    }
}

/// The whole of a mapped landing buffer.
fn view(landing: &wgpu::Buffer) -> wgpu::BufferView {
    landing
        .slice(..)
        .get_mapped_range()
        .expect("mapped read-back")
}

/// A mapped landing buffer's bytes, copied into a new `Vec`; the buffer unmapped.
fn take(landing: &wgpu::Buffer) -> Vec<u8> {
    let bytes = view(landing).to_vec();
    landing.unmap();
    bytes
}

/// State a path keeps between repetitions: W3's and W4's landing buffers, made once, and W3's
/// reused memory, allocated once.
struct Kept {
    landings: Vec<wgpu::Buffer>,
    outs: Vec<Vec<u8>>,
}

/// One repetition of `path`; returns its seconds and, when `check` (the first timed one), how
/// many reads came back wrong.
fn once(path: Path, reads: &Reads<'_>, kept: &mut Kept, check: bool) -> (f64, usize) {
    match path {
        Path::Naive => {
            let start = Instant::now();
            let got: Vec<Vec<u8>> = (0..reads.count)
                .map(|i| {
                    let landing = reads.landing();
                    let submission = reads.copy_one(i, &landing);
                    reads.map_all(std::slice::from_ref(&landing), submission);
                    take(&landing)
                })
                .collect();
            let t = start.elapsed().as_secs_f64();
            (t, reads.count_wrong(check, got.iter().map(Vec::as_slice)))
        }
        Path::ToVec => {
            let start = Instant::now();
            // Made and dropped inside the clock: what this path costs a wgpu user.
            let landings = reads.landings();
            let submission = reads.copy_all(&landings);
            reads.map_all(&landings, submission);
            let got: Vec<Vec<u8>> = landings.iter().map(take).collect();
            drop(landings);
            let t = start.elapsed().as_secs_f64();
            (t, reads.count_wrong(check, got.iter().map(Vec::as_slice)))
        }
        Path::ReusedCopy => {
            if check {
                // Outside the clock: neither the warm-up's bytes in the landing buffers nor in
                // the reused memory can pass the check.
                reads.clear_all(&kept.landings);
                for out in &mut kept.outs {
                    out.fill(1);
                }
            }
            let start = Instant::now();
            let submission = reads.copy_all(&kept.landings);
            reads.map_all(&kept.landings, submission);
            for (landing, out) in kept.landings.iter().zip(&mut kept.outs) {
                out.copy_from_slice(&view(landing));
            }
            let t = start.elapsed().as_secs_f64();
            Reads::unmap_all(&kept.landings);
            let wrong = reads.count_wrong(check, kept.outs.iter().map(Vec::as_slice));
            (t, wrong)
        }
        Path::ReusedView => {
            if check {
                reads.clear_all(&kept.landings);
            }
            let start = Instant::now();
            let submission = reads.copy_all(&kept.landings);
            reads.map_all(&kept.landings, submission);
            let views: Vec<wgpu::BufferView> = kept
                .landings
                .iter()
                .map(|landing| {
                    let mapped = view(landing);
                    // One byte of each view touched, so the views are really taken.
                    std::hint::black_box(mapped[0]);
                    mapped
                })
                .collect();
            let t = start.elapsed().as_secs_f64();
            let wrong = reads.count_wrong(check, views.iter().map(|v| &v[..]));
            // `unmap` panics while a view of the buffer is alive.
            drop(views);
            Reads::unmap_all(&kept.landings);
            (t, wrong)
        }
    }
}

pub(crate) fn run(report: &mut Report, gpu: &Gpu, quick: bool, reps: usize) {
    // memkit's seed: the same bytes.
    let mut data = vec![0u8; BIG as usize];
    Rng::new(41).fill(&mut data);
    let source = gpu.buffer(
        "read-back source",
        BIG,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    );
    gpu.queue.write_buffer(&source, 0, &data);
    // An empty submit flushes the queue's pending writes.
    gpu.wait(gpu.queue.submit([]));
    println!(
        "read-backs: {} MiB source; each figure: median of {reps} after one warm-up, first call \
         to the last read's bytes in the CPU's hands",
        BIG / MIB
    );

    for (size, count) in CASES {
        let count = if quick { count.div_ceil(4) } else { count };
        let reads = Reads {
            gpu,
            source: &source,
            data: &data,
            size,
            count,
        };
        let label = format!("{count} x {}", size_label(size));
        let mut naive = f64::NAN;
        for path in Path::ALL {
            let reused = matches!(path, Path::ReusedCopy | Path::ReusedView);
            // Made before the clock and kept for every repetition; nothing for W1 and W2.
            let mut kept = Kept {
                landings: if reused { reads.landings() } else { Vec::new() },
                outs: if path == Path::ReusedCopy {
                    (0..count).map(|_| vec![1u8; size as usize]).collect()
                } else {
                    Vec::new()
                },
            };
            once(path, &reads, &mut kept, false);
            let mut wrong = 0;
            let times = (0..reps)
                .map(|rep| {
                    let (t, w) = once(path, &reads, &mut kept, rep == 0);
                    wrong += w;
                    t
                })
                .collect();
            let t = median(times);
            let name = format!("{}, {label}", path.label());
            if wrong > 0 {
                report.failures.push(format!(
                    "{name}: {wrong} of {count} reads other bytes than uploaded"
                ));
            }
            let versus = if path == Path::Naive {
                naive = t;
                String::new()
            } else {
                format!("; {:.2}x the naive path", naive / t)
            };
            report.add(
                &name,
                gbps(size * count, t),
                "GB/s",
                &format!(
                    "{:.1} us per read{versus}; read-back {}",
                    t * 1e6 / count as f64,
                    if wrong == 0 { "ok" } else { "WRONG" }
                ),
            );
        }
    }
}
