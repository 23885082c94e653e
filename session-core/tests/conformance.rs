//! `MemoryStore` through the public conformance kit, exactly as a third-party store runs it.

use session_core::MemoryStore;
use session_testkit::{Caps, store_conformance};

store_conformance!(memory, Caps::new(), || async { MemoryStore::new() });
