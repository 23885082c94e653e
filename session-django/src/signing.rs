//! Django's `django.core.signing`, byte for byte: [`Signer`], [`TimestampSigner`], and
//! [`dumps`]/[`loads`] of JSON objects.
//!
//! - The HMAC is SHA-256 keyed with `sha256(salt + "signer" + secret)` (Django's
//!   `salted_hmac`); the signature is its URL-safe base64 without padding, after a `:`.
//! - [`Keys`] holds `SECRET_KEY` and `SECRET_KEY_FALLBACKS`: values are signed with the
//!   current key and verified with any of them, in constant time, as text (so a signature
//!   with a non-canonical last base64 character is rejected, as in Django).
//! - A timestamped value carries `:` + the Unix time in base 62 before the signature;
//!   `max_age` rejects older ones.
//! - `dumps` writes compact JSON (Python's escaping of non-ASCII), compresses it with zlib
//!   when that saves more than one byte (marked by a leading `.`), and base64s it.
//!
//! The derived keys are computed once per signer, not per call as Django does.
//!
//! ```
//! use session_django::signing::{Keys, Signer};
//!
//! let signer = Signer::new(Keys::new("golden-secret-key"), "golden.salt");
//! let signed = signer.sign("hello:world");
//! assert_eq!(signed, "hello:world:aWbl-dJgT2rzeQiPXxHEYrgj19h_UalYDFjgSduMbdA");
//! assert_eq!(signer.unsign(&signed).unwrap(), "hello:world");
//! assert!(signer.unsign("hello:world:forged").is_err());
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::json;

type HmacSha256 = Hmac<Sha256>;

/// URL-safe base64 without padding, as Django's `b64_encode`; decoding also takes padding
/// and non-canonical trailing bits, as Python's decoder does.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Django's `BASE62_ALPHABET`.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The largest payload [`loads`] inflates, against zip bombs: 16 MiB.
pub const MAX_INFLATED_BYTES: u64 = 16 << 20;

/// `SECRET_KEY` and `SECRET_KEY_FALLBACKS`: the key new signatures use, and older keys that
/// still verify (for rotation: move the old key to the fallbacks, deploy, drop it later).
/// `Debug` shows how many keys there are, never a key.
#[derive(Clone)]
pub struct Keys {
    current: String,
    fallbacks: Vec<String>,
}

impl Keys {
    /// The current secret, with no fallbacks.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            current: secret.into(),
            fallbacks: Vec::new(),
        }
    }

    /// Older secrets that still verify, in the order tried.
    pub fn with_fallbacks<I, S>(mut self, fallbacks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fallbacks = fallbacks.into_iter().map(Into::into).collect();
        self
    }

    /// The current secret (Django's `SECRET_KEY`).
    pub fn current(&self) -> &str {
        &self.current
    }

    /// The fallback secrets (Django's `SECRET_KEY_FALLBACKS`).
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every secret, current first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.current.as_str()).chain(self.fallbacks.iter().map(String::as_str))
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys(1 current, {} fallbacks)", self.fallbacks.len())
    }
}

/// Why a signed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// No `:` separator: not a signed value at all (Django's `BadSignature`).
    #[error("no \":\" found in the signed value")]
    NoSeparator,
    /// The signature matches none of the keys (Django's `BadSignature`).
    #[error("the signature does not match")]
    BadSignature,
    /// Signed longer ago than `max_age` allows (Django's `SignatureExpired`).
    #[error("the signature is {age_seconds} s old, more than the {max_age_seconds} s allowed")]
    Expired {
        /// Seconds since signing.
        age_seconds: u64,
        /// The limit.
        max_age_seconds: u64,
    },
    /// The signature verified but the content is not what `dumps` writes (bad timestamp,
    /// base64, zlib or JSON).
    #[error("the signed value is malformed: {0}")]
    Malformed(&'static str),
}

impl SigningError {
    /// Whether Django would raise `BadSignature` (a forged or foreign value, worth a security
    /// warning) rather than a malformed or expired one.
    pub fn is_bad_signature(&self) -> bool {
        matches!(self, Self::NoSeparator | Self::BadSignature)
    }
}

/// `salted_hmac(key_salt, value, secret)` with SHA-256: HMAC keyed with
/// `sha256(key_salt + secret)`.
pub fn salted_hmac(key_salt: &str, value: &[u8], secret: &str) -> [u8; 32] {
    keyed(&derive_key(key_salt, secret), value)
}

fn derive_key(key_salt: &str, secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(key_salt.as_bytes());
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

fn keyed(key: &[u8; 32], value: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; 32 bytes never fails.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// URL-safe base64 without padding (Django's `b64_encode`).
pub fn b64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Django's `b64_decode`; `None` for text that is not base64.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}

/// Django's `b62_encode`.
pub fn b62_encode(value: i64) -> String {
    if value == 0 {
        return "0".to_owned();
    }
    let mut rest = value.unsigned_abs();
    let mut digits = Vec::new();
    while rest > 0 {
        digits.push(BASE62[(rest % 62) as usize]);
        rest /= 62;
    }
    if value < 0 {
        digits.push(b'-');
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

/// Django's `b62_decode`; `None` for a character outside the alphabet or an overflow.
pub fn b62_decode(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    if digits.is_empty() {
        return (text == "0").then_some(0);
    }
    let mut value: i64 = 0;
    for byte in digits.bytes() {
        let digit = BASE62.iter().position(|&b| b == byte)?;
        value = value.checked_mul(62)?.checked_add(digit as i64)?;
    }
    Some(if negative { -value } else { value })
}

/// Django's `Signer`: `value:signature`, signed with the current key, verified with any.
#[derive(Clone)]
pub struct Signer {
    salt: String,
    /// `sha256(salt + "signer" + secret)` for each key, current first.
    keys: Vec<[u8; 32]>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("salt", &self.salt)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// A signer for `salt` (Django's default salt is `django.core.signing.Signer`).
    pub fn new(keys: Keys, salt: impl Into<String>) -> Self {
        let salt = salt.into();
        let key_salt = format!("{salt}signer");
        let keys = keys
            .all()
            .map(|secret| derive_key(&key_salt, secret))
            .collect();
        Self { salt, keys }
    }

    /// The salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The signature of `value` with the current key (Django's `Signer.signature`).
    pub fn signature(&self, value: &str) -> String {
        b64_encode(&keyed(&self.keys[0], value.as_bytes()))
    }

    /// `value:signature` (Django's `Signer.sign`).
    pub fn sign(&self, value: &str) -> String {
        let signature = self.signature(value);
        let mut signed = String::with_capacity(value.len() + 1 + signature.len());
        signed.push_str(value);
        signed.push(':');
        signed.push_str(&signature);
        signed
    }

    /// Whether `signature` is the signature of `value` under any of the keys, compared in
    /// constant time as text.
    pub fn verify(&self, value: &str, signature: &str) -> bool {
        let mut found = false;
        for key in &self.keys {
            let expected = b64_encode(&keyed(key, value.as_bytes()));
            found |= bool::from(expected.as_bytes().ct_eq(signature.as_bytes()));
        }
        found
    }

    /// The value of `value:signature` when the signature verifies (Django's
    /// `Signer.unsign`).
    pub fn unsign<'a>(&self, signed: &'a str) -> Result<&'a str, SigningError> {
        let (value, signature) = signed.rsplit_once(':').ok_or(SigningError::NoSeparator)?;
        if self.verify(value, signature) {
            Ok(value)
        } else {
            Err(SigningError::BadSignature)
        }
    }
}

/// Django's `TimestampSigner`: `value:timestamp:signature`, the timestamp in base 62.
#[derive(Debug, Clone)]
pub struct TimestampSigner {
    signer: Signer,
}

/// A value a [`TimestampSigner`] verified, with when it was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsigned<'a> {
    /// The value.
    pub value: &'a str,
    /// When it was signed, in Unix seconds.
    pub timestamp: i64,
}

/// The current Unix time in whole seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

impl TimestampSigner {
    /// A timestamp signer for `salt`.
    pub fn new(keys: Keys, salt: impl Into<String>) -> Self {
        Self {
            signer: Signer::new(keys, salt),
        }
    }

    /// The plain signer underneath.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Signs `value` as of now.
    pub fn sign(&self, value: &str) -> String {
        self.sign_at(value, unix_now())
    }

    /// Signs `value` as of `timestamp` (Unix seconds).
    pub fn sign_at(&self, value: &str, timestamp: i64) -> String {
        self.signer
            .sign(&format!("{value}:{}", b62_encode(timestamp)))
    }

    /// Verifies `signed` and, with `max_age`, that it was signed at most that long ago.
    pub fn unsign<'a>(
        &self,
        signed: &'a str,
        max_age: Option<Duration>,
    ) -> Result<Unsigned<'a>, SigningError> {
        let stamped = self.signer.unsign(signed)?;
        let (value, timestamp) = stamped
            .rsplit_once(':')
            .ok_or(SigningError::Malformed("no timestamp"))?;
        let timestamp = b62_decode(timestamp).ok_or(SigningError::Malformed("bad timestamp"))?;
        if let Some(max_age) = max_age {
            let age = unix_now().saturating_sub(timestamp);
            let max_age_seconds = max_age.as_secs();
            if age > 0 && age.unsigned_abs() > max_age_seconds {
                return Err(SigningError::Expired {
                    age_seconds: age.unsigned_abs(),
                    max_age_seconds,
                });
            }
        }
        Ok(Unsigned { value, timestamp })
    }
}

/// Django's `signing.dumps(obj, salt=…, compress=…)` of a JSON object, as of `timestamp`.
pub fn dumps_at(
    signer: &TimestampSigner,
    object: &Map<String, Value>,
    compress: bool,
    timestamp: i64,
) -> String {
    dumps_bytes_at(signer, &json::to_python_bytes(object), compress, timestamp)
}

/// [`dumps_at`] of JSON already serialized (by [`json::to_python_bytes`]).
pub fn dumps_bytes_at(
    signer: &TimestampSigner,
    json: &[u8],
    compress: bool,
    timestamp: i64,
) -> String {
    signer.sign_at(&pack(json, compress), timestamp)
}

/// [`dumps_at`] as of now.
pub fn dumps(signer: &TimestampSigner, object: &Map<String, Value>, compress: bool) -> String {
    dumps_at(signer, object, compress, unix_now())
}

/// The base64 text `dumps` signs: the JSON, zlib-compressed (and marked with `.`) when that
/// saves more than one byte.
fn pack(data: &[u8], compress: bool) -> String {
    if compress && let Some(compressed) = zlib(data) {
        let mut packed = String::with_capacity(1 + compressed.len().div_ceil(3) * 4);
        packed.push('.');
        B64.encode_string(&compressed, &mut packed);
        return packed;
    }
    b64_encode(data)
}

/// `data` zlib-compressed at the default level, when that saves more than one byte. The
/// compressor's state (hundreds of KiB) is kept per thread: making it anew costs more than
/// compressing a session.
pub(crate) fn zlib(data: &[u8]) -> Option<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Compress> =
            std::cell::RefCell::new(Compress::new(Compression::default(), true));
    }
    COMPRESSOR.with(|compressor| {
        let mut compressor = compressor.borrow_mut();
        compressor.reset();
        // Worth keeping only below `data.len() - 1` bytes; room for zlib's worst case.
        let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 64);
        match compressor.compress_vec(data, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => (out.len() + 1 < data.len()).then_some(out),
            _ => None,
        }
    })
}

/// `data` inflated, refusing more than [`MAX_INFLATED_BYTES`] (a zip bomb) and truncated or
/// corrupt streams. The inflater's state is kept per thread, as the compressor's.
pub(crate) fn inflate(data: &[u8]) -> Result<Vec<u8>, SigningError> {
    use flate2::{Decompress, FlushDecompress, Status};
    thread_local! {
        static INFLATER: std::cell::RefCell<Decompress> =
            std::cell::RefCell::new(Decompress::new(true));
    }
    let corrupt = SigningError::Malformed("bad zlib data");
    INFLATER.with(|inflater| {
        let mut inflater = inflater.borrow_mut();
        inflater.reset(true);
        let mut out = Vec::with_capacity(data.len().saturating_mul(4).max(256));
        loop {
            let read = usize::try_from(inflater.total_in()).map_err(|_| corrupt.clone())?;
            let (written, rest) = (out.len(), data.get(read..).unwrap_or_default());
            let status = inflater
                .decompress_vec(rest, &mut out, FlushDecompress::Finish)
                .map_err(|_| corrupt.clone())?;
            if out.len() as u64 > MAX_INFLATED_BYTES {
                return Err(SigningError::Malformed("inflates past the size limit"));
            }
            if status == Status::StreamEnd {
                return Ok(out);
            }
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            } else if out.len() == written
                && usize::try_from(inflater.total_in()).ok() == Some(read)
            {
                // No progress with room to spare: the stream is cut short.
                return Err(corrupt);
            }
        }
    })
}

/// Django's `signing.loads`: verifies, checks `max_age`, inflates and parses the JSON
/// object. Also gives the signing timestamp.
pub fn loads(
    signer: &TimestampSigner,
    signed: &str,
    max_age: Option<Duration>,
) -> Result<(Map<String, Value>, i64), SigningError> {
    let Unsigned { value, timestamp } = signer.unsign(signed, max_age)?;
    let (compressed, text) = match value.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let mut data = b64_decode(text).ok_or(SigningError::Malformed("bad base64"))?;
    if compressed {
        data = inflate(&data)?;
    }
    let object =
        json::from_latin1_bytes(&data).ok_or(SigningError::Malformed("not a JSON object"))?;
    Ok((object, timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Produced by Django 5.2.19 (`ci/django.sh`'s environment) with `time.time()` fixed at
    /// 1764547200.25 and `SECRET_KEY = "golden-secret-key"`.
    const T: i64 = 1_764_547_200;

    fn keys() -> Keys {
        Keys::new("golden-secret-key")
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn signer_matches_django_byte_for_byte() {
        let signer = Signer::new(keys(), "golden.salt");
        assert_eq!(
            signer.sign("hello:world"),
            "hello:world:aWbl-dJgT2rzeQiPXxHEYrgj19h_UalYDFjgSduMbdA"
        );
        let stamped = TimestampSigner::new(keys(), "golden.salt");
        assert_eq!(
            stamped.sign_at("hello", T),
            "hello:1vPrKi:GArNFYIdGSxZoueHNOrY7qkO38Jg3wJaAVeMuNQcS0M"
        );
        let unsigned = stamped
            .unsign(
                "hello:1vPrKi:GArNFYIdGSxZoueHNOrY7qkO38Jg3wJaAVeMuNQcS0M",
                None,
            )
            .unwrap();
        assert_eq!(
            unsigned,
            Unsigned {
                value: "hello",
                timestamp: T
            }
        );
    }

    #[test]
    fn base62_matches_django() {
        for (n, text) in [
            (0, "0"),
            (1, "1"),
            (61, "z"),
            (62, "10"),
            (-62, "-10"),
            (1_764_547_200, "1vPrKi"),
            (1 << 40, "JMAIjoW"),
        ] {
            assert_eq!(b62_encode(n), text);
            assert_eq!(b62_decode(text), Some(n));
        }
        assert_eq!(b62_encode(i64::MIN).len(), 12);
        for bad in ["", "-", "a-b", "!", "zzzzzzzzzzzzzzzzzzzz"] {
            assert_eq!(b62_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dumps_matches_django_byte_for_byte_with_python_escaping() {
        let signer = TimestampSigner::new(keys(), "django.contrib.sessions.SessionStore");
        let value = object(json!({"b": "Zoë 東京 😀", "z\u{7f}": "t\tn\n\"q\"\\\u{1}"}));
        assert_eq!(
            dumps_at(&signer, &value, true, T),
            "eyJiIjoiWm9cdTAwZWIgXHU2NzcxXHU0ZWFjIFx1ZDgzZFx1ZGUwMCIsInpcdTAwN2YiOiJ0XHRuXG5cInFc\
             IlxcXHUwMDAxIn0:1vPrKi:4i-nZV94GFpYLUSGd5FEA8TP8rQTqqK-7dYkjqdVTpg"
        );
        assert_eq!(
            loads(&signer, &dumps_at(&signer, &value, true, T), None)
                .unwrap()
                .0,
            value
        );
    }

    #[test]
    fn loads_django_compressed_and_fallback_signed_values() {
        let signer = TimestampSigner::new(keys(), "django.contrib.sessions.SessionStore");
        let compressed = ".eJwVzDEOwjAQRNGroKm3sAHhaI8CQ2HHm8oyAnkbotwd03zpN29HhkZBgeL-oodg5US_pRTpV8vrnLpc6qyFAMEKfUQ5y44K7d6awKDj43Y8Bd-_kLaJjVw4emMn3gSJ4weDvSAW:1vPrKi:0OGrdbrw_Cz1FNExio01PDjeOe-5nSHJQVBDZ-s-LT0";
        let (value, timestamp) = loads(&signer, compressed, None).unwrap();
        assert_eq!(timestamp, T);
        assert_eq!(
            Value::Object(value),
            json!({"a": 1, "b": "Zoë 東京 😀", "c": [1, 2, {"d": null, "e": true}], "z\u{7f}": "tab\tnl\n\"q\"\\"})
        );
        // Compressed by us, read back the same.
        let ours = dumps_at(&signer, &object(json!({"blob": "x".repeat(300)})), true, T);
        assert!(ours.starts_with('.'));
        assert_eq!(
            loads(&signer, &ours, None).unwrap().0["blob"],
            json!("x".repeat(300))
        );

        let old = "eyJrIjoidiJ9:1vPrKi:yPP0NgCA49MpzzFfEPgmHRhWZ0VXn3vgAGO56wd8knU";
        assert_eq!(loads(&signer, old, None), Err(SigningError::BadSignature));
        let rotated = TimestampSigner::new(
            keys().with_fallbacks(["old-golden-key"]),
            "django.contrib.sessions.SessionStore",
        );
        assert_eq!(
            loads(&rotated, old, None).unwrap().0,
            object(json!({"k": "v"}))
        );
    }

    #[test]
    fn a_zip_bomb_is_refused() {
        let signer = TimestampSigner::new(keys(), "s");
        let zeros = vec![b' '; (MAX_INFLATED_BYTES + 1) as usize];
        let bomb = signer.sign(&pack(&zeros, true));
        assert!(bomb.len() < 100_000, "compressed to {} bytes", bomb.len());
        assert_eq!(
            loads(&signer, &bomb, None),
            Err(SigningError::Malformed("inflates past the size limit"))
        );
    }

    #[test]
    fn max_age_rejects_old_signatures() {
        let signer = TimestampSigner::new(keys(), "s");
        let old = signer.sign_at("v", unix_now() - 100);
        assert!(signer.unsign(&old, Some(Duration::from_secs(200))).is_ok());
        assert!(matches!(
            signer.unsign(&old, Some(Duration::from_secs(10))),
            Err(SigningError::Expired {
                max_age_seconds: 10,
                ..
            })
        ));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused_without_panicking() {
        let signer = TimestampSigner::new(keys(), "django.contrib.sessions.SessionStore");
        let good = dumps_at(
            &signer,
            &object(json!({"blob": "x".repeat(100), "n": 1})),
            true,
            T,
        );
        for end in 0..good.len() {
            assert!(loads(&signer, &good[..end], None).is_err(), "prefix {end}");
        }
        let bytes = good.as_bytes();
        for at in 0..bytes.len() {
            for bit in 0..7 {
                let mut flipped = bytes.to_vec();
                flipped[at] ^= 1 << bit;
                if let Ok(text) = std::str::from_utf8(&flipped) {
                    assert!(loads(&signer, text, None).is_err(), "flip {at}/{bit}");
                }
            }
        }
    }

    #[test]
    fn the_auth_hash_matches_django() {
        let hash = salted_hmac(
            "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
            b"pbkdf2_sha256$1000000$salt$hash=",
            "golden-secret-key",
        );
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "49607bfa33448e9a79da7c511330d60d779ec30f0e64c40472a676934dc16c0b"
        );
    }
}
