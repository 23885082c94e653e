//! The record file format, readable with `cat`:
//!
//! ```text
//! 1767225600000 2026-01-01T00:00:00Z
//! {"v":1,"data":{"user_id":123}}
//! ```
//!
//! The first line holds the expiry in Unix milliseconds (what is read back) and the same moment
//! in RFC 3339 for people; the rest of the file is the payload, byte for byte. A session with
//! an owner has its [`Ownership`] JSON at the end of the first line,
//! after a tab (JSON text never holds a raw tab or newline):
//!
//! ```text
//! 1767225600000 2026-01-01T00:00:00Z<TAB>{"o":"42","c":1767200000000,"s":1767200000000}
//! ```

use session_core::{Ownership, Record, RecordId};
use time::format_description::well_known::Rfc3339;

/// Why a record file could not be read.
#[derive(Debug)]
pub struct Corrupt(&'static str);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "corrupted session file: {}", self.0)
    }
}

impl std::error::Error for Corrupt {}

/// The file contents for a record.
pub fn encode(record: &Record) -> Vec<u8> {
    let human = record
        .expires_at()
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("-"));
    let mut header = format!("{} {human}", record.expires_at_unix_millis());
    if let Some(ownership) = record.ownership() {
        header.push('\t');
        header.push_str(&ownership.to_json());
    }
    header.push('\n');
    let mut bytes = header.into_bytes();
    bytes.extend_from_slice(record.payload().as_bytes());
    bytes
}

/// The expiry (Unix milliseconds) and payload of a record file.
pub fn decode(bytes: &[u8]) -> Result<(i64, &str), Corrupt> {
    decode_parts(bytes).map(|(millis, _, payload)| (millis, payload))
}

/// The expiry (Unix milliseconds), ownership JSON (if any) and payload of a record file.
pub fn decode_parts(bytes: &[u8]) -> Result<(i64, Option<&str>, &str), Corrupt> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(Corrupt("no header line"))?;
    let line =
        std::str::from_utf8(&bytes[..newline]).map_err(|_| Corrupt("header is not UTF-8"))?;
    let (header, ownership) = match line.split_once('\t') {
        Some((header, json)) => (header, Some(json)),
        None => (line, None),
    };
    let millis = header
        .split(' ')
        .next()
        .and_then(|ms| ms.parse::<i64>().ok())
        .ok_or(Corrupt("header has no expiry"))?;
    let payload =
        std::str::from_utf8(&bytes[newline + 1..]).map_err(|_| Corrupt("payload is not UTF-8"))?;
    Ok((millis, ownership, payload))
}

/// The record a file holds.
pub fn decode_record(id: &RecordId, bytes: &[u8]) -> Result<Record, Corrupt> {
    let (millis, ownership, payload) = decode_parts(bytes)?;
    let ownership = match ownership {
        Some(json) => Some(Ownership::from_json(json).ok_or(Corrupt("unreadable owner"))?),
        None => None,
    };
    Record::from_unix_millis(id.clone(), payload, millis)
        .map(|record| record.with_ownership(ownership))
        .ok_or(Corrupt("expiry out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::SessionKey;
    use time::macros::datetime;

    #[test]
    fn file_format_round_trips_and_reads_like_text() {
        let id = SessionKey::generate().record_id();
        let record = Record::new(
            id.clone(),
            "{\"v\":1,\"data\":{\"a\":\"é\\n\"}}",
            datetime!(2026-01-01 00:00:00.5 UTC),
        );
        let bytes = encode(&record);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("1767225600500 2026-01-01T00:00:00.5Z\n"),
            "{text}"
        );
        assert_eq!(decode_record(&id, &bytes).unwrap(), record);
        let owner = session_core::Ownership::new("a b:c", datetime!(2025-12-01 00:00 UTC)).unwrap();
        let owned = record.with_ownership(Some(owner));
        let bytes = encode(&owned);
        assert_eq!(
            bytes.iter().filter(|&&b| b == b'\n').count(),
            1,
            "one header line"
        );
        assert_eq!(decode_record(&id, &bytes).unwrap(), owned);
    }

    #[test]
    fn file_garbage_is_corrupt_not_a_panic() {
        let id = SessionKey::generate().record_id();
        for bytes in [
            &b""[..],
            b"no newline",
            b"abc\n{}",
            b"\xff\xfe\n{}",
            b"1\n\xff",
            b"99999999999999999999\n{}",
        ] {
            assert!(decode_record(&id, bytes).is_err(), "{bytes:?}");
        }
    }
}
