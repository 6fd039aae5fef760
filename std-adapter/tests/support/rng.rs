//! A small deterministic generator (SplitMix64) for the end-to-end tests: the same seed gives
//! the same sizes, offsets and bytes on every machine.

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `len` bytes of a pattern drawn from one number.
    #[allow(
        dead_code,
        reason = "not every test file that includes this module uses it"
    )]
    pub fn bytes(&mut self, len: u64) -> Vec<u8> {
        let seed = self.next();
        (0..len)
            .map(|k| (seed.wrapping_add(k.wrapping_mul(0x9E37)) >> 7) as u8)
            .collect()
    }
}
