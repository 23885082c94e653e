//! Session keys (the secret in the cookie) and record ids (what stores see).

use std::fmt;

use sha2::{Digest, Sha256};

/// Number of characters in a session key.
pub const KEY_LEN: usize = 32;

/// The alphabet of session keys, as Django's `VALID_KEY_CHARS`.
const KEY_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Characters of a key shown by `Debug` and `Display`.
const SHOWN_PREFIX: usize = 4;

/// The secret a client holds in its session cookie: 32 characters of `[a-z0-9]` drawn from the
/// operating system's CSPRNG (about 165 bits).
///
/// `Debug` and `Display` show only a short prefix, so keys do not leak into logs; the full value
/// is reachable only through [`SessionKey::expose_secret`], used to build the cookie. Stores
/// never see a key, only its [`RecordId`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

impl SessionKey {
    /// Draws a fresh key from the operating system's CSPRNG.
    ///
    /// # Panics
    ///
    /// Only when the operating system has no random source at all, in which case no session
    /// could ever be secure; every platform Rust's standard library supports has one.
    pub fn generate() -> Self {
        let mut key = String::with_capacity(KEY_LEN);
        let mut buf = [0u8; 64];
        while key.len() < KEY_LEN {
            #[allow(clippy::expect_used)]
            getrandom::fill(&mut buf).expect("the operating system's random source failed");
            // Rejection sampling: 252 = 7 * 36, so `b % 36` is uniform for `b < 252`.
            for b in buf.iter().copied().filter(|&b| b < 252) {
                if key.len() == KEY_LEN {
                    break;
                }
                key.push(char::from(KEY_ALPHABET[usize::from(b % 36)]));
            }
        }
        Self(key)
    }

    /// Accepts exactly 32 characters of `[a-z0-9]`; anything else is `None`.
    ///
    /// ```
    /// use session_core::SessionKey;
    /// assert!(SessionKey::parse("abcdefghijklmnopqrstuvwxyz012345").is_some());
    /// assert!(SessionKey::parse("../../etc/passwd").is_none());
    /// assert!(SessionKey::parse("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345").is_none());
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        let valid = value.len() == KEY_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        valid.then(|| Self(value.to_owned()))
    }

    /// The full secret, for the `Set-Cookie` header and nothing else.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The id under which a store with this key mapping keeps the session: the hex SHA-256
    /// of the key for [`KeyMapping::Hashed`], the key itself for [`KeyMapping::RawKey`].
    pub fn record_id_for(&self, mapping: KeyMapping) -> RecordId {
        match mapping {
            KeyMapping::Hashed => self.record_id(),
            KeyMapping::RawKey => RecordId(self.0.clone()),
        }
    }

    /// The id under which stores keep this session by default: the hex SHA-256 of the key.
    pub fn record_id(&self) -> RecordId {
        RecordId(sha256_hex(&self.0))
    }
}

/// The lowercase hex SHA-256 of `text`.
pub(crate) fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// How session keys become record ids, chosen by the store
/// ([`SessionStore::key_mapping`](crate::SessionStore::key_mapping)).
///
/// Hashing is the default and the safe choice: a leaked database, directory or Redis dump
/// holds no live keys, and lookups cannot be timed to guess one. `RawKey` exists only for a
/// store that shares its table with another system that looks sessions up by the raw key
/// (Django's `django_session`); such a store must say so loudly in its docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyMapping {
    /// The id is the lowercase hex SHA-256 of the key (64 characters).
    #[default]
    Hashed,
    /// The id is the key itself (32 characters of `[a-z0-9]`): whoever reads the store can
    /// use every live session in it.
    RawKey,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({self})")
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.0.get(..SHOWN_PREFIX).unwrap_or_default();
        write!(f, "{prefix}…")
    }
}

/// The id of a stored session record: the lowercase hex SHA-256 (64 characters) of its
/// [`SessionKey`], so a leaked store yields no live session keys; or, for the rare store that
/// opts into [`KeyMapping::RawKey`], the key itself. Only [`SessionKey::record_id_for`] and
/// [`RecordId::parse`] make one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(String);

impl RecordId {
    /// Length of a record id in characters.
    pub const LEN: usize = 64;

    /// Accepts exactly 64 characters of `[0-9a-f]`, for stores that read ids back (file names,
    /// scans); anything else is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let valid = value.len() == Self::LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Self(value.to_owned()))
    }

    /// The id as text, safe to use in file names, SQL parameters and Redis keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", self.0)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RecordId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        for _ in 0..200 {
            let key = SessionKey::generate();
            assert!(SessionKey::parse(key.expose_secret()).is_some());
        }
        assert_ne!(SessionKey::generate(), SessionKey::generate());
    }

    #[test]
    fn generated_keys_use_the_whole_alphabet() {
        let mut seen = [false; 36];
        for _ in 0..100 {
            for b in SessionKey::generate().expose_secret().bytes() {
                let i = KEY_ALPHABET
                    .iter()
                    .position(|&c| c == b)
                    .unwrap_or(usize::MAX);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn parse_rejects_bad_input_without_panicking() {
        let long = "a".repeat(8 * 1024);
        let bad = [
            "",
            "abc",
            long.as_str(),
            "../../../../../../../../etc/passwd",
            "abcdefghijklmnopqrstuvwxyz01234\0",
            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            "abcdefghijklmnopqrstuvwxyz01234é",
            "ábcdefghijklmnopqrstuvwxyz01234",
            "東京東京東京東京東京東",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
            "abcdefghijklmnopqrstuvwxyz0123456",
            "abcdefghijklmnopqrstuvwxyz01234 ",
            "abcdefghijklmnop/rstuvwxyz012345",
        ];
        for value in bad {
            assert!(SessionKey::parse(value).is_none(), "accepted {value:?}");
        }
    }

    #[test]
    fn debug_and_display_hide_the_secret() {
        let key = SessionKey::generate();
        let secret = key.expose_secret();
        assert!(!format!("{key:?}").contains(secret));
        assert!(!format!("{key}").contains(&secret[..8]));
        assert!(format!("{key}").starts_with(&secret[..SHOWN_PREFIX]));
    }

    #[test]
    fn record_id_is_the_hex_sha256_of_the_key() {
        let key = SessionKey::parse("abcdefghijklmnopqrstuvwxyz012345").unwrap();
        // printf abcdefghijklmnopqrstuvwxyz012345 | sha256sum
        assert_eq!(
            key.record_id().as_str(),
            "653bb1245e828fcda4fa53fcd5a3def5bd7654e651f54b4132b73d74e64435c4"
        );
    }

    #[test]
    fn record_id_parse_is_strict() {
        let id = SessionKey::generate().record_id();
        assert_eq!(RecordId::parse(id.as_str()), Some(id.clone()));
        assert!(RecordId::parse(&id.as_str().to_uppercase()).is_none());
        assert!(RecordId::parse(&id.as_str()[1..]).is_none());
        assert!(RecordId::parse("../x").is_none());
    }
}
