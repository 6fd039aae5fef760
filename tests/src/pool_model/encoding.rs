//! A compact byte encoding of pool workloads, for the `pools` fuzz target: every byte string
//! decodes (missing bytes read as zero), and an op takes one to four bytes, so the short inputs
//! libFuzzer starts from already make workloads of several ops, and a seed of a few hundred bytes
//! holds the 120 ops of a long proptest workload. [`PoolWorkload::encode`] writes the bytes that
//! decode back to the workload, so seeds can be built from ops.
//!
//! The format: one header byte `h` (bit 0: TLSF blocks, else buddy; bit 1: within-budget mode;
//! `h >> 2` modulo the preset count: the preset), then ops until the bytes or [`MAX_OPS`] run out.
//! An op starts with a byte `k`; `k % 18` picks it with the proptest strategy's weights:
//! - `0..=7`, allocate: a byte `p` (usage `p % 7`, an image if `(p / 7) % 2 == 1`, dedicated if
//!   `p >= 242`, about one in 18), then a big-endian 16-bit size code (see [`size_of_code`]);
//! - `8..=13`, free the live allocation at the next byte (modulo the live count);
//! - `14`, replay the free of the freed handle at the next byte (modulo their count);
//! - `15`, trim; `16`, refresh the budgets;
//! - `17`, a defragmentation pass moving at most the next byte's count of allocations (0: no
//!   limit).

use memkit_dummy::Preset;

use super::{PoolOp, USAGES};

/// Ops a workload holds at most (the proptest's run up to 119): later bytes are ignored.
pub const MAX_OPS: usize = 120;

/// The smallest allocation byte `p` that asks for a dedicated object.
const DEDICATED_FROM: u8 = 242;

/// Usages an allocation byte chooses from.
const USAGE_COUNT: u8 = USAGES.len() as u8;

/// What one `pools` fuzz input stands for: a preset device, the blocks' sub-allocator, the budget
/// mode and the ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolWorkload {
    /// The device's preset.
    pub preset: Preset,
    /// TLSF blocks, else buddy blocks.
    pub tlsf: bool,
    /// Pools in within-budget mode (with a tight budget on heap 0, see [`super::run`]).
    pub within_budget: bool,
    /// At most [`MAX_OPS`] ops.
    pub ops: Vec<PoolOp>,
}

/// Reads bytes, zero past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }
}

impl PoolWorkload {
    /// The workload `bytes` encode. Every byte string is one, so none is wasted on the fuzzer.
    pub fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader { bytes };
        let h = r.byte();
        let mut ops = Vec::new();
        while !r.bytes.is_empty() && ops.len() < MAX_OPS {
            let k = r.byte();
            ops.push(match k % 18 {
                0..=7 => {
                    let p = r.byte();
                    let code = u16::from_be_bytes([r.byte(), r.byte()]);
                    PoolOp::Allocate {
                        size: size_of_code(code),
                        usage: usize::from(p % USAGE_COUNT),
                        optimal: (p / USAGE_COUNT) % 2 == 1,
                        dedicated: p >= DEDICATED_FROM,
                    }
                }
                8..=13 => PoolOp::Free {
                    index: usize::from(r.byte()),
                },
                14 => PoolOp::ReplayFree {
                    index: usize::from(r.byte()),
                },
                15 => PoolOp::Trim,
                16 => PoolOp::RefreshBudget,
                _ => PoolOp::Defragment {
                    max_allocations: r.byte(),
                },
            });
        }
        Self {
            preset: Preset::ALL[usize::from(h >> 2) % Preset::ALL.len()],
            tlsf: h & 1 != 0,
            within_budget: h & 2 != 0,
            ops,
        }
    }

    /// Bytes that [`decode`](Self::decode) to this workload, except that a size is rounded up to
    /// the next one a code gives (exact for sizes below 4096 B and for multiples of 512 B up to
    /// 1 MiB, of 8 KiB up to 16 MiB and of 128 KiB up to 160 MiB, and for one byte less than
    /// those), and indices and usages are taken modulo 256 and [`USAGES`]`.len()` (as the model
    /// takes them modulo smaller counts, the workload runs the same), and ops past [`MAX_OPS`]
    /// are dropped.
    pub fn encode(&self) -> Vec<u8> {
        let preset = Preset::ALL
            .iter()
            .position(|&p| p == self.preset)
            .expect("every preset is in Preset::ALL");
        let mut out =
            vec![((preset as u8) << 2) | (u8::from(self.within_budget) << 1) | u8::from(self.tlsf)];
        for &op in self.ops.iter().take(MAX_OPS) {
            match op {
                PoolOp::Allocate {
                    size,
                    usage,
                    optimal,
                    dedicated,
                } => {
                    let usage = (usage % USAGES.len()) as u8;
                    // The first p with this usage, image bit and dedicated bit: below
                    // 2 * USAGE_COUNT for a pooled one, from DEDICATED_FROM for a dedicated one
                    // (its 14 bytes hold every usage and image bit).
                    let p = (0..=u8::MAX)
                        .filter(|p| !(2 * USAGE_COUNT..DEDICATED_FROM).contains(p))
                        .find(|&p| {
                            p % USAGE_COUNT == usage
                                && ((p / USAGE_COUNT) % 2 == 1) == optimal
                                && (p >= DEDICATED_FROM) == dedicated
                        })
                        .expect("every usage, image bit and dedicated bit has a byte");
                    out.push(0);
                    out.push(p);
                    out.extend_from_slice(&code_of_size(size).to_be_bytes());
                }
                PoolOp::Free { index } => out.extend_from_slice(&[8, index as u8]),
                PoolOp::ReplayFree { index } => out.extend_from_slice(&[14, index as u8]),
                PoolOp::Trim => out.push(15),
                PoolOp::RefreshBudget => out.push(16),
                PoolOp::Defragment { max_allocations } => {
                    out.extend_from_slice(&[17, max_allocations]);
                }
            }
        }
        out
    }

    /// Runs the workload through the model (see [`super::run`]).
    pub fn run(&self) -> Result<(), String> {
        if self.tlsf {
            super::run::<super::Tlsf>(self.preset, self.within_budget, &self.ops)
        } else {
            super::run::<super::Buddy>(self.preset, self.within_budget, &self.ops)
        }
    }
}

/// The unit and the number of sizes of each size class of a code (top four bits: `0..=5` below
/// 4 KiB, `6..=10` up to 1 MiB, `11..=13` up to 16 MiB, `14..=15` up to 160 MiB, near the
/// proptest strategy's weights of 4, 3, 2 and 1 in 10).
const fn class_of(code: u16) -> (u64, u64) {
    match code >> 12 {
        0..=5 => (1, 4096),
        6..=10 => (512, 2048),
        11..=13 => (8 << 10, 2048),
        _ => (128 << 10, 1280),
    }
}

/// The allocation size a 16-bit code stands for. Below 4 KiB the low 12 bits are the size
/// (0 reads as 1); above, with `f` the low 12 bits, the size is `(f / 2 % count + 1) * unit`,
/// less one byte if `f` is odd: exact multiples of the class's unit (block sizes, powers of two)
/// and one byte short of them are both reachable.
pub const fn size_of_code(code: u16) -> u64 {
    let f = (code & 0xfff) as u64;
    match class_of(code) {
        (1, _) => {
            if f == 0 {
                1
            } else {
                f
            }
        }
        (unit, count) => ((f >> 1) % count + 1) * unit - (f & 1),
    }
}

/// The code of the smallest size at or above `size` that a code gives (the largest, 160 MiB,
/// for anything above it).
pub fn code_of_size(size: u64) -> u16 {
    if size < 4096 {
        return size.max(1) as u16;
    }
    // Class bases (top nibbles) in order: the first class whose range holds `size` rounds it up
    // least.
    let mut best = (u64::MAX, 0xf000 | ((1280 - 1) << 1));
    for top in [6u16, 11, 14] {
        let (unit, count) = class_of(top << 12);
        let k = size.div_ceil(unit).clamp(1, count);
        for (m, odd) in [(k, 1), (k, 0)] {
            let value = m * unit - odd;
            if value >= size && value < best.0 {
                best = (value, (top << 12) | (((m - 1) as u16) << 1) | odd as u16);
            }
        }
    }
    best.1
}

#[cfg(test)]
mod tests;
