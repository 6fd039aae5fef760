//! The staging ring benchmark: memkit's `StagingRing` beside the queues a user would pick instead,
//! measured in the same run, quoted as medians and ratios.
//!
//! ```text
//! cargo bench -p memkit-tests --bench ring              # ~20 s
//! cargo bench -p memkit-tests --bench ring -- --quick   # ~3 s
//! cargo bench -p memkit-tests --bench ring -- --only 4096   # sections whose name matches:
//!                                                           # uncontended, 64, 4096, scaling
//! ```
//!
//! Peers: **bbqueue** (the SPSC BipBuffer queue memkit's grant/commit API follows; one producer
//! at most, so it gets the same total work on one producer thread), and a **`Mutex<VecDeque<u8>>`**
//! ring (std's and parking_lot's mutex) that producers lock to append and the consumer locks to
//! drain. Measurements:
//!
//! 1. *uncontended*: one thread, grant + commit of 64 B (no bytes written), timed in batches of
//!    256 between which the consumer drains and releases (untimed). For the `VecDeque` ring the op
//!    is lock + append 64 B + unlock (it cannot reserve without copying). memkit twice: plain
//!    `StagingRing::grant`, and through a `RingProducer` (default spans; its `flush` at the end of
//!    each batch is timed too).
//! 2. *2 producers*: two producer threads each push messages of 64 B and of 4 KiB (grant, copy
//!    the message in, commit) while a consumer thread drains and releases (memkit marks each
//!    drain with a value that completes at once); aggregate messages per second, queues of 1 MiB.
//!    bbqueue, single-producer, does the same total on one thread; memkit with one producer too.
//!    memkit both ways: plain grants (one CAS on the shared head each) and a `RingProducer` per
//!    thread (default spans: up to 64 grants or 64 KiB per CAS).
//! 3. *producer scaling*: 64 KiB grants filled with `copy_from_slice` into a 64 MiB ring, 1 and
//!    2 producer threads; aggregate GB/s of bytes written.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use bbqueue::nicknames::GogiGui;
use bbqueue::traits::storage::BoxedSlice;
use memkit_core::{FenceValue, GrantError, RingConsumer, RingMemory, RingProducer, StagingRing};
use memkit_tests::bench_report::median;

type Ring = StagingRing<'static, 256>;

fn new_ring(capacity: usize) -> Arc<Ring> {
    let memory = RingMemory::new(Box::leak(vec![0u8; capacity].into_boxed_slice()));
    Arc::new(StagingRing::new(memory).expect("ring"))
}

/// Backs off while a queue is full or empty: spins a little, then yields the core.
struct Backoff(u32);

impl Backoff {
    fn snooze(&mut self) {
        if self.0 < 64 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
        self.0 += 1;
    }
}

/// The consumer side of memkit's ring: drains, marks each batch with a new value and releases
/// it at once (an instant GPU). Returns bytes drained.
fn memkit_consume(consumer: &mut RingConsumer<Arc<Ring>>, value: &mut u64) -> usize {
    let mut bytes = 0;
    while let Some(range) = consumer.drain() {
        bytes += range.len();
    }
    if bytes > 0 {
        *value += 1;
        consumer
            .mark(FenceValue::new(*value))
            .expect("rising values");
        consumer.release_completed(FenceValue::new(*value));
    }
    bytes
}

// ---- 1. uncontended grant + commit -------------------------------------------------------

const BATCH: usize = 256;
/// Message size of the uncontended runs.
const MSG: usize = 64;

fn uncontended_memkit(batches: usize) -> f64 {
    let ring = new_ring(1 << 20);
    let mut consumer = RingConsumer::new(Arc::clone(&ring)).expect("consumer");
    let mut value = 0;
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..BATCH {
            let grant = ring.grant(black_box(MSG), 4).expect("room");
            grant.commit_all();
        }
        samples.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        memkit_consume(&mut consumer, &mut value);
    }
    median(samples)
}

fn uncontended_memkit_producer(batches: usize) -> f64 {
    let ring = new_ring(1 << 20);
    let mut consumer = RingConsumer::new(Arc::clone(&ring)).expect("consumer");
    let mut producer = RingProducer::new(&ring);
    let mut value = 0;
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..BATCH {
            let grant = producer.grant(black_box(MSG), 4).expect("room");
            grant.commit_all();
        }
        producer.flush();
        samples.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        memkit_consume(&mut consumer, &mut value);
    }
    median(samples)
}

fn uncontended_bbqueue(batches: usize) -> f64 {
    let queue = GogiGui::new_with_storage(BoxedSlice::new(1 << 20));
    let producer = queue.stream_producer();
    let consumer = queue.stream_consumer();
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..BATCH {
            let grant = producer.grant_exact(black_box(MSG)).expect("room");
            grant.commit(MSG);
        }
        samples.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        while let Ok(read) = consumer.read() {
            let len = read.len();
            read.release(len);
        }
    }
    median(samples)
}

/// A bounded byte ring behind a lock: what a straightforward `std` upload queue does.
trait LockedRing: Send + Sync + 'static {
    fn new(capacity: usize) -> Self;
    /// Appends `data` if it fits.
    fn push(&self, data: &[u8]) -> bool;
    /// Takes everything queued; returns the bytes taken.
    fn drain(&self) -> usize;
}

struct StdMutexRing(std::sync::Mutex<VecDeque<u8>>, usize);
struct ParkingLotRing(parking_lot::Mutex<VecDeque<u8>>, usize);

impl LockedRing for StdMutexRing {
    fn new(capacity: usize) -> Self {
        Self(
            std::sync::Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        )
    }
    fn push(&self, data: &[u8]) -> bool {
        let mut q = self.0.lock().expect("not poisoned");
        if q.len() + data.len() > self.1 {
            return false;
        }
        q.extend(data);
        true
    }
    fn drain(&self) -> usize {
        let mut q = self.0.lock().expect("not poisoned");
        let n = q.len();
        q.clear();
        n
    }
}

impl LockedRing for ParkingLotRing {
    fn new(capacity: usize) -> Self {
        Self(
            parking_lot::Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        )
    }
    fn push(&self, data: &[u8]) -> bool {
        let mut q = self.0.lock();
        if q.len() + data.len() > self.1 {
            return false;
        }
        q.extend(data);
        true
    }
    fn drain(&self) -> usize {
        let mut q = self.0.lock();
        let n = q.len();
        q.clear();
        n
    }
}

fn uncontended_locked<L: LockedRing>(batches: usize) -> f64 {
    let ring = L::new(1 << 20);
    let msg = [7u8; MSG];
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..BATCH {
            assert!(ring.push(black_box(&msg)));
        }
        samples.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        ring.drain();
    }
    median(samples)
}

// ---- 2. two producers, one consumer --------------------------------------------------------

/// The queue size of the contended runs.
const RING: usize = 1 << 20;

/// Runs `producers` threads of `per_producer` messages through memkit's ring and a consumer
/// thread, each producer granting through a `RingProducer` when `spans`; returns messages per
/// second.
fn contended_memkit<const MSG: usize>(producers: usize, per_producer: usize, spans: bool) -> f64 {
    let ring = new_ring(RING);
    let mut consumer = RingConsumer::new(Arc::clone(&ring)).expect("consumer");
    let total = producers * per_producer * MSG;
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let msg = [p as u8; MSG];
                let mut handle = spans.then(|| RingProducer::new(&ring));
                for _ in 0..per_producer {
                    let mut backoff = Backoff(0);
                    loop {
                        // A producer handle that fails has closed its span already (no flush
                        // needed before backing off).
                        let grant = match handle.as_mut() {
                            Some(handle) => handle.grant(MSG, 4),
                            None => ring.grant(MSG, 4),
                        };
                        match grant {
                            Ok(mut grant) => {
                                grant.bytes_mut().copy_from_slice(&msg);
                                grant.commit_all();
                                break;
                            }
                            Err(GrantError::Full { .. } | GrantError::TooManyUndrained { .. }) => {
                                backoff.snooze()
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut value = 0;
    let mut drained = 0;
    let mut backoff = Backoff(0);
    while drained < total {
        match memkit_consume(&mut consumer, &mut value) {
            0 => backoff.snooze(),
            n => {
                drained += n;
                backoff = Backoff(0);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    for h in handles {
        h.join().expect("producer");
    }
    (producers * per_producer) as f64 / elapsed
}

/// bbqueue is single-producer: one producer thread does all `messages`.
fn contended_bbqueue<const MSG: usize>(messages: usize) -> f64 {
    let queue = GogiGui::new_with_storage(BoxedSlice::new(RING));
    let producer = queue.stream_producer();
    let consumer = queue.stream_consumer();
    let total = messages * MSG;
    let start = Instant::now();
    let handle = thread::spawn(move || {
        let msg = [1u8; MSG];
        for _ in 0..messages {
            let mut backoff = Backoff(0);
            loop {
                if let Ok(mut grant) = producer.grant_exact(MSG) {
                    grant.copy_from_slice(&msg);
                    grant.commit(MSG);
                    break;
                }
                backoff.snooze();
            }
        }
    });
    let mut drained = 0;
    let mut backoff = Backoff(0);
    while drained < total {
        match consumer.read() {
            Ok(read) => {
                let len = read.len();
                black_box(&read[..]);
                read.release(len);
                drained += len;
                backoff = Backoff(0);
            }
            Err(_) => backoff.snooze(),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    handle.join().expect("producer");
    messages as f64 / elapsed
}

fn contended_locked<L: LockedRing, const MSG: usize>(producers: usize, per_producer: usize) -> f64 {
    let ring = Arc::new(L::new(RING));
    let total = producers * per_producer * MSG;
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let msg = [p as u8; MSG];
                for _ in 0..per_producer {
                    let mut backoff = Backoff(0);
                    while !ring.push(&msg) {
                        backoff.snooze();
                    }
                }
            })
        })
        .collect();
    let mut drained = 0;
    let mut backoff = Backoff(0);
    while drained < total {
        match ring.drain() {
            0 => backoff.snooze(),
            n => {
                drained += n;
                backoff = Backoff(0);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    for h in handles {
        h.join().expect("producer");
    }
    (producers * per_producer) as f64 / elapsed
}

// ---- 3. producer scaling with memcpy -------------------------------------------------------

const CHUNK: usize = 64 << 10;

/// `producers` threads each write `chunks` chunks of 64 KiB into a 64 MiB ring; returns GB/s of
/// bytes written, wall time from start to the last byte drained.
fn scaling_memkit(producers: usize, chunks: usize) -> f64 {
    let ring = new_ring(64 << 20);
    let mut consumer = RingConsumer::new(Arc::clone(&ring)).expect("consumer");
    // Touch the memory once so page faults are not measured.
    for value in 0..(64 << 20) / CHUNK as u64 {
        let mut grant = ring.grant(CHUNK, 64).expect("room");
        grant.bytes_mut().fill(1);
        grant.commit_all();
        let mut value = value;
        memkit_consume(&mut consumer, &mut value);
    }
    let mut value = (64 << 20) / CHUNK as u64;
    let go = Arc::new(AtomicBool::new(false));
    let total = producers * chunks * CHUNK;
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let (ring, go) = (Arc::clone(&ring), Arc::clone(&go));
            thread::spawn(move || {
                let source = vec![p as u8 + 1; CHUNK];
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                for _ in 0..chunks {
                    let mut backoff = Backoff(0);
                    loop {
                        match ring.grant(CHUNK, 64) {
                            Ok(mut grant) => {
                                grant.bytes_mut().copy_from_slice(&source);
                                grant.commit_all();
                                break;
                            }
                            Err(GrantError::Full { .. } | GrantError::TooManyUndrained { .. }) => {
                                backoff.snooze()
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut drained = 0;
    let start = Instant::now();
    go.store(true, Ordering::Release);
    let mut backoff = Backoff(0);
    while drained < total {
        match memkit_consume(&mut consumer, &mut value) {
            0 => backoff.snooze(),
            n => {
                drained += n;
                backoff = Backoff(0);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    for h in handles {
        h.join().expect("producer");
    }
    total as f64 / elapsed / 1e9
}

/// Runs the contended comparison for messages of `MSG` bytes and prints it.
fn contended<const MSG: usize>(reps: usize, per_producer: usize) {
    println!(
        "\n2. {MSG} B messages, producers + a consumer thread (million messages/s, higher is better)"
    );
    // The contenders take turns, one repetition each per round, so that a burst of load from
    // elsewhere on a shared machine hits them all rather than whichever ran at the time; the
    // RingProducer-to-plain ratio is also taken within each round (its median is printed).
    let contenders: [&dyn Fn() -> f64; 7] = [
        &|| contended_memkit::<MSG>(2, per_producer, false),
        &|| contended_memkit::<MSG>(1, 2 * per_producer, false),
        &|| contended_memkit::<MSG>(2, per_producer, true),
        &|| contended_memkit::<MSG>(1, 2 * per_producer, true),
        &|| contended_bbqueue::<MSG>(2 * per_producer),
        &|| contended_locked::<StdMutexRing, MSG>(2, per_producer),
        &|| contended_locked::<ParkingLotRing, MSG>(2, per_producer),
    ];
    let mut samples: [Vec<f64>; 7] = Default::default();
    for _ in 0..reps {
        for (contender, samples) in contenders.iter().zip(&mut samples) {
            samples.push(contender() / 1e6);
        }
    }
    let paired = median(
        samples[2]
            .iter()
            .zip(&samples[0])
            .map(|(s, p)| s / p)
            .collect(),
    );
    let [memkit2, memkit1, spans2, spans1, bbq, std2, pl2] = samples.map(median);
    let gbs = |m: f64| m * MSG as f64 / 1e3;
    println!(
        "  memkit, 2 producers             {memkit2:7.2}  ({:.2} GB/s)",
        gbs(memkit2)
    );
    println!(
        "  memkit, 1 producer              {memkit1:7.2}  ({:.2} GB/s)",
        gbs(memkit1)
    );
    println!(
        "  bbqueue, 1 producer (SPSC)      {bbq:7.2}   memkit (2 producers) / bbqueue = {:.2}",
        memkit2 / bbq
    );
    println!(
        "  std Mutex<VecDeque>, 2 prod.    {std2:7.2}   memkit / std mutex = {:.2}",
        memkit2 / std2
    );
    println!(
        "  parking_lot Mutex, 2 prod.      {pl2:7.2}   memkit / parking_lot = {:.2}",
        memkit2 / pl2
    );
    println!(
        "  memkit RingProducer, 2 prod.    {spans2:7.2}  ({:.2} GB/s)   / plain memkit = {:.2} (per round: {paired:.2}), / bbqueue = {:.2}, / std mutex = {:.2}, / parking_lot = {:.2}",
        gbs(spans2),
        spans2 / memkit2,
        spans2 / bbq,
        spans2 / std2,
        spans2 / pl2
    );
    println!(
        "  memkit RingProducer, 1 prod.    {spans1:7.2}  ({:.2} GB/s)",
        gbs(spans1)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 9 };
    let batches = if quick { 2_000 } else { 20_000 };
    let per_producer = if quick { 200_000 } else { 1_000_000 };
    let chunks = if quick { 2_000 } else { 10_000 };
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let run = |section: &str| only.is_none_or(|o| section.contains(o.as_str()));
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("staging ring benchmark: {reps} repetitions, medians; {cores} hardware threads");

    if run("uncontended") {
        uncontended(reps, batches);
    }
    if run("64") {
        contended::<64>(reps, per_producer);
    }
    if run("4096") {
        contended::<4096>(reps, per_producer / 16);
    }
    if run("scaling") {
        println!(
            "\n3. producer scaling, 64 KiB grants with memcpy into a 64 MiB ring (GB/s written)"
        );
        let one = median((0..reps).map(|_| scaling_memkit(1, chunks)).collect());
        let two = median((0..reps).map(|_| scaling_memkit(2, chunks / 2)).collect());
        println!("  1 producer   {one:6.2} GB/s");
        println!("  2 producers  {two:6.2} GB/s   scaling {:.2}x", two / one);
    }
}

/// Runs the uncontended comparison and prints it.
fn uncontended(reps: usize, batches: usize) {
    println!("\n1. uncontended grant + commit of 64 B (ns/op, lower is better)");
    let memkit = median((0..reps).map(|_| uncontended_memkit(batches)).collect());
    let spans = median(
        (0..reps)
            .map(|_| uncontended_memkit_producer(batches))
            .collect(),
    );
    let bbq = median((0..reps).map(|_| uncontended_bbqueue(batches)).collect());
    let std_m = median(
        (0..reps)
            .map(|_| uncontended_locked::<StdMutexRing>(batches))
            .collect(),
    );
    let pl_m = median(
        (0..reps)
            .map(|_| uncontended_locked::<ParkingLotRing>(batches))
            .collect(),
    );
    println!("  memkit StagingRing            {memkit:7.2} ns");
    println!(
        "  memkit RingProducer           {spans:7.2} ns   {:.2}x the plain grant's speed",
        memkit / spans
    );
    println!(
        "  bbqueue (SPSC)               {bbq:7.2} ns   memkit is {:.2}x its speed",
        bbq / memkit
    );
    println!(
        "  std Mutex<VecDeque> (+copy)  {std_m:7.2} ns   memkit is {:.2}x its speed",
        std_m / memkit
    );
    println!(
        "  parking_lot Mutex<VecDeque>  {pl_m:7.2} ns   memkit is {:.2}x its speed",
        pl_m / memkit
    );
    println!(
        "  (RingProducer: {:.2}x bbqueue's speed, {:.2}x std's, {:.2}x parking_lot's)",
        bbq / spans,
        std_m / spans,
        pl_m / spans
    );
}
