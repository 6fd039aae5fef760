use super::*;
use crate::hash::hash_bytes;

#[test]
fn untouched_bytes_read_as_zero_and_cost_nothing() {
    let bytes = SparseBytes::new(16 << 30);
    let mut out = [0xFFu8; 100];
    bytes.read((16 << 30) - 100, &mut out);
    assert!(out.iter().all(|&b| b == 0));
    assert_eq!(bytes.resident_bytes(), 0);
}

#[test]
fn writes_across_pages_read_back() {
    let mut bytes = SparseBytes::new(4 * PAGE);
    let data: Vec<u8> = (0..PAGE + 100).map(|i| (i % 251) as u8).collect();
    bytes.write(PAGE - 50, &data);
    assert_eq!(bytes.resident_bytes(), 3 * PAGE);
    let mut out = vec![0u8; data.len()];
    bytes.read(PAGE - 50, &mut out);
    assert_eq!(out, data);
    let mut around = [9u8; 4];
    bytes.read(PAGE - 52, &mut around);
    assert_eq!(around, [0, 0, data[0], data[1]]);
}

#[test]
fn hash_matches_the_contiguous_bytes() {
    let mut bytes = SparseBytes::new(3 * PAGE);
    bytes.write(PAGE + 7, b"sparse");
    let mut flat = vec![0u8; (3 * PAGE) as usize];
    flat[(PAGE + 7) as usize..(PAGE + 13) as usize].copy_from_slice(b"sparse");
    assert_eq!(bytes.hash(0, 3 * PAGE), hash_bytes(&flat));
    assert_eq!(
        bytes.hash(PAGE, 100),
        hash_bytes(&flat[PAGE as usize..(PAGE + 100) as usize])
    );
}
