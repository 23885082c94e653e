//! [`DjangoCodec`]: Django's session encoding (`SessionBase.encode`/`decode`) as a
//! [`Codec`], with the session's own expiry kept in the data as `_session_expiry`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use session_core::Expiry;
use session_core::codec::{Codec, DecodeError, SessionData};
use session_core::time::format_description::well_known::Iso8601;
use session_core::time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::signing::{self, Keys, SigningError, TimestampSigner};

/// The salt of every built-in Django session store: `"django.contrib.sessions." +
/// SessionStore.__qualname__`.
pub const SESSION_SALT: &str = "django.contrib.sessions.SessionStore";

/// Where Django keeps a session's own expiry in its data.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// Django's session encoding: `signing.dumps(data, salt="django.contrib.sessions.SessionStore",
/// compress=True)`, decoded with no `max_age` (the table's `expire_date` decides).
///
/// The expiry setting maps to `_session_expiry` as Django's `set_expiry` writes it:
///
/// | [`Expiry`] | `_session_expiry` |
/// |---|---|
/// | `Default` | absent |
/// | `BrowserClose` | `0` |
/// | `Inactivity(d)` | whole seconds, rounded up (Django has no finer); a zero or negative age is at most `-1` (0 would mean browser close) |
/// | `At(t)` | `t.isoformat()` in UTC, e.g. `"2031-02-03T04:05:06.789000+00:00"` |
///
/// and back; a datetime string without an offset is read as UTC, a float as seconds. An
/// entry named `_session_expiry` set through the session API is replaced by the setting.
///
/// A payload that fails verification is [`DecodeError::BadSignature`]: core logs it on
/// `session::security` ("Session data corrupted", as Django) and the session loads empty.
#[derive(Debug, Clone)]
pub struct DjangoCodec {
    signer: TimestampSigner,
}

impl DjangoCodec {
    /// Django's encoding with these keys and the built-in stores' salt.
    pub fn new(keys: Keys) -> Self {
        Self::with_salt(keys, SESSION_SALT)
    }

    /// Django's encoding with another salt: a custom `SessionStore` class named `Name` in
    /// your Django project signs with `"django.contrib.sessions." + Name.__qualname__`.
    pub fn with_salt(keys: Keys, salt: &str) -> Self {
        Self {
            signer: TimestampSigner::new(keys, salt),
        }
    }

    /// Encodes as of `timestamp` (Unix seconds), for reproducible output.
    pub fn encode_at(
        &self,
        entries: &Map<String, Value>,
        expiry: Expiry,
        timestamp: i64,
    ) -> String {
        let json = session_json(entries, expiry);
        signing::dumps_bytes_at(&self.signer, &json, true, timestamp)
    }

    /// Decodes, also giving when the payload was signed (Unix seconds).
    pub fn decode_with_timestamp(
        &self,
        payload: &str,
        max_age: Option<std::time::Duration>,
    ) -> Result<(SessionData, i64), DecodeError> {
        let (entries, timestamp) =
            signing::loads(&self.signer, payload, max_age).map_err(decode_error)?;
        Ok((session_data(entries)?, timestamp))
    }
}

impl Codec for DjangoCodec {
    fn encode(&self, entries: &Map<String, Value>, expiry: Expiry) -> String {
        self.encode_at(entries, expiry, signing::unix_now())
    }

    fn decode(&self, payload: &str) -> Result<SessionData, DecodeError> {
        self.decode_with_timestamp(payload, None)
            .map(|(data, _)| data)
    }
}

/// The JSON Django's session data is: the entries with `_session_expiry` from the setting.
pub(crate) fn session_json(entries: &Map<String, Value>, expiry: Expiry) -> Vec<u8> {
    crate::json::to_python_bytes(&WithExpiry {
        entries,
        expiry: expiry_value(expiry),
    })
}

/// Django's session data as entries and the expiry setting taken from `_session_expiry`.
pub(crate) fn session_data(mut entries: Map<String, Value>) -> Result<SessionData, DecodeError> {
    let expiry = match entries.remove(EXPIRY_KEY) {
        None => Expiry::Default,
        Some(value) => expiry_from_value(&value)?,
    };
    Ok(SessionData { entries, expiry })
}

/// The session's entries with `_session_expiry` set from the setting, serialized without
/// copying the map.
struct WithExpiry<'a> {
    entries: &'a Map<String, Value>,
    expiry: Option<Value>,
}

impl Serialize for WithExpiry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.entries {
            if key != EXPIRY_KEY {
                map.serialize_entry(key, value)?;
            }
        }
        if let Some(expiry) = &self.expiry {
            map.serialize_entry(EXPIRY_KEY, expiry)?;
        }
        map.end()
    }
}

pub(crate) fn decode_error(error: SigningError) -> DecodeError {
    if error.is_bad_signature() {
        DecodeError::BadSignature
    } else {
        DecodeError::Invalid {
            context: "Django signed data",
            source: Some(Box::new(error)),
        }
    }
}

/// `_session_expiry` for a setting, as Django's `set_expiry` stores it.
fn expiry_value(expiry: Expiry) -> Option<Value> {
    match expiry {
        Expiry::Default => None,
        Expiry::BrowserClose => Some(Value::from(0)),
        Expiry::Inactivity(age) => {
            let mut seconds = age.whole_seconds();
            if age.subsec_nanoseconds() > 0 {
                seconds = seconds.saturating_add(1);
            }
            Some(Value::from(if seconds <= 0 {
                seconds.min(-1)
            } else {
                seconds
            }))
        }
        Expiry::At(at) => Some(Value::from(isoformat(at))),
        // Expiry is non_exhaustive; a later setting without a Django form stays out.
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Python's `datetime.isoformat()` of the moment in UTC.
pub fn isoformat(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let micros = at.microsecond();
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    text.push_str("+00:00");
    text
}

/// Python's `datetime.fromisoformat` for the forms Django writes (and a few more): an offset
/// or `Z`, `T` or a space, an optional fraction; no offset means UTC.
pub fn fromisoformat(text: &str) -> Option<OffsetDateTime> {
    let mut normalized = text.trim().to_owned();
    if normalized.len() > 10 && normalized.as_bytes()[10] == b' ' {
        normalized.replace_range(10..11, "T");
    }
    OffsetDateTime::parse(&normalized, &Iso8601::PARSING)
        .ok()
        .or_else(|| {
            PrimitiveDateTime::parse(&normalized, &Iso8601::PARSING)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        })
}

/// A setting from `_session_expiry`, read as Django's `get_expiry_age` reads it.
fn expiry_from_value(value: &Value) -> Result<Expiry, DecodeError> {
    match value {
        Value::Null => Ok(Expiry::Default),
        // Python's bools are ints: False is 0 (browser close), True is 1 second.
        Value::Bool(false) => Ok(Expiry::BrowserClose),
        Value::Bool(true) => Ok(Expiry::Inactivity(Duration::seconds(1))),
        Value::Number(number) => {
            if let Some(seconds) = number.as_i64() {
                Ok(if seconds == 0 {
                    Expiry::BrowserClose
                } else {
                    Expiry::Inactivity(Duration::seconds(seconds))
                })
            } else {
                match number.as_f64() {
                    Some(0.0) => Ok(Expiry::BrowserClose),
                    Some(seconds) if seconds.is_finite() && seconds.abs() < 1e15 => {
                        Ok(Expiry::Inactivity(Duration::seconds_f64(seconds)))
                    }
                    _ => Err(DecodeError::invalid("_session_expiry is out of range")),
                }
            }
        }
        // An empty string is falsy: the default.
        Value::String(text) if text.is_empty() => Ok(Expiry::Default),
        Value::String(text) => fromisoformat(text)
            .map(Expiry::At)
            .ok_or_else(|| DecodeError::invalid("_session_expiry is not an ISO datetime")),
        Value::Array(_) | Value::Object(_) => Err(DecodeError::invalid(
            "_session_expiry is not a number or datetime",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const T: i64 = 1_764_547_200;

    fn codec() -> DjangoCodec {
        DjangoCodec::new(Keys::new("golden-secret-key"))
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// Django 5.2.19's `SessionStore().encode(...)`, time fixed at 1764547200.25.
    #[test]
    fn encodes_as_django_byte_for_byte() {
        let codec = codec();
        assert_eq!(
            codec.encode_at(&Map::new(), Expiry::Default, T),
            "e30:1vPrKi:N8tgyxHU5dOHraJNWL8f0I3vjHp30BgiKm3YqGspOEw"
        );
        assert_eq!(
            codec.encode_at(
                &object(json!({"_auth_user_id": "42"})),
                Expiry::Inactivity(Duration::seconds(3600)),
                T
            ),
            "eyJfYXV0aF91c2VyX2lkIjoiNDIiLCJfc2Vzc2lvbl9leHBpcnkiOjM2MDB9:1vPrKi:P0sLfYd2aisV-0nTxik6lp-IQiFeDkYV7-OfxEHxe50"
        );
        assert_eq!(
            codec.encode_at(
                &object(json!({"cart": [1, 2]})),
                Expiry::At(datetime!(2031-02-03 04:05:06.789 UTC)),
                T
            ),
            "eyJjYXJ0IjpbMSwyXSwiX3Nlc3Npb25fZXhwaXJ5IjoiMjAzMS0wMi0wM1QwNDowNTowNi43ODkwMDArMDA6MDAifQ:1vPrKi:fyh4-n0aCPP_Qyi20o3LFrPfXu44vtqyMiUHcsVwtvc"
        );
    }

    #[test]
    fn decodes_what_django_wrote() {
        let compressed = ".eJyrVopPLC3JiC8tTi2Kz0xRslIysTAyNFbSQRZPSkzOTs0DSaZkJeal5-sl5-eVFGUm6YGU6EFli_V881NSc5ygalEMyEgszgDqTqQQAA1NyslPAppUMQqIBkq1ADzYzos:1vPrKi:b1zUIP5jcsTBda4nVklSRtR4LGZwGdqCkSPlTDtwJvU";
        let data = codec().decode(compressed).unwrap();
        assert_eq!(data.expiry, Expiry::Default);
        assert_eq!(data.entries["_auth_user_id"], json!("48213"));
        assert_eq!(
            data.entries["_auth_user_backend"],
            json!("django.contrib.auth.backends.ModelBackend")
        );
        assert_eq!(data.entries["blob"], json!("x".repeat(300)));
        let timed = "eyJjYXJ0IjpbMSwyXSwiX3Nlc3Npb25fZXhwaXJ5IjoiMjAzMS0wMi0wM1QwNDowNTowNi43ODkwMDArMDA6MDAifQ:1vPrKi:fyh4-n0aCPP_Qyi20o3LFrPfXu44vtqyMiUHcsVwtvc";
        let data = codec().decode(timed).unwrap();
        assert_eq!(
            data.expiry,
            Expiry::At(datetime!(2031-02-03 04:05:06.789 UTC))
        );
        assert_eq!(data.entries, object(json!({"cart": [1, 2]})));
    }

    #[test]
    fn tampered_data_is_a_bad_signature() {
        let good = codec().encode_at(&object(json!({"a": 1})), Expiry::Default, T);
        let forged = good.replacen('e', "f", 1);
        assert!(matches!(
            codec().decode(&forged),
            Err(DecodeError::BadSignature)
        ));
        assert!(matches!(
            codec().decode("no separator"),
            Err(DecodeError::BadSignature)
        ));
        let other_key = DjangoCodec::new(Keys::new("another"));
        assert!(matches!(
            other_key.decode(&good),
            Err(DecodeError::BadSignature)
        ));
    }

    #[test]
    fn every_expiry_setting_round_trips() {
        for expiry in [
            Expiry::Default,
            Expiry::BrowserClose,
            Expiry::Inactivity(Duration::seconds(90)),
            Expiry::Inactivity(Duration::seconds(-5)),
            Expiry::At(datetime!(2031-02-03 04:05:06 UTC)),
            Expiry::At(datetime!(2031-02-03 04:05:06.5 +01:00)),
        ] {
            let payload = codec().encode(&object(json!({"k": "v"})), expiry);
            let data = codec().decode(&payload).unwrap();
            assert_eq!(data.expiry, expiry);
            assert_eq!(data.entries, object(json!({"k": "v"})));
        }
        // Django has whole seconds only: rounded up, never to 0 (browser close).
        let sub_second = codec().encode(
            &Map::new(),
            Expiry::Inactivity(Duration::milliseconds(1500)),
        );
        assert_eq!(
            codec().decode(&sub_second).unwrap().expiry,
            Expiry::Inactivity(Duration::seconds(2))
        );
        let zero = codec().encode(&Map::new(), Expiry::Inactivity(Duration::ZERO));
        assert_eq!(
            codec().decode(&zero).unwrap().expiry,
            Expiry::Inactivity(Duration::seconds(-1))
        );
    }

    #[test]
    fn reads_every_form_of_session_expiry() {
        for (value, expiry) in [
            (json!(null), Expiry::Default),
            (json!(""), Expiry::Default),
            (json!(0), Expiry::BrowserClose),
            (json!(false), Expiry::BrowserClose),
            (json!(60), Expiry::Inactivity(Duration::seconds(60))),
            (json!(1.5), Expiry::Inactivity(Duration::milliseconds(1500))),
            (
                json!("2023-11-14T23:13:20+00:00"),
                Expiry::At(datetime!(2023-11-14 23:13:20 UTC)),
            ),
            (
                json!("2023-11-14 23:13:20Z"),
                Expiry::At(datetime!(2023-11-14 23:13:20 UTC)),
            ),
            (
                json!("2023-11-14T23:13:20"),
                Expiry::At(datetime!(2023-11-14 23:13:20 UTC)),
            ),
            (
                json!("2023-11-14T23:13:05.500000+01:00"),
                Expiry::At(datetime!(2023-11-14 22:13:05.5 UTC)),
            ),
        ] {
            let mut entries = Map::new();
            entries.insert(EXPIRY_KEY.to_owned(), value.clone());
            let payload = signing::dumps(&codec().signer, &entries, true);
            assert_eq!(codec().decode(&payload).unwrap().expiry, expiry, "{value}");
        }
        for bad in [json!("tomorrow"), json!([1]), json!({"a": 1}), json!(1e300)] {
            let mut entries = Map::new();
            entries.insert(EXPIRY_KEY.to_owned(), bad.clone());
            let payload = signing::dumps(&codec().signer, &entries, true);
            assert!(codec().decode(&payload).is_err(), "{bad}");
        }
    }
}
