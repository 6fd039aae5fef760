//! Seed inputs for the `coordinator` fuzz target, committed in `fuzz/seeds/coordinator/` (one
//! file per seed, [`CoordinatorWorkload::encode`]d) and given to CI's 20-second smoke run, which
//! from nothing only grows inputs of an op or two. Each seed is a long workload of one shape, on
//! a few presets and policies, so mutations start from the states that matter: a full staging
//! ring (refusals under `Fail`, waits under `WaitForGpu`, dedicated staging), uploads larger
//! than the ring's limit staged in chunks, frames ended, cancelled and begun twice, buffers
//! dropped with uploads still staged, flushes, maintenance, a GPU timeline advanced by hand,
//! bad calls, another coordinator's buffers, grants and frames, and staging grants held across
//! uploads, checks and frames, then committed or abandoned; read-backs among staged uploads, of
//! direct-write buffers, behind held grants, and bad ones; textures uploaded a band at a time and
//! read back, before any upload (refused), behind held grants, and dropped in flight; render
//! targets the application draws, after the coordinator was told to wait for its frame;
//! per-frame constants in transient memory, read by the application's frames until they finish;
//! device faults refusing an allocation, creation, bind or map of each kind of op that makes
//! something.
//! `tests/tests/coordinator_fuzz_seeds.rs` checks that the committed files are these seeds, that
//! they pass the model, and that together they reach those states ([`super::WorkloadDepth`]).

use memkit_dummy::Preset;

use super::{
    BufferUse, CoordOp, CoordinatorWorkload, FaultSite, ForeignCall, FrameCall, Policy,
    round_amount,
};

/// Builds op lists with every amount rounded to one the encoding gives, so a seed decodes back
/// to itself.
#[derive(Default)]
struct Ops(Vec<CoordOp>);

impl Ops {
    fn create(&mut self, size: u32, host_access: bool) {
        let usage = if host_access {
            BufferUse::HostAccess
        } else {
            BufferUse::Device
        };
        self.create_for(size, usage);
    }
    fn create_for(&mut self, size: u32, usage: BufferUse) {
        self.0.push(CoordOp::Create {
            size: round_amount(size.max(1) - 1) + 1,
            usage,
        });
    }
    fn upload(&mut self, buffer: u8, offset: u32, len: u32) {
        self.0.push(CoordOp::UploadTo {
            buffer,
            offset: round_amount(offset),
            len: round_amount(len),
        });
    }
    fn slice(&mut self, len: u32) {
        self.0.push(CoordOp::UploadSlice {
            len: round_amount(len),
        });
    }
    fn grant(&mut self, buffer: u8, offset: u32, len: u32) {
        self.0.push(CoordOp::Grant {
            buffer,
            offset: round_amount(offset),
            len: round_amount(len),
        });
    }
    fn stage(&mut self, buffer: u8, offset: u32, len: u32) {
        self.0.push(CoordOp::Stage {
            buffer,
            offset: round_amount(offset),
            len: round_amount(len),
        });
    }
    fn hold(&mut self, buffer: u8, offset: u32, len: u32) {
        self.0.push(CoordOp::Hold {
            buffer,
            offset: round_amount(offset),
            len: round_amount(len),
        });
    }
    fn release(&mut self, grant: u8, commit: bool) {
        self.0.push(CoordOp::Release { grant, commit });
    }
    fn read_back(&mut self, buffer: u8, offset: u32, len: u32) {
        self.0.push(CoordOp::ReadBack {
            buffer,
            offset: round_amount(offset),
            len: round_amount(len),
        });
    }
    fn transient(&mut self, len: u32) {
        self.0.push(CoordOp::Transient {
            len: round_amount(len),
        });
    }
    fn op(&mut self, op: CoordOp) {
        self.0.push(op);
    }
    fn image(&mut self, side: u8, compressed: bool) {
        self.0.push(CoordOp::CreateImage { side, compressed });
    }
    fn upload_image(&mut self, image: u8, level: u8, rows: u8) {
        self.0.push(CoordOp::UploadImage { image, level, rows });
    }
    fn read_image(&mut self, image: u8, level: u8) {
        self.0.push(CoordOp::ReadBackImage { image, level });
    }
}

/// In two memory types (device-local, and host-cached for read-back destinations), a block of
/// four 16 KiB buffers and one of two, each filled; the three oldest of each type dropped leave
/// each type's first block holding one, which fits the other's room: one pass moves a buffer of
/// each type, and a check after compares every byte.
fn defragmentation_in_two_types() -> Ops {
    let mut o = Ops::default();
    for round in 0..2u8 {
        for k in 0..12u8 {
            let usage = if k % 2 == 0 {
                BufferUse::Device
            } else {
                BufferUse::ReadBack
            };
            o.create_for(16 << 10, usage);
            o.upload(k, 0, 16 << 10);
        }
        o.op(CoordOp::Flush);
        for _ in 0..6 {
            o.op(CoordOp::Drop { buffer: 0 });
        }
        o.op(CoordOp::Advance { n: 7 });
        o.op(CoordOp::Maintain);
        o.op(CoordOp::Defragment { max_allocations: 0 });
        o.op(CoordOp::Advance { n: 7 });
        o.op(CoordOp::Maintain);
        o.upload(round, 8, 100);
        o.read_back(round + 1, 0, 8192);
        o.op(CoordOp::Check);
        for _ in 0..6 {
            o.op(CoordOp::Drop { buffer: 0 });
        }
    }
    o
}

/// Blocks left sparse by drops, then defragmentation passes over every live buffer: with
/// uploads staged and read-backs recorded before them, a grant held in front of an upload (the
/// buffer is busy and stays), a second pass while the first one's copies run (refused), a pass
/// limited to one allocation, and uploads, read-backs and checks of the moved buffers after.
fn defragmentation(host_access: bool) -> Ops {
    let mut o = Ops::default();
    for round in 0..3u8 {
        // 16 buffers of 8 KiB: the first 64 KiB block holds eight, the next the rest.
        for k in 0..16u8 {
            o.create(8192, host_access && k % 3 == 0);
            o.upload(k, 0, 8192);
            o.upload(k, u32::from(k) * 3 + 1, 40);
        }
        o.op(CoordOp::Flush);
        // The first block keeps two buffers.
        for _ in 0..6 {
            o.op(CoordOp::Drop { buffer: 0 });
        }
        o.upload(1, 100, 1000);
        o.read_back(0, 0, 8192);
        if round == 1 {
            // Buffer 0's upload lies behind a held grant: it cannot move.
            o.hold(2, 0, 64);
            o.upload(0, 0, 512);
        }
        o.op(CoordOp::Defragment {
            max_allocations: if round == 2 { 1 } else { 0 },
        });
        o.op(CoordOp::Defragment { max_allocations: 0 });
        if round == 1 {
            o.release(0, true);
        }
        o.upload(0, 16, 64);
        o.read_back(1, 0, 4096);
        o.op(CoordOp::Advance { n: 7 });
        o.op(CoordOp::Maintain);
        o.op(CoordOp::Check);
        o.op(CoordOp::Defragment { max_allocations: 0 });
        o.op(CoordOp::Check);
        // Everything goes, so the next round starts from empty blocks.
        for _ in 0..10 {
            o.op(CoordOp::Drop { buffer: 0 });
        }
        o.op(CoordOp::Maintain);
    }
    o
}

/// Textures left sparse by drops, then passes over every live buffer and texture: with a
/// texture read back just before (submitted, so it moves), a second pass while the first one's
/// copies run (refused), textures never uploaded into (they stay), and uploads into and
/// read-backs of the moved textures after.
fn image_defragmentation() -> Ops {
    let mut o = Ops::default();
    for round in 0..2u8 {
        // 24 small textures (31 texels a side, every level), all but the last two uploaded into.
        for k in 0..24u8 {
            o.image(30, round == 1 && k % 2 == 0);
            if k < 22 {
                o.upload_image(k, 0, 15);
            }
        }
        o.op(CoordOp::Flush);
        // The first ones go: their blocks keep a few.
        for _ in 0..9 {
            o.op(CoordOp::DropImage { image: 0 });
        }
        o.create(8192, false);
        o.upload(0, 0, 8192);
        o.read_image(0, 0);
        o.op(CoordOp::Defragment { max_allocations: 0 });
        o.op(CoordOp::Defragment { max_allocations: 0 });
        o.upload_image(0, 0, 0x21);
        o.read_image(1, 0);
        o.op(CoordOp::Advance { n: 7 });
        o.op(CoordOp::Maintain);
        o.op(CoordOp::Check);
        o.op(CoordOp::Defragment { max_allocations: 0 });
        o.op(CoordOp::Check);
        for _ in 0..15 {
            o.op(CoordOp::DropImage { image: 0 });
        }
        o.op(CoordOp::Drop { buffer: 0 });
        o.op(CoordOp::Maintain);
    }
    o
}

/// Device faults before every kind of op that makes something: buffers, `upload_slice`,
/// images, aliased images, read-backs of buffers and images, transient slices and writers,
/// staging of its own (large uploads, under `DedicatedStaging`) and defragmentation moves, each
/// refused at its first or second allocation, creation, bind or map. Every round checks the
/// bytes, and the run's teardown that nothing was left behind.
fn device_faults() -> Ops {
    let mut o = Ops::default();
    let sites = [
        FaultSite::Allocation,
        FaultSite::Creation,
        FaultSite::Bind,
        FaultSite::Map,
        FaultSite::Submit,
    ];
    let mut k = 0u8;
    let mut fault = |o: &mut Ops| {
        // Mostly the op's first call there (most ops make one thing), now and then its second.
        o.op(CoordOp::Fault {
            site: sites[usize::from(k % 5)],
            nth: u8::from(k % 4 == 3),
        });
        k = k.wrapping_add(1);
    };
    for round in 0..3u32 {
        for size in [4096, 40 << 10, 200 << 10] {
            fault(&mut o);
            o.create(size, round == 1);
        }
        o.create(8192, false);
        o.upload(0, 0, 8192);
        // A refused flush keeps the upload for the next one.
        o.op(CoordOp::Fault {
            site: FaultSite::Submit,
            nth: 0,
        });
        o.op(CoordOp::Flush);
        fault(&mut o);
        o.upload(1, 0, 40 << 10);
        fault(&mut o);
        o.slice(30 << 10);
        fault(&mut o);
        o.grant(0, 64, 2048);
        fault(&mut o);
        o.read_back(0, 0, 4096);
        fault(&mut o);
        o.image(60, round == 2);
        o.image(20, false);
        fault(&mut o);
        o.upload_image(0, 0, 0x0F);
        fault(&mut o);
        o.upload_image(1, 0, 0x0F);
        // A texture of 96 x 96 texels, whose 16-row bands (6 KiB) go in pieces through a small
        // ring: written once, then the second or third submission of another upload refused,
        // after a piece of it went out.
        o.image(95, false);
        o.upload_image(2, 0, 0x1F);
        for nth in [1, 2] {
            o.op(CoordOp::Fault {
                site: FaultSite::Submit,
                nth,
            });
            o.upload_image(2, 0, 0x1F);
        }
        o.read_image(2, 0);
        fault(&mut o);
        o.read_image(0, 0);
        fault(&mut o);
        o.op(CoordOp::CreateAliasedImages {
            a: 1 + round as u8,
            b: 0b01_00,
        });
        fault(&mut o);
        o.transient(4096);
        fault(&mut o);
        o.op(CoordOp::TransientWriter {
            slices: 3,
            len: 512,
        });
        o.op(CoordOp::Frame(FrameCall::End));
        o.op(CoordOp::Check);
        // Sparse blocks for a pass to empty, whose new places the fault may refuse.
        for _ in 0..2 {
            o.op(CoordOp::Drop { buffer: 0 });
        }
        fault(&mut o);
        o.op(CoordOp::Defragment { max_allocations: 0 });
        o.op(CoordOp::Defragment { max_allocations: 0 });
        o.op(CoordOp::Advance { n: 7 });
        o.op(CoordOp::Check);
        for _ in 0..4 {
            o.op(CoordOp::DropImage { image: 0 });
        }
        o.op(CoordOp::Maintain);
    }
    o
}

/// Sets of aliased images: four used one step each (all at offset 0, each use undefining the
/// others), four all in use together (nothing shared), two sharing; uploads, read-backs before
/// and after another image took the bytes (refused then), the application's draw, a
/// defragmentation pass (they stay), and drops (the range goes with the last).
fn aliased_images() -> Ops {
    let mut o = Ops::default();
    o.op(CoordOp::CreateAliasedImages {
        a: 2,
        b: 0b11_10_01_00,
    });
    for k in 0..4u8 {
        o.upload_image(k, 0, 0xF0 | k);
        o.read_image(k, 0);
    }
    o.read_image(0, 0);
    o.op(CoordOp::AppDraw { image: 1 });
    o.read_image(1, 0);
    o.read_image(3, 0);
    o.upload_image(2, 1, 0x0F);
    o.op(CoordOp::Defragment { max_allocations: 0 });
    o.op(CoordOp::Check);
    o.op(CoordOp::CreateAliasedImages { a: 245, b: 0x44 });
    o.op(CoordOp::CreateAliasedImages { a: 51, b: 0b1000 });
    for k in 4..10u8 {
        o.upload_image(k, 0, 0x3F);
    }
    for k in 4..10u8 {
        o.read_image(k, 0);
    }
    o.op(CoordOp::Check);
    for _ in 0..5 {
        o.op(CoordOp::DropImage { image: 0 });
    }
    o.op(CoordOp::Maintain);
    o.upload_image(4, 0, 0x3F);
    o.read_image(4, 0);
    o.op(CoordOp::Check);
    for _ in 0..5 {
        o.op(CoordOp::DropImage { image: 0 });
    }
    o.op(CoordOp::Maintain);
    o.op(CoordOp::Check);
    o
}

/// A workload on `preset` with a ring of `4 KiB << ring_shift`.
fn workload(
    preset: Preset,
    ring_shift: u8,
    policy: Policy,
    flags: (bool, bool, bool),
    ops: Ops,
) -> CoordinatorWorkload {
    let (whole_ring, double_buffering, eager_submit) = flags;
    CoordinatorWorkload {
        preset,
        ring_shift,
        policy,
        whole_ring,
        double_buffering,
        eager_submit,
        ops: ops.0,
    }
}

/// Fills the ring with uploads of a quarter of it, without flushing, so that it runs full, then
/// flushes, completes part of the GPU's work and fills it again.
fn ring_pressure(ring: u32) -> Ops {
    let mut o = Ops::default();
    for b in 0..4 {
        o.create(ring * 2, b == 3);
    }
    for round in 0..3u32 {
        for k in 0..10u32 {
            o.upload((k % 4) as u8, (k * 97 + round) % ring, ring / 4);
        }
        o.grant(1, 64, ring / 8);
        o.grant(2, 0, ring / 2);
        // Read back while uploads are staged (they go first), from a direct-write buffer (then
        // written at once: the write waits for the copy), and out of bounds.
        o.read_back(round as u8 % 3, 100 + round, ring / 2);
        o.read_back(3, 0, ring);
        o.upload(3, 7, ring / 4);
        o.read_back(0, ring * 2, 1);
        o.op(CoordOp::Flush);
        o.op(CoordOp::Advance { n: 1 });
        o.op(CoordOp::Maintain);
        o.upload(0, 3, 17);
        o.slice(ring / 4);
        o.op(CoordOp::Advance { n: 7 });
    }
    o.op(CoordOp::Check);
    o
}

/// Uploads larger than one ring upload (chunked, or in staging of their own), to buffers and as
/// new buffers, among small ones; the GPU kept up with by hand, so that only the last two, larger
/// than the ring, wait for it.
fn chunked_uploads(ring: u32) -> Ops {
    let mut o = Ops::default();
    o.create(ring * 4, false);
    o.create(ring * 3, true);
    o.create(4096, false);
    for k in 0..8u32 {
        o.upload(0, k * 61, ring / 2 + ring / 4);
        o.upload(2, 5, 31);
        o.slice(ring / 2 + 64);
        o.upload(1, 0, ring / 2 + ring / 4 + k);
        o.op(CoordOp::Flush);
        o.op(CoordOp::Advance { n: 7 });
        if k % 2 == 1 {
            o.op(CoordOp::Maintain);
        }
    }
    o.upload(0, 0, ring * 4);
    o.op(CoordOp::Check);
    o.slice(ring * 2);
    o
}

/// Frames staging data, ended, cancelled and begun while open, with the GPU behind.
fn frames() -> Ops {
    let mut o = Ops::default();
    o.create(8192, false);
    o.create(2048, true);
    o.create(300, false);
    for k in 0..8u32 {
        o.stage((k % 3) as u8, k * 40, 64 + 32 * k);
        o.stage(0, 4096, 1024);
        o.op(CoordOp::Frame(FrameCall::Begin));
        o.upload(2, k, 33);
        let end = if k % 3 == 2 {
            FrameCall::Cancel
        } else {
            FrameCall::End
        };
        o.op(CoordOp::Frame(end));
        o.op(CoordOp::Frame(FrameCall::Begin));
        if k % 4 == 3 {
            o.op(CoordOp::Advance { n: 1 });
            o.op(CoordOp::Check);
        }
    }
    o.op(CoordOp::Frame(FrameCall::End));
    o
}

/// Frames writing per-frame constants into transient memory (a few small slices, a job's writer
/// dropped or leaked, a slice that fills a chunk, one larger than a chunk, an empty one), beside
/// uploads staged in the frame, ended and cancelled, while the application's frames that read
/// them finish one at a time, some frames late, or all at a check.
fn transient_frames() -> Ops {
    let mut o = Ops::default();
    o.create(8192, false);
    for k in 0..10u32 {
        for draw in 0..4 {
            o.transient(64 + 48 * draw);
        }
        // A job's writer: 1-4 slices, leaked in frames 4-7 and 12-15 of the count.
        o.op(CoordOp::TransientWriter {
            slices: k as u8 % 8,
            len: round_amount(100 + 700 * k),
        });
        o.transient(32);
        o.stage(0, k * 256, 256);
        match k % 5 {
            1 => o.transient(16 << 10),
            3 => o.transient(40 << 10),
            4 => o.transient(0),
            _ => {}
        }
        let end = if k % 4 == 3 {
            FrameCall::Cancel
        } else {
            FrameCall::End
        };
        o.op(CoordOp::Frame(end));
        if k % 2 == 1 {
            o.op(CoordOp::Advance { n: 1 });
        }
        if k % 5 == 4 {
            o.op(CoordOp::Maintain);
            o.op(CoordOp::Check);
        }
    }
    o.op(CoordOp::Check);
    o
}

/// Buffers dropped with uploads staged, bad calls, and another coordinator's buffers, grants and
/// frames.
fn drops_and_foreign(ring: u32) -> Ops {
    let mut o = Ops::default();
    for round in 0..4u32 {
        o.create(4096, round % 2 == 1);
        o.create(ring, false);
        o.upload(0, 0, 1024);
        o.upload(1, 8, ring / 4);
        o.grant(0, 100, 200);
        o.slice(512);
        o.op(CoordOp::Drop { buffer: 1 });
        o.op(CoordOp::Drop { buffer: 0 });
        // Bad calls: nothing, and past the end.
        o.upload(0, 0, 0);
        o.upload(0, 4000, 512);
        o.grant(0, 0, 0);
        o.slice(0);
        o.op(CoordOp::Foreign(ForeignCall::Buffer));
        o.op(CoordOp::Foreign(ForeignCall::Grant));
        o.op(CoordOp::Foreign(ForeignCall::Frame));
        o.stage(0, 16, 48);
        o.op(CoordOp::Drop { buffer: 0 });
        o.op(CoordOp::Frame(FrameCall::Cancel));
        o.op(CoordOp::Maintain);
        o.op(CoordOp::Advance { n: 3 });
    }
    o.op(CoordOp::Check);
    o
}

/// Staging grants held while uploads pass them and fill the ring behind them (refused, under
/// `WaitForGpu`, once the held room is all that is left), while a check cannot submit what lies
/// behind them and frames end and begin; then committed out of order or abandoned, after which
/// the ring drains and uploads pass again.
fn held_grants(ring: u32) -> Ops {
    let mut o = Ops::default();
    o.create(ring * 2, false);
    o.create(ring, true);
    o.create(4096, false);
    for round in 0..4u32 {
        o.hold(0, round * 64, ring / 4);
        o.upload(0, ring + round, ring / 8);
        o.upload(2, 5, 100);
        o.hold(2, 1000 + round, ring / 8);
        o.upload(0, 0, ring / 4);
        o.upload(1, 16, ring / 4);
        o.grant(2, 200, ring / 8);
        o.upload(0, 64, ring / 4);
        // Uploads staged behind the held grants: refused, after the timeout.
        o.read_back(0, 0, ring / 2);
        o.op(CoordOp::Flush);
        o.op(CoordOp::Check);
        o.stage(2, 64, 128);
        o.op(CoordOp::Frame(FrameCall::End));
        o.op(CoordOp::Frame(FrameCall::Begin));
        // Larger than one ring upload: not made while a grant is held.
        o.upload(0, 0, ring);
        // The younger grant first; a new one; the oldest committed or abandoned.
        o.release(1, true);
        o.hold(1, 8, ring / 4);
        o.release(0, round % 2 == 0);
        o.op(CoordOp::Advance { n: 2 });
        o.upload(0, 32, ring / 4);
        o.release(0, round % 2 == 1);
        o.op(CoordOp::Frame(FrameCall::End));
        o.upload(0, 0, ring / 2);
        o.read_back(0, 16, ring);
        o.read_back(2, 0, 0);
        o.op(CoordOp::Check);
    }
    // Held at the end: abandoned before teardown.
    o.hold(2, 0, 64);
    o
}

/// Textures in RGBA8 and compressed (BC7, or ASTC 6x6 on the mobile preset) among buffer uploads
/// and read-backs: read back before any upload (refused), bands of rows uploaded into every level
/// and read back, re-uploaded after a read (which must still see the earlier bytes), with a grant
/// held across some of it, and images dropped with their uploads and read-backs in flight.
fn images(ring: u32) -> Ops {
    let mut o = Ops::default();
    o.create(ring, false);
    o.image(95, false);
    o.image(37, true);
    o.image(4, false);
    for round in 0..3u8 {
        o.read_image(2 + round, 0);
        for level in 0..7 {
            // Whole levels (a first row of 0 and up to 16 rows), then a band further down.
            o.upload_image(round, level, 15);
            o.upload_image(round + 1, level, 0x21 + level);
        }
        o.upload(0, 64, ring / 4);
        o.read_image(round, 0);
        o.read_image(round + 1, 2);
        o.read_back(0, 0, ring / 2);
        o.upload_image(round, 0, 0x3f);
        o.hold(0, 0, ring / 4);
        o.upload_image(round + 1, 1, 0x10);
        o.read_image(round, 1);
        o.release(0, round % 2 == 0);
        o.op(CoordOp::Advance { n: 1 });
        o.op(CoordOp::Check);
        o.image(20 + round * 30, round == 1);
        // Dropped with an upload and a read-back of it in flight.
        o.upload_image(round, 0, 15);
        o.read_image(round, 0);
        o.op(CoordOp::DropImage { image: round });
        o.op(CoordOp::Maintain);
    }
    o.op(CoordOp::Check);
    o
}

/// Render targets the application draws (`CoordOp::AppDraw`): read back before any draw
/// (refused), drawn and read back, drawn over uploads still in flight, uploaded into in part
/// after a draw (the rest of the drawing kept), drawn while a grant is held, and dropped right
/// after a draw.
fn drawn_images(ring: u32) -> Ops {
    let mut o = Ops::default();
    o.create(ring, false);
    o.image(63, false);
    o.image(30, true);
    for round in 0..3u8 {
        o.read_image(2 + round, 0);
        o.op(CoordOp::AppDraw { image: round });
        o.read_image(round, 0);
        o.read_image(round, 3);
        o.upload_image(round + 1, 0, 15);
        o.upload_image(round + 1, 1, 0x21);
        o.op(CoordOp::AppDraw { image: round + 1 });
        o.upload_image(round + 1, 0, 0x12);
        o.read_image(round + 1, 0);
        o.read_image(round + 1, 1);
        o.upload(0, 64, ring / 4);
        o.hold(0, 0, ring / 4);
        o.op(CoordOp::AppDraw { image: round });
        o.read_image(round, 2);
        o.release(0, round % 2 == 1);
        o.op(CoordOp::Advance { n: 2 });
        o.op(CoordOp::Check);
        o.image(10 + round * 40, round == 2);
        o.op(CoordOp::AppDraw { image: 2 + round });
        o.op(CoordOp::DropImage { image: 2 + round });
        o.op(CoordOp::Maintain);
    }
    o.op(CoordOp::Check);
    o
}

/// The seeds, by file name.
pub fn fuzz_seeds() -> Vec<(String, CoordinatorWorkload)> {
    use Policy::{DedicatedStaging, Fail, WaitForGpu};
    use Preset::{Discrete, Integrated, Lavapipe, Mobile, ResizableBar};
    let mut seeds = Vec::new();
    let mut add = |name: &str, w: CoordinatorWorkload| seeds.push((name.to_owned(), w));
    add(
        "defragment_discrete",
        workload(
            Discrete,
            3,
            WaitForGpu,
            (false, false, false),
            defragmentation(false),
        ),
    );
    add(
        "defragment_integrated",
        workload(
            Integrated,
            3,
            Fail,
            (true, true, false),
            defragmentation(true),
        ),
    );
    add(
        "defragment_two_types",
        workload(
            Discrete,
            3,
            WaitForGpu,
            (false, false, false),
            defragmentation_in_two_types(),
        ),
    );
    add(
        "defragment_images",
        workload(
            Discrete,
            3,
            WaitForGpu,
            (false, false, false),
            image_defragmentation(),
        ),
    );
    add(
        "aliased_images",
        workload(
            Discrete,
            3,
            WaitForGpu,
            (false, false, false),
            aliased_images(),
        ),
    );
    add(
        "transient_frames_mobile",
        workload(
            Mobile,
            2,
            WaitForGpu,
            (false, true, false),
            transient_frames(),
        ),
    );
    add(
        "transient_frames_discrete",
        workload(Discrete, 2, Fail, (false, false, false), transient_frames()),
    );
    add(
        "ring_pressure_fail",
        workload(
            Discrete,
            0,
            Fail,
            (false, false, false),
            ring_pressure(4096),
        ),
    );
    add(
        "ring_pressure_wait",
        workload(
            Mobile,
            1,
            WaitForGpu,
            (true, true, false),
            ring_pressure(8192),
        ),
    );
    add(
        "ring_pressure_dedicated",
        workload(
            ResizableBar,
            0,
            DedicatedStaging,
            (false, false, true),
            ring_pressure(4096),
        ),
    );
    add(
        "chunked_wait",
        workload(
            Discrete,
            0,
            WaitForGpu,
            (true, false, true),
            chunked_uploads(4096),
        ),
    );
    add(
        "chunked_fail",
        workload(
            Lavapipe,
            1,
            Fail,
            (false, true, false),
            chunked_uploads(8192),
        ),
    );
    add(
        "chunked_dedicated",
        workload(
            Integrated,
            0,
            DedicatedStaging,
            (false, false, false),
            chunked_uploads(4096),
        ),
    );
    add(
        "frames_double",
        workload(Discrete, 1, WaitForGpu, (false, true, false), frames()),
    );
    add(
        "frames_triple_fail",
        workload(ResizableBar, 0, Fail, (false, false, true), frames()),
    );
    add(
        "drops_and_foreign_fail",
        workload(
            Discrete,
            0,
            Fail,
            (false, false, false),
            drops_and_foreign(4096),
        ),
    );
    add(
        "drops_and_foreign_wait",
        workload(
            Integrated,
            2,
            WaitForGpu,
            (true, true, true),
            drops_and_foreign(16384),
        ),
    );
    add(
        "held_grants_wait",
        workload(
            Discrete,
            0,
            WaitForGpu,
            (false, false, false),
            held_grants(4096),
        ),
    );
    add(
        "held_grants_fail",
        workload(Mobile, 1, Fail, (true, true, false), held_grants(8192)),
    );
    add(
        "held_grants_dedicated",
        workload(
            ResizableBar,
            0,
            DedicatedStaging,
            (false, false, true),
            held_grants(4096),
        ),
    );
    add(
        "images_wait",
        workload(
            Discrete,
            2,
            WaitForGpu,
            (false, false, false),
            images(16384),
        ),
    );
    add(
        "images_fail",
        workload(Lavapipe, 0, Fail, (true, false, true), images(4096)),
    );
    add(
        "images_dedicated",
        workload(
            Mobile,
            1,
            DedicatedStaging,
            (false, true, false),
            images(8192),
        ),
    );
    add(
        "drawn_images_wait",
        workload(
            ResizableBar,
            1,
            WaitForGpu,
            (false, true, false),
            drawn_images(8192),
        ),
    );
    add(
        "device_faults_discrete",
        workload(
            Discrete,
            2,
            WaitForGpu,
            (false, false, false),
            device_faults(),
        ),
    );
    add(
        "device_faults_dedicated",
        workload(
            Mobile,
            1,
            DedicatedStaging,
            (false, true, true),
            device_faults(),
        ),
    );
    add(
        "drawn_images_fail",
        workload(Discrete, 0, Fail, (true, false, true), drawn_images(4096)),
    );
    seeds
}
