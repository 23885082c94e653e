//! Client-side engines for [`SessionManager::client_side`](session_core::SessionManager::client_side):
//! [`SignedCookies`] (Django's `signed_cookies`, byte-compatible) and [`EncryptedCookies`].

use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};
use session_core::codec::{DecodeError, SessionData};
use session_core::{CookieSealer, Expiry};

use crate::codec::{DjangoCodec, decode_error};
use crate::signing::{self, Keys, SigningError, b64_decode, b64_encode};

/// The salt of Django's `signed_cookies` engine.
pub const SIGNED_COOKIES_SALT: &str = "django.contrib.sessions.backends.signed_cookies";

/// Django's `signed_cookies` engine: the session is the cookie,
/// `signing.dumps(data, compress=True, salt="django.contrib.sessions.backends.signed_cookies")`,
/// verified on load with `max_age` = the cookie age. A Django site on `signed_cookies` with the
/// same `SECRET_KEY` reads and writes the same cookies.
///
/// The client can read the data (it is only signed, base64 and maybe zlib): keep secrets out,
/// or use [`EncryptedCookies`]. A copied cookie stays valid until it expires: `flush` removes
/// the browser's cookie but cannot revoke a copy (there is no server state). Pick a server-side
/// engine when a logout must end every copy at once, when sessions are large (4 KB at most), or
/// hold what the client must not see.
///
/// ```
/// use session_core::{SessionConfig, SessionManager};
/// use session_django::{SignedCookies, signing::Keys};
///
/// let config = SessionConfig::default();
/// let sealer = SignedCookies::new(Keys::new("the Django SECRET_KEY"), config.cookie_age);
/// let manager = SessionManager::client_side(sealer, config);
/// ```
#[derive(Debug, Clone)]
pub struct SignedCookies {
    codec: DjangoCodec,
    max_age: Duration,
}

impl SignedCookies {
    /// Signs with `keys`; cookies older than `cookie_age` (`SESSION_COOKIE_AGE`) are refused.
    pub fn new(keys: Keys, cookie_age: session_core::time::Duration) -> Self {
        Self {
            codec: DjangoCodec::with_salt(keys, SIGNED_COOKIES_SALT),
            max_age: Duration::from_secs(u64::try_from(cookie_age.whole_seconds()).unwrap_or(0)),
        }
    }

    /// Seals as of `timestamp` (Unix seconds), for reproducible values.
    pub fn seal_at(&self, entries: &Map<String, Value>, expiry: Expiry, timestamp: i64) -> String {
        self.codec.encode_at(entries, expiry, timestamp)
    }
}

impl CookieSealer for SignedCookies {
    fn seal(&self, entries: &Map<String, Value>, expiry: Expiry) -> String {
        self.seal_at(entries, expiry, signing::unix_now())
    }

    fn open(&self, value: &str) -> Result<(SessionData, i64), DecodeError> {
        self.codec.decode_with_timestamp(value, Some(self.max_age))
    }
}

/// The salt of [`EncryptedCookies`]' key derivation.
pub const ENCRYPTED_COOKIES_SALT: &str = "session_django.EncryptedCookies";

/// Encrypted client-side sessions: the session is the cookie, encrypted and authenticated
/// with XChaCha20-Poly1305 under a key derived from your secret, so the client can neither
/// read nor change it. Older keys in [`Keys::with_fallbacks`] still open cookies; new ones
/// are sealed with the current key.
///
/// Cookie value: URL-safe base64 of a random 24-byte nonce and the ciphertext of
/// `flag (1 byte: 1 = zlib) ‖ sealed-at (8 bytes, Unix seconds, big-endian) ‖ JSON`; the
/// ciphertext's tag covers it all. Not Django's format (Django has no encrypted engine). As
/// with [`SignedCookies`], a copied cookie stays valid until it expires.
#[derive(Clone)]
pub struct EncryptedCookies {
    /// One cipher per key, current first.
    ciphers: Vec<XChaCha20Poly1305>,
    max_age: Duration,
}

impl std::fmt::Debug for EncryptedCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedCookies({} keys)", self.ciphers.len())
    }
}

impl EncryptedCookies {
    /// Encrypts with `keys`; cookies sealed longer ago than `cookie_age` are refused.
    pub fn new(keys: Keys, cookie_age: session_core::time::Duration) -> Self {
        let ciphers = keys
            .all()
            .map(|secret| {
                let key = signing::salted_hmac(ENCRYPTED_COOKIES_SALT, b"encryption key", secret);
                XChaCha20Poly1305::new((&key).into())
            })
            .collect();
        Self {
            ciphers,
            max_age: Duration::from_secs(u64::try_from(cookie_age.whole_seconds()).unwrap_or(0)),
        }
    }

    /// Seals as of `timestamp` (Unix seconds).
    pub fn seal_at(&self, entries: &Map<String, Value>, expiry: Expiry, timestamp: i64) -> String {
        let json = crate::codec::session_json(entries, expiry);
        let (flag, body) = match signing::zlib(&json) {
            Some(compressed) => (1u8, compressed),
            None => (0u8, json),
        };
        let mut plain = Vec::with_capacity(9 + body.len());
        plain.push(flag);
        plain.extend_from_slice(&timestamp.to_be_bytes());
        plain.extend_from_slice(&body);
        let mut nonce = [0u8; 24];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        let payload = Payload {
            msg: &plain,
            aad: ENCRYPTED_COOKIES_SALT.as_bytes(),
        };
        // Encryption of a buffer in memory cannot fail.
        let sealed = self.ciphers[0]
            .encrypt(&XNonce::from(nonce), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(24 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        b64_encode(&out)
    }
}

impl CookieSealer for EncryptedCookies {
    fn seal(&self, entries: &Map<String, Value>, expiry: Expiry) -> String {
        self.seal_at(entries, expiry, signing::unix_now())
    }

    fn open(&self, value: &str) -> Result<(SessionData, i64), DecodeError> {
        let bytes = b64_decode(value).ok_or(DecodeError::BadSignature)?;
        if bytes.len() < 24 + 16 {
            return Err(DecodeError::BadSignature);
        }
        let (nonce, sealed) = bytes.split_at(24);
        let nonce =
            XNonce::from(<[u8; 24]>::try_from(nonce).map_err(|_| DecodeError::BadSignature)?);
        let plain = self
            .ciphers
            .iter()
            .find_map(|cipher| {
                let payload = Payload {
                    msg: sealed,
                    aad: ENCRYPTED_COOKIES_SALT.as_bytes(),
                };
                cipher.decrypt(&nonce, payload).ok()
            })
            .ok_or(DecodeError::BadSignature)?;
        let malformed = |what| decode_error(SigningError::Malformed(what));
        let (&flag, rest) = plain.split_first().ok_or_else(|| malformed("empty"))?;
        let (stamp, body) = rest
            .split_at_checked(8)
            .ok_or_else(|| malformed("no timestamp"))?;
        let timestamp =
            i64::from_be_bytes(stamp.try_into().map_err(|_| malformed("no timestamp"))?);
        let age = signing::unix_now().saturating_sub(timestamp);
        if age > 0 && age.unsigned_abs() > self.max_age.as_secs() {
            return Err(decode_error(SigningError::Expired {
                age_seconds: age.unsigned_abs(),
                max_age_seconds: self.max_age.as_secs(),
            }));
        }
        let json = match flag {
            0 => body.to_vec(),
            1 => signing::inflate(body).map_err(decode_error)?,
            _ => return Err(malformed("unknown flag")),
        };
        let entries = crate::json::from_latin1_bytes(&json).ok_or_else(|| malformed("not JSON"))?;
        let data = crate::codec::session_data(entries)?;
        Ok((data, timestamp))
    }
}
