//! The transfer scheduler benchmark: CPU cost of turning one frame's committed uploads into copy
//! batches, per upload, with the regions it emits, beside two peers measured in the same run:
//!
//! - `pass-through`: one region per upload appended to a `Vec` (what a path without merging
//!   does: wgpu's `write_buffer` and the published memkit-co record one copy per call); the floor
//!   for any scheduler, and the most regions;
//! - `btreemap`: a straightforward `std` scheduler: a `BTreeMap` interval map per destination that
//!   trims earlier ranges on every insert (later write wins), then merges adjacent ranges.
//!
//! ```text
//! cargo bench -p memkit-tests --bench scheduler              # ~10 s
//! cargo bench -p memkit-tests --bench scheduler -- --quick   # ~1 s
//! ```
//!
//! A frame is 4096 uploads of 64 B to 4 KiB (the small-upload range of issue 5). Time is the
//! median over frames of (push every upload + plan + walk every batch) / uploads. Regions matter
//! more than nanoseconds: on an H200 each copy region costs ~3 us of copy-engine time
//! (`shared/GPU.md`), so the regions column is the GPU-side figure.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use memkit_core::scheduler::{
    BufferKey, CopyRegion, EMPTY_REGION, SchedulerConfig, TransferScheduler, Upload, UploadSlot,
    dst_end,
};
use memkit_tests::bench_report::median;

const UPLOADS: usize = 4096;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn size(&mut self) -> u64 {
        // 64 B to 4 KiB, log-uniform-ish, multiples of 16 (typical uniform/instance data).
        (64u64 << self.below(7)).min(4096) + 16 * self.below(4)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// Stages uploads back to back in the ring, in issue order.
fn stage_in_order(mut uploads: Vec<Upload>) -> Vec<Upload> {
    let mut src = 0;
    for u in &mut uploads {
        u.src_offset = src;
        src += u.size;
    }
    uploads
}

/// One buffer, uploads tiling it in order: the best case (everything merges).
fn sequential(rng: &mut Rng) -> Vec<Upload> {
    let mut dst = 0;
    let uploads = (0..UPLOADS)
        .map(|_| {
            let size = rng.size();
            let u = Upload {
                src_offset: 0,
                destination: BufferKey(0),
                dst_offset: dst,
                size,
            };
            dst += size;
            u
        })
        .collect();
    stage_in_order(uploads)
}

/// The tiles of `sequential`, each staged at its destination offset, pushed in random order (as
/// several producer threads commit them): sorting restores one region.
fn shuffled_tiles(rng: &mut Rng) -> Vec<Upload> {
    let mut uploads = sequential(rng);
    for u in &mut uploads {
        u.src_offset = u.dst_offset;
    }
    rng.shuffle(&mut uploads);
    uploads
}

/// Per-object data: 16 buffers of 4 KiB slots, each upload into a random distinct slot, random
/// order. Nothing is contiguous, so nothing merges: the sort and sweep are pure overhead here.
fn scattered(rng: &mut Rng) -> Vec<Upload> {
    let mut slots: Vec<u64> = (0..UPLOADS as u64 * 2).collect();
    rng.shuffle(&mut slots);
    let uploads = slots[..UPLOADS]
        .iter()
        .map(|&slot| Upload {
            src_offset: 0,
            destination: BufferKey(slot % 16),
            dst_offset: (slot / 16) * 4096,
            size: rng.size(),
        })
        .collect();
    stage_in_order(uploads)
}

/// One 1 MiB buffer written at random offsets: many uploads overlap and later ones win.
fn overlapping(rng: &mut Rng) -> Vec<Upload> {
    let uploads = (0..UPLOADS)
        .map(|_| {
            let size = rng.size();
            Upload {
                src_offset: 0,
                destination: BufferKey(0),
                dst_offset: rng.below((1 << 20) - size),
                size,
            }
        })
        .collect();
    stage_in_order(uploads)
}

/// Builds one frame's uploads.
type MakeWorkload = fn(&mut Rng) -> Vec<Upload>;

type Scheduler = TransferScheduler<Vec<UploadSlot>, Vec<CopyRegion>>;

/// memkit: push every upload, plan, walk the batches. Returns the regions emitted.
fn memkit(scheduler: &mut Scheduler, uploads: &[Upload]) -> usize {
    for &u in uploads {
        if scheduler.push(u).is_err() {
            unreachable!("the queue holds a whole frame");
        }
    }
    let plan = scheduler.plan();
    let mut regions = 0;
    for batch in plan.batches() {
        regions += black_box(batch.regions).len();
    }
    regions
}

/// Peer: one region per upload.
fn pass_through(out: &mut Vec<(BufferKey, CopyRegion)>, uploads: &[Upload]) -> usize {
    out.clear();
    for u in uploads {
        let region = CopyRegion {
            src_offset: u.src_offset,
            dst_offset: u.dst_offset,
            size: u.size,
        };
        out.push((u.destination, region));
    }
    black_box(&out).len()
}

/// Peer: a `BTreeMap` interval map (start -> (end, src)) per destination, later write wins,
/// then one merging walk.
fn btreemap(uploads: &[Upload]) -> usize {
    let mut map: BTreeMap<(BufferKey, u64), (u64, u64)> = BTreeMap::new();
    for u in uploads {
        let (b, start, end) = (u.destination, u.dst_offset, u.dst_offset + u.size);
        // A range starting before `start` that reaches into it is trimmed (and split if needed).
        if let Some((&(_, s), &(e, src))) = map.range((b, 0)..(b, start)).next_back()
            && e > start
        {
            map.insert((b, s), (start, src));
            if e > end {
                map.insert((b, end), (e, src + (end - s)));
            }
        }
        // Ranges starting inside [start, end) are dropped or have their head cut.
        let inside: Vec<(u64, u64, u64)> = map
            .range((b, start)..(b, end))
            .map(|(&(_, s), &(e, src))| (s, e, src))
            .collect();
        for (s, e, src) in inside {
            map.remove(&(b, s));
            if e > end {
                map.insert((b, end), (e, src + (end - s)));
            }
        }
        map.insert((b, start), (end, u.src_offset));
    }
    let mut regions: Vec<(BufferKey, CopyRegion)> = Vec::with_capacity(map.len());
    for (&(b, s), &(e, src)) in &map {
        if let Some((pb, last)) = regions.last_mut()
            && *pb == b
            && dst_end(last) == s
            && last.src_offset + last.size == src
        {
            last.size += e - s;
            continue;
        }
        regions.push((
            b,
            CopyRegion {
                src_offset: src,
                dst_offset: s,
                size: e - s,
            },
        ));
    }
    black_box(&regions).len()
}

/// Median nanoseconds per upload over `frames` runs of `f`, and the regions it emitted.
fn measure(frames: usize, uploads: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut regions = f(); // warm-up, and the region count
    let times = (0..frames)
        .map(|_| {
            let t = Instant::now();
            regions = f();
            t.elapsed().as_nanos() as f64 / uploads as f64
        })
        .collect();
    (median(times), regions)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let frames = if quick { 21 } else { 301 };
    let workloads: [(&str, MakeWorkload); 4] = [
        ("sequential", sequential),
        ("shuffled tiles", shuffled_tiles),
        ("scattered, 16 buffers", scattered),
        ("overlapping", overlapping),
    ];
    println!(
        "transfer scheduler: {UPLOADS} uploads of 64 B-4 KiB per frame, median of {frames} frames"
    );
    println!(
        "{:<22} {:>12} {:>9} | {:>12} {:>9} | {:>12} {:>9} | {:>7} {:>7}",
        "workload",
        "memkit ns/up",
        "regions",
        "pass ns/up",
        "regions",
        "btree ns/up",
        "regions",
        "vs pass",
        "vs btree"
    );
    for (name, make) in workloads {
        let uploads = make(&mut Rng(0x05EE_D0FF_4A3E));
        let mut scheduler = TransferScheduler::new(
            SchedulerConfig::VULKAN,
            vec![UploadSlot::EMPTY; UPLOADS],
            vec![EMPTY_REGION; Scheduler::regions_needed(UPLOADS, 1)],
        )
        .expect("valid configuration");
        let mut out = Vec::with_capacity(UPLOADS);
        let (mk, mk_regions) = measure(frames, UPLOADS, || memkit(&mut scheduler, &uploads));
        let (pass, pass_regions) = measure(frames, UPLOADS, || pass_through(&mut out, &uploads));
        let (bt, bt_regions) = measure(frames, UPLOADS, || btreemap(&uploads));
        assert_eq!(
            mk_regions, bt_regions,
            "{name}: memkit and the BTreeMap peer disagree"
        );
        println!(
            "{name:<22} {mk:>12.1} {mk_regions:>9} | {pass:>12.1} {pass_regions:>9} | {bt:>12.1} {bt_regions:>9} | {:>6.2}x {:>7.2}x",
            mk / pass,
            mk / bt
        );
    }
}
