use super::*;

#[test]
fn split_independent() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    let whole = hash_bytes(&data);
    for split in [0, 1, 3, 7, 8, 9, 31, 32, 33, 500, 999, 1000] {
        let mut h = RangeHasher::new();
        h.update(&data[..split]);
        h.update(&data[split..]);
        assert_eq!(h.finish(), whole, "split at {split}");
    }
    let mut bytewise = RangeHasher::new();
    for b in &data {
        bytewise.update(std::slice::from_ref(b));
    }
    assert_eq!(bytewise.finish(), whole);
}

#[test]
fn sensitive_to_content_and_length() {
    let a = [1u8; 64];
    let mut b = a;
    b[63] = 2;
    assert_ne!(hash_bytes(&a), hash_bytes(&b));
    assert_ne!(hash_bytes(&[0; 8]), hash_bytes(&[0; 9]));
    assert_ne!(hash_bytes(&[]), hash_bytes(&[0]));
}
