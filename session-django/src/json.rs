//! JSON as Python's `json.dumps(obj, separators=(",", ":"))` writes it (Django's
//! `JSONSerializer`): compact, every character outside printable ASCII escaped as `\uXXXX`
//! (astral ones as surrogate pairs), then read back as latin-1 bytes.
//!
//! Numbers follow serde_json: integers are exact, floats may be spelled differently (`1e100`
//! for Python's `1e+100`) but parse to the same value.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::{Map, Value};

/// Serde_json's compact output with Python's `ensure_ascii` escaping.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..at])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = at + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    // Compact everywhere else, as CompactFormatter.
}

/// Writes `value` as Python's compact, ASCII-only JSON.
pub fn to_python_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // JSON values and maps with string keys always serialize.
    if value.serialize(&mut serializer).is_err() {
        out.clear();
        out.extend_from_slice(b"{}");
    }
    out
}

/// Reads a JSON object from bytes decoded as latin-1, as Django's `JSONSerializer.loads`;
/// `None` when it is not a JSON object.
pub fn from_latin1_bytes(data: &[u8]) -> Option<Map<String, Value>> {
    let parsed = if data.is_ascii() {
        serde_json::from_slice::<Value>(data)
    } else {
        let text: String = data.iter().copied().map(char::from).collect();
        serde_json::from_str::<Value>(&text)
    };
    match parsed {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_like_python() {
        let value = json!({"k": "é\u{7f}😀\n\u{1}/~"});
        assert_eq!(
            String::from_utf8(to_python_bytes(&value)).unwrap(),
            r#"{"k":"\u00e9\u007f\ud83d\ude00\n\u0001/~"}"#
        );
        assert_eq!(
            from_latin1_bytes(&to_python_bytes(&value)).map(Value::Object),
            Some(value)
        );
        // Raw latin-1 bytes (a non-Django writer) read as latin-1, as Python does.
        assert_eq!(
            from_latin1_bytes(b"{\"k\":\"\xe9\"}").map(Value::Object),
            Some(json!({"k": "é"}))
        );
        assert_eq!(from_latin1_bytes(b"[1]"), None);
        assert_eq!(from_latin1_bytes(b"{"), None);
    }
}
