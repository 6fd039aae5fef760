//! The coordinator against a model of the destination bytes, on the simulated device: buffers
//! created (device-only or written directly), uploads (`upload_to`, `upload_slice`, staging
//! grants, frames), drops, flushes, maintenance and a GPU timeline advanced by hand, over a small
//! staging ring so that it wraps, fills and applies each back-pressure policy. After every
//! flush-and-complete, each live buffer's bytes equal the model; every bad call gets the typed
//! error the model expects; the device records no misuse and nothing is left after teardown.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use memkit_dummy::{DummyDevice, Preset};
use memkit_std::{
    BackPressure, Buffer, BufferingMode, Coordinator, CoordinatorConfig, Error, MemoryUsage,
};

#[derive(Arbitrary, Debug)]
enum Op {
    /// A buffer of `size + 1` bytes; `host_access` makes its uploads direct writes where the
    /// memory is host-visible.
    Create {
        size: u16,
        host_access: bool,
    },
    UploadTo {
        buffer: u8,
        offset: u16,
        len: u16,
        fill: u8,
    },
    UploadSlice {
        len: u16,
        fill: u8,
    },
    /// `acquire_staging` + `transfer_and_release`.
    Grant {
        buffer: u8,
        offset: u16,
        len: u16,
        fill: u8,
    },
    /// A frame staging arena data into a buffer.
    Frame {
        buffer: u8,
        offset: u16,
        len: u8,
        fill: u8,
    },
    Drop {
        buffer: u8,
    },
    Flush,
    Maintain,
    /// Executes up to `n` pending submissions.
    Advance {
        n: u8,
    },
    /// Flush, complete everything, compare every buffer with the model.
    Check,
}

#[derive(Arbitrary, Debug)]
struct Input {
    preset: u8,
    /// Ring size: 4 KiB << (ring % 6).
    ring: u8,
    /// 0: wait for the GPU, 1: fail, 2: dedicated staging.
    policy: u8,
    /// Whether the ring-upload limit asked for is the whole ring (clamped to half; else a quarter).
    whole_ring: bool,
    double_buffering: bool,
    /// Whether uploads of an eighth of the ring and more are submitted as soon as staged.
    eager_submit: bool,
    ops: Vec<Op>,
}

/// A live buffer and its model: `known[i]` is false where a failed chunked upload may or may not
/// have landed.
struct Model {
    buffer: Buffer<DummyDevice>,
    bytes: Vec<u8>,
    known: Vec<bool>,
}

fn data(len: usize, fill: u8, op: usize) -> Vec<u8> {
    (0..len)
        .map(|k| fill.wrapping_add((k as u8).wrapping_mul(31)) ^ (op as u8))
        .collect()
}

/// The error the coordinator must return for an upload of `len` at `offset` into `size` bytes,
/// if the call is bad.
fn expected_error(size: u64, offset: u64, len: u64) -> Option<Error> {
    if len == 0 {
        Some(Error::ZeroSize)
    } else if offset + len > size {
        Some(Error::OutOfBounds {
            offset,
            size: len,
            buffer_size: size,
        })
    } else {
        None
    }
}

/// Applies an upload's outcome to the model; panics on an error the model does not allow.
fn apply(
    model: &mut Model,
    offset: u64,
    bytes: &[u8],
    result: Result<(), Error>,
    chunked: bool,
    policy: BackPressure,
) {
    let expected = expected_error(model.bytes.len() as u64, offset, bytes.len() as u64);
    let range = offset as usize..offset as usize + bytes.len();
    match (result, expected) {
        (Ok(()), None) => {
            model.bytes[range.clone()].copy_from_slice(bytes);
            model.known[range].fill(true);
        }
        (Err(e), Some(want)) => assert_eq!(e, want, "bad call, wrong error"),
        (Err(Error::StagingFull { .. }), None) if policy == BackPressure::Fail => {
            if chunked {
                // Chunks staged before the one that failed stay staged.
                model.known[range].fill(false);
            }
        }
        (result, expected) => panic!("upload: got {result:?}, model expects {expected:?}"),
    }
}

fn check(c: &Coordinator<DummyDevice>, models: &HashMap<u64, Model>) {
    c.flush_transfers()
        .and_then(|t| t.wait())
        .expect("flush and wait");
    c.device().complete_all();
    c.maintain().expect("maintain");
    for (id, m) in models {
        let bytes = c
            .device()
            .read_buffer(m.buffer.raw(), 0, m.bytes.len())
            .expect("live buffer reads back");
        for (i, ((got, want), known)) in bytes.iter().zip(&m.bytes).zip(&m.known).enumerate() {
            assert!(
                !known || got == want,
                "buffer {id} byte {i}: device {got:#04x}, model {want:#04x}"
            );
        }
    }
    let misuse = c.device().misuses();
    assert!(misuse.is_empty(), "device misuse: {misuse:?}");
}

fuzz_target!(|input: Input| {
    let preset = Preset::ALL[input.preset as usize % Preset::ALL.len()];
    let device = DummyDevice::with_preset(preset);
    let ring = 4096u64 << (input.ring % 6);
    let policy = match input.policy % 3 {
        0 => BackPressure::WaitForGpu,
        1 => BackPressure::Fail,
        _ => BackPressure::DedicatedStaging,
    };
    let config = CoordinatorConfig {
        buffering: if input.double_buffering {
            BufferingMode::Double
        } else {
            BufferingMode::Triple
        },
        staging_ring_size: ring,
        // The whole ring: the coordinator clamps the limit to half of it (with a larger limit an
        // upload that size once spun forever in the grant loop under `WaitForGpu`, found by this
        // target), so this also checks the clamp.
        max_ring_upload: if input.whole_ring { ring } else { ring / 4 },
        frame_arena_size: 4096,
        back_pressure: policy,
        max_blocks: 16,
        max_dedicated: 256,
        max_pending_uploads: 64,
        eager_submit_bytes: if input.eager_submit {
            ring / 8
        } else {
            u64::MAX
        },
        ..CoordinatorConfig::default()
    };
    // What the coordinator uses: `CoordinatorConfig::max_ring_upload` is clamped to half the ring.
    let max_ring_upload = config.max_ring_upload.min(ring / 2);
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    let mut models: HashMap<u64, Model> = HashMap::new();
    // Buffers by creation order, to pick them with a byte.
    let mut order: Vec<u64> = Vec::new();
    let pick = |order: &Vec<u64>, b: u8| -> Option<u64> {
        (!order.is_empty()).then(|| order[b as usize % order.len()])
    };
    let chunked =
        |len: usize| policy != BackPressure::DedicatedStaging && len as u64 > max_ring_upload;

    for (i, op) in input.ops.iter().enumerate().take(256) {
        match *op {
            Op::Create { size, host_access } => {
                let size = u64::from(size) + 1;
                let usage = if host_access {
                    MemoryUsage::HOST_ACCESS
                } else {
                    MemoryUsage::FAST_DEVICE_ACCESS
                };
                let buffer = c.create_buffer(size, usage).expect("create_buffer");
                let id = buffer.id();
                // A fresh buffer's bytes are unknown until written.
                models.insert(
                    id,
                    Model {
                        buffer,
                        bytes: vec![0; size as usize],
                        known: vec![false; size as usize],
                    },
                );
                order.push(id);
            }
            Op::UploadTo {
                buffer,
                offset,
                len,
                fill,
            } => {
                let Some(id) = pick(&order, buffer) else {
                    continue;
                };
                let m = models.get_mut(&id).expect("live");
                let bytes = data(len as usize, fill, i);
                let result = c.upload_to(&m.buffer, u64::from(offset), &bytes).map(drop);
                apply(
                    m,
                    u64::from(offset),
                    &bytes,
                    result,
                    chunked(bytes.len()),
                    policy,
                );
            }
            Op::UploadSlice { len, fill } => {
                let bytes = data(len as usize, fill, i);
                match c.upload_slice(&bytes) {
                    Ok((buffer, _ticket)) => {
                        let id = buffer.id();
                        models.insert(
                            id,
                            Model {
                                buffer,
                                bytes: bytes.clone(),
                                known: vec![true; bytes.len()],
                            },
                        );
                        order.push(id);
                    }
                    Err(Error::ZeroSize) => assert!(bytes.is_empty()),
                    // Under `Fail` a full ring refuses it (chunks staged before the refusal go
                    // to the buffer just dropped).
                    Err(Error::StagingFull { .. }) if policy == BackPressure::Fail => {}
                    Err(e) => panic!("upload_slice of {} bytes: {e:?}", bytes.len()),
                }
            }
            Op::Grant {
                buffer,
                offset,
                len,
                fill,
            } => {
                let Some(id) = pick(&order, buffer) else {
                    continue;
                };
                let m = models.get_mut(&id).expect("live");
                let bytes = data(len as usize, fill, i);
                let result = match c.acquire_staging(bytes.len()) {
                    Ok(mut grant) => {
                        grant.bytes_mut().copy_from_slice(&bytes);
                        c.transfer_and_release(grant, &m.buffer, u64::from(offset))
                            .map(drop)
                    }
                    Err(e) => Err(e),
                };
                match result {
                    // A grant larger than one ring upload is refused, whatever the policy.
                    Err(Error::StagingFull { wait_for: None })
                        if bytes.len() as u64 > max_ring_upload => {}
                    Err(Error::StagingFull { .. }) if policy != BackPressure::WaitForGpu => {}
                    result => apply(m, u64::from(offset), &bytes, result, false, policy),
                }
            }
            Op::Frame {
                buffer,
                offset,
                len,
                fill,
            } => {
                let Some(id) = pick(&order, buffer) else {
                    continue;
                };
                let m = models.get_mut(&id).expect("live");
                let frame = c.begin_frame().expect("begin_frame");
                let bytes = data(len as usize, fill, i);
                let staged = frame.alloc_slice(&bytes).expect("arena");
                let result = frame
                    .stage_slice_for_upload(staged, &m.buffer, u64::from(offset))
                    .map(drop);
                c.end_frame(frame).expect("end_frame");
                apply(
                    m,
                    u64::from(offset),
                    &bytes,
                    result,
                    chunked(bytes.len()),
                    policy,
                );
            }
            Op::Drop { buffer } => {
                let Some(id) = pick(&order, buffer) else {
                    continue;
                };
                order.retain(|&b| b != id);
                drop(models.remove(&id));
            }
            Op::Flush => {
                c.flush_transfers().expect("flush");
            }
            Op::Maintain => c.maintain().expect("maintain"),
            Op::Advance { n } => {
                for _ in 0..n % 8 {
                    device.complete_next();
                }
            }
            Op::Check => check(&c, &models),
        }
    }
    check(&c, &models);
    drop(models);
    drop(c);
    let leaks = device.leak_report();
    assert!(leaks.is_empty(), "left after teardown: {leaks}");
    assert!(device.misuses().is_empty(), "{:?}", device.misuses());
});
