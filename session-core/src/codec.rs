//! Payload formats. The default is a versioned JSON envelope holding the session data and the
//! session's own expiry setting ([`Envelope`], [`encode`], [`decode`]). A store may ask for
//! another format through [`SessionStore::codec`](crate::SessionStore::codec), by returning a
//! [`Codec`] (`session-django` returns Django's signed encoding). Core calls the codec in one
//! place, so every engine treats garbage the same way: a payload that does not decode is no
//! session, with a warning on target `session::security`.
//!
//! ```json
//! {"v":1,"data":{"user_id":123},"expiry":{"inactivity_ms":3600000}}
//! ```
//!
//! `expiry` is absent for [`Expiry::Default`], `"browser_close"`, `{"inactivity_ms": n}` or
//! `{"at_ms": unix_millis}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::Duration;

use crate::Expiry;
use crate::record::{from_unix_millis, unix_millis};

/// The envelope version this build writes and reads.
const VERSION: u8 = 1;

/// The decoded contents of a payload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionData {
    /// The session's entries.
    pub entries: Map<String, Value>,
    /// The session's own expiry setting.
    pub expiry: Expiry,
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, or not the envelope's shape.
    #[error("session payload is not a valid envelope")]
    Malformed(#[source] serde_json::Error),
    /// An envelope of a version this build does not know.
    #[error("session payload has unknown version {0}")]
    UnknownVersion(u64),
    /// An expiry moment outside the representable dates.
    #[error("session payload has an expiry moment out of range")]
    ExpiryOutOfRange,
    /// A signed payload whose signature does not verify under any known key: tampered with,
    /// or signed with a key no longer configured.
    #[error("session payload signature does not verify")]
    BadSignature,
    /// Another codec's reason, kept as the source.
    #[error("session payload is not valid: {context}")]
    Invalid {
        /// What was wrong, in a few words.
        context: &'static str,
        /// The underlying error, if there is one.
        #[source]
        source: Option<crate::BoxError>,
    },
}

impl DecodeError {
    /// A codec's own reason, without an underlying error.
    pub fn invalid(context: &'static str) -> Self {
        Self::Invalid {
            context,
            source: None,
        }
    }
}

/// A payload format: how a session's entries and expiry setting become the text a store
/// keeps, and back. Object safe; a store returns one from
/// [`SessionStore::codec`](crate::SessionStore::codec).
///
/// `decode` must never panic on any input, and `decode(encode(e, x))` must give back `e` and
/// `x` (as far as the format can hold `x`: Django's, for one, keeps whole seconds).
pub trait Codec: Send + Sync + 'static {
    /// Encodes entries and the expiry setting into a payload.
    fn encode(&self, entries: &Map<String, Value>, expiry: Expiry) -> String;

    /// Decodes a payload written by [`encode`](Self::encode) (or by the other system sharing
    /// the format).
    fn decode(&self, payload: &str) -> Result<SessionData, DecodeError>;
}

/// The default format: the versioned JSON envelope of [`encode`] and [`decode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Envelope;

impl Codec for Envelope {
    fn encode(&self, entries: &Map<String, Value>, expiry: Expiry) -> String {
        encode(entries, expiry)
    }

    fn decode(&self, payload: &str) -> Result<SessionData, DecodeError> {
        decode(payload)
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    v: u8,
    data: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry: Option<StoredExpiry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeIn {
    v: u64,
    data: Map<String, Value>,
    #[serde(default)]
    expiry: Option<StoredExpiry>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum StoredExpiry {
    BrowserClose,
    InactivityMs(i64),
    AtMs(i64),
}

/// Encodes session entries and expiry setting into a payload.
pub fn encode(entries: &Map<String, Value>, expiry: Expiry) -> String {
    let expiry = match expiry {
        Expiry::Default => None,
        Expiry::BrowserClose => Some(StoredExpiry::BrowserClose),
        Expiry::Inactivity(age) => Some(StoredExpiry::InactivityMs(
            i64::try_from(age.whole_milliseconds()).unwrap_or(if age.is_negative() {
                i64::MIN
            } else {
                i64::MAX
            }),
        )),
        Expiry::At(at) => Some(StoredExpiry::AtMs(unix_millis(at))),
    };
    let envelope = EnvelopeOut {
        v: VERSION,
        data: entries,
        expiry,
    };
    // A map of JSON values with string keys always serializes.
    serde_json::to_string(&envelope).unwrap_or_else(|_| String::from("{}"))
}

/// Decodes a payload written by [`encode`].
pub fn decode(payload: &str) -> Result<SessionData, DecodeError> {
    let envelope: EnvelopeIn = serde_json::from_str(payload).map_err(DecodeError::Malformed)?;
    if envelope.v != u64::from(VERSION) {
        return Err(DecodeError::UnknownVersion(envelope.v));
    }
    let expiry = match envelope.expiry {
        None => Expiry::Default,
        Some(StoredExpiry::BrowserClose) => Expiry::BrowserClose,
        Some(StoredExpiry::InactivityMs(ms)) => Expiry::Inactivity(Duration::milliseconds(ms)),
        Some(StoredExpiry::AtMs(ms)) => {
            Expiry::At(from_unix_millis(ms).ok_or(DecodeError::ExpiryOutOfRange)?)
        }
    };
    Ok(SessionData {
        entries: envelope.data,
        expiry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn entries() -> Map<String, Value> {
        let Value::Object(map) = json!({"user_id": 123, "name": "Zoë \u{0000} 東京"}) else {
            unreachable!()
        };
        map
    }

    /// Found by the `codec_decode` fuzz target: without serde_json's exact float parsing, a
    /// number past the integer range (or any float) changed its last digit on every save.
    #[test]
    fn numbers_round_trip_exactly_through_decode_and_encode() {
        for payload in [
            r#"{"v":1,"data":{"n":998999899991993333333333333332}}"#,
            r#"{"v":1,"data":{"n":9.989998999919932e29,"m":0.30000000000000004,"k":1e-300}}"#,
        ] {
            let first = decode(payload).unwrap();
            let again = decode(&encode(&first.entries, first.expiry)).unwrap();
            assert_eq!(again.entries, first.entries, "{payload}");
        }
    }

    #[test]
    fn round_trips_every_expiry_setting() {
        let settings = [
            Expiry::Default,
            Expiry::BrowserClose,
            Expiry::Inactivity(Duration::seconds(3600)),
            Expiry::At(datetime!(2031-02-03 04:05:06.789 UTC)),
        ];
        for expiry in settings {
            let payload = encode(&entries(), expiry);
            let data = decode(&payload).unwrap();
            assert_eq!(data.entries, entries());
            assert_eq!(data.expiry, expiry);
        }
    }

    #[test]
    fn writes_the_documented_envelope() {
        let payload = encode(&entries(), Expiry::Inactivity(Duration::seconds(2)));
        assert_eq!(
            payload,
            r#"{"v":1,"data":{"name":"Zoë \u0000 東京","user_id":123},"expiry":{"inactivity_ms":2000}}"#
        );
        assert_eq!(encode(&Map::new(), Expiry::Default), r#"{"v":1,"data":{}}"#);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let full = encode(&entries(), Expiry::BrowserClose);
        let mut bad: Vec<String> = (0..full.len())
            .filter(|&i| full.is_char_boundary(i))
            .map(|i| full[..i].to_owned())
            .collect();
        bad.extend(
            [
                "",
                "null",
                "[]",
                "not json at all",
                "\u{0}\u{1}\u{2}",
                r#"{"v":2,"data":{}}"#,
                r#"{"v":1,"data":[]}"#,
                r#"{"v":1}"#,
                r#"{"data":{}}"#,
                r#"{"v":1,"data":{},"expiry":"forever"}"#,
                r#"{"v":1,"data":{},"expiry":{"at_ms":9223372036854775807}}"#,
                r#"{"v":1,"data":{},"extra":true}"#,
                r#"{"v":-1,"data":{}}"#,
            ]
            .map(String::from),
        );
        for payload in bad {
            assert!(decode(&payload).is_err(), "decoded {payload:?}");
        }
    }
}
