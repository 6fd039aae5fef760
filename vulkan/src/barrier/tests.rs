use super::*;
use ash::vk::Handle;
use memkit_core::device::BufferCopy;

const TRANSFER: OwnershipTransfer = OwnershipTransfer {
    src_family: 1,
    dst_family: 0,
};

#[test]
fn release_and_acquire_name_the_same_range_and_families() {
    let buffer = vk::Buffer::from_raw(0x1234);
    let release = release_barrier(TRANSFER, buffer, 256, 1024);
    let acquire = acquire_barrier(TRANSFER, buffer, 256, 1024, vk::AccessFlags::SHADER_READ);
    for b in [&release, &acquire] {
        assert_eq!(b.buffer, buffer);
        assert_eq!((b.offset, b.size), (256, 1024));
        assert_eq!(b.src_queue_family_index, 1);
        assert_eq!(b.dst_queue_family_index, 0);
    }
    assert_eq!(release.src_access_mask, vk::AccessFlags::TRANSFER_WRITE);
    assert_eq!(release.dst_access_mask, vk::AccessFlags::empty());
    assert_eq!(acquire.src_access_mask, vk::AccessFlags::empty());
    assert_eq!(acquire.dst_access_mask, vk::AccessFlags::SHADER_READ);
    assert!(TRANSFER.is_transfer());
    assert!(
        !OwnershipTransfer {
            src_family: 2,
            dst_family: 2
        }
        .is_transfer()
    );
}

#[test]
fn per_command_barriers_cover_the_destination_span() {
    let a = vk::Buffer::from_raw(1);
    let b = vk::Buffer::from_raw(2);
    let c = vk::Buffer::from_raw(3);
    let regions = [
        BufferCopy {
            src_offset: 0,
            dst_offset: 4096,
            size: 16,
        },
        BufferCopy {
            src_offset: 16,
            dst_offset: 64,
            size: 32,
        },
    ];
    let commands = [
        CopyCommand {
            src: a,
            dst: b,
            regions: &regions,
        },
        // No regions: no barrier.
        CopyCommand {
            src: a,
            dst: c,
            regions: &[],
        },
    ];
    let mut releases = Vec::new();
    let mut acquires = Vec::new();
    release_barriers_for(TRANSFER, &commands, &mut releases);
    acquire_barriers_for(
        TRANSFER,
        &commands,
        vk::AccessFlags::VERTEX_ATTRIBUTE_READ,
        &mut acquires,
    );
    assert_eq!(releases.len(), 1);
    assert_eq!(acquires.len(), 1);
    assert_eq!(releases[0].buffer, b);
    assert_eq!((releases[0].offset, releases[0].size), (64, 4096 + 16 - 64));
    assert_eq!(
        (acquires[0].buffer, acquires[0].offset, acquires[0].size),
        (releases[0].buffer, releases[0].offset, releases[0].size)
    );
}
