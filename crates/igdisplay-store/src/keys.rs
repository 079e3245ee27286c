//! Encryption at rest: a [`KeyRing`] of 256-bit keys, each with an id, sealing tokens with
//! XChaCha20-Poly1305 (RustCrypto). The account id is the associated data, so a sealed token
//! copied to another account's row does not open. The newest key seals; any key of the ring
//! opens what it sealed, so keys can be rotated while old rows are re-sealed.
//!
//! A sealed token is `1 | id length | id | 24-byte nonce | ciphertext and tag`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::collections::BTreeMap;
use std::fmt;

/// The format byte of a sealed token.
const FORMAT: u8 = 1;
/// XChaCha20's nonce: long enough to draw at random for every seal.
const NONCE_LEN: usize = 24;
/// Prefixed to the account id in the associated data.
const AAD_PREFIX: &[u8] = b"igdisplay-store/token/v1:";

/// What went wrong with a key or a sealed token. Never holds key material or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key id must be 1 to 64 characters of `A-Z a-z 0-9 _ -`.
    #[error("`{0}` is not a valid key id (1 to 64 characters of A-Z, a-z, 0-9, _ and -)")]
    InvalidId(String),
    /// A key must be exactly 32 bytes.
    #[error("a key must be 32 bytes, not {0}")]
    InvalidLength(usize),
    /// A row was sealed with a key that is not in the ring.
    #[error("the token was sealed with key `{key_id}`, which is not in the key ring")]
    MissingKey {
        /// The key it names.
        key_id: String,
    },
    /// The key of that id did not open it: another key under the same id, a row moved to
    /// another account, or changed bytes.
    #[error(
        "the token sealed with key `{key_id}` does not open: a wrong key, another account's row, or altered data"
    )]
    Open {
        /// The key it names.
        key_id: String,
    },
    /// Not a sealed token at all.
    #[error("the stored token is not in the sealed format")]
    Malformed,
    /// The token is too long for the cipher to seal (gigabytes; no token is).
    #[error("the token is too long to seal")]
    TooLong,
    /// The operating system gave no random bytes for a nonce or a key.
    #[error("no random bytes could be drawn for encryption")]
    Random,
    /// A key list ([`KeyRing::parse`]) is not `ID:BASE64` entries separated by commas. Says
    /// which entry, never what it holds.
    #[error("key {entry} of the list is not ID:BASE64 (a key id, a colon and 32 bytes in base64)")]
    InvalidSpec {
        /// Which entry, from 1.
        entry: usize,
    },
    /// Two keys of a list share an id: one would shadow the other, and the tokens sealed
    /// under it would not open.
    #[error("the key id `{key_id}` is in the list twice: give every key its own id")]
    DuplicateId {
        /// The id.
        key_id: String,
    },
}

/// One 256-bit key and its id. `Debug` shows the id only.
#[derive(Clone)]
pub struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    /// The key `bytes` (32 of them) under `id`.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidId`] or [`KeyError::InvalidLength`].
    pub fn new(id: impl Into<String>, bytes: &[u8]) -> Result<Self, KeyError> {
        let id = id.into();
        let valid_id = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_id {
            return Err(KeyError::InvalidId(id));
        }
        let cipher =
            XChaCha20Poly1305::new_from_slice(bytes).map_err(|_| KeyError::InvalidLength(bytes.len()))?;
        Ok(Self { id, cipher })
    }

    /// A new random key under `id`, from the operating system's generator.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidId`] or [`KeyError::Random`].
    pub fn generate(id: impl Into<String>) -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| KeyError::Random)?;
        Self::new(id, &bytes)
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The keys a store seals and opens tokens with: the current one seals, every one opens.
///
/// ```
/// use igdisplay_store::{Key, KeyRing};
///
/// let old = Key::new("2026-01", &[7u8; 32])?;
/// let ring = KeyRing::new(Key::generate("2026-06")?).with_previous(old);
/// assert_eq!(ring.current_id(), "2026-06");
/// assert_eq!(ring.ids(), ["2026-01", "2026-06"]);
/// # Ok::<(), igdisplay_store::KeyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeyRing {
    current: String,
    keys: BTreeMap<String, Key>,
}

impl KeyRing {
    /// A ring whose `current` key seals every new token.
    pub fn new(current: Key) -> Self {
        let id = current.id.clone();
        let mut keys = BTreeMap::new();
        keys.insert(id.clone(), current);
        Self { current: id, keys }
    }

    /// Adds a key that only opens (a previous current key, during a rotation). A key with the
    /// current key's id is ignored.
    #[must_use]
    pub fn with_previous(mut self, key: Key) -> Self {
        if key.id != self.current {
            self.keys.insert(key.id.clone(), key);
        }
        self
    }

    /// Reads a key list: `ID:BASE64` entries separated by commas (standard or URL-safe
    /// base64, padded or not), the first the current key, the others previous ones: the form
    /// of `IGDISPLAY_STORE_KEYS`. [`KeyRing::generate_spec`] makes an entry.
    ///
    /// ```
    /// use igdisplay_store::{KeyError, KeyRing};
    ///
    /// let new = KeyRing::generate_spec("2026-12")?;
    /// let ring = KeyRing::parse(&format!("{new},2026-06:{}", "A".repeat(43)))?;
    /// assert_eq!(ring.current_id(), "2026-12");
    /// assert_eq!(ring.ids(), ["2026-06", "2026-12"]);
    /// assert_eq!(KeyRing::parse("2026-12:c2hvcnQ").unwrap_err(), KeyError::InvalidSpec { entry: 1 });
    /// let twice = format!("{new},2026-12:{}", "A".repeat(43));
    /// assert_eq!(KeyRing::parse(&twice).unwrap_err(), KeyError::DuplicateId { key_id: "2026-12".into() });
    /// # Ok::<(), KeyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidSpec`] (naming the entry, never its bytes),
    /// [`KeyError::InvalidId`] for an id that is not one, or [`KeyError::DuplicateId`] for an
    /// id listed twice.
    pub fn parse(spec: &str) -> Result<Self, KeyError> {
        use base64::Engine as _;
        let mut keys = spec
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .enumerate()
            .map(|(index, entry)| {
                let invalid = KeyError::InvalidSpec { entry: index + 1 };
                let (id, encoded) = entry.split_once(':').ok_or_else(|| invalid.clone())?;
                let encoded = encoded.trim_end_matches('=');
                let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(encoded)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
                    .map_err(|_| invalid.clone())?;
                if bytes.len() != 32 {
                    return Err(invalid);
                }
                Key::new(id, &bytes)
            });
        let current = keys.next().ok_or(KeyError::InvalidSpec { entry: 1 })??;
        keys.try_fold(Self::new(current), |ring, key| {
            let key = key?;
            if ring.keys.contains_key(&key.id) {
                return Err(KeyError::DuplicateId { key_id: key.id });
            }
            Ok(ring.with_previous(key))
        })
    }

    /// A new random key under `id`, as a key list entry (`ID:BASE64`) for
    /// [`parse`](Self::parse): put it first in the list to make it current. The entry is the
    /// key itself: keep it in a secret manager.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidId`] or [`KeyError::Random`].
    pub fn generate_spec(id: &str) -> Result<String, KeyError> {
        use base64::Engine as _;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| KeyError::Random)?;
        let key = Key::new(id, &bytes)?;
        Ok(format!(
            "{}:{}",
            key.id,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        ))
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Every key id of the ring, sorted.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.keys().map(String::as_str).collect()
    }

    /// Seals `token` for `account` with the current key.
    pub(crate) fn seal(&self, account: &str, token: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.keys.get(&self.current).ok_or_else(|| KeyError::MissingKey {
            key_id: self.current.clone(),
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| KeyError::Random)?;
        let aad = associated_data(account);
        let ciphertext = key
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: token,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyError::Random)?;
        let id = key.id.as_bytes();
        let mut sealed = Vec::with_capacity(2 + id.len() + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT);
        // Key ids are at most 64 bytes (checked in Key::new), so their length fits a byte.
        sealed.push(u8::try_from(id.len()).map_err(|_| KeyError::InvalidId(key.id.clone()))?);
        sealed.extend_from_slice(id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// The key id `sealed` names, if it is in the sealed format.
    pub(crate) fn key_id_of(sealed: &[u8]) -> Result<&str, KeyError> {
        let (&format, rest) = sealed.split_first().ok_or(KeyError::Malformed)?;
        let (&len, rest) = rest.split_first().ok_or(KeyError::Malformed)?;
        if format != FORMAT || rest.len() < usize::from(len) + NONCE_LEN {
            return Err(KeyError::Malformed);
        }
        std::str::from_utf8(&rest[..usize::from(len)]).map_err(|_| KeyError::Malformed)
    }

    /// Opens `sealed` for `account` with the key it names.
    pub(crate) fn open(&self, account: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key_id = Self::key_id_of(sealed)?;
        let key = self.keys.get(key_id).ok_or_else(|| KeyError::MissingKey {
            key_id: key_id.to_owned(),
        })?;
        let start = 2 + key_id.len();
        let nonce = XNonce::try_from(&sealed[start..start + NONCE_LEN]).map_err(|_| KeyError::Malformed)?;
        let ciphertext = &sealed[start + NONCE_LEN..];
        let aad = associated_data(account);
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyError::Open {
                key_id: key_id.to_owned(),
            })
    }
}

fn associated_data(account: &str) -> Vec<u8> {
    [AAD_PREFIX, account.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"IGAA-CANARY-TOKEN-0123456789";

    #[test]
    fn a_sealed_token_opens_for_its_account_only() {
        let ring = KeyRing::new(Key::new("k1", &[1u8; 32]).unwrap());
        let sealed = ring.seal("17841400000000001", TOKEN).unwrap();
        assert!(!sealed.windows(TOKEN.len()).any(|w| w == TOKEN), "no plaintext");
        assert_eq!(ring.open("17841400000000001", &sealed).unwrap(), TOKEN);
        assert_eq!(
            ring.open("17841400000000002", &sealed),
            Err(KeyError::Open { key_id: "k1".into() }),
            "another account's row does not open"
        );
    }

    #[test]
    fn a_wrong_or_missing_key_or_altered_bytes_are_typed_errors() {
        let sealed = KeyRing::new(Key::new("k1", &[1u8; 32]).unwrap())
            .seal("1", TOKEN)
            .unwrap();
        let impostor = KeyRing::new(Key::new("k1", &[2u8; 32]).unwrap());
        assert_eq!(
            impostor.open("1", &sealed),
            Err(KeyError::Open { key_id: "k1".into() })
        );
        let other = KeyRing::new(Key::new("k2", &[1u8; 32]).unwrap());
        assert_eq!(
            other.open("1", &sealed),
            Err(KeyError::MissingKey { key_id: "k1".into() })
        );
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        let ring = KeyRing::new(Key::new("k1", &[1u8; 32]).unwrap());
        assert_eq!(
            ring.open("1", &altered),
            Err(KeyError::Open { key_id: "k1".into() })
        );
        for garbage in [&b""[..], b"\x01", b"\x01\xff", b"plain token", &sealed[..10]] {
            assert_eq!(ring.open("1", garbage), Err(KeyError::Malformed), "{garbage:?}");
        }
    }

    #[test]
    fn a_previous_key_opens_and_the_current_one_seals() {
        let old = Key::new("old", &[1u8; 32]).unwrap();
        let sealed_before = KeyRing::new(old.clone()).seal("1", TOKEN).unwrap();
        let ring = KeyRing::new(Key::new("new", &[9u8; 32]).unwrap()).with_previous(old);
        assert_eq!(ring.open("1", &sealed_before).unwrap(), TOKEN);
        let sealed_now = ring.seal("1", TOKEN).unwrap();
        assert_eq!(KeyRing::key_id_of(&sealed_now), Ok("new"));
    }

    #[test]
    fn keys_show_their_id_and_nothing_else() {
        let key = Key::new("prod-2026", &[0x5a; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "Key { id: \"prod-2026\", .. }");
        assert!(matches!(Key::new("", &[0; 32]), Err(KeyError::InvalidId(_))));
        assert!(matches!(Key::new("a b", &[0; 32]), Err(KeyError::InvalidId(_))));
        assert_eq!(Key::new("k", &[0; 31]).unwrap_err(), KeyError::InvalidLength(31));
    }
}
