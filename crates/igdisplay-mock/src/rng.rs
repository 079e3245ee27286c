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

    /// `len` characters from the base64url alphabet.
    pub(crate) fn token(&mut self, len: usize) -> String {
        let mut out = Vec::with_capacity(len);
        self.push_token(&mut out, len);
        ascii(out)
    }

    /// Appends `len` characters from the base64url alphabet.
    pub(crate) fn push_token(&mut self, out: &mut Vec<u8>, len: usize) {
        self.push_text(out, BASE64URL, len);
    }

    /// `len` alphanumeric characters.
    pub(crate) fn alphanumeric(&mut self, len: usize) -> String {
        let mut out = Vec::with_capacity(len);
        self.push_text(&mut out, &BASE64URL[..62], len);
        ascii(out)
    }

    /// Appends `len` characters drawn uniformly from `alphabet` (ASCII). A 64-letter alphabet
    /// takes ten letters from each draw, six bits apiece (the trace ids of every answer use it).
    fn push_text(&mut self, out: &mut Vec<u8>, alphabet: &[u8], len: usize) {
        let letter = |pick: u64| alphabet.get(pick as usize).copied().unwrap_or(b'A');
        out.reserve(len);
        if alphabet.len() == 64 {
            let mut bits = 0u64;
            for i in 0..len {
                if i % 10 == 0 {
                    bits = self.next_u64();
                }
                out.push(letter(bits & 63));
                bits >>= 6;
            }
        } else {
            let bound = u64::try_from(alphabet.len()).unwrap_or(u64::MAX);
            for _ in 0..len {
                out.push(letter(self.below(bound)));
            }
        }
    }
}

/// The base64url alphabet; its first 62 letters are the alphanumeric ones.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Text drawn from an ASCII alphabet (anything else would come out lossy, not wrong).
pub(crate) fn ascii(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
