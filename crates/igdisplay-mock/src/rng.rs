//! The mock's one source of randomness, seeded, so the same seed and the same calls give the
//! same ids, tokens, codes, cursors and trace ids. (Written here rather than shared: the mock
//! shares no code with the client crates.)

/// SplitMix64: small, fast, and well distributed for ids and tokens (nothing here is a real
/// secret: the mock's tokens only have to be unique and unguessable by accident).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed` (mixed, so that seed 0 does not start at 0).
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (0 when `bound` is 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `len` characters from the base64url alphabet, one draw each: the world's values
    /// (shortcodes, codes, keys) are drawn as every earlier version drew them, so a seed still
    /// gives the same world.
    pub(crate) fn token(&mut self, len: usize) -> String {
        self.text(BASE64URL, len)
    }

    /// `len` alphanumeric characters, one draw each.
    pub(crate) fn alphanumeric(&mut self, len: usize) -> String {
        self.text(&BASE64URL[..62], len)
    }

    /// `len` characters drawn uniformly from `alphabet` (ASCII), one draw each.
    fn text(&mut self, alphabet: &[u8], len: usize) -> String {
        let bound = u64::try_from(alphabet.len()).unwrap_or(u64::MAX);
        let out = (0..len)
            .map(|_| alphabet.get(self.below(bound) as usize).copied().unwrap_or(b'A'))
            .collect();
        ascii(out)
    }

    /// Appends `len` base64url characters, ten from each draw (six bits apiece): the ids every
    /// answer carries (trace and request ids), drawn on the hot path.
    pub(crate) fn push_token(&mut self, out: &mut Vec<u8>, len: usize) {
        out.reserve(len);
        let mut bits = 0u64;
        for i in 0..len {
            if i % 10 == 0 {
                bits = self.next_u64();
            }
            out.push(BASE64URL[(bits & 63) as usize]);
            bits >>= 6;
        }
    }
}

/// The base64url alphabet; its first 62 letters are the alphanumeric ones.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Text drawn from an ASCII alphabet (anything else would come out lossy, not wrong).
pub(crate) fn ascii(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
