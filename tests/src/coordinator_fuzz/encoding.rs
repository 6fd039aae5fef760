//! The `coordinator` fuzz target's compact byte encoding: every byte string decodes (missing
//! bytes read as zero) and an op takes one to four bytes, so the short inputs libFuzzer starts
//! from already hold several ops, and a seed of a few hundred bytes holds a long workload.
//! [`CoordinatorWorkload::encode`] writes the bytes that decode back to a workload.
//!
//! The format: two header bytes. `h0`: the ring size (`4 KiB << (h0 & 7) % 6`) and the preset
//! (`(h0 >> 3)` modulo the preset count); `h1`: the back-pressure policy (`(h1 & 3) % 3`: wait,
//! fail, dedicated staging), bit 2 the whole-ring upload limit, bit 3 double buffering, bit 4
//! eager submission. Then ops until the bytes or [`MAX_OPS`] run out: a byte `k`, whose
//! `k % 14` picks the op and whose `x = k / 14 % 18` is its small operand, then its amount bytes
//! (see [`amount`]):
//! - `0`, `1`: upload to buffer `x`: offset, length; `2`: create a buffer (for the device, host
//!   access or read-backs as `x % 3` is 0, 1 or 2): size less one; `3`: `upload_slice`: length; `4`: staging grant into buffer `x`:
//!   offset, length; `5`: stage into buffer `x` in the open frame (begun if none): offset, length;
//! - `6`: begin (`x % 3 == 0`), end (`1`) or cancel (`2`) the frame; `7`: drop buffer `x`;
//!   `8`: flush (`x` even), defragment every live buffer (`x` 17): `max_allocations` byte
//!   (0: no limit), create aliased images (`x` 15): two bytes, write a transient slice in the
//!   open frame (`x` 13): length, a transient writer (`x` 11): count byte, length, a device
//!   fault for the next op (`x` 9): a byte `b`, site `b % 4` (allocation, creation, bind, map)
//!   and call `b / 4 % 4`, or maintain; `9`: complete `x % 8` submissions; `10`: check (`x`
//!   0) or read back buffer `x - 1`: offset, length;
//!   `11`: call with another coordinator's buffer (`x` 0), grant (`1`) or frame (`2`), or, for
//!   larger `x`, an image op: create an image (`3`: RGBA8, `4`: compressed): side byte; upload into
//!   image (`5` to `10`): image byte, level byte, rows byte; read back a level (`11` to `14`):
//!   image byte, level byte; drop an image (`15`, `16`): image byte; the application draws an
//!   image (`17`): image byte;
//! - `12`: take a staging grant for buffer `x` and hold it: offset, length; `13`: commit
//!   (`x` even) or abandon (`x` odd) held grant `x / 2`.

use memkit_dummy::Preset;

use super::{BufferUse, CoordOp, CoordinatorWorkload, FaultSite, ForeignCall, FrameCall, Policy};

/// Ops a workload holds at most: later bytes are ignored.
pub const MAX_OPS: usize = 256;

/// Op kinds a kind byte chooses from.
const KINDS: u8 = 14;
/// Operand values a kind byte carries: every one with every kind fits in a byte.
const OPERANDS: u8 = 18;

/// The byte count an amount byte stands for: itself below 64, above that 16 to 31 sixteenths of
/// a power of two from 64 to 128 KiB (`(16 + c % 16) << (2 + (c - 64) / 16)`), up to 248 KiB:
/// small odd sizes and offsets, ring-sized uploads and the powers of two the limits sit on.
pub const fn amount(code: u8) -> u32 {
    if code < 64 {
        code as u32
    } else {
        let c = (code - 64) as u32;
        (16 + (c & 15)) << (2 + c / 16)
    }
}

/// The code of the smallest amount at or above `value` (the largest for anything above it).
pub fn code_of_amount(value: u32) -> u8 {
    (0..=u8::MAX)
        .find(|&c| amount(c) >= value)
        .unwrap_or(u8::MAX)
}

/// `value` rounded up to an amount a code gives.
pub fn round_amount(value: u32) -> u32 {
    amount(code_of_amount(value))
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

    fn amount(&mut self) -> u32 {
        amount(self.byte())
    }
}

impl CoordinatorWorkload {
    /// The workload `bytes` encode. Every byte string is one, so none is wasted on the fuzzer.
    pub fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader { bytes };
        let (h0, h1) = (r.byte(), r.byte());
        let mut ops = Vec::new();
        while !r.bytes.is_empty() && ops.len() < MAX_OPS {
            let k = r.byte();
            // Modulo 18, so that kind bytes 252 to 255 (operand 18) encode back as themselves.
            let x = k / KINDS % OPERANDS;
            ops.push(match k % KINDS {
                0 | 1 => CoordOp::UploadTo {
                    buffer: x,
                    offset: r.amount(),
                    len: r.amount(),
                },
                2 => CoordOp::Create {
                    size: r.amount() + 1,
                    usage: match x % 3 {
                        0 => BufferUse::Device,
                        1 => BufferUse::HostAccess,
                        _ => BufferUse::ReadBack,
                    },
                },
                3 => CoordOp::UploadSlice { len: r.amount() },
                4 => CoordOp::Grant {
                    buffer: x,
                    offset: r.amount(),
                    len: r.amount(),
                },
                5 => CoordOp::Stage {
                    buffer: x,
                    offset: r.amount(),
                    len: r.amount(),
                },
                6 => CoordOp::Frame(match x % 3 {
                    0 => FrameCall::Begin,
                    1 => FrameCall::End,
                    _ => FrameCall::Cancel,
                }),
                7 => CoordOp::Drop { buffer: x },
                8 if x.is_multiple_of(2) => CoordOp::Flush,
                8 if x == OPERANDS - 1 => CoordOp::Defragment {
                    max_allocations: r.byte(),
                },
                8 if x == OPERANDS - 3 => CoordOp::CreateAliasedImages {
                    a: r.byte(),
                    b: r.byte(),
                },
                8 if x == OPERANDS - 5 => CoordOp::Transient { len: r.amount() },
                8 if x == OPERANDS - 7 => CoordOp::TransientWriter {
                    slices: r.byte(),
                    len: r.amount(),
                },
                8 if x == OPERANDS - 9 => {
                    let b = r.byte();
                    CoordOp::Fault {
                        site: match b % 5 {
                            0 => FaultSite::Allocation,
                            1 => FaultSite::Creation,
                            2 => FaultSite::Bind,
                            3 => FaultSite::Map,
                            _ => FaultSite::Submit,
                        },
                        nth: b / 5 % 4,
                    }
                }
                8 => CoordOp::Maintain,
                9 => CoordOp::Advance { n: x % 8 },
                10 if x == 0 => CoordOp::Check,
                10 => CoordOp::ReadBack {
                    buffer: x - 1,
                    offset: r.amount(),
                    len: r.amount(),
                },
                11 => match x {
                    0 => CoordOp::Foreign(ForeignCall::Buffer),
                    1 => CoordOp::Foreign(ForeignCall::Grant),
                    2 => CoordOp::Foreign(ForeignCall::Frame),
                    3 | 4 => CoordOp::CreateImage {
                        side: r.byte(),
                        compressed: x == 4,
                    },
                    5..=10 => CoordOp::UploadImage {
                        image: r.byte(),
                        level: r.byte(),
                        rows: r.byte(),
                    },
                    11..=14 => CoordOp::ReadBackImage {
                        image: r.byte(),
                        level: r.byte(),
                    },
                    15 | 16 => CoordOp::DropImage { image: r.byte() },
                    _ => CoordOp::AppDraw { image: r.byte() },
                },
                12 => CoordOp::Hold {
                    buffer: x,
                    offset: r.amount(),
                    len: r.amount(),
                },
                _ => CoordOp::Release {
                    grant: x / 2,
                    commit: x.is_multiple_of(2),
                },
            });
        }
        Self {
            preset: Preset::ALL[usize::from(h0 >> 3) % Preset::ALL.len()],
            ring_shift: (h0 & 7) % 6,
            policy: match (h1 & 3) % 3 {
                0 => Policy::WaitForGpu,
                1 => Policy::Fail,
                _ => Policy::DedicatedStaging,
            },
            whole_ring: h1 & 4 != 0,
            double_buffering: h1 & 8 != 0,
            eager_submit: h1 & 16 != 0,
            ops,
        }
    }

    /// Bytes that [`decode`](Self::decode) to this workload, except that amounts round up to the
    /// next one a code gives (see [`amount`]; [`round_amount`] gives it), buffer operands above
    /// 17 wrap (modulo 18; above 16 and modulo 17 for read-backs), held-grant operands above 8
    /// (modulo 9), fault calls above 3 (modulo 4), ring shifts above 5 (modulo 6), and ops past
    /// [`MAX_OPS`] are dropped.
    pub fn encode(&self) -> Vec<u8> {
        let preset = Preset::ALL
            .iter()
            .position(|&p| p == self.preset)
            .expect("every preset is in Preset::ALL") as u8;
        let policy = match self.policy {
            Policy::WaitForGpu => 0,
            Policy::Fail => 1,
            Policy::DedicatedStaging => 2,
        };
        let mut out = vec![
            (preset << 3) | (self.ring_shift % 6),
            policy
                | (u8::from(self.whole_ring) << 2)
                | (u8::from(self.double_buffering) << 3)
                | (u8::from(self.eager_submit) << 4),
        ];
        // The kind byte of op `kind` with operand `x` (at most 17: 18 * 14 + 13 passes 255).
        let k = |kind: u8, x: u8| (x % OPERANDS) * KINDS + kind;
        let code = code_of_amount;
        for &op in self.ops.iter().take(MAX_OPS) {
            match op {
                CoordOp::UploadTo {
                    buffer,
                    offset,
                    len,
                } => out.extend([k(0, buffer), code(offset), code(len)]),
                CoordOp::Create { size, usage } => {
                    out.extend([k(2, usage as u8), code(size.max(1) - 1)]);
                }
                CoordOp::UploadSlice { len } => out.extend([k(3, 0), code(len)]),
                CoordOp::Grant {
                    buffer,
                    offset,
                    len,
                } => out.extend([k(4, buffer), code(offset), code(len)]),
                CoordOp::Stage {
                    buffer,
                    offset,
                    len,
                } => out.extend([k(5, buffer), code(offset), code(len)]),
                CoordOp::Frame(call) => out.push(k(6, call as u8)),
                CoordOp::Drop { buffer } => out.push(k(7, buffer)),
                CoordOp::Flush => out.push(k(8, 0)),
                CoordOp::Maintain => out.push(k(8, 1)),
                CoordOp::Defragment { max_allocations } => {
                    out.extend([k(8, OPERANDS - 1), max_allocations]);
                }
                CoordOp::Advance { n } => out.push(k(9, n % 8)),
                CoordOp::Check => out.push(k(10, 0)),
                CoordOp::ReadBack {
                    buffer,
                    offset,
                    len,
                } => out.extend([k(10, buffer % (OPERANDS - 1) + 1), code(offset), code(len)]),
                CoordOp::Foreign(call) => out.push(k(11, call as u8)),
                CoordOp::CreateImage { side, compressed } => {
                    out.extend([k(11, 3 + u8::from(compressed)), side]);
                }
                CoordOp::UploadImage { image, level, rows } => {
                    out.extend([k(11, 5), image, level, rows]);
                }
                CoordOp::ReadBackImage { image, level } => out.extend([k(11, 11), image, level]),
                CoordOp::DropImage { image } => out.extend([k(11, 15), image]),
                CoordOp::AppDraw { image } => out.extend([k(11, 17), image]),
                CoordOp::CreateAliasedImages { a, b } => out.extend([k(8, OPERANDS - 3), a, b]),
                CoordOp::Transient { len } => out.extend([k(8, OPERANDS - 5), code(len)]),
                CoordOp::TransientWriter { slices, len } => {
                    out.extend([k(8, OPERANDS - 7), slices, code(len)]);
                }
                CoordOp::Fault { site, nth } => {
                    out.extend([k(8, OPERANDS - 9), site as u8 + 5 * (nth % 4)]);
                }
                CoordOp::Hold {
                    buffer,
                    offset,
                    len,
                } => out.extend([k(12, buffer), code(offset), code(len)]),
                CoordOp::Release { grant, commit } => {
                    out.push(k(13, grant % 9 * 2 + u8::from(!commit)));
                }
            }
        }
        out
    }
}
