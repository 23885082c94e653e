//! `MemoryStore` through the public conformance kit, exactly as a third-party store runs it,
//! plus the session and request-lifecycle cases, which test core's own rules and run here once.

use session_core::MemoryStore;
use session_testkit::{Capabilities, owner_conformance, session_conformance, store_conformance};

store_conformance!(memory, Capabilities::new(), || async { MemoryStore::new() });
owner_conformance!(memory_owner, Capabilities::new(), || async {
    MemoryStore::new()
});
session_conformance!(memory_sessions, Capabilities::new(), || async {
    MemoryStore::new()
});
