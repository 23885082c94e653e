//! The file engine's record parse on any file contents: an error or a record, never a panic;
//! a parsed record written back parses to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::SessionKey;
use session_file::format;

fuzz_target!(|data: &[u8]| {
    let id = SessionKey::generate().record_id();
    if let Ok(record) = format::decode_record(&id, data) {
        let again = format::decode_record(&id, &format::encode(&record)).expect("re-reads");
        assert_eq!(again, record);
    }
});
