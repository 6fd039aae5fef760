//! `Coordinator::defragment_with_images` on the simulated device: textures move out of sparsely
//! used blocks with every texel, in the submission of the buffers moving with them; the emptied
//! blocks go back once the copies completed; images the coordinator cannot copy, or whose
//! contents it does not know, stay and keep their blocks; a refused call moves nothing and leaks
//! nothing.

use memkit_core::device::{DeviceError, ImageCopy, ImageDesc, ImageFormat, ImageUsage};
use memkit_dummy::DummyDevice;
use memkit_std::{
    Buffer, Coordinator, CoordinatorConfig, DefragmentationLimits, Error, Image, MemoryUsage,
    PoolConfig,
};

const MIB: u64 = 1 << 20;

/// A 512 x 512 RGBA8 texture: 1 MiB, four to a 4 MiB block.
fn desc() -> ImageDesc {
    ImageDesc::new_2d(
        ImageFormat::Rgba8Unorm,
        512,
        512,
        ImageUsage::SAMPLED | ImageUsage::TRANSFER_SRC | ImageUsage::TRANSFER_DST,
    )
}

fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(29)
                .wrapping_add(seed ^ (i >> 12) as u8)
        })
        .collect()
}

/// A coordinator whose blocks are 4 MiB.
fn coordinator() -> (Coordinator<DummyDevice>, DummyDevice) {
    let device = DummyDevice::discrete();
    let config = CoordinatorConfig {
        pools: PoolConfig {
            first_block_size: 4 * MIB,
            preferred_block_size: Some(4 * MIB),
            ..PoolConfig::default()
        },
        ..CoordinatorConfig::default()
    };
    let c = Coordinator::new(device.clone(), config).expect("coordinator");
    (c, device)
}

/// Blocks of four 1 MiB textures, each filled with its own pattern (seed = its number), block
/// `i` then keeping its first `counts[i]` (the others dropped and destroyed). Returns
/// `(seed, image)` per block.
fn blocks_holding(
    c: &Coordinator<DummyDevice>,
    counts: &[usize],
) -> Vec<Vec<(u8, Image<DummyDevice>)>> {
    let mut seed = 0u8;
    let mut blocks = Vec::new();
    for &count in counts {
        let mut block = Vec::new();
        for _ in 0..4 {
            let (image, _) = c
                .create_image_with_data(
                    &desc(),
                    MemoryUsage::FAST_DEVICE_ACCESS,
                    &pattern(MIB, seed),
                )
                .expect("texture");
            block.push((seed, image));
            seed += 1;
        }
        let memory = block[0].1.memory().0;
        assert!(
            block.iter().all(|(_, i)| i.memory().0 == memory),
            "four 1 MiB textures share a 4 MiB block"
        );
        block.truncate(count);
        blocks.push(block);
    }
    c.flush_transfers().expect("flush").wait().expect("uploads");
    c.maintain().expect("maintain");
    blocks
}

fn device_local_blocks(c: &Coordinator<DummyDevice>) -> u32 {
    c.stats().heaps[0].blocks
}

/// Reads every texture back through the GPU and checks it holds its pattern.
fn assert_texels(c: &Coordinator<DummyDevice>, images: &[&(u8, Image<DummyDevice>)]) {
    let reads: Vec<_> = images
        .iter()
        .map(|(seed, image)| {
            let region = [ImageCopy::whole_level(image.desc(), 0, 0)];
            (*seed, c.read_back_image(image, &region).expect("read back"))
        })
        .collect();
    for (seed, read) in reads {
        assert!(
            read.wait().expect("read") == pattern(MIB, seed),
            "texture {seed} lost its texels"
        );
    }
}

#[test]
fn textures_move_with_their_texels_and_their_blocks_go_back() {
    let (c, device) = coordinator();
    // Block 0's and 1's three textures fit the room the other blocks have left.
    let blocks = blocks_holding(&c, &[1, 2, 3, 3, 3]);
    assert_eq!(device_local_blocks(&c), 5);
    let mut images: Vec<_> = blocks.into_iter().flatten().collect();
    let before: Vec<_> = images.iter().map(|(_, i)| (i.raw(), i.memory())).collect();
    let ids: Vec<u64> = images.iter().map(|(_, i)| i.id()).collect();
    let created = c.stats().images_created;

    let outcome = c
        .defragment_with_images(
            [],
            images.iter_mut().map(|(_, i)| i),
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");

    assert_eq!(outcome.moved_images, [0, 1, 2]);
    assert!(outcome.moved.is_empty());
    assert_eq!(outcome.bytes_moved, 3 * MIB);
    assert_eq!(outcome.unmovable, 0);
    assert_eq!(
        (outcome.plan.blocks, outcome.plan.block_bytes),
        (2, 8 * MIB)
    );
    for (i, (_, image)) in images.iter().enumerate() {
        let moved = i < 3;
        assert_eq!(image.raw() != before[i].0, moved, "image {i}'s raw image");
        assert_eq!(image.memory() != before[i].1, moved, "image {i}'s memory");
        assert_eq!(image.id(), ids[i], "a handle keeps its id");
        assert!(image.is_written(), "a moved image holds its texels");
        if moved {
            assert!(
                before[3..].iter().any(|(_, m)| m.0 == image.memory().0),
                "image {i} moved into a block that stays"
            );
        }
    }
    // The old images and their blocks stay until the copies completed.
    let live = device.live_buffers();
    assert!(
        before[..3]
            .iter()
            .all(|(raw, _)| live.contains(&raw.resource()))
    );
    assert_eq!(device_local_blocks(&c), 5);
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    let live = device.live_buffers();
    assert!(
        before[..3]
            .iter()
            .all(|(raw, _)| !live.contains(&raw.resource())),
        "the old images are destroyed once the copies completed"
    );
    assert_eq!(device_local_blocks(&c), 3, "the emptied blocks went back");
    let stats = c.stats();
    assert_eq!(stats.images_moved, 3);
    assert_eq!(stats.images_created, created + 3);
    assert_eq!(stats.bytes_moved, 3 * MIB);
    assert_eq!(stats.blocks_released_by_defragmentation, 2);
    assert_texels(&c, &images.iter().collect::<Vec<_>>());
    // An upload into part of a moved texture keeps the rest: the coordinator knows it holds
    // texels, in the layout after upload.
    let row = ImageCopy {
        extent: [512, 1, 1],
        ..ImageCopy::whole_level(&desc(), 0, 0)
    };
    c.upload_image(&images[0].1, &[row], &pattern(2048, 99))
        .expect("upload")
        .wait()
        .expect("upload");
    let region = [ImageCopy::whole_level(&desc(), 0, 0)];
    let back = c
        .read_back_image(&images[0].1, &region)
        .expect("read back")
        .wait()
        .expect("read");
    assert_eq!(back[..2048], pattern(2048, 99)[..]);
    assert_eq!(back[2048..], pattern(MIB, images[0].0)[2048..]);
    device.assert_no_misuse();
    drop(images);
    let stats = c.shutdown();
    assert_eq!(stats.leaked_images, 0);
    assert!(
        device.leak_report().memory.is_empty(),
        "{:?}",
        device.leak_report()
    );
}

#[test]
fn buffers_and_textures_given_together_move_in_one_submission() {
    let (c, device) = coordinator();
    // Buffers and images keep to blocks of their own kind: a sparse block of each.
    let mut textures = blocks_holding(&c, &[1, 3]);
    let mut buffers = Vec::new();
    for seed in 0..4u8 {
        let buffer: Buffer<DummyDevice> = c
            .create_buffer(MIB, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("buffer");
        c.upload_to(&buffer, 0, &pattern(MIB, 50 + seed))
            .expect("upload");
        buffers.push((50 + seed, buffer));
    }
    for _ in 0..4 {
        let buffer = c
            .create_buffer(MIB, MemoryUsage::FAST_DEVICE_ACCESS)
            .expect("buffer");
        buffers.push((0, buffer));
    }
    // Block of buffers 0..4 keeps one, the next keeps three.
    buffers.drain(1..4);
    buffers.truncate(4);
    c.flush_transfers().expect("flush").wait().expect("uploads");
    c.maintain().expect("maintain");
    assert_eq!(device_local_blocks(&c), 4);
    assert_ne!(buffers[0].1.memory().0, textures[0][0].1.memory().0);

    let submissions = c.stats().submissions;
    let outcome = c
        .defragment_with_images(
            buffers.iter_mut().map(|(_, b)| b),
            textures.iter_mut().flatten().map(|(_, i)| i),
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");
    // The pass runs in one memory type, and both kinds live in it.
    assert_eq!(
        (outcome.moved.as_slice(), outcome.moved_images.as_slice()),
        (&[0][..], &[0][..])
    );
    assert_eq!(outcome.bytes_moved, 2 * MIB);
    assert_eq!(c.stats().submissions, submissions + 1, "one submission");
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert_eq!(device_local_blocks(&c), 2);
    let back = c
        .read_back(&buffers[0].1, 0, MIB)
        .expect("read")
        .wait()
        .expect("read");
    assert!(back == pattern(MIB, 50), "the buffer lost its bytes");
    assert_texels(&c, &textures.iter().flatten().collect::<Vec<_>>());
    device.assert_no_misuse();
}

#[test]
fn images_it_cannot_copy_or_whose_contents_it_does_not_know_stay_and_keep_their_blocks() {
    let (c, device) = coordinator();
    // Block A: a texture never written (its layout is undefined), one without TRANSFER_SRC,
    // and two dropped below; block B: two textures.
    let mut unwritten = c
        .create_image(&desc(), MemoryUsage::FAST_DEVICE_ACCESS)
        .expect("image");
    let upload_only = ImageDesc {
        usage: ImageUsage::SAMPLED | ImageUsage::TRANSFER_DST,
        ..desc()
    };
    let (mut no_source, _) = c
        .create_image_with_data(
            &upload_only,
            MemoryUsage::FAST_DEVICE_ACCESS,
            &pattern(MIB, 7),
        )
        .expect("texture");
    for seed in 0..2 {
        // Fill block A, then give the room back.
        let _dropped = c
            .create_image_with_data(
                &desc(),
                MemoryUsage::FAST_DEVICE_ACCESS,
                &pattern(MIB, seed),
            )
            .expect("texture");
    }
    let mut others: Vec<_> = blocks_holding(&c, &[2]).into_iter().flatten().collect();
    assert_eq!(device_local_blocks(&c), 2);
    let block_a = unwritten.memory().0;
    assert_eq!(no_source.memory().0, block_a);
    assert!(others.iter().all(|(_, i)| i.memory().0 != block_a));
    let raws = (unwritten.raw(), no_source.raw());

    let outcome = c
        .defragment_with_images(
            [],
            [&mut unwritten, &mut no_source]
                .into_iter()
                .chain(others.iter_mut().map(|(_, i)| i)),
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");
    // Block A is not chosen: block B is emptied into its room instead.
    assert_eq!(outcome.unmovable, 2);
    assert_eq!(outcome.moved_images, [2, 3]);
    assert_eq!((unwritten.raw(), no_source.raw()), raws);
    assert!(others.iter().all(|(_, i)| i.memory().0 == block_a));
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert_eq!(device_local_blocks(&c), 1);
    assert_texels(&c, &others.iter().collect::<Vec<_>>());

    // Once the application wrote the first and said so, only the second cannot move.
    device
        .application_writes_image(unwritten.raw(), 0, 0, &pattern(MIB, 8))
        .expect("write");
    // SAFETY: the simulated application's write above completed and left the image in its
    // layout after upload.
    unsafe { unwritten.mark_written() };
    let outcome = c
        .defragment_with_images(
            [],
            [&mut unwritten, &mut no_source],
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");
    assert_eq!(outcome.unmovable, 1);
    assert!(outcome.moved_images.is_empty());
    device.assert_no_misuse();
    // Foreign images are refused before anything moves.
    let (other, _) = coordinator();
    let (mut foreign, _) = other
        .create_image_with_data(&desc(), MemoryUsage::FAST_DEVICE_ACCESS, &pattern(MIB, 1))
        .expect("texture");
    let refused = c.defragment_with_images(
        [],
        [&mut unwritten, &mut foreign],
        &DefragmentationLimits::UNLIMITED,
    );
    assert_eq!(refused.err(), Some(Error::ForeignImage));
}

#[test]
fn a_refused_submission_or_image_creation_moves_nothing_and_leaks_nothing() {
    let (c, device) = coordinator();
    let mut blocks = blocks_holding(&c, &[1, 2, 3, 3, 3]);
    let raws: Vec<_> = blocks.iter().flatten().map(|(_, i)| i.raw()).collect();
    let live_resources = device.live_buffers().len();
    let sub_allocations = c.stats().heaps[0].sub_allocations;
    let unchanged = |blocks: &Vec<Vec<(u8, Image<DummyDevice>)>>| {
        let now: Vec<_> = blocks.iter().flatten().map(|(_, i)| i.raw()).collect();
        assert_eq!(now, raws, "nothing moved");
        assert_eq!(
            device.live_buffers().len(),
            live_resources,
            "no new image is left"
        );
        assert_eq!(
            c.stats().heaps[0].sub_allocations,
            sub_allocations,
            "no new place is left"
        );
    };

    // The second of three new images cannot be made.
    device.fail_buffer_creation_call(
        device.counters().buffer_creation_calls + 2,
        DeviceError::OutOfDeviceMemory,
    );
    let refused = c.defragment_with_images(
        [],
        blocks.iter_mut().flatten().map(|(_, i)| i),
        &DefragmentationLimits::UNLIMITED,
    );
    assert!(matches!(refused, Err(Error::Device(_))), "{refused:?}");
    unchanged(&blocks);

    // The submission is refused.
    device.fail_submit_call(
        device.counters().submit_calls + 1,
        DeviceError::OutOfDeviceMemory,
    );
    let refused = c.defragment_with_images(
        [],
        blocks.iter_mut().flatten().map(|(_, i)| i),
        &DefragmentationLimits::UNLIMITED,
    );
    assert!(matches!(refused, Err(Error::Device(_))), "{refused:?}");
    unchanged(&blocks);

    // Each ended its pass: the next one moves all three.
    let outcome = c
        .defragment_with_images(
            [],
            blocks.iter_mut().flatten().map(|(_, i)| i),
            &DefragmentationLimits::UNLIMITED,
        )
        .expect("defragment");
    assert_eq!(outcome.moved_images, [0, 1, 2]);
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    assert_eq!(device_local_blocks(&c), 3);
    assert_texels(&c, &blocks.iter().flatten().collect::<Vec<_>>());
    device.assert_no_misuse();
    drop(blocks);
    assert_eq!(c.shutdown().leaked_images, 0);
    assert!(
        device.leak_report().memory.is_empty(),
        "{:?}",
        device.leak_report()
    );
}

#[test]
fn an_image_dropped_right_after_it_moved_is_destroyed_after_its_copy() {
    let (c, device) = coordinator();
    let mut blocks = blocks_holding(&c, &[1, 3]);
    let (_, mut lonely) = blocks[0].pop().expect("image");
    let old = lonely.raw();
    let outcome = c
        .defragment_with_images([], [&mut lonely], &DefragmentationLimits::UNLIMITED)
        .expect("defragment");
    let new = lonely.raw();
    drop(lonely);
    c.maintain().expect("maintain");
    let live = device.live_buffers();
    assert!(live.contains(&old.resource()) && live.contains(&new.resource()));
    outcome.ticket.wait().expect("copies");
    c.maintain().expect("maintain");
    let live = device.live_buffers();
    assert!(!live.contains(&old.resource()) && !live.contains(&new.resource()));
    assert_eq!(device_local_blocks(&c), 1);
    device.assert_no_misuse();
    drop(blocks);
    assert_eq!(c.shutdown().leaked_images, 0);
}
